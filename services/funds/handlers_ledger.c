/* handlers_ledger: deposits, reversals and withdrawals (docs/funds.md).
 *
 * A withdrawal holds money before anything else happens (以收定支): the
 * request checks the available amount, holds it in state RESERVING, and asks
 * budgets to reserve the amount on its line (zsvc_call, deferred reply). The
 * answer continues here: OK makes it PENDING; anything else is the caller's
 * error, and because an error rolls the continuation's own writes back, the
 * hold is released by the tick (a hint from the failed continuation, or the
 * line check's deadline when the service restarted meanwhile). Posting
 * consumes the reservation at budgets and rejecting, voiding or expiring
 * releases it, through budget_ops: sent by the tick, retried until budgets
 * answers. */
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "common/caltime.h"
#include "common/clock.h"
#include "common/log.h"
#include "services/funds/handlers_internal.h"

static const char *const roles_deposit[] = {"admin", "staff", "property", "committee", NULL};
static const char *const roles_reverse[] = {"admin", "staff", "committee", NULL};
static const char *const roles_request[] = {"admin", "staff", "property", "committee", NULL};

static int account_arg(zsvc_ctx_t *ctx, const char *account)
{
    if (!zfunds_account_ok(account)) {
        return zsvc_fail(ctx, ZE_INVALID, "account",
                         "account must be the compound's 15-digit "
                         "area code");
    }
    return 0;
}

static int amount_arg(zsvc_ctx_t *ctx, int64_t amount)
{
    if (amount <= 0 || amount > ZFUNDS_AMOUNT_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "amount",
                         "amount must be 1 to %lld fen (at most "
                         "一百万元 at a time)",
                         (long long)ZFUNDS_AMOUNT_MAX);
    }
    return 0;
}

static int party_kind_arg(zsvc_ctx_t *ctx, const char *field, int kind, uint8_t *out)
{
    if (kind < 0 || kind > ZFUNDS_PARTY_HOUSEHOLD) {
        return zsvc_fail(ctx, ZE_INVALID, field, "%s must be organisation, person or household",
                         field);
    }
    /* Unspecified is a person: private unless said otherwise. */
    *out = (uint8_t)(kind == 0 ? ZFUNDS_PARTY_PERSON : kind);
    return 0;
}

/* A receipt number written by people: '#' starts the service's own. */
static int receipt_arg(zsvc_ctx_t *ctx, const char *receipt)
{
    int rc = zfh_text(ctx, "receipt", receipt, 1, ZFUNDS_RECEIPT_BYTES_MAX);
    if (rc == 0 && receipt[0] == '#') {
        rc = zsvc_fail(ctx, ZE_INVALID, "receipt",
                       "receipt numbers starting with '#' are the "
                       "service's own (rent, reversals)");
    }
    return rc;
}

static int receipt_unused(zsvc_ctx_t *ctx, const char *account, const char *receipt)
{
    uint64_t seq = zfstore_receipt_seq(ctx->txn, ftab(ctx), account, receipt);
    if (seq != 0) {
        return zsvc_fail(ctx, ZE_CONFLICT, "receipt",
                         "receipt %s is already entry %llu of this "
                         "account",
                         receipt, (unsigned long long)seq);
    }
    return ztxn_err(ctx->txn);
}

static zfunds_str_t sv(const char *s)
{
    return (zfunds_str_t){s, s != NULL ? strlen(s) : 0};
}

/* ---- deposits and reversals ------------------------------------------------------------ */

int zfh_deposit(zsvc_ctx_t *ctx, const Zhili__Funds__Deposit *d)
{
    zfunds_entry_t e;
    memset(&e, 0, sizeof e);
    zfunds_ledger_t l;
    int rc = account_arg(ctx, d->account);
    if (rc == 0) {
        rc = zfh_authorize(ctx, d->account, roles_deposit, "a deposit");
    }
    if (rc == 0 && zfunds_category_code((int)d->category) == NULL) {
        rc = zsvc_fail(ctx, ZE_INVALID, "category",
                       "category must be property_fee, parking_fee, "
                       "advertising_rent, venue_rent, interest or "
                       "other");
    }
    if (rc == 0) {
        rc = amount_arg(ctx, d->amount);
    }
    if (rc == 0) {
        rc = zfh_text(ctx, "payer", d->payer, 1, ZFUNDS_PARTY_BYTES_MAX);
    }
    if (rc == 0) {
        rc = party_kind_arg(ctx, "payer_kind", (int)d->payer_kind, &e.payer_kind);
    }
    if (rc == 0) {
        rc = receipt_arg(ctx, d->receipt);
    }
    if (rc == 0) {
        rc = zfh_text(ctx, "memo", d->memo, 0, ZFUNDS_MEMO_BYTES_MAX);
    }
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", d->account, &l);
    }
    if (rc == 0) {
        rc = receipt_unused(ctx, d->account, d->receipt);
    }
    if (rc != 0) {
        return rc;
    }
    e.kind = ZFUNDS_KIND_DEPOSIT;
    e.category = (uint8_t)d->category;
    e.amount = d->amount;
    e.payer = sv(d->payer);
    e.receipt = sv(d->receipt);
    e.memo = sv(d->memo);
    Zhili__Funds__Entry *out = NULL;
    if ((rc = zfh_append(ctx, d->account, &l, &e, "deposited", &out)) != 0) {
        return rc;
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_ENTRY;
    ctx->reply->funds_entry = out;
    return 0;
}

int zfh_reverse(zsvc_ctx_t *ctx, const Zhili__Funds__Reverse *r)
{
    zfunds_ledger_t l;
    zval_t rec;
    int rc = account_arg(ctx, r->account);
    if (rc == 0) {
        rc = zfh_authorize(ctx, r->account, roles_reverse, "a reversal (冲正)");
    }
    if (rc == 0) {
        rc = zfh_text(ctx, "reason", r->reason, 1, ZFUNDS_MEMO_BYTES_MAX);
    }
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", r->account, &l);
    }
    if (rc != 0) {
        return rc;
    }
    if (r->seq == 0 || r->seq > l.entries ||
        zfstore_journal_get(ctx->txn, ftab(ctx), r->account, r->seq, &rec) != 0) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, "seq", "the account has no entry %llu",
                         (unsigned long long)r->seq);
    }
    zfunds_entry_t orig, e;
    if (zfunds_entry_decode(rec.data, rec.len, &orig) != 0) {
        return zsvc_fail(ctx, ZE_INTERNAL, "seq", "entry %llu is damaged; run verify",
                         (unsigned long long)r->seq);
    }
    if (orig.kind == ZFUNDS_KIND_REVERSAL) {
        return zsvc_fail(ctx, ZE_CONFLICT, "seq",
                         "entry %llu is itself a reversal; record a new "
                         "entry instead",
                         (unsigned long long)r->seq);
    }
    /* One reversal per entry, found by its receipt "#rev-<seq>". */
    char receipt[32];
    snprintf(receipt, sizeof receipt, "#rev-%llu", (unsigned long long)r->seq);
    uint64_t done = zfstore_receipt_seq(ctx->txn, ftab(ctx), r->account, receipt);
    if (done != 0) {
        return zsvc_fail(ctx, ZE_CONFLICT, "seq", "entry %llu was already reversed by entry %llu",
                         (unsigned long long)r->seq, (unsigned long long)done);
    }
    /* Copies point into the map: take them before any write. */
    memset(&e, 0, sizeof e);
    e.kind = ZFUNDS_KIND_REVERSAL;
    e.rev_kind = orig.kind;
    e.category = orig.category;
    e.amount = orig.amount;
    e.reverses = r->seq;
    e.payer_kind = orig.payer_kind;
    e.payee_kind = orig.payee_kind;
    e.payer = sv(zfh_str(ctx, orig.payer));
    e.payee = sv(zfh_str(ctx, orig.payee));
    e.line = sv(zfh_str(ctx, orig.line));
    e.purpose = sv(zfh_str(ctx, orig.purpose));
    e.withdrawal_id = sv(zfh_str(ctx, orig.withdrawal_id));
    e.receipt = sv(zsvc_strdup(ctx, receipt));
    e.memo = sv(r->reason);
    Zhili__Funds__Entry *out = NULL;
    if ((rc = zfh_append(ctx, r->account, &l, &e, "reversed", &out)) != 0) {
        return rc;
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_ENTRY;
    ctx->reply->funds_entry = out;
    return 0;
}

/* ---- withdrawals ------------------------------------------------------------------------- */

static int withdrawal_reply(zsvc_ctx_t *ctx, Zhili__Funds__Withdrawal *w, const char *type)
{
    if (type != NULL) {
        zsvc_emit(ctx, type, w->account, ZHILI__V1__EVENT__BODY_FUNDS_WITHDRAWAL,
                  zfh_withdrawal_public(ctx, w));
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_WITHDRAWAL;
    ctx->reply->funds_withdrawal = w;
    return ztxn_err(ctx->txn);
}

static size_t due_payload(uint8_t *out, const char *account, uint64_t number)
{
    return zfkey_account_u64(out, account, number);
}

/* Send the line reservation to budgets; the answer continues in
 * zfh_reserve_done under "<id>#<attempt>". */
static int reserve_call(zsvc_ctx_t *ctx, const Zhili__Funds__Withdrawal *w)
{
    Zhili__Budgets__LineReserve body = ZHILI__BUDGETS__LINE_RESERVE__INIT;
    body.area = w->account;
    body.year = w->year;
    body.line = w->line;
    body.withdrawal_id = w->id;
    body.amount = w->amount;
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "funds";
    actor.role = "service";
    actor.area = w->account;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.request_id = zarena_printf(ctx->arena, "funds-reserve:%s", w->id);
    cmd.actor = &actor;
    cmd.area = w->account;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_BUDGETS_LINE_RESERVE;
    cmd.budgets_line_reserve = &body;
    char key[64];
    snprintf(key, sizeof key, "%s#%u", w->id, w->attempt);
    zfunds_svc_t *s = fsvc(ctx);
    if (zsvc_call(ctx, s->budgets_service, &cmd, s->budget_timeout_ms, "reserve", key, true) != 0) {
        return zsvc_fail(ctx, ZE_UNAVAILABLE, NULL,
                         "预算服务不可用: too many line checks are in "
                         "flight; nothing was held, try again");
    }
    uint8_t payload[ZFUNDS_ACCOUNT_BYTES + 8];
    uint64_t number = zfunds_withdrawal_number(w->id, w->account);
    zfstore_due_put(ctx->txn, ftab(ctx),
                    ctx->now_ms + s->budget_timeout_ms + ZFUNDS_RESERVE_GRACE_MS, ZFDUE_RESERVE,
                    payload, due_payload(payload, w->account, number));
    return ZSVC_DEFERRED;
}

static int request_args(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalRequest *r,
                        uint8_t *payee_kind)
{
    int rc = amount_arg(ctx, r->amount);
    if (rc == 0) {
        rc = zfh_text(ctx, "payee", r->payee, 1, ZFUNDS_PARTY_BYTES_MAX);
    }
    if (rc == 0) {
        rc = party_kind_arg(ctx, "payee_kind", (int)r->payee_kind, payee_kind);
    }
    if (rc == 0 && *payee_kind == ZFUNDS_PARTY_HOUSEHOLD) {
        rc = zsvc_fail(ctx, ZE_INVALID, "payee_kind",
                       "a withdrawal pays an organisation or a "
                       "person");
    }
    if (rc == 0) {
        rc = zfh_text(ctx, "purpose", r->purpose, 1, ZFUNDS_PURPOSE_BYTES_MAX);
    }
    if (rc == 0) {
        rc = zfh_text(ctx, "line", r->line, 1, ZFUNDS_LINE_BYTES_MAX);
    }
    if (rc == 0 && r->year != 0 && (r->year < ZFUNDS_YEAR_MIN || r->year > ZFUNDS_YEAR_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "year", "year must be %d to %d (0: this year)",
                       ZFUNDS_YEAR_MIN, ZFUNDS_YEAR_MAX);
    }
    return rc;
}

/* A resend of a request whose line check is still open asks budgets again
 * for the same withdrawal (idempotent there by its id). */
static int request_resend(zsvc_ctx_t *ctx, const char *account, bool *handled)
{
    *handled = false;
    zval_t v;
    const char *rid = ctx->cmd->request_id;
    if (ztxn_get(ctx->txn, ftab(ctx)->wreqs, rid, strlen(rid), &v) != 0 ||
        v.len != 8 + ZFUNDS_ACCOUNT_BYTES ||
        memcmp((const uint8_t *)v.data + 8, account, ZFUNDS_ACCOUNT_BYTES) != 0) {
        return 0;
    }
    Zhili__Funds__Withdrawal *w = NULL;
    if (zfh_withdrawal_get(ctx, account, zstore_be64_get(v.data), &w) != 0 ||
        w->state != ZHILI__FUNDS__WITHDRAWAL_STATE__WITHDRAWAL_STATE_RESERVING) {
        return 0; /* settled: this resend is a new request */
    }
    *handled = true;
    w->attempt++;
    zfh_withdrawal_put(ctx, account, zfunds_withdrawal_number(w->id, account), w);
    return reserve_call(ctx, w);
}

int zfh_withdrawal_request(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalRequest *r)
{
    zfunds_ledger_t l;
    uint8_t payee_kind = 0;
    int rc = account_arg(ctx, r->account);
    if (rc == 0) {
        rc = zfh_authorize(ctx, r->account, roles_request, "a withdrawal request");
    }
    if (rc == 0) {
        rc = request_args(ctx, r, &payee_kind);
    }
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", r->account, &l);
    }
    if (rc != 0) {
        return rc;
    }
    /* Fail closed, and fast, while budgets is known to be down: a line
     * check is never skipped, and a client's resends do not pile up. */
    int64_t wait_ms = fsvc(ctx)->budgets_down_until_mono_ms - zclock_mono_ms();
    if (wait_ms > 0) {
        return zsvc_fail(ctx, ZE_UNAVAILABLE, NULL,
                         "预算服务不可用: the budgets service did not "
                         "answer a line check moments ago; nothing "
                         "was held — try again in %lld s",
                         (long long)(wait_ms + 999) / 1000);
    }
    bool handled = false;
    rc = request_resend(ctx, r->account, &handled);
    if (handled) {
        return rc;
    }
    if (zfunds_hold(&l, r->amount) != 0) {
        return zsvc_fail(ctx, ZE_CONFLICT, "amount",
                         "以收定支: the account has %lld fen "
                         "available, less than the %lld fen asked",
                         (long long)zfunds_available(&l), (long long)r->amount);
    }
    uint64_t number = ++l.next_withdrawal;
    char *id = zsvc_alloc(ctx, ZFUNDS_WITHDRAWAL_ID_BYTES_MAX + 1);
    zfunds_withdrawal_id(r->account, number, id);
    Zhili__Funds__Withdrawal *w = zsvc_alloc(ctx, sizeof *w);
    zhili__funds__withdrawal__init(w);
    w->account = r->account;
    w->id = id;
    w->amount = r->amount;
    w->payee = r->payee;
    w->payee_kind = (Zhili__Funds__PartyKind)payee_kind;
    w->purpose = r->purpose;
    w->line = r->line;
    w->year = r->year != 0 ? r->year : ztime_year(ctx->now_ms);
    w->state = ZHILI__FUNDS__WITHDRAWAL_STATE__WITHDRAWAL_STATE_RESERVING;
    w->requested_by = (char *)zfh_actor_id(ctx);
    w->requested_ms = ctx->now_ms;
    w->attempt = 1;
    zfh_withdrawal_put(ctx, r->account, number, w);
    zfstore_ledger_put(ctx->txn, ftab(ctx), r->account, &l);
    uint8_t val[8 + ZFUNDS_ACCOUNT_BYTES];
    zstore_be64_put(val, number);
    memcpy(val + 8, r->account, ZFUNDS_ACCOUNT_BYTES);
    const char *rid = ctx->cmd->request_id;
    ztxn_put(ctx->txn, ftab(ctx)->wreqs, rid, strlen(rid), val, sizeof val);
    return reserve_call(ctx, w);
}

/* "<account>-w<n>#<attempt>" */
static int reserve_key(const char *key, char account[ZFUNDS_ACCOUNT_BYTES + 1], uint64_t *number,
                       uint32_t *attempt)
{
    char id[ZFUNDS_WITHDRAWAL_ID_BYTES_MAX + 1];
    const char *hash = strchr(key, '#');
    if (hash == NULL || (size_t)(hash - key) > ZFUNDS_WITHDRAWAL_ID_BYTES_MAX ||
        strlen(key) < ZFUNDS_ACCOUNT_BYTES) {
        return ZE_INVALID;
    }
    snprintf(id, sizeof id, "%.*s", (int)(hash - key), key);
    snprintf(account, ZFUNDS_ACCOUNT_BYTES + 1, "%s", key);
    *number = zfunds_withdrawal_number(id, account);
    *attempt = (uint32_t)strtoul(hash + 1, NULL, 10);
    return *number != 0 ? 0 : ZE_INVALID;
}

static void hint_push(zsvc_ctx_t *ctx, const char *account, uint64_t number, uint32_t attempt,
                      const char *reason)
{
    zfunds_svc_t *s = fsvc(ctx);
    if (s->hint_count == ZFUNDS_HINTS_MAX) {
        return; /* the line check's deadline cleans it up */
    }
    zfunds_hint_t *h = &s->hints[s->hint_count++];
    snprintf(h->account, sizeof h->account, "%s", account);
    h->number = number;
    h->attempt = attempt;
    snprintf(h->reason, sizeof h->reason, "%s", reason);
}

/* budgets answered (or did not, in time) the line reservation. */
int zfh_reserve_done(zsvc_ctx_t *ctx, const Zhili__V1__Continuation *c)
{
    char account[ZFUNDS_ACCOUNT_BYTES + 1];
    uint64_t number;
    uint32_t attempt;
    Zhili__Funds__Withdrawal *w = NULL;
    if (reserve_key(c->key, account, &number, &attempt) != 0 ||
        zfh_withdrawal_get(ctx, account, number, &w) != 0) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL,
                         "a line check came back for an unknown "
                         "withdrawal");
    }
    if (w->state != ZHILI__FUNDS__WITHDRAWAL_STATE__WITHDRAWAL_STATE_RESERVING ||
        w->attempt != attempt) {
        return zsvc_fail(ctx, ZE_UNAVAILABLE, NULL,
                         "the line check of %s took too long and "
                         "was given up; send the request again",
                         w->id);
    }
    /* Events and the reply carry the requester, as if answered at once. */
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = w->requested_by;
    Zhili__V1__Command orig = ZHILI__V1__COMMAND__INIT;
    orig.request_id = c->reply_to;
    orig.actor = &actor;
    zsvc_ctx_t sub = *ctx;
    sub.cmd = &orig;
    const Zhili__V1__Reply *r = c->reply;
    int status = r != NULL ? zerr_from_status((int)r->status) : ZE_UNAVAILABLE;
    if (status == 0 && r->result_case == ZHILI__V1__REPLY__RESULT_BUDGETS_LINE_RESERVATION) {
        fsvc(ctx)->budgets_down_until_mono_ms = 0;
        w->state = ZHILI__FUNDS__WITHDRAWAL_STATE__WITHDRAWAL_STATE_PENDING;
        w->line_remaining = r->budgets_line_reservation->remaining;
        w->expires_ms = ctx->now_ms + fsvc(ctx)->withdrawal_ttl_ms;
        zfh_withdrawal_put(&sub, account, number, w);
        uint8_t payload[ZFUNDS_ACCOUNT_BYTES + 8];
        zfstore_due_put(ctx->txn, ftab(ctx), w->expires_ms, ZFDUE_EXPIRE, payload,
                        due_payload(payload, account, number));
        return withdrawal_reply(&sub, w, "withdrawal_requested");
    }
    const char *said = r != NULL && r->message != NULL ? r->message : "";
    if (status == ZE_UNAVAILABLE || status == ZE_INTERNAL || status == 0) {
        hint_push(ctx, account, number, attempt, "预算服务不可用: budgets did not answer");
        fsvc(ctx)->budgets_down_until_mono_ms = zclock_mono_ms() + ZFUNDS_BUDGETS_BREAKER_MS;
        return zsvc_fail(ctx, ZE_UNAVAILABLE, NULL,
                         "预算服务不可用: the budgets service did not "
                         "confirm budget line %s within %d ms (%s); the "
                         "withdrawal was refused and nothing stays held "
                         "— try again when budgets is back",
                         w->line, fsvc(ctx)->budget_timeout_ms, said);
    }
    hint_push(ctx, account, number, attempt, said[0] ? said : "the budget line check failed");
    if (status == ZE_CONFLICT) {
        return zsvc_fail(ctx, ZE_CONFLICT, "line",
                         "以收定支: budget line %s (%lld) has not "
                         "enough left for %lld fen: %s",
                         w->line, (long long)w->year, (long long)w->amount, said);
    }
    return zsvc_fail(ctx, status, "line", "budget line %s (%lld) was not accepted: %s", w->line,
                     (long long)w->year, said);
}

/* ---- approvals --------------------------------------------------------------------------------
 */

static int approval_holder(zsvc_ctx_t *ctx, const Zhili__Funds__AccountRecord *rec)
{
    const char *id = zfh_actor_id(ctx);
    if (strcmp(id, rec->holder_a->id) == 0) {
        return ZFUNDS_HOLDER_A;
    }
    if (strcmp(id, rec->holder_b->id) == 0) {
        return ZFUNDS_HOLDER_B;
    }
    return 0;
}

static const char *state_zh(int state)
{
    static const char *const names[] = {"",       "预算核定中", "待审批", "已支付",
                                        "已驳回", "已撤销",     "已过期", "预算核定未通过"};
    return state >= 1 && state <= 7 ? names[state] : "?";
}

/* Load what an approval needs and check the rules that do not need the
 * secret. On 0: *w, *holder. */
static int approval_load(zsvc_ctx_t *ctx, const char *account, const char *withdrawal_id,
                         Zhili__Funds__Withdrawal **w, int *holder)
{
    Zhili__Funds__AccountRecord *rec = NULL;
    int rc = zfh_account(ctx, account, &rec);
    if (rc != 0) {
        return rc;
    }
    if ((*holder = approval_holder(ctx, rec)) == 0) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL,
                         "only the account's two withdrawal holders "
                         "approve withdrawals");
    }
    uint64_t number = zfunds_withdrawal_number(withdrawal_id, account);
    if (number == 0 || zfh_withdrawal_get(ctx, account, number, w) != 0) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, "withdrawal_id", "the account has no withdrawal %s",
                         withdrawal_id);
    }
    if ((*w)->state != ZHILI__FUNDS__WITHDRAWAL_STATE__WITHDRAWAL_STATE_PENDING) {
        return zsvc_fail(ctx, ZE_CONFLICT, "withdrawal_id",
                         "withdrawal %s is %s, not waiting "
                         "for approval",
                         withdrawal_id, state_zh((int)(*w)->state));
    }
    zfunds_approval_t done[2];
    size_t n = (*w)->n_approvals < 2 ? (*w)->n_approvals : 2;
    for (size_t i = 0; i < n; i++) {
        done[i] = (zfunds_approval_t){(int)(*w)->approvals[i]->holder, (*w)->approvals[i]->actor};
    }
    rc = zfunds_approval_check(done, n, *holder, zfh_actor_id(ctx));
    if (rc == ZE_FORBIDDEN) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL,
                         "the same person cannot approve a withdrawal "
                         "twice: the other holder must approve");
    }
    if (rc != 0) {
        return zsvc_fail(ctx, ZE_CONFLICT, "withdrawal_id", "withdrawal %s has its two approvals",
                         withdrawal_id);
    }
    return 0;
}

int zfh_withdrawal_approve(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalApprove *a)
{
    Zhili__Funds__Withdrawal *w = NULL;
    Zhili__Funds__CredentialRecord *r = NULL;
    int holder = 0;
    int rc = account_arg(ctx, a->account);
    if (rc == 0) {
        rc = zfh_authorize(ctx, a->account, NULL, "an approval");
    }
    if (rc == 0 && !zfunds_secret_ok(a->secret)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "secret", "secret must be %d to %d bytes of text",
                       ZFUNDS_SECRET_BYTES_MIN, ZFUNDS_SECRET_BYTES_MAX);
    }
    if (rc == 0) {
        rc = approval_load(ctx, a->account, a->withdrawal_id, &w, &holder);
    }
    if (rc == 0) {
        rc = zfh_cred_get(ctx, a->account, holder, &r);
    }
    if (rc != 0) {
        return rc;
    }
    if (r->hash[0] == '\0') {
        return zsvc_fail(ctx, ZE_CONFLICT, NULL, "holder %c has not set a withdrawal secret yet",
                         holder == ZFUNDS_HOLDER_A ? 'A' : 'B');
    }
    if ((rc = zfh_cred_attempt(ctx, a->account, holder, r)) != 0) {
        return rc;
    }
    Zhili__Funds__WithdrawalApprove copy = *a;
    copy.secret = "";
    Zhili__V1__Command blanked = *ctx->cmd;
    blanked.funds_withdrawal_approve = &copy;
    return zfh_secret_work(ctx, r->hash, a->secret, "", &blanked, a->withdrawal_id);
}

/* Budgets learns of the outcome through budget_ops, sent by the tick. */
static void budget_op_queue(zsvc_ctx_t *ctx, const Zhili__Funds__Withdrawal *w, char op)
{
    uint8_t val[1 + 4 + ZFUNDS_ACCOUNT_BYTES] = {(uint8_t)op, 0, 0, 0, 0};
    memcpy(val + 5, w->account, ZFUNDS_ACCOUNT_BYTES);
    ztxn_put(ctx->txn, ftab(ctx)->budget_ops, w->id, strlen(w->id), val, sizeof val);
    zfstore_due_put(ctx->txn, ftab(ctx), ctx->now_ms, ZFDUE_BUDGET, w->id, strlen(w->id));
}

/* Close a held withdrawal: release the hold, state, budgets told. */
static int withdrawal_close(zsvc_ctx_t *ctx, Zhili__Funds__Withdrawal *w, int state,
                            const char *reason)
{
    zfunds_ledger_t l;
    uint64_t number = zfunds_withdrawal_number(w->id, w->account);
    if (zfunds_withdrawal_transition((int)w->state, state) != 0) {
        return zsvc_fail(ctx, ZE_CONFLICT, "withdrawal_id", "withdrawal %s is %s", w->id,
                         state_zh((int)w->state));
    }
    int rc = zfh_ledger(ctx, "account", w->account, &l);
    if (rc == 0 && zfunds_hold_release(&l, w->amount) != 0) {
        rc = zsvc_fail(ctx, ZE_INTERNAL, NULL,
                       "the account holds less than withdrawal %s; run "
                       "verify",
                       w->id);
    }
    if (rc != 0) {
        return rc;
    }
    if (w->state == ZHILI__FUNDS__WITHDRAWAL_STATE__WITHDRAWAL_STATE_PENDING) {
        uint8_t payload[ZFUNDS_ACCOUNT_BYTES + 8];
        zfstore_due_del(ctx->txn, ftab(ctx), w->expires_ms, ZFDUE_EXPIRE, payload,
                        due_payload(payload, w->account, number));
    }
    w->state = (Zhili__Funds__WithdrawalState)state;
    w->closed_ms = ctx->now_ms;
    w->reason = zsvc_strdup(ctx, reason);
    zfstore_ledger_put(ctx->txn, ftab(ctx), w->account, &l);
    zfh_withdrawal_put(ctx, w->account, number, w);
    budget_op_queue(ctx, w, state == ZFUNDS_W_POSTED ? ZFOP_CONSUME : ZFOP_RELEASE);
    return ztxn_err(ctx->txn);
}

/* Two approvals: the money leaves (an entry debits the line, credits cash). */
static int withdrawal_post(zsvc_ctx_t *ctx, Zhili__Funds__Withdrawal *w)
{
    int rc = withdrawal_close(ctx, w, ZFUNDS_W_POSTED, "");
    zfunds_ledger_t l;
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", w->account, &l);
    }
    if (rc != 0) {
        return rc;
    }
    zfunds_entry_t e;
    memset(&e, 0, sizeof e);
    e.kind = ZFUNDS_KIND_WITHDRAWAL;
    e.amount = w->amount;
    e.withdrawal_id = sv(w->id);
    e.line = sv(w->line);
    e.payee = sv(w->payee);
    e.payee_kind = (uint8_t)w->payee_kind;
    e.purpose = sv(w->purpose);
    if ((rc = zfh_append(ctx, w->account, &l, &e, "withdrawn", NULL)) != 0) {
        return rc;
    }
    w->entry_seq = e.seq;
    zfh_withdrawal_put(ctx, w->account, zfunds_withdrawal_number(w->id, w->account), w);
    return withdrawal_reply(ctx, w, "withdrawal_posted");
}

int zfh_withdrawal_approve_finish(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalApprove *a,
                                  bool verified)
{
    if (!verified) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL,
                         "the approval was refused: the credential did "
                         "not match");
    }
    Zhili__Funds__Withdrawal *w = NULL;
    Zhili__Funds__CredentialRecord *r = NULL;
    int holder = 0;
    int rc = approval_load(ctx, a->account, a->withdrawal_id, &w, &holder);
    if (rc == 0) {
        rc = zfh_cred_get(ctx, a->account, holder, &r);
    }
    if (rc != 0) {
        return rc;
    }
    r->failures = 0;
    zfh_cred_put(ctx, a->account, holder, r);
    Zhili__Funds__Approval *ap = zsvc_alloc(ctx, sizeof *ap);
    zhili__funds__approval__init(ap);
    ap->holder = (Zhili__Funds__Credential)holder;
    ap->actor = (char *)zfh_actor_id(ctx);
    ap->name = ctx->cmd->actor->name;
    ap->ts_ms = ctx->now_ms;
    Zhili__Funds__Approval **list = zsvc_alloc(ctx, sizeof *list * (w->n_approvals + 1));
    for (size_t i = 0; i < w->n_approvals; i++) {
        list[i] = w->approvals[i];
    }
    list[w->n_approvals] = ap;
    w->approvals = list;
    w->n_approvals++;
    zfunds_approval_t done[2];
    for (size_t i = 0; i < w->n_approvals && i < 2; i++) {
        done[i] = (zfunds_approval_t){(int)w->approvals[i]->holder, w->approvals[i]->actor};
    }
    if (zfunds_approvals_complete(done, w->n_approvals)) {
        return withdrawal_post(ctx, w);
    }
    zfh_withdrawal_put(ctx, a->account, zfunds_withdrawal_number(w->id, a->account), w);
    return withdrawal_reply(ctx, w, "withdrawal_approved");
}

/* ---- reject, void ------------------------------------------------------------------------------
 */

static int closing_load(zsvc_ctx_t *ctx, const char *account, const char *id, const char *reason,
                        Zhili__Funds__Withdrawal **w)
{
    int rc = account_arg(ctx, account);
    if (rc == 0) {
        rc = zfh_authorize(ctx, account, NULL, "closing a withdrawal");
    }
    if (rc == 0) {
        rc = zfh_text(ctx, "reason", reason, 1, ZFUNDS_MEMO_BYTES_MAX);
    }
    if (rc != 0) {
        return rc;
    }
    uint64_t number = zfunds_withdrawal_number(id, account);
    if (number == 0 || zfh_withdrawal_get(ctx, account, number, w) != 0) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, "withdrawal_id", "the account has no withdrawal %s",
                         id);
    }
    return 0;
}

int zfh_withdrawal_reject(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalReject *r)
{
    Zhili__Funds__Withdrawal *w = NULL;
    Zhili__Funds__AccountRecord *rec = NULL;
    int rc = closing_load(ctx, r->account, r->withdrawal_id, r->reason, &w);
    if (rc == 0) {
        rc = zfh_account(ctx, r->account, &rec);
    }
    if (rc != 0) {
        return rc;
    }
    if (approval_holder(ctx, rec) == 0 && strcmp(ctx->cmd->actor->role, "admin") != 0) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL,
                         "a withdrawal is rejected by one of the "
                         "account's withdrawal holders (or an admin)");
    }
    if ((rc = withdrawal_close(ctx, w, ZFUNDS_W_REJECTED, r->reason)) != 0) {
        return rc;
    }
    return withdrawal_reply(ctx, w, "withdrawal_rejected");
}

int zfh_withdrawal_void(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalVoid *v)
{
    Zhili__Funds__Withdrawal *w = NULL;
    int rc = closing_load(ctx, v->account, v->withdrawal_id, v->reason, &w);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(w->requested_by, zfh_actor_id(ctx)) != 0 &&
        strcmp(ctx->cmd->actor->role, "admin") != 0) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL,
                         "a withdrawal is voided by whoever requested "
                         "it (or an admin)");
    }
    if ((rc = withdrawal_close(ctx, w, ZFUNDS_W_VOIDED, v->reason)) != 0) {
        return rc;
    }
    return withdrawal_reply(ctx, w, "withdrawal_voided");
}

/* ---- the tick: refused checks, expiry, budgets ops ----------------------------------------------
 */

/* A line check that failed or never came back: release the hold. */
static void refuse(zsvc_ctx_t *ctx, const char *account, uint64_t number, uint32_t attempt,
                   const char *reason)
{
    Zhili__Funds__Withdrawal *w = NULL;
    if (zfh_withdrawal_get(ctx, account, number, &w) != 0 ||
        w->state != ZHILI__FUNDS__WITHDRAWAL_STATE__WITHDRAWAL_STATE_RESERVING ||
        (attempt != 0 && w->attempt != attempt)) {
        return;
    }
    if (withdrawal_close(ctx, w, ZFUNDS_W_REFUSED, reason) == 0) {
        zsvc_emit(ctx, "withdrawal_refused", account, ZHILI__V1__EVENT__BODY_FUNDS_WITHDRAWAL,
                  zfh_withdrawal_public(ctx, w));
    }
}

int zfh_hints_apply(zsvc_ctx_t *ctx)
{
    zfunds_svc_t *s = fsvc(ctx);
    for (int i = 0; i < s->hint_count; i++) {
        zfunds_hint_t *h = &s->hints[i];
        refuse(ctx, h->account, h->number, h->attempt, h->reason);
    }
    s->hint_count = 0;
    return ztxn_err(ctx->txn);
}

static int64_t retry_ms(uint32_t attempts)
{
    int64_t ms = ZFUNDS_BUDGET_RETRY_MS_MIN;
    for (uint32_t i = 1; i < attempts && ms < ZFUNDS_BUDGET_RETRY_MS_MAX; i++) {
        ms *= 2;
    }
    return ms < ZFUNDS_BUDGET_RETRY_MS_MAX ? ms : ZFUNDS_BUDGET_RETRY_MS_MAX;
}

static void budget_op_send(zsvc_ctx_t *ctx, const uint8_t *id, size_t id_len)
{
    zval_t v;
    if (id_len > ZFUNDS_WITHDRAWAL_ID_BYTES_MAX ||
        ztxn_get(ctx->txn, ftab(ctx)->budget_ops, id, id_len, &v) != 0 ||
        v.len != 5 + ZFUNDS_ACCOUNT_BYTES) {
        return; /* done meanwhile */
    }
    uint8_t row[5 + ZFUNDS_ACCOUNT_BYTES];
    memcpy(row, v.data, sizeof row);
    char wid[ZFUNDS_WITHDRAWAL_ID_BYTES_MAX + 1];
    snprintf(wid, sizeof wid, "%.*s", (int)id_len, (const char *)id);
    char account[ZFUNDS_ACCOUNT_BYTES + 1];
    snprintf(account, sizeof account, "%.*s", ZFUNDS_ACCOUNT_BYTES, (const char *)row + 5);
    bool consume = row[0] == ZFOP_CONSUME;
    Zhili__Budgets__LineConsume c = ZHILI__BUDGETS__LINE_CONSUME__INIT;
    Zhili__Budgets__LineRelease r = ZHILI__BUDGETS__LINE_RELEASE__INIT;
    c.withdrawal_id = r.withdrawal_id = wid;
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "funds";
    actor.role = "service";
    actor.area = account;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.request_id = zarena_printf(ctx->arena, "funds-%s:%s", consume ? "consume" : "release", wid);
    cmd.actor = &actor;
    cmd.area = account;
    if (consume) {
        cmd.body_case = ZHILI__V1__COMMAND__BODY_BUDGETS_LINE_CONSUME;
        cmd.budgets_line_consume = &c;
    } else {
        cmd.body_case = ZHILI__V1__COMMAND__BODY_BUDGETS_LINE_RELEASE;
        cmd.budgets_line_release = &r;
    }
    zfunds_svc_t *s = fsvc(ctx);
    uint32_t attempts =
        (uint32_t)row[1] << 24 | (uint32_t)row[2] << 16 | (uint32_t)row[3] << 8 | row[4];
    if (zsvc_call(ctx, s->budgets_service, &cmd, s->budget_timeout_ms, "budget_op", wid, false) ==
        0) {
        attempts++;
    }
    row[1] = (uint8_t)(attempts >> 24);
    row[2] = (uint8_t)(attempts >> 16);
    row[3] = (uint8_t)(attempts >> 8);
    row[4] = (uint8_t)attempts;
    ztxn_put(ctx->txn, ftab(ctx)->budget_ops, id, id_len, row, sizeof row);
    zfstore_due_put(ctx->txn, ftab(ctx), ctx->now_ms + retry_ms(attempts), ZFDUE_BUDGET, id,
                    id_len);
}

int zfh_budget_op_done(zsvc_ctx_t *ctx, const Zhili__V1__Continuation *c)
{
    const Zhili__V1__Reply *r = c->reply;
    int status = r != NULL ? zerr_from_status((int)r->status) : ZE_UNAVAILABLE;
    if (status == ZE_UNAVAILABLE || status == ZE_INTERNAL) {
        return 0; /* the tick sends it again */
    }
    if (status != 0) {
        /* budgets will never accept it: keep nothing to resend, but say so. */
        zlog(ZLOG_ERROR, "budget_op_refused", "withdrawal", c->key, "message",
             r->message != NULL ? r->message : "", NULL);
    }
    zval_t v;
    if (ztxn_get(ctx->txn, ftab(ctx)->budget_ops, c->key, strlen(c->key), &v) == 0) {
        ztxn_del(ctx->txn, ftab(ctx)->budget_ops, c->key, strlen(c->key));
    }
    return ztxn_err(ctx->txn);
}

static void expire(zsvc_ctx_t *ctx, const char *account, uint64_t number)
{
    Zhili__Funds__Withdrawal *w = NULL;
    if (zfh_withdrawal_get(ctx, account, number, &w) != 0 ||
        w->state != ZHILI__FUNDS__WITHDRAWAL_STATE__WITHDRAWAL_STATE_PENDING ||
        w->expires_ms > ctx->now_ms) {
        return;
    }
    if (withdrawal_close(ctx, w, ZFUNDS_W_EXPIRED, "not approved in time (未在期限内审批)") == 0) {
        zsvc_emit(ctx, "withdrawal_expired", account, ZHILI__V1__EVENT__BODY_FUNDS_WITHDRAWAL,
                  zfh_withdrawal_public(ctx, w));
    }
}

int zfh_due_ledger(zsvc_ctx_t *ctx, const zfstore_due_t *d)
{
    if (d->kind == ZFDUE_BUDGET) {
        budget_op_send(ctx, d->payload, d->len);
        return ztxn_err(ctx->txn);
    }
    if (d->len != ZFUNDS_ACCOUNT_BYTES + 8) {
        return 0;
    }
    char account[ZFUNDS_ACCOUNT_BYTES + 1];
    snprintf(account, sizeof account, "%.*s", ZFUNDS_ACCOUNT_BYTES, (const char *)d->payload);
    uint64_t number = zstore_be64_get(d->payload + ZFUNDS_ACCOUNT_BYTES);
    if (d->kind == ZFDUE_EXPIRE) {
        expire(ctx, account, number);
    } else if (d->kind == ZFDUE_RESERVE) {
        refuse(ctx, account, number, 0, "预算服务不可用: the line check did not complete");
    }
    return ztxn_err(ctx->txn);
}
