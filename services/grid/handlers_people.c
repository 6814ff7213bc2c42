/* handlers_people: people and roles, community police teams, police grids
 * (警格) with their links to admin grids, and party-member central
 * households (党员中心户) (handlers.h, docs/grid.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "services/grid/handlers.h"

/* ---- lists over an "area/id" index ------------------------------------------------ */

typedef struct {
    zsvc_ctx_t *ctx;
    zgrid_page_t page;
    const char *table; /* the rows the index points at */
    const ProtobufCMessageDescriptor *desc;
    const char *value; /* only index rows with this value; NULL: all */
    void **items;
    size_t n;
} index_acc_t;

static int on_index_row(void *arg, zval_t key, zval_t val)
{
    index_acc_t *acc = arg;
    const char *slash = memchr(key.data, '/', key.len);
    if (slash == NULL) {
        return ZE_INTERNAL;
    }
    const char *id = slash + 1;
    size_t id_len = key.len - (size_t)(id - (const char *)key.data);
    bool wanted = acc->value == NULL ||
                  (val.len == strlen(acc->value) && memcmp(val.data, acc->value, val.len) == 0);
    zval_t row = {NULL, 0};
    if (wanted &&
        ztxn_get(acc->ctx->txn, zsvc_table(acc->ctx, acc->table), id, id_len, &row) != 0) {
        wanted = false; /* an index row without its row: skipped */
    }
    if (zgrid_page_room(&acc->page, row.len) != 0) {
        return 1;
    }
    if (wanted) {
        void *m = zgrid_row_unpack(acc->ctx, acc->desc, row);
        if (m == NULL) {
            return ZE_INTERNAL;
        }
        acc->items[acc->n++] = m;
    }
    zgrid_page_consumed(&acc->page, key, wanted, row.len);
    return 0;
}

/* Page through `index` under the command's area. 0 with acc filled. */
static int index_list(zsvc_ctx_t *ctx, const char *cmd, index_acc_t *acc, const char *index,
                      int64_t limit, const char *after)
{
    int rc = zgrid_list_scope(ctx, cmd);
    uint8_t start[ZSTORE_KEY_BYTES_MAX];
    size_t start_len = 0;
    if (rc != 0 || (rc = zgrid_page_begin(ctx, &acc->page, limit, after, cmd, start, &start_len))) {
        return rc;
    }
    acc->ctx = ctx;
    acc->items = zsvc_alloc(ctx, acc->page.limit * sizeof *acc->items);
    const char *area = ctx->cmd->area ? ctx->cmd->area : "";
    rc = ztxn_scan(ctx->txn, zsvc_table(ctx, index), area, strlen(area), start_len ? start : NULL,
                   start_len, acc, on_index_row);
    return rc < 0 ? zsvc_fail(ctx, rc, NULL, "the list could not be read") : 0;
}

static int on_any_row(void *arg, zval_t key, zval_t val)
{
    (void)arg;
    (void)key;
    (void)val;
    return 1;
}

static bool holds(zsvc_ctx_t *ctx, const char *table, const char *prefix)
{
    return ztxn_scan(ctx->txn, zsvc_table(ctx, table), prefix, strlen(prefix), NULL, 0, NULL,
                     on_any_row) == 1;
}

bool zgrid_people_hold_area(zsvc_ctx_t *ctx, const char *area, const char **what)
{
    static const char *const tables[][2] = {
        {"people_area", "people serving it"},
        {"teams_area", "community police teams"},
        {"pgrids_area", "police grids"},
        {"pg_links", "links to police grids"},
        {"centers", "party-member central households"},
    };
    for (size_t i = 0; i < ZARRAY_LEN(tables); i++) {
        if (holds(ctx, tables[i][0], area)) {
            *what = tables[i][1];
            return true;
        }
    }
    return false;
}

/* The old row's area must be in scope too: nobody moves someone else's
 * person, team or police grid into their own scope. */
static int scope_both(zsvc_ctx_t *ctx, const char *cmd, const char *area, const char *old_area)
{
    int rc = zgrid_scope(ctx, cmd, "area", area);
    if (rc == 0 && old_area != NULL && strcmp(old_area, area) != 0) {
        rc = zgrid_scope(ctx, cmd, "area", old_area);
    }
    return rc;
}

static void index_move(zsvc_ctx_t *ctx, const char *index, const char *old_area, const char *area,
                       const char *id, const char *value)
{
    uint8_t key[ZGRID_KEY_MAX];
    if (old_area != NULL) {
        zgrid_index_del(ctx, index, key, zgrid_key_area_str(key, old_area, id));
    }
    if (area != NULL) {
        size_t len = zgrid_key_area_str(key, area, id);
        ztxn_put(ctx->txn, zsvc_table(ctx, index), key, len, value ? value : "",
                 value ? strlen(value) : 0);
    }
}

/* ---- people ------------------------------------------------------------------------------ */

static int person_check(zsvc_ctx_t *ctx, const char *cmd, const Zhili__Grid__PersonUpsert *in)
{
    zgrid_err_t err;
    char kinds[160];
    if (zgrid_id_check(in->id, "id", &err) != 0 ||
        zgrid_text_check(in->name, ZGRID_PERSON_NAME_BYTES_MAX, true, "name", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    if (!zgrid_one_of(zgrid_person_kinds, in->kind)) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "kind"), "kind must be %s",
                         zgrid_list_text(zgrid_person_kinds, kinds, sizeof kinds));
    }
    if (zgrid_area_check(in->area, ZAREA_NONE, "area", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    if (!zgrid_person_level_ok(in->kind, zarea_level(in->area))) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "area"), "a %s serves %s, not %s",
                         in->kind, zgrid_person_levels_text(in->kind), in->area);
    }
    bool police = zgrid_person_is_police(in->kind);
    if (zgrid_phone_check(in->phone, false, "phone", &err) != 0 ||
        zgrid_text_check(in->station, ZGRID_STATION_BYTES_MAX, police, "station", &err) != 0) {
        if (strcmp(err.field, "station") == 0 && in->station[0] == '\0') {
            zgrid_err_set(&err, "station", "station (派出所) is required for %s", in->kind);
        }
        return zgrid_fail_err(ctx, cmd, &err);
    }
    return zgrid_unit_required(ctx, cmd, "area", in->area);
}

static int person_upsert(zsvc_ctx_t *ctx, const Zhili__Grid__PersonUpsert *in)
{
    const char *cmd = "grid_person_upsert";
    int rc = person_check(ctx, cmd, in);
    if (rc != 0) {
        return rc;
    }
    void *row = NULL;
    rc = zgrid_row_get(ctx, "people", in->id, strlen(in->id), &zhili__grid__person__descriptor,
                       &row);
    if (rc != 0 && rc != ZE_NOT_FOUND) {
        return rc;
    }
    Zhili__Grid__Person *old = row;
    const char *old_area = old != NULL && !old->removed ? old->area : NULL;
    if ((rc = scope_both(ctx, cmd, in->area, old_area)) != 0) {
        return rc;
    }
    Zhili__Grid__Person *p = zsvc_alloc(ctx, sizeof *p);
    zhili__grid__person__init(p);
    p->id = in->id;
    p->name = in->name;
    p->kind = in->kind;
    p->area = in->area;
    p->phone = in->phone;
    p->station = in->station;
    p->updated_ms = old != NULL ? old->updated_ms : 0;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_PERSON;
    ctx->reply->grid_person = p;
    if (old != NULL && zgrid_msg_equal(ctx, &p->base, &old->base)) {
        return 0;
    }
    p->updated_ms = ctx->now_ms;
    zgrid_row_put(ctx, "people", p->id, strlen(p->id), &p->base);
    index_move(ctx, "people_area", old_area, p->area, p->id, p->kind);
    zsvc_emit(ctx, "person_upserted", p->area, ZHILI__V1__EVENT__BODY_GRID_PERSON, p);
    return ztxn_err(ctx->txn);
}

static int person_remove(zsvc_ctx_t *ctx, const Zhili__Grid__PersonRemove *in)
{
    const char *cmd = "grid_person_remove";
    zgrid_err_t err;
    if (zgrid_id_check(in->id, "id", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    Zhili__Grid__Person *p = zgrid_person_load(ctx, in->id);
    if (p == NULL) {
        return ztxn_err(ctx->txn) ? ztxn_err(ctx->txn)
                                  : zsvc_fail(ctx, ZE_NOT_FOUND, zgrid_field(ctx, cmd, "id"),
                                              "no person %s is registered", in->id);
    }
    int rc = zgrid_scope(ctx, cmd, "id", p->area);
    if (rc != 0) {
        return rc;
    }
    int64_t kp = zgrid_cases_responsible(ctx, zgrid_grid_of(ctx, p->area), p->id);
    if (kp != 0) {
        return zsvc_fail(ctx, ZE_CONFLICT, zgrid_field(ctx, cmd, "id"),
                         "%s is the responsible member of key person %lld; hand the key person "
                         "over first",
                         p->id, (long long)kp);
    }
    index_move(ctx, "people_area", p->area, NULL, p->id, NULL);
    p->removed = true;
    p->updated_ms = ctx->now_ms;
    zgrid_row_put(ctx, "people", p->id, strlen(p->id), &p->base);
    zsvc_emit(ctx, "person_removed", p->area, ZHILI__V1__EVENT__BODY_GRID_PERSON, p);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_PERSON;
    ctx->reply->grid_person = p;
    return ztxn_err(ctx->txn);
}

static int people_list(zsvc_ctx_t *ctx, const Zhili__Grid__PeopleList *in)
{
    const char *cmd = "grid_people_list";
    char kinds[160];
    if (in->kind[0] != '\0' && !zgrid_one_of(zgrid_person_kinds, in->kind)) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "kind"), "kind must be %s",
                         zgrid_list_text(zgrid_person_kinds, kinds, sizeof kinds));
    }
    index_acc_t acc = {.table = "people",
                       .desc = &zhili__grid__person__descriptor,
                       .value = in->kind[0] ? in->kind : NULL};
    int rc = index_list(ctx, cmd, &acc, "people_area", in->limit, in->after);
    if (rc != 0) {
        return rc;
    }
    Zhili__Grid__People *out = zsvc_alloc(ctx, sizeof *out);
    zhili__grid__people__init(out);
    out->people = (Zhili__Grid__Person **)acc.items;
    out->n_people = acc.n;
    out->next_after = zgrid_page_next(ctx, &acc.page);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_PEOPLE;
    ctx->reply->grid_people = out;
    return 0;
}

/* A person id that must name an active person inside `area`. */
static int member_check(zsvc_ctx_t *ctx, const char *cmd, const char *field, const char *id,
                        const char *area, Zhili__Grid__Person **out)
{
    zgrid_err_t err;
    if (zgrid_id_check(id, field, &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    Zhili__Grid__Person *p = zgrid_person_load(ctx, id);
    if (p == NULL) {
        return ztxn_err(ctx->txn) ? ztxn_err(ctx->txn)
                                  : zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, field),
                                              "%s: no person %s is registered", field, id);
    }
    if (!zarea_within(area, p->area)) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, field),
                         "%s: %s serves %s, outside %s", field, id, p->area, area);
    }
    if (out != NULL) {
        *out = p;
    }
    return 0;
}

static int strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Copy and sort a list of strings; INVALID when one repeats. */
static int sorted_unique(zsvc_ctx_t *ctx, const char *cmd, const char *field, char **in, size_t n,
                         char ***out)
{
    char **v = zsvc_alloc(ctx, (n + 1) * sizeof *v);
    memcpy(v, in, n * sizeof *v);
    qsort(v, n, sizeof *v, strcmp_p);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i - 1], v[i]) == 0) {
            return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, field), "%s names %s twice",
                             field, v[i]);
        }
    }
    *out = v;
    return 0;
}

/* ---- community police teams (社区警务团队) -------------------------------------------- */

static int team_check(zsvc_ctx_t *ctx, const char *cmd, const Zhili__Grid__TeamUpsert *in)
{
    zgrid_err_t err;
    if (zgrid_id_check(in->id, "id", &err) != 0 ||
        zgrid_text_check(in->name, ZGRID_NAME_BYTES_MAX, true, "name", &err) != 0 ||
        zgrid_area_check(in->area, ZAREA_COMMUNITY, "area", &err) != 0 ||
        zgrid_text_check(in->station, ZGRID_STATION_BYTES_MAX, false, "station", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    if (in->n_members > ZGRID_TEAM_MEMBERS_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "members"),
                         "members has %zu people; at most %d", in->n_members,
                         ZGRID_TEAM_MEMBERS_MAX);
    }
    int rc = zgrid_unit_required(ctx, cmd, "area", in->area);
    if (rc == 0) {
        rc = member_check(ctx, cmd, "leader", in->leader, in->area, NULL);
    }
    for (size_t i = 0; rc == 0 && i < in->n_members; i++) {
        rc = member_check(ctx, cmd, "members", in->members[i], in->area, NULL);
    }
    return rc;
}

static int team_upsert(zsvc_ctx_t *ctx, const Zhili__Grid__TeamUpsert *in)
{
    const char *cmd = "grid_team_upsert";
    Zhili__Grid__Team *t = zsvc_alloc(ctx, sizeof *t);
    zhili__grid__team__init(t);
    int rc = team_check(ctx, cmd, in);
    if (rc != 0 ||
        (rc = sorted_unique(ctx, cmd, "members", in->members, in->n_members, &t->members)) != 0) {
        return rc;
    }
    void *row = NULL;
    rc = zgrid_row_get(ctx, "teams", in->id, strlen(in->id), &zhili__grid__team__descriptor, &row);
    if (rc != 0 && rc != ZE_NOT_FOUND) {
        return rc;
    }
    Zhili__Grid__Team *old = row;
    const char *old_area = old != NULL && !old->removed ? old->area : NULL;
    if ((rc = scope_both(ctx, cmd, in->area, old_area)) != 0) {
        return rc;
    }
    t->id = in->id;
    t->name = in->name;
    t->area = in->area;
    t->station = in->station;
    t->leader = in->leader;
    t->n_members = in->n_members;
    t->updated_ms = old != NULL ? old->updated_ms : 0;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_TEAM;
    ctx->reply->grid_team = t;
    if (old != NULL && zgrid_msg_equal(ctx, &t->base, &old->base)) {
        return 0;
    }
    t->updated_ms = ctx->now_ms;
    zgrid_row_put(ctx, "teams", t->id, strlen(t->id), &t->base);
    index_move(ctx, "teams_area", old_area, t->area, t->id, NULL);
    zsvc_emit(ctx, "team_upserted", t->area, ZHILI__V1__EVENT__BODY_GRID_TEAM, t);
    return ztxn_err(ctx->txn);
}

static int team_remove(zsvc_ctx_t *ctx, const Zhili__Grid__TeamRemove *in)
{
    const char *cmd = "grid_team_remove";
    zgrid_err_t err;
    if (zgrid_id_check(in->id, "id", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    void *row = NULL;
    int rc =
        zgrid_row_get(ctx, "teams", in->id, strlen(in->id), &zhili__grid__team__descriptor, &row);
    Zhili__Grid__Team *t = row;
    if (rc != 0 || t->removed) {
        return rc != 0 && rc != ZE_NOT_FOUND
                   ? rc
                   : zsvc_fail(ctx, ZE_NOT_FOUND, zgrid_field(ctx, cmd, "id"), "no team %s exists",
                               in->id);
    }
    if ((rc = zgrid_scope(ctx, cmd, "id", t->area)) != 0) {
        return rc;
    }
    index_move(ctx, "teams_area", t->area, NULL, t->id, NULL);
    t->removed = true;
    t->updated_ms = ctx->now_ms;
    zgrid_row_put(ctx, "teams", t->id, strlen(t->id), &t->base);
    zsvc_emit(ctx, "team_removed", t->area, ZHILI__V1__EVENT__BODY_GRID_TEAM, t);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_TEAM;
    ctx->reply->grid_team = t;
    return ztxn_err(ctx->txn);
}

static int teams_list(zsvc_ctx_t *ctx, const Zhili__Grid__TeamsList *in)
{
    index_acc_t acc = {.table = "teams", .desc = &zhili__grid__team__descriptor};
    int rc = index_list(ctx, "grid_teams_list", &acc, "teams_area", in->limit, in->after);
    if (rc != 0) {
        return rc;
    }
    Zhili__Grid__Teams *out = zsvc_alloc(ctx, sizeof *out);
    zhili__grid__teams__init(out);
    out->teams = (Zhili__Grid__Team **)acc.items;
    out->n_teams = acc.n;
    out->next_after = zgrid_page_next(ctx, &acc.page);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_TEAMS;
    ctx->reply->grid_teams = out;
    return 0;
}

/* ---- police grids (警格) ------------------------------------------------------------------ */

static int police_grid_check(zsvc_ctx_t *ctx, const char *cmd,
                             const Zhili__Grid__PoliceGridUpsert *in)
{
    zgrid_err_t err;
    zarea_level_t level = zarea_level(in->area);
    if (zgrid_id_check(in->id, "id", &err) != 0 ||
        zgrid_text_check(in->name, ZGRID_NAME_BYTES_MAX, true, "name", &err) != 0 ||
        zgrid_text_check(in->station, ZGRID_STATION_BYTES_MAX, true, "station", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    if (level != ZAREA_STREET && level != ZAREA_COMMUNITY) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "area"),
                         "area must be the street or community (9 or 12 digits) holding the "
                         "police grid, got \"%.24s\"",
                         in->area);
    }
    if (in->n_grids == 0 || in->n_grids > ZGRID_POLICE_GRID_GRIDS_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "grids"),
                         "grids must name 1 to %d admin grids", ZGRID_POLICE_GRID_GRIDS_MAX);
    }
    int rc = zgrid_unit_required(ctx, cmd, "area", in->area);
    Zhili__Grid__Person *officer = NULL;
    if (rc == 0 && (rc = member_check(ctx, cmd, "officer", in->officer, in->area, &officer)) == 0 &&
        strcmp(officer->kind, "community_police") != 0) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "officer"),
                         "officer: %s is a %s, not a community_police", officer->id, officer->kind);
    }
    for (size_t i = 0; rc == 0 && i < in->n_grids; i++) {
        if (zgrid_area_check(in->grids[i], ZAREA_GRID, "grids", &err) != 0) {
            return zgrid_fail_err(ctx, cmd, &err);
        }
        if (!zarea_within(in->area, in->grids[i])) {
            return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "grids"),
                             "grids: %s lies outside the police grid's area %s", in->grids[i],
                             in->area);
        }
        rc = zgrid_unit_required(ctx, cmd, "grids", in->grids[i]);
    }
    return rc;
}

static void link_set(zsvc_ctx_t *ctx, const Zhili__Grid__PoliceGrid *pg, const char *grid,
                     bool linked)
{
    uint8_t key[ZGRID_KEY_MAX];
    size_t len = zgrid_key_area_str(key, grid, pg->id);
    if (linked) {
        zgrid_index_put(ctx, "pg_links", key, len);
    } else {
        zgrid_index_del(ctx, "pg_links", key, len);
    }
    Zhili__Grid__PoliceLink *l = zsvc_alloc(ctx, sizeof *l);
    zhili__grid__police_link__init(l);
    l->police_grid = pg->id;
    l->grid = (char *)grid;
    l->linked = linked;
    l->police_area = pg->area;
    zsvc_emit(ctx, linked ? "police_linked" : "police_unlinked", grid,
              ZHILI__V1__EVENT__BODY_GRID_POLICE_LINK, l);
}

static bool sorted_has(char **v, size_t n, const char *s)
{
    return n > 0 && bsearch(&s, v, n, sizeof *v, strcmp_p) != NULL;
}

/* Link and unlink so that the links are exactly pg's grids. */
static void links_sync(zsvc_ctx_t *ctx, const Zhili__Grid__PoliceGrid *old,
                       const Zhili__Grid__PoliceGrid *pg)
{
    size_t n_old = old != NULL && !old->removed ? old->n_grids : 0;
    size_t n_new = pg->removed ? 0 : pg->n_grids;
    for (size_t i = 0; i < n_old; i++) {
        if (!sorted_has(pg->grids, n_new, old->grids[i])) {
            link_set(ctx, pg, old->grids[i], false);
        }
    }
    for (size_t i = 0; i < n_new; i++) {
        if (!sorted_has(old ? old->grids : NULL, n_old, pg->grids[i])) {
            link_set(ctx, pg, pg->grids[i], true);
        }
    }
}

static int police_grid_upsert(zsvc_ctx_t *ctx, const Zhili__Grid__PoliceGridUpsert *in)
{
    const char *cmd = "grid_police_grid_upsert";
    Zhili__Grid__PoliceGrid *pg = zsvc_alloc(ctx, sizeof *pg);
    zhili__grid__police_grid__init(pg);
    int rc = police_grid_check(ctx, cmd, in);
    if (rc != 0 || (rc = sorted_unique(ctx, cmd, "grids", in->grids, in->n_grids, &pg->grids))) {
        return rc;
    }
    void *row = NULL;
    rc = zgrid_row_get(ctx, "pgrids", in->id, strlen(in->id), &zhili__grid__police_grid__descriptor,
                       &row);
    if (rc != 0 && rc != ZE_NOT_FOUND) {
        return rc;
    }
    Zhili__Grid__PoliceGrid *old = row;
    const char *old_area = old != NULL && !old->removed ? old->area : NULL;
    if ((rc = scope_both(ctx, cmd, in->area, old_area)) != 0) {
        return rc;
    }
    pg->id = in->id;
    pg->name = in->name;
    pg->area = in->area;
    pg->station = in->station;
    pg->officer = in->officer;
    pg->n_grids = in->n_grids;
    pg->updated_ms = old != NULL ? old->updated_ms : 0;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_POLICE_GRID;
    ctx->reply->grid_police_grid = pg;
    if (old != NULL && zgrid_msg_equal(ctx, &pg->base, &old->base)) {
        return 0;
    }
    pg->updated_ms = ctx->now_ms;
    zgrid_row_put(ctx, "pgrids", pg->id, strlen(pg->id), &pg->base);
    index_move(ctx, "pgrids_area", old_area, pg->area, pg->id, NULL);
    zsvc_emit(ctx, "police_grid_upserted", pg->area, ZHILI__V1__EVENT__BODY_GRID_POLICE_GRID, pg);
    links_sync(ctx, old, pg);
    return ztxn_err(ctx->txn);
}

static Zhili__Grid__PoliceGrid *police_grid_load(zsvc_ctx_t *ctx, const char *id)
{
    void *row = NULL;
    if (zgrid_row_get(ctx, "pgrids", id, strlen(id), &zhili__grid__police_grid__descriptor, &row) !=
            0 ||
        ((Zhili__Grid__PoliceGrid *)row)->removed) {
        return NULL;
    }
    return row;
}

static int police_grid_remove(zsvc_ctx_t *ctx, const Zhili__Grid__PoliceGridRemove *in)
{
    const char *cmd = "grid_police_grid_remove";
    zgrid_err_t err;
    if (zgrid_id_check(in->id, "id", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    Zhili__Grid__PoliceGrid *pg = police_grid_load(ctx, in->id);
    if (pg == NULL) {
        return ztxn_err(ctx->txn) ? ztxn_err(ctx->txn)
                                  : zsvc_fail(ctx, ZE_NOT_FOUND, zgrid_field(ctx, cmd, "id"),
                                              "no police grid %s exists", in->id);
    }
    int rc = zgrid_scope(ctx, cmd, "id", pg->area);
    if (rc != 0) {
        return rc;
    }
    Zhili__Grid__PoliceGrid *gone = zsvc_alloc(ctx, sizeof *gone);
    *gone = *pg;
    gone->removed = true;
    gone->updated_ms = ctx->now_ms;
    links_sync(ctx, pg, gone);
    index_move(ctx, "pgrids_area", pg->area, NULL, pg->id, NULL);
    zgrid_row_put(ctx, "pgrids", gone->id, strlen(gone->id), &gone->base);
    zsvc_emit(ctx, "police_grid_removed", gone->area, ZHILI__V1__EVENT__BODY_GRID_POLICE_GRID,
              gone);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_POLICE_GRID;
    ctx->reply->grid_police_grid = gone;
    return ztxn_err(ctx->txn);
}

/* Readable from both sides: inside the reader's scope by its own area, or
 * by one of its admin grids. */
static bool police_grid_visible(zsvc_ctx_t *ctx, const Zhili__Grid__PoliceGrid *pg)
{
    zgrid_actor_t a = zgrid_actor(ctx);
    bool visible = zarea_within(a.area, pg->area);
    for (size_t i = 0; !visible && i < pg->n_grids; i++) {
        visible = zarea_within(a.area, pg->grids[i]) || zarea_within(pg->grids[i], a.area);
    }
    return visible;
}

static int police_grid_get(zsvc_ctx_t *ctx, const Zhili__Grid__PoliceGridGet *in)
{
    const char *cmd = "grid_police_grid_get";
    zgrid_err_t err;
    if (zgrid_id_check(in->id, "id", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    Zhili__Grid__PoliceGrid *pg = police_grid_load(ctx, in->id);
    if (pg == NULL) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, zgrid_field(ctx, cmd, "id"), "no police grid %s exists",
                         in->id);
    }
    if (!police_grid_visible(ctx, pg)) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, zgrid_field(ctx, cmd, "id"),
                         "police grid %s lies outside your scope %s", in->id,
                         zgrid_actor(ctx).area);
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_POLICE_GRID;
    ctx->reply->grid_police_grid = pg;
    return 0;
}

static int police_grids_list(zsvc_ctx_t *ctx, const Zhili__Grid__PoliceGridsList *in)
{
    const char *cmd = "grid_police_grids_list";
    Zhili__Grid__PoliceGrids *out = zsvc_alloc(ctx, sizeof *out);
    zhili__grid__police_grids__init(out);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_POLICE_GRIDS;
    ctx->reply->grid_police_grids = out;
    if (in->grid[0] == '\0') {
        index_acc_t acc = {.table = "pgrids", .desc = &zhili__grid__police_grid__descriptor};
        int rc = index_list(ctx, cmd, &acc, "pgrids_area", in->limit, in->after);
        out->police_grids = (Zhili__Grid__PoliceGrid **)acc.items;
        out->n_police_grids = acc.n;
        out->next_after = zgrid_page_next(ctx, &acc.page);
        return rc;
    }
    /* From the admin grid's side: every police grid linked to it (at most
     * ZGRID_POLICE_GRID_GRIDS_MAX per grid, so one page). */
    zgrid_err_t err;
    int rc = zgrid_area_check(in->grid, ZAREA_GRID, "grid", &err);
    if (rc != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    if ((rc = zgrid_scope(ctx, cmd, "grid", in->grid)) != 0) {
        return rc;
    }
    size_t n = 0;
    char **ids = zgrid_police_grids_of(ctx, in->grid, &n);
    out->police_grids = zsvc_alloc(ctx, (n + 1) * sizeof *out->police_grids);
    for (size_t i = 0; i < n; i++) {
        Zhili__Grid__PoliceGrid *pg = police_grid_load(ctx, ids[i]);
        if (pg != NULL) {
            out->police_grids[out->n_police_grids++] = pg;
        }
    }
    out->next_after = "";
    return ztxn_err(ctx->txn);
}

/* ---- party-member central households (党员中心户) ------------------------------------ */

static int center_check(zsvc_ctx_t *ctx, const char *cmd, const Zhili__Grid__CenterUpsert *in)
{
    zgrid_err_t err;
    if (zgrid_area_check(in->building, ZAREA_BUILDING, "building", &err) != 0 ||
        zgrid_text_check(in->room, ZGRID_ROOM_BYTES_MAX, true, "room", &err) != 0 ||
        zgrid_text_check(in->member, ZGRID_PERSON_NAME_BYTES_MAX, true, "member", &err) != 0 ||
        zgrid_phone_check(in->phone, false, "phone", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    if (in->n_households > ZGRID_CENTER_HOUSEHOLDS_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, zgrid_field(ctx, cmd, "households"),
                         "households has %zu rooms; at most %d", in->n_households,
                         ZGRID_CENTER_HOUSEHOLDS_MAX);
    }
    for (size_t i = 0; i < in->n_households; i++) {
        if (zgrid_text_check(in->households[i], ZGRID_ROOM_BYTES_MAX, true, "households", &err) !=
            0) {
            return zgrid_fail_err(ctx, cmd, &err);
        }
    }
    int rc = zgrid_scope(ctx, cmd, "building", in->building);
    return rc != 0 ? rc : zgrid_unit_required(ctx, cmd, "building", in->building);
}

static int center_upsert(zsvc_ctx_t *ctx, const Zhili__Grid__CenterUpsert *in)
{
    const char *cmd = "grid_center_upsert";
    Zhili__Grid__Center *c = zsvc_alloc(ctx, sizeof *c);
    zhili__grid__center__init(c);
    int rc = center_check(ctx, cmd, in);
    if (rc != 0 || (rc = sorted_unique(ctx, cmd, "households", in->households, in->n_households,
                                       &c->households)) != 0) {
        return rc;
    }
    uint8_t key[ZGRID_KEY_MAX];
    size_t len = zgrid_key_center(key, in->building, in->room);
    void *row = NULL;
    rc = zgrid_row_get(ctx, "centers", key, len, &zhili__grid__center__descriptor, &row);
    if (rc != 0 && rc != ZE_NOT_FOUND) {
        return rc;
    }
    Zhili__Grid__Center *old = row;
    c->building = in->building;
    c->room = in->room;
    c->member = in->member;
    c->phone = in->phone;
    c->n_households = in->n_households;
    c->grid = (char *)zgrid_grid_of(ctx, in->building);
    c->updated_ms = old != NULL ? old->updated_ms : 0;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_CENTER;
    ctx->reply->grid_center = c;
    if (old != NULL && zgrid_msg_equal(ctx, &c->base, &old->base)) {
        return 0;
    }
    c->updated_ms = ctx->now_ms;
    zgrid_row_put(ctx, "centers", key, len, &c->base);
    zsvc_emit(ctx, "center_upserted", c->building, ZHILI__V1__EVENT__BODY_GRID_CENTER, c);
    return ztxn_err(ctx->txn);
}

static int center_remove(zsvc_ctx_t *ctx, const Zhili__Grid__CenterRemove *in)
{
    const char *cmd = "grid_center_remove";
    zgrid_err_t err;
    if (zgrid_area_check(in->building, ZAREA_BUILDING, "building", &err) != 0 ||
        zgrid_text_check(in->room, ZGRID_ROOM_BYTES_MAX, true, "room", &err) != 0) {
        return zgrid_fail_err(ctx, cmd, &err);
    }
    int rc = zgrid_scope(ctx, cmd, "building", in->building);
    if (rc != 0) {
        return rc;
    }
    uint8_t key[ZGRID_KEY_MAX];
    size_t len = zgrid_key_center(key, in->building, in->room);
    void *row = NULL;
    rc = zgrid_row_get(ctx, "centers", key, len, &zhili__grid__center__descriptor, &row);
    if (rc != 0) {
        return rc != ZE_NOT_FOUND ? rc
                                  : zsvc_fail(ctx, ZE_NOT_FOUND, zgrid_field(ctx, cmd, "room"),
                                              "no party-member central household at %s room %s",
                                              in->building, in->room);
    }
    Zhili__Grid__Center *c = row;
    ztxn_del(ctx->txn, zsvc_table(ctx, "centers"), key, len);
    c->removed = true;
    c->updated_ms = ctx->now_ms;
    zsvc_emit(ctx, "center_removed", c->building, ZHILI__V1__EVENT__BODY_GRID_CENTER, c);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_CENTER;
    ctx->reply->grid_center = c;
    return ztxn_err(ctx->txn);
}

typedef struct {
    zsvc_ctx_t *ctx;
    zgrid_page_t page;
    Zhili__Grid__Centers *out;
} centers_acc_t;

static int on_center_row(void *arg, zval_t key, zval_t val)
{
    centers_acc_t *acc = arg;
    if (zgrid_page_room(&acc->page, val.len) != 0) {
        return 1;
    }
    Zhili__Grid__Center *c = zgrid_row_unpack(acc->ctx, &zhili__grid__center__descriptor, val);
    if (c == NULL) {
        return ZE_INTERNAL;
    }
    acc->out->centers[acc->out->n_centers++] = c;
    zgrid_page_consumed(&acc->page, key, true, val.len);
    return 0;
}

static int centers_list(zsvc_ctx_t *ctx, const Zhili__Grid__CentersList *in)
{
    const char *cmd = "grid_centers_list";
    centers_acc_t acc = {ctx, {0}, NULL};
    uint8_t start[ZSTORE_KEY_BYTES_MAX];
    size_t start_len = 0;
    int rc = zgrid_list_scope(ctx, cmd);
    if (rc != 0 || (rc = zgrid_page_begin(ctx, &acc.page, in->limit, in->after, cmd, start,
                                          &start_len)) != 0) {
        return rc;
    }
    acc.out = zsvc_alloc(ctx, sizeof *acc.out);
    zhili__grid__centers__init(acc.out);
    acc.out->centers = zsvc_alloc(ctx, acc.page.limit * sizeof *acc.out->centers);
    const char *area = ctx->cmd->area ? ctx->cmd->area : "";
    rc = ztxn_scan(ctx->txn, zsvc_table(ctx, "centers"), area, strlen(area),
                   start_len ? start : NULL, start_len, &acc, on_center_row);
    if (rc < 0) {
        return zsvc_fail(ctx, rc, NULL, "the list could not be read");
    }
    acc.out->next_after = zgrid_page_next(ctx, &acc.page);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_GRID_CENTERS;
    ctx->reply->grid_centers = acc.out;
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

int zgrid_people_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_GRID_PERSON_UPSERT:
        return person_upsert(ctx, cmd->grid_person_upsert);
    case ZHILI__V1__COMMAND__BODY_GRID_PERSON_REMOVE:
        return person_remove(ctx, cmd->grid_person_remove);
    case ZHILI__V1__COMMAND__BODY_GRID_TEAM_UPSERT:
        return team_upsert(ctx, cmd->grid_team_upsert);
    case ZHILI__V1__COMMAND__BODY_GRID_TEAM_REMOVE:
        return team_remove(ctx, cmd->grid_team_remove);
    case ZHILI__V1__COMMAND__BODY_GRID_POLICE_GRID_UPSERT:
        return police_grid_upsert(ctx, cmd->grid_police_grid_upsert);
    case ZHILI__V1__COMMAND__BODY_GRID_POLICE_GRID_REMOVE:
        return police_grid_remove(ctx, cmd->grid_police_grid_remove);
    case ZHILI__V1__COMMAND__BODY_GRID_CENTER_UPSERT:
        return center_upsert(ctx, cmd->grid_center_upsert);
    case ZHILI__V1__COMMAND__BODY_GRID_CENTER_REMOVE:
        return center_remove(ctx, cmd->grid_center_remove);
    default:
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "misrouted command");
    }
}

int zgrid_people_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_GRID_PEOPLE_LIST:
        return people_list(ctx, cmd->grid_people_list);
    case ZHILI__V1__COMMAND__BODY_GRID_TEAMS_LIST:
        return teams_list(ctx, cmd->grid_teams_list);
    case ZHILI__V1__COMMAND__BODY_GRID_POLICE_GRID_GET:
        return police_grid_get(ctx, cmd->grid_police_grid_get);
    case ZHILI__V1__COMMAND__BODY_GRID_POLICE_GRIDS_LIST:
        return police_grids_list(ctx, cmd->grid_police_grids_list);
    case ZHILI__V1__COMMAND__BODY_GRID_CENTERS_LIST:
        return centers_list(ctx, cmd->grid_centers_list);
    default:
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "misrouted query");
    }
}
