/* handlers_cases: household visits (入户走访), disputes (矛盾纠纷) in their
 * closed loop, key persons (重点人员) with sealed personal fields, reveal
 * grants and the missed-visit timer (handlers.h, docs/grid.md). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "services/grid/handlers.h"

/* ---- shared ------------------------------------------------------------------------------- */

/* An id from a path or body: positive. */
static int id_check(zsvc_ctx_t *ctx, const char *cmd, int64_t id)
{
    if (id <= 0) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "id"),
                         "id must be a positive integer");
    }
    return 0;
}

static int vocabulary(zsvc_ctx_t *ctx, const char *cmd, const char *field, const char *value,
                      const char *const *list, bool required)
{
    char words[200];
    if ((!required && value[0] == '\0') || zgrid_one_of(list, value)) {
        return 0;
    }
    return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, field), "%s must be %s%s", field,
                     zgrid_list_text(list, words, sizeof words), required ? "" : " (or empty)");
}

static int text(zsvc_ctx_t *ctx, const char *cmd, const char *field, const char *s,
                size_t max_bytes, bool required)
{
    zgrid_err_t err;
    if (zgrid_text_check(s, max_bytes, required, field, &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    return 0;
}

/* The row of `id` in `table` (8-byte big-endian key). */
static int row_by_id(zsvc_ctx_t *ctx, const char *table, int64_t id,
                     const ProtobufCMessageDescriptor *desc, void **out)
{
    uint8_t key[8];
    return zgrid_row_get(ctx, table, key, zgrid_key_id(key, id), desc, out);
}

static void row_put_id(zsvc_ctx_t *ctx, const char *table, int64_t id, const ProtobufCMessage *m)
{
    uint8_t key[8];
    zgrid_row_put(ctx, table, key, zgrid_key_id(key, id), m);
}

/* ---- key-person records ------------------------------------------------------------------- */

static Zhili__Grid__KeyPersonRecord *kp_load(zsvc_ctx_t *ctx, int64_t id)
{
    void *row = NULL;
    if (id <= 0 ||
        row_by_id(ctx, "keypersons", id, &zhili__grid__key_person_record__descriptor, &row) != 0 ||
        ((Zhili__Grid__KeyPersonRecord *)row)->person == NULL) {
        return NULL;
    }
    return row;
}

static void kp_due_move(zsvc_ctx_t *ctx, int64_t id, int64_t old_due, int64_t new_due)
{
    uint8_t key[16];
    if (old_due > 0) {
        zgrid_index_del(ctx, "kp_due", key, zgrid_key_due(key, old_due, id));
    }
    if (new_due > 0) {
        zgrid_index_put(ctx, "kp_due", key, zgrid_key_due(key, new_due, id));
    }
}

static int64_t interval_ms(const Zhili__Grid__KeyPerson *kp)
{
    return kp->visit_interval_days * ZGRID_DAY_MS;
}

typedef struct {
    zsvc_ctx_t *ctx;
    const char *responsible; /* find a record with this responsible member */
    int64_t found;
} kp_scan_t;

static int on_kp_area(void *arg, zval_t key, zval_t val)
{
    (void)val;
    kp_scan_t *s = arg;
    int64_t id = zgrid_key_tail_num(key);
    Zhili__Grid__KeyPersonRecord *r = kp_load(s->ctx, id);
    if (r == NULL || r->person->removed) {
        return 0;
    }
    if (s->responsible == NULL || strcmp(r->person->responsible, s->responsible) == 0) {
        s->found = id;
        return 1;
    }
    return 0;
}

bool zgrid_cases_hold_area(zsvc_ctx_t *ctx, const char *area)
{
    kp_scan_t s = {ctx, NULL, 0};
    if (strlen(area) > ZAREA_BYTES_MAX - 3) {
        return false; /* key persons are kept at grid level, never a building */
    }
    ztxn_scan(ctx->txn, zsvc_table(ctx, "kp_area"), area, strlen(area), NULL, 0, &s, on_kp_area);
    return s.found != 0;
}

int64_t zgrid_cases_responsible(zsvc_ctx_t *ctx, const char *grid, const char *id)
{
    kp_scan_t s = {ctx, id, 0};
    if (grid[0] != '\0') {
        ztxn_scan(ctx->txn, zsvc_table(ctx, "kp_area"), grid, strlen(grid), NULL, 0, &s,
                  on_kp_area);
    }
    return s.found;
}

/* ---- household visits (入户走访) ------------------------------------------------------------ */

static int hazards_check(zsvc_ctx_t *ctx, const char *cmd, const Zhili__Grid__VisitRecord *in)
{
    if (in->n_hazards > ZGRID_HAZARDS_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "hazards"),
                         "hazards lists %zu; at most %d", in->n_hazards, ZGRID_HAZARDS_MAX);
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < in->n_hazards; i++) {
        const Zhili__Grid__Hazard *h = in->hazards[i];
        rc = vocabulary(ctx, cmd, "hazards.kind", h->kind, zgrid_hazard_kinds, true);
        if (rc == 0) {
            rc = text(ctx, cmd, "hazards.description", h->description, ZGRID_NOTE_BYTES_MAX, false);
        }
    }
    return rc;
}

/* Where the visit happened: a household, or a key person (their grid). */
static int visit_target(zsvc_ctx_t *ctx, const char *cmd, const Zhili__Grid__VisitRecord *in,
                        Zhili__Grid__KeyPersonRecord **kp, const char **area)
{
    *kp = NULL;
    if (in->keyperson != 0) {
        if (in->room[0] != '\0' || in->building[0] != '\0') {
            return zsvc_fail(ctx, ZE_INVALID,
                             zgrid_field(ctx, cmd, in->room[0] ? "room" : "building"),
                             "leave building and room empty for a key-person visit: the "
                             "address is kept encrypted in the key person's record");
        }
        *kp = kp_load(ctx, in->keyperson);
        if (*kp == NULL || (*kp)->person->removed) {
            return ztxn_err(ctx->txn)
                       ? ztxn_err(ctx->txn)
                       : zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "keyperson"),
                                   "keyperson: no key person %lld is under "
                                   "management",
                                   (long long)in->keyperson);
        }
        *area = (*kp)->person->area;
        return 0;
    }
    zgrid_err_t err;
    if (zgrid_area_check(in->building, ZAREA_BUILDING, "building", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    int rc = text(ctx, cmd, "room", in->room, ZGRID_ROOM_BYTES_MAX, true);
    *area = in->building;
    return rc != 0 ? rc : zgrid_unit_required(ctx, cmd, "building", in->building);
}

static int visit_check(zsvc_ctx_t *ctx, const char *cmd, const Zhili__Grid__VisitRecord *in,
                       Zhili__Grid__KeyPersonRecord **kp, const char **area, int64_t *when)
{
    zgrid_err_t err;
    if (zgrid_id_check(in->visitor, "visitor", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    *when = in->visited_ms != 0 ? in->visited_ms : ctx->now_ms;
    if (*when < ZGRID_TIME_MIN_MS || *when > ctx->now_ms + ZGRID_FUTURE_SLACK_MS) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "visited_ms"),
                         "visited_ms must be a time since 2000 and not in the future (ms since "
                         "the epoch; 0 = now)");
    }
    int rc = text(ctx, cmd, "findings", in->findings, ZGRID_TEXT_BYTES_MAX, false);
    if (rc != 0 || (rc = hazards_check(ctx, cmd, in)) != 0 ||
        (rc = visit_target(ctx, cmd, in, kp, area)) != 0 ||
        (rc = zgrid_scope(ctx, cmd, *kp ? "keyperson" : "building", *area)) != 0) {
        return rc;
    }
    Zhili__Grid__Person *visitor = zgrid_person_load(ctx, in->visitor);
    if (visitor == NULL) {
        return ztxn_err(ctx->txn) ? ztxn_err(ctx->txn)
                                  : zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "visitor"),
                                              "visitor: no person %s is registered", in->visitor);
    }
    if (!zarea_within(visitor->area, *area)) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "visitor"),
                         "visitor: %s serves %s, which does not include %s", visitor->id,
                         visitor->area, *area);
    }
    return 0;
}

/* A key person's visit moves the next due time (never backwards). */
static void kp_visited(zsvc_ctx_t *ctx, Zhili__Grid__KeyPersonRecord *r, int64_t when)
{
    Zhili__Grid__KeyPerson *kp = r->person;
    if (when <= kp->last_visit_ms) {
        return;
    }
    int64_t due = zgrid_due_after_visit(when, interval_ms(kp), r->raised_until_ms);
    kp_due_move(ctx, kp->id, kp->next_due_ms, due);
    kp->last_visit_ms = when;
    kp->next_due_ms = due;
    kp->overdue = false;
    kp->updated_ms = ctx->now_ms;
    row_put_id(ctx, "keypersons", kp->id, &r->base);
}

static int visit_record(zsvc_ctx_t *ctx, const Zhili__Grid__VisitRecord *in)
{
    const char *cmd = "grid_visit_record";
    Zhili__Grid__KeyPersonRecord *kp = NULL;
    const char *area = NULL;
    int64_t when = 0;
    int rc = visit_check(ctx, cmd, in, &kp, &area, &when);
    if (rc != 0) {
        return rc;
    }
    Zhili__Grid__Visit *v = zsvc_alloc(ctx, sizeof *v);
    zhili__grid__visit__init(v);
    v->id = zgrid_next_id(ctx, "visit");
    v->visitor = in->visitor;
    v->building = in->building;
    v->room = in->room;
    v->grid = (char *)zgrid_grid_of(ctx, area);
    v->visited_ms = when;
    v->findings = in->findings;
    v->n_hazards = in->n_hazards;
    v->hazards = in->hazards;
    v->keyperson = in->keyperson;
    v->police_grids = zgrid_police_grids_of(ctx, v->grid, &v->n_police_grids);
    v->recorded_ms = ctx->now_ms;
    row_put_id(ctx, "visits", v->id, &v->base);
    uint8_t key[ZGRID_KEY_MAX];
    zgrid_index_put(ctx, "visits_area", key, zgrid_key_grid_time(key, v->grid, when, v->id));
    if (kp != NULL) {
        kp_visited(ctx, kp, when);
    }
    /* The findings stay out of the event: they may describe the household. */
    Zhili__Grid__Visit *ev = zsvc_alloc(ctx, sizeof *ev);
    *ev = *v;
    ev->findings = "";
    zsvc_emit(ctx, "visit_recorded", area, ZHILI__V1__EVENT__BODY_GRID_VISIT, ev);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_VISIT;
    ctx->reply->grid_visit = v;
    return ztxn_err(ctx->txn);
}

typedef struct {
    zsvc_ctx_t *ctx;
    zgrid_page_t page;
    const char *area;       /* rows must lie under it (a building filters a grid) */
    int64_t from_ms, to_ms; /* to 0: open */
    const char *visitor;
    Zhili__Grid__Visits *out;
} visits_acc_t;

static int on_visit_row(void *arg, zval_t key, zval_t val)
{
    (void)val;
    visits_acc_t *acc = arg;
    if (key.len != ZAREA_BYTES_MAX - 3 + 16) {
        return ZE_INTERNAL;
    }
    int64_t ts = (int64_t)zstore_be64_get((const uint8_t *)key.data + ZAREA_BYTES_MAX - 3);
    bool wanted = ts >= acc->from_ms && (acc->to_ms == 0 || ts < acc->to_ms);
    Zhili__Grid__Visit *v = NULL;
    zval_t row = {NULL, 0};
    uint8_t id[8];
    if (wanted && ztxn_get(acc->ctx->txn, zsvc_table(acc->ctx, "visits"), id,
                           zgrid_key_id(id, zgrid_key_tail_num(key)), &row) != 0) {
        wanted = false;
    }
    if (wanted) {
        v = zgrid_row_unpack(acc->ctx, &zhili__grid__visit__descriptor, row);
        wanted = v != NULL &&
                 (v->building[0] ? zarea_within(acc->area, v->building)
                                 : zarea_within(acc->area, v->grid)) &&
                 (acc->visitor[0] == '\0' || strcmp(acc->visitor, v->visitor) == 0);
    }
    if (zgrid_page_room(&acc->page, wanted ? row.len : 0) != 0) {
        return 1;
    }
    if (wanted) {
        acc->out->visits[acc->out->n_visits++] = v;
    }
    zgrid_page_consumed(&acc->page, key, wanted, row.len);
    return 0;
}

static int period(zsvc_ctx_t *ctx, const char *cmd, const char *from, const char *to,
                  int64_t *from_ms, int64_t *to_ms)
{
    *from_ms = 0;
    *to_ms = 0;
    if (from[0] != '\0' && zgrid_time_parse(from, from_ms) != 0) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "from"),
                         "from must be RFC 3339 (2026-11-26T08:00:00+08:00), a local date "
                         "(2026-11-26) or milliseconds");
    }
    if (to[0] != '\0' && (zgrid_time_parse(to, to_ms) != 0 || *to_ms <= *from_ms)) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "to"),
                         "to must be RFC 3339, a local date or milliseconds, after from");
    }
    return 0;
}

static int visits_list(zsvc_ctx_t *ctx, const Zhili__Grid__VisitsList *in)
{
    const char *cmd = "grid_visits_list";
    visits_acc_t acc = {ctx, {0}, ctx->cmd->area ? ctx->cmd->area : "", 0, 0, in->visitor, NULL};
    uint8_t start[ZSTORE_KEY_BYTES_MAX];
    size_t start_len = 0;
    int rc = zgrid_list_scope(ctx, cmd);
    if (rc != 0 || (rc = period(ctx, cmd, in->from, in->to, &acc.from_ms, &acc.to_ms)) != 0 ||
        (rc = zgrid_page_begin(ctx, &acc.page, in->limit, in->after, cmd, start, &start_len))) {
        return rc;
    }
    if (in->visitor[0] != '\0') {
        zgrid_err_t err;
        if (zgrid_id_check(in->visitor, "visitor", &err) != 0) {
            return zgrid_fail_err(ctx, cmd, &err);
        }
    }
    /* Keys are grid, time, id: inside one grid the scan starts at `from`. */
    char prefix[ZAREA_BYTES_MAX + 1];
    snprintf(prefix, sizeof prefix, "%.15s", acc.area);
    if (start_len == 0 && strlen(prefix) == ZAREA_BYTES_MAX - 3) {
        start_len = zgrid_key_grid_time(start, prefix, acc.from_ms, 0);
    }
    acc.out = zsvc_alloc(ctx, sizeof *acc.out);
    zhili__grid__visits__init(acc.out);
    acc.out->visits = zsvc_alloc(ctx, acc.page.limit * sizeof *acc.out->visits);
    rc = ztxn_scan(ctx->txn, zsvc_table(ctx, "visits_area"), prefix, strlen(prefix),
                   start_len ? start : NULL, start_len, &acc, on_visit_row);
    if (rc < 0) {
        return zsvc_fail(ctx, rc, NULL, "the visits could not be read");
    }
    acc.out->next_after = zgrid_page_next(ctx, &acc.page);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_VISITS;
    ctx->reply->grid_visits = acc.out;
    return 0;
}

/* ---- disputes (矛盾纠纷) --------------------------------------------------------------------- */

static void dispute_index(zsvc_ctx_t *ctx, const Zhili__Grid__Dispute *d, zgrid_dstate_t state)
{
    uint8_t key[ZGRID_KEY_MAX];
    uint8_t value = (uint8_t)state;
    ztxn_put(ctx->txn, zsvc_table(ctx, "disputes_area"), key,
             zgrid_key_area_num(key, d->area, d->id), &value, 1);
}

/* One event per transition, with the dispute's area: the rates of the one
 * table (化解率, 调解成功率) are counts of these. */
static void dispute_emit(zsvc_ctx_t *ctx, const Zhili__Grid__Dispute *d, const char *previous)
{
    Zhili__Grid__DisputeChange *c = zsvc_alloc(ctx, sizeof *c);
    zhili__grid__dispute_change__init(c);
    c->id = d->id;
    c->area = d->area;
    c->grid = d->grid;
    c->state = d->state;
    c->previous = (char *)previous;
    c->type = d->type;
    c->level = d->level;
    c->n_police_grids = d->n_police_grids;
    c->police_grids = d->police_grids;
    c->satisfaction = d->satisfaction;
    c->stable = d->stable;
    zsvc_emit(ctx, zarena_printf(ctx->arena, "dispute_%s", d->state), d->area,
              ZHILI__V1__EVENT__BODY_GRID_DISPUTE, c);
}

static int dispute_register(zsvc_ctx_t *ctx, const Zhili__Grid__DisputeRegister *in)
{
    const char *cmd = "grid_dispute_register";
    zarea_level_t level = zarea_level(in->area);
    if (level < ZAREA_COMMUNITY) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "area"),
                         "area must be a community, grid or building (12, 15 or 18 digits), "
                         "got \"%.24s\"",
                         in->area);
    }
    if (in->n_parties == 0 || in->n_parties > ZGRID_PARTIES_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "parties"),
                         "parties must name 1 to %d parties", ZGRID_PARTIES_MAX);
    }
    int rc = 0;
    zgrid_err_t err;
    for (size_t i = 0; rc == 0 && i < in->n_parties; i++) {
        rc =
            text(ctx, cmd, "parties.name", in->parties[i]->name, ZGRID_PERSON_NAME_BYTES_MAX, true);
        if (rc == 0 &&
            zgrid_phone_check(in->parties[i]->contact, false, "parties.contact", &err) != 0) {
            rc = zgrid_fail_err(ctx, cmd, &err);
        }
    }
    if (rc != 0 || (rc = vocabulary(ctx, cmd, "type", in->type, zgrid_dispute_types, true)) ||
        (rc = vocabulary(ctx, cmd, "level", in->level, zgrid_dispute_levels, true)) ||
        (rc = text(ctx, cmd, "description", in->description, ZGRID_TEXT_BYTES_MAX, true)) ||
        (rc = zgrid_scope(ctx, cmd, "area", in->area)) ||
        (rc = zgrid_unit_required(ctx, cmd, "area", in->area))) {
        return rc;
    }
    Zhili__Grid__Dispute *d = zsvc_alloc(ctx, sizeof *d);
    zhili__grid__dispute__init(d);
    d->id = zgrid_next_id(ctx, "dispute");
    d->area = in->area;
    d->grid = (char *)zgrid_grid_of(ctx, in->area);
    d->n_parties = in->n_parties;
    d->parties = in->parties;
    d->type = in->type;
    d->level = in->level;
    d->description = in->description;
    d->state = (char *)zgrid_dstate_name(ZGRID_DS_REGISTERED);
    d->registered_ms = ctx->now_ms;
    d->registered_by = (char *)zgrid_who(ctx);
    d->police_grids = zgrid_police_grids_of(ctx, d->grid, &d->n_police_grids);
    row_put_id(ctx, "disputes", d->id, &d->base);
    dispute_index(ctx, d, ZGRID_DS_REGISTERED);
    dispute_emit(ctx, d, "");
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_DISPUTE;
    ctx->reply->grid_dispute = d;
    return ztxn_err(ctx->txn);
}

/* Load, check scope and the transition: 0 with *d and *to, or the reply. */
static int dispute_step(zsvc_ctx_t *ctx, const char *cmd, int64_t id, zgrid_daction_t action,
                        Zhili__Grid__Dispute **d, zgrid_dstate_t *to)
{
    int rc = id_check(ctx, cmd, id);
    void *row = NULL;
    if (rc != 0) {
        return rc;
    }
    rc = row_by_id(ctx, "disputes", id, &zhili__grid__dispute__descriptor, &row);
    if (rc != 0) {
        return rc != ZE_NOT_FOUND ? rc
                                  : zsvc_fail(ctx, ZE_NOT_FOUND, zgrid_field(ctx, cmd, "id"),
                                              "no dispute %lld exists", (long long)id);
    }
    *d = row;
    if ((rc = zgrid_scope(ctx, cmd, "id", (*d)->area)) != 0) {
        return rc;
    }
    zgrid_dstate_t from;
    if (zgrid_dstate_parse((*d)->state, &from) != 0) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "dispute %lld has an unknown state",
                         (long long)id);
    }
    if (zgrid_dispute_next(from, action, to) != 0) {
        return zsvc_fail(ctx, ZE_CONFLICT, zgrid_field(ctx, cmd, "id"),
                         "dispute %lld is %s; %s needs a dispute that is %s", (long long)id,
                         (*d)->state, zgrid_daction_name(action), zgrid_daction_needs(action));
    }
    return 0;
}

static int dispute_commit(zsvc_ctx_t *ctx, Zhili__Grid__Dispute *d, zgrid_dstate_t to)
{
    const char *previous = d->state;
    d->state = (char *)zgrid_dstate_name(to);
    row_put_id(ctx, "disputes", d->id, &d->base);
    dispute_index(ctx, d, to);
    dispute_emit(ctx, d, previous);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_DISPUTE;
    ctx->reply->grid_dispute = d;
    return ztxn_err(ctx->txn);
}

static int dispute_sign(zsvc_ctx_t *ctx, const Zhili__Grid__DisputeSign *in)
{
    Zhili__Grid__Dispute *d = NULL;
    zgrid_dstate_t to;
    int rc = dispute_step(ctx, "grid_dispute_sign", in->id, ZGRID_DA_SIGN, &d, &to);
    if (rc != 0) {
        return rc;
    }
    d->signed_ms = ctx->now_ms;
    d->signed_by = (char *)zgrid_who(ctx);
    return dispute_commit(ctx, d, to);
}

static int dispute_mediate(zsvc_ctx_t *ctx, const Zhili__Grid__DisputeMediate *in)
{
    const char *cmd = "grid_dispute_mediate";
    Zhili__Grid__Dispute *d = NULL;
    zgrid_dstate_t to;
    int rc = text(ctx, cmd, "handler", in->handler, ZGRID_PERSON_NAME_BYTES_MAX, true);
    if (rc != 0 || (rc = text(ctx, cmd, "note", in->note, ZGRID_TEXT_BYTES_MAX, false)) ||
        (rc = dispute_step(ctx, cmd, in->id, ZGRID_DA_MEDIATE, &d, &to))) {
        return rc;
    }
    d->mediating_ms = ctx->now_ms;
    d->handler = in->handler;
    d->mediation = in->note;
    return dispute_commit(ctx, d, to);
}

static int dispute_close(zsvc_ctx_t *ctx, const char *cmd, int64_t id, const char *field,
                         const char *why, zgrid_daction_t action)
{
    Zhili__Grid__Dispute *d = NULL;
    zgrid_dstate_t to;
    int rc = text(ctx, cmd, field, why, ZGRID_NOTE_BYTES_MAX, true);
    if (rc != 0 || (rc = dispute_step(ctx, cmd, id, action, &d, &to))) {
        return rc;
    }
    d->closed_ms = ctx->now_ms;
    d->outcome = (char *)why;
    return dispute_commit(ctx, d, to);
}

static int dispute_evaluate(zsvc_ctx_t *ctx, const Zhili__Grid__DisputeEvaluate *in)
{
    const char *cmd = "grid_dispute_evaluate";
    Zhili__Grid__Dispute *d = NULL;
    zgrid_dstate_t to;
    int rc = vocabulary(ctx, cmd, "satisfaction", in->satisfaction, zgrid_satisfactions, true);
    if (rc != 0 || (rc = text(ctx, cmd, "comment", in->comment, ZGRID_NOTE_BYTES_MAX, false)) ||
        (rc = dispute_step(ctx, cmd, in->id, ZGRID_DA_EVALUATE, &d, &to))) {
        return rc;
    }
    d->evaluated_ms = ctx->now_ms;
    d->satisfaction = in->satisfaction;
    d->evaluation = in->comment;
    d->stable = in->stable;
    return dispute_commit(ctx, d, to);
}

static int dispute_archive(zsvc_ctx_t *ctx, const Zhili__Grid__DisputeArchive *in)
{
    Zhili__Grid__Dispute *d = NULL;
    zgrid_dstate_t to;
    int rc = dispute_step(ctx, "grid_dispute_archive", in->id, ZGRID_DA_ARCHIVE, &d, &to);
    if (rc != 0) {
        return rc;
    }
    d->archived_ms = ctx->now_ms;
    return dispute_commit(ctx, d, to);
}

static int dispute_get(zsvc_ctx_t *ctx, const Zhili__Grid__DisputeGet *in)
{
    const char *cmd = "grid_dispute_get";
    void *row = NULL;
    int rc = id_check(ctx, cmd, in->id);
    if (rc != 0) {
        return rc;
    }
    if (row_by_id(ctx, "disputes", in->id, &zhili__grid__dispute__descriptor, &row) != 0) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, zgrid_field(ctx, cmd, "id"), "no dispute %lld exists",
                         (long long)in->id);
    }
    Zhili__Grid__Dispute *d = row;
    if ((rc = zgrid_scope(ctx, cmd, "id", d->area)) != 0) {
        return rc;
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_DISPUTE;
    ctx->reply->grid_dispute = d;
    return 0;
}

typedef struct {
    zsvc_ctx_t *ctx;
    zgrid_page_t page;
    int state; /* -1: every state */
    Zhili__Grid__Disputes *out;
} disputes_acc_t;

static int on_dispute_row(void *arg, zval_t key, zval_t val)
{
    disputes_acc_t *acc = arg;
    bool wanted = acc->state < 0 || (val.len == 1 && *(const uint8_t *)val.data == acc->state);
    zval_t row = {NULL, 0};
    uint8_t id[8];
    if (wanted && ztxn_get(acc->ctx->txn, zsvc_table(acc->ctx, "disputes"), id,
                           zgrid_key_id(id, zgrid_key_tail_num(key)), &row) != 0) {
        wanted = false;
    }
    if (zgrid_page_room(&acc->page, row.len) != 0) {
        return 1;
    }
    if (wanted) {
        Zhili__Grid__Dispute *d =
            zgrid_row_unpack(acc->ctx, &zhili__grid__dispute__descriptor, row);
        if (d == NULL) {
            return ZE_INTERNAL;
        }
        acc->out->disputes[acc->out->n_disputes++] = d;
    }
    zgrid_page_consumed(&acc->page, key, wanted, row.len);
    return 0;
}

static int disputes_list(zsvc_ctx_t *ctx, const Zhili__Grid__DisputesList *in)
{
    const char *cmd = "grid_disputes_list";
    disputes_acc_t acc = {ctx, {0}, -1, NULL};
    zgrid_dstate_t state;
    if (in->state[0] != '\0') {
        if (zgrid_dstate_parse(in->state, &state) != 0) {
            return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "state"),
                             "state must be registered, signed, mediating, resolved, failed, "
                             "evaluated or archived");
        }
        acc.state = (int)state;
    }
    uint8_t start[ZSTORE_KEY_BYTES_MAX];
    size_t start_len = 0;
    int rc = zgrid_list_scope(ctx, cmd);
    if (rc != 0 || (rc = zgrid_page_begin(ctx, &acc.page, in->limit, in->after, cmd, start,
                                          &start_len)) != 0) {
        return rc;
    }
    acc.out = zsvc_alloc(ctx, sizeof *acc.out);
    zhili__grid__disputes__init(acc.out);
    acc.out->disputes = zsvc_alloc(ctx, acc.page.limit * sizeof *acc.out->disputes);
    const char *area = ctx->cmd->area ? ctx->cmd->area : "";
    rc = ztxn_scan(ctx->txn, zsvc_table(ctx, "disputes_area"), area, strlen(area),
                   start_len ? start : NULL, start_len, &acc, on_dispute_row);
    if (rc < 0) {
        return zsvc_fail(ctx, rc, NULL, "the disputes could not be read");
    }
    acc.out->next_after = zgrid_page_next(ctx, &acc.page);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_DISPUTES;
    ctx->reply->grid_disputes = acc.out;
    return 0;
}

/* ---- key persons (重点人员): personal fields ------------------------------------------------- */

/* A keyed BLAKE2b of the ID number (table kp_ids) finds a second
 * registration of the same person without keeping the number in clear;
 * keyed, because the few billion possible numbers are easy to hash through. */
static size_t id_number_key(zsvc_ctx_t *ctx, const char *id_number, uint8_t out[16])
{
    uint8_t norm[ZGRID_ID_NUMBER_CHARS];
    for (size_t i = 0; i < ZGRID_ID_NUMBER_CHARS; i++) {
        norm[i] = (uint8_t)(id_number[i] == 'x' ? 'X' : id_number[i]);
    }
    crypto_generichash(out, 16, norm, sizeof norm, zgrid_service(ctx)->keys.blind, ZGRID_KEY_BYTES);
    return 16;
}

static int personal_check(zsvc_ctx_t *ctx, const char *cmd, const char *name, const char *id_number,
                          const char *phone, const char *address, bool required)
{
    zgrid_err_t err;
    int rc = text(ctx, cmd, "name", name, ZGRID_PERSON_NAME_BYTES_MAX, required);
    if (rc == 0 && (required || id_number[0] != '\0') && !zgrid_id_number_valid(id_number)) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "id_number"),
                         "id_number must be an 18-character 居民身份证号码 with a valid birth date "
                         "and check character");
    }
    if (rc == 0 && zgrid_phone_check(phone, false, "phone", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    return rc != 0 ? rc : text(ctx, cmd, "address", address, ZGRID_ADDRESS_BYTES_MAX, false);
}

/* Seal the personal fields into the record; the plain bytes are wiped. */
static int personal_seal(zsvc_ctx_t *ctx, Zhili__Grid__KeyPersonRecord *r,
                         const Zhili__Grid__KeyPersonPersonal *p)
{
    uint8_t plain[ZGRID_SEALED_BYTES_MAX];
    size_t len = protobuf_c_message_get_packed_size(&p->base);
    if (len + ZGRID_SEAL_OVERHEAD > ZGRID_SEALED_BYTES_MAX) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "the personal fields do not fit");
    }
    protobuf_c_message_pack(&p->base, plain);
    r->sealed.data = zsvc_alloc(ctx, len + ZGRID_SEAL_OVERHEAD);
    r->sealed.len = len + ZGRID_SEAL_OVERHEAD;
    zgrid_seal(&zgrid_service(ctx)->keys, plain, len, r->sealed.data);
    sodium_memzero(plain, sizeof plain);
    return 0;
}

/* Open the record's personal fields into arena memory (the caller wipes
 * nothing: the reply needs them). Bound to the record by its id. */
static Zhili__Grid__KeyPersonPersonal *personal_open(zsvc_ctx_t *ctx,
                                                     const Zhili__Grid__KeyPersonRecord *r)
{
    if (r->sealed.len <= ZGRID_SEAL_OVERHEAD || r->sealed.len > ZGRID_SEALED_BYTES_MAX) {
        return NULL;
    }
    uint8_t plain[ZGRID_SEALED_BYTES_MAX];
    size_t len = r->sealed.len - ZGRID_SEAL_OVERHEAD;
    Zhili__Grid__KeyPersonPersonal *p = NULL;
    if (zgrid_open(&zgrid_service(ctx)->keys, r->sealed.data, r->sealed.len, plain) == 0) {
        p = zgrid_row_unpack(ctx, &zhili__grid__key_person_personal__descriptor,
                             (zval_t){plain, len});
    }
    sodium_memzero(plain, sizeof plain);
    return p != NULL && p->id == r->person->id ? p : NULL;
}

/* Roles that may write key persons (the gateway's grid.keypersons.write
 * says the same; "" is an internal caller without an actor). */
static int kp_writer(zsvc_ctx_t *ctx, const char *cmd)
{
    static const char *const roles[] = {"police", "grid_member", "staff", "admin", "", NULL};
    zgrid_actor_t a = zgrid_actor(ctx);
    if (zgrid_one_of(roles, a.role)) {
        return 0;
    }
    (void)cmd;
    return zsvc_fail(ctx, ZE_FORBIDDEN, NULL, "role %s may not change key persons", a.role);
}

static int responsible_check(zsvc_ctx_t *ctx, const char *cmd, const char *id, const char *grid)
{
    zgrid_err_t err;
    if (zgrid_id_check(id, "responsible", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    Zhili__Grid__Person *p = zgrid_person_load(ctx, id);
    if (p == NULL || !zgrid_person_grid_kind(p->kind) || strcmp(p->area, grid) != 0) {
        return ztxn_err(ctx->txn) ? ztxn_err(ctx->txn)
                                  : zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "responsible"),
                                              "responsible must be a grid member (grid_member or "
                                              "aux_police) of grid %s; %s is not",
                                              grid, id);
    }
    return 0;
}

static int kp_register_check(zsvc_ctx_t *ctx, const char *cmd,
                             const Zhili__Grid__KeyPersonRegister *in)
{
    zgrid_err_t err;
    int rc = kp_writer(ctx, cmd);
    if (rc != 0) {
        return rc;
    }
    if (zgrid_area_check(in->area, ZAREA_GRID, "area", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    if (in->visit_interval_days < 1 || in->visit_interval_days > ZGRID_VISIT_INTERVAL_DAYS_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "visit_interval_days"),
                         "visit_interval_days must be 1 to %d", ZGRID_VISIT_INTERVAL_DAYS_MAX);
    }
    if ((rc = vocabulary(ctx, cmd, "category", in->category, zgrid_keyperson_categories, true)) ||
        (rc = vocabulary(ctx, cmd, "risk", in->risk, zgrid_risks, true)) ||
        (rc = personal_check(ctx, cmd, in->name, in->id_number, in->phone, in->address, true)) ||
        (rc = zgrid_scope(ctx, cmd, "area", in->area)) ||
        (rc = zgrid_unit_required(ctx, cmd, "area", in->area))) {
        return rc;
    }
    return responsible_check(ctx, cmd, in->responsible, in->area);
}

/* CONFLICT when the ID number belongs to another record under management. */
static int id_number_free(zsvc_ctx_t *ctx, const char *cmd, const char *id_number, int64_t self)
{
    uint8_t key[16];
    zval_t v;
    size_t len = id_number_key(ctx, id_number, key);
    if (ztxn_get(ctx->txn, zsvc_table(ctx, "kp_ids"), key, len, &v) == 0 && v.len == 8 &&
        (int64_t)zstore_be64_get(v.data) != self) {
        return zsvc_fail(ctx, ZE_CONFLICT, zgrid_field(ctx, cmd, "id_number"),
                         "this ID number is already under management as key person %lld",
                         (long long)zstore_be64_get(v.data));
    }
    return 0;
}

static void id_number_index(zsvc_ctx_t *ctx, const char *id_number, int64_t id, bool put)
{
    uint8_t key[16], be[8];
    size_t len = id_number_key(ctx, id_number, key);
    if (put) {
        zstore_be64_put(be, (uint64_t)id);
        ztxn_put(ctx->txn, zsvc_table(ctx, "kp_ids"), key, len, be, sizeof be);
    } else {
        ztxn_del(ctx->txn, zsvc_table(ctx, "kp_ids"), key, len);
    }
}

static int kp_register(zsvc_ctx_t *ctx, const Zhili__Grid__KeyPersonRegister *in)
{
    const char *cmd = "grid_keyperson_register";
    int rc = kp_register_check(ctx, cmd, in);
    if (rc != 0 || (rc = id_number_free(ctx, cmd, in->id_number, 0)) != 0) {
        return rc;
    }
    Zhili__Grid__KeyPerson *kp = zsvc_alloc(ctx, sizeof *kp);
    zhili__grid__key_person__init(kp);
    kp->id = zgrid_next_id(ctx, "keyperson");
    kp->area = in->area;
    kp->category = in->category;
    kp->risk = in->risk;
    kp->responsible = in->responsible;
    kp->visit_interval_days = in->visit_interval_days;
    kp->registered_ms = ctx->now_ms;
    kp->next_due_ms = ctx->now_ms + interval_ms(kp);
    kp->updated_ms = ctx->now_ms;
    Zhili__Grid__KeyPersonPersonal p = ZHILI__GRID__KEY_PERSON_PERSONAL__INIT;
    p.id = kp->id;
    p.name = in->name;
    p.id_number = in->id_number;
    p.phone = in->phone;
    p.address = in->address;
    Zhili__Grid__KeyPersonRecord *r = zsvc_alloc(ctx, sizeof *r);
    zhili__grid__key_person_record__init(r);
    r->person = kp;
    if ((rc = personal_seal(ctx, r, &p)) != 0) {
        return rc;
    }
    row_put_id(ctx, "keypersons", kp->id, &r->base);
    uint8_t key[ZGRID_KEY_MAX];
    zgrid_index_put(ctx, "kp_area", key, zgrid_key_grid_num(key, kp->area, kp->id));
    kp_due_move(ctx, kp->id, 0, kp->next_due_ms);
    id_number_index(ctx, in->id_number, kp->id, true);
    zsvc_emit(ctx, "keyperson_registered", kp->area, ZHILI__V1__EVENT__BODY_GRID_KEYPERSON, kp);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_KEYPERSON;
    ctx->reply->grid_keyperson = kp;
    return ztxn_err(ctx->txn);
}

/* A record under management, in the caller's scope. */
static int kp_managed(zsvc_ctx_t *ctx, const char *cmd, int64_t id,
                      Zhili__Grid__KeyPersonRecord **out)
{
    int rc = id_check(ctx, cmd, id);
    if (rc != 0) {
        return rc;
    }
    Zhili__Grid__KeyPersonRecord *r = kp_load(ctx, id);
    if (r == NULL) {
        return ztxn_err(ctx->txn) ? ztxn_err(ctx->txn)
                                  : zsvc_fail(ctx, ZE_NOT_FOUND, zgrid_field(ctx, cmd, "id"),
                                              "no key person %lld exists", (long long)id);
    }
    if ((rc = zgrid_scope(ctx, cmd, "id", r->person->area)) != 0) {
        return rc;
    }
    if (r->person->removed) {
        return zsvc_fail(ctx, ZE_CONFLICT, zgrid_field(ctx, cmd, "id"),
                         "key person %lld was released from management (解除列管)", (long long)id);
    }
    *out = r;
    return 0;
}

static int kp_update_personal(zsvc_ctx_t *ctx, const char *cmd, Zhili__Grid__KeyPersonRecord *r,
                              const Zhili__Grid__KeyPersonUpdate *in)
{
    if (in->name[0] == '\0' && in->id_number[0] == '\0' && in->phone[0] == '\0' &&
        in->address[0] == '\0') {
        return 0;
    }
    int rc = 0;
    Zhili__Grid__KeyPersonPersonal *p = personal_open(ctx, r);
    if (p == NULL) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL,
                         "key person %lld's personal fields do not open "
                         "with this service's key",
                         (long long)r->person->id);
    }
    if (in->id_number[0] != '\0' && strcmp(in->id_number, p->id_number) != 0) {
        if ((rc = id_number_free(ctx, cmd, in->id_number, r->person->id)) != 0) {
            return rc;
        }
        id_number_index(ctx, p->id_number, r->person->id, false);
        id_number_index(ctx, in->id_number, r->person->id, true);
        p->id_number = in->id_number;
    }
    p->name = in->name[0] ? in->name : p->name;
    p->phone = in->phone[0] ? in->phone : p->phone;
    p->address = in->address[0] ? in->address : p->address;
    return personal_seal(ctx, r, p);
}

static int kp_update(zsvc_ctx_t *ctx, const Zhili__Grid__KeyPersonUpdate *in)
{
    const char *cmd = "grid_keyperson_update";
    Zhili__Grid__KeyPersonRecord *r = NULL;
    int rc = kp_writer(ctx, cmd);
    if (rc != 0) {
        return rc;
    }
    if (in->visit_interval_days < 0 || in->visit_interval_days > ZGRID_VISIT_INTERVAL_DAYS_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "visit_interval_days"),
                         "visit_interval_days must be 1 to %d (0: unchanged)",
                         ZGRID_VISIT_INTERVAL_DAYS_MAX);
    }
    if ((rc = vocabulary(ctx, cmd, "category", in->category, zgrid_keyperson_categories, false)) ||
        (rc = vocabulary(ctx, cmd, "risk", in->risk, zgrid_risks, false)) ||
        (rc = personal_check(ctx, cmd, in->name, in->id_number, in->phone, in->address, false)) ||
        (rc = kp_managed(ctx, cmd, in->id, &r)) != 0) {
        return rc;
    }
    Zhili__Grid__KeyPerson *kp = r->person;
    if ((in->responsible[0] && (rc = responsible_check(ctx, cmd, in->responsible, kp->area))) ||
        (rc = kp_update_personal(ctx, cmd, r, in)) != 0) {
        return rc;
    }
    kp->category = in->category[0] ? in->category : kp->category;
    kp->risk = in->risk[0] ? in->risk : kp->risk;
    kp->responsible = in->responsible[0] ? in->responsible : kp->responsible;
    if (in->visit_interval_days != 0 && in->visit_interval_days != kp->visit_interval_days) {
        kp->visit_interval_days = in->visit_interval_days;
        int64_t anchor = kp->last_visit_ms ? kp->last_visit_ms : kp->registered_ms;
        int64_t due = zgrid_due_after_visit(anchor, interval_ms(kp), r->raised_until_ms);
        kp_due_move(ctx, kp->id, kp->next_due_ms, due);
        kp->next_due_ms = due;
    }
    kp->updated_ms = ctx->now_ms;
    row_put_id(ctx, "keypersons", kp->id, &r->base);
    zsvc_emit(ctx, "keyperson_updated", kp->area, ZHILI__V1__EVENT__BODY_GRID_KEYPERSON, kp);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_KEYPERSON;
    ctx->reply->grid_keyperson = kp;
    return ztxn_err(ctx->txn);
}

/* 解除列管: the public part stays for the record, the sealed part is erased. */
static int kp_remove(zsvc_ctx_t *ctx, const Zhili__Grid__KeyPersonRemove *in)
{
    const char *cmd = "grid_keyperson_remove";
    Zhili__Grid__KeyPersonRecord *r = NULL;
    int rc = kp_writer(ctx, cmd);
    if (rc != 0 || (rc = text(ctx, cmd, "reason", in->reason, ZGRID_NOTE_BYTES_MAX, true)) ||
        (rc = kp_managed(ctx, cmd, in->id, &r)) != 0) {
        return rc;
    }
    Zhili__Grid__KeyPerson *kp = r->person;
    Zhili__Grid__KeyPersonPersonal *p = personal_open(ctx, r);
    if (p != NULL) {
        id_number_index(ctx, p->id_number, kp->id, false);
    }
    kp_due_move(ctx, kp->id, kp->next_due_ms, 0);
    uint8_t key[ZGRID_KEY_MAX];
    zgrid_index_del(ctx, "kp_area", key, zgrid_key_grid_num(key, kp->area, kp->id));
    kp->removed = true;
    kp->removed_reason = in->reason;
    kp->next_due_ms = 0;
    kp->updated_ms = ctx->now_ms;
    r->sealed.len = 0;
    r->sealed.data = NULL;
    row_put_id(ctx, "keypersons", kp->id, &r->base);
    zsvc_emit(ctx, "keyperson_removed", kp->area, ZHILI__V1__EVENT__BODY_GRID_KEYPERSON, kp);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_KEYPERSON;
    ctx->reply->grid_keyperson = kp;
    return ztxn_err(ctx->txn);
}

/* Who may see personal fields: police whose scope holds the key person's
 * grid, and grid members whose scope lies inside that grid. Nobody else,
 * admins included. */
static int personal_reader(zsvc_ctx_t *ctx, const char *cmd, const Zhili__Grid__KeyPerson *kp)
{
    zgrid_actor_t a = zgrid_actor(ctx);
    bool police = strcmp(a.role, "police") == 0 && zarea_within(a.area, kp->area);
    bool member = strcmp(a.role, "grid_member") == 0 && strlen(a.area) >= strlen(kp->area) &&
                  zarea_within(kp->area, a.area);
    if ((!police && !member) || a.id[0] == '\0') {
        return zsvc_fail(ctx, ZE_FORBIDDEN, zgrid_field(ctx, cmd, "id"),
                         "a key person's personal fields are visible only to police and to the "
                         "grid members of grid %s",
                         kp->area);
    }
    return 0;
}

typedef struct {
    int64_t now_ms;
    size_t open;
} grants_count_t;

static int on_grant_count(void *arg, zval_t key, zval_t val)
{
    (void)key;
    (void)val;
    ((grants_count_t *)arg)->open++;
    return 0;
}

static int kp_reveal(zsvc_ctx_t *ctx, const Zhili__Grid__KeyPersonReveal *in)
{
    const char *cmd = "grid_keyperson_reveal";
    Zhili__Grid__KeyPersonRecord *r = NULL;
    int rc = text(ctx, cmd, "reason", in->reason, ZGRID_NOTE_BYTES_MAX, true);
    if (rc == 0 && strlen(in->reason) < ZGRID_REASON_BYTES_MIN) {
        rc = zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "reason"),
                       "reason must say why the personal fields are needed");
    }
    if (rc != 0 || (rc = kp_managed(ctx, cmd, in->id, &r)) != 0 ||
        (rc = personal_reader(ctx, cmd, r->person)) != 0) {
        return rc;
    }
    grants_count_t count = {ctx->now_ms, 0};
    ztxn_scan(ctx->txn, zsvc_table(ctx, "grants"), NULL, 0, NULL, 0, &count, on_grant_count);
    if (count.open >= ZGRID_GRANTS_MAX) {
        return zsvc_fail(ctx, ZE_UNAVAILABLE, NULL,
                         "too many reveal grants are open; try again "
                         "in a minute");
    }
    uint8_t random[ZGRID_GRANT_CHARS / 2];
    randombytes_buf(random, sizeof random);
    char *grant = zsvc_alloc(ctx, ZGRID_GRANT_CHARS + 1);
    sodium_bin2hex(grant, ZGRID_GRANT_CHARS + 1, random, sizeof random);
    Zhili__Grid__GrantRecord g = ZHILI__GRID__GRANT_RECORD__INIT;
    g.keyperson = r->person->id;
    g.actor_id = (char *)zgrid_actor(ctx).id;
    g.expires_ms = ctx->now_ms + ZGRID_GRANT_MS;
    zgrid_row_put(ctx, "grants", grant, ZGRID_GRANT_CHARS, &g.base);
    /* The audit event: who (the event's actor), when (ts_ms), which record, why. */
    Zhili__Grid__KeyPersonAccess *ev = zsvc_alloc(ctx, sizeof *ev);
    zhili__grid__key_person_access__init(ev);
    ev->id = r->person->id;
    ev->area = r->person->area;
    ev->reason = in->reason;
    ev->expires_ms = g.expires_ms;
    zsvc_emit(ctx, "keyperson_revealed", r->person->area,
              ZHILI__V1__EVENT__BODY_GRID_KEYPERSON_ACCESS, ev);
    Zhili__Grid__KeyPersonGrant *out = zsvc_alloc(ctx, sizeof *out);
    zhili__grid__key_person_grant__init(out);
    out->id = r->person->id;
    out->grant = grant;
    out->expires_ms = g.expires_ms;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_KEYPERSON_GRANT;
    ctx->reply->grid_keyperson_grant = out;
    return ztxn_err(ctx->txn);
}

/* A query: answered from a snapshot, so it cannot write the audit event;
 * the reveal that made the grant did. */
static int kp_personal(zsvc_ctx_t *ctx, const Zhili__Grid__KeyPersonRead *in)
{
    const char *cmd = "grid_keyperson_personal";
    Zhili__Grid__KeyPersonRecord *r = NULL;
    if (in->grant == NULL || strlen(in->grant) != ZGRID_GRANT_CHARS) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "grant"),
                         "grant must be the %d hex characters that reveal returned",
                         ZGRID_GRANT_CHARS);
    }
    int rc = kp_managed(ctx, cmd, in->id, &r);
    if (rc != 0 || (rc = personal_reader(ctx, cmd, r->person)) != 0) {
        return rc;
    }
    void *row = NULL;
    Zhili__Grid__GrantRecord *g = NULL;
    if (zgrid_row_get(ctx, "grants", in->grant, ZGRID_GRANT_CHARS,
                      &zhili__grid__grant_record__descriptor, &row) != 0 ||
        (g = row)->keyperson != r->person->id || strcmp(g->actor_id, zgrid_actor(ctx).id) != 0 ||
        g->expires_ms <= ctx->now_ms) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, zgrid_field(ctx, cmd, "grant"),
                         "grant is unknown, expired or not yours: ask with "
                         "POST /api/v1/grid/keypersons/%lld/reveal first",
                         (long long)in->id);
    }
    Zhili__Grid__KeyPersonPersonal *p = personal_open(ctx, r);
    if (p == NULL) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL,
                         "key person %lld's personal fields do not open "
                         "with this service's key",
                         (long long)in->id);
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_KEYPERSON_PERSONAL;
    ctx->reply->grid_keyperson_personal = p;
    return 0;
}

static int kp_get(zsvc_ctx_t *ctx, const Zhili__Grid__KeyPersonGet *in)
{
    const char *cmd = "grid_keyperson_get";
    int rc = id_check(ctx, cmd, in->id);
    if (rc != 0) {
        return rc;
    }
    Zhili__Grid__KeyPersonRecord *r = kp_load(ctx, in->id);
    if (r == NULL) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, zgrid_field(ctx, cmd, "id"),
                         "no key person %lld exists", (long long)in->id);
    }
    if ((rc = zgrid_scope(ctx, cmd, "id", r->person->area)) != 0) {
        return rc;
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_KEYPERSON;
    ctx->reply->grid_keyperson = r->person;
    return 0;
}

typedef struct {
    zsvc_ctx_t *ctx;
    zgrid_page_t page;
    bool overdue;
    const char *category;
    Zhili__Grid__KeyPersons *out;
} kps_acc_t;

static int on_kp_row(void *arg, zval_t key, zval_t val)
{
    (void)val;
    kps_acc_t *acc = arg;
    Zhili__Grid__KeyPersonRecord *r = kp_load(acc->ctx, zgrid_key_tail_num(key));
    Zhili__Grid__KeyPerson *kp = r ? r->person : NULL;
    bool wanted = kp != NULL && !kp->removed && (!acc->overdue || kp->overdue) &&
                  (acc->category[0] == '\0' || strcmp(acc->category, kp->category) == 0);
    size_t bytes = wanted ? protobuf_c_message_get_packed_size(&kp->base) : 0;
    if (zgrid_page_room(&acc->page, bytes) != 0) {
        return 1;
    }
    if (wanted) {
        acc->out->keypersons[acc->out->n_keypersons++] = kp;
    }
    zgrid_page_consumed(&acc->page, key, wanted, bytes);
    return 0;
}

static int kps_list(zsvc_ctx_t *ctx, const Zhili__Grid__KeyPersonsList *in)
{
    const char *cmd = "grid_keypersons_list";
    kps_acc_t acc = {ctx, {0}, in->overdue != 0, in->category, NULL};
    if (in->overdue != 0 && in->overdue != 1) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "overdue"),
                         "overdue must be 1 (only those past their due visit) or 0");
    }
    uint8_t start[ZSTORE_KEY_BYTES_MAX];
    size_t start_len = 0;
    int rc = vocabulary(ctx, cmd, "category", in->category, zgrid_keyperson_categories, false);
    if (rc != 0 || (rc = zgrid_list_scope(ctx, cmd)) != 0 ||
        (rc = zgrid_page_begin(ctx, &acc.page, in->limit, in->after, cmd, start, &start_len))) {
        return rc;
    }
    acc.out = zsvc_alloc(ctx, sizeof *acc.out);
    zhili__grid__key_persons__init(acc.out);
    acc.out->keypersons = zsvc_alloc(ctx, acc.page.limit * sizeof *acc.out->keypersons);
    const char *area = ctx->cmd->area ? ctx->cmd->area : "";
    rc = ztxn_scan(ctx->txn, zsvc_table(ctx, "kp_area"), area, strlen(area),
                   start_len ? start : NULL, start_len, &acc, on_kp_row);
    if (rc < 0) {
        return zsvc_fail(ctx, rc, NULL, "the key persons could not be read");
    }
    acc.out->next_after = zgrid_page_next(ctx, &acc.page);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_KEYPERSONS;
    ctx->reply->grid_keypersons = acc.out;
    return 0;
}

/* ---- the timer ------------------------------------------------------------------------------ */

typedef struct {
    int64_t now_ms;
    uint8_t (*keys)[16];
    size_t n, cap;
} due_acc_t;

static int on_due(void *arg, zval_t key, zval_t val)
{
    (void)val;
    due_acc_t *acc = arg;
    if (key.len != 16 || (int64_t)zstore_be64_get(key.data) > acc->now_ms || acc->n == acc->cap) {
        return 1;
    }
    memcpy(acc->keys[acc->n++], key.data, 16);
    return 0;
}

/* One overdue event for the interval that ended at `due`; the next interval
 * starts there. */
static void kp_overdue(zsvc_ctx_t *ctx, const uint8_t key[16])
{
    int64_t due = (int64_t)zstore_be64_get(key);
    int64_t id = (int64_t)zstore_be64_get(key + 8);
    ztxn_del(ctx->txn, zsvc_table(ctx, "kp_due"), key, 16);
    Zhili__Grid__KeyPersonRecord *r = kp_load(ctx, id);
    if (r == NULL || r->person->removed || r->person->next_due_ms != due) {
        return; /* a stale index row */
    }
    Zhili__Grid__KeyPerson *kp = r->person;
    kp->missed++;
    kp->overdue = true;
    r->raised_until_ms = due;
    kp->next_due_ms = due + interval_ms(kp);
    kp->updated_ms = ctx->now_ms;
    kp_due_move(ctx, id, 0, kp->next_due_ms);
    row_put_id(ctx, "keypersons", id, &r->base);
    Zhili__Grid__KeyPersonOverdue *ev = zsvc_alloc(ctx, sizeof *ev);
    zhili__grid__key_person_overdue__init(ev);
    ev->id = id;
    ev->area = kp->area;
    ev->responsible = kp->responsible;
    ev->due_ms = due;
    ev->interval_ms = interval_ms(kp);
    ev->missed = kp->missed;
    ev->last_visit_ms = kp->last_visit_ms;
    ev->risk = kp->risk;
    ev->category = kp->category;
    zsvc_emit(ctx, "keyperson_visit_overdue", kp->area,
              ZHILI__V1__EVENT__BODY_GRID_KEYPERSON_OVERDUE, ev);
}

typedef struct {
    int64_t now_ms;
    char (*keys)[ZGRID_GRANT_CHARS];
    size_t n, cap;
} grants_acc_t;

static int on_grant(void *arg, zval_t key, zval_t val)
{
    grants_acc_t *acc = arg;
    Zhili__Grid__GrantRecord *g = zhili__grid__grant_record__unpack(NULL, val.len, val.data);
    bool expired = g == NULL || g->expires_ms <= acc->now_ms;
    if (g != NULL) {
        zhili__grid__grant_record__free_unpacked(g, NULL);
    }
    if (expired && key.len == ZGRID_GRANT_CHARS) {
        memcpy(acc->keys[acc->n++], key.data, ZGRID_GRANT_CHARS);
    }
    return acc->n == acc->cap ? 1 : 0;
}

int zgrid_on_tick(zsvc_ctx_t *ctx)
{
    due_acc_t acc = {ctx->now_ms, NULL, 0, ZGRID_OVERDUE_PER_TICK};
    acc.keys = zsvc_alloc(ctx, acc.cap * sizeof *acc.keys);
    size_t raised = 0;
    /* A key person several intervals behind (the service was down) gets one
     * event per interval: the loop takes them as they come due again. */
    do {
        acc.n = 0;
        acc.cap = ZGRID_OVERDUE_PER_TICK - raised;
        ztxn_scan(ctx->txn, zsvc_table(ctx, "kp_due"), NULL, 0, NULL, 0, &acc, on_due);
        for (size_t i = 0; i < acc.n; i++) {
            kp_overdue(ctx, acc.keys[i]);
        }
        raised += acc.n;
    } while (acc.n > 0 && raised < ZGRID_OVERDUE_PER_TICK && ztxn_err(ctx->txn) == 0);
    /* Expired reveal grants. */
    grants_acc_t g = {ctx->now_ms, NULL, 0, ZGRID_OVERDUE_PER_TICK};
    g.keys = zsvc_alloc(ctx, g.cap * sizeof *g.keys);
    ztxn_scan(ctx->txn, zsvc_table(ctx, "grants"), NULL, 0, NULL, 0, &g, on_grant);
    for (size_t i = 0; i < g.n; i++) {
        ztxn_del(ctx->txn, zsvc_table(ctx, "grants"), g.keys[i], ZGRID_GRANT_CHARS);
    }
    if (raised > 0) {
        zlogf(ZLOG_INFO, "keyperson_overdue", "raised=%zu", raised);
    }
    return ztxn_err(ctx->txn);
}

/* ---- dispatch ---------------------------------------------------------------------------------
 */

int zgrid_cases_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_GRID_VISIT_RECORD:
        return visit_record(ctx, cmd->grid_visit_record);
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_REGISTER:
        return dispute_register(ctx, cmd->grid_dispute_register);
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_SIGN:
        return dispute_sign(ctx, cmd->grid_dispute_sign);
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_MEDIATE:
        return dispute_mediate(ctx, cmd->grid_dispute_mediate);
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_RESOLVE:
        return dispute_close(ctx, "grid_dispute_resolve", cmd->grid_dispute_resolve->id, "outcome",
                             cmd->grid_dispute_resolve->outcome, ZGRID_DA_RESOLVE);
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_FAIL:
        return dispute_close(ctx, "grid_dispute_fail", cmd->grid_dispute_fail->id, "reason",
                             cmd->grid_dispute_fail->reason, ZGRID_DA_FAIL);
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_EVALUATE:
        return dispute_evaluate(ctx, cmd->grid_dispute_evaluate);
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_ARCHIVE:
        return dispute_archive(ctx, cmd->grid_dispute_archive);
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSON_REGISTER:
        return kp_register(ctx, cmd->grid_keyperson_register);
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSON_UPDATE:
        return kp_update(ctx, cmd->grid_keyperson_update);
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSON_REMOVE:
        return kp_remove(ctx, cmd->grid_keyperson_remove);
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSON_REVEAL:
        return kp_reveal(ctx, cmd->grid_keyperson_reveal);
    default:
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "misrouted command");
    }
}

int zgrid_cases_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_GRID_VISITS_LIST:
        return visits_list(ctx, cmd->grid_visits_list);
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_GET:
        return dispute_get(ctx, cmd->grid_dispute_get);
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTES_LIST:
        return disputes_list(ctx, cmd->grid_disputes_list);
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSON_GET:
        return kp_get(ctx, cmd->grid_keyperson_get);
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSONS_LIST:
        return kps_list(ctx, cmd->grid_keypersons_list);
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSON_PERSONAL:
        return kp_personal(ctx, cmd->grid_keyperson_personal);
    default:
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "misrouted query");
    }
}
