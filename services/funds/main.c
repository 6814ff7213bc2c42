/* zhili-funds: compound trust accounts (幸福信托 共有资金独立账户) with dual
 * credentials, a hash-chained double-entry journal, property fees and public
 * assets (docs/funds.md). Wiring only: settings from the environment, then
 * the runtime with the handlers. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "common/service.h"
#include "services/funds/handlers.h"

/* Argon2id cost (ZHILI_FUNDS_PWHASH). "interactive" is libsodium's
 * OPSLIMIT/MEMLIMIT_INTERACTIVE (64 MiB, tens of ms here); "moderate" is
 * 256 MiB and about 0.5 s; "test-fast" is the minimum and exists for tests
 * only: it makes stored secrets cheap to guess. */
static void pwhash_load(zfunds_svc_t *s)
{
    const char *mode = zcfg_str("ZHILI_FUNDS_PWHASH", "interactive");
    if (strcmp(mode, "interactive") == 0) {
        s->pwhash_ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        s->pwhash_mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    } else if (strcmp(mode, "moderate") == 0) {
        s->pwhash_ops = crypto_pwhash_OPSLIMIT_MODERATE;
        s->pwhash_mem = crypto_pwhash_MEMLIMIT_MODERATE;
    } else if (strcmp(mode, "test-fast") == 0) {
        s->pwhash_ops = crypto_pwhash_OPSLIMIT_MIN;
        s->pwhash_mem = crypto_pwhash_MEMLIMIT_MIN;
        zlog(ZLOG_WARN, "pwhash_test_fast", "msg",
             "TEST ONLY: ZHILI_FUNDS_PWHASH=test-fast stores secrets with the weakest "
             "Argon2id cost; never run a real account like this",
             NULL);
    } else {
        zcfg_fail("ZHILI_FUNDS_PWHASH", "expected interactive, moderate or test-fast, got \"%s\"",
                  mode);
    }
}

int main(void)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "zhili-funds: libsodium could not be initialised\n");
        return 1;
    }
    static zfunds_svc_t svc;
    zlog_init("funds", zcfg_log_level());
    pwhash_load(&svc);
    const char *budgets = zcfg_str("ZHILI_FUNDS_BUDGETS_SERVICE", "budgets");
    if (strlen(budgets) >= sizeof svc.budgets_service) {
        zcfg_fail("ZHILI_FUNDS_BUDGETS_SERVICE", "a service name of at most 64 characters");
    }
    snprintf(svc.budgets_service, sizeof svc.budgets_service, "%s", budgets);
    svc.budget_timeout_ms =
        (int)zcfg_int("ZHILI_FUNDS_BUDGET_TIMEOUT_MS", ZFUNDS_BUDGET_TIMEOUT_MS_DEFAULT,
                      ZFUNDS_BUDGET_TIMEOUT_MS_MIN, ZFUNDS_BUDGET_TIMEOUT_MS_MAX);
    svc.withdrawal_ttl_ms =
        zcfg_int("ZHILI_FUNDS_WITHDRAWAL_TTL_MS", ZFUNDS_WITHDRAWAL_TTL_MS_DEFAULT,
                 ZFUNDS_WITHDRAWAL_TTL_MS_MIN, ZFUNDS_WITHDRAWAL_TTL_MS_MAX);
    svc.ticket_ms = zcfg_int("ZHILI_FUNDS_TICKET_MS", ZFUNDS_TICKET_MS_DEFAULT,
                             ZFUNDS_TICKET_MS_MIN, ZFUNDS_TICKET_MS_MAX);
    zsvc_spec_t spec = {
        .name = "funds",
        .tables = zfstore_table_names,
        .user = &svc,
        .on_command = zfunds_on_command,
        .is_query = zfunds_is_query,
        .on_query = zfunds_on_query,
        .on_tick = zfunds_on_tick,
        .on_stats = zfunds_on_stats,
    };
    return zsvc_main(&spec);
}
