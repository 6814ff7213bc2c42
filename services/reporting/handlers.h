/* handlers: the reporting service's consumed events, rebuild command, timer
 * (alerts, purge of old generations) and figures (handlers.c), and its
 * queries (queries.c), over a store transaction (common/service.h). */
#ifndef ZHILI_REPORTING_HANDLERS_H
#define ZHILI_REPORTING_HANDLERS_H

#include <stdbool.h>

#include "common/service.h"
#include "services/reporting/reporting.h"
#include "services/reporting/store.h"

/* Configuration, parsed once by main.c (docs/reporting.md, "Settings"). */
typedef struct {
    zrep_alert_rules_t alerts; /* ZHILI_REPORTING_ALERTS */
} zrh_config_t;

/* Topic prefixes consumed: every source of the one table. */
extern const char *const zrh_subscribe[];

/* The zsvc_spec_t hooks; ctx->user is the zrh_config_t. */
int zrh_on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
bool zrh_is_query(const Zhili__V1__Command *cmd);
int zrh_on_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
int zrh_on_event(zsvc_ctx_t *ctx, const Zhili__V1__Event *ev);
int zrh_on_tick(zsvc_ctx_t *ctx);
int zrh_on_stats(zsvc_ctx_t *ctx);

/* ---- shared by handlers.c and queries.c --------------------------------- */

void zrh_tables(zsvc_ctx_t *ctx, zrs_t *t);

/* The caller's scope ("" everywhere). */
const char *zrh_scope(const Zhili__V1__Command *cmd);

/* Is a rebuild still catching up (alerts wait for it)? */
bool zrh_rebuilding(ztxn_t *txn);

/* Queries (queries.c). */
int zrh_report_get(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
int zrh_cells_get(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
int zrh_redblack_get(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
int zrh_alerts_list(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);

/* A Figure message in the arena. */
Zhili__Reporting__Figure *zrh_figure_msg(zsvc_ctx_t *ctx, const zrep_figure_t *f);

#endif
