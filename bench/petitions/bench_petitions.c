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
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/zhilictl/httpc.h"
#include "tools/zhilictl/petgen.h"

#define CHILDREN_MAX 3
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
    char dir[64];
    char bin[PATH_MAX];
    int http_port;
    pid_t pids[CHILDREN_MAX];
    int child_count;
    char token[TOKEN_BYTES_MAX];
} stack_t_;

static stack_t_ *g_stack; /* for the signal handler */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_signal(int sig)
{
    (void)sig;
    for (int i = 0; g_stack != NULL && i < g_stack->child_count; i++) {
        kill(g_stack->pids[i], SIGKILL);
        waitpid(g_stack->pids[i], NULL, 0);
    }
    _exit(130);
}

/* ---- the machine's CPU, as bench_bus reports it -------------------------- */

typedef struct {
    unsigned long long busy, idle, iowait, total;
} cpu_t;

static void cpu_read(cpu_t *c)
{
    unsigned long long v[10] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                            &v[3], &v[4], &v[5], &v[6], &v[7]) != 8) {
        memset(c, 0, sizeof *c);
    } else {
        c->idle = v[3];
        c->iowait = v[4];
        c->total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
        c->busy = c->total - c->idle - c->iowait;
    }
    if (f != NULL) {
        fclose(f);
    }
}

static void cpu_print(const cpu_t *a, const cpu_t *b)
{
    double total = (double)(b->total - a->total);
    printf("cpu_busy_pct %.0f\ncpu_iowait_pct %.0f\n",
           total > 0 ? 100.0 * (double)(b->busy - a->busy) / total : 0,
           total > 0 ? 100.0 * (double)(b->iowait - a->iowait) / total : 0);
}

/* ---- children ----------------------------------------------------------- */

static int port_free(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static int spawn(stack_t_ *st, const char *binary)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", st->bin, binary);
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "zhili-bench-petitions: %s is missing; build the project first\n", path);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char *argv[] = {path, NULL};
        execv(path, argv);
        _exit(127);
    }
    if (pid < 0) {
        return -1;
    }
    st->pids[st->child_count++] = pid;
    return 0;
}

/* The environment every child shares (set before any fork: one thread). */
static void env_set(stack_t_ *st)
{
    char v[128];
    int b = port_free(), pub = port_free(), sub = port_free();
    st->http_port = port_free();
    snprintf(v, sizeof v, "tcp://127.0.0.1:%d", b);
    setenv("ZHILI_BROKER", v, 1);
    setenv("ZHILI_BROKER_BIND", v, 1);
    snprintf(v, sizeof v, "tcp://127.0.0.1:%d", pub);
    setenv("ZHILI_EVENTS_PUB", v, 1);
    setenv("ZHILI_EVENTS_XSUB_BIND", v, 1);
    snprintf(v, sizeof v, "tcp://127.0.0.1:%d", sub);
    setenv("ZHILI_EVENTS_SUB", v, 1);
    setenv("ZHILI_EVENTS_XPUB_BIND", v, 1);
    snprintf(v, sizeof v, "127.0.0.1:%d", st->http_port);
    setenv("ZHILI_HTTP", v, 1);
    setenv("ZHILI_DATA", st->dir, 1);
    setenv("ZHILI_LOG", "error", 1);
    setenv("ZHILI_REQUIRED_SERVICES", "petitions", 1);
}

/* zhilictl token create, until the gateway's own service answers. */
static int token_make(stack_t_ *st)
{
    char cmd[PATH_MAX + 160], line[256];
    snprintf(cmd, sizeof cmd,
             "'%s/zhilictl' token create --role hotline --area 220503 "
             "--name bench 2>/dev/null",
             st->bin);
    int64_t end = now_us() + (int64_t)READY_TIMEOUT_MS * 1000;
    while (now_us() < end) {
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
    int64_t end = now_us() + (int64_t)READY_TIMEOUT_MS * 1000;
    while (now_us() < end) {
        char err[128];
        zhc_t *c = zhc_open("127.0.0.1", st->http_port, err, sizeof err);
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

static int on_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void stack_stop(stack_t_ *st)
{
    for (int i = 0; i < st->child_count; i++) {
        kill(st->pids[i], SIGTERM);
    }
    for (int i = 0; i < st->child_count; i++) {
        waitpid(st->pids[i], NULL, 0);
    }
    st->child_count = 0;
    nftw(st->dir, on_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static int stack_start(stack_t_ *st)
{
    snprintf(st->dir, sizeof st->dir, "/tmp/zhili-bench-petitions-XXXXXX");
    if (mkdtemp(st->dir) == NULL) {
        return -1;
    }
    env_set(st);
    if (spawn(st, "zhili-broker") != 0 || spawn(st, "zhili-petitions") != 0 ||
        spawn(st, "zhili-gateway") != 0 || token_make(st) != 0 || ready_wait(st) != 0) {
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
    c->sent_us = now_us();
    r->rows_sent += batch ? batch : 1;
    return len < 0
               ? -1
               : zhc_send(c->conn, "POST", batch ? "/api/v1/petitions/batch" : "/api/v1/petitions",
                          headers, "application/json", body, (size_t)len);
}

static void answer(conn_t *c, int batch, result_t *r)
{
    int status = zhc_status(c->conn);
    latency_add(r, now_us() - c->sent_us);
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
    zpg_init(&g, "220503", (uint64_t)now_us());
    memset(r, 0, sizeof *r);
    int rc = body != NULL ? 0 : -1;
    for (int i = 0; rc == 0 && i < conns; i++) {
        char err[128];
        cs[i].conn = zhc_open("127.0.0.1", st->http_port, err, sizeof err);
        rc = cs[i].conn != NULL ? 0 : -1;
    }
    long sent = 0, done = 0;
    int64_t start = now_us();
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
    r->elapsed_us = now_us() - start;
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
    cpu_t a, b;
    cpu_read(&a);
    int rc = r != NULL ? load(st, conns, requests, batch, r) : -1;
    cpu_read(&b);
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
    ssize_t n = readlink("/proc/self/exe", st.bin, sizeof st.bin - 1);
    if (n <= 0) {
        return 2;
    }
    st.bin[n] = '\0';
    *strrchr(st.bin, '/') = '\0';
    g_stack = &st;
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
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
    stack_stop(&st);
    return rc == 0 ? 0 : 1;
}
