/* server: the listener, connection records, routing onto h2o paths, the
 * per-loop-turn flush of streams, and an orderly shutdown. */
#include "http_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <h2o/socket/uv-binding.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"

static const char ERROR_413_JSON[] =
    "{\"error\":{\"status\":\"invalid\",\"message\":\"the request body "
    "is larger than 1 MiB\",\"field\":\"body\"}}";
_Static_assert(ZHTTP_BODY_BYTES_MAX == (1u << 20), "ERROR_413_JSON names the limit as 1 MiB");

static const char *INDEX_FILES[] = {"index.html", NULL};

/* ---- listen address ------------------------------------------------------ */

/* "host:port" or "[v6]:port" into a socket address. */
static int listen_addr_parse(const char *address, struct sockaddr_storage *addr)
{
    const char *colon = address != NULL ? strrchr(address, ':') : NULL;
    if (colon == NULL || colon == address || colon[1] == '\0') {
        return ZE_INVALID;
    }
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port < 0 || port > 65535) {
        return ZE_INVALID;
    }
    char host[64];
    size_t host_len = (size_t)(colon - address);
    if (address[0] == '[' && host_len >= 2 && colon[-1] == ']') {
        address++;
        host_len -= 2;
    }
    if (host_len >= sizeof host) {
        return ZE_INVALID;
    }
    memcpy(host, address, host_len);
    host[host_len] = '\0';
    memset(addr, 0, sizeof *addr);
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) == 0) {
        return 0;
    }
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr) == 0) {
        return 0;
    }
    return ZE_INVALID;
}

/* Bind and listen with plain syscalls so that "address in use" is reported
 * by zhttp_server_new (libuv would defer it to uv_listen). The kernel queues
 * connections in the backlog until zhttp_server_start accepts them. */
static int listener_open(zhttp_server_t *self, const char *address, char *errbuf, size_t errbuf_len)
{
    struct sockaddr_storage addr;
    if (listen_addr_parse(address, &addr) != 0) {
        snprintf(errbuf, errbuf_len, "listen address \"%s\" is not host:port",
                 address != NULL ? address : "(null)");
        return -1;
    }
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(errbuf, errbuf_len, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    socklen_t len =
        addr.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&addr, len) != 0 || listen(fd, ZHTTP_LISTEN_BACKLOG) != 0) {
        snprintf(errbuf, errbuf_len, "listen on %s: %s", address, strerror(errno));
        goto fail_close_fd;
    }
    struct sockaddr_storage bound;
    len = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &len) != 0) {
        snprintf(errbuf, errbuf_len, "getsockname: %s", strerror(errno));
        goto fail_close_fd;
    }
    self->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                  : ((struct sockaddr_in6 *)&bound)->sin6_port);
    uv_tcp_init(self->loop, &self->listener);
    self->listener_inited = true;
    self->handles_open++;
    self->listener.data = self;
    int rc = uv_tcp_open(&self->listener, fd);
    if (rc != 0) {
        /* The handle is initialized: zhttp_server_destroy closes it. */
        snprintf(errbuf, errbuf_len, "uv_tcp_open: %s", uv_strerror(rc));
        goto fail_close_fd;
    }
    return 0;

fail_close_fd:
    close(fd);
    return -1;
}

/* ---- lifecycle ------------------------------------------------------------ */

static void on_flush(zhttp_server_t *self);

static void on_flush_prepare(uv_prepare_t *handle)
{
    on_flush(handle->data);
}

static void on_flush_check(uv_check_t *handle)
{
    on_flush(handle->data);
}

/* The handles that run every turn are unreferenced: they must never be
 * what keeps a loop alive. */
static void handles_init(zhttp_server_t *self)
{
    uv_prepare_init(self->loop, &self->flush_prepare);
    uv_check_init(self->loop, &self->flush_check);
    uv_timer_init(self->loop, &self->sweep);
    uv_timer_init(self->loop, &self->hup);
    self->flush_prepare.data = self->flush_check.data = self->sweep.data = self;
    self->hup.data = self;
    uv_unref((uv_handle_t *)&self->flush_prepare);
    uv_unref((uv_handle_t *)&self->flush_check);
    uv_unref((uv_handle_t *)&self->sweep);
    uv_unref((uv_handle_t *)&self->hup);
    self->handles_open += 4;
}

/* libuv writes with write(2), so a client that resets its connection
 * raises SIGPIPE, whose default action kills the gateway. Ignoring it is
 * the only sane disposition for a socket server; one already chosen by
 * main (a handler, or SIG_IGN) is left alone. */
static void sigpipe_ignore(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
        signal(SIGPIPE, SIG_IGN);
    }
}

zhttp_server_t *zhttp_server_new(uv_loop_t *loop, const char *listen, char *errbuf,
                                 size_t errbuf_len)
{
    zhttp_server_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        snprintf(errbuf, errbuf_len, "out of memory");
        return NULL;
    }
    self->loop = loop;
    h2o_linklist_init_anchor(&self->conns);
    h2o_linklist_init_anchor(&self->reqs);
    h2o_linklist_init_anchor(&self->streams);
    h2o_linklist_init_anchor(&self->dirty);
    h2o_linklist_init_anchor(&self->closing);
    h2o_config_init(&self->config);
    /* No Server header: it tells a client nothing it needs, and h2o writes it
     * with a second sprintf per response (a thousand instructions). */
    self->config.server_name = h2o_iovec_init("", 0);
    self->config.max_request_entity_size = ZHTTP_BODY_BYTES_MAX;
    /* HTTP/1.1 only: an h2c upgrade would reach h2o_upgrade_to_websocket,
     * which asserts on HTTP/2. */
    self->config.http1.upgrade_to_http2 = 0;
    h2o_config_register_host(&self->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    handles_init(self);
    if (listener_open(self, listen, errbuf, errbuf_len) != 0) {
        zhttp_server_destroy(&self);
        return NULL;
    }
    sigpipe_ignore();
    return self;
}

static int route_check(const zhttp_server_t *self, const char *prefix)
{
    if (self->started || self->closed) {
        return ZE_CONFLICT;
    }
    if (prefix == NULL || prefix[0] != '/' || strlen(prefix) >= ZHTTP_PREFIX_BYTES_MAX) {
        return ZE_INVALID;
    }
    return 0;
}

int zhttp_server_handle(zhttp_server_t *self, const char *prefix, zhttp_handler_fn on_req,
                        void *ctx)
{
    int rc = route_check(self, prefix);
    if (rc != 0 || on_req == NULL) {
        return rc != 0 ? rc : ZE_INVALID;
    }
    if (self->handlers_len == ZHTTP_HANDLERS_MAX) {
        return ZE_INVALID;
    }
    zhttp_route_t *route = &self->handlers[self->handlers_len++];
    snprintf(route->prefix, sizeof route->prefix, "%s", prefix);
    route->on_req = on_req;
    route->ctx = ctx;
    return 0;
}

int zhttp_server_static(zhttp_server_t *self, const char *prefix, const char *dir)
{
    int rc = route_check(self, prefix);
    if (rc != 0 || dir == NULL) {
        return rc != 0 ? rc : ZE_INVALID;
    }
    if (self->statics_len == ZHTTP_STATICS_MAX) {
        return ZE_INVALID;
    }
    zhttp_route_t *route = &self->statics[self->statics_len];
    route->dir = strdup(dir);
    if (route->dir == NULL) {
        return ZE_UNAVAILABLE;
    }
    snprintf(route->prefix, sizeof route->prefix, "%s", prefix);
    self->statics_len++;
    return 0;
}

/* ---- filter: status counters, and a JSON body for h2o's own 413 --------- */

static void on_413_send(h2o_ostream_t *ostream, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                        h2o_send_state_t state)
{
    (void)bufs;
    (void)bufcnt;
    /* h2o_send_error sends its body in one final call; replace it. */
    h2o_iovec_t body = h2o_iovec_init(ERROR_413_JSON, sizeof ERROR_413_JSON - 1);
    h2o_ostream_send_next(ostream, req, &body, 1, state);
}

static void on_setup_ostream(h2o_filter_t *super, h2o_req_t *req, h2o_ostream_t **slot)
{
    zhttp_filter_t *filter = (zhttp_filter_t *)super;
    zhttp_stats_t *stats = &filter->server->stats;
    int status = req->res.status;
    /* 499 is our own answer to a request whose client left: not traffic. */
    if (status != 499) {
        stats->requests_total++;
        stats->responses_4xx += status >= 400 && status < 500;
        stats->responses_5xx += status >= 500;
    }
    if (filter->rewrite_413 && status == 413) {
        req->res.content_length = sizeof ERROR_413_JSON - 1;
        memset(&req->res.headers, 0, sizeof req->res.headers);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("application/json"));
        h2o_ostream_t *ostream = h2o_add_ostream(req, sizeof *ostream, slot);
        ostream->do_send = on_413_send;
        slot = &ostream->next;
    }
    h2o_setup_next_ostream(req, slot);
}

static void filter_add(zhttp_server_t *self, h2o_pathconf_t *pathconf, bool rewrite_413)
{
    zhttp_filter_t *filter = (zhttp_filter_t *)h2o_create_filter(pathconf, sizeof *filter);
    filter->super.on_setup_ostream = on_setup_ostream;
    filter->server = self;
    filter->rewrite_413 = rewrite_413;
}

static int on_h2o_req(h2o_handler_t *super, h2o_req_t *req)
{
    return zhttp_req_dispatch((zhttp_handler_t *)super, req);
}

/* h2o matches paths in registration order, so handlers go first and the
 * static trees (usually "/", which matches everything) last. */
static int routes_register(zhttp_server_t *self)
{
    h2o_hostconf_t *host = self->config.hosts[0];
    for (size_t i = 0; i < self->handlers_len; i++) {
        zhttp_route_t *route = &self->handlers[i];
        h2o_pathconf_t *pathconf = h2o_config_register_path(host, route->prefix, 0);
        zhttp_handler_t *handler = (zhttp_handler_t *)h2o_create_handler(pathconf, sizeof *handler);
        handler->super.on_req = on_h2o_req;
        handler->server = self;
        handler->on_req = route->on_req;
        handler->ctx = route->ctx;
        filter_add(self, pathconf, false);
    }
    for (size_t i = 0; i < self->statics_len; i++) {
        zhttp_route_t *route = &self->statics[i];
        h2o_pathconf_t *pathconf = h2o_config_register_path(host, route->prefix, 0);
        if (h2o_file_register(pathconf, route->dir, INDEX_FILES, NULL, 0) == NULL) {
            return ZE_INVALID;
        }
        filter_add(self, pathconf, false);
    }
    filter_add(self, &host->fallback_path, true);
    return 0;
}

static void on_connection(uv_stream_t *listener, int status);

int zhttp_server_start(zhttp_server_t *self)
{
    if (self == NULL || self->started || self->closed) {
        return UV_EINVAL;
    }
    if (routes_register(self) != 0) {
        return UV_EINVAL;
    }
    h2o_context_init(&self->ctx, self->loop, &self->config);
    self->ctx_inited = true;
    self->accept_ctx.ctx = &self->ctx;
    self->accept_ctx.hosts = self->config.hosts;
    int rc = uv_listen((uv_stream_t *)&self->listener, ZHTTP_LISTEN_BACKLOG, on_connection);
    if (rc != 0) {
        return rc;
    }
    uv_prepare_start(&self->flush_prepare, on_flush_prepare);
    uv_check_start(&self->flush_check, on_flush_check);
    self->started = true;
    return 0;
}

int zhttp_server_port(const zhttp_server_t *self)
{
    return self != NULL ? self->port : -1;
}

void zhttp_server_stats(const zhttp_server_t *self, zhttp_stats_t *out)
{
    if (self == NULL) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = self->stats;
}

/* ---- connections ----------------------------------------------------------- */

static size_t conn_bucket(const h2o_conn_t *h2o_conn)
{
    return ((uintptr_t)h2o_conn >> 4) & (ZHTTP_CONN_BUCKETS - 1);
}

zhttp_conn_t *zhttp_conn_find(zhttp_server_t *self, const h2o_conn_t *h2o_conn)
{
    zhttp_conn_t *conn = self->buckets[conn_bucket(h2o_conn)];
    while (conn != NULL && conn->h2o_conn != h2o_conn) {
        conn = conn->bucket_next;
    }
    return h2o_conn != NULL ? conn : NULL;
}

void zhttp_conn_unmap(zhttp_server_t *self, const h2o_conn_t *h2o_conn)
{
    zhttp_conn_t **slot = &self->buckets[conn_bucket(h2o_conn)];
    while (*slot != NULL) {
        if ((*slot)->h2o_conn == h2o_conn) {
            zhttp_conn_t *conn = *slot;
            *slot = conn->bucket_next;
            conn->h2o_conn = NULL;
            conn->bucket_next = NULL;
            return;
        }
        slot = &(*slot)->bucket_next;
    }
}

/* An h2o connection freed this turn may have its address reused by one
 * accepted before our close callback ran: the newer record wins. */
static void conn_map(zhttp_server_t *self, zhttp_conn_t *conn, h2o_conn_t *h2o_conn)
{
    zhttp_conn_unmap(self, h2o_conn);
    size_t bucket = conn_bucket(h2o_conn);
    conn->h2o_conn = h2o_conn;
    conn->bucket_next = self->buckets[bucket];
    self->buckets[bucket] = conn;
}

static void conn_shutdown(zhttp_conn_t *conn)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&conn->tcp, &fd) == 0) {
        shutdown(fd, SHUT_RDWR);
    }
}

void zhttp_conn_cut(zhttp_server_t *self, const h2o_conn_t *h2o_conn)
{
    zhttp_conn_t *conn = zhttp_conn_find(self, h2o_conn);
    if (conn != NULL) {
        conn_shutdown(conn);
    }
}

void zhttp_conn_limit_sndbuf(zhttp_server_t *self, const h2o_conn_t *h2o_conn, int bytes)
{
    zhttp_conn_t *conn = zhttp_conn_find(self, h2o_conn);
    uv_os_fd_t fd;
    if (conn != NULL && uv_fileno((uv_handle_t *)&conn->tcp, &fd) == 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    }
}

static void finish_close(zhttp_server_t *self);

static void on_conn_closed(uv_handle_t *handle)
{
    zhttp_conn_t *conn = (zhttp_conn_t *)handle;
    zhttp_server_t *self = conn->server;
    if (conn->h2o_conn != NULL) {
        zhttp_conn_unmap(self, conn->h2o_conn);
    }
    h2o_linklist_unlink(&conn->link);
    free(conn);
    self->conns_open--;
    if (self->closed && self->conns_open == 0) {
        finish_close(self);
    }
}

static void on_rejected_closed(uv_handle_t *handle)
{
    free(handle);
}

static void on_connection(uv_stream_t *listener, int status)
{
    zhttp_server_t *self = listener->data;
    if (status < 0) {
        zlog(ZLOG_WARN, "http_accept_failed", "error", uv_strerror(status), NULL);
        return;
    }
    zhttp_conn_t *conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        zlog(ZLOG_ERROR, "http_accept_failed", "error", "out of memory", NULL);
        return;
    }
    uv_tcp_init(self->loop, &conn->tcp);
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0 || self->closed ||
        self->conns_open >= ZHTTP_CONNS_MAX) {
        uv_close((uv_handle_t *)&conn->tcp, on_rejected_closed);
        return;
    }
    /* SSE and WebSocket messages are already combined per turn; Nagle would
     * only add delay. */
    uv_tcp_nodelay(&conn->tcp, 1);
    conn->server = self;
    h2o_linklist_insert(&self->conns, &conn->link);
    self->conns_open++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&conn->tcp, on_conn_closed);
    h2o_accept(&self->accept_ctx, sock);
    /* A plain-TCP accept creates the HTTP/1 connection synchronously and
     * points sock->data at it; its first member is the h2o_conn_t. */
    conn_map(self, conn, sock->data);
}

/* ---- the per-turn flush and the close deadlines ------------------------ */

void zhttp_server_mark_dirty(zhttp_server_t *self, zhttp_stream_t *stream)
{
    if (!h2o_linklist_is_linked(&stream->dirty_link)) {
        h2o_linklist_insert(&self->dirty, &stream->dirty_link);
    }
}

/* Each stream marked so far is flushed once; streams marked while flushing
 * (by callbacks) wait for the next phase, which bounds the work. */
static void on_flush(zhttp_server_t *self)
{
    h2o_linklist_t batch;
    h2o_linklist_init_anchor(&batch);
    h2o_linklist_insert_list(&batch, &self->dirty);
    while (!h2o_linklist_is_empty(&batch)) {
        zhttp_stream_t *stream = H2O_STRUCT_FROM_MEMBER(zhttp_stream_t, dirty_link, batch.next);
        h2o_linklist_unlink(&stream->dirty_link);
        zhttp_stream_flush(stream);
    }
}

static void on_sweep(uv_timer_t *timer)
{
    zhttp_server_t *self = timer->data;
    uint64_t now_ms = uv_now(self->loop);
    h2o_linklist_t *node = self->closing.next;
    while (node != &self->closing) {
        zhttp_stream_t *stream = H2O_STRUCT_FROM_MEMBER(zhttp_stream_t, closing_link, node);
        node = node->next;
        if (now_ms >= stream->close_deadline_ms) {
            h2o_linklist_unlink(&stream->closing_link);
            zlog(ZLOG_WARN, "http_stream_cut", "reason", "close wait expired", NULL);
            zhttp_stream_force_close(stream);
        }
    }
    if (h2o_linklist_is_empty(&self->closing)) {
        uv_timer_stop(&self->sweep);
    }
}

void zhttp_server_mark_closing(zhttp_server_t *self, zhttp_stream_t *stream)
{
    if (h2o_linklist_is_linked(&stream->closing_link) || self->finished) {
        return;
    }
    stream->close_deadline_ms = uv_now(self->loop) + ZHTTP_STREAM_CLOSE_WAIT_MS;
    h2o_linklist_insert(&self->closing, &stream->closing_link);
    if (!uv_is_active((uv_handle_t *)&self->sweep)) {
        uv_timer_start(&self->sweep, on_sweep, ZHTTP_SWEEP_INTERVAL_MS, ZHTTP_SWEEP_INTERVAL_MS);
    }
}

/* ---- the hang-up sweep ------------------------------------------------------ */

/* h2o reads nothing from an HTTP/1 connection while a request is in
 * progress or a response streams, so a client that leaves is seen only when
 * a write fails. Instead of a watch per request (a dup'd descriptor and
 * several epoll_ctl each, measured at 13-17% of the gateway's CPU), one
 * poll() every ZHTTP_HUP_INTERVAL_MS covers every socket that matters:
 * requests with an on_gone, and SSE streams (an idle one would otherwise
 * hold its slot until its second heartbeat write). WebSockets are read by
 * wslay and need no help. */

static int hup_fd(zhttp_server_t *self, const h2o_conn_t *h2o_conn)
{
    zhttp_conn_t *conn = zhttp_conn_find(self, h2o_conn);
    uv_os_fd_t fd;
    if (conn == NULL || uv_fileno((uv_handle_t *)&conn->tcp, &fd) != 0) {
        return -1;
    }
    return fd;
}

static bool hup_reserve(zhttp_server_t *self, size_t n)
{
    if (n <= self->hup_cap) {
        return true;
    }
    size_t cap = self->hup_cap > 0 ? self->hup_cap : 64;
    while (cap < n) {
        cap *= 2;
    }
    struct pollfd *fds = realloc(self->hup_fds, cap * sizeof *fds);
    if (fds != NULL) {
        self->hup_fds = fds;
    }
    void **items = realloc(self->hup_items, cap * sizeof *items);
    if (items != NULL) {
        self->hup_items = items;
    }
    bool *kinds = realloc(self->hup_is_stream, cap * sizeof *kinds);
    if (kinds != NULL) {
        self->hup_is_stream = kinds;
    }
    if (fds == NULL || items == NULL || kinds == NULL) {
        return false; /* the old arrays stay valid, at their old size */
    }
    self->hup_cap = cap;
    return true;
}

static size_t hup_add(zhttp_server_t *self, size_t n, int fd, void *item, bool is_stream)
{
    if (fd < 0 || !hup_reserve(self, n + 1)) {
        return n;
    }
    self->hup_fds[n] = (struct pollfd){.fd = fd, .events = POLLRDHUP};
    self->hup_items[n] = item;
    self->hup_is_stream[n] = is_stream;
    return n + 1;
}

static void on_hup(uv_timer_t *timer)
{
    zhttp_server_t *self = timer->data;
    size_t n = 0;
    for (h2o_linklist_t *node = self->reqs.next; node != &self->reqs; node = node->next) {
        zhttp_req_t *req = H2O_STRUCT_FROM_MEMBER(zhttp_req_t, link, node);
        if (req->on_gone != NULL) {
            n = hup_add(self, n, hup_fd(self, req->h2o_conn), req, false);
        }
    }
    for (h2o_linklist_t *node = self->streams.next; node != &self->streams; node = node->next) {
        zhttp_stream_t *stream = H2O_STRUCT_FROM_MEMBER(zhttp_stream_t, link, node);
        if (!stream->is_ws && stream->h2o != NULL && !stream->force) {
            n = hup_add(self, n, hup_fd(self, stream->h2o_conn), stream, true);
        }
    }
    if (n == 0) {
        uv_timer_stop(&self->hup);
        return;
    }
    if (poll(self->hup_fds, (nfds_t)n, 0) <= 0) {
        return;
    }
    /* Aborting a request answers only that request and force-closing a
     * stream only marks it, so the other items stay valid meanwhile. */
    for (size_t i = 0; i < n; i++) {
        if ((self->hup_fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR)) == 0) {
            continue;
        }
        if (self->hup_is_stream[i]) {
            zhttp_stream_force_close(self->hup_items[i]);
        } else {
            zhttp_req_abort(self->hup_items[i], 499);
        }
    }
}

void zhttp_server_hup_arm(zhttp_server_t *self)
{
    if (!self->finished && !uv_is_active((uv_handle_t *)&self->hup)) {
        uv_timer_start(&self->hup, on_hup, ZHTTP_HUP_INTERVAL_MS, ZHTTP_HUP_INTERVAL_MS);
    }
}

/* ---- shutdown ------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *handle)
{
    zhttp_server_t *self = handle->data;
    self->handles_open--;
}

/* Every connection is gone: release the handles that run every turn, then
 * h2o's context. libuv runs close callbacks newest first, so h2o's handles
 * (closed after ours) are through theirs when our last one runs; destroy
 * waits for that. */
static void finish_close(zhttp_server_t *self)
{
    if (self->finished) {
        return;
    }
    self->finished = true;
    uv_close((uv_handle_t *)&self->flush_prepare, on_handle_closed);
    uv_close((uv_handle_t *)&self->flush_check, on_handle_closed);
    uv_close((uv_handle_t *)&self->sweep, on_handle_closed);
    uv_close((uv_handle_t *)&self->hup, on_handle_closed);
    if (self->ctx_inited) {
        h2o_context_dispose(&self->ctx);
    }
}

/* Requests still waiting for an answer are answered 503 (their on_gone
 * runs); every socket is shut down, so h2o sees EOF on reads and EPIPE on
 * writes and tears each connection down through its usual paths. */
void zhttp_server_close(zhttp_server_t *self)
{
    if (self == NULL || self->closed) {
        return;
    }
    self->closed = true;
    if (self->listener_inited) {
        uv_close((uv_handle_t *)&self->listener, on_handle_closed);
    }
    while (!h2o_linklist_is_empty(&self->reqs)) {
        zhttp_req_abort(H2O_STRUCT_FROM_MEMBER(zhttp_req_t, link, self->reqs.next), 503);
    }
    for (h2o_linklist_t *node = self->conns.next; node != &self->conns; node = node->next) {
        conn_shutdown(H2O_STRUCT_FROM_MEMBER(zhttp_conn_t, link, node));
    }
    for (h2o_linklist_t *node = self->streams.next; node != &self->streams; node = node->next) {
        zhttp_stream_force_close(H2O_STRUCT_FROM_MEMBER(zhttp_stream_t, link, node));
    }
    if (self->conns_open == 0) {
        finish_close(self);
    }
}

/* Runs the loop until our handles and h2o's are closed: their memory is
 * inside *self. Call it from outside the loop's callbacks. */
void zhttp_server_destroy(zhttp_server_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    zhttp_server_t *self = *self_p;
    zhttp_server_close(self);
    while (!self->finished || self->handles_open > 0) {
        if (uv_run(self->loop, UV_RUN_ONCE) == 0 && (!self->finished || self->handles_open > 0)) {
            zlog(ZLOG_ERROR, "http_destroy_stuck", NULL);
            return; /* nothing left that could progress: leak, do not spin */
        }
    }
    h2o_config_dispose(&self->config);
    for (size_t i = 0; i < self->statics_len; i++) {
        free(self->statics[i].dir);
    }
    free(self->hup_fds);
    free(self->hup_items);
    free(self->hup_is_stream);
    free(self);
    *self_p = NULL;
}
