/* zhili-bench-funds: how fast the funds service is on this machine
 * (docs/performance.md, "funds"). Not a test: it prints figures.
 *
 * It starts zhili-broker and zhili-funds itself (from the directory of its
 * own executable) on free loopback ports with a temporary ZHILI_DATA, and
 * measures:
 *   1. durable deposits/s through the broker: pipelined funds_deposit commands
 *      (window W in flight) into one account, each with its own receipt; every
 *      OK reply means the deposit's batch was committed with fsync and its
 *      entry chained into the journal;
 *   2. verifying a journal of V entries: the journal is written beforehand
 *      with the service's own store code (services/funds/store.c, the same
 *      records and keys the service writes), then verified twice: in this
 *      process (the scan and the hash chain alone) and through the running
 *      service (funds_verify, the answer zhilictl and the gateway get).
 * Output is "name value" lines, each section closed by a sentence.
 *
 * usage: zhili-bench-funds [--deposits N] [--window W] [--verify-entries V] [--quick] */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/common/bench_util.h"
#include "common/bus.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"
#include "services/funds/funds.h"
#include "services/funds/store.h"

#define ACCOUNT_LOAD "220503001001002"
#define ACCOUNT_BIG "220503001001099"
#define READY_TIMEOUT_MS 15000
#define CALL_TIMEOUT_MS 60000
#define LOAD_TIMEOUT_MS 300000
#define COMMAND_BYTES_MAX 512
#define GEN_COMMIT_EVERY 20000
#define MAP_MB 4096

typedef struct {
    long deposits, window, verify_entries;
} opts_t;

static zbench_stack_t *g_stack; /* the children, for the signal handler */

static void on_signal(int sig)
{
    (void)sig;
    zbench_stack_kill(g_stack);
    _exit(130);
}

/* Directories, ports and the environment the children inherit. */
static int stack_configure(zbench_stack_t *st)
{
    if (zbench_stack_configure(st, "zhili-bench-funds", "/tmp/zhili-bench-funds-XXXXXX", false,
                               CALL_TIMEOUT_MS) != 0) {
        return -1;
    }
    char map[32];
    snprintf(map, sizeof map, "%d", MAP_MB);
    setenv("ZHILI_MAP_MB_INITIAL", map, 1);
    return 0;
}

/* ---- commands ------------------------------------------------------------- */

static size_t command_pack(Zhili__V1__Command *cmd, const char *rid, uint8_t *buf)
{
    static Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "bench";
    actor.role = "admin";
    actor.area = "";
    cmd->request_id = (char *)rid;
    cmd->actor = &actor;
    ZASSERT(protobuf_c_message_get_packed_size(&cmd->base) <= COMMAND_BYTES_MAX);
    return protobuf_c_message_pack(&cmd->base, buf);
}

static int account_open(zbench_stack_t *st, const char *account)
{
    Zhili__Funds__Holder a = ZHILI__FUNDS__HOLDER__INIT, b = ZHILI__FUNDS__HOLDER__INIT;
    a.id = "holder-a";
    a.name = "业委会";
    b.id = "holder-b";
    b.name = "监察人";
    Zhili__Funds__AccountOpen o = ZHILI__FUNDS__ACCOUNT_OPEN__INIT;
    o.account = (char *)account;
    o.name = "bench";
    o.holder_a = &a;
    o.holder_b = &b;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_FUNDS_ACCOUNT_OPEN;
    cmd.funds_account_open = &o;
    Zhili__V1__Reply *r = NULL;
    if (zbench_call(st, "funds", &cmd, &r) != 0) {
        return -1;
    }
    zhili__v1__reply__free_unpacked(r, NULL);
    return 0;
}

/* ---- section 1: deposits ---------------------------------------------------- */

static int deposit_send(zbench_stack_t *st, long i)
{
    char rid[48], receipt[32];
    snprintf(rid, sizeof rid, "bench-dep-%ld", i);
    snprintf(receipt, sizeof receipt, "B-%08ld", i);
    Zhili__Funds__Deposit d = ZHILI__FUNDS__DEPOSIT__INIT;
    d.account = ACCOUNT_LOAD;
    d.category = (Zhili__Funds__Category)(1 + i % 5);
    d.amount = 100 + i % 1000;
    d.payer = "住户";
    d.receipt = receipt;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_FUNDS_DEPOSIT;
    cmd.funds_deposit = &d;
    uint8_t buf[COMMAND_BYTES_MAX];
    size_t len = command_pack(&cmd, rid, buf);
    return zbus_client_send(st->client, "funds", rid, zclock_wall_ms() + ZBUS_DEADLINE_MS_MAX, buf,
                            len);
}

static int section_deposits(zbench_stack_t *st, const opts_t *o)
{
    if (account_open(st, ACCOUNT_LOAD) != 0) {
        return -1;
    }
    int64_t cmds0 = zbench_stat(st, "funds", "commands_total", NULL),
            batches0 = zbench_stat(st, "funds", "batches_total", NULL);
    long sent = 0, replied = 0, ok = 0;
    char first_error[256] = "";
    int64_t start = zbench_now_us(), end_ms = zclock_mono_ms() + LOAD_TIMEOUT_MS;
    while (replied < o->deposits && zclock_mono_ms() < end_ms) {
        while (sent < o->deposits && sent - replied < o->window && deposit_send(st, sent) == 0) {
            sent++;
        }
        zmq_pollitem_t item = {zbus_client_socket(st->client), 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 100);
        zbench_replies_drain(st->client, &replied, &ok, first_error, sizeof first_error);
    }
    int64_t elapsed = zbench_now_us() - start;
    int64_t cmds = zbench_stat(st, "funds", "commands_total", NULL) - cmds0;
    int64_t batches = zbench_stat(st, "funds", "batches_total", NULL) - batches0;
    printf("deposits_sent %ld\n", sent);
    printf("deposits_ok %ld\n", ok);
    printf("deposits_elapsed_s %.3f\n", (double)elapsed / 1e6);
    printf("deposits_per_s %.0f\n", (double)ok * 1e6 / (double)(elapsed > 0 ? elapsed : 1));
    printf("deposits_per_batch %.1f\n", batches > 0 ? (double)cmds / (double)batches : 0.0);
    printf("# %ld durable deposits into one account, %ld in flight: each OK reply means its entry "
           "is chained into the journal and fsynced.%s%s\n",
           ok, o->window, first_error[0] ? " First error: " : "", first_error);
    return ok == o->deposits ? 0 : -1;
}

/* ---- section 2: a journal of V entries, verified -------------------------- */

/* The funds store under dir, opened as the service opens it. 0, or -1 with
 * err filled when zstore_open fails. */
static int store_open(const char *dir, zstore_t **store, zfstore_t *t, char *err, size_t cap)
{
    char path[128];
    snprintf(path, sizeof path, "%s/funds", dir);
    zstore_options_t opts = {
        .dir = path, .tables = zfstore_table_names, .map_bytes_initial = (size_t)MAP_MB << 20};
    return zstore_open(&opts, store, err, cap) != 0 || zfstore_resolve(t, *store) != 0 ? -1 : 0;
}

static int generate(const char *dir, long entries)
{
    zstore_t *store = NULL;
    char err[256] = "";
    zfstore_t t;
    if (store_open(dir, &store, &t, err, sizeof err) != 0) {
        fprintf(stderr, "zhili-bench-funds: %s\n", err);
        return -1;
    }
    zfunds_ledger_t l;
    memset(&l, 0, sizeof l);
    uint8_t *rec = malloc(ZFUNDS_ENTRY_BYTES_MAX);
    ztxn_t *txn = ztxn_begin(store, true);
    Zhili__Funds__Holder a = ZHILI__FUNDS__HOLDER__INIT, b = ZHILI__FUNDS__HOLDER__INIT;
    a.id = "holder-a";
    b.id = "holder-b";
    Zhili__Funds__AccountRecord ar = ZHILI__FUNDS__ACCOUNT_RECORD__INIT;
    ar.account = ACCOUNT_BIG;
    ar.name = "bench journal";
    ar.holder_a = &a;
    ar.holder_b = &b;
    uint8_t key[ZFUNDS_ACCOUNT_BYTES];
    zfstore_msg_put(txn, t.accounts, key, zfkey_account(key, ACCOUNT_BIG), &ar.base);
    int64_t ts = zclock_wall_ms() - entries;
    int rc = 0;
    for (long i = 0; i < entries && rc == 0; i++) {
        char receipt[32];
        snprintf(receipt, sizeof receipt, "G-%09ld", i);
        zfunds_entry_t e;
        memset(&e, 0, sizeof e);
        bool out = i % 10 == 9;
        e.kind = out ? ZFUNDS_KIND_WITHDRAWAL : ZFUNDS_KIND_DEPOSIT;
        e.category = out ? 0 : (uint8_t)(1 + i % 5);
        e.amount = out ? 500 : 100 + i % 1000;
        e.account = (zfunds_str_t){ACCOUNT_BIG, ZFUNDS_ACCOUNT_BYTES};
        e.payer = (zfunds_str_t){"住户", strlen("住户")};
        e.payer_kind = ZFUNDS_PARTY_HOUSEHOLD;
        if (out) {
            e.line = (zfunds_str_t){"2-01", 4};
            e.payee = (zfunds_str_t){"某物业公司", strlen("某物业公司")};
            e.purpose = (zfunds_str_t){"维修", strlen("维修")};
        } else {
            e.receipt = (zfunds_str_t){receipt, strlen(receipt)};
        }
        size_t len = 0;
        if (zfunds_ledger_append(&l, &e, ts + i) != 0 ||
            zfunds_entry_encode(&e, rec, ZFUNDS_ENTRY_BYTES_MAX, &len) != 0) {
            rc = -1;
            break;
        }
        zfunds_ledger_head(&l, &e);
        zfstore_journal_append(txn, &t, ACCOUNT_BIG, &e, rec, len);
        if ((i + 1) % GEN_COMMIT_EVERY == 0) {
            zfstore_ledger_put(txn, &t, ACCOUNT_BIG, &l);
            rc = ztxn_commit(&txn);
            txn = ztxn_begin(store, true);
        }
    }
    zfstore_ledger_put(txn, &t, ACCOUNT_BIG, &l);
    rc = rc != 0 ? rc : ztxn_commit(&txn);
    ztxn_abort(&txn);
    free(rec);
    zstore_destroy(&store);
    return rc;
}

static int verify_row(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
    return zfunds_verifier_feed(arg, seq, rec, len) ? 0 : 1;
}

/* The scan and the chain alone, as the service runs them. */
static int verify_inproc(const char *dir, long entries)
{
    zstore_t *store = NULL;
    char err[256];
    zfstore_t t;
    if (store_open(dir, &store, &t, err, sizeof err) != 0) {
        return -1;
    }
    int64_t start = zbench_now_us();
    ztxn_t *txn = ztxn_begin(store, false);
    zfunds_ledger_t l;
    zfunds_verifier_t v;
    zfunds_verifier_init(&v);
    int rc = zfstore_ledger_get(txn, &t, ACCOUNT_BIG, &l);
    zfstore_journal_scan(txn, &t, ACCOUNT_BIG, 1, &v, verify_row);
    zfunds_verifier_finish(&v, &l, 0);
    ztxn_abort(&txn);
    int64_t elapsed = zbench_now_us() - start;
    zstore_destroy(&store);
    printf("verify_inproc_entries %llu\n", (unsigned long long)v.checked);
    printf("verify_inproc_s %.3f\n", (double)elapsed / 1e6);
    return rc == 0 && !v.bad && (long)v.checked == entries ? 0 : -1;
}

static int verify_service(zbench_stack_t *st, long entries)
{
    Zhili__Funds__Verify v = ZHILI__FUNDS__VERIFY__INIT;
    v.account = ACCOUNT_BIG;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_FUNDS_VERIFY;
    cmd.funds_verify = &v;
    Zhili__V1__Reply *r = NULL;
    int64_t start = zbench_now_us();
    if (zbench_call(st, "funds", &cmd, &r) != 0) {
        return -1;
    }
    int64_t elapsed = zbench_now_us() - start;
    bool good = r->funds_verify->ok && (long)r->funds_verify->entries == entries;
    printf("verify_service_entries %llu\n", (unsigned long long)r->funds_verify->entries);
    printf("verify_service_ok %d\n", r->funds_verify->ok);
    printf("verify_service_s %.3f\n", (double)elapsed / 1e6);
    zhili__v1__reply__free_unpacked(r, NULL);
    printf("# a journal of %ld entries: hash chain, balances and holds recomputed; _inproc is "
           "the scan alone, _service the funds_verify query through the broker.\n",
           entries);
    return good ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: zhili-bench-funds [--deposits N] [--window W] [--verify-entries V] "
                    "[--quick]\n");
    exit(2);
}

static void opts_parse(opts_t *o, int argc, char **argv)
{
    *o = (opts_t){200000, 2000, 1000000};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            o->deposits = 20000;
            o->verify_entries = 100000;
            continue;
        }
        if (i + 1 >= argc) {
            usage();
        }
        char *end = NULL;
        long v = strtol(argv[i + 1], &end, 10);
        if (end == argv[i + 1] || *end != '\0' || v < 0 || v > 100000000) {
            usage();
        }
        if (strcmp(argv[i], "--deposits") == 0) {
            o->deposits = v;
        } else if (strcmp(argv[i], "--window") == 0 && v > 0) {
            o->window = v;
        } else if (strcmp(argv[i], "--verify-entries") == 0) {
            o->verify_entries = v;
        } else {
            usage();
        }
        i++;
    }
}

int main(int argc, char **argv)
{
    opts_t o;
    opts_parse(&o, argc, argv);
    static zbench_stack_t st;
    g_stack = &st;
    zbench_signals_set(on_signal);
    if (stack_configure(&st) != 0) {
        fprintf(stderr, "zhili-bench-funds: cannot prepare a temporary directory and ports\n");
        return 1;
    }
    printf("bench funds deposits=%ld window=%ld verify_entries=%ld nproc=%ld\n", o.deposits,
           o.window, o.verify_entries, sysconf(_SC_NPROCESSORS_ONLN));
    int rc = 0;
    if (o.verify_entries > 0) {
        int64_t start = zbench_now_us();
        rc = generate(st.dir, o.verify_entries);
        printf("journal_written_s %.3f\n", (double)(zbench_now_us() - start) / 1e6);
        rc = rc != 0 ? rc : verify_inproc(st.dir, o.verify_entries);
    }
    st.zctx = zmq_ctx_new();
    if (rc == 0 && (zbench_child_spawn(&st, "zhili-broker", NULL, NULL, 0) < 0 ||
                    zbench_child_spawn(&st, "zhili-funds", NULL, NULL, 0) < 0)) {
        rc = -1;
    }
    if (rc == 0) {
        st.client = zbus_client_new(st.zctx, st.broker);
        rc = st.client != NULL ? zbench_service_wait(&st, "funds", READY_TIMEOUT_MS) : -1;
    }
    if (rc == 0 && o.verify_entries > 0) {
        rc = verify_service(&st, o.verify_entries);
    }
    if (rc == 0 && o.deposits > 0) {
        rc = section_deposits(&st, &o);
    }
    double load[3];
    if (getloadavg(load, 3) == 3) {
        printf("loadavg %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    }
    zbench_stack_stop(&st, ZBENCH_STOP_TIMEOUT_MS);
    return rc == 0 ? 0 : 1;
}
