/* Renderers of the reporting service's Report result (report_csv.h). */
#include "services/gateway/report_csv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growing buffer --------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
    bool oom;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap) {
            cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void puts_(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

static char *finish(buf_t *b)
{
    if (b->oom || b->data == NULL) {
        put(b, "", 0);
    }
    if (b->oom) {
        free(b->data);
        return NULL;
    }
    return b->data;
}

/* ---- fields ------------------------------------------------------------- */

static void field(buf_t *b, const char *text, bool text_cell)
{
    bool formula = text_cell && (text[0] == '=' || text[0] == '+' || text[0] == '-' ||
                                 text[0] == '@' || text[0] == '\t' || text[0] == '\r');
    bool quote = strpbrk(text, ",\"\r\n") != NULL;
    if (quote) {
        puts_(b, "\"");
    }
    if (formula) {
        puts_(b, "'");
    }
    for (const char *p = text; *p; p++) {
        put(b, p, 1);
        if (*p == '"') {
            put(b, p, 1);
        }
    }
    if (quote) {
        puts_(b, "\"");
    }
}

char *zgw_csv_field(const char *text, bool text_cell)
{
    buf_t b = {0};
    field(&b, text, text_cell);
    return finish(&b);
}

static void code_field(buf_t *b, const char *code)
{
    char text[64];
    snprintf(text, sizeof text, "=\"%.20s\"", code);
    field(b, text, false);
}

char *zgw_csv_code(const char *code)
{
    buf_t b = {0};
    code_field(&b, code);
    return finish(&b);
}

/* ---- the Report's shape ------------------------------------------------- */

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static const json_t *indicator_of(const json_t *report, const char *code)
{
    size_t i;
    const json_t *ind;
    json_array_foreach(json_object_get(report, "indicators"), i, ind)
    {
        if (strcmp(str(ind, "code"), code) == 0) {
            return ind;
        }
    }
    return NULL;
}

static const json_t *cell_of(const json_t *row, const char *code)
{
    size_t i;
    const json_t *cell;
    json_array_foreach(json_object_get(row, "cells"), i, cell)
    {
        if (strcmp(str(cell, "indicator"), code) == 0) {
            return cell;
        }
    }
    return NULL;
}

static bool is_rate(const json_t *ind)
{
    return strcmp(str(ind, "kind"), "rate") == 0;
}

static bool is_fen(const json_t *ind)
{
    return strcmp(str(ind, "kind"), "sum_fen") == 0 || strcmp(str(ind, "kind"), "stock_fen") == 0;
}

/* A rate whose numerator and denominator are amounts (预算执行率). */
static bool parts_fen(const json_t *ind)
{
    return json_is_true(json_object_get(ind, "parts_fen"));
}

/* Fen as yuan with two decimals: "-12.05". */
static void yuan_text(json_int_t v, char *out, size_t cap)
{
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    snprintf(out, cap, "%s%" PRIu64 ".%02" PRIu64, v < 0 ? "-" : "", a / 100, a % 100);
}

static bool pending(const json_t *ind)
{
    return json_is_true(json_object_get(ind, "pending"));
}

/* ---- JSON with nulls ---------------------------------------------------- */

static void figure_nulls(json_t *fig, const json_t *ind)
{
    if (!json_is_object(fig)) {
        return;
    }
    if (is_rate(ind)) {
        json_object_del(fig, "value");
        if (pending(ind)) {
            json_object_set_new(fig, "numerator", json_null());
            json_object_set_new(fig, "denominator", json_null());
        }
        if (pending(ind) || json_object_get(fig, "rate") == NULL) {
            json_object_set_new(fig, "rate", json_null());
        }
        return;
    }
    json_object_del(fig, "numerator");
    json_object_del(fig, "denominator");
    json_object_del(fig, "rate");
    if (pending(ind) || strcmp(str(ind, "kind"), "score") == 0) {
        json_object_set_new(fig, "value", json_null());
    }
}

static void row_nulls(json_t *row, const json_t *report)
{
    size_t i;
    json_t *cell;
    json_array_foreach(json_object_get(row, "cells"), i, cell)
    {
        const json_t *ind = indicator_of(report, str(cell, "indicator"));
        if (ind != NULL) {
            figure_nulls(json_object_get(cell, "current"), ind);
            figure_nulls(json_object_get(cell, "previous"), ind);
        }
    }
}

void zgw_report_nulls(json_t *report)
{
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(report, "rows"), i, row)
    {
        row_nulls(row, report);
    }
    if (json_object_get(report, "total") != NULL) {
        row_nulls(json_object_get(report, "total"), report);
    }
    if (json_object_get(report, "unallocated") != NULL) {
        row_nulls(json_object_get(report, "unallocated"), report);
    }
}

/* ---- CSV ---------------------------------------------------------------- */

static void header(buf_t *b, const json_t *report)
{
    puts_(b, ZGW_CSV_BOM "区域编码,区域名称");
    size_t i;
    const json_t *ind;
    json_array_foreach(json_object_get(report, "indicators"), i, ind)
    {
        if (pending(ind) || strcmp(str(ind, "kind"), "score") == 0) {
            continue; /* no figures yet: JSON shows them as null */
        }
        char name[160];
        snprintf(name, sizeof name, "%s%s", str(ind, "name"), is_fen(ind) ? "(元)" : "");
        const char *parts[] = {"", parts_fen(ind) ? "分子(元)" : "分子",
                               parts_fen(ind) ? "分母(元)" : "分母", "(上年同期)"};
        for (size_t k = 0; k < 4; k++) {
            if (!is_rate(ind) && (k == 1 || k == 2)) {
                continue;
            }
            char h[200];
            snprintf(h, sizeof h, "%s%s", name, parts[k]);
            puts_(b, ",");
            field(b, h, true);
        }
    }
    puts_(b, "\r\n");
}

static json_int_t integer(const json_t *fig, const char *key)
{
    return json_integer_value(json_object_get(fig, key));
}

/* A figure's main text: the count, yuan for fen, a percentage for a rate
 * ("" for a null rate). */
static void figure_text(buf_t *b, const json_t *ind, const json_t *fig)
{
    char text[64] = "";
    if (is_rate(ind)) {
        const json_t *r = json_object_get(fig, "rate");
        if (json_is_number(r)) {
            snprintf(text, sizeof text, "%.2f%%", json_number_value(r) * 100.0);
        }
    } else if (is_fen(ind)) {
        yuan_text(integer(fig, "value"), text, sizeof text);
    } else {
        snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, integer(fig, "value"));
    }
    puts_(b, ",");
    puts_(b, text);
}

static void row(buf_t *b, const json_t *report, const json_t *r, const char *name)
{
    const char *area = str(r, "area");
    if (area[0] != '\0') {
        code_field(b, area);
    }
    puts_(b, ",");
    field(b, name, true);
    size_t i;
    const json_t *ind;
    json_array_foreach(json_object_get(report, "indicators"), i, ind)
    {
        if (pending(ind) || strcmp(str(ind, "kind"), "score") == 0) {
            continue;
        }
        const json_t *cell = cell_of(r, str(ind, "code"));
        const json_t *cur = json_object_get(cell, "current");
        figure_text(b, ind, cur);
        if (is_rate(ind) && parts_fen(ind)) {
            char num[32], den[32], nd[72];
            yuan_text(integer(cur, "numerator"), num, sizeof num);
            yuan_text(integer(cur, "denominator"), den, sizeof den);
            snprintf(nd, sizeof nd, ",%s,%s", num, den);
            puts_(b, nd);
        } else if (is_rate(ind)) {
            char nd[64];
            snprintf(nd, sizeof nd, ",%" JSON_INTEGER_FORMAT ",%" JSON_INTEGER_FORMAT,
                     integer(cur, "numerator"), integer(cur, "denominator"));
            puts_(b, nd);
        }
        figure_text(b, ind, json_object_get(cell, "previous"));
    }
    puts_(b, "\r\n");
}

char *zgw_report_csv(const json_t *report, size_t *len, char *filename, size_t filename_cap)
{
    const char *area = str(report, "area");
    snprintf(filename, filename_cap, "report-%s-%s.csv", area[0] ? area : "all",
             str(report, "period"));
    buf_t b = {0};
    header(&b, report);
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(report, "rows"), i, r)
    {
        row(&b, report, r, str(r, "name"));
    }
    const json_t *rest = json_object_get(report, "unallocated");
    if (rest != NULL) {
        row(&b, report, rest, "本级及未细分");
    }
    const json_t *total = json_object_get(report, "total");
    if (total != NULL) {
        char name[200];
        const char *tn = str(total, "name");
        snprintf(name, sizeof name, "合计%s%s%s", tn[0] ? "（" : "", tn, tn[0] ? "）" : "");
        row(&b, report, total, name);
    }
    char *out = finish(&b);
    *len = out ? b.len : 0;
    return out;
}
