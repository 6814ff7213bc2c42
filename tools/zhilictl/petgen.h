/* petgen: realistic 12345 petitions for the hotline simulator and the bench:
 * Chinese content over every category, compound and building addresses,
 * area codes under a prefix, masked-looking but valid phone numbers. */
#ifndef ZHILI_ZHILICTL_PETGEN_H
#define ZHILI_ZHILICTL_PETGEN_H

#include <stddef.h>
#include <stdint.h>

#define ZPG_JSON_BYTES_MAX 2048 /* one petition as JSON */

typedef struct {
    uint64_t state;  /* xorshift64* */
    char prefix[19]; /* area prefix every petition lies under */
} zpg_t;

/* prefix: "" or 6..18 digits; seed: any (0 is replaced). 0 or -1. */
int zpg_init(zpg_t *g, const char *prefix, uint64_t seed);

/* One petition's JSON object (the hotline push body) into out; ticket ""
 * leaves the "ticket" key out. Returns the length, or -1 when cap is short. */
int zpg_petition(zpg_t *g, const char *ticket, char *out, size_t cap);

#endif
