/* store: the budgets service's LMDB tables and their rows (docs/budgets.md,
 * "Storage"). Keys are text: "<area>:<year>" for a budget, "<area>:<year>:<code>"
 * for a line, the withdrawal id for a reservation, "<area>:<code>" for an own item.
 * Rows are fixed-size structs (one process writes and reads them). */
#ifndef ZHILI_BUDGETS_STORE_H
#define ZHILI_BUDGETS_STORE_H

#include <stddef.h>

#include "common/store.h"
#include "services/budgets/budgets.h"

/* budgets, lines, reservations, items, published, amendments, history,
 * queries, query_due, counters, evals, lists, revenue */
extern const char *const zbstore_tables[];

typedef struct {
    char code[ZBUD_CODE_BYTES_MAX + 1];
    int64_t amount;
    int64_t monthly[ZBUD_MONTHS];
    char standard[ZBUD_STANDARD_BYTES_MAX + 1];
} zbstore_line_def_t;

typedef struct {
    int32_t state; /* zbud_state_t */
    uint32_t signed_mask;
    char signed_order[ZBUD_PARTIES][16];
    int64_t expected_income;
    int64_t total;
    int32_t line_count;
    int32_t version; /* 1 once active; +1 per co-signed amendment */
    zbstore_line_def_t lines[ZBUD_LINES_MAX];
} zbstore_budget_t;
/* The tick and stats read a row's state without copying the whole row. */
_Static_assert(offsetof(zbstore_budget_t, state) == 0, "state is a budget row's first field");

/* Figures of an active line: the authority for its remainder. */
typedef struct {
    int64_t budget, reserved, spent;
    int64_t spent_month[ZBUD_MONTHS]; /* consumed, by local month of the budget year */
} zbstore_line_t;

typedef struct {
    char line_key[ZBUD_KEY_BYTES_MAX];
    int64_t amount;
    char state;    /* 'r' reserved, 'c' consumed, 'x' released */
    bool reversed; /* consumed, then funds reversed the withdrawal (funds.reversed) */
} zbstore_resv_t;

/* An owner's query (质询): key "<area>:<id>"; while open, an index row
 * "query_due": 8-byte big-endian deadline_ms + "<area>:<id>" -> "". */
typedef struct {
    char id[12];
    int64_t year;
    char line[ZBUD_CODE_BYTES_MAX + 1];
    char question[ZBUD_QUESTION_BYTES_MAX + 1];
    char asker[65];
    int64_t raised_ms, deadline_ms, answered_ms;
    char state; /* 'o' open, 'a' answered */
    bool overdue;
    char answer[ZBUD_ANSWER_BYTES_MAX + 1];
    char answered_by[16];
} zbstore_query_t;

/* Keys into out (ZBUD_KEY_BYTES_MAX bytes). */
void zbstore_budget_key(char out[ZBUD_KEY_BYTES_MAX], const char *area, int64_t year);
void zbstore_line_key(char out[ZBUD_KEY_BYTES_MAX], const char *area, int64_t year,
                      const char *code);

/* Row reads: 0, ZE_NOT_FOUND, or the sticky error. Rows are copied out. */
int zbstore_get(ztxn_t *txn, int table, const char *key, void *row, size_t row_bytes);
void zbstore_put(ztxn_t *txn, int table, const char *key, const void *row, size_t row_bytes);

#endif
