/* The reporting service's reads: the one table, the drill-down, the
 * red/black list and the alert states (docs/reporting.md). Each is answered
 * from a read snapshot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/caltime.h"
#include "common/err.h"
#include "services/reporting/handlers.h"

/* ---- inputs ------------------------------------------------------------- */

static int period_arg(zsvc_ctx_t *ctx, const char *text, zrep_period_t *out)
{
    if (zrep_period_parse(text, out) != 0) {
        return zsvc_fail(ctx, ZE_INVALID, "period",
                         "period must be a month like 2026-10 or a year like 2026 (from %d), "
                         "got \"%.20s\"",
                         ZREP_YEAR_MIN, text);
    }
    return 0;
}

/* The command's area: "" or an area code at or below max_level, inside the
 * caller's scope. */
static int area_arg(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd, zarea_level_t max_level,
                    zarea_level_t *level)
{
    const char *area = cmd->area ? cmd->area : "";
    if (zrep_area_level(area, level) != 0) {
        return zsvc_fail(ctx, ZE_INVALID, "area",
                         "area must be \"\" or an area code of 6, 9, 12, 15 or 18 digits, "
                         "got \"%.24s\"",
                         area);
    }
    if (*level > max_level) {
        return zsvc_fail(ctx, ZE_INVALID, "area", "area %s is a %s: ask for the area above it",
                         area, zarea_level_name(*level));
    }
    if (!zarea_within(zrh_scope(cmd), area)) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "area", "area \"%s\" is outside your scope \"%s\"",
                         area, zrh_scope(cmd));
    }
    return 0;
}

Zhili__Reporting__Figure *zrh_figure_msg(zsvc_ctx_t *ctx, const zrep_figure_t *f)
{
    Zhili__Reporting__Figure *m = zsvc_alloc(ctx, sizeof *m);
    zhili__reporting__figure__init(m);
    m->value = f->value;
    m->numerator = f->numerator;
    m->denominator = f->denominator;
    if (f->has_rate) {
        m->rate_present_case = ZHILI__REPORTING__FIGURE__RATE_PRESENT_RATE;
        m->rate = f->rate;
    }
    return m;
}

/* ---- the rows: child areas at a level ------------------------------------ */

typedef struct {
    char (*areas)[ZREP_AREA_BUF];
    int count, cap;
    bool over;
} area_list_t;

static int on_child(void *arg, const char *area)
{
    area_list_t *l = arg;
    if (l->count == l->cap) {
        l->over = true;
        return 1;
    }
    snprintf(l->areas[l->count++], ZREP_AREA_BUF, "%s", area);
    return 0;
}

static int area_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Areas at `level` under `area` with figures in either period or known to
 * grid, sorted, each once. -1 when there are more than the limit. */
static int children(zsvc_ctx_t *ctx, const zrs_t *t, uint8_t gen, const char *area,
                    zarea_level_t level, zrep_period_t cur, zrep_period_t prev, int limit,
                    area_list_t *out)
{
    out->cap = 3 * limit + 1;
    out->areas = zsvc_alloc(ctx, (size_t)out->cap * sizeof *out->areas);
    out->count = 0;
    out->over = false;
    zrs_areas_scan(ctx->txn, t, gen, cur, level, area, out, on_child);
    zrs_areas_scan(ctx->txn, t, gen, prev, level, area, out, on_child);
    zrs_names_scan(ctx->txn, t, gen, level, area, out, on_child);
    qsort(out->areas, (size_t)out->count, sizeof *out->areas, area_cmp);
    int n = 0;
    for (int i = 0; i < out->count; i++) {
        if (n == 0 || strcmp(out->areas[n - 1], out->areas[i]) != 0) {
            memmove(out->areas[n++], out->areas[i], ZREP_AREA_BUF);
        }
    }
    out->count = n;
    return out->over || n > limit ? -1 : 0;
}

/* ---- the one table ------------------------------------------------------ */

typedef struct {
    int64_t cur[ZREP_MEASURES_MAX], prev[ZREP_MEASURES_MAX];
} row_measures_t;

static Zhili__Reporting__Row *row_msg(zsvc_ctx_t *ctx, const zrs_t *t, uint8_t gen,
                                      const char *area, const row_measures_t *m)
{
    Zhili__Reporting__Row *row = zsvc_alloc(ctx, sizeof *row);
    zhili__reporting__row__init(row);
    row->area = zsvc_strdup(ctx, area);
    char name[ZREP_NAME_BYTES_MAX + 1];
    zrs_name_get(ctx->txn, t, gen, area, name, sizeof name);
    row->name = zsvc_strdup(ctx, name);
    row->level = area[0] ? (uint32_t)zarea_level(area) : 0;
    row->cells = zsvc_alloc(ctx, (size_t)zrep_indicator_count * sizeof *row->cells);
    for (int i = 0; i < zrep_indicator_count; i++) {
        const zrep_indicator_t *ind = &zrep_indicators[i];
        Zhili__Reporting__Cell *c = zsvc_alloc(ctx, sizeof *c);
        zhili__reporting__cell__init(c);
        c->indicator = (char *)ind->code;
        zrep_figure_t f;
        zrep_figure(ind, m->cur, &f);
        c->current = zrh_figure_msg(ctx, &f);
        zrep_figure(ind, m->prev, &f);
        c->previous = zrh_figure_msg(ctx, &f);
        row->cells[row->n_cells++] = c;
    }
    return row;
}

static Zhili__Reporting__Indicator **indicators_msg(zsvc_ctx_t *ctx, size_t *n)
{
    Zhili__Reporting__Indicator **out = zsvc_alloc(ctx, (size_t)zrep_indicator_count * sizeof *out);
    for (int i = 0; i < zrep_indicator_count; i++) {
        const zrep_indicator_t *ind = &zrep_indicators[i];
        Zhili__Reporting__Indicator *m = zsvc_alloc(ctx, sizeof *m);
        zhili__reporting__indicator__init(m);
        m->code = (char *)ind->code;
        m->name = (char *)ind->name;
        m->kind = (char *)zrep_kind_name(ind->kind);
        m->source = (char *)ind->source;
        m->pending = ind->pending;
        m->formula = (char *)ind->formula;
        m->parts_fen = ind->parts_fen;
        out[i] = m;
    }
    *n = (size_t)zrep_indicator_count;
    return out;
}

static int level_arg(zsvc_ctx_t *ctx, const char *text, zarea_level_t area_level,
                     zarea_level_t *out)
{
    if (text[0] == '\0') {
        *out = (zarea_level_t)(area_level + 1);
        return 0;
    }
    if (zrep_level_parse(text, out) != 0) {
        return zsvc_fail(ctx, ZE_INVALID, "level",
                         "level must be district, street, community, grid (compound), building "
                         "or 1..5, got \"%.20s\"",
                         text);
    }
    if (*out <= area_level) {
        return zsvc_fail(ctx, ZE_INVALID, "level",
                         "level %s is not below the area's level (%s): rows are the areas under "
                         "it",
                         text, zrep_level_code(area_level));
    }
    return 0;
}

static void subtract(int64_t *into, const int64_t *what)
{
    for (int i = 0; i < ZREP_MEASURES_MAX; i++) {
        into[i] -= what[i];
    }
}

static bool any(const int64_t *m)
{
    for (int i = 0; i < ZREP_MEASURES_MAX; i++) {
        if (m[i] != 0) {
            return true;
        }
    }
    return false;
}

int zrh_report_get(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Reporting__ReportGet *q = cmd->report_get;
    zarea_level_t area_level, level;
    zrep_period_t cur;
    int rc = area_arg(ctx, cmd, ZAREA_GRID, &area_level);
    if (rc == 0) {
        rc = period_arg(ctx, q->period, &cur);
    }
    if (rc == 0) {
        rc = level_arg(ctx, q->level, area_level, &level);
    }
    if (rc != 0) {
        return rc;
    }
    const char *area = cmd->area;
    zrep_period_t prev = zrep_period_previous_year(cur);
    zrs_t t;
    zrh_tables(ctx, &t);
    uint8_t gen = zrs_gen(ctx->txn);
    area_list_t kids;
    if (children(ctx, &t, gen, area, level, cur, prev, ZREP_ROWS_MAX, &kids) != 0) {
        return zsvc_fail(ctx, ZE_INVALID, "level",
                         "more than %d areas at level %s under \"%s\": ask for a narrower area or "
                         "a higher level",
                         ZREP_ROWS_MAX, zrep_level_code(level), area);
    }
    Zhili__Reporting__Report *r = zsvc_alloc(ctx, sizeof *r);
    zhili__reporting__report__init(r);
    char pbuf[8];
    r->area = zsvc_strdup(ctx, area);
    zrep_period_format(cur, pbuf);
    r->period = zsvc_strdup(ctx, pbuf);
    zrep_period_format(prev, pbuf);
    r->previous_period = zsvc_strdup(ctx, pbuf);
    r->level = (char *)zrep_level_code(level);
    r->indicators = indicators_msg(ctx, &r->n_indicators);
    row_measures_t *total = zsvc_alloc(ctx, sizeof *total), *rest = zsvc_alloc(ctx, sizeof *rest);
    row_measures_t *m = zsvc_alloc(ctx, sizeof *m);
    zrs_measures_load(ctx->txn, &t, gen, area, cur, total->cur);
    zrs_measures_load(ctx->txn, &t, gen, area, prev, total->prev);
    *rest = *total;
    r->rows = zsvc_alloc(ctx, (size_t)kids.count * sizeof *r->rows);
    for (int i = 0; i < kids.count; i++) {
        zrs_measures_load(ctx->txn, &t, gen, kids.areas[i], cur, m->cur);
        zrs_measures_load(ctx->txn, &t, gen, kids.areas[i], prev, m->prev);
        subtract(rest->cur, m->cur);
        subtract(rest->prev, m->prev);
        r->rows[r->n_rows++] = row_msg(ctx, &t, gen, kids.areas[i], m);
    }
    r->total = row_msg(ctx, &t, gen, area, total);
    if (any(rest->cur) || any(rest->prev)) {
        r->unallocated = row_msg(ctx, &t, gen, area, rest);
        r->unallocated->name = "本级及未细分 (not in any row)";
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_REPORT;
    ctx->reply->report = r;
    return ztxn_err(ctx->txn);
}

/* ---- drill-down ---------------------------------------------------------- */

/* A part of a cell: the events of one measure. */
typedef struct {
    const char *part;
    uint8_t measure;
} stream_t;

static int streams_of(const zrep_indicator_t *ind, const char *part, stream_t out[3])
{
    stream_t all[3];
    int n = 0;
    if (ind->pending || ind->kind == ZREP_KIND_SCORE) {
        return 0;
    }
    if (ind->kind != ZREP_KIND_RATE) {
        all[n++] = (stream_t){"value", ind->num};
    } else {
        all[n++] = (stream_t){"numerator", ind->num};
        for (int i = 0; i < ZREP_DEN_MEASURES_MAX; i++) {
            if (ind->den[i] != ZREP_M_NONE) {
                all[n++] = (stream_t){"denominator", ind->den[i]};
            }
        }
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (part[0] == '\0' || strcmp(part, all[i].part) == 0) {
            out[k++] = all[i];
        }
    }
    return k;
}

typedef struct {
    zsvc_ctx_t *ctx;
    Zhili__Reporting__Cells *out;
    int limit, stream;
    const char *part;
    int streams[ZREP_CELLS_PAGE_MAX + 1];
    uint8_t keys[ZREP_CELLS_PAGE_MAX + 1][ZRS_REF_KEY_BYTES - 1];
} page_t;

static int on_ref(void *arg, const zrs_ref_t *r)
{
    page_t *p = arg;
    size_t i = p->out->n_events;
    if ((int)i == p->limit + 1) {
        return 1;
    }
    Zhili__Reporting__EventRef *e = zsvc_alloc(p->ctx, sizeof *e);
    zhili__reporting__event_ref__init(e);
    e->source = (char *)zrs_source_name(r->source);
    e->seq = r->seq;
    e->type = zsvc_strdup(p->ctx, r->type);
    e->ts_ms = r->ts_ms;
    char when[ZTIME_RFC3339_BYTES];
    ztime_format(r->ts_ms, when);
    e->time = zsvc_strdup(p->ctx, when);
    e->area = zsvc_strdup(p->ctx, r->area);
    e->part = (char *)p->part;
    e->amount = r->amount;
    p->streams[i] = p->stream;
    memcpy(p->keys[i], r->key, sizeof p->keys[i]);
    p->out->events[p->out->n_events++] = e;
    return (int)p->out->n_events == p->limit + 1;
}

typedef struct {
    int stream;
    bool set;
    zrs_ref_t key;
} cursor_t;

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "<stream>:<hex of the last key>". */
static int cursor_parse(const char *text, int streams, cursor_t *c)
{
    memset(c, 0, sizeof *c);
    if (text[0] == '\0') {
        return 0;
    }
    const size_t hex = 2 * (ZRS_REF_KEY_BYTES - 1);
    if (strlen(text) != 2 + hex || text[1] != ':' || text[0] < '0' || text[0] - '0' >= streams) {
        return -1;
    }
    uint8_t key[ZRS_REF_KEY_BYTES - 1];
    for (size_t i = 0; i < sizeof key; i++) {
        int hi = hexval(text[2 + 2 * i]), lo = hexval(text[3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    c->stream = text[0] - '0';
    c->set = true;
    return zrs_ref_key_parse(key, &c->key);
}

static void cursor_format(zsvc_ctx_t *ctx, int stream, const uint8_t *key, char **out)
{
    char *s = zsvc_alloc(ctx, 3 + 2 * (ZRS_REF_KEY_BYTES - 1));
    s[0] = (char)('0' + stream);
    s[1] = ':';
    for (size_t i = 0; i < ZRS_REF_KEY_BYTES - 1; i++) {
        snprintf(s + 2 + 2 * i, 3, "%02x", key[i]);
    }
    *out = s;
}

/* Months whose references make up the cell: the period's (for a year also
 * its month 00, where changes that count in the year only are filed), or for
 * a stock every month up to the period's end. */
static int first_month(const zrep_indicator_t *ind, zrep_period_t p)
{
    bool stock = ind->kind == ZREP_KIND_STOCK || ind->kind == ZREP_KIND_STOCK_FEN;
    return stock ? ZREP_YEAR_MIN * 100 + 1 : p.year ? p.key * 100 : zrep_period_first_month(p);
}

static int cells_args(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd, zrep_period_t *period,
                      const zrep_indicator_t **ind, int *limit)
{
    const Zhili__Reporting__CellsGet *q = cmd->report_cells;
    zarea_level_t level;
    int rc = area_arg(ctx, cmd, ZAREA_BUILDING, &level);
    if (rc != 0 || (rc = period_arg(ctx, q->period, period)) != 0) {
        return rc;
    }
    *ind = zrep_indicator_find(q->indicator);
    if (*ind == NULL) {
        return zsvc_fail(ctx, ZE_INVALID, "indicator",
                         "indicator must be one of the codes in the report's indicators "
                         "(e.g. ontime_sign_rate), got \"%.40s\"",
                         q->indicator);
    }
    bool rate = (*ind)->kind == ZREP_KIND_RATE;
    if (q->part[0] != '\0' &&
        (rate ? strcmp(q->part, "numerator") != 0 && strcmp(q->part, "denominator") != 0
              : strcmp(q->part, "value") != 0)) {
        return zsvc_fail(ctx, ZE_INVALID, "part", "part must be %s, got \"%.20s\"",
                         rate ? "numerator or denominator" : "value", q->part);
    }
    if (q->limit < 0 || q->limit > ZREP_CELLS_PAGE_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "limit", "limit must be 1 to %d", ZREP_CELLS_PAGE_MAX);
    }
    *limit = q->limit == 0 ? ZREP_CELLS_PAGE_DEFAULT : (int)q->limit;
    return 0;
}

/* The cursor must name a reference of this very query. */
static bool cursor_fits(const cursor_t *c, const stream_t *s, const char *area, int first, int last)
{
    return !c->set || (c->key.measure == s[c->stream].measure && c->key.month >= first &&
                       c->key.month <= last && zarea_within(area, c->key.area));
}

int zrh_cells_get(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    zrep_period_t period = {0, false};
    const zrep_indicator_t *ind = NULL;
    int limit = ZREP_CELLS_PAGE_DEFAULT;
    int rc = cells_args(ctx, cmd, &period, &ind, &limit);
    if (rc != 0) {
        return rc;
    }
    const char *area = cmd->area;
    stream_t streams[3];
    int n = streams_of(ind, cmd->report_cells->part, streams);
    int first = first_month(ind, period), last = zrep_period_last_month(period);
    cursor_t c;
    if (cursor_parse(cmd->report_cells->cursor, n, &c) != 0 ||
        !cursor_fits(&c, streams, area, first, last)) {
        return zsvc_fail(ctx, ZE_INVALID, "cursor",
                         "cursor is not one this query gave (pass next_cursor unchanged, with the "
                         "same area, period, indicator and part)");
    }
    zrs_t t;
    zrh_tables(ctx, &t);
    uint8_t gen = zrs_gen(ctx->txn);
    Zhili__Reporting__Cells *out = zsvc_alloc(ctx, sizeof *out);
    zhili__reporting__cells__init(out);
    out->area = zsvc_strdup(ctx, area);
    char pbuf[8];
    zrep_period_format(period, pbuf);
    out->period = zsvc_strdup(ctx, pbuf);
    out->indicator = (char *)ind->code;
    int64_t measures[ZREP_MEASURES_MAX];
    zrs_measures_load(ctx->txn, &t, gen, area, period, measures);
    zrep_figure_t f;
    zrep_figure(ind, measures, &f);
    out->figure = zrh_figure_msg(ctx, &f);
    out->events = zsvc_alloc(ctx, (size_t)(limit + 1) * sizeof *out->events);
    page_t *p = zsvc_alloc(ctx, sizeof *p);
    p->ctx = ctx;
    p->out = out;
    p->limit = limit;
    for (int s = c.set ? c.stream : 0; s < n && (int)out->n_events <= limit; s++) {
        bool resume = c.set && s == c.stream;
        p->stream = s;
        p->part = streams[s].part;
        for (int m = resume ? c.key.month : first; m <= last && (int)out->n_events <= limit;
             m = zrep_month_next(m)) {
            const uint8_t *after = resume && m == c.key.month ? c.key.key : NULL;
            zrs_refs_scan(ctx->txn, &t, gen, m, streams[s].measure, area, after, p, on_ref);
        }
    }
    if ((int)out->n_events > limit) {
        out->n_events = (size_t)limit;
        cursor_format(ctx, p->streams[limit - 1], p->keys[limit - 1], &out->next_cursor);
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_REPORT_CELLS;
    ctx->reply->report_cells = out;
    return ztxn_err(ctx->txn);
}

/* ---- the red/black list -------------------------------------------------- */

static Zhili__Reporting__RedBlackEntry *entry_msg(zsvc_ctx_t *ctx, const zrs_t *t, uint8_t gen,
                                                  const char *area, zrep_period_t month)
{
    int64_t m[ZREP_MEASURES_MAX];
    zrs_measures_load(ctx->txn, t, gen, area, month, m);
    Zhili__Reporting__RedBlackEntry *e = zsvc_alloc(ctx, sizeof *e);
    zhili__reporting__red_black_entry__init(e);
    e->area = zsvc_strdup(ctx, area);
    char name[ZREP_NAME_BYTES_MAX + 1];
    zrs_name_get(ctx->txn, t, gen, area, name, sizeof name);
    e->name = zsvc_strdup(ctx, name);
    e->complaints = m[ZREP_M_PROP_COMPLAINTS];
    e->complaints_overdue = m[ZREP_M_PROP_OVERDUE];
    e->complaints_replied = m[ZREP_M_PROP_REPLIED];
    /* The score and the account check come from budgets (not consumed yet). */
    zrep_property_month_t pm = {false, 0, false, e->complaints_overdue};
    const char *reasons[ZREP_REASONS_MAX];
    int nr = 0;
    e->list = (char *)zrep_list_name(zrep_redblack(&pm, reasons, &nr));
    e->reasons = zsvc_alloc(ctx, ZREP_REASONS_MAX * sizeof *e->reasons);
    for (int i = 0; i < nr; i++) {
        e->reasons[e->n_reasons++] = (char *)reasons[i];
    }
    return e;
}

int zrh_redblack_get(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    zarea_level_t level;
    zrep_period_t month;
    int rc = area_arg(ctx, cmd, ZAREA_GRID, &level);
    if (rc == 0) {
        rc = period_arg(ctx, cmd->report_redblack->period, &month);
    }
    if (rc == 0 && month.year) {
        rc = zsvc_fail(ctx, ZE_INVALID, "period",
                       "the red/black list is monthly: give a month like 2026-10");
    }
    if (rc != 0) {
        return rc;
    }
    const char *area = cmd->area;
    zrs_t t;
    zrh_tables(ctx, &t);
    uint8_t gen = zrs_gen(ctx->txn);
    area_list_t compounds = {0};
    if (level == ZAREA_GRID) {
        compounds.areas = zsvc_alloc(ctx, sizeof *compounds.areas);
        snprintf(compounds.areas[0], ZREP_AREA_BUF, "%s", area);
        compounds.count = 1;
    } else if (children(ctx, &t, gen, area, ZAREA_GRID, month, month, ZREP_REDBLACK_ROWS_MAX,
                        &compounds) != 0) {
        return zsvc_fail(ctx, ZE_INVALID, "area",
                         "more than %d compounds under \"%s\": ask for a narrower area",
                         ZREP_REDBLACK_ROWS_MAX, area);
    }
    Zhili__Reporting__RedBlack *out = zsvc_alloc(ctx, sizeof *out);
    zhili__reporting__red_black__init(out);
    out->area = zsvc_strdup(ctx, area);
    char pbuf[8];
    zrep_period_format(month, pbuf);
    out->period = zsvc_strdup(ctx, pbuf);
    out->score_pending = true;
    out->entries = zsvc_alloc(ctx, (size_t)compounds.count * sizeof *out->entries);
    for (int i = 0; i < compounds.count; i++) {
        out->entries[out->n_entries++] = entry_msg(ctx, &t, gen, compounds.areas[i], month);
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_REPORT_REDBLACK;
    ctx->reply->report_redblack = out;
    return ztxn_err(ctx->txn);
}

/* ---- alert states -------------------------------------------------------- */

typedef struct {
    zsvc_ctx_t *ctx;
    const char *scope;
    Zhili__Reporting__Alerts *out;
} alerts_acc_t;

static bool configured(const zrh_config_t *cfg, const char *rule)
{
    for (int i = 0; i < cfg->alerts.count; i++) {
        if (strcmp(cfg->alerts.rules[i].name, rule) == 0) {
            return true;
        }
    }
    return false;
}

static int on_alert(void *arg, const char *rule, const char *area, zval_t packed)
{
    alerts_acc_t *a = arg;
    if (!zarea_within(a->scope, area)) {
        return 0;
    }
    if (a->out->n_alerts == ZREP_ALERTS_LIST_MAX) {
        return 1;
    }
    Zhili__Reporting__Alert *al = (Zhili__Reporting__Alert *)protobuf_c_message_unpack(
        &zhili__reporting__alert__descriptor, NULL, packed.len, packed.data);
    if (al == NULL) {
        return 0; /* a damaged row is not worth failing the list for */
    }
    /* Copy into the arena: the unpacked message is freed here. */
    Zhili__Reporting__Alert *copy = zsvc_alloc(a->ctx, sizeof *copy);
    zhili__reporting__alert__init(copy);
    copy->rule = zsvc_strdup(a->ctx, rule);
    copy->indicator = zsvc_strdup(a->ctx, al->indicator);
    copy->area = zsvc_strdup(a->ctx, area);
    copy->period = zsvc_strdup(a->ctx, al->period);
    copy->comparison = zsvc_strdup(a->ctx, al->comparison);
    copy->threshold = al->threshold;
    copy->value = al->value;
    copy->numerator = al->numerator;
    copy->denominator = al->denominator;
    copy->active = al->active;
    copy->changed_ms = al->changed_ms;
    copy->configured = configured(a->ctx->user, rule);
    zhili__reporting__alert__free_unpacked(al, NULL);
    a->out->alerts[a->out->n_alerts++] = copy;
    return 0;
}

int zrh_alerts_list(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    zrs_t t;
    zrh_tables(ctx, &t);
    Zhili__Reporting__Alerts *out = zsvc_alloc(ctx, sizeof *out);
    zhili__reporting__alerts__init(out);
    out->alerts = zsvc_alloc(ctx, ZREP_ALERTS_LIST_MAX * sizeof *out->alerts);
    /* ?area= narrows the list (the gateway has checked it lies in the scope). */
    const char *scope = zrh_scope(cmd);
    const char *within = cmd->area != NULL && cmd->area[0] != '\0' && zarea_within(scope, cmd->area)
                             ? cmd->area
                             : scope;
    alerts_acc_t a = {ctx, within, out};
    zrs_alerts_scan(ctx->txn, &t, NULL, &a, on_alert);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_REPORT_ALERTS;
    ctx->reply->report_alerts = out;
    return ztxn_err(ctx->txn);
}
