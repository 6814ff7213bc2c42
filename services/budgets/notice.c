/* notice: the printable execution notice (see notice.h). */
#include "services/budgets/notice.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char *out;
    size_t cap, len;
    bool full;
} buf_t;

static void put(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(buf_t *b, const char *fmt, ...)
{
    if (b->full) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->out + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->full = true;
        return;
    }
    b->len += (size_t)n;
}

/* Text into HTML: & < > " ' escaped. */
static void put_text(buf_t *b, const char *s)
{
    for (; s != NULL && *s != '\0' && !b->full; s++) {
        switch (*s) {
        case '&':
            put(b, "&amp;");
            break;
        case '<':
            put(b, "&lt;");
            break;
        case '>':
            put(b, "&gt;");
            break;
        case '"':
            put(b, "&quot;");
            break;
        case '\'':
            put(b, "&#39;");
            break;
        default:
            put(b, "%c", *s);
        }
    }
}

static void put_yuan(buf_t *b, int64_t fen)
{
    int64_t a = fen < 0 ? -fen : fen;
    put(b, "<td class=n>%s%lld.%02lld</td>", fen < 0 ? "-" : "", (long long)(a / 100),
        (long long)(a % 100));
}

static void put_figures(buf_t *b, const zbud_exec_t *x)
{
    put_yuan(b, x->budget_month);
    put_yuan(b, x->actual_month);
    put_yuan(b, x->budget_to_date);
    put_yuan(b, x->actual_to_date);
    put_yuan(b, x->variance);
    put(b, "<td class=n>%lld.%02lld%%</td></tr>\n", (long long)(x->rate_bp / 100),
        (long long)(x->rate_bp % 100));
}

int zbud_notice_html(const zbud_notice_t *n, char *out, size_t cap)
{
    if (cap == 0) {
        return -1;
    }
    buf_t b = {out, cap, 0, false};
    put(&b, "<!DOCTYPE html>\n<html lang=zh-CN><head><meta charset=utf-8>"
            "<title>预算执行情况公示</title><style>"
            "body{font-family:sans-serif;margin:2em}h1{text-align:center;font-size:1.6em}"
            "table{border-collapse:collapse;width:100%%}th,td{border:1px solid #000;"
            "padding:.3em .5em}td.n{text-align:right}"
            "@media print{body{margin:1cm}}</style></head><body>\n");
    put(&b, "<h1>");
    put_text(&b, n->area);
    put(&b, " 小区 %d年%d月 预算执行情况公示</h1>\n", n->year, n->month);
    put(&b,
        "<p>根据开放式预算“以收定支、量入为出”的原则，现将本小区%d年1月至%d月预算执行情况"
        "公示如下，请业主监督。如有疑问，可向业主委员会或物业服务企业提出质询。</p>\n",
        n->year, n->month);
    put(&b, "<table><thead><tr><th>科目编码</th><th>预算科目</th><th>本月预算(元)</th>"
            "<th>本月支出(元)</th><th>累计预算(元)</th><th>累计支出(元)</th>"
            "<th>结余(元)</th><th>执行率</th></tr></thead><tbody>\n");
    for (int i = 0; i < n->row_count; i++) {
        put(&b, "<tr><td>");
        put_text(&b, n->rows[i].code);
        put(&b, "</td><td>");
        put_text(&b, n->rows[i].name);
        put(&b, "</td>");
        put_figures(&b, &n->rows[i].x);
    }
    put(&b, "<tr><th colspan=2>合计</th>");
    put_figures(&b, &n->total);
    put(&b, "</tbody></table>\n<p>公示单位：业主委员会、小区党支部、物业服务企业（联签联审）"
            "</p>\n<p>公示日期：");
    put_text(&b, n->published);
    put(&b, "</p>\n</body></html>\n");
    if (b.full) {
        out[0] = '\0';
        return -1;
    }
    return (int)b.len;
}
