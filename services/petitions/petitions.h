/* petitions: the domain rules of 12345 接诉即办 on plain values, with no I/O
 * (docs/petitions.md): the catalogue, the closed loop's transition table, who
 * may do what, deadlines, the category routing table, phone masking and
 * input checks. handlers.c applies them to the store. */
#ifndef ZHILI_PETITIONS_H
#define ZHILI_PETITIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/area.h"
#include "services/petitions/limits.h"
#include "zhili.pb-c.h"

/* Short names for the generated enums. */
#define ZPET_S_RECEIVED ZHILI__PETITIONS__STATE__STATE_RECEIVED
#define ZPET_S_ASSIGNED ZHILI__PETITIONS__STATE__STATE_ASSIGNED
#define ZPET_S_SIGNED ZHILI__PETITIONS__STATE__STATE_SIGNED
#define ZPET_S_IN_PROGRESS ZHILI__PETITIONS__STATE__STATE_IN_PROGRESS
#define ZPET_S_REPLIED ZHILI__PETITIONS__STATE__STATE_REPLIED
#define ZPET_S_EVALUATED ZHILI__PETITIONS__STATE__STATE_EVALUATED
#define ZPET_S_ARCHIVED ZHILI__PETITIONS__STATE__STATE_ARCHIVED
#define ZPET_S_RETURNED ZHILI__PETITIONS__STATE__STATE_RETURNED
#define ZPET_S_REOPENED ZHILI__PETITIONS__STATE__STATE_REOPENED
#define ZPET_U_NORMAL ZHILI__PETITIONS__URGENCY__URGENCY_NORMAL
#define ZPET_U_URGENT ZHILI__PETITIONS__URGENCY__URGENCY_URGENT
#define ZPET_U_CRITICAL ZHILI__PETITIONS__URGENCY__URGENCY_CRITICAL
#define ZPET_CH_HOTLINE ZHILI__PETITIONS__CHANNEL__CHANNEL_HOTLINE
#define ZPET_CH_QR ZHILI__PETITIONS__CHANNEL__CHANNEL_QR
#define ZPET_CH_STAFF ZHILI__PETITIONS__CHANNEL__CHANNEL_STAFF
#define ZPET_CH_OPEN311 ZHILI__PETITIONS__CHANNEL__CHANNEL_OPEN311
#define ZPET_SAT_DISSATISFIED ZHILI__PETITIONS__SATISFACTION__SATISFACTION_DISSATISFIED

#define ZPET_CATEGORIES 9 /* the enum's values, 0 (unspecified) included */
#define ZPET_URGENCIES 4
#define ZPET_STATES 10

/* ---- the catalogue ------------------------------------------------------ */

typedef struct {
    int category;            /* ZHILI__PETITIONS__CATEGORY__… */
    const char *code;        /* "property": stable ASCII */
    const char *name;        /* "物业服务" */
    const char *description; /* one sentence, Chinese */
} zpet_category_info_t;

/* The entry of a category (1..8), NULL for any other value. */
const zpet_category_info_t *zpet_category(int category);

/* Parse a code or a Chinese name: the category, urgency, state, channel,
 * satisfaction or return reason; 0 when unknown. zpet_urgency_parse("")
 * is normal. */
int zpet_category_parse(const char *s);
int zpet_urgency_parse(const char *s);
int zpet_state_parse(const char *s);
int zpet_channel_parse(const char *s);
int zpet_satisfaction_parse(const char *s);
int zpet_return_reason_parse(const char *s);

/* ASCII names as in JSON ("in_progress"), "?" when out of range. */
const char *zpet_state_name(int state);
const char *zpet_urgency_name(int urgency);
const char *zpet_channel_name(int channel);

/* Lists for error messages: "property (物业服务), noise (噪音扰民), …". */
const char *zpet_category_list(void);
const char *zpet_state_list(void);

/* ---- the closed loop ---------------------------------------------------- */

typedef enum {
    ZPET_ACT_ASSIGN = 0, /* re-route (supervision) */
    ZPET_ACT_SIGN,       /* 签收 */
    ZPET_ACT_PROGRESS,   /* 办理进展 */
    ZPET_ACT_REPLY,      /* 办结 */
    ZPET_ACT_EVALUATE,   /* 回访评价 */
    ZPET_ACT_ARCHIVE,    /* 归档 */
    ZPET_ACT_RETURN,     /* 退单 */
    ZPET_ACT_MERGE,      /* 合并重复件 (the duplicate's side) */
    ZPET_ACT_URGE,       /* 催办 */
    ZPET_ACT_EXTEND,     /* 延期 */
    ZPET_ACT_COUNT
} zpet_action_t;

const char *zpet_action_name(zpet_action_t action);

/* Does `state` allow `action`? The table in petitions.c is the whole truth. */
bool zpet_allowed(zpet_action_t action, int state);

/* "assigned or reopened": the states that allow the action, for messages. */
void zpet_allowed_from(zpet_action_t action, char *out, size_t cap);

/* The state after an action that is allowed (evaluate: evaluated; the
 * handler turns 不满意 into reopened when the reopen bound allows). */
int zpet_next_state(zpet_action_t action, int state);

/* States in which a petition waits for a sign, or for a reply. */
bool zpet_sign_pending(int state);
bool zpet_reply_pending(int state);
/* Open (Open311 "open") versus closed: replied, evaluated, archived. */
bool zpet_state_open(int state);

/* ---- who may act -------------------------------------------------------- */

typedef struct {
    const char *id;
    const char *role;
    const char *area; /* the actor's scope prefix, "" everywhere */
} zpet_actor_t;

/* What the rule looks at besides the actor. */
typedef struct {
    const char *area;        /* the petition's location */
    const char *assigned_to; /* the unit in charge */
    const char *creator_id;  /* the token that pushed it */
} zpet_subject_t;

/* 0 when the actor may do `action` on the petition, else ZE_FORBIDDEN with a
 * sentence in why. Handling (sign, progress, reply, return) needs staff or
 * grid_member inside the assigned unit; routing and merging need admin,
 * command_center or staff whose scope holds the unit; supervision (urge,
 * extend, archive) admin or command_center over the location; evaluation
 * the hotline that pushed it, or command_center / admin over the location. */
int zpet_may(zpet_action_t action, const zpet_actor_t *actor, const zpet_subject_t *p, char *why,
             size_t why_cap);

/* May the actor read the petition at all (hotline: only what it pushed)? */
bool zpet_may_read(const zpet_actor_t *actor, const zpet_subject_t *p);

/* Does the actor see the citizen's full phone? The hotline that pushed it
 * and the staff or grid members of the unit in charge do; nobody else. */
bool zpet_phone_visible(const zpet_actor_t *actor, const zpet_subject_t *p);

/* The channel a role files by when none is given; 0 when the role may not
 * file at all. zpet_channel_allowed: may the role claim this channel? */
int zpet_channel_default(const char *role);
bool zpet_channel_allowed(const char *role, int channel);

/* ---- deadlines ---------------------------------------------------------- */

typedef struct {
    int64_t sign_ms[ZPET_CATEGORIES][ZPET_URGENCIES];
    int64_t reply_ms[ZPET_CATEGORIES][ZPET_URGENCIES];
    int64_t extension_ms; /* reply deadline after an approved extension, from assignment */
} zpet_deadlines_t;

/* DESIGN §5: sign 2 h (30 min urgent or critical); reply 7 d normal, 24 h
 * urgent, 2 h critical; 15 d with an approved extension. */
void zpet_deadlines_default(zpet_deadlines_t *d);

/* Apply rules "CATEGORY/URGENCY=SIGN/REPLY" and "extension=DURATION",
 * separated by commas or newlines, in order (later wins; '*' matches every
 * category or urgency; '#' starts a comment). Durations: 90s, 30m, 2h, 7d.
 * 0, or ZE_INVALID with a sentence in err (d is then unchanged). */
int zpet_deadlines_parse(zpet_deadlines_t *d, const char *text, char *err, size_t err_cap);

/* Deadlines of an assignment made at from_ms. */
void zpet_deadlines_for(const zpet_deadlines_t *d, int category, int urgency, int64_t from_ms,
                        int64_t *sign_ms, int64_t *reply_ms);

/* "90s", "30m", "2h", "7d" -> ms; -1 when malformed or over ZPET_DURATION_MS_MAX. */
int64_t zpet_duration_parse(const char *s, size_t len);

/* ---- routing ------------------------------------------------------------ */

/* Per category, the level of the grid chain that handles it (zarea_level_t),
 * or a fixed unit code. */
typedef struct {
    int level[ZPET_CATEGORIES];
    char fixed[ZPET_CATEGORIES][ZPET_AREA_BUF];
} zpet_routing_t;

/* property, noise, parking, neighbor_dispute -> grid; sanitation,
 * public_safety, other -> community; municipal -> street. */
void zpet_routing_default(zpet_routing_t *r);

/* Rules "CATEGORY=LEVEL" (building, grid, community, street, district) or
 * "CATEGORY=AREA_CODE", separated by commas or newlines; '#' comments.
 * 0 or ZE_INVALID with err (r unchanged). */
int zpet_routing_parse(zpet_routing_t *r, const char *text, char *err, size_t err_cap);

/* The level name of a routing entry ("grid"), or the fixed code. */
const char *zpet_routing_target(const zpet_routing_t *r, int category);

typedef bool (*zpet_unit_known_fn)(void *ctx, const char *code);

typedef struct {
    char unit[ZPET_AREA_BUF];
    const char *routing; /* "unit", "fixed", "fallback_community", "fallback_area" */
    bool manual;         /* nobody below the level was found: a person should look */
} zpet_route_t;

/* Route a petition located at `area` (a full code): the category's level
 * cut from the area, then up to the community, the first unit the grid read
 * model knows (known may be NULL: nothing is known). Nothing known: the
 * community of the area (fallback_community), or the area itself when it is
 * above a community (fallback_area, manual). A fixed code wins outright. */
void zpet_route(const zpet_routing_t *r, int category, const char *area, zpet_unit_known_fn known,
                void *ctx, zpet_route_t *out);

/* The level above a unit, where a returned petition goes back to (the
 * district stays itself). out holds ZPET_AREA_BUF bytes. */
void zpet_supervising_unit(const char *unit, char *out);

/* Is (lat, long) inside the polygon (even-odd rule)? n < 3 is never inside. */
bool zpet_point_in_polygon(double lat, double lon, const double *lats, const double *lons,
                           size_t n);

/* ---- input -------------------------------------------------------------- */

/* UTF-8 text of min..max bytes without control characters (multiline
 * allows \n, \r and \t), and not only spaces when min > 0. */
bool zpet_text_ok(const char *s, size_t min, size_t max, bool multiline);

/* A phone: an optional +86, then 7..12 digits with optional spaces or
 * dashes; a mobile number is 11 digits starting with 1[3-9]. */
bool zpet_phone_valid(const char *phone);

/* 138****1234: the first 3 and last 4 digits kept, the middle masked; short
 * numbers keep only the last 2. "" stays "". out holds ZPET_PHONE_BYTES_MAX+1. */
void zpet_phone_mask(const char *phone, char *out, size_t cap);

/* http:// or https:// URL of printable ASCII without spaces. */
bool zpet_media_url_valid(const char *url);

/* Petition ids: "P" + 10 digits of the sequence. */
void zpet_id_format(uint64_t seq, char out[ZPET_ID_BYTES + 1]);
bool zpet_id_parse(const char *id, uint64_t *seq);

/* A checked intake (one Create, or a QR scan), every string borrowed. */
typedef struct {
    int category, urgency, channel;
    const char *content, *area, *address, *name, *phone, *media_url, *ticket;
    bool has_point;
    double lat, lon;
} zpet_intake_t;

typedef struct {
    int code; /* ZE_INVALID, ZE_FORBIDDEN */
    char field[64];
    char message[256];
} zpet_error_t;

/* Check a Create from `actor` (role decides the channel). `area` may be ""
 * when a point or an address stands in for it. 0 with *out filled, or
 * ZE_INVALID / ZE_FORBIDDEN with *err filled; nothing is written anywhere. */
int zpet_intake_check(const Zhili__Petitions__Create *c, const zpet_actor_t *actor,
                      zpet_intake_t *out, zpet_error_t *err);

/* The same for a QR scan (channel qr, anonymous); `area` is left "". */
int zpet_qr_intake_check(const Zhili__Petitions__QrCreate *c, zpet_intake_t *out,
                         zpet_error_t *err);

#endif
