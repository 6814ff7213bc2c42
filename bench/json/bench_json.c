/* zhili-bench-json: what the gateway's JSON of one reply and one event costs,
 * and that of one request body (docs/performance.md, "JSON text"). Not a
 * test: it prints figures.
 *
 * Each reply or event case is made two ways, as the gateway did (the jansson
 * tree of zjson_from_msg, json_dumps, json_decref) and with the text writer
 * (zjson_text_from_field / zjson_text_from_msg); the two texts are checked
 * equal first. The cases:
 *   reply_counter   a Reply with a CounterValue result; the answer is the
 *                   result member alone (api.c result_json + respond_json);
 *   reply_petition  a Reply with a Petition result (Chinese text, notes);
 *   event_counter   an Event with counter_added, as the hub streams it;
 *   event_petition  an Event with a petitions Change (hub.c hev_render).
 * The body case reads {"name":"w","amount":1} into a CounterAdd two ways,
 * through a jansson tree (json_loadb, zjson_to_msg, json_decref) and with
 * the fast path (zjson_fast_to_msg); the two messages are checked to pack
 * to the same bytes first. Each call also frees its message:
 *   body_counter    <tree|fast>.
 * Output is "<case>_<way>_ns per call" lines. For instructions per
 * call, run it under callgrind and divide the inclusive cost of the
 * functions named like the cases (case_<case>_<way>) by N:
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out zhili-bench-json 20000
 *   callgrind_annotate --inclusive=yes cg.out | grep case_
 *
 * usage: zhili-bench-json [N]   (calls per case and way, default 200000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/common/bench_util.h"
#include "common/codec.h"
#include "common/err.h"
#include "zhili.pb-c.h"

#define CALLS_DEFAULT 200000
#define CALLS_MAX 100000000L

/* The messages of the cases; built once, read only. */
typedef struct {
    Zhili__V1__Actor actor;
    Zhili__Test__CounterValue counter_value;
    Zhili__V1__Reply reply_counter;
    Zhili__Petitions__Citizen citizen;
    Zhili__Petitions__Note note;
    Zhili__Petitions__Note *notes[2];
    char *duplicates[1];
    Zhili__Petitions__Petition petition;
    Zhili__V1__Reply reply_petition;
    Zhili__Test__CounterAdded counter_added;
    Zhili__V1__Event event_counter;
    Zhili__Petitions__Change change;
    Zhili__V1__Event event_petition;
    const char *body_counter; /* a request body, body_counter_len bytes */
    size_t body_counter_len;
} cases_t;

static void cases_build_replies(cases_t *c)
{
    zhili__test__counter_value__init(&c->counter_value);
    c->counter_value.name = "visits";
    c->counter_value.value = 1742;
    c->counter_value.adds = 1742;
    zhili__v1__reply__init(&c->reply_counter);
    c->reply_counter.request_id = "9f2c41d07a3be815-000000000001d4c3";
    c->reply_counter.result_case = ZHILI__V1__REPLY__RESULT_COUNTER;
    c->reply_counter.counter = &c->counter_value;

    zhili__petitions__citizen__init(&c->citizen);
    c->citizen.name = "\xe5\xbc\xa0\xe4\xb8\x89"; /* 张三 */
    c->citizen.phone = "138****1234";
    zhili__petitions__note__init(&c->note);
    c->note.at = "2026-11-26T16:41:13+08:00";
    c->note.by = "tok-7f3a";
    c->note.role = "staff";
    c->note.kind = "progress";
    c->note.text =
        "\xe5\xb7\xb2\xe8\x81\x94\xe7\xb3\xbb\xe4\xb8\x9a\xe4\xb8\xbb\xef\xbc\x8c"
        "\xe6\x98\x8e\xe6\x97\xa5\xe5\xa4\x8d\xe6\x9f\xa5\xe3\x80\x82"; /* 已联系业主，明日复查。 */
    c->notes[0] = c->notes[1] = &c->note;
    c->duplicates[0] = "P20261126000031";
    zhili__petitions__petition__init(&c->petition);
    Zhili__Petitions__Petition *p = &c->petition;
    p->id = "P20261126000042";
    p->ticket = "12345-20261126-0042";
    p->category = ZHILI__PETITIONS__CATEGORY__CATEGORY_NOISE;
    p->category_name = "\xe5\x99\xaa\xe9\x9f\xb3\xe6\x89\xb0\xe6\xb0\x91"; /* 噪音扰民 */
    p->urgency = ZHILI__PETITIONS__URGENCY__URGENCY_URGENT;
    p->channel = ZHILI__PETITIONS__CHANNEL__CHANNEL_HOTLINE;
    p->state = ZHILI__PETITIONS__STATE__STATE_SIGNED;
    p->content =
        "\xe6\xa5\xbc\xe4\xb8\x8a\xe6\xb7\xb1\xe5\xa4\x9c\xe8\xa3\x85\xe4\xbf\xae\xef\xbc"
        "\x8c\xe5\x99\xaa\xe9\x9f\xb3\xe5\xbe\x88\xe5\xa4\xa7\xe3\x80\x82"; /* 楼上深夜装修… */
    p->area = "220503001001";
    p->address = "\xe5\xbb\xba\xe8\xae\xbe\xe8\xa1\x97 12 \xe5\x8f\xb7 3 \xe5\x8d\x95\xe5\x85\x83";
    p->citizen = &c->citizen;
    p->assigned_to = "220503001";
    p->routing = "unit";
    p->received_at = "2026-11-26T08:05:00Z";
    p->sign_deadline = "2026-11-26T10:05:00Z";
    p->reply_deadline = "2026-11-29T08:05:00Z";
    p->signed_at = "2026-11-26T08:41:13Z";
    p->updated_at = "2026-11-26T08:41:13Z";
    p->n_duplicates = 1;
    p->duplicates = c->duplicates;
    p->n_notes = 2;
    p->notes = c->notes;
    zhili__v1__reply__init(&c->reply_petition);
    c->reply_petition.request_id = "9f2c41d07a3be815-000000000001d4c4";
    c->reply_petition.result_case = ZHILI__V1__REPLY__RESULT_PETITION;
    c->reply_petition.petition = p;
}

static void cases_build_events(cases_t *c)
{
    zhili__v1__actor__init(&c->actor);
    c->actor.id = "tok-7f3a";
    c->actor.role = "hotline";
    c->actor.area = "220503";
    c->actor.name = "\xe6\x9d\x8e\xe5\x9b\x9b"; /* 李四 */
    zhili__test__counter_added__init(&c->counter_added);
    c->counter_added.name = "visits";
    c->counter_added.amount = 1;
    c->counter_added.value = 1742;
    Zhili__V1__Event *e = &c->event_counter;
    zhili__v1__event__init(e);
    e->source = "testsvc";
    e->seq = 1742;
    e->ts_ms = 1795680300123;
    e->area = "220503";
    e->type = "counter_added";
    e->request_id = "9f2c41d07a3be815-000000000001d4c3";
    e->actor = &c->actor;
    e->body_case = ZHILI__V1__EVENT__BODY_COUNTER_ADDED;
    e->counter_added = &c->counter_added;

    Zhili__Petitions__Change *ch = &c->change;
    zhili__petitions__change__init(ch);
    ch->id = "P20261126000042";
    ch->category = ZHILI__PETITIONS__CATEGORY__CATEGORY_NOISE;
    ch->urgency = ZHILI__PETITIONS__URGENCY__URGENCY_URGENT;
    ch->channel = ZHILI__PETITIONS__CHANNEL__CHANNEL_HOTLINE;
    ch->state = ZHILI__PETITIONS__STATE__STATE_SIGNED;
    ch->from_state = ZHILI__PETITIONS__STATE__STATE_ASSIGNED;
    ch->assigned_to = "220503001";
    ch->received_ms = 1795680300123;
    ch->sign_deadline_ms = 1795687500123;
    ch->reply_deadline_ms = 1795939500123;
    ch->on_time = 1;
    ch->routing = "unit";
    ch->citizen = &c->citizen;
    e = &c->event_petition;
    zhili__v1__event__init(e);
    e->source = "petitions";
    e->seq = 88231;
    e->ts_ms = 1795682473000;
    e->area = "220503001001";
    e->type = "signed";
    e->request_id = "9f2c41d07a3be815-000000000001d4c5";
    e->actor = &c->actor;
    e->body_case = ZHILI__V1__EVENT__BODY_PETITION_CHANGE;
    e->petition_change = ch;
}

/* The gateway's old answer to an OK reply: the whole Reply as a tree, the
 * result member taken from it and dumped alone (api.c result_json picks it
 * as the first key after the reply's own four; a lookup costs the same). */
__attribute__((noinline)) static char *reply_tree(const Zhili__V1__Reply *r)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(r->base.descriptor, r->result_case);
    json_t *all = zjson_from_msg(&r->base);
    json_t *result = f != NULL ? json_incref(json_object_get(all, f->name)) : NULL;
    json_decref(all);
    char *text = result != NULL ? json_dumps(result, JSON_COMPACT) : NULL;
    json_decref(result);
    return text;
}

__attribute__((noinline)) static char *reply_text(const Zhili__V1__Reply *r)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(r->base.descriptor, r->result_case);
    char *text = NULL;
    return zjson_text_from_field(&r->base, f, &text, NULL) == 0 ? text : NULL;
}

/* The hub's old rendering of an event (hub.c hev_render). */
__attribute__((noinline)) static char *event_tree(const Zhili__V1__Event *e)
{
    json_t *j = zjson_from_msg(&e->base);
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

__attribute__((noinline)) static char *event_text(const Zhili__V1__Event *e)
{
    return zjson_text_from_msg(&e->base, NULL);
}

/* The gateway's reading of a request body before the fast path: a jansson
 * tree, converted, then deleted. */
__attribute__((noinline)) static ProtobufCMessage *body_tree(const char *text, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    ProtobufCMessage *msg = NULL;
    if (j != NULL &&
        zjson_to_msg(j, &zhili__test__counter_add__descriptor, &msg, NULL, NULL) != 0) {
        msg = NULL;
    }
    json_decref(j);
    return msg;
}

__attribute__((noinline)) static ProtobufCMessage *body_fast(const char *text, size_t len)
{
    ProtobufCMessage *msg = NULL;
    int rc = zjson_fast_to_msg(text, len, NULL, 0, &zhili__test__counter_add__descriptor, &msg);
    return rc == 0 ? msg : NULL;
}

/* One function per case and way, so that callgrind counts each alone. */
#define CASE(name_, fn_, msg_)                                                                     \
    __attribute__((noinline)) static void case_##name_(const cases_t *c, long calls)               \
    {                                                                                              \
        for (long i = 0; i < calls; i++) {                                                         \
            free(fn_(&c->msg_));                                                                   \
        }                                                                                          \
    }
CASE(reply_counter_tree, reply_tree, reply_counter)
CASE(reply_counter_text, reply_text, reply_counter)
CASE(reply_petition_tree, reply_tree, reply_petition)
CASE(reply_petition_text, reply_text, reply_petition)
CASE(event_counter_tree, event_tree, event_counter)
CASE(event_counter_text, event_text, event_counter)
CASE(event_petition_tree, event_tree, event_petition)
CASE(event_petition_text, event_text, event_petition)

#define BODY_CASE(name_, fn_, text_)                                                               \
    __attribute__((noinline)) static void case_##name_(const cases_t *c, long calls)               \
    {                                                                                              \
        for (long i = 0; i < calls; i++) {                                                         \
            zcodec_free(fn_(c->text_, c->text_##_len));                                            \
        }                                                                                          \
    }
BODY_CASE(body_counter_tree, body_tree, body_counter)
BODY_CASE(body_counter_fast, body_fast, body_counter)

/* Both ways must give the same bytes, or the figures compare nothing. */
static int check_same(const char *name, char *tree, char *text)
{
    int rc = tree != NULL && text != NULL && strcmp(tree, text) == 0 ? 0 : -1;
    if (rc != 0) {
        fprintf(stderr, "zhili-bench-json: %s: the texts differ:\n%s\n%s\n", name,
                tree ? tree : "(null)", text ? text : "(null)");
    } else {
        printf("%s_bytes %zu\n", name, strlen(text));
    }
    free(tree);
    free(text);
    return rc;
}

/* Both ways must give the same message, or the figures compare nothing. */
static int check_same_msg(const char *name, ProtobufCMessage *tree, ProtobufCMessage *fast)
{
    uint8_t *a = NULL;
    uint8_t *b = NULL;
    size_t a_len = 0;
    size_t b_len = 0;
    int rc = tree != NULL && fast != NULL && zcodec_pack(tree, 0, &a, &a_len) == 0 &&
                     zcodec_pack(fast, 0, &b, &b_len) == 0 && a_len == b_len &&
                     memcmp(a, b, a_len) == 0
                 ? 0
                 : -1;
    if (rc != 0) {
        fprintf(stderr, "zhili-bench-json: %s: the messages differ\n", name);
    } else {
        printf("%s_packed_bytes %zu\n", name, a_len);
    }
    free(a);
    free(b);
    zcodec_free(tree);
    zcodec_free(fast);
    return rc;
}

static void timed(const char *name, void (*run)(const cases_t *, long), const cases_t *c,
                  long calls)
{
    run(c, calls / 10 + 1); /* warm the caches and the allocator */
    int64_t start = zbench_now_us();
    run(c, calls);
    int64_t us = zbench_now_us() - start;
    printf("%s_ns %.0f\n", name, (double)us * 1000.0 / (double)calls);
}

int main(int argc, char **argv)
{
    long calls = CALLS_DEFAULT;
    if (argc > 2 || (argc == 2 && !zbench_arg_long(argv[1], 1, CALLS_MAX, &calls))) {
        fprintf(stderr, "usage: zhili-bench-json [N]   (1 to %ld calls per case)\n", CALLS_MAX);
        return 2;
    }
    static cases_t c;
    cases_build_replies(&c);
    cases_build_events(&c);
    c.body_counter = "{\"name\":\"w\",\"amount\":1}";
    c.body_counter_len = strlen(c.body_counter);
    int rc = 0;
    rc |= check_same("reply_counter", reply_tree(&c.reply_counter), reply_text(&c.reply_counter));
    rc |=
        check_same("reply_petition", reply_tree(&c.reply_petition), reply_text(&c.reply_petition));
    rc |= check_same("event_counter", event_tree(&c.event_counter), event_text(&c.event_counter));
    rc |=
        check_same("event_petition", event_tree(&c.event_petition), event_text(&c.event_petition));
    rc |= check_same_msg("body_counter", body_tree(c.body_counter, c.body_counter_len),
                         body_fast(c.body_counter, c.body_counter_len));
    if (rc != 0) {
        return 1;
    }
    timed("reply_counter_tree", case_reply_counter_tree, &c, calls);
    timed("reply_counter_text", case_reply_counter_text, &c, calls);
    timed("reply_petition_tree", case_reply_petition_tree, &c, calls);
    timed("reply_petition_text", case_reply_petition_text, &c, calls);
    timed("event_counter_tree", case_event_counter_tree, &c, calls);
    timed("event_counter_text", case_event_counter_text, &c, calls);
    timed("event_petition_tree", case_event_petition_tree, &c, calls);
    timed("event_petition_text", case_event_petition_text, &c, calls);
    timed("body_counter_tree", case_body_counter_tree, &c, calls);
    timed("body_counter_fast", case_body_counter_fast, &c, calls);
    printf("Each line is one call of that case and way (N = %ld).\n", calls);
    return 0;
}
