/* The reporting service's writes: consumed events (the projection), the
 * rebuild command, the timer (alerts, purge) and its figures. */
#include "services/reporting/handlers.h"

#include <stdio.h>
#include <string.h>

#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"

const char *const zrh_subscribe[] = {"petitions.", "grid.", "funds.", "budgets.", NULL};

/* Source names of zrh_subscribe, for cursors and rebuild targets. */
static const char *const sources[] = {"petitions", "grid", "funds", "budgets"};

void zrh_tables(zsvc_ctx_t *ctx, zrs_t *t)
{
    zrs_init(t, zsvc_store(ctx->svc));
}

const char *zrh_scope(const Zhili__V1__Command *cmd)
{
    return cmd != NULL && cmd->actor != NULL && cmd->actor->area != NULL ? cmd->actor->area : "";
}

bool zrh_rebuilding(ztxn_t *txn)
{
    for (size_t i = 0; i < ZARRAY_LEN(sources); i++) {
        if (zrs_target_get(txn, sources[i]) != 0) {
            return true;
        }
    }
    return false;
}

/* ---- consumed events ---------------------------------------------------- */

/* grid's units name the rows (桃源社区). */
static void unit_name(zsvc_ctx_t *ctx, const zrs_t *t, uint8_t gen, const Zhili__V1__Event *ev)
{
    const Zhili__Grid__Unit *u = ev->grid_unit;
    if (u == NULL || !zarea_valid(u->code)) {
        return;
    }
    if (strcmp(ev->type, "unit_removed") == 0 || u->removed) {
        zrs_name_del(ctx->txn, t, gen, u->code);
    } else if (strcmp(ev->type, "unit_upserted") == 0) {
        zrs_name_put(ctx->txn, t, gen, u->code, u->name);
    }
}

/* The month and year a change counts in: the event's own (local calendar),
 * or the period the rules name (a fee's); an annual period counts in the
 * year only, and its drill-down references file under the year's month 00
 * (202600), which a year's drill-down walks and no month's does. */
static void periods(const Zhili__V1__Event *ev, const zrep_contribs_t *c, zrep_period_t *month,
                    zrep_period_t *year, bool *month_too)
{
    *month_too = true;
    if (!c->has_period) {
        *month = zrep_period_month_of(ev->ts_ms);
        *year = zrep_period_year_of(ev->ts_ms);
    } else if (c->period.year) {
        *year = c->period;
        *month = (zrep_period_t){c->period.key * 100, false};
        *month_too = false;
    } else {
        *month = c->period;
        *year = (zrep_period_t){c->period.key / 100, true};
    }
}

/* One measure's change: counters at every level of the roll-up, for the
 * month and the year; the reference at the event's own area. */
static void apply(zsvc_ctx_t *ctx, const zrs_t *t, uint8_t gen, const Zhili__V1__Event *ev,
                  const zrep_contribs_t *all, const zrep_contrib_t *c)
{
    char levels[ZREP_LEVELS][ZREP_AREA_BUF];
    int n = zrep_rollup(ev->area, levels);
    zrep_period_t month, year;
    bool month_too;
    periods(ev, all, &month, &year, &month_too);
    bool stock = zrep_measure_is_stock(c->measure);
    for (int i = 0; i < n; i++) {
        if (stock) {
            zrs_stock_add(ctx->txn, t, gen, levels[i], month.key, c->measure, c->amount);
            continue;
        }
        if (month_too) {
            zrs_counter_add(ctx->txn, t, gen, levels[i], month, c->measure, c->amount);
        }
        zrs_counter_add(ctx->txn, t, gen, levels[i], year, c->measure, c->amount);
    }
    zrs_ref_put(ctx->txn, t, gen, month.key, c->measure, levels[n - 1], zrs_source_id(ev->source),
                ev->seq, ev->ts_ms, c->amount, ev->type);
}

/* budgets.execution_published: the month's sums less what the same compound
 * and month added before, so a month published again never counts twice. */
static void execution(zsvc_ctx_t *ctx, const zrs_t *t, uint8_t gen, const Zhili__V1__Event *ev,
                      int month)
{
    zrep_exec_t counted;
    zrs_exec_get(ctx->txn, t, gen, ev->area, month, &counted);
    zrep_contribs_t c;
    if (zrep_execution_contribs(ev, &counted, &c) != 0) {
        zlog(ZLOG_WARN, "execution_not_counted", "area", ev->area, NULL);
        return;
    }
    zrs_exec_put(ctx->txn, t, gen, ev->area, month, &counted);
    for (int i = 0; i < c.count; i++) {
        apply(ctx, t, gen, ev, &c, &c.items[i]);
    }
}

int zrh_on_event(zsvc_ctx_t *ctx, const Zhili__V1__Event *ev)
{
    zrs_t t;
    zrh_tables(ctx, &t);
    uint8_t gen = zrs_gen(ctx->txn);
    if (ev->body_case == ZHILI__V1__EVENT__BODY_GRID_UNIT) {
        unit_name(ctx, &t, gen, ev);
        return ztxn_err(ctx->txn);
    }
    int exec_month = zrep_execution_month(ev);
    if (exec_month != 0) {
        execution(ctx, &t, gen, ev, exec_month);
        return ztxn_err(ctx->txn);
    }
    const char *pid = NULL;
    uint8_t flags = 0;
    if (ev->body_case == ZHILI__V1__EVENT__BODY_PETITION_CHANGE && ev->petition_change != NULL) {
        pid = ev->petition_change->id;
        flags = zrs_pet_get(ctx->txn, &t, gen, pid);
    }
    uint8_t before = flags;
    zrep_contribs_t c;
    zrep_event_contribs(ev, &flags, &c);
    if (c.petition && pid != NULL) {
        if (c.petition_done) {
            zrs_pet_del(ctx->txn, &t, gen, pid);
        } else if (flags != before) {
            zrs_pet_put(ctx->txn, &t, gen, pid, flags);
        }
    }
    for (int i = 0; i < c.count; i++) {
        apply(ctx, &t, gen, ev, &c, &c.items[i]);
    }
    return ztxn_err(ctx->txn);
}

/* ---- rebuild ------------------------------------------------------------ */

static int rebuild(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    if (zrh_scope(cmd)[0] != '\0') {
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL,
                         "a rebuild drops the whole table; only a caller whose scope is "
                         "everywhere (an operator, zhilictl) may start it");
    }
    zrs_t t;
    zrh_tables(ctx, &t);
    uint8_t gen = zrs_gen(ctx->txn), next = zrs_gen_next(gen);
    if (zrs_gen_used(ctx->txn, &t, next)) {
        return zsvc_fail(ctx, ZE_CONFLICT, NULL,
                         "the rows of an earlier rebuild are still being removed; try again "
                         "in a minute");
    }
    Zhili__Reporting__RebuildStarted *rs = zsvc_alloc(ctx, sizeof *rs);
    zhili__reporting__rebuild_started__init(rs);
    rs->generation = next;
    rs->sources = zsvc_alloc(ctx, ZARRAY_LEN(sources) * sizeof *rs->sources);
    for (size_t i = 0; i < ZARRAY_LEN(sources); i++) {
        /* Alerts wait until the replay is back where the table was. */
        uint64_t cursor = ztxn_cursor_get(ctx->txn, sources[i]);
        uint64_t target = zrs_target_get(ctx->txn, sources[i]);
        zrs_target_set(ctx->txn, sources[i], cursor > target ? cursor : target);
        Zhili__Reporting__SourceCursor *sc = zsvc_alloc(ctx, sizeof *sc);
        zhili__reporting__source_cursor__init(sc);
        sc->source = (char *)sources[i];
        sc->seq = cursor;
        rs->sources[rs->n_sources++] = sc;
    }
    zrs_gen_set(ctx->txn, next);
    zsvc_consumed_reset(ctx);
    zsvc_emit(ctx, "rebuild_started", "", ZHILI__V1__EVENT__BODY_REPORTING_REBUILD, rs);
    zlogf(ZLOG_INFO, "rebuild_started", "generation %u", next);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_REPORT_REBUILD;
    ctx->reply->report_rebuild = rs;
    return ztxn_err(ctx->txn);
}

int zrh_on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    if (cmd->body_case == ZHILI__V1__COMMAND__BODY_REPORT_REBUILD) {
        return rebuild(ctx, cmd);
    }
    return zsvc_fail(ctx, ZE_INVALID, "body",
                     "the reporting service takes report_get, report_cells, report_redblack, "
                     "report_alerts and report_rebuild");
}

bool zrh_is_query(const Zhili__V1__Command *cmd)
{
    return cmd->body_case == ZHILI__V1__COMMAND__BODY_REPORT_GET ||
           cmd->body_case == ZHILI__V1__COMMAND__BODY_REPORT_CELLS ||
           cmd->body_case == ZHILI__V1__COMMAND__BODY_REPORT_REDBLACK ||
           cmd->body_case == ZHILI__V1__COMMAND__BODY_REPORT_ALERTS;
}

int zrh_on_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_REPORT_GET:
        return zrh_report_get(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_REPORT_CELLS:
        return zrh_cells_get(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_REPORT_REDBLACK:
        return zrh_redblack_get(ctx, cmd);
    default:
        return zrh_alerts_list(ctx, cmd);
    }
}

/* ---- the timer: alerts -------------------------------------------------- */

typedef struct {
    char (*areas)[ZREP_AREA_BUF];
    int count;
} areas_t;

static int on_area(void *arg, const char *area)
{
    areas_t *a = arg;
    if (a->count == ZREP_ALERT_AREAS_PER_TICK) {
        return 1;
    }
    snprintf(a->areas[a->count++], ZREP_AREA_BUF, "%s", area);
    return 0;
}

static int on_active(void *arg, const char *rule, const char *area, zval_t packed)
{
    (void)rule;
    Zhili__Reporting__Alert *al = (Zhili__Reporting__Alert *)protobuf_c_message_unpack(
        &zhili__reporting__alert__descriptor, NULL, packed.len, packed.data);
    bool active = al != NULL && al->active;
    if (al != NULL) {
        zhili__reporting__alert__free_unpacked(al, NULL);
    }
    return active ? on_area(arg, area) : 0;
}

static bool alert_active(zsvc_ctx_t *ctx, const zrs_t *t, const char *rule, const char *area)
{
    zval_t v;
    if (zrs_alert_get(ctx->txn, t, rule, area, &v) != 0) {
        return false;
    }
    Zhili__Reporting__Alert *al = (Zhili__Reporting__Alert *)protobuf_c_message_unpack(
        &zhili__reporting__alert__descriptor, NULL, v.len, v.data);
    bool active = al != NULL && al->active;
    if (al != NULL) {
        zhili__reporting__alert__free_unpacked(al, NULL);
    }
    return active;
}

/* A crossing: the state and its event in one transaction, so each crossing
 * is announced exactly once, across restarts too. */
static void alert_change(zsvc_ctx_t *ctx, const zrs_t *t, const zrep_alert_rule_t *r,
                         const char *area, zrep_period_t month, const zrep_figure_t *f,
                         double value, bool raise)
{
    Zhili__Reporting__Alert *al = zsvc_alloc(ctx, sizeof *al);
    zhili__reporting__alert__init(al);
    char period[8];
    zrep_period_format(month, period);
    al->rule = zsvc_strdup(ctx, r->name);
    al->indicator = (char *)r->indicator->code;
    al->area = zsvc_strdup(ctx, area);
    al->period = zsvc_strdup(ctx, period);
    al->comparison = (char *)zrep_cmp_name(r->cmp);
    al->threshold = r->threshold;
    al->value = value;
    al->numerator = f->numerator;
    al->denominator = f->denominator;
    al->active = raise;
    al->changed_ms = ctx->now_ms;
    al->configured = true;
    size_t len = protobuf_c_message_get_packed_size(&al->base);
    uint8_t *buf = zsvc_alloc(ctx, len);
    protobuf_c_message_pack(&al->base, buf);
    zrs_alert_put(ctx->txn, t, r->name, area, buf, len);
    zsvc_emit(ctx, raise ? "alert" : "alert_cleared", area, ZHILI__V1__EVENT__BODY_REPORTING_ALERT,
              al);
}

static void rule_evaluate(zsvc_ctx_t *ctx, const zrs_t *t, uint8_t gen, const zrep_alert_rule_t *r,
                          zrep_period_t month)
{
    areas_t a = {zsvc_alloc(ctx, ZREP_ALERT_AREAS_PER_TICK * sizeof *a.areas), 0};
    /* The areas with figures this month, then those with a raised alert (a
     * new month may bring them back inside the rule). */
    zrs_areas_scan(ctx->txn, t, gen, month, r->level, "", &a, on_area);
    zrs_alerts_scan(ctx->txn, t, r->name, &a, on_active);
    int64_t measures[ZREP_MEASURES_MAX];
    for (int i = 0; i < a.count; i++) {
        zrs_measures_load(ctx->txn, t, gen, a.areas[i], month, measures);
        zrep_figure_t f;
        zrep_figure(r->indicator, measures, &f);
        double value = 0;
        bool active = alert_active(ctx, t, r->name, a.areas[i]);
        zrep_alert_step_t step = zrep_alert_step(r, &f, active, &value);
        if (step != ZREP_ALERT_KEEP) {
            alert_change(ctx, t, r, a.areas[i], month, &f, value, step == ZREP_ALERT_RAISE);
        }
    }
}

/* Rebuild targets reached are forgotten; true while any remains. */
static bool rebuild_progress(ztxn_t *txn)
{
    bool waiting = false;
    for (size_t i = 0; i < ZARRAY_LEN(sources); i++) {
        uint64_t target = zrs_target_get(txn, sources[i]);
        if (target == 0) {
            continue;
        }
        if (ztxn_cursor_get(txn, sources[i]) >= target) {
            zrs_target_set(txn, sources[i], 0);
            zlog(ZLOG_INFO, "rebuild_caught_up", "source", sources[i], NULL);
        } else {
            waiting = true;
        }
    }
    return waiting;
}

int zrh_on_tick(zsvc_ctx_t *ctx)
{
    const zrh_config_t *cfg = ctx->user;
    zrs_t t;
    zrh_tables(ctx, &t);
    uint8_t gen = zrs_gen(ctx->txn);
    int purged = zrs_purge(ctx->txn, &t, gen, ctx->arena, ZREP_PURGE_ROWS_PER_TICK);
    if (purged < 0) {
        return purged;
    }
    if (rebuild_progress(ctx->txn)) {
        return ztxn_err(ctx->txn); /* alerts were judged on the table before; they wait */
    }
    zrep_period_t month = zrep_period_month_of(ctx->now_ms);
    zrep_period_t ended = {month.key % 100 == 1 ? (month.key / 100 - 1) * 100 + 12 : month.key - 1,
                           false};
    for (int i = 0; i < cfg->alerts.count; i++) {
        const zrep_alert_rule_t *r = &cfg->alerts.rules[i];
        rule_evaluate(ctx, &t, gen, r, r->indicator->after_month ? ended : month);
    }
    return ztxn_err(ctx->txn);
}

/* ---- figures ------------------------------------------------------------ */

static int count_active(void *arg, const char *rule, const char *area, zval_t packed)
{
    (void)rule;
    (void)area;
    Zhili__Reporting__Alert *al = (Zhili__Reporting__Alert *)protobuf_c_message_unpack(
        &zhili__reporting__alert__descriptor, NULL, packed.len, packed.data);
    if (al != NULL) {
        *(int64_t *)arg += al->active;
        zhili__reporting__alert__free_unpacked(al, NULL);
    }
    return 0;
}

int zrh_on_stats(zsvc_ctx_t *ctx)
{
    const zrh_config_t *cfg = ctx->user;
    zrs_t t;
    zrh_tables(ctx, &t);
    int64_t active = 0;
    zrs_alerts_scan(ctx->txn, &t, NULL, &active, count_active);
    zsvc_stat_add(ctx, "reporting_generation", zrs_gen(ctx->txn), "");
    zsvc_stat_add(ctx, "reporting_rebuilding", zrh_rebuilding(ctx->txn), "");
    zsvc_stat_add(ctx, "reporting_alert_rules", cfg->alerts.count, "");
    zsvc_stat_add(ctx, "reporting_alerts_active", active, "");
    return ztxn_err(ctx->txn);
}
