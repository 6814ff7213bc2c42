/* Goal: the budgets rules hold on their own (services/budgets/budgets.c): the
 * default catalogue has 28 items in 6 categories, a line's remainder is
 * budget - reserved - spent and a reservation beyond it is refused naming the
 * shortfall (以收定支), a monthly profile adds up to the line (an even split
 * spreads the odd fen over the first months), the lines may not exceed the
 * expected income, co-signing (联签联审) takes each of the three parties once
 * in any order and nobody else, and the execution figures of a hand-computed
 * case come out right; the bulletin-board notice escapes what a compound
 * typed and refuses to overflow. Every error path has its case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "services/budgets/budgets.h"
#include "services/budgets/notice.h"

static void test_catalogue(void **state)
{
    (void)state;
    assert_int_equal(zbud_catalogue_count, 28);
    int per_category[7] = {0};
    for (int i = 0; i < zbud_catalogue_count; i++) {
        assert_true(zbud_code_valid(zbud_catalogue[i].code));
        per_category[zbud_catalogue[i].code[0] - '0']++;
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(zbud_catalogue[i].code, zbud_catalogue[j].code);
        }
    }
    const int want[7] = {0, 4, 7, 3, 4, 4, 6};
    for (int c = 1; c <= 6; c++) {
        assert_int_equal(per_category[c], want[c]);
        assert_non_null(zbud_category_name(c));
    }
    assert_null(zbud_category_name(0));
    assert_null(zbud_category_name(7));
    assert_string_equal(zbud_item_find("2-01")->name, "电梯维保");
    assert_string_equal(zbud_category_name(3), "绿化养护");
    assert_null(zbud_item_find("2-99"));
    const char *bad[] = {"", "2-0", "7-01", "0-01", "2_01", "2-00", "2-01x", "a-01", NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        assert_false(zbud_code_valid(bad[i]));
    }
    assert_false(zbud_code_valid(NULL));
    assert_true(zbud_code_valid("6-99"));
}

static void test_remaining_and_reserve(void **state)
{
    (void)state;
    char msg[ZBUD_MSG_BYTES];
    assert_int_equal(zbud_remaining(100000, 30000, 20000), 50000);
    assert_int_equal(zbud_reserve_check("2-01", 100000, 30000, 20000, 50000, msg), 0);
    assert_int_equal(zbud_reserve_check("2-01", 100000, 30000, 20000, 50001, msg), ZE_CONFLICT);
    assert_non_null(strstr(msg, "500.00 yuan left"));
    assert_non_null(strstr(msg, "0.01 yuan short"));
    assert_non_null(strstr(msg, "以收定支"));
    assert_int_equal(zbud_reserve_check("2-01", 100000, 0, 0, 0, msg), ZE_INVALID);
    assert_int_equal(zbud_reserve_check("2-01", 100000, 0, 0, -5, msg), ZE_INVALID);
    assert_int_equal(zbud_reserve_check("2-01", 100000, 0, 0, ZBUD_AMOUNT_MAX + 1, msg),
                     ZE_INVALID);
    /* Nothing left at all. */
    assert_int_equal(zbud_reserve_check("3-01", 5000, 0, 5000, 1, msg), ZE_CONFLICT);
    assert_non_null(strstr(msg, "0.00 yuan left"));
}

static void test_profile(void **state)
{
    (void)state;
    char msg[ZBUD_MSG_BYTES];
    int64_t out[12];
    /* 100 fen over 12 months: 4 months of 9, 8 of 8. */
    assert_int_equal(zbud_profile(100, NULL, 0, out, msg), 0);
    int64_t sum = 0;
    for (int m = 0; m < 12; m++) {
        assert_int_equal(out[m], m < 4 ? 9 : 8);
        sum += out[m];
    }
    assert_int_equal(sum, 100);
    assert_int_equal(zbud_profile(1200000, NULL, 0, out, msg), 0);
    assert_int_equal(out[0], 100000);
    assert_int_equal(out[11], 100000);
    int64_t profile[12] = {0, 0, 0, 0, 0, 600, 600, 0, 0, 0, 0, 0};
    assert_int_equal(zbud_profile(1200, profile, 12, out, msg), 0);
    assert_int_equal(out[5], 600);
    assert_int_equal(out[0], 0);
    assert_int_equal(zbud_profile(1201, profile, 12, out, msg), ZE_INVALID);
    assert_non_null(strstr(msg, "add up to 1200"));
    assert_int_equal(zbud_profile(1200, profile, 11, out, msg), ZE_INVALID);
    assert_non_null(strstr(msg, "12 amounts"));
    profile[0] = -1;
    profile[1] = 1;
    assert_int_equal(zbud_profile(1200, profile, 12, out, msg), ZE_INVALID);
    assert_int_equal(zbud_profile(0, NULL, 0, out, msg), ZE_INVALID);
    assert_int_equal(zbud_profile(-3, NULL, 0, out, msg), ZE_INVALID);
}

static void test_income(void **state)
{
    (void)state;
    char msg[ZBUD_MSG_BYTES];
    assert_int_equal(zbud_income_check(100000, 100000, msg), 0);
    assert_int_equal(zbud_income_check(100001, 100000, msg), ZE_INVALID);
    assert_non_null(strstr(msg, "0.01 yuan short"));
    assert_non_null(strstr(msg, "以收定支"));
}

static void test_cosign(void **state)
{
    (void)state;
    char msg[ZBUD_MSG_BYTES];
    unsigned mask = 0;
    /* Not submitted yet. */
    assert_int_equal(zbud_sign(ZBUD_DRAFT, &mask, "committee", msg), ZE_CONFLICT);
    assert_int_equal(mask, 0);
    /* A wrong role. */
    assert_int_equal(zbud_sign(ZBUD_SUBMITTED, &mask, "resident", msg), ZE_FORBIDDEN);
    assert_int_equal(zbud_sign(ZBUD_SUBMITTED, &mask, "admin", msg), ZE_FORBIDDEN);
    assert_int_equal(zbud_sign(ZBUD_SUBMITTED, &mask, NULL, msg), ZE_FORBIDDEN);
    assert_int_equal(mask, 0);
    /* Any order; each once. */
    assert_int_equal(zbud_sign(ZBUD_SUBMITTED, &mask, "party_branch", msg), 0);
    assert_int_equal(zbud_sign(ZBUD_SUBMITTED, &mask, "party_branch", msg), ZE_CONFLICT);
    assert_non_null(strstr(msg, "already signed"));
    assert_int_equal(zbud_sign(ZBUD_SUBMITTED, &mask, "property", msg), 0);
    assert_true(mask != ZBUD_PARTIES_ALL); /* a party missing: not yet active */
    assert_int_equal(zbud_sign(ZBUD_SUBMITTED, &mask, "committee", msg), 0);
    assert_int_equal(mask, ZBUD_PARTIES_ALL);
    assert_int_equal(zbud_sign(ZBUD_ACTIVE, &mask, "committee", msg), ZE_CONFLICT);
}

/* A hand-computed case: a line of 12 000.00 yuan split evenly (1 000.00 a
 * month) with 800.00 spent in January, 1 500.00 in March. At March: budget to
 * date 3 000.00, actual 2 300.00, variance 700.00, rate 76.66%. */
static void test_execution(void **state)
{
    (void)state;
    int64_t monthly[12], actual[12] = {80000, 0, 150000};
    char msg[ZBUD_MSG_BYTES];
    assert_int_equal(zbud_profile(1200000, NULL, 0, monthly, msg), 0);
    zbud_exec_t x;
    zbud_exec_line(monthly, actual, 3, &x);
    assert_int_equal(x.budget_month, 100000);
    assert_int_equal(x.actual_month, 150000);
    assert_int_equal(x.budget_to_date, 300000);
    assert_int_equal(x.actual_to_date, 230000);
    assert_int_equal(x.variance, 70000);
    assert_int_equal(x.rate_bp, 7666);
    zbud_exec_line(monthly, actual, 1, &x);
    assert_int_equal(x.rate_bp, 8000);
    zbud_exec_line(monthly, actual, 13, &x);
    assert_int_equal(x.budget_to_date, 0);
    assert_int_equal(zbud_rate_bp(5, 0), 0);
    assert_int_equal(zbud_rate_bp(150, 100), 15000);
    assert_string_equal(zbud_state_name(ZBUD_ACTIVE), "active");
}

/* The printable notice: Chinese title, figures in yuan, a compound's own
 * item name escaped, and -1 (with an empty string) when it does not fit. */
static void test_notice(void **state)
{
    (void)state;
    zbud_notice_row_t rows[2] = {
        {"2-01", "电梯维保", {100000, 150000, 300000, 230000, 70000, 7666}},
        {"2-08", "<script>\"x\"&'", {0, 0, 0, 0, 0, 0}},
    };
    zbud_notice_t n = {.area = "220503001001002",
                       .year = 2026,
                       .month = 3,
                       .rows = rows,
                       .row_count = 2,
                       .total = {100000, 150000, 300000, 230000, 70000, 7666},
                       .published = "2026-04-01"};
    static char out[ZBUD_NOTICE_BYTES_MAX];
    int len = zbud_notice_html(&n, out, sizeof out);
    assert_true(len > 0);
    assert_int_equal((size_t)len, strlen(out));
    assert_non_null(strstr(out, "2026年3月 预算执行情况公示"));
    assert_non_null(
        strstr(out, "<td>电梯维保</td><td class=n>1000.00</td><td class=n>1500.00</td>"));
    assert_non_null(strstr(out, "<td class=n>76.66%</td>"));
    assert_non_null(strstr(out, "&lt;script&gt;&quot;x&quot;&amp;&#39;"));
    assert_null(strstr(out, "<script>"));
    assert_non_null(strstr(out, "公示日期：2026-04-01"));
    rows[0].x.variance = -5;
    len = zbud_notice_html(&n, out, sizeof out);
    assert_non_null(strstr(out, "<td class=n>-0.05</td>"));
    char small[100];
    assert_int_equal(zbud_notice_html(&n, small, sizeof small), -1);
    assert_string_equal(small, "");
    assert_int_equal(zbud_notice_html(&n, small, 0), -1);
}

/* 一查三评: the DESIGN §5 formula by hand, and re-weighting when a component
 * has no data. */
static void test_score(void **state)
{
    (void)state;
    zbud_evals_t e = {0};
    assert_int_equal(zbud_score_x100(&e), -1);
    /* All four: 20 + 0.3 × 80 + 6 × 4.5 + 0.2 × 90 = 20 + 24 + 27 + 18 = 89. */
    e = (zbud_evals_t){true, true, true, 80, 2, 9, true, 90};
    assert_int_equal(zbud_score_x100(&e), 8900);
    /* A failed check counts 0 of its 20. */
    e.check_passed = false;
    assert_int_equal(zbud_score_x100(&e), 6900);
    /* No ratings: (0 + 24 + 18) of 70 -> 60.00. */
    e.ratings = 0;
    e.rating_sum = 0;
    assert_int_equal(zbud_score_x100(&e), 6000);
    /* Only ratings, all 5: 100. */
    e = (zbud_evals_t){.ratings = 3, .rating_sum = 15};
    assert_int_equal(zbud_score_x100(&e), 10000);
    /* Only a passed check: 100; mean rating of 1 alone: 20. */
    e = (zbud_evals_t){.has_check = true, .check_passed = true};
    assert_int_equal(zbud_score_x100(&e), 10000);
    e = (zbud_evals_t){.ratings = 1, .rating_sum = 1};
    assert_int_equal(zbud_score_x100(&e), 2000);
}

/* The three lists have 5, 7 and 6 entries with names and standards; dates
 * are real calendar dates. */
static void test_lists_and_dates(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        assert_true(strlen(zbud_branch_functions[i].name) > 0);
    }
    for (int i = 0; i < 7; i++) {
        assert_true(strlen(zbud_committee_duties[i].standard) > 0);
    }
    assert_string_equal(zbud_service_find("S4")->name, "绿化养护");
    assert_null(zbud_service_find("S7"));
    assert_null(zbud_service_find(NULL));
    assert_true(zbud_date_valid("2026-11-30"));
    assert_true(zbud_date_valid("2028-02-29"));
    const char *bad[] = {"2026-02-29", "2026-11-31", "2026-13-01", "2026-00-10", "2026-1-01",
                         "26-11-30",   "2026/11/30", "",           "1999-01-01", NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        assert_false(zbud_date_valid(bad[i]));
    }
    assert_false(zbud_date_valid(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue),       cmocka_unit_test(test_remaining_and_reserve),
        cmocka_unit_test(test_profile),         cmocka_unit_test(test_income),
        cmocka_unit_test(test_cosign),          cmocka_unit_test(test_execution),
        cmocka_unit_test(test_notice),          cmocka_unit_test(test_score),
        cmocka_unit_test(test_lists_and_dates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
