/* Goal: the one table's rules hold on their own (docs/reporting.md): an event
 * counts at every level of its area and nowhere else, in the local (+08:00)
 * month and year of its time; a rate of a zero denominator is null, never 0 %
 * or 100 %; each petition is counted once for assigned, signed and replied;
 * a month of budget execution counts in the published month and, published
 * again, only by what changed; alerts change state once per crossing; the
 * red/black list follows DESIGN §5; the CSV export quotes what Excel would
 * misread. The store part runs on a real LMDB environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "common/caltime.h"
#include "common/err.h"
#include "services/gateway/report_csv.h"
#include "services/reporting/reporting.h"
#include "services/reporting/store.h"

/* ---- roll-up and periods ------------------------------------------------- */

static void test_rollup_levels(void **state)
{
    (void)state;
    char out[ZREP_LEVELS][ZREP_AREA_BUF];
    int n = zrep_rollup("220503001001002", out);
    assert_int_equal(n, 5);
    const char *want[] = {"", "220503", "220503001", "220503001001", "220503001001002"};
    for (int i = 0; i < n; i++) {
        assert_string_equal(out[i], want[i]);
    }
    assert_int_equal(zrep_rollup("220503001001002003", out), 6);
    assert_string_equal(out[5], "220503001001002003");
    /* Not an area code: only the whole ("") holds it. */
    assert_int_equal(zrep_rollup("22050", out), 1);
    assert_string_equal(out[0], "");
    assert_int_equal(zrep_rollup("", out), 1);
    assert_int_equal(zrep_rollup("22050300100x", out), 1);
}

static void test_period_keys_at_month_boundaries(void **state)
{
    (void)state;
    int64_t ms;
    /* 00:30 on 1 December in Beijing is 30 November in UTC: December. */
    assert_int_equal(ztime_parse("2026-11-30T16:30:00Z", &ms), 0);
    assert_int_equal(zrep_period_month_of(ms).key, 202612);
    assert_int_equal(zrep_period_month_of(ms - 3600 * 1000 + 30 * 60 * 1000 - 1).key, 202611);
    /* 23:59:59.999 on 31 December local is still that year; a ms later the next. */
    assert_int_equal(ztime_parse("2026-12-31T15:59:59.999Z", &ms), 0);
    assert_int_equal(zrep_period_year_of(ms).key, 2026);
    assert_int_equal(zrep_period_month_of(ms).key, 202612);
    assert_int_equal(zrep_period_year_of(ms + 1).key, 2027);
    assert_int_equal(zrep_period_month_of(ms + 1).key, 202701);
    assert_true(zrep_period_year_of(ms + 1).year);

    zrep_period_t p;
    char buf[8];
    assert_int_equal(zrep_period_parse("2026-10", &p), 0);
    assert_int_equal(p.key, 202610);
    assert_false(p.year);
    zrep_period_format(zrep_period_previous_year(p), buf);
    assert_string_equal(buf, "2025-10");
    assert_int_equal(zrep_period_parse("2026", &p), 0);
    assert_true(p.year && p.key == 2026);
    zrep_period_format(zrep_period_previous_year(p), buf);
    assert_string_equal(buf, "2025");
    assert_int_equal(zrep_period_first_month(p), 202601);
    assert_int_equal(zrep_period_last_month(p), 202612);
    assert_int_equal(zrep_month_next(202612), 202701);
    assert_int_equal(zrep_month_next(202601), 202602);
    const char *bad[] = {"",        "26",   "2026-1",  "2026-13",    "2026-00", "202610",
                         "2026/10", "1999", "1999-12", "2026-10-01", "abcd",    "2026-1a"};
    for (size_t i = 0; i < ZARRAY_LEN(bad); i++) {
        assert_int_equal(zrep_period_parse(bad[i], &p), -1);
    }
    zarea_level_t l;
    assert_int_equal(zrep_level_parse("community", &l), 0);
    assert_int_equal(l, ZAREA_COMMUNITY);
    assert_int_equal(zrep_level_parse("compound", &l), 0);
    assert_int_equal(l, ZAREA_GRID);
    assert_int_equal(zrep_level_parse("2", &l), 0);
    assert_int_equal(l, ZAREA_STREET);
    assert_int_equal(zrep_level_parse("6", &l), -1);
    assert_int_equal(zrep_level_parse("village", &l), -1);
}

/* ---- figures ------------------------------------------------------------- */

static void test_rate_zero_denominator_is_null(void **state)
{
    (void)state;
    int64_t m[ZREP_MEASURES_MAX] = {0};
    zrep_figure_t f;
    const zrep_indicator_t *sign = zrep_indicator_find("ontime_sign_rate");
    assert_non_null(sign);
    zrep_figure(sign, m, &f);
    assert_false(f.has_rate);
    assert_int_equal(f.denominator, 0);
    m[ZREP_M_PET_SIGNED_ON_TIME] = 0;
    m[ZREP_M_PET_ASSIGNED] = 4;
    zrep_figure(sign, m, &f);
    assert_true(f.has_rate);
    assert_true(f.rate == 0.0); /* 0 of 4 is 0 %, which is not null */
    m[ZREP_M_PET_SIGNED_ON_TIME] = 3;
    zrep_figure(sign, m, &f);
    assert_true(f.rate == 0.75);
    assert_int_equal(f.numerator, 3);
    /* 调解成功率: resolved / (resolved + failed). */
    const zrep_indicator_t *med = zrep_indicator_find("mediation_success_rate");
    m[ZREP_M_DISPUTES_RESOLVED] = 3;
    m[ZREP_M_DISPUTES_FAILED] = 1;
    zrep_figure(med, m, &f);
    assert_int_equal(f.denominator, 4);
    assert_true(f.rate == 0.75);
    /* A count is its measure. */
    m[ZREP_M_PET_RECEIVED] = 7;
    zrep_figure(zrep_indicator_find("petitions_received"), m, &f);
    assert_int_equal(f.value, 7);
    assert_false(f.has_rate);
    assert_null(zrep_indicator_find("no_such"));
}

/* Every indicator names measures that exist and a Chinese header. */
static void test_indicator_table(void **state)
{
    (void)state;
    for (int i = 0; i < zrep_indicator_count; i++) {
        const zrep_indicator_t *ind = &zrep_indicators[i];
        assert_true(ind->num < ZREP_MEASURES_MAX);
        assert_true(strlen(ind->name) > 0 && strlen(ind->formula) > 0);
        assert_true(ind->kind == ZREP_KIND_SCORE || ind->num != ZREP_M_NONE);
        assert_true(ind->kind != ZREP_KIND_RATE || ind->den[0] != ZREP_M_NONE);
        for (int j = 0; j < i; j++) {
            assert_true(strcmp(zrep_indicators[j].code, ind->code) != 0);
        }
    }
}

/* ---- events → measures --------------------------------------------------- */

static Zhili__V1__Event *pet_event(Zhili__V1__Event *ev, Zhili__Petitions__Change *c,
                                   const char *type)
{
    zhili__v1__event__init(ev);
    ev->source = "petitions";
    ev->type = (char *)type;
    ev->area = "220503001001002003";
    ev->body_case = ZHILI__V1__EVENT__BODY_PETITION_CHANGE;
    ev->petition_change = c;
    return ev;
}

static bool has(const zrep_contribs_t *c, int measure, int64_t amount)
{
    for (int i = 0; i < c->count; i++) {
        if (c->items[i].measure == measure && c->items[i].amount == amount) {
            return true;
        }
    }
    return false;
}

static void test_petition_counted_once(void **state)
{
    (void)state;
    Zhili__Petitions__Change c = ZHILI__PETITIONS__CHANGE__INIT;
    c.id = "P0000000001";
    c.category = ZHILI__PETITIONS__CATEGORY__CATEGORY_PROPERTY;
    Zhili__V1__Event ev;
    zrep_contribs_t out;
    uint8_t flags = 0;
    zrep_event_contribs(pet_event(&ev, &c, "received"), &flags, &out);
    assert_int_equal(out.count, 2);
    assert_true(has(&out, ZREP_M_PET_RECEIVED, 1) && has(&out, ZREP_M_PROP_COMPLAINTS, 1));
    zrep_event_contribs(pet_event(&ev, &c, "assigned"), &flags, &out);
    assert_true(out.petition && has(&out, ZREP_M_PET_ASSIGNED, 1));
    c.on_time = true;
    zrep_event_contribs(pet_event(&ev, &c, "signed"), &flags, &out);
    assert_int_equal(out.count, 2);
    assert_true(has(&out, ZREP_M_PET_SIGNED_ON_TIME, 1));
    /* Re-assigned and signed again (a return, a reopening): not counted again. */
    zrep_event_contribs(pet_event(&ev, &c, "assigned"), &flags, &out);
    assert_int_equal(out.count, 0);
    zrep_event_contribs(pet_event(&ev, &c, "signed"), &flags, &out);
    assert_int_equal(out.count, 0);
    c.on_time = false;
    zrep_event_contribs(pet_event(&ev, &c, "replied"), &flags, &out);
    assert_int_equal(out.count, 2);
    assert_true(has(&out, ZREP_M_PET_REPLIED, 1) && has(&out, ZREP_M_PROP_REPLIED, 1));
    /* Every evaluation counts (each 回访 is a measurement). */
    c.satisfaction = ZHILI__PETITIONS__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED;
    c.solved = false;
    zrep_event_contribs(pet_event(&ev, &c, "evaluated"), &flags, &out);
    assert_int_equal(out.count, 2);
    assert_true(has(&out, ZREP_M_PET_EVALUATED, 1) && has(&out, ZREP_M_PET_SATISFIED, 1));
    c.satisfaction = ZHILI__PETITIONS__SATISFACTION__SATISFACTION_DISSATISFIED;
    c.solved = true;
    zrep_event_contribs(pet_event(&ev, &c, "evaluated"), &flags, &out);
    assert_true(has(&out, ZREP_M_PET_SOLVED, 1) && !has(&out, ZREP_M_PET_SATISFIED, 1));
    zrep_event_contribs(pet_event(&ev, &c, "overdue_reply"), &flags, &out);
    assert_true(has(&out, ZREP_M_PET_ESCALATED, 1) && has(&out, ZREP_M_PROP_OVERDUE, 1));
    zrep_event_contribs(pet_event(&ev, &c, "overdue_sign"), &flags, &out);
    assert_int_equal(out.count, 1);
    zrep_event_contribs(pet_event(&ev, &c, "archived"), &flags, &out);
    assert_true(out.petition && out.petition_done && out.count == 0);
    zrep_event_contribs(pet_event(&ev, &c, "progress"), &flags, &out);
    assert_int_equal(out.count, 0);
}

static void test_grid_events(void **state)
{
    (void)state;
    Zhili__V1__Event ev = ZHILI__V1__EVENT__INIT;
    Zhili__Grid__DisputeChange d = ZHILI__GRID__DISPUTE_CHANGE__INIT;
    Zhili__Grid__KeyPerson kp = ZHILI__GRID__KEY_PERSON__INIT;
    zrep_contribs_t out;
    uint8_t flags = 0;
    ev.source = "grid";
    ev.body_case = ZHILI__V1__EVENT__BODY_GRID_DISPUTE;
    ev.grid_dispute = &d;
    ev.type = "dispute_failed";
    zrep_event_contribs(&ev, &flags, &out);
    assert_true(out.count == 1 && has(&out, ZREP_M_DISPUTES_FAILED, 1));
    ev.type = "dispute_signed";
    zrep_event_contribs(&ev, &flags, &out);
    assert_int_equal(out.count, 0);
    ev.body_case = ZHILI__V1__EVENT__BODY_GRID_KEYPERSON;
    ev.grid_keyperson = &kp;
    ev.type = "keyperson_removed";
    zrep_event_contribs(&ev, &flags, &out);
    assert_true(has(&out, ZREP_M_KEYPERSONS, -1));
    assert_true(zrep_measure_is_stock(ZREP_M_KEYPERSONS));
    assert_false(zrep_measure_is_stock(ZREP_M_VISITS));
    /* budgets' events other than execution_published are not counted yet. */
    ev.source = "budgets";
    zrep_event_contribs(&ev, &flags, &out);
    assert_int_equal(out.count, 0);
}

/* ---- budgets: the month's execution ------------------------------------- */

typedef struct {
    Zhili__V1__Event ev;
    Zhili__Budgets__Execution e;
    Zhili__Budgets__ExecutionRow rows[2];
    Zhili__Budgets__ExecutionRow *rowp[2];
} exec_ev_t;

/* budgets.execution_published for October 2026 of compound G: two lines,
 * with to-date figures that must not be what counts. */
static Zhili__V1__Event *exec_event(exec_ev_t *x, int64_t budget1, int64_t actual1, int64_t budget2,
                                    int64_t actual2)
{
    zhili__v1__event__init(&x->ev);
    zhili__budgets__execution__init(&x->e);
    x->ev.source = "budgets";
    x->ev.type = "execution_published";
    x->ev.area = "220503001001002";
    x->ev.body_case = ZHILI__V1__EVENT__BODY_BUDGETS_EXECUTION;
    x->ev.budgets_execution = &x->e;
    x->e.area = x->ev.area;
    x->e.year = 2026;
    x->e.month = 10;
    const int64_t amounts[2][2] = {{budget1, actual1}, {budget2, actual2}};
    for (int i = 0; i < 2; i++) {
        zhili__budgets__execution_row__init(&x->rows[i]);
        x->rows[i].line = i == 0 ? "2-01" : "3-01";
        x->rows[i].budget_month = amounts[i][0];
        x->rows[i].actual_month = amounts[i][1];
        x->rows[i].budget_to_date = 9000001; /* months 1..10: not what a month adds */
        x->rows[i].actual_to_date = 7000001;
        x->rowp[i] = &x->rows[i];
    }
    x->e.rows = x->rowp;
    x->e.n_rows = 2;
    x->e.budget_to_date = 18000002;
    x->e.actual_to_date = 14000002;
    return &x->ev;
}

static void test_budget_execution_counted(void **state)
{
    (void)state;
    exec_ev_t x;
    zrep_contribs_t out;
    zrep_exec_t counted = {0, 0};
    /* First publication: the month's amounts summed over the lines, in the
     * published month (not the month of the event, the 1st of the next). */
    Zhili__V1__Event *ev = exec_event(&x, 100000, 30000, 10000, 0);
    assert_int_equal(zrep_execution_month(ev), 202610);
    assert_int_equal(zrep_execution_contribs(ev, &counted, &out), 0);
    assert_true(out.has_period && !out.period.year && out.period.key == 202610);
    assert_int_equal(out.count, 2);
    assert_true(has(&out, ZREP_M_BUDGET_PLANNED, 110000) && has(&out, ZREP_M_BUDGET_ACTUAL, 30000));
    assert_true(counted.budget == 110000 && counted.actual == 30000);
    /* zrep_event_contribs leaves it to zrep_execution_contribs. */
    uint8_t flags = 0;
    zrep_event_contribs(ev, &flags, &out);
    assert_int_equal(out.count, 0);
    /* The same month published again unchanged adds 0 (listed, so the
     * drill-down shows the publication); after an amendment, the difference. */
    assert_int_equal(zrep_execution_contribs(ev, &counted, &out), 0);
    assert_true(out.count == 2 && has(&out, ZREP_M_BUDGET_PLANNED, 0) &&
                has(&out, ZREP_M_BUDGET_ACTUAL, 0));
    ev = exec_event(&x, 120000, 35000, 10000, 0);
    assert_int_equal(zrep_execution_contribs(ev, &counted, &out), 0);
    assert_true(has(&out, ZREP_M_BUDGET_PLANNED, 20000) && has(&out, ZREP_M_BUDGET_ACTUAL, 5000));
    assert_true(counted.budget == 130000 && counted.actual == 35000);
    ev = exec_event(&x, 90000, 20000, 0, 0);
    assert_int_equal(zrep_execution_contribs(ev, &counted, &out), 0);
    assert_true(has(&out, ZREP_M_BUDGET_PLANNED, -40000) &&
                has(&out, ZREP_M_BUDGET_ACTUAL, -15000));
    assert_true(counted.budget == 90000 && counted.actual == 20000);
    /* Spending in a month without budget: the rate is null, not 100 %. */
    const zrep_indicator_t *ind = zrep_indicator_find("budget_execution_rate");
    assert_non_null(ind);
    assert_false(ind->pending);
    int64_t m[ZREP_MEASURES_MAX] = {0};
    m[ZREP_M_BUDGET_ACTUAL] = 5000;
    zrep_figure_t f;
    zrep_figure(ind, m, &f);
    assert_false(f.has_rate);
    assert_true(f.numerator == 5000 && f.denominator == 0);
    m[ZREP_M_BUDGET_PLANNED] = 220000;
    m[ZREP_M_BUDGET_ACTUAL] = 30000;
    zrep_figure(ind, m, &f);
    assert_true(f.has_rate && f.rate == 30000.0 / 220000.0);
}

/* What is not a countable execution counts nothing and keeps what was counted. */
static void test_budget_execution_refused(void **state)
{
    (void)state;
    exec_ev_t x;
    zrep_contribs_t out;
    const zrep_exec_t before = {110000, 30000};
    zrep_exec_t counted = before;
    Zhili__V1__Event *ev = exec_event(&x, 1, 1, 1, 1);
    struct {
        const char *what;
        int64_t year, month;
        const char *type, *area;
    } bad[] = {
        {"month 0", 2026, 0, "execution_published", "220503001001002"},
        {"month 13", 2026, 13, "execution_published", "220503001001002"},
        {"year before 2000", 1999, 12, "execution_published", "220503001001002"},
        {"another type", 2026, 10, "query_raised", "220503001001002"},
        {"not an area code", 2026, 10, "execution_published", "22050300100"},
        {"no area", 2026, 10, "execution_published", ""},
    };
    for (size_t i = 0; i < ZARRAY_LEN(bad); i++) {
        ev = exec_event(&x, 1, 1, 1, 1);
        x.e.year = bad[i].year;
        x.e.month = bad[i].month;
        ev->type = (char *)bad[i].type;
        ev->area = (char *)bad[i].area;
        assert_int_equal(zrep_execution_month(ev), 0);
        assert_int_equal(zrep_execution_contribs(ev, &counted, &out), -1);
        assert_int_equal(out.count, 0);
        assert_true(counted.budget == before.budget && counted.actual == before.actual);
    }
    ev = exec_event(&x, 1, 1, 1, 1);
    ev->source = "funds";
    assert_int_equal(zrep_execution_month(ev), 0);
    ev = exec_event(&x, 1, 1, 1, 1);
    ev->budgets_execution = NULL;
    assert_int_equal(zrep_execution_contribs(ev, &counted, &out), -1);
    /* Sums that overflow, and a difference that would: refused whole. */
    ev = exec_event(&x, INT64_MAX, 0, 1, 0);
    assert_int_equal(zrep_execution_contribs(ev, &counted, &out), -1);
    assert_int_equal(out.count, 0);
    ev = exec_event(&x, 0, INT64_MIN, 0, -1);
    assert_int_equal(zrep_execution_contribs(ev, &counted, &out), -1);
    zrep_exec_t far = {-INT64_MAX, 0};
    ev = exec_event(&x, 10, 0, 0, 0);
    assert_int_equal(zrep_execution_contribs(ev, &far, &out), -1);
    assert_true(far.budget == -INT64_MAX && out.count == 0);
    /* No rows: a month with nothing budgeted or spent counts zeros. */
    ev = exec_event(&x, 0, 0, 0, 0);
    x.e.n_rows = 0;
    zrep_exec_t fresh = {0, 0};
    assert_int_equal(zrep_execution_contribs(ev, &fresh, &out), 0);
    assert_true(has(&out, ZREP_M_BUDGET_PLANNED, 0) && has(&out, ZREP_M_BUDGET_ACTUAL, 0));
}

static void entry(Zhili__V1__Event *ev, Zhili__Funds__Entry *e, const char *type, const char *debit,
                  const char *credit, int category, int64_t amount)
{
    zhili__v1__event__init(ev);
    zhili__funds__entry__init(e);
    ev->source = "funds";
    ev->type = (char *)type;
    ev->body_case = ZHILI__V1__EVENT__BODY_FUNDS_ENTRY;
    ev->funds_entry = e;
    e->debit = (char *)debit;
    e->credit = (char *)credit;
    e->category = (Zhili__Funds__Category)category;
    e->amount = amount;
}

/* Money: deposits by category, withdrawals, and reversals of either. */
static void test_funds_events(void **state)
{
    (void)state;
    Zhili__V1__Event ev;
    Zhili__Funds__Entry e;
    zrep_contribs_t out;
    uint8_t flags = 0;
    entry(&ev, &e, "deposited", "cash", "revenue:parking_fee",
          ZHILI__FUNDS__CATEGORY__CATEGORY_PARKING_FEE, 5000);
    zrep_event_contribs(&ev, &flags, &out);
    assert_int_equal(out.count, 2);
    assert_true(has(&out, ZREP_M_FUND_BALANCE, 5000) && has(&out, ZREP_M_REV_PARKING, 5000));
    assert_false(out.has_period);
    entry(&ev, &e, "reversed", "revenue:parking_fee", "cash",
          ZHILI__FUNDS__CATEGORY__CATEGORY_PARKING_FEE, 5000);
    zrep_event_contribs(&ev, &flags, &out);
    assert_true(has(&out, ZREP_M_FUND_BALANCE, -5000) && has(&out, ZREP_M_REV_PARKING, -5000));
    entry(&ev, &e, "deposited", "cash", "revenue:interest",
          ZHILI__FUNDS__CATEGORY__CATEGORY_INTEREST, 7);
    zrep_event_contribs(&ev, &flags, &out);
    assert_true(has(&out, ZREP_M_REV_OTHER, 7));
    entry(&ev, &e, "withdrawn", "expense:2-01", "cash", 0, 30000);
    zrep_event_contribs(&ev, &flags, &out);
    assert_true(has(&out, ZREP_M_FUND_BALANCE, -30000) && has(&out, ZREP_M_WITHDRAWN, 30000));
    entry(&ev, &e, "reversed", "cash", "expense:2-01", 0, 30000);
    zrep_event_contribs(&ev, &flags, &out);
    assert_true(has(&out, ZREP_M_FUND_BALANCE, 30000) && has(&out, ZREP_M_WITHDRAWN, -30000));
    entry(&ev, &e, "withdrawal_posted", "expense:2-01", "cash", 0, 30000);
    zrep_event_contribs(&ev, &flags, &out);
    assert_int_equal(out.count, 0); /* the entry's own event (withdrawn) counts it */

    /* Fees count in the fee's period: a month, or the year alone. */
    Zhili__Funds__FeeChange f = ZHILI__FUNDS__FEE_CHANGE__INIT;
    zhili__v1__event__init(&ev);
    ev.source = "funds";
    ev.type = "fee_billed";
    ev.body_case = ZHILI__V1__EVENT__BODY_FUNDS_FEE;
    ev.funds_fee = &f;
    f.period = "2026-10";
    zrep_event_contribs(&ev, &flags, &out);
    assert_true(out.has_period && !out.period.year && out.period.key == 202610);
    assert_true(has(&out, ZREP_M_FEE_BILLED, 1));
    ev.type = "fee_paid";
    f.fully_paid = false;
    zrep_event_contribs(&ev, &flags, &out);
    assert_int_equal(out.count, 0); /* a part payment: not yet paid */
    f.fully_paid = true;
    f.period = "2026";
    zrep_event_contribs(&ev, &flags, &out);
    assert_true(out.has_period && out.period.year && has(&out, ZREP_M_FEE_PAID, 1));
}

/* ---- the store: roll-up keys, stocks, drill-down by prefix ------------------- */

typedef struct {
    char dir[64];
    zstore_t *store;
    zrs_t t;
} db_t;

static int db_setup(void **state)
{
    db_t *db = calloc(1, sizeof *db);
    snprintf(db->dir, sizeof db->dir, "/tmp/zhili-test-reporting-XXXXXX");
    assert_non_null(mkdtemp(db->dir));
    zstore_options_t opts = {.dir = db->dir, .tables = zrs_tables};
    char err[256];
    assert_int_equal(zstore_open(&opts, &db->store, err, sizeof err), 0);
    zrs_init(&db->t, db->store);
    *state = db;
    return 0;
}

static int db_teardown(void **state)
{
    db_t *db = *state;
    zstore_destroy(&db->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", db->dir);
    assert_int_equal(system(cmd), 0);
    free(db);
    return 0;
}

/* What the handler does for one measure of one event (handlers.c, apply). */
static void count_event(ztxn_t *txn, const zrs_t *t, const char *area, int64_t ms, uint8_t measure,
                        int64_t amount, uint64_t seq)
{
    char levels[ZREP_LEVELS][ZREP_AREA_BUF];
    int n = zrep_rollup(area, levels);
    for (int i = 0; i < n; i++) {
        if (zrep_measure_is_stock(measure)) {
            zrs_stock_add(txn, t, 1, levels[i], zrep_period_month_of(ms).key, measure, amount);
        } else {
            zrs_counter_add(txn, t, 1, levels[i], zrep_period_month_of(ms), measure, amount);
            zrs_counter_add(txn, t, 1, levels[i], zrep_period_year_of(ms), measure, amount);
        }
    }
    zrs_ref_put(txn, t, 1, zrep_period_month_of(ms).key, measure, levels[n - 1], 1, seq, ms, amount,
                "received");
}

static int on_area(void *ctx, const char *area)
{
    char *list = ctx;
    strcat(list, area);
    strcat(list, ";");
    return 0;
}

static int on_ref(void *ctx, const zrs_ref_t *r)
{
    char *list = ctx;
    char item[64];
    snprintf(item, sizeof item, "%s#%llu;", r->area, (unsigned long long)r->seq);
    strcat(list, item);
    return 0;
}

static void test_store_rollup_and_drilldown(void **state)
{
    db_t *db = *state;
    int64_t oct, nov, dec_local;
    assert_int_equal(ztime_parse("2026-10-15T10:00:00+08:00", &oct), 0);
    assert_int_equal(ztime_parse("2026-11-15T10:00:00+08:00", &nov), 0);
    assert_int_equal(ztime_parse("2026-11-30T16:30:00Z", &dec_local), 0); /* 1 Dec local */
    ztxn_t *txn = ztxn_begin(db->store, true);
    count_event(txn, &db->t, "220503001001002003", oct, ZREP_M_PET_RECEIVED, 1, 1);
    count_event(txn, &db->t, "220503001002001", oct, ZREP_M_PET_RECEIVED, 1, 2);
    count_event(txn, &db->t, "220503002", oct, ZREP_M_PET_RECEIVED, 1, 3);
    count_event(txn, &db->t, "220503001001002", dec_local, ZREP_M_PET_RECEIVED, 1, 4);
    count_event(txn, &db->t, "220503001001001", oct, ZREP_M_KEYPERSONS, 1, 5);
    count_event(txn, &db->t, "220503001001001", nov, ZREP_M_KEYPERSONS, -1, 6);
    assert_int_equal(ztxn_commit(&txn), 0);

    txn = ztxn_begin(db->store, false);
    int64_t m[ZREP_MEASURES_MAX];
    zrep_period_t p202610 = {202610, false}, p2026 = {2026, true}, p202612 = {202612, false};
    zrs_measures_load(txn, &db->t, 1, "220503", p202610, m);
    assert_int_equal(m[ZREP_M_PET_RECEIVED], 3);
    zrs_measures_load(txn, &db->t, 1, "220503001", p202610, m);
    assert_int_equal(m[ZREP_M_PET_RECEIVED], 2);
    zrs_measures_load(txn, &db->t, 1, "220503001001", p202610, m);
    assert_int_equal(m[ZREP_M_PET_RECEIVED], 1);
    zrs_measures_load(txn, &db->t, 1, "", p2026, m);
    assert_int_equal(m[ZREP_M_PET_RECEIVED], 4);
    zrs_measures_load(txn, &db->t, 1, "220503001001", p202612, m);
    assert_int_equal(m[ZREP_M_PET_RECEIVED], 1);
    /* A stock is the running total at the period's end. */
    assert_int_equal(m[ZREP_M_KEYPERSONS], 0);
    zrs_measures_load(txn, &db->t, 1, "220503001001", p202610, m);
    assert_int_equal(m[ZREP_M_KEYPERSONS], 1);
    /* Children listed per period and level, in code order. */
    char list[512] = "";
    zrs_areas_scan(txn, &db->t, 1, p202610, ZAREA_STREET, "220503", list, on_area);
    assert_string_equal(list, "220503001;220503002;");
    list[0] = '\0';
    zrs_areas_scan(txn, &db->t, 1, p202610, ZAREA_COMMUNITY, "220503001", list, on_area);
    assert_string_equal(list, "220503001001;220503001002;");
    /* References live at the leaf; a parent's drill-down is a prefix scan. */
    list[0] = '\0';
    zrs_refs_scan(txn, &db->t, 1, 202610, ZREP_M_PET_RECEIVED, "220503001", NULL, list, on_ref);
    assert_string_equal(list, "220503001001002003#1;220503001002001#2;");
    list[0] = '\0';
    zrs_refs_scan(txn, &db->t, 1, 202610, ZREP_M_PET_RECEIVED, "", NULL, list, on_ref);
    assert_string_equal(list, "220503001001002003#1;220503001002001#2;220503002#3;");
    ztxn_abort(&txn);

    /* A new generation starts empty; the old one is purged in bounded steps. */
    txn = ztxn_begin(db->store, true);
    assert_true(zrs_gen_used(txn, &db->t, 1));
    assert_false(zrs_gen_used(txn, &db->t, 2));
    zarena_t arena;
    zarena_init(&arena);
    int removed = 0, total = 0;
    while ((removed = zrs_purge(txn, &db->t, 2, &arena, 7)) > 0) {
        assert_true(removed <= 7);
        total += removed;
    }
    assert_int_equal(removed, 0);
    assert_true(total > 20);
    assert_false(zrs_gen_used(txn, &db->t, 1));
    zarena_fini(&arena);
    assert_int_equal(ztxn_commit(&txn), 0);
}

/* What the handler does for budgets.execution_published (handlers.c,
 * execution and apply): the counted amounts, then each measure at every level
 * for the published month and its year, the reference at the compound. */
static void count_execution(ztxn_t *txn, const zrs_t *t, Zhili__V1__Event *ev, uint64_t seq)
{
    int month = zrep_execution_month(ev);
    zrep_exec_t counted;
    zrs_exec_get(txn, t, 1, ev->area, month, &counted);
    zrep_contribs_t c;
    assert_int_equal(zrep_execution_contribs(ev, &counted, &c), 0);
    zrs_exec_put(txn, t, 1, ev->area, month, &counted);
    char levels[ZREP_LEVELS][ZREP_AREA_BUF];
    int n = zrep_rollup(ev->area, levels);
    zrep_period_t year = {c.period.key / 100, true};
    for (int k = 0; k < c.count; k++) {
        for (int i = 0; i < n; i++) {
            zrs_counter_add(txn, t, 1, levels[i], c.period, c.items[k].measure, c.items[k].amount);
            zrs_counter_add(txn, t, 1, levels[i], year, c.items[k].measure, c.items[k].amount);
        }
        zrs_ref_put(txn, t, 1, c.period.key, c.items[k].measure, levels[n - 1], 4, seq, ev->ts_ms,
                    c.items[k].amount, ev->type);
    }
}

static int on_ref_amount(void *ctx, const zrs_ref_t *r)
{
    char *list = ctx;
    char item[64];
    snprintf(item, sizeof item, "%s#%llu:%lld;", zrs_source_name(r->source),
             (unsigned long long)r->seq, (long long)r->amount);
    strcat(list, item);
    return 0;
}

/* A month published twice (an amendment) counts its latest figures once, at
 * the compound and every level above, in the month and the year; the
 * drill-down lists both publications, their amounts adding up to the figure. */
static void test_store_execution_republished(void **state)
{
    db_t *db = *state;
    exec_ev_t x, y;
    ztxn_t *txn = ztxn_begin(db->store, true);
    zrep_exec_t none;
    zrs_exec_get(txn, &db->t, 1, "220503001001002", 202610, &none);
    assert_true(none.budget == 0 && none.actual == 0);
    Zhili__V1__Event *ev = exec_event(&x, 100000, 30000, 10000, 0);
    ev->ts_ms = 1793462400000; /* 2026-11-01 local: the publication */
    count_execution(txn, &db->t, ev, 7);
    ev = exec_event(&x, 120000, 35000, 10000, 0);
    ev->ts_ms = 1793548800000;
    count_execution(txn, &db->t, ev, 9);
    /* September, published once, in the same year. */
    ev = exec_event(&y, 100000, 0, 10000, 0);
    y.e.month = 9;
    count_execution(txn, &db->t, ev, 5);
    assert_int_equal(ztxn_commit(&txn), 0);

    txn = ztxn_begin(db->store, false);
    const zrep_indicator_t *ind = zrep_indicator_find("budget_execution_rate");
    int64_t m[ZREP_MEASURES_MAX];
    zrep_figure_t f;
    const char *areas[] = {"220503001001002", "220503001001", "220503001", "220503", ""};
    for (size_t i = 0; i < ZARRAY_LEN(areas); i++) {
        zrs_measures_load(txn, &db->t, 1, areas[i], (zrep_period_t){202610, false}, m);
        zrep_figure(ind, m, &f);
        assert_true(f.numerator == 35000 && f.denominator == 130000 && f.has_rate);
        zrs_measures_load(txn, &db->t, 1, areas[i], (zrep_period_t){202609, false}, m);
        zrep_figure(ind, m, &f);
        assert_true(f.numerator == 0 && f.denominator == 110000 && f.has_rate && f.rate == 0.0);
        /* The year is the sum of its months. */
        zrs_measures_load(txn, &db->t, 1, areas[i], (zrep_period_t){2026, true}, m);
        zrep_figure(ind, m, &f);
        assert_true(f.numerator == 35000 && f.denominator == 240000);
    }
    zrs_measures_load(txn, &db->t, 1, "220503001001002", (zrep_period_t){202611, false}, m);
    zrep_figure(ind, m, &f);
    assert_false(f.has_rate); /* November: not published yet */
    zrs_measures_load(txn, &db->t, 1, "220503002", (zrep_period_t){202610, false}, m);
    assert_int_equal(m[ZREP_M_BUDGET_PLANNED], 0);
    char list[256] = "";
    zrs_refs_scan(txn, &db->t, 1, 202610, ZREP_M_BUDGET_PLANNED, "220503", NULL, list,
                  on_ref_amount);
    assert_string_equal(list, "budgets#7:110000;budgets#9:20000;");
    list[0] = '\0';
    zrs_refs_scan(txn, &db->t, 1, 202610, ZREP_M_BUDGET_ACTUAL, "220503001001002", NULL, list,
                  on_ref_amount);
    assert_string_equal(list, "budgets#7:30000;budgets#9:5000;");
    zrep_exec_t counted;
    zrs_exec_get(txn, &db->t, 1, "220503001001002", 202610, &counted);
    assert_true(counted.budget == 130000 && counted.actual == 35000);
    zrs_exec_get(txn, &db->t, 2, "220503001001002", 202610, &counted);
    assert_true(counted.budget == 0 && counted.actual == 0); /* another generation */
    ztxn_abort(&txn);

    /* The counted amounts belong to the projection: a rebuild drops them too. */
    txn = ztxn_begin(db->store, true);
    zarena_t arena;
    zarena_init(&arena);
    while (zrs_purge(txn, &db->t, 2, &arena, 1000) > 0) {
    }
    assert_false(zrs_gen_used(txn, &db->t, 1));
    zrs_exec_get(txn, &db->t, 1, "220503001001002", 202610, &counted);
    assert_true(counted.budget == 0 && counted.actual == 0);
    zarena_fini(&arena);
    assert_int_equal(ztxn_commit(&txn), 0);
}

/* ---- alerts -------------------------------------------------------------- */

static void test_alert_rules_parse(void **state)
{
    (void)state;
    zrep_alert_rules_t r;
    char err[256];
    assert_int_equal(zrep_alert_rules_parse(ZREP_ALERTS_DEFAULT, &r, err, sizeof err), 0);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.rules[0].name, "ontime_sign_rate<0.9@street");
    assert_true(r.rules[0].threshold == 0.9 && r.rules[0].level == ZAREA_STREET);
    const char *text = "completion_rate <= 0.8 @ community min=5 # 办结率\n"
                       "escalations>10@street; household_visits<1@grid\n\n# only a comment\n";
    assert_int_equal(zrep_alert_rules_parse(text, &r, err, sizeof err), 0);
    assert_int_equal(r.count, 3);
    assert_string_equal(r.rules[0].name, "completion_rate<=0.8@community min=5");
    assert_int_equal(r.rules[0].min_denominator, 5);
    assert_int_equal(r.rules[1].cmp, ZREP_CMP_GT);
    assert_true(r.rules[1].threshold == 10);
    assert_int_equal(zrep_alert_rules_parse("", &r, err, sizeof err), 0);
    assert_int_equal(r.count, 0);
    const char *bad[] = {"nope<1@street",         "sign_rate=0.9@street",
                         "sign_rate<90@street",   "sign_rate<0.9",
                         "sign_rate<0.9@city",    "sign_rate<0.9@street min=0",
                         "queries_open>1@street", "sign_rate<0.9@street,sign_rate<0.9@street",
                         "sign_rate<@street",     "sign_rate<0.9@street extra"};
    for (size_t i = 0; i < ZARRAY_LEN(bad); i++) {
        assert_int_equal(zrep_alert_rules_parse(bad[i], &r, err, sizeof err), -1);
        assert_non_null(strstr(err, "alert rule"));
    }
}

static void test_alert_crossings(void **state)
{
    (void)state;
    zrep_alert_rules_t r;
    char err[256];
    assert_int_equal(
        zrep_alert_rules_parse("ontime_sign_rate<90%@street min=2", &r, err, sizeof err), 0);
    const zrep_alert_rule_t *rule = &r.rules[0];
    zrep_figure_t f = {0};
    double v;
    /* No denominator: no judgement, whatever the state. */
    assert_int_equal(zrep_alert_step(rule, &f, false, &v), ZREP_ALERT_KEEP);
    assert_int_equal(zrep_alert_step(rule, &f, true, &v), ZREP_ALERT_KEEP);
    /* 0 of 1: under the minimum denominator. */
    f = (zrep_figure_t){0, 0, 1, true, 0.0};
    assert_int_equal(zrep_alert_step(rule, &f, false, &v), ZREP_ALERT_KEEP);
    /* 1 of 2 = 50 %: raise once, then keep while it stays under. */
    f = (zrep_figure_t){0, 1, 2, true, 0.5};
    assert_int_equal(zrep_alert_step(rule, &f, false, &v), ZREP_ALERT_RAISE);
    assert_true(v == 0.5);
    assert_int_equal(zrep_alert_step(rule, &f, true, &v), ZREP_ALERT_KEEP);
    /* Exactly 90 % is not below 90 %: cleared once. */
    f = (zrep_figure_t){0, 9, 10, true, 0.9};
    assert_int_equal(zrep_alert_step(rule, &f, true, &v), ZREP_ALERT_CLEAR);
    assert_int_equal(zrep_alert_step(rule, &f, false, &v), ZREP_ALERT_KEEP);
    /* A count rule compares the value. */
    assert_int_equal(zrep_alert_rules_parse("escalations>=3@community", &r, err, sizeof err), 0);
    f = (zrep_figure_t){3, 0, 0, false, 0};
    assert_int_equal(zrep_alert_step(&r.rules[0], &f, false, &v), ZREP_ALERT_RAISE);
    f.value = 2;
    assert_int_equal(zrep_alert_step(&r.rules[0], &f, true, &v), ZREP_ALERT_CLEAR);
}

/* ---- the red/black list --------------------------------------------------- */

static void test_redblack_rules(void **state)
{
    (void)state;
    const char *why[ZREP_REASONS_MAX];
    int n = 0;
    zrep_property_month_t m = {false, 0, false, 2};
    assert_int_equal(zrep_redblack(&m, why, &n), ZREP_LIST_UNRATED);
    m.complaints_overdue = 3;
    assert_int_equal(zrep_redblack(&m, why, &n), ZREP_LIST_BLACK);
    assert_int_equal(n, 1);
    m = (zrep_property_month_t){true, 95, false, 0};
    assert_int_equal(zrep_redblack(&m, why, &n), ZREP_LIST_RED);
    m.complaints_overdue = 1;
    assert_int_equal(zrep_redblack(&m, why, &n), ZREP_LIST_NONE);
    m = (zrep_property_month_t){true, 59.9, true, 0};
    assert_int_equal(zrep_redblack(&m, why, &n), ZREP_LIST_BLACK);
    assert_int_equal(n, 2);
    m = (zrep_property_month_t){true, 60, false, 0};
    assert_int_equal(zrep_redblack(&m, why, &n), ZREP_LIST_NONE);
    assert_string_equal(zrep_list_name(ZREP_LIST_BLACK), "black");

    double s;
    zrep_score_parts_t p = {true, true, true, true, true, 80, 4, 90};
    assert_true(zrep_property_score(&p, &s));
    assert_true(s > 85.999 && s < 86.001); /* 20 + 24 + 24 + 18 */
    p.has_branch = false;                  /* re-weighted: 68 of 80 */
    assert_true(zrep_property_score(&p, &s));
    assert_true(s > 84.999 && s < 85.001);
    p = (zrep_score_parts_t){0};
    assert_false(zrep_property_score(&p, &s));
}

/* ---- the CSV export -------------------------------------------------------- */

static void field_is(const char *in, bool text, const char *want)
{
    char *f = zgw_csv_field(in, text);
    assert_non_null(f);
    assert_string_equal(f, want);
    free(f);
}

static void test_csv_quoting(void **state)
{
    (void)state;
    field_is("桃源社区", true, "桃源社区");
    field_is("a,b", true, "\"a,b\"");
    field_is("say \"hi\"", true, "\"say \"\"hi\"\"\"");
    field_is("line\nbreak", true, "\"line\nbreak\"");
    field_is("cr\rhere", true, "\"cr\rhere\"");
    field_is("=SUM(A1)", true, "'=SUM(A1)");
    field_is("+1", true, "'+1");
    field_is("@x,y", true, "\"'@x,y\"");
    field_is("-5", false, "-5"); /* numbers are not text cells */
    field_is("", true, "");
    char *code = zgw_csv_code("220503001001002003");
    assert_string_equal(code, "\"=\"\"220503001001002003\"\"\"");
    free(code);
}

static void test_csv_report(void **state)
{
    (void)state;
    const char *text =
        "{\"area\":\"220503\",\"period\":\"2026-10\",\"indicators\":["
        "{\"code\":\"petitions_received\",\"name\":\"受理诉求数\",\"kind\":\"count\",\"pending\":"
        "false},"
        "{\"code\":\"sign_rate\",\"name\":\"签收率\",\"kind\":\"rate\",\"pending\":false},"
        "{\"code\":\"fund_balance\",\"name\":\"共有资金余额\",\"kind\":\"stock_fen\",\"pending\":"
        "true}],"
        "\"rows\":[{\"area\":\"220503001\",\"name\":\"东通化街道, 一\",\"cells\":["
        "{\"indicator\":\"petitions_received\",\"current\":{\"value\":5},\"previous\":{\"value\":2}"
        "},"
        "{\"indicator\":\"sign_rate\",\"current\":{\"numerator\":3,\"denominator\":4,\"rate\":0.75}"
        ","
        "\"previous\":{\"numerator\":0,\"denominator\":0}},"
        "{\"indicator\":\"fund_balance\",\"current\":{\"value\":0},\"previous\":{\"value\":0}}]}],"
        "\"total\":{\"area\":\"220503\",\"name\":\"二道江区\",\"cells\":["
        "{\"indicator\":\"petitions_received\",\"current\":{\"value\":5},\"previous\":{\"value\":2}"
        "},"
        "{\"indicator\":\"sign_rate\",\"current\":{\"numerator\":3,\"denominator\":4,\"rate\":0.75}"
        ","
        "\"previous\":{\"numerator\":0,\"denominator\":0}}]}}";
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    size_t len = 0;
    char name[96];
    char *csv = zgw_report_csv(j, &len, name, sizeof name);
    assert_non_null(csv);
    assert_string_equal(name, "report-220503-2026-10.csv");
    const char *want = ZGW_CSV_BOM
        "区域编码,区域名称,受理诉求数,受理诉求数(上年同期),签收率,签收率分子,签收率分母,"
        "签收率(上年同期)\r\n"
        "\"=\"\"220503001\"\"\",\"东通化街道, 一\",5,2,75.00%,3,4,\r\n"
        "\"=\"\"220503\"\"\",合计（二道江区）,5,2,75.00%,3,4,\r\n";
    assert_string_equal(csv, want);
    assert_int_equal(len, strlen(want));
    free(csv);
    /* JSON: a zero denominator's rate and a pending indicator are null. */
    zgw_report_nulls(j);
    json_t *row = json_array_get(json_object_get(j, "rows"), 0);
    json_t *cells = json_object_get(row, "cells");
    json_t *prev = json_object_get(json_array_get(cells, 1), "previous");
    assert_true(json_is_null(json_object_get(prev, "rate")));
    assert_null(json_object_get(prev, "value"));
    json_t *fund = json_object_get(json_array_get(cells, 2), "current");
    assert_true(json_is_null(json_object_get(fund, "value")));
    json_t *count = json_object_get(json_array_get(cells, 0), "current");
    assert_null(json_object_get(count, "numerator"));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollup_levels),
        cmocka_unit_test(test_period_keys_at_month_boundaries),
        cmocka_unit_test(test_rate_zero_denominator_is_null),
        cmocka_unit_test(test_indicator_table),
        cmocka_unit_test(test_petition_counted_once),
        cmocka_unit_test(test_grid_events),
        cmocka_unit_test(test_funds_events),
        cmocka_unit_test(test_budget_execution_counted),
        cmocka_unit_test(test_budget_execution_refused),
        cmocka_unit_test_setup_teardown(test_store_rollup_and_drilldown, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(test_store_execution_republished, db_setup, db_teardown),
        cmocka_unit_test(test_alert_rules_parse),
        cmocka_unit_test(test_alert_crossings),
        cmocka_unit_test(test_redblack_rules),
        cmocka_unit_test(test_csv_quoting),
        cmocka_unit_test(test_csv_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
