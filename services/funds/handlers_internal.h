/* Shared by the funds handler files (handlers*.c); not for other modules. */
#ifndef ZHILI_FUNDS_HANDLERS_INTERNAL_H
#define ZHILI_FUNDS_HANDLERS_INTERNAL_H

#include "common/err.h"
#include "services/funds/handlers.h"

static inline zfunds_svc_t *fsvc(const zsvc_ctx_t *ctx)
{
    return ctx->user;
}

static inline const zfstore_t *ftab(const zsvc_ctx_t *ctx)
{
    return &((zfunds_svc_t *)ctx->user)->t;
}

/* Role lists end with NULL. */
extern const char *const zfh_roles_full_view[];

/* The actor's id ("" when none). */
const char *zfh_actor_id(const zsvc_ctx_t *ctx);

/* The command's actor may act on `account`: present, inside its area, and
 * (roles != NULL) of one of `roles`. 0 or ZE_FORBIDDEN with the reply set. */
int zfh_authorize(zsvc_ctx_t *ctx, const char *account, const char *const *roles, const char *what);

/* account is 15 digits and has a trust account: 0 with *l, else the reply. */
int zfh_ledger(zsvc_ctx_t *ctx, const char *field, const char *account, zfunds_ledger_t *l);

/* The account record (holders): 0, ZE_NOT_FOUND (reply set) or storage. */
int zfh_account(zsvc_ctx_t *ctx, const char *account, Zhili__Funds__AccountRecord **out);

/* Decide the view of a query: 0 with *public_view, or ZE_FORBIDDEN. */
int zfh_view(zsvc_ctx_t *ctx, const char *account, const char *ticket, bool *public_view);

/* Append a chained entry: ledger, journal, receipt, month rows, event of
 * `type` (deposited, withdrawn, reversed). *out (may be NULL) gets the entry
 * as a message. The ledger is written back. */
int zfh_append(zsvc_ctx_t *ctx, const char *account, zfunds_ledger_t *l, zfunds_entry_t *e,
               const char *type, Zhili__Funds__Entry **out);

/* An entry as a message (arena memory); public_view leaves personal data out. */
Zhili__Funds__Entry *zfh_entry_msg(zsvc_ctx_t *ctx, const zfunds_entry_t *e, bool public_view);

/* Copy a string view into the arena as a C string. */
char *zfh_str(zsvc_ctx_t *ctx, zfunds_str_t s);

/* Text field check with the reply set on failure. */
int zfh_text(zsvc_ctx_t *ctx, const char *field, const char *value, size_t min, size_t max);

/* Withdrawals (protobuf rows). */
int zfh_withdrawal_get(zsvc_ctx_t *ctx, const char *account, uint64_t number,
                       Zhili__Funds__Withdrawal **out);
void zfh_withdrawal_put(zsvc_ctx_t *ctx, const char *account, uint64_t number,
                        const Zhili__Funds__Withdrawal *w);
Zhili__Funds__Withdrawal *zfh_withdrawal_public(zsvc_ctx_t *ctx, const Zhili__Funds__Withdrawal *w);

/* Credentials (protobuf rows): a missing row reads as an empty record. */
int zfh_cred_get(zsvc_ctx_t *ctx, const char *account, int cred,
                 Zhili__Funds__CredentialRecord **out);
void zfh_cred_put(zsvc_ctx_t *ctx, const char *account, int cred,
                  const Zhili__Funds__CredentialRecord *r);

/* Count a secret check before it runs (a wrong secret is then already
 * counted when its continuation fails); FORBIDDEN when locked. */
int zfh_cred_attempt(zsvc_ctx_t *ctx, const char *account, int cred,
                     Zhili__Funds__CredentialRecord *r);

/* Hand a secret check (and/or the hashing of a new secret) to the worker
 * thread; the continuation "secret" carries `blanked` (the command without
 * its secrets) back. Returns ZSVC_DEFERRED or an error with the reply set. */
int zfh_secret_work(zsvc_ctx_t *ctx, const char *hash, const char *secret, const char *new_secret,
                    const Zhili__V1__Command *blanked, const char *key);

/* Emit a credential change event. */
void zfh_cred_event(zsvc_ctx_t *ctx, const char *account, int cred, const char *change,
                    uint32_t failures);

/* Ledger commands (handlers_ledger.c). */
int zfh_deposit(zsvc_ctx_t *ctx, const Zhili__Funds__Deposit *d);
int zfh_reverse(zsvc_ctx_t *ctx, const Zhili__Funds__Reverse *r);
int zfh_withdrawal_request(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalRequest *r);
int zfh_withdrawal_approve(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalApprove *a);
int zfh_withdrawal_approve_finish(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalApprove *a,
                                  bool verified);
int zfh_withdrawal_reject(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalReject *r);
int zfh_withdrawal_void(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalVoid *v);
int zfh_reserve_done(zsvc_ctx_t *ctx, const Zhili__V1__Continuation *c);
int zfh_budget_op_done(zsvc_ctx_t *ctx, const Zhili__V1__Continuation *c);
/* The tick's ledger work: refused line checks (hints), and due rows of
 * kinds ZFDUE_EXPIRE, ZFDUE_RESERVE, ZFDUE_BUDGET. */
int zfh_hints_apply(zsvc_ctx_t *ctx);
int zfh_due_ledger(zsvc_ctx_t *ctx, const zfstore_due_t *d);

/* Fees, assets, rent (handlers_fees.c). */
int zfh_fee_bill(zsvc_ctx_t *ctx, const Zhili__Funds__FeeBill *b);
int zfh_fee_pay(zsvc_ctx_t *ctx, const Zhili__Funds__FeePay *p);
int zfh_asset_register(zsvc_ctx_t *ctx, const Zhili__Funds__AssetRegister *r);
int zfh_asset_step(zsvc_ctx_t *ctx, const Zhili__Funds__AssetStep *s);
int zfh_asset_lease(zsvc_ctx_t *ctx, const Zhili__Funds__AssetLease *l);
int zfh_asset_lease_end(zsvc_ctx_t *ctx, const Zhili__Funds__AssetLeaseEnd *e);
int zfh_rent_post(zsvc_ctx_t *ctx, const Zhili__Funds__RentPost *r);
int zfh_rent_tick(zsvc_ctx_t *ctx);
int zfh_fee_summary(zsvc_ctx_t *ctx, const Zhili__Funds__FeeSummaryGet *g);
int zfh_arrears(zsvc_ctx_t *ctx, const Zhili__Funds__ArrearsList *l);
int zfh_assets_list(zsvc_ctx_t *ctx, const Zhili__Funds__AssetsList *l);

/* Queries (handlers_query.c). */
int zfh_account_get(zsvc_ctx_t *ctx, const Zhili__Funds__AccountGet *g);
int zfh_entries_list(zsvc_ctx_t *ctx, const Zhili__Funds__EntriesList *l);
int zfh_statement_get(zsvc_ctx_t *ctx, const Zhili__Funds__StatementGet *g);
int zfh_verify(zsvc_ctx_t *ctx, const Zhili__Funds__Verify *v);
int zfh_withdrawal_get_q(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalGet *g);
int zfh_withdrawals_list(zsvc_ctx_t *ctx, const Zhili__Funds__WithdrawalsList *l);

#endif
