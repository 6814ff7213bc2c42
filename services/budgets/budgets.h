/* budgets: the pure rules of open budgets (开放式预算, docs/budgets.md) on plain
 * structs, with no I/O: the default catalogue, a line's remainder and the
 * reservation check (以收定支), co-signing (联签联审), monthly profiles and the
 * execution figures. Every function that refuses writes a sentence to msg. */
#ifndef ZHILI_BUDGETS_H
#define ZHILI_BUDGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "services/budgets/limits.h"

#define ZBUD_MSG_BYTES 256

typedef enum { ZBUD_DRAFT = 0, ZBUD_SUBMITTED = 1, ZBUD_ACTIVE = 2 } zbud_state_t;

/* One item of the default catalogue. */
typedef struct {
    const char *code; /* "2-01" */
    const char *name; /* 电梯维保 */
} zbud_item_t;

extern const zbud_item_t zbud_catalogue[];
extern const int zbud_catalogue_count;

/* The Chinese name of category 1..6, or NULL. */
const char *zbud_category_name(int category);

/* The default item of `code`, or NULL. */
const zbud_item_t *zbud_item_find(const char *code);

/* A well-formed item code: "<1-6>-<01-99>". */
bool zbud_code_valid(const char *code);

/* budget - reserved - spent. */
int64_t zbud_remaining(int64_t budget, int64_t reserved, int64_t spent);

/* May `amount` be reserved on a line? 0, ZE_INVALID (amount not positive)
 * or ZE_CONFLICT naming the shortfall (以收定支). */
int zbud_reserve_check(const char *line, int64_t budget, int64_t reserved, int64_t spent,
                       int64_t amount, char msg[ZBUD_MSG_BYTES]);

/* Fill out[12] with the monthly profile: `monthly` of n = 12 amounts
 * (each >= 0, summing to amount), or n = 0 for an even split (the fen left
 * over go one each to the first months). 0 or ZE_INVALID. */
int zbud_profile(int64_t amount, const int64_t *monthly, size_t n, int64_t out[ZBUD_MONTHS],
                 char msg[ZBUD_MSG_BYTES]);

/* 以收定支: 0 when total <= expected_income, else ZE_INVALID naming the shortfall. */
int zbud_income_check(int64_t total, int64_t expected_income, char msg[ZBUD_MSG_BYTES]);

/* The party bit of a co-signing role (committee, party_branch, property), 0 for any other. */
unsigned zbud_party_bit(const char *role);
#define ZBUD_PARTIES_ALL 7u

/* Co-sign as `role`: the budget must be submitted, the role one of the three
 * parties, and not have signed yet. On 0, *signed_mask has the bit and the
 * caller activates the budget when it equals ZBUD_PARTIES_ALL. ZE_CONFLICT
 * (state, twice) or ZE_FORBIDDEN (role). */
int zbud_sign(zbud_state_t state, unsigned *signed_mask, const char *role,
              char msg[ZBUD_MSG_BYTES]);

/* Execution of one line up to month (1..12). */
typedef struct {
    int64_t budget_month, actual_month, budget_to_date, actual_to_date, variance, rate_bp;
} zbud_exec_t;

void zbud_exec_line(const int64_t monthly[ZBUD_MONTHS], const int64_t actual[ZBUD_MONTHS],
                    int month, zbud_exec_t *out);

/* actual / budget in basis points (0 when budget is 0). */
int64_t zbud_rate_bp(int64_t actual, int64_t budget);

const char *zbud_state_name(zbud_state_t state);

/* The three lists (三张清单): fixed entries (code, name, default standard). */
typedef struct {
    const char *code, *name, *standard;
} zbud_list_entry_t;
extern const zbud_list_entry_t zbud_branch_functions[5];  /* 党支部职能 */
extern const zbud_list_entry_t zbud_committee_duties[7];  /* 业委会职责 */
extern const zbud_list_entry_t zbud_property_services[6]; /* 物业服务, S1..S6 */

/* The property service of code "S1".."S6", or NULL. */
const zbud_list_entry_t *zbud_service_find(const char *code);

/* A local date "YYYY-MM-DD" with a real month and day. */
bool zbud_date_valid(const char *date);

/* 一查三评 of one compound and month: what was recorded (has_* false: no data). */
typedef struct {
    bool has_check, check_passed; /* on-site account check (现场账目查询) */
    bool has_questionnaire;
    int64_t questionnaire;       /* 0..100 */
    int64_t ratings, rating_sum; /* online ratings 1..5: count and sum */
    bool has_branch;
    int64_t branch; /* party-branch evaluation 0..100 */
} zbud_evals_t;

/* The property service score in hundredths (0..10000) after DESIGN §5:
 * 20 × check passed + 0.3 × questionnaire + 6 × mean rating + 0.2 × branch;
 * a component without data is left out and the others re-weighted to 100.
 * -1 when nothing was recorded. */
int64_t zbud_score_x100(const zbud_evals_t *e);

#endif
