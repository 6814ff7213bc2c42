/* The rules of the one table on plain values (reporting.h, docs/reporting.md). */
#include "services/reporting/reporting.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/caltime.h"
#include "common/err.h"

/* ---- measures ----------------------------------------------------------- */

bool zrep_measure_is_stock(int m)
{
    return m == ZREP_M_KEYPERSONS || m == ZREP_M_FUND_BALANCE || m == ZREP_M_QUERIES_OPEN;
}

/* ---- the indicator table ------------------------------------------------ */

/* clang-format off */
#define COUNT(code, name, src, m, f) {code, name, ZREP_KIND_COUNT, src, false, m, {0, 0}, f, false, false}
#define RATE(code, name, src, n, d1, d2, f) {code, name, ZREP_KIND_RATE, src, false, n, {d1, d2}, f, false, false}
/* A rate of two amounts in fen (预算执行率): its parts are shown in yuan; the
 * service publishes a month's amounts once the month has ended. */
#define RATE_FEN(code, name, src, n, d1, f) {code, name, ZREP_KIND_RATE, src, false, n, {d1, 0}, f, true, true}
#define SUM(code, name, m, f) {code, name, ZREP_KIND_SUM_FEN, "funds", false, m, {0, 0}, f, false, false}
/* Waiting for their source's events (docs/reporting.md, "Waiting"). */
#define LATER(code, name, kind, src, n, d1, f) {code, name, kind, src, true, n, {d1, 0}, f, false, false}
/* clang-format on */

/* THE columns of the one table, in display order (DESIGN §5 reporting). */
const zrep_indicator_t zrep_indicators[] = {
    COUNT("petitions_received", "受理诉求数", "petitions", ZREP_M_PET_RECEIVED,
          "count of petitions.received"),
    RATE("sign_rate", "签收率", "petitions", ZREP_M_PET_SIGNED, ZREP_M_PET_ASSIGNED, 0,
         "signed / assigned"),
    RATE("ontime_sign_rate", "及时签收率", "petitions", ZREP_M_PET_SIGNED_ON_TIME,
         ZREP_M_PET_ASSIGNED, 0, "signed before the sign deadline / assigned"),
    RATE("completion_rate", "办结率", "petitions", ZREP_M_PET_REPLIED, ZREP_M_PET_RECEIVED, 0,
         "replied / received"),
    RATE("ontime_completion_rate", "按时办结率", "petitions", ZREP_M_PET_REPLIED_ON_TIME,
         ZREP_M_PET_RECEIVED, 0, "replied before the reply deadline / received"),
    RATE("satisfaction_rate", "满意率", "petitions", ZREP_M_PET_SATISFIED, ZREP_M_PET_EVALUATED, 0,
         "(满意 + 基本满意) / evaluated"),
    RATE("resolution_rate", "解决率", "petitions", ZREP_M_PET_SOLVED, ZREP_M_PET_EVALUATED, 0,
         "evaluated as solved / evaluated"),
    COUNT("escalations", "超时督办数", "petitions", ZREP_M_PET_ESCALATED,
          "count of petitions.overdue_sign and petitions.overdue_reply"),
    COUNT("duplicates_merged", "重复件合并数", "petitions", ZREP_M_PET_MERGED,
          "count of petitions.merged"),
    COUNT("property_complaints", "物业投诉数", "petitions", ZREP_M_PROP_COMPLAINTS,
          "count of petitions.received of category property"),
    COUNT("property_complaints_overdue", "物业投诉超期数", "petitions", ZREP_M_PROP_OVERDUE,
          "count of petitions.overdue_reply of category property"),
    COUNT("disputes_registered", "矛盾纠纷录入数", "grid", ZREP_M_DISPUTES_REGISTERED,
          "count of grid.dispute_registered"),
    RATE("dispute_resolution_rate", "矛盾纠纷化解率", "grid", ZREP_M_DISPUTES_RESOLVED,
         ZREP_M_DISPUTES_REGISTERED, 0, "resolved / registered"),
    RATE("mediation_success_rate", "调解成功率", "grid", ZREP_M_DISPUTES_RESOLVED,
         ZREP_M_DISPUTES_RESOLVED, ZREP_M_DISPUTES_FAILED, "resolved / (resolved + failed)"),
    COUNT("household_visits", "入户走访数", "grid", ZREP_M_VISITS, "count of grid.visit_recorded"),
    {"keypersons_managed",
     "列管重点人员数",
     ZREP_KIND_STOCK,
     "grid",
     false,
     ZREP_M_KEYPERSONS,
     {0, 0},
     "keyperson_registered - keyperson_removed up to the end of the period",
     false,
     false},
    COUNT("keyperson_visits_missed", "重点人员漏访数", "grid", ZREP_M_KEYPERSON_MISSED,
          "count of grid.keyperson_visit_overdue"),
    {"fund_balance",
     "共有资金余额",
     ZREP_KIND_STOCK_FEN,
     "funds",
     false,
     ZREP_M_FUND_BALANCE,
     {0, 0},
     "deposits - withdrawals, net of reversals, up to the end of the period, fen",
     false,
     false},
    SUM("revenue_property_fee", "物业费收入", ZREP_M_REV_PROPERTY_FEE,
        "deposits of category property_fee (fee payments included), net of reversals, fen"),
    SUM("revenue_parking", "停车费收入", ZREP_M_REV_PARKING,
        "deposits of category parking_fee, net of reversals, fen"),
    SUM("revenue_advertising", "广告位租金收入", ZREP_M_REV_ADVERTISING,
        "deposits of category advertising_rent, net of reversals, fen"),
    SUM("revenue_venue", "场地租金收入", ZREP_M_REV_VENUE,
        "deposits of category venue_rent, net of reversals, fen"),
    SUM("revenue_other", "其他收入", ZREP_M_REV_OTHER,
        "deposits of categories interest and other, net of reversals, fen"),
    SUM("withdrawals", "支出", ZREP_M_WITHDRAWN,
        "executed withdrawals (funds.withdrawn), net of reversals, fen"),
    RATE("fee_collection_rate", "物业费收缴率", "funds", ZREP_M_FEE_PAID, ZREP_M_FEE_BILLED, 0,
         "households paid in full / households billed, in the fee's period"),
    RATE_FEN("budget_execution_rate", "预算执行率", "budgets", ZREP_M_BUDGET_ACTUAL,
             ZREP_M_BUDGET_PLANNED,
         "actual / budgeted, the month's amounts (fen) of each month budgets has published, "
         "in that month"),
    LATER("queries_open", "未答复质询数", ZREP_KIND_STOCK, "budgets", ZREP_M_QUERIES_OPEN, 0,
          "owners' queries raised - answered up to the end of the period"),
    LATER("queries_overdue", "超期质询数", ZREP_KIND_COUNT, "budgets", ZREP_M_QUERIES_OVERDUE, 0,
          "count of overdue owners' queries"),
    LATER("property_score", "物业服务评分", ZREP_KIND_SCORE, "budgets", ZREP_M_NONE, 0,
          "一查三评 monthly score (DESIGN §5 budgets)"),
};

const int zrep_indicator_count = (int)ZARRAY_LEN(zrep_indicators);
_Static_assert(ZARRAY_LEN(zrep_indicators) <= ZREP_INDICATORS_MAX, "too many indicators");

const zrep_indicator_t *zrep_indicator_find(const char *code)
{
    for (int i = 0; i < zrep_indicator_count; i++) {
        if (strcmp(zrep_indicators[i].code, code) == 0) {
            return &zrep_indicators[i];
        }
    }
    return NULL;
}

const char *zrep_kind_name(zrep_kind_t kind)
{
    static const char *const names[] = {"count", "rate", "sum_fen", "stock", "stock_fen", "score"};
    return (size_t)kind < ZARRAY_LEN(names) ? names[kind] : "count";
}

/* ---- periods ------------------------------------------------------------ */

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

int zrep_period_parse(const char *text, zrep_period_t *out)
{
    size_t n = strlen(text);
    if ((n != 4 && n != 7) || !digits(text, 4)) {
        return -1;
    }
    int year = atoi(text);
    if (year < ZREP_YEAR_MIN || year > ZREP_YEAR_MAX) {
        return -1;
    }
    if (n == 4) {
        *out = (zrep_period_t){year, true};
        return 0;
    }
    if (text[4] != '-' || !digits(text + 5, 2)) {
        return -1;
    }
    int month = atoi(text + 5);
    if (month < 1 || month > 12) {
        return -1;
    }
    *out = (zrep_period_t){year * 100 + month, false};
    return 0;
}

void zrep_period_format(zrep_period_t p, char out[8])
{
    if (p.year) {
        snprintf(out, 8, "%04u", (unsigned)p.key % 10000u);
    } else {
        unsigned year = (unsigned)(p.key / 100) % 10000u, month = (unsigned)p.key % 100u;
        snprintf(out, 8, "%04u-%02u", year, month % 100u);
    }
}

zrep_period_t zrep_period_previous_year(zrep_period_t p)
{
    return (zrep_period_t){p.year ? p.key - 1 : p.key - 100, p.year};
}

zrep_period_t zrep_period_month_of(int64_t ms)
{
    return (zrep_period_t){ztime_month_key(ms), false};
}

zrep_period_t zrep_period_year_of(int64_t ms)
{
    return (zrep_period_t){ztime_year(ms), true};
}

int zrep_period_first_month(zrep_period_t p)
{
    return p.year ? p.key * 100 + 1 : p.key;
}

int zrep_period_last_month(zrep_period_t p)
{
    return p.year ? p.key * 100 + 12 : p.key;
}

int zrep_month_next(int month_key)
{
    return month_key % 100 == 12 ? (month_key / 100 + 1) * 100 + 1 : month_key + 1;
}

/* ---- areas -------------------------------------------------------------- */

int zrep_rollup(const char *area, char out[ZREP_LEVELS][ZREP_AREA_BUF])
{
    static const size_t lens[] = {6, 9, 12, 15, 18};
    int n = 0;
    out[n++][0] = '\0';
    if (!zarea_valid(area)) {
        return n;
    }
    size_t len = strlen(area);
    for (size_t i = 0; i < ZARRAY_LEN(lens) && lens[i] <= len; i++) {
        memcpy(out[n], area, lens[i]);
        out[n][lens[i]] = '\0';
        n++;
    }
    return n;
}

static const char *const level_codes[] = {"all",       "district", "street",
                                          "community", "grid",     "building"};

int zrep_level_parse(const char *text, zarea_level_t *out)
{
    for (int i = 1; i < (int)ZARRAY_LEN(level_codes); i++) {
        if (strcmp(text, level_codes[i]) == 0) {
            *out = (zarea_level_t)i;
            return 0;
        }
    }
    if (strcmp(text, "compound") == 0) {
        *out = ZAREA_GRID;
        return 0;
    }
    if (strlen(text) == 1 && text[0] >= '1' && text[0] <= '5') {
        *out = (zarea_level_t)(text[0] - '0');
        return 0;
    }
    return -1;
}

const char *zrep_level_code(zarea_level_t level)
{
    return (size_t)level < ZARRAY_LEN(level_codes) ? level_codes[level] : "all";
}

int zrep_area_level(const char *area, zarea_level_t *out)
{
    if (area[0] == '\0') {
        *out = ZAREA_NONE;
        return 0;
    }
    *out = zarea_level(area);
    return *out == ZAREA_NONE ? -1 : 0;
}

/* ---- figures ------------------------------------------------------------ */

void zrep_figure(const zrep_indicator_t *ind, const int64_t measures[ZREP_MEASURES_MAX],
                 zrep_figure_t *out)
{
    memset(out, 0, sizeof *out);
    if (ind->kind == ZREP_KIND_SCORE) {
        return; /* per compound, from budgets: no additive measure */
    }
    if (ind->kind != ZREP_KIND_RATE) {
        out->value = measures[ind->num];
        return;
    }
    out->numerator = measures[ind->num];
    for (int i = 0; i < ZREP_DEN_MEASURES_MAX; i++) {
        if (ind->den[i] != ZREP_M_NONE) {
            out->denominator += measures[ind->den[i]];
        }
    }
    out->has_rate = out->denominator != 0;
    out->rate = out->has_rate ? (double)out->numerator / (double)out->denominator : 0.0;
}

/* ---- events → measures -------------------------------------------------- */

static void add(zrep_contribs_t *out, uint8_t measure, int64_t amount)
{
    ZASSERT(out->count < ZREP_CONTRIBS_MAX);
    out->items[out->count++] = (zrep_contrib_t){measure, amount};
}

/* Counted once per petition (件): the first time of each. */
static bool first(uint8_t *flags, uint8_t bit)
{
    bool was = (*flags & bit) != 0;
    *flags |= bit;
    return !was;
}

static void petition_contribs(const char *type, const Zhili__Petitions__Change *c, uint8_t *flags,
                              zrep_contribs_t *out)
{
    bool property = c->category == ZHILI__PETITIONS__CATEGORY__CATEGORY_PROPERTY;
    if (strcmp(type, "received") == 0) {
        add(out, ZREP_M_PET_RECEIVED, 1);
        if (property) {
            add(out, ZREP_M_PROP_COMPLAINTS, 1);
        }
        return;
    }
    out->petition = strcmp(type, "assigned") == 0 || strcmp(type, "signed") == 0 ||
                    strcmp(type, "replied") == 0 || strcmp(type, "merged") == 0 ||
                    strcmp(type, "archived") == 0;
    if (strcmp(type, "assigned") == 0 && first(flags, ZREP_PET_ASSIGNED)) {
        add(out, ZREP_M_PET_ASSIGNED, 1);
    } else if (strcmp(type, "signed") == 0 && first(flags, ZREP_PET_SIGNED)) {
        add(out, ZREP_M_PET_SIGNED, 1);
        if (c->on_time) {
            add(out, ZREP_M_PET_SIGNED_ON_TIME, 1);
        }
    } else if (strcmp(type, "replied") == 0 && first(flags, ZREP_PET_REPLIED)) {
        add(out, ZREP_M_PET_REPLIED, 1);
        if (c->on_time) {
            add(out, ZREP_M_PET_REPLIED_ON_TIME, 1);
        }
        if (property) {
            add(out, ZREP_M_PROP_REPLIED, 1);
        }
    } else if (strcmp(type, "evaluated") == 0) {
        add(out, ZREP_M_PET_EVALUATED, 1);
        if (c->satisfaction == ZHILI__PETITIONS__SATISFACTION__SATISFACTION_SATISFIED ||
            c->satisfaction == ZHILI__PETITIONS__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED) {
            add(out, ZREP_M_PET_SATISFIED, 1);
        }
        if (c->solved) {
            add(out, ZREP_M_PET_SOLVED, 1);
        }
    } else if (strcmp(type, "overdue_sign") == 0) {
        add(out, ZREP_M_PET_ESCALATED, 1);
    } else if (strcmp(type, "overdue_reply") == 0) {
        add(out, ZREP_M_PET_ESCALATED, 1);
        if (property) {
            add(out, ZREP_M_PROP_OVERDUE, 1);
        }
    } else if (strcmp(type, "merged") == 0) {
        add(out, ZREP_M_PET_MERGED, 1);
    }
    out->petition_done = strcmp(type, "merged") == 0 || strcmp(type, "archived") == 0;
}

static void grid_contribs(const Zhili__V1__Event *ev, zrep_contribs_t *out)
{
    const char *type = ev->type;
    if (ev->body_case == ZHILI__V1__EVENT__BODY_GRID_DISPUTE) {
        if (strcmp(type, "dispute_registered") == 0) {
            add(out, ZREP_M_DISPUTES_REGISTERED, 1);
        } else if (strcmp(type, "dispute_resolved") == 0) {
            add(out, ZREP_M_DISPUTES_RESOLVED, 1);
        } else if (strcmp(type, "dispute_failed") == 0) {
            add(out, ZREP_M_DISPUTES_FAILED, 1);
        }
    } else if (ev->body_case == ZHILI__V1__EVENT__BODY_GRID_VISIT &&
               strcmp(type, "visit_recorded") == 0) {
        add(out, ZREP_M_VISITS, 1);
    } else if (ev->body_case == ZHILI__V1__EVENT__BODY_GRID_KEYPERSON) {
        if (strcmp(type, "keyperson_registered") == 0) {
            add(out, ZREP_M_KEYPERSONS, 1);
        } else if (strcmp(type, "keyperson_removed") == 0) {
            add(out, ZREP_M_KEYPERSONS, -1);
        }
    } else if (ev->body_case == ZHILI__V1__EVENT__BODY_GRID_KEYPERSON_OVERDUE &&
               strcmp(type, "keyperson_visit_overdue") == 0) {
        add(out, ZREP_M_KEYPERSON_MISSED, 1);
    }
}

/* Revenue by category, as the one table's columns group them. */
static uint8_t revenue_measure(Zhili__Funds__Category c)
{
    switch (c) {
    case ZHILI__FUNDS__CATEGORY__CATEGORY_PROPERTY_FEE:
        return ZREP_M_REV_PROPERTY_FEE;
    case ZHILI__FUNDS__CATEGORY__CATEGORY_PARKING_FEE:
        return ZREP_M_REV_PARKING;
    case ZHILI__FUNDS__CATEGORY__CATEGORY_ADVERTISING_RENT:
        return ZREP_M_REV_ADVERTISING;
    case ZHILI__FUNDS__CATEGORY__CATEGORY_VENUE_RENT:
        return ZREP_M_REV_VENUE;
    default:
        return ZREP_M_REV_OTHER; /* interest (利息) and other */
    }
}

static bool starts(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A journal entry: cash in or out of the trust account, and the revenue or
 * expense account on the other side (a reversal swaps the sides). */
static void entry_contribs(const Zhili__Funds__Entry *e, zrep_contribs_t *out)
{
    if (e->amount <= 0) {
        return;
    }
    bool cash_in = e->debit != NULL && strcmp(e->debit, "cash") == 0;
    add(out, ZREP_M_FUND_BALANCE, cash_in ? e->amount : -e->amount);
    if (starts(e->credit, "revenue:") || starts(e->debit, "revenue:")) {
        add(out, revenue_measure(e->category), cash_in ? e->amount : -e->amount);
    } else if (starts(e->debit, "expense:") || starts(e->credit, "expense:")) {
        add(out, ZREP_M_WITHDRAWN, cash_in ? -e->amount : e->amount);
    }
}

/* A household billed, or paid in full, counted in the fee's own period. */
static void fee_contribs(const char *type, const Zhili__Funds__FeeChange *f, zrep_contribs_t *out)
{
    if (f->period == NULL || zrep_period_parse(f->period, &out->period) != 0) {
        return; /* a period this table does not know: not counted */
    }
    out->has_period = true;
    if (strcmp(type, "fee_billed") == 0) {
        add(out, ZREP_M_FEE_BILLED, 1);
    } else if (strcmp(type, "fee_paid") == 0 && f->fully_paid) {
        add(out, ZREP_M_FEE_PAID, 1);
    }
}

static void funds_contribs(const Zhili__V1__Event *ev, zrep_contribs_t *out)
{
    const char *type = ev->type;
    if (ev->body_case == ZHILI__V1__EVENT__BODY_FUNDS_ENTRY && ev->funds_entry != NULL &&
        (strcmp(type, "deposited") == 0 || strcmp(type, "withdrawn") == 0 ||
         strcmp(type, "reversed") == 0)) {
        entry_contribs(ev->funds_entry, out);
    } else if (ev->body_case == ZHILI__V1__EVENT__BODY_FUNDS_FEE && ev->funds_fee != NULL) {
        fee_contribs(type, ev->funds_fee, out);
    }
}

void zrep_event_contribs(const Zhili__V1__Event *ev, uint8_t *pet_flags, zrep_contribs_t *out)
{
    memset(out, 0, sizeof *out);
    if (strcmp(ev->source, "petitions") == 0) {
        if (ev->body_case == ZHILI__V1__EVENT__BODY_PETITION_CHANGE && ev->petition_change) {
            petition_contribs(ev->type, ev->petition_change, pet_flags, out);
        }
    } else if (strcmp(ev->source, "grid") == 0) {
        grid_contribs(ev, out);
    } else if (strcmp(ev->source, "funds") == 0) {
        funds_contribs(ev, out);
    }
    /* budgets: execution_published is zrep_execution_contribs (it needs what
     * was counted of the month before); queries and evaluations are not
     * counted yet (docs/reporting.md, "Waiting for budgets"). */
}

int zrep_execution_month(const Zhili__V1__Event *ev)
{
    const Zhili__Budgets__Execution *e = ev->budgets_execution;
    if (strcmp(ev->source, "budgets") != 0 || strcmp(ev->type, "execution_published") != 0 ||
        ev->body_case != ZHILI__V1__EVENT__BODY_BUDGETS_EXECUTION || e == NULL ||
        ev->area == NULL || !zarea_valid(ev->area)) {
        return 0;
    }
    if (e->year < ZREP_YEAR_MIN || e->year > ZREP_YEAR_MAX || e->month < 1 || e->month > 12) {
        return 0;
    }
    return (int)(e->year * 100 + e->month);
}

/* The month's budget and actual summed over the rows; false on overflow. */
static bool execution_sums(const Zhili__Budgets__Execution *e, zrep_exec_t *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < e->n_rows; i++) {
        const Zhili__Budgets__ExecutionRow *r = e->rows[i];
        if (r == NULL) {
            continue;
        }
        if (__builtin_add_overflow(out->budget, r->budget_month, &out->budget) ||
            __builtin_add_overflow(out->actual, r->actual_month, &out->actual)) {
            return false;
        }
    }
    return true;
}

int zrep_execution_contribs(const Zhili__V1__Event *ev, zrep_exec_t *counted, zrep_contribs_t *out)
{
    memset(out, 0, sizeof *out);
    int month = zrep_execution_month(ev);
    zrep_exec_t now;
    if (month == 0 || !execution_sums(ev->budgets_execution, &now)) {
        return -1;
    }
    /* A month published again (budgets publishes each month once today, but
     * the projection must not depend on it) adds only what changed. */
    int64_t budget_diff, actual_diff;
    if (__builtin_sub_overflow(now.budget, counted->budget, &budget_diff) ||
        __builtin_sub_overflow(now.actual, counted->actual, &actual_diff)) {
        return -1;
    }
    out->has_period = true;
    out->period = (zrep_period_t){month, false};
    add(out, ZREP_M_BUDGET_PLANNED, budget_diff);
    add(out, ZREP_M_BUDGET_ACTUAL, actual_diff);
    *counted = now;
    return 0;
}

/* ---- the red/black list ------------------------------------------------- */

zrep_list_t zrep_redblack(const zrep_property_month_t *m, const char *reasons[ZREP_REASONS_MAX],
                          int *reason_count)
{
    int n = 0;
    if (m->has_score && m->score < ZREP_BLACK_SCORE_BELOW) {
        reasons[n++] = "评分低于60分 (score below 60)";
    }
    if (m->account_check_failed) {
        reasons[n++] = "现场账目查询未通过 (account check failed)";
    }
    if (m->complaints_overdue >= ZREP_BLACK_OVERDUE_COMPLAINTS) {
        reasons[n++] = "物业投诉超期未答复3件及以上 (3 or more property complaints overdue)";
    }
    if (n > 0) {
        *reason_count = n;
        return ZREP_LIST_BLACK;
    }
    if (!m->has_score) {
        *reason_count = 0;
        return ZREP_LIST_UNRATED;
    }
    if (m->score >= ZREP_RED_SCORE_MIN && m->complaints_overdue == 0) {
        reasons[n++] = "评分90分及以上且无超期物业投诉 (score 90 or more, no complaint overdue)";
        *reason_count = n;
        return ZREP_LIST_RED;
    }
    *reason_count = 0;
    return ZREP_LIST_NONE;
}

const char *zrep_list_name(zrep_list_t list)
{
    static const char *const names[] = {"unrated", "none", "red", "black"};
    return (size_t)list < ZARRAY_LEN(names) ? names[list] : "unrated";
}

bool zrep_property_score(const zrep_score_parts_t *p, double *score)
{
    /* Each component's points and its most: 20, 30, 30, 20. */
    double points = 0, most = 0;
    if (p->has_check) {
        points += p->check_passed ? 20.0 : 0.0;
        most += 20.0;
    }
    if (p->has_questionnaire) {
        points += 0.3 * p->questionnaire;
        most += 30.0;
    }
    if (p->has_rating) {
        points += 6.0 * p->rating;
        most += 30.0;
    }
    if (p->has_branch) {
        points += 0.2 * p->branch;
        most += 20.0;
    }
    if (most == 0) {
        return false;
    }
    *score = points * 100.0 / most;
    return true;
}

/* ---- alerts ------------------------------------------------------------- */

const char *zrep_cmp_name(zrep_cmp_t cmp)
{
    static const char *const names[] = {"<", "<=", ">", ">="};
    return (size_t)cmp < ZARRAY_LEN(names) ? names[cmp] : "<";
}

static const char *skip_spaces(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r') {
        p++;
    }
    return p;
}

static int rule_fail(char *err, size_t err_len, const char *rule, const char *why)
{
    snprintf(err, err_len, "alert rule \"%.80s\": %s", rule, why);
    return -1;
}

static int parse_cmp(const char **p, zrep_cmp_t *cmp)
{
    const char *s = *p;
    if (s[0] == '<' || s[0] == '>') {
        bool eq = s[1] == '=';
        *cmp = s[0] == '<' ? (eq ? ZREP_CMP_LE : ZREP_CMP_LT) : (eq ? ZREP_CMP_GE : ZREP_CMP_GT);
        *p = s + (eq ? 2 : 1);
        return 0;
    }
    return -1;
}

/* The threshold and what follows it ("@ level [min=N]"). */
static int parse_tail(const char *rule, const char *p, zrep_alert_rule_t *r, char *err,
                      size_t err_len)
{
    char *end = NULL;
    double v = strtod(p, &end);
    if (end == p || !isfinite(v) || v < 0) {
        return rule_fail(err, err_len, rule,
                         "expected a threshold (0.9 or 90%) after the operator");
    }
    p = skip_spaces(end);
    bool percent = *p == '%';
    if (percent) {
        v /= 100.0;
        p = skip_spaces(p + 1);
    }
    if (r->indicator->kind == ZREP_KIND_RATE && v > 1.0) {
        return rule_fail(err, err_len, rule,
                         "a rate's threshold is a fraction (0.9) or a percentage (90%)");
    }
    r->threshold = v;
    if (*p != '@') {
        return rule_fail(err, err_len, rule, "expected @LEVEL (street, community, ...)");
    }
    p = skip_spaces(p + 1);
    char level[16] = "";
    size_t n = 0;
    while (isalnum((unsigned char)p[n]) && n < sizeof level - 1) {
        level[n] = p[n];
        n++;
    }
    level[n] = '\0';
    if (zrep_level_parse(level, &r->level) != 0) {
        return rule_fail(err, err_len, rule,
                         "the level must be district, street, community, grid or building");
    }
    p = skip_spaces(p + n);
    r->min_denominator = 1;
    if (strncmp(p, "min=", 4) == 0) {
        long long m = strtoll(p + 4, &end, 10);
        if (end == p + 4 || m < 1 || m > 1000000000) {
            return rule_fail(err, err_len, rule, "min= must be a whole number from 1");
        }
        r->min_denominator = m;
        p = skip_spaces(end);
    }
    if (*p != '\0') {
        return rule_fail(err, err_len, rule, "unexpected text at the end");
    }
    return 0;
}

static int parse_rule(const char *rule, zrep_alert_rule_t *r, char *err, size_t err_len)
{
    char code[64];
    size_t n = 0;
    const char *p = rule;
    while ((islower((unsigned char)*p) || *p == '_') && n < sizeof code - 1) {
        code[n++] = *p++;
    }
    code[n] = '\0';
    memset(r, 0, sizeof *r);
    r->indicator = zrep_indicator_find(code);
    if (r->indicator == NULL) {
        return rule_fail(err, err_len, rule, "unknown indicator (docs/reporting.md lists them)");
    }
    if (r->indicator->pending || r->indicator->kind == ZREP_KIND_SCORE) {
        return rule_fail(err, err_len, rule,
                         "that indicator has no figures yet (its source is "
                         "not consumed)");
    }
    p = skip_spaces(p);
    if (parse_cmp(&p, &r->cmp) != 0) {
        return rule_fail(err, err_len, rule, "expected <, <=, > or >= after the indicator");
    }
    if (parse_tail(rule, skip_spaces(p), r, err, err_len) != 0) {
        return -1;
    }
    char min[32] = "";
    if (r->min_denominator != 1) {
        snprintf(min, sizeof min, " min=%lld", (long long)r->min_denominator);
    }
    snprintf(r->name, sizeof r->name, "%s%s%g@%s%s", code, zrep_cmp_name(r->cmp), r->threshold,
             zrep_level_code(r->level), min);
    return 0;
}

/* One rule's text, trimmed, into buf; false when too long. */
static bool rule_text(const char *start, size_t len, char *buf, size_t cap)
{
    while (len > 0 && (*start == ' ' || *start == '\t' || *start == '\r')) {
        start++;
        len--;
    }
    while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t' || start[len - 1] == '\r')) {
        len--;
    }
    if (len >= cap) {
        return false;
    }
    memcpy(buf, start, len);
    buf[len] = '\0';
    return true;
}

static int add_rule(zrep_alert_rules_t *out, const char *text, char *err, size_t err_len)
{
    if (out->count == ZREP_ALERT_RULES_MAX) {
        snprintf(err, err_len, "at most %d alert rules", ZREP_ALERT_RULES_MAX);
        return -1;
    }
    zrep_alert_rule_t *r = &out->rules[out->count];
    if (parse_rule(text, r, err, err_len) != 0) {
        return -1;
    }
    for (int i = 0; i < out->count; i++) {
        if (strcmp(out->rules[i].name, r->name) == 0) {
            return rule_fail(err, err_len, text, "the same rule twice");
        }
    }
    out->count++;
    return 0;
}

/* One line without its comment: rules split at ',' and ';'. */
static int parse_line(const char *line, size_t len, zrep_alert_rules_t *out, char *err,
                      size_t err_len)
{
    const char *hash = memchr(line, '#', len);
    if (hash != NULL) {
        len = (size_t)(hash - line);
    }
    const char *p = line, *end = line + len;
    while (p <= end) {
        const char *stop = p;
        while (stop < end && *stop != ',' && *stop != ';') {
            stop++;
        }
        char buf[ZREP_ALERT_RULE_BYTES_MAX];
        if (!rule_text(p, (size_t)(stop - p), buf, sizeof buf)) {
            return rule_fail(err, err_len, p, "too long");
        }
        if (buf[0] != '\0' && add_rule(out, buf, err, err_len) != 0) {
            return -1;
        }
        p = stop + 1;
    }
    return 0;
}

int zrep_alert_rules_parse(const char *text, zrep_alert_rules_t *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    const char *p = text;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (parse_line(p, len, out, err, err_len) != 0) {
            return -1;
        }
        if (nl == NULL) {
            return 0;
        }
        p = nl + 1;
    }
}

static bool breached(zrep_cmp_t cmp, double v, double threshold)
{
    switch (cmp) {
    case ZREP_CMP_LT:
        return v < threshold;
    case ZREP_CMP_LE:
        return v <= threshold;
    case ZREP_CMP_GT:
        return v > threshold;
    case ZREP_CMP_GE:
        return v >= threshold;
    }
    return false;
}

zrep_alert_step_t zrep_alert_step(const zrep_alert_rule_t *rule, const zrep_figure_t *f,
                                  bool active, double *value)
{
    if (rule->indicator->kind == ZREP_KIND_RATE) {
        if (!f->has_rate || f->denominator < rule->min_denominator) {
            *value = f->has_rate ? f->rate : 0.0;
            return ZREP_ALERT_KEEP;
        }
        *value = f->rate;
    } else {
        *value = (double)f->value;
    }
    bool in = breached(rule->cmp, *value, rule->threshold);
    if (in && !active) {
        return ZREP_ALERT_RAISE;
    }
    if (!in && active) {
        return ZREP_ALERT_CLEAR;
    }
    return ZREP_ALERT_KEEP;
}
