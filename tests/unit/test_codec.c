/* Unit tests for common/codec: protobuf pack/unpack limits, the envelope fast
 * paths (byte for byte against protobuf-c) and the generic protobuf <-> JSON
 * mapping (common/json.c). Messages are compared by packing
 * both and comparing the bytes, which covers every field at once. Run under
 * valgrind to check that every error path frees what it built. */
/* cmocka needs these before it, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/err.h"
#include "zhili.pb-c.h"

/* ---- helpers ----------------------------------------------------------- */

/* Whether a and b pack to the same bytes. */
static bool same_packed(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    uint8_t *abuf = NULL;
    uint8_t *bbuf = NULL;
    size_t alen = 0;
    size_t blen = 0;
    assert_int_equal(zcodec_pack(a, 0, &abuf, &alen), ZE_OK);
    assert_int_equal(zcodec_pack(b, 0, &bbuf, &blen), ZE_OK);
    bool same = alen == blen && memcmp(abuf, bbuf, alen) == 0;
    free(abuf);
    free(bbuf);
    return same;
}

static void assert_same_msg(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    if (!same_packed(a, b)) {
        fail_msg("two %s messages pack to different bytes", a->descriptor->name);
    }
}

/* Message -> compact JSON text; the caller frees it. */
static char *to_text(const ProtobufCMessage *msg)
{
    json_t *json = zjson_from_msg(msg);
    assert_non_null(json);
    char *text = json_dumps(json, JSON_COMPACT);
    assert_non_null(text);
    json_decref(json);
    return text;
}

/* Message -> JSON text -> message, which must pack to the same bytes.
 * Returns the JSON text for further checks; the caller frees it. */
static char *round_trip(const ProtobufCMessage *msg)
{
    char *text = to_text(msg);
    char err[ZCODEC_ERR_BYTES];
    char field[ZCODEC_ERR_BYTES];
    ProtobufCMessage *back = NULL;
    int rc = zjson_parse_msg(text, strlen(text), msg->descriptor, &back, err, field);
    if (rc != ZE_OK) {
        fail_msg("round trip of %s failed: %s", text, err);
    }
    assert_string_equal(err, "");
    assert_same_msg(msg, back);
    protobuf_c_message_free_unpacked(back, NULL);
    return text;
}

/* Parses text that must be refused with exactly err_want and field_want. */
static void expect_error(const ProtobufCMessageDescriptor *desc, const char *text,
                         const char *err_want, const char *field_want)
{
    char err[ZCODEC_ERR_BYTES];
    char field[ZCODEC_ERR_BYTES];
    ProtobufCMessage *out = (ProtobufCMessage *)1;
    int rc = zjson_parse_msg(text, strlen(text), desc, &out, err, field);
    if (rc != ZE_INVALID) {
        fail_msg("%s: expected ZE_INVALID, got %d", text, rc);
    }
    assert_null(out);
    assert_string_equal(err, err_want);
    if (field_want != NULL) {
        assert_string_equal(field, field_want);
    }
}

/* Parses text that must be accepted; the caller frees the message. */
static ProtobufCMessage *expect_ok(const ProtobufCMessageDescriptor *desc, const char *text)
{
    char err[ZCODEC_ERR_BYTES];
    ProtobufCMessage *out = NULL;
    int rc = zjson_parse_msg(text, strlen(text), desc, &out, err, NULL);
    if (rc != ZE_OK) {
        fail_msg("%s: expected ZE_OK, got %d: %s", text, rc, err);
    }
    assert_non_null(out);
    return out;
}

static bool contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

/* ---- a hand-built message for the types zhili.proto does not use ------- */

typedef struct {
    ProtobufCMessage base;
    int32_t i32;
    uint32_t u32;
    float f;
    double d;
    protobuf_c_boolean b;
    uint64_t fx64;
    size_t n_ri32;
    int32_t *ri32;
    size_t n_rs;
    char **rs;
    size_t n_renum;
    int *renum;
    protobuf_c_boolean has_opt;
    int32_t opt;
    int32_t s32;
} scalars_t;

/* A hand-made message type of this file: prefix_t, prefix_fields,
 * prefix_by_name, prefix_ranges (n_ranges of them) and prefix_init. */
#define TEST_DESCRIPTOR(prefix, Name, n_ranges)                                                    \
    static const ProtobufCMessageDescriptor prefix##_descriptor = {                                \
        .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,                                             \
        .name = "zhili.test." #Name,                                                               \
        .short_name = #Name,                                                                       \
        .c_name = #prefix "_t",                                                                    \
        .package_name = "zhili.test",                                                              \
        .sizeof_message = sizeof(prefix##_t),                                                      \
        .n_fields = ZARRAY_LEN(prefix##_fields),                                                   \
        .fields = prefix##_fields,                                                                 \
        .fields_sorted_by_name = prefix##_by_name,                                                 \
        .n_field_ranges = n_ranges,                                                                \
        .field_ranges = prefix##_ranges,                                                           \
        .message_init = prefix##_init,                                                             \
    }

static const ProtobufCMessageDescriptor scalars_descriptor;

static void scalars_init(ProtobufCMessage *msg)
{
    static const scalars_t init = {.base = PROTOBUF_C_MESSAGE_INIT(&scalars_descriptor)};
    memcpy(msg, &init, sizeof init);
}

#define SCALAR(name_, id_, label_, type_, q_, desc_, flags_)                                       \
    {                                                                                              \
        .name = #name_, .id = id_, .label = PROTOBUF_C_LABEL_##label_,                             \
        .type = PROTOBUF_C_TYPE_##type_, .quantifier_offset = q_,                                  \
        .offset = offsetof(scalars_t, name_), .descriptor = desc_, .flags = flags_                 \
    }

static const ProtobufCFieldDescriptor scalars_fields[] = {
    SCALAR(i32, 1, NONE, INT32, 0, NULL, 0),
    SCALAR(u32, 2, NONE, UINT32, 0, NULL, 0),
    SCALAR(f, 3, NONE, FLOAT, 0, NULL, 0),
    SCALAR(d, 4, NONE, DOUBLE, 0, NULL, 0),
    SCALAR(b, 5, NONE, BOOL, 0, NULL, 0),
    SCALAR(fx64, 6, NONE, FIXED64, 0, NULL, 0),
    SCALAR(ri32, 7, REPEATED, INT32, offsetof(scalars_t, n_ri32), NULL,
           PROTOBUF_C_FIELD_FLAG_PACKED),
    SCALAR(rs, 8, REPEATED, STRING, offsetof(scalars_t, n_rs), NULL, 0),
    SCALAR(renum, 9, REPEATED, ENUM, offsetof(scalars_t, n_renum), &zhili__v1__status__descriptor,
           PROTOBUF_C_FIELD_FLAG_PACKED),
    SCALAR(opt, 10, OPTIONAL, INT32, offsetof(scalars_t, has_opt), NULL, 0),
    SCALAR(s32, 11, NONE, SINT32, 0, NULL, 0),
};
/* Indexes into scalars_fields in strcmp order of the names. */
static const unsigned scalars_by_name[] = {4, 3, 2, 5, 0, 9, 8, 6, 7, 10, 1};
static const ProtobufCIntRange scalars_ranges[] = {{1, 0}, {0, 11}};

TEST_DESCRIPTOR(scalars, Scalars, 1);

/* Enums whose CamelCase names exercise the prefix rule. */
static const ProtobufCEnumValue urgency_values[] = {
    {"URGENCY_LEVEL_LOW", "URGENCY_LEVEL_LOW", 0},
    {"URGENCY_LEVEL_HIGH", "URGENCY_LEVEL_HIGH", 1},
    {"URGENCY_LEVEL", "URGENCY_LEVEL", 2},
};
static const ProtobufCEnumValueIndex urgency_by_name[] = {
    {"URGENCY_LEVEL", 2}, {"URGENCY_LEVEL_HIGH", 1}, {"URGENCY_LEVEL_LOW", 0}};
static const ProtobufCIntRange urgency_ranges[] = {{0, 0}, {0, 3}};
static const ProtobufCEnumDescriptor urgency_descriptor = {
    .magic = PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC,
    .name = "zhili.test.UrgencyLevel",
    .short_name = "UrgencyLevel",
    .c_name = "UrgencyLevel",
    .package_name = "zhili.test",
    .n_values = 3,
    .values = urgency_values,
    .n_value_names = 3,
    .values_by_name = urgency_by_name,
    .n_value_ranges = 1,
    .value_ranges = urgency_ranges,
};

static const ProtobufCEnumValue http_values[] = {
    {"HTTP_CODE_OK", "HTTP_CODE_OK", 0},
    {"HTTP_CODE_NOT_MODIFIED", "HTTP_CODE_NOT_MODIFIED", 1},
    {"RED", "RED", 2},
    {"HTTPCODE_X", "HTTPCODE_X", 3},
};
static const ProtobufCEnumValueIndex http_by_name[] = {
    {"HTTPCODE_X", 3}, {"HTTP_CODE_NOT_MODIFIED", 1}, {"HTTP_CODE_OK", 0}, {"RED", 2}};
static const ProtobufCIntRange http_ranges[] = {{0, 0}, {0, 4}};
static const ProtobufCEnumDescriptor http_descriptor = {
    .magic = PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC,
    .name = "zhili.test.HTTPCode",
    .short_name = "HTTPCode",
    .c_name = "HTTPCode",
    .package_name = "zhili.test",
    .n_values = 4,
    .values = http_values,
    .n_value_names = 4,
    .values_by_name = http_by_name,
    .n_value_ranges = 1,
    .value_ranges = http_ranges,
};

/* ---- pack / unpack ----------------------------------------------------- */

static void test_pack_unpack(void **state)
{
    /* Goal: a message packs and unpacks back to the same bytes, with the
     * default limit and with a limit exactly the packed size. */
    (void)state;
    Zhili__V1__Heartbeat hb = ZHILI__V1__HEARTBEAT__INIT;
    hb.source = "funds";
    hb.last_seq = 42;
    hb.ts_ms = 1700000000000;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(zcodec_pack(&hb.base, 0, &buf, &len), ZE_OK);
    assert_int_equal(len, protobuf_c_message_get_packed_size(&hb.base));

    ProtobufCMessage *out = NULL;
    assert_int_equal(zcodec_unpack(&zhili__v1__heartbeat__descriptor, buf, len, len, &out), ZE_OK);
    assert_same_msg(&hb.base, out);
    protobuf_c_message_free_unpacked(out, NULL);
    free(buf);

    assert_int_equal(zcodec_pack(&hb.base, len, &buf, &len), ZE_OK);
    free(buf);

    /* An empty message is zero bytes and still a valid buffer. */
    Zhili__V1__StatsRequest empty = ZHILI__V1__STATS_REQUEST__INIT;
    assert_int_equal(zcodec_pack(&empty.base, 0, &buf, &len), ZE_OK);
    assert_non_null(buf);
    assert_int_equal(len, 0);
    free(buf);
    assert_int_equal(zcodec_unpack(&zhili__v1__stats_request__descriptor, NULL, 0, 0, &out), ZE_OK);
    protobuf_c_message_free_unpacked(out, NULL);
}

static void test_pack_oversize(void **state)
{
    /* Goal: packing refuses a message larger than the limit, before any
     * allocation, and leaves the outputs empty. */
    (void)state;
    Zhili__V1__Heartbeat hb = ZHILI__V1__HEARTBEAT__INIT;
    hb.source = "a-rather-long-source-name";
    size_t size = protobuf_c_message_get_packed_size(&hb.base);
    uint8_t *buf = (uint8_t *)1;
    size_t len = 99;
    assert_int_equal(zcodec_pack(&hb.base, size - 1, &buf, &len), ZE_INVALID);
    assert_null(buf);
    assert_int_equal(len, 0);
}

static void test_unpack_oversize(void **state)
{
    /* Goal: unpacking refuses input longer than the limit (explicit and the
     * default ZCODEC_MSG_BYTES_MAX) without parsing it. */
    (void)state;
    uint8_t small[4] = {0x08, 0x01, 0x10, 0x02};
    ProtobufCMessage *out = (ProtobufCMessage *)1;
    assert_int_equal(zcodec_unpack(&zhili__v1__heartbeat__descriptor, small, 4, 3, &out),
                     ZE_INVALID);
    assert_null(out);

    uint8_t *big = calloc(ZCODEC_MSG_BYTES_MAX + 1, 1);
    assert_non_null(big);
    assert_int_equal(
        zcodec_unpack(&zhili__v1__heartbeat__descriptor, big, ZCODEC_MSG_BYTES_MAX + 1, 0, &out),
        ZE_INVALID);
    assert_null(out);
    free(big);
}

static void test_unpack_malformed(void **state)
{
    /* Goal: bytes that are not a valid message are ZE_INVALID, whatever the
     * defect: truncated varint, length past the end, bad wire type. */
    (void)state;
    static const uint8_t truncated_varint[] = {0x10, 0xff};
    static const uint8_t long_length[] = {0x0a, 0x05, 'a'};
    static const uint8_t bad_wire_type[] = {0x0f, 0x00};
    static const uint8_t endless_varint[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0xff,
                                             0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const struct {
        const uint8_t *data;
        size_t len;
    } cases[] = {
        {truncated_varint, sizeof truncated_varint},
        {long_length, sizeof long_length},
        {bad_wire_type, sizeof bad_wire_type},
        {endless_varint, sizeof endless_varint},
    };
    for (size_t i = 0; i < ZARRAY_LEN(cases); i++) {
        ProtobufCMessage *out = (ProtobufCMessage *)1;
        assert_int_equal(
            zcodec_unpack(&zhili__v1__event__descriptor, cases[i].data, cases[i].len, 0, &out),
            ZE_INVALID);
        assert_null(out);
    }
}

/* ---- JSON round trips -------------------------------------------------- */

static void test_json_event_round_trip(void **state)
{
    /* Goal: every Event field, the actor and the counter_added body survive
     * JSON, and the JSON uses the .proto names and JSON integers. */
    (void)state;
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "tok-1";
    actor.role = "hotline";
    actor.area = "3301";
    actor.name = "\xe5\xbc\xa0\xe4\xb8\x89"; /* a name in Chinese: UTF-8 passes as is */
    Zhili__Test__CounterAdded added = ZHILI__TEST__COUNTER_ADDED__INIT;
    added.name = "visits";
    added.amount = -5;
    added.value = (INT64_C(1) << 53) + 1;
    Zhili__V1__Event ev = ZHILI__V1__EVENT__INIT;
    ev.source = "testsvc";
    ev.seq = UINT64_C(1) << 40;
    ev.ts_ms = 1700000000123;
    ev.area = "330102";
    ev.type = "counter_added";
    ev.request_id = "req-7";
    ev.actor = &actor;
    ev.body_case = ZHILI__V1__EVENT__BODY_COUNTER_ADDED;
    ev.counter_added = &added;
    char *text = round_trip(&ev.base);
    assert_true(contains(text, "\"seq\":1099511627776"));
    assert_true(contains(text, "\"counter_added\":{\"name\":\"visits\",\"amount\":-5,"
                               "\"value\":9007199254740993}"));
    assert_true(contains(text, "\"actor\":{\"id\":\"tok-1\""));
    free(text);
}

static void test_json_defaults_written(void **state)
{
    /* Goal: scalars are written even when zero, while an absent message and
     * an unset oneof are not written at all. */
    (void)state;
    Zhili__V1__Event ev = ZHILI__V1__EVENT__INIT;
    char *text = round_trip(&ev.base);
    assert_string_equal(text, "{\"source\":\"\",\"seq\":0,\"ts_ms\":0,\"area\":\"\",\"type\":\"\","
                              "\"request_id\":\"\"}");
    free(text);
}

static void test_json_command_each_oneof(void **state)
{
    /* Goal: every Command body member round-trips and is the only body key
     * in the JSON. */
    (void)state;
    Zhili__V1__Replay replay = ZHILI__V1__REPLAY__INIT;
    replay.from_seq = 5;
    replay.max = 100;
    Zhili__V1__StatsRequest stats = ZHILI__V1__STATS_REQUEST__INIT;
    Zhili__V1__ClockSet clock_set = ZHILI__V1__CLOCK_SET__INIT;
    clock_set.now_ms = 1700000000000;
    Zhili__V1__ClockAdvance clock_advance = ZHILI__V1__CLOCK_ADVANCE__INIT;
    clock_advance.delta_ms = -250;
    Zhili__Test__CounterAdd counter_add = ZHILI__TEST__COUNTER_ADD__INIT;
    counter_add.name = "n";
    counter_add.amount = INT64_MIN;
    Zhili__Test__CounterGet counter_get = ZHILI__TEST__COUNTER_GET__INIT;
    counter_get.name = "n";
    Zhili__Test__AppliedGet applied_get = ZHILI__TEST__APPLIED_GET__INIT;
    applied_get.source = "petitions";
    const struct {
        Zhili__V1__Command__BodyCase body;
        void *msg;
        const char *key;
    } cases[] = {
        {ZHILI__V1__COMMAND__BODY_REPLAY, &replay, "\"replay\":{\"from_seq\":5,\"max\":100}"},
        {ZHILI__V1__COMMAND__BODY_STATS, &stats, "\"stats\":{}"},
        {ZHILI__V1__COMMAND__BODY_CLOCK_SET, &clock_set,
         "\"clock_set\":{\"now_ms\":1700000000000}"},
        {ZHILI__V1__COMMAND__BODY_CLOCK_ADVANCE, &clock_advance,
         "\"clock_advance\":{\"delta_ms\":-250}"},
        {ZHILI__V1__COMMAND__BODY_COUNTER_ADD, &counter_add,
         "\"counter_add\":{\"name\":\"n\",\"amount\":-9223372036854775808}"},
        {ZHILI__V1__COMMAND__BODY_COUNTER_GET, &counter_get, "\"counter_get\":{\"name\":\"n\"}"},
        {ZHILI__V1__COMMAND__BODY_APPLIED_GET, &applied_get,
         "\"applied_get\":{\"source\":\"petitions\"}"},
    };
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.role = "admin";
    for (size_t i = 0; i < ZARRAY_LEN(cases); i++) {
        Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
        cmd.request_id = "r1";
        cmd.actor = &actor;
        cmd.area = "33";
        cmd.body_case = cases[i].body;
        cmd.replay = cases[i].msg; /* the union: any member pointer will do */
        char *text = round_trip(&cmd.base);
        assert_true(contains(text, cases[i].key));
        json_t *json = json_loads(text, 0, NULL);
        assert_int_equal(json_object_size(json), 4); /* request_id, actor, area, body */
        json_decref(json);
        free(text);
    }
}

static void test_json_reply_replay_bytes(void **state)
{
    /* Goal: a Reply with a status enum and a replay result carrying bytes
     * (a real packed Event, an empty value, all 256 byte values) round-trips,
     * with base64 and uint64 above INT64_MAX as a string. */
    (void)state;
    Zhili__V1__Event ev = ZHILI__V1__EVENT__INIT;
    ev.source = "funds";
    ev.seq = 9;
    uint8_t *packed = NULL;
    size_t packed_len = 0;
    assert_int_equal(zcodec_pack(&ev.base, 0, &packed, &packed_len), ZE_OK);
    uint8_t all[256];
    for (size_t i = 0; i < sizeof all; i++) {
        all[i] = (uint8_t)i;
    }
    ProtobufCBinaryData events[] = {
        {packed_len, packed}, {0, NULL}, {sizeof all, all}, {1, (uint8_t *)"\xff"}};
    Zhili__V1__ReplayResult rr = ZHILI__V1__REPLAY_RESULT__INIT;
    rr.source = "funds";
    rr.last_seq = UINT64_MAX;
    rr.n_events = ZARRAY_LEN(events);
    rr.events = events;
    Zhili__V1__Reply reply = ZHILI__V1__REPLY__INIT;
    reply.request_id = "r2";
    reply.status = ZHILI__V1__STATUS__STATUS_NOT_FOUND;
    reply.message = "no such thing";
    reply.field = "body.name";
    reply.result_case = ZHILI__V1__REPLY__RESULT_REPLAY;
    reply.replay = &rr;
    char *text = round_trip(&reply.base);
    assert_true(contains(text, "\"status\":\"not_found\""));
    assert_true(contains(text, "\"last_seq\":\"18446744073709551615\""));
    assert_true(contains(text, "\"events\":[\"CgVmdW5kcxAJ\",\"\",\"AAECAwQF"));
    assert_true(contains(text, "\"/w==\"]"));
    free(text);
    free(packed);
}

static void test_json_reply_other_results(void **state)
{
    /* Goal: the remaining Reply results round-trip: counter (uint64),
     * applied (bytes digest), clock (bool). */
    (void)state;
    Zhili__Test__CounterValue counter = ZHILI__TEST__COUNTER_VALUE__INIT;
    counter.name = "c";
    counter.value = -3;
    counter.adds = 7;
    Zhili__Test__AppliedState applied = ZHILI__TEST__APPLIED_STATE__INIT;
    applied.source = "s";
    applied.cursor = 10;
    applied.applied = 10;
    applied.digest = (ProtobufCBinaryData){3, (uint8_t *)"abc"};
    Zhili__V1__ClockState clock = ZHILI__V1__CLOCK_STATE__INIT;
    clock.now_ms = 5;
    clock.fake = 1;
    const struct {
        Zhili__V1__Reply__ResultCase result;
        void *msg;
        const char *key;
    } cases[] = {
        {ZHILI__V1__REPLY__RESULT_COUNTER, &counter, "\"adds\":7"},
        {ZHILI__V1__REPLY__RESULT_APPLIED, &applied, "\"digest\":\"YWJj\""},
        {ZHILI__V1__REPLY__RESULT_CLOCK, &clock, "\"clock\":{\"now_ms\":5,\"fake\":true}"},
    };
    for (size_t i = 0; i < ZARRAY_LEN(cases); i++) {
        Zhili__V1__Reply reply = ZHILI__V1__REPLY__INIT;
        reply.result_case = cases[i].result;
        reply.counter = cases[i].msg;
        char *text = round_trip(&reply.base);
        assert_true(contains(text, cases[i].key));
        free(text);
    }
}

static void test_json_stats_repeated(void **state)
{
    /* Goal: repeated messages round-trip in order, and an empty repeated
     * field is written as []. */
    (void)state;
    Zhili__V1__Stat s[3];
    Zhili__V1__Stat *ps[3];
    const char *names[] = {"requests", "errors", "lag"};
    for (size_t i = 0; i < 3; i++) {
        Zhili__V1__Stat init = ZHILI__V1__STAT__INIT;
        s[i] = init;
        s[i].name = (char *)names[i];
        s[i].value = (int64_t)i * 1000 - 1;
        s[i].labels = "service=\"funds\"";
        ps[i] = &s[i];
    }
    Zhili__V1__Stats stats = ZHILI__V1__STATS__INIT;
    stats.name = "funds";
    stats.n_stats = 3;
    stats.stats = ps;
    char *text = round_trip(&stats.base);
    assert_true(contains(text, "\"stats\":[{\"name\":\"requests\",\"value\":-1,"
                               "\"labels\":\"service=\\\"funds\\\"\"},{\"name\":\"errors\""));
    free(text);

    Zhili__V1__Stats empty = ZHILI__V1__STATS__INIT;
    text = round_trip(&empty.base);
    assert_string_equal(text, "{\"name\":\"\",\"stats\":[]}");
    free(text);
}

static void test_json_scalar_types(void **state)
{
    /* Goal: the types zhili.proto does not use yet (int32, sint32, float,
     * double, bool, fixed64, repeated scalars/strings/enums, proto2 optional)
     * round-trip, NaN and infinities included. */
    (void)state;
    int32_t ri32[] = {1, -2, INT32_MAX};
    char *rs[] = {"a", "", "\xc3\xa9"};
    int renum[] = {0, 2, 6};
    scalars_t m;
    scalars_init(&m.base);
    m.i32 = INT32_MIN;
    m.u32 = UINT32_MAX;
    m.f = NAN;
    m.d = -INFINITY;
    m.b = 1;
    m.fx64 = UINT64_MAX;
    m.n_ri32 = 3;
    m.ri32 = ri32;
    m.n_rs = 3;
    m.rs = rs;
    m.n_renum = 3;
    m.renum = renum;
    m.s32 = -77;
    char *text = round_trip(&m.base);
    assert_string_equal(text, "{\"i32\":-2147483648,\"u32\":4294967295,\"f\":\"NaN\","
                              "\"d\":\"-Infinity\",\"b\":true,\"fx64\":\"18446744073709551615\","
                              "\"ri32\":[1,-2,2147483647],\"rs\":[\"a\",\"\",\"\xc3\xa9\"],"
                              "\"renum\":[\"ok\",\"not_found\",\"internal\"],\"s32\":-77}");
    free(text);

    /* A proto2 optional appears only when present, zero included. */
    m.has_opt = 1;
    m.opt = 0;
    m.f = 1.5f;
    m.d = 3;
    text = round_trip(&m.base);
    assert_true(contains(text, "\"opt\":0"));
    assert_true(contains(text, "\"f\":1.5,\"d\":3.0"));
    free(text);

    /* Doubles accept integers; the Infinity string is read back. */
    scalars_t *p =
        (scalars_t *)expect_ok(&scalars_descriptor, "{\"d\": 7, \"f\": \"Infinity\", \"opt\": 3}");
    assert_true(p->d == 7.0);
    assert_true(isinf(p->f) && p->f > 0);
    assert_true(p->has_opt);
    assert_int_equal(p->opt, 3);
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

/* ---- enums ------------------------------------------------------------- */

static void test_enum_names(void **state)
{
    /* Goal: enum JSON names drop the UPPER_SNAKE type prefix and are lower
     * case; input takes that name, the full proto name, or the number. */
    (void)state;
    const char *want[] = {"ok",        "invalid",     "not_found", "conflict",
                          "forbidden", "unavailable", "internal"};
    char buf[32];
    for (int v = 0; v < (int)ZARRAY_LEN(want); v++) {
        assert_string_equal(zjson_enum_name(&zhili__v1__status__descriptor, v, buf, sizeof buf),
                            want[v]);
        int back = -1;
        assert_int_equal(zjson_enum_value(&zhili__v1__status__descriptor, want[v], &back), 0);
        assert_int_equal(back, v);
    }
    assert_null(zjson_enum_name(&zhili__v1__status__descriptor, 42, buf, sizeof buf));
    /* "not_found" needs 10 bytes with its NUL. */
    assert_null(zjson_enum_name(&zhili__v1__status__descriptor, 2, buf, 9));
    assert_non_null(zjson_enum_name(&zhili__v1__status__descriptor, 2, buf, 10));

    int v = -1;
    assert_int_equal(zjson_enum_value(&zhili__v1__status__descriptor, "STATUS_NOT_FOUND", &v), 0);
    assert_int_equal(v, 2);
    const char *bad[] = {"NOT_FOUND",  "Not_Found",        "not_foun",
                         "not_found_", "status_not_found", ""};
    for (size_t i = 0; i < ZARRAY_LEN(bad); i++) {
        assert_int_equal(zjson_enum_value(&zhili__v1__status__descriptor, bad[i], &v), -1);
    }
}

static void test_enum_camel_case_prefix(void **state)
{
    /* Goal: the prefix comes from the CamelCase type name (UrgencyLevel ->
     * URGENCY_LEVEL_, HTTPCode -> HTTP_CODE_); values without it, or that
     * are nothing but it, keep their whole name. */
    (void)state;
    char buf[32];
    assert_string_equal(zjson_enum_name(&urgency_descriptor, 1, buf, sizeof buf), "high");
    assert_string_equal(zjson_enum_name(&urgency_descriptor, 2, buf, sizeof buf), "urgency_level");
    assert_string_equal(zjson_enum_name(&http_descriptor, 1, buf, sizeof buf), "not_modified");
    assert_string_equal(zjson_enum_name(&http_descriptor, 2, buf, sizeof buf), "red");
    assert_string_equal(zjson_enum_name(&http_descriptor, 3, buf, sizeof buf), "httpcode_x");
    int v = -1;
    assert_int_equal(zjson_enum_value(&urgency_descriptor, "low", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(zjson_enum_value(&http_descriptor, "red", &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(zjson_enum_value(&http_descriptor, "HTTP_CODE_OK", &v), 0);
    assert_int_equal(v, 0);
}

static void test_enum_json_fields(void **state)
{
    /* Goal: an enum field reads the JSON name, the full name and the number;
     * unknown names and numbers are refused on input, and an unknown number
     * is written as the integer. */
    (void)state;
    const char *inputs[] = {"{\"status\":\"not_found\"}", "{\"status\":\"STATUS_NOT_FOUND\"}",
                            "{\"status\":2}", "{\"status\":\"2\"}"};
    for (size_t i = 0; i < 3; i++) {
        Zhili__V1__Reply *r =
            (Zhili__V1__Reply *)expect_ok(&zhili__v1__reply__descriptor, inputs[i]);
        assert_int_equal(r->status, ZHILI__V1__STATUS__STATUS_NOT_FOUND);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    expect_error(&zhili__v1__reply__descriptor, inputs[3],
                 "status: unknown value \"2\" of enum zhili.v1.Status", "status");
    expect_error(&zhili__v1__reply__descriptor, "{\"status\":\"bogus\"}",
                 "status: unknown value \"bogus\" of enum zhili.v1.Status", "status");
    expect_error(&zhili__v1__reply__descriptor, "{\"status\":99}",
                 "status: unknown value 99 of enum zhili.v1.Status", "status");
    expect_error(&zhili__v1__reply__descriptor, "{\"status\":2147483648}", "status: out of range",
                 "status");
    expect_error(&zhili__v1__reply__descriptor, "{\"status\":1.5}",
                 "status: expected an enum name or number", "status");

    Zhili__V1__Reply reply = ZHILI__V1__REPLY__INIT;
    reply.status = (Zhili__V1__Status)42;
    char *text = to_text(&reply.base);
    assert_true(contains(text, "\"status\":42"));
    free(text);
}

/* ---- JSON input errors ------------------------------------------------- */

static void test_json_null_is_absent(void **state)
{
    /* Goal: null for any field, oneof members included, means absent. */
    (void)state;
    Zhili__V1__Command *cmd = (Zhili__V1__Command *)expect_ok(
        &zhili__v1__command__descriptor,
        "{\"request_id\":null,\"actor\":null,\"replay\":null,\"counter_add\":{\"name\":\"x\"},"
        "\"stats\":null}");
    assert_string_equal(cmd->request_id, "");
    assert_null(cmd->actor);
    assert_int_equal(cmd->body_case, ZHILI__V1__COMMAND__BODY_COUNTER_ADD);
    assert_string_equal(cmd->counter_add->name, "x");
    protobuf_c_message_free_unpacked(&cmd->base, NULL);

    Zhili__V1__ReplayResult *rr = (Zhili__V1__ReplayResult *)expect_ok(
        &zhili__v1__replay_result__descriptor, "{\"events\":null,\"last_seq\":null}");
    assert_int_equal(rr->n_events, 0);
    protobuf_c_message_free_unpacked(&rr->base, NULL);
}

static void test_json_oneof_two_members(void **state)
{
    /* Goal: two members of one oneof are refused with both names, also when
     * the first one was already fully built (no leak under valgrind). */
    (void)state;
    expect_error(&zhili__v1__command__descriptor,
                 "{\"request_id\":\"r\",\"actor\":{\"id\":\"x\"},\"counter_add\":{\"name\":\"n\"},"
                 "\"replay\":{}}",
                 "\"counter_add\" and \"replay\" are both set but belong to one oneof", "replay");
    expect_error(&zhili__v1__reply__descriptor,
                 "{\"stats\":{\"stats\":[{\"name\":\"a\"}]},\"clock\":{\"fake\":true}}",
                 "\"stats\" and \"clock\" are both set but belong to one oneof", "clock");
}

static void test_json_unknown_field(void **state)
{
    /* Goal: an unknown key is refused with its name, reported at its parent,
     * while field names the key's full path. */
    (void)state;
    expect_error(&zhili__v1__command__descriptor, "{\"foo\":1}", "unknown field \"foo\"", "foo");
    expect_error(&zhili__v1__command__descriptor, "{\"actor\":{\"id\":\"a\",\"bar\":null}}",
                 "actor: unknown field \"bar\"", "actor.bar");
    expect_error(&zhili__v1__reply__descriptor, "{\"stats\":{\"stats\":[{},{\"Name\":\"x\"}]}}",
                 "stats.stats[1]: unknown field \"Name\"", "stats.stats[1].Name");

    /* A key with a NUL byte must not match the field its prefix names. */
    json_t *obj = json_object();
    json_object_setn_new(obj, "area\0x", 6, json_string("a"));
    char err[ZCODEC_ERR_BYTES];
    ProtobufCMessage *out = NULL;
    assert_int_equal(zjson_to_msg(obj, &zhili__v1__command__descriptor, &out, err, NULL),
                     ZE_INVALID);
    assert_null(out);
    assert_string_equal(err, "unknown field \"area\"");
    json_decref(obj);
}

static void test_json_error_text_is_utf8(void **state)
{
    /* Goal: error texts stay valid UTF-8 (they go into JSON replies) when a
     * long non-ASCII key is cut mid-character or a hand-built key is not
     * UTF-8 at all. */
    (void)state;
    char key[3 * 200 + 1];
    for (size_t i = 0; i < 200; i++) {
        memcpy(key + 3 * i, "\xe9\x94\xae", 3); /* U+952E */
    }
    key[sizeof key - 1] = '\0';
    json_t *obj = json_object();
    json_object_set_new(obj, key, json_true());
    char err[ZCODEC_ERR_BYTES];
    char field[ZCODEC_ERR_BYTES];
    ProtobufCMessage *out = NULL;
    assert_int_equal(zjson_to_msg(obj, &zhili__v1__actor__descriptor, &out, err, field),
                     ZE_INVALID);
    assert_int_equal(strlen(err), ZCODEC_ERR_BYTES - 1);
    assert_true(strncmp(err, "unknown field \"\xe9\x94\xae", 17) == 0);
    json_t *j = json_string(err);
    assert_non_null(j); /* json_string refuses invalid UTF-8 */
    json_decref(j);
    j = json_string(field);
    assert_non_null(j);
    json_decref(j);
    json_decref(obj);

    obj = json_object();
    json_object_set_new_nocheck(obj,
                                "a\xff"
                                "b",
                                json_true());
    assert_int_equal(zjson_to_msg(obj, &zhili__v1__actor__descriptor, &out, err, field),
                     ZE_INVALID);
    assert_string_equal(err, "unknown field \"a?b\"");
    assert_string_equal(field, "a?b");
    json_decref(obj);
}

static void test_json_wrong_type(void **state)
{
    /* Goal: a value of the wrong JSON type names the field path and what was
     * expected, in nested messages and arrays too. */
    (void)state;
    const ProtobufCMessageDescriptor *cmd = &zhili__v1__command__descriptor;
    const ProtobufCMessageDescriptor *reply = &zhili__v1__reply__descriptor;
    expect_error(cmd, "{\"counter_add\":{\"amount\":\"abc\"}}",
                 "counter_add.amount: expected an integer", "counter_add.amount");
    expect_error(cmd, "{\"counter_add\":{\"amount\":1.0}}",
                 "counter_add.amount: expected an integer", "counter_add.amount");
    expect_error(cmd, "{\"request_id\":5}", "request_id: expected a string", "request_id");
    expect_error(cmd, "{\"actor\":[]}", "actor: expected an object", "actor");
    expect_error(cmd, "[1]", "expected an object", "");
    expect_error(reply, "{\"clock\":{\"fake\":1}}", "clock.fake: expected a boolean", "clock.fake");
    expect_error(reply, "{\"replay\":{\"events\":\"AAAA\"}}", "replay.events: expected an array",
                 "replay.events");
    expect_error(reply, "{\"replay\":{\"events\":[\"AAAA\",3]}}",
                 "replay.events[1]: expected a base64 string", "replay.events[1]");
    expect_error(reply, "{\"replay\":{\"events\":[null]}}", "replay.events[0]: null in an array",
                 "replay.events[0]");
    expect_error(reply,
                 "{\"stats\":{\"stats\":[{\"name\":\"a\",\"labels\":\"l\"},{\"value\":true}]}}",
                 "stats.stats[1].value: expected an integer", "stats.stats[1].value");
    expect_error(&scalars_descriptor, "{\"d\":\"1.5\"}", "d: expected a number", "d");
    expect_error(&scalars_descriptor, "{\"rs\":[\"a\",{}]}", "rs[1]: expected a string", "rs[1]");

    /* zjson_to_msg on something that is not an object, or on nothing. */
    char err[ZCODEC_ERR_BYTES];
    ProtobufCMessage *out = NULL;
    json_t *num = json_integer(1);
    assert_int_equal(zjson_to_msg(num, cmd, &out, err, NULL), ZE_INVALID);
    assert_string_equal(err, "expected an object");
    json_decref(num);
    assert_int_equal(zjson_to_msg(NULL, cmd, &out, NULL, NULL), ZE_INVALID);
}

static void test_json_int_range(void **state)
{
    /* Goal: 32-bit fields refuse values outside their range, from JSON
     * integers and decimal strings alike, and accept the bounds. */
    (void)state;
    const ProtobufCMessageDescriptor *s = &scalars_descriptor;
    expect_error(s, "{\"i32\":2147483648}", "i32: out of range", "i32");
    expect_error(s, "{\"i32\":-2147483649}", "i32: out of range", "i32");
    expect_error(s, "{\"i32\":\"2147483648\"}", "i32: out of range", "i32");
    expect_error(s, "{\"s32\":-2147483649}", "s32: out of range", "s32");
    expect_error(s, "{\"u32\":4294967296}", "u32: out of range", "u32");
    expect_error(s, "{\"u32\":-1}", "u32: out of range", "u32");
    expect_error(s, "{\"u32\":\"-1\"}", "u32: out of range", "u32");
    expect_error(s, "{\"ri32\":[1,2147483648]}", "ri32[1]: out of range", "ri32[1]");
    expect_error(s, "{\"f\":1e39}", "f: out of range", "f");
    expect_error(&zhili__v1__command__descriptor, "{\"replay\":{\"max\":4294967296}}",
                 "replay.max: out of range", "replay.max");

    scalars_t *m = (scalars_t *)expect_ok(
        s, "{\"i32\":-2147483648,\"s32\":2147483647,\"u32\":\"4294967295\",\"fx64\":\"-0\"}");
    assert_int_equal(m->i32, INT32_MIN);
    assert_int_equal(m->s32, INT32_MAX);
    assert_int_equal(m->u32, UINT32_MAX);
    assert_int_equal(m->fx64, 0);
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void test_json_int64_as_string(void **state)
{
    /* Goal: 64-bit fields take decimal strings (JavaScript cannot hold them
     * as numbers) with strict syntax and range; uint64 above INT64_MAX is
     * written as a string, below it as an integer. */
    (void)state;
    const ProtobufCMessageDescriptor *cmd = &zhili__v1__command__descriptor;
    Zhili__V1__Command *c = (Zhili__V1__Command *)expect_ok(
        cmd, "{\"counter_add\":{\"amount\":\"-9223372036854775808\"}}");
    assert_true(c->counter_add->amount == INT64_MIN);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    c = (Zhili__V1__Command *)expect_ok(cmd,
                                        "{\"replay\":{\"from_seq\":\"18446744073709551615\"}}");
    assert_true(c->replay->from_seq == UINT64_MAX);
    protobuf_c_message_free_unpacked(&c->base, NULL);

    expect_error(cmd, "{\"counter_add\":{\"amount\":\"9223372036854775808\"}}",
                 "counter_add.amount: out of range", "counter_add.amount");
    expect_error(cmd, "{\"replay\":{\"from_seq\":\"18446744073709551616\"}}",
                 "replay.from_seq: out of range", "replay.from_seq");
    const char *bad[] = {"\"12a\"", "\"\"",     "\"-\"",   "\"+1\"", "\" 1\"",
                         "\"1 \"",  "\"0x10\"", "\"1e3\"", "true",   "[]"};
    for (size_t i = 0; i < ZARRAY_LEN(bad); i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"counter_add\":{\"amount\":%s}}", bad[i]);
        expect_error(cmd, text, "counter_add.amount: expected an integer", "counter_add.amount");
    }

    Zhili__V1__Replay replay = ZHILI__V1__REPLAY__INIT;
    replay.from_seq = INT64_MAX;
    char *text = to_text(&replay.base);
    assert_string_equal(text, "{\"from_seq\":9223372036854775807,\"max\":0}");
    free(text);
    replay.from_seq = (uint64_t)INT64_MAX + 1;
    text = to_text(&replay.base);
    assert_string_equal(text, "{\"from_seq\":\"9223372036854775808\",\"max\":0}");
    free(text);
}

static void test_json_bad_base64(void **state)
{
    /* Goal: bytes take only standard padded base64; anything else names the
     * element, and the elements already decoded are freed. */
    (void)state;
    const ProtobufCMessageDescriptor *rr = &zhili__v1__replay_result__descriptor;
    const char *bad[] = {"!!!!", "AA", "AB==", "AAA=A", "AA==AA==", "YWJj\\n", "-_8="};
    for (size_t i = 0; i < ZARRAY_LEN(bad); i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"events\":[\"YWJj\",\"%s\"]}", bad[i]);
        expect_error(rr, text, "events[1]: invalid base64", "events[1]");
    }
    Zhili__V1__ReplayResult *m =
        (Zhili__V1__ReplayResult *)expect_ok(rr, "{\"events\":[\"AA==\",\"\",\"YWJj\",\"+/8=\"]}");
    assert_int_equal(m->n_events, 4);
    assert_int_equal(m->events[0].len, 1);
    assert_int_equal(m->events[0].data[0], 0);
    assert_int_equal(m->events[1].len, 0);
    assert_memory_equal(m->events[2].data, "abc", 3);
    assert_memory_equal(m->events[3].data, "\xfb\xff", 2);
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void test_json_malformed_text(void **state)
{
    /* Goal: malformed JSON text names line and column; duplicate keys and
     * text over ZCODEC_JSON_BYTES_MAX are refused too. */
    (void)state;
    char err[ZCODEC_ERR_BYTES];
    char field[ZCODEC_ERR_BYTES];
    ProtobufCMessage *out = NULL;
    const char *text = "{\n  \"request_id\": \"a\",\n  \"area\": \n}";
    assert_int_equal(
        zjson_parse_msg(text, strlen(text), &zhili__v1__command__descriptor, &out, err, field),
        ZE_INVALID);
    assert_null(out);
    assert_true(contains(err, "line 4, column 1: "));
    assert_string_equal(field, "");

    text = "{\"area\":\"a\",\"area\":\"b\"}";
    assert_int_equal(
        zjson_parse_msg(text, strlen(text), &zhili__v1__command__descriptor, &out, err, NULL),
        ZE_INVALID);
    assert_true(contains(err, "duplicate"));

    text = "{\"replay\":{\"from_seq\":18446744073709551615}}";
    assert_int_equal(
        zjson_parse_msg(text, strlen(text), &zhili__v1__command__descriptor, &out, err, NULL),
        ZE_INVALID);
    assert_true(contains(err, "line 1, column "));

    assert_int_equal(zjson_parse_msg(NULL, 0, &zhili__v1__command__descriptor, &out, err, NULL),
                     ZE_INVALID);
    assert_true(contains(err, "line "));

    size_t big_len = ZCODEC_JSON_BYTES_MAX + 1;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, ' ', big_len);
    assert_int_equal(
        zjson_parse_msg(big, big_len, &zhili__v1__command__descriptor, &out, err, NULL),
        ZE_INVALID);
    assert_true(contains(err, "JSON text longer than"));
    free(big);
}

/* {"actor":{"id": <arrays> nested n deep }} */
static char *nested_text(int arrays)
{
    size_t cap = 64 + 2 * (size_t)arrays;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, cap, "{\"actor\":{\"id\":");
    for (int i = 0; i < arrays; i++) {
        text[len++] = '[';
    }
    for (int i = 0; i < arrays; i++) {
        text[len++] = ']';
    }
    snprintf(text + len, cap - len, "}}");
    return text;
}

static void test_json_depth_limit(void **state)
{
    /* Goal: JSON nested deeper than ZCODEC_JSON_DEPTH_MAX is refused before
     * conversion, whatever the schema; exactly the limit is not. */
    (void)state;
    /* Root object is depth 1, actor 2, so n arrays reach depth 2 + n. */
    char *text = nested_text(ZCODEC_JSON_DEPTH_MAX - 2);
    expect_error(&zhili__v1__command__descriptor, text, "actor.id: expected a string", "actor.id");
    free(text);

    text = nested_text(ZCODEC_JSON_DEPTH_MAX - 1);
    char err[ZCODEC_ERR_BYTES];
    char field[ZCODEC_ERR_BYTES];
    ProtobufCMessage *out = NULL;
    assert_int_equal(
        zjson_parse_msg(text, strlen(text), &zhili__v1__command__descriptor, &out, err, field),
        ZE_INVALID);
    assert_true(strncmp(err, "actor.id[0][0]", 14) == 0);
    assert_true(contains(err, ": nested deeper than 32 levels"));
    assert_true(strncmp(field, "actor.id[0]", 11) == 0);
    free(text);

    text = nested_text(1000);
    assert_int_equal(
        zjson_parse_msg(text, strlen(text), &zhili__v1__command__descriptor, &out, err, NULL),
        ZE_INVALID);
    assert_true(contains(err, "nested deeper than 32 levels"));
    free(text);
}

static void test_json_utf8(void **state)
{
    /* Goal: a proto string with invalid UTF-8 is written with U+FFFD for each
     * bad byte; JSON built by hand with invalid UTF-8 or a NUL is refused. */
    (void)state;
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "a\xff"
               "b\xe2\x82";
    actor.name = "\xed\xa0\x80"; /* an encoded surrogate is not UTF-8 */
    json_t *json = zjson_from_msg(&actor.base);
    assert_non_null(json);
    assert_string_equal(json_string_value(json_object_get(json, "id")),
                        "a\xef\xbf\xbd"
                        "b\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(json, "name")),
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(json);

    char err[ZCODEC_ERR_BYTES];
    char field[ZCODEC_ERR_BYTES];
    ProtobufCMessage *out = NULL;
    json = json_object();
    json_object_set_new(json, "id", json_string("ok"));
    json_object_set_new(json, "area", json_stringn_nocheck("\xc0\xaf", 2));
    assert_int_equal(zjson_to_msg(json, &zhili__v1__actor__descriptor, &out, err, field),
                     ZE_INVALID);
    assert_null(out);
    assert_string_equal(err, "area: invalid UTF-8");
    assert_string_equal(field, "area");
    json_decref(json);

    json = json_object();
    json_object_set_new(json, "area", json_stringn("a\0b", 3));
    assert_int_equal(zjson_to_msg(json, &zhili__v1__actor__descriptor, &out, err, field),
                     ZE_INVALID);
    assert_string_equal(err, "area: NUL character in a string");
    json_decref(json);
}

static void test_json_partial_free(void **state)
{
    /* Goal: failures deep inside arrays of messages free everything built so
     * far (checked by valgrind), and err/field may be NULL. */
    (void)state;
    const char *text =
        "{\"request_id\":\"r\",\"message\":\"m\",\"stats\":{\"name\":\"n\",\"stats\":["
        "{\"name\":\"a\",\"labels\":\"x\"},{\"name\":\"b\",\"value\":\"9\"},"
        "{\"name\":\"c\",\"value\":{}}]}}";
    ProtobufCMessage *out = (ProtobufCMessage *)1;
    assert_int_equal(
        zjson_parse_msg(text, strlen(text), &zhili__v1__reply__descriptor, &out, NULL, NULL),
        ZE_INVALID);
    assert_null(out);
    expect_error(&scalars_descriptor, "{\"rs\":[\"a\",\"b\",3],\"renum\":[\"ok\"]}",
                 "rs[2]: expected a string", "rs[2]");
    expect_error(&scalars_descriptor, "{\"renum\":[\"ok\",\"nope\"]}",
                 "renum[1]: unknown value \"nope\" of enum zhili.v1.Status", "renum[1]");
}

/* ---- the text writer against jansson ----------------------------------- */

/* Random messages for the property test: splitmix64 from a fixed seed, so a
 * failure comes back on every run. */
typedef struct {
    uint64_t state;
} rng_t;

static uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static size_t rng_below(rng_t *r, size_t n)
{
    return (size_t)(rng_next(r) % n);
}

static bool rng_chance(rng_t *r, unsigned percent)
{
    return rng_below(r, 100) < percent;
}

#define GEN_DEPTH_MAX 6    /* deeper message fields are left NULL */
#define GEN_REPEATED_MAX 3 /* elements of a generated array */
#define GEN_STRING_CHARS_MAX 24
#define GEN_BYTES_MAX 40
#define GEN_TYPES_MAX 512    /* message types reachable from the roots */
#define GEN_ONEOFS_MAX 8     /* oneofs in one message */
#define GEN_PER_MEMBER 20    /* messages made with each member of a root's oneof */
#define GEN_PER_ROOT_MIN 300 /* messages made of each root type */

/* Every message type reachable from the roots, and how many of each the
 * generator made: each must have been made at least once. */
typedef struct {
    const ProtobufCMessageDescriptor *desc[GEN_TYPES_MAX];
    unsigned made[GEN_TYPES_MAX];
    size_t count;
    bool arrays_empty; /* every repeated field made empty (the fast path's test) */
} gen_types_t;

static int gen_types_find(const gen_types_t *g, const ProtobufCMessageDescriptor *desc)
{
    for (size_t i = 0; i < g->count; i++) {
        if (g->desc[i] == desc) {
            return (int)i;
        }
    }
    return -1;
}

static void gen_types_reach(gen_types_t *g, const ProtobufCMessageDescriptor *desc)
{
    if (gen_types_find(g, desc) >= 0) {
        return;
    }
    assert_true(g->count < GEN_TYPES_MAX);
    g->desc[g->count++] = desc;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (desc->fields[i].type == PROTOBUF_C_TYPE_MESSAGE) {
            gen_types_reach(g, desc->fields[i].descriptor);
        }
    }
}

/* Strings that jansson must escape or that must be repaired, and plain ones. */
static const char *const gen_strings[] = {
    "",
    "a",
    "visits",
    "\xe5\xbc\xa0\xe4\xb8\x89",                         /* 张三 */
    "\xe4\xbb\x8a\xe6\x97\xa5\xe8\xaf\x89\xe6\xb1\x82", /* 今日诉求 */
    "quote \" and back\\slash",
    "\x01\x02\x1f\b\f\n\r\t",
    "/a/b/</script>",
    "\x7f",
    "\xe2\x80\xa8\xe2\x80\xa9", /* U+2028, U+2029: jansson writes them raw */
    "\xf0\x9f\x98\x80",         /* an emoji, 4 bytes */
    "\xff\xfe",
    "a\xe2\x82",        /* a cut sequence */
    "\xed\xa0\x80",     /* an encoded surrogate */
    "\xc0\xaf",         /* an overlong '/' */
    "\xf4\x90\x80\x80", /* above U+10FFFF */
    "\\u0000",
};

/* One random character (1 to 4 bytes, never NUL) of a mix that stresses
 * the escaping and the UTF-8 repair; returns its length. */
static size_t gen_char(rng_t *r, char *out)
{
    static const char *const pieces[] = {
        "\"",
        "\\",
        "/",
        "\x7f",
        "\xe4\xb8\xad",
        "\xe2\x80\xa8",
        "\xf0\x9f\x98\x80",
        "\xe2\x82",
        "\xed\xa0\x80",
        "\xc3",
        "\xc3\xa9",
    };
    switch (rng_below(r, 5)) {
    case 0:
        out[0] = (char)(1 + rng_below(r, 0x1f));
        return 1;
    case 1:
        out[0] = (char)(0x80 + rng_below(r, 0x80));
        return 1;
    case 2: {
        const char *p = pieces[rng_below(r, ZARRAY_LEN(pieces))];
        size_t n = strlen(p);
        memcpy(out, p, n);
        return n;
    }
    default:
        out[0] = (char)(0x20 + rng_below(r, 0x5f));
        return 1;
    }
}

static char *gen_string(rng_t *r)
{
    if (rng_chance(r, 40)) {
        char *s = strdup(gen_strings[rng_below(r, ZARRAY_LEN(gen_strings))]);
        assert_non_null(s);
        return s;
    }
    char *s = malloc(GEN_STRING_CHARS_MAX * 4 + 1);
    assert_non_null(s);
    size_t chars = rng_below(r, GEN_STRING_CHARS_MAX + 1);
    size_t len = 0;
    for (size_t i = 0; i < chars; i++) {
        len += gen_char(r, s + len);
    }
    s[len] = '\0';
    return s;
}

static ProtobufCBinaryData gen_bytes(rng_t *r)
{
    ProtobufCBinaryData b = {.len = rng_below(r, GEN_BYTES_MAX + 1), .data = NULL};
    if (b.len == 0 || rng_chance(r, 20)) {
        return (ProtobufCBinaryData){.len = 0, .data = NULL};
    }
    b.data = malloc(b.len);
    assert_non_null(b.data);
    for (size_t i = 0; i < b.len; i++) {
        b.data[i] = (uint8_t)rng_next(r);
    }
    return b;
}

static double gen_double(rng_t *r)
{
    static const double pool[] = {
        0.0,
        -0.0,
        0.1,
        0.5,
        1.0,
        -1.0,
        100.0,
        1e16,
        1e17,
        1e21,
        1e300,
        -1e300,
        1e-300,
        5e-324,
        2.5e-5,
        123456789.0,
        9007199254740993.0,
        DBL_MAX,
        -DBL_MAX,
        DBL_MIN,
        NAN,
        -NAN,
        INFINITY,
        -INFINITY,
        0.30000000000000004,
        1234.5678,
    };
    if (rng_chance(r, 30)) {
        double d;
        uint64_t bits = rng_next(r);
        memcpy(&d, &bits, sizeof d);
        return d;
    }
    if (rng_chance(r, 20)) {
        return (double)(int64_t)rng_next(r) / (double)(1 + rng_below(r, 1000));
    }
    return pool[rng_below(r, ZARRAY_LEN(pool))];
}

static int64_t gen_i64(rng_t *r, int64_t min, int64_t max)
{
    switch (rng_below(r, 6)) {
    case 0:
        return min;
    case 1:
        return max;
    case 2:
        return 0;
    case 3:
        return (int64_t)rng_below(r, 2000) - 1000;
    default: {
        int64_t x = (int64_t)rng_next(r);
        return x < min ? min : x > max ? max : x;
    }
    }
}

static uint64_t gen_u64(rng_t *r, uint64_t max)
{
    static const uint64_t pool[] = {0, 1, 9, 10, INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX};
    uint64_t x = rng_chance(r, 50) ? pool[rng_below(r, ZARRAY_LEN(pool))] : rng_next(r);
    return x > max ? max : x;
}

/* A known value of the enum, or now and then a number it does not know. */
static int gen_enum(rng_t *r, const ProtobufCEnumDescriptor *desc)
{
    static const int unknown[] = {-1, 999, INT32_MIN, INT32_MAX};
    if (desc->n_values == 0 || rng_chance(r, 15)) {
        return unknown[rng_below(r, ZARRAY_LEN(unknown))];
    }
    return desc->values[rng_below(r, desc->n_values)].value;
}

static ProtobufCMessage *gen_msg(rng_t *r, gen_types_t *g, const ProtobufCMessageDescriptor *desc,
                                 const ProtobufCFieldDescriptor *force, int depth);

/* A random value into the slot of one element of field f. */
static void gen_slot(rng_t *r, gen_types_t *g, const ProtobufCFieldDescriptor *f, void *slot,
                     int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)slot = (int32_t)gen_i64(r, INT32_MIN, INT32_MAX);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)slot = (uint32_t)gen_u64(r, UINT32_MAX);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)slot = gen_i64(r, INT64_MIN, INT64_MAX);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)slot = gen_u64(r, UINT64_MAX);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)slot = (float)gen_double(r);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)slot = gen_double(r);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)slot = (protobuf_c_boolean)rng_below(r, 3); /* 2 is true too */
        break;
    case PROTOBUF_C_TYPE_ENUM:
        *(int *)slot = gen_enum(r, f->descriptor);
        break;
    case PROTOBUF_C_TYPE_STRING:
        *(char **)slot = gen_string(r);
        break;
    case PROTOBUF_C_TYPE_BYTES:
        *(ProtobufCBinaryData *)slot = gen_bytes(r);
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        *(ProtobufCMessage **)slot =
            depth < GEN_DEPTH_MAX ? gen_msg(r, g, f->descriptor, NULL, depth + 1) : NULL;
        break;
    }
}

static size_t gen_slot_bytes(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

/* 0 to GEN_REPEATED_MAX elements; a message array may hold a NULL element,
 * which only a hand-built message can (JSON null). */
static void gen_repeated(rng_t *r, gen_types_t *g, ProtobufCMessage *m,
                         const ProtobufCFieldDescriptor *f, int depth)
{
    size_t n = g->arrays_empty || rng_chance(r, 25) ? 0 : 1 + rng_below(r, GEN_REPEATED_MAX);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth >= GEN_DEPTH_MAX) {
        n = 0;
    }
    size_t elem = gen_slot_bytes(f->type);
    char *arr = n > 0 ? calloc(n, elem) : NULL;
    assert_true(n == 0 || arr != NULL);
    for (size_t i = 0; i < n; i++) {
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && rng_chance(r, 3)) {
            continue; /* NULL */
        }
        gen_slot(r, g, f, arr + i * elem, depth);
    }
    *(size_t *)((char *)m + f->quantifier_offset) = n;
    *(char **)((char *)m + f->offset) = arr;
}

/* The member of the oneof whose case sits at quantifier_offset q: force when
 * it is one of them, else one at random or none. */
static const ProtobufCFieldDescriptor *gen_oneof_pick(rng_t *r,
                                                      const ProtobufCMessageDescriptor *desc,
                                                      unsigned q,
                                                      const ProtobufCFieldDescriptor *force)
{
    const ProtobufCFieldDescriptor *members[256];
    size_t n = 0;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && f->quantifier_offset == q) {
            if (f == force) {
                return f;
            }
            assert_true(n < ZARRAY_LEN(members));
            members[n++] = f;
        }
    }
    return rng_chance(r, 15) ? NULL : members[rng_below(r, n)];
}

/* A message of type desc (malloc'd as the unpacker would, so that
 * free_unpacked frees it): every field random, messages NULL now and then,
 * one member (or none) of each oneof. */
static ProtobufCMessage *gen_msg(rng_t *r, gen_types_t *g, const ProtobufCMessageDescriptor *desc,
                                 const ProtobufCFieldDescriptor *force, int depth)
{
    if (force == NULL && depth > 1 && rng_chance(r, 20)) {
        return NULL;
    }
    int k = gen_types_find(g, desc);
    assert_true(k >= 0);
    g->made[k]++;
    ProtobufCMessage *m = malloc(desc->sizeof_message);
    assert_non_null(m);
    protobuf_c_message_init(desc, m);
    unsigned oneofs_done[GEN_ONEOFS_MAX]; /* their case's offsets */
    size_t oneof_count = 0;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        char *base = (char *)m;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            bool done = false;
            for (size_t j = 0; j < oneof_count; j++) {
                done = done || oneofs_done[j] == f->quantifier_offset;
            }
            if (done) {
                continue; /* decided at its first member */
            }
            assert_true(oneof_count < GEN_ONEOFS_MAX);
            oneofs_done[oneof_count++] = f->quantifier_offset;
            const ProtobufCFieldDescriptor *pick =
                gen_oneof_pick(r, desc, f->quantifier_offset, force);
            if (pick != NULL) {
                gen_slot(r, g, pick, base + pick->offset, depth);
                *(uint32_t *)(base + f->quantifier_offset) = pick->id;
            }
        } else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            gen_repeated(r, g, m, f, depth);
        } else {
            gen_slot(r, g, f, base + f->offset, depth);
            if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
                f->type != PROTOBUF_C_TYPE_STRING) {
                *(protobuf_c_boolean *)(base + f->quantifier_offset) = rng_chance(r, 50);
            }
        }
    }
    return m;
}

/* The text must be json_dumps(zjson_from_msg(m), JSON_COMPACT), and each
 * field alone the dump of its value in that tree (absent: ZE_NOT_FOUND). */
static void expect_same_text(const ProtobufCMessage *m)
{
    json_t *tree = zjson_from_msg(m);
    assert_non_null(tree);
    char *want = json_dumps(tree, JSON_COMPACT);
    assert_non_null(want);
    size_t len = 0;
    char *got = zjson_text_from_msg(m, &len);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(got);
    free(want);
    for (unsigned i = 0; i < m->descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &m->descriptor->fields[i];
        json_t *v = json_object_get(tree, f->name);
        char *text = (char *)1;
        int rc = zjson_text_from_field(m, f, &text, &len);
        if (v == NULL) {
            assert_int_equal(rc, ZE_NOT_FOUND);
            assert_null(text);
            continue;
        }
        assert_int_equal(rc, ZE_OK);
        char *one = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        assert_non_null(one);
        assert_string_equal(text, one);
        assert_int_equal(len, strlen(one));
        free(one);
        free(text);
    }
    json_decref(tree);
}

/* Makes and checks the messages of one root type; returns how many. */
static size_t check_root(rng_t *r, gen_types_t *g, const ProtobufCMessageDescriptor *root)
{
    const ProtobufCFieldDescriptor *members[256];
    size_t n_members = 0;
    for (unsigned i = 0; i < root->n_fields; i++) {
        if (root->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            assert_true(n_members < ZARRAY_LEN(members));
            members[n_members++] = &root->fields[i];
        }
    }
    size_t count = n_members * GEN_PER_MEMBER;
    count = count > GEN_PER_ROOT_MIN ? count : GEN_PER_ROOT_MIN;
    for (size_t i = 0; i < count; i++) {
        const ProtobufCFieldDescriptor *force = n_members > 0 ? members[i % n_members] : NULL;
        ProtobufCMessage *m = gen_msg(r, g, root, force, 1);
        expect_same_text(m);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    return count;
}

static void test_json_text_matches_jansson(void **state)
{
    /* Goal: for thousands of random messages of every type reachable from
     * Command, Reply and Event (and the hand-built scalars, for the types
     * zhili.proto does not use), zjson_text_from_msg writes exactly the
     * bytes of json_dumps(zjson_from_msg(m), JSON_COMPACT), and
     * zjson_text_from_field exactly each field's value. Fixed seed. */
    (void)state;
    static const ProtobufCMessageDescriptor *const roots[] = {
        &zhili__v1__command__descriptor,
        &zhili__v1__reply__descriptor,
        &zhili__v1__event__descriptor,
        &scalars_descriptor,
    };
    static gen_types_t g;
    memset(&g, 0, sizeof g);
    for (size_t i = 0; i < ZARRAY_LEN(roots); i++) {
        gen_types_reach(&g, roots[i]);
    }
    rng_t r = {.state = UINT64_C(20261126)};
    size_t made = 0;
    for (size_t i = 0; i < ZARRAY_LEN(roots); i++) {
        made += check_root(&r, &g, roots[i]);
    }
    assert_true(made >= 2000);
    for (size_t k = 0; k < g.count; k++) {
        if (g.made[k] == 0) {
            fail_msg("no message of type %s was made", g.desc[k]->name);
        }
    }
}

/* A hand-built recursive message, for the depth limit (zhili.proto has no
 * recursive type): a child, an array of kids and an array of numbers. */
typedef struct node {
    ProtobufCMessage base;
    struct node *child;
    size_t n_kids;
    struct node **kids;
    size_t n_nums;
    int64_t *nums;
} node_t;

static const ProtobufCMessageDescriptor node_descriptor;

static void node_init(ProtobufCMessage *msg)
{
    static const node_t init = {.base = PROTOBUF_C_MESSAGE_INIT(&node_descriptor)};
    memcpy(msg, &init, sizeof init);
}

static const ProtobufCFieldDescriptor node_fields[] = {
    {.name = "child",
     .id = 1,
     .label = PROTOBUF_C_LABEL_NONE,
     .type = PROTOBUF_C_TYPE_MESSAGE,
     .offset = offsetof(node_t, child),
     .descriptor = &node_descriptor},
    {.name = "kids",
     .id = 2,
     .label = PROTOBUF_C_LABEL_REPEATED,
     .type = PROTOBUF_C_TYPE_MESSAGE,
     .quantifier_offset = offsetof(node_t, n_kids),
     .offset = offsetof(node_t, kids),
     .descriptor = &node_descriptor},
    {.name = "nums",
     .id = 3,
     .label = PROTOBUF_C_LABEL_REPEATED,
     .type = PROTOBUF_C_TYPE_INT64,
     .quantifier_offset = offsetof(node_t, n_nums),
     .offset = offsetof(node_t, nums)},
};
static const unsigned node_by_name[] = {0, 1, 2};
static const ProtobufCIntRange node_ranges[] = {{1, 0}, {0, 3}};

TEST_DESCRIPTOR(node, Node, 1);

/* Both writers agree on m: the same text, or both NULL. Returns whether
 * there was a text. */
static bool same_text_or_none(const ProtobufCMessage *m)
{
    json_t *tree = zjson_from_msg(m);
    char *want = tree != NULL ? json_dumps(tree, JSON_COMPACT) : NULL;
    json_decref(tree);
    size_t len = 99;
    char *got = zjson_text_from_msg(m, &len);
    if (want == NULL) {
        assert_null(got);
    } else {
        assert_non_null(got);
        assert_string_equal(got, want);
        assert_int_equal(len, strlen(want));
    }
    free(want);
    free(got);
    return want != NULL;
}

static void test_json_text_depth_limit(void **state)
{
    /* Goal: the text writer stops at exactly the depth where zjson_from_msg
     * does (an object or array deeper than ZCODEC_JSON_DEPTH_MAX), through
     * message fields and through arrays, also for one field alone. */
    (void)state;
    node_t nodes[ZCODEC_JSON_DEPTH_MAX + 2];
    for (size_t i = 0; i < ZARRAY_LEN(nodes); i++) {
        node_init(&nodes[i].base);
    }
    /* A chain of n nodes through child: node n sits at depth n, and its
     * (always written) nums array at depth n + 1. */
    for (size_t n = 2; n <= ZARRAY_LEN(nodes); n++) {
        for (size_t i = 0; i + 1 < n; i++) {
            nodes[i].child = &nodes[i + 1];
        }
        nodes[n - 1].child = NULL;
        bool written = same_text_or_none(&nodes[0].base);
        assert_int_equal(written, n + 1 <= ZCODEC_JSON_DEPTH_MAX);
        char *text = (char *)1;
        int rc = zjson_text_from_field(&nodes[0].base, &node_fields[0], &text, NULL);
        assert_int_equal(rc, written ? ZE_OK : ZE_INTERNAL);
        assert_true(written ? text != NULL : text == NULL);
        free(text);
    }
    /* Through arrays: each level adds an array and an object. */
    node_t *kid_of[ZCODEC_JSON_DEPTH_MAX];
    for (size_t i = 0; i < ZARRAY_LEN(nodes); i++) {
        node_init(&nodes[i].base);
    }
    for (size_t i = 0; i < ZARRAY_LEN(kid_of); i++) {
        kid_of[i] = &nodes[i + 1];
    }
    for (size_t n = 1; n < ZARRAY_LEN(kid_of); n++) {
        for (size_t i = 0; i < ZARRAY_LEN(kid_of); i++) {
            nodes[i].n_kids = i < n ? 1 : 0;
            nodes[i].kids = i < n ? &kid_of[i] : NULL;
        }
        /* Node n is at depth 2n + 1, its arrays at 2n + 2. */
        assert_int_equal(same_text_or_none(&nodes[0].base), 2 * n + 2 <= ZCODEC_JSON_DEPTH_MAX);
    }
}

static void test_json_text_null_and_huge(void **state)
{
    /* Goal: a NULL element of a message array is null in both writers;
     * bytes too large for their base64 to be made fail both writers alike
     * (NULL, nothing leaked) instead of wrapping a size, the text writer
     * before it allocates. */
    (void)state;
    node_t top, kid;
    node_init(&top.base);
    node_init(&kid.base);
    node_t *kids[] = {NULL, &kid, NULL};
    top.n_kids = ZARRAY_LEN(kids);
    top.kids = kids;
    assert_true(same_text_or_none(&top.base));
    char *text = zjson_text_from_msg(&top.base, NULL);
    assert_string_equal(text, "{\"kids\":[null,{\"kids\":[],\"nums\":[]},null],\"nums\":[]}");
    free(text);

    static uint8_t byte;
    Zhili__Test__AppliedState applied = ZHILI__TEST__APPLIED_STATE__INIT;
    applied.digest.data = &byte; /* never read: the sizes are refused first */
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(applied.base.descriptor, "digest");
    /* The tree refuses sizes whose base64 size would wrap before it
     * allocates; below that, malloc says no (and a sanitizer would abort). */
    const size_t huge[] = {SIZE_MAX / 3, SIZE_MAX / 2 + 1, SIZE_MAX};
    for (size_t i = 0; i < ZARRAY_LEN(huge); i++) {
        applied.digest.len = huge[i];
        if (huge[i] > SIZE_MAX / 2) {
            assert_null(zjson_from_msg(&applied.base));
        }
        assert_null(zjson_text_from_msg(&applied.base, NULL));
        text = (char *)1;
        assert_int_equal(zjson_text_from_field(&applied.base, f, &text, NULL), ZE_INTERNAL);
        assert_null(text);
    }
}

static void test_json_text_reply_result(void **state)
{
    /* Goal: what the gateway answers with: a Reply's result member alone,
     * found from result_case, is the member's own text; a Reply without a
     * result (or with a NULL one) is ZE_NOT_FOUND. */
    (void)state;
    Zhili__Test__CounterValue value = ZHILI__TEST__COUNTER_VALUE__INIT;
    value.name = "visits";
    value.value = 5;
    value.adds = UINT64_MAX;
    Zhili__V1__Reply reply = ZHILI__V1__REPLY__INIT;
    reply.request_id = "r-1";
    reply.result_case = ZHILI__V1__REPLY__RESULT_COUNTER;
    reply.counter = &value;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(reply.base.descriptor, reply.result_case);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(zjson_text_from_field(&reply.base, f, &text, &len), ZE_OK);
    const char *want = "{\"name\":\"visits\",\"value\":5,\"adds\":\"18446744073709551615\"}";
    assert_string_equal(text, want);
    assert_int_equal(len, strlen(want));
    free(text);
    char *alone = zjson_text_from_msg(&value.base, &len);
    assert_string_equal(alone, want);
    free(alone);

    reply.counter = NULL;
    text = (char *)1;
    assert_int_equal(zjson_text_from_field(&reply.base, f, &text, &len), ZE_NOT_FOUND);
    assert_null(text);
    reply.result_case = ZHILI__V1__REPLY__RESULT__NOT_SET;
    f = protobuf_c_message_descriptor_get_field(reply.base.descriptor, reply.result_case);
    assert_null(f);
    assert_int_equal(zjson_text_from_field(&reply.base, f, &text, &len), ZE_NOT_FOUND);
    /* A member of the oneof that is not the one set. */
    reply.result_case = ZHILI__V1__REPLY__RESULT_COUNTER;
    reply.counter = &value;
    f = protobuf_c_message_descriptor_get_field_by_name(reply.base.descriptor, "stats");
    assert_int_equal(zjson_text_from_field(&reply.base, f, &text, &len), ZE_NOT_FOUND);
    assert_null(text);
}

/* ---- the fast path: JSON text straight to a message -------------------- */

/* A hand-built type with a oneof of two scalars (zhili.proto's oneofs hold
 * messages, or one member): extras may set its members. */
typedef struct {
    ProtobufCMessage base;
    uint32_t pick_case;
    union {
        char *s;
        int64_t i;
    };
} choice_t;

static const ProtobufCMessageDescriptor choice_descriptor;

static void choice_init(ProtobufCMessage *msg)
{
    static const choice_t init = {.base = PROTOBUF_C_MESSAGE_INIT(&choice_descriptor)};
    memcpy(msg, &init, sizeof init);
}

#define CHOICE_MEMBER(name_, id_, type_)                                                           \
    {                                                                                              \
        .name = #name_, .id = id_, .label = PROTOBUF_C_LABEL_NONE,                                 \
        .type = PROTOBUF_C_TYPE_##type_, .quantifier_offset = offsetof(choice_t, pick_case),       \
        .offset = offsetof(choice_t, name_), .flags = PROTOBUF_C_FIELD_FLAG_ONEOF                  \
    }

static const ProtobufCFieldDescriptor choice_fields[] = {
    CHOICE_MEMBER(s, 1, STRING),
    CHOICE_MEMBER(i, 2, INT64),
};
static const unsigned choice_by_name[] = {1, 0};
static const ProtobufCIntRange choice_ranges[] = {{1, 0}, {0, 2}};

TEST_DESCRIPTOR(choice, Choice, 1);

/* The slow path that zjson_fast_to_msg stands for (codec.h): 0 with *out, or
 * an error when jansson or zjson_to_msg refuses. */
static int slow_to_msg(const char *text, size_t len, const zjson_extra_t *extras, int extra_count,
                       const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
    *out = NULL;
    json_error_t jerr;
    json_t *json = len == 0 ? json_object() : json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (json == NULL || !json_is_object(json)) {
        json_decref(json);
        return ZE_INVALID;
    }
    for (int i = 0; i < extra_count; i++) {
        const zjson_extra_t *x = &extras[i];
        json_object_setn_new(json, x->key, x->key_len, json_stringn(x->value, x->value_len));
    }
    int rc = zjson_to_msg(json, desc, out, NULL, NULL);
    json_decref(json);
    return rc;
}

/* Runs both paths on one input and holds the fast path to its promise: a
 * decline with nothing built, or exactly the slow path's message. Returns
 * whether the fast path took it; *slow_ok (may be NULL) whether the slow
 * path did. */
static bool check_fast(const char *text, size_t len, const zjson_extra_t *extras, int extra_count,
                       const ProtobufCMessageDescriptor *desc, bool *slow_ok)
{
    ProtobufCMessage *slow = NULL;
    int slow_rc = slow_to_msg(text, len, extras, extra_count, desc, &slow);
    ProtobufCMessage *fast = (ProtobufCMessage *)1;
    int fast_rc = zjson_fast_to_msg(text, len, extras, extra_count, desc, &fast);
    if (fast_rc == ZE_AGAIN) {
        assert_null(fast);
    } else if (fast_rc != ZE_OK || slow_rc != ZE_OK || !same_packed(slow, fast)) {
        fail_msg("%s with %d extras (first %.*s=%.*s): fast %d, slow %d, on %.*s", desc->name,
                 extra_count, extra_count > 0 ? (int)extras[0].key_len : 0,
                 extra_count > 0 ? extras[0].key : "",
                 extra_count > 0 ? (int)extras[0].value_len : 0,
                 extra_count > 0 ? extras[0].value : "", fast_rc, slow_rc, (int)len, text);
    }
    zcodec_free(fast_rc == ZE_OK ? fast : NULL);
    zcodec_free(slow);
    if (slow_ok != NULL) {
        *slow_ok = slow_rc == ZE_OK;
    }
    return fast_rc == ZE_OK;
}

/* The fast path on a NUL-terminated text, which must decline. */
static void expect_fast_declines(const ProtobufCMessageDescriptor *desc, const char *text)
{
    ProtobufCMessage *out = (ProtobufCMessage *)1;
    int rc = zjson_fast_to_msg(text, strlen(text), NULL, 0, desc, &out);
    if (rc != ZE_AGAIN) {
        fail_msg("%s: expected a decline, got %d", text, rc);
    }
    assert_null(out);
}

/* The fast path on a NUL-terminated text, which it must take as the slow
 * path does; the caller frees the message. */
static ProtobufCMessage *expect_fast_takes(const ProtobufCMessageDescriptor *desc, const char *text,
                                           const zjson_extra_t *extras, int extra_count)
{
    bool slow_ok = false;
    if (!check_fast(text, strlen(text), extras, extra_count, desc, &slow_ok)) {
        fail_msg("%s: the fast path declined (slow path %s)", text, slow_ok ? "took it" : "failed");
    }
    ProtobufCMessage *out = NULL;
    assert_int_equal(zjson_fast_to_msg(text, strlen(text), extras, extra_count, desc, &out), ZE_OK);
    return out;
}

#define EXTRA(k, v)                                                                                \
    {                                                                                              \
        .key = (k), .key_len = sizeof(k) - 1, .value = (v), .value_len = sizeof(v) - 1             \
    }

static void test_json_fast_bench_body(void **state)
{
    /* Goal: the gateway's typical body is taken by the fast path, as the
     * same message as the slow path's; so are escapes, whitespace, an empty
     * text and an empty object. */
    (void)state;
    const ProtobufCMessageDescriptor *add = &zhili__test__counter_add__descriptor;
    Zhili__Test__CounterAdd *m =
        (Zhili__Test__CounterAdd *)expect_fast_takes(add, "{\"name\":\"w\",\"amount\":1}", NULL, 0);
    assert_string_equal(m->name, "w");
    assert_true(m->amount == 1);
    zcodec_free(&m->base);

    m = (Zhili__Test__CounterAdd *)expect_fast_takes(
        add,
        " \r\n\t{ \"amount\" : -9223372036854775808 "
        ",\"name\":\"\\u00e9\\ud83d\\ude00\\/\\n\\\"\"}\n",
        NULL, 0);
    assert_string_equal(m->name, "\xc3\xa9\xf0\x9f\x98\x80/\n\"");
    assert_true(m->amount == INT64_MIN);
    zcodec_free(&m->base);

    /* An escaped string too long for the stack buffer, decoded on the heap. */
    char long_text[1024];
    size_t len = (size_t)snprintf(long_text, sizeof long_text, "{\"name\":\"");
    for (int i = 0; i < 100; i++) {
        len += (size_t)snprintf(long_text + len, sizeof long_text - len, "\\n\\u00e9");
    }
    snprintf(long_text + len, sizeof long_text - len, "\"}");
    m = (Zhili__Test__CounterAdd *)expect_fast_takes(add, long_text, NULL, 0);
    assert_int_equal(strlen(m->name), 100 * 3);
    zcodec_free(&m->base);

    /* Reals: every digit strtod reads, and one too long for the fast path. */
    scalars_t *s = (scalars_t *)expect_fast_takes(
        &scalars_descriptor, "{\"d\":0.1000000000000000055511151231257827021181583404541015625}",
        NULL, 0);
    assert_true(s->d == 0.1);
    zcodec_free(&s->base);
    const char *long_real =
        "{\"d\":1.000000000000000000000000000000000000000000000000000000000000001}";
    expect_fast_declines(&scalars_descriptor, long_real);
    check_fast(long_real, strlen(long_real), NULL, 0, &scalars_descriptor, NULL);

    m = (Zhili__Test__CounterAdd *)expect_fast_takes(add, "", NULL, 0);
    assert_string_equal(m->name, "");
    zcodec_free(&m->base);
    zcodec_free(expect_fast_takes(add, "{ }", NULL, 0));

    /* Nested messages, an enum by name, a oneof member, a decimal string. */
    Zhili__V1__Command *c = (Zhili__V1__Command *)expect_fast_takes(
        &zhili__v1__command__descriptor,
        "{\"request_id\":\"r\",\"actor\":{\"id\":\"t\",\"role\":\"staff\"},"
        "\"counter_add\":{\"name\":\"visits\",\"amount\":\"-42\"}}",
        NULL, 0);
    assert_int_equal(c->body_case, ZHILI__V1__COMMAND__BODY_COUNTER_ADD);
    assert_true(c->counter_add->amount == -42);
    assert_string_equal(c->actor->role, "staff");
    zcodec_free(&c->base);
}

static void test_json_fast_extras(void **state)
{
    /* Goal: extras replace a body member of the same key or add one, as
     * json_object_set does; a decimal string goes into an int64 field; an
     * extra the slow path would refuse or treat otherwise is declined. */
    (void)state;
    const ProtobufCMessageDescriptor *add = &zhili__test__counter_add__descriptor;
    const char *body = "{\"name\":\"w\",\"amount\":1}";
    zjson_extra_t name[] = {EXTRA("name", "visits")};
    Zhili__Test__CounterAdd *m = (Zhili__Test__CounterAdd *)expect_fast_takes(add, body, name, 1);
    assert_string_equal(m->name, "visits");
    assert_true(m->amount == 1);
    zcodec_free(&m->base);

    zjson_extra_t amount[] = {EXTRA("amount", "9223372036854775807"), EXTRA("name", "x")};
    m = (Zhili__Test__CounterAdd *)expect_fast_takes(add, "{\"amount\":\"abc\"}", amount, 2);
    assert_true(m->amount == INT64_MAX);
    assert_string_equal(m->name, "x");
    zcodec_free(&m->base);
    m = (Zhili__Test__CounterAdd *)expect_fast_takes(add, "", amount, 1);
    assert_true(m->amount == INT64_MAX);
    zcodec_free(&m->base);

    /* Declined: out of range, not decimal, not UTF-8, a NUL, an unknown key,
     * two extras of one field, a body member an extra replaces that is not
     * a scalar, and a field of another type. */
    zjson_extra_t bad[][1] = {
        {EXTRA("amount", "9223372036854775808")},
        {EXTRA("amount", "1.5")},
        {EXTRA("name", "\xff")},
        {EXTRA("name", "a\0b")},
        {EXTRA("nope", "1")},
        {EXTRA("na\0me", "w")},
    };
    for (size_t i = 0; i < ZARRAY_LEN(bad); i++) {
        ProtobufCMessage *out = (ProtobufCMessage *)1;
        assert_int_equal(zjson_fast_to_msg(body, strlen(body), bad[i], 1, add, &out), ZE_AGAIN);
        assert_null(out);
        check_fast(body, strlen(body), bad[i], 1, add, NULL);
    }
    zjson_extra_t twice[] = {EXTRA("name", "a"), EXTRA("name", "b")};
    ProtobufCMessage *out = (ProtobufCMessage *)1;
    assert_int_equal(zjson_fast_to_msg(body, strlen(body), twice, 2, add, &out), ZE_AGAIN);
    assert_null(out);
    const char *array = "{\"name\":[1]}";
    assert_int_equal(zjson_fast_to_msg(array, strlen(array), name, 1, add, &out), ZE_AGAIN);
    check_fast(array, strlen(array), name, 1, add, NULL);
    /* At most 8 extras (ZJSON_FAST_EXTRAS_MAX). */
    zjson_extra_t many[] = {
        EXTRA("id", "P1"),         EXTRA("ticket", "t"),           EXTRA("content", "c"),
        EXTRA("area", "220503"),   EXTRA("address", "a"),          EXTRA("routing", "unit"),
        EXTRA("received_at", "r"), EXTRA("returns", "4294967295"), EXTRA("updated_at", "u"),
    };
    const ProtobufCMessageDescriptor *petition = &zhili__petitions__petition__descriptor;
    zcodec_free(expect_fast_takes(petition, "{}", many, 8));
    assert_int_equal(zjson_fast_to_msg("{}", 2, many, 9, petition, &out), ZE_AGAIN);
    assert_null(out);
    check_fast("{}", 2, many, 9, petition, NULL);
    zjson_extra_t actor[] = {EXTRA("actor", "x")};
    assert_int_equal(zjson_fast_to_msg("", 0, actor, 1, &zhili__v1__command__descriptor, &out),
                     ZE_AGAIN);
    assert_null(out);
}

static void test_json_fast_declines(void **state)
{
    /* Goal: what jansson or the slow path refuses, and what the fast path
     * leaves to it, is declined with nothing built (valgrind checks the
     * frees), and the slow path indeed refuses the refused. */
    (void)state;
    const ProtobufCMessageDescriptor *add = &zhili__test__counter_add__descriptor;
    const char *refused[] = {
        "{\"name\":\"w\",\"name\":\"v\"}",  /* duplicate key */
        "{\"name\":\"a\\u0000\"}",          /* \u0000 */
        "{\"amount\":01}",                  /* leading zero */
        "{\"amount\":1.}",                  /* no fraction digits */
        "{\"amount\":.5}",                  /* no integer part */
        "{\"amount\":+1}",                  /* a plus sign */
        "{\"amount\":-}",                   /* a minus alone */
        "{\"amount\":9223372036854775808}", /* too big integer */
        "{\"amount\":1e400}",               /* real overflow */
        "{\"amount\":1.5}",                 /* a real into an integer */
        "{\"nope\":1}",                     /* unknown key */
        "{\"name\":\"\\ud800\"}",           /* a lone surrogate */
        "{\"name\":\"\\ud800\\u0041\"}",    /* a mismatched one */
        "{\"name\":\"\\x\"}",               /* an unknown escape */
        "{\"name\":\"\t\"}",                /* a control character */
        "{\"name\":\"\xff\"}",              /* invalid UTF-8 */
        "{\"name\":\"w\"} x",               /* trailing garbage */
        "{\"name\":\"w\",}",                /* trailing comma */
        "{\"name\":\"w\"",                  /* not closed */
        "[]",                               /* not an object */
        "  ",                               /* whitespace only */
        "\f{}",                             /* not jansson's whitespace */
        "{\"name\":true1}",                 /* a literal run on */
        "{\"amount\":\"1 \"}",              /* not a decimal string */
    };
    for (size_t i = 0; i < ZARRAY_LEN(refused); i++) {
        expect_fast_declines(add, refused[i]);
        bool slow_ok = true;
        check_fast(refused[i], strlen(refused[i]), NULL, 0, add, &slow_ok);
        if (slow_ok) {
            fail_msg("%s: the slow path took it", refused[i]);
        }
    }
    /* Two members of one oneof: in the body, in the body and an extra, in
     * two extras. */
    expect_fast_declines(&zhili__v1__command__descriptor,
                         "{\"counter_add\":{},\"counter_get\":{}}");
    check_fast("{\"s\":\"a\",\"i\":1}", 15, NULL, 0, &choice_descriptor, NULL);
    expect_fast_declines(&choice_descriptor, "{\"s\":\"a\",\"i\":1}");
    zjson_extra_t pick_i[] = {EXTRA("i", "5"), EXTRA("s", "b")};
    ProtobufCMessage *out = (ProtobufCMessage *)1;
    const char *pick_s = "{\"s\":\"a\"}";
    assert_int_equal(zjson_fast_to_msg(pick_s, strlen(pick_s), pick_i, 1, &choice_descriptor, &out),
                     ZE_AGAIN);
    assert_int_equal(zjson_fast_to_msg("", 0, pick_i, 2, &choice_descriptor, &out), ZE_AGAIN);
    assert_null(out);
    check_fast(pick_s, strlen(pick_s), pick_i, 1, &choice_descriptor, NULL);
    check_fast("", 0, pick_i, 2, &choice_descriptor, NULL);
    choice_t *c = (choice_t *)expect_fast_takes(&choice_descriptor, pick_s, pick_i + 1, 1);
    assert_int_equal(c->pick_case, 1);
    assert_string_equal(c->s, "b");
    zcodec_free(&c->base);

    /* Surrogates jansson refuses, also in a member an extra replaces. */
    expect_fast_declines(add, "{\"name\":\"\\ud800\\udbff\"}");
    expect_fast_declines(add, "{\"name\":\"\\udc00\"}");
    zjson_extra_t name[] = {EXTRA("name", "w")};
    const char *replaced[] = {"{\"name\":\"\\udc00\"}", "{\"name\":\"\\ud800\\ud800\"}",
                              "{\"name\":01}", "{\"name\":\"\\u0000\"}", "{\"name\":nul}"};
    for (size_t i = 0; i < ZARRAY_LEN(replaced); i++) {
        assert_int_equal(zjson_fast_to_msg(replaced[i], strlen(replaced[i]), name, 1, add, &out),
                         ZE_AGAIN);
        check_fast(replaced[i], strlen(replaced[i]), name, 1, add, NULL);
    }

    /* Left to the slow path, which takes them. */
    const char *left[] = {
        "{\"name\":null}",
        "{\"\\u006eame\":\"w\"}",
        "{\"name\":\"w\",\"amount\":1.0e0}",
    };
    expect_fast_declines(add, left[0]);
    expect_fast_declines(add, left[1]);
    expect_fast_declines(&zhili__v1__replay_result__descriptor, "{\"events\":[\"AA==\"]}");
    zcodec_free(
        expect_fast_takes(&zhili__v1__replay_result__descriptor, "{\"events\":[ ]}", NULL, 0));
    check_fast(left[2], strlen(left[2]), NULL, 0, add, NULL);

    /* A NUL byte, inside a string and after the object. */
    const char nul_in[] = "{\"name\":\"a\0\"}";
    const char nul_after[] = "{\"name\":\"a\"}\0";
    assert_int_equal(zjson_fast_to_msg(nul_in, sizeof nul_in - 1, NULL, 0, add, &out), ZE_AGAIN);
    assert_int_equal(zjson_fast_to_msg(nul_after, sizeof nul_after - 1, NULL, 0, add, &out),
                     ZE_AGAIN);
    assert_null(out);

    /* Longer than ZCODEC_JSON_BYTES_MAX. */
    size_t big_len = ZCODEC_JSON_BYTES_MAX + 1;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, ' ', big_len);
    big[0] = '{';
    big[big_len - 1] = '}';
    assert_int_equal(zjson_fast_to_msg(big, big_len, NULL, 0, add, &out), ZE_AGAIN);
    assert_null(out);
    free(big);
}

/* {"child":{"child":...{}...}} with n objects in all. */
static char *child_chain(int n)
{
    size_t cap = (size_t)n * 10 + 1;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = 0;
    for (int i = 1; i < n; i++) {
        memcpy(text + len, "{\"child\":", 9);
        len += 9;
    }
    memcpy(text + len, "{}", 2);
    len += 2;
    memset(text + len, '}', (size_t)n - 1);
    len += (size_t)n - 1;
    text[len] = '\0';
    return text;
}

static void test_json_fast_depth(void **state)
{
    /* Goal: nested objects are taken up to the fast path's depth limit (8)
     * and declined past it, where the slow path still takes them. */
    (void)state;
    for (int n = 1; n <= 12; n++) {
        char *text = child_chain(n);
        bool slow_ok = false;
        bool taken = check_fast(text, strlen(text), NULL, 0, &node_descriptor, &slow_ok);
        assert_true(slow_ok);
        if (taken != (n <= 8)) {
            fail_msg("%d nested objects: %s", n, taken ? "taken" : "declined");
        }
        free(text);
    }
}

/* ---- the fast path against the slow one on random texts ---------------- */

#define FAST_PER_TYPE 24        /* random messages of each type */
#define FAST_MUTATIONS 8        /* mutated texts of each message */
#define FAST_MUTATION_BYTES 160 /* most bytes one mutation adds */
#define FAST_EXTRAS_MAX 3
#define FAST_ROUNDS_MAX 3 /* mutations stacked on one text */

typedef struct {
    const char *s;
    size_t n;
} piece_t;

#define PIECE(lit)                                                                                 \
    {                                                                                              \
        (lit), sizeof(lit) - 1                                                                     \
    }

/* Bytes inserted anywhere: escapes good and bad, whitespace, control
 * characters, ill-formed UTF-8, NUL, structure and number characters. */
// clang-format off
static const piece_t fast_snippets[] = {
    PIECE("\\u0000"), PIECE("\\ud800"), PIECE("\\udc00"), PIECE("\\ud83d\\ude00"),
    PIECE("\\uD83D\\uDE00"), PIECE("\\ud800\\u0041"), PIECE("\\ud800\\ud800"),
    PIECE("\\udbff\\udfff"), PIECE("\\ud800\\ue000"), PIECE("\\ud800\\"), PIECE("\\u00e9"),
    PIECE("\\u0041"), PIECE("\\u12"), PIECE("\\uzzzz"), PIECE("\\n"), PIECE("\\\""), PIECE("\\/"),
    PIECE("\\b"), PIECE("\\x"), PIECE("\\U0041"), PIECE("\\"), PIECE("\""), PIECE(" "), PIECE("\t"),
    PIECE("\n"), PIECE("\r"), PIECE("\f"), PIECE("\x01"), PIECE("\x1f"), PIECE("\x7f"),
    PIECE("\xff"), PIECE("\xc3"), PIECE("\xc3\xa9"), PIECE("\xed\xa0\x80"), PIECE("\xe4\xb8\xad"),
    PIECE("\0"), PIECE(","), PIECE(":"), PIECE("{"), PIECE("}"), PIECE("["), PIECE("]"),
    PIECE("null"), PIECE("-"), PIECE("0"), PIECE("1"), PIECE("."), PIECE("e"), PIECE("+"),
};
// clang-format on

/* Values put in place of a member's value: numbers at the edges of every
 * range, bad number syntax, decimal strings, literals, arrays, objects. */
// clang-format off
static const piece_t fast_values[] = {
    PIECE("9223372036854775807"), PIECE("9223372036854775808"), PIECE("-9223372036854775808"),
    PIECE("-9223372036854775809"), PIECE("18446744073709551615"), PIECE("2147483647"),
    PIECE("2147483648"), PIECE("-2147483648"), PIECE("-2147483649"), PIECE("4294967295"),
    PIECE("4294967296"), PIECE("1e400"), PIECE("-1e400"), PIECE("1e-400"), PIECE("-0"),
    PIECE("-0.0"), PIECE("0"), PIECE("01"), PIECE("-01"), PIECE("1."), PIECE(".5"), PIECE("-"),
    PIECE("+1"), PIECE("1e"), PIECE("1E+2"), PIECE("2.5e-3"), PIECE("1.0"), PIECE("3.5"),
    PIECE("0.1"), PIECE("1e308"), PIECE("3.4028235e38"), PIECE("3.5e38"), PIECE("-3.5e38"),
    PIECE("\"123\""), PIECE("\"-0\""), PIECE("\"-00\""), PIECE("\"-5\""), PIECE("\"007\""),
    PIECE("\"18446744073709551616\""), PIECE("\"9223372036854775808\""),
    PIECE("\"-9223372036854775808\""), PIECE("\"-9223372036854775809\""), PIECE("\"1e3\""),
    PIECE("\"\""), PIECE("\"abc\""), PIECE("\" 1\""), PIECE("\"NaN\""), PIECE("\"Infinity\""),
    PIECE("\"-Infinity\""), PIECE("\"nan\""), PIECE("true"), PIECE("false"), PIECE("null"),
    PIECE("tru"), PIECE("truex"), PIECE("[]"), PIECE("[ ]"), PIECE("[1]"), PIECE("[null]"),
    PIECE("{}"), PIECE("{\"x\":1}"), PIECE("\"ok\""), PIECE("\"STATUS_OK\""),
    PIECE("\"not_found\""), PIECE("1"), PIECE("\"a\\u0000b\""), PIECE("\"\\u00e9\""),
    PIECE("\"\\u0031\""), PIECE("{\"child\":{}}"), PIECE("[[[[[[[[[[]]]]]]]]]]"),
};
// clang-format on

/* Extra values: decimal strings in and out of range, plain and non-UTF-8
 * strings, a NUL, and strings other types would take. */
// clang-format off
static const piece_t fast_extra_values[] = {
    PIECE("42"), PIECE("-0"), PIECE("-5"), PIECE("007"), PIECE("9223372036854775807"),
    PIECE("9223372036854775808"), PIECE("-9223372036854775808"), PIECE("18446744073709551615"),
    PIECE("4294967295"), PIECE("w"), PIECE("\xe5\xbc\xa0\xe4\xb8\x89"), PIECE(""), PIECE("\xff"),
    PIECE("a\0b"), PIECE("NaN"), PIECE("ok"), PIECE("1.5"), PIECE(" 1"), PIECE("true"),
};
// clang-format on

/* The text being mutated: len bytes, with room for FAST_ROUNDS_MAX
 * mutations of FAST_MUTATION_BYTES each. */
typedef struct {
    char *buf;
    size_t len;
} mtext_t;

/* Replaces cut bytes at at by piece. */
static void mt_splice(mtext_t *t, size_t at, size_t cut, const char *piece, size_t n)
{
    assert_true(at + cut <= t->len && n <= FAST_MUTATION_BYTES + cut);
    memmove(t->buf + at + n, t->buf + at + cut, t->len - at - cut);
    memcpy(t->buf + at, piece, n);
    t->len = t->len - cut + n;
}

/* Where the value or member that starts at i ends: the next ',' or '}' or
 * ']' outside strings and nested brackets (or the end). */
static size_t mt_value_end(const mtext_t *t, size_t i)
{
    int depth = 0;
    bool in_string = false;
    for (; i < t->len; i++) {
        char ch = t->buf[i];
        if (in_string) {
            i += ch == '\\' ? 1 : 0;
            in_string = ch != '"';
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if ((ch == ',' || ch == '}' || ch == ']') && depth-- == 0) {
            return i;
        }
    }
    return t->len;
}

/* The first index at or after a random one holding a byte of set, or len. */
static size_t mt_find(rng_t *r, const mtext_t *t, const char *set)
{
    size_t i = t->len > 0 ? rng_below(r, t->len) : 0;
    while (i < t->len && strchr(set, t->buf[i]) == NULL) {
        i++;
    }
    return i;
}

static void mt_mutate(rng_t *r, mtext_t *t, const ProtobufCMessageDescriptor *desc)
{
    size_t at = t->len > 0 ? rng_below(r, t->len + 1) : 0;
    switch (rng_below(r, 11)) {
    case 0: /* flip a byte */
        if (t->len > 0) {
            t->buf[rng_below(r, t->len)] = (char)rng_next(r);
        }
        break;
    case 1: { /* delete bytes */
        size_t cut = 1 + rng_below(r, 3);
        mt_splice(t, at, at + cut <= t->len ? cut : t->len - at, "", 0);
        break;
    }
    case 2: { /* insert a snippet */
        const piece_t *p = &fast_snippets[rng_below(r, ZARRAY_LEN(fast_snippets))];
        mt_splice(t, at, 0, p->s, p->n);
        break;
    }
    case 3:
    case 4: { /* replace a member's value */
        size_t colon = mt_find(r, t, ":");
        if (colon < t->len) {
            size_t end = mt_value_end(t, colon + 1);
            const piece_t *p = &fast_values[rng_below(r, ZARRAY_LEN(fast_values))];
            mt_splice(t, colon + 1, end - colon - 1, p->s, p->n);
        }
        break;
    }
    case 5: { /* repeat a member: a duplicate key */
        size_t start = mt_find(r, t, "{,");
        size_t end = start < t->len ? mt_value_end(t, start + 1) : t->len;
        if (end < t->len && end - start <= FAST_MUTATION_BYTES && t->buf[start + 1] == '"') {
            char member[FAST_MUTATION_BYTES + 1];
            member[0] = ',';
            memcpy(member + 1, t->buf + start + 1, end - start - 1);
            mt_splice(t, end, 0, member, end - start);
        }
        break;
    }
    case 6: { /* whitespace around a token */
        static const char *const spaces[] = {" ", "\t", "\n", "\r", " \r\n\t ", "\f", "\v"};
        const char *s = spaces[rng_below(r, ZARRAY_LEN(spaces))];
        size_t token = mt_find(r, t, "{}[]:,");
        mt_splice(t, token < t->len ? token + rng_below(r, 2) : t->len, 0, s, strlen(s));
        break;
    }
    case 7: { /* trailing garbage */
        static const piece_t trail[] = {PIECE("x"),  PIECE(" "),  PIECE("}"),  PIECE("{}"),
                                        PIECE("\0"), PIECE("\n"), PIECE(" 1"), PIECE(",")};
        const piece_t *p = &trail[rng_below(r, ZARRAY_LEN(trail))];
        mt_splice(t, t->len, 0, p->s, p->n);
        break;
    }
    case 8: /* truncate */
        t->len = at;
        break;
    default: { /* a member of the root type first: unknown in nested objects, a second oneof member
                */
        const piece_t *v = &fast_values[rng_below(r, ZARRAY_LEN(fast_values))];
        const char *name =
            desc->n_fields > 0 ? desc->fields[rng_below(r, desc->n_fields)].name : "x";
        char member[FAST_MUTATION_BYTES];
        int n = snprintf(member, sizeof member, "\"%s\":%.*s,", name, (int)v->n, v->s);
        size_t brace = mt_find(r, t, "{");
        if (n > 0 && (size_t)n < sizeof member && brace < t->len) {
            mt_splice(t, brace + 1, 0, member, (size_t)n);
        }
        break;
    }
    }
}

/* 0 to FAST_EXTRAS_MAX extras: mostly fields of desc, now and then an
 * unknown key or one with a NUL byte, each with a value of the pool. */
static int gen_extras(rng_t *r, const ProtobufCMessageDescriptor *desc, zjson_extra_t *x)
{
    int n = (int)rng_below(r, FAST_EXTRAS_MAX + 1);
    for (int i = 0; i < n; i++) {
        const char *key =
            desc->n_fields > 0 ? desc->fields[rng_below(r, desc->n_fields)].name : "x";
        size_t key_len = strlen(key);
        if (rng_chance(r, 10)) {
            key = rng_chance(r, 50) ? "nope" : "na\0me";
            key_len = key[0] == 'n' && key[1] == 'a' ? 5 : 4;
        }
        const piece_t *v = &fast_extra_values[rng_below(r, ZARRAY_LEN(fast_extra_values))];
        x[i] = (zjson_extra_t){.key = key, .key_len = key_len, .value = v->s, .value_len = v->n};
    }
    return n;
}

/* Whether the fast path must take m's text (when the slow path does): no
 * array with elements and no bytes field written, at any depth. */
static bool fast_plain(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        bool oneof = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (*(const size_t *)(base + f->quantifier_offset) > 0) {
                return false;
            }
            continue;
        }
        if (oneof && *(const uint32_t *)(base + f->quantifier_offset) != f->id) {
            continue;
        }
        if (f->type == PROTOBUF_C_TYPE_BYTES) {
            bool has_flag = f->label == PROTOBUF_C_LABEL_OPTIONAL && !oneof;
            if (!has_flag || *(const protobuf_c_boolean *)(base + f->quantifier_offset)) {
                return false;
            }
        }
        const ProtobufCMessage *sub = f->type == PROTOBUF_C_TYPE_MESSAGE
                                          ? *(ProtobufCMessage *const *)(base + f->offset)
                                          : NULL;
        if (sub != NULL && !fast_plain(sub)) {
            return false;
        }
    }
    return true;
}

typedef struct {
    size_t checks;
    size_t slow_ok;
    size_t fast_took;
    size_t plain_slow_ok; /* unmutated plain texts the slow path took */
    size_t plain_took;    /* of those, taken by the fast path */
} fast_counts_t;

/* One random message of type desc: its text, then mutations of it, each
 * with and without random extras. */
static void check_fast_one(rng_t *r, gen_types_t *g, const ProtobufCMessageDescriptor *desc,
                           fast_counts_t *n)
{
    g->arrays_empty = rng_chance(r, 60);
    ProtobufCMessage *m = gen_msg(r, g, desc, NULL, 1);
    size_t len = 0;
    char *text = zjson_text_from_msg(m, &len);
    assert_non_null(text);
    bool slow_ok = false;
    bool took = check_fast(text, len, NULL, 0, desc, &slow_ok);
    n->checks++;
    n->slow_ok += slow_ok;
    n->fast_took += took;
    if (fast_plain(m) && slow_ok) {
        n->plain_slow_ok++;
        n->plain_took += took;
    }
    mtext_t t = {.buf = malloc(len + FAST_ROUNDS_MAX * FAST_MUTATION_BYTES), .len = 0};
    assert_non_null(t.buf);
    zjson_extra_t extras[FAST_EXTRAS_MAX];
    for (int i = 0; i < FAST_MUTATIONS; i++) {
        memcpy(t.buf, text, len);
        t.len = len;
        int rounds = i == 0 ? 0 : 1 + (int)rng_below(r, FAST_ROUNDS_MAX);
        for (int k = 0; k < rounds; k++) {
            mt_mutate(r, &t, desc);
        }
        int extra_count = rng_chance(r, 50) ? gen_extras(r, desc, extras) : 0;
        took = check_fast(t.buf, t.len, extras, extra_count, desc, &slow_ok);
        n->checks++;
        n->slow_ok += slow_ok;
        n->fast_took += took;
    }
    free(t.buf);
    free(text);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void test_json_fast_matches_slow(void **state)
{
    /* Goal: on thousands of texts of random messages of every type reachable
     * from Command (and the hand-built scalars, node and choice types), and on
     * mutations of them (bytes flipped, cut, inserted; values replaced by
     * edge numbers, decimal strings, literals, arrays, objects; duplicate
     * members; a member of another field; whitespace; trailing garbage),
     * with random extras, the fast
     * path either declines or gives exactly the slow path's message; it
     * never takes what the slow path refuses; and it takes the unmutated
     * texts of messages without arrays or bytes. Fixed seed. */
    (void)state;
    static gen_types_t g;
    memset(&g, 0, sizeof g);
    gen_types_reach(&g, &zhili__v1__command__descriptor);
    gen_types_reach(&g, &scalars_descriptor);
    gen_types_reach(&g, &node_descriptor);
    gen_types_reach(&g, &choice_descriptor);
    rng_t r = {.state = UINT64_C(20261127)};
    fast_counts_t n = {0};
    size_t types = g.count;
    for (size_t k = 0; k < types; k++) {
        for (int i = 0; i < FAST_PER_TYPE; i++) {
            check_fast_one(&r, &g, g.desc[k], &n);
        }
    }
    g.arrays_empty = false;
    printf("fast path: %zu types, %zu texts; slow path took %zu, fast path took %zu; "
           "unmutated plain texts: slow took %zu, fast took %zu\n",
           types, n.checks, n.slow_ok, n.fast_took, n.plain_slow_ok, n.plain_took);
    assert_true(n.checks >= 10000);
    assert_true(n.plain_slow_ok >= 1000);
    /* Plain texts hold nothing the fast path leaves to the slow one. */
    assert_int_equal(n.plain_took, n.plain_slow_ok);
    assert_true(n.fast_took * 4 >= n.slow_ok);
}

/* ---- envelopes: messages with a big oneof ------------------------------ */

/* Bytes of one value of a field of this type, alone or in a repeated array. */
static size_t value_bytes(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

static ProtobufCMessage *fill_new(const ProtobufCMessageDescriptor *desc, unsigned seed, int depth,
                                  const ProtobufCFieldDescriptor *pick);

/* One value of field f derived from seed, written to dst. Strings carry
 * UTF-8, integers use their full width and sign; a message is filled down
 * to depth, then left empty. */
static void fill_value(const ProtobufCFieldDescriptor *f, void *dst, unsigned seed, int depth)
{
    int32_t i32 = (seed % 2 == 0 ? -1 : 1) * (int32_t)(seed * 7919u + 1);
    int64_t i64 = (seed % 2 == 0 ? INT64_MIN + seed : (INT64_C(1) << 53) + seed);
    uint64_t u64 = UINT64_MAX - seed;
    uint32_t u32 = UINT32_MAX - seed;
    float fl = 1.5f + (float)seed;
    double d = -2.25 * seed;
    protobuf_c_boolean b = 1;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        memcpy(dst, &i32, sizeof i32);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        memcpy(dst, &u32, sizeof u32);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        memcpy(dst, &i64, sizeof i64);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        memcpy(dst, &u64, sizeof u64);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        memcpy(dst, &fl, sizeof fl);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        memcpy(dst, &d, sizeof d);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        memcpy(dst, &b, sizeof b);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        int v = e->values[seed % e->n_values].value;
        memcpy(dst, &v, sizeof v);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        char *s = malloc(64);
        assert_non_null(s);
        snprintf(s, 64, "%s-\xe5\x90\x8d\xe5\xad\x97-%u", f->name, seed);
        memcpy(dst, &s, sizeof s);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData bd = {3, malloc(3)};
        assert_non_null(bd.data);
        memcpy(bd.data, (uint8_t[]){0x00, 0xff, (uint8_t)seed}, 3);
        memcpy(dst, &bd, sizeof bd);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *sub = fill_new(f->descriptor, seed + 1, depth - 1, NULL);
        memcpy(dst, &sub, sizeof sub);
        break;
    }
    }
}

/* Field f of msg: a value, or for a repeated field two of them; an optional
 * scalar gets its has_ flag, a oneof member its case. */
static void fill_field(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f, unsigned seed,
                       int depth)
{
    char *member = (char *)msg + f->offset;
    char *quantifier = (char *)msg + f->quantifier_offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = 2;
        char *array = malloc(n * value_bytes(f->type));
        assert_non_null(array);
        for (size_t i = 0; i < n; i++) {
            fill_value(f, array + i * value_bytes(f->type), seed + (unsigned)i, depth);
        }
        memcpy(member, &array, sizeof array);
        memcpy(quantifier, &n, sizeof n);
        return;
    }
    fill_value(f, member, seed, depth);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t id = f->id;
        memcpy(quantifier, &id, sizeof id);
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
               f->type != PROTOBUF_C_TYPE_STRING) {
        protobuf_c_boolean has = 1;
        memcpy(quantifier, &has, sizeof has);
    }
}

/* A message of desc with every field set from seed, allocated with malloc
 * like protobuf-c's unpacker so that protobuf_c_message_free_unpacked frees
 * it. Of a oneof sharing pick's case, only the member numbered pick->id is
 * set (none when that is 0); of other oneofs, the first member. Nested
 * messages go down depth levels, then stay empty. */
static ProtobufCMessage *fill_new(const ProtobufCMessageDescriptor *desc, unsigned seed, int depth,
                                  const ProtobufCFieldDescriptor *pick)
{
    ProtobufCMessage *msg = malloc(desc->sizeof_message);
    assert_non_null(msg);
    protobuf_c_message_init(desc, msg);
    for (unsigned i = 0; i < desc->n_fields && depth > 0; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        uint32_t oneof_case = 0;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            memcpy(&oneof_case, (char *)msg + f->quantifier_offset, sizeof oneof_case);
            bool picked = pick != NULL && f->quantifier_offset == pick->quantifier_offset;
            if (oneof_case != 0 || (picked && f->id != pick->id)) {
                continue;
            }
        }
        fill_field(msg, f, seed + i, depth);
    }
    return msg;
}

/* Packs msg with protobuf-c; the caller frees the buffer. */
static uint8_t *pack_generic(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(msg, buf), *len);
    return buf;
}

/* Both messages pack to the same bytes under protobuf-c. */
static void assert_same_generic(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t alen, blen;
    uint8_t *abuf = pack_generic(a, &alen);
    uint8_t *bbuf = pack_generic(b, &blen);
    assert_int_equal(alen, blen);
    assert_memory_equal(abuf, bbuf, alen);
    free(abuf);
    free(bbuf);
}

/* zcodec_pack writes protobuf-c's bytes, within a limit of exactly that
 * size and not one byte less; zcodec_unpack reads them back to a message of
 * the same bytes, with the member's case, no unknown fields and the original
 * descriptor. The unpacked message is freed with zcodec_free or protobuf-c's
 * free as `generic_free` says (valgrind checks both). */
static void check_envelope(const ProtobufCMessage *msg, uint32_t member_id, bool generic_free,
                           unsigned case_offset)
{
    size_t want_len;
    uint8_t *want = pack_generic(msg, &want_len);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(zcodec_pack(msg, want_len, &buf, &len), ZE_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(buf, want, len);
    free(buf);
    if (want_len > 0) {
        assert_int_equal(zcodec_pack(msg, want_len - 1, &buf, &len), ZE_INVALID);
        assert_null(buf);
        assert_int_equal(len, 0);
    }

    ProtobufCMessage *back = NULL;
    assert_int_equal(zcodec_unpack(msg->descriptor, want, want_len, 0, &back), ZE_OK);
    assert_ptr_equal(back->descriptor, msg->descriptor);
    assert_int_equal(back->n_unknown_fields, 0);
    assert_null(back->unknown_fields);
    uint32_t back_case;
    memcpy(&back_case, (char *)back + case_offset, sizeof back_case);
    assert_int_equal(back_case, member_id);
    assert_same_generic(msg, back);
    if (generic_free) {
        protobuf_c_message_free_unpacked(back, NULL);
    } else {
        zcodec_free(back);
    }
    free(want);
}

/* The members of desc's big oneof, the one whose case is at case_offset. */
static bool big_member(const ProtobufCFieldDescriptor *f, unsigned case_offset)
{
    return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && f->quantifier_offset == case_offset;
}

/* Every member of desc's big oneof in turn, then none, in a message with all
 * other fields set. Returns the number of members checked. */
static unsigned check_each_member(const ProtobufCMessageDescriptor *desc, unsigned case_offset)
{
    unsigned members = 0;
    const ProtobufCFieldDescriptor *any = NULL;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (!big_member(f, case_offset)) {
            continue;
        }
        any = f;
        ProtobufCMessage *msg = fill_new(desc, 100 + i, 3, f);
        check_envelope(msg, f->id, i % 2 == 0, case_offset);
        if (i % 2 == 0) {
            zcodec_free(msg);
        } else {
            protobuf_c_message_free_unpacked(msg, NULL);
        }
        members++;
    }
    assert_non_null(any);
    ProtobufCFieldDescriptor none = *any;
    none.id = 0;
    ProtobufCMessage *msg = fill_new(desc, 7, 3, &none);
    check_envelope(msg, 0, false, case_offset);
    zcodec_free(msg);
    /* No field set at all: zero bytes. */
    msg = fill_new(desc, 7, 0, NULL);
    check_envelope(msg, 0, true, case_offset);
    zcodec_free(msg);
    return members;
}

static void test_envelope_each_member(void **state)
{
    /* Goal: for Command, Reply and Event with each body member set (and
     * with none), filled with strings in UTF-8, 64-bit values, repeated
     * fields and nested messages, the fast pack gives protobuf-c's bytes and
     * size, its size limit holds, and the fast unpack gives back the same
     * message, freeable by zcodec_free and by protobuf-c's free alike. */
    (void)state;
    assert_true(check_each_member(&zhili__v1__command__descriptor,
                                  offsetof(Zhili__V1__Command, body_case)) >= 100);
    assert_true(check_each_member(&zhili__v1__reply__descriptor,
                                  offsetof(Zhili__V1__Reply, result_case)) >= 50);
    assert_true(check_each_member(&zhili__v1__event__descriptor,
                                  offsetof(Zhili__V1__Event, body_case)) >= 20);
}

static void test_envelope_typical_command(void **state)
{
    /* Goal: a Command built the way the gateway builds one (stack structs,
     * literal strings) packs to protobuf-c's bytes, and its unpacked copy
     * carries the body. */
    (void)state;
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "tok-1";
    actor.role = "admin";
    actor.name = "\xe5\xbc\xa0\xe4\xb8\x89";
    Zhili__Test__CounterGet get = ZHILI__TEST__COUNTER_GET__INIT;
    get.name = "c";
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.request_id = "req-1";
    cmd.actor = &actor;
    cmd.area = "330102";
    cmd.body_case = ZHILI__V1__COMMAND__BODY_COUNTER_GET;
    cmd.counter_get = &get;
    check_envelope(&cmd.base, ZHILI__V1__COMMAND__BODY_COUNTER_GET, false,
                   offsetof(Zhili__V1__Command, body_case));

    /* A member whose case is set but whose pointer is NULL is not written. */
    cmd.counter_get = NULL;
    check_envelope(&cmd.base, 0, false, offsetof(Zhili__V1__Command, body_case));
}

/* Unpacks data with zcodec_unpack and with protobuf-c: both refuse it or
 * both accept it as the same bytes. Returns whether they accepted it. */
static bool check_unpack_same(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                              size_t len)
{
    ProtobufCMessage *fast = (ProtobufCMessage *)1;
    int rc = zcodec_unpack(desc, data, len, 0, &fast);
    ProtobufCMessage *slow = protobuf_c_message_unpack(desc, NULL, len, len > 0 ? data : NULL);
    if (slow == NULL) {
        if (rc != ZE_INVALID) {
            fail_msg("%s, %zu bytes: protobuf-c refuses, zcodec_unpack gives %d", desc->name, len,
                     rc);
        }
        assert_null(fast);
        return false;
    }
    if (rc != ZE_OK) {
        fail_msg("%s, %zu bytes: protobuf-c accepts, zcodec_unpack gives %d", desc->name, len, rc);
    }
    assert_ptr_equal(fast->descriptor, desc);
    assert_int_equal(fast->n_unknown_fields, slow->n_unknown_fields);
    assert_same_generic(fast, slow);
    zcodec_free(fast);
    protobuf_c_message_free_unpacked(slow, NULL);
    return true;
}

/* The same message bytes cut short at every length, and with each byte
 * replaced by values that break varints, tags and lengths. */
static void check_damaged(const ProtobufCMessageDescriptor *desc, const uint8_t *good, size_t len)
{
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    for (size_t cut = 0; cut < len; cut++) {
        check_unpack_same(desc, good, cut);
    }
    const uint8_t values[] = {0x00, 0x07, 0x08, 0x0b, 0x7f, 0x80, 0xff};
    for (size_t i = 0; i < len; i++) {
        for (size_t v = 0; v < ZARRAY_LEN(values); v++) {
            memcpy(copy, good, len);
            copy[i] = values[v];
            check_unpack_same(desc, copy, len);
            copy[i] = (uint8_t)(good[i] ^ 0x01);
            check_unpack_same(desc, copy, len);
        }
    }
    free(copy);
}

static void test_envelope_unpack_damaged(void **state)
{
    /* Goal: on bytes cut short or damaged anywhere, the fast unpack refuses
     * exactly what protobuf-c refuses and accepts the rest as protobuf-c
     * reads it, leaking nothing (valgrind). */
    (void)state;
    const struct {
        const ProtobufCMessageDescriptor *desc;
        uint32_t member;
        unsigned case_offset;
    } cases[] = {
        {&zhili__v1__command__descriptor, ZHILI__V1__COMMAND__BODY_COUNTER_ADD,
         offsetof(Zhili__V1__Command, body_case)},
        {&zhili__v1__reply__descriptor, ZHILI__V1__REPLY__RESULT_STATS,
         offsetof(Zhili__V1__Reply, result_case)},
        {&zhili__v1__event__descriptor, ZHILI__V1__EVENT__BODY_COUNTER_ADDED,
         offsetof(Zhili__V1__Event, body_case)},
    };
    for (size_t i = 0; i < ZARRAY_LEN(cases); i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(cases[i].desc, cases[i].member);
        assert_non_null(f);
        ProtobufCMessage *msg = fill_new(cases[i].desc, 1, 2, f);
        size_t len;
        uint8_t *good = pack_generic(msg, &len);
        assert_true(check_unpack_same(cases[i].desc, good, len));
        check_damaged(cases[i].desc, good, len);
        free(good);
        zcodec_free(msg);
    }
}

/* Concatenates the packed forms of a, b and c (any may be NULL). */
static uint8_t *concat3(const ProtobufCMessage *a, const ProtobufCMessage *b,
                        const ProtobufCMessage *c, size_t *len)
{
    const ProtobufCMessage *parts[3] = {a, b, c};
    uint8_t *out = malloc(4096);
    assert_non_null(out);
    *len = 0;
    for (size_t i = 0; i < 3; i++) {
        if (parts[i] != NULL) {
            assert_true(*len + protobuf_c_message_get_packed_size(parts[i]) <= 4096);
            *len += protobuf_c_message_pack(parts[i], out + *len);
        }
    }
    return out;
}

static void test_envelope_unusual_order(void **state)
{
    /* Goal: bytes protobuf-c accepts but does not write - the member first,
     * in the middle, twice (the last one wins), fields unknown to the
     * schema before or after - unpack as protobuf-c reads them; unknown
     * fields are kept and packed back last, as protobuf-c does. */
    (void)state;
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "a";
    Zhili__V1__Command head = ZHILI__V1__COMMAND__INIT;
    head.request_id = "r";
    Zhili__V1__Command tail = ZHILI__V1__COMMAND__INIT;
    tail.actor = &actor;
    tail.area = "3301";
    Zhili__Test__CounterAdd add = ZHILI__TEST__COUNTER_ADD__INIT;
    add.name = "n";
    add.amount = -1;
    Zhili__V1__Command member = ZHILI__V1__COMMAND__INIT;
    member.body_case = ZHILI__V1__COMMAND__BODY_COUNTER_ADD;
    member.counter_add = &add;
    Zhili__V1__Replay replay = ZHILI__V1__REPLAY__INIT;
    replay.from_seq = 3;
    Zhili__V1__Command other = ZHILI__V1__COMMAND__INIT;
    other.body_case = ZHILI__V1__COMMAND__BODY_REPLAY;
    other.replay = &replay;
    /* Field 9 of Command is unused: a field from a newer schema. */
    assert_null(protobuf_c_message_descriptor_get_field(&zhili__v1__command__descriptor, 9));
    ProtobufCMessageUnknownField unknown = {9, PROTOBUF_C_WIRE_TYPE_VARINT, 1, (uint8_t *)"\x05"};
    Zhili__V1__Command newer = ZHILI__V1__COMMAND__INIT;
    newer.base.n_unknown_fields = 1;
    newer.base.unknown_fields = &unknown;

    const ProtobufCMessage *orders[][3] = {
        {&member.base, &head.base, &tail.base},  {&head.base, &member.base, &tail.base},
        {&member.base, &head.base, &other.base}, {&head.base, &other.base, &member.base},
        {&newer.base, &head.base, &member.base}, {&head.base, &member.base, &newer.base},
        {&member.base, &newer.base, NULL},       {&member.base, NULL, NULL},
    };
    for (size_t i = 0; i < ZARRAY_LEN(orders); i++) {
        size_t len;
        uint8_t *bytes = concat3(orders[i][0], orders[i][1], orders[i][2], &len);
        assert_true(check_unpack_same(&zhili__v1__command__descriptor, bytes, len));
        ProtobufCMessage *m = NULL;
        assert_int_equal(zcodec_unpack(&zhili__v1__command__descriptor, bytes, len, 0, &m), ZE_OK);
        /* Repacked, unknown fields included, exactly as protobuf-c packs it. */
        size_t want_len;
        uint8_t *want = pack_generic(m, &want_len);
        uint8_t *buf = NULL;
        size_t buf_len = 0;
        assert_int_equal(zcodec_pack(m, 0, &buf, &buf_len), ZE_OK);
        assert_int_equal(buf_len, want_len);
        assert_memory_equal(buf, want, want_len);
        free(buf);
        free(want);
        protobuf_c_message_free_unpacked(m, NULL);
        free(bytes);
    }
}

static void test_envelope_other_messages(void **state)
{
    /* Goal: messages without a big oneof, with many fields or few, still
     * pack, unpack and free as protobuf-c does them. */
    (void)state;
    const ProtobufCMessageDescriptor *descs[] = {
        &zhili__petitions__petition__descriptor, &zhili__funds__entry__descriptor,
        &zhili__v1__stats__descriptor,           &zhili__v1__actor__descriptor,
        &zhili__v1__continuation__descriptor,    &zhili__v1__replay_result__descriptor,
    };
    assert_true(zhili__petitions__petition__descriptor.n_fields >= ZCODEC_ONEOF_BIG_MEMBERS);
    for (size_t i = 0; i < ZARRAY_LEN(descs); i++) {
        ProtobufCMessage *msg = fill_new(descs[i], (unsigned)i, 3, NULL);
        size_t want_len;
        uint8_t *want = pack_generic(msg, &want_len);
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(zcodec_pack(msg, 0, &buf, &len), ZE_OK);
        assert_int_equal(len, want_len);
        assert_memory_equal(buf, want, len);
        assert_true(check_unpack_same(descs[i], buf, len));
        free(buf);
        free(want);
        zcodec_free(msg);
    }
    zcodec_free(NULL);
}

static void test_envelope_json_free(void **state)
{
    /* Goal: a Command made by zjson_to_msg is freed by zcodec_free, and
     * packs to protobuf-c's bytes. */
    (void)state;
    ProtobufCMessage *m =
        expect_ok(&zhili__v1__command__descriptor,
                  "{\"request_id\":\"r\",\"actor\":{\"id\":\"x\"},\"area\":\"33\","
                  "\"counter_add\":{\"name\":\"\xe5\x90\x8d\",\"amount\":-7}}");
    check_envelope(m, ZHILI__V1__COMMAND__BODY_COUNTER_ADD, false,
                   offsetof(Zhili__V1__Command, body_case));
    zcodec_free(m);
}

/* ---- a hand-built envelope whose big oneof holds every type ------------ */

typedef struct {
    ProtobufCMessage base;
    char *name;
    int64_t at_ms;
    uint32_t kind_case;
    union {
        int32_t i32;
        int64_t s64;
        uint64_t u64;
        uint32_t fx32;
        double d;
        float f;
        protobuf_c_boolean b;
        int e;
        char *s;
        ProtobufCBinaryData by;
        Zhili__V1__Actor *actor;
        int64_t sf64;
    };
    char *tail;
} kinds_t;

static const ProtobufCMessageDescriptor kinds_descriptor;

static void kinds_init(ProtobufCMessage *msg)
{
    static const kinds_t init = {.base = PROTOBUF_C_MESSAGE_INIT(&kinds_descriptor),
                                 .name = (char *)protobuf_c_empty_string,
                                 .tail = (char *)protobuf_c_empty_string};
    memcpy(msg, &init, sizeof init);
}

#define KIND_FIELD(name_, id_, type_, desc_)                                                       \
    {                                                                                              \
        .name = #name_, .id = id_, .label = PROTOBUF_C_LABEL_NONE,                                 \
        .type = PROTOBUF_C_TYPE_##type_, .quantifier_offset = offsetof(kinds_t, kind_case),        \
        .offset = offsetof(kinds_t, name_), .descriptor = desc_,                                   \
        .flags = PROTOBUF_C_FIELD_FLAG_ONEOF                                                       \
    }

static const ProtobufCFieldDescriptor kinds_fields[] = {
    {.name = "name",
     .id = 1,
     .label = PROTOBUF_C_LABEL_NONE,
     .type = PROTOBUF_C_TYPE_STRING,
     .offset = offsetof(kinds_t, name),
     .default_value = &protobuf_c_empty_string},
    {.name = "at_ms",
     .id = 2,
     .label = PROTOBUF_C_LABEL_NONE,
     .type = PROTOBUF_C_TYPE_INT64,
     .offset = offsetof(kinds_t, at_ms)},
    KIND_FIELD(i32, 10, INT32, NULL),
    KIND_FIELD(s64, 11, SINT64, NULL),
    KIND_FIELD(u64, 12, UINT64, NULL),
    KIND_FIELD(fx32, 13, FIXED32, NULL),
    KIND_FIELD(d, 14, DOUBLE, NULL),
    KIND_FIELD(f, 15, FLOAT, NULL),
    KIND_FIELD(b, 16, BOOL, NULL),
    KIND_FIELD(e, 17, ENUM, &zhili__v1__status__descriptor),
    KIND_FIELD(s, 18, STRING, NULL),
    KIND_FIELD(by, 19, BYTES, NULL),
    KIND_FIELD(actor, 20, MESSAGE, &zhili__v1__actor__descriptor),
    KIND_FIELD(sf64, 21, SFIXED64, NULL),
    {.name = "tail",
     .id = 30,
     .label = PROTOBUF_C_LABEL_NONE,
     .type = PROTOBUF_C_TYPE_STRING,
     .offset = offsetof(kinds_t, tail),
     .default_value = &protobuf_c_empty_string},
};
/* Indexes into kinds_fields in strcmp order of the names. */
static const unsigned kinds_by_name[] = {12, 1, 8, 11, 6, 9, 7, 5, 2, 0, 10, 3, 13, 14, 4};
static const ProtobufCIntRange kinds_ranges[] = {{1, 0}, {10, 2}, {30, 14}, {0, 15}};

TEST_DESCRIPTOR(kinds, Kinds, 3);

/* Packs a kinds_t from several threads at once: the first use of its
 * descriptor is learned concurrently. */
static void *kinds_pack_thread(void *arg)
{
    const kinds_t *k = arg;
    for (int i = 0; i < 100; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (zcodec_pack(&k->base, 0, &buf, &len) != ZE_OK) {
            return NULL;
        }
        free(buf);
    }
    return (void *)1;
}

static void test_envelope_threads(void **state)
{
    /* Goal: threads that meet an envelope descriptor for the first time at
     * the same moment all pack it right (run first, before anything else
     * has learned kinds_descriptor). Built with -fsanitize=thread this checks
     * the publication; helgrind does not follow C11 atomics and reports the
     * lock-free reads. */
    (void)state;
    ProtobufCMessage *msg = fill_new(&kinds_descriptor, 3, 2, &kinds_fields[12]);
    pthread_t threads[4];
    for (size_t i = 0; i < ZARRAY_LEN(threads); i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, kinds_pack_thread, msg), 0);
    }
    for (size_t i = 0; i < ZARRAY_LEN(threads); i++) {
        void *ok = NULL;
        assert_int_equal(pthread_join(threads[i], &ok), 0);
        assert_non_null(ok);
    }
    check_envelope(msg, 20, false, offsetof(kinds_t, kind_case));
    zcodec_free(msg);
}

static void test_envelope_every_member_type(void **state)
{
    /* Goal: a big oneof with a member of every type protobuf-c allows there
     * (scalars of each width and encoding, enum, string, bytes, message),
     * between fields numbered below and above it, packs to protobuf-c's
     * bytes; unpack and zcodec_free handle each member (string and bytes
     * members are freed: valgrind). */
    (void)state;
    assert_int_equal(check_each_member(&kinds_descriptor, offsetof(kinds_t, kind_case)), 12);
    /* A string member whose pointer is NULL is not written, as protobuf-c does. */
    kinds_t unset;
    kinds_init(&unset.base);
    unset.kind_case = 18;
    unset.s = NULL;
    check_envelope(&unset.base, 0, false, offsetof(kinds_t, kind_case));
    for (size_t i = 2; i < 14; i++) {
        ProtobufCMessage *msg = fill_new(&kinds_descriptor, 1, 2, &kinds_fields[i]);
        size_t len;
        uint8_t *good = pack_generic(msg, &len);
        check_damaged(&kinds_descriptor, good, len);
        free(good);
        zcodec_free(msg);
    }
}

static void test_peek_fields_in_place(void **state)
{
    /* Goal: zcodec_peek reads an Event's source, seq, area and type from the
     * packed bytes as unpacking would (the last record of a number wins),
     * leaves absent fields unfound, and refuses bytes that do not scan. */
    (void)state;
    Zhili__Test__CounterAdded added = ZHILI__TEST__COUNTER_ADDED__INIT;
    added.name = "c";
    added.amount = 3;
    Zhili__V1__Event ev = ZHILI__V1__EVENT__INIT;
    ev.source = "testsvc";
    ev.seq = 300;
    ev.type = "added";
    ev.body_case = ZHILI__V1__EVENT__BODY_COUNTER_ADDED;
    ev.counter_added = &added;
    uint8_t *packed = NULL;
    size_t len = 0;
    assert_int_equal(zcodec_pack(&ev.base, 0, &packed, &len), ZE_OK);
    zcodec_field_t f[4] = {{.id = 1}, {.id = 2}, {.id = 4}, {.id = 5}};
    assert_int_equal(zcodec_peek(packed, len, f, 4), ZE_OK);
    assert_true(f[0].found && f[0].len == 7 && memcmp(f[0].data, "testsvc", 7) == 0);
    assert_true(f[1].found && f[1].varint == 300);
    assert_false(f[2].found); /* proto3 writes no empty string */
    assert_true(f[3].found && f[3].len == 5 && memcmp(f[3].data, "added", 5) == 0);
    /* Two messages back to back are one message whose later fields win. */
    ev.seq = 301;
    ev.area = "220503";
    uint8_t *second = NULL;
    size_t second_len = 0;
    assert_int_equal(zcodec_pack(&ev.base, 0, &second, &second_len), ZE_OK);
    uint8_t *both = malloc(len + second_len);
    assert_non_null(both);
    memcpy(both, packed, len);
    memcpy(both + len, second, second_len);
    assert_int_equal(zcodec_peek(both, len + second_len, f, 4), ZE_OK);
    assert_true(f[1].found && f[1].varint == 301);
    assert_true(f[2].found && f[2].len == 6 && memcmp(f[2].data, "220503", 6) == 0);
    /* Cut short anywhere inside a record: refused. */
    for (size_t cut = 1; cut < len; cut++) {
        int rc = zcodec_peek(packed, cut, f, 4);
        ProtobufCMessage *m = NULL;
        if (zcodec_unpack(&zhili__v1__event__descriptor, packed, cut, 0, &m) != ZE_OK) {
            assert_int_equal(rc, ZE_INVALID); /* whatever unpack refuses, peek refuses */
        }
        zcodec_free(m);
    }
    assert_int_equal(zcodec_peek(NULL, 0, f, 4), ZE_OK);
    assert_false(f[0].found || f[1].found);
    free(both);
    free(second);
    free(packed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_unpack),
        cmocka_unit_test(test_pack_oversize),
        cmocka_unit_test(test_unpack_oversize),
        cmocka_unit_test(test_unpack_malformed),
        cmocka_unit_test(test_json_event_round_trip),
        cmocka_unit_test(test_json_defaults_written),
        cmocka_unit_test(test_json_command_each_oneof),
        cmocka_unit_test(test_json_reply_replay_bytes),
        cmocka_unit_test(test_json_reply_other_results),
        cmocka_unit_test(test_json_stats_repeated),
        cmocka_unit_test(test_json_scalar_types),
        cmocka_unit_test(test_enum_names),
        cmocka_unit_test(test_enum_camel_case_prefix),
        cmocka_unit_test(test_enum_json_fields),
        cmocka_unit_test(test_json_null_is_absent),
        cmocka_unit_test(test_json_oneof_two_members),
        cmocka_unit_test(test_json_unknown_field),
        cmocka_unit_test(test_json_error_text_is_utf8),
        cmocka_unit_test(test_json_wrong_type),
        cmocka_unit_test(test_json_int_range),
        cmocka_unit_test(test_json_int64_as_string),
        cmocka_unit_test(test_json_bad_base64),
        cmocka_unit_test(test_json_malformed_text),
        cmocka_unit_test(test_json_depth_limit),
        cmocka_unit_test(test_json_utf8),
        cmocka_unit_test(test_json_partial_free),
        cmocka_unit_test(test_json_text_matches_jansson),
        cmocka_unit_test(test_json_text_depth_limit),
        cmocka_unit_test(test_json_text_null_and_huge),
        cmocka_unit_test(test_json_text_reply_result),
        cmocka_unit_test(test_json_fast_bench_body),
        cmocka_unit_test(test_json_fast_extras),
        cmocka_unit_test(test_json_fast_declines),
        cmocka_unit_test(test_json_fast_depth),
        cmocka_unit_test(test_json_fast_matches_slow),
        cmocka_unit_test(test_envelope_each_member),
        cmocka_unit_test(test_envelope_typical_command),
        cmocka_unit_test(test_envelope_unpack_damaged),
        cmocka_unit_test(test_envelope_unusual_order),
        cmocka_unit_test(test_envelope_other_messages),
        cmocka_unit_test(test_envelope_json_free),
        cmocka_unit_test(test_envelope_every_member_type),
        cmocka_unit_test(test_envelope_threads),
        cmocka_unit_test(test_peek_fields_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
