/* open311: the petitions service's doors on the gateway besides the route
 * table (docs/petitions.md):
 *   - Open311 GeoReport v2 under /open311/v2/ (open311.c): services,
 *     service definitions, POST and GET requests, in XML (xmlTextWriter)
 *     and JSON, errors in the spec's shape and with its HTTP codes;
 *   - the rate limit in front of the QR scan route POST /api/v1/qr/{code}/petitions
 *     (qr.c): residents scan without a token, so the gateway bounds how
 *     often one client address and one code may file. */
#ifndef ZHILI_GATEWAY_OPEN311_H
#define ZHILI_GATEWAY_OPEN311_H

#include <stdbool.h>
#include <stdint.h>

#include "services/gateway/gateway.h"

/* Open311 */
#define ZGW_O311_VALUE_BYTES_MAX 16384             /* one decoded form or query value */
#define ZGW_O311_SPAN_MS (90LL * 24 * 3600 * 1000) /* start_date..end_date, and the default */
#define ZGW_O311_RESULTS_MAX 1000 /* requests in one GET (the spec's default bound) */
#define ZGW_O311_JURISDICTION_BYTES_MAX 64

/* QR rate limit: fixed windows per client address and per QR code. */
#define ZGW_QR_SLOTS 4096               /* keys one table tracks at once */
#define ZGW_QR_PROBES 16                /* slots looked at for one key */
#define ZGW_QR_KEY_BYTES_MAX 64         /* an address (46) or a code (64) */
#define ZGW_QR_ADDRESS_DEFAULT "10/600" /* 10 scans per 10 minutes from one address */
#define ZGW_QR_CODE_DEFAULT "60/3600"   /* 60 scans per hour on one code */

typedef struct {
    char key[ZGW_QR_KEY_BYTES_MAX + 1];
    int64_t window_start_ms;
    uint32_t count;
} zgw_qr_slot_t;

typedef struct {
    uint32_t limit; /* requests per window */
    int64_t window_ms;
    zgw_qr_slot_t slots[ZGW_QR_SLOTS];
} zgw_qr_table_t;

typedef struct {
    zgw_t *gw;
    char jurisdiction[ZGW_O311_JURISDICTION_BYTES_MAX + 1]; /* ZHILI_OPEN311_JURISDICTION */
    zgw_qr_table_t by_address;                              /* ZHILI_QR_RATE_ADDRESS "N/SECONDS" */
    zgw_qr_table_t by_code;                                 /* ZHILI_QR_RATE_CODE */
} zgw_pet_t;

/* Read the settings (exits naming a bad one) and make the handlers' state.
 * The caller owns it; destroy after the server is gone. */
zgw_pet_t *zgw_pet_new(zgw_t *gw);
void zgw_pet_destroy(zgw_pet_t **self_p);

/* Handlers for zhttp_server_handle; ctx is the zgw_pet_t. */
void zgw_open311_on_request(void *ctx, zhttp_req_t *req);
/* Rate-limits POST /api/v1/qr/{code}/petitions (429 with Retry-After past
 * a limit), then hands every request to zgw_on_request. */
void zgw_qr_on_request(void *ctx, zhttp_req_t *req);

/* The limiter itself (qr.c): 0 when `key` may go on (and, with commit, it is
 * counted), else the seconds until its window ends. A table whose slots
 * near the key all hold live keys refuses with the window's length. */
int zgw_qr_table_take(zgw_qr_table_t *t, const char *key, int64_t now_ms, bool commit);
/* "N/SECONDS" -> limit and window; -1 when malformed. */
int zgw_qr_rate_parse(const char *text, uint32_t *limit, int64_t *window_ms);

#endif
