/* Unit tests for the petitions service (services/petitions): the rules of
 * petitions.c on plain values — the transition table (every action in every
 * state), who may act, deadlines and their configuration, the routing table
 * and routing, phone masking and every intake check — and the handlers over
 * a real store: the loop end to end, every refused transition answered
 * CONFLICT naming the state, the grid read model, QR codes, the deadline
 * timer escalating once per breach, batches with bad rows, queries.
 *
 * The handlers are called directly, without a broker: each test opens the
 * runtime with zsvc_open (its store in a fresh /tmp directory, its broker an
 * ipc:// path nobody binds) and builds the zsvc_ctx_t a batch would, so
 * zsvc_emit, zsvc_fail and zsvc_alloc are the real ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/codec.h"
#include "common/err.h"
#include "common/service.h"
#include "services/petitions/handlers.h"
#include "services/petitions/petitions.h"
#include "services/petitions/store.h"

#define NOW_MS 1795000000000LL /* 2026-11-18T19:06:40+08:00 */
#define MIN_MS (60LL * 1000)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define BUILDING "220503001001002003"
#define GRID "220503001001002"
#define COMMUNITY "220503001001"
#define STREET "220503001"
#define DISTRICT "220503"

enum { ROOT_BYTES_MAX = 64, PATH_BYTES_MAX = 160 };

/* ================================================================ rules */

/* The loop of DESIGN §5 as the test reads it, independent of the table in
 * petitions.c: allowed[action][state]. */
static const struct {
    zpet_action_t action;
    int from[ZPET_STATES];
} expected_from[] = {
    {ZPET_ACT_ASSIGN, {ZPET_S_RECEIVED, ZPET_S_RETURNED, ZPET_S_ASSIGNED}},
    {ZPET_ACT_SIGN, {ZPET_S_ASSIGNED, ZPET_S_REOPENED}},
    {ZPET_ACT_PROGRESS, {ZPET_S_SIGNED, ZPET_S_IN_PROGRESS}},
    {ZPET_ACT_REPLY, {ZPET_S_SIGNED, ZPET_S_IN_PROGRESS}},
    {ZPET_ACT_EVALUATE, {ZPET_S_REPLIED}},
    {ZPET_ACT_ARCHIVE, {ZPET_S_EVALUATED}},
    {ZPET_ACT_RETURN, {ZPET_S_ASSIGNED, ZPET_S_SIGNED}},
    {ZPET_ACT_MERGE,
     {ZPET_S_RECEIVED, ZPET_S_ASSIGNED, ZPET_S_SIGNED, ZPET_S_IN_PROGRESS, ZPET_S_RETURNED,
      ZPET_S_REOPENED}},
    {ZPET_ACT_URGE, {ZPET_S_ASSIGNED, ZPET_S_SIGNED, ZPET_S_IN_PROGRESS, ZPET_S_REOPENED}},
    {ZPET_ACT_EXTEND, {ZPET_S_SIGNED, ZPET_S_IN_PROGRESS}},
};

static bool expect_allowed(zpet_action_t a, int state)
{
    for (size_t i = 0; i < ZARRAY_LEN(expected_from); i++) {
        if (expected_from[i].action != a) {
            continue;
        }
        for (int k = 0; k < ZPET_STATES && expected_from[i].from[k] != 0; k++) {
            if (expected_from[i].from[k] == state) {
                return true;
            }
        }
    }
    return false;
}

/* Every action in every state, the unspecified 0 and an out-of-range value included. */
static void test_transition_table_complete(void **state)
{
    (void)state;
    for (int a = 0; a < ZPET_ACT_COUNT; a++) {
        for (int s = -1; s <= ZPET_STATES; s++) {
            bool want = s > 0 && s < ZPET_STATES && expect_allowed((zpet_action_t)a, s);
            if (zpet_allowed((zpet_action_t)a, s) != want) {
                fail_msg("%s from %d: expected %s", zpet_action_name((zpet_action_t)a), s,
                         want ? "allowed" : "refused");
            }
        }
    }
}

static void test_transition_next_states(void **state)
{
    (void)state;
    assert_int_equal(zpet_next_state(ZPET_ACT_SIGN, ZPET_S_ASSIGNED), ZPET_S_SIGNED);
    assert_int_equal(zpet_next_state(ZPET_ACT_PROGRESS, ZPET_S_SIGNED), ZPET_S_IN_PROGRESS);
    assert_int_equal(zpet_next_state(ZPET_ACT_REPLY, ZPET_S_IN_PROGRESS), ZPET_S_REPLIED);
    assert_int_equal(zpet_next_state(ZPET_ACT_EVALUATE, ZPET_S_REPLIED), ZPET_S_EVALUATED);
    assert_int_equal(zpet_next_state(ZPET_ACT_ARCHIVE, ZPET_S_EVALUATED), ZPET_S_ARCHIVED);
    assert_int_equal(zpet_next_state(ZPET_ACT_RETURN, ZPET_S_SIGNED), ZPET_S_RETURNED);
    assert_int_equal(zpet_next_state(ZPET_ACT_ASSIGN, ZPET_S_RETURNED), ZPET_S_ASSIGNED);
    assert_int_equal(zpet_next_state(ZPET_ACT_MERGE, ZPET_S_SIGNED), ZPET_S_ARCHIVED);
    assert_int_equal(zpet_next_state(ZPET_ACT_URGE, ZPET_S_SIGNED), ZPET_S_SIGNED);
    assert_int_equal(zpet_next_state(ZPET_ACT_EXTEND, ZPET_S_IN_PROGRESS), ZPET_S_IN_PROGRESS);
    char from[128];
    zpet_allowed_from(ZPET_ACT_SIGN, from, sizeof from);
    assert_string_equal(from, "assigned or reopened");
    zpet_allowed_from(ZPET_ACT_URGE, from, sizeof from);
    assert_string_equal(from, "assigned, signed, in_progress or reopened");
    zpet_allowed_from(ZPET_ACT_EVALUATE, from, sizeof from);
    assert_string_equal(from, "replied");
    assert_true(zpet_sign_pending(ZPET_S_REOPENED));
    assert_false(zpet_sign_pending(ZPET_S_SIGNED));
    assert_true(zpet_reply_pending(ZPET_S_IN_PROGRESS));
    assert_false(zpet_reply_pending(ZPET_S_REPLIED));
    assert_false(zpet_state_open(ZPET_S_REPLIED));
    assert_true(zpet_state_open(ZPET_S_RETURNED));
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(zpet_category_parse("neighbor_dispute"),
                     ZHILI__PETITIONS__CATEGORY__CATEGORY_NEIGHBOR_DISPUTE);
    assert_int_equal(zpet_category_parse("邻里纠纷"),
                     ZHILI__PETITIONS__CATEGORY__CATEGORY_NEIGHBOR_DISPUTE);
    assert_int_equal(zpet_category_parse("Noise"), 0);
    assert_int_equal(zpet_category_parse(""), 0);
    assert_string_equal(zpet_category(ZHILI__PETITIONS__CATEGORY__CATEGORY_PUBLIC_SAFETY)->name,
                        "治安隐患");
    assert_null(zpet_category(0));
    assert_null(zpet_category(9));
    assert_int_equal(zpet_urgency_parse(""), ZPET_U_NORMAL);
    assert_int_equal(zpet_urgency_parse("特急"), ZPET_U_CRITICAL);
    assert_int_equal(zpet_urgency_parse("high"), 0);
    assert_int_equal(zpet_state_parse("in_progress"), ZPET_S_IN_PROGRESS);
    assert_string_equal(zpet_state_name(ZPET_S_REOPENED), "reopened");
    assert_int_equal(zpet_satisfaction_parse("基本满意"),
                     ZHILI__PETITIONS__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED);
    assert_int_equal(zpet_return_reason_parse("not_our_duty"),
                     ZHILI__PETITIONS__RETURN_REASON__RETURN_REASON_NOT_OUR_DUTY);
    assert_int_equal(zpet_channel_parse("open311"), ZPET_CH_OPEN311);
}

static void test_who_may_act(void **state)
{
    (void)state;
    zpet_subject_t p = {BUILDING, COMMUNITY, "hot1"};
    char why[256];
    zpet_actor_t grid_member = {"g", "grid_member", GRID}; /* inside the community */
    zpet_actor_t other_grid = {"g2", "grid_member", "220503001002001"};
    zpet_actor_t street_staff = {"s", "staff", STREET}; /* above the unit */
    zpet_actor_t police = {"p", "police", COMMUNITY};
    zpet_actor_t center = {"c", "command_center", DISTRICT};
    zpet_actor_t hotline = {"hot1", "hotline", DISTRICT};
    zpet_actor_t other_hotline = {"hot2", "hotline", DISTRICT};
    zpet_actor_t anonymous = {"", "", ""};
    assert_int_equal(zpet_may(ZPET_ACT_SIGN, &grid_member, &p, why, sizeof why), 0);
    assert_int_equal(zpet_may(ZPET_ACT_SIGN, &other_grid, &p, why, sizeof why), ZE_FORBIDDEN);
    assert_non_null(strstr(why, COMMUNITY));
    assert_int_equal(zpet_may(ZPET_ACT_SIGN, &street_staff, &p, why, sizeof why), ZE_FORBIDDEN);
    assert_int_equal(zpet_may(ZPET_ACT_SIGN, &police, &p, why, sizeof why), ZE_FORBIDDEN);
    assert_int_equal(zpet_may(ZPET_ACT_SIGN, &center, &p, why, sizeof why), ZE_FORBIDDEN);
    assert_int_equal(zpet_may(ZPET_ACT_SIGN, &anonymous, &p, why, sizeof why), ZE_FORBIDDEN);
    assert_int_equal(zpet_may(ZPET_ACT_REPLY, &grid_member, &p, why, sizeof why), 0);
    assert_int_equal(zpet_may(ZPET_ACT_ASSIGN, &street_staff, &p, why, sizeof why), 0);
    assert_int_equal(zpet_may(ZPET_ACT_ASSIGN, &grid_member, &p, why, sizeof why), ZE_FORBIDDEN);
    assert_int_equal(zpet_may(ZPET_ACT_URGE, &center, &p, why, sizeof why), 0);
    assert_int_equal(zpet_may(ZPET_ACT_URGE, &street_staff, &p, why, sizeof why), ZE_FORBIDDEN);
    assert_int_equal(zpet_may(ZPET_ACT_EVALUATE, &hotline, &p, why, sizeof why), 0);
    assert_int_equal(zpet_may(ZPET_ACT_EVALUATE, &other_hotline, &p, why, sizeof why),
                     ZE_FORBIDDEN);
    assert_int_equal(zpet_may(ZPET_ACT_EVALUATE, &center, &p, why, sizeof why), 0);
    assert_true(zpet_may_read(&hotline, &p));
    assert_false(zpet_may_read(&other_hotline, &p));
    assert_true(zpet_may_read(&grid_member, &p));
    assert_true(zpet_may_read(&street_staff, &p));
    assert_false(zpet_may_read(&other_grid, &p));
    assert_false(zpet_may_read(&anonymous, &p));
    assert_true(zpet_phone_visible(&hotline, &p));
    assert_false(zpet_phone_visible(&other_hotline, &p));
    assert_true(zpet_phone_visible(&grid_member, &p));
    assert_false(zpet_phone_visible(&street_staff, &p));
    assert_false(zpet_phone_visible(&center, &p));
    assert_false(zpet_phone_visible(&police, &p));
    assert_int_equal(zpet_channel_default("hotline"), ZPET_CH_HOTLINE);
    assert_int_equal(zpet_channel_default("resident"), 0);
    assert_true(zpet_channel_allowed("hotline", ZPET_CH_OPEN311));
    assert_false(zpet_channel_allowed("hotline", ZPET_CH_STAFF));
    assert_false(zpet_channel_allowed("admin", ZPET_CH_QR));
    assert_false(zpet_channel_allowed("staff", ZPET_CH_HOTLINE));
}

static void test_deadlines_default(void **state)
{
    (void)state;
    zpet_deadlines_t d;
    zpet_deadlines_default(&d);
    int64_t sign, reply;
    for (int c = 1; c < ZPET_CATEGORIES; c++) {
        zpet_deadlines_for(&d, c, ZPET_U_NORMAL, NOW_MS, &sign, &reply);
        assert_int_equal(sign - NOW_MS, 2 * HOUR_MS);
        assert_int_equal(reply - NOW_MS, 7 * DAY_MS);
        zpet_deadlines_for(&d, c, ZPET_U_URGENT, NOW_MS, &sign, &reply);
        assert_int_equal(sign - NOW_MS, 30 * MIN_MS);
        assert_int_equal(reply - NOW_MS, 24 * HOUR_MS);
        zpet_deadlines_for(&d, c, ZPET_U_CRITICAL, NOW_MS, &sign, &reply);
        assert_int_equal(sign - NOW_MS, 30 * MIN_MS);
        assert_int_equal(reply - NOW_MS, 2 * HOUR_MS);
    }
    assert_int_equal(d.extension_ms, 15 * DAY_MS);
}

static void test_deadlines_config(void **state)
{
    (void)state;
    zpet_deadlines_t d;
    char err[256];
    int64_t sign, reply;
    zpet_deadlines_default(&d);
    assert_int_equal(zpet_deadlines_parse(&d,
                                          "*/normal=1h/5d, noise/urgent=15m/12h # night\n"
                                          "extension=20d",
                                          err, sizeof err),
                     0);
    zpet_deadlines_for(&d, ZHILI__PETITIONS__CATEGORY__CATEGORY_PARKING, ZPET_U_NORMAL, 0, &sign,
                       &reply);
    assert_int_equal(sign, HOUR_MS);
    assert_int_equal(reply, 5 * DAY_MS);
    zpet_deadlines_for(&d, ZHILI__PETITIONS__CATEGORY__CATEGORY_NOISE, ZPET_U_URGENT, 0, &sign,
                       &reply);
    assert_int_equal(sign, 15 * MIN_MS);
    assert_int_equal(reply, 12 * HOUR_MS);
    zpet_deadlines_for(&d, ZHILI__PETITIONS__CATEGORY__CATEGORY_PARKING, ZPET_U_URGENT, 0, &sign,
                       &reply);
    assert_int_equal(sign, 30 * MIN_MS); /* untouched */
    assert_int_equal(d.extension_ms, 20 * DAY_MS);
    static const char *const bad[] = {
        "noise=1h/2h",            /* no urgency */
        "loud/normal=1h/2h",      /* unknown category */
        "noise/high=1h/2h",       /* unknown urgency */
        "noise/normal=1h",        /* one duration */
        "noise/normal=1x/2h",     /* unit */
        "noise/normal=0m/2h",     /* zero */
        "noise/normal=2h/1h",     /* reply before sign */
        "noise/normal=999d/999d", /* over a year */
        "extension=forever",
        "whatever",
    };
    for (size_t i = 0; i < ZARRAY_LEN(bad); i++) {
        zpet_deadlines_t before = d;
        if (zpet_deadlines_parse(&d, bad[i], err, sizeof err) != ZE_INVALID) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
        assert_memory_equal(&before, &d, sizeof d); /* a bad rule changes nothing */
    }
    assert_int_equal(zpet_duration_parse("90s", 3), 90000);
    assert_int_equal(zpet_duration_parse("7d", 2), 7 * DAY_MS);
    assert_int_equal(zpet_duration_parse("d", 1), -1);
    assert_int_equal(zpet_duration_parse("-5m", 3), -1);
}

static bool known_set(void *ctx, const char *code)
{
    for (const char *const *k = ctx; *k != NULL; k++) {
        if (strcmp(*k, code) == 0) {
            return true;
        }
    }
    return false;
}

static void test_routing(void **state)
{
    (void)state;
    zpet_routing_t r;
    zpet_route_t out;
    zpet_routing_default(&r);
    const char *const none[] = {NULL};
    const char *const grid_known[] = {GRID, COMMUNITY, NULL};
    const char *const community_known[] = {COMMUNITY, NULL};
    const int noise = ZHILI__PETITIONS__CATEGORY__CATEGORY_NOISE;
    const int municipal = ZHILI__PETITIONS__CATEGORY__CATEGORY_MUNICIPAL;
    const int sanitation = ZHILI__PETITIONS__CATEGORY__CATEGORY_SANITATION;
    /* a building's noise goes to its grid when the grid is known */
    zpet_route(&r, noise, BUILDING, known_set, (void *)grid_known, &out);
    assert_string_equal(out.unit, GRID);
    assert_string_equal(out.routing, "unit");
    assert_false(out.manual);
    /* only the community known: up to it */
    zpet_route(&r, noise, BUILDING, known_set, (void *)community_known, &out);
    assert_string_equal(out.unit, COMMUNITY);
    assert_string_equal(out.routing, "unit");
    /* nothing known (no grid service): the community of the area */
    zpet_route(&r, noise, BUILDING, known_set, (void *)none, &out);
    assert_string_equal(out.unit, COMMUNITY);
    assert_string_equal(out.routing, "fallback_community");
    zpet_route(&r, noise, BUILDING, NULL, NULL, &out);
    assert_string_equal(out.unit, COMMUNITY);
    /* sanitation is the community's even when the grid is known */
    zpet_route(&r, sanitation, BUILDING, known_set, (void *)grid_known, &out);
    assert_string_equal(out.unit, COMMUNITY);
    /* municipal goes to the street, known or not */
    zpet_route(&r, municipal, BUILDING, NULL, NULL, &out);
    assert_string_equal(out.unit, STREET);
    assert_string_equal(out.routing, "level");
    /* an area above the community with nothing known: itself, for a person */
    zpet_route(&r, noise, STREET, NULL, NULL, &out);
    assert_string_equal(out.unit, STREET);
    assert_true(out.manual);
    /* configured: noise to the street, parking to a fixed unit */
    char err[256];
    assert_int_equal(
        zpet_routing_parse(&r, "noise=street\nparking=220503009 # 城管", err, sizeof err), 0);
    zpet_route(&r, noise, BUILDING, known_set, (void *)grid_known, &out);
    assert_string_equal(out.unit, STREET);
    zpet_route(&r, ZHILI__PETITIONS__CATEGORY__CATEGORY_PARKING, BUILDING, NULL, NULL, &out);
    assert_string_equal(out.unit, "220503009");
    assert_string_equal(out.routing, "fixed");
    assert_string_equal(zpet_routing_target(&r, ZHILI__PETITIONS__CATEGORY__CATEGORY_PARKING),
                        "220503009");
    assert_string_equal(zpet_routing_target(&r, noise), "street");
    static const char *const bad[] = {"noise", "loud=grid", "noise=block", "noise=2205031",
                                      "=grid"};
    for (size_t i = 0; i < ZARRAY_LEN(bad); i++) {
        zpet_routing_t before = r;
        if (zpet_routing_parse(&r, bad[i], err, sizeof err) != ZE_INVALID) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
        assert_memory_equal(&before, &r, sizeof r);
    }
    char up[ZPET_AREA_BUF];
    zpet_supervising_unit(GRID, up);
    assert_string_equal(up, COMMUNITY);
    zpet_supervising_unit(DISTRICT, up);
    assert_string_equal(up, DISTRICT);
}

static void test_point_in_polygon(void **state)
{
    (void)state;
    const double lats[] = {41.0, 41.0, 42.0, 42.0}, lons[] = {126.0, 127.0, 127.0, 126.0};
    assert_true(zpet_point_in_polygon(41.5, 126.5, lats, lons, 4));
    assert_false(zpet_point_in_polygon(42.5, 126.5, lats, lons, 4));
    assert_false(zpet_point_in_polygon(41.5, 127.5, lats, lons, 4));
    assert_false(zpet_point_in_polygon(41.5, 126.5, lats, lons, 2));
}

static void test_phone(void **state)
{
    (void)state;
    char out[ZPET_PHONE_BYTES_MAX + 1];
    zpet_phone_mask("13812341234", out, sizeof out);
    assert_string_equal(out, "138****1234");
    zpet_phone_mask("+86 138-1234-1234", out, sizeof out);
    assert_string_equal(out, "138****1234");
    zpet_phone_mask("0435-3215678", out, sizeof out);
    assert_string_equal(out, "043****5678");
    zpet_phone_mask("3215678", out, sizeof out);
    assert_string_equal(out, "****78");
    zpet_phone_mask("", out, sizeof out);
    assert_string_equal(out, "");
    assert_true(zpet_phone_valid("13812341234"));
    assert_true(zpet_phone_valid("+8613812341234"));
    assert_true(zpet_phone_valid("0435-3215678"));
    assert_true(zpet_phone_valid("3215678"));
    assert_false(zpet_phone_valid("12812341234"));  /* no such mobile prefix */
    assert_false(zpet_phone_valid("1381234123"));   /* 10 digits */
    assert_false(zpet_phone_valid("138123412345")); /* 12 digits starting with 1 */
    assert_false(zpet_phone_valid("138x2341234"));
    assert_false(zpet_phone_valid("123456"));
    assert_false(zpet_phone_valid(""));
}

static void test_text_and_ids(void **state)
{
    (void)state;
    assert_true(zpet_text_ok("楼上夜间装修噪音", 1, 100, false));
    assert_false(zpet_text_ok("", 1, 100, false));
    assert_false(zpet_text_ok("   ", 1, 100, false));
    assert_true(zpet_text_ok("", 0, 100, false));
    assert_false(zpet_text_ok("a\nb", 0, 100, false));
    assert_true(zpet_text_ok("a\nb", 0, 100, true));
    assert_false(zpet_text_ok("a\x01", 0, 100, true));
    assert_false(zpet_text_ok("\xc3\x28", 0, 100, true));     /* invalid UTF-8 */
    assert_false(zpet_text_ok("\xe0\x80\xaf", 0, 100, true)); /* overlong */
    assert_false(zpet_text_ok("\xed\xa0\x80", 0, 100, true)); /* surrogate */
    assert_false(zpet_text_ok("abcdef", 0, 5, true));
    char id[ZPET_ID_BYTES + 1];
    uint64_t seq;
    zpet_id_format(183, id);
    assert_string_equal(id, "P0000000183");
    assert_true(zpet_id_parse(id, &seq));
    assert_int_equal(seq, 183);
    assert_false(zpet_id_parse("P0000000000", &seq));
    assert_false(zpet_id_parse("P000000018", &seq));
    assert_false(zpet_id_parse("Q0000000183", &seq));
    assert_false(zpet_id_parse("P00000001x3", &seq));
    assert_true(zpet_media_url_valid("https://example.org/a.jpg"));
    assert_false(zpet_media_url_valid("ftp://example.org/a.jpg"));
    assert_false(zpet_media_url_valid("http://"));
    assert_false(zpet_media_url_valid("http://a b"));
}

/* A valid hotline push; tests break one field at a time. */
typedef struct {
    Zhili__Petitions__Create c;
    Zhili__Petitions__Citizen cz;
    Zhili__Petitions__Point pt;
} create_t;

static void create_init(create_t *t)
{
    zhili__petitions__create__init(&t->c);
    zhili__petitions__citizen__init(&t->cz);
    zhili__petitions__point__init(&t->pt);
    t->c.category = "noise";
    t->c.urgency = "normal";
    t->c.content = "楼上夜间装修噪音";
    t->c.area = GRID;
    t->c.address = "二道江区某小区3号楼";
    t->cz.name = "张女士";
    t->cz.phone = "13812341234";
    t->c.citizen = &t->cz;
    t->c.channel = "hotline";
}

static void test_intake_check(void **state)
{
    (void)state;
    zpet_actor_t hotline = {"h", "hotline", DISTRICT};
    zpet_intake_t in;
    zpet_error_t err;
    create_t t;
    create_init(&t);
    assert_int_equal(zpet_intake_check(&t.c, &hotline, &in, &err), 0);
    assert_int_equal(in.channel, ZPET_CH_HOTLINE);
    struct {
        const char *field;
        const char *value;
        int code;
    } cases[] = {
        {"category", "", ZE_INVALID},         {"category", "loud", ZE_INVALID},
        {"urgency", "very", ZE_INVALID},      {"content", "", ZE_INVALID},
        {"content", " \n ", ZE_INVALID},      {"content", "\x01", ZE_INVALID},
        {"area", "2205", ZE_INVALID},         {"area", "22050300100100", ZE_INVALID},
        {"area", "220504001", ZE_FORBIDDEN},  {"address", "a\nb", ZE_INVALID},
        {"citizen.name", "a\tb", ZE_INVALID}, {"citizen.phone", "12345", ZE_INVALID},
        {"channel", "qr", ZE_INVALID},        {"channel", "staff", ZE_INVALID},
        {"channel", "fax", ZE_INVALID},       {"media_url", "file:///etc", ZE_INVALID},
        {"ticket", "has space", ZE_INVALID},
    };
    for (size_t i = 0; i < ZARRAY_LEN(cases); i++) {
        create_init(&t);
        const char *f = cases[i].field, *v = cases[i].value;
        if (!strcmp(f, "category"))
            t.c.category = (char *)v;
        if (!strcmp(f, "urgency"))
            t.c.urgency = (char *)v;
        if (!strcmp(f, "content"))
            t.c.content = (char *)v;
        if (!strcmp(f, "area"))
            t.c.area = (char *)v;
        if (!strcmp(f, "address"))
            t.c.address = (char *)v;
        if (!strcmp(f, "citizen.name"))
            t.cz.name = (char *)v;
        if (!strcmp(f, "citizen.phone"))
            t.cz.phone = (char *)v;
        if (!strcmp(f, "channel"))
            t.c.channel = (char *)v;
        if (!strcmp(f, "media_url"))
            t.c.media_url = (char *)v;
        if (!strcmp(f, "ticket"))
            t.c.ticket = (char *)v;
        int rc = zpet_intake_check(&t.c, &hotline, &in, &err);
        if (rc != cases[i].code || strcmp(err.field, f) != 0) {
            fail_msg("%s=\"%s\": got %d field \"%s\" (%s)", f, v, rc, err.field, err.message);
        }
    }
    /* the location: area, or a point, or an address alone */
    create_init(&t);
    t.c.area = "";
    t.c.address = "";
    assert_int_equal(zpet_intake_check(&t.c, &hotline, &in, &err), ZE_INVALID);
    assert_string_equal(err.field, "area");
    t.c.address = "江畔名居";
    assert_int_equal(zpet_intake_check(&t.c, &hotline, &in, &err), 0);
    t.c.point_present_case = ZHILI__PETITIONS__CREATE__POINT_PRESENT_POINT;
    t.c.point = &t.pt;
    t.pt.lat = 95;
    assert_int_equal(zpet_intake_check(&t.c, &hotline, &in, &err), ZE_INVALID);
    assert_string_equal(err.field, "point");
    /* roles */
    zpet_actor_t resident = {"r", "resident", GRID}, staff = {"s", "staff", "220503002"};
    create_init(&t);
    assert_int_equal(zpet_intake_check(&t.c, &resident, &in, &err), ZE_FORBIDDEN);
    t.c.area = BUILDING;
    t.c.channel = "";
    assert_int_equal(zpet_intake_check(&t.c, &staff, &in, &err), ZE_FORBIDDEN); /* another street */
    t.c.area = "220503002001";
    assert_int_equal(zpet_intake_check(&t.c, &staff, &in, &err), 0);
    assert_int_equal(in.channel, ZPET_CH_STAFF);
    /* QR */
    Zhili__Petitions__QrCreate q = ZHILI__PETITIONS__QR_CREATE__INIT;
    q.code = "qr-ab12";
    q.category = "sanitation";
    q.content = "楼道垃圾";
    assert_int_equal(zpet_qr_intake_check(&q, &in, &err), 0);
    assert_int_equal(in.channel, ZPET_CH_QR);
    q.code = "../etc";
    assert_int_equal(zpet_qr_intake_check(&q, &in, &err), ZE_INVALID);
    assert_string_equal(err.field, "code");
}

/* ============================================================ handlers */

typedef struct {
    char root[ROOT_BYTES_MAX];
    zsvc_spec_t spec;
    zph_config_t cfg;
    zsvc_t *svc;
    zstore_t *store;
    zarena_t arena;
    int64_t now_ms;
} fixture_t;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->root, sizeof f->root, "/tmp/zhili-test-petitions-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    char broker[PATH_BYTES_MAX];
    snprintf(broker, sizeof broker, "ipc://%s/nobody", f->root);
    setenv("ZHILI_DATA", f->root, 1);
    setenv("ZHILI_BROKER", broker, 1);
    setenv("ZHILI_EVENTS_PUB", broker, 1);
    setenv("ZHILI_EVENTS_SUB", broker, 1);
    setenv("ZHILI_LOG", "error", 1);
    unsetenv("ZHILI_SERVICE_NAME");
    unsetenv("ZHILI_FAKE_CLOCK");
    zpet_deadlines_default(&f->cfg.deadlines);
    zpet_routing_default(&f->cfg.routing);
    f->spec = (zsvc_spec_t){.name = "petitions",
                            .tables = zps_tables,
                            .subscribe = zph_subscribe,
                            .user = &f->cfg,
                            .on_command = zph_on_command,
                            .is_query = zph_is_query,
                            .on_query = zph_on_query,
                            .on_event = zph_on_event,
                            .on_tick = zph_on_tick,
                            .on_stats = zph_on_stats};
    f->svc = zsvc_open(&f->spec);
    assert_non_null(f->svc);
    f->store = zsvc_store(f->svc);
    zarena_init(&f->arena);
    f->now_ms = NOW_MS;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    zsvc_close(&f->svc);
    zarena_fini(&f->arena);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void ctx_make(fixture_t *f, zsvc_ctx_t *ctx, ztxn_t *txn, const Zhili__V1__Command *cmd,
                     Zhili__V1__Reply *reply)
{
    *ctx = (zsvc_ctx_t){.svc = f->svc,
                        .txn = txn,
                        .now_ms = f->now_ms,
                        .cmd = cmd,
                        .reply = reply,
                        .arena = &f->arena,
                        .user = &f->cfg};
}

/* One command as a batch would run it: committed on success, aborted on error. */
static int run(fixture_t *f, Zhili__V1__Command *cmd, Zhili__V1__Reply *reply)
{
    zhili__v1__reply__init(reply);
    bool query = zph_is_query(cmd);
    ztxn_t *txn = ztxn_begin(f->store, !query);
    assert_non_null(txn);
    zsvc_ctx_t ctx;
    ctx_make(f, &ctx, txn, cmd, reply);
    int rc = query ? zph_on_query(&ctx, cmd) : zph_on_command(&ctx, cmd);
    if (rc == 0 && !query) {
        assert_int_equal(ztxn_commit(&txn), 0);
    } else {
        ztxn_abort(&txn);
    }
    return rc;
}

/* As `role` with scope `area`, acting on `cmd_area` (the gateway's Command.area). */
static int run_in(fixture_t *f, const char *id, const char *role, const char *area,
                  const char *cmd_area, Zhili__V1__Command *cmd, Zhili__V1__Reply *reply)
{
    static int counter;
    char rid[32];
    snprintf(rid, sizeof rid, "req-%d", ++counter);
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = (char *)id;
    actor.role = (char *)role;
    actor.area = (char *)area;
    cmd->request_id = rid;
    cmd->actor = &actor;
    cmd->area = (char *)cmd_area;
    int rc = run(f, cmd, reply);
    cmd->actor = NULL;
    return rc;
}

static int run_as(fixture_t *f, const char *id, const char *role, const char *area,
                  Zhili__V1__Command *cmd, Zhili__V1__Reply *reply)
{
    return run_in(f, id, role, area, area, cmd, reply);
}

static int tick(fixture_t *f)
{
    ztxn_t *txn = ztxn_begin(f->store, true);
    zsvc_ctx_t ctx;
    ctx_make(f, &ctx, txn, NULL, NULL);
    int rc = zph_on_tick(&ctx);
    assert_int_equal(ztxn_commit(&txn), 0);
    return rc;
}

static void event(fixture_t *f, const char *type, Zhili__Grid__Unit *u)
{
    Zhili__V1__Event ev = ZHILI__V1__EVENT__INIT;
    ev.source = "grid";
    ev.type = (char *)type;
    ev.body_case = ZHILI__V1__EVENT__BODY_GRID_UNIT;
    ev.grid_unit = u;
    ztxn_t *txn = ztxn_begin(f->store, true);
    zsvc_ctx_t ctx;
    ctx_make(f, &ctx, txn, NULL, NULL);
    assert_int_equal(zph_on_event(&ctx, &ev), 0);
    assert_int_equal(ztxn_commit(&txn), 0);
}

/* Events in the outbox whose type is `type`. */
static int events_of(fixture_t *f, const char *type)
{
    ztxn_t *txn = ztxn_begin(f->store, false);
    int n = 0;
    uint64_t last = ztxn_outbox_last(txn);
    for (uint64_t s = 1; s <= last; s++) {
        zval_t v;
        assert_int_equal(ztxn_outbox_get(txn, s, &v), 0);
        Zhili__V1__Event *ev = zhili__v1__event__unpack(NULL, v.len, v.data);
        assert_non_null(ev);
        n += strcmp(ev->type, type) == 0;
        zhili__v1__event__free_unpacked(ev, NULL);
    }
    ztxn_abort(&txn);
    return n;
}

/* A hotline push of a noise petition at a building: returns the id. */
static void push(fixture_t *f, const char *ticket, const char *category, const char *urgency,
                 char id[ZPET_ID_BYTES + 1])
{
    create_t t;
    create_init(&t);
    t.c.area = BUILDING;
    t.c.category = (char *)category;
    t.c.urgency = (char *)urgency;
    t.c.ticket = (char *)ticket;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_CREATE;
    cmd.petition_create = &t.c;
    Zhili__V1__Reply r;
    assert_int_equal(run_as(f, "hot1", "hotline", DISTRICT, &cmd, &r), 0);
    assert_int_equal(r.result_case, ZHILI__V1__REPLY__RESULT_PETITION);
    snprintf(id, ZPET_ID_BYTES + 1, "%s", r.petition->id);
}

/* Commands by name, from whoever may do them. */
static int act(fixture_t *f, const char *what, const char *id, Zhili__V1__Reply *r)
{
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    Zhili__Petitions__Sign sign = ZHILI__PETITIONS__SIGN__INIT;
    Zhili__Petitions__Progress prog = ZHILI__PETITIONS__PROGRESS__INIT;
    Zhili__Petitions__ReplyText reply = ZHILI__PETITIONS__REPLY_TEXT__INIT;
    Zhili__Petitions__Evaluate ev = ZHILI__PETITIONS__EVALUATE__INIT;
    Zhili__Petitions__Archive ar = ZHILI__PETITIONS__ARCHIVE__INIT;
    Zhili__Petitions__Return ret = ZHILI__PETITIONS__RETURN__INIT;
    Zhili__Petitions__Assign as = ZHILI__PETITIONS__ASSIGN__INIT;
    Zhili__Petitions__Urge urge = ZHILI__PETITIONS__URGE__INIT;
    Zhili__Petitions__Extend ext = ZHILI__PETITIONS__EXTEND__INIT;
    Zhili__Petitions__Merge merge = ZHILI__PETITIONS__MERGE__INIT;
    const char *role = "grid_member", *area = GRID;
    sign.id = prog.id = reply.id = ev.id = ar.id = ret.id = as.id = urge.id = ext.id = merge.id =
        (char *)id;
    if (!strcmp(what, "sign")) {
        cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_SIGN, cmd.petition_sign = &sign;
    } else if (!strcmp(what, "progress")) {
        prog.note = "已上门了解情况";
        cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_PROGRESS, cmd.petition_progress = &prog;
    } else if (!strcmp(what, "reply")) {
        reply.text = "已协调住户，夜间停止施工";
        cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_REPLY, cmd.petition_reply = &reply;
    } else if (!strcmp(what, "evaluate") || !strcmp(what, "evaluate_bad")) {
        ev.solved_present_case = ZHILI__PETITIONS__EVALUATE__SOLVED_PRESENT_SOLVED;
        ev.solved = strcmp(what, "evaluate") == 0;
        ev.satisfaction = ev.solved ? "satisfied" : "dissatisfied";
        cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_EVALUATE, cmd.petition_evaluate = &ev;
        role = "hotline", area = DISTRICT;
    } else if (!strcmp(what, "archive")) {
        cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_ARCHIVE, cmd.petition_archive = &ar;
        role = "command_center", area = DISTRICT;
    } else if (!strcmp(what, "return")) {
        ret.reason = "not_our_duty";
        cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_RETURN, cmd.petition_return = &ret;
    } else if (!strcmp(what, "assign")) {
        as.unit = GRID;
        cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_ASSIGN, cmd.petition_assign = &as;
        role = "command_center", area = DISTRICT;
    } else if (!strcmp(what, "urge")) {
        cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_URGE, cmd.petition_urge = &urge;
        role = "command_center", area = DISTRICT;
    } else if (!strcmp(what, "extend")) {
        cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_EXTEND, cmd.petition_extend = &ext;
        role = "command_center", area = DISTRICT;
    } else if (!strcmp(what, "merge")) {
        merge.into = "P0000000001";
        cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_MERGE, cmd.petition_merge = &merge;
        role = "command_center", area = DISTRICT;
    } else {
        fail_msg("unknown action %s", what);
    }
    return run_as(f, !strcmp(role, "hotline") ? "hot1" : "actor", role, area, &cmd, r);
}

static int state_of(fixture_t *f, const char *id)
{
    Zhili__Petitions__Get g = ZHILI__PETITIONS__GET__INIT;
    g.id = (char *)id;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_GET;
    cmd.petition_get = &g;
    Zhili__V1__Reply r;
    assert_int_equal(run_as(f, "adm", "admin", "", &cmd, &r), 0);
    return r.petition->state;
}

static void test_loop_end_to_end(void **state)
{
    fixture_t *f = *state;
    char id[ZPET_ID_BYTES + 1];
    Zhili__V1__Reply r;
    push(f, "12345-1", "noise", "normal", id);
    assert_int_equal(state_of(f, id), ZPET_S_ASSIGNED);
    const char *steps[] = {"sign", "progress", "progress", "reply", "evaluate", "archive"};
    const int after[] = {ZPET_S_SIGNED,  ZPET_S_IN_PROGRESS, ZPET_S_IN_PROGRESS,
                         ZPET_S_REPLIED, ZPET_S_EVALUATED,   ZPET_S_ARCHIVED};
    for (size_t i = 0; i < ZARRAY_LEN(steps); i++) {
        f->now_ms += MIN_MS;
        if (act(f, steps[i], id, &r) != 0) {
            fail_msg("%s: %s", steps[i], r.message);
        }
        assert_int_equal(state_of(f, id), after[i]);
    }
    assert_int_equal(events_of(f, "received"), 1);
    assert_int_equal(events_of(f, "assigned"), 1);
    assert_int_equal(events_of(f, "signed"), 1);
    assert_int_equal(events_of(f, "progress"), 2);
    assert_int_equal(events_of(f, "replied"), 1);
    assert_int_equal(events_of(f, "evaluated"), 1);
    assert_int_equal(events_of(f, "archived"), 1);
}

/* Drive a fresh petition into `target` through the loop. */
static void reach(fixture_t *f, int target, char id[ZPET_ID_BYTES + 1])
{
    static int n;
    char ticket[32];
    snprintf(ticket, sizeof ticket, "reach-%d", ++n);
    push(f, ticket, "noise", "normal", id);
    Zhili__V1__Reply r;
    const char *path[8];
    size_t k = 0;
    switch (target) {
    case ZPET_S_ASSIGNED:
        break;
    case ZPET_S_RETURNED:
        path[k++] = "return";
        break;
    case ZPET_S_SIGNED:
        path[k++] = "sign";
        break;
    case ZPET_S_IN_PROGRESS:
        path[k++] = "sign", path[k++] = "progress";
        break;
    case ZPET_S_REPLIED:
        path[k++] = "sign", path[k++] = "reply";
        break;
    case ZPET_S_EVALUATED:
        path[k++] = "sign", path[k++] = "reply", path[k++] = "evaluate";
        break;
    case ZPET_S_ARCHIVED:
        path[k++] = "sign", path[k++] = "reply", path[k++] = "evaluate", path[k++] = "archive";
        break;
    case ZPET_S_REOPENED:
        path[k++] = "sign", path[k++] = "reply", path[k++] = "evaluate_bad";
        break;
    default:
        fail_msg("cannot reach %d", target);
    }
    for (size_t i = 0; i < k; i++) {
        if (act(f, path[i], id, &r) != 0) {
            fail_msg("reaching %s: %s: %s", zpet_state_name(target), path[i], r.message);
        }
    }
    assert_int_equal(state_of(f, id), target);
}

/* Every action in every reachable state: allowed ones succeed (or fail for
 * another reason than the state), refused ones are CONFLICT naming the
 * state and change nothing. */
static void test_every_invalid_transition(void **state)
{
    fixture_t *f = *state;
    char primary[ZPET_ID_BYTES + 1];
    push(f, "primary", "noise", "normal", primary); /* P0000000001: the merge target */
    const int states[] = {ZPET_S_ASSIGNED,  ZPET_S_SIGNED,   ZPET_S_IN_PROGRESS, ZPET_S_REPLIED,
                          ZPET_S_EVALUATED, ZPET_S_ARCHIVED, ZPET_S_RETURNED,    ZPET_S_REOPENED};
    const char *actions[] = {"assign",  "sign",   "progress", "reply", "evaluate",
                             "archive", "return", "merge",    "urge",  "extend"};
    const zpet_action_t codes[] = {
        ZPET_ACT_ASSIGN,  ZPET_ACT_SIGN,   ZPET_ACT_PROGRESS, ZPET_ACT_REPLY, ZPET_ACT_EVALUATE,
        ZPET_ACT_ARCHIVE, ZPET_ACT_RETURN, ZPET_ACT_MERGE,    ZPET_ACT_URGE,  ZPET_ACT_EXTEND};
    int conflicts = 0;
    for (size_t s = 0; s < ZARRAY_LEN(states); s++) {
        for (size_t a = 0; a < ZARRAY_LEN(actions); a++) {
            char id[ZPET_ID_BYTES + 1];
            Zhili__V1__Reply r;
            reach(f, states[s], id);
            int64_t outbox_before;
            ztxn_t *txn = ztxn_begin(f->store, false);
            outbox_before = (int64_t)ztxn_outbox_last(txn);
            ztxn_abort(&txn);
            int rc = act(f, actions[a], id, &r);
            if (zpet_allowed(codes[a], states[s])) {
                if (rc == ZE_CONFLICT) {
                    fail_msg("%s from %s refused: %s", actions[a], zpet_state_name(states[s]),
                             r.message);
                }
                continue;
            }
            conflicts++;
            if (rc != ZE_CONFLICT || strstr(r.message, zpet_state_name(states[s])) == NULL) {
                fail_msg("%s from %s: rc %d \"%s\"", actions[a], zpet_state_name(states[s]), rc,
                         r.message);
            }
            txn = ztxn_begin(f->store, false);
            assert_int_equal((int64_t)ztxn_outbox_last(txn), outbox_before);
            ztxn_abort(&txn);
            assert_int_equal(state_of(f, id), states[s]);
        }
    }
    assert_true(conflicts > 40);
}

static void test_sign_only_by_the_unit(void **state)
{
    fixture_t *f = *state;
    char id[ZPET_ID_BYTES + 1];
    push(f, "t-sign", "noise", "normal", id);
    Zhili__Petitions__Sign s = ZHILI__PETITIONS__SIGN__INIT;
    s.id = id;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_SIGN;
    cmd.petition_sign = &s;
    Zhili__V1__Reply r;
    assert_int_equal(run_as(f, "x", "grid_member", "220503001002001", &cmd, &r), ZE_FORBIDDEN);
    assert_int_equal(run_as(f, "x", "staff", STREET, &cmd, &r), ZE_FORBIDDEN);
    assert_int_equal(run_as(f, "x", "police", COMMUNITY, &cmd, &r), ZE_FORBIDDEN);
    assert_int_equal(run_as(f, "x", "admin", "", &cmd, &r), ZE_FORBIDDEN);
    assert_int_equal(state_of(f, id), ZPET_S_ASSIGNED);
    assert_int_equal(run_as(f, "x", "staff", COMMUNITY, &cmd, &r), 0);
    s.id = "P9999999999";
    assert_int_equal(run_as(f, "x", "staff", COMMUNITY, &cmd, &r), ZE_NOT_FOUND);
    s.id = "42";
    assert_int_equal(run_as(f, "x", "staff", COMMUNITY, &cmd, &r), ZE_INVALID);
    assert_string_equal(r.field, "id");
}

static void test_idempotent_ticket_and_masking(void **state)
{
    fixture_t *f = *state;
    char a[ZPET_ID_BYTES + 1], b[ZPET_ID_BYTES + 1];
    push(f, "12345-20261126-000183", "noise", "normal", a);
    push(f, "12345-20261126-000183", "parking", "urgent", b); /* a resend under the same ticket */
    assert_string_equal(a, b);
    assert_int_equal(events_of(f, "received"), 1);
    /* another hotline's push under the same ticket gets neither petition */
    create_t t;
    create_init(&t);
    t.c.ticket = "12345-20261126-000183";
    Zhili__V1__Command push2 = ZHILI__V1__COMMAND__INIT;
    push2.body_case = ZHILI__V1__COMMAND__BODY_PETITION_CREATE;
    push2.petition_create = &t.c;
    Zhili__V1__Reply r2;
    assert_int_equal(run_as(f, "hot2", "hotline", DISTRICT, &push2, &r2), ZE_CONFLICT);
    assert_string_equal(r2.field, "ticket");
    assert_int_equal(events_of(f, "received"), 1);
    Zhili__Petitions__Get g = ZHILI__PETITIONS__GET__INIT;
    g.id = a;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_GET;
    cmd.petition_get = &g;
    Zhili__V1__Reply r;
    assert_int_equal(run_as(f, "hot1", "hotline", DISTRICT, &cmd, &r), 0);
    assert_string_equal(r.petition->citizen->phone, "13812341234");
    assert_int_equal(run_as(f, "hot2", "hotline", DISTRICT, &cmd, &r), ZE_FORBIDDEN);
    assert_int_equal(run_as(f, "c", "command_center", DISTRICT, &cmd, &r), 0);
    assert_string_equal(r.petition->citizen->phone, "138****1234");
    assert_int_equal(run_as(f, "g", "grid_member", GRID, &cmd, &r), 0);
    assert_string_equal(r.petition->citizen->phone, "13812341234");
    assert_int_equal(run_as(f, "g", "grid_member", "220504001001001", &cmd, &r), ZE_FORBIDDEN);
    /* the received event carries only the masked phone */
    ztxn_t *txn = ztxn_begin(f->store, false);
    zval_t v;
    assert_int_equal(ztxn_outbox_get(txn, 1, &v), 0);
    Zhili__V1__Event *ev = zhili__v1__event__unpack(NULL, v.len, v.data);
    assert_string_equal(ev->type, "received");
    assert_string_equal(ev->petition_change->citizen->phone, "138****1234");
    assert_string_equal(ev->area, BUILDING);
    zhili__v1__event__free_unpacked(ev, NULL);
    ztxn_abort(&txn);
}

static void test_deadline_escalates_once(void **state)
{
    fixture_t *f = *state;
    char id[ZPET_ID_BYTES + 1];
    push(f, "t-due", "noise", "urgent", id); /* sign 30 min, reply 24 h */
    f->now_ms = NOW_MS + 30 * MIN_MS;        /* exactly at the deadline: not yet */
    assert_int_equal(tick(f), 0);
    assert_int_equal(events_of(f, "overdue_sign"), 0);
    f->now_ms += 1;
    assert_int_equal(tick(f), 0);
    assert_int_equal(tick(f), 0);
    f->now_ms += HOUR_MS;
    assert_int_equal(tick(f), 0);
    assert_int_equal(events_of(f, "overdue_sign"), 1);
    Zhili__V1__Reply r;
    assert_int_equal(act(f, "sign", id, &r), 0);
    assert_false(r.petition->sign_overdue);
    f->now_ms = NOW_MS + 24 * HOUR_MS + 1;
    assert_int_equal(tick(f), 0);
    assert_int_equal(tick(f), 0);
    assert_int_equal(events_of(f, "overdue_reply"), 1);
    assert_int_equal(events_of(f, "overdue_sign"), 1);
    /* an extension after the deadline is refused */
    assert_int_equal(act(f, "extend", id, &r), ZE_CONFLICT);
    assert_non_null(strstr(r.message, "before the deadline"));
}

static void test_extension_before_deadline(void **state)
{
    fixture_t *f = *state;
    char id[ZPET_ID_BYTES + 1];
    Zhili__V1__Reply r;
    push(f, "t-ext", "noise", "normal", id);
    assert_int_equal(act(f, "sign", id, &r), 0);
    f->now_ms += 6 * DAY_MS;
    assert_int_equal(act(f, "extend", id, &r), 0);
    assert_true(r.petition->extended);
    assert_int_equal(act(f, "extend", id, &r), ZE_CONFLICT); /* once */
    f->now_ms = NOW_MS + 8 * DAY_MS;                         /* past the old 7 days */
    assert_int_equal(tick(f), 0);
    assert_int_equal(events_of(f, "overdue_reply"), 0);
    f->now_ms = NOW_MS + 15 * DAY_MS + 1;
    assert_int_equal(tick(f), 0);
    assert_int_equal(events_of(f, "overdue_reply"), 1);
}

static void test_return_reroute_reopen_merge(void **state)
{
    fixture_t *f = *state;
    char id[ZPET_ID_BYTES + 1], dup[ZPET_ID_BYTES + 1];
    Zhili__V1__Reply r;
    push(f, "t-ret", "noise", "normal", id); /* P0000000001, at the community */
    assert_int_equal(act(f, "return", id, &r), 0);
    assert_int_equal(r.petition->state, ZPET_S_RETURNED);
    assert_string_equal(r.petition->assigned_to, STREET); /* the level above */
    assert_int_equal(r.petition->returns, 1);
    assert_int_equal(act(f, "assign", id, &r), 0);
    assert_string_equal(r.petition->assigned_to, GRID);
    assert_int_equal(r.petition->state, ZPET_S_ASSIGNED);
    Zhili__Petitions__UnitCountsGet ug = ZHILI__PETITIONS__UNIT_COUNTS_GET__INIT;
    ug.unit = COMMUNITY;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_UNIT_COUNTS_GET;
    cmd.petition_unit_counts_get = &ug;
    assert_int_equal(run_as(f, "c", "command_center", DISTRICT, &cmd, &r), 0);
    assert_int_equal(r.petition_unit_counts->returns, 1);
    /* 不满意 reopens it at the same unit, counted */
    assert_int_equal(act(f, "sign", id, &r), 0);
    assert_int_equal(act(f, "reply", id, &r), 0);
    assert_int_equal(act(f, "evaluate_bad", id, &r), 0);
    assert_int_equal(r.petition->state, ZPET_S_REOPENED);
    assert_int_equal(r.petition->reopens, 1);
    assert_int_equal(events_of(f, "evaluated"), 1);
    assert_int_equal(events_of(f, "reopened"), 1);
    /* a duplicate merged into it */
    push(f, "t-dup", "noise", "normal", dup);
    assert_int_equal(act(f, "merge", dup, &r), 0);
    assert_int_equal(r.petition->state, ZPET_S_ARCHIVED);
    assert_string_equal(r.petition->merged_into, id);
    assert_int_equal(act(f, "merge", id, &r), ZE_INVALID); /* into itself */
}

static void test_grid_read_model_and_qr(void **state)
{
    fixture_t *f = *state;
    Zhili__Grid__Unit u = ZHILI__GRID__UNIT__INIT;
    Zhili__Grid__Point corners[4];
    Zhili__Grid__Point *boundary[4];
    const double lats[] = {41.0, 41.0, 42.0, 42.0}, lons[] = {126.0, 127.0, 127.0, 126.0};
    for (int i = 0; i < 4; i++) {
        zhili__grid__point__init(&corners[i]);
        corners[i].lat = lats[i];
        corners[i].long_ = lons[i];
        boundary[i] = &corners[i];
    }
    u.code = GRID;
    u.level = 4;
    u.name = "幸福家园网格";
    u.qr = "qr-happy-01";
    u.boundary = boundary;
    u.n_boundary = 4;
    event(f, "unit_upserted", &u);
    char id[ZPET_ID_BYTES + 1];
    push(f, "t-grid", "noise", "normal", id);
    Zhili__Petitions__Get g = ZHILI__PETITIONS__GET__INIT;
    g.id = id;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_GET;
    cmd.petition_get = &g;
    Zhili__V1__Reply r;
    assert_int_equal(run_as(f, "a", "admin", "", &cmd, &r), 0);
    assert_string_equal(r.petition->assigned_to, GRID);
    assert_string_equal(r.petition->assigned_name, "幸福家园网格");
    assert_string_equal(r.petition->routing, "unit");
    /* a QR scan by the grid's token */
    Zhili__Petitions__QrCreate q = ZHILI__PETITIONS__QR_CREATE__INIT;
    q.code = "qr-happy-01";
    q.category = "parking";
    q.content = "消防通道被占";
    Zhili__V1__Command qc = ZHILI__V1__COMMAND__INIT;
    qc.body_case = ZHILI__V1__COMMAND__BODY_PETITION_QR_CREATE;
    qc.petition_qr_create = &q;
    assert_int_equal(run_as(f, "", "", "", &qc, &r), 0);
    assert_string_equal(r.petition->area, GRID);
    assert_int_equal(r.petition->channel, ZPET_CH_QR);
    q.code = "qr-unknown";
    assert_int_equal(run_as(f, "", "", "", &qc, &r), ZE_NOT_FOUND);
    /* a point inside the grid's boundary */
    create_t t;
    create_init(&t);
    t.c.area = "";
    t.c.point_present_case = ZHILI__PETITIONS__CREATE__POINT_PRESENT_POINT;
    t.c.point = &t.pt;
    t.pt.lat = 41.5;
    t.pt.long_ = 126.5;
    Zhili__V1__Command pc = ZHILI__V1__COMMAND__INIT;
    pc.body_case = ZHILI__V1__COMMAND__BODY_PETITION_CREATE;
    pc.petition_create = &t.c;
    assert_int_equal(run_as(f, "hot1", "hotline", DISTRICT, &pc, &r), 0);
    assert_string_equal(r.petition->area, GRID);
    assert_string_equal(r.petition->routing, "point");
    /* outside every boundary: the district default, flagged */
    t.pt.lat = 10;
    assert_int_equal(run_as(f, "hot1", "hotline", DISTRICT, &pc, &r), 0);
    assert_string_equal(r.petition->assigned_to, DISTRICT);
    assert_true(r.petition->manual_routing);
    /* the unit removed: routing falls back, the QR code is gone */
    event(f, "unit_removed", &u);
    q.code = "qr-happy-01";
    assert_int_equal(run_as(f, "", "", "", &qc, &r), ZE_NOT_FOUND);
    push(f, "t-after", "noise", "normal", id);
    g.id = id;
    assert_int_equal(run_as(f, "a", "admin", "", &cmd, &r), 0);
    assert_string_equal(r.petition->assigned_to, COMMUNITY);
}

static void test_batch_with_bad_rows(void **state)
{
    fixture_t *f = *state;
    create_t rows[4];
    Zhili__Petitions__Create *ptrs[4];
    for (int i = 0; i < 4; i++) {
        create_init(&rows[i]);
        ptrs[i] = &rows[i].c;
    }
    rows[0].c.ticket = "b-0";
    rows[1].c.category = "loud";
    rows[2].c.area = "220504001001"; /* outside the hotline's district */
    rows[3].c.ticket = "b-0";        /* the same ticket as row 0 */
    Zhili__Petitions__BatchCreate b = ZHILI__PETITIONS__BATCH_CREATE__INIT;
    b.petitions = ptrs;
    b.n_petitions = 4;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_BATCH_CREATE;
    cmd.petition_batch_create = &b;
    Zhili__V1__Reply r;
    assert_int_equal(run_as(f, "hot1", "hotline", DISTRICT, &cmd, &r), 0);
    Zhili__Petitions__BatchResult *br = r.petition_batch;
    assert_int_equal(br->n_accepted, 2);
    assert_int_equal(br->n_rejected, 2);
    assert_int_equal(br->rejected[0]->index, 1);
    assert_string_equal(br->rejected[0]->field, "category");
    assert_int_equal(br->rejected[1]->index, 2);
    assert_string_equal(br->rejected[1]->status, "forbidden");
    assert_true(br->accepted[1]->existing);
    assert_string_equal(br->accepted[0]->petition->id, br->accepted[1]->petition->id);
    assert_int_equal(events_of(f, "received"), 1);
    b.n_petitions = 0;
    assert_int_equal(run_as(f, "hot1", "hotline", DISTRICT, &cmd, &r), ZE_INVALID);
    assert_int_equal(run_as(f, "r", "resident", GRID, &cmd, &r), ZE_INVALID);
}

static void test_queries_and_stats(void **state)
{
    fixture_t *f = *state;
    char id[ZPET_ID_BYTES + 1];
    Zhili__V1__Reply r;
    for (int i = 0; i < 5; i++) {
        char ticket[16];
        snprintf(ticket, sizeof ticket, "q-%d", i);
        f->now_ms += MIN_MS;
        push(f, ticket, i % 2 ? "parking" : "noise", "normal", id);
    }
    assert_int_equal(act(f, "sign", id, &r), 0);
    Zhili__Petitions__List l = ZHILI__PETITIONS__LIST__INIT;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_LIST;
    cmd.petition_list = &l;
    l.limit = 2;
    assert_int_equal(run_as(f, "c", "command_center", DISTRICT, &cmd, &r), 0);
    assert_int_equal(r.petition_page->n_petitions, 2);
    assert_string_equal(r.petition_page->petitions[0]->id, id); /* newest first */
    char cursor[64];
    snprintf(cursor, sizeof cursor, "%s", r.petition_page->next_cursor);
    assert_int_equal(strlen(cursor), ZPET_CURSOR_HEX);
    l.cursor = cursor;
    assert_int_equal(run_as(f, "c", "command_center", DISTRICT, &cmd, &r), 0);
    assert_int_equal(r.petition_page->n_petitions, 2);
    assert_string_equal(r.petition_page->petitions[0]->id, "P0000000003");
    l.cursor = "";
    l.limit = 0;
    l.state = "signed";
    assert_int_equal(run_as(f, "c", "command_center", DISTRICT, &cmd, &r), 0);
    assert_int_equal(r.petition_page->n_petitions, 1);
    l.state = "";
    l.category = "parking";
    assert_int_equal(run_as(f, "c", "command_center", DISTRICT, &cmd, &r), 0);
    assert_int_equal(r.petition_page->n_petitions, 2);
    l.category = "";
    l.overdue = "true";
    assert_int_equal(run_as(f, "c", "command_center", DISTRICT, &cmd, &r), 0);
    assert_int_equal(r.petition_page->n_petitions, 0);
    f->now_ms += 3 * HOUR_MS; /* four unsigned ones are past their sign deadline */
    assert_int_equal(run_as(f, "c", "command_center", DISTRICT, &cmd, &r), 0);
    assert_int_equal(r.petition_page->n_petitions, 4);
    l.overdue = "";
    assert_int_equal(run_in(f, "c", "command_center", DISTRICT, "220504", &cmd, &r), ZE_FORBIDDEN);
    assert_int_equal(run_in(f, "c", "command_center", DISTRICT, STREET, &cmd, &r), 0);
    assert_int_equal(r.petition_page->n_petitions, 5);
    assert_int_equal(run_in(f, "c", "command_center", DISTRICT, "220503002", &cmd, &r), 0);
    assert_int_equal(r.petition_page->n_petitions, 0);
    assert_int_equal(run_in(f, "c", "command_center", DISTRICT, "2205030010", &cmd, &r), 0);
    assert_int_equal(r.petition_page->n_petitions, 5); /* not a level: filtered row by row */
    struct {
        const char *field;
        const char *value;
    } bad[] = {{"state", "done"},     {"category", "loud"}, {"overdue", "maybe"},
               {"from", "yesterday"}, {"to", "2026-13-01"}, {"cursor", "zz"},
               {"ids", "P1"},         {"channel", "fax"}};
    for (size_t i = 0; i < ZARRAY_LEN(bad); i++) {
        Zhili__Petitions__List b = ZHILI__PETITIONS__LIST__INIT;
        const char *f_ = bad[i].field;
        char **slot = !strcmp(f_, "state")      ? &b.state
                      : !strcmp(f_, "category") ? &b.category
                      : !strcmp(f_, "overdue")  ? &b.overdue
                      : !strcmp(f_, "from")     ? &b.from
                      : !strcmp(f_, "to")       ? &b.to
                      : !strcmp(f_, "cursor")   ? &b.cursor
                      : !strcmp(f_, "ids")      ? &b.ids
                                                : &b.channel;
        *slot = (char *)bad[i].value;
        cmd.petition_list = &b;
        if (run_as(f, "c", "command_center", DISTRICT, &cmd, &r) != ZE_INVALID ||
            strcmp(r.field, f_) != 0) {
            fail_msg("%s=%s: %s (%s)", f_, bad[i].value, r.message, r.field);
        }
    }
    Zhili__Petitions__List lim = ZHILI__PETITIONS__LIST__INIT;
    lim.limit = ZPET_PAGE_MAX + 1;
    cmd.petition_list = &lim;
    assert_int_equal(run_as(f, "c", "command_center", DISTRICT, &cmd, &r), ZE_INVALID);
    /* the unit's inbox */
    Zhili__Petitions__Inbox in = ZHILI__PETITIONS__INBOX__INIT;
    in.unit = COMMUNITY;
    Zhili__V1__Command ic = ZHILI__V1__COMMAND__INIT;
    ic.body_case = ZHILI__V1__COMMAND__BODY_PETITION_INBOX;
    ic.petition_inbox = &in;
    assert_int_equal(run_as(f, "g", "grid_member", GRID, &ic, &r), 0);
    assert_int_equal(r.petition_page->n_petitions, 5);
    assert_string_equal(r.petition_page->petitions[0]->id, "P0000000001"); /* oldest first */
    assert_int_equal(run_as(f, "h", "hotline", DISTRICT, &ic, &r), ZE_FORBIDDEN);
    /* stats: counts by state and overdue after the timer */
    assert_int_equal(tick(f), 0);
    Zhili__V1__Command sc = ZHILI__V1__COMMAND__INIT;
    Zhili__V1__StatsRequest sr = ZHILI__V1__STATS_REQUEST__INIT;
    sc.body_case = ZHILI__V1__COMMAND__BODY_STATS;
    sc.stats = &sr;
    Zhili__V1__Stats st = ZHILI__V1__STATS__INIT;
    Zhili__V1__Stat *slots[16 + 2 * ZSVC_SOURCES_MAX + ZSVC_STATS_EXTRA_MAX];
    st.stats = slots;
    zhili__v1__reply__init(&r);
    r.result_case = ZHILI__V1__REPLY__RESULT_STATS;
    r.stats = &st;
    ztxn_t *txn = ztxn_begin(f->store, false);
    zsvc_ctx_t ctx;
    ctx_make(f, &ctx, txn, &sc, &r);
    assert_int_equal(zph_on_stats(&ctx), 0);
    ztxn_abort(&txn);
    int64_t assigned = -1, signed_ = -1, overdue = -1;
    for (size_t i = 0; i < st.n_stats; i++) {
        if (!strcmp(st.stats[i]->name, "petitions") &&
            !strcmp(st.stats[i]->labels, "state=\"assigned\"")) {
            assigned = st.stats[i]->value;
        }
        if (!strcmp(st.stats[i]->name, "petitions") &&
            !strcmp(st.stats[i]->labels, "state=\"signed\"")) {
            signed_ = st.stats[i]->value;
        }
        if (!strcmp(st.stats[i]->name, "petitions_overdue") &&
            !strcmp(st.stats[i]->labels, "kind=\"sign\"")) {
            overdue = st.stats[i]->value;
        }
    }
    assert_int_equal(assigned, 4);
    assert_int_equal(signed_, 1);
    assert_int_equal(overdue, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transition_table_complete),
        cmocka_unit_test(test_transition_next_states),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_who_may_act),
        cmocka_unit_test(test_deadlines_default),
        cmocka_unit_test(test_deadlines_config),
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_point_in_polygon),
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_text_and_ids),
        cmocka_unit_test(test_intake_check),
        cmocka_unit_test_setup_teardown(test_loop_end_to_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_invalid_transition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_only_by_the_unit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_ticket_and_masking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_escalates_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extension_before_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_return_reroute_reopen_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grid_read_model_and_qr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_with_bad_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queries_and_stats, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
