/* store: the grid service's tables and key codecs (store.h). */
#include "services/grid/store.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/codec.h"
#include "common/err.h"

const char *const zgrid_tables[] = {
    "units",      "geo",           "qr",          "people",   "people_area", "teams",
    "teams_area", "pgrids",        "pgrids_area", "pg_links", "visits",      "visits_area",
    "disputes",   "disputes_area", "keypersons",  "kp_area",  "kp_due",      "grants",
    "centers",    "seqs",          "kp_ids",      NULL,
};

_Static_assert(ZARRAY_LEN(zgrid_tables) - 1 + 4 <= ZSTORE_TABLES_MAX,
               "the grid's tables and the runtime's fit the store");
_Static_assert(ZGRID_KEY_MAX <= ZSTORE_KEY_BYTES_MAX, "keys fit LMDB");
_Static_assert(ZAREA_BYTES_MAX + 1 + ZGRID_ID_BYTES_MAX <= ZGRID_KEY_MAX, "area/id keys fit");
_Static_assert(ZAREA_BYTES_MAX + ZGRID_ROOM_BYTES_MAX <= ZGRID_KEY_MAX, "center keys fit");

/* ---- rows ------------------------------------------------------------------------- */

static void *arena_alloc(void *data, size_t size)
{
    return zarena_alloc(data, size ? size : 1);
}

static void arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* released with the batch */
}

void *zgrid_row_unpack(zsvc_ctx_t *ctx, const ProtobufCMessageDescriptor *desc, zval_t v)
{
    ProtobufCAllocator a = {arena_alloc, arena_free, ctx->arena};
    return protobuf_c_message_unpack(desc, &a, v.len, v.data);
}

int zgrid_row_get(zsvc_ctx_t *ctx, const char *table, const void *key, size_t key_len,
                  const ProtobufCMessageDescriptor *desc, void **out)
{
    zval_t v;
    int rc = ztxn_get(ctx->txn, zsvc_table(ctx, table), key, key_len, &v);
    if (rc != 0) {
        return rc;
    }
    *out = zgrid_row_unpack(ctx, desc, v);
    if (*out == NULL) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "a row of table %s does not parse", table);
    }
    return 0;
}

void zgrid_row_put(zsvc_ctx_t *ctx, const char *table, const void *key, size_t key_len,
                   const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = zsvc_alloc(ctx, len ? len : 1);
    protobuf_c_message_pack(msg, buf);
    ztxn_put(ctx->txn, zsvc_table(ctx, table), key, key_len, buf, len);
}

bool zgrid_row_exists(zsvc_ctx_t *ctx, const char *table, const void *key, size_t key_len)
{
    zval_t v;
    return ztxn_get(ctx->txn, zsvc_table(ctx, table), key, key_len, &v) == 0;
}

void zgrid_index_put(zsvc_ctx_t *ctx, const char *table, const void *key, size_t key_len)
{
    ztxn_put(ctx->txn, zsvc_table(ctx, table), key, key_len, "", 0);
}

void zgrid_index_del(zsvc_ctx_t *ctx, const char *table, const void *key, size_t key_len)
{
    ztxn_del(ctx->txn, zsvc_table(ctx, table), key, key_len);
}

int64_t zgrid_next_id(zsvc_ctx_t *ctx, const char *name)
{
    int t = zsvc_table(ctx, "seqs");
    zval_t v;
    uint64_t last = 0;
    if (ztxn_get(ctx->txn, t, name, strlen(name), &v) == 0 && v.len == 8) {
        last = zstore_be64_get(v.data);
    }
    uint8_t be[8];
    zstore_be64_put(be, last + 1);
    ztxn_put(ctx->txn, t, name, strlen(name), be, sizeof be);
    return (int64_t)(last + 1);
}

/* ---- keys ------------------------------------------------------------------------- */

size_t zgrid_key_id(uint8_t out[8], int64_t id)
{
    zstore_be64_put(out, (uint64_t)id);
    return 8;
}

size_t zgrid_key_area_str(uint8_t out[ZGRID_KEY_MAX], const char *area, const char *id)
{
    size_t a = strlen(area), i = strlen(id);
    ZASSERT(a <= ZAREA_BYTES_MAX && i <= ZGRID_ID_BYTES_MAX);
    memcpy(out, area, a);
    out[a] = '/';
    memcpy(out + a + 1, id, i);
    return a + 1 + i;
}

size_t zgrid_key_area_num(uint8_t out[ZGRID_KEY_MAX], const char *area, int64_t id)
{
    size_t a = strlen(area);
    ZASSERT(a <= ZAREA_BYTES_MAX);
    memcpy(out, area, a);
    out[a] = '/';
    zstore_be64_put(out + a + 1, (uint64_t)id);
    return a + 9;
}

size_t zgrid_key_grid_time(uint8_t out[ZGRID_KEY_MAX], const char *grid, int64_t ts_ms, int64_t id)
{
    size_t g = strlen(grid);
    ZASSERT(g <= ZAREA_BYTES_MAX);
    memcpy(out, grid, g);
    zstore_be64_put(out + g, (uint64_t)ts_ms);
    zstore_be64_put(out + g + 8, (uint64_t)id);
    return g + 16;
}

size_t zgrid_key_grid_num(uint8_t out[ZGRID_KEY_MAX], const char *grid, int64_t id)
{
    size_t g = strlen(grid);
    ZASSERT(g <= ZAREA_BYTES_MAX);
    memcpy(out, grid, g);
    zstore_be64_put(out + g, (uint64_t)id);
    return g + 8;
}

size_t zgrid_key_due(uint8_t out[16], int64_t due_ms, int64_t id)
{
    zstore_be64_put(out, (uint64_t)due_ms);
    zstore_be64_put(out + 8, (uint64_t)id);
    return 16;
}

size_t zgrid_key_center(uint8_t out[ZGRID_KEY_MAX], const char *building, const char *room)
{
    size_t b = strlen(building), r = strlen(room);
    ZASSERT(b <= ZAREA_BYTES_MAX && r <= ZGRID_ROOM_BYTES_MAX);
    memcpy(out, building, b);
    memcpy(out + b, room, r);
    return b + r;
}

int64_t zgrid_key_tail_num(zval_t key)
{
    ZASSERT(key.len >= 8);
    return (int64_t)zstore_be64_get((const uint8_t *)key.data + key.len - 8);
}

/* ---- geo rows: level(1) has_centroid(1) n(2 BE) centroid(16) bbox(32) points(16 n) --- */

#define GEO_HEAD_BYTES 52

static void put_double(uint8_t *out, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    zstore_be64_put(out, bits);
}

static double get_double(const uint8_t *in)
{
    uint64_t bits = zstore_be64_get(in);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

void zgrid_geo_put(zsvc_ctx_t *ctx, const Zhili__Grid__Unit *u)
{
    int t = zsvc_table(ctx, "geo");
    bool has_centroid = u->centroid_present_case == ZHILI__GRID__UNIT__CENTROID_PRESENT_CENTROID;
    if (!has_centroid && u->n_boundary == 0) {
        ztxn_del(ctx->txn, t, u->code, strlen(u->code));
        return;
    }
    ZASSERT(u->n_boundary <= ZGRID_BOUNDARY_POINTS_MAX);
    size_t len = GEO_HEAD_BYTES + 16 * u->n_boundary;
    uint8_t *row = zsvc_alloc(ctx, len);
    row[0] = (uint8_t)u->level;
    row[1] = has_centroid;
    row[2] = (uint8_t)(u->n_boundary >> 8);
    row[3] = (uint8_t)(u->n_boundary & 0xFF);
    put_double(row + 4, has_centroid ? u->centroid->lat : 0);
    put_double(row + 12, has_centroid ? u->centroid->long_ : 0);
    double min_lat = 90, max_lat = -90, min_lon = 180, max_lon = -180;
    for (size_t i = 0; i < u->n_boundary; i++) {
        const Zhili__Grid__Point *p = u->boundary[i];
        min_lat = p->lat < min_lat ? p->lat : min_lat;
        max_lat = p->lat > max_lat ? p->lat : max_lat;
        min_lon = p->long_ < min_lon ? p->long_ : min_lon;
        max_lon = p->long_ > max_lon ? p->long_ : max_lon;
        put_double(row + GEO_HEAD_BYTES + 16 * i, p->lat);
        put_double(row + GEO_HEAD_BYTES + 16 * i + 8, p->long_);
    }
    put_double(row + 20, min_lat);
    put_double(row + 28, max_lat);
    put_double(row + 36, min_lon);
    put_double(row + 44, max_lon);
    ztxn_put(ctx->txn, t, u->code, strlen(u->code), row, len);
}

int zgrid_geo_decode(zval_t v, zgrid_geo_t *g, zgrid_point_t *pts)
{
    const uint8_t *row = v.data;
    if (v.len < GEO_HEAD_BYTES) {
        return -1;
    }
    g->level = row[0];
    g->has_centroid = row[1] != 0;
    g->n_boundary = ((size_t)row[2] << 8) | row[3];
    if (g->n_boundary > ZGRID_BOUNDARY_POINTS_MAX || v.len != GEO_HEAD_BYTES + 16 * g->n_boundary) {
        return -1;
    }
    g->centroid = (zgrid_point_t){get_double(row + 4), get_double(row + 12)};
    g->min_lat = get_double(row + 20);
    g->max_lat = get_double(row + 28);
    g->min_lon = get_double(row + 36);
    g->max_lon = get_double(row + 44);
    for (size_t i = 0; pts != NULL && i < g->n_boundary; i++) {
        pts[i].lat = get_double(row + GEO_HEAD_BYTES + 16 * i);
        pts[i].lon = get_double(row + GEO_HEAD_BYTES + 16 * i + 8);
    }
    return 0;
}

/* ---- pages -------------------------------------------------------------------------- */

int zgrid_page_begin(zsvc_ctx_t *ctx, zgrid_page_t *page, int64_t limit, const char *after,
                     const char *cmd_name, uint8_t start[ZSTORE_KEY_BYTES_MAX], size_t *start_len)
{
    memset(page, 0, sizeof *page);
    if (limit < 0 || limit > ZGRID_LIST_LIMIT_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, zarena_printf(ctx->arena, "%s.limit", cmd_name),
                         "limit must be 1 to %d (0 or absent: %d)", ZGRID_LIST_LIMIT_MAX,
                         ZGRID_LIST_LIMIT_MAX);
    }
    page->limit = limit == 0 ? ZGRID_LIST_LIMIT_MAX : (size_t)limit;
    *start_len = 0;
    size_t hex_len = after ? strlen(after) : 0;
    if (hex_len == 0) {
        return 0;
    }
    size_t got = 0;
    if (hex_len % 2 != 0 || hex_len / 2 + 1 > ZSTORE_KEY_BYTES_MAX ||
        sodium_hex2bin(start, ZSTORE_KEY_BYTES_MAX - 1, after, hex_len, NULL, &got, NULL) != 0 ||
        got != hex_len / 2) {
        return zsvc_fail(ctx, ZE_INVALID, zarena_printf(ctx->arena, "%s.after", cmd_name),
                         "after must be the next_after of an earlier page (hex)");
    }
    start[got] = 0; /* the smallest key after the one given */
    *start_len = got + 1;
    return 0;
}

int zgrid_page_room(zgrid_page_t *page, size_t item_bytes)
{
    if (page->count >= page->limit || page->scanned >= ZGRID_SCAN_ROWS_MAX ||
        (page->count > 0 && page->bytes + item_bytes > ZGRID_LIST_BYTES_MAX)) {
        page->more = true;
        return 1;
    }
    return 0;
}

void zgrid_page_consumed(zgrid_page_t *page, zval_t key, bool taken, size_t item_bytes)
{
    ZASSERT(key.len <= sizeof page->last);
    memcpy(page->last, key.data, key.len);
    page->last_len = key.len;
    page->scanned++;
    if (taken) {
        page->count++;
        page->bytes += item_bytes;
    }
}

char *zgrid_page_next(zsvc_ctx_t *ctx, const zgrid_page_t *page)
{
    if (!page->more || page->last_len == 0) {
        return zsvc_strdup(ctx, "");
    }
    char *hex = zsvc_alloc(ctx, 2 * page->last_len + 1);
    sodium_bin2hex(hex, 2 * page->last_len + 1, page->last, page->last_len);
    return hex;
}
