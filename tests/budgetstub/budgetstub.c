/* zhili-budgetstub: a test double of the budgets service (not shipped). It
 * registers as "budgets" on the real runtime and answers the line
 * reservation contract funds relies on (proto/budgets.proto, docs/funds.md
 * "The budgets contract") from a line table in its own LMDB, so end-to-end
 * tests exercise the real call path: LineReserve, LineConsume, LineRelease,
 * idempotent by withdrawal id.
 *
 * Lines come from ZHILI_BUDGETSTUB_LINES="area:year:line:budget_fen,..." and,
 * for any other line, ZHILI_BUDGETSTUB_DEFAULT_FEN (unset: NOT_FOUND). With
 * ZHILI_BUDGETSTUB_DELAY_MS each answer waits that long (a slow budgets).
 * stats reports budgetstub_remaining{line="area:year:line"} per line used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/config.h"
#include "common/err.h"
#include "common/service.h"

#define LINES_MAX 64
#define KEY_BYTES_MAX 160
#define LINE_BYTES_MAX 64
#define ID_BYTES_MAX 64

typedef struct {
    char key[KEY_BYTES_MAX]; /* "area:year:line" */
    int64_t budget;
} line_cfg_t;

typedef struct {
    line_cfg_t lines[LINES_MAX];
    int count;
    int64_t default_fen;
    int delay_ms;
} stub_t;

typedef struct {
    int64_t budget, reserved, spent;
} line_row_t;

typedef struct {
    char line_key[KEY_BYTES_MAX];
    int64_t amount;
    char state; /* 'r' reserved, 'c' consumed, 'x' released */
} resv_row_t;

static const char *const tables[] = {"lines", "reservations", NULL};

static void delay(const stub_t *s)
{
    if (s->delay_ms > 0) {
        struct timespec ts = {s->delay_ms / 1000, (long)(s->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int line_get(zsvc_ctx_t *ctx, const char *key, line_row_t *row)
{
    const stub_t *s = ctx->user;
    zval_t v;
    if (ztxn_get(ctx->txn, zsvc_table(ctx, "lines"), key, strlen(key), &v) == 0 &&
        v.len == sizeof *row) {
        memcpy(row, v.data, sizeof *row);
        return 0;
    }
    for (int i = 0; i < s->count; i++) {
        if (strcmp(s->lines[i].key, key) == 0) {
            *row = (line_row_t){s->lines[i].budget, 0, 0};
            return 0;
        }
    }
    if (s->default_fen > 0) {
        *row = (line_row_t){s->default_fen, 0, 0};
        return 0;
    }
    return ZE_NOT_FOUND;
}

static Zhili__Budgets__LineReservation *answer(zsvc_ctx_t *ctx, const char *wid,
                                               const resv_row_t *r, const line_row_t *line)
{
    Zhili__Budgets__LineReservation *out = zsvc_alloc(ctx, sizeof *out);
    zhili__budgets__line_reservation__init(out);
    const char *colon = strrchr(r->line_key, ':');
    out->line = zsvc_strdup(ctx, colon != NULL ? colon + 1 : r->line_key);
    out->amount = r->amount;
    out->remaining = line != NULL ? line->budget - line->reserved - line->spent : 0;
    out->withdrawal_id = zsvc_strdup(ctx, wid);
    out->state = r->state == 'r' ? "reserved" : r->state == 'c' ? "consumed" : "released";
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_BUDGETS_LINE_RESERVATION;
    ctx->reply->budgets_line_reservation = out;
    return out;
}

static int resv_get(zsvc_ctx_t *ctx, const char *wid, resv_row_t *r)
{
    zval_t v;
    if (ztxn_get(ctx->txn, zsvc_table(ctx, "reservations"), wid, strlen(wid), &v) == 0 &&
        v.len == sizeof *r) {
        memcpy(r, v.data, sizeof *r);
        return 0;
    }
    return ZE_NOT_FOUND;
}

static void put_both(zsvc_ctx_t *ctx, const char *wid, const resv_row_t *r, const line_row_t *l)
{
    ztxn_put(ctx->txn, zsvc_table(ctx, "reservations"), wid, strlen(wid), r, sizeof *r);
    if (l != NULL) {
        ztxn_put(ctx->txn, zsvc_table(ctx, "lines"), r->line_key, strlen(r->line_key), l,
                 sizeof *l);
    }
}

static int reserve(zsvc_ctx_t *ctx, const Zhili__Budgets__LineReserve *q)
{
    if (strlen(q->withdrawal_id) == 0 || strlen(q->withdrawal_id) > ID_BYTES_MAX ||
        strlen(q->line) == 0 || strlen(q->line) > LINE_BYTES_MAX || q->amount <= 0 ||
        strlen(q->area) > 18) {
        return zsvc_fail(ctx, ZE_INVALID, "line",
                         "area, line, withdrawal_id and a positive "
                         "amount are required");
    }
    resv_row_t r;
    memset(&r, 0, sizeof r);
    line_row_t l;
    if (resv_get(ctx, q->withdrawal_id, &r) == 0) {
        if (r.state == 'x' || r.amount != q->amount) {
            return zsvc_fail(ctx, ZE_CONFLICT, "withdrawal_id", "withdrawal %s was already %s",
                             q->withdrawal_id,
                             r.state == 'x' ? "released" : "reserved differently");
        }
        line_get(ctx, r.line_key, &l);
        answer(ctx, q->withdrawal_id, &r, &l);
        return 0;
    }
    snprintf(r.line_key, sizeof r.line_key, "%s:%lld:%s", q->area, (long long)q->year, q->line);
    if (line_get(ctx, r.line_key, &l) != 0) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, "line", "no budget line %s in %lld for %s", q->line,
                         (long long)q->year, q->area);
    }
    int64_t remaining = l.budget - l.reserved - l.spent;
    if (q->amount > remaining) {
        return zsvc_fail(ctx, ZE_CONFLICT, "amount", "预算科目余额不足: line %s has %lld fen left",
                         q->line, (long long)remaining);
    }
    l.reserved += q->amount;
    r.amount = q->amount;
    r.state = 'r';
    put_both(ctx, q->withdrawal_id, &r, &l);
    answer(ctx, q->withdrawal_id, &r, &l);
    return ztxn_err(ctx->txn);
}

static int settle(zsvc_ctx_t *ctx, const char *wid, bool consume)
{
    resv_row_t r;
    memset(&r, 0, sizeof r);
    line_row_t l = {0, 0, 0};
    if (resv_get(ctx, wid, &r) != 0) {
        if (consume) {
            return zsvc_fail(ctx, ZE_NOT_FOUND, "withdrawal_id", "no reservation %s", wid);
        }
        r.state = 'x'; /* remembered: a late reserve with this id is refused */
        put_both(ctx, wid, &r, NULL);
        answer(ctx, wid, &r, NULL);
        return ztxn_err(ctx->txn);
    }
    line_get(ctx, r.line_key, &l);
    char want = consume ? 'c' : 'x';
    if (r.state != 'r' && r.state != want) {
        return zsvc_fail(ctx, ZE_CONFLICT, "withdrawal_id", "reservation %s is already %s", wid,
                         r.state == 'c' ? "consumed" : "released");
    }
    if (r.state == 'r') {
        l.reserved -= r.amount;
        if (consume) {
            l.spent += r.amount;
        }
        r.state = want;
        put_both(ctx, wid, &r, &l);
    }
    answer(ctx, wid, &r, &l);
    return ztxn_err(ctx->txn);
}

static int on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    delay(ctx->user);
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_BUDGETS_LINE_RESERVE:
        return reserve(ctx, cmd->budgets_line_reserve);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_LINE_CONSUME:
        return settle(ctx, cmd->budgets_line_consume->withdrawal_id, true);
    case ZHILI__V1__COMMAND__BODY_BUDGETS_LINE_RELEASE:
        return settle(ctx, cmd->budgets_line_release->withdrawal_id, false);
    default:
        break;
    }
    return zsvc_fail(ctx, ZE_INVALID, "body",
                     "the budgets stub takes budgets_line_reserve, "
                     "_consume and _release");
}

static int line_stat(void *arg, zval_t key, zval_t val)
{
    zsvc_ctx_t *ctx = arg;
    line_row_t l;
    if (val.len != sizeof l) {
        return 0;
    }
    memcpy(&l, val.data, sizeof l);
    char labels[KEY_BYTES_MAX + 16];
    snprintf(labels, sizeof labels, "line=\"%.*s\"", (int)key.len, (const char *)key.data);
    zsvc_stat_add(ctx, "budgetstub_remaining", l.budget - l.reserved - l.spent, labels);
    zsvc_stat_add(ctx, "budgetstub_reserved", l.reserved, labels);
    zsvc_stat_add(ctx, "budgetstub_spent", l.spent, labels);
    return 0;
}

static int on_stats(zsvc_ctx_t *ctx)
{
    return ztxn_scan(ctx->txn, zsvc_table(ctx, "lines"), NULL, 0, NULL, 0, ctx, line_stat) < 0
               ? ZE_INTERNAL
               : 0;
}

static void lines_load(stub_t *s)
{
    static char buf[ZCFG_VALUE_BYTES_MAX + 1];
    snprintf(buf, sizeof buf, "%s", zcfg_str("ZHILI_BUDGETSTUB_LINES", ""));
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL && s->count < LINES_MAX;
         tok = strtok_r(NULL, ",", &save)) {
        char *last = strrchr(tok, ':');
        if (last == NULL) {
            zcfg_fail("ZHILI_BUDGETSTUB_LINES", "expected area:year:line:budget_fen, got \"%s\"",
                      tok);
        }
        *last = '\0';
        line_cfg_t *l = &s->lines[s->count++];
        snprintf(l->key, sizeof l->key, "%s", tok);
        l->budget = strtoll(last + 1, NULL, 10);
    }
}

int main(void)
{
    static stub_t stub;
    lines_load(&stub);
    stub.default_fen = zcfg_int("ZHILI_BUDGETSTUB_DEFAULT_FEN", 0, 0, INT64_MAX / 4);
    stub.delay_ms = (int)zcfg_int("ZHILI_BUDGETSTUB_DELAY_MS", 0, 0, 60000);
    zsvc_spec_t spec = {
        .name = "budgets",
        .tables = tables,
        .user = &stub,
        .on_command = on_command,
        .on_stats = on_stats,
    };
    return zsvc_main(&spec);
}
