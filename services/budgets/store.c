/* store: the budgets service's tables (see store.h). */
#include "services/budgets/store.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"

const char *const zbstore_tables[] = {
    "budgets", "lines",     "reservations", "items", "published", "amendments", "history",
    "queries", "query_due", "counters",     "evals", "lists",     "revenue",    NULL,
};

void zbstore_budget_key(char out[ZBUD_KEY_BYTES_MAX], const char *area, int64_t year)
{
    snprintf(out, ZBUD_KEY_BYTES_MAX, "%s:%lld", area, (long long)year);
}

void zbstore_line_key(char out[ZBUD_KEY_BYTES_MAX], const char *area, int64_t year,
                      const char *code)
{
    snprintf(out, ZBUD_KEY_BYTES_MAX, "%s:%lld:%s", area, (long long)year, code);
}

int zbstore_get(ztxn_t *txn, int table, const char *key, void *row, size_t row_bytes)
{
    zval_t v;
    int rc = ztxn_get(txn, table, key, strlen(key), &v);
    if (rc != 0) {
        return rc;
    }
    if (v.len != row_bytes) {
        ztxn_fail(txn, ZE_INTERNAL, "a budgets row has the wrong size");
        return ZE_INTERNAL;
    }
    memcpy(row, v.data, row_bytes);
    return 0;
}

void zbstore_put(ztxn_t *txn, int table, const char *key, const void *row, size_t row_bytes)
{
    ztxn_put(txn, table, key, strlen(key), row, row_bytes);
}
