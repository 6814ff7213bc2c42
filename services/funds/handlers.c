/* handlers: dispatch, shared helpers, accounts, credentials (双密码), query
 * tickets, continuations and the tick of the funds service (docs/funds.md).
 *
 * Secrets are checked off the loop: a handler counts the attempt first (so a
 * wrong secret is already counted when its continuation fails and rolls its
 * own writes back), hands Argon2id to the worker thread with zsvc_offload,
 * and defers its reply; the continuation "secret" carries the command back
 * (its secrets blanked) with the outcome and finishes the work. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/area.h"
#include "common/codec.h"
#include "common/log.h"
#include "services/funds/handlers_internal.h"

const char *const zfh_roles_full_view[] = {"admin", "command_center", "committee", "supervisor",
                                           NULL};
static const char *const roles_open[] = {"admin", "staff", NULL};
static const char *const roles_reset[] = {"admin", "supervisor", NULL};

/* ---- shared helpers ---------------------------------------------------------- */

const char *zfh_actor_id(const zsvc_ctx_t *ctx)
{
    const Zhili__V1__Actor *a = ctx->cmd != NULL ? ctx->cmd->actor : NULL;
    return a != NULL && a->id != NULL ? a->id : "";
}

static bool role_in(const char *role, const char *const *roles)
{
    for (size_t i = 0; roles[i] != NULL; i++) {
        if (strcmp(role, roles[i]) == 0) {
            return true;
        }
    }
    return false;
}

int zfh_authorize(zsvc_ctx_t *ctx, const char *account, const char *const *roles, const char *what)
{
    const Zhili__V1__Actor *a = ctx->cmd != NULL ? ctx->cmd->actor : NULL;
    if (a == NULL || a->id == NULL || a->id[0] == '\0' || a->role == NULL) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "actor",
                         "the command carries no actor; send it "
                         "through the gateway or zhilictl");
    }
    if (!zarea_within(a->area != NULL ? a->area : "", account)) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "account", "account %s is outside your area %s",
                         account, a->area);
    }
    if (roles != NULL && !role_in(a->role, roles)) {
        char list[160] = "";
        for (size_t i = 0; roles[i] != NULL; i++) {
            strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, roles[i], sizeof list - strlen(list) - 1);
        }
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL, "%s needs the role %s; you act as %s", what, list,
                         a->role);
    }
    return 0;
}

int zfh_ledger(zsvc_ctx_t *ctx, const char *field, const char *account, zfunds_ledger_t *l)
{
    int rc = zfstore_ledger_get(ctx->txn, ftab(ctx), account, l);
    if (rc == ZE_NOT_FOUND) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, field,
                         "compound %s has no trust account; open it "
                         "first (funds_account_open)",
                         account);
    }
    if (rc == ZE_INTERNAL) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "the ledger row of %s is damaged; run verify",
                         account);
    }
    return rc;
}

int zfh_account(zsvc_ctx_t *ctx, const char *account, Zhili__Funds__AccountRecord **out)
{
    uint8_t key[ZFUNDS_ACCOUNT_BYTES];
    ProtobufCMessage *m = NULL;
    int rc = zfstore_msg_get(ctx->txn, ftab(ctx)->accounts, key, zfkey_account(key, account),
                             &zhili__funds__account_record__descriptor, ctx->arena, &m);
    if (rc == ZE_NOT_FOUND) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, "account",
                         "compound %s has no trust account; open "
                         "it first (funds_account_open)",
                         account);
    }
    *out = (Zhili__Funds__AccountRecord *)m;
    return rc;
}

char *zfh_str(zsvc_ctx_t *ctx, zfunds_str_t s)
{
    char *out = zsvc_alloc(ctx, s.len + 1);
    if (s.len > 0) {
        memcpy(out, s.p, s.len);
    }
    return out;
}

static zfunds_str_t view(const char *s)
{
    return (zfunds_str_t){s, s != NULL ? strlen(s) : 0};
}

int zfh_text(zsvc_ctx_t *ctx, const char *field, const char *value, size_t min, size_t max)
{
    if (zfunds_text_ok(value, min, max)) {
        return 0;
    }
    if (min > 0 && (value == NULL || value[0] == '\0')) {
        return zsvc_fail(ctx, ZE_INVALID, field, "%s is required (1 to %zu bytes of text)", field,
                         max);
    }
    return zsvc_fail(ctx, ZE_INVALID, field,
                     "%s must be %zu to %zu bytes of UTF-8 text without "
                     "control characters",
                     field, min, max);
}

/* ---- entries -------------------------------------------------------------------- */

static const char *ledger_name(zsvc_ctx_t *ctx, int kind, int category, zfunds_str_t line)
{
    if (kind == ZFUNDS_KIND_DEPOSIT) {
        return zarena_printf(ctx->arena, "revenue:%s", zfunds_category_code(category));
    }
    return zarena_printf(ctx->arena, "expense:%.*s", (int)line.len, line.p ? line.p : "");
}

Zhili__Funds__Entry *zfh_entry_msg(zsvc_ctx_t *ctx, const zfunds_entry_t *e, bool public_view)
{
    Zhili__Funds__Entry *m = zsvc_alloc(ctx, sizeof *m);
    zhili__funds__entry__init(m);
    m->account = zfh_str(ctx, e->account);
    m->seq = e->seq;
    m->ts_ms = e->ts_ms;
    m->kind = (Zhili__Funds__EntryKind)e->kind;
    m->category = (Zhili__Funds__Category)e->category;
    m->amount = e->amount;
    /* Double entry: cash against a revenue or an expense account. */
    int base = e->kind == ZFUNDS_KIND_REVERSAL ? e->rev_kind : e->kind;
    const char *other = ledger_name(ctx, base, e->category, e->line);
    bool cash_debit = (base == ZFUNDS_KIND_DEPOSIT) == (e->kind != ZFUNDS_KIND_REVERSAL);
    m->debit = cash_debit ? "cash" : (char *)other;
    m->credit = cash_debit ? (char *)other : "cash";
    m->payer_kind = (Zhili__Funds__PartyKind)e->payer_kind;
    m->payee_kind = (Zhili__Funds__PartyKind)e->payee_kind;
    bool payer_public = e->payer_kind == ZFUNDS_PARTY_ORGANISATION;
    bool payee_public = e->payee_kind == ZFUNDS_PARTY_ORGANISATION;
    m->payer = !public_view || payer_public ? zfh_str(ctx, e->payer) : "";
    m->receipt = zfh_str(ctx, e->receipt);
    m->withdrawal_id = zfh_str(ctx, e->withdrawal_id);
    m->line = zfh_str(ctx, e->line);
    m->payee = !public_view || payee_public ? zfh_str(ctx, e->payee) : "";
    m->purpose = zfh_str(ctx, e->purpose);
    m->reverses = e->reverses;
    m->memo = public_view ? "" : zfh_str(ctx, e->memo);
    m->balance = e->balance;
    m->prev_hash.data = zsvc_alloc(ctx, ZFUNDS_HASH_BYTES);
    memcpy(m->prev_hash.data, e->prev_hash, ZFUNDS_HASH_BYTES);
    m->prev_hash.len = ZFUNDS_HASH_BYTES;
    m->hash.data = zsvc_alloc(ctx, ZFUNDS_HASH_BYTES);
    memcpy(m->hash.data, e->hash, ZFUNDS_HASH_BYTES);
    m->hash.len = ZFUNDS_HASH_BYTES;
    m->actor = public_view ? "" : zfh_str(ctx, e->actor);
    return m;
}

int zfh_append(zsvc_ctx_t *ctx, const char *account, zfunds_ledger_t *l, zfunds_entry_t *e,
               const char *type, Zhili__Funds__Entry **out)
{
    e->account = view(account);
    e->actor = view(zfh_actor_id(ctx));
    if (e->actor.len > ZFUNDS_ACTOR_BYTES_MAX) {
        e->actor.len = ZFUNDS_ACTOR_BYTES_MAX;
    }
    int rc = zfunds_ledger_append(l, e, ctx->now_ms);
    if (rc == ZE_CONFLICT) {
        return zsvc_fail(ctx, ZE_CONFLICT, "amount",
                         "以收定支: the account's available money "
                         "(%lld fen) does not cover %lld fen",
                         (long long)zfunds_available(l), (long long)e->amount);
    }
    if (rc != 0) {
        return zsvc_fail(ctx, ZE_INVALID, "amount",
                         "the entry would take the balance past "
                         "its limit of %lld fen",
                         (long long)ZFUNDS_BALANCE_MAX);
    }
    uint8_t *rec = zsvc_alloc(ctx, ZFUNDS_ENTRY_BYTES_MAX);
    size_t len = 0;
    if (zfunds_entry_encode(e, rec, ZFUNDS_ENTRY_BYTES_MAX, &len) != 0) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "a journal entry could not be encoded");
    }
    zfunds_ledger_head(l, e);
    zfstore_journal_append(ctx->txn, ftab(ctx), account, e, rec, len);
    zfstore_ledger_put(ctx->txn, ftab(ctx), account, l);
    /* The event is the public view: it goes to every dashboard of the area. */
    zsvc_emit(ctx, type, account, ZHILI__V1__EVENT__BODY_FUNDS_ENTRY, zfh_entry_msg(ctx, e, true));
    if (out != NULL) {
        *out = zfh_entry_msg(ctx, e, false);
    }
    return ztxn_err(ctx->txn);
}

/* ---- withdrawals rows ----------------------------------------------------------- */

int zfh_withdrawal_get(zsvc_ctx_t *ctx, const char *account, uint64_t number,
                       Zhili__Funds__Withdrawal **out)
{
    uint8_t key[ZFUNDS_ACCOUNT_BYTES + 8];
    ProtobufCMessage *m = NULL;
    int rc = zfstore_msg_get(ctx->txn, ftab(ctx)->withdrawals, key,
                             zfkey_account_u64(key, account, number),
                             &zhili__funds__withdrawal__descriptor, ctx->arena, &m);
    *out = (Zhili__Funds__Withdrawal *)m;
    return rc;
}

void zfh_withdrawal_put(zsvc_ctx_t *ctx, const char *account, uint64_t number,
                        const Zhili__Funds__Withdrawal *w)
{
    uint8_t key[ZFUNDS_ACCOUNT_BYTES + 8];
    zfstore_msg_put(ctx->txn, ftab(ctx)->withdrawals, key, zfkey_account_u64(key, account, number),
                    &w->base);
}

Zhili__Funds__Withdrawal *zfh_withdrawal_public(zsvc_ctx_t *ctx, const Zhili__Funds__Withdrawal *w)
{
    Zhili__Funds__Withdrawal *p = zsvc_alloc(ctx, sizeof *p);
    *p = *w;
    if (w->payee_kind != ZHILI__FUNDS__PARTY_KIND__PARTY_KIND_ORGANISATION) {
        p->payee = "";
    }
    p->requested_by = "";
    p->approvals = zsvc_alloc(ctx, sizeof *p->approvals * (w->n_approvals + 1));
    for (size_t i = 0; i < w->n_approvals; i++) {
        Zhili__Funds__Approval *a = zsvc_alloc(ctx, sizeof *a);
        *a = *w->approvals[i];
        a->actor = ""; /* which holder and when stay public */
        p->approvals[i] = a;
    }
    return p;
}

/* ---- credentials ----------------------------------------------------------------- */

int zfh_cred_get(zsvc_ctx_t *ctx, const char *account, int cred,
                 Zhili__Funds__CredentialRecord **out)
{
    uint8_t key[ZFUNDS_ACCOUNT_BYTES + 1];
    ProtobufCMessage *m = NULL;
    int rc = zfstore_msg_get(ctx->txn, ftab(ctx)->creds, key, zfkey_cred(key, account, cred),
                             &zhili__funds__credential_record__descriptor, ctx->arena, &m);
    if (rc == ZE_NOT_FOUND) {
        Zhili__Funds__CredentialRecord *r = zsvc_alloc(ctx, sizeof *r);
        zhili__funds__credential_record__init(r);
        *out = r;
        return 0;
    }
    *out = (Zhili__Funds__CredentialRecord *)m;
    return rc;
}

void zfh_cred_put(zsvc_ctx_t *ctx, const char *account, int cred,
                  const Zhili__Funds__CredentialRecord *r)
{
    uint8_t key[ZFUNDS_ACCOUNT_BYTES + 1];
    zfstore_msg_put(ctx->txn, ftab(ctx)->creds, key, zfkey_cred(key, account, cred), &r->base);
}

static const char *cred_name(int cred)
{
    return cred == ZFUNDS_HOLDER_A   ? "holder A's withdrawal credential (支取密码A)"
           : cred == ZFUNDS_HOLDER_B ? "holder B's withdrawal credential (支取密码B)"
                                     : "the query credential (查询密码)";
}

int zfh_cred_attempt(zsvc_ctx_t *ctx, const char *account, int cred,
                     Zhili__Funds__CredentialRecord *r)
{
    if (r->failures >= ZFUNDS_FAILURES_MAX) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL,
                         "%s is locked after %d wrong secrets; an admin "
                         "and a supervisor of the compound must reset it",
                         cred_name(cred), ZFUNDS_FAILURES_MAX);
    }
    r->failures++;
    zfh_cred_put(ctx, account, cred, r);
    if (r->failures >= ZFUNDS_FAILURES_MAX) {
        uint8_t payload[ZFUNDS_ACCOUNT_BYTES + 1];
        zfstore_due_put(ctx->txn, ftab(ctx), ctx->now_ms + ZFUNDS_LOCK_SETTLE_MS, ZFDUE_LOCK,
                        payload, zfkey_cred(payload, account, cred));
    }
    return 0;
}

void zfh_cred_event(zsvc_ctx_t *ctx, const char *account, int cred, const char *change,
                    uint32_t failures)
{
    Zhili__Funds__CredentialChange *ev = zsvc_alloc(ctx, sizeof *ev);
    zhili__funds__credential_change__init(ev);
    ev->account = zsvc_strdup(ctx, account);
    ev->credential = (Zhili__Funds__Credential)cred;
    ev->change = (char *)change;
    ev->by = zsvc_strdup(ctx, zfh_actor_id(ctx));
    ev->failures = failures;
    char type[48];
    snprintf(type, sizeof type, "credential_%s", change);
    zsvc_emit(ctx, type, account, ZHILI__V1__EVENT__BODY_FUNDS_CREDENTIAL, ev);
}

static Zhili__Funds__CredentialView *cred_view(zsvc_ctx_t *ctx, int cred,
                                               const Zhili__Funds__CredentialRecord *r)
{
    Zhili__Funds__CredentialView *v = zsvc_alloc(ctx, sizeof *v);
    zhili__funds__credential_view__init(v);
    v->credential = (Zhili__Funds__Credential)cred;
    v->set = r->hash != NULL && r->hash[0] != '\0';
    v->locked = r->failures >= ZFUNDS_FAILURES_MAX;
    v->failures = r->failures;
    v->changed_ms = r->changed_ms;
    v->reset_by_admin = r->reset_admin;
    v->reset_by_supervisor = r->reset_supervisor;
    return v;
}

/* ---- work off the loop (Argon2id) ------------------------------------------------- */

typedef struct {
    char hash[ZFUNDS_HASH_BYTES_MAX + 1];
    char secret[ZFUNDS_SECRET_BYTES_MAX + 1];
    char new_secret[ZFUNDS_SECRET_BYTES_MAX + 1];
    unsigned long long ops;
    size_t mem;
    uint8_t *command;
    size_t command_len;
} secret_job_t;

_Static_assert(ZFUNDS_HASH_BYTES_MAX + 1 >= crypto_pwhash_STRBYTES, "room for an Argon2id string");

/* The worker thread: slow on purpose, and never on the loop. */
static int secret_work(void *arg, uint8_t **out, size_t *out_len)
{
    secret_job_t *job = arg;
    char new_hash[crypto_pwhash_STRBYTES] = "";
    bool verified = job->hash[0] != '\0' &&
                    crypto_pwhash_str_verify(job->hash, job->secret, strlen(job->secret)) == 0;
    if (job->new_secret[0] != '\0' &&
        crypto_pwhash_str(new_hash, job->new_secret, strlen(job->new_secret), job->ops, job->mem) !=
            0) {
        return -1; /* out of memory: the continuation says so */
    }
    Zhili__Funds__WorkResult r = ZHILI__FUNDS__WORK_RESULT__INIT;
    r.command.data = job->command;
    r.command.len = job->command_len;
    r.verified = verified;
    r.new_hash = new_hash;
    size_t len = protobuf_c_message_get_packed_size(&r.base);
    *out = malloc(len ? len : 1);
    if (*out == NULL) {
        return -1;
    }
    *out_len = protobuf_c_message_pack(&r.base, *out);
    return 0;
}

static void secret_job_free(void *arg)
{
    secret_job_t *job = arg;
    free(job->command);
    sodium_memzero(job, sizeof *job);
    free(job);
}

int zfh_secret_work(zsvc_ctx_t *ctx, const char *hash, const char *secret, const char *new_secret,
                    const Zhili__V1__Command *blanked, const char *key)
{
    secret_job_t *job = calloc(1, sizeof *job);
    if (job == NULL) {
        return zsvc_fail(ctx, ZE_UNAVAILABLE, NULL, "the service is out of memory; try again");
    }
    snprintf(job->hash, sizeof job->hash, "%s", hash != NULL ? hash : "");
    snprintf(job->secret, sizeof job->secret, "%s", secret != NULL ? secret : "");
    snprintf(job->new_secret, sizeof job->new_secret, "%s", new_secret != NULL ? new_secret : "");
    job->ops = fsvc(ctx)->pwhash_ops;
    job->mem = fsvc(ctx)->pwhash_mem;
    if (zcodec_pack(&blanked->base, 0, &job->command, &job->command_len) != 0) {
        secret_job_free(job);
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "the command could not be kept for its check");
    }
    if (zsvc_offload(ctx, secret_work, job, secret_job_free, "secret", key, true) != 0) {
        secret_job_free(job);
        return zsvc_fail(ctx, ZE_UNAVAILABLE, NULL,
                         "too many secret checks are waiting; try "
                         "again in a moment");
    }
    return ZSVC_DEFERRED;
}

/* ---- accounts ------------------------------------------------------------------------- */

static int holder_ok(zsvc_ctx_t *ctx, const char *field, const Zhili__Funds__Holder *h)
{
    char f[32];
    if (h == NULL) {
        return zsvc_fail(ctx, ZE_INVALID, field, "%s is required: {id, name}", field);
    }
    snprintf(f, sizeof f, "%s.id", field);
    int rc = zfh_text(ctx, f, h->id, 1, ZFUNDS_HOLDER_ID_BYTES_MAX);
    snprintf(f, sizeof f, "%s.name", field);
    return rc != 0 ? rc : zfh_text(ctx, f, h->name, 1, ZFUNDS_NAME_BYTES_MAX);
}

static Zhili__Funds__AccountView *account_view(zsvc_ctx_t *ctx, const char *account,
                                               const Zhili__Funds__AccountRecord *rec,
                                               const zfunds_ledger_t *l, bool public_view)
{
    Zhili__Funds__AccountView *v = zsvc_alloc(ctx, sizeof *v);
    zhili__funds__account_view__init(v);
    v->account = zsvc_strdup(ctx, account);
    v->name = rec->name;
    v->balance = l->balance;
    v->held = l->held;
    v->available = zfunds_available(l);
    v->entries = l->entries;
    v->head_hash.data = zsvc_alloc(ctx, ZFUNDS_HASH_BYTES);
    memcpy(v->head_hash.data, l->head_hash, ZFUNDS_HASH_BYTES);
    v->head_hash.len = ZFUNDS_HASH_BYTES;
    v->opened_ms = rec->opened_ms;
    v->public_view = public_view;
    if (!public_view) {
        v->n_holders = 2;
        v->holders = zsvc_alloc(ctx, sizeof *v->holders * 2);
        v->holders[0] = rec->holder_a;
        v->holders[1] = rec->holder_b;
    }
    return v;
}

static int account_open(zsvc_ctx_t *ctx, const Zhili__Funds__AccountOpen *o)
{
    if (!zfunds_account_ok(o->account)) {
        return zsvc_fail(ctx, ZE_INVALID, "account",
                         "account must be the compound's 15-digit "
                         "area code");
    }
    int rc = zfh_authorize(ctx, o->account, roles_open, "opening a trust account");
    if (rc == 0) {
        rc = zfh_text(ctx, "name", o->name, 1, ZFUNDS_NAME_BYTES_MAX);
    }
    if (rc == 0) {
        rc = holder_ok(ctx, "holder_a", o->holder_a);
    }
    if (rc == 0) {
        rc = holder_ok(ctx, "holder_b", o->holder_b);
    }
    if (rc != 0) {
        return rc;
    }
    if (strcmp(o->holder_a->id, o->holder_b->id) == 0) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "holder_b.id",
                         "the two withdrawal holders must be "
                         "different people: one person can "
                         "never hold both (双密码)");
    }
    zfunds_ledger_t l;
    if (zfstore_ledger_get(ctx->txn, ftab(ctx), o->account, &l) != ZE_NOT_FOUND) {
        return zsvc_fail(ctx, ZE_CONFLICT, "account", "compound %s already has a trust account",
                         o->account);
    }
    Zhili__Funds__AccountRecord rec = ZHILI__FUNDS__ACCOUNT_RECORD__INIT;
    rec.account = o->account;
    rec.name = o->name;
    rec.holder_a = o->holder_a;
    rec.holder_b = o->holder_b;
    rec.opened_ms = ctx->now_ms;
    rec.opened_by = (char *)zfh_actor_id(ctx);
    uint8_t key[ZFUNDS_ACCOUNT_BYTES];
    zfstore_msg_put(ctx->txn, ftab(ctx)->accounts, key, zfkey_account(key, o->account), &rec.base);
    memset(&l, 0, sizeof l);
    zfstore_ledger_put(ctx->txn, ftab(ctx), o->account, &l);
    Zhili__Funds__AccountView *v = account_view(ctx, o->account, &rec, &l, false);
    zsvc_emit(ctx, "account_opened", o->account, ZHILI__V1__EVENT__BODY_FUNDS_ACCOUNT, v);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_ACCOUNT;
    ctx->reply->funds_account = v;
    return ztxn_err(ctx->txn);
}

int zfh_account_get(zsvc_ctx_t *ctx, const Zhili__Funds__AccountGet *g)
{
    bool public_view = true;
    zfunds_ledger_t l;
    Zhili__Funds__AccountRecord *rec = NULL;
    int rc = zfh_view(ctx, g->account, g->ticket, &public_view);
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", g->account, &l);
    }
    if (rc == 0) {
        rc = zfh_account(ctx, g->account, &rec);
    }
    if (rc != 0) {
        return rc;
    }
    Zhili__Funds__AccountView *v = account_view(ctx, g->account, rec, &l, public_view);
    if (!public_view) {
        v->n_credentials = 3;
        v->credentials = zsvc_alloc(ctx, sizeof *v->credentials * 3);
        for (int c = ZFUNDS_HOLDER_A; c <= ZFUNDS_QUERY; c++) {
            Zhili__Funds__CredentialRecord *r = NULL;
            if ((rc = zfh_cred_get(ctx, g->account, c, &r)) != 0) {
                return rc;
            }
            v->credentials[c - 1] = cred_view(ctx, c, r);
        }
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_ACCOUNT;
    ctx->reply->funds_account = v;
    return ztxn_err(ctx->txn);
}

/* ---- the views: credential, role or public ------------------------------------------- */

static int ticket_check(zsvc_ctx_t *ctx, const char *account, const char *ticket)
{
    uint8_t h[ZFUNDS_HASH_BYTES];
    ProtobufCMessage *m = NULL;
    if (strlen(ticket) == ZFUNDS_TICKET_TEXT_BYTES) {
        crypto_generichash(h, sizeof h, (const uint8_t *)ticket, strlen(ticket), NULL, 0);
        zfstore_msg_get(ctx->txn, ftab(ctx)->tickets, h, sizeof h,
                        &zhili__funds__ticket_record__descriptor, ctx->arena, &m);
    }
    const Zhili__Funds__TicketRecord *t = (const Zhili__Funds__TicketRecord *)m;
    if (t == NULL || strcmp(t->account, account) != 0 || t->expires_ms <= ctx->now_ms) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "ticket",
                         "the query ticket is not valid for this "
                         "account (tickets last %lld s); unlock "
                         "again with the query secret",
                         (long long)(fsvc(ctx)->ticket_ms / 1000));
    }
    return 0;
}

int zfh_view(zsvc_ctx_t *ctx, const char *account, const char *ticket, bool *public_view)
{
    if (!zfunds_account_ok(account)) {
        return zsvc_fail(ctx, ZE_INVALID, "account",
                         "account must be the compound's 15-digit "
                         "area code");
    }
    /* A token scoped inside the compound (a resident's building) may read its
     * compound's account, in the public view only (docs/funds.md). */
    const Zhili__V1__Actor *a = ctx->cmd != NULL ? ctx->cmd->actor : NULL;
    bool inside = a != NULL && a->area != NULL && strlen(a->area) > strlen(account) &&
                  zarea_within(account, a->area);
    int rc = zfh_authorize(ctx, inside ? a->area : account, NULL, "reading the account");
    if (rc != 0) {
        return rc;
    }
    if (inside) {
        *public_view = true;
        return ticket != NULL && ticket[0] != '\0' ? ticket_check(ctx, account, ticket) : 0;
    }
    if (ticket != NULL && ticket[0] != '\0') {
        rc = ticket_check(ctx, account, ticket);
        *public_view = rc != 0;
        return rc;
    }
    *public_view = !role_in(ctx->cmd->actor->role, zfh_roles_full_view);
    return 0;
}

/* ---- credentials: set, reset, unlock ------------------------------------------------- */

static int cred_arg(zsvc_ctx_t *ctx, int cred)
{
    if (cred < ZFUNDS_HOLDER_A || cred > ZFUNDS_QUERY) {
        return zsvc_fail(ctx, ZE_INVALID, "credential",
                         "credential must be holder_a, holder_b "
                         "or query");
    }
    return 0;
}

static int secret_arg(zsvc_ctx_t *ctx, const char *field, const char *secret)
{
    if (!zfunds_secret_ok(secret)) {
        return zsvc_fail(ctx, ZE_INVALID, field,
                         "%s must be %d to %d bytes of text without "
                         "control characters",
                         field, ZFUNDS_SECRET_BYTES_MIN, ZFUNDS_SECRET_BYTES_MAX);
    }
    return 0;
}

/* Who may set which secret: a holder's own by that holder; the query secret
 * by either holder, or by an admin while none is set. */
static int cred_setter(zsvc_ctx_t *ctx, const Zhili__Funds__AccountRecord *rec, int cred,
                       bool is_set)
{
    const char *id = zfh_actor_id(ctx);
    bool a = strcmp(id, rec->holder_a->id) == 0, b = strcmp(id, rec->holder_b->id) == 0;
    if (cred == ZFUNDS_HOLDER_A && !a) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "credential",
                         "only holder A (%s) sets holder A's "
                         "secret",
                         rec->holder_a->name);
    }
    if (cred == ZFUNDS_HOLDER_B && !b) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "credential",
                         "only holder B (%s) sets holder B's "
                         "secret",
                         rec->holder_b->name);
    }
    bool admin = strcmp(ctx->cmd->actor->role, "admin") == 0;
    if (cred == ZFUNDS_QUERY && !a && !b && !(admin && !is_set)) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "credential",
                         "the query secret is set by a "
                         "withdrawal holder (or by an admin "
                         "while none is set)");
    }
    return 0;
}

static int credential_set(zsvc_ctx_t *ctx, const Zhili__Funds__CredentialSet *cs)
{
    Zhili__Funds__AccountRecord *rec = NULL;
    Zhili__Funds__CredentialRecord *r = NULL;
    int cred = (int)cs->credential;
    if (!zfunds_account_ok(cs->account)) {
        return zsvc_fail(ctx, ZE_INVALID, "account",
                         "account must be the compound's 15-digit "
                         "area code");
    }
    int rc = zfh_authorize(ctx, cs->account, NULL, "setting a secret");
    if (rc == 0) {
        rc = cred_arg(ctx, cred);
    }
    if (rc == 0) {
        rc = secret_arg(ctx, "secret", cs->secret);
    }
    if (rc == 0) {
        rc = zfh_account(ctx, cs->account, &rec);
    }
    if (rc == 0) {
        rc = zfh_cred_get(ctx, cs->account, cred, &r);
    }
    if (rc != 0) {
        return rc;
    }
    bool is_set = r->hash[0] != '\0';
    if ((rc = cred_setter(ctx, rec, cred, is_set)) != 0) {
        return rc;
    }
    /* Blank the secrets; "*" records that a current secret came along. */
    bool check = is_set && cred != ZFUNDS_QUERY;
    Zhili__Funds__CredentialSet copy = *cs;
    copy.secret = "";
    copy.current_secret = check ? "*" : "";
    Zhili__V1__Command blanked = *ctx->cmd;
    blanked.funds_credential_set = &copy;
    if (!check) {
        if (r->failures >= ZFUNDS_FAILURES_MAX) {
            return zfh_cred_attempt(ctx, cs->account, cred, r); /* locked: FORBIDDEN */
        }
        return zfh_secret_work(ctx, "", "", cs->secret, &blanked, cs->account);
    }
    if ((rc = secret_arg(ctx, "current_secret", cs->current_secret)) != 0 ||
        (rc = zfh_cred_attempt(ctx, cs->account, cred, r)) != 0) {
        return rc;
    }
    return zfh_secret_work(ctx, r->hash, cs->current_secret, cs->secret, &blanked, cs->account);
}

static int credential_set_finish(zsvc_ctx_t *ctx, const Zhili__Funds__CredentialSet *cs,
                                 bool verified, const char *new_hash)
{
    int cred = (int)cs->credential;
    bool checked = strcmp(cs->current_secret, "*") == 0;
    Zhili__Funds__CredentialRecord *r = NULL;
    int rc = zfh_cred_get(ctx, cs->account, cred, &r);
    if (rc != 0) {
        return rc;
    }
    if (checked && !verified) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL,
                         "the secret was not changed: the credential "
                         "did not match");
    }
    if (!checked && cred != ZFUNDS_QUERY && r->hash[0] != '\0') {
        return zsvc_fail(ctx, ZE_CONFLICT, "current_secret",
                         "the secret was set meanwhile; "
                         "change it with current_secret");
    }
    if (new_hash == NULL || new_hash[0] == '\0') {
        return zsvc_fail(ctx, ZE_UNAVAILABLE, NULL, "the secret could not be hashed; try again");
    }
    const char *change = r->hash[0] != '\0' ? "changed" : "set";
    r->hash = (char *)new_hash;
    r->failures = 0;
    r->lock_announced = false;
    r->changed_ms = ctx->now_ms;
    zfh_cred_put(ctx, cs->account, cred, r);
    zfh_cred_event(ctx, cs->account, cred, change, 0);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_CREDENTIAL;
    ctx->reply->funds_credential = cred_view(ctx, cred, r);
    return ztxn_err(ctx->txn);
}

/* One half of the two-party reset; the second half (other role, other
 * person, within ZFUNDS_RESET_HALF_MS) unlocks. */
static int credential_reset(zsvc_ctx_t *ctx, const Zhili__Funds__CredentialReset *cr)
{
    int cred = (int)cr->credential;
    Zhili__Funds__CredentialRecord *r = NULL;
    if (!zfunds_account_ok(cr->account)) {
        return zsvc_fail(ctx, ZE_INVALID, "account",
                         "account must be the compound's 15-digit "
                         "area code");
    }
    zfunds_ledger_t l;
    int rc = zfh_authorize(ctx, cr->account, roles_reset, "resetting a locked credential");
    if (rc == 0) {
        rc = cred_arg(ctx, cred);
    }
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", cr->account, &l);
    }
    if (rc == 0) {
        rc = zfh_cred_get(ctx, cr->account, cred, &r);
    }
    if (rc != 0) {
        return rc;
    }
    if (r->failures < ZFUNDS_FAILURES_MAX) {
        return zsvc_fail(ctx, ZE_CONFLICT, "credential", "%s is not locked", cred_name(cred));
    }
    const char *id = zfh_actor_id(ctx);
    bool admin = strcmp(ctx->cmd->actor->role, "admin") == 0;
    const char *other = admin ? r->reset_supervisor : r->reset_admin;
    int64_t other_ms = admin ? r->reset_supervisor_ms : r->reset_admin_ms;
    bool other_fresh = other[0] != '\0' && ctx->now_ms - other_ms <= ZFUNDS_RESET_HALF_MS;
    if (other_fresh && strcmp(other, id) == 0) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL,
                         "the two halves of a reset must come from two "
                         "different people");
    }
    if (admin) {
        r->reset_admin = (char *)id;
        r->reset_admin_ms = ctx->now_ms;
    } else {
        r->reset_supervisor = (char *)id;
        r->reset_supervisor_ms = ctx->now_ms;
    }
    const char *change = "reset_requested";
    if (other_fresh) {
        r->failures = 0;
        r->lock_announced = false;
        r->reset_admin = r->reset_supervisor = "";
        r->reset_admin_ms = r->reset_supervisor_ms = 0;
        change = "reset";
    }
    zfh_cred_put(ctx, cr->account, cred, r);
    zfh_cred_event(ctx, cr->account, cred, change, r->failures);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_CREDENTIAL;
    ctx->reply->funds_credential = cred_view(ctx, cred, r);
    return ztxn_err(ctx->txn);
}

static int query_unlock(zsvc_ctx_t *ctx, const Zhili__Funds__QueryUnlock *q)
{
    Zhili__Funds__CredentialRecord *r = NULL;
    zfunds_ledger_t l;
    if (!zfunds_account_ok(q->account)) {
        return zsvc_fail(ctx, ZE_INVALID, "account",
                         "account must be the compound's 15-digit "
                         "area code");
    }
    int rc = zfh_authorize(ctx, q->account, NULL, "unlocking the query view");
    if (rc == 0) {
        rc = secret_arg(ctx, "secret", q->secret);
    }
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", q->account, &l);
    }
    if (rc == 0) {
        rc = zfh_cred_get(ctx, q->account, ZFUNDS_QUERY, &r);
    }
    if (rc != 0) {
        return rc;
    }
    if (r->hash[0] == '\0') {
        return zsvc_fail(ctx, ZE_CONFLICT, "account", "the account has no query secret yet");
    }
    if ((rc = zfh_cred_attempt(ctx, q->account, ZFUNDS_QUERY, r)) != 0) {
        return rc;
    }
    Zhili__Funds__QueryUnlock copy = *q;
    copy.secret = "";
    Zhili__V1__Command blanked = *ctx->cmd;
    blanked.funds_query_unlock = &copy;
    return zfh_secret_work(ctx, r->hash, q->secret, "", &blanked, q->account);
}

static int query_unlock_finish(zsvc_ctx_t *ctx, const Zhili__Funds__QueryUnlock *q, bool verified)
{
    if (!verified) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL,
                         "the query view was not unlocked: the "
                         "credential did not match");
    }
    Zhili__Funds__CredentialRecord *r = NULL;
    int rc = zfh_cred_get(ctx, q->account, ZFUNDS_QUERY, &r);
    if (rc != 0) {
        return rc;
    }
    r->failures = 0;
    zfh_cred_put(ctx, q->account, ZFUNDS_QUERY, r);
    uint8_t raw[ZFUNDS_TICKET_BYTES], h[ZFUNDS_HASH_BYTES];
    char *text = zsvc_alloc(ctx, ZFUNDS_TICKET_TEXT_BYTES + 1);
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(text, ZFUNDS_TICKET_TEXT_BYTES + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_generichash(h, sizeof h, (const uint8_t *)text, strlen(text), NULL, 0);
    Zhili__Funds__TicketRecord t = ZHILI__FUNDS__TICKET_RECORD__INIT;
    t.account = q->account;
    t.expires_ms = ctx->now_ms + fsvc(ctx)->ticket_ms;
    zfstore_msg_put(ctx->txn, ftab(ctx)->tickets, h, sizeof h, &t.base);
    zfstore_due_put(ctx->txn, ftab(ctx), t.expires_ms, ZFDUE_TICKET, h, sizeof h);
    Zhili__Funds__QueryTicket *qt = zsvc_alloc(ctx, sizeof *qt);
    zhili__funds__query_ticket__init(qt);
    qt->account = q->account;
    qt->ticket = text;
    qt->expires_ms = t.expires_ms;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_TICKET;
    ctx->reply->funds_ticket = qt;
    return ztxn_err(ctx->txn);
}

/* ---- continuations ------------------------------------------------------------------ */

static int secret_done(zsvc_ctx_t *ctx, const Zhili__V1__Continuation *c)
{
    ProtobufCMessage *m = NULL, *cm = NULL;
    if (c->outcome_case != ZHILI__V1__CONTINUATION__OUTCOME_DATA || c->data.len == 0 ||
        zfstore_unpack(ctx->arena, &zhili__funds__work_result__descriptor, c->data.data,
                       c->data.len, &m) != 0) {
        return zsvc_fail(ctx, ZE_UNAVAILABLE, NULL,
                         "the secret could not be checked (the "
                         "service is short of memory); try again");
    }
    const Zhili__Funds__WorkResult *w = (const Zhili__Funds__WorkResult *)m;
    if (zfstore_unpack(ctx->arena, &zhili__v1__command__descriptor, w->command.data, w->command.len,
                       &cm) != 0) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "a checked command could not be read back");
    }
    /* Finish as the original command: its actor and request_id go on the events. */
    zsvc_ctx_t sub = *ctx;
    sub.cmd = (const Zhili__V1__Command *)cm;
    switch (sub.cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_FUNDS_WITHDRAWAL_APPROVE:
        return zfh_withdrawal_approve_finish(&sub, sub.cmd->funds_withdrawal_approve, w->verified);
    case ZHILI__V1__COMMAND__BODY_FUNDS_CREDENTIAL_SET:
        return credential_set_finish(&sub, sub.cmd->funds_credential_set, w->verified, w->new_hash);
    case ZHILI__V1__COMMAND__BODY_FUNDS_QUERY_UNLOCK:
        return query_unlock_finish(&sub, sub.cmd->funds_query_unlock, w->verified);
    default:
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "an unknown command came back checked");
    }
}

static int on_continuation(zsvc_ctx_t *ctx, const Zhili__V1__Continuation *c)
{
    if (strcmp(c->kind, "secret") == 0) {
        return secret_done(ctx, c);
    }
    if (strcmp(c->kind, "reserve") == 0) {
        return zfh_reserve_done(ctx, c);
    }
    if (strcmp(c->kind, "budget_op") == 0) {
        return zfh_budget_op_done(ctx, c);
    }
    return zsvc_fail(ctx, ZE_INTERNAL, NULL, "unknown continuation %s", c->kind);
}

/* ---- dispatch --------------------------------------------------------------------------- */

static void resolve(zsvc_ctx_t *ctx)
{
    zfunds_svc_t *s = fsvc(ctx);
    if (!s->resolved) {
        ZASSERT(zfstore_resolve(&s->t, zsvc_store(ctx->svc)) == 0);
        s->resolved = true;
    }
}

int zfunds_on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    resolve(ctx);
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_CONTINUATION:
        return on_continuation(ctx, cmd->continuation);
    case ZHILI__V1__COMMAND__BODY_FUNDS_ACCOUNT_OPEN:
        return account_open(ctx, cmd->funds_account_open);
    case ZHILI__V1__COMMAND__BODY_FUNDS_CREDENTIAL_SET:
        return credential_set(ctx, cmd->funds_credential_set);
    case ZHILI__V1__COMMAND__BODY_FUNDS_CREDENTIAL_RESET:
        return credential_reset(ctx, cmd->funds_credential_reset);
    case ZHILI__V1__COMMAND__BODY_FUNDS_QUERY_UNLOCK:
        return query_unlock(ctx, cmd->funds_query_unlock);
    case ZHILI__V1__COMMAND__BODY_FUNDS_DEPOSIT:
        return zfh_deposit(ctx, cmd->funds_deposit);
    case ZHILI__V1__COMMAND__BODY_FUNDS_REVERSE:
        return zfh_reverse(ctx, cmd->funds_reverse);
    case ZHILI__V1__COMMAND__BODY_FUNDS_WITHDRAWAL_REQUEST:
        return zfh_withdrawal_request(ctx, cmd->funds_withdrawal_request);
    case ZHILI__V1__COMMAND__BODY_FUNDS_WITHDRAWAL_APPROVE:
        return zfh_withdrawal_approve(ctx, cmd->funds_withdrawal_approve);
    case ZHILI__V1__COMMAND__BODY_FUNDS_WITHDRAWAL_REJECT:
        return zfh_withdrawal_reject(ctx, cmd->funds_withdrawal_reject);
    case ZHILI__V1__COMMAND__BODY_FUNDS_WITHDRAWAL_VOID:
        return zfh_withdrawal_void(ctx, cmd->funds_withdrawal_void);
    case ZHILI__V1__COMMAND__BODY_FUNDS_FEE_BILL:
        return zfh_fee_bill(ctx, cmd->funds_fee_bill);
    case ZHILI__V1__COMMAND__BODY_FUNDS_FEE_PAY:
        return zfh_fee_pay(ctx, cmd->funds_fee_pay);
    case ZHILI__V1__COMMAND__BODY_FUNDS_ASSET_REGISTER:
        return zfh_asset_register(ctx, cmd->funds_asset_register);
    case ZHILI__V1__COMMAND__BODY_FUNDS_ASSET_STEP:
        return zfh_asset_step(ctx, cmd->funds_asset_step);
    case ZHILI__V1__COMMAND__BODY_FUNDS_ASSET_LEASE:
        return zfh_asset_lease(ctx, cmd->funds_asset_lease);
    case ZHILI__V1__COMMAND__BODY_FUNDS_ASSET_LEASE_END:
        return zfh_asset_lease_end(ctx, cmd->funds_asset_lease_end);
    case ZHILI__V1__COMMAND__BODY_FUNDS_RENT_POST:
        return zfh_rent_post(ctx, cmd->funds_rent_post);
    default:
        break;
    }
    return zsvc_fail(ctx, ZE_INVALID, "body",
                     "the funds service does not take this command "
                     "(docs/funds.md lists its commands)");
}

bool zfunds_is_query(const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_FUNDS_ACCOUNT_GET:
    case ZHILI__V1__COMMAND__BODY_FUNDS_ENTRIES_LIST:
    case ZHILI__V1__COMMAND__BODY_FUNDS_STATEMENT_GET:
    case ZHILI__V1__COMMAND__BODY_FUNDS_VERIFY:
    case ZHILI__V1__COMMAND__BODY_FUNDS_WITHDRAWAL_GET:
    case ZHILI__V1__COMMAND__BODY_FUNDS_WITHDRAWALS_LIST:
    case ZHILI__V1__COMMAND__BODY_FUNDS_FEE_SUMMARY_GET:
    case ZHILI__V1__COMMAND__BODY_FUNDS_ARREARS_LIST:
    case ZHILI__V1__COMMAND__BODY_FUNDS_ASSETS_LIST:
        return true;
    default:
        return false;
    }
}

int zfunds_on_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    resolve(ctx);
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_FUNDS_ACCOUNT_GET:
        return zfh_account_get(ctx, cmd->funds_account_get);
    case ZHILI__V1__COMMAND__BODY_FUNDS_ENTRIES_LIST:
        return zfh_entries_list(ctx, cmd->funds_entries_list);
    case ZHILI__V1__COMMAND__BODY_FUNDS_STATEMENT_GET:
        return zfh_statement_get(ctx, cmd->funds_statement_get);
    case ZHILI__V1__COMMAND__BODY_FUNDS_VERIFY:
        return zfh_verify(ctx, cmd->funds_verify);
    case ZHILI__V1__COMMAND__BODY_FUNDS_WITHDRAWAL_GET:
        return zfh_withdrawal_get_q(ctx, cmd->funds_withdrawal_get);
    case ZHILI__V1__COMMAND__BODY_FUNDS_WITHDRAWALS_LIST:
        return zfh_withdrawals_list(ctx, cmd->funds_withdrawals_list);
    case ZHILI__V1__COMMAND__BODY_FUNDS_FEE_SUMMARY_GET:
        return zfh_fee_summary(ctx, cmd->funds_fee_summary_get);
    case ZHILI__V1__COMMAND__BODY_FUNDS_ARREARS_LIST:
        return zfh_arrears(ctx, cmd->funds_arrears_list);
    case ZHILI__V1__COMMAND__BODY_FUNDS_ASSETS_LIST:
        return zfh_assets_list(ctx, cmd->funds_assets_list);
    default:
        return zsvc_fail(ctx, ZE_INVALID, "body", "not a funds query");
    }
}

/* ---- the tick ------------------------------------------------------------------------------ */

/* A credential whose count reached the limit: once the checks in flight
 * settled, announce the lock (if a right secret did not clear it). */
static void lock_due(zsvc_ctx_t *ctx, const zfstore_due_t *d)
{
    if (d->len != ZFUNDS_ACCOUNT_BYTES + 1) {
        return;
    }
    char account[ZFUNDS_ACCOUNT_BYTES + 1];
    memcpy(account, d->payload, ZFUNDS_ACCOUNT_BYTES);
    account[ZFUNDS_ACCOUNT_BYTES] = '\0';
    int cred = d->payload[ZFUNDS_ACCOUNT_BYTES];
    Zhili__Funds__CredentialRecord *r = NULL;
    if (zfh_cred_get(ctx, account, cred, &r) != 0 || r->failures < ZFUNDS_FAILURES_MAX ||
        r->lock_announced) {
        return;
    }
    r->lock_announced = true;
    zfh_cred_put(ctx, account, cred, r);
    zfh_cred_event(ctx, account, cred, "locked", r->failures);
    zlog(ZLOG_WARN, "credential_locked", "account", account, NULL);
}

int zfunds_on_tick(zsvc_ctx_t *ctx)
{
    resolve(ctx);
    int rc = zfh_hints_apply(ctx);
    zfstore_due_t *due = NULL;
    int n = rc == 0 ? zfstore_due_take(ctx->txn, ftab(ctx), ctx->now_ms, ctx->arena, &due,
                                       ZFUNDS_DUE_PER_TICK)
                    : rc;
    for (int i = 0; i < n; i++) {
        switch (due[i].kind) {
        case ZFDUE_TICKET:
            ztxn_del(ctx->txn, ftab(ctx)->tickets, due[i].payload, due[i].len);
            break;
        case ZFDUE_LOCK:
            lock_due(ctx, &due[i]);
            break;
        default:
            zfh_due_ledger(ctx, &due[i]);
            break;
        }
    }
    if (n >= 0) {
        zfh_rent_tick(ctx);
    }
    return ztxn_err(ctx->txn);
}

/* ---- stats ------------------------------------------------------------------------------------
 */

typedef struct {
    int64_t accounts, balance, held, entries, budget_ops;
} totals_t;

static int ledger_row(void *arg, zval_t key, zval_t val)
{
    (void)key;
    totals_t *t = arg;
    zfunds_ledger_t l;
    if (zfunds_ledger_decode(val.data, val.len, &l) == 0) {
        t->accounts++;
        t->balance += l.balance;
        t->held += l.held;
        t->entries += (int64_t)l.entries;
    }
    return 0;
}

static int count_row(void *arg, zval_t key, zval_t val)
{
    (void)key;
    (void)val;
    ((totals_t *)arg)->budget_ops++;
    return 0;
}

int zfunds_on_stats(zsvc_ctx_t *ctx)
{
    resolve(ctx);
    totals_t t = {0, 0, 0, 0, 0};
    ztxn_scan(ctx->txn, ftab(ctx)->ledger, NULL, 0, NULL, 0, &t, ledger_row);
    ztxn_scan(ctx->txn, ftab(ctx)->budget_ops, NULL, 0, NULL, 0, &t, count_row);
    zsvc_stat_add(ctx, "funds_accounts", t.accounts, NULL);
    zsvc_stat_add(ctx, "funds_balance_fen", t.balance, NULL);
    zsvc_stat_add(ctx, "funds_held_fen", t.held, NULL);
    zsvc_stat_add(ctx, "funds_entries", t.entries, NULL);
    zsvc_stat_add(ctx, "funds_budget_ops_pending", t.budget_ops, NULL);
    zsvc_stat_add(ctx, "funds_line_check_hints", fsvc(ctx)->hint_count, NULL);
    return 0;
}
