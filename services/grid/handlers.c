/* handlers: dispatch, shared helpers, units, point lookup and QR codes
 * (handlers.h, docs/grid.md). */
#include "services/grid/handlers.h"

#include <ctype.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/caltime.h"
#include "common/err.h"
#include "common/log.h"

#define LOCATE_ROWS_MAX 1000000 /* geo rows one point lookup examines */

/* ---- shared helpers ------------------------------------------------------------------ */

zgrid_actor_t zgrid_actor(const zsvc_ctx_t *ctx)
{
    zgrid_actor_t a = {"", "", "", ""};
    const Zhili__V1__Actor *x = ctx->cmd ? ctx->cmd->actor : NULL;
    if (x != NULL) {
        a.id = x->id ? x->id : "";
        a.role = x->role ? x->role : "";
        a.area = x->area ? x->area : "";
        a.name = x->name ? x->name : "";
    }
    return a;
}

const char *zgrid_who(const zsvc_ctx_t *ctx)
{
    zgrid_actor_t a = zgrid_actor(ctx);
    return a.name[0] != '\0' ? a.name : a.id;
}

const zgrid_service_t *zgrid_service(const zsvc_ctx_t *ctx)
{
    return ctx->user;
}

const char *zgrid_field(zsvc_ctx_t *ctx, const char *cmd, const char *field)
{
    return zarena_printf(ctx->arena, "%s.%s", cmd, field);
}

int zgrid_fail_err(zsvc_ctx_t *ctx, const char *cmd, const zgrid_err_t *err)
{
    return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, err->field), "%s", err->message);
}

int zgrid_scope(zsvc_ctx_t *ctx, const char *cmd, const char *field, const char *area)
{
    zgrid_actor_t a = zgrid_actor(ctx);
    if (zarea_within(a.area, area)) {
        return 0;
    }
    return zsvc_fail(ctx, ZE_FORBIDDEN, zgrid_field(ctx, cmd, field), "%s is outside your scope %s",
                     area, a.area);
}

int zgrid_list_scope(zsvc_ctx_t *ctx, const char *cmd)
{
    const char *area = ctx->cmd->area ? ctx->cmd->area : "";
    if (!zarea_prefix_valid(area)) {
        return zsvc_fail(ctx, ZE_INVALID, "area",
                         "area must be an area-code prefix of up to 18 "
                         "digits");
    }
    zgrid_actor_t a = zgrid_actor(ctx);
    if (!zarea_within(a.area, area)) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "area", "area %s is outside your scope %s", area,
                         a.area);
    }
    (void)cmd;
    return 0;
}

Zhili__Grid__Unit *zgrid_unit_load(zsvc_ctx_t *ctx, const char *code)
{
    void *u = NULL;
    if (code == NULL || !zarea_valid(code) ||
        zgrid_row_get(ctx, "units", code, strlen(code), &zhili__grid__unit__descriptor, &u) != 0) {
        return NULL;
    }
    return u;
}

int zgrid_unit_required(zsvc_ctx_t *ctx, const char *cmd, const char *field, const char *code)
{
    if (zgrid_unit_load(ctx, code) != NULL) {
        return 0;
    }
    if (ztxn_err(ctx->txn) != 0) {
        return ztxn_err(ctx->txn);
    }
    return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, field),
                     "%s: no unit %s exists (import or create it first)", field, code);
}

Zhili__Grid__Person *zgrid_person_load(zsvc_ctx_t *ctx, const char *id)
{
    void *p = NULL;
    zgrid_err_t err;
    if (zgrid_id_check(id, "id", &err) != 0 ||
        zgrid_row_get(ctx, "people", id, strlen(id), &zhili__grid__person__descriptor, &p) != 0 ||
        ((Zhili__Grid__Person *)p)->removed) {
        return NULL;
    }
    return p;
}

typedef struct {
    zsvc_ctx_t *ctx;
    char **ids;
    size_t n, cap;
    size_t skip;
} links_acc_t;

static int on_link(void *arg, zval_t key, zval_t val)
{
    (void)val;
    links_acc_t *acc = arg;
    if (acc->n == acc->cap) {
        return 1;
    }
    size_t len = key.len - acc->skip;
    char *id = zsvc_alloc(acc->ctx, len + 1);
    memcpy(id, (const char *)key.data + acc->skip, len);
    acc->ids[acc->n++] = id;
    return 0;
}

char **zgrid_police_grids_of(zsvc_ctx_t *ctx, const char *grid, size_t *n)
{
    *n = 0;
    if (zarea_level(grid) != ZAREA_GRID) {
        return NULL;
    }
    char prefix[ZAREA_BYTES_MAX + 2];
    snprintf(prefix, sizeof prefix, "%s/", grid);
    links_acc_t acc = {ctx, NULL, 0, ZGRID_POLICE_GRID_GRIDS_MAX, strlen(prefix)};
    acc.ids = zsvc_alloc(ctx, acc.cap * sizeof *acc.ids);
    ztxn_scan(ctx->txn, zsvc_table(ctx, "pg_links"), prefix, strlen(prefix), NULL, 0, &acc,
              on_link);
    *n = acc.n;
    return acc.ids;
}

const char *zgrid_grid_of(zsvc_ctx_t *ctx, const char *area)
{
    char grid[ZAREA_BYTES_MAX + 1];
    zarea_at_level(area, ZAREA_GRID, grid);
    return zsvc_strdup(ctx, grid);
}

bool zgrid_msg_equal(zsvc_ctx_t *ctx, const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la = protobuf_c_message_get_packed_size(a);
    size_t lb = protobuf_c_message_get_packed_size(b);
    if (la != lb) {
        return false;
    }
    uint8_t *x = zsvc_alloc(ctx, la + 1), *y = zsvc_alloc(ctx, lb + 1);
    protobuf_c_message_pack(a, x);
    protobuf_c_message_pack(b, y);
    return memcmp(x, y, la) == 0;
}

char *zgrid_dup(zsvc_ctx_t *ctx, const char *s)
{
    return zsvc_strdup(ctx, s ? s : "");
}

int zgrid_time_parse(const char *text, int64_t *ms)
{
    size_t len = strlen(text);
    bool digits = len > 0 && len <= 15;
    for (size_t i = 0; digits && i < len; i++) {
        digits = isdigit((unsigned char)text[i]) != 0;
    }
    if (digits) {
        *ms = strtoll(text, NULL, 10);
        return 0;
    }
    return ztime_parse(text, ms);
}

/* ---- units ------------------------------------------------------------------------------ */

static Zhili__Grid__Point *point_new(zsvc_ctx_t *ctx, double lat, double lon)
{
    Zhili__Grid__Point *p = zsvc_alloc(ctx, sizeof *p);
    zhili__grid__point__init(p);
    p->lat = lat;
    p->long_ = lon;
    return p;
}

/* The stored Unit for an upsert, after every check that needs no store. */
static int unit_build(zsvc_ctx_t *ctx, const char *cmd, const Zhili__Grid__UnitUpsert *in,
                      Zhili__Grid__Unit **out)
{
    zgrid_err_t err;
    if (in->n_boundary > ZGRID_BOUNDARY_POINTS_MAX + 1) {
        zgrid_err_set(&err, "boundary", "boundary has %zu points; at most %d", in->n_boundary,
                      ZGRID_BOUNDARY_POINTS_MAX);
        return zgrid_fail_err(ctx, cmd, &err);
    }
    zgrid_point_t *pts = zsvc_alloc(ctx, (in->n_boundary + 1) * sizeof *pts);
    for (size_t i = 0; i < in->n_boundary; i++) {
        pts[i] = (zgrid_point_t){in->boundary[i]->lat, in->boundary[i]->long_};
    }
    bool has_c = in->centroid_present_case == ZHILI__GRID__UNIT_UPSERT__CENTROID_PRESENT_CENTROID;
    zgrid_unit_in_t u = {
        in->code,
        in->name,
        in->leader,
        in->branch,
        has_c,
        has_c ? (zgrid_point_t){in->centroid->lat, in->centroid->long_} : (zgrid_point_t){0, 0},
        pts,
        in->n_boundary};
    if (zgrid_unit_check(&u, &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    Zhili__Grid__Unit *unit = zsvc_alloc(ctx, sizeof *unit);
    zhili__grid__unit__init(unit);
    unit->code = in->code;
    unit->level = (uint32_t)zarea_level(in->code);
    unit->name = in->name;
    char parent[ZAREA_BYTES_MAX + 1];
    zarea_parent(in->code, parent);
    unit->parent = zsvc_strdup(ctx, parent);
    unit->leader = zgrid_dup(ctx, in->leader);
    unit->branch = zgrid_dup(ctx, in->branch);
    if (has_c) {
        unit->centroid_present_case = ZHILI__GRID__UNIT__CENTROID_PRESENT_CENTROID;
        unit->centroid = point_new(ctx, u.centroid.lat, u.centroid.lon);
    }
    unit->n_boundary = u.n_boundary;
    unit->boundary = zsvc_alloc(ctx, (u.n_boundary + 1) * sizeof *unit->boundary);
    for (size_t i = 0; i < u.n_boundary; i++) {
        unit->boundary[i] = point_new(ctx, pts[i].lat, pts[i].lon);
    }
    char qr[ZGRID_QR_CHARS + 1] = "";
    if (zgrid_qr_level(zarea_level(in->code))) {
        zgrid_qr_code(&zgrid_service(ctx)->keys, in->code, qr);
    }
    unit->qr = zsvc_strdup(ctx, qr);
    *out = unit;
    return 0;
}

static bool unit_same(zsvc_ctx_t *ctx, Zhili__Grid__Unit *a, const Zhili__Grid__Unit *b)
{
    int64_t keep = a->updated_ms;
    a->updated_ms = b->updated_ms;
    bool same = zgrid_msg_equal(ctx, &a->base, &b->base);
    a->updated_ms = keep;
    return same;
}

enum { UNIT_UNCHANGED = 0, UNIT_CREATED = 1, UNIT_CHANGED = 2 };

/* Create or change one unit: checks, the row, its geo and QR rows, the event. */
static int unit_apply(zsvc_ctx_t *ctx, const char *cmd, const Zhili__Grid__UnitUpsert *in,
                      int *outcome, Zhili__Grid__Unit **out)
{
    Zhili__Grid__Unit *unit = NULL;
    int rc = unit_build(ctx, cmd, in, &unit);
    if (rc != 0 || (rc = zgrid_scope(ctx, cmd, "code", unit->code)) != 0) {
        return rc;
    }
    if (unit->parent[0] != '\0' && zgrid_unit_load(ctx, unit->parent) == NULL) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "code"),
                         "the parent unit %s of %s does not exist: create the %s first",
                         unit->parent, unit->code, zarea_level_name(zarea_level(unit->parent)));
    }
    Zhili__Grid__Unit *old = zgrid_unit_load(ctx, unit->code);
    *out = old != NULL ? old : unit;
    *outcome = UNIT_UNCHANGED;
    if (old != NULL && unit_same(ctx, unit, old)) {
        return ztxn_err(ctx->txn);
    }
    unit->updated_ms = ctx->now_ms;
    zgrid_row_put(ctx, "units", unit->code, strlen(unit->code), &unit->base);
    zgrid_geo_put(ctx, unit);
    if (unit->qr[0] != '\0') {
        ztxn_put(ctx->txn, zsvc_table(ctx, "qr"), unit->qr, strlen(unit->qr), unit->code,
                 strlen(unit->code));
    }
    zsvc_emit(ctx, "unit_upserted", unit->code, ZHILI__V1__EVENT__BODY_GRID_UNIT, unit);
    *outcome = old != NULL ? UNIT_CHANGED : UNIT_CREATED;
    *out = unit;
    return ztxn_err(ctx->txn);
}

static int unit_upsert(zsvc_ctx_t *ctx, const Zhili__Grid__UnitUpsert *in)
{
    int outcome = 0;
    Zhili__Grid__Unit *unit = NULL;
    int rc = unit_apply(ctx, "grid_unit_upsert", in, &outcome, &unit);
    if (rc == 0) {
        ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_UNIT;
        ctx->reply->grid_unit = unit;
    }
    return rc;
}

/* All or nothing: the first bad unit fails the command, and the runtime
 * rolls back the units before it. */
static int units_import(zsvc_ctx_t *ctx, const Zhili__Grid__UnitsImport *in)
{
    if (in->n_units == 0 || in->n_units > ZGRID_IMPORT_UNITS_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "grid_units_import.units",
                         "an import carries 1 to %d units, got %zu", ZGRID_IMPORT_UNITS_MAX,
                         in->n_units);
    }
    Zhili__Grid__ImportResult *res = zsvc_alloc(ctx, sizeof *res);
    zhili__grid__import_result__init(res);
    for (size_t i = 0; i < in->n_units; i++) {
        const char *cmd = zarena_printf(ctx->arena, "grid_units_import.units[%zu]", i);
        int outcome = 0;
        Zhili__Grid__Unit *unit = NULL;
        int rc = unit_apply(ctx, cmd, in->units[i], &outcome, &unit);
        if (rc != 0) {
            const char *why = ctx->reply->message ? zgrid_dup(ctx, ctx->reply->message) : "";
            const char *field = ctx->reply->field ? zgrid_dup(ctx, ctx->reply->field) : NULL;
            return zsvc_fail(ctx, rc, field,
                             "unit %zu (%.24s): %s; nothing of this batch was "
                             "imported",
                             i + 1, in->units[i]->code ? in->units[i]->code : "", why);
        }
        res->created += outcome == UNIT_CREATED;
        res->changed += outcome == UNIT_CHANGED;
        res->unchanged += outcome == UNIT_UNCHANGED;
    }
    zlogf(ZLOG_INFO, "units_imported", "source=%.80s created=%u changed=%u unchanged=%u",
          in->source ? in->source : "", res->created, res->changed, res->unchanged);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_IMPORT;
    ctx->reply->grid_import = res;
    return 0;
}

typedef struct {
    size_t code_len;
    size_t children;
} children_acc_t;

static int on_child(void *arg, zval_t key, zval_t val)
{
    (void)val;
    children_acc_t *acc = arg;
    acc->children += key.len == acc->code_len + 3;
    return 0;
}

static size_t children_count(zsvc_ctx_t *ctx, const char *code)
{
    children_acc_t acc = {strlen(code), 0};
    if (acc.code_len < ZAREA_BYTES_MAX) {
        ztxn_scan(ctx->txn, zsvc_table(ctx, "units"), code, acc.code_len, NULL, 0, &acc, on_child);
    }
    return acc.children;
}

static int on_any(void *arg, zval_t key, zval_t val)
{
    (void)val;
    size_t *min_len = arg;
    return key.len > *min_len ? 1 : 0;
}

/* Does a table hold a key longer than `min_len` under prefix? */
static bool table_holds(zsvc_ctx_t *ctx, const char *table, const char *prefix, size_t min_len)
{
    return ztxn_scan(ctx->txn, zsvc_table(ctx, table), prefix, strlen(prefix), NULL, 0, &min_len,
                     on_any) == 1;
}

static int unit_remove(zsvc_ctx_t *ctx, const Zhili__Grid__UnitRemove *in)
{
    const char *cmd = "grid_unit_remove";
    zgrid_err_t err;
    if (zgrid_area_check(in->code, ZAREA_NONE, "code", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    int rc = zgrid_scope(ctx, cmd, "code", in->code);
    if (rc != 0) {
        return rc;
    }
    Zhili__Grid__Unit *unit = zgrid_unit_load(ctx, in->code);
    if (unit == NULL) {
        return ztxn_err(ctx->txn) ? ztxn_err(ctx->txn)
                                  : zsvc_fail(ctx, ZE_NOT_FOUND, "grid_unit_remove.code",
                                              "no unit %s exists", in->code);
    }
    size_t len = strlen(in->code);
    const char *what = NULL;
    if (table_holds(ctx, "units", in->code, len)) {
        what = "units below it";
    } else if (zgrid_people_hold_area(ctx, in->code, &what)) {
        /* what set */
    } else if (zgrid_cases_hold_area(ctx, in->code)) {
        what = "key persons under management";
    }
    if (what != NULL) {
        return zsvc_fail(ctx, ZE_CONFLICT, "grid_unit_remove.code",
                         "unit %s still has %s; remove or move them first", in->code, what);
    }
    int units = zsvc_table(ctx, "units");
    ztxn_del(ctx->txn, units, in->code, len);
    ztxn_del(ctx->txn, zsvc_table(ctx, "geo"), in->code, len);
    if (unit->qr[0] != '\0') {
        ztxn_del(ctx->txn, zsvc_table(ctx, "qr"), unit->qr, strlen(unit->qr));
    }
    unit->removed = true;
    unit->updated_ms = ctx->now_ms;
    zsvc_emit(ctx, "unit_removed", unit->code, ZHILI__V1__EVENT__BODY_GRID_UNIT, unit);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_UNIT;
    ctx->reply->grid_unit = unit;
    return ztxn_err(ctx->txn);
}

static int unit_get(zsvc_ctx_t *ctx, const Zhili__Grid__UnitGet *in)
{
    const char *cmd = "grid_unit_get";
    zgrid_err_t err;
    if (zgrid_area_check(in->code, ZAREA_NONE, "code", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    int rc = zgrid_scope(ctx, cmd, "code", in->code);
    if (rc != 0) {
        return rc;
    }
    Zhili__Grid__Unit *unit = zgrid_unit_load(ctx, in->code);
    if (unit == NULL) {
        return ztxn_err(ctx->txn) ? ztxn_err(ctx->txn)
                                  : zsvc_fail(ctx, ZE_NOT_FOUND, "grid_unit_get.code",
                                              "no unit %s exists", in->code);
    }
    Zhili__Grid__UnitDetail *d = zsvc_alloc(ctx, sizeof *d);
    zhili__grid__unit_detail__init(d);
    d->unit = unit;
    d->ancestors = zsvc_alloc(ctx, ZGRID_ANCESTORS_MAX * sizeof *d->ancestors);
    for (zarea_level_t l = ZAREA_DISTRICT; l < zarea_level(in->code); l++) {
        char code[ZAREA_BYTES_MAX + 1];
        zarea_at_level(in->code, l, code);
        Zhili__Grid__Unit *a = zgrid_unit_load(ctx, code);
        if (a != NULL) {
            a->n_boundary = 0; /* the ancestors' names matter here, not their shapes */
            d->ancestors[d->n_ancestors++] = a;
        }
    }
    d->children = (uint32_t)children_count(ctx, in->code);
    d->police_grids = zgrid_police_grids_of(ctx, in->code, &d->n_police_grids);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_UNIT_DETAIL;
    ctx->reply->grid_unit_detail = d;
    return ztxn_err(ctx->txn);
}

typedef struct {
    zsvc_ctx_t *ctx;
    zgrid_page_t page;
    size_t want_len; /* 0: any level */
    Zhili__Grid__Units *out;
} units_acc_t;

static int on_unit_row(void *arg, zval_t key, zval_t val)
{
    units_acc_t *acc = arg;
    bool wanted = acc->want_len == 0 || key.len == acc->want_len;
    if (zgrid_page_room(&acc->page, wanted ? val.len : 0) != 0) {
        return 1;
    }
    if (wanted) {
        Zhili__Grid__Unit *u = zgrid_row_unpack(acc->ctx, &zhili__grid__unit__descriptor, val);
        if (u == NULL) {
            return ZE_INTERNAL;
        }
        acc->out->units[acc->out->n_units++] = u;
    }
    zgrid_page_consumed(&acc->page, key, wanted, val.len);
    return 0;
}

static int units_list(zsvc_ctx_t *ctx, const Zhili__Grid__UnitsList *in)
{
    const char *cmd = "grid_units_list";
    int rc = zgrid_list_scope(ctx, cmd);
    if (rc != 0) {
        return rc;
    }
    const char *area = ctx->cmd->area ? ctx->cmd->area : "";
    const char *prefix = area;
    units_acc_t acc = {ctx, {0}, 0, NULL};
    if (in->parent[0] != '\0') {
        zgrid_err_t err;
        if (zgrid_area_check(in->parent, ZAREA_NONE, "parent", &err) != 0) {
            return zgrid_fail_err(ctx, cmd, &err);
        }
        if (!zarea_within(area, in->parent) || (rc = zgrid_scope(ctx, cmd, "parent", in->parent))) {
            return rc ? rc
                      : zsvc_fail(ctx, ZE_INVALID, "grid_units_list.parent",
                                  "parent %s is outside the area %s", in->parent, area);
        }
        prefix = in->parent;
        acc.want_len = strlen(in->parent) + 3;
    }
    if (in->level < 0 || in->level > ZAREA_BUILDING ||
        (in->level != 0 && acc.want_len != 0 && (size_t)(3 + 3 * in->level) != acc.want_len)) {
        return zsvc_fail(ctx, ZE_INVALID, "grid_units_list.level",
                         "level must be 1 (district) to 5 (building), or 0 for every level%s",
                         acc.want_len ? ", and one below the parent's" : "");
    }
    acc.want_len = in->level != 0 ? (size_t)(3 + 3 * in->level) : acc.want_len;
    uint8_t start[ZSTORE_KEY_BYTES_MAX];
    size_t start_len = 0;
    if ((rc = zgrid_page_begin(ctx, &acc.page, in->limit, in->after, cmd, start, &start_len))) {
        return rc;
    }
    acc.out = zsvc_alloc(ctx, sizeof *acc.out);
    zhili__grid__units__init(acc.out);
    acc.out->units = zsvc_alloc(ctx, acc.page.limit * sizeof *acc.out->units);
    rc = ztxn_scan(ctx->txn, zsvc_table(ctx, "units"), prefix, strlen(prefix),
                   start_len ? start : NULL, start_len, &acc, on_unit_row);
    if (rc < 0) {
        return zsvc_fail(ctx, rc, NULL, "the units could not be read");
    }
    acc.out->next_after = zgrid_page_next(ctx, &acc.page);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_UNITS;
    ctx->reply->grid_units = acc.out;
    return 0;
}

/* ---- point lookup ------------------------------------------------------------------------- */

typedef struct {
    zgrid_point_t p;
    zgrid_point_t *pts; /* scratch for one boundary */
    size_t rows;
    char inside[ZAREA_BYTES_MAX + 1];
    double inside_bbox;
    char near_low[ZAREA_BYTES_MAX + 1]; /* nearest centroid of a grid or building */
    double near_low_m;
    char near_any[ZAREA_BYTES_MAX + 1]; /* nearest centroid of any level */
    double near_any_m;
} locate_acc_t;

static void nearer(char *best, double *best_m, zval_t key, double m)
{
    if (m < *best_m || (m == *best_m && key.len > strlen(best))) {
        *best_m = m;
        memcpy(best, key.data, key.len);
        best[key.len] = '\0';
    }
}

static int on_geo_row(void *arg, zval_t key, zval_t val)
{
    locate_acc_t *acc = arg;
    if (++acc->rows > LOCATE_ROWS_MAX || key.len > ZAREA_BYTES_MAX) {
        return acc->rows > LOCATE_ROWS_MAX ? 1 : 0;
    }
    zgrid_geo_t g;
    if (zgrid_geo_decode(val, &g, NULL) != 0) {
        return 0;
    }
    zgrid_point_t p = acc->p;
    if (g.n_boundary > 0 && key.len >= strlen(acc->inside) && p.lat >= g.min_lat &&
        p.lat <= g.max_lat && p.lon >= g.min_lon && p.lon <= g.max_lon) {
        zgrid_geo_decode(val, &g, acc->pts);
        double bbox = (g.max_lat - g.min_lat) * (g.max_lon - g.min_lon);
        bool deeper = key.len > strlen(acc->inside);
        if (zgrid_polygon_contains(acc->pts, g.n_boundary, p) &&
            (deeper || bbox < acc->inside_bbox)) {
            memcpy(acc->inside, key.data, key.len);
            acc->inside[key.len] = '\0';
            acc->inside_bbox = bbox;
        }
    }
    if (g.has_centroid) {
        double m = zgrid_distance_m(p, g.centroid);
        nearer(acc->near_any, &acc->near_any_m, key, m);
        if (g.level >= ZAREA_GRID) {
            nearer(acc->near_low, &acc->near_low_m, key, m);
        }
    }
    return 0;
}

static int coordinate(zsvc_ctx_t *ctx, const char *field, const char *text, double lo, double hi,
                      double *out)
{
    if (text == NULL || zgrid_parse_double(text, out) != 0 || *out < lo || *out > hi) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, "grid_locate", field),
                         "%s must be a decimal number in [%g, %g], got \"%.24s\"", field, lo, hi,
                         text ? text : "");
    }
    return 0;
}

static int locate(zsvc_ctx_t *ctx, const Zhili__Grid__Locate *in)
{
    int rc = zgrid_list_scope(ctx, "grid_locate");
    locate_acc_t acc;
    memset(&acc, 0, sizeof acc);
    if (rc != 0 || (rc = coordinate(ctx, "lat", in->lat, -90, 90, &acc.p.lat)) != 0 ||
        (rc = coordinate(ctx, "long", in->long_, -180, 180, &acc.p.lon)) != 0) {
        return rc;
    }
    acc.pts = zsvc_alloc(ctx, ZGRID_BOUNDARY_POINTS_MAX * sizeof *acc.pts);
    acc.near_low_m = acc.near_any_m = DBL_MAX;
    const char *area = ctx->cmd->area ? ctx->cmd->area : "";
    ztxn_scan(ctx->txn, zsvc_table(ctx, "geo"), area, strlen(area), NULL, 0, &acc, on_geo_row);
    Zhili__Grid__Located *out = zsvc_alloc(ctx, sizeof *out);
    zhili__grid__located__init(out);
    const char *code = acc.inside[0] ? acc.inside : acc.near_low[0] ? acc.near_low : acc.near_any;
    out->method = acc.inside[0] ? "boundary" : "centroid";
    out->distance_m = acc.inside[0] ? 0 : acc.near_low[0] ? acc.near_low_m : acc.near_any_m;
    out->unit = code[0] ? zgrid_unit_load(ctx, code) : NULL;
    if (out->unit == NULL) {
        return ztxn_err(ctx->txn) ? ztxn_err(ctx->txn)
                                  : zsvc_fail(ctx, ZE_NOT_FOUND, NULL,
                                              "no unit in area %s has a boundary or a centroid",
                                              area[0] ? area : "(all)");
    }
    out->unit->n_boundary = 0;
    out->grid = (char *)zgrid_grid_of(ctx, code);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_LOCATED;
    ctx->reply->grid_located = out;
    return 0;
}

/* ---- QR codes ------------------------------------------------------------------------------- */

/* Public: a resident scanning a code has no token. The answer is what the
 * unit's notice board shows: names, leader and branch, no boundary. */
static int qr_resolve(zsvc_ctx_t *ctx, const Zhili__Grid__QrResolve *in)
{
    char code[ZGRID_QR_CHARS + 1];
    if (!zgrid_qr_normalize(in->code, code)) {
        return zsvc_fail(ctx, ZE_INVALID, "grid_qr_resolve.code",
                         "code must be the %d letters and digits printed under the QR code",
                         ZGRID_QR_CHARS);
    }
    zval_t v;
    char area[ZAREA_BYTES_MAX + 1];
    if (ztxn_get(ctx->txn, zsvc_table(ctx, "qr"), code, ZGRID_QR_CHARS, &v) != 0 ||
        v.len > ZAREA_BYTES_MAX) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, "grid_qr_resolve.code",
                         "no grid or building has the QR code %s", code);
    }
    memcpy(area, v.data, v.len);
    area[v.len] = '\0';
    Zhili__Grid__Unit *unit = zgrid_unit_load(ctx, area);
    if (unit == NULL) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, "grid_qr_resolve.code",
                         "the unit of QR code %s no longer exists", code);
    }
    unit->n_boundary = 0;
    Zhili__Grid__QrTarget *t = zsvc_alloc(ctx, sizeof *t);
    zhili__grid__qr_target__init(t);
    t->code = zsvc_strdup(ctx, code);
    t->unit = unit;
    t->grid = (char *)zgrid_grid_of(ctx, area);
    Zhili__Grid__Unit *g = zgrid_unit_load(ctx, t->grid);
    t->grid_name = g ? g->name : "";
    char community[ZAREA_BYTES_MAX + 1];
    zarea_at_level(area, ZAREA_COMMUNITY, community);
    t->community = zsvc_strdup(ctx, community);
    Zhili__Grid__Unit *c = zgrid_unit_load(ctx, community);
    t->community_name = c ? c->name : "";
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_QR;
    ctx->reply->grid_qr = t;
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

int zgrid_on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_GRID_UNITS_IMPORT:
        return units_import(ctx, cmd->grid_units_import);
    case ZHILI__V1__COMMAND__BODY_GRID_UNIT_UPSERT:
        return unit_upsert(ctx, cmd->grid_unit_upsert);
    case ZHILI__V1__COMMAND__BODY_GRID_UNIT_REMOVE:
        return unit_remove(ctx, cmd->grid_unit_remove);
    case ZHILI__V1__COMMAND__BODY_GRID_PERSON_UPSERT:
    case ZHILI__V1__COMMAND__BODY_GRID_PERSON_REMOVE:
    case ZHILI__V1__COMMAND__BODY_GRID_TEAM_UPSERT:
    case ZHILI__V1__COMMAND__BODY_GRID_TEAM_REMOVE:
    case ZHILI__V1__COMMAND__BODY_GRID_POLICE_GRID_UPSERT:
    case ZHILI__V1__COMMAND__BODY_GRID_POLICE_GRID_REMOVE:
    case ZHILI__V1__COMMAND__BODY_GRID_CENTER_UPSERT:
    case ZHILI__V1__COMMAND__BODY_GRID_CENTER_REMOVE:
        return zgrid_people_command(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_GRID_VISIT_RECORD:
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_REGISTER:
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_SIGN:
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_MEDIATE:
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_RESOLVE:
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_FAIL:
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_EVALUATE:
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_ARCHIVE:
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSON_REGISTER:
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSON_UPDATE:
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSON_REMOVE:
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSON_REVEAL:
        return zgrid_cases_command(ctx, cmd);
    default:
        return zsvc_fail(ctx, ZE_INVALID, "body",
                         "the grid service does not take this command (docs/grid.md lists its "
                         "commands)");
    }
}

bool zgrid_is_query(const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_GRID_UNIT_GET:
    case ZHILI__V1__COMMAND__BODY_GRID_UNITS_LIST:
    case ZHILI__V1__COMMAND__BODY_GRID_LOCATE:
    case ZHILI__V1__COMMAND__BODY_GRID_PEOPLE_LIST:
    case ZHILI__V1__COMMAND__BODY_GRID_TEAMS_LIST:
    case ZHILI__V1__COMMAND__BODY_GRID_POLICE_GRID_GET:
    case ZHILI__V1__COMMAND__BODY_GRID_POLICE_GRIDS_LIST:
    case ZHILI__V1__COMMAND__BODY_GRID_VISITS_LIST:
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTE_GET:
    case ZHILI__V1__COMMAND__BODY_GRID_DISPUTES_LIST:
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSON_GET:
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSONS_LIST:
    case ZHILI__V1__COMMAND__BODY_GRID_KEYPERSON_PERSONAL:
    case ZHILI__V1__COMMAND__BODY_GRID_CENTERS_LIST:
    case ZHILI__V1__COMMAND__BODY_GRID_QR_RESOLVE:
        return true;
    default:
        return false;
    }
}

int zgrid_on_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_GRID_UNIT_GET:
        return unit_get(ctx, cmd->grid_unit_get);
    case ZHILI__V1__COMMAND__BODY_GRID_UNITS_LIST:
        return units_list(ctx, cmd->grid_units_list);
    case ZHILI__V1__COMMAND__BODY_GRID_LOCATE:
        return locate(ctx, cmd->grid_locate);
    case ZHILI__V1__COMMAND__BODY_GRID_QR_RESOLVE:
        return qr_resolve(ctx, cmd->grid_qr_resolve);
    case ZHILI__V1__COMMAND__BODY_GRID_PEOPLE_LIST:
    case ZHILI__V1__COMMAND__BODY_GRID_TEAMS_LIST:
    case ZHILI__V1__COMMAND__BODY_GRID_POLICE_GRID_GET:
    case ZHILI__V1__COMMAND__BODY_GRID_POLICE_GRIDS_LIST:
    case ZHILI__V1__COMMAND__BODY_GRID_CENTERS_LIST:
        return zgrid_people_query(ctx, cmd);
    default:
        return zgrid_cases_query(ctx, cmd);
    }
}
