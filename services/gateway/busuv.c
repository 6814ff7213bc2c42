#include "services/gateway/busuv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "common/store.h"

#define BUCKETS 65536u
#define SWEEP_MS 50
#define STATS_WAITERS_MAX 64

typedef struct call {
    uint64_t id;
    struct call *next_rid, *next_id;   /* hash chains */
    struct call *prev, *next;          /* the list of all calls, oldest first */
    char request_id[ZSTORE_REQUEST_ID_BYTES_MAX + 1];
    char service[ZBUS_NAME_BYTES_MAX + 1];
    uint8_t *cmd;
    size_t cmd_len;
    int64_t deadline_mono_ms, resend_mono_ms;
    zgw_on_reply_fn on_reply;
    void *ctx;
} call_t;

typedef struct {
    zgw_on_stats_fn on_stats;
    void *ctx;
    int64_t deadline_mono_ms;
} stats_waiter_t;

typedef struct {
    void *socket;
    uv_poll_t poll;
    int fd;
    bool polling;
} watched_t;

struct zgw_bus {
    uv_loop_t *loop;
    void *zctx;
    zbus_client_t *client;
    watched_t cmd, ev;
    uv_timer_t sweep;
    uv_idle_t more;              /* keeps draining after a bounded turn */
    bool more_active;
    uv_check_t kick_check;       /* once per phase after sends: see kick() */
    uv_prepare_t kick_prepare;
    bool kick_wanted;
    zgw_on_event_fn on_event;
    void *event_ctx;
    call_t *by_rid[BUCKETS], *by_id[BUCKETS];
    call_t *head, *tail;
    uint64_t next_id;
    stats_waiter_t waiters[STATS_WAITERS_MAX];
    int waiter_count;
    zgw_bus_stats_t stats;
    int closing;
};

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 16777619u;
    }
    return h & (BUCKETS - 1);
}

static uint32_t hash_id(uint64_t id)
{
    return (uint32_t)((id * 11400714819323198485ull) >> 48) & (BUCKETS - 1);
}

static void call_link(zgw_bus_t *b, call_t *c)
{
    uint32_t hr = hash_str(c->request_id), hi = hash_id(c->id);
    c->next_rid = b->by_rid[hr];
    b->by_rid[hr] = c;
    c->next_id = b->by_id[hi];
    b->by_id[hi] = c;
    c->prev = b->tail;
    c->next = NULL;
    if (b->tail != NULL) {
        b->tail->next = c;
    } else {
        b->head = c;
    }
    b->tail = c;
    b->stats.calls_inflight++;
}

static void call_unlink_free(zgw_bus_t *b, call_t *c)
{
    call_t **pp = &b->by_rid[hash_str(c->request_id)];
    while (*pp != c) {
        pp = &(*pp)->next_rid;
    }
    *pp = c->next_rid;
    pp = &b->by_id[hash_id(c->id)];
    while (*pp != c) {
        pp = &(*pp)->next_id;
    }
    *pp = c->next_id;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        b->head = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    } else {
        b->tail = c->prev;
    }
    b->stats.calls_inflight--;
    free(c->cmd);
    free(c);
}

static void on_idle(uv_idle_t *h);

/* Sending on a ZeroMQ socket can consume the ZMQ_FD edge of a reply that has
 * already arrived: look, and drain next turn if one waits (else it would sit
 * until the sweep, up to SWEEP_MS). The look (ZMQ_EVENTS, a poll() inside
 * ZeroMQ) is made once per phase, not after every send: in the check phase
 * for sends from I/O callbacks, in the prepare phase (before the loop blocks)
 * for sends from timers. */
static void kick_now(zgw_bus_t *b)
{
    if (!b->kick_wanted) {
        return;
    }
    b->kick_wanted = false;
    if (!b->more_active && !b->closing && zbus_readable(zbus_client_socket(b->client))) {
        uv_idle_start(&b->more, on_idle);
        b->more_active = true;
    }
}

static void on_kick_check(uv_check_t *h)
{
    kick_now(h->data);
}

static void on_kick_prepare(uv_prepare_t *h)
{
    kick_now(h->data);
}

static void kick(zgw_bus_t *b)
{
    b->kick_wanted = true;
}

static void call_send(zgw_bus_t *b, call_t *c)
{
    int64_t left = c->deadline_mono_ms - zclock_mono_ms();
    int64_t deadline = zclock_wall_ms() + (left > 50 ? left - 50 : 0);
    zbus_client_send(b->client, c->service, c->request_id, deadline, c->cmd, c->cmd_len);
    c->resend_mono_ms = zclock_mono_ms() + ZBUS_ATTEMPT_MS;
    kick(b);
}

/* Answer c with a reply the gateway makes itself (deadline passed). */
static void call_fail(zgw_bus_t *b, call_t *c, const char *message)
{
    Zhili__V1__Reply r = ZHILI__V1__REPLY__INIT;
    r.request_id = c->request_id;
    r.status = ZHILI__V1__STATUS__STATUS_UNAVAILABLE;
    r.message = (char *)message;
    zgw_on_reply_fn fn = c->on_reply;
    void *ctx = c->ctx;
    call_unlink_free(b, c);
    fn(ctx, &r);
}

static void deliver_reply(zgw_bus_t *b, const Zhili__V1__Reply *r)
{
    b->stats.replies_total++;
    call_t *c = b->by_rid[hash_str(r->request_id)];
    while (c != NULL) {
        call_t *next = c->next_rid;
        if (strcmp(c->request_id, r->request_id) == 0) {
            /* Every caller waiting on this request_id gets the one answer. */
            zgw_on_reply_fn fn = c->on_reply;
            void *ctx = c->ctx;
            call_unlink_free(b, c);
            fn(ctx, r);
        }
        c = next;
    }
}

static void on_stats_frame(zgw_bus_t *b, zbus_frames_t *f)
{
    if (b->waiter_count == 0) {
        return;
    }
    stats_waiter_t w = b->waiters[0];
    memmove(b->waiters, b->waiters + 1, sizeof w * (size_t)--b->waiter_count);
    size_t len;
    const uint8_t *d = zbus_frame_data(f, 1, &len);
    Zhili__V1__Stats *st = d ? zhili__v1__stats__unpack(NULL, len, d) : NULL;
    w.on_stats(w.ctx, st);
    if (st != NULL) {
        zhili__v1__stats__free_unpacked(st, NULL);
    }
}

/* One message from the command socket. */
static int drain_cmd_one(zgw_bus_t *b)
{
    zbus_frames_t f;
    int rc = zbus_frames_recv(zbus_client_socket(b->client), &f);
    if (rc != 0) {
        return rc;
    }
    if (zbus_frame_is_op(&f, 0, ZBUS_OP_STATS)) {
        on_stats_frame(b, &f);
    } else if (zbus_frame_is_op(&f, 0, ZBUS_OP_REPLY) && f.total == 3) {
        size_t len;
        const uint8_t *d = zbus_frame_data(&f, 2, &len);
        ProtobufCMessage *m = NULL;
        if (zcodec_unpack(&zhili__v1__reply__descriptor, d, len, 0, &m) == 0) {
            deliver_reply(b, (Zhili__V1__Reply *)m);
            zcodec_free(m);
        } else {
            b->stats.malformed_total++;
        }
    } else {
        b->stats.malformed_total++;
        char msg[256] = "";
        zbus_frame_str(&f, 1, msg, sizeof msg);
        zlog(ZLOG_WARN, "broker_message_dropped", "msg", msg, NULL);
    }
    zbus_frames_close(&f);
    return 0;
}

static int drain_ev_one(zgw_bus_t *b)
{
    zbus_frames_t f;
    int rc = zbus_frames_recv(b->ev.socket, &f);
    if (rc != 0) {
        return rc;
    }
    size_t tlen, len;
    const char *topic = zbus_frame_data(&f, 0, &tlen);
    const void *data = zbus_frame_data(&f, 1, &len);
    if (f.total == 2) {
        b->stats.events_total++;
        b->on_event(b->event_ctx, topic, tlen, data, len);
    } else {
        b->stats.malformed_total++;
    }
    zbus_frames_close(&f);
    return 0;
}

/* Read up to ZGW_DRAIN_PER_TURN messages with one(b); whether more may wait.
 * A receive that found nothing (ZE_AGAIN) has processed the socket's
 * commands, which is all that ZMQ_EVENTS would do, so only a drain stopped
 * by its bound, or by an error, asks. */
static bool drain_socket(zgw_bus_t *b, void *socket, int (*one)(zgw_bus_t *))
{
    int rc = 0;
    for (int n = 0; n < ZGW_DRAIN_PER_TURN && (rc = one(b)) == 0; n++) {
    }
    return rc == ZE_AGAIN ? false : zbus_readable(socket);
}

/* Drain both sockets up to the per-turn bound; if a bound stopped us, carry
 * on next turn from an idle handle (no new edge would come). */
static void drain(zgw_bus_t *b)
{
    bool more = drain_socket(b, zbus_client_socket(b->client), drain_cmd_one);
    more = drain_socket(b, b->ev.socket, drain_ev_one) || more;
    if (more && !b->more_active && !b->closing) {
        uv_idle_start(&b->more, on_idle);
        b->more_active = true;
    } else if (!more && b->more_active) {
        uv_idle_stop(&b->more);
        b->more_active = false;
    }
}

static void on_idle(uv_idle_t *h)
{
    drain(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    drain(h->data);
}

static void on_sweep(uv_timer_t *h)
{
    zgw_bus_t *b = h->data;
    int64_t now = zclock_mono_ms();
    call_t *c = b->head;
    while (c != NULL) {
        call_t *next = c->next;
        if (now >= c->deadline_mono_ms) {
            b->stats.timeouts_total++;
            char msg[200];
            snprintf(msg, sizeof msg, "service '%s' did not answer in time; try again", c->service);
            call_fail(b, c, msg);
        } else if (now >= c->resend_mono_ms) {
            b->stats.resends_total++;
            call_send(b, c); /* same request_id: the service answers it once */
        }
        c = next;
    }
    while (b->waiter_count > 0 && now >= b->waiters[0].deadline_mono_ms) {
        stats_waiter_t w = b->waiters[0];
        memmove(b->waiters, b->waiters + 1, sizeof w * (size_t)--b->waiter_count);
        w.on_stats(w.ctx, NULL);
    }
    drain(b); /* a missed edge costs at most one sweep interval */
}

static int watch(zgw_bus_t *b, watched_t *w, void *socket)
{
    w->socket = socket;
    size_t len = sizeof w->fd;
    if (zmq_getsockopt(socket, ZMQ_FD, &w->fd, &len) != 0 ||
        uv_poll_init(b->loop, &w->poll, w->fd) != 0) {
        return -1;
    }
    w->poll.data = b;
    w->polling = true;
    return uv_poll_start(&w->poll, UV_READABLE, on_poll);
}

zgw_bus_t *zgw_bus_new(uv_loop_t *loop, const char *broker, const char *events_sub,
                       zgw_on_event_fn on_event, void *event_ctx)
{
    zgw_bus_t *b = calloc(1, sizeof *b);
    ZASSERT(b != NULL);
    b->loop = loop;
    b->on_event = on_event;
    b->event_ctx = event_ctx;
    b->zctx = zmq_ctx_new();
    b->client = zbus_client_new(b->zctx, broker);
    void *sub = zbus_socket_new(b->zctx, ZMQ_SUB);
    if (b->client == NULL || sub == NULL || zmq_connect(sub, events_sub) != 0) {
        zlog(ZLOG_ERROR, "connect_failed", "broker", broker, "events", events_sub, NULL);
        if (sub != NULL) {
            zmq_close(sub);
        }
        zbus_client_destroy(&b->client);
        zmq_ctx_term(b->zctx);
        free(b);
        return NULL;
    }
    if (watch(b, &b->cmd, zbus_client_socket(b->client)) != 0 || watch(b, &b->ev, sub) != 0) {
        ZASSERT(!"uv_poll on a ZeroMQ descriptor failed");
    }
    uv_timer_init(loop, &b->sweep);
    b->sweep.data = b;
    uv_timer_start(&b->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_idle_init(loop, &b->more);
    b->more.data = b;
    uv_check_init(loop, &b->kick_check);
    b->kick_check.data = b;
    uv_check_start(&b->kick_check, on_kick_check);
    uv_unref((uv_handle_t *)&b->kick_check);
    uv_prepare_init(loop, &b->kick_prepare);
    b->kick_prepare.data = b;
    uv_prepare_start(&b->kick_prepare, on_kick_prepare);
    uv_unref((uv_handle_t *)&b->kick_prepare);
    return b;
}

int zgw_bus_subscribe(zgw_bus_t *self, const char *prefix)
{
    return zmq_setsockopt(self->ev.socket, ZMQ_SUBSCRIBE, prefix, strlen(prefix)) == 0
               ? 0
               : ZE_INTERNAL;
}

uint64_t zgw_bus_call(zgw_bus_t *self, const char *service, const Zhili__V1__Command *cmd,
                      int timeout_ms, zgw_on_reply_fn on_reply, void *ctx)
{
    size_t rid_len = strlen(cmd->request_id);
    if (self->stats.calls_inflight >= ZGW_CALLS_MAX || !zbus_name_valid(service) || rid_len == 0 ||
        rid_len > ZSTORE_REQUEST_ID_BYTES_MAX) {
        return 0;
    }
    call_t *c = calloc(1, sizeof *c);
    ZASSERT(c != NULL);
    if (zcodec_pack(&cmd->base, ZBUS_MSG_BYTES_MAX, &c->cmd, &c->cmd_len) != 0) {
        free(c);
        return 0;
    }
    c->id = ++self->next_id;
    memcpy(c->request_id, cmd->request_id, rid_len + 1);
    memcpy(c->service, service, strlen(service) + 1); /* zbus_name_valid bounds it */
    c->deadline_mono_ms = zclock_mono_ms() + (timeout_ms > 0 ? timeout_ms : ZGW_CALL_MS_DEFAULT);
    c->on_reply = on_reply;
    c->ctx = ctx;
    call_link(self, c);
    self->stats.calls_total++;
    call_send(self, c);
    return c->id;
}

void zgw_bus_cancel(zgw_bus_t *self, uint64_t id)
{
    for (call_t *c = self->by_id[hash_id(id)]; c != NULL; c = c->next_id) {
        if (c->id == id) {
            call_unlink_free(self, c);
            return;
        }
    }
}

int zgw_bus_broker_stats(zgw_bus_t *self, int timeout_ms, zgw_on_stats_fn on_stats, void *ctx)
{
    if (self->waiter_count == STATS_WAITERS_MAX) {
        return ZE_UNAVAILABLE;
    }
    char op = ZBUS_OP_STATS;
    const void *d[1] = {&op};
    size_t l[1] = {1};
    int rc = zbus_send(zbus_client_socket(self->client), 1, d, l);
    if (rc != 0) {
        return rc;
    }
    self->waiters[self->waiter_count++] =
        (stats_waiter_t){on_stats, ctx, zclock_mono_ms() + timeout_ms};
    kick(self);
    return 0;
}

void zgw_bus_set_event_ctx(zgw_bus_t *self, void *event_ctx)
{
    self->event_ctx = event_ctx;
}

void zgw_bus_stats(const zgw_bus_t *self, zgw_bus_stats_t *out)
{
    *out = self->stats;
}

void zgw_bus_close(zgw_bus_t *self)
{
    self->closing = 1;
    uv_timer_stop(&self->sweep);
    uv_close((uv_handle_t *)&self->sweep, NULL);
    uv_idle_stop(&self->more);
    uv_close((uv_handle_t *)&self->more, NULL);
    uv_check_stop(&self->kick_check);
    uv_close((uv_handle_t *)&self->kick_check, NULL);
    uv_prepare_stop(&self->kick_prepare);
    uv_close((uv_handle_t *)&self->kick_prepare, NULL);
    uv_poll_stop(&self->cmd.poll);
    uv_close((uv_handle_t *)&self->cmd.poll, NULL);
    uv_poll_stop(&self->ev.poll);
    uv_close((uv_handle_t *)&self->ev.poll, NULL);
}

void zgw_bus_destroy(zgw_bus_t **self_p)
{
    zgw_bus_t *b = *self_p;
    if (b == NULL) {
        return;
    }
    while (b->head != NULL) {
        call_unlink_free(b, b->head);
    }
    zmq_close(b->ev.socket);
    zbus_client_destroy(&b->client);
    zmq_ctx_term(b->zctx);
    free(b);
    *self_p = NULL;
}
