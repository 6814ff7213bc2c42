/* zhili-reporting: the one table (一张表), a projection of every other
 * service's events (docs/reporting.md). Configuration and wiring only; the
 * rules live in reporting.c, the tables in store.c, the handlers in
 * handlers.c and queries.c. */
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "common/service.h"
#include "services/reporting/handlers.h"

/* The text of the alert rules: inline, "@/path/to/file", or "off". */
static const char *rules_text(const char *name, char *buf, size_t cap)
{
    const char *value = zcfg_text(name, ZREP_ALERTS_DEFAULT, buf, cap);
    return strcmp(value, "off") == 0 ? "" : value;
}

int main(void)
{
    static zrh_config_t cfg;
    static char text[ZREP_CONFIG_FILE_BYTES_MAX + 1];
    char err[256];
    const char *rules = rules_text("ZHILI_REPORTING_ALERTS", text, sizeof text);
    if (zrep_alert_rules_parse(rules, &cfg.alerts, err, sizeof err) != 0) {
        zcfg_fail("ZHILI_REPORTING_ALERTS", "%s", err);
    }
    zsvc_spec_t spec = {
        .name = "reporting",
        .tables = zrs_tables,
        .subscribe = zrh_subscribe,
        .user = &cfg,
        .on_command = zrh_on_command,
        .is_query = zrh_is_query,
        .on_query = zrh_on_query,
        .on_event = zrh_on_event,
        .on_tick = zrh_on_tick,
        .on_stats = zrh_on_stats,
    };
    return zsvc_main(&spec);
}
