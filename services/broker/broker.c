/* Command routing: a Majordomo-style broker with credit (docs/protocol.md).
 * One thread owns the ROUTER; events.c runs the event proxy on another. */
#include "services/broker/broker.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "services/broker/events.h"

#define ID_BYTES_MAX 255
#define REQUEST_ID_BYTES_MAX 200

typedef struct service service_t;

typedef struct {
    uint8_t id[ID_BYTES_MAX];
    size_t id_len;
    service_t *service;
    uint32_t credit;
    uint32_t outstanding;
    int64_t expiry_mono_ms;
    char instance[64];
} worker_t;

/* A request waiting for a worker: its frames are kept as ZeroMQ messages
 * (moved, not copied). */
typedef struct pending {
    struct pending *next;
    zmq_msg_t client_id;
    zmq_msg_t command;
    char request_id[REQUEST_ID_BYTES_MAX + 1];
    int64_t deadline_ms;
} pending_t;

struct service {
    char name[ZBUS_NAME_BYTES_MAX + 1];
    worker_t *workers[ZBROKER_WORKERS_MAX];
    int worker_count;
    int rr;
    pending_t *head, *tail;
    int64_t queued;
    int64_t requests_total, replies_total, unavailable_total;
};

typedef struct {
    const zbroker_config_t *cfg;
    void *router;
    service_t *services[ZBROKER_SERVICES_MAX];
    int service_count;
    worker_t *workers[ZBROKER_WORKERS_MAX];
    int worker_count;
    int64_t malformed_total, dropped_replies_total;
    zevents_t *events;
} broker_t;

/* ---- sending ------------------------------------------------------------ */

static int send_to(broker_t *b, const void *id, size_t id_len, int count, const void *const *data,
                   const size_t *lens)
{
    const void *d[ZBUS_FRAMES_MAX + 1];
    size_t l[ZBUS_FRAMES_MAX + 1];
    ZASSERT(count <= ZBUS_FRAMES_MAX);
    d[0] = id;
    l[0] = id_len;
    memcpy(d + 1, data, sizeof(void *) * (size_t)count);
    memcpy(l + 1, lens, sizeof(size_t) * (size_t)count);
    return zbus_send(b->router, count + 1, d, l);
}

static void send_error(broker_t *b, const void *id, size_t id_len, const char *sentence)
{
    char op = ZBUS_OP_ERROR;
    const void *d[2] = {&op, sentence};
    size_t l[2] = {1, strlen(sentence)};
    b->malformed_total++;
    zlog(ZLOG_WARN, "malformed_message", "reason", sentence, NULL);
    send_to(b, id, id_len, 2, d, l);
}

/* A reply made by the broker itself (UNAVAILABLE, INVALID) to a client. */
static void send_reply(broker_t *b, const void *cid, size_t cid_len, const char *request_id,
                       int code, const char *message)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (zbus_reply_pack(request_id, code, message, &buf, &len) != 0) {
        return;
    }
    char op = ZBUS_OP_REPLY;
    const void *d[3] = {&op, request_id, buf};
    size_t l[3] = {1, strlen(request_id), len};
    if (send_to(b, cid, cid_len, 3, d, l) != 0) {
        b->dropped_replies_total++;
    }
    free(buf);
}

/* ---- services and workers ----------------------------------------------- */

static service_t *service_find(broker_t *b, const char *name, bool create)
{
    for (int i = 0; i < b->service_count; i++) {
        if (strcmp(b->services[i]->name, name) == 0) {
            return b->services[i];
        }
    }
    if (!create || b->service_count == ZBROKER_SERVICES_MAX) {
        return NULL;
    }
    service_t *s = calloc(1, sizeof *s);
    ZASSERT(s != NULL);
    snprintf(s->name, sizeof s->name, "%s", name);
    b->services[b->service_count++] = s;
    return s;
}

static worker_t *worker_find(broker_t *b, const void *id, size_t id_len)
{
    for (int i = 0; i < b->worker_count; i++) {
        worker_t *w = b->workers[i];
        if (w->id_len == id_len && memcmp(w->id, id, id_len) == 0) {
            return w;
        }
    }
    return NULL;
}

static void worker_remove(broker_t *b, worker_t *w, const char *why)
{
    service_t *s = w->service;
    for (int i = 0; i < s->worker_count; i++) {
        if (s->workers[i] == w) {
            s->workers[i] = s->workers[--s->worker_count];
            break;
        }
    }
    for (int i = 0; i < b->worker_count; i++) {
        if (b->workers[i] == w) {
            b->workers[i] = b->workers[--b->worker_count];
            break;
        }
    }
    zlog(ZLOG_INFO, "worker_removed", "target", s->name, "instance", w->instance, "reason", why,
         NULL);
    free(w);
}

/* The live worker with the fewest requests outstanding and credit left;
 * ties go round robin so equal workers share the load. */
static worker_t *worker_pick(service_t *s)
{
    worker_t *best = NULL;
    for (int k = 0; k < s->worker_count; k++) {
        worker_t *w = s->workers[(s->rr + k) % s->worker_count];
        if (w->outstanding < w->credit && (best == NULL || w->outstanding < best->outstanding)) {
            best = w;
        }
    }
    if (best != NULL) {
        s->rr = (s->rr + 1) % s->worker_count;
    }
    return best;
}

/* Forward one request; the messages are consumed only on success. */
static int forward(broker_t *b, worker_t *w, zmq_msg_t *cid, const char *request_id,
                   zmq_msg_t *cmd)
{
    char op = ZBUS_OP_REQUEST;
    if (zmq_send(b->router, w->id, w->id_len, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) {
        return errno == EAGAIN ? ZE_AGAIN : ZE_UNAVAILABLE;
    }
    /* The routing frame was accepted, so the rest goes with it. */
    zmq_send(b->router, &op, 1, ZMQ_SNDMORE);
    zmq_msg_send(cid, b->router, ZMQ_SNDMORE);
    zmq_send(b->router, request_id, strlen(request_id), ZMQ_SNDMORE);
    zmq_msg_send(cmd, b->router, 0);
    w->outstanding++;
    w->service->requests_total++;
    return 0;
}

/* Try the workers of s until one takes the request. */
static int place(broker_t *b, service_t *s, zmq_msg_t *cid, const char *request_id,
                 zmq_msg_t *cmd)
{
    for (;;) {
        worker_t *w = worker_pick(s);
        if (w == NULL) {
            return ZE_AGAIN;
        }
        int rc = forward(b, w, cid, request_id, cmd);
        if (rc == 0) {
            return 0;
        }
        if (rc == ZE_AGAIN) {
            w->outstanding = w->credit; /* its pipe is full: no more until it replies */
        } else {
            worker_remove(b, w, "unreachable");
        }
    }
}

static void enqueue(broker_t *b, service_t *s, zmq_msg_t *cid, const char *request_id,
                    zmq_msg_t *cmd, int64_t deadline_ms)
{
    if (s->queued >= b->cfg->queue_max) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "service '%s' has %lld requests waiting, the most the broker holds; try again later",
                 s->name, (long long)s->queued);
        send_reply(b, zmq_msg_data(cid), zmq_msg_size(cid), request_id, ZE_UNAVAILABLE, msg);
        s->unavailable_total++;
        return;
    }
    pending_t *p = calloc(1, sizeof *p);
    ZASSERT(p != NULL);
    zmq_msg_init(&p->client_id);
    zmq_msg_init(&p->command);
    zmq_msg_move(&p->client_id, cid);
    zmq_msg_move(&p->command, cmd);
    snprintf(p->request_id, sizeof p->request_id, "%s", request_id);
    p->deadline_ms = deadline_ms;
    if (s->tail != NULL) {
        s->tail->next = p;
    } else {
        s->head = p;
    }
    s->tail = p;
    s->queued++;
}

static void pending_free(pending_t *p)
{
    zmq_msg_close(&p->client_id);
    zmq_msg_close(&p->command);
    free(p);
}

/* Hand queued requests to workers that have credit, oldest first. */
static void drain_queue(broker_t *b, service_t *s)
{
    while (s->head != NULL) {
        pending_t *p = s->head;
        if (place(b, s, &p->client_id, p->request_id, &p->command) != 0) {
            return;
        }
        s->head = p->next;
        if (s->head == NULL) {
            s->tail = NULL;
        }
        s->queued--;
        pending_free(p);
    }
}

static void expire_queue(broker_t *b, service_t *s, int64_t now_ms)
{
    pending_t **pp = &s->head;
    s->tail = NULL;
    while (*pp != NULL) {
        pending_t *p = *pp;
        if (p->deadline_ms > now_ms) {
            s->tail = p;
            pp = &p->next;
            continue;
        }
        char msg[256];
        snprintf(msg, sizeof msg,
                 s->worker_count == 0
                     ? "no worker of service '%s' is running; is zhili-%s started?"
                     : "every worker of service '%s' was busy until the deadline; retry (%s)",
                 s->name, s->name);
        send_reply(b, zmq_msg_data(&p->client_id), zmq_msg_size(&p->client_id), p->request_id,
                   ZE_UNAVAILABLE, msg);
        s->unavailable_total++;
        s->queued--;
        *pp = p->next;
        pending_free(p);
    }
}

/* ---- incoming messages -------------------------------------------------- */

static int64_t clamp_deadline(int64_t deadline_ms)
{
    int64_t now = zclock_wall_ms();
    if (deadline_ms <= 0) {
        return now + ZBUS_DEADLINE_MS_DEFAULT;
    }
    if (deadline_ms > now + ZBUS_DEADLINE_MS_MAX) {
        return now + ZBUS_DEADLINE_MS_MAX;
    }
    return deadline_ms;
}

/* [cid][Q][Route][Command] */
static void on_request(broker_t *b, zbus_frames_t *f)
{
    size_t cid_len, route_len, cmd_len;
    const void *cid = zbus_frame_data(f, 0, &cid_len);
    const uint8_t *rd = zbus_frame_data(f, 2, &route_len);
    zbus_frame_data(f, 3, &cmd_len);
    if (f->total != 4) {
        send_error(b, cid, cid_len, "a request has 3 frames: Q, Route, Command");
        return;
    }
    ProtobufCMessage *m = NULL;
    if (zcodec_unpack(&zhili__v1__route__descriptor, rd, route_len, 1024, &m) != 0) {
        send_error(b, cid, cid_len, "the Route frame of a request is not a valid zhili.v1.Route");
        return;
    }
    Zhili__V1__Route *route = (Zhili__V1__Route *)m;
    if (strlen(route->request_id) == 0 || strlen(route->request_id) > REQUEST_ID_BYTES_MAX) {
        send_error(b, cid, cid_len, "a request needs a request_id of 1 to 200 bytes");
    } else if (!zbus_name_valid(route->service)) {
        send_reply(b, cid, cid_len, route->request_id, ZE_INVALID,
                   "the service name must be 1-64 characters of a-z, 0-9, '_' and '-'");
    } else if (cmd_len > ZBUS_MSG_BYTES_MAX) {
        send_reply(b, cid, cid_len, route->request_id, ZE_INVALID,
                   "the command is larger than the 4 MiB limit");
    } else {
        service_t *s = service_find(b, route->service, true);
        if (s == NULL) {
            send_reply(b, cid, cid_len, route->request_id, ZE_UNAVAILABLE,
                       "the broker already routes the most services it can (256)");
        } else if (s->head != NULL ||
                   place(b, s, &f->parts[0], route->request_id, &f->parts[3]) != 0) {
            enqueue(b, s, &f->parts[0], route->request_id, &f->parts[3],
                    clamp_deadline(route->deadline_ms));
        }
    }
    zhili__v1__route__free_unpacked(route, NULL);
}

/* [wid][P][cid][request_id][Reply] */
static void on_reply(broker_t *b, zbus_frames_t *f)
{
    size_t wid_len;
    const void *wid = zbus_frame_data(f, 0, &wid_len);
    if (f->total != 5) {
        send_error(b, wid, wid_len, "a reply has 4 frames: P, client, request_id, Reply");
        return;
    }
    worker_t *w = worker_find(b, wid, wid_len);
    if (w != NULL) {
        if (w->outstanding > 0) {
            w->outstanding--;
        }
        w->expiry_mono_ms = zclock_mono_ms() + b->cfg->heartbeat_ms * ZBROKER_HB_LIVENESS;
        w->service->replies_total++;
    }
    /* Forward even from a worker the broker forgot: the reply is still the answer. */
    char op = ZBUS_OP_REPLY;
    size_t cid_len;
    const void *cid = zbus_frame_data(f, 2, &cid_len);
    if (zmq_send(b->router, cid, cid_len, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) {
        b->dropped_replies_total++;
        zlog(ZLOG_DEBUG, "reply_undeliverable", "error", zmq_strerror(errno), NULL);
    } else {
        zmq_send(b->router, &op, 1, ZMQ_SNDMORE);
        zmq_msg_send(&f->parts[3], b->router, ZMQ_SNDMORE);
        zmq_msg_send(&f->parts[4], b->router, 0);
    }
    if (w != NULL) {
        drain_queue(b, w->service);
    }
}

static void on_register(broker_t *b, zbus_frames_t *f)
{
    size_t wid_len, len;
    const void *wid = zbus_frame_data(f, 0, &wid_len);
    const uint8_t *d = zbus_frame_data(f, 2, &len);
    ProtobufCMessage *m = NULL;
    if (f->total != 3 || zcodec_unpack(&zhili__v1__register__descriptor, d, len, 1024, &m) != 0) {
        send_error(b, wid, wid_len, "a registration has 2 frames: W, Register");
        return;
    }
    Zhili__V1__Register *reg = (Zhili__V1__Register *)m;
    worker_t *w = worker_find(b, wid, wid_len);
    service_t *s = NULL;
    if (!zbus_name_valid(reg->service) || reg->credit == 0 || reg->credit > ZBROKER_CREDIT_MAX) {
        send_error(b, wid, wid_len, "a registration needs a valid service name and credit 1-100000");
    } else if (w == NULL && b->worker_count == ZBROKER_WORKERS_MAX) {
        send_error(b, wid, wid_len, "the broker already has the most workers it can (1024)");
    } else if ((s = service_find(b, reg->service, true)) == NULL) {
        send_error(b, wid, wid_len, "the broker already routes the most services it can (256)");
    } else {
        if (w != NULL && w->service != s) {
            worker_remove(b, w, "registered again under another name");
            w = NULL;
        }
        if (w == NULL) {
            w = calloc(1, sizeof *w);
            ZASSERT(w != NULL);
            memcpy(w->id, wid, wid_len);
            w->id_len = wid_len;
            w->service = s;
            s->workers[s->worker_count++] = w;
            b->workers[b->worker_count++] = w;
        }
        /* A re-registration means the worker lost track: forget what it owed. */
        w->outstanding = 0;
        w->credit = reg->credit;
        snprintf(w->instance, sizeof w->instance, "%s", reg->instance);
        w->expiry_mono_ms = zclock_mono_ms() + b->cfg->heartbeat_ms * ZBROKER_HB_LIVENESS;
        zlog(ZLOG_INFO, "worker_ready", "target", s->name, "instance", w->instance, NULL);
        drain_queue(b, s);
    }
    zhili__v1__register__free_unpacked(reg, NULL);
}

static void on_heartbeat(broker_t *b, zbus_frames_t *f)
{
    size_t wid_len;
    const void *wid = zbus_frame_data(f, 0, &wid_len);
    worker_t *w = worker_find(b, wid, wid_len);
    if (w != NULL) {
        w->expiry_mono_ms = zclock_mono_ms() + b->cfg->heartbeat_ms * ZBROKER_HB_LIVENESS;
        return;
    }
    /* A heartbeat from a worker this broker does not know (it restarted, or
     * expired the worker): ask it to register again. */
    char op = ZBUS_OP_DISCONNECT;
    const void *d[1] = {&op};
    size_t l[1] = {1};
    send_to(b, wid, wid_len, 1, d, l);
}

static void on_disconnect(broker_t *b, zbus_frames_t *f)
{
    size_t wid_len;
    const void *wid = zbus_frame_data(f, 0, &wid_len);
    worker_t *w = worker_find(b, wid, wid_len);
    if (w != NULL) {
        worker_remove(b, w, "disconnected");
    }
}

static Zhili__V1__Stat *stat_add(Zhili__V1__Stats *st, Zhili__V1__Stat *pool, const char *name,
                                 const char *labels, int64_t value)
{
    Zhili__V1__Stat *s = &pool[st->n_stats];
    zhili__v1__stat__init(s);
    s->name = (char *)name;
    s->labels = (char *)labels;
    s->value = value;
    st->stats[st->n_stats++] = s;
    return s;
}

static void on_stats(broker_t *b, zbus_frames_t *f)
{
    enum { PER_SERVICE = 5, GLOBAL = 5 };
    size_t cap = (size_t)b->service_count * PER_SERVICE + GLOBAL;
    Zhili__V1__Stat *pool = calloc(cap, sizeof *pool);
    Zhili__V1__Stat **ptrs = calloc(cap, sizeof *ptrs);
    char(*labels)[96] = calloc((size_t)b->service_count + 1, sizeof *labels);
    ZASSERT(pool != NULL && ptrs != NULL && labels != NULL);
    Zhili__V1__Stats st = ZHILI__V1__STATS__INIT;
    st.name = "broker";
    st.stats = ptrs;
    for (int i = 0; i < b->service_count; i++) {
        service_t *s = b->services[i];
        snprintf(labels[i], sizeof labels[i], "service=\"%s\"", s->name);
        stat_add(&st, pool, "broker_workers", labels[i], s->worker_count);
        stat_add(&st, pool, "broker_queued", labels[i], s->queued);
        stat_add(&st, pool, "broker_requests_total", labels[i], s->requests_total);
        stat_add(&st, pool, "broker_replies_total", labels[i], s->replies_total);
        stat_add(&st, pool, "broker_unavailable_total", labels[i], s->unavailable_total);
    }
    stat_add(&st, pool, "broker_malformed_total", "", b->malformed_total);
    stat_add(&st, pool, "broker_dropped_replies_total", "", b->dropped_replies_total);
    stat_add(&st, pool, "broker_events_forwarded_total", "", zevents_forwarded(b->events));
    stat_add(&st, pool, "broker_event_subscriptions", "", zevents_subscriptions(b->events));
    stat_add(&st, pool, "broker_workers_total", "", b->worker_count);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (zcodec_pack(&st.base, 0, &buf, &len) == 0) {
        char op = ZBUS_OP_STATS;
        size_t cid_len;
        const void *cid = zbus_frame_data(f, 0, &cid_len);
        const void *d[2] = {&op, buf};
        size_t l[2] = {1, len};
        send_to(b, cid, cid_len, 2, d, l);
        free(buf);
    }
    free(pool);
    free(ptrs);
    free(labels);
}

static void on_message(broker_t *b, zbus_frames_t *f)
{
    size_t id_len, op_len;
    const void *id = zbus_frame_data(f, 0, &id_len);
    const char *op = zbus_frame_data(f, 1, &op_len);
    if (f->count < 2 || op_len != 1) {
        send_error(b, id, id_len, "unknown message: the first frame must be one of Q P W H D S");
        return;
    }
    switch (op[0]) {
    case ZBUS_OP_REQUEST: on_request(b, f); break;
    case ZBUS_OP_REPLY: on_reply(b, f); break;
    case ZBUS_OP_REGISTER: on_register(b, f); break;
    case ZBUS_OP_HEARTBEAT: on_heartbeat(b, f); break;
    case ZBUS_OP_DISCONNECT: on_disconnect(b, f); break;
    case ZBUS_OP_STATS: on_stats(b, f); break;
    default: send_error(b, id, id_len, "unknown message: the first frame must be one of Q P W H D S");
    }
}

/* ---- timers and the loop ------------------------------------------------ */

static void heartbeat_workers(broker_t *b)
{
    int64_t now = zclock_mono_ms();
    char op = ZBUS_OP_HEARTBEAT;
    const void *d[1] = {&op};
    size_t l[1] = {1};
    for (int i = b->worker_count - 1; i >= 0; i--) {
        worker_t *w = b->workers[i];
        if (w->expiry_mono_ms < now) {
            worker_remove(b, w, "missed heartbeats");
        } else if (send_to(b, w->id, w->id_len, 1, d, l) == ZE_UNAVAILABLE) {
            worker_remove(b, w, "unreachable");
        }
    }
}

static void sweep_queues(broker_t *b)
{
    int64_t now = zclock_wall_ms();
    for (int i = 0; i < b->service_count; i++) {
        service_t *s = b->services[i];
        if (s->head != NULL) {
            drain_queue(b, s);
            expire_queue(b, s, now);
        }
    }
}

static void broker_free(broker_t *b)
{
    for (int i = 0; i < b->service_count; i++) {
        service_t *s = b->services[i];
        while (s->head != NULL) {
            pending_t *p = s->head;
            s->head = p->next;
            pending_free(p);
        }
        free(s);
    }
    for (int i = 0; i < b->worker_count; i++) {
        free(b->workers[i]);
    }
}

/* Read at most this many messages before looking at the timers again, so a
 * flood cannot starve heartbeats. */
#define MESSAGES_PER_TURN 10000

int zbroker_run(const zbroker_config_t *cfg, volatile sig_atomic_t *stop)
{
    void *zctx = zmq_ctx_new();
    broker_t b = {.cfg = cfg};
    int rc = -1;
    b.router = zbus_socket_new(zctx, ZMQ_ROUTER);
    if (b.router == NULL || zmq_bind(b.router, cfg->router_bind) != 0) {
        zlog(ZLOG_ERROR, "bind_failed", "endpoint", cfg->router_bind, "error",
             zmq_strerror(errno), NULL);
        goto fail_router;
    }
    b.events = zevents_start(zctx, cfg->xsub_bind, cfg->xpub_bind);
    if (b.events == NULL) {
        goto fail_router;
    }
    zlog(ZLOG_INFO, "started", "commands", cfg->router_bind, "events_in", cfg->xsub_bind,
         "events_out", cfg->xpub_bind, NULL);
    int64_t next_hb = zclock_mono_ms() + cfg->heartbeat_ms;
    int64_t next_sweep = zclock_mono_ms() + ZBROKER_SWEEP_MS;
    /* Settled: the turn's last call on the ROUTER was a receive that found
     * nothing, so one poll(2) on its descriptor is the whole wait. */
    bool settled = false;
    while (!*stop) {
        int64_t wait = next_sweep - zclock_mono_ms();
        zbus_wait(&b.router, &settled, 1, wait < 0 ? 0 : (long)wait);
        settled = false;
        for (int n = 0; n < MESSAGES_PER_TURN; n++) {
            zbus_frames_t f;
            int got = zbus_frames_recv(b.router, &f);
            if (got != 0) {
                settled = got == ZE_AGAIN;
                break;
            }
            on_message(&b, &f);
            zbus_frames_close(&f);
        }
        int64_t now = zclock_mono_ms();
        if (now >= next_sweep) {
            sweep_queues(&b);
            next_sweep = now + ZBROKER_SWEEP_MS;
            settled = false; /* it may have sent */
        }
        if (now >= next_hb) {
            heartbeat_workers(&b);
            next_hb = now + cfg->heartbeat_ms;
            settled = false;
        }
    }
    rc = 0;
    zlog(ZLOG_INFO, "stopping", NULL);
    zevents_stop(&b.events);
fail_router:
    if (b.router != NULL) {
        zmq_close(b.router);
    }
    broker_free(&b);
    zmq_ctx_term(zctx);
    return rc;
}
