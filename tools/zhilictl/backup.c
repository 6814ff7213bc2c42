/* zhilictl backup: a hot copy of a service's store (docs/operations.md, "Backup").
 *
 *   zhilictl backup SERVICE --out DEST       the store in $ZHILI_DATA/SERVICE/
 *   zhilictl backup --data DIR --out DEST    the store in DIR
 *
 * Runs beside the running service, on its host and as its user: the copy takes
 * a reader slot in the store's lock.mdb, so the service goes on writing while
 * the copy reads one consistent snapshot (compacted, fsynced). No broker is
 * involved. DEST is created when missing (its parent must exist) and must
 * otherwise be an empty directory. Prints one line: what was copied where, its
 * size and how long it took.
 * Exit status: 0 copied, 1 the backup failed (a sentence on stderr), 2 usage. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/store.h"
#include "tools/zhilictl/commands.h"

#define BACKUP_ERR_BYTES 512

static int usage(void)
{
    fprintf(stderr, "usage: zhilictl backup SERVICE --out DEST      (the store in "
                    "$ZHILI_DATA/SERVICE)\n"
                    "       zhilictl backup --data DIR --out DEST   (the store in DIR)\n"
                    "DEST is created, or must be an empty directory; docs/operations.md\n");
    return 2;
}

/* $ZHILI_DATA/SERVICE, as the services make it (common/service.c). */
static int backup_service_dir(const zcfg_common_t *cfg, const char *service, char dir[PATH_MAX])
{
    if (!zbus_name_valid(service)) {
        fprintf(stderr,
                "zhilictl: backup: SERVICE must be a service's name (a-z, 0-9, '_', '-'), "
                "got \"%s\"\n",
                service);
        return 2;
    }
    if (snprintf(dir, PATH_MAX, "%s/%s", cfg->data, service) >= PATH_MAX) {
        fprintf(stderr, "zhilictl: backup: $ZHILI_DATA/%s is longer than %d bytes\n", service,
                PATH_MAX - 1);
        return 2;
    }
    return 0;
}

int zctl_backup(const zcfg_common_t *cfg, int argc, char **argv)
{
    const char *service = NULL, *data = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v != NULL && strcmp(argv[i], "--data") == 0 && data == NULL) {
            data = v;
            i++;
        } else if (v != NULL && strcmp(argv[i], "--out") == 0 && out == NULL) {
            out = v;
            i++;
        } else if (argv[i][0] != '-' && service == NULL) {
            service = argv[i];
        } else {
            return usage();
        }
    }
    if (out == NULL || (service == NULL) == (data == NULL)) {
        return usage();
    }
    char dir[PATH_MAX];
    if (service != NULL) {
        int rc = backup_service_dir(cfg, service, dir);
        if (rc != 0) {
            return rc;
        }
        data = dir;
    }
    char err[BACKUP_ERR_BYTES];
    uint64_t bytes = 0;
    int64_t start_ms = zclock_mono_ms();
    int rc = zstore_backup_dir(data, out, &bytes, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "zhilictl: backup failed: %s\n", err);
        return 1;
    }
    printf("backup: %s copied to %s/data.mdb, %llu bytes in %lld ms\n", data, out,
           (unsigned long long)bytes, (long long)(zclock_mono_ms() - start_ms));
    fflush(stdout);
    return 0;
}
