/* req: a request from dispatch to its answer, and how we learn that it died.
 *
 * The zhttp_req_t lives in the h2o request's pool; the pool's dispose
 * callback is our "request over" signal. h2o 2.2 reads nothing from an
 * HTTP/1 connection while a request is in progress, so a client that leaves
 * before an asynchronous answer would go unnoticed until we write; the
 * server's hang-up sweep (server.c) therefore polls the sockets of requests
 * with an on_gone callback for the peer's FIN or RST. */
#include "http_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- life of a request --------------------------------------------------- */

/* The pool is being cleared: the request is over, answered or not. */
static void on_req_dispose(void *p)
{
    zhttp_req_t *req = p;
    if (h2o_linklist_is_linked(&req->link)) {
        h2o_linklist_unlink(&req->link);
    }
    if (!req->answered) {
        req->answered = true;
        if (req->on_gone != NULL) {
            req->on_gone(req->gone_ctx);
        }
    }
    if (req->stream != NULL) {
        zhttp_stream_on_req_over(req->stream);
    }
    if (req->upgraded) {
        /* h2o frees its HTTP/1 connection after the 101; the socket now
         * belongs to the WebSocket and its record must not be found by a
         * new connection that reuses the address. */
        zhttp_conn_unmap(req->server, req->h2o_conn);
    }
}

int zhttp_req_dispatch(zhttp_handler_t *handler, h2o_req_t *h2o)
{
    zhttp_server_t *server = handler->server;
    zhttp_req_t *req = h2o_mem_alloc_shared(&h2o->pool, sizeof *req, on_req_dispose);
    memset(req, 0, sizeof *req);
    req->h2o = h2o;
    req->server = server;
    req->h2o_conn = h2o->conn;
    h2o_linklist_insert(&server->reqs, &req->link);
    if (server->closed) {
        zhttp_req_abort(req, 503);
        return 0;
    }
    handler->on_req(handler->ctx, req);
    return 0;
}

bool zhttp_req_take(zhttp_req_t *req)
{
    if (req == NULL || req->answered) {
        return false;
    }
    req->answered = true;
    if (h2o_linklist_is_linked(&req->link)) {
        h2o_linklist_unlink(&req->link);
    }
    return true;
}

void zhttp_req_on_gone(zhttp_req_t *req, void (*on_gone)(void *ctx), void *ctx)
{
    if (req == NULL || req->answered) {
        return;
    }
    req->on_gone = on_gone;
    req->gone_ctx = ctx;
    zhttp_server_hup_arm(req->server);
}

/* The caller's on_gone runs first (it must not touch the req afterwards);
 * then h2o gets an answer, because only a finished response or a failed
 * write makes it release the request. The connection is not reused. */
void zhttp_req_abort(zhttp_req_t *req, int status)
{
    void (*on_gone)(void *) = req->on_gone;
    if (!zhttp_req_take(req)) {
        return;
    }
    if (on_gone != NULL) {
        on_gone(req->gone_ctx);
    }
    h2o_req_t *h2o = req->h2o;
    h2o->http1_is_persistent = 0;
    h2o->res.status = status;
    h2o->res.reason = zhttp_status_reason(status);
    h2o->res.content_length = 0;
    h2o_send_inline(h2o, H2O_STRLIT(""));
}

/* ---- reading the request --------------------------------------------------- */

static zhttp_str_t str_of(const char *data, size_t len)
{
    return (zhttp_str_t){.data = data, .len = len};
}

zhttp_str_t zhttp_req_method(const zhttp_req_t *req)
{
    return str_of(req->h2o->method.base, req->h2o->method.len);
}

zhttp_str_t zhttp_req_path(const zhttp_req_t *req)
{
    const h2o_req_t *h2o = req->h2o;
    size_t len = h2o->query_at != SIZE_MAX ? h2o->query_at : h2o->path.len;
    return str_of(h2o->path.base, len);
}

zhttp_str_t zhttp_req_query(const zhttp_req_t *req)
{
    const h2o_req_t *h2o = req->h2o;
    if (h2o->query_at == SIZE_MAX) {
        return str_of("", 0);
    }
    return str_of(h2o->path.base + h2o->query_at + 1, h2o->path.len - h2o->query_at - 1);
}

zhttp_str_t zhttp_req_body(const zhttp_req_t *req)
{
    const h2o_req_t *h2o = req->h2o;
    if (h2o->entity.base == NULL) {
        return str_of("", 0);
    }
    return str_of(h2o->entity.base, h2o->entity.len);
}

zhttp_str_t zhttp_req_header(const zhttp_req_t *req, const char *name)
{
    const h2o_req_t *h2o = req->h2o;
    size_t name_len = strlen(name);
    /* h2o's HTTP/1 parser keeps Host and Upgrade out of the header list. */
    if (name_len == 4 && strncasecmp(name, "host", 4) == 0) {
        return str_of(h2o->input.authority.base, h2o->input.authority.len);
    }
    if (name_len == 7 && strncasecmp(name, "upgrade", 7) == 0) {
        return str_of(h2o->upgrade.base, h2o->upgrade.len);
    }
    for (size_t i = 0; i < h2o->headers.size; i++) {
        const h2o_header_t *header = &h2o->headers.entries[i];
        if (header->name->len == name_len && strncasecmp(header->name->base, name, name_len) == 0) {
            return str_of(header->value.base, header->value.len);
        }
    }
    return str_of(NULL, 0);
}

void zhttp_req_peer(const zhttp_req_t *req, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    h2o_conn_t *conn = req->h2o->conn;
    socklen_t len = conn->callbacks->get_peername != NULL
                        ? conn->callbacks->get_peername(conn, (struct sockaddr *)&ss)
                        : 0;
    const void *addr = NULL;
    if (len != 0 && ss.ss_family == AF_INET) {
        addr = &((struct sockaddr_in *)&ss)->sin_addr;
    } else if (len != 0 && ss.ss_family == AF_INET6) {
        addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
    }
    if (cap == 0 || addr == NULL || inet_ntop(ss.ss_family, addr, out, (socklen_t)cap) == NULL) {
        if (cap > 0) {
            out[0] = '\0';
        }
    }
}

bool zhttp_req_is_websocket(const zhttp_req_t *req)
{
    const h2o_req_t *h2o = req->h2o;
    return h2o_memis(h2o->method.base, h2o->method.len, H2O_STRLIT("GET")) &&
           h2o->upgrade.base != NULL &&
           h2o_lcstris(h2o->upgrade.base, h2o->upgrade.len, H2O_STRLIT("websocket"));
}

/* ---- answering --------------------------------------------------------------- */

/* A header name or value with CR, LF or NUL would split the response. */
static bool header_text_ok(const char *s, size_t len, size_t max)
{
    return len > 0 && len <= max && strcspn(s, "\r\n") == len;
}

void zhttp_req_add_header(zhttp_req_t *req, const char *name, const char *value)
{
    if (req == NULL || req->answered || name == NULL || value == NULL ||
        req->headers_added >= ZHTTP_HEADERS_EXTRA_MAX) {
        return;
    }
    size_t name_len = strlen(name), value_len = strlen(value);
    if (!header_text_ok(name, name_len, ZHTTP_HEADER_NAME_BYTES_MAX) ||
        (value_len > 0 && !header_text_ok(value, value_len, ZHTTP_HEADER_VALUE_BYTES_MAX))) {
        return;
    }
    h2o_req_t *h2o = req->h2o;
    /* h2o looks tokens up (and HTTP/2 would send names) in lower case. */
    h2o_iovec_t lname = h2o_strdup(&h2o->pool, name, name_len);
    h2o_strtolower(lname.base, lname.len);
    h2o_iovec_t dvalue = h2o_strdup(&h2o->pool, value, value_len);
    h2o_add_header_by_str(&h2o->pool, &h2o->res.headers, lname.base, lname.len, 1, NULL,
                          dvalue.base, dvalue.len);
    req->headers_added++;
}

void zhttp_req_set_content_type(h2o_req_t *h2o, const char *content_type)
{
    if (content_type == NULL) {
        return;
    }
    size_t len = strlen(content_type);
    if (!header_text_ok(content_type, len, ZHTTP_HEADER_VALUE_BYTES_MAX)) {
        return;
    }
    h2o_iovec_t value = h2o_strdup(&h2o->pool, content_type, len);
    h2o_add_header(&h2o->pool, &h2o->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, value.base,
                   value.len);
}

void zhttp_respond(zhttp_req_t *req, int status, const char *content_type, const void *body,
                   size_t len)
{
    if (!zhttp_req_take(req)) {
        return; /* answered already, or gone: at most one answer */
    }
    h2o_req_t *h2o = req->h2o;
    if (status < 200 || status > 599) {
        status = 500; /* a programmer error, answered rather than crashed */
    }
    h2o->res.status = status;
    h2o->res.reason = zhttp_status_reason(status);
    zhttp_req_set_content_type(h2o, content_type);
    /* h2o_send_inline copies the body into the request's pool, but leaves
     * the length unset (the response would go out chunked). */
    len = body != NULL ? len : 0;
    h2o->res.content_length = len;
    h2o_send_inline(h2o, body != NULL ? body : "", len);
}

static const struct {
    int status;
    const char *reason;
} REASONS[] = {
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {409, "Conflict"},
    {413, "Payload Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Entity"},
    {429, "Too Many Requests"},
    {499, "Client Closed Request"},
    {500, "Internal Server Error"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

/* HTTP/1 needs a reason phrase; clients ignore its wording. */
const char *zhttp_status_reason(int status)
{
    for (size_t i = 0; i < sizeof REASONS / sizeof REASONS[0]; i++) {
        if (REASONS[i].status == status) {
            return REASONS[i].reason;
        }
    }
    return status < 400 ? "OK" : "Error";
}
