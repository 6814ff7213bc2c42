/* caltime: the district's local calendar. Times are int64 ms since the epoch
 * (UTC); days, months and years are local (Asia/Shanghai, +08:00, no daylight
 * saving; ZHILI_TZ="+HH:MM" for elsewhere): a petition received at 00:30 on
 * 1 December Beijing time belongs to December. JSON shows times as RFC 3339
 * with the local offset: 2026-11-26T12:00:00+08:00. */
#ifndef ZHILI_CALTIME_H
#define ZHILI_CALTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZTIME_RFC3339_BYTES 32

/* The offset in minutes east of UTC, from ZHILI_TZ (default +08:00); read once. */
int ztime_offset_minutes(void);

/* "2026-11-26T12:00:00+08:00" (milliseconds shown only when not zero). */
void ztime_format(int64_t ms, char out[ZTIME_RFC3339_BYTES]);

/* Parse RFC 3339 (with Z or an offset; fractional seconds allowed) or a
 * local date "2026-11-26" (local midnight). 0 or -1. */
int ztime_parse(const char *text, int64_t *ms);

/* Local calendar parts. */
typedef struct {
    int year, month, day, hour, minute, second, weekday; /* weekday 0 = Sunday */
} ztime_parts_t;
void ztime_local(int64_t ms, ztime_parts_t *out);

/* Local period keys: 20261126, 202611, 2026. */
int ztime_day_key(int64_t ms);
int ztime_month_key(int64_t ms);
int ztime_year(int64_t ms);

/* Start of a local month (ms), and of the next one. */
int64_t ztime_month_start(int year, int month);

#endif
