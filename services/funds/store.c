/* store: the funds service's tables and keys (store.h). */
#include "services/funds/store.h"

#include <stdlib.h>
#include <string.h>

#include "common/caltime.h"
#include "common/codec.h"
#include "common/err.h"

const char *const zfstore_table_names[] = {
    "accounts",  "creds",       "ledger", "journal", "receipts",   "months",
    "msums",     "withdrawals", "wreqs",  "due",     "budget_ops", "tickets",
    "fee_bills", "fee_periods", "assets", NULL,
};

int zfstore_resolve(zfstore_t *t, const zstore_t *store)
{
    int *slots[] = {&t->accounts,   &t->creds,   &t->ledger,      &t->journal,     &t->receipts,
                    &t->months,     &t->msums,   &t->withdrawals, &t->wreqs,       &t->due,
                    &t->budget_ops, &t->tickets, &t->fee_bills,   &t->fee_periods, &t->assets};
    _Static_assert(ZARRAY_LEN(slots) + 1 == ZARRAY_LEN(zfstore_table_names), "one slot a table");
    for (size_t i = 0; i < ZARRAY_LEN(slots); i++) {
        *slots[i] = zstore_table(store, zfstore_table_names[i]);
        if (*slots[i] < 0) {
            return ZE_INTERNAL;
        }
    }
    return 0;
}

/* ---- keys ------------------------------------------------------------------- */

size_t zfkey_account(uint8_t *out, const char *account)
{
    memcpy(out, account, ZFUNDS_ACCOUNT_BYTES);
    return ZFUNDS_ACCOUNT_BYTES;
}

size_t zfkey_account_u64(uint8_t *out, const char *account, uint64_t n)
{
    size_t at = zfkey_account(out, account);
    zstore_be64_put(out + at, n);
    return at + 8;
}

size_t zfkey_account_str(uint8_t *out, const char *account, const char *s)
{
    size_t at = zfkey_account(out, account), len = strlen(s);
    ZASSERT(at + len <= ZFKEY_BYTES_MAX);
    memcpy(out + at, s, len);
    return at + len;
}

size_t zfkey_cred(uint8_t *out, const char *account, int cred)
{
    size_t at = zfkey_account(out, account);
    out[at] = (uint8_t)cred;
    return at + 1;
}

static void be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t zfkey_month(uint8_t *out, const char *account, int month)
{
    size_t at = zfkey_account(out, account);
    be32_put(out + at, (uint32_t)month);
    return at + 4;
}

size_t zfkey_msum(uint8_t *out, const char *account, int month, char kind, const void *name,
                  size_t name_len)
{
    size_t at = zfkey_month(out, account, month);
    ZASSERT(at + 1 + name_len <= ZFKEY_BYTES_MAX);
    out[at++] = (uint8_t)kind;
    memcpy(out + at, name, name_len);
    return at + name_len;
}

size_t zfkey_period(uint8_t *out, const char *account, int period)
{
    return zfkey_month(out, account, period);
}

size_t zfkey_fee_bill(uint8_t *out, const char *account, int period, const char *building,
                      const char *room)
{
    size_t at = zfkey_period(out, account, period);
    size_t blen = strlen(building), rlen = strlen(room);
    ZASSERT(at + blen + rlen <= ZFKEY_BYTES_MAX);
    memcpy(out + at, building, blen);
    memcpy(out + at + blen, room, rlen);
    return at + blen + rlen;
}

size_t zfkey_due(uint8_t *out, int64_t due_ms, char kind, const void *payload, size_t len)
{
    ZASSERT(9 + len <= ZFKEY_BYTES_MAX);
    zstore_be64_put(out, (uint64_t)due_ms);
    out[8] = (uint8_t)kind;
    memcpy(out + 9, payload, len);
    return 9 + len;
}

/* ---- the ledger row -------------------------------------------------------------- */

int zfstore_ledger_get(ztxn_t *txn, const zfstore_t *t, const char *account, zfunds_ledger_t *l)
{
    uint8_t key[ZFUNDS_ACCOUNT_BYTES];
    zval_t v;
    int rc = ztxn_get(txn, t->ledger, key, zfkey_account(key, account), &v);
    if (rc != 0) {
        return rc;
    }
    return zfunds_ledger_decode(v.data, v.len, l) == 0 ? 0 : ZE_INTERNAL;
}

void zfstore_ledger_put(ztxn_t *txn, const zfstore_t *t, const char *account,
                        const zfunds_ledger_t *l)
{
    uint8_t key[ZFUNDS_ACCOUNT_BYTES], val[ZFUNDS_LEDGER_BYTES];
    zfunds_ledger_encode(l, val);
    ztxn_put(txn, t->ledger, key, zfkey_account(key, account), val, sizeof val);
}

/* ---- the journal ------------------------------------------------------------------ */

static void month_encode(const zfstore_month_t *m, uint8_t out[32])
{
    zstore_be64_put(out, m->first_seq);
    zstore_be64_put(out + 8, m->last_seq);
    zstore_be64_put(out + 16, (uint64_t)m->opening);
    zstore_be64_put(out + 24, (uint64_t)m->closing);
}

static int month_decode(zval_t v, zfstore_month_t *m)
{
    if (v.len != 32) {
        return ZE_INTERNAL;
    }
    const uint8_t *p = v.data;
    m->first_seq = zstore_be64_get(p);
    m->last_seq = zstore_be64_get(p + 8);
    m->opening = (int64_t)zstore_be64_get(p + 16);
    m->closing = (int64_t)zstore_be64_get(p + 24);
    return 0;
}

static void msum_add(ztxn_t *txn, const zfstore_t *t, const char *account, int month, char kind,
                     const void *name, size_t name_len, int64_t delta)
{
    uint8_t key[ZFKEY_BYTES_MAX], val[8];
    size_t klen = zfkey_msum(key, account, month, kind, name != NULL ? name : "", name_len);
    zval_t v;
    int64_t sum = 0;
    if (ztxn_get(txn, t->msums, key, klen, &v) == 0 && v.len == 8) {
        sum = (int64_t)zstore_be64_get(v.data);
    }
    zstore_be64_put(val, (uint64_t)(sum + delta));
    ztxn_put(txn, t->msums, key, klen, val, sizeof val);
}

void zfstore_journal_append(ztxn_t *txn, const zfstore_t *t, const char *account,
                            const zfunds_entry_t *e, const uint8_t *rec, size_t len)
{
    uint8_t key[ZFKEY_BYTES_MAX], val[32];
    ztxn_put(txn, t->journal, key, zfkey_account_u64(key, account, e->seq), rec, len);
    if (e->receipt.len > 0) {
        size_t at = zfkey_account(key, account);
        memcpy(key + at, e->receipt.p, e->receipt.len);
        zstore_be64_put(val, e->seq);
        ztxn_put(txn, t->receipts, key, at + e->receipt.len, val, 8);
    }
    zfunds_effect_t fx;
    ZASSERT(zfunds_entry_effect(e, &fx) == 0); /* zfunds_ledger_append accepted it */
    int month = ztime_month_key(e->ts_ms);
    zfstore_month_t m;
    if (zfstore_month_get(txn, t, account, month, &m) != 0) {
        m = (zfstore_month_t){e->seq, e->seq, e->balance - fx.cash, e->balance};
    }
    m.last_seq = e->seq;
    m.closing = e->balance;
    month_encode(&m, val);
    ztxn_put(txn, t->months, key, zfkey_month(key, account, month), val, sizeof val);
    if (fx.category != 0) {
        uint8_t cat = (uint8_t)fx.category;
        msum_add(txn, t, account, month, 'r', &cat, 1, fx.revenue);
    }
    if (fx.spent != 0) {
        msum_add(txn, t, account, month, 'w', e->line.p, e->line.len, fx.spent);
    }
}

int zfstore_journal_get(ztxn_t *txn, const zfstore_t *t, const char *account, uint64_t seq,
                        zval_t *rec)
{
    uint8_t key[ZFUNDS_ACCOUNT_BYTES + 8];
    return ztxn_get(txn, t->journal, key, zfkey_account_u64(key, account, seq), rec);
}

typedef struct {
    void *ctx;
    zfstore_entry_fn fn;
} journal_scan_t;

static int journal_row(void *arg, zval_t key, zval_t val)
{
    journal_scan_t *s = arg;
    if (key.len != ZFUNDS_ACCOUNT_BYTES + 8) {
        return ZE_INTERNAL;
    }
    uint64_t seq = zstore_be64_get((const uint8_t *)key.data + ZFUNDS_ACCOUNT_BYTES);
    return s->fn(s->ctx, seq, val.data, val.len);
}

int zfstore_journal_scan(ztxn_t *txn, const zfstore_t *t, const char *account, uint64_t from,
                         void *ctx, zfstore_entry_fn on_row)
{
    uint8_t prefix[ZFUNDS_ACCOUNT_BYTES], start[ZFUNDS_ACCOUNT_BYTES + 8];
    journal_scan_t s = {ctx, on_row};
    return ztxn_scan(txn, t->journal, prefix, zfkey_account(prefix, account), start,
                     zfkey_account_u64(start, account, from), &s, journal_row);
}

uint64_t zfstore_receipt_seq(ztxn_t *txn, const zfstore_t *t, const char *account,
                             const char *receipt)
{
    uint8_t key[ZFKEY_BYTES_MAX];
    zval_t v;
    if (ztxn_get(txn, t->receipts, key, zfkey_account_str(key, account, receipt), &v) != 0 ||
        v.len != 8) {
        return 0;
    }
    return zstore_be64_get(v.data);
}

/* ---- months ------------------------------------------------------------------------ */

int zfstore_month_get(ztxn_t *txn, const zfstore_t *t, const char *account, int month,
                      zfstore_month_t *m)
{
    uint8_t key[ZFUNDS_ACCOUNT_BYTES + 4];
    zval_t v;
    int rc = ztxn_get(txn, t->months, key, zfkey_month(key, account, month), &v);
    return rc != 0 ? rc : month_decode(v, m);
}

typedef struct {
    int limit; /* before: months < limit; from: the first >= limit */
    bool from;
    int found;
    zfstore_month_t m;
} month_find_t;

static int month_row(void *arg, zval_t key, zval_t val)
{
    month_find_t *f = arg;
    if (key.len != ZFUNDS_ACCOUNT_BYTES + 4) {
        return ZE_INTERNAL;
    }
    int month = (int)be32_get((const uint8_t *)key.data + ZFUNDS_ACCOUNT_BYTES);
    if (!f->from && month >= f->limit) {
        return 1;
    }
    f->found = month;
    if (month_decode(val, &f->m) != 0) {
        return ZE_INTERNAL;
    }
    return f->from ? 1 : 0;
}

int zfstore_month_before(ztxn_t *txn, const zfstore_t *t, const char *account, int month,
                         int *found_month, zfstore_month_t *m)
{
    uint8_t prefix[ZFUNDS_ACCOUNT_BYTES];
    month_find_t f = {month, false, 0, {0, 0, 0, 0}};
    /* Months are few (twelve a year): a forward scan is cheap. */
    int rc =
        ztxn_scan(txn, t->months, prefix, zfkey_account(prefix, account), NULL, 0, &f, month_row);
    if (rc < 0) {
        return rc;
    }
    if (f.found == 0) {
        return ZE_NOT_FOUND;
    }
    *found_month = f.found;
    *m = f.m;
    return 0;
}

int zfstore_month_from(ztxn_t *txn, const zfstore_t *t, const char *account, int month,
                       zfstore_month_t *m)
{
    uint8_t prefix[ZFUNDS_ACCOUNT_BYTES], start[ZFUNDS_ACCOUNT_BYTES + 4];
    month_find_t f = {month, true, 0, {0, 0, 0, 0}};
    int rc = ztxn_scan(txn, t->months, prefix, zfkey_account(prefix, account), start,
                       zfkey_month(start, account, month), &f, month_row);
    if (rc < 0) {
        return rc;
    }
    if (f.found == 0) {
        return ZE_NOT_FOUND;
    }
    *m = f.m;
    return 0;
}

typedef struct {
    void *ctx;
    zfstore_sum_fn fn;
} sum_scan_t;

static int sum_row(void *arg, zval_t key, zval_t val)
{
    sum_scan_t *s = arg;
    size_t at = ZFUNDS_ACCOUNT_BYTES + 4;
    if (key.len < at + 1 || val.len != 8) {
        return ZE_INTERNAL;
    }
    const uint8_t *k = key.data;
    return s->fn(s->ctx, (char)k[at], k + at + 1, key.len - at - 1,
                 (int64_t)zstore_be64_get(val.data));
}

int zfstore_msums_scan(ztxn_t *txn, const zfstore_t *t, const char *account, int month, void *ctx,
                       zfstore_sum_fn on_sum)
{
    uint8_t prefix[ZFUNDS_ACCOUNT_BYTES + 4];
    sum_scan_t s = {ctx, on_sum};
    return ztxn_scan(txn, t->msums, prefix, zfkey_month(prefix, account, month), NULL, 0, &s,
                     sum_row);
}

/* ---- protobuf rows -------------------------------------------------------------------- */

static void *arena_alloc(void *data, size_t size)
{
    return zarena_alloc(data, size ? size : 1);
}

static void arena_free(void *data, void *p)
{
    (void)data;
    (void)p; /* the arena frees everything at the batch's end */
}

int zfstore_unpack(zarena_t *arena, const ProtobufCMessageDescriptor *desc, const void *data,
                   size_t len, ProtobufCMessage **out)
{
    ProtobufCAllocator a = {arena_alloc, arena_free, arena};
    *out = len <= ZCODEC_MSG_BYTES_MAX ? protobuf_c_message_unpack(desc, &a, len, data) : NULL;
    return *out != NULL ? 0 : ZE_INTERNAL;
}

int zfstore_msg_get(ztxn_t *txn, int table, const uint8_t *key, size_t key_len,
                    const ProtobufCMessageDescriptor *desc, zarena_t *arena, ProtobufCMessage **out)
{
    *out = NULL;
    zval_t v;
    int rc = ztxn_get(txn, table, key, key_len, &v);
    if (rc != 0) {
        return rc;
    }
    return zfstore_unpack(arena, desc, v.data, v.len, out);
}

void zfstore_msg_put(ztxn_t *txn, int table, const uint8_t *key, size_t key_len,
                     const ProtobufCMessage *msg)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (zcodec_pack(msg, 0, &buf, &len) != 0) {
        ztxn_fail(txn, ZE_INTERNAL, "a funds row could not be packed");
        return;
    }
    ztxn_put(txn, table, key, key_len, buf, len);
    free(buf);
}

/* ---- the agenda ----------------------------------------------------------------------- */

void zfstore_due_put(ztxn_t *txn, const zfstore_t *t, int64_t due_ms, char kind,
                     const void *payload, size_t len)
{
    uint8_t key[ZFKEY_BYTES_MAX];
    ztxn_put(txn, t->due, key, zfkey_due(key, due_ms, kind, payload, len), "", 0);
}

void zfstore_due_del(ztxn_t *txn, const zfstore_t *t, int64_t due_ms, char kind,
                     const void *payload, size_t len)
{
    uint8_t key[ZFKEY_BYTES_MAX];
    size_t klen = zfkey_due(key, due_ms, kind, payload, len);
    zval_t v;
    if (ztxn_get(txn, t->due, key, klen, &v) == 0) {
        ztxn_del(txn, t->due, key, klen);
    }
}

typedef struct {
    int64_t now_ms;
    zarena_t *arena;
    zfstore_due_t *rows;
    int count, max;
} due_take_t;

static int due_row(void *arg, zval_t key, zval_t val)
{
    (void)val;
    due_take_t *d = arg;
    if (key.len < 9 || d->count == d->max) {
        return 1;
    }
    int64_t due = (int64_t)zstore_be64_get(key.data);
    if (due > d->now_ms) {
        return 1;
    }
    zfstore_due_t *r = &d->rows[d->count++];
    r->due_ms = due;
    r->kind = (char)((const uint8_t *)key.data)[8];
    r->len = key.len - 9;
    memcpy(r->payload, (const uint8_t *)key.data + 9, r->len);
    return 0;
}

int zfstore_due_take(ztxn_t *txn, const zfstore_t *t, int64_t now_ms, zarena_t *arena,
                     zfstore_due_t **out, int max)
{
    due_take_t d = {now_ms, arena, zarena_alloc(arena, sizeof(zfstore_due_t) * (size_t)max), 0,
                    max};
    int rc = ztxn_scan(txn, t->due, NULL, 0, NULL, 0, &d, due_row);
    if (rc < 0) {
        return rc;
    }
    /* Deleted after the scan: a write during it would move the cursor. */
    for (int i = 0; i < d.count; i++) {
        zfstore_due_del(txn, t, d.rows[i].due_ms, d.rows[i].kind, d.rows[i].payload, d.rows[i].len);
    }
    *out = d.rows;
    return d.count;
}
