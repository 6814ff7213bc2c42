/* report_csv: renderers of the reporting service's Report result
 * (docs/reporting.md, "Exports"). The generic codec writes the result as
 * JSON from its protobuf; these finish it for people and spreadsheets:
 *
 *   "report"      JSON: a rate whose denominator is 0, and every figure of an
 *                 indicator whose source is not consumed yet, become null;
 *                 count cells keep only "value", rate cells only "numerator",
 *                 "denominator" and "rate".
 *   "report_csv"  CSV for Excel: UTF-8 with a BOM, CRLF, RFC 4180 quoting,
 *                 Chinese headers, one row per area plus 合计 (and the
 *                 unallocated row), rates as percentages with their numerator
 *                 and denominator, the same period a year before beside each.
 *
 * Pure: jansson only, so the unit tests link this file alone. */
#ifndef ZHILI_GATEWAY_REPORT_CSV_H
#define ZHILI_GATEWAY_REPORT_CSV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define ZGW_CSV_BOM "\xEF\xBB\xBF"

/* Rewrite a Report's figures in place as described above. */
void zgw_report_nulls(json_t *report);

/* The CSV text of a Report (malloc'd, the caller frees; NULL when out of
 * memory), and a file name for Content-Disposition (ASCII). */
char *zgw_report_csv(const json_t *report, size_t *len, char *filename, size_t filename_cap);

/* One CSV field, appended to a malloc'd string the caller frees: quoted
 * when it holds a comma, a quote, CR or LF (quotes doubled); a text cell
 * starting with = + - @ TAB or CR gets a leading ' so Excel never runs it
 * as a formula. NULL when out of memory. */
char *zgw_csv_field(const char *text, bool text_cell);

/* An area code as ="220503001001", so Excel keeps it as text (18 digits
 * would lose their last three as a number). */
char *zgw_csv_code(const char *code);

#endif
