/* zhili-bench-bus: how fast the bus and the service runtime are on this machine,
 * measured against the real binaries (docs/performance.md records the results).
 *
 * It starts zhili-broker and zhili-testsvc itself (from the directory of its own
 * executable) on free loopback ports with a temporary ZHILI_DATA, waits until
 * each answers a stats command, measures, prints, stops the children and
 * removes the directory. Sections:
 *   1. durable commands/s: pipelined counter_add through the broker; every OK
 *      reply means the command's batch was committed with fsync;
 *   2. events/s: the raw path PUB -> broker XSUB/XPUB -> 1 and 10 SUB sockets,
 *      then the runtime path: a consuming testsvc applying a producer's events
 *      live, and a late one catching up by replay;
 *   3. command latency p50/p99/p999 at a steady open-loop rate (default 1k/s).
 * Output is "name value" lines, each section closed by a sentence and by how
 * busy the whole machine was. SIGINT kills the children at once but leaves the
 * temporary directory (removing it is not async-signal-safe). */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/common/bench_util.h"
#include "common/bus.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

#define CHILDREN_MAX 8
#define CLIENTS_MAX 8
#define PRODUCERS_MAX 4
#define SUBSCRIBERS_MAX 10
#define ENDPOINT_BYTES_MAX 64
#define ENV_OVERRIDES 4
#define ENV_VAR_BYTES_MAX ZBENCH_ENV_VAR_BYTES_MAX
#define READY_TIMEOUT_MS 15000
#define CALL_TIMEOUT_MS 10000
#define LOAD_TIMEOUT_MS 300000
#define STOP_TIMEOUT_MS 5000
#define SUB_IDLE_US 2000000 /* a subscriber gives up 2 s after the last message */
#define WARMUP_TIMEOUT_MS 5000
#define APPLIED_TIMEOUT_MS 120000
#define LATENCY_DRAIN_US 3000000 /* replies still awaited after the last send */
#define EVENT_BYTES 300          /* serialized Event size for the raw path */
#define EVENT_BYTES_MAX 512
#define COMMAND_BYTES_MAX 256
#define COUNT_MAX 100000000L
#define LATENCY_COMMANDS_MAX 10000000L /* rate x seconds; two int64 arrays of this */
#define RAW_TOPIC "bench.added"
#define WARM_TOPIC "bench.warm"

_Static_assert(EVENT_BYTES < EVENT_BYTES_MAX, "the event buffer must hold the event");

typedef struct {
    long commands, window, events, consume;
    int producers, clients;
    int latency_s, rate_per_s;
    int batch_max; /* 0: the service default */
    bool lossy;    /* the raw publisher drops at its high-water mark instead of waiting */
    const char *only;
} opts_t;

typedef struct {
    char dir[64];
    char bin_dir[PATH_MAX];
    char broker[ENDPOINT_BYTES_MAX], events_pub[ENDPOINT_BYTES_MAX], events_sub[ENDPOINT_BYTES_MAX];
    pid_t pids[CHILDREN_MAX];
    int child_count;
    int batch_max;
    void *zctx;
    zbus_client_t *control; /* readiness, stats and applied_get */
} bench_stack_t;

/* The children, for the signal handler; main.c-level state by the house rules. */
static bench_stack_t *g_stack;

static int64_t now_us(void)
{
    /* zclock is milliseconds; latencies need microseconds. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double per_s(long count, int64_t elapsed_us)
{
    return elapsed_us > 0 ? (double)count * 1e6 / (double)elapsed_us : 0.0;
}

/* ---- children ----------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    if (g_stack != NULL) {
        for (int i = 0; i < g_stack->child_count; i++) {
            kill(g_stack->pids[i], SIGKILL);
            waitpid(g_stack->pids[i], NULL, 0); /* reaped here: no zombies left behind */
        }
    }
    _exit(130);
}

/* Start bin_dir/binary as service `name` (NULL for the broker), consuming
 * `consume` ("" for none). 0, or -1 when it cannot be started. */
static int child_spawn(bench_stack_t *st, const char *binary, const char *name, const char *consume)
{
    ZASSERT(st->child_count < CHILDREN_MAX);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", st->bin_dir, binary);
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "zhili-bench-bus: %s is missing; build the project first\n", path);
        return -1;
    }
    char over[ENV_OVERRIDES][ENV_VAR_BYTES_MAX];
    snprintf(over[0], sizeof over[0], "ZHILI_SERVICE_NAME=%s", name ? name : "");
    snprintf(over[1], sizeof over[1], "ZHILI_TESTSVC_CONSUME=%s", consume);
    snprintf(over[2], sizeof over[2], "ZHILI_BATCH_MAX=%d", st->batch_max);
    char **envp = zbench_env_build(over, st->batch_max > 0 ? 3 : 2);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the bench */
        char *argv[] = {path, NULL};
        execve(path, argv, envp);
        _exit(127);
    }
    free(envp);
    if (pid < 0) {
        fprintf(stderr, "zhili-bench-bus: fork: %s\n", strerror(errno));
        return -1;
    }
    st->pids[st->child_count++] = pid;
    return 0;
}

static bool children_alive(bench_stack_t *st)
{
    for (int i = 0; i < st->child_count; i++) {
        int status;
        if (waitpid(st->pids[i], &status, WNOHANG) == st->pids[i]) {
            fprintf(stderr, "zhili-bench-bus: child %d exited early (status %d)\n",
                    (int)st->pids[i], status);
            st->pids[i] = st->pids[--st->child_count];
            return false;
        }
    }
    return true;
}

/* A fresh client each attempt, so stats requests queued before the broker
 * bound are dropped with it (LINGER 0) instead of answering later. */
static int broker_wait(bench_stack_t *st)
{
    int64_t end = zclock_mono_ms() + READY_TIMEOUT_MS;
    while (zclock_mono_ms() < end && children_alive(st)) {
        zbus_client_t *c = zbus_client_new(st->zctx, st->broker);
        Zhili__V1__Stats *stats = NULL;
        if (c != NULL && zbus_broker_stats(c, 300, &stats) == 0) {
            zhili__v1__stats__free_unpacked(stats, NULL);
            st->control = c;
            return 0;
        }
        zbus_client_destroy(&c);
    }
    fprintf(stderr, "zhili-bench-bus: the broker did not answer stats\n");
    return -1;
}

/* Call `service` with a command body; 0 with *reply OK, else -1 (freed). */
static int service_call(bench_stack_t *st, const char *service, Zhili__V1__Command *cmd,
                        Zhili__V1__Reply **reply)
{
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "bench";
    actor.role = "admin";
    cmd->actor = &actor;
    cmd->request_id = "";
    *reply = NULL;
    if (zbus_call(st->control, service, cmd, CALL_TIMEOUT_MS, reply) != 0) {
        return -1;
    }
    if ((*reply)->status != ZHILI__V1__STATUS__STATUS_OK) {
        fprintf(stderr, "zhili-bench-bus: %s: %s\n", service, (*reply)->message);
        zhili__v1__reply__free_unpacked(*reply, NULL);
        *reply = NULL;
        return -1;
    }
    return 0;
}

/* The value of one of a service's stats (no labels), or -1. */
static int64_t service_stat(bench_stack_t *st, const char *service, const char *stat)
{
    Zhili__V1__StatsRequest sr = ZHILI__V1__STATS_REQUEST__INIT;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_STATS;
    cmd.stats = &sr;
    Zhili__V1__Reply *r = NULL;
    int64_t v = -1;
    if (service_call(st, service, &cmd, &r) == 0 &&
        r->result_case == ZHILI__V1__REPLY__RESULT_STATS) {
        for (size_t i = 0; i < r->stats->n_stats; i++) {
            if (strcmp(r->stats->stats[i]->name, stat) == 0 && r->stats->stats[i]->labels[0] == 0) {
                v = r->stats->stats[i]->value;
            }
        }
    }
    if (r != NULL) {
        zhili__v1__reply__free_unpacked(r, NULL);
    }
    return v;
}

static int64_t broker_stat(bench_stack_t *st, const char *stat)
{
    Zhili__V1__Stats *stats = NULL;
    int64_t v = -1;
    if (zbus_broker_stats(st->control, CALL_TIMEOUT_MS, &stats) == 0) {
        for (size_t i = 0; i < stats->n_stats; i++) {
            if (strcmp(stats->stats[i]->name, stat) == 0) {
                v = stats->stats[i]->value;
            }
        }
        zhili__v1__stats__free_unpacked(stats, NULL);
    }
    return v;
}

/* Spawn a testsvc as `name` and wait until it answers stats. */
static int service_start(bench_stack_t *st, const char *name, const char *consume)
{
    if (child_spawn(st, "zhili-testsvc", name, consume) != 0) {
        return -1;
    }
    if (service_stat(st, name, "commands_total") < 0) {
        fprintf(stderr, "zhili-bench-bus: service %s did not answer stats\n", name);
        return -1;
    }
    return 0;
}

static int on_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void stack_stop(bench_stack_t *st)
{
    zbus_client_destroy(&st->control);
    for (int i = 0; i < st->child_count; i++) {
        kill(st->pids[i], SIGTERM);
    }
    int64_t end = zclock_mono_ms() + STOP_TIMEOUT_MS;
    for (int i = 0; i < st->child_count; i++) {
        while (waitpid(st->pids[i], NULL, WNOHANG) == 0) {
            if (zclock_mono_ms() > end) {
                kill(st->pids[i], SIGKILL);
                waitpid(st->pids[i], NULL, 0);
                break;
            }
            usleep(10000);
        }
    }
    st->child_count = 0;
    if (st->dir[0] != '\0') {
        nftw(st->dir, on_rm, 16, FTW_DEPTH | FTW_PHYS);
    }
    if (st->zctx != NULL) {
        zmq_ctx_term(st->zctx);
        st->zctx = NULL;
    }
}

/* Directories, ports and the environment every child inherits; set before
 * any thread exists (setenv is not thread-safe). */
static int stack_configure(bench_stack_t *st)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        return -1;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    *slash = '\0';
    snprintf(st->bin_dir, sizeof st->bin_dir, "%s", exe);
    snprintf(st->dir, sizeof st->dir, "/tmp/zhili-bench-XXXXXX");
    int ports[3];
    if (mkdtemp(st->dir) == NULL) {
        st->dir[0] = '\0';
        return -1;
    }
    if (zbench_ports_pick(ports, 3) != 0) {
        return -1;
    }
    snprintf(st->broker, sizeof st->broker, "tcp://127.0.0.1:%d", ports[0]);
    snprintf(st->events_pub, sizeof st->events_pub, "tcp://127.0.0.1:%d", ports[1]);
    snprintf(st->events_sub, sizeof st->events_sub, "tcp://127.0.0.1:%d", ports[2]);
    setenv("ZHILI_DATA", st->dir, 1);
    setenv("ZHILI_BROKER", st->broker, 1);
    setenv("ZHILI_BROKER_BIND", st->broker, 1);
    setenv("ZHILI_EVENTS_PUB", st->events_pub, 1);
    setenv("ZHILI_EVENTS_XSUB_BIND", st->events_pub, 1);
    setenv("ZHILI_EVENTS_SUB", st->events_sub, 1);
    setenv("ZHILI_EVENTS_XPUB_BIND", st->events_sub, 1);
    setenv("ZHILI_LOG", getenv("ZHILI_LOG") ? getenv("ZHILI_LOG") : "warn", 1);
    return 0;
}

static const char *const producer_names[PRODUCERS_MAX] = {"prod-a", "prod-b", "prod-c", "prod-d"};

static int stack_start(bench_stack_t *st, const opts_t *o)
{
    st->batch_max = o->batch_max;
    if (stack_configure(st) != 0) {
        fprintf(stderr, "zhili-bench-bus: cannot prepare %s: %s\n", st->dir, strerror(errno));
        return -1;
    }
    g_stack = st;
    st->zctx = zmq_ctx_new();
    if (st->zctx == NULL || child_spawn(st, "zhili-broker", NULL, "") != 0 ||
        broker_wait(st) != 0) {
        return -1;
    }
    for (int i = 0; i < o->producers; i++) {
        if (service_start(st, producer_names[i], "") != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- pipelined load ----------------------------------------------------- */

typedef struct {
    zbus_client_t *client;
    const char *const *services;
    int service_count;
    char prefix[32];
    long count, window;
    long sent, replied, ok;
    int64_t start_us, end_us;
    char first_error[160];
} bench_load_t;

/* counter_add of 1 to counter `counter`, packed into buf. */
static size_t command_pack(const char *request_id, const char *counter, uint8_t *buf)
{
    Zhili__Test__CounterAdd add = ZHILI__TEST__COUNTER_ADD__INIT;
    add.name = (char *)counter;
    add.amount = 1;
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "bench";
    actor.role = "admin";
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.request_id = (char *)request_id;
    cmd.actor = &actor;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_COUNTER_ADD;
    cmd.counter_add = &add;
    ZASSERT(protobuf_c_message_get_packed_size(&cmd.base) <= COMMAND_BYTES_MAX);
    return protobuf_c_message_pack(&cmd.base, buf);
}

static int load_send(bench_load_t *l)
{
    char rid[64];
    snprintf(rid, sizeof rid, "%s-%ld", l->prefix, l->sent);
    uint8_t buf[COMMAND_BYTES_MAX];
    size_t len = command_pack(rid, l->prefix, buf);
    const char *svc = l->services[l->sent % l->service_count];
    int rc =
        zbus_client_send(l->client, svc, rid, zclock_wall_ms() + ZBUS_DEADLINE_MS_MAX, buf, len);
    if (rc == 0) {
        l->sent++;
    }
    return rc;
}

/* Every request gets exactly one reply (nothing is resent), so counting
 * replies is enough; an error is kept for the report. */
static void load_drain(bench_load_t *l)
{
    Zhili__V1__Reply *r = NULL;
    int rc;
    while ((rc = zbus_client_recv(l->client, &r)) == 0 || rc == ZE_INVALID) {
        if (r == NULL) {
            continue;
        }
        l->replied++;
        if (r->status == ZHILI__V1__STATUS__STATUS_OK) {
            l->ok++;
        } else if (l->first_error[0] == '\0') {
            snprintf(l->first_error, sizeof l->first_error, "%s", r->message);
        }
        zhili__v1__reply__free_unpacked(r, NULL);
        r = NULL;
    }
}

static void *load_run(void *arg)
{
    bench_load_t *l = arg;
    l->start_us = now_us();
    int64_t end = zclock_mono_ms() + LOAD_TIMEOUT_MS;
    while (l->replied < l->count && zclock_mono_ms() < end) {
        while (l->sent < l->count && l->sent - l->replied < l->window && load_send(l) == 0) {
        }
        zmq_pollitem_t item = {zbus_client_socket(l->client), 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 100);
        load_drain(l);
    }
    l->end_us = now_us();
    return NULL;
}

/* Run `clients` pipelined loads of `count` commands in all, in threads; the
 * summary lands in *sum (ok, replied, start_us, end_us, first_error). */
static int load_parallel(bench_stack_t *st, const char *const *services, int service_count,
                         int clients, long count, long window, const char *prefix,
                         bench_load_t *sum)
{
    bench_load_t loads[CLIENTS_MAX];
    pthread_t threads[CLIENTS_MAX];
    memset(loads, 0, sizeof loads);
    memset(sum, 0, sizeof *sum);
    for (int i = 0; i < clients; i++) {
        bench_load_t *l = &loads[i];
        l->client = zbus_client_new(st->zctx, st->broker);
        l->services = services;
        l->service_count = service_count;
        l->count = count / clients + (i == 0 ? count % clients : 0);
        l->window = window;
        snprintf(l->prefix, sizeof l->prefix, "%s%d", prefix, i);
        ZASSERT(l->client != NULL);
    }
    for (int i = 0; i < clients; i++) {
        ZASSERT(pthread_create(&threads[i], NULL, load_run, &loads[i]) == 0);
    }
    for (int i = 0; i < clients; i++) {
        pthread_join(threads[i], NULL);
        bench_load_t *l = &loads[i];
        sum->ok += l->ok;
        sum->replied += l->replied;
        sum->count += l->count;
        sum->start_us = i == 0 || l->start_us < sum->start_us ? l->start_us : sum->start_us;
        sum->end_us = l->end_us > sum->end_us ? l->end_us : sum->end_us;
        if (sum->first_error[0] == '\0') {
            memcpy(sum->first_error, l->first_error, sizeof sum->first_error);
        }
        zbus_client_destroy(&l->client);
    }
    return sum->ok == count ? 0 : -1;
}

/* ---- 1. durable commands ------------------------------------------------ */

static int64_t batches_sum(bench_stack_t *st, int producers)
{
    int64_t sum = 0;
    for (int i = 0; i < producers; i++) {
        sum += service_stat(st, producer_names[i], "batches_total");
    }
    return sum;
}

static int section_commands(bench_stack_t *st, const opts_t *o)
{
    printf("\n[1] durable commands through the broker\n");
    int64_t batches_before = batches_sum(st, o->producers);
    bench_load_t sum;
    int rc = load_parallel(st, producer_names, o->producers, o->clients, o->commands, o->window,
                           "c", &sum);
    int64_t batches = batches_sum(st, o->producers) - batches_before;
    double rate = per_s(sum.ok, sum.end_us - sum.start_us);
    printf("durable_commands %ld\n", sum.count);
    printf("durable_commands_ok %ld\n", sum.ok);
    printf("durable_commands_elapsed_ms %lld\n", (long long)(sum.end_us - sum.start_us) / 1000);
    printf("durable_commands_per_s %.0f\n", rate);
    printf("durable_commands_per_batch %.1f\n", batches > 0 ? (double)sum.ok / (double)batches : 0);
    printf("%ld counter_add commands from %d client(s) with %ld in flight each, to %d producer(s): "
           "%ld acknowledged OK, each after its batch's fsync'd commit, at %.0f/s "
           "(target >= 60000/s: %s).\n",
           sum.count, o->clients, o->window, o->producers, sum.ok, rate,
           rate >= 60000 ? "met" : "MISSED");
    if (rc != 0) {
        printf("not every command was acknowledged; first error: %s\n", sum.first_error);
    }
    return rc;
}

/* ---- 2a. raw event path ------------------------------------------------- */

typedef struct {
    void *zctx;
    const char *endpoint;
    long expected;
    atomic_int warm;               /* a warmup message arrived: the subscription is live */
    atomic_llong published_end_us; /* 0 while the publisher runs */
    long received;
    int64_t last_us;
} bench_sub_t;

/* Read what waits; returns the messages read. Frames beyond the topic and
 * the body are not expected (the broker forwards two). */
static long sub_drain(bench_sub_t *b, void *sock)
{
    char topic[64];
    uint8_t body[EVENT_BYTES_MAX];
    long got = 0;
    for (;;) {
        int n = zmq_recv(sock, topic, sizeof topic, ZMQ_DONTWAIT);
        if (n < 0) {
            break;
        }
        int more = 0;
        size_t sz = sizeof more;
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
        if (more) {
            zmq_recv(sock, body, sizeof body, 0); /* the rest of a message is already here */
        }
        got++;
        if (n == (int)strlen(RAW_TOPIC) && memcmp(topic, RAW_TOPIC, (size_t)n) == 0) {
            b->received++;
        } else {
            atomic_store(&b->warm, 1);
        }
    }
    if (got > 0) {
        b->last_us = now_us();
    }
    return got;
}

static void *sub_main(void *arg)
{
    bench_sub_t *b = arg;
    void *sock = zbus_socket_new(b->zctx, ZMQ_SUB);
    ZASSERT(sock != NULL);
    zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "bench.", strlen("bench."));
    ZASSERT(zmq_connect(sock, b->endpoint) == 0);
    b->last_us = now_us();
    while (b->received < b->expected) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 100);
        sub_drain(b, sock);
        int64_t done_us = atomic_load(&b->published_end_us);
        int64_t idle_from = b->last_us > done_us ? b->last_us : done_us;
        if (done_us > 0 && now_us() - idle_from > SUB_IDLE_US) {
            break;
        }
    }
    zmq_close(sock);
    return NULL;
}

/* A ~EVENT_BYTES serialized Event, as a producer would publish it. */
static size_t event_build(uint8_t *buf)
{
    char name[EVENT_BYTES];
    Zhili__Test__CounterAdded added = ZHILI__TEST__COUNTER_ADDED__INIT;
    added.name = name;
    added.amount = 1;
    added.value = 123456789;
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "bench-actor-000001";
    actor.role = "admin";
    actor.area = "110105";
    actor.name = "Bench Operator";
    Zhili__V1__Event ev = ZHILI__V1__EVENT__INIT;
    ev.source = "bench";
    ev.seq = 1000000;
    ev.ts_ms = zclock_wall_ms();
    ev.area = "110105001";
    ev.type = "added";
    ev.request_id = "0123456789abcdef0123456789abcdef";
    ev.actor = &actor;
    ev.body_case = ZHILI__V1__EVENT__BODY_COUNTER_ADDED;
    ev.counter_added = &added;
    size_t pad = 0;
    do {
        memset(name, 'n', pad);
        name[pad++] = '\0';
    } while (protobuf_c_message_get_packed_size(&ev.base) < EVENT_BYTES && pad < sizeof name);
    return protobuf_c_message_pack(&ev.base, buf);
}

/* Publish warmups until every subscriber has one, so no measured event is
 * lost to a subscription still on its way to the publisher. */
static int raw_warmup(void *pub, bench_sub_t *subs, int count, const uint8_t *ev, size_t len)
{
    int64_t end = zclock_mono_ms() + WARMUP_TIMEOUT_MS;
    while (zclock_mono_ms() < end) {
        int warm = 0;
        for (int i = 0; i < count; i++) {
            warm += atomic_load(&subs[i].warm);
        }
        if (warm == count) {
            return 0;
        }
        zmq_send(pub, WARM_TOPIC, strlen(WARM_TOPIC), ZMQ_SNDMORE);
        zmq_send(pub, ev, len, 0);
        usleep(5000);
    }
    return -1;
}

static void raw_report(const bench_sub_t *subs, int count, long events, int64_t start_us,
                       int64_t pub_end_us, int64_t forwarded)
{
    long total = 0;
    int64_t last = start_us;
    double slowest = 0;
    for (int i = 0; i < count; i++) {
        total += subs[i].received;
        last = subs[i].last_us > last ? subs[i].last_us : last;
        double r = per_s(subs[i].received, subs[i].last_us - start_us);
        slowest = i == 0 || r < slowest ? r : slowest;
    }
    long lost = events * count - total;
    double each = per_s(total / count, last - start_us);
    printf("events_raw_subscribers %d\n", count);
    printf("events_raw_published_per_s %.0f\n", per_s(events, pub_end_us - start_us));
    printf("events_raw_forwarded_by_broker %lld\n", (long long)forwarded);
    printf("events_raw_per_s_per_subscriber %.0f\n", each);
    printf("events_raw_per_s_slowest_subscriber %.0f\n", slowest);
    printf("events_raw_delivered_per_s_total %.0f\n", per_s(total, last - start_us));
    printf("events_raw_lost %ld\n", lost);
    printf("%ld events of %zu bytes published as fast as possible reached %d subscriber(s) at "
           "%.0f/s each (%.0f deliveries/s in all); %ld of %ld deliveries were lost (PUB/SUB may "
           "drop at a full high-water mark; the runtime recovers by replay).\n",
           events, (size_t)EVENT_BYTES, count, each, per_s(total, last - start_us), lost,
           events * count);
}

static int section_raw(bench_stack_t *st, long events, int count, bool lossy)
{
    printf("\n[2a] raw events: PUB (%s) -> broker XSUB/XPUB -> %d SUB\n",
           lossy ? "dropping at its HWM" : "waiting at its HWM", count);
    bench_sub_t subs[SUBSCRIBERS_MAX];
    pthread_t threads[SUBSCRIBERS_MAX];
    void *pub = zbus_socket_new(st->zctx, ZMQ_PUB);
    ZASSERT(pub != NULL && count <= SUBSCRIBERS_MAX);
    /* A plain PUB fills its 200k pipe in a fraction of a second and drops the
     * rest, which measures the high-water mark, not the path; NODROP makes the
     * send wait instead, so the publisher runs at the speed the broker takes. */
    int nodrop = lossy ? 0 : 1;
    ZASSERT(zmq_setsockopt(pub, ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop) == 0);
    ZASSERT(zmq_connect(pub, st->events_pub) == 0);
    memset(subs, 0, sizeof subs);
    for (int i = 0; i < count; i++) {
        subs[i].zctx = st->zctx;
        subs[i].endpoint = st->events_sub;
        subs[i].expected = events;
        ZASSERT(pthread_create(&threads[i], NULL, sub_main, &subs[i]) == 0);
    }
    uint8_t ev[EVENT_BYTES_MAX];
    size_t len = event_build(ev);
    int rc = raw_warmup(pub, subs, count, ev, len);
    int64_t forwarded_before = broker_stat(st, "broker_events_forwarded_total");
    int64_t start = now_us();
    for (long i = 0; i < events && rc == 0; i++) {
        zmq_send(pub, RAW_TOPIC, strlen(RAW_TOPIC), ZMQ_SNDMORE);
        zmq_send(pub, ev, len, 0);
    }
    int64_t pub_end = now_us();
    for (int i = 0; i < count; i++) {
        atomic_store(&subs[i].published_end_us, rc == 0 ? pub_end : 1);
    }
    for (int i = 0; i < count; i++) {
        pthread_join(threads[i], NULL);
    }
    zmq_close(pub);
    if (rc != 0) {
        printf("the subscriptions did not reach the publisher within %d ms\n", WARMUP_TIMEOUT_MS);
        return -1;
    }
    int64_t forwarded = broker_stat(st, "broker_events_forwarded_total") - forwarded_before;
    raw_report(subs, count, events, start, pub_end, forwarded);
    return 0;
}

/* ---- 2b. events applied by a consuming service -------------------------- */

/* What sink applied of source's events, or -1; *bad gets duplicates plus
 * out-of-order deliveries, which must stay 0. */
static int64_t applied_get(bench_stack_t *st, const char *sink, const char *source, int64_t *bad)
{
    Zhili__Test__AppliedGet get = ZHILI__TEST__APPLIED_GET__INIT;
    get.source = (char *)source;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_APPLIED_GET;
    cmd.applied_get = &get;
    Zhili__V1__Reply *r = NULL;
    int64_t applied = -1;
    if (service_call(st, sink, &cmd, &r) == 0 &&
        r->result_case == ZHILI__V1__REPLY__RESULT_APPLIED) {
        applied = (int64_t)r->applied->applied;
        *bad = (int64_t)(r->applied->duplicates + r->applied->out_of_order);
    }
    if (r != NULL) {
        zhili__v1__reply__free_unpacked(r, NULL);
    }
    return applied;
}

/* Poll sink until it applied `want` of source's events or time runs out;
 * *end_us is when the last poll answered. */
static int64_t applied_wait(bench_stack_t *st, const char *sink, const char *source, long want,
                            int64_t *bad, int64_t *end_us)
{
    int64_t applied = 0;
    int64_t give_up = zclock_mono_ms() + APPLIED_TIMEOUT_MS;
    *end_us = now_us();
    while (applied < want && zclock_mono_ms() < give_up) {
        applied = applied_get(st, sink, source, bad);
        *end_us = now_us();
        if (applied < want) {
            usleep(5000);
        }
    }
    return applied;
}

static int section_consume(bench_stack_t *st, const opts_t *o)
{
    printf("\n[2b] events applied by a consuming service (testsvc feed -> testsvc sink)\n");
    static const char *const feed[] = {"feed"};
    if (service_start(st, "feed", "") != 0 || service_start(st, "sink", "feed.") != 0) {
        return -1;
    }
    bench_load_t sum;
    int64_t bad = 0, end_us = 0;
    int rc = load_parallel(st, feed, 1, 1, o->consume, o->window, "e", &sum);
    int64_t applied = rc == 0 ? applied_wait(st, "sink", "feed", o->consume, &bad, &end_us) : 0;
    int64_t batches = service_stat(st, "sink", "batches_total");
    double rate = per_s((long)applied, end_us - sum.start_us);
    printf("events_consumed %lld\n", (long long)applied);
    printf("events_consumed_duplicates_or_out_of_order %lld\n", (long long)bad);
    printf("events_produced_per_s %.0f\n", per_s(sum.ok, sum.end_us - sum.start_us));
    printf("events_consumed_per_s %.0f\n", rate);
    printf("events_consumed_lag_after_last_command_ms %lld\n",
           (long long)(end_us - sum.end_us) / 1000);
    printf("events_consumed_per_batch %.1f\n", batches > 0 ? (double)applied / (double)batches : 0);
    printf("%ld counter_add commands to feed produced %ld events; sink applied %lld of them "
           "exactly once (each in a durable batch with its cursor) at %.0f/s measured from the "
           "first command to the last event applied.\n",
           o->consume, sum.ok, (long long)applied, rate);
    return rc == 0 && applied == o->consume && bad == 0 ? 0 : -1;
}

/* A consumer started after the fact catches up by replay (at most
 * ZSVC_REPLAY_EVENTS_MAX events a request) rather than from the live stream. */
static int section_catchup(bench_stack_t *st, const opts_t *o)
{
    printf("\n[2c] a late consumer catching up by replay (testsvc feed -> testsvc late)\n");
    int64_t start_us = now_us(), bad = 0, end_us = 0;
    if (service_start(st, "late", "feed.") != 0) {
        return -1;
    }
    int64_t applied = applied_wait(st, "late", "feed", o->consume, &bad, &end_us);
    double rate = per_s((long)applied, end_us - start_us);
    printf("events_caught_up %lld\n", (long long)applied);
    printf("events_caught_up_duplicates_or_out_of_order %lld\n", (long long)bad);
    printf("events_caught_up_per_s %.0f\n", rate);
    printf("a consumer started after feed had %ld events applied %lld of them by replay at "
           "%.0f/s, measured from its start.\n",
           o->consume, (long long)applied, rate);
    return applied == o->consume && bad == 0 ? 0 : -1;
}

/* ---- 3. latency at a steady rate ---------------------------------------- */

typedef struct {
    zbus_client_t *client;
    const char *service;
    long count, replied, ok;
    int64_t *sent_us, *latency_us; /* latency -1 until answered */
    int64_t late_max_us;           /* the bench's own lateness against the schedule */
    long late_sends;               /* sent more than a period late */
} bench_lat_t;

static void lat_drain(bench_lat_t *b)
{
    Zhili__V1__Reply *r = NULL;
    int rc;
    while ((rc = zbus_client_recv(b->client, &r)) == 0 || rc == ZE_INVALID) {
        if (r == NULL) {
            continue;
        }
        int64_t now = now_us();
        long i = strncmp(r->request_id, "lat-", 4) == 0 ? strtol(r->request_id + 4, NULL, 10) : -1;
        if (i >= 0 && i < b->count && b->latency_us[i] < 0) {
            b->latency_us[i] = now - b->sent_us[i];
            b->replied++;
            b->ok += r->status == ZHILI__V1__STATUS__STATUS_OK;
        }
        zhili__v1__reply__free_unpacked(r, NULL);
        r = NULL;
    }
}

/* Sleep until a reply may be waiting or until_us, with microsecond timeouts
 * (zmq_poll counts milliseconds, too coarse for a 1 ms schedule). The socket's
 * fd is edge-triggered: ZMQ_EVENTS must say "nothing" before blocking on it. */
static void lat_wait(bench_lat_t *b, int64_t until_us)
{
    void *sock = zbus_client_socket(b->client);
    int events = 0, fd = -1;
    size_t sz = sizeof events;
    zmq_getsockopt(sock, ZMQ_EVENTS, &events, &sz);
    int64_t left = until_us - now_us();
    if ((events & ZMQ_POLLIN) || left <= 0) {
        return;
    }
    sz = sizeof fd;
    zmq_getsockopt(sock, ZMQ_FD, &fd, &sz);
    struct pollfd p = {fd, POLLIN, 0};
    struct timespec ts = {left / 1000000, (left % 1000000) * 1000};
    ppoll(&p, 1, &ts, NULL);
}

static void lat_run(bench_lat_t *b, int64_t period_us)
{
    int64_t start = now_us() + 1000;
    long next = 0;
    while (next < b->count) {
        int64_t due = start + next * period_us;
        int64_t now = now_us();
        if (now < due) {
            lat_wait(b, due);
            lat_drain(b);
            continue;
        }
        b->late_max_us = now - due > b->late_max_us ? now - due : b->late_max_us;
        b->late_sends += now - due > period_us;
        char rid[32];
        snprintf(rid, sizeof rid, "lat-%ld", next);
        uint8_t buf[COMMAND_BYTES_MAX];
        size_t len = command_pack(rid, "lat", buf);
        b->sent_us[next] = now_us();
        if (zbus_client_send(b->client, b->service, rid, zclock_wall_ms() + ZBUS_DEADLINE_MS_MAX,
                             buf, len) != 0) {
            b->sent_us[next] = -1;
        }
        next++;
    }
    int64_t end = now_us() + LATENCY_DRAIN_US;
    while (b->replied < b->count && now_us() < end) {
        lat_wait(b, end);
        lat_drain(b);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of n sorted values (nearest rank). */
static int64_t quantile(const int64_t *sorted, long n, double q)
{
    long rank = (long)ceil(q * (double)n);
    return sorted[rank < 1 ? 0 : rank - 1];
}

static void lat_report(bench_lat_t *b, const opts_t *o)
{
    long n = 0;
    for (long i = 0; i < b->count; i++) {
        if (b->latency_us[i] >= 0) {
            b->latency_us[n++] = b->latency_us[i];
        }
    }
    if (n == 0) {
        printf("no command was answered\n");
        return;
    }
    qsort(b->latency_us, (size_t)n, sizeof *b->latency_us, cmp_i64);
    int64_t p50 = quantile(b->latency_us, n, 0.50), p99 = quantile(b->latency_us, n, 0.99);
    int64_t p999 = quantile(b->latency_us, n, 0.999), max = b->latency_us[n - 1];
    printf("latency_commands %ld\n", b->count);
    printf("latency_answered_ok %ld\n", b->ok);
    printf("latency_p50_us %lld\n", (long long)p50);
    printf("latency_p99_us %lld\n", (long long)p99);
    printf("latency_p999_us %lld\n", (long long)p999);
    printf("latency_max_us %lld\n", (long long)max);
    printf("latency_sender_late_max_us %lld\n", (long long)b->late_max_us);
    printf("latency_sender_late_sends %ld\n", b->late_sends);
    printf("%ld counter_add commands at %d/s for %d s, one at a time on a fixed schedule: "
           "p50 %.2f ms, p99 %.2f ms, p999 %.2f ms, max %.2f ms, each including its fsync "
           "(target p99 <= 5 ms: %s).\n",
           b->count, o->rate_per_s, o->latency_s, (double)p50 / 1000, (double)p99 / 1000,
           (double)p999 / 1000, (double)max / 1000, p99 <= 5000 ? "met" : "MISSED");
}

static int section_latency(bench_stack_t *st, const opts_t *o)
{
    printf("\n[3] command latency at a steady %d/s\n", o->rate_per_s);
    bench_lat_t b = {.service = producer_names[0], .count = (long)o->rate_per_s * o->latency_s};
    b.client = zbus_client_new(st->zctx, st->broker);
    b.sent_us = malloc((size_t)b.count * sizeof *b.sent_us);
    b.latency_us = malloc((size_t)b.count * sizeof *b.latency_us);
    ZASSERT(b.client != NULL && b.sent_us != NULL && b.latency_us != NULL);
    for (long i = 0; i < b.count; i++) {
        b.latency_us[i] = -1;
    }
    lat_run(&b, 1000000 / o->rate_per_s);
    lat_report(&b, o);
    int rc = b.ok == b.count ? 0 : -1;
    zbus_client_destroy(&b.client);
    free(b.sent_us);
    free(b.latency_us);
    return rc;
}

/* ---- main --------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: zhili-bench-bus [--quick] [--commands N] [--events M] [--window W]\n"
                    "                       [--producers P] [--clients C] [--consume N]\n"
                    "                       [--latency-s S] [--rate R] [--batch-max B] [--lossy]\n"
                    "                       [--only commands|events|consume|latency]\n");
}

static bool arg_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* One option with its value; false for an unknown option or a bad value. */
static bool opt_set(opts_t *o, const char *name, const char *value)
{
    long v = 0;
    if (strcmp(name, "--only") == 0) {
        o->only = value;
        return strcmp(value, "commands") == 0 || strcmp(value, "events") == 0 ||
               strcmp(value, "consume") == 0 || strcmp(value, "latency") == 0;
    }
    if (!arg_long(value, 1, COUNT_MAX, &v)) {
        return false;
    }
    if (strcmp(name, "--commands") == 0) {
        o->commands = v;
    } else if (strcmp(name, "--events") == 0) {
        o->events = v;
    } else if (strcmp(name, "--window") == 0) {
        o->window = v;
    } else if (strcmp(name, "--consume") == 0) {
        o->consume = v;
    } else if (strcmp(name, "--producers") == 0 && v <= PRODUCERS_MAX) {
        o->producers = (int)v;
    } else if (strcmp(name, "--clients") == 0 && v <= CLIENTS_MAX) {
        o->clients = (int)v;
    } else if (strcmp(name, "--latency-s") == 0 && v <= 3600) {
        o->latency_s = (int)v;
    } else if (strcmp(name, "--rate") == 0 && v <= 100000) {
        o->rate_per_s = (int)v;
    } else if (strcmp(name, "--batch-max") == 0 && v <= 100000) {
        o->batch_max = (int)v;
    } else {
        return false;
    }
    return true;
}

static int opts_parse(opts_t *o, int argc, char **argv)
{
    *o = (opts_t){.commands = 200000,
                  .window = 2000,
                  .events = 1000000,
                  .consume = 100000,
                  .producers = 1,
                  .clients = 1,
                  .latency_s = 10,
                  .rate_per_s = 1000};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--lossy") == 0) {
            o->lossy = true;
        } else if (strcmp(argv[i], "--quick") == 0) {
            o->commands = 20000;
            o->events = 100000;
            o->consume = 10000;
            o->latency_s = 2;
        } else if (i + 1 >= argc || !opt_set(o, argv[i], argv[i + 1])) {
            fprintf(stderr, "zhili-bench-bus: bad option or value: %s\n", argv[i]);
            usage();
            return -1;
        } else {
            i++;
        }
    }
    if ((long)o->rate_per_s * o->latency_s > LATENCY_COMMANDS_MAX) {
        fprintf(stderr, "zhili-bench-bus: --rate x --latency-s must stay under %ld\n",
                LATENCY_COMMANDS_MAX);
        return -1;
    }
    return 0;
}

static bool wanted(const opts_t *o, const char *section)
{
    return o->only == NULL || strcmp(o->only, section) == 0;
}

/* Other work on the machine skews every figure; the load average shows it. */
static void print_loadavg(const char *when)
{
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fgets(buf, sizeof buf, f) == NULL) {
            snprintf(buf, sizeof buf, "?\n");
        }
        fclose(f);
    }
    printf("loadavg_%s %s", when, buf);
}

static void header(const opts_t *o)
{
    struct utsname u;
    uname(&u);
    char date[32];
    time_t t = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    printf("zhili-bench-bus: nproc %ld, kernel %s, %s\n", sysconf(_SC_NPROCESSORS_ONLN), u.release,
           date);
    printf("options: commands %ld window %ld producers %d clients %d events %ld consume %ld "
           "latency %d s at %d/s batch_max %d\n",
           o->commands, o->window, o->producers, o->clients, o->events, o->consume, o->latency_s,
           o->rate_per_s, o->batch_max);
    print_loadavg("start");
    fflush(stdout);
}

typedef struct {
    unsigned long long busy, iowait, steal, total;
} cpu_sample_t;

/* The machine-wide counters of /proc/stat's first line (user nice system
 * idle iowait irq softirq steal), zero when unreadable. */
static cpu_sample_t cpu_sample(void)
{
    cpu_sample_t c = {0, 0, 0, 0};
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f != NULL) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) == 8) {
            c.busy = v[0] + v[1] + v[2] + v[5] + v[6];
            c.iowait = v[4];
            c.steal = v[7];
            c.total = c.busy + v[3] + v[4] + v[7];
        }
        fclose(f);
    }
    return c;
}

static int section_raw_one(bench_stack_t *st, const opts_t *o)
{
    return section_raw(st, o->events, 1, o->lossy);
}

static int section_raw_ten(bench_stack_t *st, const opts_t *o)
{
    return section_raw(st, o->events, SUBSCRIBERS_MAX, o->lossy);
}

typedef struct {
    const char *name; /* for --only */
    int (*run)(bench_stack_t *st, const opts_t *o);
} section_t;

static const section_t sections[] = {
    {"commands", section_commands}, {"events", section_raw_one},  {"events", section_raw_ten},
    {"consume", section_consume},   {"consume", section_catchup}, {"latency", section_latency},
};

/* Run one section and say how busy the whole machine was meanwhile: every
 * process here shares 2 cores, so a saturated CPU is the usual limit. */
static int section_run(bench_stack_t *st, const opts_t *o, const section_t *sec)
{
    cpu_sample_t a = cpu_sample();
    int rc = sec->run(st, o);
    cpu_sample_t b = cpu_sample();
    double total = b.total > a.total ? (double)(b.total - a.total) : 1.0;
    printf("cpu_busy_pct %.0f\n", 100.0 * (double)(b.busy - a.busy) / total);
    printf("cpu_iowait_pct %.0f\n", 100.0 * (double)(b.iowait - a.iowait) / total);
    printf("cpu_steal_pct %.0f\n", 100.0 * (double)(b.steal - a.steal) / total);
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv)
{
    opts_t o;
    if (opts_parse(&o, argc, argv) != 0) {
        return 2;
    }
    zlog_init("bench", ZLOG_WARN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    header(&o);
    bench_stack_t st;
    memset(&st, 0, sizeof st);
    int failed = stack_start(&st, &o) != 0;
    for (size_t i = 0; i < sizeof sections / sizeof sections[0] && !failed; i++) {
        if (wanted(&o, sections[i].name)) {
            failed = section_run(&st, &o, &sections[i]) != 0;
        }
    }
    stack_stop(&st);
    g_stack = NULL;
    printf("\n");
    print_loadavg("end");
    return failed ? 1 : 0;
}
