/* The runtime's private state, shared by service.c (the loop and the batch)
 * and service_async.c (deferred replies, calls to other services, work off
 * the loop). Not for services: they see common/service.h only. */
#ifndef ZHILI_SERVICE_INTERNAL_H
#define ZHILI_SERVICE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/bus.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/service.h"

#define CID_BYTES_MAX 255
#define REPLAY_TIMEOUT_MS 5000
#define ZSVC_DEFERRED_MAX 1024      /* commands waiting for a continuation */
#define ZSVC_DEFERRED_MS 60000      /* after that the caller has given up */
#define ZSVC_OUTCALLS_MAX 1024      /* calls to other services in flight */
#define ZSVC_OFFLOAD_MAX 1024       /* work items queued for the worker thread */
#define ZSVC_KIND_BYTES_MAX 63
#define ZSVC_KEY_BYTES_MAX 127

typedef struct {
    uint8_t cid[CID_BYTES_MAX];
    size_t cid_len;
    char request_id[ZSTORE_REQUEST_ID_BYTES_MAX + 1];
    Zhili__V1__Command *cmd;   /* unpacked; NULL when the reply is already made */
    bool query;
    bool internal;             /* a continuation made by the runtime: no client */
    bool absorbed;             /* a resend of a deferred command: answered later */
    /* Its absorption outlives a rerun of the batch (its address went to a
     * command deferred by an earlier batch, or it was told to come back):
     * a second pass must not add or answer it again. */
    bool absorb_kept;
    uint8_t *reply;            /* packed Reply, malloc'd */
    size_t reply_len;
} job_t;

typedef struct {
    char name[ZBUS_NAME_BYTES_MAX + 1];
    uint64_t cursor;           /* committed */
    uint64_t batch_cursor;     /* as the open batch sees it */
    uint64_t known_last;       /* newest seq the source has told us of */
    bool synced;               /* one replay answered since start */
    bool failing;              /* its last replay failed (logged once, not every beat) */
    bool behind;               /* its heartbeat names a last seq below our cursor */
    bool gap;
    bool replay_inflight;
    char replay_id[ZBUS_NAME_BYTES_MAX * 2 + 40];
    int64_t replay_until_mono_ms;
    int64_t retry_at_mono_ms;
} source_t;

typedef struct {
    Zhili__V1__Event *ev;      /* unpacked; freed after the batch */
    int source;
    size_t arrival;
} inev_t;

typedef struct {
    char topic[ZBUS_TOPIC_BYTES_MAX];
    uint8_t *data;
    size_t len;
    uint64_t seq;
} outev_t;

struct zsvc {
    const zsvc_spec_t *spec;
    char name[ZBUS_NAME_BYTES_MAX + 1];
    zcfg_common_t cfg;
    int64_t batch_max, credit;
    zclock_t clock;
    zstore_t *store;
    void *zctx, *worker, *pub, *sub;
    zbus_client_t *client;
    job_t *jobs;
    size_t job_count;
    inev_t *inevs;
    size_t inev_count;
    outev_t *outevs;
    size_t outev_count, outev_cap;
    source_t sources[ZSVC_SOURCES_MAX];
    int source_count;
    uint64_t last_seq;
    zarena_t arena;
    bool tick_due;
    int64_t next_hb_mono_ms, broker_seen_mono_ms;
    uint64_t replay_counter;
    int64_t commands_total, batches_total, events_emitted_total, events_applied_total,
        events_rejected_total, events_dropped_total, replays_served_total,
        replay_requests_total, storage_errors_total, requests_pruned_total, reruns_total;
    /* This pass of the batch gives each command and event its own child
     * transaction (service.c, batch_commit): only after a failure. */
    bool nested;
    /* Pruning of the answers kept for idempotency (service.c, "pruning"):
     * how long they are kept, when the next step is due, and where the walk
     * over the requests table goes on (the key last looked at; "" = start). */
    int64_t requests_keep_ms, prune_due_mono_ms;
    char prune_after[ZSTORE_REQUEST_ID_BYTES_MAX + 1], prune_next[ZSTORE_REQUEST_ID_BYTES_MAX + 1];
    size_t prune_after_len, prune_next_len;
    int64_t prune_removed_in_batch;
    struct zsvc_async *async;  /* A first pass of a batch met a failing command or event: run it again
 * with child transactions (service.c). Never leaves the runtime. */
#define ZSVC_RERUN (-1000)

/* service_async.c */
};


/* service_async.c */
int zsvc_async_init(zsvc_t *s);
void zsvc_async_fini(zsvc_t *s);
/* The loop watches this socket too (continuations from the worker thread). */
void *zsvc_async_socket(zsvc_t *s);
/* Before a write command runs: true when request_id is a deferred command
 * still waiting (the resend's client address is remembered; no reply now). */
bool zsvc_async_absorb(zsvc_t *s, job_t *job);
/* A handler returned ZSVC_DEFERRED: remember who waits. False when the
 * table of waiting commands is full (the caller answers UNAVAILABLE now). */
bool zsvc_async_defer(zsvc_t *s, job_t *job);
/* Batch bookkeeping: forget what the batch queued (retry, failure) or send
 * it (after the durable commit). */
void zsvc_async_batch_reset(zsvc_t *s);
typedef struct {
    uint64_t order;
    int work;
} zsvc_async_mark_t;
zsvc_async_mark_t zsvc_async_mark(zsvc_t *s);
void zsvc_async_rollback(zsvc_t *s, zsvc_async_mark_t mark);
void zsvc_async_after_commit(zsvc_t *s);
/* Answer the deferred command `reply_to` with packed reply bytes. */
void zsvc_async_complete(zsvc_t *s, const char *reply_to, const uint8_t *reply, size_t len);
/* A reply on the client socket: true when it answered one of our calls (it
 * became a continuation job). */
bool zsvc_async_on_reply(zsvc_t *s, const Zhili__V1__Reply *r);
/* Turn worker results and expired calls into continuation jobs. */
void zsvc_async_drain(zsvc_t *s);
/* Add a continuation job (a packed Command) to the batch being gathered. */
void zsvc_job_internal(zsvc_t *s, const uint8_t *cmd, size_t len);
/* The client socket to other services, made on first use. */
zbus_client_t *zsvc_client(zsvc_t *s);

#endif
