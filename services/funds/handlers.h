/* handlers: the funds service's commands, queries, continuations and timer
 * (docs/funds.md). main.c fills a zfunds_svc_t from the environment and hands
 * these to the runtime. */
#ifndef ZHILI_FUNDS_HANDLERS_H
#define ZHILI_FUNDS_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/service.h"
#include "services/funds/store.h"

/* A line check that failed: the tick releases its hold (the failing
 * continuation itself cannot write: an error rolls its writes back). */
typedef struct {
    char account[ZFUNDS_ACCOUNT_BYTES + 1];
    uint64_t number;
    uint32_t attempt;
    char reason[200];
} zfunds_hint_t;

typedef struct {
    /* Settings (main.c, from the environment). */
    char budgets_service[65];
    int budget_timeout_ms;
    int64_t withdrawal_ttl_ms;
    int64_t ticket_ms;
    unsigned long long pwhash_ops;
    size_t pwhash_mem;
    /* Loop state: tables, refused line checks, the rent month checked. */
    zfstore_t t;
    bool resolved;
    zfunds_hint_t hints[ZFUNDS_HINTS_MAX];
    int hint_count;
    int64_t budgets_down_until_mono_ms; /* fail fast while budgets is known down */
    int rent_month_done;
} zfunds_svc_t;

int zfunds_on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
bool zfunds_is_query(const Zhili__V1__Command *cmd);
int zfunds_on_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
int zfunds_on_tick(zsvc_ctx_t *ctx);
int zfunds_on_stats(zsvc_ctx_t *ctx);

#endif
