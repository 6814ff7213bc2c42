/* store: one LMDB environment per service, with a sticky-error transaction.
 *
 * Straight-line code: call ztxn_put/ztxn_del/ztxn_get one after another; the
 * first failure is remembered in the transaction (ztxn_err) and every later
 * call on it is a no-op, so one check at commit is enough.
 *
 * Every environment has four runtime tables besides the service's own:
 *   outbox   seq (8 bytes big-endian) -> serialized zhili.v1.Event
 *   requests request_id               -> 8-byte big-endian ts_ms + serialized zhili.v1.Reply
 *   cursors  source name              -> 8-byte big-endian last applied seq
 *   meta     name                     -> value
 * Keys are byte strings; big-endian integers make byte order sort order.
 *
 * Errors: ZE_MAP_FULL when the map is full (the caller aborts, calls
 * zstore_grow with no transaction open, and retries); ZE_UNAVAILABLE when the
 * disk (or file-size limit) is full; ZE_INTERNAL for anything else. */
#ifndef ZHILI_STORE_H
#define ZHILI_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZSTORE_TABLES_MAX 32            /* service tables plus the four runtime tables */
#define ZSTORE_MAP_BYTES_INITIAL (64u << 20)
#define ZSTORE_MAP_BYTES_MAX_DEFAULT (64ull << 30)
#define ZSTORE_KEY_BYTES_MAX 511        /* LMDB's default key limit */
#define ZSTORE_REQUEST_ID_BYTES_MAX 200

typedef struct zstore zstore_t;
typedef struct ztxn ztxn_t;

/* A borrowed view of bytes inside the map: valid until the transaction ends
 * or writes to the same table. */
typedef struct {
    const void *data;
    size_t len;
} zval_t;

typedef struct {
    const char *dir;              /* created (mode 0750) when missing */
    const char *const *tables;    /* the service's own table names, NULL-terminated; may be NULL */
    size_t map_bytes_initial;     /* 0 = ZSTORE_MAP_BYTES_INITIAL */
    uint64_t map_bytes_max;       /* 0 = ZSTORE_MAP_BYTES_MAX_DEFAULT; grow stops there */
} zstore_options_t;

/* Open (creating when missing) the environment in opts->dir. On failure *out
 * is NULL and errbuf holds a sentence. The caller owns *out. */
int zstore_open(const zstore_options_t *opts, zstore_t **out, char *errbuf, size_t errbuf_len);

/* Close. Idempotent; nulls the caller's pointer. No transaction may be open. */
void zstore_destroy(zstore_t **self_p);

/* Index of a service table by name, for the ztxn_* calls; -1 when unknown. */
int zstore_table(const zstore_t *self, const char *name);

/* The runtime tables' indexes. */
enum { ZSTORE_OUTBOX = 0, ZSTORE_REQUESTS = 1, ZSTORE_CURSORS = 2, ZSTORE_META = 3 };

/* Double the map size, up to map_bytes_max. Call with no transaction open.
 * Returns 0, or ZE_UNAVAILABLE when the maximum is reached. */
int zstore_grow(zstore_t *self);

/* Current map size in bytes. */
uint64_t zstore_map_bytes(const zstore_t *self);

/* The bytes of data.mdb in use (up to LMDB's last page), and the file's size.
 * The file runs ahead of use: when less than half a step (a step: a quarter
 * of the use, 256 KiB to 64 MiB) is left past the last page, a commit first
 * writes zeros toward a whole step, at most 1 MiB of them, so
 * that commits overwrite pages instead of lengthening the file (store.c,
 * store_prealloc). Either is 0 when it cannot be read. */
uint64_t zstore_used_bytes(const zstore_t *self);
uint64_t zstore_file_bytes(const zstore_t *self);

/* Hot, consistent copy of the environment into directory `path` (must exist
 * and be empty), compacted (mdb_env_copy2 with MDB_CP_COMPACT).
 * Call with no read transaction open in this thread: the copy takes its own
 * (LMDB gives a thread one reader slot). ZE_INVALID when path is missing or
 * not empty. */
int zstore_backup(zstore_t *self, const char *path);

/* Hot, consistent copy of the environment in src_dir (a service's
 * $ZHILI_DATA/<name>/, usually open in the running service) into dest_dir,
 * compacted (mdb_env_copyfd2 with MDB_CP_COMPACT). For another process than
 * the service (zhilictl backup): the environment is opened read-only but as a
 * reader registered in its lock.mdb, so the service goes on writing and never
 * reuses a page the copy still reads. Never call it on an environment this
 * process has open (use zstore_backup): LMDB forbids opening one twice in a
 * process.
 *
 * dest_dir is created (mode 0750) when missing and must otherwise be an
 * empty directory; a backup never overwrites. The copy is written to
 * dest_dir/data.mdb.partial, fsynced, then renamed to data.mdb and the
 * directory fsynced: a data.mdb in dest_dir is always complete and durable.
 * On failure nothing is left behind but a directory that already existed.
 *
 * Returns 0 with *bytes_out the size of the copy; otherwise a sentence in
 * errbuf and ZE_NOT_FOUND (no environment in src_dir, or no parent
 * directory for dest_dir), ZE_INVALID (a path that is not a directory, or
 * dest_dir not empty), ZE_FORBIDDEN (permission denied), ZE_UNAVAILABLE
 * (disk full) or ZE_INTERNAL. */
int zstore_backup_dir(const char *src_dir, const char *dest_dir, uint64_t *bytes_out,
                      char *errbuf, size_t errbuf_len);

/* Begin a transaction. `write` false gives a read-only snapshot. Only one write
 * transaction may be open at a time (per process). Returns NULL only when memory
 * is exhausted; other failures are sticky in the returned transaction. */
ztxn_t *ztxn_begin(zstore_t *self, bool write);

/* Begin a child (nested) write transaction: its writes reach the parent only
 * when it commits, so a command that fails halfway changes nothing. While a
 * child is open the parent must not be used. */
ztxn_t *ztxn_begin_child(ztxn_t *parent);

/* Commit and free. Returns the sticky error if any (the transaction is then
 * aborted) or the commit's own error. A top-level write commit is durable
 * (fsync) when it returns 0. A failed child passes storage errors
 * (ZE_MAP_FULL, ZE_UNAVAILABLE, ZE_INTERNAL) on to its parent. Nulls *self_p. */
int ztxn_commit(ztxn_t **self_p);

/* Abort and free. Idempotent; nulls *self_p. Aborting a child leaves the
 * parent untouched. */
void ztxn_abort(ztxn_t **self_p);

/* The sticky error (0 when none) and a sentence about it. */
int ztxn_err(const ztxn_t *self);
const char *ztxn_errmsg(const ztxn_t *self);

/* Set the sticky error (for callers that detect storage problems themselves). */
void ztxn_fail(ztxn_t *self, int code, const char *msg);

void ztxn_put(ztxn_t *self, int table, const void *key, size_t key_len, const void *val,
              size_t val_len);
void ztxn_del(ztxn_t *self, int table, const void *key, size_t key_len);

/* 0 and *val set, ZE_NOT_FOUND (not sticky), or the sticky error. */
int ztxn_get(ztxn_t *self, int table, const void *key, size_t key_len, zval_t *val);

/* Call on_row for every key starting with prefix (all keys when prefix_len is
 * 0), in key order, starting at the first key >= start (NULL = the prefix).
 * Stops when on_row returns non-zero and returns that value; returns 0 at the
 * end or the sticky error. */
typedef int (*ztxn_row_fn)(void *ctx, zval_t key, zval_t val);
int ztxn_scan(ztxn_t *self, int table, const void *prefix, size_t prefix_len, const void *start,
              size_t start_len, void *ctx, ztxn_row_fn on_row);

/* Outbox. Last seq written (0 when empty), as this transaction sees it. */
uint64_t ztxn_outbox_last(ztxn_t *self);
/* Store event bytes under seq; seq must be ztxn_outbox_last() + 1 (asserted). */
void ztxn_outbox_put(ztxn_t *self, uint64_t seq, const void *event, size_t len);
/* 0 and *event set, ZE_NOT_FOUND, or the sticky error. */
int ztxn_outbox_get(ztxn_t *self, uint64_t seq, zval_t *event);

/* Idempotency table. 0 with the stored reply bytes, ZE_NOT_FOUND, or sticky. */
int ztxn_request_get(ztxn_t *self, const char *request_id, zval_t *reply, int64_t *ts_ms);
void ztxn_request_put(ztxn_t *self, const char *request_id, const void *reply, size_t len,
                      int64_t ts_ms);

/* Cursor table: last applied seq of a source (0 when none). */
uint64_t ztxn_cursor_get(ztxn_t *self, const char *source);
void ztxn_cursor_set(ztxn_t *self, const char *source, uint64_t seq);

/* Big-endian helpers for composite keys. */
void zstore_be64_put(uint8_t out[8], uint64_t v);
uint64_t zstore_be64_get(const uint8_t in[8]);

#endif
