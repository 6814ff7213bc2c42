/* zhili-bench-codec: the cost of one pack, unpack and free of the bus
 * envelopes, protobuf-c's generic functions ("generic": what zcodec_pack,
 * zcodec_unpack and the generated *_free_unpacked did before the envelope fast
 * paths) against common/codec ("zcodec": zcodec_pack, zcodec_unpack,
 * zcodec_free). docs/performance.md records the results.
 *
 * The messages are the ones a GET through the gateway makes: the Command the
 * gateway packs and the service unpacks, the Reply going back, and an Event as
 * a service publishes one. Each operation is a function of its own that is
 * never inlined, so that under callgrind its inclusive cost divided by the
 * iterations is the instructions per call:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out zhili-bench-codec 10000
 *   callgrind_annotate --inclusive=yes cg.out | grep op_
 *
 * Run plainly it prints "name value" lines: nanoseconds per call of each
 * operation. Usage: zhili-bench-codec [iterations [command|reply|event]]
 * (default 1000000 iterations, all three messages). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/common/bench_util.h"
#include "common/codec.h"
#include "common/err.h"
#include "zhili.pb-c.h"

#define ITERATIONS_DEFAULT 1000000L
#define ITERATIONS_MAX 1000000000L

/* The three envelopes, built on the stack as the gateway and services do. */
typedef struct {
    Zhili__V1__Actor actor;
    Zhili__Test__CounterGet get;
    Zhili__V1__Command cmd;
    Zhili__Test__CounterValue value;
    Zhili__V1__Reply reply;
    Zhili__Test__CounterAdded added;
    Zhili__V1__Event event;
} samples_t;

static void samples_init(samples_t *s)
{
    s->actor = (Zhili__V1__Actor)ZHILI__V1__ACTOR__INIT;
    s->actor.id = "tok-4f1c2a";
    s->actor.role = "admin";
    s->actor.name = "bench";
    s->get = (Zhili__Test__CounterGet)ZHILI__TEST__COUNTER_GET__INIT;
    s->get.name = "c";
    s->cmd = (Zhili__V1__Command)ZHILI__V1__COMMAND__INIT;
    s->cmd.request_id = "gw-1700000000000-42";
    s->cmd.actor = &s->actor;
    s->cmd.body_case = ZHILI__V1__COMMAND__BODY_COUNTER_GET;
    s->cmd.counter_get = &s->get;
    s->value = (Zhili__Test__CounterValue)ZHILI__TEST__COUNTER_VALUE__INIT;
    s->value.name = "c";
    s->value.value = 12345;
    s->value.adds = 678;
    s->reply = (Zhili__V1__Reply)ZHILI__V1__REPLY__INIT;
    s->reply.request_id = "gw-1700000000000-42";
    s->reply.result_case = ZHILI__V1__REPLY__RESULT_COUNTER;
    s->reply.counter = &s->value;
    s->added = (Zhili__Test__CounterAdded)ZHILI__TEST__COUNTER_ADDED__INIT;
    s->added.name = "c";
    s->added.amount = 1;
    s->added.value = 12346;
    s->event = (Zhili__V1__Event)ZHILI__V1__EVENT__INIT;
    s->event.source = "testsvc";
    s->event.seq = 98765;
    s->event.ts_ms = 1700000000000;
    s->event.type = "counter_added";
    s->event.request_id = "gw-1700000000000-43";
    s->event.actor = &s->actor;
    s->event.body_case = ZHILI__V1__EVENT__BODY_COUNTER_ADDED;
    s->event.counter_added = &s->added;
}

/* ---- the operations, one function each --------------------------------- */

/* Exactly what zcodec_pack did before: size, allocate, pack. */
__attribute__((noinline)) static size_t op_pack_generic(const ProtobufCMessage *msg)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(size > 0 ? size : 1);
    ZASSERT(buf != NULL);
    size_t len = protobuf_c_message_pack(msg, buf);
    free(buf);
    return len;
}

__attribute__((noinline)) static size_t op_pack_zcodec(const ProtobufCMessage *msg)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = zcodec_pack(msg, 0, &buf, &len);
    ZASSERT(rc == ZE_OK);
    free(buf);
    return len;
}

__attribute__((noinline)) static ProtobufCMessage *
op_unpack_generic(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len)
{
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, len, data);
    ZASSERT(msg != NULL);
    return msg;
}

__attribute__((noinline)) static ProtobufCMessage *
op_unpack_zcodec(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len)
{
    ProtobufCMessage *msg = NULL;
    int rc = zcodec_unpack(desc, data, len, 0, &msg);
    ZASSERT(rc == ZE_OK);
    return msg;
}

__attribute__((noinline)) static void op_free_generic(ProtobufCMessage *msg)
{
    protobuf_c_message_free_unpacked(msg, NULL);
}

__attribute__((noinline)) static void op_free_zcodec(ProtobufCMessage *msg)
{
    zcodec_free(msg);
}

/* ---- timing ------------------------------------------------------------ */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ns per call of pack, then of unpack + free, for one message and one side. */
static void bench_side(const char *name, const char *side, const ProtobufCMessage *msg,
                       long iterations, bool zcodec)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = zcodec_pack(msg, 0, &bytes, &len);
    ZASSERT(rc == ZE_OK);
    double start = now_ns();
    for (long i = 0; i < iterations; i++) {
        if (zcodec) {
            op_pack_zcodec(msg);
        } else {
            op_pack_generic(msg);
        }
    }
    double packed = now_ns();
    for (long i = 0; i < iterations; i++) {
        if (zcodec) {
            op_free_zcodec(op_unpack_zcodec(msg->descriptor, bytes, len));
        } else {
            op_free_generic(op_unpack_generic(msg->descriptor, bytes, len));
        }
    }
    double unpacked = now_ns();
    printf("%s_pack_%s_ns %.1f\n", name, side, (packed - start) / (double)iterations);
    printf("%s_unpack_free_%s_ns %.1f\n", name, side, (unpacked - packed) / (double)iterations);
    free(bytes);
}

static void bench_message(const char *name, const ProtobufCMessage *msg, long iterations)
{
    printf("%s_bytes %zu\n", name, protobuf_c_message_get_packed_size(msg));
    bench_side(name, "generic", msg, iterations, false);
    bench_side(name, "zcodec", msg, iterations, true);
}

int main(int argc, char **argv)
{
    long iterations = ITERATIONS_DEFAULT;
    const char *only = argc > 2 ? argv[2] : NULL;
    if (argc > 3 || (argc >= 2 && !zbench_arg_long(argv[1], 1, ITERATIONS_MAX, &iterations))) {
        fprintf(stderr, "usage: zhili-bench-codec [iterations (1..%ld) [command|reply|event]]\n",
                ITERATIONS_MAX);
        return 2;
    }
    samples_t s;
    samples_init(&s);
    const struct {
        const char *name;
        const ProtobufCMessage *msg;
    } messages[] = {
        {"command", &s.cmd.base},
        {"reply", &s.reply.base},
        {"event", &s.event.base},
    };
    bool any = false;
    for (size_t i = 0; i < ZARRAY_LEN(messages); i++) {
        if (only == NULL || strcmp(only, messages[i].name) == 0) {
            bench_message(messages[i].name, messages[i].msg, iterations);
            any = true;
        }
    }
    if (!any) {
        fprintf(stderr, "zhili-bench-codec: no message named %s\n", only);
        return 2;
    }
    return 0;
}
