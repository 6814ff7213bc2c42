/* limits: every bound of the grid service and of `zhilictl import/export/qr`
 * in one place (docs/grid.md, "Limits"). */
#ifndef ZHILI_GRID_LIMITS_H
#define ZHILI_GRID_LIMITS_H

#include "common/bus.h"
#include "common/store.h"

/* Texts (bytes of UTF-8, no control characters). */
#define ZGRID_NAME_BYTES_MAX 128       /* unit, team and police-grid names */
#define ZGRID_PERSON_NAME_BYTES_MAX 64 /* people, leaders, party members, parties */
#define ZGRID_BRANCH_BYTES_MAX 128     /* grid party branch (网格党支部) */
#define ZGRID_STATION_BYTES_MAX 128    /* police station (派出所) */
#define ZGRID_ID_BYTES_MAX 64          /* ids of people, teams, police grids: [A-Za-z0-9_-] */
#define ZGRID_PHONE_BYTES_MAX 20       /* digits, '+', '-', ' ' */
#define ZGRID_PHONE_BYTES_MIN 3
#define ZGRID_ROOM_BYTES_MAX 32     /* a household's room in its building */
#define ZGRID_TEXT_BYTES_MAX 4000   /* findings, descriptions, mediation notes */
#define ZGRID_NOTE_BYTES_MAX 500    /* reasons, outcomes, comments, hazard text */
#define ZGRID_ADDRESS_BYTES_MAX 256 /* a key person's address */
#define ZGRID_ID_NUMBER_CHARS 18    /* 居民身份证号码 (GB 11643) */

/* Geometry. */
#define ZGRID_BOUNDARY_POINTS_MIN 3
#define ZGRID_BOUNDARY_POINTS_MAX 1000

/* Collections. */
#define ZGRID_PARTIES_MAX 20 /* parties of one dispute */
#define ZGRID_HAZARDS_MAX 20 /* hazards of one visit */
#define ZGRID_TEAM_MEMBERS_MAX 200
#define ZGRID_POLICE_GRID_GRIDS_MAX 100 /* admin grids linked to one police grid */
#define ZGRID_CENTER_HOUSEHOLDS_MAX 30  /* households linked to a party-member central household */

/* Commands and answers. */
#define ZGRID_IMPORT_UNITS_MAX 500 /* units in one grid_units_import */
#define ZGRID_IMPORT_BATCH_BYTES_MAX (2u << 20)
#define ZGRID_LIST_LIMIT_MAX 1000       /* items in one list page */
#define ZGRID_LIST_BYTES_MAX (3u << 20) /* packed bytes of one list page */
#define ZGRID_SCAN_ROWS_MAX 50000       /* rows one list query examines before it pages */
#define ZGRID_ANCESTORS_MAX 5

/* Time. */
#define ZGRID_DAY_MS (24LL * 3600 * 1000)
#define ZGRID_VISIT_INTERVAL_DAYS_MAX 365
#define ZGRID_FUTURE_SLACK_MS (5LL * 60 * 1000) /* clock skew a visit time may have */
#define ZGRID_TIME_MIN_MS 946684800000LL        /* 2000-01-01T00:00:00Z: older is a typo */
#define ZGRID_OVERDUE_PER_TICK 1000 /* overdue events raised per tick; the rest next tick */

/* Key persons' personal fields and reveal grants. */
#define ZGRID_KEY_BYTES 32            /* crypto_secretbox_KEYBYTES, crypto_kdf_KEYBYTES */
#define ZGRID_KEY_TEXT_BYTES_MAX 4096 /* ZHILI_GRID_KEY_FILE */
#define ZGRID_SEALED_BYTES_MAX 2048   /* nonce + MAC + a packed KeyPersonPersonal */
#define ZGRID_GRANT_MS 60000          /* a reveal grant lasts 60 s */
#define ZGRID_GRANT_CHARS 32          /* 16 random bytes, hex */
#define ZGRID_GRANTS_MAX 10000        /* open grants; more is UNAVAILABLE */
#define ZGRID_REASON_BYTES_MIN 2      /* a reveal needs a reason */

/* QR codes: keyed BLAKE2b of the area code, 80 bits, base32. */
#define ZGRID_QR_HASH_BYTES 10
#define ZGRID_QR_CHARS 16

/* CSV (zhilictl import/export units). */
#define ZGRID_CSV_FILE_BYTES_MAX (64u << 20)
#define ZGRID_CSV_ROWS_MAX 200000
#define ZGRID_CSV_FIELD_BYTES_MAX (64u << 10)
#define ZGRID_CSV_COLUMNS_MAX 16
#define ZGRID_CSV_ERRORS_SHOWN_MAX 200 /* bad rows listed; the rest are counted */

/* Stored keys. */
#define ZGRID_KEY_HEX_MAX (2 * ZSTORE_KEY_BYTES_MAX)

_Static_assert(ZGRID_QR_HASH_BYTES * 8 == ZGRID_QR_CHARS * 5, "base32 of the hash fills the code");
_Static_assert(ZGRID_IMPORT_BATCH_BYTES_MAX < ZBUS_MSG_BYTES_MAX, "an import batch fits a command");
_Static_assert(ZGRID_LIST_BYTES_MAX < ZBUS_MSG_BYTES_MAX, "a list page fits a reply");
_Static_assert(ZGRID_BOUNDARY_POINTS_MAX * 22 + 4 * ZGRID_NAME_BYTES_MAX <
                   ZGRID_IMPORT_BATCH_BYTES_MAX,
               "one unit with the largest boundary fits an import batch");
_Static_assert(ZGRID_CSV_FIELD_BYTES_MAX >= ZGRID_BOUNDARY_POINTS_MAX * 48,
               "the largest boundary fits a CSV field");
_Static_assert(ZGRID_GRANT_CHARS % 2 == 0, "a grant is hex");
_Static_assert(ZGRID_SEALED_BYTES_MAX > 24 + 16 + ZGRID_ADDRESS_BYTES_MAX +
                                            ZGRID_PERSON_NAME_BYTES_MAX + ZGRID_PHONE_BYTES_MAX +
                                            ZGRID_ID_NUMBER_CHARS + 32,
               "the sealed personal fields fit their bound");

#endif
