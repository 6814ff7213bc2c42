/* zhilictl hotline: a 12345 hotline simulator pushing petitions over HTTP. */
#include <stdio.h>

#include "tools/zhilictl/commands.h"

int zctl_hotline(zbus_client_t *client, const zcfg_common_t *cfg, int argc, char **argv)
{
    (void)client;
    (void)cfg;
    (void)argc;
    fprintf(stderr, "zhilictl: %s needs the petitions service, which is not built yet\n", argv[0]);
    return 2;
}
