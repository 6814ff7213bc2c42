/* handlers: the grid service's command, query and timer handlers over a
 * store transaction (docs/grid.md). handlers.c holds the dispatch, the
 * helpers below, units, locate and QR; handlers_people.c people, teams,
 * police grids and party-member central households; handlers_cases.c
 * visits, disputes, key persons and the timer. */
#ifndef ZHILI_GRID_HANDLERS_H
#define ZHILI_GRID_HANDLERS_H

#include <stdbool.h>

#include "common/service.h"
#include "grid.pb-c.h"
#include "services/grid/grid.h"
#include "services/grid/store.h"

/* spec.user of the service: the keys main.c loaded. */
typedef struct {
    zgrid_keys_t keys;
} zgrid_service_t;

/* ---- the runtime's hooks (zsvc_spec_t) ------------------------------------------ */

int zgrid_on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
bool zgrid_is_query(const Zhili__V1__Command *cmd);
int zgrid_on_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
int zgrid_on_tick(zsvc_ctx_t *ctx);

/* ---- shared helpers (handlers.c) --------------------------------------------------- */

typedef struct {
    const char *id, *role, *area, *name; /* never NULL; "" when the command has no actor */
} zgrid_actor_t;

zgrid_actor_t zgrid_actor(const zsvc_ctx_t *ctx);

/* "name or id" of the actor, for registered_by and the like. */
const char *zgrid_who(const zsvc_ctx_t *ctx);

const zgrid_service_t *zgrid_service(const zsvc_ctx_t *ctx);

/* "<cmd>.<field>" in arena memory: the gateway strips "<cmd>." for HTTP. */
const char *zgrid_field(zsvc_ctx_t *ctx, const char *cmd, const char *field);

/* INVALID from a grid.c check, the field prefixed with cmd. */
int zgrid_fail_err(zsvc_ctx_t *ctx, const char *cmd, const zgrid_err_t *err);

/* 0 when area lies inside the actor's scope, else FORBIDDEN naming field. */
int zgrid_scope(zsvc_ctx_t *ctx, const char *cmd, const char *field, const char *area);

/* For lists: the command's area must be a valid prefix inside the actor's
 * scope. 0 or INVALID / FORBIDDEN. */
int zgrid_list_scope(zsvc_ctx_t *ctx, const char *cmd);

/* A unit that exists (NULL when not; a storage error is sticky). */
Zhili__Grid__Unit *zgrid_unit_load(zsvc_ctx_t *ctx, const char *code);

/* The unit `code` must exist: 0, or INVALID naming field ("… does not exist"). */
int zgrid_unit_required(zsvc_ctx_t *ctx, const char *cmd, const char *field, const char *code);

/* A person who exists and is not removed (NULL otherwise). */
Zhili__Grid__Person *zgrid_person_load(zsvc_ctx_t *ctx, const char *id);

/* Police grids linked to a grid (15 digits), sorted (arena memory). */
char **zgrid_police_grids_of(zsvc_ctx_t *ctx, const char *grid, size_t *n);

/* The grid (first 15 digits) of an area of level >= grid, else "". */
const char *zgrid_grid_of(zsvc_ctx_t *ctx, const char *area);

/* Do two messages pack to the same bytes? */
bool zgrid_msg_equal(zsvc_ctx_t *ctx, const ProtobufCMessage *a, const ProtobufCMessage *b);

/* A copy of s in arena memory. */
char *zgrid_dup(zsvc_ctx_t *ctx, const char *s);

/* Time filter text: "" (none), milliseconds, RFC 3339 or a local date. 0 or -1. */
int zgrid_time_parse(const char *text, int64_t *ms);

/* ---- command handlers by area ------------------------------------------------------- */

int zgrid_people_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
int zgrid_people_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
int zgrid_cases_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
int zgrid_cases_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);

/* Is there an active key person (or anything of cases) under the area? For
 * unit removal. */
bool zgrid_cases_hold_area(zsvc_ctx_t *ctx, const char *area);
/* The id of an active key person under `grid` that person `id` is
 * responsible for, or 0. */
int64_t zgrid_cases_responsible(zsvc_ctx_t *ctx, const char *grid, const char *id);
bool zgrid_people_hold_area(zsvc_ctx_t *ctx, const char *area, const char **what);

#endif
