#include "common/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

void zcfg_fail(const char *name, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "zhili: %s: %s\n", name, msg);
    exit(2);
}

const char *zcfg_str(const char *name, const char *def)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        return def;
    }
    if (strlen(v) > ZCFG_VALUE_BYTES_MAX) {
        zcfg_fail(name, "value is longer than %d bytes", ZCFG_VALUE_BYTES_MAX);
    }
    return v;
}

int64_t zcfg_int(const char *name, int64_t def, int64_t min, int64_t max)
{
    const char *v = zcfg_str(name, NULL);
    if (v == NULL) {
        return def;
    }
    errno = 0;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < min || n > max) {
        zcfg_fail(name, "expected an integer from %lld to %lld, got \"%s\"", (long long)min,
                  (long long)max, v);
    }
    return n;
}

bool zcfg_bool(const char *name, bool def)
{
    const char *v = zcfg_str(name, NULL);
    if (v == NULL) {
        return def;
    }
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            return false;
        }
    }
    zcfg_fail(name, "expected 1/0, true/false, yes/no or on/off, got \"%s\"", v);
}

int zcfg_log_level(void)
{
    const char *v = zcfg_str("ZHILI_LOG", "info");
    int level = zlog_level_parse(v);
    if (level < 0) {
        zcfg_fail("ZHILI_LOG", "expected debug, info, warn or error, got \"%s\"", v);
    }
    return level;
}

void zcfg_common_load(zcfg_common_t *cfg)
{
    cfg->broker = zcfg_str("ZHILI_BROKER", "tcp://127.0.0.1:7100");
    cfg->events_pub = zcfg_str("ZHILI_EVENTS_PUB", "tcp://127.0.0.1:7101");
    cfg->events_sub = zcfg_str("ZHILI_EVENTS_SUB", "tcp://127.0.0.1:7102");
    cfg->data = zcfg_str("ZHILI_DATA", "./data");
    cfg->heartbeat_ms = zcfg_int("ZHILI_HEARTBEAT_MS", 1000, 50, 60000);
}

const char *zcfg_text(const char *name, const char *def, char *buf, size_t cap)
{
    const char *value = zcfg_str(name, def);
    if (value[0] != '@') {
        return value;
    }
    FILE *f = fopen(value + 1, "r");
    if (f == NULL) {
        zcfg_fail(name, "cannot open the file \"%s\"", value + 1);
    }
    size_t n = fread(buf, 1, cap - 1, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    if (more) {
        zcfg_fail(name, "the file \"%s\" is larger than %zu bytes", value + 1, cap - 1);
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n) != NULL) {
        zcfg_fail(name, "the file \"%s\" is not text", value + 1);
    }
    return buf;
}
