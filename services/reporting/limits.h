/* limits: every bound of the reporting service, in one place (STYLE "Limits").
 * docs/reporting.md lists them for callers. */
#ifndef ZHILI_REPORTING_LIMITS_H
#define ZHILI_REPORTING_LIMITS_H

#include "common/area.h"
#include "common/store.h"

/* Measures are the additive counters the indicators are made of; their ids
 * are stored in keys, so an id is never reused (reporting.h lists them). */
#define ZREP_MEASURES_MAX 128
/* Columns of the one table (reporting.c, the indicator table). */
#define ZREP_INDICATORS_MAX 64
/* Measures one event may change (a reply of a property complaint on time
 * changes replied, replied on time and property replied). */
#define ZREP_CONTRIBS_MAX 8
/* A rate's denominator is the sum of at most this many measures
 * (调解成功率 = resolved / (resolved + failed)). */
#define ZREP_DEN_MEASURES_MAX 2

/* Roll-up: the root "" and the five levels of an area code (DESIGN §3). */
#define ZREP_LEVELS 6
#define ZREP_AREA_BUF (ZAREA_BYTES_MAX + 1)

/* Periods: months and years of the local calendar from this year on. Events
 * before it still count in their period, but the drill-down of a stock
 * (which walks every month up to the period) starts here. */
#define ZREP_YEAR_MIN 2000
#define ZREP_YEAR_MAX 9999

/* The table: rows of one request (the children of the area at the chosen
 * level). A district has tens of streets and communities and a few thousand
 * grids; past this the request is refused and names a narrower area. */
#define ZREP_ROWS_MAX 2000
/* A packed cell (indicator code, this period's and last year's figures) is
 * about this large; the bus carries replies up to 4 MiB. */
#define ZREP_CELL_BYTES_TYPICAL 64

/* Drill-down pages. */
#define ZREP_CELLS_PAGE_DEFAULT 100
#define ZREP_CELLS_PAGE_MAX 1000
#define ZREP_CURSOR_BYTES_MAX 128

/* The red/black list of one request (compounds under the area). */
#define ZREP_REDBLACK_ROWS_MAX ZREP_ROWS_MAX
/* DESIGN §5 budgets: three or more property complaints past their reply
 * deadline in the month put a compound on the black list. */
#define ZREP_BLACK_OVERDUE_COMPLAINTS 3
#define ZREP_RED_SCORE_MIN 90.0
#define ZREP_BLACK_SCORE_BELOW 60.0

/* Alerts (ZHILI_REPORTING_ALERTS): rules, and the areas one rule evaluates
 * per tick (the rest wait for the next tick). */
#define ZREP_ALERT_RULES_MAX 16
#define ZREP_ALERT_RULE_BYTES_MAX 96
#define ZREP_ALERT_AREAS_PER_TICK 10000
#define ZREP_ALERTS_LIST_MAX 10000
#define ZREP_CONFIG_FILE_BYTES_MAX 65536

/* Rebuild: rows of an older generation removed per tick, so that dropping
 * a large projection never stalls the service's group commit. */
#define ZREP_PURGE_ROWS_PER_TICK 20000

/* A consumed petition's first-time flags are kept while it is open. */
#define ZREP_PETITION_ID_BYTES_MAX 32
/* Event types as stored with a drill-down reference. */
#define ZREP_TYPE_BYTES_MAX 48
/* Names of areas from grid's units. */
#define ZREP_NAME_BYTES_MAX 128

#define ZREP_STATS_MAX 16

_Static_assert(ZREP_CELLS_PAGE_DEFAULT <= ZREP_CELLS_PAGE_MAX, "default page within the maximum");
_Static_assert(ZREP_ROWS_MAX * 32 * ZREP_CELL_BYTES_TYPICAL < (4u << 20),
               "a table of ZREP_ROWS_MAX rows of about 32 columns must fit one bus message");
_Static_assert(ZREP_CELLS_PAGE_MAX *(ZREP_TYPE_BYTES_MAX + 128) < (4u << 20),
               "a drill-down page must fit one bus message");
_Static_assert(1 + 4 + 2 + ZAREA_BYTES_MAX + 1 + 8 <= ZSTORE_KEY_BYTES_MAX,
               "a drill-down reference key must fit an LMDB key");
_Static_assert(ZREP_PETITION_ID_BYTES_MAX + 1 <= ZSTORE_KEY_BYTES_MAX, "a petition id key");

#endif
