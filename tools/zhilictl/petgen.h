/* petgen: realistic 12345 petitions for the hotline simulator and the bench:
 * Chinese content over every category, compound and building addresses,
 * area codes under a prefix (made up, or the units of a units file), masked-
 * looking but valid phone numbers. */
#ifndef ZHILI_ZHILICTL_PETGEN_H
#define ZHILI_ZHILICTL_PETGEN_H

#include <stddef.h>
#include <stdint.h>

#define ZPG_JSON_BYTES_MAX 2048 /* one petition as JSON */

/* A units file (zpg_units_load): the places petitions may lie at. */
#define ZPG_UNITS_FILE_BYTES_MAX (64 * 1024 * 1024) /* as grid's CSV import */
#define ZPG_UNITS_MAX 200000                        /* rows kept, as grid's CSV import */
#define ZPG_UNIT_NAME_BYTES_MAX 128                 /* a unit's name, as grid's */

typedef struct zpg_units zpg_units_t;

typedef struct {
    uint64_t state;           /* xorshift64* */
    char prefix[19];          /* area prefix every petition lies under */
    const zpg_units_t *units; /* borrowed; NULL: codes made up under the prefix */
} zpg_t;

/* prefix: "" or 6..18 digits; seed: any (0 is replaced). Made-up codes
 * (no units). 0 or -1. */
int zpg_init(zpg_t *g, const char *prefix, uint64_t seed);

/* Read a units CSV (the format of `zhilictl import units`, docs/grid.md:
 * a header naming `code`/编码 and `name`/名称, RFC 4180 quoting, a BOM
 * allowed) and keep the units under prefix ("" or 6..18 digits) and the
 * ancestors of prefix (for their names). Petitions then lie only at the
 * places: the units under prefix with no unit below them in the file (the
 * buildings, or a compound or community that has none), and their addresses
 * are the names of the place and its ancestors. On success *out is the
 * caller's (zpg_units_destroy); -1 with a sentence in err when the file
 * cannot be read, is malformed or too large, or has no unit under prefix. */
int zpg_units_load(const char *path, const char *prefix, zpg_units_t **out, char *err,
                   size_t err_len);

/* Free the units and NULL *self_p; idempotent. A generator using them must
 * not generate afterwards. */
void zpg_units_destroy(zpg_units_t **self_p);

/* How many places petitions may lie at. */
size_t zpg_units_places(const zpg_units_t *u);

/* Generate at the places of u (borrowed, must outlive g's use), or with
 * NULL at made-up codes under g's prefix again. */
void zpg_use_units(zpg_t *g, const zpg_units_t *u);

/* One petition's JSON object (the hotline push body) into out; ticket ""
 * leaves the "ticket" key out. Returns the length, or -1 when cap is short. */
int zpg_petition(zpg_t *g, const char *ticket, char *out, size_t cap);

#endif
