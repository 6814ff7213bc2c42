/* zhili-testload: drives the test service for the bus tests (not shipped).
 * Sends `count` counter_add commands (amount 1, counter "c"), spread round
 * robin over the named services, at most `window` in flight, each under its
 * own request_id "<prefix>-<i>"; resends a command under the same request_id
 * when no reply came within 2 s or the reply was UNAVAILABLE, until every one
 * has been acknowledged OK or the time runs out. Prints one JSON line:
 *   {"acked":N,"count":N,"resends":R,"elapsed_ms":T,"per_service":{"a":n,...}}
 * Exit 0 when all were acknowledged, 1 otherwise.
 * usage: zhili-testload SERVICES COUNT [WINDOW] [PREFIX] [TIMEOUT_S] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/config.h"
#include "common/log.h"

#define SERVICES_MAX 8
#define RESEND_MS 2000

typedef struct {
    int64_t sent_mono_ms; /* 0: not in flight */
    bool acked;
} slot_t;

typedef struct {
    zbus_client_t *client;
    char *services[SERVICES_MAX];
    int service_count;
    long count, window, inflight, acked, resends;
    long acked_per[SERVICES_MAX];
    const char *prefix;
    slot_t *slots;
} load_t;

static int send_one(load_t *l, long i)
{
    char rid[96];
    snprintf(rid, sizeof rid, "%s-%ld", l->prefix, i);
    Zhili__Test__CounterAdd add = ZHILI__TEST__COUNTER_ADD__INIT;
    add.name = "c";
    add.amount = 1;
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "testload";
    actor.role = "admin";
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.request_id = rid;
    cmd.actor = &actor;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_COUNTER_ADD;
    cmd.counter_add = &add;
    uint8_t buf[256];
    size_t len = protobuf_c_message_pack(&cmd.base, buf);
    const char *svc = l->services[i % l->service_count];
    int rc = zbus_client_send(l->client, svc, rid, zclock_wall_ms() + RESEND_MS, buf, len);
    if (rc == 0) {
        l->slots[i].sent_mono_ms = zclock_mono_ms();
    }
    return rc;
}

static void on_reply(load_t *l, Zhili__V1__Reply *r)
{
    size_t plen = strlen(l->prefix);
    if (strncmp(r->request_id, l->prefix, plen) != 0 || r->request_id[plen] != '-') {
        return;
    }
    long i = strtol(r->request_id + plen + 1, NULL, 10);
    if (i < 0 || i >= l->count || l->slots[i].sent_mono_ms == 0) {
        return; /* a late duplicate answer */
    }
    l->slots[i].sent_mono_ms = 0;
    l->inflight--;
    if (r->status == ZHILI__V1__STATUS__STATUS_OK) {
        if (!l->slots[i].acked) {
            l->slots[i].acked = true;
            l->acked++;
            l->acked_per[i % l->service_count]++;
        }
    }
}

/* Resend what timed out or came back UNAVAILABLE; then fill the window. */
static void pump(load_t *l, long *next)
{
    int64_t now = zclock_mono_ms();
    for (long i = 0; i < *next; i++) {
        slot_t *s = &l->slots[i];
        bool lost = s->sent_mono_ms != 0 && now - s->sent_mono_ms > RESEND_MS;
        bool refused = s->sent_mono_ms == 0 && !s->acked;
        if ((lost || refused) && (refused ? l->inflight < l->window : true)) {
            if (refused) {
                l->inflight++;
            }
            if (send_one(l, i) != 0 && refused) {
                l->inflight--;
            }
            l->resends++;
        }
    }
    while (*next < l->count && l->inflight < l->window && send_one(l, *next) == 0) {
        l->inflight++;
        (*next)++;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: zhili-testload SERVICES COUNT [WINDOW] [PREFIX] [TIMEOUT_S]\n");
        return 2;
    }
    zlog_init("testload", zcfg_log_level());
    zcfg_common_t cfg;
    zcfg_common_load(&cfg);
    load_t l = {.count = atol(argv[2]), .window = argc > 3 ? atol(argv[3]) : 1000,
                .prefix = argc > 4 ? argv[4] : "load"};
    long timeout_s = argc > 5 ? atol(argv[5]) : 300;
    for (char *save = NULL, *t = strtok_r(argv[1], ",", &save); t && l.service_count < SERVICES_MAX;
         t = strtok_r(NULL, ",", &save)) {
        l.services[l.service_count++] = t;
    }
    void *zctx = zmq_ctx_new();
    l.client = zbus_client_new(zctx, cfg.broker);
    l.slots = calloc((size_t)l.count, sizeof *l.slots);
    if (l.client == NULL || l.slots == NULL || l.service_count == 0 || l.count <= 0) {
        return 2;
    }
    int64_t start = zclock_mono_ms(), last_pump = 0;
    long next = 0;
    while (l.acked < l.count && zclock_mono_ms() - start < timeout_s * 1000) {
        if (zclock_mono_ms() - last_pump > 200 || l.inflight < l.window / 2) {
            pump(&l, &next);
            last_pump = zclock_mono_ms();
        }
        zmq_pollitem_t item = {zbus_client_socket(l.client), 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 100);
        Zhili__V1__Reply *r = NULL;
        while (zbus_client_recv(l.client, &r) != ZE_AGAIN) {
            if (r != NULL) {
                on_reply(&l, r);
                zhili__v1__reply__free_unpacked(r, NULL);
                r = NULL;
            }
        }
    }
    printf("{\"acked\":%ld,\"count\":%ld,\"resends\":%ld,\"elapsed_ms\":%lld,\"per_service\":{",
           l.acked, l.count, l.resends, (long long)(zclock_mono_ms() - start));
    for (int i = 0; i < l.service_count; i++) {
        printf("%s\"%s\":%ld", i ? "," : "", l.services[i], l.acked_per[i]);
    }
    printf("}}\n");
    zbus_client_destroy(&l.client);
    zmq_ctx_term(zctx);
    free(l.slots);
    return l.acked == l.count ? 0 : 1;
}
