/* The domain rules of the petitions service (petitions.h): plain values in,
 * decisions out, no I/O. */
#include "services/petitions/petitions.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

/* ---- the catalogue ------------------------------------------------------ */

static const zpet_category_info_t categories[ZPET_CATEGORIES] = {
    {0, "", "", ""},
    {ZHILI__PETITIONS__CATEGORY__CATEGORY_PROPERTY, "property", "物业服务",
     "物业服务质量、收费、维修、保洁、安保等问题"},
    {ZHILI__PETITIONS__CATEGORY__CATEGORY_NOISE, "noise", "噪音扰民",
     "装修、施工、商铺、娱乐等噪音扰民"},
    {ZHILI__PETITIONS__CATEGORY__CATEGORY_SANITATION, "sanitation", "环境卫生",
     "垃圾清运、公共区域卫生、化粪池、消杀等"},
    {ZHILI__PETITIONS__CATEGORY__CATEGORY_PARKING, "parking", "停车管理",
     "乱停乱放、占用消防通道、车位纠纷等"},
    {ZHILI__PETITIONS__CATEGORY__CATEGORY_NEIGHBOR_DISPUTE, "neighbor_dispute", "邻里纠纷",
     "相邻关系、漏水、占用公共空间等邻里矛盾"},
    {ZHILI__PETITIONS__CATEGORY__CATEGORY_MUNICIPAL, "municipal", "市政设施",
     "道路、路灯、井盖、供排水、供暖等市政设施"},
    {ZHILI__PETITIONS__CATEGORY__CATEGORY_PUBLIC_SAFETY, "public_safety", "治安隐患",
     "治安、消防、安全隐患等"},
    {ZHILI__PETITIONS__CATEGORY__CATEGORY_OTHER, "other", "其他", "其他诉求"},
};

const zpet_category_info_t *zpet_category(int category)
{
    return category >= 1 && category < ZPET_CATEGORIES ? &categories[category] : NULL;
}

typedef struct {
    int value;
    const char *code;
    const char *name;
} name_row_t;

static const name_row_t urgencies[] = {
    {ZPET_U_NORMAL, "normal", "一般"},
    {ZPET_U_URGENT, "urgent", "紧急"},
    {ZPET_U_CRITICAL, "critical", "特急"},
};

static const name_row_t states[] = {
    {ZPET_S_RECEIVED, "received", "受理"}, {ZPET_S_ASSIGNED, "assigned", "派单"},
    {ZPET_S_SIGNED, "signed", "签收"},     {ZPET_S_IN_PROGRESS, "in_progress", "办理中"},
    {ZPET_S_REPLIED, "replied", "办结"},   {ZPET_S_EVALUATED, "evaluated", "回访评价"},
    {ZPET_S_ARCHIVED, "archived", "归档"}, {ZPET_S_RETURNED, "returned", "退单"},
    {ZPET_S_REOPENED, "reopened", "重办"},
};

static const name_row_t channels[] = {
    {ZPET_CH_HOTLINE, "hotline", "12345热线"},
    {ZPET_CH_QR, "qr", "扫码即办"},
    {ZPET_CH_STAFF, "staff", "工作人员录入"},
    {ZPET_CH_OPEN311, "open311", "Open311"},
};

static const name_row_t satisfactions[] = {
    {ZHILI__PETITIONS__SATISFACTION__SATISFACTION_SATISFIED, "satisfied", "满意"},
    {ZHILI__PETITIONS__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED, "basically_satisfied",
     "基本满意"},
    {ZPET_SAT_DISSATISFIED, "dissatisfied", "不满意"},
};

static const name_row_t return_reasons[] = {
    {ZHILI__PETITIONS__RETURN_REASON__RETURN_REASON_NOT_IN_AREA, "not_in_area", "非本辖区"},
    {ZHILI__PETITIONS__RETURN_REASON__RETURN_REASON_NOT_OUR_DUTY, "not_our_duty", "非本单位职责"},
    {ZHILI__PETITIONS__RETURN_REASON__RETURN_REASON_INSUFFICIENT_INFO, "insufficient_info",
     "诉求信息不全"},
    {ZHILI__PETITIONS__RETURN_REASON__RETURN_REASON_OTHER, "other", "其他"},
};

static int rows_parse(const name_row_t *rows, size_t n, const char *s)
{
    for (size_t i = 0; s != NULL && i < n; i++) {
        if (strcmp(s, rows[i].code) == 0 || strcmp(s, rows[i].name) == 0) {
            return rows[i].value;
        }
    }
    return 0;
}

static const char *rows_name(const name_row_t *rows, size_t n, int value)
{
    for (size_t i = 0; i < n; i++) {
        if (rows[i].value == value) {
            return rows[i].code;
        }
    }
    return "?";
}

int zpet_category_parse(const char *s)
{
    for (int i = 1; s != NULL && i < ZPET_CATEGORIES; i++) {
        if (strcmp(s, categories[i].code) == 0 || strcmp(s, categories[i].name) == 0) {
            return categories[i].category;
        }
    }
    return 0;
}

int zpet_urgency_parse(const char *s)
{
    return s != NULL && s[0] == '\0' ? ZPET_U_NORMAL
                                     : rows_parse(urgencies, ZARRAY_LEN(urgencies), s);
}

int zpet_state_parse(const char *s)
{
    return rows_parse(states, ZARRAY_LEN(states), s);
}

int zpet_channel_parse(const char *s)
{
    return rows_parse(channels, ZARRAY_LEN(channels), s);
}

int zpet_satisfaction_parse(const char *s)
{
    return rows_parse(satisfactions, ZARRAY_LEN(satisfactions), s);
}

int zpet_return_reason_parse(const char *s)
{
    return rows_parse(return_reasons, ZARRAY_LEN(return_reasons), s);
}

const char *zpet_state_name(int state)
{
    return rows_name(states, ZARRAY_LEN(states), state);
}

const char *zpet_urgency_name(int urgency)
{
    return rows_name(urgencies, ZARRAY_LEN(urgencies), urgency);
}

const char *zpet_channel_name(int channel)
{
    return rows_name(channels, ZARRAY_LEN(channels), channel);
}

const char *zpet_category_list(void)
{
    return "property (物业服务), noise (噪音扰民), sanitation (环境卫生), parking (停车管理), "
           "neighbor_dispute (邻里纠纷), municipal (市政设施), public_safety (治安隐患), other "
           "(其他)";
}

const char *zpet_state_list(void)
{
    return "received, assigned, signed, in_progress, replied, evaluated, archived, returned, "
           "reopened";
}

/* ---- the closed loop ---------------------------------------------------- */

#define BIT(s) (1u << (unsigned)(s))

typedef struct {
    const char *name;
    unsigned from; /* states that allow it */
    int to;        /* 0: the state does not change */
} transition_t;

/* THE transition table (docs/petitions.md, "The loop"). */
static const transition_t transitions[ZPET_ACT_COUNT] = {
    [ZPET_ACT_ASSIGN] = {"assign",
                         BIT(ZPET_S_RECEIVED) | BIT(ZPET_S_RETURNED) | BIT(ZPET_S_ASSIGNED),
                         ZPET_S_ASSIGNED},
    [ZPET_ACT_SIGN] = {"sign", BIT(ZPET_S_ASSIGNED) | BIT(ZPET_S_REOPENED), ZPET_S_SIGNED},
    [ZPET_ACT_PROGRESS] = {"progress", BIT(ZPET_S_SIGNED) | BIT(ZPET_S_IN_PROGRESS),
                           ZPET_S_IN_PROGRESS},
    [ZPET_ACT_REPLY] = {"reply", BIT(ZPET_S_SIGNED) | BIT(ZPET_S_IN_PROGRESS), ZPET_S_REPLIED},
    [ZPET_ACT_EVALUATE] = {"evaluate", BIT(ZPET_S_REPLIED), ZPET_S_EVALUATED},
    [ZPET_ACT_ARCHIVE] = {"archive", BIT(ZPET_S_EVALUATED), ZPET_S_ARCHIVED},
    [ZPET_ACT_RETURN] = {"return", BIT(ZPET_S_ASSIGNED) | BIT(ZPET_S_SIGNED), ZPET_S_RETURNED},
    [ZPET_ACT_MERGE] = {"merge",
                        BIT(ZPET_S_RECEIVED) | BIT(ZPET_S_ASSIGNED) | BIT(ZPET_S_SIGNED) |
                            BIT(ZPET_S_IN_PROGRESS) | BIT(ZPET_S_RETURNED) | BIT(ZPET_S_REOPENED),
                        ZPET_S_ARCHIVED},
    [ZPET_ACT_URGE] = {"urge",
                       BIT(ZPET_S_ASSIGNED) | BIT(ZPET_S_SIGNED) | BIT(ZPET_S_IN_PROGRESS) |
                           BIT(ZPET_S_REOPENED),
                       0},
    [ZPET_ACT_EXTEND] = {"extend", BIT(ZPET_S_SIGNED) | BIT(ZPET_S_IN_PROGRESS), 0},
};

const char *zpet_action_name(zpet_action_t action)
{
    ZASSERT(action < ZPET_ACT_COUNT);
    return transitions[action].name;
}

bool zpet_allowed(zpet_action_t action, int state)
{
    ZASSERT(action < ZPET_ACT_COUNT);
    return state > 0 && state < ZPET_STATES && (transitions[action].from & BIT(state)) != 0;
}

void zpet_allowed_from(zpet_action_t action, char *out, size_t cap)
{
    ZASSERT(action < ZPET_ACT_COUNT && cap > 0);
    size_t len = 0;
    int written = 0, total = 0;
    for (int s = 1; s < ZPET_STATES; s++) {
        total += zpet_allowed(action, s);
    }
    out[0] = '\0';
    for (int s = 1; s < ZPET_STATES && len < cap; s++) {
        if (!zpet_allowed(action, s)) {
            continue;
        }
        const char *sep = written == 0 ? "" : written == total - 1 ? " or " : ", ";
        int n = snprintf(out + len, cap - len, "%s%s", sep, zpet_state_name(s));
        len += n > 0 ? (size_t)n : 0;
        written++;
    }
}

int zpet_next_state(zpet_action_t action, int state)
{
    ZASSERT(action < ZPET_ACT_COUNT);
    return transitions[action].to != 0 ? transitions[action].to : state;
}

bool zpet_sign_pending(int state)
{
    return state == ZPET_S_ASSIGNED || state == ZPET_S_REOPENED;
}

bool zpet_reply_pending(int state)
{
    return zpet_sign_pending(state) || state == ZPET_S_SIGNED || state == ZPET_S_IN_PROGRESS;
}

bool zpet_state_open(int state)
{
    return state != ZPET_S_REPLIED && state != ZPET_S_EVALUATED && state != ZPET_S_ARCHIVED;
}

/* ---- who may act -------------------------------------------------------- */

static bool role_is(const zpet_actor_t *a, const char *role)
{
    return a->role != NULL && strcmp(a->role, role) == 0;
}

static bool role_in(const zpet_actor_t *a, const char *const *roles)
{
    for (size_t i = 0; roles[i] != NULL; i++) {
        if (role_is(a, roles[i])) {
            return true;
        }
    }
    return false;
}

static const char *const handler_roles[] = {"staff", "grid_member", NULL};
static const char *const router_roles[] = {"admin", "command_center", "staff", NULL};
static const char *const supervisor_roles[] = {"admin", "command_center", NULL};
static const char *const reader_roles[] = {"admin",       "command_center", "staff",
                                           "grid_member", "police",         NULL};

static const char *safe(const char *s)
{
    return s != NULL ? s : "";
}

/* The actor works inside the unit (a grid member of a grid in the community). */
static bool inside_unit(const zpet_actor_t *a, const char *unit)
{
    return safe(unit)[0] != '\0' && zarea_within(unit, safe(a->area));
}

static bool creator_is(const zpet_actor_t *a, const zpet_subject_t *p)
{
    return safe(p->creator_id)[0] != '\0' && strcmp(safe(p->creator_id), safe(a->id)) == 0;
}

static int refuse(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return ZE_FORBIDDEN;
}

int zpet_may(zpet_action_t action, const zpet_actor_t *actor, const zpet_subject_t *p, char *why,
             size_t why_cap)
{
    ZASSERT(action < ZPET_ACT_COUNT && actor != NULL && p != NULL);
    const char *role = safe(actor->role), *area = safe(actor->area);
    if (role[0] == '\0') {
        return refuse(why, why_cap, "this needs a signed-in caller (a bearer token)");
    }
    switch (action) {
    case ZPET_ACT_SIGN:
    case ZPET_ACT_PROGRESS:
    case ZPET_ACT_REPLY:
    case ZPET_ACT_RETURN:
        if (!role_in(actor, handler_roles)) {
            return refuse(why, why_cap,
                          "role %s may not %s a petition: staff or grid members of "
                          "the assigned unit do",
                          role, zpet_action_name(action));
        }
        if (!inside_unit(actor, p->assigned_to)) {
            return refuse(why, why_cap, "only the assigned unit %s may do this; your area is %s",
                          safe(p->assigned_to), area);
        }
        return 0;
    case ZPET_ACT_ASSIGN:
    case ZPET_ACT_MERGE:
        if (!role_in(actor, router_roles)) {
            return refuse(why, why_cap,
                          "role %s may not %s petitions: admin, command_center or "
                          "staff do",
                          role, zpet_action_name(action));
        }
        if (!zarea_within(area, safe(p->assigned_to))) {
            return refuse(why, why_cap, "the petition is with unit %s, outside your scope %s",
                          safe(p->assigned_to), area);
        }
        return 0;
    case ZPET_ACT_URGE:
    case ZPET_ACT_EXTEND:
    case ZPET_ACT_ARCHIVE:
        if (!role_in(actor, supervisor_roles)) {
            return refuse(why, why_cap,
                          "role %s may not %s a petition: supervision (admin, "
                          "command_center) does",
                          role, zpet_action_name(action));
        }
        if (!zarea_within(area, safe(p->area))) {
            return refuse(why, why_cap, "the petition's area %s is outside your scope %s",
                          safe(p->area), area);
        }
        return 0;
    case ZPET_ACT_EVALUATE:
        if (role_is(actor, "hotline")) {
            return creator_is(actor, p) ? 0
                                        : refuse(why, why_cap,
                                                 "a hotline token evaluates only "
                                                 "the petitions it pushed");
        }
        if (!role_in(actor, supervisor_roles)) {
            return refuse(why, why_cap,
                          "role %s may not %s a petition: the hotline that pushed "
                          "it or the command center does",
                          role, zpet_action_name(action));
        }
        if (!zarea_within(area, safe(p->area))) {
            return refuse(why, why_cap, "the petition's area %s is outside your scope %s",
                          safe(p->area), area);
        }
        return 0;
    default:
        ZASSERT(!"unknown action");
        return ZE_FORBIDDEN;
    }
}

bool zpet_may_read(const zpet_actor_t *actor, const zpet_subject_t *p)
{
    if (role_is(actor, "hotline")) {
        return creator_is(actor, p);
    }
    if (!role_in(actor, reader_roles)) {
        return false;
    }
    const char *area = safe(actor->area);
    return zarea_within(area, safe(p->area)) || zarea_within(area, safe(p->assigned_to)) ||
           (role_in(actor, handler_roles) && inside_unit(actor, p->assigned_to));
}

bool zpet_phone_visible(const zpet_actor_t *actor, const zpet_subject_t *p)
{
    if (role_is(actor, "hotline")) {
        return creator_is(actor, p);
    }
    return role_in(actor, handler_roles) && inside_unit(actor, p->assigned_to);
}

int zpet_channel_default(const char *role)
{
    if (role == NULL) {
        return 0;
    }
    if (strcmp(role, "hotline") == 0) {
        return ZPET_CH_HOTLINE;
    }
    if (!strcmp(role, "staff") || !strcmp(role, "grid_member") || !strcmp(role, "admin")) {
        return ZPET_CH_STAFF;
    }
    return 0;
}

bool zpet_channel_allowed(const char *role, int channel)
{
    if (zpet_channel_default(role) == 0 || channel == ZPET_CH_QR || channel == 0) {
        return false; /* QR petitions come only from a scan */
    }
    if (strcmp(role, "admin") == 0) {
        return true;
    }
    if (strcmp(role, "hotline") == 0) {
        return channel == ZPET_CH_HOTLINE || channel == ZPET_CH_OPEN311;
    }
    return channel == ZPET_CH_STAFF;
}

/* ---- deadlines ---------------------------------------------------------- */

#define MINUTE_MS (60LL * 1000)
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * HOUR_MS)

void zpet_deadlines_default(zpet_deadlines_t *d)
{
    memset(d, 0, sizeof *d);
    for (int c = 0; c < ZPET_CATEGORIES; c++) {
        d->sign_ms[c][0] = d->sign_ms[c][ZPET_U_NORMAL] = 2 * HOUR_MS;
        d->sign_ms[c][ZPET_U_URGENT] = d->sign_ms[c][ZPET_U_CRITICAL] = 30 * MINUTE_MS;
        d->reply_ms[c][0] = d->reply_ms[c][ZPET_U_NORMAL] = 7 * DAY_MS;
        d->reply_ms[c][ZPET_U_URGENT] = 24 * HOUR_MS;
        d->reply_ms[c][ZPET_U_CRITICAL] = 2 * HOUR_MS;
    }
    d->extension_ms = 15 * DAY_MS;
}

int64_t zpet_duration_parse(const char *s, size_t len)
{
    if (len < 2 || len > 12) {
        return -1;
    }
    int64_t v = 0;
    size_t i = 0;
    for (; i < len && isdigit((unsigned char)s[i]); i++) {
        v = v * 10 + (s[i] - '0');
    }
    if (i == 0 || i != len - 1) {
        return -1;
    }
    int64_t unit = s[i] == 's'   ? 1000
                   : s[i] == 'm' ? MINUTE_MS
                   : s[i] == 'h' ? HOUR_MS
                   : s[i] == 'd' ? DAY_MS
                                 : 0;
    if (unit == 0 || v <= 0 || v > ZPET_DURATION_MS_MAX / unit) {
        return -1;
    }
    return v * unit;
}

/* The rules of a config text, one at a time: trimmed, comments dropped. */
typedef struct {
    const char *p, *end;
} rules_t;

static bool rule_next(rules_t *r, const char **start, size_t *len)
{
    while (r->p < r->end) {
        const char *stop = r->p;
        while (stop < r->end && *stop != ',' && *stop != '\n') {
            stop++;
        }
        const char *s = r->p, *e = stop;
        const char *hash = memchr(s, '#', (size_t)(e - s));
        if (hash != NULL) {
            e = hash;
            /* a comment runs to the end of the line, commas included */
            while (stop < r->end && *stop != '\n') {
                stop++;
            }
        }
        r->p = stop < r->end ? stop + 1 : stop;
        while (s < e && isspace((unsigned char)*s)) {
            s++;
        }
        while (e > s && isspace((unsigned char)e[-1])) {
            e--;
        }
        if (e > s) {
            *start = s;
            *len = (size_t)(e - s);
            return true;
        }
    }
    return false;
}

static int config_fail(char *err, size_t cap, const char *what, const char *rule, size_t len)
{
    snprintf(err, cap, "%s: \"%.*s\"", what, (int)(len > 80 ? 80 : len), rule);
    return ZE_INVALID;
}

/* "noise" or "*" -> [lo, hi) over categories; -1 when unknown. */
static int match_range(const char *s, size_t len, bool category, int *lo, int *hi)
{
    char word[32];
    if (len == 0 || len >= sizeof word) {
        return -1;
    }
    memcpy(word, s, len);
    word[len] = '\0';
    if (strcmp(word, "*") == 0) {
        *lo = 1;
        *hi = category ? ZPET_CATEGORIES : ZPET_URGENCIES;
        return 0;
    }
    int v =
        category ? zpet_category_parse(word) : rows_parse(urgencies, ZARRAY_LEN(urgencies), word);
    *lo = v;
    *hi = v + 1;
    return v > 0 ? 0 : -1;
}

static int deadline_rule(zpet_deadlines_t *d, const char *s, size_t len, char *err, size_t cap)
{
    const char *eq = memchr(s, '=', len);
    if (eq == NULL) {
        return config_fail(err, cap, "expected CATEGORY/URGENCY=SIGN/REPLY or extension=DURATION",
                           s, len);
    }
    size_t klen = (size_t)(eq - s), vlen = len - klen - 1;
    if (klen == 9 && memcmp(s, "extension", 9) == 0) {
        int64_t ms = zpet_duration_parse(eq + 1, vlen);
        if (ms < 0) {
            return config_fail(err, cap, "extension needs a duration such as 15d", s, len);
        }
        d->extension_ms = ms;
        return 0;
    }
    const char *slash = memchr(s, '/', klen), *vslash = memchr(eq + 1, '/', vlen);
    int clo, chi, ulo, uhi;
    if (slash == NULL || vslash == NULL ||
        match_range(s, (size_t)(slash - s), true, &clo, &chi) != 0 ||
        match_range(slash + 1, (size_t)(eq - slash - 1), false, &ulo, &uhi) != 0) {
        return config_fail(err, cap,
                           "expected CATEGORY/URGENCY=SIGN/REPLY with a category code or "
                           "*, an urgency (normal, urgent, critical) or *",
                           s, len);
    }
    int64_t sign = zpet_duration_parse(eq + 1, (size_t)(vslash - eq - 1));
    int64_t reply = zpet_duration_parse(vslash + 1, (size_t)(s + len - vslash - 1));
    if (sign < 0 || reply < 0) {
        return config_fail(err, cap, "durations are a number and s, m, h or d, e.g. 30m/24h", s,
                           len);
    }
    for (int c = clo; c < chi; c++) {
        for (int u = ulo; u < uhi; u++) {
            d->sign_ms[c][u] = sign;
            d->reply_ms[c][u] = reply;
        }
    }
    return 0;
}

int zpet_deadlines_parse(zpet_deadlines_t *d, const char *text, char *err, size_t err_cap)
{
    zpet_deadlines_t next = *d;
    rules_t r = {text, text + strlen(text)};
    const char *s;
    size_t len;
    while (rule_next(&r, &s, &len)) {
        if (deadline_rule(&next, s, len, err, err_cap) != 0) {
            return ZE_INVALID;
        }
    }
    for (int c = 1; c < ZPET_CATEGORIES; c++) {
        for (int u = 1; u < ZPET_URGENCIES; u++) {
            if (next.reply_ms[c][u] < next.sign_ms[c][u]) {
                snprintf(err, err_cap, "%s/%s: the reply deadline comes before the sign deadline",
                         categories[c].code, zpet_urgency_name(u));
                return ZE_INVALID;
            }
        }
    }
    *d = next;
    return 0;
}

void zpet_deadlines_for(const zpet_deadlines_t *d, int category, int urgency, int64_t from_ms,
                        int64_t *sign_ms, int64_t *reply_ms)
{
    int c = category > 0 && category < ZPET_CATEGORIES ? category
                                                       : ZHILI__PETITIONS__CATEGORY__CATEGORY_OTHER;
    int u = urgency > 0 && urgency < ZPET_URGENCIES ? urgency : ZPET_U_NORMAL;
    *sign_ms = from_ms + d->sign_ms[c][u];
    *reply_ms = from_ms + d->reply_ms[c][u];
}

/* ---- routing ------------------------------------------------------------ */

static const char *const level_names[] = {"",          "district", "street",
                                          "community", "grid",     "building"};

void zpet_routing_default(zpet_routing_t *r)
{
    memset(r, 0, sizeof *r);
    for (int c = 0; c < ZPET_CATEGORIES; c++) {
        r->level[c] = ZAREA_COMMUNITY;
    }
    r->level[ZHILI__PETITIONS__CATEGORY__CATEGORY_PROPERTY] = ZAREA_GRID;
    r->level[ZHILI__PETITIONS__CATEGORY__CATEGORY_NOISE] = ZAREA_GRID;
    r->level[ZHILI__PETITIONS__CATEGORY__CATEGORY_PARKING] = ZAREA_GRID;
    r->level[ZHILI__PETITIONS__CATEGORY__CATEGORY_NEIGHBOR_DISPUTE] = ZAREA_GRID;
    r->level[ZHILI__PETITIONS__CATEGORY__CATEGORY_MUNICIPAL] = ZAREA_STREET;
}

static int routing_rule(zpet_routing_t *r, const char *s, size_t len, char *err, size_t cap)
{
    const char *eq = memchr(s, '=', len);
    int lo, hi;
    if (eq == NULL || match_range(s, (size_t)(eq - s), true, &lo, &hi) != 0) {
        return config_fail(err, cap,
                           "expected CATEGORY=LEVEL or CATEGORY=AREA_CODE with a "
                           "category code or *",
                           s, len);
    }
    char value[ZPET_AREA_BUF + 8];
    size_t vlen = len - (size_t)(eq - s) - 1;
    if (vlen == 0 || vlen >= sizeof value) {
        return config_fail(err, cap,
                           "expected a level (building, grid, community, street, "
                           "district) or an area code",
                           s, len);
    }
    memcpy(value, eq + 1, vlen);
    value[vlen] = '\0';
    int level = 0;
    for (int l = 1; l < (int)ZARRAY_LEN(level_names); l++) {
        level = strcmp(value, level_names[l]) == 0 ? l : level;
    }
    level = strcmp(value, "compound") == 0 ? ZAREA_GRID : level;
    if (level == 0 && !zarea_valid(value)) {
        return config_fail(err, cap,
                           "expected a level (building, grid, community, street, "
                           "district) or an area code of 6-18 digits",
                           s, len);
    }
    for (int c = lo; c < hi; c++) {
        r->level[c] = level;
        snprintf(r->fixed[c], sizeof r->fixed[c], "%.18s", level == 0 ? value : "");
    }
    return 0;
}

int zpet_routing_parse(zpet_routing_t *r, const char *text, char *err, size_t err_cap)
{
    zpet_routing_t next = *r;
    rules_t rules = {text, text + strlen(text)};
    const char *s;
    size_t len;
    while (rule_next(&rules, &s, &len)) {
        if (routing_rule(&next, s, len, err, err_cap) != 0) {
            return ZE_INVALID;
        }
    }
    *r = next;
    return 0;
}

const char *zpet_routing_target(const zpet_routing_t *r, int category)
{
    ZASSERT(category >= 0 && category < ZPET_CATEGORIES);
    return r->level[category] == 0 ? r->fixed[category] : level_names[r->level[category]];
}

void zpet_route(const zpet_routing_t *r, int category, const char *area, zpet_unit_known_fn known,
                void *ctx, zpet_route_t *out)
{
    ZASSERT(category > 0 && category < ZPET_CATEGORIES && zarea_valid(area));
    memset(out, 0, sizeof *out);
    if (r->level[category] == 0) {
        snprintf(out->unit, sizeof out->unit, "%s", r->fixed[category]);
        out->routing = "fixed";
        return;
    }
    int target = r->level[category], have = (int)zarea_level(area);
    int start = target < have ? target : have;
    if (target <= ZAREA_STREET) {
        /* Streets and districts are stable: the table names them directly. */
        zarea_at_level(area, (zarea_level_t)start, out->unit);
        out->routing = "level";
        return;
    }
    for (int level = start; level >= ZAREA_COMMUNITY; level--) {
        char unit[ZPET_AREA_BUF];
        zarea_at_level(area, (zarea_level_t)level, unit);
        if (known != NULL && known(ctx, unit)) {
            snprintf(out->unit, sizeof out->unit, "%s", unit);
            out->routing = "unit";
            return;
        }
    }
    if (have >= ZAREA_COMMUNITY) {
        zarea_at_level(area, ZAREA_COMMUNITY, out->unit);
        out->routing = "fallback_community";
    } else {
        snprintf(out->unit, sizeof out->unit, "%s", area);
        out->routing = "fallback_area";
        out->manual = true;
    }
}

void zpet_supervising_unit(const char *unit, char *out)
{
    if (zarea_level(unit) <= ZAREA_DISTRICT) {
        snprintf(out, ZPET_AREA_BUF, "%s", unit);
        return;
    }
    zarea_parent(unit, out);
}

bool zpet_point_in_polygon(double lat, double lon, const double *lats, const double *lons, size_t n)
{
    if (n < 3) {
        return false;
    }
    bool inside = false;
    for (size_t i = 0, j = n - 1; i < n; j = i++) {
        bool crosses = (lats[i] > lat) != (lats[j] > lat);
        if (crosses &&
            lon < (lons[j] - lons[i]) * (lat - lats[i]) / (lats[j] - lats[i]) + lons[i]) {
            inside = !inside;
        }
    }
    return inside;
}

/* ---- input -------------------------------------------------------------- */

/* Length of the UTF-8 sequence at s (1-4), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80) {
        return 1;
    }
    size_t len = (s[0] & 0xE0) == 0xC0   ? 2
                 : (s[0] & 0xF0) == 0xE0 ? 3
                 : (s[0] & 0xF8) == 0xF0 ? 4
                                         : 0;
    if (len == 0 || len > n || (len == 2 && s[0] < 0xC2)) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    uint32_t cp = len == 2   ? (uint32_t)(s[0] & 0x1F)
                  : len == 3 ? (uint32_t)(s[0] & 0x0F)
                             : (uint32_t)(s[0] & 0x07);
    for (size_t i = 1; i < len; i++) {
        cp = (cp << 6) | (uint32_t)(s[i] & 0x3F);
    }
    bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    return overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ? 0 : len;
}

bool zpet_text_ok(const char *s, size_t min, size_t max, bool multiline)
{
    if (s == NULL) {
        return min == 0;
    }
    size_t n = strlen(s);
    if (n < min || n > max) {
        return false;
    }
    bool blank = true;
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7F) {
            if (!multiline || (ch != '\n' && ch != '\r' && ch != '\t')) {
                return false;
            }
        }
        size_t len = utf8_len((const unsigned char *)s + i, n - i);
        if (len == 0) {
            return false;
        }
        blank = blank && (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t');
        i += len;
    }
    return min == 0 || !blank;
}

/* The digits of a phone after an optional +86; -1 when not a phone. */
static int phone_digits(const char *phone, char *out, size_t cap)
{
    size_t n = strlen(phone), at = 0, count = 0;
    if (n == 0 || n > ZPET_PHONE_BYTES_MAX) {
        return -1;
    }
    if (strncmp(phone, "+86", 3) == 0) {
        at = 3;
    }
    for (; at < n; at++) {
        char ch = phone[at];
        if (isdigit((unsigned char)ch)) {
            if (count + 1 >= cap) {
                return -1;
            }
            out[count++] = ch;
        } else if (ch != ' ' && ch != '-') {
            return -1;
        }
    }
    out[count] = '\0';
    return (int)count;
}

bool zpet_phone_valid(const char *phone)
{
    char d[ZPET_PHONE_BYTES_MAX + 1];
    int n = phone_digits(phone, d, sizeof d);
    if (n < ZPET_PHONE_DIGITS_MIN || n > ZPET_PHONE_DIGITS_MAX) {
        return false;
    }
    if (d[0] == '1') {
        return n == 11 && d[1] >= '3' && d[1] <= '9'; /* a mobile number */
    }
    return true;
}

void zpet_phone_mask(const char *phone, char *out, size_t cap)
{
    char d[ZPET_PHONE_BYTES_MAX + 1];
    int n = phone != NULL && phone[0] != '\0' ? phone_digits(phone, d, sizeof d) : 0;
    if (n <= 0) {
        snprintf(out, cap, "%s", n == 0 ? "" : "****");
        return;
    }
    if (n >= 9) {
        snprintf(out, cap, "%.3s****%s", d, d + n - 4);
    } else {
        snprintf(out, cap, "****%s", d + (n >= 2 ? n - 2 : 0));
    }
}

bool zpet_media_url_valid(const char *url)
{
    size_t n = strlen(url);
    if (n > ZPET_MEDIA_URL_BYTES_MAX ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        return false;
    }
    size_t host = url[4] == 's' ? 8 : 7;
    if (n == host) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (url[i] <= ' ' || url[i] >= 127) {
            return false;
        }
    }
    return true;
}

void zpet_id_format(uint64_t seq, char out[ZPET_ID_BYTES + 1])
{
    snprintf(out, ZPET_ID_BYTES + 1, "P%010" PRIu64, seq % (uint64_t)10000000000);
}

bool zpet_id_parse(const char *id, uint64_t *seq)
{
    if (id == NULL || strlen(id) != ZPET_ID_BYTES || id[0] != 'P') {
        return false;
    }
    uint64_t v = 0;
    for (int i = 1; i < ZPET_ID_BYTES; i++) {
        if (!isdigit((unsigned char)id[i])) {
            return false;
        }
        v = v * 10 + (uint64_t)(id[i] - '0');
    }
    *seq = v;
    return v > 0;
}

static int bad(zpet_error_t *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(zpet_error_t *err, int code, const char *field, const char *fmt, ...)
{
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

static bool ticket_ok(const char *t)
{
    size_t n = strlen(t);
    for (size_t i = 0; i < n; i++) {
        if (t[i] <= ' ' || t[i] >= 127) {
            return false;
        }
    }
    return n <= ZPET_TICKET_BYTES_MAX;
}

/* Fields a Create and a QR scan share. */
static int common_check(const char *category, const char *urgency, const char *content,
                        const char *address, const Zhili__Petitions__Citizen *citizen,
                        zpet_intake_t *out, zpet_error_t *err)
{
    out->category = zpet_category_parse(category);
    if (out->category == 0) {
        return bad(err, ZE_INVALID, "category", "category must be one of %s", zpet_category_list());
    }
    out->urgency = zpet_urgency_parse(urgency);
    if (out->urgency == 0) {
        return bad(err, ZE_INVALID, "urgency", "urgency must be one of %s",
                   "normal (一般), urgent (紧急), critical (特急)");
    }
    out->content = content;
    if (!zpet_text_ok(content, 1, ZPET_CONTENT_BYTES_MAX, true)) {
        return bad(err, ZE_INVALID, "content",
                   "content must be 1 to %s bytes of UTF-8 text "
                   "without control characters",
                   "4000");
    }
    out->address = address;
    if (!zpet_text_ok(address, 0, ZPET_ADDRESS_BYTES_MAX, false)) {
        return bad(err, ZE_INVALID, "address",
                   "address must be at most %s bytes of UTF-8 on "
                   "one line",
                   "300");
    }
    out->name = citizen != NULL ? citizen->name : "";
    out->phone = citizen != NULL ? citizen->phone : "";
    if (!zpet_text_ok(out->name, 0, ZPET_NAME_BYTES_MAX, false)) {
        return bad(err, ZE_INVALID, "citizen.name",
                   "citizen.name must be at most %s bytes of "
                   "UTF-8 on one line",
                   "64");
    }
    if (out->phone[0] != '\0' && !zpet_phone_valid(out->phone)) {
        return bad(err, ZE_INVALID, "citizen.phone",
                   "citizen.phone must be a phone number: "
                   "11 digits for a mobile (13812341234), or 7-12 digits with an area code "
                   "(0435-3215678)");
    }
    return 0;
}

static int location_check(const Zhili__Petitions__Create *c, const zpet_actor_t *actor,
                          zpet_intake_t *out, zpet_error_t *err)
{
    out->area = c->area;
    if (c->point_present_case == ZHILI__PETITIONS__CREATE__POINT_PRESENT_POINT && c->point) {
        out->has_point = true;
        out->lat = c->point->lat;
        out->lon = c->point->long_;
        if (!isfinite(out->lat) || !isfinite(out->lon) || fabs(out->lat) > 90 ||
            fabs(out->lon) > 180) {
            return bad(err, ZE_INVALID, "point",
                       "point needs lat in -90..90 and long in "
                       "-180..180 (WGS84)");
        }
    }
    if (c->area[0] == '\0') {
        if (!out->has_point && c->address[0] == '\0') {
            return bad(err, ZE_INVALID, "area",
                       "give the location: area (an area code), a point "
                       "(lat, long) or an address");
        }
        return 0;
    }
    if (!zarea_valid(c->area)) {
        return bad(err, ZE_INVALID, "area",
                   "area must be an area code of 6, 9, 12, 15 or 18 "
                   "digits, got \"%.40s\"",
                   c->area);
    }
    if (!zarea_within(actor->area != NULL ? actor->area : "", c->area)) {
        return bad(err, ZE_FORBIDDEN, "area", "area %s is outside your scope", c->area);
    }
    return 0;
}

int zpet_intake_check(const Zhili__Petitions__Create *c, const zpet_actor_t *actor,
                      zpet_intake_t *out, zpet_error_t *err)
{
    memset(out, 0, sizeof *out);
    int channel = zpet_channel_default(actor->role);
    if (channel == 0) {
        return bad(err, ZE_FORBIDDEN, "",
                   "role %s may not file petitions (residents scan a "
                   "grid's QR code)",
                   actor->role != NULL && actor->role[0] ? actor->role : "(none)");
    }
    int rc = common_check(c->category, c->urgency, c->content, c->address, c->citizen, out, err);
    if (rc != 0) {
        return rc;
    }
    out->channel = c->channel[0] == '\0' ? channel : zpet_channel_parse(c->channel);
    if (out->channel == 0 || !zpet_channel_allowed(actor->role, out->channel)) {
        return bad(err, ZE_INVALID, "channel",
                   "channel must be %s for this caller (qr is only "
                   "for a QR scan)",
                   strcmp(actor->role, "hotline") == 0 ? "hotline or open311"
                   : strcmp(actor->role, "admin") == 0 ? "hotline, staff or open311"
                                                       : "staff");
    }
    out->media_url = c->media_url;
    if (c->media_url[0] != '\0' && !zpet_media_url_valid(c->media_url)) {
        return bad(err, ZE_INVALID, "media_url",
                   "media_url must be an http or https URL of at "
                   "most %s bytes",
                   "500");
    }
    out->ticket = c->ticket;
    if (!ticket_ok(c->ticket)) {
        return bad(err, ZE_INVALID, "ticket",
                   "ticket must be at most %s printable ASCII "
                   "characters without spaces",
                   "200");
    }
    return location_check(c, actor, out, err);
}

int zpet_qr_intake_check(const Zhili__Petitions__QrCreate *c, zpet_intake_t *out, zpet_error_t *err)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(c->code);
    bool code_ok = n > 0 && n <= ZPET_QR_CODE_BYTES_MAX;
    for (size_t i = 0; code_ok && i < n; i++) {
        code_ok = isalnum((unsigned char)c->code[i]) || c->code[i] == '-' || c->code[i] == '_';
    }
    if (!code_ok) {
        return bad(err, ZE_INVALID, "code", "the QR code must be 1 to %s letters, digits, - or _",
                   "64");
    }
    int rc = common_check(c->category, c->urgency, c->content, c->address, c->citizen, out, err);
    out->channel = ZPET_CH_QR;
    out->area = "";
    out->media_url = "";
    out->ticket = "";
    return rc;
}
