/* handlers_evals: evaluations (一查三评) of the property service and the
 * monthly score (docs/budgets.md, "Evaluations"). Rows in table "evals":
 * "<area>:<month>:<kind>" (check, questionnaire, branch) and
 * "<area>:<month>:rating:<household>" for the online ratings. */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "services/budgets/budgets.h"
#include "services/budgets/handlers_internal.h"
#include "services/budgets/store.h"

typedef struct {
    int64_t value;  /* score 0..100, rating 1..5, 1/0 for a check */
    int64_t sample; /* questionnaire sample size */
    char note[ZBUD_NOTE_BYTES_MAX + 1];
} eval_row_t;

static bool month_valid(const char *m)
{
    return m != NULL && strlen(m) == 7 && m[4] == '-' && m[0] >= '1' && m[0] <= '2' &&
           m[1] >= '0' && m[1] <= '9' && m[2] >= '0' && m[2] <= '9' && m[3] >= '0' && m[3] <= '9' &&
           ((m[5] == '0' && m[6] >= '1' && m[6] <= '9') ||
            (m[5] == '1' && m[6] >= '0' && m[6] <= '2'));
}

/* Who may record which kind, and the kind's value. */
static int eval_check(zsvc_ctx_t *ctx, const Zhili__Budgets__EvalRecord *q, eval_row_t *row)
{
    const char *k = q->kind != NULL ? q->kind : "";
    bool ok_role;
    memset(row, 0, sizeof *row);
    if (strcmp(k, "account_check") == 0) {
        ok_role = zbh_role_is(ctx, "committee", "supervisor") ||
                  zbh_role_is(ctx, "party_branch", "staff") || zbh_role_is(ctx, "admin", NULL);
        row->value = q->passed ? 1 : 0;
    } else if (strcmp(k, "questionnaire") == 0) {
        ok_role =
            zbh_role_is(ctx, "staff", "committee") || zbh_role_is(ctx, "party_branch", "admin");
        if (q->score < 0 || q->score > 100 || q->sample_size <= 0 || q->sample_size > 1000000) {
            return zsvc_fail(ctx, ZE_INVALID, "score",
                             "a questionnaire has a score 0..100 and "
                             "a sample_size 1..1000000");
        }
        row->value = q->score;
        row->sample = q->sample_size;
    } else if (strcmp(k, "rating") == 0) {
        ok_role = zbh_role_is(ctx, "resident", NULL);
        if (q->rating < 1 || q->rating > 5) {
            return zsvc_fail(ctx, ZE_INVALID, "rating", "a rating is 1..5");
        }
        row->value = q->rating;
    } else if (strcmp(k, "branch") == 0) {
        ok_role = zbh_role_is(ctx, "party_branch", NULL);
        if (q->score < 0 || q->score > 100) {
            return zsvc_fail(ctx, ZE_INVALID, "score", "the party-branch evaluation is 0..100");
        }
        row->value = q->score;
    } else {
        return zsvc_fail(ctx, ZE_INVALID, "kind",
                         "kind is account_check, questionnaire, "
                         "rating or branch");
    }
    if (!ok_role) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "actor", "role \"%s\" does not record %s",
                         zbh_actor_role(ctx), k);
    }
    if (q->note != NULL && strlen(q->note) > ZBUD_NOTE_BYTES_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "note", "note is at most %d bytes", ZBUD_NOTE_BYTES_MAX);
    }
    snprintf(row->note, sizeof row->note, "%s", q->note != NULL ? q->note : "");
    return 0;
}

typedef struct {
    zbud_evals_t e;
    int64_t sample;
    size_t prefix_len;
} score_walk_t;

static int score_row(void *arg, zval_t key, zval_t val)
{
    score_walk_t *w = arg;
    eval_row_t r;
    if (val.len != sizeof r || key.len <= w->prefix_len) {
        return 0;
    }
    memcpy(&r, val.data, sizeof r);
    const char *kind = (const char *)key.data + w->prefix_len;
    size_t klen = key.len - w->prefix_len;
    if (klen == 13 && memcmp(kind, "account_check", 13) == 0) {
        w->e.has_check = true;
        w->e.check_passed = r.value == 1;
    } else if (klen == 13 && memcmp(kind, "questionnaire", 13) == 0) {
        w->e.has_questionnaire = true;
        w->e.questionnaire = r.value;
        w->sample = r.sample;
    } else if (klen == 6 && memcmp(kind, "branch", 6) == 0) {
        w->e.has_branch = true;
        w->e.branch = r.value;
    } else if (klen > 7 && memcmp(kind, "rating:", 7) == 0 && w->e.ratings < ZBUD_RATINGS_MAX) {
        w->e.ratings++;
        w->e.rating_sum += r.value;
    }
    return 0;
}

static Zhili__Budgets__Score *score_msg(zsvc_ctx_t *ctx, const char *area, const char *month)
{
    score_walk_t w;
    memset(&w, 0, sizeof w);
    char prefix[ZBUD_KEY_BYTES_MAX];
    snprintf(prefix, sizeof prefix, "%.15s:%.7s:", area, month);
    w.prefix_len = strlen(prefix);
    ztxn_scan(ctx->txn, zsvc_table(ctx, "evals"), prefix, w.prefix_len, NULL, 0, &w, score_row);
    Zhili__Budgets__Score *s = zsvc_alloc(ctx, sizeof *s);
    zhili__budgets__score__init(s);
    s->area = zsvc_strdup(ctx, area);
    s->month = zsvc_strdup(ctx, month);
    s->score_x100 = zbud_score_x100(&w.e);
    s->account_check = !w.e.has_check ? "" : w.e.check_passed ? "passed" : "failed";
    s->questionnaire = w.e.has_questionnaire ? w.e.questionnaire : -1;
    s->questionnaire_sample = w.sample;
    s->ratings = w.e.ratings;
    s->rating_mean_x100 = w.e.ratings > 0 ? w.e.rating_sum * 100 / w.e.ratings : 0;
    s->branch = w.e.has_branch ? w.e.branch : -1;
    return s;
}

int zbud_eval_record(zsvc_ctx_t *ctx, const Zhili__Budgets__EvalRecord *q)
{
    int rc = 0;
    eval_row_t row;
    if (q->area == NULL || strlen(q->area) != ZBUD_AREA_BYTES) {
        rc = zsvc_fail(ctx, ZE_INVALID, "area", "area must be a compound's 15-digit code");
    }
    if (rc == 0) {
        rc = zbh_resident_or_area_check(ctx, q->area);
    }
    if (rc == 0 && !month_valid(q->month)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "month", "month is YYYY-MM, e.g. 2026-11");
    }
    if (rc == 0) {
        rc = eval_check(ctx, q, &row);
    }
    if (rc != 0) {
        return rc;
    }
    char key[ZBUD_KEY_BYTES_MAX + 80];
    if (strcmp(q->kind, "rating") == 0) {
        const Zhili__V1__Actor *a = ctx->cmd->actor;
        const char *household = a != NULL && a->id != NULL ? a->id : "";
        if (household[0] == '\0' || strlen(household) > 64) {
            return zsvc_fail(ctx, ZE_INVALID, "actor", "a rating needs the household's id");
        }
        snprintf(key, sizeof key, "%.15s:%.7s:rating:%s", q->area, q->month, household);
        zval_t v;
        if (ztxn_get(ctx->txn, zsvc_table(ctx, "evals"), key, strlen(key), &v) == 0) {
            return zsvc_fail(ctx, ZE_CONFLICT, "rating",
                             "this household has already rated "
                             "%s; one rating per household per month",
                             q->month);
        }
    } else {
        snprintf(key, sizeof key, "%.15s:%.7s:%s", q->area, q->month, q->kind);
    }
    ztxn_put(ctx->txn, zsvc_table(ctx, "evals"), key, strlen(key), &row, sizeof row);
    Zhili__Budgets__Score *s = score_msg(ctx, q->area, q->month);
    zsvc_emit(ctx, "evaluated", q->area, ZHILI__V1__EVENT__BODY_BUDGETS_SCORE, s);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_BUDGETS_SCORE;
    ctx->reply->budgets_score = s;
    return ztxn_err(ctx->txn);
}

int zbud_score_get(zsvc_ctx_t *ctx, const Zhili__Budgets__ScoreGet *q)
{
    int rc = zbh_resident_or_area_check(ctx, q->area);
    if (rc == 0 && !month_valid(q->month)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "month", "month is YYYY-MM, e.g. 2026-11");
    }
    if (rc != 0) {
        return rc;
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_BUDGETS_SCORE;
    ctx->reply->budgets_score = score_msg(ctx, q->area, q->month);
    return ztxn_err(ctx->txn);
}
