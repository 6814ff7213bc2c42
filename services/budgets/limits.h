/* limits: every bound of the budgets service (docs/budgets.md, "Limits"). */
#ifndef ZHILI_BUDGETS_LIMITS_H
#define ZHILI_BUDGETS_LIMITS_H

#include <stdint.h>

#define ZBUD_LINES_MAX 64 /* lines of one budget */
#define ZBUD_MONTHS 12
#define ZBUD_CODE_BYTES_MAX 7       /* "6-99" plus room */
#define ZBUD_NAME_BYTES_MAX 64      /* an item's name (UTF-8 bytes) */
#define ZBUD_STANDARD_BYTES_MAX 512 /* a line's service standard */
#define ZBUD_WITHDRAWAL_ID_BYTES_MAX 64
#define ZBUD_AREA_BYTES 15    /* a compound's code */
#define ZBUD_KEY_BYTES_MAX 48 /* "area:year:code" */
#define ZBUD_YEAR_MIN 2000
#define ZBUD_YEAR_MAX 2100
#define ZBUD_AMOUNT_MAX 100000000000LL /* fen: 10^9 yuan on one line or as income */
#define ZBUD_ITEMS_OWN_MAX 64          /* a compound's own and renamed items */
#define ZBUD_PARTIES 3                 /* committee, party_branch, property */
#define ZBUD_QUESTION_BYTES_MAX 1000   /* an owner's query (质询) */
#define ZBUD_ANSWER_BYTES_MAX 2000
#define ZBUD_QUERY_DEADLINE_MS (7LL * 24 * 3600 * 1000) /* answer within 7 days */
#define ZBUD_QUERIES_LIST_MAX 500                       /* queries in one list reply */
#define ZBUD_NOTE_BYTES_MAX 500                         /* an evaluation's note */
#define ZBUD_RATINGS_MAX 100000       /* ratings of one compound and month counted */
#define ZBUD_LIST_TEXT_BYTES_MAX 1000 /* a standard, a progress note */
#define ZBUD_MINUTES_BYTES_MAX 4000   /* a meeting's minutes */
#define ZBUD_ATTENDEES_MIN 3          /* three parties at a three-party meeting */
#define ZBUD_ATTENDEES_MAX 50
#define ZBUD_ATTENDEE_BYTES_MAX 64
#define ZBUD_LIST_ROWS_MAX 200     /* progress notes and meetings in one reply (latest) */
#define ZBUD_TICK_OVERDUE_MAX 1000 /* overdue queries flagged per tick; the rest next tick */
#define ZBUD_TICK_PUBLISH_MAX 1000 /* execution reports one tick publishes; the rest next tick */

_Static_assert(ZBUD_KEY_BYTES_MAX > ZBUD_AREA_BYTES + 1 + 4 + 1 + ZBUD_CODE_BYTES_MAX,
               "a line key fits");
_Static_assert(ZBUD_AMOUNT_MAX *ZBUD_LINES_MAX < INT64_MAX / 10000,
               "totals and rates in basis points cannot overflow");

_Static_assert(ZBUD_QUERIES_LIST_MAX > 0 && ZBUD_TICK_OVERDUE_MAX > 0, "bounded, not empty");

#endif
