/* stream: Server-Sent Events and WebSocket streams.
 *
 * Writes never go to h2o directly. They queue on the stream, which is put
 * on the server's dirty list; the per-turn flush (server.c) then makes one
 * h2o_send (SSE) or one h2o_websocket_proceed (WebSocket) per stream. h2o
 * allows one h2o_send in flight per request and reads its buffers until it
 * calls proceed, so an SSE stream keeps two buffers: `inflight`, handed to
 * h2o, and `queued`, collecting what comes meanwhile. */
#include "http_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* ---- buffers ----------------------------------------------------------------- */

static int buf_append(zhttp_buf_t *buf, const void *data, size_t len)
{
    if (buf->len + len > buf->cap) {
        size_t cap = buf->cap > 0 ? buf->cap : 4096;
        while (cap < buf->len + len) {
            cap *= 2;
        }
        char *grown = realloc(buf->data, cap);
        if (grown == NULL) {
            return -1;
        }
        buf->data = grown;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    return 0;
}

static void buf_swap(zhttp_buf_t *a, zhttp_buf_t *b)
{
    zhttp_buf_t tmp = *a;
    *a = *b;
    *b = tmp;
}

/* ---- common ------------------------------------------------------------------- */

static zhttp_stream_t *stream_new(zhttp_server_t *server, const zhttp_stream_cbs_t *cbs)
{
    zhttp_stream_t *stream = calloc(1, sizeof *stream);
    if (stream == NULL) {
        return NULL;
    }
    stream->server = server;
    if (cbs != NULL) {
        stream->cbs = *cbs;
    }
    h2o_linklist_insert(&server->streams, &stream->link);
    server->stats.streams_open++;
    server->stats.streams_total++;
    return stream;
}

static void link_drop(h2o_linklist_t *node)
{
    if (h2o_linklist_is_linked(node)) {
        h2o_linklist_unlink(node);
    }
}

/* on_close runs once; the stream refuses writes from then on (the callback
 * may still try). */
static void stream_report_close(zhttp_stream_t *stream)
{
    if (stream->closed) {
        return;
    }
    stream->closed = true;
    stream->closing = true;
    if (stream->cbs.on_close != NULL) {
        stream->cbs.on_close(stream->cbs.ctx, stream);
    }
}

static void stream_free(zhttp_stream_t *stream)
{
    link_drop(&stream->link);
    link_drop(&stream->dirty_link);
    link_drop(&stream->closing_link);
    stream->server->stats.streams_open--;
    free(stream->queued.data);
    free(stream->inflight.data);
    free(stream);
}

void zhttp_stream_force_close(zhttp_stream_t *stream)
{
    stream->force = true;
    stream->closing = true;
    zhttp_server_mark_dirty(stream->server, stream);
}

/* ---- SSE ---------------------------------------------------------------------- */

static void on_sse_proceed(h2o_generator_t *gen, h2o_req_t *h2o)
{
    (void)h2o;
    zhttp_stream_t *stream = (zhttp_stream_t *)gen;
    stream->sending = false;
    stream->inflight.len = 0;
    /* A burst grew the buffer; an idle stream should not keep it (1000
     * streams would hold a burst's worth each). */
    if (stream->inflight.cap > ZHTTP_STREAM_BUF_KEEP_BYTES) {
        free(stream->inflight.data);
        stream->inflight = (zhttp_buf_t){0};
    }
    if (stream->queued.len > 0 || stream->closing) {
        zhttp_server_mark_dirty(stream->server, stream);
    }
}

/* The response is being torn down (client gone); the request's dispose
 * follows at once and reports the close. h2o takes no more sends. */
static void on_sse_stop(h2o_generator_t *gen, h2o_req_t *h2o)
{
    (void)h2o;
    zhttp_stream_t *stream = (zhttp_stream_t *)gen;
    stream->final_sent = true;
}

void zhttp_stream_on_req_over(zhttp_stream_t *stream)
{
    stream->h2o = NULL;
    stream_report_close(stream);
    stream_free(stream);
}

/* Everything queued goes out in one h2o_send; a closing stream's last send
 * is final. A forced close first shuts the socket down, so that a write
 * stuck behind a client that does not read fails now. */
static void sse_flush(zhttp_stream_t *stream)
{
    if (stream->force) {
        zhttp_conn_cut(stream->server, stream->h2o_conn);
    }
    if (stream->h2o == NULL || stream->sending || stream->final_sent) {
        return;
    }
    bool final = stream->closing;
    if (!final && stream->queued.len == 0 && stream->headers_sent) {
        return;
    }
    buf_swap(&stream->queued, &stream->inflight);
    h2o_iovec_t iov = h2o_iovec_init(stream->inflight.data, stream->inflight.len);
    stream->headers_sent = true;
    stream->sending = !final;
    stream->final_sent = final;
    stream->server->stats.bytes_streamed_total += iov.len;
    h2o_send(stream->h2o, &iov, iov.len > 0 ? 1 : 0,
             final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

zhttp_stream_t *zhttp_stream_start(zhttp_req_t *req, const char *content_type,
                                   const zhttp_stream_cbs_t *cbs)
{
    if (req == NULL || req->answered) {
        return NULL;
    }
    zhttp_stream_t *stream = stream_new(req->server, cbs);
    if (stream == NULL) {
        zhttp_respond(req, 503, NULL, NULL, 0);
        return NULL;
    }
    zhttp_req_take(req);
    h2o_req_t *h2o = req->h2o;
    h2o->res.status = 200;
    h2o->res.reason = "OK";
    zhttp_req_set_content_type(h2o, content_type);
    stream->gen.proceed = on_sse_proceed;
    stream->gen.stop = on_sse_stop;
    stream->h2o = h2o;
    stream->h2o_conn = req->h2o_conn;
    zhttp_conn_limit_sndbuf(stream->server, stream->h2o_conn, ZHTTP_STREAM_SNDBUF_BYTES);
    req->stream = stream;
    h2o_start_response(h2o, &stream->gen);
    zhttp_server_hup_arm(stream->server);
    /* The headers go out with whatever is written in this turn. */
    zhttp_server_mark_dirty(stream->server, stream);
    return stream;
}

/* ---- WebSocket ---------------------------------------------------------------- */

/* Only from the top of the loop or from h2o's close report (after which
 * h2o touches the connection no more). */
static void ws_finish(zhttp_stream_t *stream)
{
    h2o_websocket_close(stream->ws);
    stream->ws = NULL;
    stream_report_close(stream);
    stream_free(stream);
}

/* h2o reports complete messages, and NULL when the connection is over
 * (peer gone, close handshake done, or the 101 could not be written).
 * wslay has already answered pings and a client's close frame. */
static void on_ws_msg(h2o_websocket_conn_t *ws, const struct wslay_event_on_msg_recv_arg *arg)
{
    zhttp_stream_t *stream = ws->data;
    if (arg == NULL) {
        ws_finish(stream);
        return;
    }
    bool text = arg->opcode == WSLAY_TEXT_FRAME;
    if ((text || arg->opcode == WSLAY_BINARY_FRAME) && !stream->closed &&
        stream->cbs.on_message != NULL) {
        stream->cbs.on_message(stream->cbs.ctx, stream, text, arg->msg, arg->msg_length);
    }
}

/* The socket is NULL until h2o has written the 101; until then messages
 * stay queued in wslay and h2o's own proceed after the 101 sends them. */
static void ws_flush(zhttp_stream_t *stream)
{
    h2o_websocket_conn_t *ws = stream->ws;
    if (stream->force) {
        if (ws->sock != NULL) {
            ws_finish(stream);
        } else {
            zhttp_conn_cut(stream->server, stream->h2o_conn);
        }
        return;
    }
    if (ws->sock != NULL) {
        h2o_websocket_proceed(ws); /* may report the close and free stream */
    }
}

zhttp_stream_t *zhttp_ws_upgrade(zhttp_req_t *req, const zhttp_stream_cbs_t *cbs)
{
    if (req == NULL || req->answered) {
        return NULL;
    }
    const char *client_key = NULL;
    if (h2o_is_websocket_handshake(req->h2o, &client_key) != 0 || client_key == NULL ||
        req->h2o->version >= 0x200) {
        static const char body[] = "{\"error\":{\"status\":\"invalid\",\"message\":\"not a "
                                   "WebSocket handshake\",\"field\":\"upgrade\"}}";
        zhttp_respond(req, 400, "application/json", body, sizeof body - 1);
        return NULL;
    }
    zhttp_stream_t *stream = stream_new(req->server, cbs);
    if (stream == NULL) {
        zhttp_respond(req, 503, NULL, NULL, 0);
        return NULL;
    }
    zhttp_req_take(req);
    req->upgraded = true;
    stream->is_ws = true;
    stream->h2o_conn = req->h2o_conn;
    zhttp_conn_limit_sndbuf(stream->server, stream->h2o_conn, ZHTTP_STREAM_SNDBUF_BYTES);
    stream->ws = h2o_upgrade_to_websocket(req->h2o, client_key, stream, on_ws_msg);
    wslay_event_config_set_max_recv_msg_length(stream->ws->ws_ctx, ZHTTP_WS_MESSAGE_BYTES_MAX);
    req->server->stats.requests_total++; /* the 101 bypasses the filters */
    return stream;
}

/* ---- both kinds ----------------------------------------------------------------- */

void zhttp_stream_flush(zhttp_stream_t *stream)
{
    if (stream->is_ws) {
        ws_flush(stream);
    } else {
        sse_flush(stream);
    }
}

size_t zhttp_stream_pending(const zhttp_stream_t *stream)
{
    if (stream == NULL) {
        return 0;
    }
    if (stream->is_ws) {
        return stream->ws != NULL ? wslay_event_get_queued_msg_length(stream->ws->ws_ctx) : 0;
    }
    return stream->queued.len + stream->inflight.len;
}

int zhttp_stream_write(zhttp_stream_t *stream, const void *data, size_t len)
{
    if (stream == NULL || stream->closing || (data == NULL && len > 0)) {
        return -1;
    }
    if (zhttp_stream_pending(stream) + len > ZHTTP_STREAM_QUEUE_BYTES_MAX) {
        zlog(ZLOG_WARN, "http_stream_cut", "reason", "queue full", NULL);
        zhttp_stream_force_close(stream);
        return -1;
    }
    int rc;
    if (stream->is_ws) {
        struct wslay_event_msg msg = {
            .opcode = WSLAY_TEXT_FRAME,
            .msg = (const uint8_t *)(data != NULL ? data : ""),
            .msg_length = len,
        };
        rc = wslay_event_queue_msg(stream->ws->ws_ctx, &msg); /* copies */
        stream->server->stats.bytes_streamed_total += rc == 0 ? len : 0;
    } else {
        rc = len > 0 ? buf_append(&stream->queued, data, len) : 0;
    }
    if (rc != 0) {
        zhttp_stream_force_close(stream);
        return -1;
    }
    zhttp_server_mark_dirty(stream->server, stream);
    return 0;
}

void zhttp_stream_discard(zhttp_stream_t *stream)
{
    if (stream != NULL && !stream->is_ws) {
        stream->queued.len = 0;
    }
}

static void ws_queue_close(zhttp_stream_t *stream, int ws_code, const char *reason)
{
    size_t reason_len = reason != NULL ? strlen(reason) : 0;
    if (reason_len > ZHTTP_WS_REASON_BYTES_MAX) {
        reason_len = ZHTTP_WS_REASON_BYTES_MAX;
    }
    wslay_event_context_ptr ctx = stream->ws->ws_ctx;
    /* wslay refuses codes a peer may not send (e.g. 1005, 1006): fall back
     * to a plain normal closure. */
    if (ws_code <= 0 || ws_code > 0xffff ||
        wslay_event_queue_close(ctx, (uint16_t)ws_code, (const uint8_t *)reason, reason_len) != 0) {
        wslay_event_queue_close(ctx, 1000, NULL, 0);
    }
}

void zhttp_stream_close(zhttp_stream_t *stream, int ws_code, const char *reason)
{
    if (stream == NULL || stream->closing) {
        return;
    }
    stream->closing = true;
    if (stream->is_ws) {
        ws_queue_close(stream, ws_code, reason);
    }
    zhttp_server_mark_closing(stream->server, stream);
    zhttp_server_mark_dirty(stream->server, stream);
}
