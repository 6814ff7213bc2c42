/* zhili-bench-petitions: how fast the 12345 hotline can push petitions
 * through the gateway into zhili-petitions on this machine, one at a time
 * and batched (docs/performance.md, "petitions", records the results).
 *
 * It starts zhili-broker, zhili-petitions and zhili-gateway itself (from the
 * directory of its own executable) on free loopback ports with a temporary
 * ZHILI_DATA, makes a hotline token with zhilictl, waits for /readyz, then
 * pushes realistic petitions (tools/zhilictl/petgen.c) over keep-alive
 * HTTP/1.1 connections (tools/zhilictl/httpc.c), closed loop:
 *   1. one connection, one petition at a time (latency without queueing);
 *   2. C connections, one petition each in flight (group commit at work);
 *   3. batches of 100 and of 1000 through /api/v1/petitions/batch.
 * Every push is durable when answered (fsync in the service's group commit).
 * Output is "name value" lines, each section closed by a sentence and by how
 * busy the whole machine was. SIGINT kills the children. */
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/common/bench_util.h"
#include "tools/zhilictl/httpc.h"
#include "tools/zhilictl/petgen.h"

#define CONNECTIONS_MAX 64
#define READY_TIMEOUT_MS 15000
#define ANSWER_TIMEOUT_MS 30000
#define PUSHES_MAX 10000000L
#define LATENCY_BUCKETS 100000 /* 0.1 ms each, up to 10 s */
#define BODY_BYTES_MAX (1000 * ZPG_JSON_BYTES_MAX + 64)
#define TOKEN_BYTES_MAX 128

typedef struct {
    long sequential, concurrent, rows;
    int connections;
} opts_t;

typedef struct {
    zbench_stack_t z; /* the children, the directory, the ports */
    char token[TOKEN_BYTES_MAX];
} stack_t_;

static stack_t_ *g_stack; /* for the signal handler */

static void on_signal(int sig)
{
    (void)sig;
    zbench_stack_kill(g_stack != NULL ? &g_stack->z : NULL);
    _exit(130);
}

/* ---- the machine's CPU ---------------------------------------------------- */

/* Busy here counts steal too: all but idle and iowait. */
static void cpu_print(const zbench_cpu_t *a, const zbench_cpu_t *b)
{
    double total = (double)(b->total - a->total);
    printf("cpu_busy_pct %.0f\ncpu_iowait_pct %.0f\n",
           total > 0 ? 100.0 * (double)(b->busy + b->steal - a->busy - a->steal) / total : 0,
           total > 0 ? 100.0 * (double)(b->iowait - a->iowait) / total : 0);
}

/* ---- children ----------------------------------------------------------- */

/* zhilictl token create, until the gateway's own service answers. */
static int token_make(stack_t_ *st)
{
    char cmd[PATH_MAX + 160], line[256];
    snprintf(cmd, sizeof cmd,
             "'%s/zhilictl' token create --role hotline --area 220503 "
             "--name bench 2>/dev/null",
             st->z.bin_dir);
    int64_t end = zbench_now_us() + (int64_t)READY_TIMEOUT_MS * 1000;
    while (zbench_now_us() < end) {
        FILE *p = popen(cmd, "r");
        while (p != NULL && fgets(line, sizeof line, p) != NULL) {
            if (strncmp(line, "token=", 6) == 0) {
                snprintf(st->token, sizeof st->token, "%.100s", line + 6);
                st->token[strcspn(st->token, "\r\n")] = '\0';
            }
        }
        if (p != NULL) {
            pclose(p);
        }
        if (st->token[0] != '\0') {
            return 0;
        }
        usleep(100000);
    }
    fprintf(stderr, "zhili-bench-petitions: no token from zhilictl\n");
    return -1;
}

/* /readyz answers 200 once the petitions service has a worker. */
static int ready_wait(stack_t_ *st)
{
    int64_t end = zbench_now_us() + (int64_t)READY_TIMEOUT_MS * 1000;
    while (zbench_now_us() < end) {
        char err[128];
        zhc_t *c = zhc_open("127.0.0.1", st->z.http_port, err, sizeof err);
        if (c != NULL && zhc_send(c, "GET", "/readyz", NULL, NULL, NULL, 0) == 0 &&
            zhc_wait(c, 1000) == 1 && zhc_status(c) == 200) {
            zhc_close(&c);
            return 0;
        }
        zhc_close(&c);
        usleep(50000);
    }
    fprintf(stderr, "zhili-bench-petitions: the gateway did not become ready\n");
    return -1;
}

static int stack_start(stack_t_ *st)
{
    /* The environment every child shares, set before any fork (one thread). */
    if (zbench_stack_configure(&st->z, "zhili-bench-petitions", "/tmp/zhili-bench-petitions-XXXXXX",
                               false, 0) != 0) {
        return -1;
    }
    char http[32];
    snprintf(http, sizeof http, "127.0.0.1:%d", st->z.http_port);
    setenv("ZHILI_HTTP", http, 1);
    setenv("ZHILI_LOG", "error", 1);
    setenv("ZHILI_REQUIRED_SERVICES", "petitions", 1);
    if (zbench_child_spawn(&st->z, "zhili-broker", NULL, NULL, 0) < 0 ||
        zbench_child_spawn(&st->z, "zhili-petitions", NULL, NULL, 0) < 0 ||
        zbench_child_spawn(&st->z, "zhili-gateway", NULL, NULL, 0) < 0 || token_make(st) != 0 ||
        ready_wait(st) != 0) {
        return -1;
    }
    return 0;
}

/* ---- load --------------------------------------------------------------- */

typedef struct {
    long requests, rows_sent, rows_ok, errors;
    long latency[LATENCY_BUCKETS];
    int64_t elapsed_us;
} result_t;

typedef struct {
    zhc_t *conn;
    int64_t sent_us;
} conn_t;

static void latency_add(result_t *r, int64_t us)
{
    int64_t b = us / 100;
    r->latency[b < LATENCY_BUCKETS ? b : LATENCY_BUCKETS - 1]++;
}

static double percentile_ms(const result_t *r, double q)
{
    long want = (long)(q * (double)r->requests), seen = 0;
    for (int i = 0; i < LATENCY_BUCKETS; i++) {
        seen += r->latency[i];
        if (seen > want) {
            return (i + 1) / 10.0;
        }
    }
    return LATENCY_BUCKETS / 10.0;
}

/* One request's body: a petition, or `batch` of them. */
static int body_next(zpg_t *g, int batch, long *seq, char *body, char *key, size_t key_cap)
{
    if (batch == 0) {
        snprintf(key, key_cap, "bench-%ld", ++*seq);
        return zpg_petition(g, "", body, BODY_BYTES_MAX);
    }
    size_t len = (size_t)snprintf(body, BODY_BYTES_MAX, "{\"petitions\":[");
    for (int i = 0; i < batch; i++) {
        char ticket[64];
        snprintf(ticket, sizeof ticket, "bench-%ld", ++*seq);
        if (i > 0) {
            body[len++] = ',';
        }
        int n = zpg_petition(g, ticket, body + len, BODY_BYTES_MAX - len - 4);
        if (n < 0) {
            return -1;
        }
        len += (size_t)n;
    }
    snprintf(key, key_cap, "bench-batch-%ld", *seq);
    len += (size_t)snprintf(body + len, BODY_BYTES_MAX - len, "]}");
    return (int)len;
}

static int send_next(const stack_t_ *st, conn_t *c, zpg_t *g, int batch, long *seq, char *body,
                     result_t *r)
{
    char key[96], headers[TOKEN_BYTES_MAX + 160];
    int len = body_next(g, batch, seq, body, key, sizeof key);
    snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\nIdempotency-Key: %s\r\n",
             st->token, key);
    c->sent_us = zbench_now_us();
    r->rows_sent += batch ? batch : 1;
    return len < 0
               ? -1
               : zhc_send(c->conn, "POST", batch ? "/api/v1/petitions/batch" : "/api/v1/petitions",
                          headers, "application/json", body, (size_t)len);
}

static void answer(conn_t *c, int batch, result_t *r)
{
    int status = zhc_status(c->conn);
    latency_add(r, zbench_now_us() - c->sent_us);
    r->requests++;
    if (status == (batch ? 200 : 201)) {
        r->rows_ok += batch ? batch : 1; /* rejected rows would show in errors below */
        size_t len;
        const char *b = zhc_body(c->conn, &len);
        if (batch && memmem(b, len, "\"rejected\":[]", 13) == NULL) {
            r->errors++;
        }
    } else {
        r->errors++;
    }
}

/* Closed loop: `requests` requests over `conns` connections, each with one in flight. */
static int load(const stack_t_ *st, int conns, long requests, int batch, result_t *r)
{
    conn_t cs[CONNECTIONS_MAX] = {0};
    char *body = malloc(BODY_BYTES_MAX);
    zpg_t g;
    static long seq;
    zpg_init(&g, "220503", (uint64_t)zbench_now_us());
    memset(r, 0, sizeof *r);
    int rc = body != NULL ? 0 : -1;
    for (int i = 0; rc == 0 && i < conns; i++) {
        char err[128];
        cs[i].conn = zhc_open("127.0.0.1", st->z.http_port, err, sizeof err);
        rc = cs[i].conn != NULL ? 0 : -1;
    }
    long sent = 0, done = 0;
    int64_t start = zbench_now_us();
    for (int i = 0; rc == 0 && i < conns && sent < requests; i++, sent++) {
        rc = send_next(st, &cs[i], &g, batch, &seq, body, r);
    }
    while (rc == 0 && done < sent) {
        struct pollfd fds[CONNECTIONS_MAX];
        for (int i = 0; i < conns; i++) {
            fds[i] = (struct pollfd){.fd = zhc_fd(cs[i].conn), .events = POLLIN};
        }
        if (poll(fds, (nfds_t)conns, ANSWER_TIMEOUT_MS) <= 0) {
            rc = -1;
            break;
        }
        for (int i = 0; rc == 0 && i < conns; i++) {
            int got = fds[i].revents ? zhc_read(cs[i].conn) : 0;
            rc = got < 0 ? -1 : 0;
            if (got == 1) {
                answer(&cs[i], batch, r);
                done++;
                if (sent < requests) {
                    rc = send_next(st, &cs[i], &g, batch, &seq, body, r);
                    sent++;
                }
            }
        }
    }
    r->elapsed_us = zbench_now_us() - start;
    for (int i = 0; i < conns; i++) {
        zhc_close(&cs[i].conn);
    }
    free(body);
    if (rc != 0) {
        fprintf(stderr, "zhili-bench-petitions: a connection failed or an answer took over %d ms\n",
                ANSWER_TIMEOUT_MS);
    }
    return rc;
}

static int section(const stack_t_ *st, const char *name, int conns, long requests, int batch)
{
    result_t *r = calloc(1, sizeof *r);
    zbench_cpu_t a = zbench_cpu_sample();
    int rc = r != NULL ? load(st, conns, requests, batch, r) : -1;
    zbench_cpu_t b = zbench_cpu_sample();
    if (rc == 0) {
        double s = (double)r->elapsed_us / 1e6;
        printf("%s_petitions_per_s %.0f\n%s_requests_per_s %.0f\n%s_p50_ms %.1f\n%s_p99_ms %.1f\n"
               "%s_errors %ld\n",
               name, (double)r->rows_ok / s, name, (double)r->requests / s, name,
               percentile_ms(r, 0.5), name, percentile_ms(r, 0.99), name, r->errors);
        printf("# %s: %ld petitions in %ld requests over %d connection(s)%s, %.2f s; every answer "
               "means the petition was on disk.\n",
               name, r->rows_ok, r->requests, conns, batch ? " (batched)" : "", s);
        cpu_print(&a, &b);
        fflush(stdout);
    }
    free(r);
    return rc;
}

static int opts_parse(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){2000, 20000, 50000, 16};
    for (int i = 1; i < argc; i++) {
        long v = i + 1 < argc ? strtol(argv[i + 1], NULL, 10) : -1;
        if (strcmp(argv[i], "--quick") == 0) {
            *o = (opts_t){300, 3000, 5000, 8};
            continue;
        }
        if (v <= 0 || v > PUSHES_MAX) {
            fprintf(stderr,
                    "usage: zhili-bench-petitions [--quick] [--sequential N] "
                    "[--concurrent N] [--rows N] [--connections C (1-%d)]\n",
                    CONNECTIONS_MAX);
            return -1;
        }
        if (strcmp(argv[i], "--sequential") == 0) {
            o->sequential = v;
        } else if (strcmp(argv[i], "--concurrent") == 0) {
            o->concurrent = v;
        } else if (strcmp(argv[i], "--rows") == 0) {
            o->rows = v;
        } else if (strcmp(argv[i], "--connections") == 0 && v <= CONNECTIONS_MAX) {
            o->connections = (int)v;
        } else {
            return -1;
        }
        i++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o;
    static stack_t_ st;
    if (opts_parse(argc, argv, &o) != 0) {
        return 2;
    }
    g_stack = &st;
    zbench_signals_set(on_signal);
    int rc = stack_start(&st);
    if (rc == 0) {
        rc = section(&st, "push_sequential", 1, o.sequential, 0);
    }
    if (rc == 0) {
        rc = section(&st, "push_concurrent", o.connections, o.concurrent, 0);
    }
    if (rc == 0) {
        rc = section(&st, "batch100", 4, o.rows / 100, 100);
    }
    if (rc == 0) {
        rc = section(&st, "batch1000", 2, o.rows / 1000, 1000);
    }
    zbench_stack_stop(&st.z, ZBENCH_STOP_TIMEOUT_MS);
    return rc == 0 ? 0 : 1;
}
