/* zhilictl: the ops and test command line (docs/operations.md).
 *   zhilictl call SERVICE JSON [--timeout MS]   send a Command, print the Reply
 *   zhilictl tail [TOPIC_PREFIX...]              one JSON event per line
 *   zhilictl replay SOURCE --from N [--to M]     a source's events from its outbox
 *   zhilictl stats                               the broker's figures
 *   zhilictl token create --role R --area PREFIX --name NAME [--expires-days N]
 *   zhilictl token revoke ID
 *   zhilictl token list                          bearer tokens of the gateway (docs/auth.md)
 *   zhilictl backup SERVICE|--data DIR --out DEST  hot copy of a store (backup.c)
 * Exit status: 0 OK, 1 the reply was not OK, 2 usage or transport error. */
#include <errno.h>
#include <signal.h>
#include <sodium.h>
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
#include "tools/zhilictl/commands.h"
#include "services/gateway/auth.h"

#define TIMEOUT_MS_DEFAULT 10000

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

bool zctl_stopping(void)
{
    return stop_requested != 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: zhilictl call SERVICE JSON [--timeout MS]\n"
            "       zhilictl tail [TOPIC_PREFIX...] [--heartbeats]\n"
            "       zhilictl replay SOURCE --from N [--to M]\n"
            "       zhilictl stats\n"
            "       zhilictl token create --role ROLE --area PREFIX --name NAME "
            "[--expires-days N]\n"
            "       zhilictl token revoke ID\n"
            "       zhilictl token list\n"
            "       zhilictl import units FILE.csv [--skip-bad]   (grid; docs/grid.md)\n"
            "       zhilictl export units --area PREFIX\n"
            "       zhilictl qr --area PREFIX --out DIR [--base-url URL]\n"
            "       zhilictl hotline --rate N --duration S --area PREFIX   (docs/petitions.md)\n"
            "       zhilictl funds verify|statement ...   (docs/funds.md)\n"
            "       zhilictl reporting rebuild|export|alerts ...   (docs/reporting.md)\n"
            "       zhilictl backup SERVICE|--data DIR --out DEST   (hot copy of a store; "
            "docs/operations.md)\n"
            "each service subcommand prints its own usage when called without arguments\n"
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

/* ---- token: the gateway's bearer tokens (docs/auth.md) -------------------- */

#define TOKEN_EXPIRES_DAYS_MAX 3650
#define DAY_MS (24LL * 3600 * 1000)

/* Send a token command to the gateway as the operator. 0 with *reply (the
 * caller frees it), or 2 after saying that no reply came. */
static int token_call(zbus_client_t *client, Zhili__V1__Command *cmd, Zhili__V1__Reply **reply)
{
    Zhili__V1__Actor cli = ZHILI__V1__ACTOR__INIT;
    cli.id = "zhilictl";
    cli.role = "admin";
    cmd->actor = &cli;
    int rc = zbus_call(client, "gateway", cmd, TIMEOUT_MS_DEFAULT, reply);
    cmd->actor = NULL;
    if (rc != 0) {
        fprintf(stderr, "zhilictl: no reply from service 'gateway' within %d ms (%s)\n",
                TIMEOUT_MS_DEFAULT, zerr_name(rc));
        return 2;
    }
    return 0;
}

/* A new token, "zl_" + base64url of 32 random bytes, and its BLAKE2b-256 hash. */
static void token_make(char token[ZGW_TOKEN_TEXT_BYTES], uint8_t hash[ZGW_TOKEN_HASH_BYTES])
{
    uint8_t random[ZGW_TOKEN_RANDOM_BYTES];
    size_t prefix_len = strlen(ZGW_TOKEN_PREFIX);
    randombytes_buf(random, sizeof random);
    memcpy(token, ZGW_TOKEN_PREFIX, prefix_len);
    sodium_bin2base64(token + prefix_len, ZGW_TOKEN_TEXT_BYTES - prefix_len, random, sizeof random,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_generichash(hash, ZGW_TOKEN_HASH_BYTES, (const unsigned char *)token, strlen(token),
                       NULL, 0);
    sodium_memzero(random, sizeof random);
}

/* The token is made here and shown once; the gateway gets only its hash. */
static int token_create(zbus_client_t *client, int argc, char **argv)
{
    const char *role = NULL, *area = "", *name = NULL;
    int64_t days = -1; /* -1: never expires */
    for (int i = 0; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v != NULL && strcmp(argv[i], "--role") == 0) {
            role = v;
        } else if (v != NULL && strcmp(argv[i], "--area") == 0) {
            area = v;
        } else if (v != NULL && strcmp(argv[i], "--name") == 0) {
            name = v;
        } else if (v != NULL && strcmp(argv[i], "--expires-days") == 0) {
            days = parse_u64(v, "--expires-days");
        } else {
            return usage();
        }
    }
    if (role == NULL || name == NULL) {
        return usage();
    }
    if (days == 0 || days > TOKEN_EXPIRES_DAYS_MAX) {
        fprintf(stderr, "zhilictl: --expires-days must be 1 to %d\n", TOKEN_EXPIRES_DAYS_MAX);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "zhilictl: libsodium could not be initialised\n");
        return 2;
    }
    uint8_t hash[ZGW_TOKEN_HASH_BYTES];
    char token[ZGW_TOKEN_TEXT_BYTES];
    token_make(token, hash);
    /* Idempotency key from the token's id (not its hash, which stays off the
     * event stream): zbus_call's resends under it change nothing twice. */
    char id[ZGW_TOKEN_ID_HEX + 1], request_id[32];
    sodium_bin2hex(id, sizeof id, hash, ZGW_TOKEN_ID_HEX / 2);
    snprintf(request_id, sizeof request_id, "token_create-%s", id);
    Zhili__Gw__TokenCreate tc = ZHILI__GW__TOKEN_CREATE__INIT;
    tc.hash.data = hash;
    tc.hash.len = sizeof hash;
    tc.role = (char *)role;
    tc.area = (char *)area;
    tc.name = (char *)name;
    tc.expires_ms = days > 0 ? zclock_wall_ms() + days * DAY_MS : 0;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.request_id = request_id;
    cmd.area = (char *)area;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_TOKEN_CREATE;
    cmd.token_create = &tc;
    Zhili__V1__Reply *r = NULL;
    int rc = token_call(client, &cmd, &r);
    if (rc == 0 && r->status == ZHILI__V1__STATUS__STATUS_OK) {
        printf("token=%s\nid=%s\n", token, id);
        fflush(stdout);
        fprintf(stderr,
                "zhilictl: keep this token now: it cannot be shown again (only its "
                "hash is stored); revoke it with: zhilictl token revoke %s\n",
                id);
    } else if (rc == 0) {
        print_json(&r->base);
        rc = 1;
    }
    sodium_memzero(token, sizeof token);
    if (r != NULL) {
        zhili__v1__reply__free_unpacked(r, NULL);
    }
    return rc;
}

/* revoke ID or list: print the token(s) as JSON lines, or the reply when not OK. */
static int token_simple(zbus_client_t *client, Zhili__V1__Command *cmd)
{
    Zhili__V1__Reply *r = NULL;
    int rc = token_call(client, cmd, &r);
    if (rc != 0) {
        return rc;
    }
    if (r->status != ZHILI__V1__STATUS__STATUS_OK) {
        print_json(&r->base);
        rc = 1;
    } else if (r->result_case == ZHILI__V1__REPLY__RESULT_TOKEN) {
        print_json(&r->token->base);
    } else if (r->result_case == ZHILI__V1__REPLY__RESULT_TOKENS) {
        for (size_t i = 0; i < r->tokens->n_tokens; i++) {
            print_json(&r->tokens->tokens[i]->base);
        }
        if (r->message[0] != '\0') {
            fprintf(stderr, "zhilictl: %s\n", r->message);
        }
    }
    zhili__v1__reply__free_unpacked(r, NULL);
    return rc;
}

static int cmd_token(zbus_client_t *client, int argc, char **argv)
{
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    if (strcmp(argv[0], "create") == 0) {
        return token_create(client, argc - 1, argv + 1);
    }
    if (strcmp(argv[0], "revoke") == 0 && argc == 2) {
        Zhili__Gw__TokenRevoke tr = ZHILI__GW__TOKEN_REVOKE__INIT;
        tr.id = argv[1];
        cmd.body_case = ZHILI__V1__COMMAND__BODY_TOKEN_REVOKE;
        cmd.token_revoke = &tr;
        return token_simple(client, &cmd);
    }
    if (strcmp(argv[0], "list") == 0 && argc == 1) {
        Zhili__Gw__TokenList tl = ZHILI__GW__TOKEN_LIST__INIT;
        cmd.body_case = ZHILI__V1__COMMAND__BODY_TOKEN_LIST;
        cmd.token_list = &tl;
        return token_simple(client, &cmd);
    }
    return usage();
}

int main(int argc, char **argv)
{
    zlog_init("zhilictl", zcfg_log_level());
    if (argc < 2) {
        return usage();
    }
    zcfg_common_t cfg;
    zcfg_common_load(&cfg);
    if (strcmp(argv[1], "backup") == 0) {
        return zctl_backup(&cfg, argc - 1, argv + 1); /* local files: no broker */
    }
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
    } else if (strcmp(argv[1], "token") == 0 && argc >= 3) {
        rc = cmd_token(client, argc - 2, argv + 2);
    } else if (!strcmp(argv[1], "import") || !strcmp(argv[1], "export") || !strcmp(argv[1], "qr")) {
        rc = zctl_grid(client, &cfg, argc - 1, argv + 1);
    } else if (strcmp(argv[1], "reporting") == 0) {
        rc = zctl_reporting(client, &cfg, argc - 1, argv + 1);
    } else if (strcmp(argv[1], "funds") == 0) {
        rc = zctl_funds(client, &cfg, argc - 1, argv + 1);
    } else if (strcmp(argv[1], "hotline") == 0) {
        rc = zctl_hotline(client, &cfg, argc - 1, argv + 1);
    } else {
        rc = usage();
    }
    zbus_client_destroy(&client);
    zmq_ctx_term(zctx);
    return rc;
}
