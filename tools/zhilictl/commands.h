/* Subcommands of zhilictl that belong to one service live in a file of their
 * own (grid.c, hotline.c, …) so that each service's issue edits its file. */
#ifndef ZHILI_ZHILICTL_COMMANDS_H
#define ZHILI_ZHILICTL_COMMANDS_H

#include <stdbool.h>

#include "common/bus.h"
#include "common/config.h"

/* True once SIGINT or SIGTERM arrived: long-running subcommands stop. */
bool zctl_stopping(void);

/* argv[0] is the subcommand ("import", "export", "qr"); returns the exit status. */
int zctl_grid(zbus_client_t *client, const zcfg_common_t *cfg, int argc, char **argv);

/* argv[0] is "hotline": the hotline simulator (pushes petitions over HTTP). */
int zctl_hotline(zbus_client_t *client, const zcfg_common_t *cfg, int argc, char **argv);

/* argv[0] is "funds": verify ACCOUNT, statement …. */
int zctl_funds(zbus_client_t *client, const zcfg_common_t *cfg, int argc, char **argv);

/* argv[0] is "reporting": rebuild, export …. */
int zctl_reporting(zbus_client_t *client, const zcfg_common_t *cfg, int argc, char **argv);

/* argv[0] is "backup": a hot copy of a service's store into a new directory.
 * Local files only (no broker). */
int zctl_backup(const zcfg_common_t *cfg, int argc, char **argv);

#endif
