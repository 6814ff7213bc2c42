/* Continuations: deferred replies, calls to other services and work off the
 * loop (service.h explains the contract, docs/runtime.md the why). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "common/service_internal.h"

#define DEFERRED_ADDRS_MAX 4

/* A command waiting for its continuation, and every address that asked:
 * each gets the answer, which also gives the broker back its credit. */
typedef struct {
    bool used;
    char request_id[ZSTORE_REQUEST_ID_BYTES_MAX + 1];
    uint8_t cid[DEFERRED_ADDRS_MAX][CID_BYTES_MAX];
    size_t cid_len[DEFERRED_ADDRS_MAX];
    int addr_count;
    int64_t until_mono_ms;
    bool staged;      /* deferred by the open batch: gone if the batch fails */
} deferred_t;

typedef struct {
    bool used;
    char rid[ZSTORE_REQUEST_ID_BYTES_MAX + 1];   /* the call's own request_id */
    char kind[ZSVC_KIND_BYTES_MAX + 1];
    char key[ZSVC_KEY_BYTES_MAX + 1];
    char reply_to[ZSTORE_REQUEST_ID_BYTES_MAX + 1];
    char service[ZBUS_NAME_BYTES_MAX + 1];
    uint8_t *cmd;                                 /* kept for resends */
    size_t cmd_len;
    int64_t until_mono_ms, resend_mono_ms;
    uint64_t order;                               /* for undoing a failed command's calls */
    bool sent;                                    /* false until its batch committed */
} outcall_t;

typedef struct work {
    struct work *next;
    zsvc_work_fn fn;
    void *arg;
    void (*free_arg)(void *arg);
    char kind[ZSVC_KIND_BYTES_MAX + 1];
    char key[ZSVC_KEY_BYTES_MAX + 1];
    char reply_to[ZSTORE_REQUEST_ID_BYTES_MAX + 1];
} work_t;

typedef struct ready {
    struct ready *next;
    uint8_t *cmd;
    size_t len;
} ready_t;

struct zsvc_async {
    deferred_t deferred[ZSVC_DEFERRED_MAX];
    outcall_t calls[ZSVC_OUTCALLS_MAX];
    work_t *batch_head, *batch_tail;     /* offloads queued by the open batch */
    int batch_work;
    ready_t *ready_head, *ready_tail;    /* continuations waiting for a batch */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    work_t *queue_head, *queue_tail;     /* handed to the worker thread */
    int queued;
    bool stop;
    void *pull;
    char endpoint[64];
    uint64_t counter;
    uint64_t order;
    /* Slots in use, so that the scans made for every command and batch cost
     * nothing in a service that defers and calls nothing (they were ~5% of
     * the test service's CPU with 1024 empty slots each). */
    int deferred_n, calls_n;
};

/* ---- continuations as commands ----------------------------------------- */

static void ready_push(struct zsvc_async *a, uint8_t *cmd, size_t len)
{
    ready_t *r = calloc(1, sizeof *r);
    ZASSERT(r != NULL);
    r->cmd = cmd;
    r->len = len;
    if (a->ready_tail != NULL) {
        a->ready_tail->next = r;
    } else {
        a->ready_head = r;
    }
    a->ready_tail = r;
}

/* Pack a continuation command; reply or data (one of them) is its outcome. */
static int pack_continuation(zsvc_t *s, const char *kind, const char *key, const char *reply_to,
                             Zhili__V1__Reply *reply, const uint8_t *data, size_t data_len,
                             uint8_t **out, size_t *out_len)
{
    char rid[ZSTORE_REQUEST_ID_BYTES_MAX + 1];
    snprintf(rid, sizeof rid, "cont:%s:%llu", kind, (unsigned long long)++s->async->counter);
    Zhili__V1__Continuation c = ZHILI__V1__CONTINUATION__INIT;
    c.kind = (char *)kind;
    c.key = (char *)key;
    c.reply_to = (char *)reply_to;
    if (reply != NULL) {
        c.outcome_case = ZHILI__V1__CONTINUATION__OUTCOME_REPLY;
        c.reply = reply;
    } else {
        c.outcome_case = ZHILI__V1__CONTINUATION__OUTCOME_DATA;
        c.data.data = (uint8_t *)data;
        c.data.len = data_len;
    }
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = s->name;
    actor.role = "service";
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.request_id = rid;
    cmd.actor = &actor;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_CONTINUATION;
    cmd.continuation = &c;
    return zcodec_pack(&cmd.base, ZBUS_MSG_BYTES_MAX, out, out_len);
}

void zsvc_async_drain(zsvc_t *s)
{
    struct zsvc_async *a = s->async;
    /* Results of the worker thread. */
    for (;;) {
        zbus_frames_t f;
        if (zbus_frames_recv(a->pull, &f) != 0) {
            break;
        }
        size_t len;
        const void *d = zbus_frame_data(&f, 0, &len);
        uint8_t *copy = malloc(len ? len : 1);
        ZASSERT(copy != NULL);
        memcpy(copy, d, len);
        ready_push(a, copy, len);
        zbus_frames_close(&f);
    }
    /* Calls that got no reply in time: resend under the same id, or give up. */
    int64_t now = zclock_mono_ms();
    for (int i = 0; i < ZSVC_OUTCALLS_MAX && a->calls_n > 0; i++) {
        outcall_t *c = &a->calls[i];
        if (!c->used || !c->sent) {
            continue;
        }
        if (now >= c->until_mono_ms) {
            Zhili__V1__Reply r = ZHILI__V1__REPLY__INIT;
            r.request_id = c->rid;
            r.status = ZHILI__V1__STATUS__STATUS_UNAVAILABLE;
            r.message = "the service did not answer in time";
            zsvc_async_on_reply(s, &r);
        } else if (now >= c->resend_mono_ms) {
            zbus_client_send(zsvc_client(s), c->service, c->rid,
                             zclock_wall_ms() + (c->until_mono_ms - now), c->cmd, c->cmd_len);
            c->resend_mono_ms = now + ZBUS_ATTEMPT_MS;
        }
    }
    /* Continuations join the batch as room allows. */
    while (a->ready_head != NULL && s->job_count < (size_t)s->batch_max) {
        ready_t *r = a->ready_head;
        a->ready_head = r->next;
        if (a->ready_head == NULL) {
            a->ready_tail = NULL;
        }
        zsvc_job_internal(s, r->cmd, r->len);
        free(r->cmd);
        free(r);
    }
}

bool zsvc_async_on_reply(zsvc_t *s, const Zhili__V1__Reply *r)
{
    struct zsvc_async *a = s->async;
    for (int i = 0; i < ZSVC_OUTCALLS_MAX && a->calls_n > 0; i++) {
        outcall_t *c = &a->calls[i];
        if (!c->used || !c->sent || strcmp(c->rid, r->request_id) != 0) {
            continue;
        }
        uint8_t *cmd = NULL;
        size_t len = 0;
        if (pack_continuation(s, c->kind, c->key, c->reply_to, (Zhili__V1__Reply *)r, NULL, 0,
                              &cmd, &len) == 0) {
            ready_push(a, cmd, len);
        }
        free(c->cmd);
        memset(c, 0, sizeof *c);
        a->calls_n--;
        return true;
    }
    return false;
}

/* ---- deferred commands -------------------------------------------------- */

/* An UNAVAILABLE answer to one address of a deferred command: every request
 * the broker hands over is answered, which gives the broker back its credit
 * (a request left unanswered would hold one unit of it for ever). */
static void reply_unavailable(zsvc_t *s, const uint8_t *cid, size_t cid_len,
                              const char *request_id, const char *message)
{
    uint8_t *reply = NULL;
    size_t len = 0;
    if (cid_len == 0) {
        return; /* an internal job: no caller to answer */
    }
    if (zbus_reply_pack(request_id, ZE_UNAVAILABLE, message, &reply, &len) != 0) {
        return;
    }
    char op = ZBUS_OP_REPLY;
    const void *data[4] = {&op, cid, request_id, reply};
    size_t lens[4] = {1, cid_len, strlen(request_id), len};
    zbus_send(s->worker, 4, data, lens);
    free(reply);
}

static deferred_t *deferred_find(zsvc_t *s, const char *request_id)
{
    struct zsvc_async *a = s->async;
    if (a->deferred_n == 0) {
        return NULL;
    }
    int64_t now = zclock_mono_ms();
    for (int i = 0; i < ZSVC_DEFERRED_MAX; i++) {
        deferred_t *d = &a->deferred[i];
        if (d->used && now >= d->until_mono_ms) {
            /* Its callers gave up long ago; they are answered all the same. */
            for (int k = 0; k < d->addr_count; k++) {
                reply_unavailable(s, d->cid[k], d->cid_len[k], d->request_id,
                                  "the answer is taking longer than its wait; resend the command "
                                  "under the same request_id to get it when it is ready");
            }
            d->used = false;
            a->deferred_n--;
        }
        if (d->used && strcmp(d->request_id, request_id) == 0) {
            return d;
        }
    }
    return NULL;
}

bool zsvc_async_absorb(zsvc_t *s, job_t *job)
{
    deferred_t *d = deferred_find(s, job->request_id);
    if (d == NULL) {
        return false;
    }
    if (job->absorb_kept) {
        return true; /* a rerun of the batch: done in the first pass, and kept */
    }
    if (d->addr_count == DEFERRED_ADDRS_MAX) {
        /* Enough addresses wait for this one already: this resend is told to
         * come back, rather than taking another's place. */
        reply_unavailable(s, job->cid, job->cid_len, job->request_id,
                          "the command is still running; resend it under the same request_id "
                          "in a moment to get its answer");
        job->absorb_kept = true;
        return true;
    }
    /* The caller resent while it waits: answer this address too. A command
     * deferred by this batch loses its addresses if the batch runs again,
     * and the rerun adds them back; one deferred before keeps them. */
    int k = d->addr_count++;
    memcpy(d->cid[k], job->cid, job->cid_len);
    d->cid_len[k] = job->cid_len;
    job->absorb_kept = !d->staged;
    return true;
}

bool zsvc_async_defer(zsvc_t *s, job_t *job)
{
    struct zsvc_async *a = s->async;
    deferred_t *slot = deferred_find(s, job->request_id);
    for (int i = 0; slot == NULL && i < ZSVC_DEFERRED_MAX; i++) {
        if (!a->deferred[i].used) {
            slot = &a->deferred[i];
        }
    }
    if (slot == NULL) {
        /* More waiters than the bound: the caller is answered now (UNAVAILABLE)
         * and gets the stored answer when it resends. */
        zlog(ZLOG_WARN, "deferred_full", "request_id", job->request_id, NULL);
        return false;
    }
    if (!slot->used) {
        slot->used = true;
        a->deferred_n++;
    }
    snprintf(slot->request_id, sizeof slot->request_id, "%s", job->request_id);
    memcpy(slot->cid[0], job->cid, job->cid_len);
    slot->cid_len[0] = job->cid_len;
    slot->addr_count = 1;
    slot->staged = true;
    slot->until_mono_ms = zclock_mono_ms() + ZSVC_DEFERRED_MS;
    return true;
}

void zsvc_async_complete(zsvc_t *s, const char *reply_to, const uint8_t *reply, size_t len)
{
    deferred_t *d = deferred_find(s, reply_to);
    if (d == NULL) {
        return; /* nobody waits any more; the reply is remembered for a resend */
    }
    char op = ZBUS_OP_REPLY;
    for (int k = 0; k < d->addr_count; k++) {
        const void *data[4] = {&op, d->cid[k], reply_to, reply};
        size_t lens[4] = {1, d->cid_len[k], strlen(reply_to), len};
        zbus_send(s->worker, 4, data, lens);
    }
    d->used = false;
    s->async->deferred_n--;
}

/* ---- starting work from a handler --------------------------------------- */

static const char *reply_to_of(zsvc_ctx_t *ctx, bool defer_reply)
{
    return defer_reply && ctx->cmd != NULL ? ctx->cmd->request_id : "";
}

int zsvc_call(zsvc_ctx_t *ctx, const char *service, const Zhili__V1__Command *cmd, int timeout_ms,
              const char *kind, const char *key, bool defer_reply)
{
    struct zsvc_async *a = ctx->svc->async;
    outcall_t *c = NULL;
    for (int i = 0; i < ZSVC_OUTCALLS_MAX && c == NULL; i++) {
        c = a->calls[i].used ? NULL : &a->calls[i];
    }
    if (c == NULL || !zbus_name_valid(service) || strlen(kind) > ZSVC_KIND_BYTES_MAX ||
        strlen(key) > ZSVC_KEY_BYTES_MAX || strlen(cmd->request_id) == 0 ||
        strlen(cmd->request_id) > ZSTORE_REQUEST_ID_BYTES_MAX) {
        return ZE_UNAVAILABLE;
    }
    if (zcodec_pack(&cmd->base, ZBUS_MSG_BYTES_MAX, &c->cmd, &c->cmd_len) != 0) {
        return ZE_INVALID;
    }
    c->used = true;
    a->calls_n++;
    c->sent = false; /* sent after the batch commits; dropped if it does not */
    c->order = ++a->order;
    snprintf(c->rid, sizeof c->rid, "%s", cmd->request_id);
    snprintf(c->kind, sizeof c->kind, "%s", kind);
    snprintf(c->key, sizeof c->key, "%s", key);
    snprintf(c->reply_to, sizeof c->reply_to, "%s", reply_to_of(ctx, defer_reply));
    snprintf(c->service, sizeof c->service, "%s", service);
    c->until_mono_ms = timeout_ms; /* made absolute when sent */
    return 0;
}

int zsvc_offload(zsvc_ctx_t *ctx, zsvc_work_fn fn, void *arg, void (*free_arg)(void *arg),
                 const char *kind, const char *key, bool defer_reply)
{
    struct zsvc_async *a = ctx->svc->async;
    if (a->batch_work + a->queued >= ZSVC_OFFLOAD_MAX || strlen(kind) > ZSVC_KIND_BYTES_MAX ||
        strlen(key) > ZSVC_KEY_BYTES_MAX) {
        return ZE_UNAVAILABLE;
    }
    work_t *w = calloc(1, sizeof *w);
    ZASSERT(w != NULL);
    *w = (work_t){NULL, fn, arg, free_arg, "", "", ""};
    snprintf(w->kind, sizeof w->kind, "%s", kind);
    snprintf(w->key, sizeof w->key, "%s", key);
    snprintf(w->reply_to, sizeof w->reply_to, "%s", reply_to_of(ctx, defer_reply));
    if (a->batch_tail != NULL) {
        a->batch_tail->next = w;
    } else {
        a->batch_head = w;
    }
    a->batch_tail = w;
    a->batch_work++;
    return 0;
}

zsvc_async_mark_t zsvc_async_mark(zsvc_t *s)
{
    struct zsvc_async *a = s->async;
    return (zsvc_async_mark_t){a->order, a->batch_work};
}

/* A command failed: forget the calls and work it started. */
void zsvc_async_rollback(zsvc_t *s, zsvc_async_mark_t mark)
{
    struct zsvc_async *a = s->async;
    for (int i = 0; i < ZSVC_OUTCALLS_MAX && a->calls_n > 0; i++) {
        outcall_t *c = &a->calls[i];
        if (c->used && !c->sent && c->order > mark.order) {
            free(c->cmd);
            memset(c, 0, sizeof *c);
            a->calls_n--;
        }
    }
    if (a->batch_work == mark.work) {
        return;
    }
    work_t *keep = NULL, *w = a->batch_head;
    for (int i = 0; i < mark.work; i++) {
        keep = w;
        w = w->next;
    }
    while (w != NULL) {
        work_t *next = w->next;
        if (w->free_arg != NULL) {
            w->free_arg(w->arg);
        }
        free(w);
        w = next;
    }
    if (keep != NULL) {
        keep->next = NULL;
    } else {
        a->batch_head = NULL;
    }
    a->batch_tail = keep;
    a->batch_work = mark.work;
}

void zsvc_async_batch_reset(zsvc_t *s)
{
    struct zsvc_async *a = s->async;
    for (int i = 0; i < ZSVC_DEFERRED_MAX && a->deferred_n > 0; i++) {
        if (a->deferred[i].used && a->deferred[i].staged) {
            a->deferred[i].used = false;
            a->deferred_n--;
        }
    }
    for (int i = 0; i < ZSVC_OUTCALLS_MAX && a->calls_n > 0; i++) {
        outcall_t *c = &a->calls[i];
        if (c->used && !c->sent) {
            free(c->cmd);
            memset(c, 0, sizeof *c);
            a->calls_n--;
        }
    }
    while (a->batch_head != NULL) {
        work_t *w = a->batch_head;
        a->batch_head = w->next;
        if (w->free_arg != NULL) {
            w->free_arg(w->arg);
        }
        free(w);
    }
    a->batch_tail = NULL;
    a->batch_work = 0;
}

void zsvc_async_after_commit(zsvc_t *s)
{
    struct zsvc_async *a = s->async;
    int64_t now = zclock_mono_ms();
    for (int i = 0; i < ZSVC_DEFERRED_MAX && a->deferred_n > 0; i++) {
        a->deferred[i].staged = false;
    }
    for (int i = 0; i < ZSVC_OUTCALLS_MAX && a->calls_n > 0; i++) {
        outcall_t *c = &a->calls[i];
        if (c->used && !c->sent) {
            int64_t timeout = c->until_mono_ms > 0 ? c->until_mono_ms : ZBUS_DEADLINE_MS_DEFAULT;
            c->until_mono_ms = now + timeout;
            c->resend_mono_ms = now + ZBUS_ATTEMPT_MS;
            c->sent = true;
            zbus_client_send(zsvc_client(s), c->service, c->rid, zclock_wall_ms() + timeout,
                             c->cmd, c->cmd_len);
        }
    }
    if (a->batch_head == NULL) {
        return;
    }
    pthread_mutex_lock(&a->mu);
    if (a->queue_tail != NULL) {
        a->queue_tail->next = a->batch_head;
    } else {
        a->queue_head = a->batch_head;
    }
    a->queue_tail = a->batch_tail;
    a->queued += a->batch_work;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    a->batch_head = a->batch_tail = NULL;
    a->batch_work = 0;
}

/* ---- the worker thread -------------------------------------------------- */

typedef struct {
    zsvc_t *svc;
    void *push;
} worker_ctx_t;

static void run_work(zsvc_t *s, void *push, work_t *w)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (w->fn(w->arg, &out, &out_len) != 0) {
        free(out);
        out = NULL;
        out_len = 0;
    }
    if (w->free_arg != NULL) {
        w->free_arg(w->arg);
    }
    /* The counter is the loop's; the worker names its continuations apart. */
    char rid[ZSTORE_REQUEST_ID_BYTES_MAX + 1];
    snprintf(rid, sizeof rid, "work:%s:%s", w->kind, w->key);
    Zhili__V1__Continuation c = ZHILI__V1__CONTINUATION__INIT;
    c.kind = w->kind;
    c.key = w->key;
    c.reply_to = w->reply_to;
    c.outcome_case = ZHILI__V1__CONTINUATION__OUTCOME_DATA;
    c.data.data = out;
    c.data.len = out_len;
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = s->name;
    actor.role = "service";
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.request_id = rid;
    cmd.actor = &actor;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_CONTINUATION;
    cmd.continuation = &c;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (zcodec_pack(&cmd.base, ZBUS_MSG_BYTES_MAX, &buf, &len) == 0) {
        zmq_send(push, buf, len, 0);
    }
    free(buf);
    free(out);
}

static void *worker_main(void *arg)
{
    zsvc_t *s = arg;
    struct zsvc_async *a = s->async;
    void *push = zbus_socket_new(s->zctx, ZMQ_PUSH);
    ZASSERT(push != NULL && zmq_connect(push, a->endpoint) == 0);
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        if (a->queue_head == NULL) {
            pthread_cond_wait(&a->cv, &a->mu);
            continue;
        }
        work_t *w = a->queue_head;
        a->queue_head = w->next;
        if (a->queue_head == NULL) {
            a->queue_tail = NULL;
        }
        a->queued--;
        pthread_mutex_unlock(&a->mu);
        run_work(s, push, w);
        free(w);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    zmq_close(push);
    return NULL;
}

int zsvc_async_init(zsvc_t *s)
{
    struct zsvc_async *a = calloc(1, sizeof *a);
    ZASSERT(a != NULL);
    s->async = a;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    snprintf(a->endpoint, sizeof a->endpoint, "inproc://zsvc-async-%p", (void *)s);
    a->pull = zbus_socket_new(s->zctx, ZMQ_PULL);
    if (a->pull == NULL || zmq_bind(a->pull, a->endpoint) != 0 ||
        pthread_create(&a->thread, NULL, worker_main, s) != 0) {
        zlog(ZLOG_ERROR, "worker_start_failed", "error", zmq_strerror(errno), NULL);
        return -1;
    }
    a->thread_started = true;
    return 0;
}

void zsvc_async_fini(zsvc_t *s)
{
    struct zsvc_async *a = s->async;
    if (a == NULL) {
        return;
    }
    if (a->thread_started) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    zsvc_async_batch_reset(s);
    while (a->queue_head != NULL) {
        work_t *w = a->queue_head;
        a->queue_head = w->next;
        if (w->free_arg != NULL) {
            w->free_arg(w->arg);
        }
        free(w);
    }
    while (a->ready_head != NULL) {
        ready_t *r = a->ready_head;
        a->ready_head = r->next;
        free(r->cmd);
        free(r);
    }
    for (int i = 0; i < ZSVC_OUTCALLS_MAX; i++) {
        free(a->calls[i].cmd);
    }
    if (a->pull != NULL) {
        zmq_close(a->pull);
    }
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
    s->async = NULL;
}

void *zsvc_async_socket(zsvc_t *s)
{
    return s->async->pull;
}
