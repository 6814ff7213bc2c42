/* handlers_query: reading the account: entries by period and category, the
 * monthly statement, the journal's verification, withdrawals (docs/funds.md).
 * Queries run on a read snapshot after the batch commits. */
#include <stdio.h>
#include <string.h>

#include "common/caltime.h"
#include "services/funds/handlers_internal.h"

static const char *const roles_verify[] = {"admin",      "command_center", "committee",
                                           "supervisor", "staff",          NULL};

static int64_t page_limit(int64_t limit)
{
    return limit <= 0 ? ZFUNDS_PAGE_DEFAULT : limit > ZFUNDS_PAGE_MAX ? ZFUNDS_PAGE_MAX : limit;
}

static int limit_arg(zsvc_ctx_t *ctx, int64_t limit)
{
    if (limit < 0 || limit > ZFUNDS_PAGE_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "limit", "limit must be 1 to %d (0: %d)", ZFUNDS_PAGE_MAX,
                         ZFUNDS_PAGE_DEFAULT);
    }
    return 0;
}

/* ---- entries ------------------------------------------------------------------------ */

typedef struct {
    zsvc_ctx_t *ctx;
    int64_t from_ms, to_ms;
    int category;
    bool public_view;
    Zhili__Funds__Entry **out;
    size_t count, limit;
    uint64_t rows, last_seq;
    bool more;
    int err;
} entries_scan_t;

static int entries_row(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
    entries_scan_t *s = arg;
    zfunds_entry_t e;
    if (s->rows++ >= ZFUNDS_SCAN_ROWS_MAX) {
        s->more = true; /* the caller pages on from last_seq */
        return 1;
    }
    if (zfunds_entry_decode(rec, len, &e) != 0) {
        s->err = zsvc_fail(s->ctx, ZE_INTERNAL, NULL, "entry %llu is damaged; run verify",
                           (unsigned long long)seq);
        return 1;
    }
    if (s->to_ms != 0 && e.ts_ms >= s->to_ms) {
        return 1;
    }
    s->last_seq = seq;
    if (e.ts_ms < s->from_ms || (s->category != 0 && e.category != s->category)) {
        return 0;
    }
    if (s->count == s->limit) {
        s->more = true;
        s->last_seq = seq - 1;
        return 1;
    }
    s->out[s->count++] = zfh_entry_msg(s->ctx, &e, s->public_view);
    return 0;
}

static int time_arg(zsvc_ctx_t *ctx, const char *field, const char *text, int64_t *ms)
{
    *ms = 0;
    if (text == NULL || text[0] == '\0') {
        return 0;
    }
    if (ztime_parse(text, ms) != 0) {
        return zsvc_fail(ctx, ZE_INVALID, field,
                         "%s must be RFC 3339 (2026-11-26T12:00:00+08:00) "
                         "or a local date (2026-11-26)",
                         field);
    }
    return 0;
}

int zfh_entries_list(zsvc_ctx_t *ctx, const Zhili__Funds__EntriesList *l)
{
    bool public_view = true;
    zfunds_ledger_t led;
    entries_scan_t s;
    memset(&s, 0, sizeof s);
    int rc = zfh_view(ctx, l->account, l->ticket, &public_view);
    if (rc == 0) {
        rc = time_arg(ctx, "from", l->from, &s.from_ms);
    }
    if (rc == 0) {
        rc = time_arg(ctx, "to", l->to, &s.to_ms);
    }
    if (rc == 0 && l->category != 0 && zfunds_category_code((int)l->category) == NULL) {
        rc = zsvc_fail(ctx, ZE_INVALID, "category", "unknown category");
    }
    if (rc == 0 && l->after_seq < 0) {
        rc = zsvc_fail(ctx, ZE_INVALID, "after_seq", "after_seq must be 0 or more");
    }
    if (rc == 0) {
        rc = limit_arg(ctx, l->limit);
    }
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", l->account, &led);
    }
    if (rc != 0) {
        return rc;
    }
    /* Start at the first month of the period that has entries. */
    uint64_t from_seq = (uint64_t)l->after_seq + 1;
    zfstore_month_t m;
    if (s.from_ms != 0 &&
        zfstore_month_from(ctx->txn, ftab(ctx), l->account, ztime_month_key(s.from_ms), &m) == 0 &&
        m.first_seq > from_seq) {
        from_seq = m.first_seq;
    }
    s.ctx = ctx;
    s.category = (int)l->category;
    s.public_view = public_view;
    s.limit = (size_t)page_limit(l->limit);
    s.out = zsvc_alloc(ctx, sizeof *s.out * s.limit);
    zfstore_journal_scan(ctx->txn, ftab(ctx), l->account, from_seq, &s, entries_row);
    if (s.err != 0) {
        return s.err;
    }
    Zhili__Funds__Entries *r = zsvc_alloc(ctx, sizeof *r);
    zhili__funds__entries__init(r);
    r->entries = s.out;
    r->n_entries = s.count;
    r->next_after_seq = s.more ? (int64_t)s.last_seq : 0;
    r->public_view = public_view;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_ENTRIES;
    ctx->reply->funds_entries = r;
    return ztxn_err(ctx->txn);
}

/* ---- the monthly statement --------------------------------------------------------------- */

typedef struct {
    zsvc_ctx_t *ctx;
    zfunds_statement_t st;
    Zhili__Funds__LineAmount **lines;
    size_t n_lines;
} sums_t;

static int sum_row(void *arg, char kind, const uint8_t *name, size_t name_len, int64_t amount)
{
    sums_t *s = arg;
    zfunds_effect_t fx = {0, 0, 0, 0};
    if (kind == 'r' && name_len == 1 && name[0] < ZFUNDS_CATEGORIES) {
        fx.category = name[0];
        fx.revenue = amount;
    } else if (kind == 'w' && s->n_lines < ZFUNDS_STATEMENT_LINES_MAX) {
        fx.spent = amount;
        Zhili__Funds__LineAmount *la = zsvc_alloc(s->ctx, sizeof *la);
        zhili__funds__line_amount__init(la);
        la->line = zfh_str(s->ctx, (zfunds_str_t){(const char *)name, name_len});
        la->amount = amount;
        s->lines[s->n_lines++] = la;
    } else {
        return 0;
    }
    zfunds_statement_add(&s->st, &fx);
    return 0;
}

int zfh_statement_get(zsvc_ctx_t *ctx, const Zhili__Funds__StatementGet *g)
{
    bool public_view = true;
    zfunds_ledger_t l;
    int month = 0;
    int rc = zfh_view(ctx, g->account, g->ticket, &public_view);
    if (rc == 0 && zfunds_month_parse(g->month, &month) != 0) {
        rc = zsvc_fail(ctx, ZE_INVALID, "month", "month must be YYYY-MM, e.g. 2026-11");
    }
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", g->account, &l);
    }
    if (rc != 0) {
        return rc;
    }
    zfstore_month_t m = {0, 0, 0, 0};
    int found = 0;
    if (zfstore_month_get(ctx->txn, ftab(ctx), g->account, month, &m) != 0) {
        /* A month without entries opens and closes where the last one closed. */
        zfstore_month_t before;
        int64_t carried =
            zfstore_month_before(ctx->txn, ftab(ctx), g->account, month, &found, &before) == 0
                ? before.closing
                : 0;
        m = (zfstore_month_t){0, 0, carried, carried};
    }
    sums_t s;
    memset(&s, 0, sizeof s);
    s.ctx = ctx;
    s.lines = zsvc_alloc(ctx, sizeof *s.lines * ZFUNDS_STATEMENT_LINES_MAX);
    zfunds_statement_init(&s.st, m.opening);
    zfstore_msums_scan(ctx->txn, ftab(ctx), g->account, month, &s, sum_row);
    zfunds_statement_close(&s.st);
    if (zfunds_statement_check(&s.st, m.closing) != 0) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL,
                         "the statement of %s does not add up (opening "
                         "%lld + revenue %lld - withdrawals %lld != "
                         "closing %lld); run verify",
                         g->month, (long long)m.opening, (long long)s.st.revenue_total,
                         (long long)s.st.withdrawals_total, (long long)m.closing);
    }
    Zhili__Funds__Statement *st = zsvc_alloc(ctx, sizeof *st);
    zhili__funds__statement__init(st);
    st->account = g->account;
    st->month = g->month;
    st->opening = s.st.opening;
    st->n_revenue = ZFUNDS_CATEGORIES - 1;
    st->revenue = zsvc_alloc(ctx, sizeof *st->revenue * st->n_revenue);
    for (int c = 1; c < ZFUNDS_CATEGORIES; c++) {
        Zhili__Funds__CategoryAmount *ca = zsvc_alloc(ctx, sizeof *ca);
        zhili__funds__category_amount__init(ca);
        ca->category = (Zhili__Funds__Category)c;
        ca->amount = s.st.revenue[c];
        st->revenue[c - 1] = ca;
    }
    st->revenue_total = s.st.revenue_total;
    st->withdrawals = s.lines;
    st->n_withdrawals = s.n_lines;
    st->withdrawals_total = s.st.withdrawals_total;
    st->closing = s.st.closing;
    st->first_seq = m.first_seq;
    st->last_seq = m.last_seq;
    st->held = l.held;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_STATEMENT;
    ctx->reply->funds_statement = st;
    return ztxn_err(ctx->txn);
}

/* ---- verification -------------------------------------------------------------------------- */

static int verify_row(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
    return zfunds_verifier_feed(arg, seq, rec, len) ? 0 : 1;
}

typedef struct {
    int64_t held;
    zsvc_ctx_t *ctx;
} held_sum_t;

static int held_row(void *arg, zval_t key, zval_t val)
{
    (void)key;
    held_sum_t *h = arg;
    ProtobufCMessage *m = NULL;
    if (zfstore_unpack(h->ctx->arena, &zhili__funds__withdrawal__descriptor, val.data, val.len,
                       &m) == 0) {
        const Zhili__Funds__Withdrawal *w = (const Zhili__Funds__Withdrawal *)m;
        if (zfunds_withdrawal_holds((int)w->state)) {
            h->held += w->amount;
        }
    }
    return 0;
}

int zfh_verify(zsvc_ctx_t *ctx, const Zhili__Funds__Verify *v)
{
    zfunds_ledger_t l;
    if (!zfunds_account_ok(v->account)) {
        return zsvc_fail(ctx, ZE_INVALID, "account",
                         "account must be the compound's 15-digit "
                         "area code");
    }
    int rc = zfh_authorize(ctx, v->account, roles_verify, "verifying the journal (现场账目查询)");
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", v->account, &l);
    }
    if (rc != 0) {
        return rc;
    }
    zfunds_verifier_t *vf = zsvc_alloc(ctx, sizeof *vf);
    zfunds_verifier_init(vf);
    zfstore_journal_scan(ctx->txn, ftab(ctx), v->account, 1, vf, verify_row);
    held_sum_t h = {0, ctx};
    uint8_t prefix[ZFUNDS_ACCOUNT_BYTES];
    ztxn_scan(ctx->txn, ftab(ctx)->withdrawals, prefix, zfkey_account(prefix, v->account), NULL, 0,
              &h, held_row);
    zfunds_verifier_finish(vf, &l, h.held);
    Zhili__Funds__VerifyResult *r = zsvc_alloc(ctx, sizeof *r);
    zhili__funds__verify_result__init(r);
    r->account = v->account;
    r->ok = !vf->bad;
    r->entries = vf->checked;
    r->first_bad_seq = vf->first_bad_seq;
    r->problem = zsvc_strdup(ctx, vf->problem);
    r->balance = vf->balance;
    r->stored_balance = l.balance;
    r->held = h.held;
    r->stored_held = l.held;
    r->head_hash.data = zsvc_alloc(ctx, ZFUNDS_HASH_BYTES);
    memcpy(r->head_hash.data, l.head_hash, ZFUNDS_HASH_BYTES);
    r->head_hash.len = ZFUNDS_HASH_BYTES;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_VERIFY;
    ctx->reply->funds_verify = r;
    return ztxn_err(ctx->txn);
}

/* ---- withdrawals ------------------------------------------------------------------------------
 */

int zfh_withdrawal_get_q(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalGet *g)
{
    bool public_view = true;
    Zhili__Funds__Withdrawal *w = NULL;
    int rc = zfh_view(ctx, g->account, g->ticket, &public_view);
    if (rc != 0) {
        return rc;
    }
    uint64_t number = zfunds_withdrawal_number(g->withdrawal_id, g->account);
    if (number == 0 || zfh_withdrawal_get(ctx, g->account, number, &w) != 0) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, "withdrawal_id", "the account has no withdrawal %s",
                         g->withdrawal_id);
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_WITHDRAWAL;
    ctx->reply->funds_withdrawal = public_view ? zfh_withdrawal_public(ctx, w) : w;
    return ztxn_err(ctx->txn);
}

typedef struct {
    zsvc_ctx_t *ctx;
    int state;
    bool public_view;
    Zhili__Funds__Withdrawal **out;
    size_t count, limit;
    uint64_t rows, last;
    bool more;
} wlist_t;

static int wlist_row(void *arg, zval_t key, zval_t val)
{
    wlist_t *s = arg;
    if (key.len != ZFUNDS_ACCOUNT_BYTES + 8 || s->rows++ >= ZFUNDS_SCAN_ROWS_MAX) {
        s->more = true;
        return 1;
    }
    uint64_t number = zstore_be64_get((const uint8_t *)key.data + ZFUNDS_ACCOUNT_BYTES);
    ProtobufCMessage *m = NULL;
    if (zfstore_unpack(s->ctx->arena, &zhili__funds__withdrawal__descriptor, val.data, val.len,
                       &m) != 0) {
        return ZE_INTERNAL;
    }
    Zhili__Funds__Withdrawal *w = (Zhili__Funds__Withdrawal *)m;
    if (s->state != 0 && (int)w->state != s->state) {
        s->last = number;
        return 0;
    }
    if (s->count == s->limit) {
        s->more = true;
        return 1;
    }
    s->last = number;
    s->out[s->count++] = s->public_view ? zfh_withdrawal_public(s->ctx, w) : w;
    return 0;
}

int zfh_withdrawals_list(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalsList *l)
{
    bool public_view = true;
    int rc = zfh_view(ctx, l->account, l->ticket, &public_view);
    if (rc == 0 && ((int)l->state < 0 || (int)l->state > ZFUNDS_W_REFUSED)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "state", "unknown withdrawal state");
    }
    if (rc == 0 && l->after < 0) {
        rc = zsvc_fail(ctx, ZE_INVALID, "after", "after must be 0 or more");
    }
    if (rc == 0) {
        rc = limit_arg(ctx, l->limit);
    }
    if (rc != 0) {
        return rc;
    }
    wlist_t s;
    memset(&s, 0, sizeof s);
    s.ctx = ctx;
    s.state = (int)l->state;
    s.public_view = public_view;
    s.limit = (size_t)page_limit(l->limit);
    s.out = zsvc_alloc(ctx, sizeof *s.out * s.limit);
    uint8_t prefix[ZFUNDS_ACCOUNT_BYTES], start[ZFUNDS_ACCOUNT_BYTES + 8];
    if (ztxn_scan(ctx->txn, ftab(ctx)->withdrawals, prefix, zfkey_account(prefix, l->account),
                  start, zfkey_account_u64(start, l->account, (uint64_t)l->after + 1), &s,
                  wlist_row) < 0) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "a withdrawal row is damaged");
    }
    Zhili__Funds__Withdrawals *r = zsvc_alloc(ctx, sizeof *r);
    zhili__funds__withdrawals__init(r);
    r->withdrawals = s.out;
    r->n_withdrawals = s.count;
    r->next_after = s.more ? (int64_t)s.last : 0;
    r->public_view = public_view;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_WITHDRAWALS;
    ctx->reply->funds_withdrawals = r;
    return ztxn_err(ctx->txn);
}
