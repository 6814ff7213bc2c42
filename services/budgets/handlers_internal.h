/* handlers_internal: what the budgets handler files share (not a public API). */
#ifndef ZHILI_BUDGETS_HANDLERS_INTERNAL_H
#define ZHILI_BUDGETS_HANDLERS_INTERNAL_H

#include <stdbool.h>

#include "common/service.h"

/* The command's actor role ("" when none). */
const char *zbh_actor_role(const zsvc_ctx_t *ctx);
/* Is the actor's role a, or b (may be NULL)? */
bool zbh_role_is(const zsvc_ctx_t *ctx, const char *a, const char *b);
/* A compound's 15-digit code inside the actor's scope: 0, or the failed reply's code. */
int zbh_area_check(zsvc_ctx_t *ctx, const char *area);
/* The same and a year in range. */
int zbh_area_year_check(zsvc_ctx_t *ctx, const char *area, int64_t year);

/* The compound check for reads and for residents: a 15-digit compound code
 * inside the actor's scope, or a scope inside the compound (a resident's
 * building or household). 0, or the failed reply's code. */
int zbh_resident_or_area_check(zsvc_ctx_t *ctx, const char *area);

/* Table names shared by the handler files. */
#define T_BUDGETS "budgets"
#define T_LINES "lines"
#define T_RESV "reservations"
#define T_REVENUE "revenue"

/* The line contract (handlers_lines.c). */
int zbud_line_reserve(zsvc_ctx_t *ctx, const Zhili__Budgets__LineReserve *q);
/* Consume (true) or release (false) the reservation of withdrawal wid. */
int zbud_line_settle(zsvc_ctx_t *ctx, const char *wid, bool consume);
/* The spending of line_key's month (0..11) changed after that month's
 * execution was published: publish it again (handlers.c). */
void zbud_republish(zsvc_ctx_t *ctx, const char *line_key, int month_index);

/* Evaluations (handlers_evals.c). */
int zbud_eval_record(zsvc_ctx_t *ctx, const Zhili__Budgets__EvalRecord *q);
int zbud_score_get(zsvc_ctx_t *ctx, const Zhili__Budgets__ScoreGet *q);

/* The three lists, progress and meetings (handlers_lists.c). */
int zbud_standard_set(zsvc_ctx_t *ctx, const Zhili__Budgets__StandardSet *q);
int zbud_progress_add(zsvc_ctx_t *ctx, const Zhili__Budgets__ProgressAdd *q);
int zbud_meeting_record(zsvc_ctx_t *ctx, const Zhili__Budgets__MeetingRecord *q);
int zbud_lists_get(zsvc_ctx_t *ctx, const Zhili__Budgets__ListsGet *q);

/* Owners' queries (handlers_queries.c). */
int zbud_query_raise(zsvc_ctx_t *ctx, const Zhili__Budgets__QueryRaise *q);
int zbud_query_answer(zsvc_ctx_t *ctx, const Zhili__Budgets__QueryAnswer *q);
int zbud_queries_list(zsvc_ctx_t *ctx, const Zhili__Budgets__QueriesList *q);
/* Emit budgets.query_overdue for open queries past their deadline, once each. */
int zbud_queries_tick(zsvc_ctx_t *ctx);

#endif
