/* handlers_lists: the three lists (三张清单), progress on the property services
 * (线上更新履约进度) and three-party evaluation meetings (三方评议会)
 * (docs/budgets.md, "The three lists"). Table "lists":
 *   "<area>:S:<S1..S6>"        -> the compound's standard (text)
 *   "<area>:P:" + be64 seq     -> a progress row
 *   "<area>:M:" + be64 seq     -> a meeting row
 * with the sequences in "counters" under "<area>#P" and "<area>#M". */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "services/budgets/budgets.h"
#include "services/budgets/handlers_internal.h"
#include "services/budgets/store.h"

typedef struct {
    char service[4];
    char date[11];
    char note[ZBUD_LIST_TEXT_BYTES_MAX + 1];
    char by[65];
} progress_row_t;

typedef struct {
    char date[11];
    int32_t attendee_count;
    char attendees[ZBUD_ATTENDEES_MAX][ZBUD_ATTENDEE_BYTES_MAX + 1];
    char minutes[ZBUD_MINUTES_BYTES_MAX + 1];
    char by[65];
} meeting_row_t;

static progress_row_t progress_row; /* large rows off the stack; one thread */
static meeting_row_t meeting_row;

static const char *actor_id(const zsvc_ctx_t *ctx)
{
    const Zhili__V1__Actor *a = ctx->cmd != NULL ? ctx->cmd->actor : NULL;
    return a != NULL && a->id != NULL ? a->id : "";
}

static bool text_ok(const char *s, size_t max)
{
    return s != NULL && s[0] != '\0' && strlen(s) <= max;
}

/* Append row under "<area>:<tag>:" + the next sequence number. */
static void list_append(zsvc_ctx_t *ctx, const char *area, char tag, const void *row,
                        size_t row_bytes)
{
    char ckey[ZBUD_KEY_BYTES_MAX];
    snprintf(ckey, sizeof ckey, "%.15s#%c", area, tag);
    int64_t n = 0;
    zbstore_get(ctx->txn, zsvc_table(ctx, "counters"), ckey, &n, sizeof n);
    n++;
    zbstore_put(ctx->txn, zsvc_table(ctx, "counters"), ckey, &n, sizeof n);
    uint8_t key[ZBUD_AREA_BYTES + 3 + 8];
    memcpy(key, area, ZBUD_AREA_BYTES);
    key[ZBUD_AREA_BYTES] = ':';
    key[ZBUD_AREA_BYTES + 1] = (uint8_t)tag;
    key[ZBUD_AREA_BYTES + 2] = ':';
    zstore_be64_put(key + ZBUD_AREA_BYTES + 3, (uint64_t)n);
    ztxn_put(ctx->txn, zsvc_table(ctx, "lists"), key, sizeof key, row, row_bytes);
}

int zbud_standard_set(zsvc_ctx_t *ctx, const Zhili__Budgets__StandardSet *q)
{
    int rc = 0;
    if (!zbh_role_is(ctx, "property", "committee") && !zbh_role_is(ctx, "admin", NULL)) {
        rc = zsvc_fail(ctx, ZE_FORBIDDEN, "actor",
                       "service standards are set by the property "
                       "company or the owners' committee, not role \"%s\"",
                       zbh_actor_role(ctx));
    }
    if (rc == 0) {
        rc = zbh_area_check(ctx, q->area);
    }
    if (rc == 0 && zbud_service_find(q->service) == NULL) {
        rc = zsvc_fail(ctx, ZE_INVALID, "service", "service is S1..S6");
    }
    if (rc == 0 && !text_ok(q->standard, ZBUD_LIST_TEXT_BYTES_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "standard", "standard must be 1..%d bytes",
                       ZBUD_LIST_TEXT_BYTES_MAX);
    }
    if (rc != 0) {
        return rc;
    }
    char key[ZBUD_KEY_BYTES_MAX];
    snprintf(key, sizeof key, "%.15s:S:%.2s", q->area, q->service);
    ztxn_put(ctx->txn, zsvc_table(ctx, "lists"), key, strlen(key), q->standard,
             strlen(q->standard));
    return ztxn_err(ctx->txn);
}

static Zhili__Budgets__Progress *progress_msg(zsvc_ctx_t *ctx, const progress_row_t *r)
{
    Zhili__Budgets__Progress *m = zsvc_alloc(ctx, sizeof *m);
    zhili__budgets__progress__init(m);
    m->service = zsvc_strdup(ctx, r->service);
    m->date = zsvc_strdup(ctx, r->date);
    m->note = zsvc_strdup(ctx, r->note);
    m->by = zsvc_strdup(ctx, r->by);
    return m;
}

int zbud_progress_add(zsvc_ctx_t *ctx, const Zhili__Budgets__ProgressAdd *q)
{
    int rc = 0;
    if (!zbh_role_is(ctx, "property", NULL)) {
        rc = zsvc_fail(ctx, ZE_FORBIDDEN, "actor",
                       "履约进度 is updated by the property company, "
                       "not role \"%s\"",
                       zbh_actor_role(ctx));
    }
    if (rc == 0) {
        rc = zbh_area_check(ctx, q->area);
    }
    if (rc == 0 && zbud_service_find(q->service) == NULL) {
        rc = zsvc_fail(ctx, ZE_INVALID, "service", "service is S1..S6");
    }
    if (rc == 0 && !zbud_date_valid(q->date)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "date", "date is YYYY-MM-DD");
    }
    if (rc == 0 && !text_ok(q->note, ZBUD_LIST_TEXT_BYTES_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "note", "note must be 1..%d bytes",
                       ZBUD_LIST_TEXT_BYTES_MAX);
    }
    if (rc != 0) {
        return rc;
    }
    progress_row_t *r = &progress_row;
    memset(r, 0, sizeof *r);
    snprintf(r->service, sizeof r->service, "%.2s", q->service);
    snprintf(r->date, sizeof r->date, "%.10s", q->date);
    snprintf(r->note, sizeof r->note, "%s", q->note);
    snprintf(r->by, sizeof r->by, "%.64s", actor_id(ctx));
    list_append(ctx, q->area, 'P', r, sizeof *r);
    zsvc_emit(ctx, "progress_updated", q->area, ZHILI__V1__EVENT__BODY_BUDGETS_PROGRESS,
              progress_msg(ctx, r));
    return ztxn_err(ctx->txn);
}

static Zhili__Budgets__Meeting *meeting_msg(zsvc_ctx_t *ctx, const meeting_row_t *r)
{
    Zhili__Budgets__Meeting *m = zsvc_alloc(ctx, sizeof *m);
    zhili__budgets__meeting__init(m);
    m->date = zsvc_strdup(ctx, r->date);
    m->minutes = zsvc_strdup(ctx, r->minutes);
    m->by = zsvc_strdup(ctx, r->by);
    int n =
        r->attendee_count >= 0 && r->attendee_count <= ZBUD_ATTENDEES_MAX ? r->attendee_count : 0;
    m->attendees = zsvc_alloc(ctx, sizeof *m->attendees * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        m->attendees[m->n_attendees++] = zsvc_strdup(ctx, r->attendees[i]);
    }
    return m;
}

static int meeting_check(zsvc_ctx_t *ctx, const Zhili__Budgets__MeetingRecord *q)
{
    int rc = 0;
    if (!zbh_role_is(ctx, "committee", "party_branch") && !zbh_role_is(ctx, "staff", "admin")) {
        rc = zsvc_fail(ctx, ZE_FORBIDDEN, "actor",
                       "三方评议会 are recorded by the committee, the "
                       "party branch or staff, not role \"%s\"",
                       zbh_actor_role(ctx));
    }
    if (rc == 0) {
        rc = zbh_area_check(ctx, q->area);
    }
    if (rc == 0 && !zbud_date_valid(q->date)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "date", "date is YYYY-MM-DD");
    }
    if (rc == 0 && (q->n_attendees < ZBUD_ATTENDEES_MIN || q->n_attendees > ZBUD_ATTENDEES_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "attendees",
                       "a three-party meeting has %d..%d "
                       "attendees",
                       ZBUD_ATTENDEES_MIN, ZBUD_ATTENDEES_MAX);
    }
    for (size_t i = 0; rc == 0 && i < q->n_attendees; i++) {
        if (!text_ok(q->attendees[i], ZBUD_ATTENDEE_BYTES_MAX)) {
            rc = zsvc_fail(ctx, ZE_INVALID, "attendees", "attendee %zu must be 1..%d bytes", i,
                           ZBUD_ATTENDEE_BYTES_MAX);
        }
    }
    if (rc == 0 && !text_ok(q->minutes, ZBUD_MINUTES_BYTES_MAX)) {
        rc = zsvc_fail(ctx, ZE_INVALID, "minutes", "minutes must be 1..%d bytes",
                       ZBUD_MINUTES_BYTES_MAX);
    }
    return rc;
}

int zbud_meeting_record(zsvc_ctx_t *ctx, const Zhili__Budgets__MeetingRecord *q)
{
    int rc = meeting_check(ctx, q);
    if (rc != 0) {
        return rc;
    }
    meeting_row_t *r = &meeting_row;
    memset(r, 0, sizeof *r);
    snprintf(r->date, sizeof r->date, "%.10s", q->date);
    r->attendee_count = (int32_t)q->n_attendees;
    for (size_t i = 0; i < q->n_attendees; i++) {
        snprintf(r->attendees[i], sizeof r->attendees[i], "%s", q->attendees[i]);
    }
    snprintf(r->minutes, sizeof r->minutes, "%s", q->minutes);
    snprintf(r->by, sizeof r->by, "%.64s", actor_id(ctx));
    list_append(ctx, q->area, 'M', r, sizeof *r);
    zsvc_emit(ctx, "meeting_recorded", q->area, ZHILI__V1__EVENT__BODY_BUDGETS_MEETING,
              meeting_msg(ctx, r));
    return ztxn_err(ctx->txn);
}

/* ---- the lists ---------------------------------------------------------- */

static Zhili__Budgets__ListEntry **entries(zsvc_ctx_t *ctx, const zbud_list_entry_t *src, int n)
{
    Zhili__Budgets__ListEntry **out = zsvc_alloc(ctx, sizeof *out * (size_t)n);
    for (int i = 0; i < n; i++) {
        out[i] = zsvc_alloc(ctx, sizeof *out[i]);
        zhili__budgets__list_entry__init(out[i]);
        out[i]->code = (char *)src[i].code;
        out[i]->name = (char *)src[i].name;
        out[i]->standard = (char *)src[i].standard;
    }
    return out;
}

typedef struct {
    zsvc_ctx_t *ctx;
    Zhili__Budgets__Lists *lists;
    int64_t skip_progress, skip_meetings; /* keep the latest ZBUD_LIST_ROWS_MAX of each */
    int64_t progress, meetings;
    bool counting;
} lists_walk_t;

static void add_progress(lists_walk_t *w, const progress_row_t *r)
{
    for (size_t i = 0; i < w->lists->n_property_services; i++) {
        Zhili__Budgets__ListEntry *e = w->lists->property_services[i];
        if (strcmp(e->code, r->service) == 0) {
            if (e->progress == NULL) {
                e->progress = zsvc_alloc(w->ctx, sizeof *e->progress * ZBUD_LIST_ROWS_MAX);
            }
            e->progress[e->n_progress++] = progress_msg(w->ctx, r);
        }
    }
}

static int lists_row(void *arg, zval_t key, zval_t val)
{
    lists_walk_t *w = arg;
    if (key.len != ZBUD_AREA_BYTES + 3 + 8) {
        return 0; /* a standard: read apart */
    }
    char tag = ((const char *)key.data)[ZBUD_AREA_BYTES + 1];
    if (tag == 'P' && val.len == sizeof(progress_row_t)) {
        if (!w->counting && w->progress >= w->skip_progress) {
            memcpy(&progress_row, val.data, sizeof progress_row);
            add_progress(w, &progress_row);
        }
        w->progress++;
    } else if (tag == 'M' && val.len == sizeof(meeting_row_t)) {
        if (!w->counting && w->meetings >= w->skip_meetings) {
            memcpy(&meeting_row, val.data, sizeof meeting_row);
            w->lists->meetings[w->lists->n_meetings++] = meeting_msg(w->ctx, &meeting_row);
        }
        w->meetings++;
    }
    return 0;
}

int zbud_lists_get(zsvc_ctx_t *ctx, const Zhili__Budgets__ListsGet *q)
{
    int rc = zbh_resident_or_area_check(ctx, q->area);
    if (rc != 0) {
        return rc;
    }
    Zhili__Budgets__Lists *l = zsvc_alloc(ctx, sizeof *l);
    zhili__budgets__lists__init(l);
    l->area = zsvc_strdup(ctx, q->area);
    l->branch_functions = entries(ctx, zbud_branch_functions, 5);
    l->n_branch_functions = 5;
    l->committee_duties = entries(ctx, zbud_committee_duties, 7);
    l->n_committee_duties = 7;
    l->property_services = entries(ctx, zbud_property_services, 6);
    l->n_property_services = 6;
    int t = zsvc_table(ctx, "lists");
    for (int i = 0; i < 6; i++) {
        char key[ZBUD_KEY_BYTES_MAX];
        snprintf(key, sizeof key, "%.15s:S:%s", q->area, zbud_property_services[i].code);
        zval_t v;
        if (ztxn_get(ctx->txn, t, key, strlen(key), &v) == 0) {
            char *s = zsvc_alloc(ctx, v.len + 1);
            memcpy(s, v.data, v.len);
            s[v.len] = '\0';
            l->property_services[i]->standard = s;
        }
    }
    l->meetings = zsvc_alloc(ctx, sizeof *l->meetings * ZBUD_LIST_ROWS_MAX);
    char prefix[ZBUD_AREA_BYTES + 2];
    snprintf(prefix, sizeof prefix, "%.15s:", q->area);
    lists_walk_t w = {ctx, l, 0, 0, 0, 0, true};
    ztxn_scan(ctx->txn, t, prefix, strlen(prefix), NULL, 0, &w, lists_row);
    w.skip_progress = w.progress > ZBUD_LIST_ROWS_MAX ? w.progress - ZBUD_LIST_ROWS_MAX : 0;
    w.skip_meetings = w.meetings > ZBUD_LIST_ROWS_MAX ? w.meetings - ZBUD_LIST_ROWS_MAX : 0;
    w.progress = w.meetings = 0;
    w.counting = false;
    ztxn_scan(ctx->txn, t, prefix, strlen(prefix), NULL, 0, &w, lists_row);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_BUDGETS_LISTS;
    ctx->reply->budgets_lists = l;
    return ztxn_err(ctx->txn);
}
