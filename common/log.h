/* log: one logfmt line per event on stderr.
 *   ts=2026-11-26T12:00:00.123+08:00 level=info service=funds event=started key=value ...
 * Values with spaces, quotes or '=' are quoted. Secrets are never passed here. */
#ifndef ZHILI_LOG_H
#define ZHILI_LOG_H

enum { ZLOG_DEBUG = 0, ZLOG_INFO = 1, ZLOG_WARN = 2, ZLOG_ERROR = 3 };

/* Set once at start (from ZHILI_LOG); service names the process. */
void zlog_init(const char *service, int level);

/* Parse "debug|info|warn|error"; -1 when unknown. */
int zlog_level_parse(const char *name);

/* `event` is a short snake_case name; then pairs of key, value strings ended by
 * NULL: zlog(ZLOG_INFO, "started", "broker", endpoint, NULL). */
void zlog(int level, const char *event, ...);

/* As zlog, with a printf-formatted `msg` field. */
void zlogf(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
