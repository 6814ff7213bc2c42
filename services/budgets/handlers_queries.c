/* handlers_queries: owners' queries (质询) on budget lines (docs/budgets.md,
 * "Owners' queries"). A resident of the compound asks about a line of an
 * active budget; the property company or the owners' committee answers once,
 * within 7 days; the answers are public. A query still open at its deadline
 * is flagged overdue and published as budgets.query_overdue, once. */
#include <stdio.h>
#include <string.h>

#include "common/area.h"
#include "common/err.h"
#include "services/budgets/handlers_internal.h"
#include "services/budgets/store.h"

static zbstore_query_t query_row; /* large: off the stack; handlers run on one thread */

static Zhili__Budgets__OwnerQuery *query_msg(zsvc_ctx_t *ctx, const char *area,
                                             const zbstore_query_t *r)
{
    Zhili__Budgets__OwnerQuery *m = zsvc_alloc(ctx, sizeof *m);
    zhili__budgets__owner_query__init(m);
    m->id = zsvc_strdup(ctx, r->id);
    m->area = zsvc_strdup(ctx, area);
    m->year = r->year;
    m->line = zsvc_strdup(ctx, r->line);
    m->question = zsvc_strdup(ctx, r->question);
    m->raised_ms = r->raised_ms;
    m->deadline_ms = r->deadline_ms;
    m->state = r->state == 'a' ? "answered" : "open";
    m->overdue = r->overdue;
    m->answer = zsvc_strdup(ctx, r->answer);
    m->answered_by = zsvc_strdup(ctx, r->answered_by);
    m->answered_ms = r->answered_ms;
    return m;
}

static void due_key(uint8_t out[8 + ZBUD_KEY_BYTES_MAX], size_t *len, int64_t deadline_ms,
                    const char *key)
{
    zstore_be64_put(out, (uint64_t)deadline_ms);
    size_t n = strlen(key);
    memcpy(out + 8, key, n);
    *len = 8 + n;
}

static int raise_check(zsvc_ctx_t *ctx, const Zhili__Budgets__QueryRaise *q)
{
    const Zhili__V1__Actor *a = ctx->cmd->actor;
    const char *scope = a != NULL && a->area != NULL ? a->area : "";
    if (!zbh_role_is(ctx, "resident", NULL)) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "actor",
                         "质询: queries are raised by residents, "
                         "not role \"%s\"",
                         zbh_actor_role(ctx));
    }
    /* Not zbh_area_check: a resident's scope may be a building inside the compound. */
    int rc = 0;
    if (q->area == NULL || strlen(q->area) != ZBUD_AREA_BYTES || !zarea_valid(q->area)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "area", "area must be a compound's 15-digit code");
    }
    if (rc == 0 && (q->year < ZBUD_YEAR_MIN || q->year > ZBUD_YEAR_MAX)) {
        rc =
            zsvc_fail(ctx, ZE_INVALID, "year", "year must be %d..%d", ZBUD_YEAR_MIN, ZBUD_YEAR_MAX);
    }
    if (rc == 0 && (strlen(scope) < ZBUD_AREA_BYTES || strncmp(scope, q->area, ZBUD_AREA_BYTES))) {
        rc = zsvc_fail(ctx, ZE_FORBIDDEN, "area",
                       "only residents of compound %s query its "
                       "budget",
                       q->area);
    }
    if (rc == 0 && (q->question == NULL || q->question[0] == '\0' ||
                    strlen(q->question) > ZBUD_QUESTION_BYTES_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "question", "question must be 1..%d bytes",
                       ZBUD_QUESTION_BYTES_MAX);
    }
    if (rc == 0 && !zbud_code_valid(q->line)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "line", "line must be an item code like 2-01");
    }
    if (rc != 0) {
        return rc;
    }
    char key[ZBUD_KEY_BYTES_MAX];
    zbstore_line_key(key, q->area, q->year, q->line);
    zval_t v;
    if (ztxn_get(ctx->txn, zsvc_table(ctx, "lines"), key, strlen(key), &v) != 0) {
        return ztxn_err(ctx->txn) != 0
                   ? ztxn_err(ctx->txn)
                   : zsvc_fail(ctx, ZE_NOT_FOUND, "line", "no active budget line %s in %lld for %s",
                               q->line, (long long)q->year, q->area);
    }
    return 0;
}

int zbud_query_raise(zsvc_ctx_t *ctx, const Zhili__Budgets__QueryRaise *q)
{
    int rc = raise_check(ctx, q);
    if (rc != 0) {
        return rc;
    }
    int64_t n = 0;
    zbstore_get(ctx->txn, zsvc_table(ctx, "counters"), q->area, &n, sizeof n);
    n++;
    zbstore_put(ctx->txn, zsvc_table(ctx, "counters"), q->area, &n, sizeof n);
    zbstore_query_t *r = &query_row;
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "Q%06lld", (long long)(n % 1000000));
    r->year = q->year;
    snprintf(r->line, sizeof r->line, "%s", q->line);
    snprintf(r->question, sizeof r->question, "%s", q->question);
    const Zhili__V1__Actor *a = ctx->cmd->actor;
    snprintf(r->asker, sizeof r->asker, "%s", a != NULL && a->id != NULL ? a->id : "");
    r->raised_ms = ctx->now_ms;
    r->deadline_ms = ctx->now_ms + ZBUD_QUERY_DEADLINE_MS;
    r->state = 'o';
    char key[ZBUD_KEY_BYTES_MAX];
    snprintf(key, sizeof key, "%.15s:%.11s", q->area, r->id);
    zbstore_put(ctx->txn, zsvc_table(ctx, "queries"), key, r, sizeof *r);
    uint8_t dk[8 + ZBUD_KEY_BYTES_MAX];
    size_t dlen;
    due_key(dk, &dlen, r->deadline_ms, key);
    ztxn_put(ctx->txn, zsvc_table(ctx, "query_due"), dk, dlen, "", 0);
    Zhili__Budgets__OwnerQuery *m = query_msg(ctx, q->area, r);
    zsvc_emit(ctx, "query_raised", q->area, ZHILI__V1__EVENT__BODY_BUDGETS_QUERY, m);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_BUDGETS_QUERY;
    ctx->reply->budgets_query = m;
    return ztxn_err(ctx->txn);
}

int zbud_query_answer(zsvc_ctx_t *ctx, const Zhili__Budgets__QueryAnswer *q)
{
    int rc = 0;
    if (!zbh_role_is(ctx, "property", "committee")) {
        rc = zsvc_fail(ctx, ZE_FORBIDDEN, "actor",
                       "质询 are answered by the property company or "
                       "the owners' committee, not role \"%s\"",
                       zbh_actor_role(ctx));
    }
    if (rc == 0) {
        rc = zbh_area_check(ctx, q->area);
    }
    if (rc == 0 &&
        (q->answer == NULL || q->answer[0] == '\0' || strlen(q->answer) > ZBUD_ANSWER_BYTES_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "answer", "answer must be 1..%d bytes",
                       ZBUD_ANSWER_BYTES_MAX);
    }
    if (rc == 0 && (q->id == NULL || q->id[0] == '\0' || strlen(q->id) >= sizeof query_row.id)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "id", "id is a query's id, e.g. Q000001");
    }
    if (rc != 0) {
        return rc;
    }
    char key[ZBUD_KEY_BYTES_MAX];
    snprintf(key, sizeof key, "%.15s:%.11s", q->area, q->id);
    zbstore_query_t *r = &query_row;
    if (zbstore_get(ctx->txn, zsvc_table(ctx, "queries"), key, r, sizeof *r) != 0) {
        return ztxn_err(ctx->txn) != 0
                   ? ztxn_err(ctx->txn)
                   : zsvc_fail(ctx, ZE_NOT_FOUND, "id", "no query %s in %s", q->id, q->area);
    }
    if (r->state == 'a') {
        return zsvc_fail(ctx, ZE_CONFLICT, "id", "query %s was already answered by %s", q->id,
                         r->answered_by);
    }
    uint8_t dk[8 + ZBUD_KEY_BYTES_MAX];
    size_t dlen;
    due_key(dk, &dlen, r->deadline_ms, key);
    ztxn_del(ctx->txn, zsvc_table(ctx, "query_due"), dk, dlen);
    r->state = 'a';
    snprintf(r->answer, sizeof r->answer, "%s", q->answer);
    snprintf(r->answered_by, sizeof r->answered_by, "%s", zbh_actor_role(ctx));
    r->answered_ms = ctx->now_ms;
    zbstore_put(ctx->txn, zsvc_table(ctx, "queries"), key, r, sizeof *r);
    Zhili__Budgets__OwnerQuery *m = query_msg(ctx, q->area, r);
    zsvc_emit(ctx, "query_answered", q->area, ZHILI__V1__EVENT__BODY_BUDGETS_QUERY, m);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_BUDGETS_QUERY;
    ctx->reply->budgets_query = m;
    return ztxn_err(ctx->txn);
}

typedef struct {
    zsvc_ctx_t *ctx;
    const char *area;
    Zhili__Budgets__OwnerQueries *out;
} list_walk_t;

static int list_row(void *arg, zval_t key, zval_t val)
{
    list_walk_t *w = arg;
    (void)key;
    if (val.len != sizeof query_row) {
        return 0;
    }
    if (w->out->n_queries >= ZBUD_QUERIES_LIST_MAX) {
        return 1;
    }
    zbstore_query_t *r = zsvc_alloc(w->ctx, sizeof *r);
    memcpy(r, val.data, sizeof *r);
    w->out->queries[w->out->n_queries++] = query_msg(w->ctx, w->area, r);
    return 0;
}

int zbud_queries_list(zsvc_ctx_t *ctx, const Zhili__Budgets__QueriesList *q)
{
    int rc = zbh_resident_or_area_check(ctx, q->area);
    if (rc != 0) {
        return rc;
    }
    Zhili__Budgets__OwnerQueries *out = zsvc_alloc(ctx, sizeof *out);
    zhili__budgets__owner_queries__init(out);
    out->queries = zsvc_alloc(ctx, sizeof *out->queries * ZBUD_QUERIES_LIST_MAX);
    char prefix[ZBUD_KEY_BYTES_MAX];
    snprintf(prefix, sizeof prefix, "%s:", q->area);
    list_walk_t w = {ctx, q->area, out};
    if (ztxn_scan(ctx->txn, zsvc_table(ctx, "queries"), prefix, strlen(prefix), NULL, 0, &w,
                  list_row) < 0) {
        return ztxn_err(ctx->txn);
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_BUDGETS_QUERIES;
    ctx->reply->budgets_queries = out;
    return ztxn_err(ctx->txn);
}

typedef struct {
    int64_t now_ms;
    int count;
    char keys[ZBUD_TICK_OVERDUE_MAX][ZBUD_KEY_BYTES_MAX];
    int64_t deadlines[ZBUD_TICK_OVERDUE_MAX];
} due_walk_t;

static int due_row(void *arg, zval_t key, zval_t val)
{
    due_walk_t *w = arg;
    (void)val;
    if (key.len <= 8 || key.len - 8 >= ZBUD_KEY_BYTES_MAX) {
        return 0;
    }
    int64_t deadline = (int64_t)zstore_be64_get(key.data);
    if (deadline > w->now_ms || w->count >= ZBUD_TICK_OVERDUE_MAX) {
        return 1; /* in deadline order: nothing later is due */
    }
    memcpy(w->keys[w->count], (const uint8_t *)key.data + 8, key.len - 8);
    w->keys[w->count][key.len - 8] = '\0';
    w->deadlines[w->count++] = deadline;
    return 0;
}

int zbud_queries_tick(zsvc_ctx_t *ctx)
{
    static due_walk_t w; /* large: off the stack */
    w.now_ms = ctx->now_ms;
    w.count = 0;
    int t_due = zsvc_table(ctx, "query_due"), t_q = zsvc_table(ctx, "queries");
    if (ztxn_scan(ctx->txn, t_due, NULL, 0, NULL, 0, &w, due_row) < 0) {
        return ztxn_err(ctx->txn);
    }
    for (int i = 0; i < w.count; i++) {
        uint8_t dk[8 + ZBUD_KEY_BYTES_MAX];
        size_t dlen;
        due_key(dk, &dlen, w.deadlines[i], w.keys[i]);
        ztxn_del(ctx->txn, t_due, dk, dlen);
        zbstore_query_t *r = &query_row;
        if (zbstore_get(ctx->txn, t_q, w.keys[i], r, sizeof *r) != 0 || r->state != 'o') {
            continue;
        }
        r->overdue = true;
        zbstore_put(ctx->txn, t_q, w.keys[i], r, sizeof *r);
        char area[ZBUD_AREA_BYTES + 1];
        snprintf(area, sizeof area, "%.*s", ZBUD_AREA_BYTES, w.keys[i]);
        zsvc_emit(ctx, "query_overdue", area, ZHILI__V1__EVENT__BODY_BUDGETS_QUERY,
                  query_msg(ctx, area, r));
    }
    return ztxn_err(ctx->txn);
}
