/* The petitions service's writes: intake, the closed loop, the grid read
 * model and the deadline timer (handlers.h). Every rule comes from
 * petitions.c; this file applies its answers to the store, keeps the indexes
 * and counters in step, and emits one event per change. */
#include "services/petitions/handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/caltime.h"
#include "common/err.h"
#include "common/log.h"

const char *const zph_subscribe[] = {"grid.", NULL};

#define EV_BODY ZHILI__V1__EVENT__BODY_PETITION_CHANGE
#define COUNT_NAME_BYTES 64

/* One write on one petition: who, what, and the record being changed (arena
 * memory, so fields may be replaced with arena strings). */
typedef struct {
    zsvc_ctx_t *ctx;
    const zph_config_t *cfg;
    zps_t t;
    zpet_actor_t actor;
    ProtobufCAllocator alloc;
    Zhili__Petitions__Record *rec;
    int from; /* the state before */
} op_t;

/* The caller's own Idempotency-Key inside the command's request_id. */
static const char *request_key(const Zhili__V1__Command *cmd)
{
    return zbus_request_id_key(cmd->request_id, cmd->actor != NULL ? cmd->actor->id : NULL);
}

static const zph_config_t *config(const zsvc_ctx_t *ctx)
{
    ZASSERT(ctx->user != NULL);
    return ctx->user;
}

static void tables(zsvc_ctx_t *ctx, zps_t *t)
{
    zps_init(t, zsvc_store(ctx->svc));
}

static int fail_err(zsvc_ctx_t *ctx, const zpet_error_t *e)
{
    return zsvc_fail(ctx, e->code, e->field[0] ? e->field : NULL, "%s", e->message);
}

/* ---- counters ----------------------------------------------------------- */

static void count(op_t *op, const char *name, int64_t delta)
{
    zps_count_add(op->ctx->txn, &op->t, name, delta);
}

static void count_unit(op_t *op, const char *what, const char *unit)
{
    char name[COUNT_NAME_BYTES];
    snprintf(name, sizeof name, "%s/%s", what, unit);
    count(op, name, 1);
}

/* Move the petition to `state`, keeping the per-state gauges right. */
static void state_move(op_t *op, int state)
{
    char name[COUNT_NAME_BYTES];
    if (op->rec->state != 0) {
        snprintf(name, sizeof name, "state/%s", zpet_state_name(op->rec->state));
        count(op, name, -1);
    }
    snprintf(name, sizeof name, "state/%s", zpet_state_name(state));
    count(op, name, 1);
    op->rec->state = (Zhili__Petitions__State)state;
}

/* The sign deadline no longer applies (signed, returned, re-routed, merged). */
static void sign_clear(op_t *op)
{
    Zhili__Petitions__Record *r = op->rec;
    if (r->sign_escalated) {
        count(op, "overdue/sign", -1);
        r->sign_escalated = false;
    }
    if (r->sign_deadline_ms != 0) {
        zps_due_del(op->ctx->txn, &op->t, r->sign_deadline_ms, ZPS_DUE_SIGN, r->seq);
    }
}

static void reply_clear(op_t *op)
{
    Zhili__Petitions__Record *r = op->rec;
    if (r->reply_escalated) {
        count(op, "overdue/reply", -1);
        r->reply_escalated = false;
    }
    if (r->reply_deadline_ms != 0) {
        zps_due_del(op->ctx->txn, &op->t, r->reply_deadline_ms, ZPS_DUE_REPLY, r->seq);
    }
}

/* Fresh deadlines from now (an assignment or a reopening), on the timer's list. */
static void deadlines_set(op_t *op)
{
    Zhili__Petitions__Record *r = op->rec;
    int64_t sign, reply;
    zpet_deadlines_for(&op->cfg->deadlines, r->category, r->urgency, op->ctx->now_ms, &sign,
                       &reply);
    r->assigned_ms = op->ctx->now_ms;
    r->sign_deadline_ms = sign;
    r->reply_deadline_ms = reply;
    r->sign_escalated = r->reply_escalated = false;
    r->extended = false;
    zps_due_put(op->ctx->txn, &op->t, sign, ZPS_DUE_SIGN, r->seq);
    zps_due_put(op->ctx->txn, &op->t, reply, ZPS_DUE_REPLY, r->seq);
}

/* ---- events ------------------------------------------------------------- */

static Zhili__Petitions__Change *change_new(op_t *op)
{
    const Zhili__Petitions__Record *r = op->rec;
    zsvc_ctx_t *ctx = op->ctx;
    Zhili__Petitions__Change *c = zsvc_alloc(ctx, sizeof *c);
    zhili__petitions__change__init(c);
    char id[ZPET_ID_BYTES + 1];
    zpet_id_format(r->seq, id);
    c->id = zsvc_strdup(ctx, id);
    c->category = r->category;
    c->urgency = r->urgency;
    c->channel = r->channel;
    c->state = r->state;
    c->from_state = (Zhili__Petitions__State)op->from;
    c->assigned_to = zsvc_strdup(ctx, r->assigned_to);
    c->received_ms = r->received_ms;
    c->sign_deadline_ms = r->sign_deadline_ms;
    c->reply_deadline_ms = r->reply_deadline_ms;
    c->routing = zsvc_strdup(ctx, r->routing);
    c->manual_routing = r->manual_routing;
    return c;
}

static void emit(op_t *op, const char *type, Zhili__Petitions__Change *c)
{
    zsvc_emit(op->ctx, type, op->rec->area, EV_BODY, c);
}

/* The common event of a transition with an optional note. */
static void emit_simple(op_t *op, const char *type, const char *note)
{
    Zhili__Petitions__Change *c = change_new(op);
    c->note = zsvc_strdup(op->ctx, note);
    emit(op, type, c);
}

/* ---- notes -------------------------------------------------------------- */

static int note_check(zsvc_ctx_t *ctx, const char *note, const char *field, bool required)
{
    if (!zpet_text_ok(note, required ? 1 : 0, ZPET_NOTE_BYTES_MAX, true)) {
        return zsvc_fail(ctx, ZE_INVALID, field,
                         "%s must be %s%d bytes of UTF-8 text without "
                         "control characters",
                         field, required ? "1 to " : "at most ", ZPET_NOTE_BYTES_MAX);
    }
    return 0;
}

/* Append a note (kind: progress, urge, return, …); CONFLICT when full. */
static int note_add(op_t *op, const char *kind, const char *text)
{
    Zhili__Petitions__Record *r = op->rec;
    if (r->n_notes >= ZPET_NOTES_MAX) {
        return zsvc_fail(op->ctx, ZE_CONFLICT, NULL,
                         "petition already holds %d notes, the most "
                         "one petition keeps",
                         ZPET_NOTES_MAX);
    }
    Zhili__Petitions__RecordNote *n = zsvc_alloc(op->ctx, sizeof *n);
    zhili__petitions__record_note__init(n);
    n->at_ms = op->ctx->now_ms;
    n->by = zsvc_strdup(op->ctx, op->actor.id);
    n->role = zsvc_strdup(op->ctx, op->actor.role);
    n->kind = zsvc_strdup(op->ctx, kind);
    n->text = zsvc_strdup(op->ctx, text);
    Zhili__Petitions__RecordNote **notes = zsvc_alloc(op->ctx, (r->n_notes + 1) * sizeof *notes);
    if (r->n_notes > 0) {
        memcpy(notes, r->notes, r->n_notes * sizeof *notes);
    }
    notes[r->n_notes] = n;
    r->notes = notes;
    r->n_notes++;
    return 0;
}

/* ---- replies ------------------------------------------------------------ */

static int reply_petition(op_t *op)
{
    op->ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_PETITION;
    op->ctx->reply->petition = zph_view(op->ctx, &op->t, op->rec, &op->actor);
    return ztxn_err(op->ctx->txn);
}

/* Store the changed record and answer with it. */
static int save(op_t *op)
{
    op->rec->updated_ms = op->ctx->now_ms;
    zps_record_put(op->ctx->txn, &op->t, op->rec);
    return reply_petition(op);
}

/* ---- intake ------------------------------------------------------------- */

typedef struct {
    ztxn_t *txn;
    const zps_t *t;
} known_ctx_t;

static bool unit_known(void *arg, const char *code)
{
    known_ctx_t *k = arg;
    return zps_unit_known(k->txn, k->t, code);
}

/* A lat/long: the deepest grid unit whose boundary holds it. */
typedef struct {
    double lat, lon;
    char best[ZPET_AREA_BUF];
    int best_level;
    size_t scanned;
} point_ctx_t;

static int on_point_unit(void *arg, const void *data, size_t len)
{
    point_ctx_t *p = arg;
    if (++p->scanned > ZPET_POINT_SCAN_MAX) {
        return 1;
    }
    Zhili__Grid__Unit *u = zhili__grid__unit__unpack(NULL, len, data);
    if (u == NULL) {
        return 0;
    }
    int level = (int)zarea_level(u->code);
    double *lats = NULL, *lons = NULL;
    if (!u->removed && u->n_boundary >= 3 && level > p->best_level &&
        (lats = malloc(u->n_boundary * sizeof *lats)) != NULL &&
        (lons = malloc(u->n_boundary * sizeof *lons)) != NULL) {
        for (size_t i = 0; i < u->n_boundary; i++) {
            lats[i] = u->boundary[i]->lat;
            lons[i] = u->boundary[i]->long_;
        }
        if (zpet_point_in_polygon(p->lat, p->lon, lats, lons, u->n_boundary)) {
            snprintf(p->best, sizeof p->best, "%s", u->code);
            p->best_level = level;
        }
    }
    free(lats);
    free(lons);
    zhili__grid__unit__free_unpacked(u, NULL);
    return 0;
}

/* Where an intake is and who handles it. */
typedef struct {
    char area[ZPET_AREA_BUF];
    zpet_route_t route;
} placed_t;

static int default_area(const zph_config_t *cfg, const zpet_actor_t *actor, char *out,
                        zpet_error_t *err)
{
    const char *d = cfg->district[0] ? cfg->district : actor->area;
    if (!zarea_valid(d)) {
        err->code = ZE_INVALID;
        snprintf(err->field, sizeof err->field, "area");
        snprintf(err->message, sizeof err->message,
                 "give area (an area code): this installation "
                 "has no default unit (ZHILI_PETITIONS_DISTRICT) for a point or an address alone");
        return ZE_INVALID;
    }
    snprintf(out, ZPET_AREA_BUF, "%s", d);
    return 0;
}

/* Place an intake (read-only): area, point or the district default; then route. */
static int place(zsvc_ctx_t *ctx, const zps_t *t, const zpet_intake_t *in,
                 const zpet_actor_t *actor, placed_t *out, zpet_error_t *err)
{
    const zph_config_t *cfg = config(ctx);
    memset(out, 0, sizeof *out);
    const char *routing = NULL;
    if (in->area[0] != '\0') {
        snprintf(out->area, sizeof out->area, "%s", in->area);
    } else {
        point_ctx_t p = {.lat = in->lat, .lon = in->lon};
        if (in->has_point) {
            zps_unit_scan(ctx->txn, t, &p, on_point_unit);
        }
        if (p.best[0] != '\0') {
            snprintf(out->area, sizeof out->area, "%s", p.best);
            routing = "point";
        } else if (default_area(cfg, actor, out->area, err) != 0) {
            return ZE_INVALID;
        } else {
            snprintf(out->route.unit, sizeof out->route.unit, "%s", out->area);
            out->route.routing = "district_default";
            out->route.manual = true;
        }
        if (!zarea_within(actor->area, out->area)) {
            err->code = ZE_FORBIDDEN;
            snprintf(err->field, sizeof err->field, "area");
            snprintf(err->message, sizeof err->message,
                     "the location resolves to %s, outside "
                     "your scope %s",
                     out->area, actor->area);
            return ZE_FORBIDDEN;
        }
        if (out->route.routing != NULL) {
            return 0;
        }
    }
    known_ctx_t k = {ctx->txn, t};
    zpet_route(&cfg->routing, in->category, out->area, unit_known, &k, &out->route);
    if (routing != NULL && strcmp(out->route.routing, "unit") == 0) {
        out->route.routing = routing;
    }
    return 0;
}

/* The new record, written with every index; events received then assigned. */
static Zhili__Petitions__Record *intake_write(zsvc_ctx_t *ctx, op_t *op, const zpet_intake_t *in,
                                              const placed_t *pl, const char *ticket)
{
    Zhili__Petitions__Record *r = zsvc_alloc(ctx, sizeof *r);
    zhili__petitions__record__init(r);
    Zhili__Petitions__Citizen *cz = zsvc_alloc(ctx, sizeof *cz);
    zhili__petitions__citizen__init(cz);
    cz->name = zsvc_strdup(ctx, in->name);
    cz->phone = zsvc_strdup(ctx, in->phone);
    r->seq = zps_seq_next(ctx->txn);
    r->ticket = zsvc_strdup(ctx, ticket);
    r->category = in->category;
    r->urgency = in->urgency;
    r->channel = in->channel;
    r->content = zsvc_strdup(ctx, in->content);
    r->area = zsvc_strdup(ctx, pl->area);
    r->address = zsvc_strdup(ctx, in->address);
    r->citizen = cz;
    r->creator_id = zsvc_strdup(ctx, op->actor.id);
    r->creator_role = zsvc_strdup(ctx, op->actor.role[0] ? op->actor.role : "qr");
    r->received_ms = ctx->now_ms;
    r->media_url = zsvc_strdup(ctx, in->media_url);
    if (in->has_point) {
        Zhili__Petitions__Point *pt = zsvc_alloc(ctx, sizeof *pt);
        zhili__petitions__point__init(pt);
        pt->lat = in->lat;
        pt->long_ = in->lon;
        r->point_present_case = ZHILI__PETITIONS__RECORD__POINT_PRESENT_POINT;
        r->point = pt;
    }
    op->rec = r;
    op->from = 0;
    state_move(op, ZPET_S_RECEIVED);
    Zhili__Petitions__Change *c = change_new(op);
    Zhili__Petitions__Citizen *masked = zsvc_alloc(ctx, sizeof *masked);
    zhili__petitions__citizen__init(masked);
    masked->name = cz->name;
    masked->phone = zsvc_alloc(ctx, ZPET_PHONE_BYTES_MAX + 1);
    zpet_phone_mask(cz->phone, masked->phone, ZPET_PHONE_BYTES_MAX + 1);
    c->citizen = masked;
    emit(op, "received", c);
    /* Routing: the unit in charge, its inbox and the deadlines. */
    op->from = ZPET_S_RECEIVED;
    r->assigned_to = zsvc_strdup(ctx, pl->route.unit);
    r->routing = zsvc_strdup(ctx, pl->route.routing);
    r->manual_routing = pl->route.manual;
    deadlines_set(op);
    state_move(op, ZPET_S_ASSIGNED);
    r->updated_ms = ctx->now_ms;
    zps_record_put(ctx->txn, &op->t, r);
    zps_ticket_put(ctx->txn, &op->t, ticket, r->seq);
    zps_area_index_put(ctx->txn, &op->t, r->area, r->received_ms, r->seq);
    zps_inbox_put(ctx->txn, &op->t, r->assigned_to, r->seq);
    count(op, "received_total", 1);
    emit_simple(op, "assigned", "");
    return r;
}

/* One intake: the petition already pushed under this ticket, or a new one.
 * Every check comes before the first write, so a refused row changes nothing. */
static int intake(op_t *op, const zpet_intake_t *in, const char *ticket, bool *existing,
                  zpet_error_t *err)
{
    zsvc_ctx_t *ctx = op->ctx;
    uint64_t seq;
    *existing = false;
    if (zps_ticket_get(ctx->txn, &op->t, ticket, &seq) == 0) {
        *existing = true;
        int rc = zps_record_get(ctx->txn, &op->t, seq, &op->alloc, &op->rec);
        if (rc != 0) {
            err->code = ZE_INTERNAL;
            snprintf(err->message, sizeof err->message, "ticket %.60s names a damaged petition",
                     ticket);
            err->field[0] = '\0';
        } else if (strcmp(op->rec->creator_id, op->actor.id) != 0 &&
                   strcmp(op->actor.role, "admin") != 0) {
            /* Another caller's ticket: neither its petition nor a second one. */
            err->code = rc = ZE_CONFLICT;
            snprintf(err->field, sizeof err->field, "ticket");
            snprintf(err->message, sizeof err->message,
                     "ticket %.60s was pushed by another "
                     "caller; hotline ticket ids must be unique",
                     ticket);
        }
        return rc;
    }
    placed_t pl;
    int rc = place(ctx, &op->t, in, &op->actor, &pl, err);
    if (rc != 0) {
        return rc;
    }
    intake_write(ctx, op, in, &pl, ticket);
    return ztxn_err(ctx->txn);
}

static void op_init(op_t *op, zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    memset(op, 0, sizeof *op);
    op->ctx = ctx;
    op->cfg = config(ctx);
    tables(ctx, &op->t);
    op->actor = zph_actor(cmd);
    zph_arena_allocator(ctx, &op->alloc);
}

static int create(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    op_t op;
    op_init(&op, ctx, cmd);
    zpet_intake_t in;
    zpet_error_t err;
    if (zpet_intake_check(cmd->petition_create, &op.actor, &in, &err) != 0) {
        return fail_err(ctx, &err);
    }
    /* The hotline's ticket id is its Idempotency-Key (the request_id without
     * the caller's scope, zbus_request_id_key). */
    const char *ticket = in.ticket[0] != '\0' ? in.ticket : request_key(cmd);
    bool existing;
    if (intake(&op, &in, ticket, &existing, &err) != 0) {
        return ztxn_err(ctx->txn) != 0 ? ztxn_err(ctx->txn) : fail_err(ctx, &err);
    }
    return reply_petition(&op);
}

static int qr_resolve(zsvc_ctx_t *ctx, const zps_t *t, const char *code, char *area)
{
    /* Printed codes are read back in either case; the grid's are lower case. */
    char lower[ZPET_QR_CODE_BYTES_MAX + 1];
    size_t n = strlen(code);
    for (size_t i = 0; i <= n && i <= ZPET_QR_CODE_BYTES_MAX; i++) {
        lower[i] = (char)(code[i] >= 'A' && code[i] <= 'Z' ? code[i] - 'A' + 'a' : code[i]);
    }
    lower[ZPET_QR_CODE_BYTES_MAX] = '\0';
    if (zps_qr_get(ctx->txn, t, lower, area) == 0 || zps_qr_get(ctx->txn, t, code, area) == 0) {
        return 0;
    }
    zarea_level_t level = zarea_level(code);
    if (level == ZAREA_GRID || level == ZAREA_BUILDING) {
        snprintf(area, ZPET_AREA_BUF, "%s", code);
        return 0;
    }
    return zsvc_fail(ctx, ZE_NOT_FOUND, "code",
                     "no grid or building has the QR code \"%s\"; "
                     "scan the code again, or call 12345",
                     code);
}

static int qr_create(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    op_t op;
    op_init(&op, ctx, cmd);
    /* A scan is anonymous, whatever the command carries. */
    op.actor = (zpet_actor_t){"", "", ""};
    zpet_intake_t in;
    zpet_error_t err;
    if (zpet_qr_intake_check(cmd->petition_qr_create, &in, &err) != 0) {
        return fail_err(ctx, &err);
    }
    char area[ZPET_AREA_BUF];
    int rc = qr_resolve(ctx, &op.t, cmd->petition_qr_create->code, area);
    if (rc != 0) {
        return rc;
    }
    in.area = area;
    bool existing;
    if (intake(&op, &in, cmd->request_id, &existing, &err) != 0) {
        return ztxn_err(ctx->txn) != 0 ? ztxn_err(ctx->txn) : fail_err(ctx, &err);
    }
    return reply_petition(&op);
}

static Zhili__Petitions__Receipt *receipt(zsvc_ctx_t *ctx, const Zhili__Petitions__Record *r)
{
    Zhili__Petitions__Receipt *rc = zsvc_alloc(ctx, sizeof *rc);
    zhili__petitions__receipt__init(rc);
    char id[ZPET_ID_BYTES + 1];
    zpet_id_format(r->seq, id);
    rc->id = zsvc_strdup(ctx, id);
    rc->ticket = zsvc_strdup(ctx, r->ticket);
    rc->state = r->state;
    rc->assigned_to = zsvc_strdup(ctx, r->assigned_to);
    rc->sign_deadline = zph_time(ctx, r->sign_deadline_ms);
    rc->reply_deadline = zph_time(ctx, r->reply_deadline_ms);
    return rc;
}

static void batch_reject(zsvc_ctx_t *ctx, Zhili__Petitions__BatchResult *br, size_t index,
                         const zpet_error_t *err)
{
    Zhili__Petitions__BatchRejected *x = zsvc_alloc(ctx, sizeof *x);
    zhili__petitions__batch_rejected__init(x);
    x->index = (uint32_t)index;
    x->status = zsvc_strdup(ctx, zerr_name(err->code));
    x->field = zsvc_strdup(ctx, err->field);
    x->message = zsvc_strdup(ctx, err->message);
    br->rejected[br->n_rejected++] = x;
}

static int batch_row(op_t *op, const Zhili__Petitions__Create *row, size_t index,
                     Zhili__Petitions__BatchResult *br)
{
    zsvc_ctx_t *ctx = op->ctx;
    zpet_intake_t in;
    zpet_error_t err;
    if (zpet_intake_check(row, &op->actor, &in, &err) != 0) {
        batch_reject(ctx, br, index, &err);
        return 0;
    }
    char fallback[ZPET_TICKET_BYTES_MAX + 16];
    snprintf(fallback, sizeof fallback, "%s/%zu", request_key(ctx->cmd), index);
    const char *ticket = in.ticket[0] != '\0' ? in.ticket : fallback;
    bool existing;
    int rc = intake(op, &in, ticket, &existing, &err);
    if (ztxn_err(ctx->txn) != 0) {
        return ztxn_err(ctx->txn);
    }
    if (rc != 0) {
        batch_reject(ctx, br, index, &err);
        return 0;
    }
    Zhili__Petitions__BatchAccepted *a = zsvc_alloc(ctx, sizeof *a);
    zhili__petitions__batch_accepted__init(a);
    a->index = (uint32_t)index;
    a->petition = receipt(ctx, op->rec);
    a->existing = existing;
    br->accepted[br->n_accepted++] = a;
    return 0;
}

static int batch_create(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Petitions__BatchCreate *b = cmd->petition_batch_create;
    if (b->n_petitions == 0 || b->n_petitions > ZPET_BATCH_ROWS_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "petitions", "a batch holds 1 to %d petitions, got %zu",
                         ZPET_BATCH_ROWS_MAX, b->n_petitions);
    }
    op_t op;
    op_init(&op, ctx, cmd);
    if (zpet_channel_default(op.actor.role) == 0) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL, "role %s may not file petitions",
                         op.actor.role[0] ? op.actor.role : "(none)");
    }
    Zhili__Petitions__BatchResult *br = zsvc_alloc(ctx, sizeof *br);
    zhili__petitions__batch_result__init(br);
    br->accepted = zsvc_alloc(ctx, b->n_petitions * sizeof *br->accepted);
    br->rejected = zsvc_alloc(ctx, b->n_petitions * sizeof *br->rejected);
    for (size_t i = 0; i < b->n_petitions; i++) {
        int rc = batch_row(&op, b->petitions[i], i, br);
        if (rc != 0) {
            return rc;
        }
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_PETITION_BATCH;
    ctx->reply->petition_batch = br;
    return ztxn_err(ctx->txn);
}

/* ---- the closed loop ---------------------------------------------------- */

/* Load, authorize, check the state. 0, or the reply's error. */
static int op_begin(op_t *op, zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd, const char *id,
                    zpet_action_t action)
{
    op_init(op, ctx, cmd);
    int rc = zph_load(ctx, &op->t, id, "id", &op->alloc, &op->rec);
    if (rc != 0) {
        return rc;
    }
    op->from = op->rec->state;
    zpet_subject_t subject = zph_subject(op->rec);
    char why[256];
    if (zpet_may(action, &op->actor, &subject, why, sizeof why) != 0) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL, "%s", why);
    }
    if (!zpet_allowed(action, op->rec->state)) {
        char from[128];
        zpet_allowed_from(action, from, sizeof from);
        return zsvc_fail(ctx, ZE_CONFLICT, NULL,
                         "petition %s is %s: %s is allowed only when it "
                         "is %s",
                         id, zpet_state_name(op->rec->state), zpet_action_name(action), from);
    }
    return 0;
}

static int sign(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    op_t op;
    int rc = op_begin(&op, ctx, cmd, cmd->petition_sign->id, ZPET_ACT_SIGN);
    if (rc != 0) {
        return rc;
    }
    Zhili__Petitions__Record *r = op.rec;
    sign_clear(&op);
    state_move(&op, ZPET_S_SIGNED);
    r->signed_ms = ctx->now_ms;
    Zhili__Petitions__Change *c = change_new(&op);
    c->on_time = r->signed_ms <= r->sign_deadline_ms;
    emit(&op, "signed", c);
    return save(&op);
}

static int progress(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Petitions__Progress *p = cmd->petition_progress;
    op_t op;
    int rc = op_begin(&op, ctx, cmd, p->id, ZPET_ACT_PROGRESS);
    if (rc != 0 || (rc = note_check(ctx, p->note, "note", true)) != 0 ||
        (rc = note_add(&op, "progress", p->note)) != 0) {
        return rc;
    }
    if (op.rec->state != ZPET_S_IN_PROGRESS) {
        state_move(&op, ZPET_S_IN_PROGRESS);
    }
    emit_simple(&op, "progress", p->note);
    return save(&op);
}

static int reply(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Petitions__ReplyText *p = cmd->petition_reply;
    op_t op;
    int rc = op_begin(&op, ctx, cmd, p->id, ZPET_ACT_REPLY);
    if (rc != 0) {
        return rc;
    }
    if (!zpet_text_ok(p->text, 1, ZPET_REPLY_BYTES_MAX, true)) {
        return zsvc_fail(ctx, ZE_INVALID, "text",
                         "text (the answer to the citizen) must be 1 to "
                         "%d bytes of UTF-8 text",
                         ZPET_REPLY_BYTES_MAX);
    }
    Zhili__Petitions__Record *r = op.rec;
    sign_clear(&op);
    reply_clear(&op);
    zps_inbox_del(ctx->txn, &op.t, r->assigned_to, r->seq);
    state_move(&op, ZPET_S_REPLIED);
    r->replied_ms = ctx->now_ms;
    r->reply = zsvc_strdup(ctx, p->text);
    Zhili__Petitions__Change *c = change_new(&op);
    c->on_time = r->replied_ms <= r->reply_deadline_ms;
    c->note = r->reply;
    emit(&op, "replied", c);
    return save(&op);
}

/* 不满意 sends it back to the same unit (重办) with fresh deadlines. */
static void reopen(op_t *op)
{
    Zhili__Petitions__Record *r = op->rec;
    r->reopens++;
    count(op, "reopened_total", 1);
    count_unit(op, "reopens", r->assigned_to);
    op->from = r->state;
    state_move(op, ZPET_S_REOPENED);
    deadlines_set(op);
    zps_inbox_put(op->ctx->txn, &op->t, r->assigned_to, r->seq);
    Zhili__Petitions__Change *c = change_new(op);
    c->count = r->reopens;
    emit(op, "reopened", c);
}

static int evaluate(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Petitions__Evaluate *p = cmd->petition_evaluate;
    op_t op;
    int rc = op_begin(&op, ctx, cmd, p->id, ZPET_ACT_EVALUATE);
    if (rc != 0) {
        return rc;
    }
    if (p->solved_present_case != ZHILI__PETITIONS__EVALUATE__SOLVED_PRESENT_SOLVED) {
        return zsvc_fail(ctx, ZE_INVALID, "solved", "solved (是否解决) is required: true or false");
    }
    int sat = zpet_satisfaction_parse(p->satisfaction);
    if (sat == 0) {
        return zsvc_fail(ctx, ZE_INVALID, "satisfaction",
                         "satisfaction must be satisfied (满意), "
                         "basically_satisfied (基本满意) or dissatisfied (不满意)");
    }
    if ((rc = note_check(ctx, p->note, "note", false)) != 0 ||
        (p->note[0] != '\0' && (rc = note_add(&op, "evaluate", p->note)) != 0)) {
        return rc;
    }
    Zhili__Petitions__Record *r = op.rec;
    state_move(&op, ZPET_S_EVALUATED);
    r->evaluated_ms = ctx->now_ms;
    r->solved = p->solved;
    r->satisfaction = (Zhili__Petitions__Satisfaction)sat;
    Zhili__Petitions__Change *c = change_new(&op);
    c->solved = r->solved;
    c->satisfaction = r->satisfaction;
    c->note = zsvc_strdup(ctx, p->note);
    emit(&op, "evaluated", c);
    if (sat == ZPET_SAT_DISSATISFIED && r->reopens < ZPET_REOPENS_MAX) {
        reopen(&op);
    }
    return save(&op);
}

static int archive(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Petitions__Archive *p = cmd->petition_archive;
    op_t op;
    int rc = op_begin(&op, ctx, cmd, p->id, ZPET_ACT_ARCHIVE);
    if (rc != 0 || (rc = note_check(ctx, p->note, "note", false)) != 0 ||
        (p->note[0] != '\0' && (rc = note_add(&op, "archive", p->note)) != 0)) {
        return rc;
    }
    state_move(&op, ZPET_S_ARCHIVED);
    op.rec->archived_ms = ctx->now_ms;
    emit_simple(&op, "archived", p->note);
    return save(&op);
}

static int return_(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Petitions__Return *p = cmd->petition_return;
    op_t op;
    int rc = op_begin(&op, ctx, cmd, p->id, ZPET_ACT_RETURN);
    if (rc != 0) {
        return rc;
    }
    int reason = zpet_return_reason_parse(p->reason);
    if (reason == 0) {
        return zsvc_fail(
            ctx, ZE_INVALID, "reason",
            "reason must be not_in_area (非本辖区), "
            "not_our_duty (非本单位职责), insufficient_info (诉求信息不全) or other (其他)");
    }
    if ((rc = note_check(ctx, p->note, "note",
                         reason == ZHILI__PETITIONS__RETURN_REASON__RETURN_REASON_OTHER)) != 0 ||
        (rc = note_add(&op, "return", p->note)) != 0) {
        return rc;
    }
    Zhili__Petitions__Record *r = op.rec;
    sign_clear(&op);
    reply_clear(&op);
    char back[ZPET_AREA_BUF];
    zpet_supervising_unit(r->assigned_to, back);
    zps_inbox_del(ctx->txn, &op.t, r->assigned_to, r->seq);
    zps_inbox_put(ctx->txn, &op.t, back, r->seq);
    r->returned_by = r->assigned_to;
    r->assigned_to = zsvc_strdup(ctx, back);
    r->returns++;
    r->return_reason = (Zhili__Petitions__ReturnReason)reason;
    count(&op, "returned_total", 1);
    count_unit(&op, "returns", r->returned_by);
    state_move(&op, ZPET_S_RETURNED);
    Zhili__Petitions__Change *c = change_new(&op);
    c->return_reason = r->return_reason;
    c->note = zsvc_strdup(ctx, p->note);
    c->returned_by = zsvc_strdup(ctx, r->returned_by);
    c->count = r->returns;
    emit(&op, "returned", c);
    return save(&op);
}

static int assign(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Petitions__Assign *p = cmd->petition_assign;
    op_t op;
    int rc = op_begin(&op, ctx, cmd, p->id, ZPET_ACT_ASSIGN);
    if (rc != 0 || (rc = note_check(ctx, p->note, "note", false)) != 0) {
        return rc;
    }
    if (!zarea_valid(p->unit)) {
        return zsvc_fail(ctx, ZE_INVALID, "unit",
                         "unit must be an area code of 6, 9, 12, 15 or 18 "
                         "digits");
    }
    if (!zarea_within(op.actor.area, p->unit)) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "unit", "unit %s is outside your scope %s", p->unit,
                         op.actor.area);
    }
    Zhili__Petitions__Record *r = op.rec;
    if (r->state == ZPET_S_ASSIGNED && strcmp(r->assigned_to, p->unit) == 0) {
        return zsvc_fail(ctx, ZE_CONFLICT, "unit", "petition is already assigned to %s", p->unit);
    }
    if (p->note[0] != '\0' && (rc = note_add(&op, "assign", p->note)) != 0) {
        return rc;
    }
    sign_clear(&op);
    reply_clear(&op);
    zps_inbox_del(ctx->txn, &op.t, r->assigned_to, r->seq);
    r->assigned_to = zsvc_strdup(ctx, p->unit);
    r->routing = "manual";
    r->manual_routing = false;
    zps_inbox_put(ctx->txn, &op.t, r->assigned_to, r->seq);
    deadlines_set(&op);
    state_move(&op, ZPET_S_ASSIGNED);
    emit_simple(&op, "assigned", p->note);
    return save(&op);
}

static int merge_primary(op_t *op, const char *into, Zhili__Petitions__Record **primary)
{
    zsvc_ctx_t *ctx = op->ctx;
    int rc = zph_load(ctx, &op->t, into, "into", &op->alloc, primary);
    if (rc != 0) {
        return rc;
    }
    Zhili__Petitions__Record *p = *primary;
    zpet_subject_t s = zph_subject(p);
    char why[256];
    if (p->seq == op->rec->seq) {
        return zsvc_fail(ctx, ZE_INVALID, "into", "a petition cannot be merged into itself");
    }
    if (zpet_may(ZPET_ACT_MERGE, &op->actor, &s, why, sizeof why) != 0) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "into", "%s", why);
    }
    if (p->state == ZPET_S_ARCHIVED) {
        return zsvc_fail(ctx, ZE_CONFLICT, "into",
                         "petition %s is archived%s: merge into an open "
                         "one",
                         into, p->merged_into[0] ? " (itself a merged duplicate)" : "");
    }
    if (p->n_duplicates >= ZPET_DUPLICATES_MAX) {
        return zsvc_fail(ctx, ZE_CONFLICT, "into",
                         "petition %s already has %d duplicates, the "
                         "most one petition keeps",
                         into, ZPET_DUPLICATES_MAX);
    }
    return 0;
}

static int merge(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Petitions__Merge *p = cmd->petition_merge;
    op_t op;
    Zhili__Petitions__Record *primary = NULL;
    int rc = op_begin(&op, ctx, cmd, p->id, ZPET_ACT_MERGE);
    if (rc != 0 || (rc = merge_primary(&op, p->into, &primary)) != 0) {
        return rc;
    }
    Zhili__Petitions__Record *r = op.rec;
    sign_clear(&op);
    reply_clear(&op);
    zps_inbox_del(ctx->txn, &op.t, r->assigned_to, r->seq);
    r->merged_into = zsvc_strdup(ctx, p->into);
    r->archived_ms = ctx->now_ms;
    state_move(&op, ZPET_S_ARCHIVED);
    char **dups = zsvc_alloc(ctx, (primary->n_duplicates + 1) * sizeof *dups);
    if (primary->n_duplicates > 0) {
        memcpy(dups, primary->duplicates, primary->n_duplicates * sizeof *dups);
    }
    dups[primary->n_duplicates] = zsvc_strdup(ctx, p->id);
    primary->duplicates = dups;
    primary->n_duplicates++;
    primary->updated_ms = ctx->now_ms;
    zps_record_put(ctx->txn, &op.t, primary);
    count(&op, "merged_total", 1);
    Zhili__Petitions__Change *c = change_new(&op);
    c->merged_into = r->merged_into;
    emit(&op, "merged", c);
    return save(&op);
}

static int urge(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Petitions__Urge *p = cmd->petition_urge;
    op_t op;
    int rc = op_begin(&op, ctx, cmd, p->id, ZPET_ACT_URGE);
    if (rc != 0 || (rc = note_check(ctx, p->note, "note", false)) != 0 ||
        (rc = note_add(&op, "urge", p->note[0] ? p->note : "催办")) != 0) {
        return rc;
    }
    op.rec->urges++;
    count(&op, "urged_total", 1);
    Zhili__Petitions__Change *c = change_new(&op);
    c->note = zsvc_strdup(ctx, p->note);
    c->count = op.rec->urges;
    emit(&op, "urged", c);
    return save(&op);
}

static int extend(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Petitions__Extend *p = cmd->petition_extend;
    op_t op;
    int rc = op_begin(&op, ctx, cmd, p->id, ZPET_ACT_EXTEND);
    if (rc != 0 || (rc = note_check(ctx, p->note, "note", false)) != 0) {
        return rc;
    }
    Zhili__Petitions__Record *r = op.rec;
    char at[ZTIME_RFC3339_BYTES];
    ztime_format(r->reply_deadline_ms, at);
    if (r->extended) {
        return zsvc_fail(ctx, ZE_CONFLICT, NULL,
                         "petition %s was already extended (reply by %s); "
                         "an extension is granted once",
                         p->id, at);
    }
    if (ctx->now_ms >= r->reply_deadline_ms) {
        return zsvc_fail(ctx, ZE_CONFLICT, NULL,
                         "the reply deadline %s has passed: an extension "
                         "must be approved before the deadline",
                         at);
    }
    int64_t extended = r->assigned_ms + op.cfg->deadlines.extension_ms;
    if (extended <= r->reply_deadline_ms) {
        return zsvc_fail(ctx, ZE_CONFLICT, NULL,
                         "the extension (%lld ms from assignment) would not "
                         "move the reply deadline %s",
                         (long long)op.cfg->deadlines.extension_ms, at);
    }
    if (p->note[0] != '\0' && (rc = note_add(&op, "extend", p->note)) != 0) {
        return rc;
    }
    reply_clear(&op);
    r->reply_deadline_ms = extended;
    r->extended = true;
    zps_due_put(ctx->txn, &op.t, extended, ZPS_DUE_REPLY, r->seq);
    count(&op, "extended_total", 1);
    emit_simple(&op, "extended", p->note);
    return save(&op);
}

int zph_on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_PETITION_CREATE:
        return create(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_BATCH_CREATE:
        return batch_create(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_QR_CREATE:
        return qr_create(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_ASSIGN:
        return assign(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_SIGN:
        return sign(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_PROGRESS:
        return progress(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_REPLY:
        return reply(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_EVALUATE:
        return evaluate(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_ARCHIVE:
        return archive(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_RETURN:
        return return_(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_MERGE:
        return merge(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_URGE:
        return urge(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_PETITION_EXTEND:
        return extend(ctx, cmd);
    default:
        return zsvc_fail(ctx, ZE_INVALID, "body",
                         "the petitions service takes petition_* "
                         "commands (docs/petitions.md)");
    }
}

/* ---- the grid read model ------------------------------------------------ */

static void unit_forget(zsvc_ctx_t *ctx, const zps_t *t, const char *code)
{
    Zhili__Grid__Unit *old = NULL;
    if (zps_unit_get(ctx->txn, t, code, &old) != 0) {
        return;
    }
    if (old->qr[0] != '\0') {
        zps_qr_del(ctx->txn, t, old->qr);
    }
    zhili__grid__unit__free_unpacked(old, NULL);
    zps_unit_del(ctx->txn, t, code);
    zps_count_add(ctx->txn, t, "units", -1);
}

int zph_on_event(zsvc_ctx_t *ctx, const Zhili__V1__Event *ev)
{
    bool upsert = strcmp(ev->type, "unit_upserted") == 0;
    bool removal = strcmp(ev->type, "unit_removed") == 0;
    if ((!upsert && !removal) || ev->body_case != ZHILI__V1__EVENT__BODY_GRID_UNIT) {
        return 0; /* other grid events are not the read model's business */
    }
    const Zhili__Grid__Unit *u = ev->grid_unit;
    if (!zarea_valid(u->code) || strlen(u->qr) > ZPET_QR_CODE_BYTES_MAX) {
        /* Not a routing target (a party-member household, say): nothing to keep. */
        zlog(ZLOG_DEBUG, "grid_unit_skipped", "code", u->code, NULL);
        return 0;
    }
    zps_t t;
    tables(ctx, &t);
    unit_forget(ctx, &t, u->code);
    if (removal || u->removed) {
        return ztxn_err(ctx->txn);
    }
    zps_unit_put(ctx->txn, &t, u);
    if (u->qr[0] != '\0') {
        zps_qr_put(ctx->txn, &t, u->qr, u->code);
    }
    zps_count_add(ctx->txn, &t, "units", 1);
    return ztxn_err(ctx->txn);
}

/* ---- deadlines: the timer ------------------------------------------------ */

typedef struct {
    int64_t deadline_ms;
    char kind;
    uint64_t seq;
} due_t;

typedef struct {
    due_t *rows;
    size_t count;
} due_list_t;

static int on_due(void *arg, int64_t deadline_ms, char kind, uint64_t seq)
{
    due_list_t *l = arg;
    if (l->count == ZPET_TICK_DUE_MAX) {
        return 1;
    }
    l->rows[l->count++] = (due_t){deadline_ms, kind, seq};
    return 0;
}

/* One breach, escalated to supervision (两办督查) once: the due row goes in
 * the same transaction as the event, and the record remembers it. */
static void escalate(op_t *op, const due_t *d)
{
    Zhili__Petitions__Record *r = op->rec;
    bool sign = d->kind == ZPS_DUE_SIGN;
    bool live = sign ? zpet_sign_pending(r->state) && r->sign_deadline_ms == d->deadline_ms &&
                           !r->sign_escalated
                     : zpet_reply_pending(r->state) && r->reply_deadline_ms == d->deadline_ms &&
                           !r->reply_escalated;
    if (!live) {
        return; /* a stale row: the petition moved on before the deadline */
    }
    if (sign) {
        r->sign_escalated = true;
    } else {
        r->reply_escalated = true;
    }
    count(op, sign ? "overdue/sign" : "overdue/reply", 1);
    count(op, sign ? "escalations/sign" : "escalations/reply", 1);
    zps_record_put(op->ctx->txn, &op->t, r);
    op->from = r->state;
    Zhili__Petitions__Change *c = change_new(op);
    char district[ZPET_AREA_BUF];
    zarea_at_level(r->area, ZAREA_DISTRICT, district);
    c->escalated_to = zsvc_strdup(op->ctx, district);
    c->deadline_ms = d->deadline_ms;
    emit(op, sign ? "overdue_sign" : "overdue_reply", c);
}

int zph_on_tick(zsvc_ctx_t *ctx)
{
    op_t op;
    op_init(&op, ctx, NULL);
    due_t *rows = zsvc_alloc(ctx, ZPET_TICK_DUE_MAX * sizeof *rows);
    due_list_t list = {rows, 0};
    /* Collected first: the rows are deleted as they are handled. */
    int rc = zps_due_scan(ctx->txn, &op.t, ctx->now_ms, &list, on_due);
    for (size_t i = 0; rc == 0 && i < list.count; i++) {
        const due_t *d = &rows[i];
        zps_due_del(ctx->txn, &op.t, d->deadline_ms, d->kind, d->seq);
        if (zps_record_get(ctx->txn, &op.t, d->seq, &op.alloc, &op.rec) == 0) {
            escalate(&op, d);
        }
        rc = ztxn_err(ctx->txn);
    }
    return rc;
}

/* ---- figures ------------------------------------------------------------ */

int zph_on_stats(zsvc_ctx_t *ctx)
{
    zps_t t;
    tables(ctx, &t);
    char labels[64];
    for (int s = 1; s < ZPET_STATES; s++) {
        char name[COUNT_NAME_BYTES];
        snprintf(name, sizeof name, "state/%s", zpet_state_name(s));
        snprintf(labels, sizeof labels, "state=\"%s\"", zpet_state_name(s));
        zsvc_stat_add(ctx, "petitions", zps_count_get(ctx->txn, &t, name), labels);
    }
    static const char *const kinds[] = {"sign", "reply"};
    for (size_t i = 0; i < ZARRAY_LEN(kinds); i++) {
        char name[COUNT_NAME_BYTES];
        snprintf(labels, sizeof labels, "kind=\"%s\"", kinds[i]);
        snprintf(name, sizeof name, "overdue/%s", kinds[i]);
        zsvc_stat_add(ctx, "petitions_overdue", zps_count_get(ctx->txn, &t, name), labels);
        snprintf(name, sizeof name, "escalations/%s", kinds[i]);
        zsvc_stat_add(ctx, "petitions_escalations_total", zps_count_get(ctx->txn, &t, name),
                      labels);
    }
    static const char *const totals[] = {"received_total", "returned_total", "reopened_total",
                                         "merged_total",   "urged_total",    "extended_total"};
    for (size_t i = 0; i < ZARRAY_LEN(totals); i++) {
        char name[COUNT_NAME_BYTES];
        snprintf(name, sizeof name, "petitions_%s", totals[i]);
        zsvc_stat_add(ctx, name, zps_count_get(ctx->txn, &t, totals[i]), "");
    }
    zsvc_stat_add(ctx, "petitions_grid_units", zps_count_get(ctx->txn, &t, "units"), "");
    return 0;
}
