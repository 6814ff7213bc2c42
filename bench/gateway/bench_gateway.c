/* zhili-bench-gateway: how fast the gateway serves HTTP and streams on this
 * machine, measured against the real binaries (docs/performance.md records
 * the results).
 *
 * It starts zhili-broker, one zhili-testsvc (service "testsvc") and
 * zhili-gateway (test routes on) itself, from the directory of its own
 * executable, on free loopback ports with a temporary ZHILI_DATA; waits until
 * each answers; creates an admin token with zhilictl; measures; prints; stops
 * the children and removes the directory. Sections:
 *   memory   gateway RSS before and after opening N idle SSE streams;
 *   read     GET /api/v1/test/counters/c with wrk (a query through the broker);
 *   write    POST /api/v1/test/counters with wrk (a durable, fsync'd command);
 *   fanout   N SSE clients in this process (epoll, a few threads) receiving
 *            counter_add events sent straight to the broker: first paced at a
 *            steady rate, then a burst pipelined as fast as testsvc commits;
 *   latency  one counter_add every 1 ms; per request_id, the time from the
 *            send to the event's arrival on the SSE clients.
 * Memory runs first, on a gateway that has not yet grown its heap.
 * Output is "name value" lines, each section closed by a sentence and by how
 * busy the machine and each process were. SIGINT kills the children at once
 * but leaves the temporary directory (removing it is not async-signal-safe). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/common/bench_util.h"
#include "common/bus.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

#define ENV_OVERRIDES_MAX 8
#define TOKEN_BYTES_MAX 256
#define READY_TIMEOUT_MS 15000
#define CALL_TIMEOUT_MS 10000
#define HTTP_TIMEOUT_S 10
#define HTTP_REQUEST_BYTES_MAX 4096
#define METRICS_BYTES_MAX (1u << 20)
#define WRK_OUTPUT_BYTES_MAX 16384
#define SSE_GROUPS_MAX 4
#define SSE_HEAD_BYTES_MAX 2048
#define SSE_LINE_BYTES_MAX 4096 /* kept whole only when request ids are parsed */
#define SSE_PREFIX_BYTES 8      /* enough to tell "data:" from "event:" */
#define SSE_READ_BYTES (256 * 1024)
#define SSE_EVENTS_PER_WAIT 256
#define SSE_READY_TIMEOUT_MS 60000
#define BARRIER_TIMEOUT_MS 60000
#define FANOUT_IDLE_MS 30000 /* give up this long after the last delivery */
#define FANOUT_TIMEOUT_MS 600000
#define LATENCY_DRAIN_US 3000000
#define LOAD_TIMEOUT_MS 300000
#define IDLE_BUSY_PCT_MAX 10.0 /* "idle": at most this busy, 3 s in a row */
#define IDLE_WAIT_S_DEFAULT 120
#define CLIENTS_MAX 20000
#define COUNT_MAX 100000000L
#define LATENCY_SAMPLES_MAX 20000000L /* clients x rate x seconds */

/* Targets on a 2-core machine where nginx static does 40-47k req/s. */
#define TARGET_READ_RPS 40000.0
#define TARGET_WRITE_RPS 25000.0
#define TARGET_FANOUT_PER_S 1500000.0
#define TARGET_LATENCY_P99_US 10000
#define TARGET_KIB_PER_CONN 20.0

typedef struct {
    int clients;       /* SSE clients for fanout and memory */
    long events;       /* fanout, paced phase: events */
    long fanout_rate;  /* fanout, paced phase: events/s (0: as fast as the window allows) */
    long burst_events; /* fanout, burst phase: events */
    long window;       /* fanout producer: commands in flight */
    int wrk_seconds, wrk_connections, wrk_threads;
    int latency_s, rate_per_s, latency_clients;
    long queue_bytes; /* ZHILI_STREAM_QUEUE_BYTES for the gateway; 0 for its default */
    int idle_wait_s;  /* 0: do not wait for an idle machine */
    int reader_threads;
    bool verbose;
    bool ipc;          /* the bus over ipc:// (one host) instead of tcp:// loopback */
    const char *only;
} opts_t;

typedef struct {
    zbench_stack_t z; /* the children, the directory, the endpoints, the control client */
    pid_t broker_pid, testsvc_pid, gateway_pid;
    char token[TOKEN_BYTES_MAX];
    int marks; /* barrier markers sent so far (unique request ids) */
} bench_stack_t;

/* The children and a running wrk, for the signal handler. */
static bench_stack_t *g_stack;
static volatile pid_t g_wrk_pid;

/* ---- children ----------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    if (g_wrk_pid > 0) {
        kill(g_wrk_pid, SIGKILL);
    }
    zbench_stack_kill(g_stack != NULL ? &g_stack->z : NULL);
    _exit(130);
}

/* Run argv[0] (a full path) with stdout into out (NUL-terminated, cut at
 * cap) and stderr to /dev/null unless keep_stderr; the exit status, or -1.
 * *cpu_s gets the child's user+system CPU seconds when not NULL. The pid is
 * published for the signal handler while it runs. */
static int run_capture(char *const argv[], bool keep_stderr, char *out, size_t cap, double *cpu_s)
{
    extern char **environ;
    int fds[2];
    if (pipe(fds) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], STDOUT_FILENO);
        if (!keep_stderr) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0) {
                dup2(null, STDERR_FILENO);
            }
        }
        close(fds[0]);
        close(fds[1]);
        execve(argv[0], argv, environ);
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    g_wrk_pid = pid;
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fds[0], out + len, cap - 1 - len);
        if (n > 0) {
            len += (size_t)n;
            if (len == cap - 1) {
                char sink[4096]; /* keep draining so the child never blocks on a full pipe */
                while (read(fds[0], sink, sizeof sink) > 0) {
                }
                break;
            }
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    out[len] = '\0';
    close(fds[0]);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    g_wrk_pid = 0;
    if (cpu_s != NULL) {
        *cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A program on PATH, resolved before any fork. */
static bool path_find(const char *name, char *out, size_t cap)
{
    const char *path = getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin";
    for (const char *p = path; *p != '\0';) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        snprintf(out, cap, "%.*s/%s", (int)len, p, name);
        if (len > 0 && access(out, X_OK) == 0) {
            return true;
        }
        p += len + (colon ? 1 : 0);
    }
    return false;
}

/* ---- HTTP, plain and blocking ------------------------------------------- */

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {HTTP_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One request on its own connection (Connection: close); the status, or -1.
 * out gets the whole response, headers included, NUL-terminated. */
static int http_simple(int port, const char *method, const char *path, const char *token,
                       const char *json_body, char *out, size_t cap)
{
    char req[HTTP_REQUEST_BYTES_MAX];
    char auth[TOKEN_BYTES_MAX + 32] = "", body_head[96] = "";
    const char *body = json_body ? json_body : "";
    if (token != NULL) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    }
    if (json_body != NULL) {
        snprintf(body_head, sizeof body_head,
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n", strlen(body));
    }
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s"
                     "Connection: close\r\n\r\n%s",
                     method, path, port, auth, body_head, body);
    if (n < 0 || (size_t)n >= sizeof req) {
        return -1;
    }
    int fd = tcp_connect(port);
    if (fd < 0) {
        return -1;
    }
    size_t len = 0;
    if (send_all(fd, req, (size_t)n) == 0) {
        ssize_t got;
        while (len < cap - 1 &&
               ((got = recv(fd, out + len, cap - 1 - len, 0)) > 0 || (got < 0 && errno == EINTR))) {
            len += got > 0 ? (size_t)got : 0;
        }
    }
    close(fd);
    out[len] = '\0';
    int status = -1;
    if (sscanf(out, "HTTP/1.%*d %d", &status) != 1) {
        return -1;
    }
    return status;
}

/* A Prometheus sample without labels from the gateway's /metrics, or -1. */
static double metric_get(bench_stack_t *st, const char *name)
{
    char *buf = malloc(METRICS_BYTES_MAX);
    ZASSERT(buf != NULL);
    double v = -1;
    if (http_simple(st->z.http_port, "GET", "/metrics", st->token, NULL, buf, METRICS_BYTES_MAX) ==
        200) {
        size_t nlen = strlen(name);
        for (const char *p = buf; p != NULL; p = strchr(p, '\n')) {
            p += *p == '\n';
            if (strncmp(p, name, nlen) == 0 && p[nlen] == ' ') {
                v = strtod(p + nlen + 1, NULL);
                break;
            }
        }
    }
    free(buf);
    return v;
}

/* ---- the stack ---------------------------------------------------------- */

static int gateway_wait(bench_stack_t *st)
{
    char buf[1024];
    int64_t end = zclock_mono_ms() + READY_TIMEOUT_MS;
    while (zclock_mono_ms() < end && zbench_children_alive(&st->z)) {
        if (http_simple(st->z.http_port, "GET", "/healthz", NULL, NULL, buf, sizeof buf) == 200) {
            return zbench_service_wait(&st->z, "gateway", READY_TIMEOUT_MS);
        }
        zbench_sleep_ms(50);
    }
    fprintf(stderr, "zhili-bench-gateway: the gateway did not answer /healthz\n");
    return -1;
}

/* zhilictl token create --role admin --name bench: "token=..." on stdout. */
static int token_create(bench_stack_t *st)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/zhilictl", st->z.bin_dir);
    char *argv[] = {path, "token", "create", "--role", "admin", "--name", "bench", NULL};
    char out[1024];
    int64_t end = zclock_mono_ms() + READY_TIMEOUT_MS;
    while (zclock_mono_ms() < end) {
        if (run_capture(argv, false, out, sizeof out, NULL) == 0) {
            const char *t = strstr(out, "token=");
            if (t != NULL) {
                t += strlen("token=");
                size_t len = strcspn(t, " \r\n");
                if (len > 0 && len < sizeof st->token) {
                    memcpy(st->token, t, len);
                    st->token[len] = '\0';
                    return 0;
                }
            }
        }
        zbench_sleep_ms(100);
    }
    fprintf(stderr, "zhili-bench-gateway: zhilictl token create failed\n");
    return -1;
}

static int stack_start(bench_stack_t *st, const opts_t *o)
{
    if (zbench_stack_configure(&st->z, "zhili-bench-gateway", "/tmp/zhili-bench-gw-XXXXXX", o->ipc,
                               CALL_TIMEOUT_MS) != 0) {
        fprintf(stderr, "zhili-bench-gateway: cannot prepare %s: %s\n", st->z.dir, strerror(errno));
        return -1;
    }
    g_stack = st;
    st->z.zctx = zmq_ctx_new();
    char over[ENV_OVERRIDES_MAX][ZBENCH_ENV_VAR_BYTES_MAX];
    snprintf(over[0], sizeof over[0], "ZHILI_SERVICE_NAME=");
    if (st->z.zctx == NULL ||
        (st->broker_pid = zbench_child_spawn(&st->z, "zhili-broker", NULL, over, 1)) < 0 ||
        zbench_broker_wait(&st->z, READY_TIMEOUT_MS) != 0) {
        return -1;
    }
    snprintf(over[0], sizeof over[0], "ZHILI_SERVICE_NAME=testsvc");
    snprintf(over[1], sizeof over[1], "ZHILI_TESTSVC_CONSUME=");
    if ((st->testsvc_pid = zbench_child_spawn(&st->z, "zhili-testsvc", NULL, over, 2)) < 0 ||
        zbench_service_wait(&st->z, "testsvc", READY_TIMEOUT_MS) != 0) {
        return -1;
    }
    int n = 0;
    snprintf(over[n++], sizeof over[0], "ZHILI_SERVICE_NAME=gateway");
    snprintf(over[n++], sizeof over[0], "ZHILI_HTTP=127.0.0.1:%d", st->z.http_port);
    snprintf(over[n++], sizeof over[0], "ZHILI_GATEWAY_TEST_ROUTES=1");
    if (o->queue_bytes > 0) {
        snprintf(over[n++], sizeof over[0], "ZHILI_STREAM_QUEUE_BYTES=%ld", o->queue_bytes);
    }
    if ((st->gateway_pid = zbench_child_spawn(&st->z, "zhili-gateway", NULL, over, n)) < 0 ||
        gateway_wait(st) != 0 || token_create(st) != 0) {
        return -1;
    }
    return 0;
}

/* ---- the machine and the processes -------------------------------------- */

/* Other work on the shared machine skews every figure: wait (up to max_s)
 * until it has been nearly idle for 3 s in a row. */
static void idle_wait(int max_s)
{
    int quiet = 0, waited = 0;
    double last = 100;
    while (quiet < 3 && waited < max_s) {
        zbench_cpu_t a = zbench_cpu_sample();
        zbench_sleep_ms(1000);
        last = zbench_cpu_busy_pct(a, zbench_cpu_sample());
        quiet = last <= IDLE_BUSY_PCT_MAX ? quiet + 1 : 0;
        waited++;
    }
    printf("machine_idle_wait_s %d\n", waited);
    printf("machine_busy_pct_before %.0f\n", last);
    if (quiet < 3) {
        printf("the machine was not idle (<= %.0f%% busy for 3 s) within %d s; the figures "
               "below are skewed by other work.\n",
               IDLE_BUSY_PCT_MAX, max_s);
    }
    fflush(stdout);
}

/* utime + stime of a process (tid 0) or of one of its threads, in clock
 * ticks; 0 when unreadable. */
static unsigned long long proc_ticks_of(pid_t pid, pid_t tid)
{
    char path[64], buf[1024];
    if (tid > 0) {
        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    } else {
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    }
    FILE *f = fopen(path, "r");
    unsigned long long ut = 0, stt = 0;
    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        const char *p = strrchr(buf, ')');
        /* after ")": state(3) ... utime(14) stime(15) */
        if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                                &stt) != 2) {
            ut = stt = 0;
        }
    }
    return ut + stt;
}

static unsigned long long proc_ticks(pid_t pid)
{
    return proc_ticks_of(pid, 0);
}

/* A field of /proc/PID/status in KiB (VmRSS, VmHWM), or -1. */
static long proc_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    size_t flen = strlen(field);
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            v = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return v;
}

/* ---- SSE clients --------------------------------------------------------- */

typedef struct {
    int fd;
    int index;  /* in the fleet */
    int status; /* HTTP status; -1 when the headers never came */
    bool streaming, eof;
    size_t head_len, line_len;
    bool block_event; /* the current block has an "event:" line: not an event */
    long events;      /* "data:" lines of events */
    char head[SSE_HEAD_BYTES_MAX];
    char line[SSE_LINE_BYTES_MAX];
} sse_client_t;

/* A reader thread with its own epoll set; a client belongs to one group. */
typedef struct {
    int epfd;
    const char *rid_prefix; /* parse request ids "<prefix><i>" (NULL: count only) */
    long rid_count;
    atomic_llong *recv_us; /* [client index * rid_count + i], 0 until received */
    atomic_int ready;      /* clients whose headers are in (or failed) */
    atomic_int with_event; /* clients that got at least one event */
    atomic_int eofs;
    atomic_long total;    /* event data lines, every client of the group */
    atomic_llong last_us; /* the latest receipt of an event */
    atomic_int stop;
    pthread_t thread;
    char *buf;
} sse_group_t;

typedef struct {
    sse_client_t *clients;
    int count;
    sse_group_t groups[SSE_GROUPS_MAX];
    int group_count;
} sse_fleet_t;

static void rid_record(sse_group_t *g, sse_client_t *c, size_t stored, int64_t now)
{
    c->line[stored] = '\0';
    const char *p = strstr(c->line, "\"request_id\":\"");
    size_t plen = strlen(g->rid_prefix);
    if (p == NULL) {
        return;
    }
    p += strlen("\"request_id\":\"");
    if (strncmp(p, g->rid_prefix, plen) != 0) {
        return;
    }
    char *end = NULL;
    long i = strtol(p + plen, &end, 10);
    if (end != p + plen && *end == '"' && i >= 0 && i < g->rid_count) {
        atomic_llong *slot = &g->recv_us[(long)c->index * g->rid_count + i];
        if (atomic_load_explicit(slot, memory_order_relaxed) == 0) {
            atomic_store_explicit(slot, now, memory_order_relaxed);
        }
    }
}

/* One complete line of the body; chunk-size lines ("1a3\r") and the CRLF
 * after a chunk ("\r") match nothing, and they fall between SSE blocks. */
static void sse_line(sse_group_t *g, sse_client_t *c, size_t keep, int64_t now)
{
    size_t stored = c->line_len < keep ? c->line_len : keep;
    if (c->line_len == 0) {
        c->block_event = false;
    } else if (stored >= 6 && memcmp(c->line, "event:", 6) == 0) {
        c->block_event = true;
    } else if (stored >= 5 && memcmp(c->line, "data:", 5) == 0 && !c->block_event) {
        c->events++;
        if (g->rid_prefix != NULL) {
            rid_record(g, c, stored, now);
        }
    }
}

static void sse_body(sse_group_t *g, sse_client_t *c, const char *p, size_t n, int64_t now)
{
    size_t keep = g->rid_prefix != NULL ? SSE_LINE_BYTES_MAX - 1 : SSE_PREFIX_BYTES;
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t seg = (size_t)((nl ? nl : end) - p);
        if (c->line_len < keep) {
            size_t k = seg < keep - c->line_len ? seg : keep - c->line_len;
            memcpy(c->line + c->line_len, p, k);
        }
        c->line_len += seg;
        if (nl == NULL) {
            break;
        }
        sse_line(g, c, keep, now);
        c->line_len = 0;
        p = nl + 1;
    }
}

static void sse_feed(sse_group_t *g, sse_client_t *c, const char *p, size_t n, int64_t now)
{
    if (!c->streaming) {
        size_t take = n < sizeof c->head - 1 - c->head_len ? n : sizeof c->head - 1 - c->head_len;
        memcpy(c->head + c->head_len, p, take);
        c->head_len += take;
        c->head[c->head_len] = '\0';
        char *blank = strstr(c->head, "\r\n\r\n");
        if (blank == NULL) {
            if (c->head_len == sizeof c->head - 1) {
                c->status = -1; /* no end of headers: give up on it */
                c->streaming = true;
                atomic_fetch_add(&g->ready, 1);
            }
            return;
        }
        if (sscanf(c->head, "HTTP/1.%*d %d", &c->status) != 1) {
            c->status = -1;
        }
        c->streaming = true;
        atomic_fetch_add(&g->ready, 1);
        size_t used = (size_t)(blank + 4 - c->head) - (c->head_len - take);
        p += used;
        n -= used;
    }
    long before = c->events;
    sse_body(g, c, p, n, now);
    if (c->events > before) {
        atomic_fetch_add_explicit(&g->total, c->events - before, memory_order_relaxed);
        if (before == 0) {
            atomic_fetch_add(&g->with_event, 1);
        }
        if (now > atomic_load_explicit(&g->last_us, memory_order_relaxed)) {
            atomic_store_explicit(&g->last_us, now, memory_order_relaxed); /* one writer */
        }
    }
}

static void sse_read(sse_group_t *g, sse_client_t *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, g->buf, SSE_READ_BYTES, 0);
        if (n > 0) {
            sse_feed(g, c, g->buf, (size_t)n, zbench_now_us());
            if (n < SSE_READ_BYTES) {
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        c->eof = true; /* the gateway closed it (or reset it) */
        epoll_ctl(g->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        if (!c->streaming) {
            c->status = -1;
            c->streaming = true;
            atomic_fetch_add(&g->ready, 1);
        }
        atomic_fetch_add(&g->eofs, 1);
        return;
    }
}

static void *sse_main(void *arg)
{
    sse_group_t *g = arg;
    struct epoll_event evs[SSE_EVENTS_PER_WAIT];
    while (!atomic_load(&g->stop)) {
        int n = epoll_wait(g->epfd, evs, SSE_EVENTS_PER_WAIT, 50);
        for (int i = 0; i < n; i++) {
            sse_read(g, evs[i].data.ptr);
        }
    }
    return NULL;
}

static int sse_connect(int port, const char *token, const char *query)
{
    int fd = tcp_connect(port);
    if (fd < 0) {
        return -1;
    }
    char req[HTTP_REQUEST_BYTES_MAX];
    int n = snprintf(req, sizeof req,
                     "GET /api/v1/stream?%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Accept: text/event-stream\r\nAuthorization: Bearer %s\r\n\r\n",
                     query, port, token);
    if (n < 0 || (size_t)n >= sizeof req || send_all(fd, req, (size_t)n) != 0) {
        close(fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    return fd;
}

static int fleet_ready(const sse_fleet_t *f)
{
    int n = 0;
    for (int i = 0; i < f->group_count; i++) {
        n += atomic_load(&f->groups[i].ready);
    }
    return n;
}

static long fleet_total(sse_fleet_t *f)
{
    long n = 0;
    for (int i = 0; i < f->group_count; i++) {
        n += atomic_load(&f->groups[i].total);
    }
    return n;
}

static int fleet_with_event(sse_fleet_t *f)
{
    int n = 0;
    for (int i = 0; i < f->group_count; i++) {
        n += atomic_load(&f->groups[i].with_event);
    }
    return n;
}

static int fleet_eofs(sse_fleet_t *f)
{
    int n = 0;
    for (int i = 0; i < f->group_count; i++) {
        n += atomic_load(&f->groups[i].eofs);
    }
    return n;
}

static int64_t fleet_last_us(sse_fleet_t *f)
{
    int64_t last = 0;
    for (int i = 0; i < f->group_count; i++) {
        int64_t t = atomic_load(&f->groups[i].last_us);
        last = t > last ? t : last;
    }
    return last;
}

/* Stop the readers and close every connection. */
static void fleet_close(sse_fleet_t *f)
{
    for (int i = 0; i < f->group_count; i++) {
        atomic_store(&f->groups[i].stop, 1);
    }
    for (int i = 0; i < f->group_count; i++) {
        pthread_join(f->groups[i].thread, NULL);
        close(f->groups[i].epfd);
        free(f->groups[i].buf);
    }
    for (int i = 0; i < f->count; i++) {
        if (f->clients[i].fd >= 0) {
            close(f->clients[i].fd);
        }
    }
    free(f->clients);
    memset(f, 0, sizeof *f);
}

/* Open `count` SSE streams on topics=testsvc., read by `groups` threads;
 * 0 once every one answered 200, else -1 (the fleet is open either way;
 * close it). With rid_prefix, request ids are parsed into recv_us. */
static int fleet_open(sse_fleet_t *f, bench_stack_t *st, int count, int groups,
                      const char *rid_prefix, long rid_count, atomic_llong *recv_us)
{
    memset(f, 0, sizeof *f);
    f->clients = calloc((size_t)count, sizeof *f->clients);
    ZASSERT(f->clients != NULL && groups >= 1 && groups <= SSE_GROUPS_MAX);
    f->count = count;
    f->group_count = groups;
    for (int i = 0; i < groups; i++) {
        sse_group_t *g = &f->groups[i];
        g->epfd = epoll_create1(EPOLL_CLOEXEC);
        g->buf = malloc(SSE_READ_BYTES);
        g->rid_prefix = rid_prefix;
        g->rid_count = rid_count;
        g->recv_us = recv_us;
        ZASSERT(g->epfd >= 0 && g->buf != NULL);
        ZASSERT(pthread_create(&g->thread, NULL, sse_main, g) == 0);
    }
    int failed = 0;
    for (int i = 0; i < count; i++) {
        sse_client_t *c = &f->clients[i];
        c->index = i;
        c->fd = sse_connect(st->z.http_port, st->token, "topics=testsvc.");
        if (c->fd < 0) {
            failed++;
            continue;
        }
        sse_group_t *g = &f->groups[i % groups];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        ZASSERT(epoll_ctl(g->epfd, EPOLL_CTL_ADD, c->fd, &ev) == 0);
    }
    int64_t end = zclock_mono_ms() + SSE_READY_TIMEOUT_MS;
    while (fleet_ready(f) < count - failed && zclock_mono_ms() < end) {
        zbench_sleep_ms(10);
    }
    if (failed > 0 || fleet_ready(f) < count) {
        fprintf(stderr,
                "zhili-bench-gateway: %d of %d streams did not connect, %d did not "
                "answer\n",
                failed, count, count - failed - fleet_ready(f));
        return -1;
    }
    /* The readers are done with the headers: statuses are stable now. */
    int bad = 0, first_bad = 0;
    for (int i = 0; i < count; i++) {
        if (f->clients[i].status != 200) {
            first_bad = bad++ == 0 ? f->clients[i].status : first_bad;
        }
    }
    if (bad > 0) {
        fprintf(stderr, "zhili-bench-gateway: %d streams were refused (first status %d)\n", bad,
                first_bad);
        return -1;
    }
    return 0;
}

/* ---- commands straight to the broker ------------------------------------ */

/* One counter_add through the control client, waiting for its OK. */
static int marker_send(bench_stack_t *st, const char *request_id)
{
    Zhili__Test__CounterAdd add = ZHILI__TEST__COUNTER_ADD__INIT;
    add.name = "mark";
    add.amount = 1;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_COUNTER_ADD;
    cmd.counter_add = &add;
    Zhili__V1__Reply *r = NULL;
    cmd.request_id = (char *)request_id;
    int rc = zbench_call(&st->z, "testsvc", &cmd, &r);
    if (r != NULL) {
        zhili__v1__reply__free_unpacked(r, NULL);
    }
    return rc;
}

/* Wait until the hub has rendered every event committed so far: a probe
 * stream gets a fresh marker event, and per-source order puts everything
 * earlier before it. Streams opened afterwards start past all of it. */
static int hub_barrier(bench_stack_t *st)
{
    atomic_llong seen;
    atomic_init(&seen, 0);
    char prefix[32], rid[48];
    snprintf(prefix, sizeof prefix, "barrier%d-", ++st->marks);
    snprintf(rid, sizeof rid, "%s0", prefix);
    sse_fleet_t probe;
    int rc = fleet_open(&probe, st, 1, 1, prefix, 1, &seen);
    if (rc == 0) {
        rc = marker_send(st, rid);
    }
    int64_t end = zclock_mono_ms() + BARRIER_TIMEOUT_MS;
    while (rc == 0 && atomic_load(&seen) == 0 && zclock_mono_ms() < end) {
        zbench_sleep_ms(5);
    }
    fleet_close(&probe);
    if (rc != 0 || atomic_load(&seen) == 0) {
        fprintf(stderr, "zhili-bench-gateway: the hub did not deliver a marker event\n");
        return -1;
    }
    return 0;
}

/* Every stream of the fleet gets one marker event (and so is live in the
 * hub); 0 when all did within the timeout. */
static int fleet_warm(bench_stack_t *st, sse_fleet_t *f)
{
    char rid[48];
    snprintf(rid, sizeof rid, "warm%d-0", ++st->marks);
    if (marker_send(st, rid) != 0) {
        return -1;
    }
    int64_t end = zclock_mono_ms() + BARRIER_TIMEOUT_MS;
    while (fleet_with_event(f) + fleet_eofs(f) < f->count && zclock_mono_ms() < end) {
        zbench_sleep_ms(5);
    }
    return fleet_with_event(f) == f->count ? 0 : -1;
}

/* Streams the bench closed stay open in the gateway until a write to them
 * fails (it reads nothing from a streaming connection), and closing a
 * thousand at once stalls its loop for tens of milliseconds. Marker events
 * make those writes fail now, so the next measurement does not pay for
 * them: until the gateway counts `want` streams again. */
static int streams_reap(bench_stack_t *st, double want)
{
    int64_t end = zclock_mono_ms() + BARRIER_TIMEOUT_MS;
    while (zclock_mono_ms() < end) {
        double n = metric_get(st, "zhili_gateway_stream_clients");
        if (n >= 0 && n <= want) {
            return 0;
        }
        char rid[48];
        snprintf(rid, sizeof rid, "reap%d-0", ++st->marks);
        marker_send(st, rid);
        zbench_sleep_ms(50);
    }
    fprintf(stderr, "zhili-bench-gateway: closed streams were not noticed in time\n");
    return -1;
}

/* ---- wrk ------------------------------------------------------------------ */

typedef struct {
    double rps, avg_ms, max_ms, p50_ms, p90_ms, p99_ms, cpu_s;
    long requests, non2xx, socket_errors;
} wrk_result_t;

/* "850.00us", "3.14ms", "1.20s", "2.00m" in milliseconds. */
static double wrk_ms(const char *s)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s) {
        return -1;
    }
    if (strncmp(end, "us", 2) == 0) {
        return v / 1000;
    }
    if (strncmp(end, "ms", 2) == 0) {
        return v;
    }
    if (*end == 's') {
        return v * 1000;
    }
    if (*end == 'm') {
        return v * 60000;
    }
    return v;
}

static void wrk_parse(const char *out, wrk_result_t *r)
{
    char word[64];
    for (const char *line = out; line != NULL && *line != '\0';) {
        const char *p = line + strspn(line, " \t");
        long a = 0, b = 0, c = 0, d = 0;
        if (strncmp(p, "Requests/sec:", 13) == 0) {
            r->rps = strtod(p + 13, NULL);
        } else if (strncmp(p, "Latency ", 8) == 0 && strncmp(p, "Latency Distribution", 20) != 0 &&
                   sscanf(p + 8, "%63s", word) == 1) {
            r->avg_ms = wrk_ms(word);
            char w2[64], w3[64];
            if (sscanf(p + 8, "%*s %63s %63s", w2, w3) == 2) {
                r->max_ms = wrk_ms(w3);
            }
        } else if (strncmp(p, "50%", 3) == 0) {
            r->p50_ms = wrk_ms(p + 3 + strspn(p + 3, " \t"));
        } else if (strncmp(p, "90%", 3) == 0) {
            r->p90_ms = wrk_ms(p + 3 + strspn(p + 3, " \t"));
        } else if (strncmp(p, "99%", 3) == 0) {
            r->p99_ms = wrk_ms(p + 3 + strspn(p + 3, " \t"));
        } else if (strncmp(p, "Non-2xx or 3xx responses:", 25) == 0) {
            r->non2xx = strtol(p + 25, NULL, 10);
        } else if (sscanf(p, "Socket errors: connect %ld, read %ld, write %ld, timeout %ld", &a, &b,
                          &c, &d) == 4) {
            r->socket_errors = a + b + c + d;
        } else if (sscanf(p, "%ld requests in", &a) == 1) {
            r->requests = a;
        }
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
}

/* Run wrk against `path` with a Lua script; 0 with *r filled. */
static int wrk_run(bench_stack_t *st, const opts_t *o, const char *name, const char *lua,
                   const char *path, wrk_result_t *r)
{
    memset(r, 0, sizeof *r);
    char wrk[PATH_MAX];
    if (!path_find("wrk", wrk, sizeof wrk)) {
        fprintf(stderr, "zhili-bench-gateway: wrk is not installed (apt-get install -y wrk, or "
                        "./dev deps)\n");
        return -1;
    }
    char script[PATH_MAX];
    snprintf(script, sizeof script, "%s/%s.lua", st->z.dir, name);
    FILE *f = fopen(script, "w");
    if (f == NULL || fputs(lua, f) < 0 || fclose(f) != 0) {
        return -1;
    }
    char threads[16], conns[16], secs[16], url[128];
    snprintf(threads, sizeof threads, "-t%d", o->wrk_threads);
    snprintf(conns, sizeof conns, "-c%d", o->wrk_connections);
    snprintf(secs, sizeof secs, "-d%ds", o->wrk_seconds);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", st->z.http_port, path);
    char *argv[] = {wrk, threads, conns, secs, "--latency", "-s", script, url, NULL};
    char *out = malloc(WRK_OUTPUT_BYTES_MAX);
    ZASSERT(out != NULL);
    int rc = run_capture(argv, true, out, WRK_OUTPUT_BYTES_MAX, &r->cpu_s);
    if (o->verbose) {
        printf("wrk %s %s %s --latency -s %s %s\n%s", threads, conns, secs, script, url, out);
    }
    wrk_parse(out, r);
    free(out);
    if (rc != 0 || r->rps <= 0) {
        fprintf(stderr, "zhili-bench-gateway: wrk failed (exit %d)\n", rc);
        return -1;
    }
    return 0;
}

static void wrk_print(const char *prefix, const wrk_result_t *r, const opts_t *o)
{
    printf("%s_requests %ld\n", prefix, r->requests);
    printf("%s_requests_per_s %.0f\n", prefix, r->rps);
    printf("%s_latency_avg_ms %.2f\n", prefix, r->avg_ms);
    printf("%s_latency_p50_ms %.2f\n", prefix, r->p50_ms);
    printf("%s_latency_p90_ms %.2f\n", prefix, r->p90_ms);
    printf("%s_latency_p99_ms %.2f\n", prefix, r->p99_ms);
    printf("%s_latency_max_ms %.2f\n", prefix, r->max_ms);
    printf("%s_non_2xx %ld\n", prefix, r->non2xx);
    printf("%s_socket_errors %ld\n", prefix, r->socket_errors);
    printf("%s_wrk_cpu_pct %.0f\n", prefix, 100.0 * r->cpu_s / o->wrk_seconds);
}

/* ---- sections ------------------------------------------------------------ */

static int section_read(bench_stack_t *st, const opts_t *o)
{
    printf("\n[read] GET /api/v1/test/counters/c (a query through the broker to testsvc)\n");
    char buf[4096];
    int s1 = http_simple(st->z.http_port, "POST", "/api/v1/test/counters", st->token,
                         "{\"name\":\"c\",\"amount\":1}", buf, sizeof buf);
    int s2 = http_simple(st->z.http_port, "GET", "/api/v1/test/counters/c", st->token, NULL, buf,
                         sizeof buf);
    if (s1 != 201 || s2 != 200) {
        fprintf(stderr, "zhili-bench-gateway: creating and reading counter c: %d, %d\n", s1, s2);
        return -1;
    }
    char lua[512];
    snprintf(lua, sizeof lua, "wrk.headers[\"Authorization\"] = \"Bearer %s\"\n", st->token);
    wrk_result_t r;
    if (wrk_run(st, o, "read", lua, "/api/v1/test/counters/c", &r) != 0) {
        return -1;
    }
    wrk_print("read", &r, o);
    printf("wrk with %d connections on %d threads for %d s read one counter at %.0f req/s "
           "(p50 %.2f ms, p99 %.2f ms), each request authenticated, routed through the broker "
           "to testsvc and answered from LMDB; %ld non-2xx (target >= %.0f req/s: %s).\n",
           o->wrk_connections, o->wrk_threads, o->wrk_seconds, r.rps, r.p50_ms, r.p99_ms, r.non2xx,
           TARGET_READ_RPS, r.rps >= TARGET_READ_RPS ? "met" : "MISSED");
    return r.non2xx == 0 ? 0 : -1;
}

static int section_write(bench_stack_t *st, const opts_t *o)
{
    printf("\n[write] POST /api/v1/test/counters (a durable command: fsync'd before 201)\n");
    char lua[1024];
    snprintf(lua, sizeof lua,
             "wrk.method = \"POST\"\n"
             "wrk.body = '{\"name\":\"w\",\"amount\":1}'\n"
             "wrk.headers[\"Authorization\"] = \"Bearer %s\"\n"
             "wrk.headers[\"Content-Type\"] = \"application/json\"\n",
             st->token);
    int64_t batches0 = zbench_stat(&st->z, "testsvc", "batches_total", "");
    int64_t commands0 = zbench_stat(&st->z, "testsvc", "commands_total", "");
    wrk_result_t r;
    if (wrk_run(st, o, "write", lua, "/api/v1/test/counters", &r) != 0) {
        return -1;
    }
    int64_t batches = zbench_stat(&st->z, "testsvc", "batches_total", "") - batches0;
    int64_t commands = zbench_stat(&st->z, "testsvc", "commands_total", "") - commands0;
    wrk_print("write", &r, o);
    printf("write_commands_per_batch %.1f\n", batches > 0 ? (double)commands / (double)batches : 0);
    printf("wrk with %d connections on %d threads for %d s added to one counter at %.0f req/s "
           "(p50 %.2f ms, p99 %.2f ms), each 201 sent after its batch's fsync'd commit "
           "(%.1f commands per batch); %ld non-2xx (target >= %.0f req/s with 0 non-2xx: %s).\n",
           o->wrk_connections, o->wrk_threads, o->wrk_seconds, r.rps, r.p50_ms, r.p99_ms,
           batches > 0 ? (double)commands / (double)batches : 0, r.non2xx, TARGET_WRITE_RPS,
           r.rps >= TARGET_WRITE_RPS && r.non2xx == 0 ? "met" : "MISSED");
    return r.non2xx == 0 ? 0 : -1;
}

/* One fan-out run: a fresh fleet of o->clients streams gets `events`
 * counter_add events, produced at `rate`/s (0: as fast as o->window
 * commands in flight allow). Lines are named fanout_<label>_*. */
static int fanout_phase(bench_stack_t *st, const opts_t *o, const char *label, long events,
                        long rate)
{
    if (hub_barrier(st) != 0) {
        return -1;
    }
    double clients0 = metric_get(st, "zhili_gateway_stream_clients");
    double dropped0 = metric_get(st, "zhili_gateway_stream_dropped_slow_total");
    int groups = o->reader_threads < o->clients ? o->reader_threads : o->clients;
    sse_fleet_t f;
    int rc = fleet_open(&f, st, o->clients, groups, NULL, 0, NULL);
    if (rc == 0 && fleet_warm(st, &f) != 0) {
        fprintf(stderr, "zhili-bench-gateway: not every stream got the warm-up event\n");
        rc = -1;
    }
    if (rc != 0) {
        fleet_close(&f);
        return -1;
    }
    long base = fleet_total(&f); /* one warm-up event each */
    char prefix[32];
    snprintf(prefix, sizeof prefix, "fan-%s-", label);
    static const char *const testsvc[] = {"testsvc"};
    zbench_load_t l = {.services = testsvc,
                       .service_count = 1,
                       .rid_prefix = prefix,
                       .counter = "f",
                       .count = events,
                       .window = o->window,
                       .rate = rate};
    l.client = zbus_client_new(st->z.zctx, st->z.broker);
    ZASSERT(l.client != NULL);
    long expected = events * (long)o->clients;
    zbench_load_run(&l, LOAD_TIMEOUT_MS);
    long got = fleet_total(&f) - base, last_got = got;
    int64_t progress_ms = zclock_mono_ms(), give_up = zclock_mono_ms() + FANOUT_TIMEOUT_MS;
    while (got < expected && fleet_eofs(&f) < f.count && zclock_mono_ms() < give_up &&
           zclock_mono_ms() - progress_ms < FANOUT_IDLE_MS) {
        zbench_sleep_ms(10);
        got = fleet_total(&f) - base;
        if (got != last_got) {
            last_got = got;
            progress_ms = zclock_mono_ms();
        }
    }
    int64_t last_us = fleet_last_us(&f);
    int eofs = fleet_eofs(&f);
    long hwm_kib = proc_kib(st->gateway_pid, "VmHWM");
    fleet_close(&f);
    zbus_client_destroy(&l.client);
    /* A gateway still working through a backlog may take a while to answer. */
    double dropped = -1;
    for (int i = 0; i < 6 && dropped < 0; i++) {
        dropped = metric_get(st, "zhili_gateway_stream_dropped_slow_total");
    }
    dropped = dropped >= 0 && dropped0 >= 0 ? dropped - dropped0 : -1;
    if (streams_reap(st, clients0) != 0) {
        rc = -1;
    }
    double rate_got = zbench_per_s((double)got, last_us - l.start_us);
    double produced = zbench_per_s((double)l.ok, l.end_us - l.start_us);
    printf("fanout_%s_clients %d\n", label, o->clients);
    printf("fanout_%s_events %ld\n", label, events);
    printf("fanout_%s_events_acknowledged %ld\n", label, l.ok);
    printf("fanout_%s_events_produced_per_s %.0f\n", label, produced);
    printf("fanout_%s_deliveries %ld\n", label, got);
    printf("fanout_%s_deliveries_lost %ld\n", label, expected - got);
    printf("fanout_%s_clients_closed_by_gateway %d\n", label, eofs);
    printf("fanout_%s_dropped_slow %.0f\n", label, dropped);
    printf("fanout_%s_elapsed_ms %lld\n", label, (long long)(last_us - l.start_us) / 1000);
    printf("fanout_%s_deliveries_per_s %.0f\n", label, rate_got);
    printf("fanout_%s_gateway_rss_peak_kib %ld\n", label, hwm_kib);
    printf("%s: %ld events produced at %.0f/s (%s) reached %d SSE clients: %ld of %ld deliveries "
           "at %.0f/s from the first send to the last receipt; the gateway closed %d clients "
           "(%.0f counted as slow) and its RSS peaked at %ld MiB (target >= %.0f/s without "
           "loss: %s).\n",
           label, events, produced, rate > 0 ? "paced" : "pipelined, as fast as acknowledged",
           o->clients, got, expected, rate_got, eofs, dropped, hwm_kib / 1024, TARGET_FANOUT_PER_S,
           rate_got >= TARGET_FANOUT_PER_S && got == expected ? "met" : "MISSED");
    fflush(stdout);
    return rc == 0 && l.ok == events ? 0 : -1;
}

/* Paced first (a steady rate the gateway can hold or not), then a burst
 * (pipelined as fast as the service commits: everything lands at once). */
static int section_fanout(bench_stack_t *st, const opts_t *o)
{
    printf("\n[fanout] %d SSE clients on topics=testsvc.: %ld events at %ld/s, then a burst of "
           "%ld\n",
           o->clients, o->events, o->fanout_rate, o->burst_events);
    int rc = 0;
    if (o->events > 0 && fanout_phase(st, o, "paced", o->events, o->fanout_rate) != 0) {
        rc = -1;
    }
    if (o->burst_events > 0 && fanout_phase(st, o, "burst", o->burst_events, 0) != 0) {
        rc = -1;
    }
    return rc;
}

/* ---- latency ---------------------------------------------------------------- */

/* Sorted positive samples: p50, p99, p999, max in microseconds. */
static void quantiles(int64_t *v, long n, int64_t out[4])
{
    qsort(v, (size_t)n, sizeof *v, zbench_i64_cmp);
    out[0] = n ? zbench_quantile(v, n, 0.50) : 0;
    out[1] = n ? zbench_quantile(v, n, 0.99) : 0;
    out[2] = n ? zbench_quantile(v, n, 0.999) : 0;
    out[3] = n ? v[n - 1] : 0;
}

static int section_latency(bench_stack_t *st, const opts_t *o)
{
    long count = (long)o->rate_per_s * o->latency_s;
    int clients = o->latency_clients;
    printf("\n[latency] counter_add at %d/s for %d s to %d SSE client(s): send -> event "
           "received\n",
           o->rate_per_s, o->latency_s, clients);
    long samples = count * clients;
    atomic_llong *recv_us = calloc((size_t)samples, sizeof *recv_us);
    zbench_paced_t b = {.service = "testsvc", .count = count};
    b.sent_us = calloc((size_t)count, sizeof *b.sent_us);
    b.ack_us = malloc((size_t)count * sizeof *b.ack_us);
    ZASSERT(recv_us != NULL && b.sent_us != NULL && b.ack_us != NULL);
    for (long i = 0; i < count; i++) {
        b.ack_us[i] = -1;
    }
    sse_fleet_t f;
    int rc = fleet_open(&f, st, clients, 1, "lat-", count, recv_us);
    if (rc == 0 && fleet_warm(st, &f) != 0) {
        fprintf(stderr, "zhili-bench-gateway: not every stream got the warm-up event\n");
        rc = -1;
    }
    if (rc == 0) {
        b.client = zbus_client_new(st->z.zctx, st->z.broker);
        ZASSERT(b.client != NULL);
        zbench_paced_run(&b, 1000000 / o->rate_per_s);
        /* Until every event reached every client and every reply came, or a while. */
        int64_t end = zbench_now_us() + LATENCY_DRAIN_US;
        long have = 0;
        while (zbench_now_us() < end) {
            zbench_client_wait(b.client, zbench_now_us() + 10000);
            zbench_paced_drain(&b);
            have = 0;
            for (long k = 0; k < samples; k++) {
                have += atomic_load_explicit(&recv_us[k], memory_order_relaxed) != 0;
            }
            if (have == samples && b.replied == count) {
                break;
            }
        }
        zbus_client_destroy(&b.client);
    }
    fleet_close(&f);
    int64_t *lat = malloc((size_t)(samples > 0 ? samples : 1) * sizeof *lat);
    ZASSERT(lat != NULL);
    long n = 0;
    int64_t t0 = count > 0 ? b.sent_us[0] : 0;
    for (long k = 0; rc == 0 && k < samples; k++) {
        int64_t r = atomic_load(&recv_us[k]), s = b.sent_us[k % count];
        if (r != 0 && s != 0) {
            lat[n++] = r - s;
        }
    }
    /* With --verbose, when the slow ones happened and whether the command's
     * own reply was slow too (then the commit was, not the stream). */
    int slow_printed = 0;
    for (long k = 0; o->verbose && k < samples && slow_printed < 20; k++) {
        int64_t r = atomic_load(&recv_us[k]), s = b.sent_us[k % count];
        if (r != 0 && s != 0 && r - s > TARGET_LATENCY_P99_US / 2) {
            printf("latency_slow_sample at_ms %lld latency_us %lld ack_us %lld\n",
                   (long long)(s - t0) / 1000, (long long)(r - s), (long long)b.ack_us[k % count]);
            slow_printed++;
        }
    }
    long acks = 0;
    for (long i = 0; i < count; i++) {
        if (b.ack_us[i] >= 0) {
            b.ack_us[acks++] = b.ack_us[i];
        }
    }
    int64_t q[4], a[4];
    quantiles(lat, n, q);
    quantiles(b.ack_us, acks, a);
    if (rc == 0) {
        printf("latency_events %ld\n", count);
        printf("latency_clients %d\n", clients);
        printf("latency_received %ld\n", n);
        printf("latency_missing %ld\n", samples - n);
        printf("latency_p50_us %lld\n", (long long)q[0]);
        printf("latency_p99_us %lld\n", (long long)q[1]);
        printf("latency_p999_us %lld\n", (long long)q[2]);
        printf("latency_max_us %lld\n", (long long)q[3]);
        printf("latency_ack_p50_us %lld\n", (long long)a[0]);
        printf("latency_ack_p99_us %lld\n", (long long)a[1]);
        printf("latency_ack_p999_us %lld\n", (long long)a[2]);
        printf("latency_sender_late_max_us %lld\n", (long long)b.late_max_us);
        printf("latency_sender_late_sends %ld\n", b.late_sends);
        printf("%ld counter_add commands at %d/s, one at a time on a fixed schedule, reached %d "
               "SSE client(s) %ld of %ld times: from the send to the event's arrival p50 %.2f ms, "
               "p99 %.2f ms, p999 %.2f ms, max %.2f ms, including the fsync'd commit (the "
               "command's own reply: p50 %.2f ms, p99 %.2f ms) (target p99 <= %d ms: %s).\n",
               count, o->rate_per_s, clients, n, samples, (double)q[0] / 1000, (double)q[1] / 1000,
               (double)q[2] / 1000, (double)q[3] / 1000, (double)a[0] / 1000, (double)a[1] / 1000,
               TARGET_LATENCY_P99_US / 1000,
               q[1] <= TARGET_LATENCY_P99_US && n == samples ? "met" : "MISSED");
    }
    free(lat);
    free(recv_us);
    free(b.sent_us);
    free(b.ack_us);
    return rc == 0 && n == samples ? 0 : -1;
}

/* ---- memory ------------------------------------------------------------------ */

static int clients_wait(bench_stack_t *st, double want)
{
    int64_t end = zclock_mono_ms() + BARRIER_TIMEOUT_MS;
    while (zclock_mono_ms() < end) {
        if (metric_get(st, "zhili_gateway_stream_clients") == want) {
            return 0;
        }
        zbench_sleep_ms(50);
    }
    return -1;
}

static int section_memory(bench_stack_t *st, const opts_t *o)
{
    printf("\n[memory] gateway RSS with %d idle SSE streams\n", o->clients);
    double clients0 = metric_get(st, "zhili_gateway_stream_clients");
    zbench_sleep_ms(500);
    long before = proc_kib(st->gateway_pid, "VmRSS");
    sse_fleet_t f;
    int rc = fleet_open(&f, st, o->clients, 1, NULL, 0, NULL);
    if (rc == 0) {
        rc = clients_wait(st, clients0 + o->clients);
    }
    zbench_sleep_ms(1000);
    long after = proc_kib(st->gateway_pid, "VmRSS");
    fleet_close(&f);
    /* The gateway reads nothing from a streaming connection, so it learns
     * that a client left only when a write fails (a heartbeat, when idle). */
    int64_t closed_at = zclock_mono_ms();
    rc = rc == 0 ? clients_wait(st, clients0) : rc;
    int64_t noticed_ms = zclock_mono_ms() - closed_at;
    zbench_sleep_ms(500);
    long closed = proc_kib(st->gateway_pid, "VmRSS");
    if (rc != 0) {
        fprintf(stderr, "zhili-bench-gateway: the gateway did not count the streams\n");
        return -1;
    }
    double per = (double)(after - before) / o->clients;
    printf("memory_streams %d\n", o->clients);
    printf("memory_rss_before_kib %ld\n", before);
    printf("memory_rss_with_streams_kib %ld\n", after);
    printf("memory_rss_after_close_kib %ld\n", closed);
    printf("memory_close_noticed_ms %lld\n", (long long)noticed_ms);
    printf("memory_kib_per_stream %.1f\n", per);
    printf("%d idle SSE streams (each with its hello written) grew the gateway's RSS from %ld "
           "to %ld KiB, %.1f KiB per stream, not counting kernel socket buffers; the gateway "
           "noticed them closed %.1f s after the clients closed them, and its RSS was then "
           "%ld KiB (target <= %.0f KiB: %s).\n",
           o->clients, before, after, per, (double)noticed_ms / 1000, closed, TARGET_KIB_PER_CONN,
           per <= TARGET_KIB_PER_CONN ? "met" : "MISSED");
    return 0;
}

/* ---- main --------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: zhili-bench-gateway [--quick] [--only memory|read|write|fanout|latency]\n"
            "         [--clients N] [--events M] [--fanout-rate R] [--burst-events B]\n"
            "         [--window W]\n"
            "         [--seconds S] [--connections C] [--wrk-threads T]\n"
            "         [--latency-s S] [--rate R] [--latency-clients L]\n"
            "         [--queue-bytes B] [--readers K] [--idle-wait S] [--ipc] [--verbose]\n");
}

static bool opt_set(opts_t *o, const char *name, const char *value)
{
    long v = 0;
    if (strcmp(name, "--only") == 0) {
        o->only = value;
        return strcmp(value, "memory") == 0 || strcmp(value, "read") == 0 ||
               strcmp(value, "write") == 0 || strcmp(value, "fanout") == 0 ||
               strcmp(value, "latency") == 0;
    }
    if (!zbench_arg_long(value, 0, COUNT_MAX, &v)) {
        return false;
    }
    if (strcmp(name, "--clients") == 0 && v >= 1 && v <= CLIENTS_MAX) {
        o->clients = (int)v;
    } else if (strcmp(name, "--events") == 0) {
        o->events = v;
    } else if (strcmp(name, "--burst-events") == 0) {
        o->burst_events = v;
    } else if (strcmp(name, "--window") == 0 && v >= 1) {
        o->window = v;
    } else if (strcmp(name, "--fanout-rate") == 0) {
        o->fanout_rate = v;
    } else if (strcmp(name, "--seconds") == 0 && v >= 1 && v <= 3600) {
        o->wrk_seconds = (int)v;
    } else if (strcmp(name, "--connections") == 0 && v >= 1 && v <= 10000) {
        o->wrk_connections = (int)v;
    } else if (strcmp(name, "--wrk-threads") == 0 && v >= 1 && v <= 64) {
        o->wrk_threads = (int)v;
    } else if (strcmp(name, "--latency-s") == 0 && v >= 1 && v <= 3600) {
        o->latency_s = (int)v;
    } else if (strcmp(name, "--rate") == 0 && v >= 1 && v <= 100000) {
        o->rate_per_s = (int)v;
    } else if (strcmp(name, "--latency-clients") == 0 && v >= 1 && v <= 1000) {
        o->latency_clients = (int)v;
    } else if (strcmp(name, "--queue-bytes") == 0 && (v == 0 || v >= 4096)) {
        o->queue_bytes = v;
    } else if (strcmp(name, "--readers") == 0 && v >= 1 && v <= SSE_GROUPS_MAX) {
        o->reader_threads = (int)v;
    } else if (strcmp(name, "--idle-wait") == 0 && v <= 3600) {
        o->idle_wait_s = (int)v;
    } else {
        return false;
    }
    return true;
}

static int opts_parse(opts_t *o, int argc, char **argv)
{
    *o = (opts_t){.clients = 1000,
                  .events = 20000,
                  .fanout_rate = 2000,
                  .burst_events = 2000,
                  .window = 2000,
                  .wrk_seconds = 10,
                  .wrk_connections = 100,
                  .wrk_threads = 2,
                  .latency_s = 10,
                  .rate_per_s = 1000,
                  .latency_clients = 1,
                  .queue_bytes = 0,
                  .idle_wait_s = IDLE_WAIT_S_DEFAULT,
                  .reader_threads = 2};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--verbose") == 0) {
            o->verbose = true;
        } else if (strcmp(argv[i], "--ipc") == 0) {
            o->ipc = true;
        } else if (strcmp(argv[i], "--quick") == 0) {
            o->events = 4000;
            o->burst_events = 1000;
            o->wrk_seconds = 3;
            o->latency_s = 2;
            o->idle_wait_s = 0;
        } else if (i + 1 >= argc || !opt_set(o, argv[i], argv[i + 1])) {
            fprintf(stderr, "zhili-bench-gateway: bad option or value: %s\n", argv[i]);
            usage();
            return -1;
        } else {
            i++;
        }
    }
    if ((long)o->rate_per_s * o->latency_s * o->latency_clients > LATENCY_SAMPLES_MAX) {
        fprintf(stderr,
                "zhili-bench-gateway: --rate x --latency-s x --latency-clients must "
                "stay under %ld\n",
                LATENCY_SAMPLES_MAX);
        return -1;
    }
    return 0;
}

static void header(const opts_t *o)
{
    zbench_host_print("zhili-bench-gateway");
    printf("options: clients %d events %ld fanout_rate %ld burst_events %ld window %ld wrk %d s "
           "-c%d -t%d latency %d s at %d/s to %d client(s) queue_bytes %ld readers %d\n",
           o->clients, o->events, o->fanout_rate, o->burst_events, o->window, o->wrk_seconds,
           o->wrk_connections, o->wrk_threads, o->latency_s, o->rate_per_s, o->latency_clients,
           o->queue_bytes, o->reader_threads);
    zbench_loadavg_print("start");
    fflush(stdout);
}

typedef struct {
    const char *name;
    int (*run)(bench_stack_t *st, const opts_t *o);
} section_t;

static const section_t sections[] = {
    {"memory", section_memory}, {"read", section_read},       {"write", section_write},
    {"fanout", section_fanout}, {"latency", section_latency},
};

/* Run one section and say how busy the machine and each process were: all
 * of them, wrk and the bench's readers included, share 2 cores. */
static int section_run(bench_stack_t *st, const opts_t *o, const section_t *sec)
{
    long hz = sysconf(_SC_CLK_TCK);
    pid_t pids[4] = {st->gateway_pid, st->broker_pid, st->testsvc_pid, getpid()};
    const char *names[4] = {"gateway", "broker", "testsvc", "bench"};
    unsigned long long t0[4];
    for (int i = 0; i < 4; i++) {
        t0[i] = proc_ticks(pids[i]);
    }
    /* The gateway's loop thread (its main thread) is what serializes it. */
    unsigned long long loop0 = proc_ticks_of(st->gateway_pid, st->gateway_pid);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_CHILDREN, &ru0); /* wrk and zhilictl, once waited for */
    zbench_cpu_t a = zbench_cpu_sample();
    int64_t start = zbench_now_us();
    int rc = sec->run(st, o);
    double wall_s = (double)(zbench_now_us() - start) / 1e6;
    zbench_cpu_t b = zbench_cpu_sample();
    getrusage(RUSAGE_CHILDREN, &ru1);
    zbench_cpu_print(a, b);
    double ours = 0;
    for (int i = 0; i < 4; i++) {
        double s = (double)(proc_ticks(pids[i]) - t0[i]) / (double)hz;
        ours += s;
        printf("cpu_%s_pct_of_one_core %.0f\n", names[i], 100.0 * s / wall_s);
    }
    printf("cpu_gateway_loop_thread_pct_of_one_core %.0f\n",
           100.0 * (double)(proc_ticks_of(st->gateway_pid, st->gateway_pid) - loop0) / (double)hz /
               wall_s);
    double tools = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                   (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                   (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                   (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    printf("cpu_wrk_pct_of_one_core %.0f\n", 100.0 * tools / wall_s);
    /* The machine's busy time not accounted to any of these: other sessions,
     * and the kernel's softirq work charged to no process. */
    double machine = (double)(b.busy - a.busy) / (double)hz;
    printf("cpu_other_pct_of_one_core %.0f\n",
           machine > ours + tools ? 100.0 * (machine - ours - tools) / wall_s : 0.0);
    if (rc != 0) {
        printf("section %s FAILED\n", sec->name);
    }
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv)
{
    opts_t o;
    if (opts_parse(&o, argc, argv) != 0) {
        return 2;
    }
    zlog_init("bench", ZLOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows in a log or a pipe */
    zbench_signals_set(on_signal);
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max; /* the gateway inherits it */
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < (rlim_t)o.clients + 256) {
        fprintf(stderr,
                "zhili-bench-gateway: %d clients need more open files than the limit "
                "(%llu)\n",
                o.clients, (unsigned long long)nofile.rlim_cur);
        return 2;
    }
    header(&o);
    if (o.idle_wait_s > 0) {
        idle_wait(o.idle_wait_s);
    }
    bench_stack_t st;
    memset(&st, 0, sizeof st);
    int failed = 0;
    if (stack_start(&st, &o) != 0) {
        failed = 1;
    }
    /* A failed section does not stop the others: each reports on its own. */
    for (size_t i = 0; i < sizeof sections / sizeof sections[0] && st.z.child_count == 3; i++) {
        if ((o.only == NULL || strcmp(o.only, sections[i].name) == 0) &&
            section_run(&st, &o, &sections[i]) != 0) {
            failed = 1;
        }
    }
    zbench_stack_stop(&st.z, ZBENCH_STOP_TIMEOUT_MS);
    g_stack = NULL;
    printf("\n");
    zbench_loadavg_print("end");
    return failed ? 1 : 0;
}
