/* zhilictl reporting …: rebuild the one table, export it. */
#include <stdio.h>

#include "tools/zhilictl/commands.h"

int zctl_reporting(zbus_client_t *client, const zcfg_common_t *cfg, int argc, char **argv)
{
    (void)client;
    (void)cfg;
    (void)argc;
    fprintf(stderr, "zhilictl: %s needs the reporting service, which is not built yet\n", argv[0]);
    return 2;
}
