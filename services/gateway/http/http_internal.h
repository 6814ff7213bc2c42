/* http_internal: the structs behind http.h, shared by server.c (listener,
 * connections, routing, the per-turn flush), req.c (requests and answers)
 * and stream.c (SSE and WebSocket). Only files in this folder include it;
 * it is the one place besides them that sees h2o. */
#ifndef ZHILI_GATEWAY_HTTP_INTERNAL_H
#define ZHILI_GATEWAY_HTTP_INTERNAL_H

#include <h2o.h>
#include <h2o/websocket.h>
#include <poll.h>

#include "http.h"
#include "http_limits.h"

/* One accepted TCP connection. h2o owns the socket built on `tcp`; we keep
 * the record so that the server can cut connections h2o would never notice
 * are dead (it reads nothing while a request is in progress). */
typedef struct zhttp_conn {
    uv_tcp_t tcp; /* first: h2o's close callback hands back this handle */
    zhttp_server_t *server;
    h2o_conn_t *h2o_conn; /* key in the bucket map; NULL once unmapped */
    struct zhttp_conn *bucket_next;
    h2o_linklist_t link; /* server->conns */
} zhttp_conn_t;

typedef struct {
    h2o_handler_t super; /* first: h2o calls on_req with this */
    zhttp_server_t *server;
    zhttp_handler_fn on_req;
    void *ctx;
} zhttp_handler_t;

typedef struct {
    h2o_filter_t super;
    zhttp_server_t *server;
    bool rewrite_413; /* only on the fallback path, where h2o's own 413 goes */
} zhttp_filter_t;

typedef struct {
    char prefix[ZHTTP_PREFIX_BYTES_MAX];
    zhttp_handler_fn on_req;
    void *ctx;
    char *dir; /* static entries only */
} zhttp_route_t;

struct zhttp_server {
    uv_loop_t *loop;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    /* The per-turn flush runs in both phases around poll: prepare catches
     * writes made by timers, check those made by I/O callbacks. */
    uv_prepare_t flush_prepare;
    uv_check_t flush_check;
    uv_timer_t sweep; /* deadlines of closing streams */
    /* The hang-up sweep: one poll() over the sockets of unanswered requests
     * with an on_gone and of SSE streams, for clients that left. */
    uv_timer_t hup;
    struct pollfd *hup_fds;
    void **hup_items; /* zhttp_req_t or zhttp_stream_t, same index */
    bool *hup_is_stream;
    size_t hup_cap;
    int port;
    zhttp_route_t handlers[ZHTTP_HANDLERS_MAX];
    size_t handlers_len;
    zhttp_route_t statics[ZHTTP_STATICS_MAX];
    size_t statics_len;
    h2o_linklist_t conns;   /* zhttp_conn_t */
    h2o_linklist_t reqs;    /* unanswered zhttp_req_t */
    h2o_linklist_t streams; /* every live zhttp_stream_t */
    h2o_linklist_t dirty;   /* streams with something to flush this turn */
    h2o_linklist_t closing; /* streams waiting for their close deadline */
    zhttp_conn_t *buckets[ZHTTP_CONN_BUCKETS];
    size_t conns_open;
    int handles_open; /* our uv handles not yet through their close callback */
    bool listener_inited, started, ctx_inited, closed, finished;
    zhttp_stats_t stats;
};

/* Lives in the h2o request's pool; its dispose callback tells us the
 * request is over (answered and written, or the connection died). */
struct zhttp_req {
    h2o_req_t *h2o;
    zhttp_server_t *server;
    h2o_conn_t *h2o_conn;
    h2o_linklist_t link; /* server->reqs while unanswered */
    void (*on_gone)(void *ctx);
    void *gone_ctx;
    zhttp_stream_t *stream; /* an SSE stream answering this request */
    unsigned headers_added;
    bool answered, upgraded;
};

typedef struct {
    char *data;
    size_t len, cap;
} zhttp_buf_t;

struct zhttp_stream {
    h2o_generator_t gen; /* first: h2o's proceed and stop get &gen */
    zhttp_server_t *server;
    zhttp_stream_cbs_t cbs;
    h2o_conn_t *h2o_conn;     /* for the connection record, while mapped */
    h2o_req_t *h2o;           /* SSE: the request; NULL once it is over */
    h2o_websocket_conn_t *ws; /* WebSocket: NULL once closed */
    /* SSE: bytes written by the caller since the last h2o_send, and the
     * bytes of that send, which must stay put until h2o calls proceed. */
    zhttp_buf_t queued, inflight;
    h2o_linklist_t link;         /* server->streams */
    h2o_linklist_t dirty_link;   /* server->dirty */
    h2o_linklist_t closing_link; /* server->closing */
    uint64_t close_deadline_ms;
    bool is_ws, headers_sent, sending, final_sent, closing, force, closed;
};

/* server.c */
zhttp_conn_t *zhttp_conn_find(zhttp_server_t *self, const h2o_conn_t *h2o_conn);
void zhttp_conn_unmap(zhttp_server_t *self, const h2o_conn_t *h2o_conn);
/* Cut a connection at the TCP level: h2o's next read sees EOF and its
 * next write fails, after which it tears the connection down itself. */
void zhttp_conn_cut(zhttp_server_t *self, const h2o_conn_t *h2o_conn);
/* Bound the kernel's send buffer of a streaming connection, so that what a
 * slow client holds up is mostly in our queue, where it is counted. */
void zhttp_conn_limit_sndbuf(zhttp_server_t *self, const h2o_conn_t *h2o_conn, int bytes);
void zhttp_server_mark_dirty(zhttp_server_t *self, zhttp_stream_t *stream);
void zhttp_server_mark_closing(zhttp_server_t *self, zhttp_stream_t *stream);
/* Start the hang-up sweep if it is not running (a request got an on_gone,
 * an SSE stream started); it stops itself when nothing is left to watch. */
void zhttp_server_hup_arm(zhttp_server_t *self);

/* req.c */
int zhttp_req_dispatch(zhttp_handler_t *handler, h2o_req_t *h2o);
/* Claim the request for an answer: false when it was answered already. */
bool zhttp_req_take(zhttp_req_t *req);
/* Answer an unanswered request whose caller will never answer it. */
void zhttp_req_abort(zhttp_req_t *req, int status);
const char *zhttp_status_reason(int status);
/* Add a Content-Type (copied into the request's pool); NULL adds none. */
void zhttp_req_set_content_type(h2o_req_t *h2o, const char *content_type);

/* stream.c */
void zhttp_stream_flush(zhttp_stream_t *stream);
void zhttp_stream_on_req_over(zhttp_stream_t *stream);
/* Close now, without waiting for queued bytes (async: at the next flush). */
void zhttp_stream_force_close(zhttp_stream_t *stream);

#endif
