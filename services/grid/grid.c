/* grid: domain rules on plain structs (grid.h). No I/O, no store, no bus. */
#include "services/grid/grid.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define EARTH_RADIUS_M 6371008.8
#define EDGE_EPS 1e-12
#define KDF_CONTEXT "zhiligrd"

enum { KDF_SEAL = 1, KDF_QR = 2, KDF_CHECK = 3, KDF_BLIND = 4 };

_Static_assert(ZGRID_KEY_BYTES == crypto_secretbox_KEYBYTES, "the seal key is a secretbox key");
_Static_assert(ZGRID_KEY_BYTES == crypto_kdf_KEYBYTES, "the master key is a kdf key");
_Static_assert(ZGRID_SEAL_OVERHEAD == crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES,
               "seal overhead is nonce + MAC");
_Static_assert(sizeof KDF_CONTEXT - 1 == crypto_kdf_CONTEXTBYTES, "kdf context is 8 bytes");

int zgrid_err_set(zgrid_err_t *err, const char *field, const char *fmt, ...)
{
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return ZE_INVALID;
}

/* ---- texts and codes ------------------------------------------------------------ */

/* Length of the UTF-8 sequence at s (well-formed, no overlong forms, no
 * surrogates), or 0 when malformed. */
static size_t utf8_seq(const unsigned char *s, size_t left, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 0 || n > left) {
        return 0;
    }
    uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1Fu) : n == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        return 0;
    }
    *cp = v;
    return n;
}

int zgrid_text_check(const char *s, size_t max_bytes, bool required, const char *field,
                     zgrid_err_t *err)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0) {
        return required ? zgrid_err_set(err, field, "%s must not be empty", field) : 0;
    }
    if (len > max_bytes) {
        return zgrid_err_set(err, field, "%s is longer than %zu bytes", field, max_bytes);
    }
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t n = utf8_seq(p + i, len - i, &cp);
        if (n == 0) {
            return zgrid_err_set(err, field, "%s is not valid UTF-8 (at byte %zu)", field, i);
        }
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
            return zgrid_err_set(err, field, "%s contains a control character (at byte %zu)", field,
                                 i);
        }
        i += n;
    }
    return 0;
}

int zgrid_id_check(const char *s, const char *field, zgrid_err_t *err)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > ZGRID_ID_BYTES_MAX) {
        return zgrid_err_set(err, field, "%s must be 1 to %d characters of A-Z a-z 0-9 _ -", field,
                             ZGRID_ID_BYTES_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') {
            return zgrid_err_set(err, field, "%s must be 1 to %d characters of A-Z a-z 0-9 _ -",
                                 field, ZGRID_ID_BYTES_MAX);
        }
    }
    return 0;
}

int zgrid_phone_check(const char *s, bool required, const char *field, zgrid_err_t *err)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 && !required) {
        return 0;
    }
    bool ok = len >= ZGRID_PHONE_BYTES_MIN && len <= ZGRID_PHONE_BYTES_MAX;
    int digits = 0;
    for (size_t i = 0; ok && i < len; i++) {
        ok = isdigit((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == ' ';
        digits += isdigit((unsigned char)s[i]) != 0;
    }
    if (!ok || digits < ZGRID_PHONE_BYTES_MIN) {
        return zgrid_err_set(err, field,
                             "%s must be %d to %d characters of digits, '+', '-' "
                             "and spaces",
                             field, ZGRID_PHONE_BYTES_MIN, ZGRID_PHONE_BYTES_MAX);
    }
    return 0;
}

static const char *level_phrase(zarea_level_t level)
{
    switch (level) {
    case ZAREA_DISTRICT:
        return "a district (6 digits)";
    case ZAREA_STREET:
        return "a street (9 digits)";
    case ZAREA_COMMUNITY:
        return "a community (12 digits)";
    case ZAREA_GRID:
        return "a grid (15 digits)";
    case ZAREA_BUILDING:
        return "a building (18 digits)";
    default:
        return "an area code of 6, 9, 12, 15 or 18 digits";
    }
}

int zgrid_area_check(const char *s, zarea_level_t level, const char *field, zgrid_err_t *err)
{
    zarea_level_t got = s ? zarea_level(s) : ZAREA_NONE;
    if (got == ZAREA_NONE || (level != ZAREA_NONE && got != level)) {
        return zgrid_err_set(err, field, "%s must be the code of %s, got \"%.24s\"", field,
                             level_phrase(level), s ? s : "");
    }
    return 0;
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool zgrid_id_number_valid(const char *s)
{
    static const int weights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char checks[] = "10X98765432";
    if (s == NULL || strlen(s) != ZGRID_ID_NUMBER_CHARS) {
        return false;
    }
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return false;
        }
        sum += (s[i] - '0') * weights[i];
    }
    int y = 0, m = 0, d = 0;
    for (int i = 6; i < 10; i++) {
        y = y * 10 + (s[i] - '0');
    }
    m = (s[10] - '0') * 10 + (s[11] - '0');
    d = (s[12] - '0') * 10 + (s[13] - '0');
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || y > 2100 || m < 1 || m > 12 || d < 1 ||
        d > mdays[m - 1] + (m == 2 && leap_year(y))) {
        return false;
    }
    return toupper((unsigned char)s[17]) == checks[sum % 11];
}

bool zgrid_one_of(const char *const *list, const char *s)
{
    for (size_t i = 0; s != NULL && list[i] != NULL; i++) {
        if (strcmp(list[i], s) == 0) {
            return true;
        }
    }
    return false;
}

const char *zgrid_list_text(const char *const *list, char *out, size_t out_len)
{
    size_t n = 0, used = 0;
    while (list[n] != NULL) {
        n++;
    }
    out[0] = '\0';
    for (size_t i = 0; i < n && used < out_len; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(out + used, out_len - used, "%s%s", sep, list[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    return out;
}

const char *const zgrid_person_kinds[] = {"grid_member",   "aux_police",      "community_police",
                                          "station_chief", "mass_prevention", NULL};
const char *const zgrid_dispute_types[] = {"neighbor", "family", "property", "land",
                                           "labor",    "debt",   "other",    NULL};
const char *const zgrid_dispute_levels[] = {"general", "major", "serious", NULL};
const char *const zgrid_satisfactions[] = {"satisfied", "basic", "unsatisfied", NULL};
const char *const zgrid_hazard_kinds[] = {"fire",     "gas",        "electric", "structure",
                                          "security", "sanitation", "other",    NULL};
const char *const zgrid_keyperson_categories[] = {"correction", "released", "drug", "mental",
                                                  "petition",   "other",    NULL};
const char *const zgrid_risks[] = {"low", "medium", "high", NULL};

bool zgrid_person_level_ok(const char *kind, zarea_level_t level)
{
    if (!strcmp(kind, "grid_member") || !strcmp(kind, "aux_police")) {
        return level == ZAREA_GRID;
    }
    if (!strcmp(kind, "community_police")) {
        return level == ZAREA_COMMUNITY || level == ZAREA_GRID;
    }
    if (!strcmp(kind, "station_chief")) {
        return level == ZAREA_COMMUNITY;
    }
    if (!strcmp(kind, "mass_prevention")) {
        return level >= ZAREA_COMMUNITY;
    }
    return false;
}

const char *zgrid_person_levels_text(const char *kind)
{
    if (!strcmp(kind, "grid_member") || !strcmp(kind, "aux_police")) {
        return "a grid (15 digits)";
    }
    if (!strcmp(kind, "community_police")) {
        return "a community or a grid (12 or 15 digits)";
    }
    if (!strcmp(kind, "station_chief")) {
        return "a community (12 digits)";
    }
    return "a community, grid or building (12, 15 or 18 digits)";
}

bool zgrid_person_is_police(const char *kind)
{
    return !strcmp(kind, "aux_police") || !strcmp(kind, "community_police") ||
           !strcmp(kind, "station_chief");
}

bool zgrid_person_grid_kind(const char *kind)
{
    return !strcmp(kind, "grid_member") || !strcmp(kind, "aux_police");
}

/* ---- geometry ----------------------------------------------------------------------- */

bool zgrid_point_valid(zgrid_point_t p)
{
    return isfinite(p.lat) && isfinite(p.lon) && p.lat >= -90.0 && p.lat <= 90.0 &&
           p.lon >= -180.0 && p.lon <= 180.0;
}

int zgrid_parse_double(const char *s, double *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s)) {
        return -1;
    }
    for (const char *p = s; *p != '\0'; p++) {
        /* Only plain decimals: no hex floats, no "inf", no "nan". */
        if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p)) {
            return -1;
        }
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v)) {
        return -1;
    }
    *out = v;
    return 0;
}

static double cross(zgrid_point_t o, zgrid_point_t a, zgrid_point_t b)
{
    return (a.lon - o.lon) * (b.lat - o.lat) - (a.lat - o.lat) * (b.lon - o.lon);
}

int zgrid_boundary_check(const zgrid_point_t *pts, size_t n, size_t *n_out, const char *field,
                         zgrid_err_t *err)
{
    if (n > ZGRID_BOUNDARY_POINTS_MAX + 1) {
        return zgrid_err_set(err, field, "%s has %zu points; at most %d", field, n,
                             ZGRID_BOUNDARY_POINTS_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        if (!zgrid_point_valid(pts[i])) {
            return zgrid_err_set(err, field,
                                 "%s point %zu is not a latitude in [-90, 90] and a "
                                 "longitude in [-180, 180]",
                                 field, i + 1);
        }
    }
    if (n > 1 && pts[0].lat == pts[n - 1].lat && pts[0].lon == pts[n - 1].lon) {
        n--; /* a closed ring: the last point repeats the first */
    }
    if (n < ZGRID_BOUNDARY_POINTS_MIN || n > ZGRID_BOUNDARY_POINTS_MAX) {
        return zgrid_err_set(err, field, "%s needs %d to %d distinct points, got %zu", field,
                             ZGRID_BOUNDARY_POINTS_MIN, ZGRID_BOUNDARY_POINTS_MAX, n);
    }
    double area2 = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        area2 += cross(pts[0], pts[i], pts[i + 1]);
    }
    if (fabs(area2) < EDGE_EPS) {
        return zgrid_err_set(err, field, "%s encloses no area (its points lie on one line)", field);
    }
    *n_out = n;
    return 0;
}

static bool on_segment(zgrid_point_t a, zgrid_point_t b, zgrid_point_t p)
{
    if (fabs(cross(a, b, p)) > EDGE_EPS) {
        return false;
    }
    return p.lon >= fmin(a.lon, b.lon) - EDGE_EPS && p.lon <= fmax(a.lon, b.lon) + EDGE_EPS &&
           p.lat >= fmin(a.lat, b.lat) - EDGE_EPS && p.lat <= fmax(a.lat, b.lat) + EDGE_EPS;
}

bool zgrid_polygon_contains(const zgrid_point_t *poly, size_t n, zgrid_point_t p)
{
    if (n < ZGRID_BOUNDARY_POINTS_MIN) {
        return false;
    }
    bool inside = false;
    for (size_t i = 0, j = n - 1; i < n; j = i++) {
        zgrid_point_t a = poly[i], b = poly[j];
        if (on_segment(a, b, p)) {
            return true;
        }
        /* Ray to +lon: count edges crossing the point's latitude. */
        if ((a.lat > p.lat) != (b.lat > p.lat)) {
            double x = a.lon + (p.lat - a.lat) * (b.lon - a.lon) / (b.lat - a.lat);
            if (p.lon < x) {
                inside = !inside;
            }
        }
    }
    return inside;
}

double zgrid_distance_m(zgrid_point_t a, zgrid_point_t b)
{
    const double rad = M_PI / 180.0;
    double dlat = (b.lat - a.lat) * rad, dlon = (b.lon - a.lon) * rad;
    double h = sin(dlat / 2) * sin(dlat / 2) +
               cos(a.lat * rad) * cos(b.lat * rad) * sin(dlon / 2) * sin(dlon / 2);
    return 2 * EARTH_RADIUS_M * asin(fmin(1.0, sqrt(h)));
}

/* ---- units -------------------------------------------------------------------------- */

int zgrid_unit_check(zgrid_unit_in_t *u, zgrid_err_t *err)
{
    if (u->code == NULL || !zarea_valid(u->code)) {
        return zgrid_err_set(err, "code",
                             "code must be 6, 9, 12, 15 or 18 digits (district, "
                             "street, community, grid, building), got \"%.24s\"",
                             u->code ? u->code : "");
    }
    if (zgrid_text_check(u->name, ZGRID_NAME_BYTES_MAX, true, "name", err) != 0 ||
        zgrid_text_check(u->leader, ZGRID_PERSON_NAME_BYTES_MAX, false, "leader", err) != 0 ||
        zgrid_text_check(u->branch, ZGRID_BRANCH_BYTES_MAX, false, "branch", err) != 0) {
        return ZE_INVALID;
    }
    if (u->has_centroid && !zgrid_point_valid(u->centroid)) {
        return zgrid_err_set(err, "centroid",
                             "centroid must be a latitude in [-90, 90] and a "
                             "longitude in [-180, 180]");
    }
    if (u->n_boundary > 0) {
        return zgrid_boundary_check(u->boundary, u->n_boundary, &u->n_boundary, "boundary", err);
    }
    return 0;
}

/* ---- disputes ------------------------------------------------------------------------- */

static const char *const dstate_names[ZGRID_DS_COUNT] = {
    "registered", "signed", "mediating", "resolved", "failed", "evaluated", "archived",
};
static const char *const daction_names[ZGRID_DA_COUNT] = {
    "sign", "mediate", "resolve", "fail", "evaluate", "archive",
};

const char *zgrid_dstate_name(zgrid_dstate_t s)
{
    return (unsigned)s < ZGRID_DS_COUNT ? dstate_names[s] : "unknown";
}

int zgrid_dstate_parse(const char *name, zgrid_dstate_t *out)
{
    for (int i = 0; i < ZGRID_DS_COUNT; i++) {
        if (name != NULL && strcmp(name, dstate_names[i]) == 0) {
            *out = (zgrid_dstate_t)i;
            return 0;
        }
    }
    return -1;
}

const char *zgrid_daction_name(zgrid_daction_t a)
{
    return (unsigned)a < ZGRID_DA_COUNT ? daction_names[a] : "unknown";
}

int zgrid_dispute_next(zgrid_dstate_t from, zgrid_daction_t a, zgrid_dstate_t *to)
{
    zgrid_dstate_t next = ZGRID_DS_COUNT;
    switch (a) {
    case ZGRID_DA_SIGN:
        next = from == ZGRID_DS_REGISTERED ? ZGRID_DS_SIGNED : next;
        break;
    case ZGRID_DA_MEDIATE:
        next = from == ZGRID_DS_SIGNED ? ZGRID_DS_MEDIATING : next;
        break;
    case ZGRID_DA_RESOLVE:
        next = from == ZGRID_DS_MEDIATING ? ZGRID_DS_RESOLVED : next;
        break;
    case ZGRID_DA_FAIL:
        next = from == ZGRID_DS_MEDIATING ? ZGRID_DS_FAILED : next;
        break;
    case ZGRID_DA_EVALUATE:
        next = from == ZGRID_DS_RESOLVED || from == ZGRID_DS_FAILED ? ZGRID_DS_EVALUATED : next;
        break;
    case ZGRID_DA_ARCHIVE:
        next = from == ZGRID_DS_EVALUATED ? ZGRID_DS_ARCHIVED : next;
        break;
    default:
        break;
    }
    if (next == ZGRID_DS_COUNT) {
        return ZE_CONFLICT;
    }
    *to = next;
    return 0;
}

const char *zgrid_daction_needs(zgrid_daction_t a)
{
    switch (a) {
    case ZGRID_DA_SIGN:
        return "registered";
    case ZGRID_DA_MEDIATE:
        return "signed";
    case ZGRID_DA_RESOLVE:
    case ZGRID_DA_FAIL:
        return "mediating";
    case ZGRID_DA_EVALUATE:
        return "resolved or failed";
    case ZGRID_DA_ARCHIVE:
        return "evaluated";
    default:
        return "unknown";
    }
}

/* ---- key persons ------------------------------------------------------------------------ */

int64_t zgrid_due_after_visit(int64_t visit_ms, int64_t interval_ms, int64_t raised_until_ms)
{
    int64_t due = visit_ms + interval_ms;
    if (raised_until_ms > 0 && raised_until_ms + interval_ms > due) {
        due = raised_until_ms + interval_ms;
    }
    return due;
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && isspace((unsigned char)(*s)[0])) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && isspace((unsigned char)(*s)[*len - 1])) {
        (*len)--;
    }
}

int zgrid_key_parse(const char *text, size_t len, bool allow_raw, uint8_t out[ZGRID_KEY_BYTES])
{
    const char *s = text;
    size_t n = len;
    trim(&s, &n);
    size_t got = 0;
    if (n == 2 * ZGRID_KEY_BYTES &&
        sodium_hex2bin(out, ZGRID_KEY_BYTES, s, n, NULL, &got, NULL) == 0 &&
        got == ZGRID_KEY_BYTES) {
        return 0;
    }
    static const int variants[] = {
        sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
        sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    for (size_t i = 0; i < ZARRAY_LEN(variants); i++) {
        const char *end = NULL;
        if (n > 0 && n < 64 &&
            sodium_base642bin(out, ZGRID_KEY_BYTES, s, n, NULL, &got, &end, variants[i]) == 0 &&
            got == ZGRID_KEY_BYTES && end == s + n) {
            return 0;
        }
    }
    if (allow_raw && len == ZGRID_KEY_BYTES) {
        memcpy(out, text, ZGRID_KEY_BYTES);
        return 0;
    }
    sodium_memzero(out, ZGRID_KEY_BYTES);
    return -1;
}

void zgrid_keys_derive(const uint8_t master[ZGRID_KEY_BYTES], zgrid_keys_t *out)
{
    crypto_kdf_derive_from_key(out->seal, sizeof out->seal, KDF_SEAL, KDF_CONTEXT, master);
    crypto_kdf_derive_from_key(out->qr, sizeof out->qr, KDF_QR, KDF_CONTEXT, master);
    crypto_kdf_derive_from_key(out->check, sizeof out->check, KDF_CHECK, KDF_CONTEXT, master);
    crypto_kdf_derive_from_key(out->blind, sizeof out->blind, KDF_BLIND, KDF_CONTEXT, master);
}

void zgrid_seal(const zgrid_keys_t *k, const uint8_t *plain, size_t len, uint8_t *out)
{
    randombytes_buf(out, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES, plain, len, out, k->seal);
}

int zgrid_open(const zgrid_keys_t *k, const uint8_t *sealed, size_t len, uint8_t *out)
{
    if (len < ZGRID_SEAL_OVERHEAD) {
        return -1;
    }
    return crypto_secretbox_open_easy(out, sealed + crypto_secretbox_NONCEBYTES,
                                      len - crypto_secretbox_NONCEBYTES, sealed, k->seal) == 0
               ? 0
               : -1;
}

/* ---- QR codes ------------------------------------------------------------------------------ */

static const char base32[] = "abcdefghijklmnopqrstuvwxyz234567";

void zgrid_qr_code(const zgrid_keys_t *k, const char *area, char out[ZGRID_QR_CHARS + 1])
{
    uint8_t h[ZGRID_QR_HASH_BYTES];
    crypto_generichash(h, sizeof h, (const unsigned char *)area, strlen(area), k->qr, sizeof k->qr);
    uint32_t acc = 0;
    int bits = 0, o = 0;
    for (size_t i = 0; i < sizeof h; i++) {
        acc = (acc << 8) | h[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = base32[(acc >> (bits - 5)) & 31u];
            bits -= 5;
        }
    }
    out[o] = '\0';
}

bool zgrid_qr_normalize(const char *s, char out[ZGRID_QR_CHARS + 1])
{
    if (s == NULL || strlen(s) != ZGRID_QR_CHARS) {
        return false;
    }
    for (int i = 0; i < ZGRID_QR_CHARS; i++) {
        char c = (char)tolower((unsigned char)s[i]);
        if (strchr(base32, c) == NULL || c == '\0') {
            return false;
        }
        out[i] = c;
    }
    out[ZGRID_QR_CHARS] = '\0';
    return true;
}

bool zgrid_qr_level(zarea_level_t level)
{
    return level == ZAREA_GRID || level == ZAREA_BUILDING;
}

/* ---- CSV ------------------------------------------------------------------------------------ */

void zgrid_csv_init(zgrid_csv_t *csv, const char *data, size_t len)
{
    csv->data = data;
    csv->len = len;
    csv->pos = len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    csv->line = 1;
}

/* After an error: continue at the next line. */
static int csv_skip_line(zgrid_csv_t *csv)
{
    while (csv->pos < csv->len && csv->data[csv->pos] != '\n') {
        csv->pos++;
    }
    if (csv->pos < csv->len) {
        csv->pos++;
        csv->line++;
    }
    return -1;
}

int zgrid_csv_next(zgrid_csv_t *csv, char *buf, size_t buf_len, char **fields, int fields_max,
                   long *line, char *why, size_t why_len)
{
    if (csv->pos >= csv->len) {
        return 0;
    }
    *line = csv->line;
    size_t out = 0, field_len = 0;
    int n = 1;
    fields[0] = buf;
    bool in_quotes = false, after_quote = false;
    while (csv->pos < csv->len) {
        char c = csv->data[csv->pos++];
        if (c == '\0') {
            snprintf(why, why_len, "the line holds a NUL byte");
            return csv_skip_line(csv);
        }
        if (in_quotes) {
            if (c == '"' && csv->pos < csv->len && csv->data[csv->pos] == '"') {
                csv->pos++;
            } else if (c == '"') {
                in_quotes = false;
                after_quote = true;
                continue;
            } else if (c == '\n') {
                csv->line++;
            }
        } else if (c == ',') {
            if (n == fields_max) {
                snprintf(why, why_len, "the line has more than %d fields", fields_max);
                return csv_skip_line(csv);
            }
            buf[out++] = '\0';
            fields[n++] = buf + out;
            field_len = 0;
            after_quote = false;
            continue;
        } else if (c == '\n' || (c == '\r' && csv->pos < csv->len && csv->data[csv->pos] == '\n')) {
            if (c == '\r') {
                csv->pos++;
            }
            csv->line++;
            break;
        } else if (c == '"' && field_len == 0 && !after_quote) {
            in_quotes = true;
            continue;
        } else if (c == '"' || after_quote) {
            snprintf(why, why_len, "%s",
                     c == '"' ? "a quote inside an unquoted field" : "text after a closing quote");
            return csv_skip_line(csv);
        }
        if (field_len == ZGRID_CSV_FIELD_BYTES_MAX || out + 2 > buf_len) {
            snprintf(why, why_len, "field %d is longer than %u bytes", n,
                     ZGRID_CSV_FIELD_BYTES_MAX);
            return csv_skip_line(csv);
        }
        buf[out++] = c;
        field_len++;
    }
    if (in_quotes) {
        snprintf(why, why_len, "a quoted field is not closed before the end of the file");
        return -1;
    }
    buf[out] = '\0';
    return n;
}

typedef struct {
    const char *en, *zh;
    size_t offset;
} column_name_t;

static const column_name_t column_names[] = {
    {"code", "编码", offsetof(zgrid_csv_columns_t, code)},
    {"name", "名称", offsetof(zgrid_csv_columns_t, name)},
    {"leader", "负责人", offsetof(zgrid_csv_columns_t, leader)},
    {"branch", "网格党支部", offsetof(zgrid_csv_columns_t, branch)},
    {"lat", "纬度", offsetof(zgrid_csv_columns_t, lat)},
    {"long", "经度", offsetof(zgrid_csv_columns_t, lon)},
    {"boundary", "边界", offsetof(zgrid_csv_columns_t, boundary)},
};

int zgrid_csv_header(char **fields, int n, zgrid_csv_columns_t *cols, zgrid_err_t *err)
{
    for (size_t i = 0; i < ZARRAY_LEN(column_names); i++) {
        *(int *)((char *)cols + column_names[i].offset) = -1;
    }
    for (int f = 0; f < n; f++) {
        const char *s = fields[f];
        size_t len = strlen(s);
        trim(&s, &len);
        size_t i = 0;
        for (; i < ZARRAY_LEN(column_names); i++) {
            const column_name_t *c = &column_names[i];
            if ((len == strlen(c->en) && strncasecmp(s, c->en, len) == 0) ||
                (len == strlen(c->zh) && memcmp(s, c->zh, len) == 0)) {
                break;
            }
        }
        if (i == ZARRAY_LEN(column_names)) {
            return zgrid_err_set(err, "header",
                                 "unknown column \"%.*s\"; the columns are " ZGRID_CSV_HEADER
                                 " (or 编码,名称,负责人,网格党支部,"
                                 "纬度,经度,边界)",
                                 (int)(len > 40 ? 40 : len), s);
        }
        int *slot = (int *)((char *)cols + column_names[i].offset);
        if (*slot >= 0) {
            return zgrid_err_set(err, "header", "column %s appears twice", column_names[i].en);
        }
        *slot = f;
    }
    if (cols->code < 0 || cols->name < 0) {
        return zgrid_err_set(err, "header", "the header needs the columns code and name");
    }
    if ((cols->lat < 0) != (cols->lon < 0)) {
        return zgrid_err_set(err, "header", "the columns lat and long go together");
    }
    return 0;
}

int zgrid_boundary_parse(const char *s, zgrid_point_t *pts, size_t pts_max, size_t *n)
{
    *n = 0;
    const char *p = s;
    while (*p != '\0') {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        char item[96], lat[48], lon[48];
        if (len == 0 || len >= sizeof item || *n == pts_max) {
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        char extra;
        zgrid_point_t pt;
        if (sscanf(item, " %47s %47s %c", lat, lon, &extra) != 2 ||
            zgrid_parse_double(lat, &pt.lat) != 0 || zgrid_parse_double(lon, &pt.lon) != 0) {
            return -1;
        }
        pts[(*n)++] = pt;
        p = semi ? semi + 1 : p + len;
    }
    return 0;
}

static const char *column(char **fields, int index)
{
    return index >= 0 ? fields[index] : "";
}

int zgrid_csv_unit(char **fields, int n, const zgrid_csv_columns_t *cols, zgrid_unit_in_t *u,
                   zgrid_point_t *pts, zgrid_err_t *err)
{
    int needed = 0;
    for (size_t i = 0; i < ZARRAY_LEN(column_names); i++) {
        int at = *(const int *)((const char *)cols + column_names[i].offset);
        needed = at + 1 > needed ? at + 1 : needed;
    }
    if (n != needed) {
        return zgrid_err_set(err, "row", "the row has %d fields, the header %d", n, needed);
    }
    memset(u, 0, sizeof *u);
    u->code = column(fields, cols->code);
    u->name = column(fields, cols->name);
    u->leader = column(fields, cols->leader);
    u->branch = column(fields, cols->branch);
    const char *lat = column(fields, cols->lat), *lon = column(fields, cols->lon);
    if (lat[0] != '\0' || lon[0] != '\0') {
        if (zgrid_parse_double(lat, &u->centroid.lat) != 0 || u->centroid.lat < -90.0 ||
            u->centroid.lat > 90.0) {
            return zgrid_err_set(err, "lat", "lat must be a latitude in [-90, 90], got \"%.24s\"",
                                 lat);
        }
        if (zgrid_parse_double(lon, &u->centroid.lon) != 0 || u->centroid.lon < -180.0 ||
            u->centroid.lon > 180.0) {
            return zgrid_err_set(err, "long",
                                 "long must be a longitude in [-180, 180], got \"%.24s\"", lon);
        }
        u->has_centroid = true;
    }
    const char *b = column(fields, cols->boundary);
    if (b[0] != '\0' &&
        zgrid_boundary_parse(b, pts, ZGRID_BOUNDARY_POINTS_MAX + 1, &u->n_boundary) != 0) {
        return zgrid_err_set(err, "boundary",
                             "boundary must be up to %d points \"lat long\" "
                             "separated by ';'",
                             ZGRID_BOUNDARY_POINTS_MAX);
    }
    u->boundary = pts;
    return zgrid_unit_check(u, err);
}

int zgrid_csv_field(const char *s, char *out, size_t out_len)
{
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    size_t o = 0;
    if (quote) {
        if (o + 1 >= out_len) {
            return -1;
        }
        out[o++] = '"';
    }
    for (const char *p = s; *p != '\0'; p++) {
        size_t need = *p == '"' && quote ? 2 : 1;
        if (o + need + 1 >= out_len) {
            return -1;
        }
        if (need == 2) {
            out[o++] = '"';
        }
        out[o++] = *p;
    }
    if (quote) {
        if (o + 2 > out_len) {
            return -1;
        }
        out[o++] = '"';
    }
    out[o] = '\0';
    return (int)o;
}
