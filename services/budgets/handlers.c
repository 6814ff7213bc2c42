/* handlers: commands, queries, timer and stats of the budgets service (see
 * handlers.h and docs/budgets.md). Each handler checks its input first and
 * answers a sentence; the runtime rolls back whatever a failed one wrote. */
#include "services/budgets/handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/area.h"
#include "common/caltime.h"
#include "common/err.h"
#include "services/budgets/budgets.h"
#include "services/budgets/handlers_internal.h"
#include "services/budgets/notice.h"
#include "services/budgets/store.h"

#define T_ITEMS "items"
#define T_PUBLISHED "published"
#define T_AMEND "amendments"
#define T_HISTORY "history"

const char *zbh_actor_role(const zsvc_ctx_t *ctx)
{
    const Zhili__V1__Actor *a = ctx->cmd != NULL ? ctx->cmd->actor : NULL;
    return a != NULL && a->role != NULL ? a->role : "";
}

static const char *zbh_actor_scope(const zsvc_ctx_t *ctx)
{
    const Zhili__V1__Actor *a = ctx->cmd != NULL ? ctx->cmd->actor : NULL;
    return a != NULL && a->area != NULL ? a->area : "";
}

bool zbh_role_is(const zsvc_ctx_t *ctx, const char *a, const char *b)
{
    const char *r = zbh_actor_role(ctx);
    return strcmp(r, a) == 0 || (b != NULL && strcmp(r, b) == 0);
}

/* A compound's code inside the caller's scope. */
int zbh_area_check(zsvc_ctx_t *ctx, const char *area)
{
    if (area == NULL || strlen(area) != ZBUD_AREA_BYTES || !zarea_valid(area)) {
        return zsvc_fail(ctx, ZE_INVALID, "area", "area must be a compound's 15-digit code");
    }
    if (!zarea_within(zbh_actor_scope(ctx), area)) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "area", "compound %s is outside your area", area);
    }
    return 0;
}

int zbh_resident_or_area_check(zsvc_ctx_t *ctx, const char *area)
{
    const char *scope = zbh_actor_scope(ctx);
    if (area != NULL && strlen(area) == ZBUD_AREA_BYTES && zarea_valid(area) &&
        strlen(scope) > ZBUD_AREA_BYTES && strncmp(scope, area, ZBUD_AREA_BYTES) == 0) {
        return 0;
    }
    return zbh_area_check(ctx, area);
}

int zbh_area_year_check(zsvc_ctx_t *ctx, const char *area, int64_t year)
{
    int rc = zbh_area_check(ctx, area);
    if (rc == 0 && (year < ZBUD_YEAR_MIN || year > ZBUD_YEAR_MAX)) {
        rc =
            zsvc_fail(ctx, ZE_INVALID, "year", "year must be %d..%d", ZBUD_YEAR_MIN, ZBUD_YEAR_MAX);
    }
    return rc;
}

/* Reads: the compound inside the caller's scope, or the caller inside the
 * compound (a resident's building), and a year in range. */
static int read_check(zsvc_ctx_t *ctx, const char *area, int64_t year)
{
    int rc = zbh_resident_or_area_check(ctx, area);
    if (rc == 0 && (year < ZBUD_YEAR_MIN || year > ZBUD_YEAR_MAX)) {
        rc =
            zsvc_fail(ctx, ZE_INVALID, "year", "year must be %d..%d", ZBUD_YEAR_MIN, ZBUD_YEAR_MAX);
    }
    return rc;
}

/* The name of item `code` for a compound: its own, else the default; "" when none. */
static void item_name(zsvc_ctx_t *ctx, const char *area, const char *code,
                      char out[ZBUD_NAME_BYTES_MAX + 1])
{
    char key[ZBUD_KEY_BYTES_MAX];
    snprintf(key, sizeof key, "%s:%s", area, code);
    zval_t v;
    if (ztxn_get(ctx->txn, zsvc_table(ctx, T_ITEMS), key, strlen(key), &v) == 0 &&
        v.len <= ZBUD_NAME_BYTES_MAX) {
        memcpy(out, v.data, v.len);
        out[v.len] = '\0';
        return;
    }
    const zbud_item_t *it = zbud_item_find(code);
    snprintf(out, ZBUD_NAME_BYTES_MAX + 1, "%s", it != NULL ? it->name : "");
}

/* ---- the catalogue ------------------------------------------------------ */

static int drafter_check(zsvc_ctx_t *ctx)
{
    if (!zbh_role_is(ctx, "property", "admin")) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "actor",
                         "the property company drafts budgets and items, not role \"%s\"",
                         zbh_actor_role(ctx));
    }
    return 0;
}

static int count_row(void *arg, zval_t key, zval_t val)
{
    (void)key;
    (void)val;
    (*(int *)arg)++;
    return 0;
}

static int item_set(zsvc_ctx_t *ctx, const Zhili__Budgets__ItemSet *q)
{
    int rc = drafter_check(ctx);
    if (rc == 0) {
        rc = zbh_area_check(ctx, q->area);
    }
    if (rc == 0 && !zbud_code_valid(q->code)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "code", "code must be <category 1-6>-<01-99>, e.g. 2-08");
    }
    if (rc == 0 &&
        (q->name == NULL || q->name[0] == '\0' || strlen(q->name) > ZBUD_NAME_BYTES_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "name", "name must be 1..%d bytes", ZBUD_NAME_BYTES_MAX);
    }
    if (rc != 0) {
        return rc;
    }
    char key[ZBUD_KEY_BYTES_MAX];
    snprintf(key, sizeof key, "%s:", q->area);
    int count = 0;
    ztxn_scan(ctx->txn, zsvc_table(ctx, T_ITEMS), key, strlen(key), NULL, 0, &count, count_row);
    snprintf(key, sizeof key, "%s:%s", q->area, q->code);
    zval_t v;
    if (count >= ZBUD_ITEMS_OWN_MAX &&
        ztxn_get(ctx->txn, zsvc_table(ctx, T_ITEMS), key, strlen(key), &v) != 0) {
        return zsvc_fail(ctx, ZE_CONFLICT, "code", "a compound has at most %d own items",
                         ZBUD_ITEMS_OWN_MAX);
    }
    ztxn_put(ctx->txn, zsvc_table(ctx, T_ITEMS), key, strlen(key), q->name, strlen(q->name));
    return ztxn_err(ctx->txn);
}

typedef struct {
    zsvc_ctx_t *ctx;
    Zhili__Budgets__Catalogue *cat;
    size_t prefix_len;
} cat_walk_t;

static Zhili__Budgets__Item *cat_item(cat_walk_t *w, const char *code, const char *name, bool own)
{
    Zhili__Budgets__Catalogue *cat = w->cat;
    for (size_t i = 0; i < cat->n_items; i++) {
        if (strcmp(cat->items[i]->code, code) == 0) {
            cat->items[i]->name = zsvc_strdup(w->ctx, name);
            cat->items[i]->own = own;
            return cat->items[i];
        }
    }
    Zhili__Budgets__Item *it = zsvc_alloc(w->ctx, sizeof *it);
    zhili__budgets__item__init(it);
    it->code = zsvc_strdup(w->ctx, code);
    it->name = zsvc_strdup(w->ctx, name);
    it->category = (char *)zbud_category_name(code[0] - '0');
    it->own = own;
    cat->items[cat->n_items++] = it;
    return it;
}

static int cat_own_row(void *arg, zval_t key, zval_t val)
{
    cat_walk_t *w = arg;
    char code[ZBUD_CODE_BYTES_MAX + 1], name[ZBUD_NAME_BYTES_MAX + 1];
    size_t clen = key.len - w->prefix_len;
    if (clen > ZBUD_CODE_BYTES_MAX || val.len > ZBUD_NAME_BYTES_MAX ||
        w->cat->n_items >= (size_t)(zbud_catalogue_count + ZBUD_ITEMS_OWN_MAX)) {
        return 0;
    }
    memcpy(code, (const char *)key.data + w->prefix_len, clen);
    code[clen] = '\0';
    memcpy(name, val.data, val.len);
    name[val.len] = '\0';
    cat_item(w, code, name, true);
    return 0;
}

static int catalogue_get(zsvc_ctx_t *ctx, const Zhili__Budgets__CatalogueGet *q)
{
    if (q->area[0] != '\0') {
        int rc = zbh_area_check(ctx, q->area);
        if (rc != 0) {
            return rc;
        }
    }
    Zhili__Budgets__Catalogue *cat = zsvc_alloc(ctx, sizeof *cat);
    zhili__budgets__catalogue__init(cat);
    cat->items =
        zsvc_alloc(ctx, sizeof *cat->items * (size_t)(zbud_catalogue_count + ZBUD_ITEMS_OWN_MAX));
    cat_walk_t w = {ctx, cat, 0};
    for (int i = 0; i < zbud_catalogue_count; i++) {
        cat_item(&w, zbud_catalogue[i].code, zbud_catalogue[i].name, false);
    }
    if (q->area[0] != '\0') {
        char prefix[ZBUD_KEY_BYTES_MAX];
        snprintf(prefix, sizeof prefix, "%s:", q->area);
        w.prefix_len = strlen(prefix);
        ztxn_scan(ctx->txn, zsvc_table(ctx, T_ITEMS), prefix, w.prefix_len, NULL, 0, &w,
                  cat_own_row);
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_BUDGETS_CATALOGUE;
    ctx->reply->budgets_catalogue = cat;
    return ztxn_err(ctx->txn);
}

/* ---- budgets: draft, submit, co-sign, amend ------------------------------ */

/* Large rows off the stack; handlers run on the service's one thread. */
static zbstore_budget_t budget_row, amend_row;

static bool code_known(zsvc_ctx_t *ctx, const char *area, const char *code)
{
    char name[ZBUD_NAME_BYTES_MAX + 1];
    item_name(ctx, area, code, name);
    return name[0] != '\0';
}

static int draft_line(zsvc_ctx_t *ctx, const char *area, const Zhili__Budgets__BudgetLine *in,
                      zbstore_line_def_t *out, size_t i)
{
    char field[48], msg[ZBUD_MSG_BYTES];
    snprintf(field, sizeof field, "lines[%zu]", i);
    if (in->line == NULL || !zbud_code_valid(in->line) || !code_known(ctx, area, in->line)) {
        return zsvc_fail(ctx, ZE_INVALID, field,
                         "line %zu: \"%s\" is not an item of the catalogue (see catalogue)", i,
                         in->line != NULL ? in->line : "");
    }
    if (in->standard != NULL && strlen(in->standard) > ZBUD_STANDARD_BYTES_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, field,
                         "line %zu: the service standard is over %d "
                         "bytes",
                         i, ZBUD_STANDARD_BYTES_MAX);
    }
    if (zbud_profile(in->amount, in->monthly, in->n_monthly, out->monthly, msg) != 0) {
        return zsvc_fail(ctx, ZE_INVALID, field, "line %zu (%s): %s", i, in->line, msg);
    }
    snprintf(out->code, sizeof out->code, "%s", in->line);
    snprintf(out->standard, sizeof out->standard, "%s", in->standard != NULL ? in->standard : "");
    out->amount = in->amount;
    return 0;
}

/* The draft's lines and income into b (state draft, no signatures), or an error. */
static int draft_build(zsvc_ctx_t *ctx, const Zhili__Budgets__BudgetDraft *q, zbstore_budget_t *b)
{
    int rc = 0;
    int64_t income = q->expected_income;
    if (income == 0) {
        /* Not entered: the funds' revenue of the year before (deposits net of reversals). */
        char key[ZBUD_KEY_BYTES_MAX];
        zbstore_budget_key(key, q->area, q->year - 1);
        zbstore_get(ctx->txn, zsvc_table(ctx, T_REVENUE), key, &income, sizeof income);
        if (income <= 0) {
            return zsvc_fail(ctx, ZE_INVALID, "expected_income",
                             "enter expected_income (fen) for 以收定支: funds recorded no revenue "
                             "of %s in %lld to take instead",
                             q->area, (long long)(q->year - 1));
        }
    }
    if (income < 0 || income > ZBUD_AMOUNT_MAX * ZBUD_LINES_MAX) {
        rc = zsvc_fail(ctx, ZE_INVALID, "expected_income",
                       "expected_income must be 1..%lld fen (or 0 for last year's revenue)",
                       (long long)(ZBUD_AMOUNT_MAX * ZBUD_LINES_MAX));
    }
    if (rc == 0 && (q->n_lines == 0 || q->n_lines > ZBUD_LINES_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "lines", "a budget has 1..%d lines", ZBUD_LINES_MAX);
    }
    if (rc != 0) {
        return rc;
    }
    memset(b, 0, sizeof *b);
    for (size_t i = 0; i < q->n_lines; i++) {
        rc = draft_line(ctx, q->area, q->lines[i], &b->lines[i], i);
        for (size_t j = 0; rc == 0 && j < i; j++) {
            if (strcmp(b->lines[j].code, b->lines[i].code) == 0) {
                rc = zsvc_fail(ctx, ZE_INVALID, "lines", "line %s appears twice", b->lines[i].code);
            }
        }
        if (rc != 0) {
            return rc;
        }
        b->total += b->lines[i].amount;
    }
    char msg[ZBUD_MSG_BYTES];
    if (zbud_income_check(b->total, income, msg) != 0) {
        return zsvc_fail(ctx, ZE_INVALID, "expected_income", "%s", msg);
    }
    b->state = ZBUD_DRAFT;
    b->expected_income = income;
    b->line_count = (int32_t)q->n_lines;
    return 0;
}

/* An amendment may not take a line below what is already reserved and spent
 * on it, nor drop a line that has any. */
static int amend_check(zsvc_ctx_t *ctx, const char *area, int64_t year, const zbstore_budget_t *cur,
                       const zbstore_budget_t *next)
{
    for (int i = 0; i < cur->line_count; i++) {
        zbstore_line_t l;
        char key[ZBUD_KEY_BYTES_MAX];
        zbstore_line_key(key, area, year, cur->lines[i].code);
        if (zbstore_get(ctx->txn, zsvc_table(ctx, T_LINES), key, &l, sizeof l) != 0) {
            continue;
        }
        int64_t used = l.reserved + l.spent, amount = 0;
        for (int j = 0; j < next->line_count; j++) {
            if (strcmp(next->lines[j].code, cur->lines[i].code) == 0) {
                amount = next->lines[j].amount;
            }
        }
        if (amount < used) {
            return zsvc_fail(ctx, ZE_CONFLICT, "lines",
                             "line %s already has %lld fen reserved or spent; the amendment "
                             "gives it %lld",
                             cur->lines[i].code, (long long)used, (long long)amount);
        }
    }
    return ztxn_err(ctx->txn);
}

static Zhili__Budgets__Budget *budget_msg(zsvc_ctx_t *ctx, const char *area, int64_t year,
                                          const zbstore_budget_t *b);

static void budget_reply(zsvc_ctx_t *ctx, Zhili__Budgets__Budget *m)
{
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_BUDGETS_BUDGET;
    ctx->reply->budgets_budget = m;
}

static int amend_load(zsvc_ctx_t *ctx, const char *area, int64_t year, zbstore_budget_t *a)
{
    char key[ZBUD_KEY_BYTES_MAX];
    zbstore_budget_key(key, area, year);
    return zbstore_get(ctx->txn, zsvc_table(ctx, T_AMEND), key, a, sizeof *a);
}

static int budget_draft(zsvc_ctx_t *ctx, const Zhili__Budgets__BudgetDraft *q)
{
    int rc = drafter_check(ctx);
    if (rc == 0) {
        rc = zbh_area_year_check(ctx, q->area, q->year);
    }
    zbstore_budget_t *next = &amend_row, *cur = &budget_row;
    if (rc == 0) {
        rc = draft_build(ctx, q, next);
    }
    if (rc != 0) {
        return rc;
    }
    char key[ZBUD_KEY_BYTES_MAX];
    zbstore_budget_key(key, q->area, q->year);
    int t = zsvc_table(ctx, T_BUDGETS);
    bool exists = zbstore_get(ctx->txn, t, key, cur, sizeof *cur) == 0;
    const char *type = "drafted";
    if (exists && cur->state == ZBUD_ACTIVE) {
        /* An amendment: co-signed like the budget, applied when all have signed. */
        zbstore_budget_t *pending = &budget_row;
        rc = amend_check(ctx, q->area, q->year, cur, next);
        if (rc == 0 && amend_load(ctx, q->area, q->year, pending) == 0 &&
            pending->state != ZBUD_DRAFT) {
            rc = zsvc_fail(ctx, ZE_CONFLICT, "year",
                           "an amendment of the %lld budget of %s is "
                           "being co-signed",
                           (long long)q->year, q->area);
        }
        if (rc != 0) {
            return rc;
        }
        t = zsvc_table(ctx, T_AMEND);
        type = "amendment_drafted";
    } else if (exists && cur->state != ZBUD_DRAFT) {
        return zsvc_fail(ctx, ZE_CONFLICT, "year", "the %lld budget of %s is already %s",
                         (long long)q->year, q->area, zbud_state_name(cur->state));
    }
    zbstore_put(ctx->txn, t, key, next, sizeof *next);
    Zhili__Budgets__Budget *m = budget_msg(ctx, q->area, q->year, next);
    zsvc_emit(ctx, type, q->area, ZHILI__V1__EVENT__BODY_BUDGETS_BUDGET, m);
    budget_reply(ctx, m);
    return ztxn_err(ctx->txn);
}

static int budget_load(zsvc_ctx_t *ctx, const char *area, int64_t year, zbstore_budget_t *b)
{
    char key[ZBUD_KEY_BYTES_MAX];
    zbstore_budget_key(key, area, year);
    int rc = zbstore_get(ctx->txn, zsvc_table(ctx, T_BUDGETS), key, b, sizeof *b);
    if (rc == ZE_NOT_FOUND) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, "year", "no %lld budget for %s", (long long)year, area);
    }
    return rc;
}

/* The row that submit and sign act on: the budget, or its pending amendment
 * when the budget is active. *table is where it is stored. */
static int target_load(zsvc_ctx_t *ctx, const char *area, int64_t year, zbstore_budget_t **row,
                       int *table)
{
    int rc = budget_load(ctx, area, year, &budget_row);
    *row = &budget_row;
    *table = zsvc_table(ctx, T_BUDGETS);
    if (rc == 0 && budget_row.state == ZBUD_ACTIVE &&
        amend_load(ctx, area, year, &amend_row) == 0) {
        *row = &amend_row;
        *table = zsvc_table(ctx, T_AMEND);
    }
    return rc != 0 ? rc : ztxn_err(ctx->txn);
}

static int budget_submit(zsvc_ctx_t *ctx, const Zhili__Budgets__BudgetSubmit *q)
{
    int rc = drafter_check(ctx);
    if (rc == 0) {
        rc = zbh_area_year_check(ctx, q->area, q->year);
    }
    zbstore_budget_t *b = NULL;
    int t = 0;
    if (rc == 0) {
        rc = target_load(ctx, q->area, q->year, &b, &t);
    }
    if (rc != 0) {
        return rc;
    }
    if (b->state != ZBUD_DRAFT) {
        return zsvc_fail(ctx, ZE_CONFLICT, "year", "the %lld budget of %s is already %s%s",
                         (long long)q->year, q->area, zbud_state_name(b->state),
                         b->state == ZBUD_ACTIVE ? " (draft an amendment first)" : "");
    }
    b->state = ZBUD_SUBMITTED;
    char key[ZBUD_KEY_BYTES_MAX];
    zbstore_budget_key(key, q->area, q->year);
    zbstore_put(ctx->txn, t, key, b, sizeof *b);
    Zhili__Budgets__Budget *m = budget_msg(ctx, q->area, q->year, b);
    zsvc_emit(ctx, b == &amend_row ? "amendment_submitted" : "submitted", q->area,
              ZHILI__V1__EVENT__BODY_BUDGETS_BUDGET, m);
    budget_reply(ctx, m);
    return ztxn_err(ctx->txn);
}

/* Every party signed: the lines become reservable, and execution is
 * published from the month of activation on. */
static void budget_activate(zsvc_ctx_t *ctx, const char *area, int64_t year, zbstore_budget_t *b)
{
    b->state = ZBUD_ACTIVE;
    b->version = 1;
    for (int i = 0; i < b->line_count; i++) {
        zbstore_line_t l;
        memset(&l, 0, sizeof l);
        l.budget = b->lines[i].amount;
        char key[ZBUD_KEY_BYTES_MAX];
        zbstore_line_key(key, area, year, b->lines[i].code);
        zbstore_put(ctx->txn, zsvc_table(ctx, T_LINES), key, &l, sizeof l);
    }
    ztime_parts_t p;
    ztime_local(ctx->now_ms, &p);
    int32_t published = p.month == 1 ? (p.year - 1) * 100 + 12 : p.year * 100 + p.month - 1;
    char key[ZBUD_KEY_BYTES_MAX];
    zbstore_budget_key(key, area, year);
    zbstore_put(ctx->txn, zsvc_table(ctx, T_PUBLISHED), key, &published, sizeof published);
}

static bool has_line(const zbstore_budget_t *b, const char *code)
{
    for (int i = 0; i < b->line_count; i++) {
        if (strcmp(b->lines[i].code, code) == 0) {
            return true;
        }
    }
    return false;
}

/* A co-signed amendment replaces the budget: the version before goes to the
 * history, kept lines take their new amounts (reservations and spending
 * stay), new lines open, dropped lines (nothing used: amend_check) close. */
static void amendment_apply(zsvc_ctx_t *ctx, const char *area, int64_t year,
                            const zbstore_budget_t *cur, zbstore_budget_t *next)
{
    char key[ZBUD_KEY_BYTES_MAX], hkey[ZBUD_KEY_BYTES_MAX + 8];
    zbstore_budget_key(key, area, year);
    snprintf(hkey, sizeof hkey, "%s:v%04d", key, (int)cur->version);
    ztxn_put(ctx->txn, zsvc_table(ctx, T_HISTORY), hkey, strlen(hkey), cur, sizeof *cur);
    ztxn_del(ctx->txn, zsvc_table(ctx, T_AMEND), key, strlen(key));
    int t_lines = zsvc_table(ctx, T_LINES);
    for (int i = 0; i < cur->line_count; i++) {
        if (!has_line(next, cur->lines[i].code)) {
            zbstore_line_key(key, area, year, cur->lines[i].code);
            ztxn_del(ctx->txn, t_lines, key, strlen(key));
        }
    }
    for (int i = 0; i < next->line_count; i++) {
        zbstore_line_t l;
        memset(&l, 0, sizeof l);
        zbstore_line_key(key, area, year, next->lines[i].code);
        if (zbstore_get(ctx->txn, t_lines, key, &l, sizeof l) != 0) {
            memset(&l, 0, sizeof l);
        }
        l.budget = next->lines[i].amount;
        zbstore_put(ctx->txn, t_lines, key, &l, sizeof l);
    }
    next->state = ZBUD_ACTIVE;
    next->version = cur->version + 1;
}

static int budget_sign(zsvc_ctx_t *ctx, const Zhili__Budgets__BudgetSign *q)
{
    int rc = zbh_area_year_check(ctx, q->area, q->year);
    zbstore_budget_t *b = NULL;
    int t = 0;
    if (rc == 0) {
        rc = target_load(ctx, q->area, q->year, &b, &t);
    }
    if (rc != 0) {
        return rc;
    }
    char msg[ZBUD_MSG_BYTES];
    unsigned mask = b->signed_mask;
    rc = zbud_sign((zbud_state_t)b->state, &mask, zbh_actor_role(ctx), msg);
    if (rc != 0) {
        return zsvc_fail(ctx, rc, "actor", "%s", msg);
    }
    bool amendment = b == &amend_row;
    int n = __builtin_popcount(b->signed_mask);
    snprintf(b->signed_order[n], sizeof b->signed_order[n], "%s", zbh_actor_role(ctx));
    b->signed_mask = mask;
    const char *done = NULL;
    if (mask == ZBUD_PARTIES_ALL && amendment) {
        amendment_apply(ctx, q->area, q->year, &budget_row, b);
        t = zsvc_table(ctx, T_BUDGETS);
        done = "amended";
    } else if (mask == ZBUD_PARTIES_ALL) {
        budget_activate(ctx, q->area, q->year, b);
        done = "activated";
    }
    char key[ZBUD_KEY_BYTES_MAX];
    zbstore_budget_key(key, q->area, q->year);
    zbstore_put(ctx->txn, t, key, b, sizeof *b);
    Zhili__Budgets__Budget *m = budget_msg(ctx, q->area, q->year, b);
    zsvc_emit(ctx, amendment ? "amendment_signed" : "signed", q->area,
              ZHILI__V1__EVENT__BODY_BUDGETS_BUDGET, m);
    if (done != NULL) {
        zsvc_emit(ctx, done, q->area, ZHILI__V1__EVENT__BODY_BUDGETS_BUDGET, m);
    }
    budget_reply(ctx, m);
    return ztxn_err(ctx->txn);
}

static Zhili__Budgets__Budget *budget_msg(zsvc_ctx_t *ctx, const char *area, int64_t year,
                                          const zbstore_budget_t *b)
{
    Zhili__Budgets__Budget *m = zsvc_alloc(ctx, sizeof *m);
    zhili__budgets__budget__init(m);
    m->area = zsvc_strdup(ctx, area);
    m->year = year;
    m->state = (char *)zbud_state_name((zbud_state_t)b->state);
    m->expected_income = b->expected_income;
    m->total = b->total;
    m->version = b->version;
    m->signed_ = zsvc_alloc(ctx, sizeof *m->signed_ * ZBUD_PARTIES);
    for (int i = 0; i < ZBUD_PARTIES && b->signed_order[i][0] != '\0'; i++) {
        m->signed_[m->n_signed_++] = zsvc_strdup(ctx, b->signed_order[i]);
    }
    m->lines = zsvc_alloc(ctx, sizeof *m->lines * (size_t)(b->line_count > 0 ? b->line_count : 1));
    for (int i = 0; i < b->line_count; i++) {
        const zbstore_line_def_t *d = &b->lines[i];
        Zhili__Budgets__LineState *ls = zsvc_alloc(ctx, sizeof *ls);
        zhili__budgets__line_state__init(ls);
        char name[ZBUD_NAME_BYTES_MAX + 1], key[ZBUD_KEY_BYTES_MAX];
        item_name(ctx, area, d->code, name);
        ls->line = zsvc_strdup(ctx, d->code);
        ls->name = zsvc_strdup(ctx, name);
        ls->amount = d->amount;
        ls->standard = zsvc_strdup(ctx, d->standard);
        ls->monthly = zsvc_alloc(ctx, sizeof d->monthly);
        memcpy(ls->monthly, d->monthly, sizeof d->monthly);
        ls->n_monthly = ZBUD_MONTHS;
        zbstore_line_t l;
        memset(&l, 0, sizeof l);
        l.budget = d->amount;
        zbstore_line_key(key, area, year, d->code);
        zbstore_get(ctx->txn, zsvc_table(ctx, T_LINES), key, &l, sizeof l);
        ls->reserved = l.reserved;
        ls->spent = l.spent;
        ls->remaining = zbud_remaining(l.budget, l.reserved, l.spent);
        m->lines[m->n_lines++] = ls;
    }
    return m;
}

static int budget_get(zsvc_ctx_t *ctx, const Zhili__Budgets__BudgetGet *q)
{
    int rc = read_check(ctx, q->area, q->year);
    if (rc == 0) {
        rc = budget_load(ctx, q->area, q->year, &budget_row);
    }
    if (rc != 0) {
        return rc;
    }
    if (q->version != 0 && q->version != budget_row.version) {
        char key[ZBUD_KEY_BYTES_MAX], hkey[ZBUD_KEY_BYTES_MAX + 8];
        zbstore_budget_key(key, q->area, q->year);
        snprintf(hkey, sizeof hkey, "%s:v%04lld", key,
                 (long long)(q->version > 0 && q->version < 10000 ? q->version : 0));
        if (zbstore_get(ctx->txn, zsvc_table(ctx, T_HISTORY), hkey, &amend_row, sizeof amend_row) !=
            0) {
            return ztxn_err(ctx->txn) != 0
                       ? ztxn_err(ctx->txn)
                       : zsvc_fail(ctx, ZE_NOT_FOUND, "version",
                                   "no version %lld of the %lld "
                                   "budget of %s",
                                   (long long)q->version, (long long)q->year, q->area);
        }
        /* A past version: its lines as they were (reserved and spent are today's). */
        Zhili__Budgets__Budget *m = budget_msg(ctx, q->area, q->year, &amend_row);
        m->state = "superseded";
        budget_reply(ctx, m);
        return ztxn_err(ctx->txn);
    }
    Zhili__Budgets__Budget *m = budget_msg(ctx, q->area, q->year, &budget_row);
    if (budget_row.state == ZBUD_ACTIVE && amend_load(ctx, q->area, q->year, &amend_row) == 0) {
        m->amendment = budget_msg(ctx, q->area, q->year, &amend_row);
    }
    budget_reply(ctx, m);
    return ztxn_err(ctx->txn);
}

/* ---- execution (每月执行公示) ---------------------------------------------- */

static Zhili__Budgets__Execution *execution_msg(zsvc_ctx_t *ctx, const char *area, int64_t year,
                                                int month, const zbstore_budget_t *b)
{
    Zhili__Budgets__Execution *e = zsvc_alloc(ctx, sizeof *e);
    zhili__budgets__execution__init(e);
    e->area = zsvc_strdup(ctx, area);
    e->year = year;
    e->month = month;
    e->rows = zsvc_alloc(ctx, sizeof *e->rows * (size_t)(b->line_count > 0 ? b->line_count : 1));
    for (int i = 0; i < b->line_count; i++) {
        const zbstore_line_def_t *d = &b->lines[i];
        zbstore_line_t l;
        memset(&l, 0, sizeof l);
        char key[ZBUD_KEY_BYTES_MAX], name[ZBUD_NAME_BYTES_MAX + 1];
        zbstore_line_key(key, area, year, d->code);
        zbstore_get(ctx->txn, zsvc_table(ctx, T_LINES), key, &l, sizeof l);
        zbud_exec_t x;
        zbud_exec_line(d->monthly, l.spent_month, month, &x);
        Zhili__Budgets__ExecutionRow *r = zsvc_alloc(ctx, sizeof *r);
        zhili__budgets__execution_row__init(r);
        item_name(ctx, area, d->code, name);
        r->line = zsvc_strdup(ctx, d->code);
        r->name = zsvc_strdup(ctx, name);
        r->budget_month = x.budget_month;
        r->actual_month = x.actual_month;
        r->budget_to_date = x.budget_to_date;
        r->actual_to_date = x.actual_to_date;
        r->variance = x.variance;
        r->rate_bp = x.rate_bp;
        e->rows[e->n_rows++] = r;
        e->budget_to_date += x.budget_to_date;
        e->actual_to_date += x.actual_to_date;
    }
    e->variance = e->budget_to_date - e->actual_to_date;
    e->rate_bp = zbud_rate_bp(e->actual_to_date, e->budget_to_date);
    return e;
}

static int execution_get(zsvc_ctx_t *ctx, const Zhili__Budgets__ExecutionGet *q)
{
    int rc = read_check(ctx, q->area, q->year);
    if (rc == 0 && (q->month < 1 || q->month > ZBUD_MONTHS)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "month", "month must be 1..12");
    }
    if (rc == 0) {
        rc = budget_load(ctx, q->area, q->year, &budget_row);
    }
    if (rc == 0 && budget_row.state != ZBUD_ACTIVE) {
        rc = zsvc_fail(ctx, ZE_CONFLICT, "year", "the %lld budget of %s is %s, not active",
                       (long long)q->year, q->area, zbud_state_name(budget_row.state));
    }
    if (rc != 0) {
        return rc;
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_BUDGETS_EXECUTION;
    ctx->reply->budgets_execution =
        execution_msg(ctx, q->area, q->year, (int)q->month, &budget_row);
    return ztxn_err(ctx->txn);
}

/* The execution of a month as the printable notice for the bulletin board. */
static int notice_get(zsvc_ctx_t *ctx, const Zhili__Budgets__NoticeGet *q)
{
    Zhili__Budgets__ExecutionGet eq = ZHILI__BUDGETS__EXECUTION_GET__INIT;
    eq.area = q->area;
    eq.year = q->year;
    eq.month = q->month;
    int rc = execution_get(ctx, &eq);
    if (rc != 0) {
        return rc;
    }
    const Zhili__Budgets__Execution *e = ctx->reply->budgets_execution;
    zbud_notice_row_t *rows = zsvc_alloc(ctx, sizeof *rows * (e->n_rows > 0 ? e->n_rows : 1));
    for (size_t i = 0; i < e->n_rows; i++) {
        const Zhili__Budgets__ExecutionRow *r = e->rows[i];
        rows[i] = (zbud_notice_row_t){r->line,
                                      r->name,
                                      {r->budget_month, r->actual_month, r->budget_to_date,
                                       r->actual_to_date, r->variance, r->rate_bp}};
    }
    zbud_notice_t n = {.area = e->area,
                       .year = (int)e->year,
                       .month = (int)e->month,
                       .rows = rows,
                       .row_count = (int)e->n_rows};
    for (size_t i = 0; i < e->n_rows; i++) {
        n.total.budget_month += rows[i].x.budget_month;
        n.total.actual_month += rows[i].x.actual_month;
    }
    n.total.budget_to_date = e->budget_to_date;
    n.total.actual_to_date = e->actual_to_date;
    n.total.variance = e->variance;
    n.total.rate_bp = e->rate_bp;
    char today[ZTIME_RFC3339_BYTES];
    ztime_format(ctx->now_ms, today);
    today[10] = '\0'; /* the local date of "2026-12-01T08:00:00+08:00" */
    n.published = today;
    char *html = zsvc_alloc(ctx, ZBUD_NOTICE_BYTES_MAX);
    if (zbud_notice_html(&n, html, ZBUD_NOTICE_BYTES_MAX) < 0) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "the notice does not fit in %u bytes",
                         ZBUD_NOTICE_BYTES_MAX);
    }
    Zhili__Budgets__Notice *out = zsvc_alloc(ctx, sizeof *out);
    zhili__budgets__notice__init(out);
    out->html = html;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_BUDGETS_NOTICE;
    ctx->reply->budgets_notice = out;
    return 0;
}

/* A late consume lands in the budget year's December, a reversal in the month
 * it happens: when that month is already published, its notice and
 * reporting (which counts a month published again by the difference) would
 * keep the old figures. So the month is published again, as it now stands. */
void zbud_republish(zsvc_ctx_t *ctx, const char *line_key, int month_index)
{
    const char *colon = strchr(line_key, ':');
    if (colon == NULL || colon - line_key != ZBUD_AREA_BYTES || month_index < 0 ||
        month_index >= ZBUD_MONTHS) {
        return;
    }
    char area[ZBUD_AREA_BYTES + 1], key[ZBUD_KEY_BYTES_MAX];
    memcpy(area, line_key, ZBUD_AREA_BYTES);
    area[ZBUD_AREA_BYTES] = '\0';
    int32_t year = (int32_t)strtol(colon + 1, NULL, 10);
    zbstore_budget_key(key, area, year);
    int32_t last = 0, month = year * 100 + month_index + 1;
    zbstore_get(ctx->txn, zsvc_table(ctx, T_PUBLISHED), key, &last, sizeof last);
    zbstore_budget_t *b = &budget_row;
    if (last < month || zbstore_get(ctx->txn, zsvc_table(ctx, T_BUDGETS), key, b, sizeof *b) != 0 ||
        b->state != ZBUD_ACTIVE) {
        return; /* not published yet: the tick publishes it with these figures */
    }
    Zhili__Budgets__Execution *e = execution_msg(ctx, area, year, month_index + 1, b);
    zsvc_emit(ctx, "execution_published", area, ZHILI__V1__EVENT__BODY_BUDGETS_EXECUTION, e);
}

/* On the 1st of each month (or the first tick after it), every active budget
 * publishes the execution of each month that has ended and is not yet
 * published, in order and once: the month before, and any month the service
 * was down for, also across the turn of the year (a budget of 2026 publishes
 * its December in January, or later if need be). A month's figures come from
 * the lines' spending by month, so a late publication says what it would
 * have said on time. */
typedef struct {
    zsvc_ctx_t *ctx;
    int32_t ended; /* yyyymm of the month before now */
    int published;
} tick_walk_t;

static int32_t month_after(int32_t yyyymm)
{
    return yyyymm % 100 == 12 ? (yyyymm / 100 + 1) * 100 + 1 : yyyymm + 1;
}

static int tick_row(void *arg, zval_t key, zval_t val)
{
    tick_walk_t *w = arg;
    zbstore_budget_t *b = &budget_row;
    char k[ZBUD_KEY_BYTES_MAX];
    if (val.len != sizeof *b || key.len >= sizeof k || w->published >= ZBUD_TICK_PUBLISH_MAX) {
        return 0;
    }
    memcpy(k, key.data, key.len);
    k[key.len] = '\0';
    const char *colon = strchr(k, ':');
    if (colon == NULL) {
        return 0;
    }
    int32_t year = (int32_t)strtol(colon + 1, NULL, 10);
    int32_t last_of_year = year * 100 + 12;
    int32_t target = w->ended < last_of_year ? w->ended : last_of_year;
    /* Cheap checks first: this runs every heartbeat over every budget. */
    int t_pub = zsvc_table(w->ctx, T_PUBLISHED);
    int32_t last = 0, state;
    zbstore_get(w->ctx->txn, t_pub, k, &last, sizeof last);
    memcpy(&state, val.data, sizeof state); /* state is the row's first field */
    if (last >= target || state != ZBUD_ACTIVE) {
        return 0;
    }
    memcpy(b, val.data, sizeof *b);
    char area[ZBUD_AREA_BYTES + 1];
    snprintf(area, sizeof area, "%.*s", (int)(colon - k), k);
    int32_t m = last < year * 100 + 1 ? year * 100 + 1 : month_after(last);
    for (; m <= target && w->published < ZBUD_TICK_PUBLISH_MAX; m = month_after(m)) {
        Zhili__Budgets__Execution *e = execution_msg(w->ctx, area, year, m % 100, b);
        zsvc_emit(w->ctx, "execution_published", area, ZHILI__V1__EVENT__BODY_BUDGETS_EXECUTION, e);
        zbstore_put(w->ctx->txn, t_pub, k, &m, sizeof m);
        w->published++;
    }
    return 0;
}

int zbud_on_tick(zsvc_ctx_t *ctx)
{
    ztime_parts_t p;
    ztime_local(ctx->now_ms, &p);
    int32_t ended = p.month == 1 ? (p.year - 1) * 100 + 12 : p.year * 100 + p.month - 1;
    tick_walk_t w = {ctx, ended, 0};
    /* tick_row writes only the published table, so the scan's views stay valid. */
    ztxn_scan(ctx->txn, zsvc_table(ctx, T_BUDGETS), NULL, 0, NULL, 0, &w, tick_row);
    return ztxn_err(ctx->txn) != 0 ? ztxn_err(ctx->txn) : zbud_queries_tick(ctx);
}

/* ---- dispatch ------------------------------------------------------------ */

int zbud_on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_BUDGETS_LINE_RESERVE:
        return zbud_line_reserve(ctx, cmd->budgets_line_reserve);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_LINE_CONSUME:
        return zbud_line_settle(ctx, cmd->budgets_line_consume->withdrawal_id, true);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_LINE_RELEASE:
        return zbud_line_settle(ctx, cmd->budgets_line_release->withdrawal_id, false);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_ITEM_SET:
        return item_set(ctx, cmd->budgets_item_set);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_DRAFT:
        return budget_draft(ctx, cmd->budgets_draft);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_SUBMIT:
        return budget_submit(ctx, cmd->budgets_submit);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_SIGN:
        return budget_sign(ctx, cmd->budgets_sign);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_QUERY_RAISE:
        return zbud_query_raise(ctx, cmd->budgets_query_raise);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_QUERY_ANSWER:
        return zbud_query_answer(ctx, cmd->budgets_query_answer);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_EVAL_RECORD:
        return zbud_eval_record(ctx, cmd->budgets_eval_record);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_STANDARD_SET:
        return zbud_standard_set(ctx, cmd->budgets_standard_set);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_PROGRESS_ADD:
        return zbud_progress_add(ctx, cmd->budgets_progress_add);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_MEETING_RECORD:
        return zbud_meeting_record(ctx, cmd->budgets_meeting_record);
    default:
        break;
    }
    return zsvc_fail(ctx, ZE_INVALID, "body", "the budgets service does not take this command");
}

bool zbud_is_query(const Zhili__V1__Command *cmd)
{
    return cmd->body_case == ZHILI__V1__COMMAND__BODY_BUDGETS_CATALOGUE_GET ||
           cmd->body_case == ZHILI__V1__COMMAND__BODY_BUDGETS_GET ||
           cmd->body_case == ZHILI__V1__COMMAND__BODY_BUDGETS_EXECUTION_GET ||
           cmd->body_case == ZHILI__V1__COMMAND__BODY_BUDGETS_NOTICE_GET ||
           cmd->body_case == ZHILI__V1__COMMAND__BODY_BUDGETS_QUERIES_LIST ||
           cmd->body_case == ZHILI__V1__COMMAND__BODY_BUDGETS_SCORE_GET ||
           cmd->body_case == ZHILI__V1__COMMAND__BODY_BUDGETS_LISTS_GET;
}

int zbud_on_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_BUDGETS_CATALOGUE_GET:
        return catalogue_get(ctx, cmd->budgets_catalogue_get);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_GET:
        return budget_get(ctx, cmd->budgets_get);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_EXECUTION_GET:
        return execution_get(ctx, cmd->budgets_execution_get);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_NOTICE_GET:
        return notice_get(ctx, cmd->budgets_notice_get);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_QUERIES_LIST:
        return zbud_queries_list(ctx, cmd->budgets_queries_list);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_SCORE_GET:
        return zbud_score_get(ctx, cmd->budgets_score_get);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_LISTS_GET:
        return zbud_lists_get(ctx, cmd->budgets_lists_get);
    default:
        break;
    }
    return zsvc_fail(ctx, ZE_INVALID, "body", "the budgets service does not take this query");
}

static int stat_row(void *arg, zval_t key, zval_t val)
{
    int64_t *counts = arg;
    int32_t state;
    (void)key;
    if (val.len == sizeof(zbstore_budget_t)) {
        memcpy(&state, val.data, sizeof state); /* state is the row's first field */
        if (state >= 0 && state <= ZBUD_ACTIVE) {
            counts[state]++;
        }
    }
    return 0;
}

int zbud_on_stats(zsvc_ctx_t *ctx)
{
    int64_t counts[3] = {0, 0, 0};
    if (ztxn_scan(ctx->txn, zsvc_table(ctx, T_BUDGETS), NULL, 0, NULL, 0, counts, stat_row) < 0) {
        return ZE_INTERNAL;
    }
    for (int s = 0; s < 3; s++) {
        char labels[32];
        snprintf(labels, sizeof labels, "state=\"%s\"", zbud_state_name((zbud_state_t)s));
        zsvc_stat_add(ctx, "budgets_budgets", counts[s], labels);
    }
    return 0;
}
