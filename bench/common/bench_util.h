/* bench_util: what every benchmark under bench/ needs to start the real
 * binaries on loopback and to measure them (not shipped, not a test).
 *
 * A bench embeds a zbench_stack_t (its children, its temporary ZHILI_DATA,
 * the bus endpoints and one control client), configures it before any
 * thread exists, spawns the binaries from the directory of its own
 * executable, and stops it on the way out. Its signal handler, which lives
 * in the bench (no global state here), calls zbench_stack_kill. The other
 * helpers are leaves: clocks, /proc readers, packing and draining commands,
 * the lines every bench prints the same way. Messages go to stderr prefixed
 * with the bench's program name; figures go to stdout. */
#ifndef ZHILI_BENCH_UTIL_H
#define ZHILI_BENCH_UTIL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/bus.h"

#define ZBENCH_PORTS_MAX 8
#define ZBENCH_ENV_VAR_BYTES_MAX 128
#define ZBENCH_CHILDREN_MAX 8
#define ZBENCH_DIR_BYTES_MAX 64
#define ZBENCH_ENDPOINT_BYTES_MAX 128 /* an ipc:// path under the temporary directory */
#define ZBENCH_STACK_PORTS 4          /* broker, events in, events out, HTTP */
#define ZBENCH_STOP_TIMEOUT_MS 5000
#define ZBENCH_COUNTER_ADD_BYTES_MAX 256

_Static_assert(ZBENCH_STACK_PORTS <= ZBENCH_PORTS_MAX, "the stack's ports are picked at once");
_Static_assert(ZBENCH_DIR_BYTES_MAX + 32 <= ZBENCH_ENDPOINT_BYTES_MAX,
               "an ipc endpoint holds the directory and a socket name");

/* The processes a bench runs and what they share. Fields are public: a bench
 * reads them (endpoints, ports, pids) and owns the struct. */
typedef struct {
    const char *prog;               /* "zhili-bench-bus": prefix of every message */
    char self[PATH_MAX];            /* this executable */
    char bin_dir[PATH_MAX];         /* its directory, where the binaries are */
    char dir[ZBENCH_DIR_BYTES_MAX]; /* the temporary ZHILI_DATA; "" when none */
    char broker[ZBENCH_ENDPOINT_BYTES_MAX];
    char events_pub[ZBENCH_ENDPOINT_BYTES_MAX]; /* producers connect, the broker's XSUB binds */
    char events_sub[ZBENCH_ENDPOINT_BYTES_MAX]; /* consumers connect, the broker's XPUB binds */
    int http_port; /* free for a gateway; nothing set in the environment */
    pid_t pids[ZBENCH_CHILDREN_MAX];
    int child_count;
    int call_timeout_ms;   /* for zbench_call and zbench_stat */
    void *zctx;            /* NULL until the bench creates it; terminated on stop */
    zbus_client_t *client; /* the control client; destroyed on stop */
} zbench_stack_t;

/* count (<= ZBENCH_PORTS_MAX) distinct free TCP ports on 127.0.0.1: each is
 * bound to port 0 and read back, all held open until every one is picked.
 * 0, or -1 when a socket fails. */
int zbench_ports_pick(int *ports, int count);

/* environ without the names the overrides set ("NAME=value"), then the
 * overrides (n may be 0, over NULL). Built before fork, because the child of
 * a threaded process may call only async-signal-safe functions before it
 * execs. The array is the caller's to free; the strings stay borrowed. */
char **zbench_env_build(char over[][ZBENCH_ENV_VAR_BYTES_MAX], int n);

/* Prepare st (zeroed by the caller) for program `prog` (borrowed, kept),
 * its calls waiting up to call_timeout_ms: self and bin_dir from /proc/self/exe, a fresh directory
 * from dir_template
 * ("/tmp/...-XXXXXX", shorter than ZBENCH_DIR_BYTES_MAX), ZBENCH_STACK_PORTS
 * free ports (the bus endpoints on tcp loopback, or with ipc sockets in the
 * directory; http_port either way), and the environment every child
 * inherits: ZHILI_DATA, ZHILI_BROKER(_BIND), ZHILI_EVENTS_PUB/XSUB_BIND,
 * ZHILI_EVENTS_SUB/XPUB_BIND, and ZHILI_LOG (kept when set, else "warn").
 * Call it before any thread exists: setenv is not thread-safe. 0, or -1 with
 * errno when the directory or a port cannot be had (st->dir is "" when no
 * directory was made). */
int zbench_stack_configure(zbench_stack_t *st, const char *prog, const char *dir_template, bool ipc,
                           int call_timeout_ms);

/* Fork and exec `binary` (a name in bin_dir, or a path with a '/') with one
 * optional argument (NULL for none) and the environment plus n overrides
 * (see zbench_env_build); the child dies with the bench (PR_SET_PDEATHSIG).
 * At most ZBENCH_CHILDREN_MAX children (asserted). The pid, or -1 with a
 * message when the binary is missing or fork fails. */
pid_t zbench_child_spawn(zbench_stack_t *st, const char *binary, const char *arg,
                         char over[][ZBENCH_ENV_VAR_BYTES_MAX], int n);

/* SIGINT and SIGTERM to on_signal (which should call zbench_stack_kill and
 * _exit), SIGPIPE ignored: a peer that closes a socket is an error return,
 * not the end of the bench. */
void zbench_signals_set(void (*on_signal)(int));

/* false, with a message, when a child has exited; it is reaped and dropped
 * from the stack. */
bool zbench_children_alive(zbench_stack_t *st);

/* SIGKILL every child and reap it; only async-signal-safe calls, for a
 * signal handler. st may be NULL. The temporary directory is left behind
 * (removing it is not async-signal-safe). */
void zbench_stack_kill(zbench_stack_t *st);

/* Destroy the control client, SIGTERM the children, reap them (SIGKILL for
 * one still running after timeout_ms), remove the directory and terminate
 * zctx. Idempotent. */
void zbench_stack_stop(zbench_stack_t *st, int timeout_ms);

/* Until the broker answers a stats request, within timeout_ms while every
 * child lives: a fresh client each attempt, so requests queued before the
 * broker bound are dropped with it (LINGER 0) instead of answering later.
 * 0 with st->client set to the client that answered (the stack's), or -1
 * with a message. */
int zbench_broker_wait(zbench_stack_t *st, int timeout_ms);

/* Until `service` answers a stats command through st->client (500 ms an
 * attempt), within timeout_ms while every child lives. 0, or -1 with a
 * message. */
int zbench_service_wait(zbench_stack_t *st, const char *service, int timeout_ms);

/* Call `service` with cmd as the bench's admin (actor "bench", role admin;
 * cmd->actor is set, request_id left as the caller set it, NULL or "" for a
 * fresh one) through st->client, waiting up to st->call_timeout_ms. 0 with
 * *reply OK (the caller's to free); else *reply NULL and -1 when it was not
 * OK (with a message naming the service), or zbus_call's error. */
int zbench_call(zbench_stack_t *st, const char *service, Zhili__V1__Command *cmd,
                Zhili__V1__Reply **reply);

/* The value of stat `name` in `service`'s stats with exactly these labels
 * ("" for none, e.g. "source=\"petitions\""; NULL for any, the last one
 * listed winning), or -1 when the call fails or no stat matches. */
int64_t zbench_stat(zbench_stack_t *st, const char *service, const char *name, const char *labels);

/* A counter_add of 1 to counter `counter` as the bench's admin with this
 * request id, packed into buf (ZBENCH_COUNTER_ADD_BYTES_MAX bytes; a longer
 * message is a programmer error, asserted). The packed length. */
size_t zbench_counter_add_pack(const char *request_id, const char *counter, uint8_t *buf);

/* Read every reply waiting on client without blocking: each one counts in
 * *replied, an OK one in *ok, and the first error's message is kept in
 * first_error (cap bytes, cut to fit) while that is "". Malformed replies
 * are skipped (zbus_client_recv logs them). */
void zbench_replies_drain(zbus_client_t *client, long *replied, long *ok, char *first_error,
                          size_t cap);

/* A pipelined load of counter_add commands from one client: request ids
 * "<rid_prefix><n>", counter `counter`, spread round-robin over `services`.
 * The caller fills the first block; zbench_load_run fills the rest. */
typedef struct {
    zbus_client_t *client;
    const char *const *services;
    int service_count;
    const char *rid_prefix, *counter; /* borrowed */
    long count, window, rate;         /* rate in commands/s; 0: only the window limits */
    long sent, replied, ok;
    int64_t start_us, end_us; /* zbench_now_us */
    char first_error[160];
} zbench_load_t;

/* Send l->count commands with at most l->window unanswered and, with a rate,
 * no more than rate x elapsed sent; until every one is answered or
 * timeout_ms passes. Every request gets exactly one reply (nothing is
 * resent), so counting replies is enough; the first error is kept. */
void zbench_load_run(zbench_load_t *l, int timeout_ms);

/* Commands one at a time on a fixed schedule, for latency: counter_add to
 * counter "lat" with request ids "lat-<i>". The caller fills the first block
 * (sent_us and ack_us hold count values, ack_us all -1). */
typedef struct {
    zbus_client_t *client;
    const char *service;
    long count;
    int64_t *sent_us; /* when each was sent (zbench_now_us); -1 when its send failed */
    int64_t *ack_us;  /* each reply's latency; -1 until answered */
    long replied, ok;
    int64_t late_max_us; /* the bench's own lateness against the schedule */
    long late_sends;     /* sent more than a period late */
} zbench_paced_t;

/* Send p->count commands, one every period_us from 1 ms from now, reading
 * replies between sends. Returns after the last send: replies still on
 * their way are the caller's to wait for (zbench_client_wait and
 * zbench_paced_drain). */
void zbench_paced_run(zbench_paced_t *p, int64_t period_us);

/* Read the replies waiting for p without blocking, recording their latency. */
void zbench_paced_drain(zbench_paced_t *p);

/* Sleep until a reply may be waiting on client or until until_us
 * (zbench_now_us), with microsecond timeouts (zmq_poll counts milliseconds,
 * too coarse for a 1 ms schedule). The socket's fd is edge-triggered:
 * ZMQ_EVENTS must say "nothing" before blocking on it. */
void zbench_client_wait(zbus_client_t *client, int64_t until_us);

/* CLOCK_MONOTONIC in microseconds (zclock is milliseconds; latencies need
 * microseconds). */
int64_t zbench_now_us(void);

/* Sleep ms milliseconds, resumed across signals. */
void zbench_sleep_ms(int ms);

/* count per second over elapsed_us; 0 when no time passed. */
double zbench_per_s(double count, int64_t elapsed_us);

/* qsort comparator of int64_t in ascending order. */
int zbench_i64_cmp(const void *a, const void *b);

/* The q-quantile (0..1) of n >= 1 sorted values, by nearest rank. */
int64_t zbench_quantile(const int64_t *sorted, long n, double q);

/* Whole numbers within [min, max] only: false for anything else in s. */
bool zbench_arg_long(const char *s, long min, long max, long *out);

/* The machine-wide CPU counters of /proc/stat's first line, in clock ticks:
 * busy = user + nice + system + irq + softirq; total adds idle, iowait and
 * steal. */
typedef struct {
    unsigned long long busy, iowait, steal, total;
} zbench_cpu_t;

/* A sample of the counters; all zero when /proc/stat is unreadable. */
zbench_cpu_t zbench_cpu_sample(void);

/* How busy the machine was between two samples, in percent; 0 when no time
 * passed. */
double zbench_cpu_busy_pct(zbench_cpu_t a, zbench_cpu_t b);

/* Print cpu_busy_pct, cpu_iowait_pct and cpu_steal_pct between two samples. */
void zbench_cpu_print(zbench_cpu_t a, zbench_cpu_t b);

/* Print "loadavg_<when> <the line of /proc/loadavg>" ("?" when unreadable):
 * other work on the machine skews every figure, and the load shows it. */
void zbench_loadavg_print(const char *when);

/* Print "<prog>: nproc N, kernel K, <UTC date>". */
void zbench_host_print(const char *prog);

#endif
