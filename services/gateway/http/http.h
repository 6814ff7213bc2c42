/* http: the gateway's only contact with h2o (HTTP/1.1 on libuv). Everything
 * above this layer sees plain requests, responses and streams; nothing above
 * it includes h2o.h.
 *
 * Lifetimes. A zhttp_req_t is valid from the handler call until it is answered
 * (zhttp_respond*, zhttp_stream_start, zhttp_ws_upgrade) or until the client
 * goes away, whichever comes first. A handler that answers later (after a
 * broker round trip) registers on_gone with zhttp_req_on_gone(): it is called
 * if the request dies unanswered, after which the req must not be touched.
 * Streams live until zhttp_stream_close() or the peer leaves (on_close). */
#ifndef ZHILI_GATEWAY_HTTP_H
#define ZHILI_GATEWAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define ZHTTP_BODY_BYTES_MAX (1u << 20)   /* larger request bodies get 413 */
#define ZHTTP_HANDLERS_MAX 64
#define ZHTTP_HEADERS_EXTRA_MAX 8        /* response headers added per request */
/* A stream holding more than this for a client that does not read is cut
 * (zhttp_stream_write returns -1, on_close follows). */
#define ZHTTP_STREAM_QUEUE_BYTES_MAX (8u << 20)
/* A closing stream not done within this long (queued bytes unwritten, or
 * no WebSocket close frame back) is cut. */
#define ZHTTP_STREAM_CLOSE_WAIT_MS 5000
/* Larger WebSocket messages from a client are refused with close 1009. */
#define ZHTTP_WS_MESSAGE_BYTES_MAX ZHTTP_BODY_BYTES_MAX

typedef struct zhttp_server zhttp_server_t;
typedef struct zhttp_req zhttp_req_t;
typedef struct zhttp_stream zhttp_stream_t;

/* A handler for every request whose path starts with its prefix. It answers
 * now or later; it never blocks. */
typedef void (*zhttp_handler_fn)(void *ctx, zhttp_req_t *req);

/* Create a server on `loop` listening on "host:port" or "[v6]:port" (port 0
 * picks one; see zhttp_server_port). NULL with errbuf set on failure (e.g.
 * address in use). Sets SIGPIPE to SIG_IGN if it is still SIG_DFL: a client
 * resetting its connection must not kill the process. */
zhttp_server_t *zhttp_server_new(uv_loop_t *loop, const char *listen, char *errbuf,
                                 size_t errbuf_len);

/* Register handlers in order of precedence; the first matching prefix wins.
 * A prefix matches whole path segments: "/echo" serves /echo and /echo/x,
 * not /echoes. Static files (`dir` served under `prefix`, index.html for
 * directories) come after every handler. Call before zhttp_server_start.
 * 0 or a negative ZE_ code: ZE_INVALID (bad prefix, too many), ZE_CONFLICT
 * (after start). */
int zhttp_server_handle(zhttp_server_t *self, const char *prefix, zhttp_handler_fn on_req,
                        void *ctx);
int zhttp_server_static(zhttp_server_t *self, const char *prefix, const char *dir);

/* Start accepting. 0 or a negative libuv code. */
int zhttp_server_start(zhttp_server_t *self);
int zhttp_server_port(const zhttp_server_t *self);

/* Stop accepting and close every connection and stream (on_close is called
 * for each stream). Safe to call once; the loop then runs the closes.
 * Requests still unanswered are answered 503 and their on_gone runs. */
void zhttp_server_close(zhttp_server_t *self);
/* Close (if not yet) and free. It runs the loop until the server's handles
 * are closed, so call it outside the loop's callbacks, e.g. after uv_run
 * returns. Idempotent; nulls *self_p. */
void zhttp_server_destroy(zhttp_server_t **self_p);

/* ---- requests (borrowed views, valid while the req is) ------------------ */

typedef struct {
    const char *data;
    size_t len;
} zhttp_str_t;

zhttp_str_t zhttp_req_method(const zhttp_req_t *req);
zhttp_str_t zhttp_req_path(const zhttp_req_t *req);   /* without the query, not decoded */
zhttp_str_t zhttp_req_query(const zhttp_req_t *req);  /* after '?', "" when none */
zhttp_str_t zhttp_req_body(const zhttp_req_t *req);
/* The first header of that name (case-insensitive; Host works too); .data
 * NULL when absent. */
zhttp_str_t zhttp_req_header(const zhttp_req_t *req, const char *name);
/* A body over ZHTTP_BODY_BYTES_MAX never reaches a handler: the layer
 * answers 413 with a JSON error body itself. */

/* The client's address as text ("127.0.0.1", "::1"), without the port, for
 * per-client limits; "" when unknown. cap >= 46 (INET6_ADDRSTRLEN) holds
 * any address. */
void zhttp_req_peer(const zhttp_req_t *req, char *out, size_t cap);

/* Called once if the request dies before it is answered. Registering it also
 * watches the connection, so a client that leaves (closes, resets, or shuts
 * down its sending side) is noticed within ZHTTP_HUP_INTERVAL_MS (200 ms, one
 * poll() over every watched socket); without it h2o would notice only when
 * the answer is written. SSE streams are watched the same way. */
void zhttp_req_on_gone(zhttp_req_t *req, void (*on_gone)(void *ctx), void *ctx);

/* ---- responses ---------------------------------------------------------- */

/* Add a response header (copied) before answering, e.g. Set-Cookie. */
void zhttp_req_add_header(zhttp_req_t *req, const char *name, const char *value);

/* Answer with a complete body (copied). Ends the req's life. */
void zhttp_respond(zhttp_req_t *req, int status, const char *content_type, const void *body,
                   size_t len);

/* ---- streams: Server-Sent Events and WebSocket --------------------------- */

typedef struct {
    void *ctx;
    /* The peer left or the stream was closed; called once, after which the
     * stream must not be touched. */
    void (*on_close)(void *ctx, zhttp_stream_t *stream);
    /* WebSocket only: a complete text or binary message from the client. */
    void (*on_message)(void *ctx, zhttp_stream_t *stream, bool text, const void *data,
                       size_t len);
} zhttp_stream_cbs_t;

/* Start a streaming 200 response (no Content-Length, no idle timeout) with
 * the given content type and headers added so far. NULL when the request
 * is gone. */
zhttp_stream_t *zhttp_stream_start(zhttp_req_t *req, const char *content_type,
                                   const zhttp_stream_cbs_t *cbs);

/* True when the request asks for a WebSocket upgrade. */
bool zhttp_req_is_websocket(const zhttp_req_t *req);

/* Answer 101 and return the WebSocket stream; NULL when not a valid
 * handshake (the layer has answered 400 then). Ping and pong are handled
 * by the layer; a client close is answered and reported by on_close. */
zhttp_stream_t *zhttp_ws_upgrade(zhttp_req_t *req, const zhttp_stream_cbs_t *cbs);

/* Queue bytes (copied). On an SSE stream they are written as they are; on a
 * WebSocket each call is one text message. Everything queued while a write
 * is in flight goes out in the next single write (one write per stream per
 * loop turn at most). 0, or -1 when the stream is closing. */
int zhttp_stream_write(zhttp_stream_t *stream, const void *data, size_t len);

/* Drop what is queued and not yet handed to h2o (SSE; whole writes only, the
 * write in flight stays): used before a final message to a client too slow
 * to read the backlog, so that the final message is next in line. A
 * WebSocket's queue belongs to wslay and is kept. */
void zhttp_stream_discard(zhttp_stream_t *stream);

/* Bytes queued and not yet known to be written to the socket (including
 * those of the write in flight). */
size_t zhttp_stream_pending(const zhttp_stream_t *stream);

/* Close after what is queued has been written (WebSocket: with close code
 * and reason, truncated to 123 bytes; an invalid code becomes 1000). on_close
 * follows, at the latest ZHTTP_STREAM_CLOSE_WAIT_MS later. */
void zhttp_stream_close(zhttp_stream_t *stream, int ws_code, const char *reason);

/* Counters for /metrics. requests_total counts responses started (h2o's
 * own 404 and 413 included, its 400 for unparsable requests not) and
 * WebSocket upgrades. */
typedef struct {
    uint64_t requests_total, responses_4xx, responses_5xx, streams_open, streams_total,
        bytes_streamed_total;
} zhttp_stats_t;
void zhttp_server_stats(const zhttp_server_t *self, zhttp_stats_t *out);

#endif
