/* zhili-budgets: open budgets (开放式预算) co-signed by every party, the line
 * reservations funds asks before it holds money (以收定支), and the monthly
 * execution report (docs/budgets.md). Wiring only. */
#include "common/config.h"
#include "common/log.h"
#include "common/service.h"
#include "services/budgets/handlers.h"
#include "services/budgets/store.h"

int main(void)
{
    zlog_init("budgets", zcfg_log_level());
    zsvc_spec_t spec = {
        .name = "budgets",
        .tables = zbstore_tables,
        .on_command = zbud_on_command,
        .is_query = zbud_is_query,
        .on_query = zbud_on_query,
        .subscribe = zbud_subscribe,
        .on_event = zbud_on_event,
        .on_tick = zbud_on_tick,
        .on_stats = zbud_on_stats,
    };
    return zsvc_main(&spec);
}
