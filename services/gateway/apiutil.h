/* apiutil: small helpers the gateway's HTTP handlers share (api.c, open311.c,
 * qr.c): percent-decoding, query parameters, reply status to HTTP status, and
 * the response counters of /metrics. Moved out of api.c unchanged. */
#ifndef ZHILI_GATEWAY_APIUTIL_H
#define ZHILI_GATEWAY_APIUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/store.h"
#include "services/gateway/gateway.h"

/* Count a response of `status` for /metrics (by class). */
void zgw_count_status(zgw_t *gw, int status);

/* HTTP status of a zhili.v1.Status (docs/api.md "Answers"). */
int zgw_http_status(int status);

/* Percent-decode src[0..len) into out ('+' is a space); false when
 * malformed, too long for cap, or decoding to a NUL byte. */
bool zgw_url_decode(const char *src, size_t len, char *out, size_t cap);

/* The decoded value of parameter `name` in a query (or a form body):
 * 1 found, 0 absent, -1 malformed or too long. */
int zgw_query_get(zhttp_str_t q, const char *name, char *out, size_t cap);

/* The longest Idempotency-Key: the request_id limit (200) less the caller's
 * 16-character token id and the dot that scope it. */
#define ZGW_IDEMPOTENCY_KEY_BYTES_MAX 183
_Static_assert(16 + 1 + ZGW_IDEMPOTENCY_KEY_BYTES_MAX == ZSTORE_REQUEST_ID_BYTES_MAX,
               "a scoped key fits a request_id");

/* The request_id of a request: its Idempotency-Key (printable ASCII without
 * spaces, 1 to ZGW_IDEMPOTENCY_KEY_BYTES_MAX) scoped to the caller as
 * "<actor_id>.<key>" (zbus_request_id_scoped), or a fresh id when it has
 * none. 0, or ZE_INVALID for a malformed key (the caller answers 400). */
int zgw_request_id(zhttp_req_t *req, const char *actor_id,
                   char out[ZSTORE_REQUEST_ID_BYTES_MAX + 1]);

#endif
