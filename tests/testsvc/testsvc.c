/* zhili-testsvc: a test-only service on the common runtime (not shipped).
 * As a producer it keeps named counters: counter_add emits counter.added.
 * With ZHILI_TESTSVC_CONSUME=prefix[,prefix] it also consumes those events
 * and records, per source, how many it applied, any duplicate or out-of-order
 * delivery, and a BLAKE2b chain over the events' bytes; applied_get returns
 * that record, or for the service's own name the same chain over its outbox,
 * so a test can compare a consumer with its producer exactly. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/codec.h"
#include "common/config.h"
#include "common/err.h"
#include "common/service.h"

#define NAME_BYTES_MAX 64
#define AMOUNT_ABS_MAX 1000000000000LL
#define DIGEST_BYTES 32
#define FAIL_AFTER_WRITE "fail-after-write"

typedef struct {
    int64_t value;
    uint64_t adds;
} counter_row_t;

typedef struct {
    uint64_t cursor, applied, duplicates, out_of_order;
    uint8_t digest[DIGEST_BYTES];
} consumed_row_t;

static const char *const tables[] = {"counters", "consumed", NULL};

static void chain(uint8_t digest[DIGEST_BYTES], const void *data, size_t len)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, DIGEST_BYTES);
    crypto_generichash_update(&st, digest, DIGEST_BYTES);
    crypto_generichash_update(&st, data, len);
    crypto_generichash_final(&st, digest, DIGEST_BYTES);
}

static Zhili__Test__CounterValue *counter_value(zsvc_ctx_t *ctx, const char *name,
                                                const counter_row_t *row)
{
    Zhili__Test__CounterValue *v = zsvc_alloc(ctx, sizeof *v);
    zhili__test__counter_value__init(v);
    v->name = zsvc_strdup(ctx, name);
    v->value = row->value;
    v->adds = row->adds;
    return v;
}

static int counter_add(zsvc_ctx_t *ctx, const Zhili__Test__CounterAdd *add)
{
    size_t name_len = strlen(add->name);
    if (name_len == 0 || name_len > NAME_BYTES_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "counter_add.name", "name must be 1 to %d bytes",
                         NAME_BYTES_MAX);
    }
    if (add->amount == 0 || add->amount > AMOUNT_ABS_MAX || add->amount < -AMOUNT_ABS_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "counter_add.amount",
                         "amount must be non-zero and at most %lld in size", AMOUNT_ABS_MAX);
    }
    int t = zsvc_table(ctx, "counters");
    counter_row_t row = {0, 0};
    zval_t v;
    if (ztxn_get(ctx->txn, t, add->name, name_len, &v) == 0 && v.len == sizeof row) {
        memcpy(&row, v.data, sizeof row);
    }
    row.value += add->amount;
    row.adds++;
    ztxn_put(ctx->txn, t, add->name, name_len, &row, sizeof row);
    Zhili__Test__CounterAdded *ev = zsvc_alloc(ctx, sizeof *ev);
    zhili__test__counter_added__init(ev);
    ev->name = zsvc_strdup(ctx, add->name);
    ev->amount = add->amount;
    ev->value = row.value;
    zsvc_emit(ctx, "added", ctx->cmd->area, ZHILI__V1__EVENT__BODY_COUNTER_ADDED, ev);
    if (strcmp(add->name, FAIL_AFTER_WRITE) == 0) {
        /* For the runtime's tests: a handler that fails after writing and
         * emitting; the runtime must undo both, and only them. */
        return zsvc_fail(ctx, ZE_CONFLICT, "counter_add.name",
                         "the counter \"%s\" always fails after it is written", FAIL_AFTER_WRITE);
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_COUNTER;
    ctx->reply->counter = counter_value(ctx, add->name, &row);
    return 0;
}

/* ---- continuations ------------------------------------------------------ */

#define WORK_MS_MAX 5000

typedef struct {
    uint32_t work_ms;
    int64_t amount;
} slow_arg_t;

/* Runs on the worker thread: stands in for Argon2id's deliberate slowness. */
static int slow_work(void *arg, uint8_t **out, size_t *out_len)
{
    slow_arg_t *a = arg;
    struct timespec ts = {a->work_ms / 1000, (long)(a->work_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    *out = malloc(sizeof a->amount);
    if (*out == NULL) {
        return -1;
    }
    memcpy(*out, &a->amount, sizeof a->amount);
    *out_len = sizeof a->amount;
    return 0;
}

static int slow_add(zsvc_ctx_t *ctx, const Zhili__Test__SlowAdd *add)
{
    if (add->work_ms > WORK_MS_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "slow_add.work_ms", "work_ms is at most %d", WORK_MS_MAX);
    }
    size_t name_len = strlen(add->name);
    if (name_len == 0 || name_len > NAME_BYTES_MAX || add->amount == 0 ||
        add->amount > AMOUNT_ABS_MAX || add->amount < -AMOUNT_ABS_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "slow_add", "name must be 1 to %d bytes and amount "
                         "non-zero and at most %lld in size", NAME_BYTES_MAX, AMOUNT_ABS_MAX);
    }
    slow_arg_t *arg = malloc(sizeof *arg);
    if (arg == NULL) {
        return ZE_INTERNAL;
    }
    *arg = (slow_arg_t){add->work_ms, add->amount};
    int rc = zsvc_offload(ctx, slow_work, arg, free, "slow_add", add->name, true);
    if (rc != 0) {
        free(arg);
        return zsvc_fail(ctx, rc, NULL, "the worker is busy; try again");
    }
    return ZSVC_DEFERRED;
}

static int remote_add(zsvc_ctx_t *ctx, const Zhili__Test__RemoteAdd *add)
{
    Zhili__Test__CounterAdd body = ZHILI__TEST__COUNTER_ADD__INIT;
    body.name = add->name;
    body.amount = add->amount;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    /* Derived from ours, so a resend reaches the other service as the same request. */
    cmd.request_id = zarena_printf(ctx->arena, "remote:%s", ctx->cmd->request_id);
    cmd.actor = ctx->cmd->actor;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_COUNTER_ADD;
    cmd.counter_add = &body;
    int rc = zsvc_call(ctx, add->service, &cmd, add->timeout_ms ? (int)add->timeout_ms : 3000,
                       "remote_add", add->name, true);
    if (rc != 0) {
        return zsvc_fail(ctx, rc, "remote_add.service", "cannot call service \"%s\"", add->service);
    }
    return ZSVC_DEFERRED;
}

/* The outcome: apply the slow add here, or pass on the remote answer. */
static int on_continuation(zsvc_ctx_t *ctx, const Zhili__V1__Continuation *c)
{
    if (strcmp(c->kind, "slow_add") == 0) {
        int64_t amount = 0;
        if (c->outcome_case != ZHILI__V1__CONTINUATION__OUTCOME_DATA ||
            c->data.len != sizeof amount) {
            return zsvc_fail(ctx, ZE_INTERNAL, NULL, "the slow work failed");
        }
        memcpy(&amount, c->data.data, sizeof amount);
        Zhili__Test__CounterAdd add = ZHILI__TEST__COUNTER_ADD__INIT;
        add.name = c->key;
        add.amount = amount;
        return counter_add(ctx, &add);
    }
    const Zhili__V1__Reply *r = c->reply;
    if (r == NULL || r->status != ZHILI__V1__STATUS__STATUS_OK) {
        return zsvc_fail(ctx, r ? zerr_from_status((int)r->status) : ZE_INTERNAL, NULL,
                         "the other service said: %s", r ? r->message : "nothing");
    }
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_COUNTER;
    counter_row_t row = {r->counter ? r->counter->value : 0, r->counter ? r->counter->adds : 0};
    ctx->reply->counter = counter_value(ctx, c->key, &row);
    return 0;
}

static int collect_key(void *arg, zval_t key, zval_t val)
{
    (void)val;
    zarena_t *arena = ((void **)arg)[0];
    char ***keys = ((void **)arg)[1];
    size_t *n = ((void **)arg)[2];
    if (*n < 64) {
        char *k = zarena_alloc(arena, key.len + 1);
        memcpy(k, key.data, key.len);
        (*keys)[(*n)++] = k;
    }
    return 0;
}

/* Forget every recorded source, then let the runtime replay them all. */
static int applied_reset(zsvc_ctx_t *ctx)
{
    int t = zsvc_table(ctx, "consumed");
    char **keys = zsvc_alloc(ctx, 64 * sizeof *keys);
    size_t n = 0;
    void *arg[3] = {ctx->arena, &keys, &n};
    ztxn_scan(ctx->txn, t, NULL, 0, NULL, 0, arg, collect_key);
    for (size_t i = 0; i < n; i++) {
        ztxn_del(ctx->txn, t, keys[i], strlen(keys[i]));
    }
    zsvc_consumed_reset(ctx);
    return 0;
}

static int on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_APPLIED_RESET: return applied_reset(ctx);
    case ZHILI__V1__COMMAND__BODY_COUNTER_ADD: return counter_add(ctx, cmd->counter_add);
    case ZHILI__V1__COMMAND__BODY_SLOW_ADD: return slow_add(ctx, cmd->slow_add);
    case ZHILI__V1__COMMAND__BODY_REMOTE_ADD: return remote_add(ctx, cmd->remote_add);
    case ZHILI__V1__COMMAND__BODY_CONTINUATION: return on_continuation(ctx, cmd->continuation);
    default: break;
    }
    return zsvc_fail(ctx, ZE_INVALID, "body", "the test service takes counter_add, counter_get "
                                              "and applied_get");
}

static bool is_query(const Zhili__V1__Command *cmd)
{
    return cmd->body_case == ZHILI__V1__COMMAND__BODY_COUNTER_GET ||
           cmd->body_case == ZHILI__V1__COMMAND__BODY_APPLIED_GET;
}

static int counter_get(zsvc_ctx_t *ctx, const Zhili__Test__CounterGet *get)
{
    zval_t v;
    size_t name_len = strlen(get->name);
    if (name_len == 0 || name_len > NAME_BYTES_MAX) {
        return zsvc_fail(ctx, ZE_INVALID, "counter_get.name", "name must be 1 to %d bytes",
                         NAME_BYTES_MAX);
    }
    if (ztxn_get(ctx->txn, zsvc_table(ctx, "counters"), get->name, name_len, &v) != 0 ||
        v.len != sizeof(counter_row_t)) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, "counter_get.name", "no counter named \"%s\"",
                         get->name);
    }
    counter_row_t row;
    memcpy(&row, v.data, sizeof row);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_COUNTER;
    ctx->reply->counter = counter_value(ctx, get->name, &row);
    return 0;
}

static int on_outbox_row(void *arg, zval_t key, zval_t val)
{
    (void)key;
    consumed_row_t *row = arg;
    chain(row->digest, val.data, val.len);
    row->applied++;
    row->cursor++;
    return 0;
}

static int applied_get(zsvc_ctx_t *ctx, const Zhili__Test__AppliedGet *get)
{
    consumed_row_t row;
    memset(&row, 0, sizeof row);
    zval_t v;
    if (strcmp(get->source, zsvc_name(ctx->svc)) == 0) {
        ztxn_scan(ctx->txn, ZSTORE_OUTBOX, NULL, 0, NULL, 0, &row, on_outbox_row);
    } else if (ztxn_get(ctx->txn, zsvc_table(ctx, "consumed"), get->source, strlen(get->source),
                        &v) == 0 &&
               v.len == sizeof row) {
        memcpy(&row, v.data, sizeof row);
    }
    Zhili__Test__AppliedState *st = zsvc_alloc(ctx, sizeof *st);
    zhili__test__applied_state__init(st);
    st->source = zsvc_strdup(ctx, get->source);
    st->cursor = row.cursor;
    st->applied = row.applied;
    st->duplicates = row.duplicates;
    st->out_of_order = row.out_of_order;
    st->digest.data = zsvc_alloc(ctx, DIGEST_BYTES);
    memcpy(st->digest.data, row.digest, DIGEST_BYTES);
    st->digest.len = DIGEST_BYTES;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_APPLIED;
    ctx->reply->applied = st;
    return ztxn_err(ctx->txn);
}

static int on_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    if (cmd->body_case == ZHILI__V1__COMMAND__BODY_COUNTER_GET) {
        return counter_get(ctx, cmd->counter_get);
    }
    return applied_get(ctx, cmd->applied_get);
}

/* Record the delivery; the runtime promises seq order without repeats, and
 * this is where a test sees whether it kept the promise. */
static int on_event(zsvc_ctx_t *ctx, const Zhili__V1__Event *ev)
{
    int t = zsvc_table(ctx, "consumed");
    consumed_row_t row;
    memset(&row, 0, sizeof row);
    zval_t v;
    if (ztxn_get(ctx->txn, t, ev->source, strlen(ev->source), &v) == 0 && v.len == sizeof row) {
        memcpy(&row, v.data, sizeof row);
    }
    if (ev->seq <= row.cursor) {
        row.duplicates++;
    } else if (ev->seq != row.cursor + 1) {
        row.out_of_order++;
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (zcodec_pack(&ev->base, 0, &bytes, &len) != 0) {
        return ZE_INTERNAL;
    }
    chain(row.digest, bytes, len);
    free(bytes);
    row.applied++;
    row.cursor = ev->seq;
    ztxn_put(ctx->txn, t, ev->source, strlen(ev->source), &row, sizeof row);
    return 0;
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    /* Up to 4 comma-separated prefixes, e.g. "testsvc-a.,testsvc-b.". */
    static char consume[ZCFG_VALUE_BYTES_MAX + 1];
    static const char *subscribe[5];
    snprintf(consume, sizeof consume, "%s", zcfg_str("ZHILI_TESTSVC_CONSUME", ""));
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(consume, ",", &save); tok && n < 4;
         tok = strtok_r(NULL, ",", &save)) {
        subscribe[n++] = tok;
    }
    zsvc_spec_t spec = {
        .name = "testsvc",
        .tables = tables,
        .subscribe = n > 0 ? subscribe : NULL,
        .on_command = on_command,
        .is_query = is_query,
        .on_query = on_query,
        .on_event = on_event,
    };
    return zsvc_main(&spec);
}
