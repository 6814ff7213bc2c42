/* zhili-petitions: 12345 hotline and QR petitions, their closed loop and
 * deadlines (docs/petitions.md). Configuration and wiring only; the rules
 * live in petitions.c, the tables in store.c, the handlers in handlers.c
 * and queries.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/err.h"
#include "common/service.h"
#include "services/petitions/handlers.h"

/* The text of a rules setting: inline, or "@/path/to/file". */
static const char *rules_text(const char *name, char *buf, size_t cap)
{
    return zcfg_text(name, "", buf, cap);
}

static void load_config(zph_config_t *cfg)
{
    static char text[ZPET_CONFIG_FILE_BYTES_MAX + 1];
    char err[256];
    zpet_deadlines_default(&cfg->deadlines);
    const char *deadlines = rules_text("ZHILI_PETITIONS_DEADLINES", text, sizeof text);
    if (zpet_deadlines_parse(&cfg->deadlines, deadlines, err, sizeof err) != 0) {
        zcfg_fail("ZHILI_PETITIONS_DEADLINES", "%s", err);
    }
    zpet_routing_default(&cfg->routing);
    const char *routing = rules_text("ZHILI_PETITIONS_ROUTING", text, sizeof text);
    if (zpet_routing_parse(&cfg->routing, routing, err, sizeof err) != 0) {
        zcfg_fail("ZHILI_PETITIONS_ROUTING", "%s", err);
    }
    const char *district = zcfg_str("ZHILI_PETITIONS_DISTRICT", "");
    if (district[0] != '\0' && !zarea_valid(district)) {
        zcfg_fail("ZHILI_PETITIONS_DISTRICT",
                  "expected an area code (6 digits for a district), "
                  "got \"%s\"",
                  district);
    }
    snprintf(cfg->district, sizeof cfg->district, "%s", district);
}

int main(void)
{
    static zph_config_t cfg;
    load_config(&cfg);
    zsvc_spec_t spec = {
        .name = "petitions",
        .tables = zps_tables,
        .subscribe = zph_subscribe,
        .user = &cfg,
        .on_command = zph_on_command,
        .is_query = zph_is_query,
        .on_query = zph_on_query,
        .on_event = zph_on_event,
        .on_tick = zph_on_tick,
        .on_stats = zph_on_stats,
    };
    return zsvc_main(&spec);
}
