/* store: the grid service's LMDB tables and their key codecs (docs/grid.md,
 * "Storage"). Rows are packed protobuf messages of proto/grid.proto, except
 * "geo" (a fixed binary layout the point lookup reads without unpacking) and
 * the index tables (keys only).
 *
 *   units        code                              -> Unit
 *   geo          code                              -> geo row (level, centroid, bbox, boundary)
 *   qr           QR code (16 chars)                -> area code
 *   people       id                                -> Person
 *   people_area  area '/' id                       -> ""
 *   teams        id                                -> Team
 *   teams_area   area '/' id                       -> ""
 *   pgrids       id                                -> PoliceGrid
 *   pgrids_area  area '/' id                       -> ""
 *   pg_links     grid (15) '/' police-grid id      -> ""
 *   visits       id (8 BE)                         -> Visit
 *   visits_area  grid (15) visited_ms (8 BE) id (8 BE) -> ""
 *   disputes     id (8 BE)                         -> Dispute
 *   disputes_area area '/' id (8 BE)               -> state (1 byte)
 *   keypersons   id (8 BE)                         -> KeyPersonRecord
 *   kp_area      grid (15) id (8 BE)               -> ""
 *   kp_due       next_due_ms (8 BE) id (8 BE)      -> ""
 *   grants       grant (32 hex)                    -> GrantRecord
 *   centers      building (18) room                -> Center
 *   seqs         name                              -> last id (8 BE)
 *   kp_ids       keyed BLAKE2b-128 of an ID number -> key person id (8 BE)
 * Big-endian numbers make byte order sort order. */
#ifndef ZHILI_GRID_STORE_H
#define ZHILI_GRID_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/service.h"
#include "grid.pb-c.h"
#include "services/grid/grid.h"

extern const char *const zgrid_tables[];

/* Unpack a stored row into the batch arena (it lives until the batch ends;
 * never freed by the caller). 0 and *out; ZE_NOT_FOUND; ZE_INTERNAL for a
 * row that does not parse (the message says which table). */
int zgrid_row_get(zsvc_ctx_t *ctx, const char *table, const void *key, size_t key_len,
                  const ProtobufCMessageDescriptor *desc, void **out);

/* Unpack bytes into the batch arena; NULL when they do not parse. */
void *zgrid_row_unpack(zsvc_ctx_t *ctx, const ProtobufCMessageDescriptor *desc, zval_t v);

/* Pack msg (arena memory) and put it; a storage error is sticky. */
void zgrid_row_put(zsvc_ctx_t *ctx, const char *table, const void *key, size_t key_len,
                   const ProtobufCMessage *msg);

/* Does the row exist? (Storage errors are sticky and read as false.) */
bool zgrid_row_exists(zsvc_ctx_t *ctx, const char *table, const void *key, size_t key_len);

/* Put an empty value (index rows). */
void zgrid_index_put(zsvc_ctx_t *ctx, const char *table, const void *key, size_t key_len);
void zgrid_index_del(zsvc_ctx_t *ctx, const char *table, const void *key, size_t key_len);

/* The next id of a sequence ("visit", "dispute", "keyperson"), from 1. */
int64_t zgrid_next_id(zsvc_ctx_t *ctx, const char *name);

/* ---- key codecs: each returns the key length ---------------------------------- */

#define ZGRID_KEY_MAX 160 /* the longest key this service makes */

size_t zgrid_key_id(uint8_t out[8], int64_t id);
size_t zgrid_key_area_str(uint8_t out[ZGRID_KEY_MAX], const char *area, const char *id);
size_t zgrid_key_area_num(uint8_t out[ZGRID_KEY_MAX], const char *area, int64_t id);
size_t zgrid_key_grid_time(uint8_t out[ZGRID_KEY_MAX], const char *grid, int64_t ts_ms, int64_t id);
size_t zgrid_key_grid_num(uint8_t out[ZGRID_KEY_MAX], const char *grid, int64_t id);
size_t zgrid_key_due(uint8_t out[16], int64_t due_ms, int64_t id);
size_t zgrid_key_center(uint8_t out[ZGRID_KEY_MAX], const char *building, const char *room);

/* The 8-byte big-endian number at the end of a key. */
int64_t zgrid_key_tail_num(zval_t key);

/* ---- geo rows --------------------------------------------------------------------- */

typedef struct {
    int level;
    bool has_centroid;
    zgrid_point_t centroid;
    double min_lat, max_lat, min_lon, max_lon; /* of the boundary */
    size_t n_boundary;
} zgrid_geo_t;

/* Write the unit's geo row (or delete it when it has neither centroid nor
 * boundary). */
void zgrid_geo_put(zsvc_ctx_t *ctx, const Zhili__Grid__Unit *u);

/* Decode a geo row; the boundary points are copied to pts (room for
 * ZGRID_BOUNDARY_POINTS_MAX). 0 or -1 for a malformed row. */
int zgrid_geo_decode(zval_t v, zgrid_geo_t *g, zgrid_point_t *pts);

/* ---- pages of lists ------------------------------------------------------------- */

/* A list query's progress: rows examined, items taken, the last key
 * consumed (for next_after) and whether more remain. */
typedef struct {
    size_t limit;
    size_t count;
    size_t bytes;
    size_t scanned;
    uint8_t last[ZSTORE_KEY_BYTES_MAX];
    size_t last_len;
    bool more;
} zgrid_page_t;

/* Start a page from the request's limit (0 = the maximum) and after (the hex
 * of the last key of the page before, "" = from the start). The scan start
 * is written to start/start_len (0 when none). 0, or ZE_INVALID naming
 * field_prefix.limit / .after. */
int zgrid_page_begin(zsvc_ctx_t *ctx, zgrid_page_t *page, int64_t limit, const char *after,
                     const char *cmd_name, uint8_t start[ZSTORE_KEY_BYTES_MAX], size_t *start_len);

/* Before taking a row: 0 to go on; 1 to stop here (the row stays for the
 * next page) because the page is full or too many rows were examined. */
int zgrid_page_room(zgrid_page_t *page, size_t item_bytes);

/* After a row was taken or skipped: remember its key. */
void zgrid_page_consumed(zgrid_page_t *page, zval_t key, bool taken, size_t item_bytes);

/* next_after for the reply: hex of the last consumed key when more remain,
 * else "" (arena memory). */
char *zgrid_page_next(zsvc_ctx_t *ctx, const zgrid_page_t *page);

#endif
