/* zhilictl: the ops and test command line (docs/operations.md).
 *   zhilictl call SERVICE JSON [--timeout MS]   send a Command, print the Reply
 *   zhilictl tail [TOPIC_PREFIX...]              one JSON event per line
 *   zhilictl replay SOURCE --from N [--to M]     a source's events from its outbox
 *   zhilictl stats                               the broker's figures
 * Exit status: 0 OK, 1 the reply was not OK, 2 usage or transport error. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/config.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proc.h"

#define TIMEOUT_MS_DEFAULT 10000

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: zhilictl call SERVICE JSON [--timeout MS]\n"
            "       zhilictl tail [TOPIC_PREFIX...] [--heartbeats]\n"
            "       zhilictl replay SOURCE --from N [--to M]\n"
            "       zhilictl stats\n"
            "environment: ZHILI_BROKER (tcp://127.0.0.1:7100), ZHILI_EVENTS_SUB "
            "(tcp://127.0.0.1:7102)\n");
    return 2;
}

static void print_json(const ProtobufCMessage *m)
{
    json_t *j = zjson_from_msg(m);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s != NULL) {
        puts(s);
        fflush(stdout);
    }
    free(s);
    json_decref(j);
}

static int64_t parse_u64(const char *s, const char *what)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0) {
        fprintf(stderr, "zhilictl: %s must be a non-negative integer, got \"%s\"\n", what, s);
        exit(2);
    }
    return v;
}

static int cmd_call(zbus_client_t *client, int argc, char **argv)
{
    if (argc < 2) {
        return usage();
    }
    int timeout_ms = TIMEOUT_MS_DEFAULT;
    if (argc >= 4 && strcmp(argv[2], "--timeout") == 0) {
        timeout_ms = (int)parse_u64(argv[3], "--timeout");
    }
    ProtobufCMessage *m = NULL;
    char err[ZCODEC_ERR_BYTES], field[ZCODEC_ERR_BYTES];
    if (zjson_parse_msg(argv[1], strlen(argv[1]), &zhili__v1__command__descriptor, &m, err,
                        field) != 0) {
        fprintf(stderr, "zhilictl: the command is not valid: %s\n", err);
        return 2;
    }
    Zhili__V1__Command *cmd = (Zhili__V1__Command *)m;
    Zhili__V1__Actor cli = ZHILI__V1__ACTOR__INIT;
    if (cmd->actor == NULL) {
        /* Whoever can reach the broker is an operator: the gateway is the edge
         * that authenticates outsiders. */
        cli.id = "zhilictl";
        cli.role = "admin";
        cmd->actor = &cli;
    }
    Zhili__V1__Reply *reply = NULL;
    int rc = zbus_call(client, argv[0], cmd, timeout_ms, &reply);
    if (cmd->actor == &cli) {
        cmd->actor = NULL;
    }
    zhili__v1__command__free_unpacked(cmd, NULL);
    if (rc != 0) {
        fprintf(stderr, "zhilictl: no reply from service '%s' within %d ms (%s)\n", argv[0],
                timeout_ms, zerr_name(rc));
        return 2;
    }
    print_json(&reply->base);
    int status = reply->status == ZHILI__V1__STATUS__STATUS_OK ? 0 : 1;
    zhili__v1__reply__free_unpacked(reply, NULL);
    return status;
}

static void tail_one(zbus_frames_t *f, int heartbeats)
{
    size_t tlen, len;
    const char *topic = zbus_frame_data(f, 0, &tlen);
    const void *data = zbus_frame_data(f, 1, &len);
    size_t hb = strlen(ZBUS_HB_SUFFIX);
    bool is_hb = tlen > hb && memcmp(topic + tlen - hb, ZBUS_HB_SUFFIX, hb) == 0;
    if (f->total != 2 || (is_hb && !heartbeats)) {
        return;
    }
    const ProtobufCMessageDescriptor *d =
        is_hb ? &zhili__v1__heartbeat__descriptor : &zhili__v1__event__descriptor;
    ProtobufCMessage *m = NULL;
    if (zcodec_unpack(d, data, len, 0, &m) != 0) {
        fprintf(stderr, "zhilictl: a malformed event on topic %.*s\n", (int)tlen, topic);
        return;
    }
    print_json(m);
    protobuf_c_message_free_unpacked(m, NULL);
}

static int cmd_tail(void *zctx, const zcfg_common_t *cfg, int argc, char **argv)
{
    void *sub = zbus_socket_new(zctx, ZMQ_SUB);
    if (sub == NULL || zmq_connect(sub, cfg->events_sub) != 0) {
        fprintf(stderr, "zhilictl: cannot connect to %s\n", cfg->events_sub);
        return 2;
    }
    int heartbeats = 0, prefixes = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--heartbeats") == 0) {
            heartbeats = 1;
        } else {
            zmq_setsockopt(sub, ZMQ_SUBSCRIBE, argv[i], strlen(argv[i]));
            prefixes++;
        }
    }
    if (prefixes == 0) {
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    }
    while (!stop_requested) {
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 200) <= 0) {
            continue;
        }
        zbus_frames_t f;
        while (zbus_frames_recv(sub, &f) == 0) {
            tail_one(&f, heartbeats);
            zbus_frames_close(&f);
        }
    }
    zmq_close(sub);
    return 0;
}

/* Print events from..to (to 0 = the source's last), one page at a time. */
static int cmd_replay(zbus_client_t *client, int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "--from") != 0) {
        return usage();
    }
    uint64_t from = (uint64_t)parse_u64(argv[2], "--from");
    uint64_t to = argc >= 5 && strcmp(argv[3], "--to") == 0 ? (uint64_t)parse_u64(argv[4], "--to")
                                                           : 0;
    if (from == 0) {
        from = 1;
    }
    for (;;) {
        Zhili__V1__Replay rp = ZHILI__V1__REPLAY__INIT;
        rp.from_seq = from;
        Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
        cmd.body_case = ZHILI__V1__COMMAND__BODY_REPLAY;
        cmd.replay = &rp;
        Zhili__V1__Reply *r = NULL;
        if (zbus_call(client, argv[0], &cmd, TIMEOUT_MS_DEFAULT, &r) != 0) {
            fprintf(stderr, "zhilictl: no reply from '%s'\n", argv[0]);
            return 2;
        }
        if (r->status != ZHILI__V1__STATUS__STATUS_OK) {
            print_json(&r->base);
            zhili__v1__reply__free_unpacked(r, NULL);
            return 1;
        }
        size_t n = r->replay->n_events;
        for (size_t i = 0; i < n && (to == 0 || from <= to); i++, from++) {
            Zhili__V1__Event *ev = zhili__v1__event__unpack(NULL, r->replay->events[i].len,
                                                             r->replay->events[i].data);
            if (ev != NULL) {
                print_json(&ev->base);
                zhili__v1__event__free_unpacked(ev, NULL);
            }
        }
        bool done = n == 0 || (to != 0 && from > to) || from > r->replay->last_seq;
        zhili__v1__reply__free_unpacked(r, NULL);
        if (done) {
            return 0;
        }
    }
}

static int cmd_stats(zbus_client_t *client)
{
    Zhili__V1__Stats *st = NULL;
    if (zbus_broker_stats(client, 3000, &st) != 0) {
        fprintf(stderr, "zhilictl: the broker did not answer within 3 s\n");
        return 2;
    }
    print_json(&st->base);
    zhili__v1__stats__free_unpacked(st, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    zlog_init("zhilictl", zcfg_log_level());
    if (argc < 2) {
        return usage();
    }
    zcfg_common_t cfg;
    zcfg_common_load(&cfg);
    zproc_on_stop(on_signal);
    void *zctx = zmq_ctx_new();
    zbus_client_t *client = zbus_client_new(zctx, cfg.broker);
    int rc = 2;
    if (client == NULL) {
        fprintf(stderr, "zhilictl: cannot connect to %s\n", cfg.broker);
    } else if (strcmp(argv[1], "call") == 0) {
        rc = cmd_call(client, argc - 2, argv + 2);
    } else if (strcmp(argv[1], "tail") == 0) {
        rc = cmd_tail(zctx, &cfg, argc - 2, argv + 2);
    } else if (strcmp(argv[1], "replay") == 0 && argc >= 3) {
        rc = cmd_replay(client, argc - 2, argv + 2);
    } else if (strcmp(argv[1], "stats") == 0) {
        rc = cmd_stats(client);
    } else {
        rc = usage();
    }
    zbus_client_destroy(&client);
    zmq_ctx_term(zctx);
    return rc;
}
