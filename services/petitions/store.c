/* The petitions service's tables and key codecs (store.h). */
#include "services/petitions/store.h"

#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/err.h"

#define SEQ_META_KEY "petitions.seq"
#define KEY_BYTES_MAX 64

const char *const zps_tables[] = {"petitions", "tickets", "by_area", "inbox", "due",
                                  "counts",    "units",   "qr",      NULL};

static int table(const zstore_t *store, const char *name)
{
    int i = zstore_table(store, name);
    ZASSERT(i >= 0);
    return i;
}

void zps_init(zps_t *t, const zstore_t *store)
{
    t->petitions = table(store, "petitions");
    t->tickets = table(store, "tickets");
    t->by_area = table(store, "by_area");
    t->inbox = table(store, "inbox");
    t->due = table(store, "due");
    t->counts = table(store, "counts");
    t->units = table(store, "units");
    t->qr = table(store, "qr");
}

/* ---- petitions ---------------------------------------------------------- */

uint64_t zps_seq_next(ztxn_t *txn)
{
    zval_t v;
    uint64_t last = 0;
    if (ztxn_get(txn, ZSTORE_META, SEQ_META_KEY, strlen(SEQ_META_KEY), &v) == 0 && v.len == 8) {
        last = zstore_be64_get(v.data);
    }
    uint8_t next[8];
    zstore_be64_put(next, last + 1);
    ztxn_put(txn, ZSTORE_META, SEQ_META_KEY, strlen(SEQ_META_KEY), next, sizeof next);
    return last + 1;
}

int zps_record_get(ztxn_t *txn, const zps_t *t, uint64_t seq, ProtobufCAllocator *alloc,
                   Zhili__Petitions__Record **out)
{
    uint8_t key[8];
    zstore_be64_put(key, seq);
    zval_t v;
    *out = NULL;
    int rc = ztxn_get(txn, t->petitions, key, sizeof key, &v);
    if (rc != 0) {
        return rc;
    }
    *out = zhili__petitions__record__unpack(alloc, v.len, v.data);
    return *out != NULL ? 0 : ZE_INTERNAL;
}

void zps_record_put(ztxn_t *txn, const zps_t *t, const Zhili__Petitions__Record *r)
{
    uint8_t key[8];
    zstore_be64_put(key, r->seq);
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (zcodec_pack(&r->base, 0, &bytes, &len) != 0) {
        ztxn_fail(txn, ZE_INTERNAL, "a petition record could not be packed");
        return;
    }
    ztxn_put(txn, t->petitions, key, sizeof key, bytes, len);
    free(bytes);
}

int zps_ticket_get(ztxn_t *txn, const zps_t *t, const char *ticket, uint64_t *seq)
{
    zval_t v;
    int rc = ztxn_get(txn, t->tickets, ticket, strlen(ticket), &v);
    if (rc == 0 && v.len == 8) {
        *seq = zstore_be64_get(v.data);
        return 0;
    }
    return rc == 0 ? ZE_INTERNAL : rc;
}

void zps_ticket_put(ztxn_t *txn, const zps_t *t, const char *ticket, uint64_t seq)
{
    uint8_t v[8];
    zstore_be64_put(v, seq);
    ztxn_put(txn, t->tickets, ticket, strlen(ticket), v, sizeof v);
}

/* ---- indexes ------------------------------------------------------------ */

void zps_area_suffix(int64_t received_ms, uint64_t seq, uint8_t out[ZPS_SUFFIX_BYTES])
{
    /* Inverted time and seq: a forward scan is newest first, and petitions
     * of the same millisecond come newest first too. */
    zstore_be64_put(out, UINT64_MAX - (uint64_t)received_ms);
    zstore_be64_put(out + 8, UINT64_MAX - seq);
}

static size_t area_key(const char *prefix, size_t prefix_len, const uint8_t *suffix,
                       uint8_t key[KEY_BYTES_MAX])
{
    ZASSERT(prefix_len <= ZAREA_BYTES_MAX);
    memcpy(key, prefix, prefix_len);
    key[prefix_len] = '/';
    if (suffix == NULL) {
        return prefix_len + 1;
    }
    memcpy(key + prefix_len + 1, suffix, ZPS_SUFFIX_BYTES);
    return prefix_len + 1 + ZPS_SUFFIX_BYTES;
}

void zps_area_index_put(ztxn_t *txn, const zps_t *t, const char *area, int64_t received_ms,
                        uint64_t seq)
{
    static const size_t lengths[] = {0, 6, 9, 12, 15, 18};
    uint8_t suffix[ZPS_SUFFIX_BYTES], key[KEY_BYTES_MAX];
    zps_area_suffix(received_ms, seq, suffix);
    size_t area_len = strlen(area);
    for (size_t i = 0; i < ZARRAY_LEN(lengths) && lengths[i] <= area_len; i++) {
        size_t len = area_key(area, lengths[i], suffix, key);
        ztxn_put(txn, t->by_area, key, len, "", 0);
    }
}

typedef struct {
    void *ctx;
    zps_area_row_fn on_row;
} area_scan_t;

static int on_area_row(void *arg, zval_t key, zval_t val)
{
    (void)val;
    area_scan_t *s = arg;
    if (key.len < ZPS_SUFFIX_BYTES) {
        return 0;
    }
    const uint8_t *suffix = (const uint8_t *)key.data + key.len - ZPS_SUFFIX_BYTES;
    return s->on_row(s->ctx, UINT64_MAX - zstore_be64_get(suffix + 8), suffix);
}

int zps_area_scan(ztxn_t *txn, const zps_t *t, const char *prefix,
                  const uint8_t start[ZPS_SUFFIX_BYTES], void *ctx, zps_area_row_fn on_row)
{
    uint8_t pkey[KEY_BYTES_MAX], skey[KEY_BYTES_MAX];
    size_t plen = area_key(prefix, strlen(prefix), NULL, pkey);
    size_t slen = start != NULL ? area_key(prefix, strlen(prefix), start, skey) : 0;
    area_scan_t s = {ctx, on_row};
    return ztxn_scan(txn, t->by_area, pkey, plen, start ? skey : NULL, slen, &s, on_area_row);
}

static size_t inbox_key(const char *unit, uint64_t seq, uint8_t key[KEY_BYTES_MAX])
{
    size_t len = area_key(unit, strlen(unit), NULL, key);
    zstore_be64_put(key + len, seq);
    return len + 8;
}

void zps_inbox_put(ztxn_t *txn, const zps_t *t, const char *unit, uint64_t seq)
{
    uint8_t key[KEY_BYTES_MAX];
    ztxn_put(txn, t->inbox, key, inbox_key(unit, seq, key), "", 0);
}

void zps_inbox_del(ztxn_t *txn, const zps_t *t, const char *unit, uint64_t seq)
{
    uint8_t key[KEY_BYTES_MAX];
    ztxn_del(txn, t->inbox, key, inbox_key(unit, seq, key));
}

typedef struct {
    void *ctx;
    zps_seq_fn on_row;
} seq_scan_t;

static int on_inbox_row(void *arg, zval_t key, zval_t val)
{
    (void)val;
    seq_scan_t *s = arg;
    return key.len >= 8
               ? s->on_row(s->ctx, zstore_be64_get((const uint8_t *)key.data + key.len - 8))
               : 0;
}

int zps_inbox_scan(ztxn_t *txn, const zps_t *t, const char *unit, uint64_t from, void *ctx,
                   zps_seq_fn on_row)
{
    uint8_t pkey[KEY_BYTES_MAX], skey[KEY_BYTES_MAX];
    size_t plen = area_key(unit, strlen(unit), NULL, pkey);
    size_t slen = inbox_key(unit, from, skey);
    seq_scan_t s = {ctx, on_row};
    return ztxn_scan(txn, t->inbox, pkey, plen, skey, slen, &s, on_inbox_row);
}

static void due_key(int64_t deadline_ms, char kind, uint64_t seq, uint8_t key[ZPS_DUE_KEY_BYTES])
{
    zstore_be64_put(key, (uint64_t)deadline_ms);
    key[8] = (uint8_t)kind;
    zstore_be64_put(key + 9, seq);
}

void zps_due_put(ztxn_t *txn, const zps_t *t, int64_t deadline_ms, char kind, uint64_t seq)
{
    uint8_t key[ZPS_DUE_KEY_BYTES];
    due_key(deadline_ms, kind, seq, key);
    ztxn_put(txn, t->due, key, sizeof key, "", 0);
}

void zps_due_del(ztxn_t *txn, const zps_t *t, int64_t deadline_ms, char kind, uint64_t seq)
{
    uint8_t key[ZPS_DUE_KEY_BYTES];
    due_key(deadline_ms, kind, seq, key);
    ztxn_del(txn, t->due, key, sizeof key);
}

typedef struct {
    int64_t now_ms;
    void *ctx;
    zps_due_fn on_row;
} due_scan_t;

static int on_due_row(void *arg, zval_t key, zval_t val)
{
    (void)val;
    due_scan_t *s = arg;
    if (key.len != ZPS_DUE_KEY_BYTES) {
        return 0;
    }
    const uint8_t *k = key.data;
    int64_t deadline = (int64_t)zstore_be64_get(k);
    if (deadline >= s->now_ms) {
        return 1; /* keys are in deadline order: nothing further is due */
    }
    return s->on_row(s->ctx, deadline, (char)k[8], zstore_be64_get(k + 9));
}

int zps_due_scan(ztxn_t *txn, const zps_t *t, int64_t now_ms, void *ctx, zps_due_fn on_row)
{
    due_scan_t s = {now_ms, ctx, on_row};
    int rc = ztxn_scan(txn, t->due, NULL, 0, NULL, 0, &s, on_due_row);
    return rc == 1 ? 0 : rc;
}

/* ---- counters ----------------------------------------------------------- */

int64_t zps_count_get(ztxn_t *txn, const zps_t *t, const char *name)
{
    zval_t v;
    if (ztxn_get(txn, t->counts, name, strlen(name), &v) == 0 && v.len == 8) {
        return (int64_t)zstore_be64_get(v.data);
    }
    return 0;
}

void zps_count_add(ztxn_t *txn, const zps_t *t, const char *name, int64_t delta)
{
    uint8_t v[8];
    zstore_be64_put(v, (uint64_t)(zps_count_get(txn, t, name) + delta));
    ztxn_put(txn, t->counts, name, strlen(name), v, sizeof v);
}

/* ---- the grid read model ------------------------------------------------ */

bool zps_unit_known(ztxn_t *txn, const zps_t *t, const char *code)
{
    zval_t v;
    return code[0] != '\0' && ztxn_get(txn, t->units, code, strlen(code), &v) == 0;
}

int zps_unit_get(ztxn_t *txn, const zps_t *t, const char *code, Zhili__Grid__Unit **out)
{
    zval_t v;
    *out = NULL;
    int rc = ztxn_get(txn, t->units, code, strlen(code), &v);
    if (rc != 0) {
        return rc;
    }
    ProtobufCMessage *m = NULL;
    if (zcodec_unpack(&zhili__grid__unit__descriptor, v.data, v.len, ZPET_UNIT_BYTES_MAX, &m) !=
        0) {
        return ZE_INTERNAL;
    }
    *out = (Zhili__Grid__Unit *)m;
    return 0;
}

void zps_unit_put(ztxn_t *txn, const zps_t *t, const Zhili__Grid__Unit *u)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (zcodec_pack(&u->base, ZPET_UNIT_BYTES_MAX, &bytes, &len) != 0) {
        ztxn_fail(txn, ZE_INVALID, "a grid unit is larger than the read model keeps");
        return;
    }
    ztxn_put(txn, t->units, u->code, strlen(u->code), bytes, len);
    free(bytes);
}

void zps_unit_del(ztxn_t *txn, const zps_t *t, const char *code)
{
    ztxn_del(txn, t->units, code, strlen(code));
}

typedef struct {
    void *ctx;
    zps_unit_fn on_row;
} unit_scan_t;

static int on_unit_row(void *arg, zval_t key, zval_t val)
{
    (void)key;
    unit_scan_t *s = arg;
    return s->on_row(s->ctx, val.data, val.len);
}

int zps_unit_scan(ztxn_t *txn, const zps_t *t, void *ctx, zps_unit_fn on_row)
{
    unit_scan_t s = {ctx, on_row};
    return ztxn_scan(txn, t->units, NULL, 0, NULL, 0, &s, on_unit_row);
}

int zps_qr_get(ztxn_t *txn, const zps_t *t, const char *qr, char *code)
{
    zval_t v;
    int rc = ztxn_get(txn, t->qr, qr, strlen(qr), &v);
    if (rc != 0) {
        return rc;
    }
    if (v.len == 0 || v.len > ZAREA_BYTES_MAX) {
        return ZE_INTERNAL;
    }
    memcpy(code, v.data, v.len);
    code[v.len] = '\0';
    return 0;
}

void zps_qr_put(ztxn_t *txn, const zps_t *t, const char *qr, const char *code)
{
    ztxn_put(txn, t->qr, qr, strlen(qr), code, strlen(code));
}

void zps_qr_del(ztxn_t *txn, const zps_t *t, const char *qr)
{
    ztxn_del(txn, t->qr, qr, strlen(qr));
}
