/* The reporting service's tables and key codecs (store.h has the layouts). */
#include "services/reporting/store.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"

const char *const zrs_tables[] = {"counters", "stocks", "areas",  "refs", "names",
                                  "pets",     "execs",  "alerts", NULL};

/* The projection's tables, purged by generation; alerts are not among them. */
#define PROJECTION_TABLES 7

#define META_GEN "reporting.gen"
#define META_TARGET "reporting.rebuild."

void zrs_init(zrs_t *t, const zstore_t *store)
{
    t->counters = zstore_table(store, "counters");
    t->stocks = zstore_table(store, "stocks");
    t->areas = zstore_table(store, "areas");
    t->refs = zstore_table(store, "refs");
    t->names = zstore_table(store, "names");
    t->pets = zstore_table(store, "pets");
    t->execs = zstore_table(store, "execs");
    t->alerts = zstore_table(store, "alerts");
    ZASSERT(t->counters >= 0 && t->stocks >= 0 && t->areas >= 0 && t->refs >= 0 && t->names >= 0 &&
            t->pets >= 0 && t->execs >= 0 && t->alerts >= 0);
}

static const char *const source_names[ZRS_SOURCES + 1] = {"", "petitions", "grid", "funds",
                                                          "budgets"};

uint8_t zrs_source_id(const char *source)
{
    for (uint8_t i = 1; i <= ZRS_SOURCES; i++) {
        if (strcmp(source, source_names[i]) == 0) {
            return i;
        }
    }
    return 0;
}

const char *zrs_source_name(uint8_t id)
{
    return id <= ZRS_SOURCES ? source_names[id] : "";
}

/* ---- key pieces --------------------------------------------------------- */

static void be32_put(uint8_t *out, uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

static uint32_t be32_get(const uint8_t *in)
{
    return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

static void area_put(uint8_t *out, const char *area)
{
    size_t n = strlen(area);
    ZASSERT(n <= ZRS_AREA_BYTES);
    memset(out, 0, ZRS_AREA_BYTES);
    memcpy(out, area, n);
}

static void area_get(const uint8_t *in, char out[ZREP_AREA_BUF])
{
    size_t n = 0;
    while (n < ZRS_AREA_BYTES && in[n] != 0) {
        out[n] = (char)in[n];
        n++;
    }
    out[n] = '\0';
}

static int64_t i64_get(zval_t v)
{
    return v.len == 8 ? (int64_t)zstore_be64_get(v.data) : 0;
}

static uint8_t level_of(const char *area)
{
    return area[0] == '\0' ? 0 : (uint8_t)zarea_level(area);
}

/* ---- generations -------------------------------------------------------- */

uint8_t zrs_gen(ztxn_t *txn)
{
    zval_t v;
    if (ztxn_get(txn, ZSTORE_META, META_GEN, strlen(META_GEN), &v) == 0 && v.len == 1) {
        return *(const uint8_t *)v.data;
    }
    return 1;
}

void zrs_gen_set(ztxn_t *txn, uint8_t gen)
{
    ztxn_put(txn, ZSTORE_META, META_GEN, strlen(META_GEN), &gen, 1);
}

uint8_t zrs_gen_next(uint8_t gen)
{
    return (uint8_t)(gen == 255 ? 1 : gen + 1);
}

static void projection(const zrs_t *t, int out[PROJECTION_TABLES])
{
    int v[PROJECTION_TABLES] = {t->counters, t->stocks, t->areas, t->refs,
                                t->names,    t->pets,   t->execs};
    memcpy(out, v, sizeof v);
}

static int on_any(void *ctx, zval_t key, zval_t val)
{
    (void)ctx;
    (void)key;
    (void)val;
    return 1;
}

bool zrs_gen_used(ztxn_t *txn, const zrs_t *t, uint8_t g)
{
    int tables[PROJECTION_TABLES];
    projection(t, tables);
    for (int i = 0; i < PROJECTION_TABLES; i++) {
        if (ztxn_scan(txn, tables[i], &g, 1, NULL, 0, NULL, on_any) == 1) {
            return true;
        }
    }
    return false;
}

typedef struct {
    zarena_t *arena;
    uint8_t gen;
    uint8_t **keys;
    size_t *lens;
    int count, budget;
} purge_t;

static int on_old(void *ctx, zval_t key, zval_t val)
{
    (void)val;
    purge_t *p = ctx;
    if (key.len == 0 || ((const uint8_t *)key.data)[0] == p->gen || p->count == p->budget) {
        return 1; /* the current generation starts here, or enough for this tick */
    }
    p->keys[p->count] = zarena_alloc(p->arena, key.len);
    memcpy(p->keys[p->count], key.data, key.len);
    p->lens[p->count++] = key.len;
    return 0;
}

int zrs_purge(ztxn_t *txn, const zrs_t *t, uint8_t gen, zarena_t *arena, int budget)
{
    int tables[PROJECTION_TABLES];
    projection(t, tables);
    int removed = 0;
    for (int i = 0; i < PROJECTION_TABLES && removed < budget; i++) {
        purge_t p = {arena, gen, NULL, NULL, 0, budget - removed};
        p.keys = zarena_alloc(arena, (size_t)p.budget * sizeof *p.keys);
        p.lens = zarena_alloc(arena, (size_t)p.budget * sizeof *p.lens);
        /* Older generations sort before the current one, newer after it. */
        uint8_t low = 0, high = (uint8_t)(gen + 1);
        ztxn_scan(txn, tables[i], NULL, 0, &low, 1, &p, on_old);
        if (gen < 255) {
            ztxn_scan(txn, tables[i], NULL, 0, &high, 1, &p, on_old);
        }
        for (int k = 0; k < p.count; k++) {
            ztxn_del(txn, tables[i], p.keys[k], p.lens[k]);
        }
        removed += p.count;
    }
    int rc = ztxn_err(txn);
    return rc != 0 ? rc : removed;
}

uint64_t zrs_target_get(ztxn_t *txn, const char *source)
{
    char name[64];
    snprintf(name, sizeof name, META_TARGET "%s", source);
    zval_t v;
    if (ztxn_get(txn, ZSTORE_META, name, strlen(name), &v) == 0 && v.len == 8) {
        return zstore_be64_get(v.data);
    }
    return 0;
}

void zrs_target_set(ztxn_t *txn, const char *source, uint64_t seq)
{
    char name[64];
    snprintf(name, sizeof name, META_TARGET "%s", source);
    if (seq == 0) {
        ztxn_del(txn, ZSTORE_META, name, strlen(name));
        return;
    }
    uint8_t v[8];
    zstore_be64_put(v, seq);
    ztxn_put(txn, ZSTORE_META, name, strlen(name), v, sizeof v);
}

/* ---- counters ----------------------------------------------------------- */

static void index_put(ztxn_t *txn, const zrs_t *t, uint8_t gen, int period, const char *area)
{
    uint8_t key[1 + 4 + 1 + ZRS_AREA_BYTES];
    key[0] = gen;
    be32_put(key + 1, (uint32_t)period);
    key[5] = level_of(area);
    area_put(key + 6, area);
    ztxn_put(txn, t->areas, key, sizeof key, "", 0);
}

/* Add to the int64 under key; true when the row is new. */
static bool add_at(ztxn_t *txn, int table, const uint8_t *key, size_t len, int64_t amount)
{
    zval_t v;
    bool fresh = ztxn_get(txn, table, key, len, &v) != 0;
    int64_t value = (fresh ? 0 : i64_get(v)) + amount;
    uint8_t out[8];
    zstore_be64_put(out, (uint64_t)value);
    ztxn_put(txn, table, key, len, out, sizeof out);
    return fresh;
}

void zrs_counter_add(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area,
                     zrep_period_t period, uint8_t measure, int64_t amount)
{
    uint8_t key[1 + ZRS_AREA_BYTES + 4 + 1];
    key[0] = gen;
    area_put(key + 1, area);
    be32_put(key + 1 + ZRS_AREA_BYTES, (uint32_t)period.key);
    key[1 + ZRS_AREA_BYTES + 4] = measure;
    if (add_at(txn, t->counters, key, sizeof key, amount)) {
        index_put(txn, t, gen, period.key, area);
    }
}

void zrs_stock_add(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area, int month,
                   uint8_t measure, int64_t amount)
{
    uint8_t key[1 + ZRS_AREA_BYTES + 1 + 4];
    key[0] = gen;
    area_put(key + 1, area);
    key[1 + ZRS_AREA_BYTES] = measure;
    be32_put(key + 2 + ZRS_AREA_BYTES, (uint32_t)month);
    if (add_at(txn, t->stocks, key, sizeof key, amount)) {
        index_put(txn, t, gen, month, area);
        index_put(txn, t, gen, month / 100, area);
    }
}

static int on_flow(void *ctx, zval_t key, zval_t val)
{
    int64_t *measures = ctx;
    uint8_t m = ((const uint8_t *)key.data)[key.len - 1];
    if (m < ZREP_MEASURES_MAX && !zrep_measure_is_stock(m)) {
        measures[m] = i64_get(val);
    }
    return 0;
}

typedef struct {
    int last_month;
    int64_t sum;
} stock_sum_t;

static int on_stock(void *ctx, zval_t key, zval_t val)
{
    stock_sum_t *s = ctx;
    if ((int)be32_get((const uint8_t *)key.data + key.len - 4) > s->last_month) {
        return 1;
    }
    s->sum += i64_get(val);
    return 0;
}

int zrs_measures_load(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area,
                      zrep_period_t period, int64_t measures[ZREP_MEASURES_MAX])
{
    memset(measures, 0, ZREP_MEASURES_MAX * sizeof *measures);
    uint8_t key[1 + ZRS_AREA_BYTES + 4];
    key[0] = gen;
    area_put(key + 1, area);
    be32_put(key + 1 + ZRS_AREA_BYTES, (uint32_t)period.key);
    ztxn_scan(txn, t->counters, key, sizeof key, NULL, 0, measures, on_flow);
    static const uint8_t stocks[] = {ZREP_M_KEYPERSONS, ZREP_M_FUND_BALANCE, ZREP_M_QUERIES_OPEN};
    for (size_t i = 0; i < ZARRAY_LEN(stocks); i++) {
        key[1 + ZRS_AREA_BYTES] = stocks[i];
        stock_sum_t s = {zrep_period_last_month(period), 0};
        ztxn_scan(txn, t->stocks, key, 2 + ZRS_AREA_BYTES, NULL, 0, &s, on_stock);
        measures[stocks[i]] = s.sum;
    }
    return ztxn_err(txn);
}

typedef struct {
    void *ctx;
    zrs_area_fn on_area;
} area_scan_t;

static int on_area_key(void *ctx, zval_t key, zval_t val)
{
    (void)val;
    area_scan_t *s = ctx;
    char area[ZREP_AREA_BUF];
    area_get((const uint8_t *)key.data + key.len - ZRS_AREA_BYTES, area);
    return s->on_area(s->ctx, area);
}

int zrs_areas_scan(ztxn_t *txn, const zrs_t *t, uint8_t gen, zrep_period_t period,
                   zarea_level_t level, const char *prefix, void *ctx, zrs_area_fn on_area)
{
    uint8_t key[1 + 4 + 1 + ZRS_AREA_BYTES];
    size_t n = strlen(prefix);
    ZASSERT(n <= ZRS_AREA_BYTES);
    key[0] = gen;
    be32_put(key + 1, (uint32_t)period.key);
    key[5] = (uint8_t)level;
    memcpy(key + 6, prefix, n);
    area_scan_t s = {ctx, on_area};
    return ztxn_scan(txn, t->areas, key, 6 + n, NULL, 0, &s, on_area_key);
}

/* ---- drill-down references ---------------------------------------------- */

static void ref_key(uint8_t key[ZRS_REF_KEY_BYTES], uint8_t gen, int month, uint8_t measure,
                    const char *area, uint8_t source, uint64_t seq)
{
    key[0] = gen;
    be32_put(key + 1, (uint32_t)month);
    key[5] = measure;
    area_put(key + 6, area);
    key[6 + ZRS_AREA_BYTES] = source;
    zstore_be64_put(key + 7 + ZRS_AREA_BYTES, seq);
}

void zrs_ref_put(ztxn_t *txn, const zrs_t *t, uint8_t gen, int month, uint8_t measure,
                 const char *area, uint8_t source, uint64_t seq, int64_t ts_ms, int64_t amount,
                 const char *type)
{
    uint8_t key[ZRS_REF_KEY_BYTES];
    ref_key(key, gen, month, measure, area, source, seq);
    uint8_t val[16 + ZREP_TYPE_BYTES_MAX];
    size_t tn = strlen(type);
    if (tn > ZREP_TYPE_BYTES_MAX) {
        tn = ZREP_TYPE_BYTES_MAX;
    }
    zstore_be64_put(val, (uint64_t)ts_ms);
    zstore_be64_put(val + 8, (uint64_t)amount);
    memcpy(val + 16, type, tn);
    ztxn_put(txn, t->refs, key, sizeof key, val, 16 + tn);
}

int zrs_ref_key_parse(const uint8_t *key, zrs_ref_t *out)
{
    /* key: month(4) measure(1) area(18) source(1) seq(8) */
    memset(out, 0, sizeof *out);
    memcpy(out->key, key, sizeof out->key);
    out->month = (int)be32_get(key);
    out->measure = key[4];
    area_get(key + 5, out->area);
    out->source = key[5 + ZRS_AREA_BYTES];
    out->seq = zstore_be64_get(key + 6 + ZRS_AREA_BYTES);
    size_t n = strlen(out->area);
    for (size_t i = n; i < ZRS_AREA_BYTES; i++) {
        if (key[5 + i] != 0) {
            return -1;
        }
    }
    bool area_ok = n == 0 || zarea_valid(out->area);
    return out->month >= ZREP_YEAR_MIN * 100 && out->month % 100 <= 12 && area_ok &&
                   out->source >= 1 && out->source <= ZRS_SOURCES && out->seq > 0
               ? 0
               : -1;
}

typedef struct {
    void *ctx;
    zrs_ref_fn on_ref;
    const uint8_t *after;
} ref_scan_t;

static int on_ref_row(void *ctx, zval_t key, zval_t val)
{
    ref_scan_t *s = ctx;
    if (key.len != ZRS_REF_KEY_BYTES || val.len < 16) {
        return 0; /* not a reference this code wrote */
    }
    const uint8_t *k = key.data;
    if (s->after != NULL && memcmp(k + 1, s->after, ZRS_REF_KEY_BYTES - 1) == 0) {
        return 0; /* the cursor's own row: the page before ended with it */
    }
    zrs_ref_t r;
    zrs_ref_key_parse(k + 1, &r);
    const uint8_t *v = val.data;
    r.ts_ms = (int64_t)zstore_be64_get(v);
    r.amount = (int64_t)zstore_be64_get(v + 8);
    size_t tn = val.len - 16 > ZREP_TYPE_BYTES_MAX ? ZREP_TYPE_BYTES_MAX : val.len - 16;
    memcpy(r.type, v + 16, tn);
    r.type[tn] = '\0';
    return s->on_ref(s->ctx, &r);
}

int zrs_refs_scan(ztxn_t *txn, const zrs_t *t, uint8_t gen, int month, uint8_t measure,
                  const char *prefix, const uint8_t *after, void *ctx, zrs_ref_fn on_ref)
{
    uint8_t key[ZRS_REF_KEY_BYTES];
    size_t n = strlen(prefix);
    ZASSERT(n <= ZRS_AREA_BYTES);
    key[0] = gen;
    be32_put(key + 1, (uint32_t)month);
    key[5] = measure;
    memcpy(key + 6, prefix, n);
    uint8_t start[ZRS_REF_KEY_BYTES];
    if (after != NULL) {
        start[0] = gen;
        memcpy(start + 1, after, ZRS_REF_KEY_BYTES - 1);
    }
    ref_scan_t s = {ctx, on_ref, after};
    return ztxn_scan(txn, t->refs, key, 6 + n, after ? start : NULL, after ? sizeof start : 0, &s,
                     on_ref_row);
}

/* ---- names -------------------------------------------------------------- */

static void name_key(uint8_t key[2 + ZRS_AREA_BYTES], uint8_t gen, const char *area)
{
    key[0] = gen;
    key[1] = level_of(area);
    area_put(key + 2, area);
}

void zrs_name_put(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area, const char *name)
{
    uint8_t key[2 + ZRS_AREA_BYTES];
    name_key(key, gen, area);
    size_t n = strlen(name);
    ztxn_put(txn, t->names, key, sizeof key, name,
             n > ZREP_NAME_BYTES_MAX ? ZREP_NAME_BYTES_MAX : n);
}

void zrs_name_del(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area)
{
    uint8_t key[2 + ZRS_AREA_BYTES];
    name_key(key, gen, area);
    ztxn_del(txn, t->names, key, sizeof key);
}

void zrs_name_get(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area, char *out, size_t cap)
{
    uint8_t key[2 + ZRS_AREA_BYTES];
    name_key(key, gen, area);
    zval_t v;
    out[0] = '\0';
    if (ztxn_get(txn, t->names, key, sizeof key, &v) == 0) {
        size_t n = v.len < cap - 1 ? v.len : cap - 1;
        memcpy(out, v.data, n);
        out[n] = '\0';
    }
}

int zrs_names_scan(ztxn_t *txn, const zrs_t *t, uint8_t gen, zarea_level_t level,
                   const char *prefix, void *ctx, zrs_area_fn on_area)
{
    uint8_t key[2 + ZRS_AREA_BYTES];
    size_t n = strlen(prefix);
    ZASSERT(n <= ZRS_AREA_BYTES);
    key[0] = gen;
    key[1] = (uint8_t)level;
    memcpy(key + 2, prefix, n);
    area_scan_t s = {ctx, on_area};
    return ztxn_scan(txn, t->names, key, 2 + n, NULL, 0, &s, on_area_key);
}

/* ---- petitions' flags --------------------------------------------------- */

static size_t pet_key(uint8_t key[1 + ZREP_PETITION_ID_BYTES_MAX], uint8_t gen, const char *id)
{
    size_t n = strlen(id);
    if (n > ZREP_PETITION_ID_BYTES_MAX) {
        n = ZREP_PETITION_ID_BYTES_MAX;
    }
    key[0] = gen;
    memcpy(key + 1, id, n);
    return n + 1;
}

uint8_t zrs_pet_get(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *id)
{
    uint8_t key[1 + ZREP_PETITION_ID_BYTES_MAX];
    size_t n = pet_key(key, gen, id);
    zval_t v;
    if (ztxn_get(txn, t->pets, key, n, &v) == 0 && v.len == 1) {
        return *(const uint8_t *)v.data;
    }
    return 0;
}

void zrs_pet_put(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *id, uint8_t flags)
{
    uint8_t key[1 + ZREP_PETITION_ID_BYTES_MAX];
    size_t n = pet_key(key, gen, id);
    ztxn_put(txn, t->pets, key, n, &flags, 1);
}

void zrs_pet_del(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *id)
{
    uint8_t key[1 + ZREP_PETITION_ID_BYTES_MAX];
    size_t n = pet_key(key, gen, id);
    ztxn_del(txn, t->pets, key, n);
}

/* ---- budget execution counted ------------------------------------------- */

static void exec_key(uint8_t key[1 + ZRS_AREA_BYTES + 4], uint8_t gen, const char *area, int month)
{
    key[0] = gen;
    area_put(key + 1, area);
    be32_put(key + 1 + ZRS_AREA_BYTES, (uint32_t)month);
}

void zrs_exec_get(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area, int month,
                  zrep_exec_t *out)
{
    uint8_t key[1 + ZRS_AREA_BYTES + 4];
    exec_key(key, gen, area, month);
    memset(out, 0, sizeof *out);
    zval_t v;
    if (ztxn_get(txn, t->execs, key, sizeof key, &v) == 0 && v.len == 16) {
        out->budget = (int64_t)zstore_be64_get(v.data);
        out->actual = (int64_t)zstore_be64_get((const uint8_t *)v.data + 8);
    }
}

void zrs_exec_put(ztxn_t *txn, const zrs_t *t, uint8_t gen, const char *area, int month,
                  const zrep_exec_t *counted)
{
    uint8_t key[1 + ZRS_AREA_BYTES + 4], val[16];
    exec_key(key, gen, area, month);
    zstore_be64_put(val, (uint64_t)counted->budget);
    zstore_be64_put(val + 8, (uint64_t)counted->actual);
    ztxn_put(txn, t->execs, key, sizeof key, val, sizeof val);
}

/* ---- alerts ------------------------------------------------------------- */

static size_t alert_key(uint8_t *key, const char *rule, const char *area)
{
    size_t r = strlen(rule), a = strlen(area);
    ZASSERT(r < ZREP_ALERT_RULE_BYTES_MAX && a <= ZAREA_BYTES_MAX);
    memcpy(key, rule, r);
    key[r] = 0;
    memcpy(key + r + 1, area, a);
    return r + 1 + a;
}

int zrs_alert_get(ztxn_t *txn, const zrs_t *t, const char *rule, const char *area, zval_t *val)
{
    uint8_t key[ZREP_ALERT_RULE_BYTES_MAX + 1 + ZAREA_BYTES_MAX];
    size_t n = alert_key(key, rule, area);
    return ztxn_get(txn, t->alerts, key, n, val);
}

void zrs_alert_put(ztxn_t *txn, const zrs_t *t, const char *rule, const char *area,
                   const void *packed, size_t len)
{
    uint8_t key[ZREP_ALERT_RULE_BYTES_MAX + 1 + ZAREA_BYTES_MAX];
    size_t n = alert_key(key, rule, area);
    ztxn_put(txn, t->alerts, key, n, packed, len);
}

typedef struct {
    void *ctx;
    zrs_alert_fn on_alert;
} alert_scan_t;

static int on_alert_row(void *ctx, zval_t key, zval_t val)
{
    alert_scan_t *s = ctx;
    const char *k = key.data;
    const char *zero = memchr(k, 0, key.len);
    if (zero == NULL || key.len - (size_t)(zero - k) - 1 > ZAREA_BYTES_MAX ||
        (size_t)(zero - k) >= ZREP_ALERT_RULE_BYTES_MAX) {
        return 0;
    }
    char rule[ZREP_ALERT_RULE_BYTES_MAX], area[ZREP_AREA_BUF];
    memcpy(rule, k, (size_t)(zero - k));
    rule[zero - k] = '\0';
    size_t an = key.len - (size_t)(zero - k) - 1;
    memcpy(area, zero + 1, an);
    area[an] = '\0';
    return s->on_alert(s->ctx, rule, area, val);
}

int zrs_alerts_scan(ztxn_t *txn, const zrs_t *t, const char *rule, void *ctx, zrs_alert_fn on_alert)
{
    uint8_t prefix[ZREP_ALERT_RULE_BYTES_MAX + 1];
    size_t n = 0;
    if (rule != NULL) {
        n = strlen(rule);
        ZASSERT(n < ZREP_ALERT_RULE_BYTES_MAX);
        memcpy(prefix, rule, n);
        prefix[n++] = 0;
    }
    alert_scan_t s = {ctx, on_alert};
    return ztxn_scan(txn, t->alerts, prefix, n, NULL, 0, &s, on_alert_row);
}
