#include "common/area.h"

#include <string.h>

static const size_t level_len[] = {0, 6, 9, 12, 15, 18};

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

zarea_level_t zarea_level(const char *code)
{
    size_t n = strlen(code);
    for (int l = ZAREA_DISTRICT; l <= ZAREA_BUILDING; l++) {
        if (n == level_len[l]) {
            return digits(code, n) ? (zarea_level_t)l : ZAREA_NONE;
        }
    }
    return ZAREA_NONE;
}

bool zarea_valid(const char *code)
{
    return zarea_level(code) != ZAREA_NONE;
}

bool zarea_prefix_valid(const char *prefix)
{
    size_t n = strlen(prefix);
    return n <= ZAREA_BYTES_MAX && digits(prefix, n);
}

bool zarea_within(const char *scope, const char *area)
{
    size_t n = strlen(scope);
    return strlen(area) >= n && strncmp(scope, area, n) == 0;
}

void zarea_at_level(const char *code, zarea_level_t level, char *out)
{
    size_t want = level_len[level];
    size_t n = strlen(code);
    if (level == ZAREA_NONE || n < want) {
        out[0] = '\0';
        return;
    }
    memcpy(out, code, want);
    out[want] = '\0';
}

void zarea_parent(const char *code, char *out)
{
    zarea_level_t l = zarea_level(code);
    zarea_at_level(code, l > ZAREA_DISTRICT ? (zarea_level_t)(l - 1) : ZAREA_NONE, out);
}

const char *zarea_level_name(zarea_level_t level)
{
    static const char *const names[] = {"", "区县", "街道", "社区", "网格", "楼栋"};
    return names[level];
}
