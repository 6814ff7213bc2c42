/* handlers: the budgets service's commands, queries, timer and stats over its
 * store (docs/budgets.md). The runtime calls them (common/service.h). */
#ifndef ZHILI_BUDGETS_HANDLERS_H
#define ZHILI_BUDGETS_HANDLERS_H

#include "common/service.h"

int zbud_on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
bool zbud_is_query(const Zhili__V1__Command *cmd);
int zbud_on_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
int zbud_on_tick(zsvc_ctx_t *ctx);

/* Topics consumed: funds.reversed (a reversed posted withdrawal is no longer spent). */
extern const char *const zbud_subscribe[];
int zbud_on_event(zsvc_ctx_t *ctx, const Zhili__V1__Event *ev);
int zbud_on_stats(zsvc_ctx_t *ctx);

#endif
