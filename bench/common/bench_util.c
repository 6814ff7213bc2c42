#include "bench/common/bench_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"

int zbench_ports_pick(int *ports, int count)
{
    int fds[ZBENCH_PORTS_MAX];
    int rc = 0;
    ZASSERT(count <= ZBENCH_PORTS_MAX);
    for (int i = 0; i < count; i++) {
        fds[i] = -1;
    }
    for (int i = 0; i < count && rc == 0; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0) {
            rc = -1;
        } else {
            ports[i] = ntohs(a.sin_port);
        }
    }
    for (int i = 0; i < count; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    return rc;
}

char **zbench_env_build(char over[][ZBENCH_ENV_VAR_BYTES_MAX], int n)
{
    extern char **environ;
    size_t count = 0;
    while (environ[count] != NULL) {
        count++;
    }
    char **envp = calloc(count + (size_t)n + 1, sizeof *envp);
    ZASSERT(envp != NULL);
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        bool replaced = false;
        for (int j = 0; j < n && !replaced; j++) {
            size_t name_len = (size_t)(strchr(over[j], '=') - over[j]) + 1;
            replaced = strncmp(environ[i], over[j], name_len) == 0;
        }
        if (!replaced) {
            envp[k++] = environ[i];
        }
    }
    for (int j = 0; j < n; j++) {
        envp[k++] = over[j];
    }
    return envp;
}

/* ---- the stack ------------------------------------------------------------ */

int zbench_stack_configure(zbench_stack_t *st, const char *prog, const char *dir_template, bool ipc,
                           int call_timeout_ms)
{
    st->prog = prog;
    st->call_timeout_ms = call_timeout_ms;
    ssize_t n = readlink("/proc/self/exe", st->self, sizeof st->self - 1);
    if (n <= 0) {
        return -1;
    }
    st->self[n] = '\0';
    snprintf(st->bin_dir, sizeof st->bin_dir, "%s", st->self);
    *strrchr(st->bin_dir, '/') = '\0';
    snprintf(st->dir, sizeof st->dir, "%s", dir_template);
    if (mkdtemp(st->dir) == NULL) {
        st->dir[0] = '\0';
        return -1;
    }
    int ports[ZBENCH_STACK_PORTS];
    if (zbench_ports_pick(ports, ZBENCH_STACK_PORTS) != 0) {
        return -1;
    }
    if (ipc) {
        snprintf(st->broker, sizeof st->broker, "ipc://%s/broker.sock", st->dir);
        snprintf(st->events_pub, sizeof st->events_pub, "ipc://%s/events-in.sock", st->dir);
        snprintf(st->events_sub, sizeof st->events_sub, "ipc://%s/events-out.sock", st->dir);
    } else {
        snprintf(st->broker, sizeof st->broker, "tcp://127.0.0.1:%d", ports[0]);
        snprintf(st->events_pub, sizeof st->events_pub, "tcp://127.0.0.1:%d", ports[1]);
        snprintf(st->events_sub, sizeof st->events_sub, "tcp://127.0.0.1:%d", ports[2]);
    }
    st->http_port = ports[3];
    setenv("ZHILI_DATA", st->dir, 1);
    setenv("ZHILI_BROKER", st->broker, 1);
    setenv("ZHILI_BROKER_BIND", st->broker, 1);
    setenv("ZHILI_EVENTS_PUB", st->events_pub, 1);
    setenv("ZHILI_EVENTS_XSUB_BIND", st->events_pub, 1);
    setenv("ZHILI_EVENTS_SUB", st->events_sub, 1);
    setenv("ZHILI_EVENTS_XPUB_BIND", st->events_sub, 1);
    setenv("ZHILI_LOG", getenv("ZHILI_LOG") ? getenv("ZHILI_LOG") : "warn", 1);
    return 0;
}

pid_t zbench_child_spawn(zbench_stack_t *st, const char *binary, const char *arg,
                         char over[][ZBENCH_ENV_VAR_BYTES_MAX], int n)
{
    ZASSERT(st->child_count < ZBENCH_CHILDREN_MAX);
    char path[PATH_MAX + 64];
    if (strchr(binary, '/') != NULL) {
        snprintf(path, sizeof path, "%s", binary);
    } else {
        snprintf(path, sizeof path, "%s/%s", st->bin_dir, binary);
    }
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "%s: %s is missing; build the project first\n", st->prog, path);
        return -1;
    }
    char **envp = zbench_env_build(over, n);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the bench */
        char *argv[] = {path, (char *)arg, NULL};
        execve(path, argv, envp);
        _exit(127);
    }
    free(envp);
    if (pid < 0) {
        fprintf(stderr, "%s: fork: %s\n", st->prog, strerror(errno));
        return -1;
    }
    st->pids[st->child_count++] = pid;
    return pid;
}

void zbench_signals_set(void (*on_signal)(int))
{
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
}

bool zbench_children_alive(zbench_stack_t *st)
{
    for (int i = 0; i < st->child_count; i++) {
        int status;
        if (waitpid(st->pids[i], &status, WNOHANG) == st->pids[i]) {
            fprintf(stderr, "%s: child %d exited early (status %d)\n", st->prog, (int)st->pids[i],
                    status);
            st->pids[i] = st->pids[--st->child_count];
            return false;
        }
    }
    return true;
}

void zbench_stack_kill(zbench_stack_t *st)
{
    for (int i = 0; st != NULL && i < st->child_count; i++) {
        kill(st->pids[i], SIGKILL);
        waitpid(st->pids[i], NULL, 0); /* reaped here: no zombies left behind */
    }
}

static int on_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void zbench_stack_stop(zbench_stack_t *st, int timeout_ms)
{
    zbus_client_destroy(&st->client);
    for (int i = 0; i < st->child_count; i++) {
        kill(st->pids[i], SIGTERM);
    }
    int64_t end = zclock_mono_ms() + timeout_ms;
    for (int i = 0; i < st->child_count; i++) {
        while (waitpid(st->pids[i], NULL, WNOHANG) == 0) {
            if (zclock_mono_ms() > end) {
                kill(st->pids[i], SIGKILL);
                waitpid(st->pids[i], NULL, 0);
                break;
            }
            zbench_sleep_ms(10);
        }
    }
    st->child_count = 0;
    if (st->dir[0] != '\0') {
        nftw(st->dir, on_rm, 16, FTW_DEPTH | FTW_PHYS);
        st->dir[0] = '\0';
    }
    if (st->zctx != NULL) {
        zmq_ctx_term(st->zctx);
        st->zctx = NULL;
    }
}

int zbench_broker_wait(zbench_stack_t *st, int timeout_ms)
{
    int64_t end = zclock_mono_ms() + timeout_ms;
    while (zclock_mono_ms() < end && zbench_children_alive(st)) {
        zbus_client_t *c = zbus_client_new(st->zctx, st->broker);
        Zhili__V1__Stats *stats = NULL;
        if (c != NULL && zbus_broker_stats(c, 300, &stats) == 0) {
            zhili__v1__stats__free_unpacked(stats, NULL);
            st->client = c;
            return 0;
        }
        zbus_client_destroy(&c);
    }
    fprintf(stderr, "%s: the broker did not answer stats\n", st->prog);
    return -1;
}

int zbench_service_wait(zbench_stack_t *st, const char *service, int timeout_ms)
{
    int64_t end = zclock_mono_ms() + timeout_ms;
    while (zclock_mono_ms() < end && zbench_children_alive(st)) {
        Zhili__V1__StatsRequest s = ZHILI__V1__STATS_REQUEST__INIT;
        Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
        cmd.body_case = ZHILI__V1__COMMAND__BODY_STATS;
        cmd.stats = &s;
        Zhili__V1__Reply *r = NULL;
        if (zbus_call(st->client, service, &cmd, 500, &r) == 0) {
            zhili__v1__reply__free_unpacked(r, NULL);
            return 0;
        }
    }
    fprintf(stderr, "%s: service %s did not answer stats\n", st->prog, service);
    return -1;
}

int zbench_call(zbench_stack_t *st, const char *service, Zhili__V1__Command *cmd,
                Zhili__V1__Reply **reply)
{
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "bench";
    actor.role = "admin";
    cmd->actor = &actor;
    *reply = NULL;
    int rc = zbus_call(st->client, service, cmd, st->call_timeout_ms, reply);
    cmd->actor = NULL; /* it pointed into this frame */
    if (rc != 0) {
        *reply = NULL;
        return rc;
    }
    if ((*reply)->status != ZHILI__V1__STATUS__STATUS_OK) {
        fprintf(stderr, "%s: %s: %s\n", st->prog, service, (*reply)->message);
        zhili__v1__reply__free_unpacked(*reply, NULL);
        *reply = NULL;
        return -1;
    }
    return 0;
}

int64_t zbench_stat(zbench_stack_t *st, const char *service, const char *name, const char *labels)
{
    Zhili__V1__StatsRequest sr = ZHILI__V1__STATS_REQUEST__INIT;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_STATS;
    cmd.stats = &sr;
    Zhili__V1__Reply *r = NULL;
    int64_t v = -1;
    if (zbench_call(st, service, &cmd, &r) == 0 &&
        r->result_case == ZHILI__V1__REPLY__RESULT_STATS) {
        for (size_t i = 0; i < r->stats->n_stats; i++) {
            const Zhili__V1__Stat *s = r->stats->stats[i];
            if (strcmp(s->name, name) == 0 && (labels == NULL || strcmp(s->labels, labels) == 0)) {
                v = s->value;
            }
        }
    }
    if (r != NULL) {
        zhili__v1__reply__free_unpacked(r, NULL);
    }
    return v;
}

/* ---- commands ------------------------------------------------------------- */

size_t zbench_counter_add_pack(const char *request_id, const char *counter, uint8_t *buf)
{
    Zhili__Test__CounterAdd add = ZHILI__TEST__COUNTER_ADD__INIT;
    add.name = (char *)counter;
    add.amount = 1;
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "bench";
    actor.role = "admin";
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.request_id = (char *)request_id;
    cmd.actor = &actor;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_COUNTER_ADD;
    cmd.counter_add = &add;
    ZASSERT(protobuf_c_message_get_packed_size(&cmd.base) <= ZBENCH_COUNTER_ADD_BYTES_MAX);
    return protobuf_c_message_pack(&cmd.base, buf);
}

void zbench_replies_drain(zbus_client_t *client, long *replied, long *ok, char *first_error,
                          size_t cap)
{
    Zhili__V1__Reply *r = NULL;
    int rc;
    while ((rc = zbus_client_recv(client, &r)) == 0 || rc == ZE_INVALID) {
        if (r == NULL) {
            continue;
        }
        (*replied)++;
        if (r->status == ZHILI__V1__STATUS__STATUS_OK) {
            (*ok)++;
        } else if (first_error[0] == '\0') {
            snprintf(first_error, cap, "%s", r->message);
        }
        zhili__v1__reply__free_unpacked(r, NULL);
        r = NULL;
    }
}

void zbench_load_run(zbench_load_t *l, int timeout_ms)
{
    l->start_us = zbench_now_us();
    int64_t end = zclock_mono_ms() + timeout_ms;
    while (l->replied < l->count && zclock_mono_ms() < end) {
        long allowed = l->count;
        if (l->rate > 0) {
            allowed = (long)((double)(zbench_now_us() - l->start_us) * (double)l->rate / 1e6) + 1;
            allowed = allowed < l->count ? allowed : l->count;
        }
        while (l->sent < allowed && l->sent - l->replied < l->window) {
            char rid[64];
            snprintf(rid, sizeof rid, "%s%ld", l->rid_prefix, l->sent);
            uint8_t buf[ZBENCH_COUNTER_ADD_BYTES_MAX];
            size_t len = zbench_counter_add_pack(rid, l->counter, buf);
            const char *svc = l->services[l->sent % l->service_count];
            if (zbus_client_send(l->client, svc, rid, zclock_wall_ms() + ZBUS_DEADLINE_MS_MAX, buf,
                                 len) != 0) {
                break;
            }
            l->sent++;
        }
        zmq_pollitem_t item = {zbus_client_socket(l->client), 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, l->rate > 0 ? 1 : 100);
        zbench_replies_drain(l->client, &l->replied, &l->ok, l->first_error, sizeof l->first_error);
    }
    l->end_us = zbench_now_us();
}

void zbench_paced_drain(zbench_paced_t *p)
{
    Zhili__V1__Reply *r = NULL;
    int rc;
    while ((rc = zbus_client_recv(p->client, &r)) == 0 || rc == ZE_INVALID) {
        if (r == NULL) {
            continue;
        }
        int64_t now = zbench_now_us();
        long i = strncmp(r->request_id, "lat-", 4) == 0 ? strtol(r->request_id + 4, NULL, 10) : -1;
        if (i >= 0 && i < p->count && p->ack_us[i] < 0) {
            p->ack_us[i] = now - p->sent_us[i];
            p->replied++;
            p->ok += r->status == ZHILI__V1__STATUS__STATUS_OK;
        }
        zhili__v1__reply__free_unpacked(r, NULL);
        r = NULL;
    }
}

void zbench_paced_run(zbench_paced_t *p, int64_t period_us)
{
    int64_t start = zbench_now_us() + 1000;
    long next = 0;
    while (next < p->count) {
        int64_t due = start + next * period_us;
        int64_t now = zbench_now_us();
        if (now < due) {
            zbench_client_wait(p->client, due);
            zbench_paced_drain(p);
            continue;
        }
        p->late_max_us = now - due > p->late_max_us ? now - due : p->late_max_us;
        p->late_sends += now - due > period_us;
        char rid[32];
        snprintf(rid, sizeof rid, "lat-%ld", next);
        uint8_t buf[ZBENCH_COUNTER_ADD_BYTES_MAX];
        size_t len = zbench_counter_add_pack(rid, "lat", buf);
        p->sent_us[next] = zbench_now_us();
        if (zbus_client_send(p->client, p->service, rid, zclock_wall_ms() + ZBUS_DEADLINE_MS_MAX,
                             buf, len) != 0) {
            p->sent_us[next] = -1;
        }
        next++;
    }
}

void zbench_client_wait(zbus_client_t *client, int64_t until_us)
{
    void *sock = zbus_client_socket(client);
    int events = 0, fd = -1;
    size_t sz = sizeof events;
    zmq_getsockopt(sock, ZMQ_EVENTS, &events, &sz);
    int64_t left = until_us - zbench_now_us();
    if ((events & ZMQ_POLLIN) || left <= 0) {
        return;
    }
    sz = sizeof fd;
    zmq_getsockopt(sock, ZMQ_FD, &fd, &sz);
    struct pollfd p = {fd, POLLIN, 0};
    struct timespec ts = {left / 1000000, (left % 1000000) * 1000};
    ppoll(&p, 1, &ts, NULL);
}

/* ---- time and numbers ----------------------------------------------------- */

int64_t zbench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void zbench_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

double zbench_per_s(double count, int64_t elapsed_us)
{
    return elapsed_us > 0 ? count * 1e6 / (double)elapsed_us : 0.0;
}

int zbench_i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t zbench_quantile(const int64_t *sorted, long n, double q)
{
    long rank = (long)ceil(q * (double)n);
    return sorted[rank < 1 ? 0 : rank - 1];
}

bool zbench_arg_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* ---- the machine ---------------------------------------------------------- */

zbench_cpu_t zbench_cpu_sample(void)
{
    zbench_cpu_t c = {0, 0, 0, 0};
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f != NULL) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) == 8) {
            c.busy = v[0] + v[1] + v[2] + v[5] + v[6];
            c.iowait = v[4];
            c.steal = v[7];
            c.total = c.busy + v[3] + v[4] + v[7];
        }
        fclose(f);
    }
    return c;
}

double zbench_cpu_busy_pct(zbench_cpu_t a, zbench_cpu_t b)
{
    return b.total > a.total ? 100.0 * (double)(b.busy - a.busy) / (double)(b.total - a.total) : 0;
}

void zbench_cpu_print(zbench_cpu_t a, zbench_cpu_t b)
{
    double total = b.total > a.total ? (double)(b.total - a.total) : 1.0;
    printf("cpu_busy_pct %.0f\n", zbench_cpu_busy_pct(a, b));
    printf("cpu_iowait_pct %.0f\n", 100.0 * (double)(b.iowait - a.iowait) / total);
    printf("cpu_steal_pct %.0f\n", 100.0 * (double)(b.steal - a.steal) / total);
}

void zbench_loadavg_print(const char *when)
{
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fgets(buf, sizeof buf, f) == NULL) {
            snprintf(buf, sizeof buf, "?\n");
        }
        fclose(f);
    }
    printf("loadavg_%s %s", when, buf);
}

void zbench_host_print(const char *prog)
{
    struct utsname u;
    uname(&u);
    char date[32];
    time_t t = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    printf("%s: nproc %ld, kernel %s, %s\n", prog, sysconf(_SC_NPROCESSORS_ONLN), u.release, date);
}
