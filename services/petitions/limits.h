/* limits: every bound of the petitions service, in one place (STYLE "Limits").
 * docs/petitions.md lists them for callers. */
#ifndef ZHILI_PETITIONS_LIMITS_H
#define ZHILI_PETITIONS_LIMITS_H

#include "common/area.h"
#include "common/store.h"

/* Text a citizen or a unit writes, in bytes of UTF-8 (a Chinese character is
 * 3 bytes). Open311 allows 4000 characters of description; 12345 tickets are
 * far shorter, and 4000 bytes are about 1300 Chinese characters. */
#define ZPET_CONTENT_BYTES_MAX 4000
#define ZPET_ADDRESS_BYTES_MAX 300
#define ZPET_NAME_BYTES_MAX 64
#define ZPET_PHONE_DIGITS_MIN 7   /* a local landline without its area code */
#define ZPET_PHONE_DIGITS_MAX 12  /* 0435-12345678 without the dash */
#define ZPET_PHONE_BYTES_MAX 20   /* with dashes, spaces and a leading + */
#define ZPET_REPLY_BYTES_MAX 4000 /* the 办结 answer read back to the citizen */
#define ZPET_NOTE_BYTES_MAX 1000  /* progress, urge, return, extend notes */
#define ZPET_MEDIA_URL_BYTES_MAX 500
#define ZPET_TICKET_BYTES_MAX ZSTORE_REQUEST_ID_BYTES_MAX /* a hotline ticket id */
#define ZPET_QR_CODE_BYTES_MAX 64

/* One petition keeps at most this many notes (progress, urges, returns ...)
 * and duplicates merged into it; more is refused with CONFLICT. */
#define ZPET_NOTES_MAX 50
#define ZPET_DUPLICATES_MAX 100
/* A petition reopened (重办) this many times stays evaluated on the next 不满意:
 * supervision decides then. */
#define ZPET_REOPENS_MAX 3

/* Intake. */
#define ZPET_BATCH_ROWS_MAX 1000

/* Queries. */
#define ZPET_PAGE_DEFAULT 50
#define ZPET_PAGE_MAX 1000             /* Open311 answers up to 1000 requests */
#define ZPET_PAGE_BYTES_MAX (2u << 20) /* a page stops early past this (replies are <= 4 MiB) */
#define ZPET_SCAN_ROWS_MAX 20000       /* index rows one list request examines */
#define ZPET_LIST_IDS_MAX 100          /* ids=… in one list request */
#define ZPET_FILTER_BYTES_MAX 256      /* one comma-separated filter value */
#define ZPET_CURSOR_HEX 32             /* 16 bytes of index key suffix, in hex */

/* Timer: escalations handled per tick; the rest wait for the next tick (one
 * heartbeat later), so a backlog after a long outage drains in bounded steps. */
#define ZPET_TICK_DUE_MAX 1000

/* The grid read model. */
#define ZPET_UNIT_BYTES_MAX 65536  /* one packed grid Unit (boundary included) */
#define ZPET_POINT_SCAN_MAX 100000 /* units examined for a lat/long lookup */

/* Configuration. */
#define ZPET_DURATION_MS_MAX (366LL * 24 * 3600 * 1000)
#define ZPET_CONFIG_FILE_BYTES_MAX 65536

#define ZPET_ID_BYTES 11 /* "P" + 10 digits */
#define ZPET_AREA_BUF (ZAREA_BYTES_MAX + 1)
#define ZPET_STATS_MAX 64 /* figures added to the stats reply */

_Static_assert(ZPET_PAGE_DEFAULT <= ZPET_PAGE_MAX, "the default page must fit the maximum");
_Static_assert(ZPET_TICKET_BYTES_MAX + 8 <= ZSTORE_KEY_BYTES_MAX, "a ticket must fit an LMDB key");
_Static_assert(ZPET_QR_CODE_BYTES_MAX <= ZSTORE_KEY_BYTES_MAX, "a QR code must fit an LMDB key");
_Static_assert(ZPET_BATCH_ROWS_MAX *(ZPET_ID_BYTES + ZPET_TICKET_BYTES_MAX + 128) < (4u << 20),
               "a batch reply of receipts must fit one bus message");

#endif
