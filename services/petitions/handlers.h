/* handlers: the petitions service's commands, queries, consumed events, timer
 * and figures over a store transaction (common/service.h). handlers.c holds
 * the writes, the grid read model and the timer; queries.c the reads and the
 * views every reply is made of. */
#ifndef ZHILI_PETITIONS_HANDLERS_H
#define ZHILI_PETITIONS_HANDLERS_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "common/service.h"
#include "services/petitions/petitions.h"
#include "services/petitions/store.h"

/* Configuration, parsed once by main.c (docs/petitions.md, "Settings"). */
typedef struct {
    zpet_deadlines_t deadlines;   /* ZHILI_PETITIONS_DEADLINES */
    zpet_routing_t routing;       /* ZHILI_PETITIONS_ROUTING */
    char district[ZPET_AREA_BUF]; /* ZHILI_PETITIONS_DISTRICT: the default unit, "" none */
} zph_config_t;

/* Topic prefixes consumed: the grid's units for the routing read model. */
extern const char *const zph_subscribe[];

/* The zsvc_spec_t hooks; ctx->user is the zph_config_t. */
int zph_on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
bool zph_is_query(const Zhili__V1__Command *cmd);
int zph_on_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
int zph_on_event(zsvc_ctx_t *ctx, const Zhili__V1__Event *ev);
int zph_on_tick(zsvc_ctx_t *ctx);
int zph_on_stats(zsvc_ctx_t *ctx);

/* ---- shared by handlers.c and queries.c --------------------------------- */

/* An allocator drawing on the batch arena (free is a no-op), so records
 * unpacked with it can be changed with arena strings and never freed. */
void zph_arena_allocator(zsvc_ctx_t *ctx, ProtobufCAllocator *out);

/* The caller as the rules see it (never NULL fields). */
zpet_actor_t zph_actor(const Zhili__V1__Command *cmd);
zpet_subject_t zph_subject(const Zhili__Petitions__Record *r);

/* Load a petition by id: 0, or INVALID / NOT_FOUND answered with `field`.
 * The record is arena memory when alloc is the arena's, else the caller frees. */
int zph_load(zsvc_ctx_t *ctx, const zps_t *t, const char *id, const char *field,
             ProtobufCAllocator *alloc, Zhili__Petitions__Record **out);

/* The petition as `actor` may see it (phone masked unless it needs it),
 * every string copied into the arena. */
Zhili__Petitions__Petition *zph_view(zsvc_ctx_t *ctx, const zps_t *t,
                                     const Zhili__Petitions__Record *r, const zpet_actor_t *actor);

/* "" for 0, else RFC 3339 in the arena. */
char *zph_time(zsvc_ctx_t *ctx, int64_t ms);

/* Past a deadline now and still waiting for it. */
bool zph_sign_overdue(const Zhili__Petitions__Record *r, int64_t now_ms);
bool zph_reply_overdue(const Zhili__Petitions__Record *r, int64_t now_ms);

#endif
