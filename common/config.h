/* config: every setting comes from a ZHILI_* environment variable, parsed once
 * at start. A bad value stops the process with a message naming the variable,
 * what it expects and what it got (exit status 2). docs/operations.md lists
 * every variable. */
#ifndef ZHILI_CONFIG_H
#define ZHILI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZCFG_VALUE_BYTES_MAX 512

/* The value of `name`, or `def` when unset or empty. Exits when longer than
 * ZCFG_VALUE_BYTES_MAX. Borrowed from the environment. */
const char *zcfg_str(const char *name, const char *def);
/* A text setting given inline or as "@/path/to/file" (read into buf, at most
 * cap - 1 bytes): the value, or fail-fast naming the file that cannot be
 * read, is too large or is not text. */
const char *zcfg_text(const char *name, const char *def, char *buf, size_t cap);

/* Integer in [min, max]; exits naming the variable when malformed or out of range. */
int64_t zcfg_int(const char *name, int64_t def, int64_t min, int64_t max);

/* "1", "true", "yes", "on" / "0", "false", "no", "off"; anything else exits. */
bool zcfg_bool(const char *name, bool def);

/* Log level from ZHILI_LOG (debug|info|warn|error, default info). */
int zcfg_log_level(void);

/* The endpoints every process shares, with one-machine defaults. */
typedef struct {
    const char *broker;      /* ZHILI_BROKER      tcp://127.0.0.1:7100 (commands) */
    const char *events_pub;  /* ZHILI_EVENTS_PUB  tcp://127.0.0.1:7101 (producers connect) */
    const char *events_sub;  /* ZHILI_EVENTS_SUB  tcp://127.0.0.1:7102 (subscribers connect) */
    const char *data;        /* ZHILI_DATA        ./data */
    int64_t heartbeat_ms;    /* ZHILI_HEARTBEAT_MS 1000 */
} zcfg_common_t;

void zcfg_common_load(zcfg_common_t *cfg);

/* Exit with status 2 after printing "zhili: NAME: reason". */
_Noreturn void zcfg_fail(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
