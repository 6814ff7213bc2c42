/* httpc: a minimal HTTP/1.1 client over one keep-alive TCP connection, for
 * the hotline simulator (zhilictl hotline) and bench/petitions. Plain http
 * only; responses must carry Content-Length (the gateway's do). One request
 * in flight per connection; many connections make concurrency. */
#ifndef ZHILI_ZHILICTL_HTTPC_H
#define ZHILI_ZHILICTL_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#define ZHC_HOST_BYTES_MAX 255
#define ZHC_HEAD_BYTES_MAX 16384      /* a response's status line and headers */
#define ZHC_BODY_BYTES_MAX (8u << 20) /* a response body */
#define ZHC_REQUEST_HEAD_BYTES_MAX 4096

typedef struct zhc zhc_t;

/* "http://host:port" (port default 80; a path is ignored) -> host, port.
 * 0 or -1. */
int zhc_url_parse(const char *url, char host[ZHC_HOST_BYTES_MAX + 1], int *port);

/* Connect (blocking, TCP_NODELAY). NULL with err set on failure. The caller
 * owns the connection. */
zhc_t *zhc_open(const char *host, int port, char *err, size_t err_cap);
void zhc_close(zhc_t **self_p); /* idempotent; nulls the pointer */
int zhc_fd(const zhc_t *self);

/* Write one request (blocking until written). headers: extra lines, each
 * ending in "\r\n" (may be NULL). 0, or -1 when the connection is broken or
 * a response is still awaited. */
int zhc_send(zhc_t *self, const char *method, const char *path, const char *headers,
             const char *content_type, const void *body, size_t body_len);

/* Read what has arrived (non-blocking): 1 when the response is complete, 0
 * when more is needed, -1 when the connection broke or the response is
 * malformed or too large. */
int zhc_read(zhc_t *self);

/* Wait up to timeout_ms for the whole response: 1, 0 on timeout, -1. */
int zhc_wait(zhc_t *self, int timeout_ms);

/* The complete response (valid until the next zhc_send). */
int zhc_status(const zhc_t *self);
const char *zhc_body(const zhc_t *self, size_t *len);

/* Is a response awaited? */
bool zhc_busy(const zhc_t *self);

#endif
