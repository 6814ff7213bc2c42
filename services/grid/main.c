/* zhili-grid: the five-level grid, police-grid fusion, visits, disputes, key
 * persons and QR codes (docs/grid.md). Wiring only: the key, the store's
 * key check, the runtime. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/err.h"
#include "common/service.h"
#include "common/store.h"
#include "services/grid/handlers.h"

#define KEY_CHECK_NAME "grid_key_check"

/* The master key from ZHILI_GRID_KEY or ZHILI_GRID_KEY_FILE; the process
 * refuses to start without exactly one of them. */
static void key_load(uint8_t master[ZGRID_KEY_BYTES])
{
    const char *text = zcfg_str("ZHILI_GRID_KEY", "");
    const char *file = zcfg_str("ZHILI_GRID_KEY_FILE", "");
    if (text[0] != '\0' && file[0] != '\0') {
        zcfg_fail("ZHILI_GRID_KEY", "set ZHILI_GRID_KEY or ZHILI_GRID_KEY_FILE, not both");
    }
    if (text[0] == '\0' && file[0] == '\0') {
        zcfg_fail("ZHILI_GRID_KEY",
                  "the grid service needs a 32-byte key to encrypt key persons' personal fields: "
                  "set ZHILI_GRID_KEY (64 hex characters or base64) or ZHILI_GRID_KEY_FILE (a "
                  "file holding it); make one with: head -c 32 /dev/urandom | base64");
    }
    if (text[0] != '\0') {
        if (zgrid_key_parse(text, strlen(text), false, master) != 0) {
            zcfg_fail("ZHILI_GRID_KEY", "expected 64 hex characters or the base64 of 32 bytes");
        }
        unsetenv("ZHILI_GRID_KEY"); /* no child process or dump inherits it */
        return;
    }
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        zcfg_fail("ZHILI_GRID_KEY_FILE", "cannot open %s: %s", file, strerror(errno));
    }
    char buf[ZGRID_KEY_TEXT_BYTES_MAX + 1];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    int rc = len > ZGRID_KEY_TEXT_BYTES_MAX ? -1 : zgrid_key_parse(buf, len, true, master);
    sodium_memzero(buf, sizeof buf);
    if (rc != 0) {
        zcfg_fail("ZHILI_GRID_KEY_FILE",
                  "%s must hold 64 hex characters, the base64 of 32 "
                  "bytes, or exactly 32 bytes",
                  file);
    }
}

/* The store remembers which key wrote it: a different key would make every
 * sealed field unreadable and every QR code change, so starting with one is
 * refused. */
static void key_check(const zgrid_keys_t *keys)
{
    zcfg_common_t cfg;
    zcfg_common_load(&cfg);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", cfg.data, zcfg_str("ZHILI_SERVICE_NAME", "grid"));
    zstore_options_t opts = {.dir = dir, .tables = zgrid_tables};
    zstore_t *store = NULL;
    char err[256];
    if (zstore_open(&opts, &store, err, sizeof err) != 0) {
        zcfg_fail("ZHILI_DATA", "cannot open the grid store %s: %s", dir, err);
    }
    ztxn_t *txn = ztxn_begin(store, true);
    ZASSERT(txn != NULL);
    zval_t v;
    bool differs = false;
    if (ztxn_get(txn, ZSTORE_META, KEY_CHECK_NAME, strlen(KEY_CHECK_NAME), &v) == 0) {
        differs = v.len != sizeof keys->check ||
                  sodium_memcmp(v.data, keys->check, sizeof keys->check) != 0;
    } else {
        ztxn_put(txn, ZSTORE_META, KEY_CHECK_NAME, strlen(KEY_CHECK_NAME), keys->check,
                 sizeof keys->check);
    }
    int rc = differs ? (ztxn_abort(&txn), 0) : ztxn_commit(&txn);
    zstore_destroy(&store);
    if (differs) {
        zcfg_fail("ZHILI_GRID_KEY",
                  "this is not the key the store %s was written with: key "
                  "persons' personal fields and the QR codes depend on it",
                  dir);
    }
    if (rc != 0) {
        zcfg_fail("ZHILI_DATA", "cannot write the grid store %s (%s)", dir, zerr_name(rc));
    }
}

int main(void)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "zhili-grid: libsodium could not be initialised\n");
        return 1;
    }
    static zgrid_service_t svc;
    uint8_t master[ZGRID_KEY_BYTES];
    key_load(master);
    zgrid_keys_derive(master, &svc.keys);
    sodium_memzero(master, sizeof master);
    key_check(&svc.keys);
    zsvc_spec_t spec = {
        .name = "grid",
        .tables = zgrid_tables,
        .user = &svc,
        .on_command = zgrid_on_command,
        .is_query = zgrid_is_query,
        .on_query = zgrid_on_query,
        .on_tick = zgrid_on_tick,
    };
    int rc = zsvc_main(&spec);
    sodium_memzero(&svc, sizeof svc);
    return rc;
}
