/* store: the reporting service's LMDB tables and key codecs (docs/reporting.md,
 * "Storage"). Keys are big-endian composites, so byte order is the order the
 * scans need. Every key of the projection starts with the generation byte g
 * (a rebuild switches to a new generation at once; the timer removes the
 * old rows in bounded steps):
 *
 *   counters  g area(18) period(4) measure(1)                 -> int64 (8 BE)   flows
 *   stocks    g area(18) measure(1) month(4)                  -> int64 (8 BE)   deltas
 *   areas     g period(4) level(1) area(18)                   -> ""   areas with figures
 *   refs      g month(4) measure(1) area(18) source(1) seq(8) -> ts_ms(8 BE) amount(8 BE) type
 *   names     g level(1) area(18)                             -> the unit's name (grid)
 *   pets      g petition id                                   -> first-time flags (1 byte)
 *   execs     g area(18) month(4)                             -> budget(8 BE) actual(8 BE)
 *   alerts    rule name 0x00 area                             -> zhili.reporting.Alert
 *
 * area(18) is the code's digits padded with 0x00 ("" is 18 zero bytes), so a
 * prefix of digits scans every area under it. period(4) is 202610 for a
 * month, 2026 for a year. Counters are kept for the event's area and every
 * level above (zrep_rollup), references only for the event's own area: a
 * parent's drill-down is a prefix scan over its children.
 *
 * The runtime's meta table holds "reporting.gen" (1 byte) and, while a
 * rebuild catches up, "reporting.rebuild.<source>" (the cursor to reach).
 *
 * Writes go through the transaction's sticky error (common/store.h): callers
 * check ztxn_err once. */
#ifndef ZHILI_REPORTING_STORE_H
#define ZHILI_REPORTING_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/store.h"
#include "services/reporting/reporting.h"

#define ZRS_AREA_BYTES 18
#define ZRS_REF_KEY_BYTES (1 + 4 + 1 + ZRS_AREA_BYTES + 1 + 8)
#define ZRS_SOURCES 4

/* The service's own tables, NULL-terminated, for its zsvc spec. */
extern const char *const zrs_tables[];

typedef struct {
    int counters, stocks, areas, refs, names, pets, execs, alerts;
} zrs_t;

/* Resolve the indexes (asserted to exist). */
void zrs_init(zrs_t *t, const zstore_t *store);

/* Sources consumed, as one byte in reference keys: 1 petitions, 2 grid,
 * 3 funds, 4 budgets; 0 for any other. */
uint8_t zrs_source_id(const char *source);
const char *zrs_source_name(uint8_t id);

/* ---- generations -------------------------------------------------------- */

/* The current generation (1 in a new store). */
uint8_t zrs_gen(ztxn_t *txn);
void zrs_gen_set(ztxn_t *txn, uint8_t gen);
uint8_t zrs_gen_next(uint8_t gen);

/* Does any projection table hold rows of generation g? */
bool zrs_gen_used(ztxn_t *txn, const zrs_t *t, uint8_t g);

/* Remove up to `budget` rows of generations other than `gen`; returns how
 * many were removed (0: none left), or the sticky error. */
int zrs_purge(ztxn_t *txn, const zrs_t *t, uint8_t gen, zarena_t *arena, int budget);

/* Rebuild targets: the cursor a source must reach before alerts are judged
 * again. 0 when none. */
uint64_t zrs_target_get(ztxn_t *txn, const char *source);
void zrs_target_set(ztxn_t *txn, const char *source, uint64_t seq);

/* ---- counters ----------------------------------------------------------- */

/* Add amount to a flow measure of (area, period); a new counter also lists
 * the area in the areas index of the period. */
void zrs_counter_add(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area,
                     zrep_period_t period, uint8_t measure, int64_t amount);

/* Add amount to a stock measure's delta of (area, month); lists the area in
 * the month's and the year's index. */
void zrs_stock_add(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area, int month,
                   uint8_t measure, int64_t amount);

/* Every measure of (area, period): flows of the period, stocks summed over
 * every month up to the period's end. measures is zeroed first. */
int zrs_measures_load(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area,
                      zrep_period_t period, int64_t measures[ZREP_MEASURES_MAX]);

/* Areas listed for (period, level) under prefix (digits), in code order;
 * on_area returning non-zero stops the scan (that value is returned). */
typedef int (*zrs_area_fn)(void *ctx, const char *area);
int zrs_areas_scan(ztxn_t *txn, const zrs_t *t, uint8_t gen, zrep_period_t period,
                   zarea_level_t level, const char *prefix, void *ctx, zrs_area_fn on_area);

/* ---- drill-down references ---------------------------------------------- */

typedef struct {
    uint8_t key[ZRS_REF_KEY_BYTES - 1]; /* the key without the generation: the cursor */
    int month;
    uint8_t measure;
    char area[ZREP_AREA_BUF];
    uint8_t source;
    uint64_t seq;
    int64_t ts_ms;
    int64_t amount;
    char type[ZREP_TYPE_BYTES_MAX + 1];
} zrs_ref_t;

void zrs_ref_put(ztxn_t *txn, const zrs_t *t, uint8_t gen, int month, uint8_t measure,
                 const char *area, uint8_t source, uint64_t seq, int64_t ts_ms, int64_t amount,
                 const char *type);

/* References of (month, measure) whose area starts with prefix, in key order,
 * from the first key after `after` (NULL: from the start; it is the key of a
 * zrs_ref_t). on_ref returning non-zero stops (that value is returned). */
typedef int (*zrs_ref_fn)(void *ctx, const zrs_ref_t *ref);
int zrs_refs_scan(ztxn_t *txn, const zrs_t *t, uint8_t gen, int month, uint8_t measure,
                  const char *prefix, const uint8_t *after, void *ctx, zrs_ref_fn on_ref);

/* Decode a cursor key (ZRS_REF_KEY_BYTES - 1 bytes); -1 when malformed. */
int zrs_ref_key_parse(const uint8_t *key, zrs_ref_t *out);

/* ---- names of areas (grid's units) -------------------------------------- */

void zrs_name_put(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area, const char *name);
void zrs_name_del(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area);
/* The name into out ("" when unknown). */
void zrs_name_get(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area, char *out,
                  size_t cap);
int zrs_names_scan(ztxn_t *txn, const zrs_t *t, uint8_t gen, zarea_level_t level,
                   const char *prefix, void *ctx, zrs_area_fn on_area);

/* ---- open petitions' first-time flags ----------------------------------- */

uint8_t zrs_pet_get(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *id);
void zrs_pet_put(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *id, uint8_t flags);
void zrs_pet_del(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *id);

/* ---- budget execution counted per (area, month) ------------------------- */

/* What was counted of the area's month (202610) from budgets'
 * execution_published; zeros for a month never published. */
void zrs_exec_get(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area, int month,
                  zrep_exec_t *out);
void zrs_exec_put(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area, int month,
                  const zrep_exec_t *counted);

/* ---- alert states (kept across rebuilds) -------------------------------- */

/* 0 with the packed Alert in *val, ZE_NOT_FOUND, or the sticky error. */
int zrs_alert_get(ztxn_t *txn, const zrs_t *t, const char *rule, const char *area, zval_t *val);
void zrs_alert_put(ztxn_t *txn, const zrs_t *t, const char *rule, const char *area,
                   const void *packed, size_t len);
/* Every state (of one rule when rule is not NULL), in key order. */
typedef int (*zrs_alert_fn)(void *ctx, const char *rule, const char *area, zval_t packed);
int zrs_alerts_scan(ztxn_t *txn, const zrs_t *t, const char *rule, void *ctx,
                    zrs_alert_fn on_alert);

#endif
