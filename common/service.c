/* The service runtime: group commit, idempotency, outbox, replay and exactly-once
 * consumption (docs/runtime.md explains the loop and its guarantees). */
#include "common/service.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/config.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/service_internal.h"


static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ---- handler helpers ---------------------------------------------------- */

const char *zsvc_name(const zsvc_t *svc)
{
    return svc->name;
}

void zsvc_consumed_reset(zsvc_ctx_t *ctx)
{
    zsvc_t *s = ctx->svc;
    for (int i = 0; i < s->source_count; i++) {
        source_t *src = &s->sources[i];
        ztxn_cursor_set(ctx->txn, src->name, 0);
        src->batch_cursor = 0; /* committed with the batch; then replay from 1 */
        src->gap = true;
    }
}

int zsvc_table(const zsvc_ctx_t *ctx, const char *name)
{
    int t = zstore_table(ctx->svc->store, name);
    ZASSERT(t >= 0);
    return t;
}

void *zsvc_alloc(zsvc_ctx_t *ctx, size_t bytes)
{
    return zarena_alloc(ctx->arena, bytes);
}

char *zsvc_strdup(zsvc_ctx_t *ctx, const char *s)
{
    return zarena_strdup(ctx->arena, s);
}

int zsvc_fail(zsvc_ctx_t *ctx, int code, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ctx->reply != NULL) {
        ctx->reply->message = zarena_strdup(ctx->arena, msg);
        ctx->reply->field = zarena_strdup(ctx->arena, field);
    }
    return code;
}

/* Queue an event for publishing after commit; its topic is
 * "<service>.<type>", cut to fit (names are short; the cut is never reached). */
static void outev_push(zsvc_t *s, const char *type, uint8_t *data, size_t len, uint64_t seq)
{
    if (s->outev_count == s->outev_cap) {
        s->outev_cap = s->outev_cap ? s->outev_cap * 2 : 1024;
        s->outevs = realloc(s->outevs, s->outev_cap * sizeof *s->outevs);
        ZASSERT(s->outevs != NULL);
    }
    outev_t *o = &s->outevs[s->outev_count++];
    size_t name_len = strnlen(s->name, sizeof o->topic - 2);
    size_t type_len = strnlen(type, sizeof o->topic - 2 - name_len);
    memcpy(o->topic, s->name, name_len);
    o->topic[name_len] = '.';
    memcpy(o->topic + name_len + 1, type, type_len);
    o->topic[name_len + 1 + type_len] = '\0';
    o->data = data;
    o->len = len;
    o->seq = seq;
}

static void outev_truncate(zsvc_t *s, size_t count)
{
    while (s->outev_count > count) {
        free(s->outevs[--s->outev_count].data);
    }
}

uint64_t zsvc_emit(zsvc_ctx_t *ctx, const char *type, const char *area,
                   Zhili__V1__Event__BodyCase body_case, void *body)
{
    zsvc_t *s = ctx->svc;
    if (ztxn_err(ctx->txn) != 0) {
        return 0;
    }
    Zhili__V1__Event ev = ZHILI__V1__EVENT__INIT;
    ev.source = s->name;
    ev.seq = ztxn_outbox_last(ctx->txn) + 1;
    ev.ts_ms = ctx->now_ms;
    ev.area = (char *)(area ? area : "");
    ev.type = (char *)type;
    if (ctx->cmd != NULL) {
        ev.request_id = ctx->cmd->request_id;
        ev.actor = ctx->cmd->actor;
        if (ctx->cmd->body_case == ZHILI__V1__COMMAND__BODY_CONTINUATION &&
            ctx->cmd->continuation->reply_to[0] != '\0') {
            ev.request_id = ctx->cmd->continuation->reply_to; /* the command it completes */
        }
    }
    ev.body_case = body_case;
    /* Every member of the oneof is a message pointer at the same offset. */
    memcpy(&ev.counter_added, &body, sizeof body);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (zcodec_pack(&ev.base, ZBUS_MSG_BYTES_MAX, &buf, &len) != 0) {
        ztxn_fail(ctx->txn, ZE_INTERNAL, "an event is larger than the 4 MiB limit");
        return 0;
    }
    ztxn_outbox_put(ctx->txn, ev.seq, buf, len);
    outev_push(s, type, buf, len, ev.seq);
    return ev.seq;
}

/* ---- replies ------------------------------------------------------------ */

static void job_set_reply(job_t *job, int code, const char *message)
{
    free(job->reply);
    job->reply = NULL;
    if (zbus_reply_pack(job->request_id, code, message, &job->reply, &job->reply_len) != 0) {
        job->reply_len = 0;
    }
}

static void job_send_reply(zsvc_t *s, job_t *job)
{
    char op = ZBUS_OP_REPLY;
    const void *d[4] = {&op, job->cid, job->request_id, job->reply};
    size_t l[4] = {1, job->cid_len, strlen(job->request_id), job->reply_len};
    if (job->reply == NULL) {
        job_set_reply(job, ZE_INTERNAL, "the reply could not be encoded");
        d[3] = job->reply;
        l[3] = job->reply_len;
    }
    if (zbus_send(s->worker, 4, d, l) != 0) {
        zlog(ZLOG_WARN, "reply_not_sent", "request_id", job->request_id, NULL);
    }
}

static void job_free(job_t *job)
{
    if (job->cmd != NULL) {
        zcodec_free(&job->cmd->base);
        job->cmd = NULL;
    }
    free(job->reply);
    job->reply = NULL;
}

/* ---- receiving ---------------------------------------------------------- */

static bool runtime_query(const Zhili__V1__Command *cmd)
{
    return cmd->body_case == ZHILI__V1__COMMAND__BODY_REPLAY ||
           cmd->body_case == ZHILI__V1__COMMAND__BODY_STATS;
}

static void clock_command(zsvc_t *s, job_t *job)
{
    const Zhili__V1__Command *cmd = job->cmd;
    int rc = cmd->body_case == ZHILI__V1__COMMAND__BODY_CLOCK_SET
                 ? zclock_set(&s->clock, cmd->clock_set->now_ms)
                 : zclock_advance(&s->clock, cmd->clock_advance->delta_ms);
    const char *msg = rc == ZE_FORBIDDEN ? "this service runs on the real clock (ZHILI_FAKE_CLOCK is off)"
                      : rc == ZE_INVALID ? "the fake clock never goes backwards"
                                         : "";
    Zhili__V1__ClockState state = ZHILI__V1__CLOCK_STATE__INIT;
    state.now_ms = zclock_now_ms(&s->clock);
    state.fake = s->clock.fake;
    Zhili__V1__Reply r = ZHILI__V1__REPLY__INIT;
    r.request_id = job->request_id;
    r.status = (Zhili__V1__Status)zerr_status(rc);
    r.message = (char *)msg;
    r.result_case = ZHILI__V1__REPLY__RESULT_CLOCK;
    r.clock = &state;
    free(job->reply);
    if (zcodec_pack(&r.base, 0, &job->reply, &job->reply_len) != 0) {
        job->reply = NULL;
    }
    s->tick_due = s->tick_due || rc == 0;
}

/* [Q][cid][request_id][Command] from the broker becomes a job; anything that
 * cannot be a job is answered at once where the frames allow it. */
static void on_request(zsvc_t *s, zbus_frames_t *f)
{
    job_t *job = &s->jobs[s->job_count];
    memset(job, 0, sizeof *job);
    size_t cid_len, len;
    const void *cid = zbus_frame_data(f, 1, &cid_len);
    const uint8_t *data = zbus_frame_data(f, 3, &len);
    if (f->total != 4 || cid_len > CID_BYTES_MAX ||
        !zbus_frame_str(f, 2, job->request_id, sizeof job->request_id)) {
        zlog(ZLOG_WARN, "malformed_request", NULL);
        return; /* without a client id there is no one to answer */
    }
    memcpy(job->cid, cid, cid_len);
    job->cid_len = cid_len;
    s->job_count++;
    ProtobufCMessage *m = NULL;
    if (zcodec_unpack(&zhili__v1__command__descriptor, data, len, ZBUS_MSG_BYTES_MAX, &m) != 0) {
        job_set_reply(job, ZE_INVALID, "the command is not a valid zhili.v1.Command");
        return;
    }
    job->cmd = (Zhili__V1__Command *)m;
    if (job->request_id[0] == '\0') {
        /* Refused here: in the batch, the store's refusal would fail every write with it. */
        job_set_reply(job, ZE_INVALID, "a command needs a request_id of 1 to 200 bytes");
    } else if (strcmp(job->cmd->request_id, job->request_id) != 0) {
        job_set_reply(job, ZE_INVALID, "request_id differs between the route and the command");
    } else if (job->cmd->body_case == ZHILI__V1__COMMAND__BODY__NOT_SET) {
        job_set_reply(job, ZE_INVALID, "the command has no body");
    } else if (job->cmd->body_case == ZHILI__V1__COMMAND__BODY_CONTINUATION) {
        job_set_reply(job, ZE_INVALID, "continuations are made by the service itself");
    } else if (job->cmd->body_case == ZHILI__V1__COMMAND__BODY_CLOCK_SET ||
               job->cmd->body_case == ZHILI__V1__COMMAND__BODY_CLOCK_ADVANCE) {
        clock_command(s, job);
    } else {
        job->query = runtime_query(job->cmd) ||
                     (s->spec->is_query != NULL && s->spec->is_query(job->cmd));
        return;
    }
    zcodec_free(&job->cmd->base);
    job->cmd = NULL;
}

void zsvc_job_internal(zsvc_t *s, const uint8_t *cmd, size_t len)
{
    ZASSERT(s->job_count < (size_t)s->batch_max);
    ProtobufCMessage *m = NULL;
    if (zcodec_unpack(&zhili__v1__command__descriptor, cmd, len, ZBUS_MSG_BYTES_MAX, &m) != 0) {
        zlog(ZLOG_ERROR, "bad_continuation", NULL);
        return;
    }
    job_t *job = &s->jobs[s->job_count++];
    memset(job, 0, sizeof *job);
    job->cmd = (Zhili__V1__Command *)m;
    job->internal = true;
    snprintf(job->request_id, sizeof job->request_id, "%s", job->cmd->request_id);
}

zbus_client_t *zsvc_client(zsvc_t *s)
{
    if (s->client == NULL) {
        s->client = zbus_client_new(s->zctx, s->cfg.broker);
        ZASSERT(s->client != NULL);
    }
    return s->client;
}

static void send_register(zsvc_t *s)
{
    Zhili__V1__Register reg = ZHILI__V1__REGISTER__INIT;
    char instance[64];
    char host[48] = "";
    gethostname(host, sizeof host - 1);
    snprintf(instance, sizeof instance, "%s:%d", host, (int)getpid());
    reg.service = s->name;
    reg.credit = (uint32_t)s->credit;
    reg.instance = instance;
    uint8_t buf[256];
    size_t len = protobuf_c_message_pack(&reg.base, buf);
    char op = ZBUS_OP_REGISTER;
    const void *d[2] = {&op, buf};
    size_t l[2] = {1, len};
    zbus_send(s->worker, 2, d, l);
}

/* Drain the broker socket: up to batch_max requests become jobs. */
static void drain_worker(zsvc_t *s)
{
    while (s->job_count < (size_t)s->batch_max) {
        zbus_frames_t f;
        if (zbus_frames_recv(s->worker, &f) != 0) {
            return;
        }
        s->broker_seen_mono_ms = zclock_mono_ms();
        if (zbus_frame_is_op(&f, 0, ZBUS_OP_REQUEST)) {
            on_request(s, &f);
        } else if (zbus_frame_is_op(&f, 0, ZBUS_OP_DISCONNECT)) {
            zlog(ZLOG_INFO, "register_again", NULL);
            send_register(s);
        } else if (zbus_frame_is_op(&f, 0, ZBUS_OP_ERROR)) {
            char msg[256] = "";
            zbus_frame_str(&f, 1, msg, sizeof msg);
            zlog(ZLOG_WARN, "broker_error", "msg", msg, NULL);
        }
        zbus_frames_close(&f);
    }
}

/* ---- consuming ---------------------------------------------------------- */

static int source_find(zsvc_t *s, const char *name, size_t len)
{
    for (int i = 0; i < s->source_count; i++) {
        if (strlen(s->sources[i].name) == len && memcmp(s->sources[i].name, name, len) == 0) {
            return i;
        }
    }
    return -1;
}

/* Queue an event for the next batch; beyond the bound it is dropped and comes
 * back through replay, because the gap is noticed. */
/* A source whose outbox ends below what this service has applied was put
 * back to an older state (a restore from an older backup, a wiped store):
 * its next events reuse seqs this service has counted already and would be
 * skipped as duplicates. Said loudly, once per episode, and shown by
 * source_behind in the stats; the cure is to restore or rebuild this
 * service with its source (docs/operations.md, "Restore"). */
static void source_behind_check(zsvc_t *s, source_t *src, uint64_t source_last)
{
    bool behind = source_last < src->cursor;
    if (behind && !src->behind) {
        zlog(ZLOG_ERROR, "source_behind_cursor", "source", src->name, "source_last",
             zarena_printf(&s->arena, "%llu", (unsigned long long)source_last), "cursor",
             zarena_printf(&s->arena, "%llu", (unsigned long long)src->cursor), "msg",
             "the source's outbox ends before what this service has applied (restored from an "
             "older backup?); its new events up to the cursor would be taken as duplicates: "
             "restore or rebuild this service together with it",
             NULL);
    } else if (!behind && src->behind) {
        zlog(ZLOG_INFO, "source_caught_up", "source", src->name, NULL);
    }
    src->behind = behind;
}

static void inev_push(zsvc_t *s, int source, Zhili__V1__Event *ev)
{
    source_t *src = &s->sources[source];
    if (ev->seq <= src->cursor || s->inev_count == ZSVC_EVENTS_PENDING_MAX) {
        if (ev->seq > src->cursor) {
            s->events_dropped_total++;
            src->gap = true;
        }
        zcodec_free(&ev->base);
        return;
    }
    s->inevs[s->inev_count].ev = ev;
    s->inevs[s->inev_count].source = source;
    s->inevs[s->inev_count].arrival = s->inev_count;
    s->inev_count++;
}

static Zhili__V1__Event *event_unpack(const void *data, size_t len)
{
    ProtobufCMessage *m = NULL;
    if (zcodec_unpack(&zhili__v1__event__descriptor, data, len, ZBUS_MSG_BYTES_MAX, &m) != 0) {
        return NULL;
    }
    return (Zhili__V1__Event *)m;
}

static void on_live(zsvc_t *s, zbus_frames_t *f)
{
    size_t topic_len, len;
    const char *topic = zbus_frame_data(f, 0, &topic_len);
    const void *data = zbus_frame_data(f, 1, &len);
    const char *dot = topic ? memchr(topic, '.', topic_len) : NULL;
    int i = dot ? source_find(s, topic, (size_t)(dot - topic)) : -1;
    if (f->total != 2 || i < 0) {
        return;
    }
    source_t *src = &s->sources[i];
    size_t suffix_len = topic_len - (size_t)(dot + 1 - topic);
    if (suffix_len == strlen(ZBUS_HB_SUFFIX) && memcmp(dot + 1, ZBUS_HB_SUFFIX, suffix_len) == 0) {
        Zhili__V1__Heartbeat *hb = zhili__v1__heartbeat__unpack(NULL, len, data);
        if (hb != NULL && hb->last_seq > src->known_last) {
            src->known_last = hb->last_seq;
        }
        if (hb != NULL) {
            source_behind_check(s, src, hb->last_seq);
            zhili__v1__heartbeat__free_unpacked(hb, NULL);
        }
        return;
    }
    Zhili__V1__Event *ev = event_unpack(data, len);
    if (ev == NULL || strcmp(ev->source, src->name) != 0) {
        zlog(ZLOG_WARN, "malformed_event", "source", src->name, NULL);
        if (ev != NULL) {
            zcodec_free(&ev->base);
        }
        return;
    }
    if (ev->seq > src->known_last) {
        src->known_last = ev->seq;
    }
    if (src->replay_inflight || src->gap) {
        /* Behind: the replay brings these in order; holding them is wasted work. */
        zcodec_free(&ev->base);
        return;
    }
    inev_push(s, i, ev);
}

static void drain_sub(zsvc_t *s)
{
    /* Bounded, so one batch stays short and heartbeats keep their rhythm; what
     * waits stays in the socket (and beyond its HWM comes back by replay). */
    while (s->sub != NULL && s->inev_count < ZSVC_EVENTS_PER_BATCH) {
        zbus_frames_t f;
        if (zbus_frames_recv(s->sub, &f) != 0) {
            return;
        }
        on_live(s, &f);
        zbus_frames_close(&f);
    }
}

static void request_replay(zsvc_t *s, source_t *src)
{
    Zhili__V1__Replay rp = ZHILI__V1__REPLAY__INIT;
    rp.from_seq = src->cursor + 1;
    rp.max = ZSVC_REPLAY_EVENTS_MAX;
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = s->name;
    actor.role = "service";
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    snprintf(src->replay_id, sizeof src->replay_id, "replay:%s:%s:%llu", s->name, src->name,
             (unsigned long long)++s->replay_counter);
    cmd.request_id = src->replay_id;
    cmd.actor = &actor;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_REPLAY;
    cmd.replay = &rp;
    uint8_t buf[512];
    size_t len = protobuf_c_message_pack(&cmd.base, buf);
    int64_t deadline = zclock_wall_ms() + REPLAY_TIMEOUT_MS;
    if (zbus_client_send(s->client, src->name, src->replay_id, deadline, buf, len) == 0) {
        src->replay_inflight = true;
        src->replay_until_mono_ms = zclock_mono_ms() + REPLAY_TIMEOUT_MS + 1000;
        s->replay_requests_total++;
    }
}

static void on_replay_result(zsvc_t *s, source_t *src, Zhili__V1__Reply *r)
{
    src->replay_inflight = false;
    if (r->status != ZHILI__V1__STATUS__STATUS_OK ||
        r->result_case != ZHILI__V1__REPLY__RESULT_REPLAY) {
        if (!src->failing) {
            /* Once per outage: a source that is not deployed would flood the log. */
            zlog(ZLOG_WARN, "replay_failed", "source", src->name, "msg", r->message, NULL);
            src->failing = true;
        }
        src->retry_at_mono_ms = zclock_mono_ms() + s->cfg.heartbeat_ms;
        return;
    }
    if (src->failing) {
        zlog(ZLOG_INFO, "replay_recovered", "source", src->name, NULL);
        src->failing = false;
    }
    Zhili__V1__ReplayResult *rr = r->replay;
    src->synced = true;
    src->gap = false;
    if (rr->last_seq > src->known_last) {
        src->known_last = rr->last_seq;
    }
    int idx = (int)(src - s->sources);
    for (size_t i = 0; i < rr->n_events; i++) {
        Zhili__V1__Event *ev = event_unpack(rr->events[i].data, rr->events[i].len);
        if (ev == NULL || strcmp(ev->source, src->name) != 0) {
            zlog(ZLOG_ERROR, "malformed_replay", "source", src->name, NULL);
            if (ev != NULL) {
                zcodec_free(&ev->base);
            }
            break;
        }
        inev_push(s, idx, ev);
    }
}

static void drain_client(zsvc_t *s)
{
    Zhili__V1__Reply *r = NULL;
    while (s->client != NULL && zbus_client_recv(s->client, &r) != ZE_AGAIN) {
        if (r == NULL || zsvc_async_on_reply(s, r)) {
            if (r != NULL) {
                zcodec_free(&r->base);
                r = NULL;
            }
            continue;
        }
        for (int i = 0; i < s->source_count; i++) {
            source_t *src = &s->sources[i];
            if (src->replay_inflight && strcmp(src->replay_id, r->request_id) == 0) {
                on_replay_result(s, src, r);
            }
        }
        zcodec_free(&r->base);
        r = NULL;
    }
}

/* After each batch: ask a source again when it has something we lack. */
static void check_replays(zsvc_t *s)
{
    int64_t now = zclock_mono_ms();
    for (int i = 0; i < s->source_count; i++) {
        source_t *src = &s->sources[i];
        if (src->replay_inflight && now > src->replay_until_mono_ms) {
            src->replay_inflight = false; /* lost; the broker or the source restarted */
        }
        bool behind = !src->synced || src->gap || src->known_last > src->cursor;
        if (!src->replay_inflight && behind && now >= src->retry_at_mono_ms) {
            request_replay(s, src);
        }
    }
}

/* ---- the batch ---------------------------------------------------------- */

static void ctx_init(zsvc_t *s, zsvc_ctx_t *ctx, ztxn_t *txn, const Zhili__V1__Command *cmd,
                     Zhili__V1__Reply *reply)
{
    ctx->svc = s;
    ctx->txn = txn;
    ctx->now_ms = zclock_now_ms(&s->clock);
    ctx->cmd = cmd;
    ctx->reply = reply;
    ctx->arena = &s->arena;
    ctx->user = s->spec->user;
}

static bool is_storage_error(int rc)
{
    return rc == ZE_MAP_FULL || rc == ZE_UNAVAILABLE || rc == ZE_INTERNAL;
}

static bool topic_wanted(zsvc_t *s, const Zhili__V1__Event *ev)
{
    char topic[ZBUS_TOPIC_BYTES_MAX];
    snprintf(topic, sizeof topic, "%s.%s", ev->source, ev->type);
    for (const char *const *p = s->spec->subscribe; p && *p; p++) {
        if (strncmp(topic, *p, strlen(*p)) == 0) {
            return true;
        }
    }
    return false;
}

/* A consumed event straight in the batch's transaction (the first pass, as
 * run_handler_direct): a refusal or a sticky store error ends the pass with
 * ZSVC_RERUN, and the rerun gives each event a child to undo it alone. */
static int apply_event_direct(zsvc_t *s, ztxn_t *txn, source_t *src, Zhili__V1__Event *ev)
{
    int rc = 0;
    if (s->spec->on_event != NULL && topic_wanted(s, ev)) {
        zsvc_ctx_t ctx;
        ctx_init(s, &ctx, txn, NULL, NULL);
        rc = s->spec->on_event(&ctx, ev);
    }
    int err = ztxn_err(txn);
    if (is_storage_error(err)) {
        return err;
    }
    if (rc != 0 || err != 0) {
        return ZSVC_RERUN;
    }
    ztxn_cursor_set(txn, src->name, ev->seq);
    src->batch_cursor = ev->seq;
    s->events_applied_total++;
    return ztxn_err(txn);
}

/* One consumed event in a child transaction: its effect and its cursor
 * commit together or not at all. */
static int apply_event(zsvc_t *s, ztxn_t *txn, inev_t *in)
{
    source_t *src = &s->sources[in->source];
    Zhili__V1__Event *ev = in->ev;
    if (ev->seq <= src->batch_cursor) {
        return 0; /* already applied: a replay overlapped the live stream */
    }
    if (ev->seq > src->batch_cursor + 1) {
        src->gap = true;
        return 0;
    }
    if (!s->nested) {
        return apply_event_direct(s, txn, src, ev);
    }
    ztxn_t *child = ztxn_begin_child(txn);
    int rc = 0;
    if (s->spec->on_event != NULL && topic_wanted(s, ev)) {
        zsvc_ctx_t ctx;
        ctx_init(s, &ctx, child, NULL, NULL);
        rc = s->spec->on_event(&ctx, ev);
    }
    if (ztxn_err(child) != 0 && is_storage_error(ztxn_err(child))) {
        return ztxn_commit(&child); /* passes the storage error to txn */
    }
    if (rc != 0) {
        /* An event cannot be refused: undo its partial effect, keep going. */
        ztxn_abort(&child);
        s->events_rejected_total++;
        zlog(ZLOG_ERROR, "event_rejected", "source", ev->source, "type", ev->type, "code",
             zerr_name(rc), NULL);
        ztxn_cursor_set(txn, src->name, ev->seq);
    } else {
        ztxn_cursor_set(child, src->name, ev->seq);
        rc = ztxn_commit(&child);
        if (rc != 0) {
            return rc;
        }
    }
    src->batch_cursor = ev->seq;
    s->events_applied_total++;
    return ztxn_err(txn);
}

static int reply_pack(job_t *job, const char *request_id, Zhili__V1__Reply *r, int rc)
{
    r->request_id = (char *)request_id;
    r->status = (Zhili__V1__Status)zerr_status(rc);
    if (rc != 0) {
        r->result_case = ZHILI__V1__REPLY__RESULT__NOT_SET;
    }
    free(job->reply);
    job->reply = NULL;
    return zcodec_pack(&r->base, ZBUS_MSG_BYTES_MAX, &job->reply, &job->reply_len);
}

/* Where a command's answer goes: its own request_id, or for a continuation
 * the deferred command it completes ("" when nobody waits). */
static const char *answer_id(const job_t *job)
{
    return job->internal ? job->cmd->continuation->reply_to : job->request_id;
}

/* The stored answer of a request_id seen before: 0 (job->reply set),
 * ZE_NOT_FOUND, or a storage error. */
static int stored_reply(ztxn_t *txn, job_t *job)
{
    zval_t stored;
    int64_t ts;
    int rc = ztxn_request_get(txn, job->request_id, &stored, &ts);
    if (rc == 0) {
        free(job->reply);
        job->reply = malloc(stored.len ? stored.len : 1);
        ZASSERT(job->reply != NULL);
        memcpy(job->reply, stored.data, stored.len);
        job->reply_len = stored.len;
    }
    return rc;
}

/* The first pass of a batch runs handlers straight in the batch's
 * transaction: a child transaction per command costs LMDB a fresh dirty list
 * and a zeroed copy of every page it touches, which was a quarter of a write
 * command's work. A handler that fails may have written part of its change,
 * which only a child could undo, so a failure (or a sticky store error) ends
 * the pass with ZSVC_RERUN and the batch runs again with children. Handlers
 * already run twice when the map grows, so running again is nothing new. */
static int run_handler_direct(zsvc_t *s, ztxn_t *txn, job_t *job, Zhili__V1__Reply *r,
                              zsvc_ctx_t *ctx, int *storage_rc)
{
    ctx_init(s, ctx, txn, job->cmd, r);
    int rc = s->spec->on_command != NULL
                 ? s->spec->on_command(ctx, job->cmd)
                 : zsvc_fail(ctx, ZE_INVALID, "body", "service %s does not take this command",
                             s->name);
    int err = ztxn_err(txn);
    *storage_rc = is_storage_error(err) ? err : (rc < 0 || err != 0 ? ZSVC_RERUN : 0);
    return rc;
}

/* The handler in a child transaction: kept on success (or ZSVC_DEFERRED),
 * undone with its events, calls and work on error. *storage_rc is set when
 * the store itself failed (the batch fails). */
static int run_handler(zsvc_t *s, ztxn_t *txn, job_t *job, Zhili__V1__Reply *r,
                       zsvc_ctx_t *ctx, int *storage_rc)
{
    if (!s->nested) {
        return run_handler_direct(s, txn, job, r, ctx, storage_rc);
    }
    size_t outev_mark = s->outev_count;
    zsvc_async_mark_t async_mark = zsvc_async_mark(s);
    ztxn_t *child = ztxn_begin_child(txn);
    ctx_init(s, ctx, child, job->cmd, r);
    int rc = s->spec->on_command != NULL
                 ? s->spec->on_command(ctx, job->cmd)
                 : zsvc_fail(ctx, ZE_INVALID, "body", "service %s does not take this command",
                             s->name);
    *storage_rc = 0;
    if (is_storage_error(ztxn_err(child))) {
        *storage_rc = ztxn_commit(&child);
        return rc;
    }
    if (rc < 0) {
        ztxn_abort(&child);
        outev_truncate(s, outev_mark);
        zsvc_async_rollback(s, async_mark);
        return rc;
    }
    if (ztxn_err(child) != 0) {
        /* The handler ignored a store refusal (an oversize key, say): its answer. */
        rc = zsvc_fail(ctx, ztxn_err(child), NULL, "%s", ztxn_errmsg(child));
        ztxn_abort(&child);
        outev_truncate(s, outev_mark);
        zsvc_async_rollback(s, async_mark);
        return rc;
    }
    *storage_rc = ztxn_commit(&child);
    return rc;
}

/* One write command: the stored answer when its request_id was seen
 * before; else the handler, and its answer remembered. */
static int apply_command(zsvc_t *s, ztxn_t *txn, job_t *job)
{
    if (!job->internal) {
        if (zsvc_async_absorb(s, job)) {
            job->absorbed = true; /* a resend while its continuation runs */
            return 0;
        }
        int found = stored_reply(txn, job);
        if (found != ZE_NOT_FOUND) {
            return found;
        }
    }
    Zhili__V1__Reply r = ZHILI__V1__REPLY__INIT;
    zsvc_ctx_t ctx;
    int storage_rc = 0;
    int rc = run_handler(s, txn, job, &r, &ctx, &storage_rc);
    if (storage_rc != 0) {
        return storage_rc;
    }
    s->commands_total++;
    if (rc == ZSVC_DEFERRED) {
        if (zsvc_async_defer(s, job)) {
            job->absorbed = true; /* answered when its continuation completes */
        } else {
            /* No room to wait: answered now; the answer is stored when ready. */
            job_set_reply(job, ZE_UNAVAILABLE,
                          "too many commands are waiting for their answer; resend this one "
                          "under the same request_id in a moment");
        }
        return ztxn_err(txn);
    }
    const char *to = answer_id(job);
    if (reply_pack(job, to, &r, rc) != 0) {
        reply_pack(job, to, &r, zsvc_fail(&ctx, ZE_INTERNAL, NULL, "the reply is too large"));
    }
    /* INTERNAL and UNAVAILABLE are not answers to remember: a retry may succeed. */
    if (to[0] != '\0' && rc != ZE_INTERNAL && rc != ZE_UNAVAILABLE) {
        ztxn_request_put(txn, to, job->reply, job->reply_len, ctx.now_ms);
    }
    return ztxn_err(txn);
}

static int apply_tick(zsvc_t *s, ztxn_t *txn)
{
    ztxn_t *child = ztxn_begin_child(txn);
    size_t outev_mark = s->outev_count;
    zsvc_ctx_t ctx;
    ctx_init(s, &ctx, child, NULL, NULL);
    int rc = s->spec->on_tick(&ctx);
    if (rc == 0 || is_storage_error(ztxn_err(child))) {
        return ztxn_commit(&child);
    }
    ztxn_abort(&child);
    outev_truncate(s, outev_mark);
    zlog(ZLOG_ERROR, "tick_failed", "code", zerr_name(rc), NULL);
    return 0;
}

static int inev_cmp(const void *a, const void *b)
{
    const inev_t *x = a, *y = b;
    if (x->source != y->source) {
        return x->source - y->source;
    }
    if (x->ev->seq != y->ev->seq) {
        return x->ev->seq < y->ev->seq ? -1 : 1;
    }
    return x->arrival < y->arrival ? -1 : (x->arrival > y->arrival);
}

/* ---- pruning: answers kept for idempotency --------------------------------- */

/* The requests table keeps every write's answer so that a resend changes
 * nothing twice; without pruning it grows with every command. Answers older
 * than requests_keep_ms (ZHILI_REQUESTS_KEEP_DAYS, 7 by default) are removed
 * by a walk in key order, ZSVC_PRUNE_SCAN rows at a time, inside a write
 * batch at most every ZSVC_PRUNE_MS (no extra commit: a service that writes
 * nothing adds nothing to prune). A resend older than that is a new request. */
#define ZSVC_PRUNE_MS 1000
#define ZSVC_PRUNE_SCAN 512

typedef struct {
    zsvc_t *s;
    int64_t cutoff_ms;
    size_t scanned;
    char (*dead)[ZSTORE_REQUEST_ID_BYTES_MAX + 1];
    size_t dead_count;
} prune_walk_t;

static int prune_row(void *ctx, zval_t key, zval_t val)
{
    prune_walk_t *w = ctx;
    zsvc_t *s = w->s;
    if (key.len > ZSTORE_REQUEST_ID_BYTES_MAX) {
        return 0; /* not a key request_put would write; leave it */
    }
    bool same_as_after = key.len == s->prune_after_len &&
                         memcmp(key.data, s->prune_after, key.len) == 0;
    if (same_as_after) {
        return 0; /* the start key: looked at in the step before */
    }
    memcpy(s->prune_next, key.data, key.len);
    s->prune_next[key.len] = '\0';
    s->prune_next_len = key.len;
    if (val.len >= 8 && (int64_t)zstore_be64_get(val.data) < w->cutoff_ms) {
        memcpy(w->dead[w->dead_count], key.data, key.len);
        w->dead[w->dead_count][key.len] = '\0';
        w->dead_count++;
    }
    return ++w->scanned == ZSVC_PRUNE_SCAN ? 1 : 0;
}

/* One step of the walk in the batch's transaction. The position moves on
 * only when the batch commits (run_once). */
static void prune_step(zsvc_t *s, ztxn_t *txn)
{
    s->prune_removed_in_batch = 0;
    int64_t now_mono = zclock_mono_ms();
    if (s->requests_keep_ms <= 0 || now_mono < s->prune_due_mono_ms) {
        s->prune_next_len = s->prune_after_len;
        memcpy(s->prune_next, s->prune_after, s->prune_after_len + 1);
        return;
    }
    prune_walk_t w = {s, zclock_now_ms(&s->clock) - s->requests_keep_ms, 0,
                      zarena_alloc(&s->arena, ZSVC_PRUNE_SCAN * sizeof *w.dead), 0};
    s->prune_next_len = 0;
    s->prune_next[0] = '\0';
    int rc = ztxn_scan(txn, ZSTORE_REQUESTS, NULL, 0, s->prune_after_len > 0 ? s->prune_after : NULL,
                       s->prune_after_len, &w, prune_row);
    if (rc == 0) {
        s->prune_next_len = 0; /* reached the end: start again from the first key */
        s->prune_next[0] = '\0';
    }
    for (size_t i = 0; i < w.dead_count && ztxn_err(txn) == 0; i++) {
        ztxn_del(txn, ZSTORE_REQUESTS, w.dead[i], strlen(w.dead[i]));
    }
    s->prune_removed_in_batch = (int64_t)w.dead_count;
}

/* The batch committed: the walk's position and count become real. */
static void prune_committed(zsvc_t *s)
{
    int64_t now_mono = zclock_mono_ms();
    if (s->requests_keep_ms > 0 && now_mono >= s->prune_due_mono_ms) {
        s->prune_due_mono_ms = now_mono + ZSVC_PRUNE_MS;
    }
    memcpy(s->prune_after, s->prune_next, s->prune_next_len + 1);
    s->prune_after_len = s->prune_next_len;
    s->requests_pruned_total += s->prune_removed_in_batch;
    s->prune_removed_in_batch = 0;
}

static int batch_apply(zsvc_t *s, ztxn_t *txn, bool tick)
{
    int rc = ztxn_err(txn);
    for (size_t i = 0; rc == 0 && i < s->inev_count; i++) {
        rc = apply_event(s, txn, &s->inevs[i]);
    }
    for (size_t i = 0; rc == 0 && i < s->job_count; i++) {
        job_t *job = &s->jobs[i];
        if (job->cmd != NULL && !job->query) {
            rc = apply_command(s, txn, job);
        }
    }
    if (rc == 0 && tick) {
        rc = apply_tick(s, txn);
    }
    if (rc == 0) {
        prune_step(s, txn);
        rc = ztxn_err(txn);
    }
    return rc;
}

static void batch_reset(zsvc_t *s)
{
    zsvc_async_batch_reset(s);
    for (size_t i = 0; i < s->job_count; i++) {
        s->jobs[i].absorbed = false;
    }
    outev_truncate(s, 0);
    zarena_reset(&s->arena);
    for (int i = 0; i < s->source_count; i++) {
        s->sources[i].batch_cursor = s->sources[i].cursor;
    }
}

/* Apply everything queued in one durable transaction; grow the map and retry
 * when it is full. On failure every write command is answered with the
 * storage error and nothing is published. */
static int batch_commit(zsvc_t *s, bool tick)
{
    int rc = 0;
    /* A pass that is run again must not count its commands twice. */
    int64_t counts[3] = {s->commands_total, s->events_applied_total, s->events_rejected_total};
    s->nested = false;
    for (int attempt = 0; attempt <= ZSVC_GROW_RETRIES_MAX; attempt++) {
        s->commands_total = counts[0];
        s->events_applied_total = counts[1];
        s->events_rejected_total = counts[2];
        batch_reset(s);
        ztxn_t *txn = ztxn_begin(s->store, true);
        ZASSERT(txn != NULL);
        rc = batch_apply(s, txn, tick);
        if (rc == ZSVC_RERUN && !s->nested) {
            ztxn_abort(&txn);
            s->nested = true;
            s->reruns_total++;
            attempt--; /* not a growth of the map */
            continue;
        }
        char msg[256];
        snprintf(msg, sizeof msg, "%s", ztxn_errmsg(txn));
        rc = rc != 0 ? (ztxn_abort(&txn), rc) : ztxn_commit(&txn);
        if (rc == 0) {
            return 0;
        }
        if (rc != ZE_MAP_FULL || zstore_grow(s->store) != 0) {
            s->storage_errors_total++;
            zlog(ZLOG_ERROR, "batch_failed", "code", zerr_name(rc), "msg", msg, NULL);
            break;
        }
        zlog(ZLOG_INFO, "map_grown", NULL);
    }
    batch_reset(s);
    const char *why = rc == ZE_MAP_FULL || rc == ZE_UNAVAILABLE
                          ? "the service's disk is full; nothing was changed, try again later"
                          : "the service could not write its store; nothing was changed";
    for (size_t i = 0; i < s->job_count; i++) {
        job_t *job = &s->jobs[i];
        if (job->absorb_kept) {
            /* Its answer comes from a command deferred before this batch (which
             * goes on), or it was told to come back already: one answer each. */
            job->absorbed = true;
        } else if (job->cmd != NULL && !job->query) {
            /* Everyone else in the batch hears the failure, waiting ones included. */
            job->absorbed = false;
            job_set_reply(job, rc == ZE_INTERNAL ? ZE_INTERNAL : ZE_UNAVAILABLE, why);
        }
    }
    for (int i = 0; i < s->source_count; i++) {
        s->sources[i].gap = true; /* the dropped events come back by replay */
    }
    return rc;
}

static void publish(zsvc_t *s)
{
    for (size_t i = 0; i < s->outev_count; i++) {
        outev_t *o = &s->outevs[i];
        const void *d[2] = {o->topic, o->data};
        size_t l[2] = {strlen(o->topic), o->len};
        /* A full PUB pipe drops; subscribers notice the gap and replay. */
        zbus_send(s->pub, 2, d, l);
    }
    if (s->outev_count > 0) {
        s->last_seq = s->outevs[s->outev_count - 1].seq;
    }
    /* Counted when committed: events of undone commands and abandoned passes are not. */
    s->events_emitted_total += (int64_t)s->outev_count;
}

static void publish_heartbeat(zsvc_t *s)
{
    Zhili__V1__Heartbeat hb = ZHILI__V1__HEARTBEAT__INIT;
    hb.source = s->name;
    hb.last_seq = s->last_seq;
    hb.ts_ms = zclock_now_ms(&s->clock);
    uint8_t buf[128];
    size_t len = protobuf_c_message_pack(&hb.base, buf);
    char topic[ZBUS_TOPIC_BYTES_MAX];
    snprintf(topic, sizeof topic, "%s.%s", s->name, ZBUS_HB_SUFFIX);
    const void *d[2] = {topic, buf};
    size_t l[2] = {strlen(topic), len};
    zbus_send(s->pub, 2, d, l);
}

/* ---- queries ------------------------------------------------------------ */

typedef struct {
    Zhili__V1__ReplayResult *rr;
    size_t bytes, cap;
} replay_acc_t;

static int on_outbox_row(void *arg, zval_t key, zval_t val)
{
    (void)key;
    replay_acc_t *acc = arg;
    if (acc->rr->n_events == acc->cap ||
        (acc->rr->n_events > 0 && acc->bytes + val.len > ZSVC_REPLAY_BYTES_MAX)) {
        return 1;
    }
    ProtobufCBinaryData *b = &acc->rr->events[acc->rr->n_events++];
    b->data = (uint8_t *)val.data;
    b->len = val.len;
    acc->bytes += val.len;
    return 0;
}

/* Events from the outbox, read straight from the map (no copy, no decode). */
static int serve_replay(zsvc_ctx_t *ctx, const Zhili__V1__Replay *rp)
{
    if (rp->from_seq == 0) {
        return zsvc_fail(ctx, ZE_INVALID, "replay.from_seq", "from_seq starts at 1");
    }
    size_t max = rp->max == 0 || rp->max > ZSVC_REPLAY_EVENTS_MAX ? ZSVC_REPLAY_EVENTS_MAX
                                                                  : rp->max;
    Zhili__V1__ReplayResult *rr = zsvc_alloc(ctx, sizeof *rr);
    zhili__v1__replay_result__init(rr);
    rr->source = ctx->svc->name;
    rr->last_seq = ztxn_outbox_last(ctx->txn);
    rr->events = zsvc_alloc(ctx, max * sizeof *rr->events);
    replay_acc_t acc = {rr, 0, max};
    uint8_t start[8];
    zstore_be64_put(start, rp->from_seq);
    int rc = ztxn_scan(ctx->txn, ZSTORE_OUTBOX, NULL, 0, start, 8, &acc, on_outbox_row);
    if (rc < 0) {
        return zsvc_fail(ctx, rc, NULL, "%s", ztxn_errmsg(ctx->txn));
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_REPLAY;
    ctx->reply->replay = rr;
    ctx->svc->replays_served_total++;
    return 0;
}

/* Room for the runtime's figures, two per source, and the service's own. */
static size_t stats_cap(const zsvc_t *s)
{
    return 17 + (size_t)s->source_count * 3 + ZSVC_STATS_EXTRA_MAX; /* 3 per source below */
}

static void stat_push(zsvc_ctx_t *ctx, Zhili__V1__Stats *st, const char *name, int64_t v,
                      const char *labels)
{
    Zhili__V1__Stat *x = zsvc_alloc(ctx, sizeof *x);
    zhili__v1__stat__init(x);
    x->name = zsvc_strdup(ctx, name);
    x->value = v;
    x->labels = zsvc_strdup(ctx, labels);
    st->stats[st->n_stats++] = x;
}

static int serve_stats(zsvc_ctx_t *ctx)
{
    zsvc_t *s = ctx->svc;
    Zhili__V1__Stats *st = zsvc_alloc(ctx, sizeof *st);
    zhili__v1__stats__init(st);
    st->name = s->name;
    st->stats = zsvc_alloc(ctx, stats_cap(s) * sizeof *st->stats);
    stat_push(ctx, st, "commands_total", s->commands_total, "");
    stat_push(ctx, st, "requests_pruned_total", s->requests_pruned_total, "");
    stat_push(ctx, st, "batches_total", s->batches_total, "");
    stat_push(ctx, st, "events_emitted_total", s->events_emitted_total, "");
    stat_push(ctx, st, "events_applied_total", s->events_applied_total, "");
    stat_push(ctx, st, "events_rejected_total", s->events_rejected_total, "");
    stat_push(ctx, st, "events_dropped_total", s->events_dropped_total, "");
    stat_push(ctx, st, "replays_served_total", s->replays_served_total, "");
    stat_push(ctx, st, "replay_requests_total", s->replay_requests_total, "");
    stat_push(ctx, st, "storage_errors_total", s->storage_errors_total, "");
    stat_push(ctx, st, "batch_reruns_total", s->reruns_total, "");
    stat_push(ctx, st, "outbox_last_seq", (int64_t)ztxn_outbox_last(ctx->txn), "");
    stat_push(ctx, st, "store_map_bytes", (int64_t)zstore_map_bytes(s->store), "");
    stat_push(ctx, st, "store_used_bytes", (int64_t)zstore_used_bytes(s->store), "");
    stat_push(ctx, st, "store_file_bytes", (int64_t)zstore_file_bytes(s->store), "");
    for (int i = 0; i < s->source_count; i++) {
        char labels[96];
        snprintf(labels, sizeof labels, "source=\"%s\"", s->sources[i].name);
        stat_push(ctx, st, "cursor", (int64_t)s->sources[i].cursor, labels);
        stat_push(ctx, st, "source_known_last", (int64_t)s->sources[i].known_last, labels);
        stat_push(ctx, st, "source_behind", s->sources[i].behind ? 1 : 0, labels);
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_STATS;
    ctx->reply->stats = st;
    return s->spec->on_stats != NULL ? s->spec->on_stats(ctx) : 0;
}

void zsvc_stat_add(zsvc_ctx_t *ctx, const char *name, int64_t value, const char *labels)
{
    ZASSERT(ctx->reply != NULL && ctx->reply->result_case == ZHILI__V1__REPLY__RESULT_STATS);
    if (ctx->reply->stats->n_stats < stats_cap(ctx->svc)) {
        stat_push(ctx, ctx->reply->stats, name, value, labels != NULL ? labels : "");
    }
}

static int run_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_REPLAY: return serve_replay(ctx, cmd->replay);
    case ZHILI__V1__COMMAND__BODY_STATS: return serve_stats(ctx);
    default: return ctx->svc->spec->on_query(ctx, cmd);
    }
}

/* Queries see everything committed, their own batch included. */
static void answer_queries(zsvc_t *s)
{
    ztxn_t *txn = NULL;
    for (size_t i = 0; i < s->job_count; i++) {
        job_t *job = &s->jobs[i];
        if (job->cmd == NULL || !job->query) {
            continue;
        }
        if (txn == NULL) {
            txn = ztxn_begin(s->store, false);
            ZASSERT(txn != NULL);
        }
        Zhili__V1__Reply r = ZHILI__V1__REPLY__INIT;
        zsvc_ctx_t ctx;
        ctx_init(s, &ctx, txn, job->cmd, &r);
        int rc = run_query(&ctx, job->cmd);
        if (reply_pack(job, job->request_id, &r, rc) != 0) {
            reply_pack(job, job->request_id, &r,
                       zsvc_fail(&ctx, ZE_INVALID, NULL,
                                 "the answer is larger than the 4 MiB limit; ask for less"));
        }
    }
    ztxn_abort(&txn);
}

/* ---- the loop ----------------------------------------------------------- */

static void run_once(zsvc_t *s, bool tick)
{
    if (s->inev_count > 1) {
        qsort(s->inevs, s->inev_count, sizeof *s->inevs, inev_cmp);
    }
    bool writes = s->inev_count > 0 || tick;
    for (size_t i = 0; i < s->job_count && !writes; i++) {
        writes = s->jobs[i].cmd != NULL && !s->jobs[i].query;
    }
    if (writes && batch_commit(s, tick) == 0) {
        for (int i = 0; i < s->source_count; i++) {
            s->sources[i].cursor = s->sources[i].batch_cursor;
        }
        s->batches_total++;
        prune_committed(s);
        zsvc_async_after_commit(s); /* calls and work of this batch may start now */
    }
    /* Durable now: answer the writers, then tell everyone. */
    for (size_t i = 0; i < s->job_count; i++) {
        job_t *job = &s->jobs[i];
        if (job->internal) {
            const char *to = job->cmd->continuation->reply_to;
            if (to[0] != '\0' && job->reply != NULL) {
                zsvc_async_complete(s, to, job->reply, job->reply_len);
            }
        } else if (!job->absorbed && (!job->query || job->cmd == NULL)) {
            job_send_reply(s, job);
        }
    }
    publish(s);
    answer_queries(s);
    for (size_t i = 0; i < s->job_count; i++) {
        if (s->jobs[i].query && s->jobs[i].cmd != NULL) {
            job_send_reply(s, &s->jobs[i]);
        }
        job_free(&s->jobs[i]);
    }
    s->job_count = 0;
    for (size_t i = 0; i < s->inev_count; i++) {
        zcodec_free(&s->inevs[i].ev->base);
    }
    s->inev_count = 0;
    batch_reset(s);
}

static void on_timers(zsvc_t *s)
{
    int64_t now = zclock_mono_ms();
    if (now < s->next_hb_mono_ms) {
        return;
    }
    s->next_hb_mono_ms = now + s->cfg.heartbeat_ms;
    char op = ZBUS_OP_HEARTBEAT;
    const void *d[1] = {&op};
    size_t l[1] = {1};
    zbus_send(s->worker, 1, d, l);
    publish_heartbeat(s);
    if (now - s->broker_seen_mono_ms > s->cfg.heartbeat_ms * 3) {
        /* The broker went quiet: it may have restarted and forgotten us, or
         * libzmq may have closed the connection for good (it does after a
         * protocol error, such as an oversize frame). A fresh socket covers both. */
        zlog(ZLOG_WARN, "broker_silent", "endpoint", s->cfg.broker, NULL);
        void *fresh = zbus_socket_new(s->zctx, ZMQ_DEALER);
        if (fresh != NULL && zmq_connect(fresh, s->cfg.broker) == 0) {
            zmq_close(s->worker);
            s->worker = fresh;
        } else if (fresh != NULL) {
            zmq_close(fresh);
        }
        send_register(s);
        s->broker_seen_mono_ms = now;
    }
    s->tick_due = s->tick_due || s->spec->on_tick != NULL;
}

/* One turn: take what waits on every socket, apply it, run the timers. */
static void step(zsvc_t *s)
{
    drain_worker(s);
    drain_client(s);
    zsvc_async_drain(s);
    drain_sub(s);
    bool tick = s->tick_due && s->spec->on_tick != NULL;
    s->tick_due = false;
    if (s->job_count > 0 || s->inev_count > 0 || tick) {
        run_once(s, tick);
    }
    check_replays(s);
    on_timers(s);
}

static int64_t wait_ms(const zsvc_t *s)
{
    int64_t wait = s->next_hb_mono_ms - zclock_mono_ms();
    if (wait > 200 && s->client != NULL) {
        wait = 200; /* calls to other services are resent or timed out from here */
    }
    return s->tick_due ? 0 : (wait < 0 ? 0 : wait);
}

/* Every socket is asked for ZMQ_EVENTS before the wait (none is known to be
 * settled: replies, calls and heartbeats are sent after the drains). */
static void serve(zsvc_t *s)
{
    while (!stop_requested) {
        void *socks[4] = {s->worker, zsvc_async_socket(s)};
        int n = 2;
        if (s->sub != NULL) {
            socks[n++] = s->sub;
        }
        if (s->client != NULL) {
            socks[n++] = zbus_client_socket(s->client);
        }
        zbus_wait(socks, NULL, n, (long)wait_ms(s));
        step(s);
    }
}

/* ---- setup -------------------------------------------------------------- */

static int add_sources(zsvc_t *s)
{
    for (const char *const *p = s->spec->subscribe; p && *p; p++) {
        const char *dot = strchr(*p, '.');
        size_t len = dot ? (size_t)(dot - *p) : strlen(*p);
        if (len == 0 || len > ZBUS_NAME_BYTES_MAX || s->source_count == ZSVC_SOURCES_MAX) {
            zlog(ZLOG_ERROR, "bad_subscription", "prefix", *p, NULL);
            return -1;
        }
        if (source_find(s, *p, len) >= 0) {
            continue;
        }
        source_t *src = &s->sources[s->source_count++];
        memcpy(src->name, *p, len);
        src->name[len] = '\0';
        /* Whole sources are subscribed: seq gaps are only visible in the full stream. */
        char topic[ZBUS_TOPIC_BYTES_MAX];
        snprintf(topic, sizeof topic, "%s.", src->name);
        zmq_setsockopt(s->sub, ZMQ_SUBSCRIBE, topic, strlen(topic));
    }
    return 0;
}

static int load_positions(zsvc_t *s)
{
    ztxn_t *txn = ztxn_begin(s->store, false);
    ZASSERT(txn != NULL);
    s->last_seq = ztxn_outbox_last(txn);
    for (int i = 0; i < s->source_count; i++) {
        s->sources[i].cursor = ztxn_cursor_get(txn, s->sources[i].name);
        s->sources[i].batch_cursor = s->sources[i].cursor;
        s->sources[i].known_last = s->sources[i].cursor;
    }
    int rc = ztxn_err(txn);
    ztxn_abort(&txn);
    return rc;
}

static int connect_all(zsvc_t *s)
{
    s->zctx = zmq_ctx_new();
    s->worker = zbus_socket_new(s->zctx, ZMQ_DEALER);
    s->pub = zbus_socket_new(s->zctx, ZMQ_PUB);
    if (s->worker == NULL || s->pub == NULL || zmq_connect(s->worker, s->cfg.broker) != 0 ||
        zmq_connect(s->pub, s->cfg.events_pub) != 0) {
        zlog(ZLOG_ERROR, "connect_failed", "broker", s->cfg.broker, "events", s->cfg.events_pub,
             "error", zmq_strerror(errno), NULL);
        return -1;
    }
    if (s->spec->subscribe != NULL && s->spec->subscribe[0] != NULL) {
        s->sub = zbus_socket_new(s->zctx, ZMQ_SUB);
        s->client = zbus_client_new(s->zctx, s->cfg.broker);
        if (s->sub == NULL || s->client == NULL || zmq_connect(s->sub, s->cfg.events_sub) != 0 ||
            add_sources(s) != 0) {
            zlog(ZLOG_ERROR, "connect_failed", "events", s->cfg.events_sub, NULL);
            return -1;
        }
    }
    return 0;
}

static int open_store(zsvc_t *s)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", s->cfg.data, s->name);
    zstore_options_t opts = {
        .dir = dir,
        .tables = s->spec->tables,
        .map_bytes_initial = (size_t)zcfg_int("ZHILI_MAP_MB_INITIAL", 64, 1, 1 << 20) << 20,
        .map_bytes_max = (uint64_t)zcfg_int("ZHILI_MAP_MB_MAX", 65536, 1, 1 << 24) << 20,
    };
    char err[256];
    if (zstore_open(&opts, &s->store, err, sizeof err) != 0) {
        zlog(ZLOG_ERROR, "store_open_failed", "dir", dir, "msg", err, NULL);
        return -1;
    }
    return 0;
}

static void configure(zsvc_t *s, const zsvc_spec_t *spec)
{
    s->spec = spec;
    const char *name = zcfg_str("ZHILI_SERVICE_NAME", spec->name);
    if (!zbus_name_valid(name)) {
        zcfg_fail("ZHILI_SERVICE_NAME", "expected 1-64 characters of a-z, 0-9, '_', '-', got \"%s\"",
                  name);
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    zlog_init(s->name, zcfg_log_level());
    zcfg_common_load(&s->cfg);
    s->batch_max = zcfg_int("ZHILI_BATCH_MAX", ZSVC_BATCH_MAX_DEFAULT, 1, 100000);
    s->credit = zcfg_int("ZHILI_CREDIT", ZSVC_CREDIT_DEFAULT, 1, 100000);
    /* How long answers are kept for resends (0: for ever). _MS is for tests. */
    s->requests_keep_ms = zcfg_int("ZHILI_REQUESTS_KEEP_DAYS", 7, 0, 3650) * 86400000LL;
    s->requests_keep_ms = zcfg_int("ZHILI_REQUESTS_KEEP_MS", s->requests_keep_ms, 0, INT64_MAX / 4);
    zclock_init(&s->clock, zcfg_bool("ZHILI_FAKE_CLOCK", false),
                zcfg_int("ZHILI_FAKE_CLOCK_START_MS", 0, 0, INT64_MAX / 2));
}

static void teardown(zsvc_t *s)
{
    if (s->worker != NULL) {
        char op = ZBUS_OP_DISCONNECT;
        const void *d[1] = {&op};
        size_t l[1] = {1};
        zbus_send(s->worker, 1, d, l);
        zmq_close(s->worker);
    }
    if (s->pub != NULL) {
        zmq_close(s->pub);
    }
    if (s->sub != NULL) {
        zmq_close(s->sub);
    }
    zbus_client_destroy(&s->client);
    zsvc_async_fini(s); /* joins the worker thread before the context ends */
    if (s->zctx != NULL) {
        zmq_ctx_term(s->zctx);
    }
    zstore_destroy(&s->store);
    zarena_fini(&s->arena);
    free(s->jobs);
    free(s->inevs);
    outev_truncate(s, 0);
    free(s->outevs);
}

/* Everything up to serving; NULL (logged) when the store or a socket fails. */
static zsvc_t *open_service(const zsvc_spec_t *spec)
{
    zsvc_t *s = calloc(1, sizeof *s);
    ZASSERT(s != NULL);
    configure(s, spec);
    zarena_init(&s->arena);
    s->jobs = calloc((size_t)s->batch_max, sizeof *s->jobs);
    s->inevs = calloc(ZSVC_EVENTS_PENDING_MAX, sizeof *s->inevs);
    ZASSERT(s->jobs != NULL && s->inevs != NULL);
    if (open_store(s) != 0 || connect_all(s) != 0 || zsvc_async_init(s) != 0 ||
        load_positions(s) != 0) {
        teardown(s);
        free(s);
        return NULL;
    }
    send_register(s);
    s->broker_seen_mono_ms = zclock_mono_ms();
    zlog(ZLOG_INFO, "started", "broker", s->cfg.broker, "last_seq",
         zarena_printf(&s->arena, "%llu", (unsigned long long)s->last_seq), NULL);
    return s;
}

int zsvc_main(const zsvc_spec_t *spec)
{
    zproc_on_stop(on_signal);
    zsvc_t *s = open_service(spec);
    if (s == NULL) {
        return 1;
    }
    serve(s);
    zlog(ZLOG_INFO, "stopped", NULL);
    zsvc_close(&s);
    return 0;
}

zsvc_t *zsvc_open(const zsvc_spec_t *spec)
{
    return open_service(spec);
}

int zsvc_fds(const zsvc_t *s, int *fds, int max)
{
    void *socks[4] = {s->worker, s->sub, s->client ? zbus_client_socket(s->client) : NULL,
                      zsvc_async_socket((zsvc_t *)s)};
    int n = 0;
    for (int i = 0; i < 4 && n < max; i++) {
        size_t len = sizeof fds[n];
        if (socks[i] != NULL && zmq_getsockopt(socks[i], ZMQ_FD, &fds[n], &len) == 0) {
            n++;
        }
    }
    return n;
}

int64_t zsvc_step(zsvc_t *s)
{
    step(s);
    /* ZMQ_FD is edge-triggered: what a bounded drain left behind raises no
     * new edge, so ask to be called again at once. */
    if (zbus_readable(s->worker) || zbus_readable(s->sub) ||
        zbus_readable(zsvc_async_socket(s)) ||
        (s->client != NULL && zbus_readable(zbus_client_socket(s->client)))) {
        return 0;
    }
    return wait_ms(s);
}

zstore_t *zsvc_store(zsvc_t *s)
{
    return s->store;
}

void zsvc_close(zsvc_t **self_p)
{
    if (*self_p == NULL) {
        return;
    }
    teardown(*self_p);
    free(*self_p);
    *self_p = NULL;
}
