/* zhili-bench-reporting: the one table on this machine (docs/performance.md,
 * "reporting"). Not a test: it prints figures.
 *
 * It starts zhili-broker, zhili-reporting and itself as a fake producer
 * registered as "petitions" (`--producer`: a test-only service that emits
 * realistic petitions.* events fast, each petition's whole loop in one
 * command) on free loopback ports with a temporary ZHILI_DATA, then:
 *   1. loads N petitions spread over M months of a district (6 streets,
 *      48 communities, 480 grids, 4800 buildings) through the real
 *      consumption path (PUB/SUB, replay, exactly-once cursors, group
 *      commit), and reports events/s until reporting has caught up;
 *   2. times the queries a command center makes: the district's table by
 *      street and by community for a month, by street for a year, by grid
 *      (480 rows), and a drill-down page — each through the broker, as the
 *      gateway sends them — and the gateway's JSON and CSV rendering of the
 *      answer in this process (services/gateway/report_csv.c);
 *   3. rebuilds (report_rebuild) and reports the replay's events/s until the
 *      table is back, and checks that the district's table is byte-identical.
 * Output is "name value" lines, each section closed by a sentence.
 *
 * usage: zhili-bench-reporting [--petitions N] [--months M] [--queries Q] [--quick] */
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/common/bench_util.h"
#include "common/bus.h"
#include "common/caltime.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/service.h"
#include "services/gateway/report_csv.h"

#define READY_TIMEOUT_MS 15000
#define CALL_TIMEOUT_MS 60000
#define CATCH_UP_TIMEOUT_MS (3600 * 1000)
#define PER_COMMAND 100 /* petitions one producer command emits */
#define PER_COMMAND_MAX 1000
#define WINDOW 8 /* producer commands in flight */
#define COMMAND_BYTES_MAX 512
#define QUERIES_MAX 100000
#define START_YEAR 2025

typedef struct {
    long petitions, months, queries;
} opts_t;

static zbench_stack_t *g_stack; /* the children, for the signal handler */

/* ---- the fake producer ("petitions") -------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static bool chance(uint64_t *s, int percent)
{
    return (int)(rnd(s) % 100) < percent;
}

static void emit(zsvc_ctx_t *ctx, const char *type, const char *area, Zhili__Petitions__Change *c,
                 Zhili__Petitions__State state)
{
    c->from_state = c->state;
    c->state = state;
    zsvc_emit(ctx, type, area, ZHILI__V1__EVENT__BODY_PETITION_CHANGE, c);
}

/* One petition's loop, as zhili-petitions would emit it (all at one time:
 * the period is the producer's clock). */
static void petition(zsvc_ctx_t *ctx, uint64_t n, uint64_t *s)
{
    char area[32], id[16];
    snprintf(area, sizeof area, "220503%03d%03d%03d%03d", (int)(rnd(s) % 6) + 1,
             (int)(rnd(s) % 8) + 1, (int)(rnd(s) % 10) + 1, (int)(rnd(s) % 10) + 1);
    snprintf(id, sizeof id, "P%010llu", (unsigned long long)n);
    Zhili__Petitions__Change c = ZHILI__PETITIONS__CHANGE__INIT;
    c.id = id;
    c.category = (Zhili__Petitions__Category)(rnd(s) % 8 + 1);
    c.urgency = ZHILI__PETITIONS__URGENCY__URGENCY_NORMAL;
    c.channel = ZHILI__PETITIONS__CHANNEL__CHANNEL_HOTLINE;
    c.assigned_to = area;
    emit(ctx, "received", area, &c, ZHILI__PETITIONS__STATE__STATE_RECEIVED);
    emit(ctx, "assigned", area, &c, ZHILI__PETITIONS__STATE__STATE_ASSIGNED);
    if (chance(s, 5)) {
        emit(ctx, "overdue_sign", area, &c, c.state);
        return; /* never signed */
    }
    c.on_time = chance(s, 90);
    emit(ctx, "signed", area, &c, ZHILI__PETITIONS__STATE__STATE_SIGNED);
    if (chance(s, 8)) {
        emit(ctx, "overdue_reply", area, &c, c.state);
    }
    if (!chance(s, 95)) {
        return;
    }
    c.on_time = chance(s, 85);
    emit(ctx, "replied", area, &c, ZHILI__PETITIONS__STATE__STATE_REPLIED);
    if (!chance(s, 75)) {
        return;
    }
    c.on_time = false;
    c.solved = chance(s, 80);
    c.satisfaction = chance(s, 85) ? ZHILI__PETITIONS__SATISFACTION__SATISFACTION_SATISFIED
                                   : ZHILI__PETITIONS__SATISFACTION__SATISFACTION_DISSATISFIED;
    emit(ctx, "evaluated", area, &c, ZHILI__PETITIONS__STATE__STATE_EVALUATED);
    emit(ctx, "archived", area, &c, ZHILI__PETITIONS__STATE__STATE_ARCHIVED);
}

static int producer_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    if (cmd->body_case != ZHILI__V1__COMMAND__BODY_COUNTER_ADD || cmd->counter_add->amount < 1 ||
        cmd->counter_add->amount > PER_COMMAND_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "body", "counter_add {amount: 1..%d} petitions",
                         PER_COMMAND_MAX);
    }
    uint64_t n = 0;
    zval_t v;
    if (ztxn_get(ctx->txn, ZSTORE_META, "bench.n", 7, &v) == 0 && v.len == 8) {
        n = zstore_be64_get(v.data);
    }
    uint64_t s = n * 0x9E3779B97F4A7C15ULL + 1;
    for (int64_t i = 0; i < cmd->counter_add->amount; i++) {
        petition(ctx, ++n, &s);
    }
    uint8_t out[8];
    zstore_be64_put(out, n);
    ztxn_put(ctx->txn, ZSTORE_META, "bench.n", 7, out, sizeof out);
    return ztxn_err(ctx->txn);
}

static int producer_main(void)
{
    zsvc_spec_t spec = {.name = "petitions", .on_command = producer_command};
    return zsvc_main(&spec);
}

/* ---- the stack ---------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    zbench_stack_kill(g_stack);
    _exit(130);
}

static int stack_configure(zbench_stack_t *st)
{
    if (zbench_stack_configure(st, "zhili-bench-reporting", "/tmp/zhili-bench-reporting-XXXXXX",
                               false, CALL_TIMEOUT_MS) != 0) {
        return -1;
    }
    setenv("ZHILI_MAP_MB_INITIAL", "1024", 1);
    return 0;
}

/* This same binary as the fake producer, its clock at the first month. */
static int producer_spawn(zbench_stack_t *st)
{
    char over[2][ZBENCH_ENV_VAR_BYTES_MAX];
    snprintf(over[0], sizeof over[0], "ZHILI_FAKE_CLOCK=1");
    snprintf(over[1], sizeof over[1], "ZHILI_FAKE_CLOCK_START_MS=%lld",
             (long long)ztime_month_start(START_YEAR, 1));
    return zbench_child_spawn(st, st->self, "--producer", over, 2) < 0 ? -1 : 0;
}

static int64_t du_bytes;

static int on_du(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F) {
        du_bytes += (int64_t)sb->st_blocks * 512;
    }
    return 0;
}

/* ---- calls ---------------------------------------------------------------- */

static int clock_set(zbench_stack_t *st, int64_t ms)
{
    Zhili__V1__ClockSet cs = ZHILI__V1__CLOCK_SET__INIT;
    cs.now_ms = ms;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_CLOCK_SET;
    cmd.clock_set = &cs;
    Zhili__V1__Reply *r = NULL;
    int rc = zbench_call(st, "petitions", &cmd, &r);
    if (rc == 0) {
        zhili__v1__reply__free_unpacked(r, NULL);
    }
    return rc;
}

static int generate_send(zbench_stack_t *st, long i, int amount)
{
    Zhili__Test__CounterAdd add = ZHILI__TEST__COUNTER_ADD__INIT;
    add.name = "bench";
    add.amount = amount;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    char rid[48];
    snprintf(rid, sizeof rid, "bench-gen-%ld", i);
    cmd.request_id = rid;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_COUNTER_ADD;
    cmd.counter_add = &add;
    uint8_t buf[COMMAND_BYTES_MAX];
    size_t len = protobuf_c_message_pack(&cmd.base, buf);
    return zbus_client_send(st->client, "petitions", rid, zclock_wall_ms() + 60000, buf, len);
}

/* `count` commands of `amount` petitions each, WINDOW in flight. */
static int generate(zbench_stack_t *st, long *next_id, long count, int amount)
{
    long sent = 0, replied = 0;
    while (replied < count) {
        while (sent < count && sent - replied < WINDOW &&
               generate_send(st, (*next_id)++, amount) == 0) {
            sent++;
        }
        zmq_pollitem_t item = {zbus_client_socket(st->client), 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 1000);
        Zhili__V1__Reply *r = NULL;
        int rc;
        while ((rc = zbus_client_recv(st->client, &r)) == 0) {
            bool ok = r->status == ZHILI__V1__STATUS__STATUS_OK;
            if (!ok) {
                fprintf(stderr, "zhili-bench-reporting: producer: %s\n", r->message);
            }
            zhili__v1__reply__free_unpacked(r, NULL);
            if (!ok) {
                return -1;
            }
            replied++;
        }
    }
    return 0;
}

/* Until reporting's cursor reaches the producer's last seq; -1 on timeout. */
static int catch_up(zbench_stack_t *st, int64_t last)
{
    int64_t end = zclock_mono_ms() + CATCH_UP_TIMEOUT_MS;
    while (zclock_mono_ms() < end) {
        if (zbench_stat(st, "reporting", "cursor", "source=\"petitions\"") >= last &&
            zbench_stat(st, "reporting", "reporting_rebuilding", "") == 0) {
            return 0;
        }
        struct timespec pause = {0, 100 * 1000000L};
        nanosleep(&pause, NULL);
    }
    return -1;
}

/* ---- phases ----------------------------------------------------------------- */

static int phase_load(zbench_stack_t *st, const opts_t *o, int64_t *events)
{
    long per_month = o->petitions / o->months, next_id = 0;
    int64_t t0 = zbench_now_us();
    for (long m = 0; m < o->months; m++) {
        int year = START_YEAR + (int)(m / 12), month = (int)(m % 12) + 1;
        if (clock_set(st, ztime_month_start(year, month) + 9 * 3600 * 1000LL) != 0) {
            return -1;
        }
        long full = per_month / PER_COMMAND, rest = per_month % PER_COMMAND;
        if (generate(st, &next_id, full, PER_COMMAND) != 0 ||
            (rest > 0 && generate(st, &next_id, 1, (int)rest) != 0)) {
            return -1;
        }
    }
    int64_t produced = zbench_now_us();
    *events = zbench_stat(st, "petitions", "outbox_last_seq", "");
    if (catch_up(st, *events) != 0) {
        fprintf(stderr, "zhili-bench-reporting: reporting did not catch up\n");
        return -1;
    }
    int64_t done = zbench_now_us();
    printf("petitions %ld\nmonths %ld\nevents %lld\n", per_month * o->months, o->months,
           (long long)*events);
    printf("produce_events_per_s %.0f\n", (double)*events * 1e6 / (double)(produced - t0));
    printf("consume_events_per_s %.0f\n", (double)*events * 1e6 / (double)(done - t0));
    printf("consume_lag_after_producer_s %.1f\n", (double)(done - produced) / 1e6);
    printf("# Every event was applied exactly once by reporting (cursor = the producer's last "
           "seq): counters at every level, month and year, and a drill-down reference each.\n");
    return 0;
}

typedef struct {
    const char *name, *area, *level, *indicator;
    bool year;
} query_t;

static void query_cmd(const query_t *q, const char *month, const char *year,
                      Zhili__V1__Command *cmd, Zhili__Reporting__ReportGet *rg,
                      Zhili__Reporting__CellsGet *cg)
{
    cmd->area = (char *)q->area;
    if (q->indicator != NULL) {
        cg->period = (char *)(q->year ? year : month);
        cg->indicator = (char *)q->indicator;
        cg->limit = 100;
        cmd->body_case = ZHILI__V1__COMMAND__BODY_REPORT_CELLS;
        cmd->report_cells = cg;
    } else {
        rg->period = (char *)(q->year ? year : month);
        rg->level = (char *)q->level;
        cmd->body_case = ZHILI__V1__COMMAND__BODY_REPORT_GET;
        cmd->report_get = rg;
    }
}

/* Run one query `n` times; prints its latency; keeps the last reply. */
static int time_query(zbench_stack_t *st, const query_t *q, const char *month, const char *year,
                      long n, Zhili__V1__Reply **last)
{
    int64_t *lat = malloc((size_t)n * sizeof *lat);
    ZASSERT(lat != NULL);
    size_t bytes = 0, rows = 0;
    for (long i = 0; i < n; i++) {
        Zhili__Reporting__ReportGet rg = ZHILI__REPORTING__REPORT_GET__INIT;
        Zhili__Reporting__CellsGet cg = ZHILI__REPORTING__CELLS_GET__INIT;
        Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
        query_cmd(q, month, year, &cmd, &rg, &cg);
        Zhili__V1__Reply *r = NULL;
        int64_t t = zbench_now_us();
        if (zbench_call(st, "reporting", &cmd, &r) != 0) {
            free(lat);
            return -1;
        }
        lat[i] = zbench_now_us() - t;
        bytes = protobuf_c_message_get_packed_size(&r->base);
        rows = r->result_case == ZHILI__V1__REPLY__RESULT_REPORT         ? r->report->n_rows
               : r->result_case == ZHILI__V1__REPLY__RESULT_REPORT_CELLS ? r->report_cells->n_events
                                                                         : 0;
        if (*last != NULL) {
            zhili__v1__reply__free_unpacked(*last, NULL);
        }
        *last = r;
    }
    qsort(lat, (size_t)n, sizeof *lat, zbench_i64_cmp);
    printf("%s_rows %zu\n%s_reply_bytes %zu\n", q->name, rows, q->name, bytes);
    printf("%s_p50_ms %.2f\n%s_p99_ms %.2f\n%s_max_ms %.2f\n", q->name, lat[n / 2] / 1000.0,
           q->name, lat[(n * 99) / 100] / 1000.0, q->name, lat[n - 1] / 1000.0);
    free(lat);
    return 0;
}

/* The gateway's rendering of a table, in this process. */
static void time_render(const char *name, const Zhili__V1__Reply *r)
{
    const int rounds = 50;
    int64_t t = zbench_now_us(), json_us, csv_us;
    size_t json_bytes = 0, csv_bytes = 0;
    for (int i = 0; i < rounds; i++) {
        json_t *j = zjson_from_msg(&r->report->base);
        zgw_report_nulls(j);
        char *text = json_dumps(j, JSON_COMPACT);
        json_bytes = text ? strlen(text) : 0;
        free(text);
        json_decref(j);
    }
    json_us = (zbench_now_us() - t) / rounds;
    t = zbench_now_us();
    for (int i = 0; i < rounds; i++) {
        json_t *j = zjson_from_msg(&r->report->base);
        char fname[96];
        char *csv = zgw_report_csv(j, &csv_bytes, fname, sizeof fname);
        free(csv);
        json_decref(j);
    }
    csv_us = (zbench_now_us() - t) / rounds;
    printf("%s_render_json_ms %.2f\n%s_json_bytes %zu\n%s_render_csv_ms %.2f\n%s_csv_bytes %zu\n",
           name, json_us / 1000.0, name, json_bytes, name, csv_us / 1000.0, name, csv_bytes);
}

static const query_t queries[] = {
    {"district_month_by_street", "220503", "street", NULL, false},
    {"district_month_by_community", "220503", "community", NULL, false},
    {"district_year_by_street", "220503", "street", NULL, true},
    {"district_month_by_grid", "220503", "grid", NULL, false},
    {"drilldown_page_100", "220503", NULL, "ontime_sign_rate", false},
};

static int phase_queries(zbench_stack_t *st, const opts_t *o, uint8_t **table, size_t *table_len)
{
    int last_year = START_YEAR + (int)((o->months - 1) / 12);
    int last_month = (int)((o->months - 1) % 12) + 1;
    char month[24], year[16];
    snprintf(month, sizeof month, "%04d-%02d", last_year, last_month);
    snprintf(year, sizeof year, "%04d", last_year);
    printf("period %s\n", month);
    for (size_t i = 0; i < ZARRAY_LEN(queries); i++) {
        Zhili__V1__Reply *r = NULL;
        if (time_query(st, &queries[i], month, year, o->queries, &r) != 0) {
            return -1;
        }
        if (i < 2) {
            time_render(queries[i].name, r);
        }
        if (i == 1) {
            *table_len = protobuf_c_message_get_packed_size(&r->base);
            *table = malloc(*table_len);
            protobuf_c_message_pack(&r->base, *table);
        }
        zhili__v1__reply__free_unpacked(r, NULL);
    }
    printf("# Each query went through the broker to zhili-reporting and back, one at a time "
           "(the gateway adds its rendering, timed here in-process).\n");
    return 0;
}

static int phase_rebuild(zbench_stack_t *st, const opts_t *o, int64_t events, const uint8_t *table,
                         size_t table_len)
{
    Zhili__Reporting__Rebuild rb = ZHILI__REPORTING__REBUILD__INIT;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_REPORT_REBUILD;
    cmd.report_rebuild = &rb;
    Zhili__V1__Reply *r = NULL;
    int64_t t0 = zbench_now_us();
    if (zbench_call(st, "reporting", &cmd, &r) != 0) {
        return -1;
    }
    zhili__v1__reply__free_unpacked(r, NULL);
    if (catch_up(st, events) != 0) {
        fprintf(stderr, "zhili-bench-reporting: the rebuild did not finish\n");
        return -1;
    }
    int64_t done = zbench_now_us();
    printf("rebuild_s %.1f\nrebuild_events_per_s %.0f\n", (double)(done - t0) / 1e6,
           (double)events * 1e6 / (double)(done - t0));
    Zhili__V1__Reply *again = NULL;
    const query_t *q = &queries[1];
    int last_year = START_YEAR + (int)((o->months - 1) / 12);
    char month[24], year[16];
    snprintf(month, sizeof month, "%04d-%02d", last_year, (int)((o->months - 1) % 12) + 1);
    snprintf(year, sizeof year, "%04d", last_year);
    Zhili__Reporting__ReportGet rg = ZHILI__REPORTING__REPORT_GET__INIT;
    Zhili__Reporting__CellsGet cg = ZHILI__REPORTING__CELLS_GET__INIT;
    Zhili__V1__Command qc = ZHILI__V1__COMMAND__INIT;
    query_cmd(q, month, year, &qc, &rg, &cg);
    if (zbench_call(st, "reporting", &qc, &again) != 0) {
        return -1;
    }
    size_t len = protobuf_c_message_get_packed_size(&again->base);
    uint8_t *buf = malloc(len);
    protobuf_c_message_pack(&again->base, buf);
    /* The request ids differ; compare the tables. */
    bool same = again->report != NULL && len == table_len;
    Zhili__V1__Reply *before = zhili__v1__reply__unpack(NULL, table_len, table);
    if (same && before != NULL) {
        size_t a = protobuf_c_message_get_packed_size(&before->report->base);
        size_t b = protobuf_c_message_get_packed_size(&again->report->base);
        uint8_t *x = malloc(a), *y = malloc(b);
        protobuf_c_message_pack(&before->report->base, x);
        protobuf_c_message_pack(&again->report->base, y);
        same = a == b && memcmp(x, y, a) == 0;
        free(x);
        free(y);
    }
    printf("rebuild_table_identical %d\n", same);
    if (before != NULL) {
        zhili__v1__reply__free_unpacked(before, NULL);
    }
    free(buf);
    zhili__v1__reply__free_unpacked(again, NULL);
    du_bytes = 0;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/reporting", st->dir);
    nftw(path, on_du, 16, FTW_PHYS);
    printf("reporting_store_mib %.0f\n", (double)du_bytes / (1 << 20));
    printf("# The rebuild replays every event from the producer's outbox (pages of 1000) into a "
           "new generation; the old one is purged in the background.\n");
    return same ? 0 : -1;
}

static int parse(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){1000000, 24, 200};
    for (int i = 1; i < argc; i++) {
        long v = i + 1 < argc ? strtol(argv[i + 1], NULL, 10) : 0;
        if (strcmp(argv[i], "--quick") == 0) {
            o->petitions = 50000;
            o->queries = 50;
        } else if (strcmp(argv[i], "--petitions") == 0 && v >= 1000 && v <= 100000000) {
            o->petitions = v;
            i++;
        } else if (strcmp(argv[i], "--months") == 0 && v >= 13 && v <= 120) {
            o->months = v;
            i++;
        } else if (strcmp(argv[i], "--queries") == 0 && v >= 10 && v <= QUERIES_MAX) {
            o->queries = v;
            i++;
        } else {
            fprintf(stderr, "usage: zhili-bench-reporting [--petitions N (1000..1e8)] "
                            "[--months M (13..120)] [--queries Q (10..100000)] [--quick]\n");
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--producer") == 0) {
        return producer_main();
    }
    opts_t o;
    if (parse(argc, argv, &o) != 0) {
        return 2;
    }
    static zbench_stack_t st;
    g_stack = &st;
    zbench_signals_set(on_signal);
    if (stack_configure(&st) != 0) {
        fprintf(stderr, "zhili-bench-reporting: cannot prepare a data directory or ports\n");
        return 1;
    }
    printf("bench reporting petitions=%ld months=%ld queries=%ld nproc=%ld\n", o.petitions,
           o.months, o.queries, sysconf(_SC_NPROCESSORS_ONLN));
    fflush(stdout); /* before the children inherit the buffer */
    int rc = 1;
    st.zctx = zmq_ctx_new();
    if (zbench_child_spawn(&st, "zhili-broker", NULL, NULL, 0) >= 0 && producer_spawn(&st) == 0 &&
        zbench_child_spawn(&st, "zhili-reporting", NULL, NULL, 0) >= 0 &&
        (st.client = zbus_client_new(st.zctx, st.broker)) != NULL &&
        zbench_service_wait(&st, "petitions", READY_TIMEOUT_MS) == 0 &&
        zbench_service_wait(&st, "reporting", READY_TIMEOUT_MS) == 0) {
        int64_t events = 0;
        uint8_t *table = NULL;
        size_t table_len = 0;
        rc = phase_load(&st, &o, &events) == 0 && phase_queries(&st, &o, &table, &table_len) == 0 &&
                     phase_rebuild(&st, &o, events, table, table_len) == 0
                 ? 0
                 : 1;
        free(table);
    }
    zbench_stack_stop(&st, ZBENCH_STOP_TIMEOUT_MS);
    return rc;
}
