/* notice: the printable execution notice (预算执行情况公示) for the bulletin
 * board (公示栏), as one self-contained HTML page in Chinese. Pure: no I/O. */
#ifndef ZHILI_BUDGETS_NOTICE_H
#define ZHILI_BUDGETS_NOTICE_H

#include <stddef.h>
#include <stdint.h>

#include "services/budgets/budgets.h"

#define ZBUD_NOTICE_BYTES_MAX (64u * 1024u) /* 64 lines fit with room */

typedef struct {
    const char *code;
    const char *name; /* escaped here: a compound's own item names are user input */
    zbud_exec_t x;
} zbud_notice_row_t;

typedef struct {
    const char *area;
    int year, month;
    const zbud_notice_row_t *rows;
    int row_count;
    zbud_exec_t total;
    const char *published; /* local date, e.g. "2026-12-01" */
} zbud_notice_t;

/* Write the page into out (cap bytes, NUL-terminated). Returns its length, or
 * -1 when it does not fit. */
int zbud_notice_html(const zbud_notice_t *n, char *out, size_t cap);

#endif
