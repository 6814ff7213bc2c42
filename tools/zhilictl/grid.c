/* zhilictl import / export / qr: the grid service's org chart and QR codes. */
#include <stdio.h>

#include "tools/zhilictl/commands.h"

int zctl_grid(zbus_client_t *client, const zcfg_common_t *cfg, int argc, char **argv)
{
    (void)client;
    (void)cfg;
    (void)argc;
    fprintf(stderr, "zhilictl: %s needs the grid service, which is not built yet\n", argv[0]);
    return 2;
}
