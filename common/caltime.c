#include "common/caltime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/config.h"

int ztime_offset_minutes(void)
{
    /* Read once; every later call sees the same zone (setting, not state). */
    static int offset = -100000;
    if (offset == -100000) {
        const char *tz = zcfg_str("ZHILI_TZ", "+08:00");
        int h = 0, m = 0;
        char sign = 0;
        if (sscanf(tz, "%c%2d:%2d", &sign, &h, &m) != 3 || (sign != '+' && sign != '-') ||
            h > 14 || m > 59) {
            zcfg_fail("ZHILI_TZ", "expected an offset such as +08:00, got \"%s\"", tz);
        }
        offset = (sign == '-' ? -1 : 1) * (h * 60 + m);
    }
    return offset;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

void ztime_local(int64_t ms, ztime_parts_t *out)
{
    time_t secs = (time_t)floor_div(ms, 1000) + ztime_offset_minutes() * 60;
    struct tm tm;
    gmtime_r(&secs, &tm);
    *out = (ztime_parts_t){tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                           tm.tm_min,         tm.tm_sec,     tm.tm_wday};
}

void ztime_format(int64_t ms, char out[ZTIME_RFC3339_BYTES])
{
    ztime_parts_t p;
    ztime_local(ms, &p);
    int off = ztime_offset_minutes();
    int frac = (int)(ms - floor_div(ms, 1000) * 1000);
    char fbuf[8] = "";
    if (frac != 0) {
        snprintf(fbuf, sizeof fbuf, ".%03d", frac);
    }
    /* Formatted in room enough for any int, then cut to the fixed size: the
     * compiler cannot see that the parts are in range (-Wformat-truncation). */
    char buf[96];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%s%c%02d:%02d", p.year, p.month,
             p.day, p.hour, p.minute, p.second, fbuf, off < 0 ? '-' : '+', abs(off) / 60,
             abs(off) % 60);
    size_t n = strnlen(buf, ZTIME_RFC3339_BYTES - 1);
    memcpy(out, buf, n);
    out[n] = '\0';
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t ztime_month_start(int year, int month)
{
    while (month > 12) {
        month -= 12;
        year++;
    }
    return (days_from_civil(year, month, 1) * 86400 - ztime_offset_minutes() * 60) * 1000;
}

static bool date_ok(int y, int mo, int d)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return y >= 1970 && y <= 9999 && mo >= 1 && mo <= 12 && d >= 1 && d <= mdays[mo - 1] &&
           !(mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

int ztime_parse(const char *text, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, s = 0, n = 0;
    size_t len = strlen(text);
    if (len == 10 && sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && n == 10) {
        if (!date_ok(y, mo, d)) {
            return -1;
        }
        *ms = (days_from_civil(y, mo, d) * 86400 - ztime_offset_minutes() * 60) * 1000;
        return 0;
    }
    if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 || n != 19 ||
        !date_ok(y, mo, d) || h > 23 || mi > 59 || s > 60) {
        return -1;
    }
    const char *p = text + 19;
    int frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits < 3) {
                frac = frac * 10 + (*p - '0');
            }
        }
        if (digits == 0) {
            return -1;
        }
        for (; digits < 3; digits++) {
            frac *= 10;
        }
    }
    int off = 0;
    if (*p == 'Z' && p[1] == '\0') {
        off = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh = atoi(p + 1), om = atoi(p + 4);
        off = (*p == '-' ? -1 : 1) * (oh * 60 + om);
    } else {
        return -1;
    }
    *ms = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) - off * 60) * 1000 + frac;
    return 0;
}

int ztime_day_key(int64_t ms)
{
    ztime_parts_t p;
    ztime_local(ms, &p);
    return p.year * 10000 + p.month * 100 + p.day;
}

int ztime_month_key(int64_t ms)
{
    ztime_parts_t p;
    ztime_local(ms, &p);
    return p.year * 100 + p.month;
}

int ztime_year(int64_t ms)
{
    ztime_parts_t p;
    ztime_local(ms, &p);
    return p.year;
}
