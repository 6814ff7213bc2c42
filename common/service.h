/* service: the runtime every domain service runs on (docs/runtime.md).
 *
 * A service supplies pure handlers over a store transaction; the runtime
 * does the rest: register with the broker, receive commands, apply them in
 * group commit (drain up to batch_max, one durable write transaction, then
 * reply and publish), remember every reply by request_id so a retried command
 * changes nothing twice, keep the outbox with a gapless seq, publish events and
 * heartbeats, answer replay requests, and consume other services' events
 * exactly once, in order per source, with the cursor written in the same
 * transaction as the effect.
 *
 * A handler that returns an error has its writes and events rolled back (it
 * runs in a child transaction), so "every bad input changes nothing" holds
 * whatever the handler wrote before it noticed. */
#ifndef ZHILI_SERVICE_H
#define ZHILI_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/store.h"
#include "zhili.pb-c.h"

#define ZSVC_BATCH_MAX_DEFAULT 1000
#define ZSVC_CREDIT_DEFAULT 1000
#define ZSVC_SUBSCRIBE_MAX 16         /* topic prefixes of one service */
#define ZSVC_SOURCES_MAX 16           /* distinct sources it consumes */
#define ZSVC_REPLAY_EVENTS_MAX 1000   /* events in one replay reply */
#define ZSVC_REPLAY_BYTES_MAX (2u << 20)
#define ZSVC_EVENTS_PER_BATCH 10000   /* live events taken into one batch */
#define ZSVC_EVENTS_PENDING_MAX (ZSVC_EVENTS_PER_BATCH + ZSVC_REPLAY_EVENTS_MAX * ZSVC_SOURCES_MAX)
#define ZSVC_GROW_RETRIES_MAX 8

typedef struct zsvc zsvc_t;

/* What a handler sees. Memory from zsvc_alloc lives until the batch ends. */
typedef struct {
    zsvc_t *svc;
    ztxn_t *txn;
    int64_t now_ms;                       /* the service clock for this batch */
    const Zhili__V1__Command *cmd;        /* NULL in on_event and on_tick */
    Zhili__V1__Reply *reply;              /* set result_case and the result here */
    zarena_t *arena;
    void *user;                           /* spec->user */
} zsvc_ctx_t;

typedef struct {
    const char *name;                     /* service and source name, e.g. "funds" */
    const char *const *tables;            /* own LMDB tables, NULL-terminated */
    const char *const *subscribe;         /* topic prefixes it consumes, NULL-terminated */
    void *user;

    /* A write command. Return 0 (OK) or a ZE_* code; on error call
     * zsvc_fail() for the message and field. Writes and events are rolled
     * back on error. NULL: the service takes no write commands. */
    int (*on_command)(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);

    /* True when cmd only reads: it is answered from a read snapshot after
     * the batch commits and is not remembered by request_id. */
    bool (*is_query)(const Zhili__V1__Command *cmd);
    int (*on_query)(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);

    /* A consumed event, exactly once, in seq order per source. An error is
     * logged and the event is skipped (the cursor still moves), because an
     * event cannot be refused; a storage error retries the batch. */
    int (*on_event)(zsvc_ctx_t *ctx, const Zhili__V1__Event *ev);

    /* Time-driven changes: called in a write transaction every heartbeat and
     * after the fake clock moves; may emit events. */
    int (*on_tick)(zsvc_ctx_t *ctx);
} zsvc_spec_t;

/* Configure from the environment (docs/operations.md), open the store under
 * $ZHILI_DATA/<name>/, connect and serve until SIGINT or SIGTERM. Returns the
 * process exit status. */
int zsvc_main(const zsvc_spec_t *spec);

/* Embedding, for a process that runs its own loop (the gateway): open does
 * what zsvc_main does before serving (no signal handlers); the caller watches
 * the descriptors from zsvc_fds (ZeroMQ's, edge-triggered: call zsvc_step on
 * any readiness) and calls zsvc_step at the latest after the returned number
 * of milliseconds. The descriptors can change after a step (a fresh broker
 * socket after a silence): compare them after each step. */
zsvc_t *zsvc_open(const zsvc_spec_t *spec);
int zsvc_fds(const zsvc_t *svc, int *fds, int max);
int64_t zsvc_step(zsvc_t *svc);
void zsvc_close(zsvc_t **self_p);

/* The service's store, for reads on the service's own thread between steps. */
zstore_t *zsvc_store(zsvc_t *svc);

/* Append an event to the outbox in the handler's transaction: source, seq,
 * ts_ms, request_id and actor are filled in; body_case and body (a message
 * pointer for the oneof, may be arena memory) are the caller's. The event is
 * published after the batch commits. Returns the seq, or 0 on a storage error
 * (sticky in the transaction). */
uint64_t zsvc_emit(zsvc_ctx_t *ctx, const char *type, const char *area,
                   Zhili__V1__Event__BodyCase body_case, void *body);

/* Set the reply's message (printf) and the field it is about (may be NULL);
 * returns code so handlers can `return zsvc_fail(ctx, ZE_INVALID, "amount", ...)`. */
int zsvc_fail(zsvc_ctx_t *ctx, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void *zsvc_alloc(zsvc_ctx_t *ctx, size_t bytes);
char *zsvc_strdup(zsvc_ctx_t *ctx, const char *s);

/* Index of one of spec->tables for the ztxn_* calls (asserted to exist). */
int zsvc_table(const zsvc_ctx_t *ctx, const char *name);

/* The service's name as registered ("funds" or "funds@220503"). */
const char *zsvc_name(const zsvc_t *svc);

#endif
