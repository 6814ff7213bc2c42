/* handlers_lines: the line contract funds relies on (docs/funds.md, "The
 * budgets contract"; docs/budgets.md, "The line contract"): reserve, consume,
 * release, idempotent by withdrawal id, and funds.reversed giving a reversed
 * withdrawal's spending back. Each reservation is decided inside the group
 * commit's write transaction, so racing reservations never overspend a line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/caltime.h"
#include "common/err.h"
#include "services/budgets/budgets.h"
#include "services/budgets/handlers.h"
#include "services/budgets/handlers_internal.h"
#include "services/budgets/store.h"

/* ---- the line contract (docs/funds.md, "The budgets contract") ---------- */

static void reservation_answer(zsvc_ctx_t *ctx, const char *wid, const zbstore_resv_t *r,
                               const zbstore_line_t *line)
{
    Zhili__Budgets__LineReservation *out = zsvc_alloc(ctx, sizeof *out);
    zhili__budgets__line_reservation__init(out);
    const char *colon = strrchr(r->line_key, ':');
    out->line = zsvc_strdup(ctx, colon != NULL ? colon + 1 : r->line_key);
    out->amount = r->amount;
    out->remaining = line != NULL ? zbud_remaining(line->budget, line->reserved, line->spent) : 0;
    out->withdrawal_id = zsvc_strdup(ctx, wid);
    out->state = r->state == 'r' ? "reserved" : r->state == 'c' ? "consumed" : "released";
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_BUDGETS_LINE_RESERVATION;
    ctx->reply->budgets_line_reservation = out;
}

static int contract_caller_check(zsvc_ctx_t *ctx)
{
    if (!zbh_role_is(ctx, "service", "admin")) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "actor",
                         "line reservations are made by the funds service, not role \"%s\"",
                         zbh_actor_role(ctx));
    }
    return 0;
}

static int wid_check(zsvc_ctx_t *ctx, const char *wid)
{
    if (wid == NULL || wid[0] == '\0' || strlen(wid) > ZBUD_WITHDRAWAL_ID_BYTES_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "withdrawal_id", "withdrawal_id must be 1..%d bytes",
                         ZBUD_WITHDRAWAL_ID_BYTES_MAX);
    }
    return 0;
}

/* A line is reservable only when its budget is active: say why not. */
static int line_missing(zsvc_ctx_t *ctx, const Zhili__Budgets__LineReserve *q)
{
    char key[ZBUD_KEY_BYTES_MAX];
    zbstore_budget_key(key, q->area, q->year);
    static zbstore_budget_t b; /* large: off the stack; one thread */
    if (zbstore_get(ctx->txn, zsvc_table(ctx, T_BUDGETS), key, &b, sizeof b) == 0) {
        if (b.state != ZBUD_ACTIVE) {
            return zsvc_fail(ctx, ZE_CONFLICT, "line",
                             "the %lld budget of %s is %s, not active: it must be co-signed "
                             "(联签联审) before money is spent",
                             (long long)q->year, q->area, zbud_state_name(b.state));
        }
    }
    return zsvc_fail(ctx, ZE_NOT_FOUND, "line", "no active budget line %s in %lld for %s", q->line,
                     (long long)q->year, q->area);
}

int zbud_line_reserve(zsvc_ctx_t *ctx, const Zhili__Budgets__LineReserve *q)
{
    int rc = contract_caller_check(ctx);
    if (rc == 0) {
        rc = wid_check(ctx, q->withdrawal_id);
    }
    if (rc == 0) {
        rc = zbh_area_year_check(ctx, q->area, q->year);
    }
    if (rc == 0 && !zbud_code_valid(q->line)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "line", "line must be an item code like 2-01");
    }
    if (rc == 0 && (q->amount <= 0 || q->amount > ZBUD_AMOUNT_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "amount", "amount must be 1..%lld fen",
                       (long long)ZBUD_AMOUNT_MAX);
    }
    if (rc != 0) {
        return rc;
    }
    int t_resv = zsvc_table(ctx, T_RESV), t_lines = zsvc_table(ctx, T_LINES);
    char key[ZBUD_KEY_BYTES_MAX];
    zbstore_line_key(key, q->area, q->year, q->line);
    zbstore_resv_t r;
    memset(&r, 0, sizeof r);
    zbstore_line_t l;
    memset(&l, 0, sizeof l);
    if (zbstore_get(ctx->txn, t_resv, q->withdrawal_id, &r, sizeof r) == 0) {
        /* Idempotent by withdrawal id: the same reservation answers again. */
        if (r.state == 'x' || r.amount != q->amount || strcmp(r.line_key, key) != 0) {
            return zsvc_fail(ctx, ZE_CONFLICT, "withdrawal_id", "withdrawal %s was already %s",
                             q->withdrawal_id,
                             r.state == 'x' ? "released" : "reserved with another line or amount");
        }
        zbstore_get(ctx->txn, t_lines, r.line_key, &l, sizeof l);
        reservation_answer(ctx, q->withdrawal_id, &r, &l);
        return ztxn_err(ctx->txn);
    }
    if (zbstore_get(ctx->txn, t_lines, key, &l, sizeof l) != 0) {
        return ztxn_err(ctx->txn) != 0 ? ztxn_err(ctx->txn) : line_missing(ctx, q);
    }
    char msg[ZBUD_MSG_BYTES];
    rc = zbud_reserve_check(q->line, l.budget, l.reserved, l.spent, q->amount, msg);
    if (rc != 0) {
        return zsvc_fail(ctx, rc, "amount", "%s", msg);
    }
    l.reserved += q->amount;
    snprintf(r.line_key, sizeof r.line_key, "%s", key);
    r.amount = q->amount;
    r.state = 'r';
    zbstore_put(ctx->txn, t_resv, q->withdrawal_id, &r, sizeof r);
    zbstore_put(ctx->txn, t_lines, key, &l, sizeof l);
    reservation_answer(ctx, q->withdrawal_id, &r, &l);
    return ztxn_err(ctx->txn);
}

/* The budget month (0..11) that spending at now_ms counts in for a line key
 * "<area>:<year>:<code>": earlier years count in January, later in December. */
static int spend_month(const char *line_key, int64_t now_ms)
{
    const char *c = strchr(line_key, ':');
    long long year = c != NULL ? strtoll(c + 1, NULL, 10) : 0;
    ztime_parts_t p;
    ztime_local(now_ms, &p);
    if (p.year < year) {
        return 0;
    }
    return p.year > year ? ZBUD_MONTHS - 1 : p.month - 1;
}

int zbud_line_settle(zsvc_ctx_t *ctx, const char *wid, bool consume)
{
    int rc = contract_caller_check(ctx);
    if (rc == 0) {
        rc = wid_check(ctx, wid);
    }
    if (rc != 0) {
        return rc;
    }
    int t_resv = zsvc_table(ctx, T_RESV), t_lines = zsvc_table(ctx, T_LINES);
    zbstore_resv_t r;
    memset(&r, 0, sizeof r);
    zbstore_line_t l;
    memset(&l, 0, sizeof l);
    if (zbstore_get(ctx->txn, t_resv, wid, &r, sizeof r) != 0) {
        if (consume) {
            return zsvc_fail(ctx, ZE_NOT_FOUND, "withdrawal_id", "no reservation %s", wid);
        }
        r.state = 'x'; /* remembered: a late reserve with this id is refused */
        zbstore_put(ctx->txn, t_resv, wid, &r, sizeof r);
        reservation_answer(ctx, wid, &r, NULL);
        return ztxn_err(ctx->txn);
    }
    bool have_line =
        r.line_key[0] != '\0' && zbstore_get(ctx->txn, t_lines, r.line_key, &l, sizeof l) == 0;
    char want = consume ? 'c' : 'x';
    if (r.state != 'r' && r.state != want) {
        return zsvc_fail(ctx, ZE_CONFLICT, "withdrawal_id", "reservation %s is already %s", wid,
                         r.state == 'c' ? "consumed" : "released");
    }
    if (r.state == 'r' && have_line) {
        int month = spend_month(r.line_key, ctx->now_ms);
        l.reserved -= r.amount;
        if (consume) {
            l.spent += r.amount;
            l.spent_month[month] += r.amount;
        }
        r.state = want;
        zbstore_put(ctx->txn, t_resv, wid, &r, sizeof r);
        zbstore_put(ctx->txn, t_lines, r.line_key, &l, sizeof l);
        if (consume) {
            zbud_republish(ctx, r.line_key, month);
        }
    }
    reservation_answer(ctx, wid, &r, have_line ? &l : NULL);
    return ztxn_err(ctx->txn);
}

const char *const zbud_subscribe[] = {"funds.deposited", "funds.reversed", NULL};

/* The compound's revenue of a local year, from funds' deposits net of their
 * reversals: the default expected income of the next year's budget. */
static void revenue_add(zsvc_ctx_t *ctx, const char *area, int64_t ts_ms, int64_t amount)
{
    if (area == NULL || strlen(area) != ZBUD_AREA_BYTES) {
        return;
    }
    char key[ZBUD_KEY_BYTES_MAX];
    zbstore_budget_key(key, area, ztime_year(ts_ms));
    int64_t total = 0;
    zbstore_get(ctx->txn, zsvc_table(ctx, T_REVENUE), key, &total, sizeof total);
    total += amount;
    zbstore_put(ctx->txn, zsvc_table(ctx, T_REVENUE), key, &total, sizeof total);
}

/* funds.deposited: revenue. funds.reversed: a reversed deposit takes its
 * revenue back; a reversed posted withdrawal gives its spending back to the
 * line (in the month of the reversal). Other events are ignored. */
int zbud_on_event(zsvc_ctx_t *ctx, const Zhili__V1__Event *ev)
{
    if (ev->body_case != ZHILI__V1__EVENT__BODY_FUNDS_ENTRY || ev->type == NULL) {
        return 0;
    }
    const Zhili__Funds__Entry *e = ev->funds_entry;
    bool reversal = strcmp(ev->type, "reversed") == 0;
    if (strcmp(ev->type, "deposited") == 0 ||
        (reversal && e->debit != NULL && strncmp(e->debit, "revenue:", 8) == 0)) {
        revenue_add(ctx, e->account, ev->ts_ms, reversal ? -e->amount : e->amount);
        return ztxn_err(ctx->txn);
    }
    if (!reversal) {
        return 0;
    }
    const char *wid = e->withdrawal_id;
    if (wid == NULL || wid[0] == '\0' || strlen(wid) > ZBUD_WITHDRAWAL_ID_BYTES_MAX) {
        return 0;
    }
    int t_resv = zsvc_table(ctx, T_RESV), t_lines = zsvc_table(ctx, T_LINES);
    zbstore_resv_t r;
    zbstore_line_t l;
    if (zbstore_get(ctx->txn, t_resv, wid, &r, sizeof r) != 0 || r.state != 'c' || r.reversed ||
        zbstore_get(ctx->txn, t_lines, r.line_key, &l, sizeof l) != 0) {
        return ztxn_err(ctx->txn);
    }
    int month = spend_month(r.line_key, ev->ts_ms);
    l.spent -= r.amount;
    l.spent_month[month] -= r.amount;
    r.reversed = true;
    zbstore_put(ctx->txn, t_lines, r.line_key, &l, sizeof l);
    zbstore_put(ctx->txn, t_resv, wid, &r, sizeof r);
    zbud_republish(ctx, r.line_key, month);
    return ztxn_err(ctx->txn);
}
