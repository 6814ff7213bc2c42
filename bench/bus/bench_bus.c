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
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/common/bench_util.h"
#include "common/bus.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

#define CLIENTS_MAX 8
#define PRODUCERS_MAX 4
#define SUBSCRIBERS_MAX 10
#define READY_TIMEOUT_MS 15000
#define CALL_TIMEOUT_MS 10000
#define LOAD_TIMEOUT_MS 300000
#define SUB_IDLE_US 2000000 /* a subscriber gives up 2 s after the last message */
#define WARMUP_TIMEOUT_MS 5000
#define APPLIED_TIMEOUT_MS 120000
#define LATENCY_DRAIN_US 3000000 /* replies still awaited after the last send */
#define EVENT_BYTES 300          /* serialized Event size for the raw path */
#define EVENT_BYTES_MAX 512
#define COUNT_MAX 100000000L
#define LATENCY_COMMANDS_MAX 10000000L /* rate x seconds; two int64 arrays of this */
#define RAW_TOPIC "bench.added"
#define WARM_TOPIC "bench.warm"

_Static_assert(EVENT_BYTES < EVENT_BYTES_MAX, "the event buffer must hold the event");
_Static_assert(1 + PRODUCERS_MAX + 3 <= ZBENCH_CHILDREN_MAX,
               "broker, producers, feed, sink and late fit in the stack");

typedef struct {
    long commands, window, events, consume;
    int producers, clients;
    int latency_s, rate_per_s;
    int batch_max; /* 0: the service default */
    bool lossy;    /* the raw publisher drops at its high-water mark instead of waiting */
    const char *only;
} opts_t;

typedef struct {
    zbench_stack_t z; /* the children, the directory, the endpoints, the control client */
    int batch_max;
} bench_stack_t;

/* The children, for the signal handler; main.c-level state by the house rules. */
static bench_stack_t *g_stack;

/* ---- children ----------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    zbench_stack_kill(g_stack != NULL ? &g_stack->z : NULL);
    _exit(130);
}

/* Start bin_dir/binary as service `name` (NULL for the broker), consuming
 * `consume` ("" for none). 0, or -1 when it cannot be started. */
static int child_spawn(bench_stack_t *st, const char *binary, const char *name, const char *consume)
{
    char over[3][ZBENCH_ENV_VAR_BYTES_MAX];
    snprintf(over[0], sizeof over[0], "ZHILI_SERVICE_NAME=%s", name ? name : "");
    snprintf(over[1], sizeof over[1], "ZHILI_TESTSVC_CONSUME=%s", consume);
    snprintf(over[2], sizeof over[2], "ZHILI_BATCH_MAX=%d", st->batch_max);
    return zbench_child_spawn(&st->z, binary, NULL, over, st->batch_max > 0 ? 3 : 2) < 0 ? -1 : 0;
}

static int64_t broker_stat(bench_stack_t *st, const char *stat)
{
    Zhili__V1__Stats *stats = NULL;
    int64_t v = -1;
    if (zbus_broker_stats(st->z.client, CALL_TIMEOUT_MS, &stats) == 0) {
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
    return zbench_service_wait(&st->z, name, READY_TIMEOUT_MS);
}

static const char *const producer_names[PRODUCERS_MAX] = {"prod-a", "prod-b", "prod-c", "prod-d"};

/* Directories, ports and the environment every child inherits are set before
 * any thread exists (setenv is not thread-safe). */
static int stack_start(bench_stack_t *st, const opts_t *o)
{
    st->batch_max = o->batch_max;
    if (zbench_stack_configure(&st->z, "zhili-bench-bus", "/tmp/zhili-bench-XXXXXX", false,
                               CALL_TIMEOUT_MS) != 0) {
        fprintf(stderr, "zhili-bench-bus: cannot prepare %s: %s\n", st->z.dir, strerror(errno));
        return -1;
    }
    g_stack = st;
    st->z.zctx = zmq_ctx_new();
    if (st->z.zctx == NULL || child_spawn(st, "zhili-broker", NULL, "") != 0 ||
        zbench_broker_wait(&st->z, READY_TIMEOUT_MS) != 0) {
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
    zbench_load_t l;
    char counter[32], rid_prefix[40]; /* "<prefix><client>", and that with "-" */
} bench_load_t;

static void *load_main(void *arg)
{
    bench_load_t *b = arg;
    zbench_load_run(&b->l, LOAD_TIMEOUT_MS);
    return NULL;
}

/* Run `clients` pipelined loads of `count` commands in all, in threads; the
 * summary lands in *sum (ok, replied, count, start_us, end_us, first_error). */
static int load_parallel(bench_stack_t *st, const char *const *services, int service_count,
                         int clients, long count, long window, const char *prefix,
                         zbench_load_t *sum)
{
    bench_load_t loads[CLIENTS_MAX];
    pthread_t threads[CLIENTS_MAX];
    memset(loads, 0, sizeof loads);
    memset(sum, 0, sizeof *sum);
    for (int i = 0; i < clients; i++) {
        zbench_load_t *l = &loads[i].l;
        /* Both names from one local copy: formatting one member of loads[i]
         * from another reads, to the sanitizer build's -Wrestrict, as overlap. */
        char name[sizeof loads[i].counter];
        snprintf(name, sizeof name, "%s%d", prefix, i);
        snprintf(loads[i].counter, sizeof loads[i].counter, "%s", name);
        snprintf(loads[i].rid_prefix, sizeof loads[i].rid_prefix, "%s-", name);
        l->client = zbus_client_new(st->z.zctx, st->z.broker);
        l->services = services;
        l->service_count = service_count;
        l->rid_prefix = loads[i].rid_prefix;
        l->counter = loads[i].counter;
        l->count = count / clients + (i == 0 ? count % clients : 0);
        l->window = window;
        ZASSERT(l->client != NULL);
    }
    for (int i = 0; i < clients; i++) {
        ZASSERT(pthread_create(&threads[i], NULL, load_main, &loads[i]) == 0);
    }
    for (int i = 0; i < clients; i++) {
        pthread_join(threads[i], NULL);
        zbench_load_t *l = &loads[i].l;
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
        sum += zbench_stat(&st->z, producer_names[i], "batches_total", "");
    }
    return sum;
}

static int section_commands(bench_stack_t *st, const opts_t *o)
{
    printf("\n[1] durable commands through the broker\n");
    int64_t batches_before = batches_sum(st, o->producers);
    zbench_load_t sum;
    int rc = load_parallel(st, producer_names, o->producers, o->clients, o->commands, o->window,
                           "c", &sum);
    int64_t batches = batches_sum(st, o->producers) - batches_before;
    double rate = zbench_per_s(sum.ok, sum.end_us - sum.start_us);
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
        b->last_us = zbench_now_us();
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
    b->last_us = zbench_now_us();
    while (b->received < b->expected) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 100);
        sub_drain(b, sock);
        int64_t done_us = atomic_load(&b->published_end_us);
        int64_t idle_from = b->last_us > done_us ? b->last_us : done_us;
        if (done_us > 0 && zbench_now_us() - idle_from > SUB_IDLE_US) {
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
        double r = zbench_per_s(subs[i].received, subs[i].last_us - start_us);
        slowest = i == 0 || r < slowest ? r : slowest;
    }
    long lost = events * count - total;
    double each = zbench_per_s(total / count, last - start_us);
    printf("events_raw_subscribers %d\n", count);
    printf("events_raw_published_per_s %.0f\n", zbench_per_s(events, pub_end_us - start_us));
    printf("events_raw_forwarded_by_broker %lld\n", (long long)forwarded);
    printf("events_raw_per_s_per_subscriber %.0f\n", each);
    printf("events_raw_per_s_slowest_subscriber %.0f\n", slowest);
    printf("events_raw_delivered_per_s_total %.0f\n", zbench_per_s(total, last - start_us));
    printf("events_raw_lost %ld\n", lost);
    printf("%ld events of %zu bytes published as fast as possible reached %d subscriber(s) at "
           "%.0f/s each (%.0f deliveries/s in all); %ld of %ld deliveries were lost (PUB/SUB may "
           "drop at a full high-water mark; the runtime recovers by replay).\n",
           events, (size_t)EVENT_BYTES, count, each, zbench_per_s(total, last - start_us), lost,
           events * count);
}

static int section_raw(bench_stack_t *st, long events, int count, bool lossy)
{
    printf("\n[2a] raw events: PUB (%s) -> broker XSUB/XPUB -> %d SUB\n",
           lossy ? "dropping at its HWM" : "waiting at its HWM", count);
    bench_sub_t subs[SUBSCRIBERS_MAX];
    pthread_t threads[SUBSCRIBERS_MAX];
    void *pub = zbus_socket_new(st->z.zctx, ZMQ_PUB);
    ZASSERT(pub != NULL && count <= SUBSCRIBERS_MAX);
    /* A plain PUB fills its 200k pipe in a fraction of a second and drops the
     * rest, which measures the high-water mark, not the path; NODROP makes the
     * send wait instead, so the publisher runs at the speed the broker takes. */
    int nodrop = lossy ? 0 : 1;
    ZASSERT(zmq_setsockopt(pub, ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop) == 0);
    ZASSERT(zmq_connect(pub, st->z.events_pub) == 0);
    memset(subs, 0, sizeof subs);
    for (int i = 0; i < count; i++) {
        subs[i].zctx = st->z.zctx;
        subs[i].endpoint = st->z.events_sub;
        subs[i].expected = events;
        ZASSERT(pthread_create(&threads[i], NULL, sub_main, &subs[i]) == 0);
    }
    uint8_t ev[EVENT_BYTES_MAX];
    size_t len = event_build(ev);
    int rc = raw_warmup(pub, subs, count, ev, len);
    int64_t forwarded_before = broker_stat(st, "broker_events_forwarded_total");
    int64_t start = zbench_now_us();
    for (long i = 0; i < events && rc == 0; i++) {
        zmq_send(pub, RAW_TOPIC, strlen(RAW_TOPIC), ZMQ_SNDMORE);
        zmq_send(pub, ev, len, 0);
    }
    int64_t pub_end = zbench_now_us();
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
    if (zbench_call(&st->z, sink, &cmd, &r) == 0 &&
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
    *end_us = zbench_now_us();
    while (applied < want && zclock_mono_ms() < give_up) {
        applied = applied_get(st, sink, source, bad);
        *end_us = zbench_now_us();
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
    zbench_load_t sum;
    int64_t bad = 0, end_us = 0;
    int rc = load_parallel(st, feed, 1, 1, o->consume, o->window, "e", &sum);
    int64_t applied = rc == 0 ? applied_wait(st, "sink", "feed", o->consume, &bad, &end_us) : 0;
    int64_t batches = zbench_stat(&st->z, "sink", "batches_total", "");
    double rate = zbench_per_s((long)applied, end_us - sum.start_us);
    printf("events_consumed %lld\n", (long long)applied);
    printf("events_consumed_duplicates_or_out_of_order %lld\n", (long long)bad);
    printf("events_produced_per_s %.0f\n", zbench_per_s(sum.ok, sum.end_us - sum.start_us));
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
    int64_t start_us = zbench_now_us(), bad = 0, end_us = 0;
    if (service_start(st, "late", "feed.") != 0) {
        return -1;
    }
    int64_t applied = applied_wait(st, "late", "feed", o->consume, &bad, &end_us);
    double rate = zbench_per_s((long)applied, end_us - start_us);
    printf("events_caught_up %lld\n", (long long)applied);
    printf("events_caught_up_duplicates_or_out_of_order %lld\n", (long long)bad);
    printf("events_caught_up_per_s %.0f\n", rate);
    printf("a consumer started after feed had %ld events applied %lld of them by replay at "
           "%.0f/s, measured from its start.\n",
           o->consume, (long long)applied, rate);
    return applied == o->consume && bad == 0 ? 0 : -1;
}

/* ---- 3. latency at a steady rate ---------------------------------------- */

static void lat_report(zbench_paced_t *b, const opts_t *o)
{
    long n = 0;
    for (long i = 0; i < b->count; i++) {
        if (b->ack_us[i] >= 0) {
            b->ack_us[n++] = b->ack_us[i];
        }
    }
    if (n == 0) {
        printf("no command was answered\n");
        return;
    }
    qsort(b->ack_us, (size_t)n, sizeof *b->ack_us, zbench_i64_cmp);
    int64_t p50 = zbench_quantile(b->ack_us, n, 0.50), p99 = zbench_quantile(b->ack_us, n, 0.99);
    int64_t p999 = zbench_quantile(b->ack_us, n, 0.999), max = b->ack_us[n - 1];
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
    zbench_paced_t b = {.service = producer_names[0], .count = (long)o->rate_per_s * o->latency_s};
    b.client = zbus_client_new(st->z.zctx, st->z.broker);
    b.sent_us = malloc((size_t)b.count * sizeof *b.sent_us);
    b.ack_us = malloc((size_t)b.count * sizeof *b.ack_us);
    ZASSERT(b.client != NULL && b.sent_us != NULL && b.ack_us != NULL);
    for (long i = 0; i < b.count; i++) {
        b.ack_us[i] = -1;
    }
    zbench_paced_run(&b, 1000000 / o->rate_per_s);
    int64_t end = zbench_now_us() + LATENCY_DRAIN_US;
    while (b.replied < b.count && zbench_now_us() < end) {
        zbench_client_wait(b.client, end);
        zbench_paced_drain(&b);
    }
    lat_report(&b, o);
    int rc = b.ok == b.count ? 0 : -1;
    zbus_client_destroy(&b.client);
    free(b.sent_us);
    free(b.ack_us);
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

/* One option with its value; false for an unknown option or a bad value. */
static bool opt_set(opts_t *o, const char *name, const char *value)
{
    long v = 0;
    if (strcmp(name, "--only") == 0) {
        o->only = value;
        return strcmp(value, "commands") == 0 || strcmp(value, "events") == 0 ||
               strcmp(value, "consume") == 0 || strcmp(value, "latency") == 0;
    }
    if (!zbench_arg_long(value, 1, COUNT_MAX, &v)) {
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

static void header(const opts_t *o)
{
    zbench_host_print("zhili-bench-bus");
    printf("options: commands %ld window %ld producers %d clients %d events %ld consume %ld "
           "latency %d s at %d/s batch_max %d\n",
           o->commands, o->window, o->producers, o->clients, o->events, o->consume, o->latency_s,
           o->rate_per_s, o->batch_max);
    zbench_loadavg_print("start");
    fflush(stdout);
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
    zbench_cpu_t a = zbench_cpu_sample();
    int rc = sec->run(st, o);
    zbench_cpu_print(a, zbench_cpu_sample());
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
    zbench_signals_set(on_signal);
    header(&o);
    bench_stack_t st;
    memset(&st, 0, sizeof st);
    int failed = stack_start(&st, &o) != 0;
    for (size_t i = 0; i < sizeof sections / sizeof sections[0] && !failed; i++) {
        if (wanted(&o, sections[i].name)) {
            failed = section_run(&st, &o, &sections[i]) != 0;
        }
    }
    zbench_stack_stop(&st.z, ZBENCH_STOP_TIMEOUT_MS);
    g_stack = NULL;
    printf("\n");
    zbench_loadavg_print("end");
    return failed ? 1 : 0;
}
