#include "common/bus.h"

#include <pthread.h>
#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"

static int set_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof v);
}

void *zbus_socket_new(void *zctx, int type)
{
    void *s = zmq_socket(zctx, type);
    if (s == NULL) {
        zlog(ZLOG_ERROR, "zmq_socket", "error", zmq_strerror(errno), NULL);
        return NULL;
    }
    int64_t max_bytes = ZBUS_TRANSPORT_BYTES_MAX;
    int rc = set_int(s, ZMQ_SNDHWM, ZBUS_HWM_MSGS);
    rc |= set_int(s, ZMQ_RCVHWM, ZBUS_HWM_MSGS);
    rc |= set_int(s, ZMQ_LINGER, 0);
    rc |= zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max_bytes, sizeof max_bytes);
    if (type == ZMQ_ROUTER) {
        rc |= set_int(s, ZMQ_ROUTER_MANDATORY, 1);
    }
    if (type == ZMQ_DEALER || type == ZMQ_SUB || type == ZMQ_PUB) {
        /* Reconnect quickly after a broker restart; cap the backoff at 1 s. */
        rc |= set_int(s, ZMQ_RECONNECT_IVL, 100);
        rc |= set_int(s, ZMQ_RECONNECT_IVL_MAX, 1000);
    }
    if (rc != 0) {
        zlog(ZLOG_ERROR, "zmq_setsockopt", "error", zmq_strerror(errno), NULL);
        zmq_close(s);
        return NULL;
    }
    return s;
}

int zbus_frames_recv(void *socket, zbus_frames_t *frames)
{
    frames->count = 0;
    frames->total = 0;
    int more = 1;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *m = frames->count < ZBUS_FRAMES_MAX ? &frames->parts[frames->count] : &scratch;
        zmq_msg_init(m);
        int flags = frames->total == 0 ? ZMQ_DONTWAIT : 0;
        if (zmq_msg_recv(m, socket, flags) < 0) {
            int e = errno;
            zmq_msg_close(m);
            zbus_frames_close(frames);
            return e == EAGAIN ? ZE_AGAIN : ZE_INTERNAL;
        }
        more = zmq_msg_more(m);
        frames->total++;
        if (m == &scratch) {
            zmq_msg_close(m);
        } else {
            frames->count++;
        }
    }
    return 0;
}

bool zbus_readable(void *socket)
{
    int events = 0;
    size_t len = sizeof events;
    return socket != NULL && zmq_getsockopt(socket, ZMQ_EVENTS, &events, &len) == 0 &&
           (events & ZMQ_POLLIN) != 0;
}

int zbus_wait(void *const *sockets, const bool *settled, int count, long timeout_ms)
{
    ZASSERT(count >= 0 && count <= ZBUS_WAIT_SOCKETS_MAX);
    struct pollfd fds[ZBUS_WAIT_SOCKETS_MAX];
    for (int i = 0; i < count; i++) {
        if ((settled == NULL || !settled[i]) && zbus_readable(sockets[i])) {
            return 1;
        }
        size_t len = sizeof fds[i].fd;
        if (zmq_getsockopt(sockets[i], ZMQ_FD, &fds[i].fd, &len) != 0) {
            return 1; /* let the caller's receive report it */
        }
        fds[i].events = POLLIN;
        fds[i].revents = 0;
    }
    int rc = poll(fds, (nfds_t)count, timeout_ms < 0 ? -1 : (int)timeout_ms);
    return rc > 0 ? 1 : 0;
}

void zbus_frames_close(zbus_frames_t *frames)
{
    for (int i = 0; i < frames->count; i++) {
        zmq_msg_close(&frames->parts[i]);
    }
    frames->count = 0;
}

const void *zbus_frame_data(zbus_frames_t *frames, int i, size_t *len)
{
    if (i >= frames->count) {
        *len = 0;
        return NULL;
    }
    *len = zmq_msg_size(&frames->parts[i]);
    return zmq_msg_data(&frames->parts[i]);
}

bool zbus_frame_is_op(zbus_frames_t *frames, int i, char op)
{
    size_t len;
    const char *d = zbus_frame_data(frames, i, &len);
    return d != NULL && len == 1 && d[0] == op;
}

bool zbus_frame_str(zbus_frames_t *frames, int i, char *out, size_t out_len)
{
    size_t len;
    const char *d = zbus_frame_data(frames, i, &len);
    if (d == NULL || len >= out_len || memchr(d, '\0', len) != NULL) {
        return false;
    }
    memcpy(out, d, len);
    out[len] = '\0';
    return true;
}

int zbus_send(void *socket, int count, const void *const *data, const size_t *lens)
{
    for (int i = 0; i < count; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < count ? ZMQ_SNDMORE : 0);
        if (zmq_send(socket, data[i], lens[i], flags) < 0) {
            /* Only the first frame can fail on a full or vanished peer; once it
             * is accepted ZeroMQ takes the rest of the message atomically. */
            if (errno == EAGAIN) {
                return ZE_AGAIN;
            }
            return errno == EHOSTUNREACH ? ZE_UNAVAILABLE : ZE_INTERNAL;
        }
    }
    return 0;
}

int zbus_reply_pack(const char *request_id, int code, const char *message, uint8_t **out,
                    size_t *out_len)
{
    Zhili__V1__Reply r = ZHILI__V1__REPLY__INIT;
    r.request_id = (char *)request_id;
    r.status = (Zhili__V1__Status)zerr_status(code);
    r.message = (char *)message;
    return zcodec_pack(&r.base, 0, out, out_len);
}

bool zbus_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > ZBUS_NAME_BYTES_MAX) {
        return false;
    }
    const char *at = strchr(name, '@');
    for (const char *p = name; *p && p != at; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')) {
            return false;
        }
    }
    if (at == name) {
        return false;
    }
    if (at != NULL) {
        if (at[1] == '\0') {
            return false;
        }
        for (const char *p = at + 1; *p; p++) {
            if (*p < '0' || *p > '9') {
                return false;
            }
        }
    }
    return true;
}

static struct {
    char prefix[17];
    uint64_t next;
    bool ready, atfork;
} request_ids;

static void request_ids_forked(void)
{
    request_ids.ready = false; /* the child draws its own prefix */
}

void zbus_request_id_new(char out[33])
{
    if (!request_ids.ready) {
        unsigned char raw[8];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(request_ids.prefix, sizeof request_ids.prefix, raw, sizeof raw);
        request_ids.next = 0;
        request_ids.ready = true;
        if (!request_ids.atfork) {
            request_ids.atfork = pthread_atfork(NULL, NULL, request_ids_forked) == 0;
        }
    }
    static const char hex[] = "0123456789abcdef";
    memcpy(out, request_ids.prefix, 16);
    uint64_t n = request_ids.next++;
    for (int i = 31; i >= 16; i--) {
        out[i] = hex[n & 15];
        n >>= 4;
    }
    out[32] = '\0';
}

int zbus_request_id_scoped(const char *actor_id, const char *key, size_t key_len, char *out,
                           size_t cap)
{
    size_t id_len = actor_id != NULL ? strlen(actor_id) : 0;
    if (id_len + 1 + key_len + 1 > cap) {
        return ZE_INVALID;
    }
    memcpy(out, actor_id, id_len);
    out[id_len] = '.';
    memcpy(out + id_len + 1, key, key_len);
    out[id_len + 1 + key_len] = '\0';
    return 0;
}

const char *zbus_request_id_key(const char *request_id, const char *actor_id)
{
    size_t id_len = actor_id != NULL ? strlen(actor_id) : 0;
    if (id_len > 0 && strncmp(request_id, actor_id, id_len) == 0 && request_id[id_len] == '.' &&
        request_id[id_len + 1] != '\0') {
        return request_id + id_len + 1;
    }
    return request_id;
}

/* ---- client ------------------------------------------------------------- */

struct zbus_client {
    void *socket;
};

zbus_client_t *zbus_client_new(void *zctx, const char *broker_endpoint)
{
    zbus_client_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        return NULL;
    }
    self->socket = zbus_socket_new(zctx, ZMQ_DEALER);
    if (self->socket == NULL || zmq_connect(self->socket, broker_endpoint) != 0) {
        zlog(ZLOG_ERROR, "connect_failed", "endpoint", broker_endpoint, "error",
             zmq_strerror(errno), NULL);
        if (self->socket != NULL) {
            zmq_close(self->socket);
        }
        free(self);
        return NULL;
    }
    return self;
}

void zbus_client_destroy(zbus_client_t **self_p)
{
    if (*self_p == NULL) {
        return;
    }
    zmq_close((*self_p)->socket);
    free(*self_p);
    *self_p = NULL;
}

void *zbus_client_socket(zbus_client_t *self)
{
    return self->socket;
}

int zbus_client_send(zbus_client_t *self, const char *service, const char *request_id,
                     int64_t deadline_ms, const uint8_t *cmd, size_t cmd_len)
{
    if (!zbus_name_valid(service) || cmd_len > ZBUS_MSG_BYTES_MAX) {
        return ZE_INVALID;
    }
    Zhili__V1__Route route = ZHILI__V1__ROUTE__INIT;
    route.service = (char *)service;
    route.request_id = (char *)request_id;
    route.deadline_ms = deadline_ms;
    uint8_t buf[512];
    size_t route_len = protobuf_c_message_get_packed_size(&route.base);
    if (route_len > sizeof buf) {
        return ZE_INVALID;
    }
    protobuf_c_message_pack(&route.base, buf);
    char op = ZBUS_OP_REQUEST;
    const void *data[3] = {&op, buf, cmd};
    size_t lens[3] = {1, route_len, cmd_len};
    return zbus_send(self->socket, 3, data, lens);
}

/* An 'E' from the broker becomes an INTERNAL reply carrying its sentence. */
static Zhili__V1__Reply *error_reply(zbus_frames_t *f)
{
    char msg[512];
    if (!zbus_frame_str(f, 1, msg, sizeof msg)) {
        snprintf(msg, sizeof msg, "the broker rejected a malformed message");
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (zbus_reply_pack("", ZE_INTERNAL, msg, &buf, &len) != 0) {
        return NULL;
    }
    Zhili__V1__Reply *r = zhili__v1__reply__unpack(NULL, len, buf);
    free(buf);
    return r;
}

int zbus_client_recv(zbus_client_t *self, Zhili__V1__Reply **reply)
{
    zbus_frames_t f;
    int rc = zbus_frames_recv(self->socket, &f);
    if (rc != 0) {
        return rc;
    }
    *reply = NULL;
    if (zbus_frame_is_op(&f, 0, ZBUS_OP_ERROR)) {
        *reply = error_reply(&f);
    } else if (zbus_frame_is_op(&f, 0, ZBUS_OP_REPLY) && f.count == 3) {
        size_t len;
        const uint8_t *d = zbus_frame_data(&f, 2, &len);
        ProtobufCMessage *m = NULL;
        if (zcodec_unpack(&zhili__v1__reply__descriptor, d, len, 0, &m) == 0) {
            *reply = (Zhili__V1__Reply *)m;
        }
    }
    zbus_frames_close(&f);
    if (*reply == NULL) {
        zlog(ZLOG_WARN, "malformed_reply", NULL);
        return ZE_INVALID;
    }
    return 0;
}

static int wait_readable(void *socket, int64_t until_mono_ms)
{
    int64_t left = until_mono_ms - zclock_mono_ms();
    if (left <= 0) {
        return 0;
    }
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll(&item, 1, (long)left);
    return rc > 0;
}

static int call_send(zbus_client_t *self, const char *service, const char *request_id,
                     int64_t end_mono_ms, const uint8_t *buf, size_t len)
{
    /* The broker gives up a little before we do, so its sentence reaches us. */
    int64_t deadline = zclock_wall_ms() + (end_mono_ms - zclock_mono_ms()) - 50;
    return zbus_client_send(self, service, request_id, deadline, buf, len);
}

int zbus_call(zbus_client_t *self, const char *service, Zhili__V1__Command *cmd, int timeout_ms,
              Zhili__V1__Reply **reply)
{
    char generated[33];
    char *orig_id = cmd->request_id;
    if (cmd->request_id == NULL || cmd->request_id[0] == '\0') {
        zbus_request_id_new(generated);
        cmd->request_id = generated;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = zcodec_pack(&cmd->base, ZBUS_MSG_BYTES_MAX, &buf, &len);
    if (rc != 0) {
        return rc;
    }
    int64_t end = zclock_mono_ms() + timeout_ms;
    int64_t resend_at = 0;
    Zhili__V1__Reply *last_unavailable = NULL;
    rc = ZE_TIMEOUT;
    *reply = NULL;
    while (zclock_mono_ms() < end) {
        if (zclock_mono_ms() >= resend_at) {
            int src = call_send(self, service, cmd->request_id, end, buf, len);
            if (src == ZE_INVALID) {
                rc = src;
                break;
            }
            resend_at = zclock_mono_ms() + ZBUS_ATTEMPT_MS;
        }
        int64_t until = resend_at < end ? resend_at : end;
        if (!wait_readable(self->socket, until)) {
            continue;
        }
        Zhili__V1__Reply *r = NULL;
        while (zbus_client_recv(self, &r) != ZE_AGAIN) {
            if (r == NULL) {
                continue;
            }
            bool ours = strcmp(r->request_id, cmd->request_id) == 0 || r->request_id[0] == '\0';
            bool retry = ours && r->status == ZHILI__V1__STATUS__STATUS_UNAVAILABLE &&
                         zclock_mono_ms() + 100 < end;
            if (ours && !retry) {
                *reply = r;
                rc = 0;
                goto done;
            }
            if (retry) {
                /* The broker could not place it yet (service restarting): try again
                 * shortly, and keep its sentence in case time runs out. */
                resend_at = zclock_mono_ms() + 100;
                if (last_unavailable != NULL) {
                    zcodec_free(&last_unavailable->base);
                }
                last_unavailable = r;
            } else {
                zcodec_free(&r->base);
            }
            r = NULL;
        }
    }
done:
    if (rc == ZE_TIMEOUT && last_unavailable != NULL) {
        *reply = last_unavailable;
        last_unavailable = NULL;
        rc = 0;
    }
    if (last_unavailable != NULL) {
        zcodec_free(&last_unavailable->base);
    }
    free(buf);
    cmd->request_id = orig_id;
    return rc;
}

int zbus_broker_stats(zbus_client_t *self, int timeout_ms, Zhili__V1__Stats **stats)
{
    char op = ZBUS_OP_STATS;
    const void *data[1] = {&op};
    size_t lens[1] = {1};
    int rc = zbus_send(self->socket, 1, data, lens);
    if (rc != 0) {
        return rc;
    }
    int64_t end = zclock_mono_ms() + timeout_ms;
    while (wait_readable(self->socket, end)) {
        zbus_frames_t f;
        if (zbus_frames_recv(self->socket, &f) != 0) {
            continue;
        }
        if (zbus_frame_is_op(&f, 0, ZBUS_OP_STATS) && f.count == 2) {
            size_t len;
            const uint8_t *d = zbus_frame_data(&f, 1, &len);
            ProtobufCMessage *m = NULL;
            rc = zcodec_unpack(&zhili__v1__stats__descriptor, d, len, 0, &m);
            zbus_frames_close(&f);
            *stats = (Zhili__V1__Stats *)m;
            return rc;
        }
        zbus_frames_close(&f);
    }
    return ZE_TIMEOUT;
}
