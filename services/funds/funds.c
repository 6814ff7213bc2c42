/* funds: the domain rules of the trust accounts (funds.h). No I/O: plain
 * structs in, decisions out. */
#include "services/funds/funds.h"

#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "funds.pb-c.h"

_Static_assert((int)ZFUNDS_KIND_DEPOSIT == (int)ZHILI__FUNDS__ENTRY_KIND__ENTRY_KIND_DEPOSIT,
               "enum");
_Static_assert((int)ZFUNDS_KIND_REVERSAL == (int)ZHILI__FUNDS__ENTRY_KIND__ENTRY_KIND_REVERSAL,
               "enum");
_Static_assert((int)ZFUNDS_PARTY_HOUSEHOLD == (int)ZHILI__FUNDS__PARTY_KIND__PARTY_KIND_HOUSEHOLD,
               "enum");
_Static_assert((int)ZFUNDS_QUERY == (int)ZHILI__FUNDS__CREDENTIAL__CREDENTIAL_QUERY, "enum");
_Static_assert((int)ZFUNDS_W_REFUSED ==
                   (int)ZHILI__FUNDS__WITHDRAWAL_STATE__WITHDRAWAL_STATE_REFUSED,
               "enum");
_Static_assert((int)ZFUNDS_STEP_PUBLIC_REVIEW ==
                   (int)ZHILI__FUNDS__INVENTORY_STEP__INVENTORY_STEP_PUBLIC_REVIEW,
               "enum");
_Static_assert(ZFUNDS_CATEGORIES == (int)ZHILI__FUNDS__CATEGORY__CATEGORY_OTHER + 1, "enum");
_Static_assert(ZFUNDS_ENTRY_HEADER_BYTES == 4 + 8 + 8 + 5 + 8 + 8 + 8 + ZFUNDS_HASH_BYTES,
               "entry header layout");

static const char ENTRY_MAGIC[4] = {'Z', 'F', 'J', '1'};
static const char LEDGER_MAGIC[4] = {'Z', 'F', 'L', '1'};

/* ---- text --------------------------------------------------------------- */

bool zfunds_text_ok(const char *s, size_t min, size_t max)
{
    if (s == NULL) {
        return min == 0;
    }
    size_t len = strlen(s);
    if (len < min || len > max) {
        return false;
    }
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xE0) == 0xC0 ? 2
                   : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4
                                        : 0;
        if (n == 0 || i + n > len || (n == 2 && c < 0xC2) || (n == 4 && c > 0xF4)) {
            return false;
        }
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80) {
                return false;
            }
        }
        /* Overlong three- and four-byte forms, surrogates. */
        if ((n == 3 && c == 0xE0 && p[i + 1] < 0xA0) || (n == 3 && c == 0xED && p[i + 1] >= 0xA0) ||
            (n == 4 && c == 0xF0 && p[i + 1] < 0x90) || (n == 4 && c == 0xF4 && p[i + 1] >= 0x90)) {
            return false;
        }
        if (n == 1 && (c < 0x20 || c == 0x7F)) {
            return false;
        }
        if (n == 2 && c == 0xC2 && p[i + 1] < 0xA0) {
            return false; /* C1 controls */
        }
        i += n;
    }
    return true;
}

static bool digits(const char *s, size_t n)
{
    if (s == NULL || strlen(s) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

bool zfunds_account_ok(const char *s)
{
    return digits(s, ZFUNDS_ACCOUNT_BYTES);
}

bool zfunds_secret_ok(const char *s)
{
    return zfunds_text_ok(s, ZFUNDS_SECRET_BYTES_MIN, ZFUNDS_SECRET_BYTES_MAX);
}

bool zfunds_building_in(const char *building, const char *account)
{
    return digits(building, ZAREA_BYTES_MAX) && account != NULL &&
           strncmp(building, account, ZFUNDS_ACCOUNT_BYTES) == 0;
}

static const char *const category_codes[ZFUNDS_CATEGORIES] = {
    NULL, "property_fee", "parking_fee", "advertising_rent", "venue_rent", "interest", "other",
};
static const char *const category_names[ZFUNDS_CATEGORIES] = {
    NULL, "物业费", "停车费", "广告位租金", "场地租金", "利息收入", "其他",
};

const char *zfunds_category_code(int category)
{
    return category > 0 && category < ZFUNDS_CATEGORIES ? category_codes[category] : NULL;
}

const char *zfunds_category_zh(int category)
{
    return category > 0 && category < ZFUNDS_CATEGORIES ? category_names[category] : NULL;
}

void zfunds_withdrawal_id(const char *account, uint64_t n, char *out)
{
    snprintf(out, ZFUNDS_WITHDRAWAL_ID_BYTES_MAX + 1, "%s-w%llu", account, (unsigned long long)n);
}

uint64_t zfunds_withdrawal_number(const char *id, const char *account)
{
    size_t alen = strlen(account);
    if (id == NULL || strlen(id) > ZFUNDS_WITHDRAWAL_ID_BYTES_MAX ||
        strncmp(id, account, alen) != 0 || id[alen] != '-' || id[alen + 1] != 'w') {
        return 0;
    }
    const char *p = id + alen + 2;
    if (*p == '\0' || *p == '0' || strlen(p) > 18) {
        return 0;
    }
    uint64_t n = 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return 0;
        }
        n = n * 10 + (uint64_t)(*p - '0');
    }
    return n;
}

/* ---- periods ---------------------------------------------------------------- */

static int parse_int(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return ZE_INVALID;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int zfunds_month_parse(const char *s, int *key)
{
    int year, month;
    if (s == NULL || strlen(s) != 7 || s[4] != '-' || parse_int(s, 4, &year) != 0 ||
        parse_int(s + 5, 2, &month) != 0 || year < ZFUNDS_YEAR_MIN || year > ZFUNDS_YEAR_MAX ||
        month < 1 || month > 12) {
        return ZE_INVALID;
    }
    *key = year * 100 + month;
    return 0;
}

int zfunds_period_parse(const char *s, int *key)
{
    int year;
    if (s != NULL && strlen(s) == 4) {
        if (parse_int(s, 4, &year) != 0 || year < ZFUNDS_YEAR_MIN || year > ZFUNDS_YEAR_MAX) {
            return ZE_INVALID;
        }
        *key = year;
        return 0;
    }
    return zfunds_month_parse(s, key);
}

void zfunds_period_format(int key, char out[8])
{
    if (key < 10000) {
        snprintf(out, 8, "%04d", key % 10000);
    } else {
        snprintf(out, 8, "%04d-%02d", (key / 100) % 10000, key % 100);
    }
}

int zfunds_month_next(int key)
{
    return key % 100 == 12 ? (key / 100 + 1) * 100 + 1 : key + 1;
}

/* ---- byte order ------------------------------------------------------------- */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* ---- the journal -------------------------------------------------------------- */

static bool kind_valid(int kind)
{
    return kind >= ZFUNDS_KIND_DEPOSIT && kind <= ZFUNDS_KIND_REVERSAL;
}

int zfunds_entry_effect(const zfunds_entry_t *e, zfunds_effect_t *out)
{
    memset(out, 0, sizeof *out);
    if (e->amount <= 0 || e->amount > ZFUNDS_AMOUNT_MAX || !kind_valid(e->kind)) {
        return ZE_INVALID;
    }
    int kind = e->kind;
    int64_t sign = 1;
    if (kind == ZFUNDS_KIND_REVERSAL) {
        if (e->rev_kind != ZFUNDS_KIND_DEPOSIT && e->rev_kind != ZFUNDS_KIND_WITHDRAWAL) {
            return ZE_INVALID; /* a reversal of a reversal does not exist */
        }
        kind = e->rev_kind;
        sign = -1;
    }
    if (kind == ZFUNDS_KIND_DEPOSIT) {
        if (e->category <= 0 || e->category >= ZFUNDS_CATEGORIES) {
            return ZE_INVALID;
        }
        out->cash = sign * e->amount;
        out->category = e->category;
        out->revenue = sign * e->amount;
    } else {
        out->cash = -sign * e->amount;
        out->spent = sign * e->amount;
    }
    return 0;
}

static uint8_t *put_str(uint8_t *p, zfunds_str_t s)
{
    p[0] = (uint8_t)(s.len >> 8);
    p[1] = (uint8_t)s.len;
    if (s.len > 0) {
        memcpy(p + 2, s.p, s.len);
    }
    return p + 2 + s.len;
}

static zfunds_str_t *entry_strs(zfunds_entry_t *e, size_t *count, const size_t **bounds)
{
    static const size_t max[9] = {
        ZFUNDS_ACCOUNT_BYTES,           ZFUNDS_PARTY_BYTES_MAX, ZFUNDS_RECEIPT_BYTES_MAX,
        ZFUNDS_WITHDRAWAL_ID_BYTES_MAX, ZFUNDS_LINE_BYTES_MAX,  ZFUNDS_PARTY_BYTES_MAX,
        ZFUNDS_PURPOSE_BYTES_MAX,       ZFUNDS_MEMO_BYTES_MAX,  ZFUNDS_ACTOR_BYTES_MAX,
    };
    /* The nine strings are consecutive members: account .. actor. */
    _Static_assert(offsetof(zfunds_entry_t, actor) - offsetof(zfunds_entry_t, account) ==
                       8 * sizeof(zfunds_str_t),
                   "entry strings are consecutive");
    *count = 9;
    *bounds = max;
    return &e->account;
}

int zfunds_entry_encode(zfunds_entry_t *e, uint8_t *out, size_t cap, size_t *len)
{
    size_t n;
    const size_t *max;
    zfunds_str_t *strs = entry_strs(e, &n, &max);
    size_t need = ZFUNDS_ENTRY_HEADER_BYTES + ZFUNDS_HASH_BYTES;
    for (size_t i = 0; i < n; i++) {
        if (strs[i].p == NULL) {
            strs[i].len = 0;
        }
        if (strs[i].len > max[i]) {
            return ZE_INVALID;
        }
        need += 2 + strs[i].len;
    }
    if (need > cap) {
        return ZE_INVALID;
    }
    uint8_t *p = out;
    memcpy(p, ENTRY_MAGIC, 4);
    put64(p + 4, e->seq);
    put64(p + 12, (uint64_t)e->ts_ms);
    p[20] = e->kind;
    p[21] = e->category;
    p[22] = e->payer_kind;
    p[23] = e->payee_kind;
    p[24] = e->rev_kind;
    put64(p + 25, (uint64_t)e->amount);
    put64(p + 33, (uint64_t)e->balance);
    put64(p + 41, e->reverses);
    memcpy(p + 49, e->prev_hash, ZFUNDS_HASH_BYTES);
    p += ZFUNDS_ENTRY_HEADER_BYTES;
    for (size_t i = 0; i < n; i++) {
        p = put_str(p, strs[i]);
    }
    size_t body = (size_t)(p - out);
    crypto_generichash(e->hash, ZFUNDS_HASH_BYTES, out, body, NULL, 0);
    memcpy(p, e->hash, ZFUNDS_HASH_BYTES);
    *len = body + ZFUNDS_HASH_BYTES;
    return 0;
}

int zfunds_entry_decode(const uint8_t *buf, size_t len, zfunds_entry_t *e)
{
    memset(e, 0, sizeof *e);
    if (len < ZFUNDS_ENTRY_HEADER_BYTES + ZFUNDS_HASH_BYTES || memcmp(buf, ENTRY_MAGIC, 4) != 0) {
        return ZE_INVALID;
    }
    e->seq = get64(buf + 4);
    e->ts_ms = (int64_t)get64(buf + 12);
    e->kind = buf[20];
    e->category = buf[21];
    e->payer_kind = buf[22];
    e->payee_kind = buf[23];
    e->rev_kind = buf[24];
    e->amount = (int64_t)get64(buf + 25);
    e->balance = (int64_t)get64(buf + 33);
    e->reverses = get64(buf + 41);
    memcpy(e->prev_hash, buf + 49, ZFUNDS_HASH_BYTES);
    size_t n;
    const size_t *max;
    zfunds_str_t *strs = entry_strs(e, &n, &max);
    size_t at = ZFUNDS_ENTRY_HEADER_BYTES, end = len - ZFUNDS_HASH_BYTES;
    for (size_t i = 0; i < n; i++) {
        if (at + 2 > end) {
            return ZE_INVALID;
        }
        size_t slen = (size_t)buf[at] << 8 | buf[at + 1];
        at += 2;
        if (slen > max[i] || at + slen > end) {
            return ZE_INVALID;
        }
        strs[i].p = (const char *)buf + at;
        strs[i].len = slen;
        at += slen;
    }
    if (at != end) {
        return ZE_INVALID;
    }
    memcpy(e->hash, buf + end, ZFUNDS_HASH_BYTES);
    return 0;
}

bool zfunds_entry_hash_ok(const uint8_t *buf, size_t len)
{
    if (len < ZFUNDS_HASH_BYTES) {
        return false;
    }
    uint8_t h[ZFUNDS_HASH_BYTES];
    crypto_generichash(h, sizeof h, buf, len - ZFUNDS_HASH_BYTES, NULL, 0);
    return sodium_memcmp(h, buf + len - ZFUNDS_HASH_BYTES, ZFUNDS_HASH_BYTES) == 0;
}

/* ---- the ledger ---------------------------------------------------------------- */

void zfunds_ledger_encode(const zfunds_ledger_t *l, uint8_t out[ZFUNDS_LEDGER_BYTES])
{
    uint8_t *p = out;
    memcpy(p, LEDGER_MAGIC, 4);
    p += 4;
    put64(p, (uint64_t)l->balance);
    put64(p + 8, (uint64_t)l->held);
    put64(p + 16, l->entries);
    put64(p + 24, (uint64_t)l->last_ts_ms);
    p += 32;
    memcpy(p, l->head_hash, ZFUNDS_HASH_BYTES);
    p += ZFUNDS_HASH_BYTES;
    put64(p, l->next_withdrawal);
    put64(p + 8, l->next_asset);
    p += 16;
    for (int i = 0; i < ZFUNDS_CATEGORIES; i++, p += 8) {
        put64(p, (uint64_t)l->revenue[i]);
    }
    put64(p, (uint64_t)l->spent);
}

int zfunds_ledger_decode(const uint8_t *buf, size_t len, zfunds_ledger_t *l)
{
    memset(l, 0, sizeof *l);
    if (len != ZFUNDS_LEDGER_BYTES || memcmp(buf, LEDGER_MAGIC, 4) != 0) {
        return ZE_INVALID;
    }
    const uint8_t *p = buf + 4;
    l->balance = (int64_t)get64(p);
    l->held = (int64_t)get64(p + 8);
    l->entries = get64(p + 16);
    l->last_ts_ms = (int64_t)get64(p + 24);
    p += 32;
    memcpy(l->head_hash, p, ZFUNDS_HASH_BYTES);
    p += ZFUNDS_HASH_BYTES;
    l->next_withdrawal = get64(p);
    l->next_asset = get64(p + 8);
    p += 16;
    for (int i = 0; i < ZFUNDS_CATEGORIES; i++, p += 8) {
        l->revenue[i] = (int64_t)get64(p);
    }
    l->spent = (int64_t)get64(p);
    return 0;
}

int64_t zfunds_available(const zfunds_ledger_t *l)
{
    return l->balance - l->held;
}

int zfunds_hold(zfunds_ledger_t *l, int64_t amount)
{
    if (amount <= 0 || amount > ZFUNDS_AMOUNT_MAX) {
        return ZE_INVALID;
    }
    if (zfunds_available(l) < amount) {
        return ZE_CONFLICT;
    }
    l->held += amount;
    return 0;
}

int zfunds_hold_release(zfunds_ledger_t *l, int64_t amount)
{
    if (amount <= 0 || amount > l->held) {
        return ZE_INTERNAL;
    }
    l->held -= amount;
    return 0;
}

int zfunds_ledger_append(zfunds_ledger_t *l, zfunds_entry_t *e, int64_t now_ms)
{
    zfunds_effect_t fx;
    if (zfunds_entry_effect(e, &fx) != 0) {
        return ZE_INVALID;
    }
    int64_t balance = l->balance + fx.cash;
    if (balance > ZFUNDS_BALANCE_MAX) {
        return ZE_INVALID;
    }
    /* Debits must not exceed credits: cash never drops below what is held. */
    if (balance < l->held || balance < 0) {
        return ZE_CONFLICT;
    }
    e->seq = l->entries + 1;
    e->ts_ms = now_ms > l->last_ts_ms ? now_ms : l->last_ts_ms;
    e->balance = balance;
    memcpy(e->prev_hash, l->head_hash, ZFUNDS_HASH_BYTES);
    l->balance = balance;
    l->entries = e->seq;
    l->last_ts_ms = e->ts_ms;
    l->revenue[fx.category] += fx.revenue;
    l->spent += fx.spent;
    return 0;
}

void zfunds_ledger_head(zfunds_ledger_t *l, const zfunds_entry_t *e)
{
    memcpy(l->head_hash, e->hash, ZFUNDS_HASH_BYTES);
}

/* ---- approvals ------------------------------------------------------------------- */

int zfunds_approval_check(const zfunds_approval_t *done, size_t n, int holder, const char *actor)
{
    if (n >= 2) {
        return ZE_CONFLICT;
    }
    for (size_t i = 0; i < n; i++) {
        if (done[i].holder == holder || strcmp(done[i].actor, actor) == 0) {
            return ZE_FORBIDDEN; /* one person can never be both */
        }
    }
    return 0;
}

bool zfunds_approvals_complete(const zfunds_approval_t *done, size_t n)
{
    return n == 2 && done[0].holder != done[1].holder &&
           (done[0].holder == ZFUNDS_HOLDER_A || done[0].holder == ZFUNDS_HOLDER_B) &&
           (done[1].holder == ZFUNDS_HOLDER_A || done[1].holder == ZFUNDS_HOLDER_B) &&
           strcmp(done[0].actor, done[1].actor) != 0;
}

bool zfunds_withdrawal_holds(int state)
{
    return state == ZFUNDS_W_RESERVING || state == ZFUNDS_W_PENDING;
}

int zfunds_withdrawal_transition(int from, int to)
{
    switch (from) {
    case ZFUNDS_W_RESERVING:
        return to == ZFUNDS_W_PENDING || to == ZFUNDS_W_REFUSED ? 0 : ZE_CONFLICT;
    case ZFUNDS_W_PENDING:
        return to == ZFUNDS_W_POSTED || to == ZFUNDS_W_REJECTED || to == ZFUNDS_W_VOIDED ||
                       to == ZFUNDS_W_EXPIRED
                   ? 0
                   : ZE_CONFLICT;
    default:
        return ZE_CONFLICT; /* posted, rejected, voided, expired, refused are final */
    }
}

/* ---- verification ------------------------------------------------------------------ */

void zfunds_verifier_init(zfunds_verifier_t *v)
{
    memset(v, 0, sizeof *v);
    v->expected_seq = 1;
}

static bool verifier_bad(zfunds_verifier_t *v, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool verifier_bad(zfunds_verifier_t *v, uint64_t seq, const char *fmt, ...)
{
    v->bad = true;
    v->first_bad_seq = seq;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->problem, sizeof v->problem, fmt, ap);
    va_end(ap);
    return false;
}

bool zfunds_verifier_feed(zfunds_verifier_t *v, uint64_t key_seq, const uint8_t *rec, size_t len)
{
    if (v->bad) {
        return false;
    }
    uint64_t seq = v->expected_seq;
    if (key_seq != seq) {
        return verifier_bad(v, seq, "entry %lld is missing (the next stored entry is %lld)",
                            (long long)seq, (long long)key_seq);
    }
    zfunds_entry_t e;
    if (zfunds_entry_decode(rec, len, &e) != 0) {
        return verifier_bad(v, seq, "entry %lld is not a valid record", (long long)seq);
    }
    if (e.seq != seq) {
        return verifier_bad(v, seq, "entry %lld says it is entry %lld", (long long)seq,
                            (long long)e.seq);
    }
    if (sodium_memcmp(e.prev_hash, v->running, ZFUNDS_HASH_BYTES) != 0) {
        return verifier_bad(v, seq, "entry %lld does not carry the hash of entry %lld",
                            (long long)seq, (long long)seq - 1);
    }
    if (!zfunds_entry_hash_ok(rec, len)) {
        return verifier_bad(v, seq,
                            "entry %lld was changed after it was written (its hash does "
                            "not match its content)",
                            (long long)seq);
    }
    zfunds_effect_t fx;
    if (zfunds_entry_effect(&e, &fx) != 0) {
        return verifier_bad(v, seq, "entry %lld has an impossible kind or amount", (long long)seq);
    }
    v->balance += fx.cash;
    if (e.balance != v->balance) {
        return verifier_bad(v, seq, "entry %lld says the balance is %lld fen", (long long)seq,
                            (long long)e.balance);
    }
    v->revenue[fx.category] += fx.revenue;
    v->spent += fx.spent;
    memcpy(v->running, e.hash, ZFUNDS_HASH_BYTES);
    v->expected_seq = seq + 1;
    v->checked++;
    return true;
}

void zfunds_verifier_finish(zfunds_verifier_t *v, const zfunds_ledger_t *stored, int64_t held)
{
    if (v->bad) {
        return;
    }
    uint64_t last = v->expected_seq - 1;
    if (stored->entries != last) {
        /* The tail is gone: the first missing entry is the bad one. */
        verifier_bad(v, last + 1, "the account has %lld entries but only %lld are in the journal",
                     (long long)stored->entries, (long long)last);
        return;
    }
    if (sodium_memcmp(stored->head_hash, v->running, ZFUNDS_HASH_BYTES) != 0) {
        verifier_bad(v, last, "entry %lld is not the head the account recorded", (long long)last);
        return;
    }
    if (stored->balance != v->balance) {
        verifier_bad(v, 0, "the stored balance %lld fen differs from the sum of the entries, %lld",
                     (long long)stored->balance, (long long)v->balance);
        return;
    }
    for (int c = 0; c < ZFUNDS_CATEGORIES; c++) {
        if (stored->revenue[c] != v->revenue[c]) {
            verifier_bad(v, 0,
                         "the stored revenue of category %lld differs from the entries "
                         "(%lld fen)",
                         (long long)c, (long long)v->revenue[c]);
            return;
        }
    }
    if (stored->spent != v->spent) {
        verifier_bad(v, 0, "the stored withdrawals total %lld differs from the entries (%lld fen)",
                     (long long)stored->spent, (long long)v->spent);
        return;
    }
    if (stored->held != held) {
        verifier_bad(v, 0, "the stored hold %lld fen differs from the open withdrawals (%lld)",
                     (long long)stored->held, (long long)held);
        return;
    }
    if (held < 0 || held > v->balance) {
        verifier_bad(v, 0, "%lld fen are held but the balance is %lld", (long long)held,
                     (long long)v->balance);
    }
}

/* ---- statements ---------------------------------------------------------------------- */

void zfunds_statement_init(zfunds_statement_t *s, int64_t opening)
{
    memset(s, 0, sizeof *s);
    s->opening = opening;
}

void zfunds_statement_add(zfunds_statement_t *s, const zfunds_effect_t *fx)
{
    s->revenue[fx->category] += fx->revenue;
    s->revenue_total += fx->revenue;
    s->withdrawals_total += fx->spent;
}

void zfunds_statement_close(zfunds_statement_t *s)
{
    s->closing = s->opening + s->revenue_total - s->withdrawals_total;
}

int zfunds_statement_check(const zfunds_statement_t *s, int64_t closing)
{
    int64_t sum = 0;
    for (int c = 0; c < ZFUNDS_CATEGORIES; c++) {
        sum += s->revenue[c];
    }
    return sum == s->revenue_total && s->closing == closing ? 0 : ZE_INTERNAL;
}

/* ---- fees ------------------------------------------------------------------------------ */

int zfunds_fee_amount(int64_t rate_fen_per_m2, int64_t area_centi_m2, int64_t flat_fen,
                      int64_t *out)
{
    if ((rate_fen_per_m2 != 0) == (flat_fen != 0) || rate_fen_per_m2 < 0 || flat_fen < 0) {
        return ZE_INVALID;
    }
    int64_t amount = flat_fen;
    if (rate_fen_per_m2 != 0) {
        if (rate_fen_per_m2 > ZFUNDS_FEE_RATE_MAX || area_centi_m2 <= 0 ||
            area_centi_m2 > INT64_MAX / ZFUNDS_FEE_RATE_MAX) {
            return ZE_INVALID;
        }
        amount = (rate_fen_per_m2 * area_centi_m2 + 50) / 100; /* half up */
    }
    if (amount <= 0 || amount > ZFUNDS_AMOUNT_MAX) {
        return ZE_INVALID;
    }
    *out = amount;
    return 0;
}

uint32_t zfunds_permille(uint64_t num, uint64_t den)
{
    return den == 0 ? 0 : (uint32_t)(num * 1000 / den);
}

/* ---- the four-step inventory ----------------------------------------------------------- */

int zfunds_inventory_next(int last, int step, bool *new_round)
{
    *new_round = false;
    if (step < ZFUNDS_STEP_DEPARTMENT_COUNT || step > ZFUNDS_STEP_PUBLIC_REVIEW) {
        return ZE_INVALID;
    }
    if (last == ZFUNDS_STEP_PUBLIC_REVIEW && step == ZFUNDS_STEP_DEPARTMENT_COUNT) {
        *new_round = true;
        return 0;
    }
    return step == last + 1 ? 0 : ZE_CONFLICT;
}

bool zfunds_inventory_complete(int last)
{
    return last == ZFUNDS_STEP_PUBLIC_REVIEW;
}

const char *zfunds_step_zh(int step)
{
    static const char *const names[] = {NULL, "部门盘点", "物业提报", "现场核验", "群众审议"};
    return step >= 1 && step <= 4 ? names[step] : NULL;
}
