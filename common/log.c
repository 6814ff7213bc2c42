#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* Process-wide settings, written once by zlog_init before any thread starts. */
static char log_service[64] = "zhili";
static int log_level = ZLOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void zlog_init(const char *service, int level)
{
    snprintf(log_service, sizeof log_service, "%s", service);
    log_level = level;
}

int zlog_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static void put_value(FILE *f, const char *v)
{
    if (v == NULL) {
        v = "";
    }
    if (*v != '\0' && strpbrk(v, " \"=\t\n") == NULL) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') {
            fputc('\\', f);
            fputc(*p, f);
        } else if (*p == '\n') {
            fputs("\\n", f);
        } else {
            fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void put_head(FILE *f, int level, const char *event)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    time_t secs = tv.tv_sec;
    struct tm tm;
    gmtime_r(&secs, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(f, "ts=%s.%03dZ level=%s service=%s event=", ts, (int)(tv.tv_usec / 1000),
            level_names[level], log_service);
    put_value(f, event);
}

void zlog(int level, const char *event, ...)
{
    if (level < log_level) {
        return;
    }
    /* Build the line in memory so concurrent threads never interleave. */
    char *line = NULL;
    size_t line_len = 0;
    FILE *f = open_memstream(&line, &line_len);
    if (f == NULL) {
        return;
    }
    put_head(f, level, event);
    va_list ap;
    va_start(ap, event);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL) {
            break;
        }
        const char *v = va_arg(ap, const char *);
        fprintf(f, " %s=", k);
        put_value(f, v);
    }
    va_end(ap);
    fputc('\n', f);
    fclose(f);
    fwrite(line, 1, line_len, stderr);
    free(line);
}

void zlogf(int level, const char *event, const char *fmt, ...)
{
    if (level < log_level) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    zlog(level, event, "msg", msg, NULL);
}
