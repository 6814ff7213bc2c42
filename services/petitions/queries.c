/* The petitions service's reads and the views every reply is made of
 * (handlers.h): one petition, pages by area and filters, a unit's inbox, the
 * catalogue, a unit's counts. Reads answer from a snapshot and change nothing. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/caltime.h"
#include "common/err.h"
#include "services/petitions/handlers.h"

/* ---- shared helpers ----------------------------------------------------- */

static void *arena_alloc(void *data, size_t size)
{
    return zarena_alloc(data, size);
}

static void arena_free(void *data, void *pointer)
{
    (void)data;
    (void)pointer; /* released with the batch */
}

void zph_arena_allocator(zsvc_ctx_t *ctx, ProtobufCAllocator *out)
{
    out->alloc = arena_alloc;
    out->free = arena_free;
    out->allocator_data = ctx->arena;
}

zpet_actor_t zph_actor(const Zhili__V1__Command *cmd)
{
    zpet_actor_t a = {"", "", ""};
    if (cmd != NULL && cmd->actor != NULL) {
        a.id = cmd->actor->id;
        a.role = cmd->actor->role;
        a.area = cmd->actor->area;
    }
    return a;
}

zpet_subject_t zph_subject(const Zhili__Petitions__Record *r)
{
    return (zpet_subject_t){r->area, r->assigned_to, r->creator_id};
}

int zph_load(zsvc_ctx_t *ctx, const zps_t *t, const char *id, const char *field,
             ProtobufCAllocator *alloc, Zhili__Petitions__Record **out)
{
    uint64_t seq;
    *out = NULL;
    if (!zpet_id_parse(id, &seq)) {
        return zsvc_fail(ctx, ZE_INVALID, field,
                         "%s must be a petition id such as P0000000001, "
                         "got \"%.40s\"",
                         field, id);
    }
    int rc = zps_record_get(ctx->txn, t, seq, alloc, out);
    if (rc == ZE_NOT_FOUND) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, field, "no petition %s", id);
    }
    return rc != 0 ? zsvc_fail(ctx, rc, NULL, "petition %s could not be read", id) : 0;
}

char *zph_time(zsvc_ctx_t *ctx, int64_t ms)
{
    if (ms == 0) {
        return zsvc_strdup(ctx, "");
    }
    char buf[ZTIME_RFC3339_BYTES];
    ztime_format(ms, buf);
    return zsvc_strdup(ctx, buf);
}

bool zph_sign_overdue(const Zhili__Petitions__Record *r, int64_t now_ms)
{
    return zpet_sign_pending(r->state) && r->sign_deadline_ms != 0 && now_ms > r->sign_deadline_ms;
}

bool zph_reply_overdue(const Zhili__Petitions__Record *r, int64_t now_ms)
{
    return zpet_reply_pending(r->state) && r->reply_deadline_ms != 0 &&
           now_ms > r->reply_deadline_ms;
}

/* ---- views -------------------------------------------------------------- */

static Zhili__Petitions__Citizen *view_citizen(zsvc_ctx_t *ctx, const Zhili__Petitions__Record *r,
                                               const zpet_actor_t *actor)
{
    Zhili__Petitions__Citizen *c = zsvc_alloc(ctx, sizeof *c);
    zhili__petitions__citizen__init(c);
    const char *name = r->citizen ? r->citizen->name : "",
               *phone = r->citizen ? r->citizen->phone : "";
    c->name = zsvc_strdup(ctx, name);
    zpet_subject_t s = zph_subject(r);
    if (zpet_phone_visible(actor, &s)) {
        c->phone = zsvc_strdup(ctx, phone);
    } else {
        c->phone = zsvc_alloc(ctx, ZPET_PHONE_BYTES_MAX + 1);
        zpet_phone_mask(phone, c->phone, ZPET_PHONE_BYTES_MAX + 1);
    }
    return c;
}

static void view_notes(zsvc_ctx_t *ctx, const Zhili__Petitions__Record *r,
                       Zhili__Petitions__Petition *v)
{
    v->notes = zsvc_alloc(ctx, (r->n_notes + 1) * sizeof *v->notes);
    for (size_t i = 0; i < r->n_notes; i++) {
        const Zhili__Petitions__RecordNote *rn = r->notes[i];
        Zhili__Petitions__Note *n = zsvc_alloc(ctx, sizeof *n);
        zhili__petitions__note__init(n);
        n->at = zph_time(ctx, rn->at_ms);
        n->by = zsvc_strdup(ctx, rn->by);
        n->role = zsvc_strdup(ctx, rn->role);
        n->kind = zsvc_strdup(ctx, rn->kind);
        n->text = zsvc_strdup(ctx, rn->text);
        v->notes[v->n_notes++] = n;
    }
    v->duplicates = zsvc_alloc(ctx, (r->n_duplicates + 1) * sizeof *v->duplicates);
    for (size_t i = 0; i < r->n_duplicates; i++) {
        v->duplicates[v->n_duplicates++] = zsvc_strdup(ctx, r->duplicates[i]);
    }
}

static char *unit_name(zsvc_ctx_t *ctx, const zps_t *t, const char *code)
{
    Zhili__Grid__Unit *u = NULL;
    if (zps_unit_get(ctx->txn, t, code, &u) != 0) {
        return zsvc_strdup(ctx, "");
    }
    char *name = zsvc_strdup(ctx, u->name);
    zhili__grid__unit__free_unpacked(u, NULL);
    return name;
}

static void view_times(zsvc_ctx_t *ctx, const Zhili__Petitions__Record *r,
                       Zhili__Petitions__Petition *v)
{
    v->received_at = zph_time(ctx, r->received_ms);
    v->assigned_at = zph_time(ctx, r->assigned_ms);
    v->sign_deadline = zph_time(ctx, r->sign_deadline_ms);
    v->reply_deadline = zph_time(ctx, r->reply_deadline_ms);
    v->signed_at = zph_time(ctx, r->signed_ms);
    v->replied_at = zph_time(ctx, r->replied_ms);
    v->evaluated_at = zph_time(ctx, r->evaluated_ms);
    v->archived_at = zph_time(ctx, r->archived_ms);
    v->updated_at = zph_time(ctx, r->updated_ms);
    v->sign_overdue = zph_sign_overdue(r, ctx->now_ms);
    v->reply_overdue = zph_reply_overdue(r, ctx->now_ms);
}

Zhili__Petitions__Petition *zph_view(zsvc_ctx_t *ctx, const zps_t *t,
                                     const Zhili__Petitions__Record *r, const zpet_actor_t *actor)
{
    Zhili__Petitions__Petition *v = zsvc_alloc(ctx, sizeof *v);
    zhili__petitions__petition__init(v);
    char id[ZPET_ID_BYTES + 1];
    zpet_id_format(r->seq, id);
    const zpet_category_info_t *cat = zpet_category(r->category);
    v->id = zsvc_strdup(ctx, id);
    v->ticket = zsvc_strdup(ctx, r->ticket);
    v->category = r->category;
    v->category_name = zsvc_strdup(ctx, cat != NULL ? cat->name : "");
    v->urgency = r->urgency;
    v->channel = r->channel;
    v->state = r->state;
    v->content = zsvc_strdup(ctx, r->content);
    v->area = zsvc_strdup(ctx, r->area);
    v->address = zsvc_strdup(ctx, r->address);
    v->citizen = view_citizen(ctx, r, actor);
    v->assigned_to = zsvc_strdup(ctx, r->assigned_to);
    v->assigned_name = unit_name(ctx, t, r->assigned_to);
    v->routing = zsvc_strdup(ctx, r->routing);
    v->manual_routing = r->manual_routing;
    view_times(ctx, r, v);
    v->extended = r->extended;
    v->returns = r->returns;
    v->reopens = r->reopens;
    v->urges = r->urges;
    v->reply = zsvc_strdup(ctx, r->reply);
    v->solved = r->solved;
    v->satisfaction = r->satisfaction;
    v->merged_into = zsvc_strdup(ctx, r->merged_into);
    v->return_reason = r->return_reason;
    v->media_url = zsvc_strdup(ctx, r->media_url);
    view_notes(ctx, r, v);
    if (r->point_present_case == ZHILI__PETITIONS__RECORD__POINT_PRESENT_POINT && r->point) {
        Zhili__Petitions__Point *p = zsvc_alloc(ctx, sizeof *p);
        zhili__petitions__point__init(p);
        p->lat = r->point->lat;
        p->long_ = r->point->long_;
        v->point_present_case = ZHILI__PETITIONS__PETITION__POINT_PRESENT_POINT;
        v->point = p;
    }
    return v;
}

/* ---- get ---------------------------------------------------------------- */

static void tables(zsvc_ctx_t *ctx, zps_t *t)
{
    zps_init(t, zsvc_store(ctx->svc));
}

static int get(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    zps_t t;
    tables(ctx, &t);
    Zhili__Petitions__Record *r = NULL;
    ProtobufCAllocator alloc;
    zph_arena_allocator(ctx, &alloc);
    int rc = zph_load(ctx, &t, cmd->petition_get->id, "id", &alloc, &r);
    if (rc != 0) {
        return rc;
    }
    zpet_actor_t actor = zph_actor(cmd);
    zpet_subject_t s = zph_subject(r);
    if (!zpet_may_read(&actor, &s)) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "id", "%s",
                         strcmp(actor.role, "hotline") == 0
                             ? "a hotline token reads only the petitions it pushed"
                             : "this petition is outside your scope");
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_PETITION;
    ctx->reply->petition = zph_view(ctx, &t, r, &actor);
    return ztxn_err(ctx->txn);
}

/* ---- list --------------------------------------------------------------- */

typedef struct {
    zsvc_ctx_t *ctx;
    const zps_t *t;
    zpet_actor_t actor;
    const char *area;
    bool area_filter; /* the area is not a level prefix: check each row */
    unsigned states, categories;
    int overdue; /* -1 either, 0 not overdue, 1 overdue */
    int channel;
    int64_t from_ms; /* INT64_MIN: no lower bound */
    size_t limit;
    size_t bytes, scanned;
    Zhili__Petitions__Page *page;
} list_t;

/* Comma-separated names -> bit set; -1 names the bad one in `bad`. */
static int names_parse(const char *list, int (*parse)(const char *), unsigned *out, char *bad,
                       size_t bad_cap)
{
    char copy[ZPET_FILTER_BYTES_MAX + 1];
    *out = 0;
    if (list[0] == '\0') {
        return 0;
    }
    if (strlen(list) > ZPET_FILTER_BYTES_MAX) {
        snprintf(bad, bad_cap, "(too long)");
        return -1;
    }
    snprintf(copy, sizeof copy, "%s", list);
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        int v = parse(tok);
        if (v <= 0) {
            snprintf(bad, bad_cap, "%.40s", tok);
            return -1;
        }
        *out |= 1u << (unsigned)v;
    }
    return 0;
}

static bool matches(const list_t *l, const Zhili__Petitions__Record *r)
{
    zpet_subject_t s = zph_subject(r);
    if (!zpet_may_read(&l->actor, &s) || (l->area_filter && !zarea_within(l->area, r->area))) {
        return false;
    }
    if ((l->states && !(l->states & (1u << (unsigned)r->state))) ||
        (l->categories && !(l->categories & (1u << (unsigned)r->category))) ||
        (l->channel != 0 && (int)r->channel != l->channel)) {
        return false;
    }
    bool overdue = zph_sign_overdue(r, l->ctx->now_ms) || zph_reply_overdue(r, l->ctx->now_ms);
    return l->overdue < 0 || overdue == (l->overdue == 1);
}

static void cursor_set(list_t *l, const uint8_t suffix[ZPS_SUFFIX_BYTES])
{
    char *hex = zsvc_alloc(l->ctx, ZPET_CURSOR_HEX + 1);
    for (int i = 0; i < ZPS_SUFFIX_BYTES; i++) {
        snprintf(hex + 2 * i, 3, "%02x", suffix[i]);
    }
    l->page->next_cursor = hex;
}

/* Add a petition to the page: 1 when the page is full (the row is not added). */
static int page_add(list_t *l, const Zhili__Petitions__Record *r)
{
    Zhili__Petitions__Page *p = l->page;
    if (p->n_petitions == l->limit || l->bytes > ZPET_PAGE_BYTES_MAX) {
        return 1;
    }
    Zhili__Petitions__Petition *v = zph_view(l->ctx, l->t, r, &l->actor);
    l->bytes += protobuf_c_message_get_packed_size(&v->base);
    p->petitions[p->n_petitions++] = v;
    return 0;
}

static int on_list_row(void *arg, uint64_t seq, const uint8_t suffix[ZPS_SUFFIX_BYTES])
{
    list_t *l = arg;
    if (++l->scanned > ZPET_SCAN_ROWS_MAX) {
        l->page->scan_limited = true;
        cursor_set(l, suffix);
        return 1;
    }
    Zhili__Petitions__Record *r = NULL;
    if (zps_record_get(l->ctx->txn, l->t, seq, NULL, &r) != 0) {
        return 0;
    }
    int stop = 0;
    if (r->received_ms < l->from_ms) {
        stop = 1; /* newest first: everything further is older */
    } else if (matches(l, r) && page_add(l, r) != 0) {
        cursor_set(l, suffix);
        stop = 1;
    }
    zhili__petitions__record__free_unpacked(r, NULL);
    return stop;
}

static int hex_decode(const char *hex, uint8_t *out, size_t n)
{
    if (strlen(hex) != 2 * n) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1]) ||
            sscanf(hex + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

static int list_ids(list_t *l, const char *ids)
{
    char copy[ZPET_LIST_IDS_MAX * (ZPET_ID_BYTES + 1) + 1];
    if (strlen(ids) >= sizeof copy) {
        return zsvc_fail(l->ctx, ZE_INVALID, "ids", "ids lists at most %d petition ids",
                         ZPET_LIST_IDS_MAX);
    }
    snprintf(copy, sizeof copy, "%s", ids);
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        uint64_t seq;
        Zhili__Petitions__Record *r = NULL;
        if (!zpet_id_parse(tok, &seq)) {
            return zsvc_fail(l->ctx, ZE_INVALID, "ids",
                             "\"%.20s\" is not a petition id such as "
                             "P0000000001",
                             tok);
        }
        if (zps_record_get(l->ctx->txn, l->t, seq, NULL, &r) == 0) {
            if (matches(l, r)) {
                page_add(l, r);
            }
            zhili__petitions__record__free_unpacked(r, NULL);
        }
    }
    return 0;
}

static int list_filters(list_t *l, const Zhili__Petitions__List *q)
{
    char bad[64];
    if (names_parse(q->state, zpet_state_parse, &l->states, bad, sizeof bad) != 0) {
        return zsvc_fail(l->ctx, ZE_INVALID, "state", "unknown state \"%s\": states are %s", bad,
                         zpet_state_list());
    }
    if (names_parse(q->category, zpet_category_parse, &l->categories, bad, sizeof bad) != 0) {
        return zsvc_fail(l->ctx, ZE_INVALID, "category",
                         "unknown category \"%s\": categories are "
                         "%s",
                         bad, zpet_category_list());
    }
    l->overdue = q->overdue[0] == '\0'          ? -1
                 : !strcmp(q->overdue, "true")  ? 1
                 : !strcmp(q->overdue, "false") ? 0
                                                : -2;
    if (l->overdue == -2) {
        return zsvc_fail(l->ctx, ZE_INVALID, "overdue", "overdue must be true or false");
    }
    l->channel = q->channel[0] ? zpet_channel_parse(q->channel) : 0;
    if (q->channel[0] && l->channel == 0) {
        return zsvc_fail(l->ctx, ZE_INVALID, "channel",
                         "channel must be hotline, qr, staff or "
                         "open311");
    }
    if (q->limit < 0 || q->limit > ZPET_PAGE_MAX) {
        return zsvc_fail(l->ctx, ZE_INVALID, "limit", "limit must be 1 to %d (default %d)",
                         ZPET_PAGE_MAX, ZPET_PAGE_DEFAULT);
    }
    l->limit = q->limit == 0 ? ZPET_PAGE_DEFAULT : (size_t)q->limit;
    return 0;
}

/* Where the scan starts: the cursor, else just before `to`, else the newest. */
static int list_start(list_t *l, const Zhili__Petitions__List *q, uint8_t start[ZPS_SUFFIX_BYTES],
                      bool *has_start)
{
    int64_t ms;
    *has_start = false;
    l->from_ms = INT64_MIN;
    if (q->from[0] != '\0') {
        if (ztime_parse(q->from, &ms) != 0) {
            return zsvc_fail(l->ctx, ZE_INVALID, "from",
                             "from must be RFC 3339 "
                             "(2026-11-26T08:00:00+08:00) or a date (2026-11-26)");
        }
        l->from_ms = ms;
    }
    if (q->to[0] != '\0') {
        if (ztime_parse(q->to, &ms) != 0) {
            return zsvc_fail(l->ctx, ZE_INVALID, "to",
                             "to must be RFC 3339 "
                             "(2026-11-27T08:00:00+08:00) or a date (2026-11-27)");
        }
        zps_area_suffix(ms - 1, UINT64_MAX, start); /* the first key of that millisecond */
        *has_start = true;
    }
    if (q->cursor[0] != '\0') {
        if (hex_decode(q->cursor, start, ZPS_SUFFIX_BYTES) != 0) {
            return zsvc_fail(l->ctx, ZE_INVALID, "cursor",
                             "cursor must be the next_cursor of "
                             "an earlier page");
        }
        *has_start = true;
    }
    return 0;
}

static int list(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Petitions__List *q = cmd->petition_list;
    zps_t t;
    tables(ctx, &t);
    list_t l = {.ctx = ctx, .t = &t, .actor = zph_actor(cmd), .area = cmd->area};
    if (!zarea_prefix_valid(l.area)) {
        return zsvc_fail(ctx, ZE_INVALID, "area", "area must be up to 18 digits");
    }
    if (!zarea_within(l.actor.area, l.area)) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "area", "area %s is outside your scope %s", l.area,
                         l.actor.area);
    }
    uint8_t start[ZPS_SUFFIX_BYTES];
    bool has_start;
    int rc = list_filters(&l, q);
    if (rc != 0 || (rc = list_start(&l, q, start, &has_start)) != 0) {
        return rc;
    }
    l.page = zsvc_alloc(ctx, sizeof *l.page);
    zhili__petitions__page__init(l.page);
    l.page->petitions = zsvc_alloc(ctx, l.limit * sizeof *l.page->petitions);
    if (q->ids[0] != '\0') {
        rc = list_ids(&l, q->ids);
    } else {
        static const size_t lengths[] = {18, 15, 12, 9, 6, 0};
        size_t len = strlen(l.area), i = 0;
        while (lengths[i] > len) {
            i++;
        }
        char prefix[ZPET_AREA_BUF];
        snprintf(prefix, sizeof prefix, "%.*s", (int)lengths[i], l.area);
        l.area_filter = lengths[i] != len;
        rc = zps_area_scan(ctx->txn, &t, prefix, has_start ? start : NULL, &l, on_list_row);
        rc = rc > 0 ? 0 : rc;
    }
    if (rc != 0) {
        return rc < 0 && ztxn_err(ctx->txn) ? zsvc_fail(ctx, rc, NULL, "%s", ztxn_errmsg(ctx->txn))
                                            : rc;
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_PETITION_PAGE;
    ctx->reply->petition_page = l.page;
    return 0;
}

/* ---- a unit's inbox ----------------------------------------------------- */

/* May the actor look at a unit's work (its inbox, its counts)? */
static int unit_check(zsvc_ctx_t *ctx, const zpet_actor_t *actor, const char *unit)
{
    if (!zarea_valid(unit)) {
        return zsvc_fail(ctx, ZE_INVALID, "unit",
                         "unit must be an area code of 6, 9, 12, 15 or 18 "
                         "digits");
    }
    bool handler = !strcmp(actor->role, "staff") || !strcmp(actor->role, "grid_member");
    bool reader = handler || !strcmp(actor->role, "admin") ||
                  !strcmp(actor->role, "command_center") || !strcmp(actor->role, "police");
    if (!reader ||
        !(zarea_within(actor->area, unit) || (handler && zarea_within(unit, actor->area)))) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "unit", "unit %s is outside your scope", unit);
    }
    return 0;
}

typedef struct {
    list_t *l;
    uint64_t next;
} inbox_t;

static int on_inbox_row(void *arg, uint64_t seq)
{
    inbox_t *in = arg;
    list_t *l = in->l;
    if (++l->scanned > ZPET_SCAN_ROWS_MAX || l->page->n_petitions == l->limit) {
        in->next = seq;
        l->page->scan_limited = l->scanned > ZPET_SCAN_ROWS_MAX;
        return 1;
    }
    Zhili__Petitions__Record *r = NULL;
    if (zps_record_get(l->ctx->txn, l->t, seq, NULL, &r) != 0) {
        return 0;
    }
    int stop = 0;
    if ((!l->states || (l->states & (1u << (unsigned)r->state))) && page_add(l, r) != 0) {
        in->next = seq;
        stop = 1;
    }
    zhili__petitions__record__free_unpacked(r, NULL);
    return stop;
}

static int inbox(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Petitions__Inbox *q = cmd->petition_inbox;
    zps_t t;
    tables(ctx, &t);
    list_t l = {.ctx = ctx, .t = &t, .actor = zph_actor(cmd)};
    char bad[64];
    uint64_t from = 0;
    int rc = unit_check(ctx, &l.actor, q->unit);
    if (rc != 0) {
        return rc;
    }
    if (names_parse(q->state, zpet_state_parse, &l.states, bad, sizeof bad) != 0) {
        return zsvc_fail(ctx, ZE_INVALID, "state", "unknown state \"%s\": states are %s", bad,
                         zpet_state_list());
    }
    if (q->cursor[0] != '\0' && !zpet_id_parse(q->cursor, &from)) {
        return zsvc_fail(ctx, ZE_INVALID, "cursor",
                         "cursor must be the next_cursor of an earlier "
                         "page");
    }
    if (q->limit < 0 || q->limit > ZPET_PAGE_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "limit", "limit must be 1 to %d (default %d)",
                         ZPET_PAGE_MAX, ZPET_PAGE_DEFAULT);
    }
    l.limit = q->limit == 0 ? ZPET_PAGE_DEFAULT : (size_t)q->limit;
    l.page = zsvc_alloc(ctx, sizeof *l.page);
    zhili__petitions__page__init(l.page);
    l.page->petitions = zsvc_alloc(ctx, l.limit * sizeof *l.page->petitions);
    inbox_t in = {&l, 0};
    rc = zps_inbox_scan(ctx->txn, &t, q->unit, from, &in, on_inbox_row);
    if (rc < 0) {
        return zsvc_fail(ctx, rc, NULL, "%s", ztxn_errmsg(ctx->txn));
    }
    if (in.next != 0) {
        char id[ZPET_ID_BYTES + 1];
        zpet_id_format(in.next, id);
        l.page->next_cursor = zsvc_strdup(ctx, id);
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_PETITION_PAGE;
    ctx->reply->petition_page = l.page;
    return 0;
}

/* ---- the catalogue and a unit's counts ---------------------------------- */

static int catalogue(zsvc_ctx_t *ctx)
{
    const zph_config_t *cfg = ctx->user;
    Zhili__Petitions__Catalogue *c = zsvc_alloc(ctx, sizeof *c);
    zhili__petitions__catalogue__init(c);
    c->entries = zsvc_alloc(ctx, ZPET_CATEGORIES * sizeof *c->entries);
    for (int i = 1; i < ZPET_CATEGORIES; i++) {
        const zpet_category_info_t *info = zpet_category(i);
        Zhili__Petitions__CatalogueEntry *e = zsvc_alloc(ctx, sizeof *e);
        zhili__petitions__catalogue_entry__init(e);
        e->category = (Zhili__Petitions__Category)i;
        e->code = (char *)info->code;
        e->name = (char *)info->name;
        e->description = (char *)info->description;
        e->group = zsvc_strdup(ctx, zpet_routing_target(&cfg->routing, i));
        e->sign_normal_ms = cfg->deadlines.sign_ms[i][ZPET_U_NORMAL];
        e->sign_urgent_ms = cfg->deadlines.sign_ms[i][ZPET_U_URGENT];
        e->sign_critical_ms = cfg->deadlines.sign_ms[i][ZPET_U_CRITICAL];
        e->reply_normal_ms = cfg->deadlines.reply_ms[i][ZPET_U_NORMAL];
        e->reply_urgent_ms = cfg->deadlines.reply_ms[i][ZPET_U_URGENT];
        e->reply_critical_ms = cfg->deadlines.reply_ms[i][ZPET_U_CRITICAL];
        c->entries[c->n_entries++] = e;
    }
    c->extension_ms = cfg->deadlines.extension_ms;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_PETITION_CATALOGUE;
    ctx->reply->petition_catalogue = c;
    return 0;
}

static int on_count_row(void *arg, uint64_t seq)
{
    (void)seq;
    int64_t *n = arg;
    return ++*n >= ZPET_SCAN_ROWS_MAX * 5 ? 1 : 0;
}

static int unit_counts(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const char *unit = cmd->petition_unit_counts_get->unit;
    zpet_actor_t actor = zph_actor(cmd);
    int rc = unit_check(ctx, &actor, unit);
    if (rc != 0) {
        return rc;
    }
    zps_t t;
    tables(ctx, &t);
    Zhili__Petitions__UnitCounts *u = zsvc_alloc(ctx, sizeof *u);
    zhili__petitions__unit_counts__init(u);
    char name[64];
    u->unit = zsvc_strdup(ctx, unit);
    snprintf(name, sizeof name, "returns/%s", unit);
    u->returns = zps_count_get(ctx->txn, &t, name);
    snprintf(name, sizeof name, "reopens/%s", unit);
    u->reopens = zps_count_get(ctx->txn, &t, name);
    zps_inbox_scan(ctx->txn, &t, unit, 0, &u->open, on_count_row);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_PETITION_UNIT_COUNTS;
    ctx->reply->petition_unit_counts = u;
    return ztxn_err(ctx->txn);
}

bool zph_is_query(const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_PETITION_GET:
    case ZHILI__V1__COMMAND__BODY_PETITION_LIST:
    case ZHILI__V1__COMMAND__BODY_PETITION_INBOX:
    case ZHILI__V1__COMMAND__BODY_PETITION_CATALOGUE_GET:
    case ZHILI__V1__COMMAND__BODY_PETITION_UNIT_COUNTS_GET:
        return true;
    default:
        return false;
    }
}

int zph_on_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_PETITION_GET:
        return get(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_LIST:
        return list(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_INBOX:
        return inbox(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_CATALOGUE_GET:
        return catalogue(ctx);
    default:
        return unit_counts(ctx, cmd);
    }
}
