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
#define ZSVC_STATS_EXTRA_MAX 64       /* figures a service adds with on_stats */

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

    /* The service's own figures for the stats command (and so /metrics):
     * called in the stats query's read snapshot after the runtime's figures;
     * add each with zsvc_stat_add. NULL: none. */
    int (*on_stats)(zsvc_ctx_t *ctx);
} zsvc_spec_t;

/* Configure from the environment (docs/operations.md), open the store under
 * $ZHILI_DATA/<name>/, connect and serve until SIGINT or SIGTERM. Returns the
 * process exit status. */
int zsvc_main(const zsvc_spec_t *spec);

/* ---- work that continues later (docs/runtime.md, "Continuations") -------
 *
 * A handler may start work whose outcome arrives after its batch: a call to
 * another service (funds asks budgets to reserve a line), or slow work off
 * the loop (Argon2id). Both run only once the batch has committed, and their
 * outcome comes back as a command with body `continuation` {kind, key,
 * reply_to, reply | data}, applied in a later batch like any other command.
 * With defer_reply the caller of the current command waits: the handler
 * returns ZSVC_DEFERRED, nothing is answered now, and the continuation's own
 * reply becomes the answer (remembered under the original request_id). A
 * resend of a deferred request_id while it waits changes nothing. If the
 * service dies meanwhile nothing of the continuation is applied, the caller
 * times out and resends, and the handler runs again. */
#define ZSVC_DEFERRED 1

/* Send cmd (its request_id is the idempotency key at the other service) to
 * `service` after this batch commits; the reply (or UNAVAILABLE when none
 * came within timeout_ms) returns as continuation {kind, key, reply}. 0, or
 * ZE_UNAVAILABLE when too many calls are in flight. */
int zsvc_call(zsvc_ctx_t *ctx, const char *service, const Zhili__V1__Command *cmd, int timeout_ms,
              const char *kind, const char *key, bool defer_reply);

/* Run fn(arg) on the service's worker thread after this batch commits; the
 * bytes it returns (malloc'd, freed by the runtime; fn returns 0 or an error
 * that arrives as empty data) come back as continuation {kind, key, data}.
 * free_arg (may be NULL) releases arg after fn ran or when the batch fails. */
typedef int (*zsvc_work_fn)(void *arg, uint8_t **out, size_t *out_len);
int zsvc_offload(zsvc_ctx_t *ctx, zsvc_work_fn fn, void *arg, void (*free_arg)(void *arg),
                 const char *kind, const char *key, bool defer_reply);

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

/* Inside on_stats only: add a figure to the stats reply. name is snake_case,
 * labels a Prometheus label set without braces ("" or NULL for none).
 * Figures past ZSVC_STATS_EXTRA_MAX are dropped. */
void zsvc_stat_add(zsvc_ctx_t *ctx, const char *name, int64_t value, const char *labels);

void *zsvc_alloc(zsvc_ctx_t *ctx, size_t bytes);
char *zsvc_strdup(zsvc_ctx_t *ctx, const char *s);

/* Forget everything consumed: every source's cursor goes back to 0 in this
 * transaction, and once it commits every source is replayed from seq 1 (a
 * projection's rebuild). Call it from a command handler that then succeeds,
 * after clearing the projection's own tables in the same transaction. */
void zsvc_consumed_reset(zsvc_ctx_t *ctx);

/* Index of one of spec->tables for the ztxn_* calls (asserted to exist). */
int zsvc_table(const zsvc_ctx_t *ctx, const char *name);

/* The service's name as registered ("funds" or "funds@220503"). */
const char *zsvc_name(const zsvc_t *svc);

#endif
