/* handlers_fees: property fees (物业费: bills, payments, 收缴率, arrears) and
 * public assets (两房一共: register, 四步清底法, leases whose rent is posted as
 * 场地租金 on the 1st of each month, or on demand). docs/funds.md. */
#include <stdio.h>
#include <string.h>

#include "common/caltime.h"
#include "common/log.h"
#include "services/funds/handlers_internal.h"

static const char *const roles_fees[] = {"admin", "staff", "property", "committee", NULL};
static const char *const roles_arrears[] = {"admin",     "command_center", "staff", "property",
                                            "committee", "supervisor",     NULL};
static const char *const roles_assets[] = {"admin", "staff", "property", "committee", NULL};
static const char *const roles_lease[] = {"admin", "committee", NULL};
static const char *const roles_rent[] = {"admin", "staff", "property", "committee", NULL};

/* Who records each step of 四步清底法. */
static const char *const roles_step[5][5] = {
    {NULL},
    {"admin", "staff", NULL},                            /* 部门盘点: street and community */
    {"admin", "property", NULL},                         /* 物业提报: the property company */
    {"admin", "staff", "committee", "supervisor", NULL}, /* 现场核验: on site, together */
    {"admin", "committee", "party_branch", NULL},        /* 群众审议: residents' review */
};

static int account_arg(zsvc_ctx_t *ctx, const char *account, const char *const *roles,
                       const char *what)
{
    if (!zfunds_account_ok(account)) {
        return zsvc_fail(ctx, ZE_INVALID, "account",
                         "account must be the compound's 15-digit "
                         "area code");
    }
    return zfh_authorize(ctx, account, roles, what);
}

static int period_arg(zsvc_ctx_t *ctx, const char *period, int *key)
{
    if (zfunds_period_parse(period, key) != 0) {
        return zsvc_fail(ctx, ZE_INVALID, "period",
                         "period must be a month (2026-11) or a year "
                         "(2026)");
    }
    return 0;
}

static int household_arg(zsvc_ctx_t *ctx, const char *prefix, const char *account,
                         const char *building, const char *room)
{
    char field[96];
    snprintf(field, sizeof field, "%sbuilding", prefix);
    if (!zfunds_building_in(building, account)) {
        return zsvc_fail(ctx, ZE_INVALID, field,
                         "%s must be an 18-digit building code inside "
                         "compound %s",
                         field, account);
    }
    snprintf(field, sizeof field, "%sroom", prefix);
    return zfh_text(ctx, field, room, 1, ZFUNDS_ROOM_BYTES_MAX);
}

/* ---- fee periods ---------------------------------------------------------------------- */

static int period_get(zsvc_ctx_t *ctx, const char *account, int period,
                      Zhili__Funds__FeePeriodRecord **out)
{
    uint8_t key[ZFUNDS_ACCOUNT_BYTES + 4];
    ProtobufCMessage *m = NULL;
    int rc =
        zfstore_msg_get(ctx->txn, ftab(ctx)->fee_periods, key, zfkey_period(key, account, period),
                        &zhili__funds__fee_period_record__descriptor, ctx->arena, &m);
    if (rc == ZE_NOT_FOUND) {
        Zhili__Funds__FeePeriodRecord *r = zsvc_alloc(ctx, sizeof *r);
        zhili__funds__fee_period_record__init(r);
        *out = r;
        return 0;
    }
    *out = (Zhili__Funds__FeePeriodRecord *)m;
    return rc;
}

static void period_put(zsvc_ctx_t *ctx, const char *account, int period,
                       const Zhili__Funds__FeePeriodRecord *r)
{
    uint8_t key[ZFUNDS_ACCOUNT_BYTES + 4];
    zfstore_msg_put(ctx->txn, ftab(ctx)->fee_periods, key, zfkey_period(key, account, period),
                    &r->base);
}

static void fee_event(zsvc_ctx_t *ctx, const char *account, const char *period, const char *change,
                      const Zhili__Funds__FeeBillView *b, int64_t amount,
                      const Zhili__Funds__FeePeriodRecord *p)
{
    Zhili__Funds__FeeChange *ev = zsvc_alloc(ctx, sizeof *ev);
    zhili__funds__fee_change__init(ev);
    ev->account = (char *)account;
    ev->period = (char *)period;
    ev->change = (char *)change;
    ev->building = b->building;
    ev->room = b->room;
    ev->amount = amount;
    ev->fully_paid = b->paid >= b->amount;
    ev->households_billed = p->households_billed;
    ev->households_paid = p->households_paid;
    ev->amount_billed = p->amount_billed;
    ev->amount_paid = p->amount_paid;
    char type[24];
    snprintf(type, sizeof type, "fee_%s", change);
    zsvc_emit(ctx, type, account, ZHILI__V1__EVENT__BODY_FUNDS_FEE, ev);
}

static int bill_one(zsvc_ctx_t *ctx, const Zhili__Funds__FeeBill *b, int period, size_t i,
                    Zhili__Funds__FeePeriodRecord *p, int64_t *total)
{
    const Zhili__Funds__HouseholdArea *h = b->households[i];
    char prefix[48], field[96];
    snprintf(prefix, sizeof prefix, "households[%u].", (unsigned)i);
    int rc = household_arg(ctx, prefix, b->account, h->building, h->room);
    if (rc != 0) {
        return rc;
    }
    int64_t amount = 0;
    if (zfunds_fee_amount(b->rate_fen_per_m2, h->floor_area_centi_m2, b->flat_fen, &amount) != 0) {
        snprintf(field, sizeof field, "%sfloor_area_centi_m2", prefix);
        return zsvc_fail(ctx, ZE_INVALID, field,
                         "%s must be 1 to %lld (0.01 m²) with a per-m² "
                         "rate, and the bill 1 to %lld fen",
                         field, (long long)ZFUNDS_AREA_CENTI_M2_MAX, (long long)ZFUNDS_AMOUNT_MAX);
    }
    uint8_t key[ZFKEY_BYTES_MAX];
    size_t klen = zfkey_fee_bill(key, b->account, period, h->building, h->room);
    zval_t v;
    if (ztxn_get(ctx->txn, ftab(ctx)->fee_bills, key, klen, &v) == 0) {
        snprintf(field, sizeof field, "%sroom", prefix);
        return zsvc_fail(ctx, ZE_CONFLICT, field, "household %s %s is already billed for %s",
                         h->building, h->room, b->period);
    }
    Zhili__Funds__FeeBillView bill = ZHILI__FUNDS__FEE_BILL_VIEW__INIT;
    bill.building = h->building;
    bill.room = h->room;
    bill.amount = amount;
    bill.billed_ms = ctx->now_ms;
    zfstore_msg_put(ctx->txn, ftab(ctx)->fee_bills, key, klen, &bill.base);
    p->households_billed++;
    p->amount_billed += amount;
    *total += amount;
    fee_event(ctx, b->account, b->period, "billed", &bill, amount, p);
    return ztxn_err(ctx->txn);
}

int zfh_fee_bill(zsvc_ctx_t *ctx, const Zhili__Funds__FeeBill *b)
{
    int period = 0;
    zfunds_ledger_t l;
    Zhili__Funds__FeePeriodRecord *p = NULL;
    int rc = account_arg(ctx, b->account, roles_fees, "billing property fees");
    if (rc == 0) {
        rc = period_arg(ctx, b->period, &period);
    }
    if (rc == 0 && ((b->rate_fen_per_m2 != 0) == (b->flat_fen != 0) || b->rate_fen_per_m2 < 0 ||
                    b->flat_fen < 0 || b->rate_fen_per_m2 > ZFUNDS_FEE_RATE_MAX ||
                    b->flat_fen > ZFUNDS_AMOUNT_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "rate_fen_per_m2",
                       "give exactly one of rate_fen_per_m2 "
                       "(1 to %lld fen per m²) and flat_fen "
                       "(1 to %lld fen)",
                       (long long)ZFUNDS_FEE_RATE_MAX, (long long)ZFUNDS_AMOUNT_MAX);
    }
    if (rc == 0 && (b->n_households == 0 || b->n_households > ZFUNDS_BILL_HOUSEHOLDS_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "households", "households must list 1 to %d households",
                       ZFUNDS_BILL_HOUSEHOLDS_MAX);
    }
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", b->account, &l);
    }
    if (rc == 0) {
        rc = period_get(ctx, b->account, period, &p);
    }
    int64_t total = 0;
    for (size_t i = 0; rc == 0 && i < b->n_households; i++) {
        rc = bill_one(ctx, b, period, i, p, &total);
    }
    if (rc != 0) {
        return rc;
    }
    period_put(ctx, b->account, period, p);
    Zhili__Funds__FeeBillResult *r = zsvc_alloc(ctx, sizeof *r);
    zhili__funds__fee_bill_result__init(r);
    r->period = b->period;
    r->billed = (uint32_t)b->n_households;
    r->amount = total;
    r->households_billed = p->households_billed;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_FEE_BILL;
    ctx->reply->funds_fee_bill = r;
    return ztxn_err(ctx->txn);
}

static int pay_args(zsvc_ctx_t *ctx, const Zhili__Funds__FeePay *p, int *period)
{
    int rc = account_arg(ctx, p->account, roles_fees, "recording a fee payment");
    if (rc == 0) {
        rc = period_arg(ctx, p->period, period);
    }
    if (rc == 0) {
        rc = household_arg(ctx, "", p->account, p->building, p->room);
    }
    if (rc == 0 && (p->amount <= 0 || p->amount > ZFUNDS_AMOUNT_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "amount", "amount must be 1 to %lld fen",
                       (long long)ZFUNDS_AMOUNT_MAX);
    }
    if (rc == 0) {
        rc = zfh_text(ctx, "receipt", p->receipt, 1, ZFUNDS_RECEIPT_BYTES_MAX);
    }
    if (rc == 0 && p->receipt[0] == '#') {
        rc = zsvc_fail(ctx, ZE_INVALID, "receipt",
                       "receipt numbers starting with '#' are the "
                       "service's own");
    }
    if (rc == 0) {
        rc = zfh_text(ctx, "payer", p->payer, 0, ZFUNDS_PARTY_BYTES_MAX);
    }
    return rc;
}

int zfh_fee_pay(zsvc_ctx_t *ctx, const Zhili__Funds__FeePay *p)
{
    int period = 0;
    zfunds_ledger_t l;
    int rc = pay_args(ctx, p, &period);
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", p->account, &l);
    }
    if (rc != 0) {
        return rc;
    }
    uint8_t key[ZFKEY_BYTES_MAX];
    size_t klen = zfkey_fee_bill(key, p->account, period, p->building, p->room);
    ProtobufCMessage *m = NULL;
    if (zfstore_msg_get(ctx->txn, ftab(ctx)->fee_bills, key, klen,
                        &zhili__funds__fee_bill_view__descriptor, ctx->arena, &m) != 0) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, "room", "household %s %s has no bill for %s",
                         p->building, p->room, p->period);
    }
    Zhili__Funds__FeeBillView *bill = (Zhili__Funds__FeeBillView *)m;
    int64_t owed = bill->amount - bill->paid;
    if (owed <= 0) {
        return zsvc_fail(ctx, ZE_CONFLICT, "room", "household %s %s has paid its %s bill",
                         p->building, p->room, p->period);
    }
    if (p->amount > owed) {
        return zsvc_fail(ctx, ZE_INVALID, "amount",
                         "the household owes %lld fen for %s, less "
                         "than %lld",
                         (long long)owed, p->period, (long long)p->amount);
    }
    if (zfstore_receipt_seq(ctx->txn, ftab(ctx), p->account, p->receipt) != 0) {
        return zsvc_fail(ctx, ZE_CONFLICT, "receipt", "receipt %s is already in the journal",
                         p->receipt);
    }
    /* The payment is a deposit of 物业费 into the trust account. */
    zfunds_entry_t e;
    memset(&e, 0, sizeof e);
    e.kind = ZFUNDS_KIND_DEPOSIT;
    e.category = ZHILI__FUNDS__CATEGORY__CATEGORY_PROPERTY_FEE;
    e.amount = p->amount;
    const char *payer =
        p->payer[0] ? p->payer : zarena_printf(ctx->arena, "%s %s", p->building, p->room);
    e.payer = (zfunds_str_t){payer, strlen(payer)};
    e.payer_kind = ZFUNDS_PARTY_HOUSEHOLD;
    e.receipt = (zfunds_str_t){p->receipt, strlen(p->receipt)};
    const char *memo = zarena_printf(ctx->arena, "物业费 %s", p->period);
    e.memo = (zfunds_str_t){memo, strlen(memo)};
    if ((rc = zfh_append(ctx, p->account, &l, &e, "deposited", NULL)) != 0) {
        return rc;
    }
    Zhili__Funds__FeePeriodRecord *per = NULL;
    if ((rc = period_get(ctx, p->account, period, &per)) != 0) {
        return rc;
    }
    bill->paid += p->amount;
    per->amount_paid += p->amount;
    if (bill->paid == bill->amount) {
        bill->paid_ms = ctx->now_ms;
        per->households_paid++;
    }
    zfstore_msg_put(ctx->txn, ftab(ctx)->fee_bills, key, klen, &bill->base);
    period_put(ctx, p->account, period, per);
    fee_event(ctx, p->account, p->period, "paid", bill, p->amount, per);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_FEE_BILL_VIEW;
    ctx->reply->funds_fee_bill_view = bill;
    return ztxn_err(ctx->txn);
}

int zfh_fee_summary(zsvc_ctx_t *ctx, const Zhili__Funds__FeeSummaryGet *g)
{
    bool public_view = true;
    int period = 0;
    zfunds_ledger_t l;
    Zhili__Funds__FeePeriodRecord *p = NULL;
    int rc = zfh_view(ctx, g->account, "", &public_view);
    if (rc == 0) {
        rc = period_arg(ctx, g->period, &period);
    }
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", g->account, &l);
    }
    if (rc == 0) {
        rc = period_get(ctx, g->account, period, &p);
    }
    if (rc != 0) {
        return rc;
    }
    Zhili__Funds__FeeSummary *s = zsvc_alloc(ctx, sizeof *s);
    zhili__funds__fee_summary__init(s);
    s->account = g->account;
    s->period = g->period;
    s->households_billed = p->households_billed;
    s->households_paid = p->households_paid;
    s->amount_billed = p->amount_billed;
    s->amount_paid = p->amount_paid;
    s->rate_permille = zfunds_permille(p->households_paid, p->households_billed);
    s->amount_rate_permille = zfunds_permille((uint64_t)p->amount_paid, (uint64_t)p->amount_billed);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_FEE_SUMMARY;
    ctx->reply->funds_fee_summary = s;
    return ztxn_err(ctx->txn);
}

typedef struct {
    zsvc_ctx_t *ctx;
    Zhili__Funds__FeeBillView **out;
    size_t count, limit, prefix_len;
    uint64_t rows;
    int64_t outstanding;
    char next[ZAREA_BYTES_MAX + ZFUNDS_ROOM_BYTES_MAX + 1];
    bool more;
} arrears_t;

static int arrears_row(void *arg, zval_t key, zval_t val)
{
    arrears_t *a = arg;
    if (a->rows++ >= ZFUNDS_SCAN_ROWS_MAX || a->count == a->limit) {
        a->more = true;
        return 1;
    }
    ProtobufCMessage *m = NULL;
    if (zfstore_unpack(a->ctx->arena, &zhili__funds__fee_bill_view__descriptor, val.data, val.len,
                       &m) != 0) {
        return ZE_INTERNAL;
    }
    Zhili__Funds__FeeBillView *b = (Zhili__Funds__FeeBillView *)m;
    size_t tail = key.len - a->prefix_len;
    snprintf(a->next, sizeof a->next, "%.*s", (int)tail, (const char *)key.data + a->prefix_len);
    if (b->paid < b->amount) {
        a->out[a->count++] = b;
        a->outstanding += b->amount - b->paid;
    }
    return 0;
}

int zfh_arrears(zsvc_ctx_t *ctx, const Zhili__Funds__ArrearsList *l)
{
    int period = 0;
    zfunds_ledger_t led;
    int rc = account_arg(ctx, l->account, roles_arrears, "the arrears list");
    if (rc == 0) {
        rc = period_arg(ctx, l->period, &period);
    }
    if (rc == 0 && (l->limit < 0 || l->limit > ZFUNDS_PAGE_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "limit", "limit must be 1 to %d (0: %d)", ZFUNDS_PAGE_MAX,
                       ZFUNDS_PAGE_DEFAULT);
    }
    if (rc == 0) {
        rc = zfh_text(ctx, "after", l->after, 0, ZAREA_BYTES_MAX + ZFUNDS_ROOM_BYTES_MAX);
    }
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", l->account, &led);
    }
    if (rc != 0) {
        return rc;
    }
    arrears_t a;
    memset(&a, 0, sizeof a);
    a.ctx = ctx;
    a.limit = (size_t)(l->limit > 0 ? l->limit : ZFUNDS_PAGE_DEFAULT);
    a.out = zsvc_alloc(ctx, sizeof *a.out * a.limit);
    uint8_t prefix[ZFUNDS_ACCOUNT_BYTES + 4], start[ZFKEY_BYTES_MAX];
    a.prefix_len = zfkey_period(prefix, l->account, period);
    memcpy(start, prefix, a.prefix_len);
    size_t alen = strlen(l->after);
    memcpy(start + a.prefix_len, l->after, alen);
    start[a.prefix_len + alen] = 0; /* just past `after` itself */
    size_t slen = a.prefix_len + alen + (alen > 0 ? 1 : 0);
    if (ztxn_scan(ctx->txn, ftab(ctx)->fee_bills, prefix, a.prefix_len, start, slen, &a,
                  arrears_row) < 0) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "a fee bill row is damaged");
    }
    Zhili__Funds__Arrears *r = zsvc_alloc(ctx, sizeof *r);
    zhili__funds__arrears__init(r);
    r->period = l->period;
    r->households = a.out;
    r->n_households = a.count;
    r->outstanding = a.outstanding;
    r->next_after = a.more ? zsvc_strdup(ctx, a.next) : "";
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_ARREARS;
    ctx->reply->funds_arrears = r;
    return ztxn_err(ctx->txn);
}

/* ---- assets --------------------------------------------------------------------------------- */

static int asset_get(zsvc_ctx_t *ctx, const char *account, int64_t id, Zhili__Funds__Asset **out)
{
    uint8_t key[ZFUNDS_ACCOUNT_BYTES + 8];
    ProtobufCMessage *m = NULL;
    int rc = id > 0 ? zfstore_msg_get(ctx->txn, ftab(ctx)->assets, key,
                                      zfkey_account_u64(key, account, (uint64_t)id),
                                      &zhili__funds__asset__descriptor, ctx->arena, &m)
                    : ZE_NOT_FOUND;
    if (rc == ZE_NOT_FOUND) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, "asset_id", "the account has no asset %lld",
                         (long long)id);
    }
    *out = (Zhili__Funds__Asset *)m;
    return rc;
}

static int asset_save(zsvc_ctx_t *ctx, Zhili__Funds__Asset *a, const char *change)
{
    uint8_t key[ZFUNDS_ACCOUNT_BYTES + 8];
    a->change = "";
    zfstore_msg_put(ctx->txn, ftab(ctx)->assets, key,
                    zfkey_account_u64(key, a->account, (uint64_t)a->id), &a->base);
    Zhili__Funds__Asset *ev = zsvc_alloc(ctx, sizeof *ev);
    *ev = *a;
    ev->change = (char *)change;
    char type[32];
    snprintf(type, sizeof type, "asset_%s", change);
    zsvc_emit(ctx, type, a->account, ZHILI__V1__EVENT__BODY_FUNDS_ASSET, ev);
    return ztxn_err(ctx->txn);
}

static int asset_reply(zsvc_ctx_t *ctx, Zhili__Funds__Asset *a)
{
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_ASSET;
    ctx->reply->funds_asset = a;
    return ztxn_err(ctx->txn);
}

int zfh_asset_register(zsvc_ctx_t *ctx, const Zhili__Funds__AssetRegister *r)
{
    zfunds_ledger_t l;
    int rc = account_arg(ctx, r->account, roles_assets, "registering a public asset");
    if (rc == 0) {
        rc = zfh_text(ctx, "name", r->name, 1, ZFUNDS_NAME_BYTES_MAX);
    }
    if (rc == 0 && (r->kind < 1 || r->kind > 3)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "kind",
                       "kind must be community_service_room (社区服务用房), "
                       "property_management_room (物业管理用房) or "
                       "public_revenue_site (小区公共收益)");
    }
    if (rc == 0) {
        rc = zfh_text(ctx, "location", r->location, 1, ZFUNDS_LOCATION_BYTES_MAX);
    }
    if (rc == 0 && (r->area_centi_m2 <= 0 || r->area_centi_m2 > ZFUNDS_AREA_CENTI_M2_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "area_centi_m2",
                       "area_centi_m2 must be 1 to %lld "
                       "(0.01 m²)",
                       (long long)ZFUNDS_AREA_CENTI_M2_MAX);
    }
    if (rc == 0 && (r->status < 0 || r->status > 2)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "status", "status must be idle or in_use");
    }
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", r->account, &l);
    }
    if (rc != 0) {
        return rc;
    }
    Zhili__Funds__Asset *a = zsvc_alloc(ctx, sizeof *a);
    zhili__funds__asset__init(a);
    a->account = r->account;
    a->id = (int64_t)++l.next_asset;
    a->name = r->name;
    a->kind = r->kind;
    a->location = r->location;
    a->area_centi_m2 = r->area_centi_m2;
    a->status = r->status != 0 ? r->status : ZHILI__FUNDS__ASSET_STATUS__ASSET_STATUS_IDLE;
    a->registered_ms = ctx->now_ms;
    zfstore_ledger_put(ctx->txn, ftab(ctx), r->account, &l);
    if ((rc = asset_save(ctx, a, "registered")) != 0) {
        return rc;
    }
    return asset_reply(ctx, a);
}

int zfh_asset_step(zsvc_ctx_t *ctx, const Zhili__Funds__AssetStep *s)
{
    Zhili__Funds__Asset *a = NULL;
    int step = (int)s->step;
    if (step < 1 || step > 4) {
        return zsvc_fail(ctx, ZE_INVALID, "step",
                         "step must be department_count (部门盘点), "
                         "property_report (物业提报), site_verify "
                         "(现场核验) or public_review (群众审议)");
    }
    char what[64];
    snprintf(what, sizeof what, "the inventory step %s", zfunds_step_zh(step));
    int rc = account_arg(ctx, s->account, roles_step[step], what);
    if (rc == 0) {
        rc = zfh_text(ctx, "note", s->note, 0, ZFUNDS_MEMO_BYTES_MAX);
    }
    if (rc == 0) {
        rc = asset_get(ctx, s->account, s->asset_id, &a);
    }
    if (rc != 0) {
        return rc;
    }
    int last = a->n_inventory > 0 ? (int)a->inventory[a->n_inventory - 1]->step : 0;
    bool new_round = false;
    if (zfunds_inventory_next(last, step, &new_round) != 0) {
        int expect = last == ZFUNDS_STEP_PUBLIC_REVIEW ? 1 : last + 1;
        return zsvc_fail(ctx, ZE_CONFLICT, "step",
                         "四步清底法 goes 部门盘点 → 物业提报 → 现场核验 "
                         "→ 群众审议: the next step of asset %lld is %s",
                         (long long)a->id, zfunds_step_zh(expect));
    }
    if (new_round || a->round == 0) {
        a->round++;
        a->n_inventory = 0;
    }
    Zhili__Funds__InventoryRecord *rec = zsvc_alloc(ctx, sizeof *rec);
    zhili__funds__inventory_record__init(rec);
    rec->step = s->step;
    rec->by = (char *)zfh_actor_id(ctx);
    rec->by_name = ctx->cmd->actor->name;
    rec->role = ctx->cmd->actor->role;
    rec->ts_ms = ctx->now_ms;
    rec->note = s->note;
    Zhili__Funds__InventoryRecord **list = zsvc_alloc(ctx, sizeof *list * (a->n_inventory + 1));
    for (size_t i = 0; i < a->n_inventory; i++) {
        list[i] = a->inventory[i];
    }
    list[a->n_inventory++] = rec;
    a->inventory = list;
    if ((rc = asset_save(ctx, a, "step")) != 0) {
        return rc;
    }
    return asset_reply(ctx, a);
}

/* ---- leases and rent ------------------------------------------------------------------------- */

/* Post every month's rent due up to now (at most a bounded number of months
 * per call); one receipt per asset and month, so posting is idempotent.
 * Returns how many were posted, or a negative error (reply set). */
static int rent_post_asset(zsvc_ctx_t *ctx, Zhili__Funds__Asset *a, int64_t *amount)
{
    Zhili__Funds__Lease *lease = a->lease;
    if (lease == NULL || lease->ended) {
        return 0;
    }
    int now = ztime_month_key(ctx->now_ms), start = 0, end = 0;
    if (zfunds_month_parse(lease->start_month, &start) != 0) {
        return 0;
    }
    if (lease->end_month[0] != '\0' && zfunds_month_parse(lease->end_month, &end) != 0) {
        return 0;
    }
    int m =
        lease->last_posted_month != 0 ? zfunds_month_next((int)lease->last_posted_month) : start;
    int posted = 0;
    zfunds_ledger_t l;
    int rc = zfh_ledger(ctx, "account", a->account, &l);
    for (; rc == 0 && m <= now && (end == 0 || m <= end) && posted < ZFUNDS_RENT_MONTHS_PER_TICK;
         m = zfunds_month_next(m)) {
        char month[8];
        zfunds_period_format(m, month);
        const char *receipt = zarena_printf(ctx->arena, "#rent-%lld-%d", (long long)a->id, m);
        lease->last_posted_month = m;
        if (zfstore_receipt_seq(ctx->txn, ftab(ctx), a->account, receipt) != 0) {
            continue;
        }
        zfunds_entry_t e;
        memset(&e, 0, sizeof e);
        e.kind = ZFUNDS_KIND_DEPOSIT;
        e.category = ZHILI__FUNDS__CATEGORY__CATEGORY_VENUE_RENT;
        e.amount = lease->monthly_rent;
        e.payer = (zfunds_str_t){lease->operator_, strlen(lease->operator_)};
        e.payer_kind = ZFUNDS_PARTY_ORGANISATION;
        e.receipt = (zfunds_str_t){receipt, strlen(receipt)};
        const char *memo = zarena_printf(ctx->arena, "场地租金 %s %s", month, a->name);
        e.memo = (zfunds_str_t){memo, strlen(memo) < ZFUNDS_MEMO_BYTES_MAX ? strlen(memo)
                                                                           : ZFUNDS_MEMO_BYTES_MAX};
        rc = zfh_append(ctx, a->account, &l, &e, "deposited", NULL);
        posted++;
        *amount += lease->monthly_rent;
    }
    if (rc != 0) {
        return rc;
    }
    return posted;
}

int zfh_asset_lease(zsvc_ctx_t *ctx, const Zhili__Funds__AssetLease *l)
{
    Zhili__Funds__Asset *a = NULL;
    int start = 0, end = 0;
    int rc = account_arg(ctx, l->account, roles_lease, "leasing a public asset");
    if (rc == 0) {
        rc = zfh_text(ctx, "operator", l->operator_, 1, ZFUNDS_PARTY_BYTES_MAX);
    }
    if (rc == 0 && (l->monthly_rent <= 0 || l->monthly_rent > ZFUNDS_RENT_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "monthly_rent", "monthly_rent must be 1 to %lld fen",
                       (long long)ZFUNDS_RENT_MAX);
    }
    if (rc == 0 && zfunds_month_parse(l->start_month, &start) != 0) {
        rc = zsvc_fail(ctx, ZE_INVALID, "start_month", "start_month must be YYYY-MM");
    }
    if (rc == 0 && l->end_month[0] != '\0' &&
        (zfunds_month_parse(l->end_month, &end) != 0 || end < start)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "end_month",
                       "end_month must be YYYY-MM, not before "
                       "start_month (or empty: open-ended)");
    }
    if (rc == 0) {
        rc = asset_get(ctx, l->account, l->asset_id, &a);
    }
    if (rc != 0) {
        return rc;
    }
    int last = a->n_inventory > 0 ? (int)a->inventory[a->n_inventory - 1]->step : 0;
    if (!zfunds_inventory_complete(last)) {
        return zsvc_fail(ctx, ZE_CONFLICT, "asset_id",
                         "asset %lld has not been through the four "
                         "steps (四步清底法) yet",
                         (long long)a->id);
    }
    if (a->lease != NULL && !a->lease->ended) {
        return zsvc_fail(ctx, ZE_CONFLICT, "asset_id",
                         "asset %lld is leased to %s; end that "
                         "lease first",
                         (long long)a->id, a->lease->operator_);
    }
    Zhili__Funds__Lease *lease = zsvc_alloc(ctx, sizeof *lease);
    zhili__funds__lease__init(lease);
    lease->operator_ = l->operator_;
    lease->monthly_rent = l->monthly_rent;
    lease->start_month = l->start_month;
    lease->end_month = l->end_month;
    a->lease = lease;
    a->status = ZHILI__FUNDS__ASSET_STATUS__ASSET_STATUS_IN_USE;
    int64_t amount = 0;
    if ((rc = rent_post_asset(ctx, a, &amount)) < 0) {
        return rc;
    }
    if ((rc = asset_save(ctx, a, "leased")) != 0) {
        return rc;
    }
    return asset_reply(ctx, a);
}

int zfh_asset_lease_end(zsvc_ctx_t *ctx, const Zhili__Funds__AssetLeaseEnd *e)
{
    Zhili__Funds__Asset *a = NULL;
    int rc = account_arg(ctx, e->account, roles_lease, "ending a lease");
    if (rc == 0) {
        rc = zfh_text(ctx, "reason", e->reason, 1, ZFUNDS_MEMO_BYTES_MAX);
    }
    if (rc == 0) {
        rc = asset_get(ctx, e->account, e->asset_id, &a);
    }
    if (rc != 0) {
        return rc;
    }
    if (a->lease == NULL || a->lease->ended) {
        return zsvc_fail(ctx, ZE_CONFLICT, "asset_id", "asset %lld is not leased",
                         (long long)a->id);
    }
    a->lease->ended = true;
    a->status = ZHILI__FUNDS__ASSET_STATUS__ASSET_STATUS_IDLE;
    if ((rc = asset_save(ctx, a, "lease_ended")) != 0) {
        return rc;
    }
    return asset_reply(ctx, a);
}

typedef struct {
    zsvc_ctx_t *ctx;
    uint8_t (*keys)[ZFUNDS_ACCOUNT_BYTES + 8];
    int count, max;
    bool more;
} lease_keys_t;

static int lease_row(void *arg, zval_t key, zval_t val)
{
    lease_keys_t *k = arg;
    ProtobufCMessage *m = NULL;
    if (key.len != ZFUNDS_ACCOUNT_BYTES + 8 ||
        zfstore_unpack(k->ctx->arena, &zhili__funds__asset__descriptor, val.data, val.len, &m) !=
            0) {
        return 0;
    }
    const Zhili__Funds__Asset *a = (const Zhili__Funds__Asset *)m;
    if (a->lease == NULL || a->lease->ended) {
        return 0;
    }
    if (k->count == k->max) {
        k->more = true;
        return 1;
    }
    memcpy(k->keys[k->count++], key.data, key.len);
    return 0;
}

/* Leased assets of one account (account != NULL) or of all, then post. */
static int rent_post_all(zsvc_ctx_t *ctx, const char *account, int *posted, int64_t *amount,
                         bool *more)
{
    lease_keys_t k = {ctx, NULL, 0, ZFUNDS_DUE_PER_TICK, false};
    k.keys = zsvc_alloc(ctx, sizeof *k.keys * (size_t)k.max);
    uint8_t prefix[ZFUNDS_ACCOUNT_BYTES];
    size_t plen = account != NULL ? zfkey_account(prefix, account) : 0;
    ztxn_scan(ctx->txn, ftab(ctx)->assets, prefix, plen, NULL, 0, &k, lease_row);
    *more = k.more;
    for (int i = 0; i < k.count; i++) {
        char acct[ZFUNDS_ACCOUNT_BYTES + 1];
        snprintf(acct, sizeof acct, "%.*s", ZFUNDS_ACCOUNT_BYTES, (const char *)k.keys[i]);
        Zhili__Funds__Asset *a = NULL;
        int64_t id = (int64_t)zstore_be64_get(k.keys[i] + ZFUNDS_ACCOUNT_BYTES);
        int rc = asset_get(ctx, acct, id, &a);
        int n = rc == 0 ? rent_post_asset(ctx, a, amount) : rc;
        if (n < 0) {
            return n;
        }
        if (n > 0) {
            *posted += n;
            if ((rc = asset_save(ctx, a, "rent_posted")) != 0) {
                return rc;
            }
        }
    }
    return ztxn_err(ctx->txn);
}

int zfh_rent_post(zsvc_ctx_t *ctx, const Zhili__Funds__RentPost *r)
{
    zfunds_ledger_t l;
    int rc = account_arg(ctx, r->account, roles_rent, "posting rent");
    if (rc == 0) {
        rc = zfh_ledger(ctx, "account", r->account, &l);
    }
    int posted = 0;
    int64_t amount = 0;
    bool more = false;
    if (rc == 0) {
        rc = rent_post_all(ctx, r->account, &posted, &amount, &more);
    }
    if (rc != 0) {
        return rc;
    }
    Zhili__Funds__RentPosted *out = zsvc_alloc(ctx, sizeof *out);
    zhili__funds__rent_posted__init(out);
    out->posted = (uint32_t)posted;
    out->amount = amount;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_RENT;
    ctx->reply->funds_rent = out;
    return 0;
}

/* Once a month (and at start): post the rents that fell due. */
int zfh_rent_tick(zsvc_ctx_t *ctx)
{
    zfunds_svc_t *s = fsvc(ctx);
    int month = ztime_month_key(ctx->now_ms);
    if (s->rent_month_done == month) {
        return 0;
    }
    int posted = 0;
    int64_t amount = 0;
    bool more = false;
    if (rent_post_all(ctx, NULL, &posted, &amount, &more) != 0) {
        zlog(ZLOG_ERROR, "rent_post_failed", NULL);
        return ztxn_err(ctx->txn);
    }
    if (!more && ztxn_err(ctx->txn) == 0) {
        s->rent_month_done = month;
    }
    if (posted > 0) {
        zlogf(ZLOG_INFO, "rent_posted", "%d rents, %lld fen", posted, (long long)amount);
    }
    return ztxn_err(ctx->txn);
}

int zfh_assets_list(zsvc_ctx_t *ctx, const Zhili__Funds__AssetsList *l)
{
    bool public_view = true;
    int rc = zfh_view(ctx, l->account, "", &public_view);
    if (rc != 0) {
        return rc;
    }
    Zhili__Funds__Assets *r = zsvc_alloc(ctx, sizeof *r);
    zhili__funds__assets__init(r);
    r->assets = zsvc_alloc(ctx, sizeof *r->assets * ZFUNDS_PAGE_MAX);
    /* Assets are numbered 1, 2, 3 ... and never removed; a compound has tens. */
    for (uint64_t id = 1; r->n_assets < ZFUNDS_PAGE_MAX; id++) {
        uint8_t key[ZFUNDS_ACCOUNT_BYTES + 8];
        ProtobufCMessage *m = NULL;
        if (zfstore_msg_get(ctx->txn, ftab(ctx)->assets, key,
                            zfkey_account_u64(key, l->account, id),
                            &zhili__funds__asset__descriptor, ctx->arena, &m) != 0) {
            break;
        }
        r->assets[r->n_assets++] = (Zhili__Funds__Asset *)m;
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_FUNDS_ASSETS;
    ctx->reply->funds_assets = r;
    return ztxn_err(ctx->txn);
}
