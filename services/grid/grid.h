/* grid: the grid service's domain rules on plain structs, without I/O
 * (docs/grid.md). Shared by the service (services/grid) and by zhilictl's
 * import, export and qr (tools/zhilictl/grid.c), so a CSV row is judged by
 * the same rules on both sides.
 *
 * Checks return 0 or ZE_INVALID and fill a zgrid_err_t with the field and a
 * sentence ("name is longer than 128 bytes"). */
#ifndef ZHILI_GRID_GRID_H
#define ZHILI_GRID_GRID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/area.h"
#include "services/grid/limits.h"

#define ZGRID_ERR_BYTES 240

typedef struct {
    char field[64];                /* the input's name, e.g. "name", "boundary" */
    char message[ZGRID_ERR_BYTES]; /* a sentence naming the field */
} zgrid_err_t;

/* Fill err and return ZE_INVALID. */
int zgrid_err_set(zgrid_err_t *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- texts and codes -------------------------------------------------------- */

/* A text of UTF-8 without control characters, at most max_bytes, non-empty
 * when required. */
int zgrid_text_check(const char *s, size_t max_bytes, bool required, const char *field,
                     zgrid_err_t *err);

/* An id: 1..ZGRID_ID_BYTES_MAX of [A-Za-z0-9_-]. */
int zgrid_id_check(const char *s, const char *field, zgrid_err_t *err);

/* A phone number: ZGRID_PHONE_BYTES_MIN..MAX of digits, '+', '-', ' ' (or
 * empty when not required). */
int zgrid_phone_check(const char *s, bool required, const char *field, zgrid_err_t *err);

/* An area code of the given level (ZAREA_NONE: any of the five). */
int zgrid_area_check(const char *s, zarea_level_t level, const char *field, zgrid_err_t *err);

/* A 居民身份证号码: 17 digits and a check character (digit or X), a real birth
 * date, and the ISO 7064 MOD 11-2 check of GB 11643. */
bool zgrid_id_number_valid(const char *s);

/* Is s one of a NULL-terminated list? */
bool zgrid_one_of(const char *const *list, const char *s);

/* "a, b or c" of a list, into out. */
const char *zgrid_list_text(const char *const *list, char *out, size_t out_len);

/* The closed vocabularies (docs/grid.md), NULL-terminated. */
extern const char *const zgrid_person_kinds[]; /* grid_member, aux_police, ... */
extern const char *const zgrid_dispute_types[];
extern const char *const zgrid_dispute_levels[];
extern const char *const zgrid_satisfactions[];
extern const char *const zgrid_hazard_kinds[];
extern const char *const zgrid_keyperson_categories[];
extern const char *const zgrid_risks[];

/* May a person of `kind` serve a unit of `level`? */
bool zgrid_person_level_ok(const char *kind, zarea_level_t level);
/* The levels a kind serves, as a phrase ("a grid (15 digits)"). */
const char *zgrid_person_levels_text(const char *kind);
/* Police kinds (aux_police, community_police, station_chief) name a station. */
bool zgrid_person_is_police(const char *kind);
/* Kinds that may be responsible for a key person: grid_member, aux_police. */
bool zgrid_person_grid_kind(const char *kind);

/* ---- geometry ----------------------------------------------------------------- */

typedef struct {
    double lat, lon;
} zgrid_point_t;

/* Finite, latitude in [-90, 90], longitude in [-180, 180]. */
bool zgrid_point_valid(zgrid_point_t p);

/* Strict decimal number (no trailing text, finite). 0 or -1. */
int zgrid_parse_double(const char *s, double *out);

/* A boundary: ZGRID_BOUNDARY_POINTS_MIN..MAX valid points (a closing point
 * equal to the first is dropped by *n_out), not all on one line. */
int zgrid_boundary_check(const zgrid_point_t *pts, size_t n, size_t *n_out, const char *field,
                         zgrid_err_t *err);

/* Is p inside the polygon (or on its edge)? Planar in (lon, lat), which is
 * exact enough for units a few kilometres across. */
bool zgrid_polygon_contains(const zgrid_point_t *poly, size_t n, zgrid_point_t p);

/* Great-circle distance in metres (haversine, mean Earth radius). */
double zgrid_distance_m(zgrid_point_t a, zgrid_point_t b);

/* ---- units ---------------------------------------------------------------------- */

typedef struct {
    const char *code, *name, *leader, *branch;
    bool has_centroid;
    zgrid_point_t centroid;
    const zgrid_point_t *boundary;
    size_t n_boundary; /* set to the normalized count by the check */
} zgrid_unit_in_t;

/* Every rule of a unit that needs no store: code, texts, centroid, boundary. */
int zgrid_unit_check(zgrid_unit_in_t *u, zgrid_err_t *err);

/* ---- disputes ------------------------------------------------------------------ */

typedef enum {
    ZGRID_DS_REGISTERED = 0, /* 录入 */
    ZGRID_DS_SIGNED,         /* 签收 */
    ZGRID_DS_MEDIATING,      /* 办理 */
    ZGRID_DS_RESOLVED,       /* 化解 */
    ZGRID_DS_FAILED,         /* 未化解 */
    ZGRID_DS_EVALUATED,      /* 跟踪评价 */
    ZGRID_DS_ARCHIVED,       /* 归档 */
    ZGRID_DS_COUNT,
} zgrid_dstate_t;

typedef enum {
    ZGRID_DA_SIGN = 0,
    ZGRID_DA_MEDIATE,
    ZGRID_DA_RESOLVE,
    ZGRID_DA_FAIL,
    ZGRID_DA_EVALUATE,
    ZGRID_DA_ARCHIVE,
    ZGRID_DA_COUNT,
} zgrid_daction_t;

const char *zgrid_dstate_name(zgrid_dstate_t s);
/* 0 and *out, or -1 for an unknown name. */
int zgrid_dstate_parse(const char *name, zgrid_dstate_t *out);
const char *zgrid_daction_name(zgrid_daction_t a);

/* The state after action a from state `from`: 0 and *to, or ZE_CONFLICT. */
int zgrid_dispute_next(zgrid_dstate_t from, zgrid_daction_t a, zgrid_dstate_t *to);

/* The states action a may start from, as a phrase ("resolved or failed"). */
const char *zgrid_daction_needs(zgrid_daction_t a);

/* ---- key persons ------------------------------------------------------------- */

/* When the next visit is due after a visit (or the registration) at
 * visit_ms: one interval later, but never before one interval after the due
 * time of the last overdue event raised, so a late-recorded visit cannot make
 * an interval that was already reported missed count twice. */
int64_t zgrid_due_after_visit(int64_t visit_ms, int64_t interval_ms, int64_t raised_until_ms);

typedef struct {
    uint8_t seal[ZGRID_KEY_BYTES];  /* secretbox key of the personal fields */
    uint8_t qr[ZGRID_KEY_BYTES];    /* BLAKE2b key of the QR codes */
    uint8_t blind[ZGRID_KEY_BYTES]; /* BLAKE2b key of the ID-number index */
    uint8_t check[16];              /* identifies the master key in the store's meta */
} zgrid_keys_t;

/* The master key from text: 64 hex characters, or base64 (standard or URL
 * alphabet, padded or not) of 32 bytes; surrounding whitespace is ignored.
 * With allow_raw, exactly 32 bytes are taken as they are (a key file). 0 or -1. */
int zgrid_key_parse(const char *text, size_t len, bool allow_raw, uint8_t out[ZGRID_KEY_BYTES]);

/* Subkeys (crypto_kdf, context "zhiligrd"). Needs sodium_init(). */
void zgrid_keys_derive(const uint8_t master[ZGRID_KEY_BYTES], zgrid_keys_t *out);

#define ZGRID_SEAL_OVERHEAD 40 /* nonce (24) + MAC (16) */

/* Seal plain into out (len + ZGRID_SEAL_OVERHEAD bytes): a random nonce then
 * crypto_secretbox_easy. */
void zgrid_seal(const zgrid_keys_t *k, const uint8_t *plain, size_t len, uint8_t *out);

/* Open sealed into out (len - ZGRID_SEAL_OVERHEAD bytes). 0, or -1 when too
 * short or forged (wrong key, changed bytes). */
int zgrid_open(const zgrid_keys_t *k, const uint8_t *sealed, size_t len, uint8_t *out);

/* ---- QR codes ----------------------------------------------------------------- */

/* The unit's stable QR code: base32 (RFC 4648, lower case) of the 80-bit
 * keyed BLAKE2b of its area code: 16 characters and NUL. */
void zgrid_qr_code(const zgrid_keys_t *k, const char *area, char out[ZGRID_QR_CHARS + 1]);

/* Is s a QR code's shape (16 base32 characters, either case)? Writes the
 * lower-case form to out. */
bool zgrid_qr_normalize(const char *s, char out[ZGRID_QR_CHARS + 1]);

/* Do units of this level carry a QR code (grids and buildings)? */
bool zgrid_qr_level(zarea_level_t level);

/* ---- CSV (RFC 4180) ------------------------------------------------------------ */

typedef struct {
    const char *data;
    size_t len;
    size_t pos;
    long line; /* line of the next record, from 1 */
} zgrid_csv_t;

/* Start reading data (a UTF-8 BOM at the start is skipped). */
void zgrid_csv_init(zgrid_csv_t *csv, const char *data, size_t len);

/* The next record: its fields, NUL-terminated, into buf (buf_len bytes),
 * pointers in fields[], and the line it starts on. Returns the field count,
 * 0 at the end, or -1 with why (an unterminated quote, a field over
 * ZGRID_CSV_FIELD_BYTES_MAX, more than fields_max fields, a NUL byte); after
 * -1 reading continues at the next line. A blank line is a record of one
 * empty field. */
int zgrid_csv_next(zgrid_csv_t *csv, char *buf, size_t buf_len, char **fields, int fields_max,
                   long *line, char *why, size_t why_len);

/* The unit file's columns (docs/grid.md): index of each in a record, -1 when
 * absent. Names are English or Chinese (code/编码, name/名称, leader/负责人,
 * branch/网格党支部, lat/纬度, long/经度, boundary/边界). */
typedef struct {
    int code, name, leader, branch, lat, lon, boundary;
} zgrid_csv_columns_t;

/* Map a header record; code and name are required, a column may appear once,
 * an unknown name is an error. */
int zgrid_csv_header(char **fields, int n, zgrid_csv_columns_t *cols, zgrid_err_t *err);

/* One data record as a unit. Strings point into fields; the boundary is
 * parsed into pts (ZGRID_BOUNDARY_POINTS_MAX + 1 room). Every rule of
 * zgrid_unit_check applies; err->field is the column name. */
int zgrid_csv_unit(char **fields, int n, const zgrid_csv_columns_t *cols, zgrid_unit_in_t *u,
                   zgrid_point_t *pts, zgrid_err_t *err);

/* The boundary column's text: "lat lon;lat lon;…". 0 or -1 (malformed). */
int zgrid_boundary_parse(const char *s, zgrid_point_t *pts, size_t pts_max, size_t *n);

/* Append one CSV field (quoted when it holds , " CR or LF) to out; returns
 * the bytes written, or -1 when out is too small. */
int zgrid_csv_field(const char *s, char *out, size_t out_len);

/* The CSV header this service writes. */
#define ZGRID_CSV_HEADER "code,name,leader,branch,lat,long,boundary"

#endif
