/* store: the petitions service's LMDB tables and key codecs (docs/petitions.md,
 * "Storage"). Every key is bytes whose order is the order the scans need:
 *
 *   petitions  seq (8 bytes big-endian)                     -> Record (protobuf)
 *   tickets    hotline ticket id                             -> seq
 *   by_area    prefix "/" ~received_ms (8 BE) ~seq (8 BE)    -> ""   one row per level prefix
 *              of the location ("", 6, 9, 12, 15, 18 digits): newest first within an area
 *   inbox      unit "/" seq (8 BE)                           -> ""   open petitions of a unit
 *   due        deadline_ms (8 BE) kind ('s' | 'r') seq (8 BE) -> ""  the timer's work list
 *   counts     name                                          -> int64 (8 BE)
 *   units      area code                                     -> zhili.grid.Unit (the read model)
 *   qr         QR token                                      -> area code
 *
 * Writes go through the transaction's sticky error (common/store.h): callers
 * check ztxn_err once. */
#ifndef ZHILI_PETITIONS_STORE_H
#define ZHILI_PETITIONS_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/store.h"
#include "services/petitions/limits.h"
#include "zhili.pb-c.h"

#define ZPS_DUE_SIGN 's'
#define ZPS_DUE_REPLY 'r'
#define ZPS_SUFFIX_BYTES 16 /* ~received_ms and seq of a by_area key */
#define ZPS_DUE_KEY_BYTES 17

/* The service's own tables, NULL-terminated, for its zsvc spec. */
extern const char *const zps_tables[];

/* Table indexes in one open store. */
typedef struct {
    int petitions, tickets, by_area, inbox, due, counts, units, qr;
} zps_t;

/* Resolve the indexes (asserted to exist). */
void zps_init(zps_t *t, const zstore_t *store);

/* ---- petitions ---------------------------------------------------------- */

/* The next petition seq (meta "petitions.seq" + 1), stored. */
uint64_t zps_seq_next(ztxn_t *txn);

/* 0 with *out unpacked with alloc (NULL: malloc; free it then with
 * zhili__petitions__record__free_unpacked), ZE_NOT_FOUND, ZE_INTERNAL for a
 * damaged row, or the sticky error. */
int zps_record_get(ztxn_t *txn, const zps_t *t, uint64_t seq, ProtobufCAllocator *alloc,
                   Zhili__Petitions__Record **out);
void zps_record_put(ztxn_t *txn, const zps_t *t, const Zhili__Petitions__Record *r);

/* A ticket already pushed: 0 with *seq, or ZE_NOT_FOUND. */
int zps_ticket_get(ztxn_t *txn, const zps_t *t, const char *ticket, uint64_t *seq);
void zps_ticket_put(ztxn_t *txn, const zps_t *t, const char *ticket, uint64_t seq);

/* ---- indexes ------------------------------------------------------------ */

/* One by_area row per level prefix of `area`. */
void zps_area_index_put(ztxn_t *txn, const zps_t *t, const char *area, int64_t received_ms,
                        uint64_t seq);

/* The by_area key suffix of a petition, for cursors. */
void zps_area_suffix(int64_t received_ms, uint64_t seq, uint8_t out[ZPS_SUFFIX_BYTES]);

/* Rows of one index prefix (a level prefix, "" for all) newest first,
 * starting at the first suffix >= start (NULL: the newest). on_row gets the
 * seq and the suffix; returning non-zero stops the scan (that value is
 * returned). */
typedef int (*zps_area_row_fn)(void *ctx, uint64_t seq, const uint8_t suffix[ZPS_SUFFIX_BYTES]);
int zps_area_scan(ztxn_t *txn, const zps_t *t, const char *prefix,
                  const uint8_t start[ZPS_SUFFIX_BYTES], void *ctx, zps_area_row_fn on_row);

void zps_inbox_put(ztxn_t *txn, const zps_t *t, const char *unit, uint64_t seq);
void zps_inbox_del(ztxn_t *txn, const zps_t *t, const char *unit, uint64_t seq);
/* A unit's inbox oldest first from seq `from` (0: the start). */
typedef int (*zps_seq_fn)(void *ctx, uint64_t seq);
int zps_inbox_scan(ztxn_t *txn, const zps_t *t, const char *unit, uint64_t from, void *ctx,
                   zps_seq_fn on_row);

void zps_due_put(ztxn_t *txn, const zps_t *t, int64_t deadline_ms, char kind, uint64_t seq);
void zps_due_del(ztxn_t *txn, const zps_t *t, int64_t deadline_ms, char kind, uint64_t seq);
/* Due rows with deadline_ms < now_ms, earliest first. */
typedef int (*zps_due_fn)(void *ctx, int64_t deadline_ms, char kind, uint64_t seq);
int zps_due_scan(ztxn_t *txn, const zps_t *t, int64_t now_ms, void *ctx, zps_due_fn on_row);

/* ---- counters ----------------------------------------------------------- */

int64_t zps_count_get(ztxn_t *txn, const zps_t *t, const char *name);
void zps_count_add(ztxn_t *txn, const zps_t *t, const char *name, int64_t delta);

/* ---- the grid read model ------------------------------------------------ */

bool zps_unit_known(ztxn_t *txn, const zps_t *t, const char *code);
/* 0 with *out (free with zhili__grid__unit__free_unpacked), or ZE_NOT_FOUND. */
int zps_unit_get(ztxn_t *txn, const zps_t *t, const char *code, Zhili__Grid__Unit **out);
void zps_unit_put(ztxn_t *txn, const zps_t *t, const Zhili__Grid__Unit *u);
void zps_unit_del(ztxn_t *txn, const zps_t *t, const char *code);
/* Every unit in code order; on_row gets the packed Unit bytes. */
typedef int (*zps_unit_fn)(void *ctx, const void *data, size_t len);
int zps_unit_scan(ztxn_t *txn, const zps_t *t, void *ctx, zps_unit_fn on_row);

/* QR token -> unit code: 0 with code (ZPET_AREA_BUF bytes), or ZE_NOT_FOUND. */
int zps_qr_get(ztxn_t *txn, const zps_t *t, const char *qr, char *code);
void zps_qr_put(ztxn_t *txn, const zps_t *t, const char *qr, const char *code);
void zps_qr_del(ztxn_t *txn, const zps_t *t, const char *qr);

#endif
