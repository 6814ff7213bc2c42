#include "services/broker/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/bus.h"
#include "common/log.h"

struct zevents {
    void *xsub, *xpub;
    pthread_t thread;
    atomic_bool stop;
    atomic_llong forwarded;
    atomic_llong subscriptions;
};

/* Move one whole multipart message from `from` to `to` without copying. */
static int forward_one(void *from, void *to)
{
    zmq_msg_t m;
    int more = 1;
    int first = 1;
    while (more) {
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, from, first ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            return -1;
        }
        first = 0;
        more = zmq_msg_more(&m);
        /* XPUB drops for a subscriber whose pipe is full; that subscriber then
         * sees a gap and replays from the source (docs/protocol.md). */
        if (zmq_msg_send(&m, to, more ? ZMQ_SNDMORE : 0) < 0) {
            zmq_msg_close(&m);
        }
    }
    return 0;
}

static void *events_main(void *arg)
{
    zevents_t *self = arg;
    zmq_pollitem_t items[2] = {{self->xsub, 0, ZMQ_POLLIN, 0}, {self->xpub, 0, ZMQ_POLLIN, 0}};
    while (!atomic_load(&self->stop)) {
        if (zmq_poll(items, 2, 100) < 0) {
            if (errno == ETERM) {
                break;
            }
            continue;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            long long n = 0;
            while (n < 100000 && forward_one(self->xsub, self->xpub) == 0) {
                n++;
            }
            atomic_fetch_add(&self->forwarded, n);
        }
        if (items[1].revents & ZMQ_POLLIN) {
            /* Subscriptions travel upstream so producers filter at the source. */
            while (forward_one(self->xpub, self->xsub) == 0) {
                atomic_fetch_add(&self->subscriptions, 1);
            }
        }
    }
    return NULL;
}

static void *bind_socket(void *zctx, int type, const char *endpoint)
{
    void *s = zbus_socket_new(zctx, type);
    if (s != NULL && zmq_bind(s, endpoint) != 0) {
        zlog(ZLOG_ERROR, "bind_failed", "endpoint", endpoint, "error", zmq_strerror(errno), NULL);
        zmq_close(s);
        s = NULL;
    }
    return s;
}

zevents_t *zevents_start(void *zctx, const char *xsub_bind, const char *xpub_bind)
{
    zevents_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        return NULL;
    }
    self->xsub = bind_socket(zctx, ZMQ_XSUB, xsub_bind);
    self->xpub = bind_socket(zctx, ZMQ_XPUB, xpub_bind);
    if (self->xsub == NULL || self->xpub == NULL ||
        pthread_create(&self->thread, NULL, events_main, self) != 0) {
        if (self->xsub != NULL) {
            zmq_close(self->xsub);
        }
        if (self->xpub != NULL) {
            zmq_close(self->xpub);
        }
        free(self);
        return NULL;
    }
    return self;
}

void zevents_stop(zevents_t **self_p)
{
    zevents_t *self = *self_p;
    if (self == NULL) {
        return;
    }
    atomic_store(&self->stop, true);
    pthread_join(self->thread, NULL);
    zmq_close(self->xsub);
    zmq_close(self->xpub);
    free(self);
    *self_p = NULL;
}

int64_t zevents_forwarded(const zevents_t *self)
{
    return atomic_load(&((zevents_t *)self)->forwarded);
}

int64_t zevents_subscriptions(const zevents_t *self)
{
    return atomic_load(&((zevents_t *)self)->subscriptions);
}
