/* zhilictl hotline: a 12345 hotline simulator pushing petitions over HTTP.
 *
 *   zhilictl hotline --rate N --duration S --area PREFIX
 *                    [--url http://127.0.0.1:8080] [--token T | $ZHILI_TOKEN]
 *                    [--connections C] [--batch B] [--units FILE]
 *
 * It pushes N petitions a second for S seconds (open loop: on schedule, not
 * after each answer) through POST /api/v1/petitions with an Idempotency-Key
 * like the hotline's ticket ids, or in batches of B through
 * /api/v1/petitions/batch, over C keep-alive connections (a minimal
 * HTTP/1.1 client, tools/zhilictl/httpc.c). Petitions are realistic
 * (tools/zhilictl/petgen.c): Chinese content over every category, compound
 * and building addresses, area codes under PREFIX — made up (001, 002, …
 * at each level), or with --units only the units of a units CSV (the file
 * `zhilictl import units` reads, e.g. deploy/demo/units.csv) that lie under
 * PREFIX and have none below them, addressed by their names. Every second
 * it prints accepted/s and errors; at the end a summary. Exit status 0 when
 * every push was accepted, 1 when some were not, 2 on bad usage, a units
 * file it cannot use, or no connection. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/caltime.h"
#include "tools/zhilictl/commands.h"
#include "tools/zhilictl/httpc.h"
#include "tools/zhilictl/petgen.h"

#define RATE_MAX 100000
#define DURATION_S_MAX 86400
#define CONNECTIONS_MAX 64
#define CONNECTIONS_DEFAULT 4
#define BATCH_MAX 1000
#define DRAIN_MS 10000        /* answers still awaited after the last push */
#define LATENCY_BUCKETS 10000 /* 1 ms each, the last one holds everything slower */
#define BODY_BYTES_MAX (BATCH_MAX * ZPG_JSON_BYTES_MAX + 64)
#define STATUS_KINDS 600

typedef struct {
    int rate, duration_s, connections, batch;
    const char *url, *token, *area, *units;
} opts_t;

typedef struct {
    zhc_t *conn;
    int64_t sent_us;
    int rows; /* petitions in the request in flight */
} slot_t;

typedef struct {
    long sent, accepted, rejected, errors, broken;
    long by_status[STATUS_KINDS];
    long latency[LATENCY_BUCKETS];
    long answered;
} tally_t;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int usage(const char *why)
{
    fprintf(stderr,
            "zhilictl hotline: %s\n"
            "usage: zhilictl hotline --rate N --duration S --area PREFIX [--url URL] "
            "[--token T] [--connections C] [--batch B] [--units FILE]\n"
            "  N 1..%d petitions/s, S 1..%d s, PREFIX 6-18 digits, C 1..%d (default %d), "
            "B 1..%d (batch pushes); the token comes from --token or ZHILI_TOKEN;\n"
            "  FILE: a units CSV (code,name,...): petitions only at its units under PREFIX\n",
            why, RATE_MAX, DURATION_S_MAX, CONNECTIONS_MAX, CONNECTIONS_DEFAULT, BATCH_MAX);
    return 2;
}

static int int_arg(const char *s, int min, int max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){0,    0,   CONNECTIONS_DEFAULT, 0, "http://127.0.0.1:8080", getenv("ZHILI_TOKEN"),
                  NULL, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = v == NULL;
        if (!bad && strcmp(a, "--rate") == 0) {
            bad = int_arg(v, 1, RATE_MAX, &o->rate);
        } else if (!bad && strcmp(a, "--duration") == 0) {
            bad = int_arg(v, 1, DURATION_S_MAX, &o->duration_s);
        } else if (!bad && strcmp(a, "--connections") == 0) {
            bad = int_arg(v, 1, CONNECTIONS_MAX, &o->connections);
        } else if (!bad && strcmp(a, "--batch") == 0) {
            bad = int_arg(v, 1, BATCH_MAX, &o->batch);
        } else if (!bad && strcmp(a, "--url") == 0) {
            o->url = v;
        } else if (!bad && strcmp(a, "--token") == 0) {
            o->token = v;
        } else if (!bad && strcmp(a, "--area") == 0) {
            o->area = v;
        } else if (!bad && strcmp(a, "--units") == 0) {
            o->units = v;
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "zhilictl hotline: bad or missing value for %s\n", a);
            return -1;
        }
        i++;
    }
    return 0;
}

/* The request body: one petition, or a batch of rows each with its ticket. */
static int body_make(zpg_t *g, const opts_t *o, const char *run, long *seq, char *key,
                     size_t key_cap, char *body, size_t cap)
{
    if (o->batch == 0) {
        snprintf(key, key_cap, "%s-%06ld", run, ++*seq);
        return zpg_petition(g, "", body, cap);
    }
    size_t len = (size_t)snprintf(body, cap, "{\"petitions\":[");
    for (int i = 0; i < o->batch; i++) {
        char ticket[96];
        snprintf(ticket, sizeof ticket, "%s-%06ld", run, ++*seq);
        int n = zpg_petition(g, ticket, body + len + (i > 0), cap - len - 2);
        if (n < 0) {
            return -1;
        }
        if (i > 0) {
            body[len] = ',';
        }
        len += (size_t)n + (i > 0);
    }
    snprintf(key, key_cap, "%s-batch-%06ld", run, *seq);
    len += (size_t)snprintf(body + len, cap - len, "]}");
    return (int)len;
}

static void answer(tally_t *t, slot_t *s, const opts_t *o)
{
    int status = zhc_status(s->conn);
    size_t len;
    const char *body = zhc_body(s->conn, &len);
    int64_t ms = (now_us() - s->sent_us) / 1000;
    t->latency[ms < LATENCY_BUCKETS ? ms : LATENCY_BUCKETS - 1]++;
    t->answered++;
    t->by_status[status > 0 && status < STATUS_KINDS ? status : 0]++;
    if (o->batch == 0) {
        if (status == 201) {
            t->accepted++;
        } else {
            t->errors++;
        }
        return;
    }
    json_t *j = status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    long ok = j ? (long)json_array_size(json_object_get(j, "accepted")) : 0;
    t->accepted += ok;
    t->rejected += j ? (long)json_array_size(json_object_get(j, "rejected")) : 0;
    t->errors += j ? 0 : s->rows;
    json_decref(j);
}

static double percentile(const tally_t *t, double q)
{
    long want = (long)(q * (double)t->answered), seen = 0;
    for (int i = 0; i < LATENCY_BUCKETS; i++) {
        seen += t->latency[i];
        if (seen > want) {
            return i;
        }
    }
    return LATENCY_BUCKETS;
}

static void summary(const tally_t *t, double elapsed_s)
{
    printf("summary sent=%ld accepted=%ld rejected=%ld errors=%ld broken_connections=%ld "
           "accepted_per_s=%.1f p50_ms=%.0f p99_ms=%.0f elapsed_s=%.1f\n",
           t->sent, t->accepted, t->rejected, t->errors, t->broken,
           elapsed_s > 0 ? (double)t->accepted / elapsed_s : 0, percentile(t, 0.5),
           percentile(t, 0.99), elapsed_s);
    for (int s = 0; s < STATUS_KINDS; s++) {
        if (t->by_status[s] > 0) {
            printf("status %d: %ld\n", s, t->by_status[s]);
        }
    }
}

typedef struct {
    opts_t o;
    char host[ZHC_HOST_BYTES_MAX + 1];
    int port;
    char run[64];
    char headers[512];
    zpg_t gen;
    zpg_units_t *units; /* --units, or NULL */
    slot_t slots[CONNECTIONS_MAX];
    tally_t tally;
    char *body;
    long seq;
} sim_t;

static int slot_send(sim_t *s, slot_t *slot)
{
    char key[160], headers[700];
    int len = body_make(&s->gen, &s->o, s->run, &s->seq, key, sizeof key, s->body, BODY_BYTES_MAX);
    if (len < 0) {
        return -1;
    }
    snprintf(headers, sizeof headers, "%sIdempotency-Key: %s\r\n", s->headers, key);
    const char *path = s->o.batch ? "/api/v1/petitions/batch" : "/api/v1/petitions";
    slot->rows = s->o.batch ? s->o.batch : 1;
    slot->sent_us = now_us();
    s->tally.sent += slot->rows;
    if (zhc_send(slot->conn, "POST", path, headers, "application/json", s->body, (size_t)len) !=
        0) {
        s->tally.errors += slot->rows;
        s->tally.broken++;
        zhc_close(&slot->conn);
    }
    return 0;
}

/* Read what arrived on every busy connection; reconnect broken ones. */
static void slots_poll(sim_t *s, int timeout_ms)
{
    struct pollfd fds[CONNECTIONS_MAX];
    int idx[CONNECTIONS_MAX], n = 0;
    for (int i = 0; i < s->o.connections; i++) {
        if (s->slots[i].conn != NULL && zhc_busy(s->slots[i].conn)) {
            fds[n] = (struct pollfd){.fd = zhc_fd(s->slots[i].conn), .events = POLLIN};
            idx[n++] = i;
        }
    }
    if (n == 0) {
        if (timeout_ms > 0) {
            usleep((useconds_t)timeout_ms * 1000);
        }
        return;
    }
    poll(fds, (nfds_t)n, timeout_ms);
    for (int k = 0; k < n; k++) {
        slot_t *slot = &s->slots[idx[k]];
        int rc = fds[k].revents ? zhc_read(slot->conn) : 0;
        if (rc == 1) {
            answer(&s->tally, slot, &s->o);
        } else if (rc < 0) {
            s->tally.errors += slot->rows;
            s->tally.broken++;
            zhc_close(&slot->conn);
        }
    }
    for (int i = 0; i < s->o.connections; i++) {
        if (s->slots[i].conn == NULL) {
            char err[256];
            s->slots[i].conn = zhc_open(s->host, s->port, err, sizeof err);
        }
    }
}

static int sim_setup(sim_t *s, int argc, char **argv)
{
    if (parse(argc, argv, &s->o) != 0) {
        return usage("bad arguments");
    }
    if (s->o.rate == 0 || s->o.duration_s == 0 || s->o.area == NULL) {
        return usage("--rate, --duration and --area are required");
    }
    if (s->o.token == NULL || s->o.token[0] == '\0' || strlen(s->o.token) > 200) {
        return usage("a hotline token is required (--token or ZHILI_TOKEN)");
    }
    if (zpg_init(&s->gen, s->o.area, (uint64_t)getpid() * 2654435761u) != 0) {
        return usage("--area must be 6 to 18 digits");
    }
    if (s->o.units != NULL) {
        char err[512];
        if (zpg_units_load(s->o.units, s->o.area, &s->units, err, sizeof err) != 0) {
            fprintf(stderr, "zhilictl hotline: --units: %s\n", err);
            return 2;
        }
        zpg_use_units(&s->gen, s->units);
        printf("units: %zu places under %s from %s\n", zpg_units_places(s->units), s->o.area,
               s->o.units);
        fflush(stdout);
    }
    if (zhc_url_parse(s->o.url, s->host, &s->port) != 0) {
        return usage("--url must be http://host[:port]");
    }
    ztime_parts_t p;
    ztime_local((int64_t)time(NULL) * 1000, &p);
    snprintf(s->run, sizeof s->run, "12345-%04d%02d%02d-%d", p.year, p.month, p.day, (int)getpid());
    snprintf(s->headers, sizeof s->headers, "Authorization: Bearer %s\r\n", s->o.token);
    for (int i = 0; i < s->o.connections; i++) {
        char err[256];
        s->slots[i].conn = zhc_open(s->host, s->port, err, sizeof err);
        if (s->slots[i].conn == NULL) {
            fprintf(stderr, "zhilictl hotline: %s\n", err);
            return 2;
        }
    }
    s->body = malloc(BODY_BYTES_MAX);
    return s->body != NULL ? 0 : 2;
}

static void sim_destroy(sim_t *s)
{
    for (int i = 0; i < CONNECTIONS_MAX; i++) {
        zhc_close(&s->slots[i].conn);
    }
    free(s->body);
    zpg_units_destroy(&s->units);
    free(s);
}

/* Open loop: push k is due at start + k / rate, whatever the answers. */
static void sim_run(sim_t *s)
{
    int64_t start = now_us(), end = start + (int64_t)s->o.duration_s * 1000000;
    int64_t per_push_us = (int64_t)1000000 * (s->o.batch ? s->o.batch : 1) / s->o.rate;
    int64_t next_due = start, next_report = start + 1000000;
    long pushes = 0, last_accepted = 0;
    while (!zctl_stopping()) {
        int64_t now = now_us();
        for (int i = 0; i < s->o.connections && now >= next_due && now < end; i++) {
            slot_t *slot = &s->slots[i];
            if (slot->conn != NULL && !zhc_busy(slot->conn)) {
                slot_send(s, slot);
                next_due = start + ++pushes * per_push_us;
            }
        }
        if (now >= next_report) {
            tally_t *t = &s->tally;
            printf("t=%llds sent=%ld accepted=%ld accepted/s=%ld rejected=%ld errors=%ld\n",
                   (long long)((next_report - start) / 1000000), t->sent, t->accepted,
                   t->accepted - last_accepted, t->rejected, t->errors);
            fflush(stdout);
            last_accepted = t->accepted;
            next_report += 1000000;
        }
        bool busy = false;
        for (int i = 0; i < s->o.connections; i++) {
            busy = busy || (s->slots[i].conn != NULL && zhc_busy(s->slots[i].conn));
        }
        if (now >= end && (!busy || now >= end + (int64_t)DRAIN_MS * 1000)) {
            break;
        }
        int64_t wait = now < end ? (next_due - now) / 1000 : 50;
        slots_poll(s, (int)(wait < 0 ? 0 : wait > 50 ? 50 : wait));
    }
    for (int i = 0; i < s->o.connections; i++) {
        if (s->slots[i].conn != NULL && zhc_busy(s->slots[i].conn)) {
            s->tally.errors += s->slots[i].rows; /* no answer within the drain */
        }
    }
    summary(&s->tally, (double)(now_us() - start) / 1e6);
}

int zctl_hotline(zbus_client_t *client, const zcfg_common_t *cfg, int argc, char **argv)
{
    (void)client;
    (void)cfg;
    sim_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return 2;
    }
    int rc = sim_setup(s, argc, argv);
    if (rc == 0) {
        sim_run(s);
        rc = s->tally.errors > 0 || s->tally.rejected > 0 ? 1 : 0;
    }
    sim_destroy(s);
    return rc;
}
