/* http_limits: the bounds of the HTTP layer that callers need not know
 * (the others are in http.h). Named http_limits.h, not limits.h, so that this
 * folder on an include path never shadows <limits.h>. */
#ifndef ZHILI_GATEWAY_HTTP_LIMITS_H
#define ZHILI_GATEWAY_HTTP_LIMITS_H

#include "http.h"

/* Open client connections; more are accepted and closed at once, so that
 * a flood costs one accept each instead of file descriptors and memory. */
#define ZHTTP_CONNS_MAX 16384
/* Buckets of the map from h2o connection to our connection record. */
#define ZHTTP_CONN_BUCKETS 4096
#define ZHTTP_LISTEN_BACKLOG 1024
#define ZHTTP_STATICS_MAX 8
#define ZHTTP_PREFIX_BYTES_MAX 256
#define ZHTTP_HEADER_NAME_BYTES_MAX 256
#define ZHTTP_HEADER_VALUE_BYTES_MAX 8192
#define ZHTTP_SWEEP_INTERVAL_MS 250
/* How often the sockets of waiting requests and SSE streams are polled for
 * a client that left: the bound on noticing it (h2o reads nothing there). */
#define ZHTTP_HUP_INTERVAL_MS 200
/* Kernel send buffer of a stream's socket (Linux doubles it): enough for
 * loopback and LAN rates, small enough that a stalled client's backlog shows
 * in the counted queue rather than in up to 4 MiB of kernel memory. */
#define ZHTTP_STREAM_SNDBUF_BYTES (128 * 1024)
/* A stream's write buffer larger than this is freed once written (bursts
 * grow it; idle streams keep only this much). */
#define ZHTTP_STREAM_BUF_KEEP_BYTES (16 * 1024)
/* RFC 6455 5.5: a control frame carries at most 125 bytes, 2 of them code. */
#define ZHTTP_WS_REASON_BYTES_MAX 123

_Static_assert(ZHTTP_CONN_BUCKETS > 0 && (ZHTTP_CONN_BUCKETS & (ZHTTP_CONN_BUCKETS - 1)) == 0,
               "bucket count is a power of two (hash by mask)");
_Static_assert(ZHTTP_STREAM_QUEUE_BYTES_MAX >= 4 * ZHTTP_BODY_BYTES_MAX,
               "a stream queue holds a few large messages");
_Static_assert(ZHTTP_SWEEP_INTERVAL_MS < ZHTTP_STREAM_CLOSE_WAIT_MS,
               "the sweep runs several times within a close wait");

#endif
