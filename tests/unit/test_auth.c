/* Unit tests for services/gateway/auth.c and permissions.c: bearer tokens,
 * signed session and ticket values, the token commands, the permission table
 * and area scoping (docs/auth.md).
 *
 * The token handlers are called directly, without a broker: each test opens
 * the runtime with zsvc_open (its store in a fresh /tmp directory, its broker
 * an ipc:// path nobody binds, so nothing is ever sent) and builds the
 * zsvc_ctx_t a batch would, so zsvc_emit, zsvc_fail and zsvc_alloc are the
 * real ones and the events land in the real outbox. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/codec.h"
#include "common/err.h"
#include "common/service.h"
#include "common/store.h"
#include "services/gateway/auth.h"

enum {
    ROOT_BYTES_MAX = 64,
    PATH_BYTES_MAX = 160,
    LIST_OVER_BOUND = 10001, /* one more token than token_list answers */
};

#define NOW_MS 1800000000000LL /* 2027-01-15, the clock every test runs at */
#define STREET "220503001"

typedef struct {
    char root[ROOT_BYTES_MAX];
    zsvc_spec_t spec;
    zsvc_t *svc;
    zstore_t *store;
    zgw_auth_t *auth;
    zarena_t arena;
} fixture_t;

/* A token as zhilictl makes it. */
typedef struct {
    char text[ZGW_TOKEN_TEXT_BYTES];
    uint8_t hash[ZGW_TOKEN_HASH_BYTES];
    char id[ZGW_TOKEN_ID_HEX + 1];
} token_t;

/* What one token_create command carries; the defaults make a valid one. */
typedef struct {
    const char *actor_role; /* NULL: no actor at all */
    const char *actor_area;
    const char *role;
    const char *area;
    const char *name;
    int64_t expires_ms;
    const uint8_t *hash;
    size_t hash_len;
} create_args_t;

/* ------------------------------------------------------------- helpers */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->root, sizeof f->root, "/tmp/zhili-test-auth-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    char broker[PATH_BYTES_MAX];
    snprintf(broker, sizeof broker, "ipc://%s/nobody", f->root);
    setenv("ZHILI_DATA", f->root, 1);
    setenv("ZHILI_BROKER", broker, 1);
    setenv("ZHILI_EVENTS_PUB", broker, 1);
    setenv("ZHILI_EVENTS_SUB", broker, 1);
    setenv("ZHILI_LOG", "error", 1);
    unsetenv("ZHILI_SERVICE_NAME");
    unsetenv("ZHILI_FAKE_CLOCK");
    f->spec = (zsvc_spec_t){
        .name = "gateway",
        .tables = zgw_auth_tables,
        .on_command = zgw_auth_on_command,
        .is_query = zgw_auth_is_query,
        .on_query = zgw_auth_on_query,
    };
    f->svc = zsvc_open(&f->spec);
    assert_non_null(f->svc);
    f->store = zsvc_store(f->svc);
    f->auth = zgw_auth_new(f->store);
    assert_non_null(f->auth);
    zarena_init(&f->arena);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    zgw_auth_destroy(&f->auth);
    zgw_auth_destroy(&f->auth); /* idempotent */
    zsvc_close(&f->svc);
    zarena_fini(&f->arena);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void token_make(token_t *t)
{
    uint8_t random[ZGW_TOKEN_RANDOM_BYTES];
    randombytes_buf(random, sizeof random);
    snprintf(t->text, sizeof t->text, "%s", ZGW_TOKEN_PREFIX);
    size_t p = strlen(ZGW_TOKEN_PREFIX);
    sodium_bin2base64(t->text + p, sizeof t->text - p, random, sizeof random,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_generichash(t->hash, sizeof t->hash, (const unsigned char *)t->text, strlen(t->text),
                       NULL, 0);
    sodium_bin2hex(t->id, sizeof t->id, t->hash, ZGW_TOKEN_ID_HEX / 2);
}

static create_args_t create_defaults(const token_t *t)
{
    return (create_args_t){
        .actor_role = "admin",
        .actor_area = "",
        .role = "staff",
        .area = STREET,
        .name = "王主任",
        .expires_ms = 0,
        .hash = t->hash,
        .hash_len = ZGW_TOKEN_HASH_BYTES,
    };
}

/* Run one command through the handlers as a batch would: a write
 * transaction committed on success and aborted on error (the runtime's
 * child transaction), or a read snapshot for a query. */
static int run(fixture_t *f, Zhili__V1__Command *cmd, Zhili__V1__Reply *reply)
{
    zhili__v1__reply__init(reply);
    bool query = zgw_auth_is_query(cmd);
    ztxn_t *txn = ztxn_begin(f->store, !query);
    assert_non_null(txn);
    zsvc_ctx_t ctx = {
        .svc = f->svc,
        .txn = txn,
        .now_ms = NOW_MS,
        .cmd = cmd,
        .reply = reply,
        .arena = &f->arena,
    };
    int rc = query ? zgw_auth_on_query(&ctx, cmd) : zgw_auth_on_command(&ctx, cmd);
    if (rc == 0 && !query) {
        assert_int_equal(ztxn_commit(&txn), 0);
    } else {
        ztxn_abort(&txn);
    }
    return rc;
}

static int run_as(fixture_t *f, const char *role, const char *area, Zhili__V1__Command *cmd,
                  Zhili__V1__Reply *reply)
{
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "test";
    actor.role = (char *)role;
    actor.area = (char *)area;
    cmd->request_id = "test-request";
    cmd->actor = role != NULL ? &actor : NULL;
    int rc = run(f, cmd, reply);
    cmd->actor = NULL;
    return rc;
}

static int create(fixture_t *f, const create_args_t *a, Zhili__V1__Reply *reply)
{
    Zhili__Gw__TokenCreate tc = ZHILI__GW__TOKEN_CREATE__INIT;
    tc.hash.data = (uint8_t *)a->hash;
    tc.hash.len = a->hash_len;
    tc.role = (char *)a->role;
    tc.area = (char *)a->area;
    tc.name = (char *)a->name;
    tc.expires_ms = a->expires_ms;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_TOKEN_CREATE;
    cmd.token_create = &tc;
    return run_as(f, a->actor_role, a->actor_area, &cmd, reply);
}

/* A valid token of `role` in `area`, stored; fails the test otherwise. */
static void create_ok(fixture_t *f, token_t *t, const char *role, const char *area,
                      int64_t expires_ms)
{
    token_make(t);
    create_args_t a = create_defaults(t);
    a.role = role;
    a.area = area;
    a.expires_ms = expires_ms;
    Zhili__V1__Reply r;
    assert_int_equal(create(f, &a, &r), 0);
    assert_int_equal(r.result_case, ZHILI__V1__REPLY__RESULT_TOKEN);
    assert_string_equal(r.token->id, t->id);
}

static int revoke(fixture_t *f, const char *role, const char *area, const char *id,
                  Zhili__V1__Reply *reply)
{
    Zhili__Gw__TokenRevoke tr = ZHILI__GW__TOKEN_REVOKE__INIT;
    tr.id = (char *)id;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_TOKEN_REVOKE;
    cmd.token_revoke = &tr;
    return run_as(f, role, area, &cmd, reply);
}

static int list(fixture_t *f, const char *role, const char *area, Zhili__V1__Reply *reply)
{
    Zhili__Gw__TokenList tl = ZHILI__GW__TOKEN_LIST__INIT;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_TOKEN_LIST;
    cmd.token_list = &tl;
    return run_as(f, role, area, &cmd, reply);
}

static int bearer(fixture_t *f, const char *header, int64_t now_ms, zgw_principal_t *who)
{
    return zgw_auth_bearer(f->auth, header, header ? strlen(header) : 0, now_ms, who);
}

static int bearer_of(fixture_t *f, const token_t *t, int64_t now_ms, zgw_principal_t *who)
{
    char header[ZGW_CREDENTIAL_BYTES_MAX + 16];
    snprintf(header, sizeof header, "Bearer %s", t->text);
    return bearer(f, header, now_ms, who);
}

/* The event at seq in the outbox, unpacked (caller frees). */
static Zhili__V1__Event *outbox_event(fixture_t *f, uint64_t seq)
{
    ztxn_t *txn = ztxn_begin(f->store, false);
    zval_t v;
    assert_int_equal(ztxn_outbox_get(txn, seq, &v), 0);
    Zhili__V1__Event *ev = zhili__v1__event__unpack(NULL, v.len, v.data);
    ztxn_abort(&txn);
    assert_non_null(ev);
    return ev;
}

static uint64_t outbox_last(fixture_t *f)
{
    ztxn_t *txn = ztxn_begin(f->store, false);
    uint64_t last = ztxn_outbox_last(txn);
    ztxn_abort(&txn);
    return last;
}

static void assert_principal_empty(const zgw_principal_t *who)
{
    assert_string_equal(who->token_id, "");
    assert_string_equal(who->role, "");
}

/* ------------------------------------------------------------- bearer */

static void test_bearer_valid(void **state)
{
    fixture_t *f = *state;
    token_t t;
    create_ok(f, &t, "staff", STREET, 0);
    zgw_principal_t who;
    assert_int_equal(bearer_of(f, &t, NOW_MS, &who), 0);
    assert_string_equal(who.token_id, t.id);
    assert_string_equal(who.role, "staff");
    assert_string_equal(who.area, STREET);
    assert_string_equal(who.name, "王主任");

    /* The scheme is case-insensitive; the length given is what counts. */
    char header[128];
    snprintf(header, sizeof header, "bEaReR %s trailing", t.text);
    assert_int_equal(
        zgw_auth_bearer(f->auth, header, strlen("Bearer ") + strlen(t.text), NOW_MS, &who), 0);
    assert_string_equal(who.token_id, t.id);
}

static void test_bearer_malformed(void **state)
{
    fixture_t *f = *state;
    token_t t;
    create_ok(f, &t, "staff", STREET, 0);
    char h[ZGW_CREDENTIAL_BYTES_MAX * 2];
    /* Around the valid token: {before, after}. */
    const char *const around[][2] = {
        {"Basic ", ""},      {"Token ", ""},      {"Bearer", ""},
        {"Bearer  ", ""},    {"Bearer\t", ""},    {" Bearer ", ""},
        {"Bearer ", " "},    {"Bearer ", "\n"},   {"", ""},
        {"Bearer: ", ""},    {"Bearer ", "x"},    {"Bearer x", ""},
        {"Bearer \"", "\""}, {"Bearer ", "\r\n"},
    };
    zgw_principal_t who;
    for (size_t i = 0; i < ZARRAY_LEN(around); i++) {
        snprintf(h, sizeof h, "%s%s%s", around[i][0], t.text, around[i][1]);
        assert_int_equal(bearer(f, h, NOW_MS, &who), ZE_NOT_FOUND);
        assert_principal_empty(&who);
    }
    const char *const whole[] = {"",
                                 "Bearer",
                                 "Bearer ",
                                 "Bearer zl_",
                                 "Bearer zl_a+b",
                                 "Bearer zl_a/b=",
                                 "Bearer ZL_abc",
                                 "Bearer 中文"};
    for (size_t i = 0; i < ZARRAY_LEN(whole); i++) {
        assert_int_equal(bearer(f, whole[i], NOW_MS, &who), ZE_NOT_FOUND);
    }
    assert_int_equal(zgw_auth_bearer(f->auth, NULL, 0, NOW_MS, &who), ZE_NOT_FOUND);
    /* An embedded NUL inside the given length. */
    snprintf(h, sizeof h, "Bearer %s", t.text);
    size_t len = strlen(h);
    h[10] = '\0';
    assert_int_equal(zgw_auth_bearer(f->auth, h, len, NOW_MS, &who), ZE_NOT_FOUND);
    /* The token cut short by the length. */
    snprintf(h, sizeof h, "Bearer %s", t.text);
    assert_int_equal(zgw_auth_bearer(f->auth, h, strlen(h) - 1, NOW_MS, &who), ZE_NOT_FOUND);
}

static void test_bearer_unknown_and_overlong(void **state)
{
    fixture_t *f = *state;
    token_t t;
    token_make(&t); /* well formed, never stored */
    zgw_principal_t who;
    assert_int_equal(bearer_of(f, &t, NOW_MS, &who), ZE_NOT_FOUND);

    char h[ZGW_CREDENTIAL_BYTES_MAX * 2];
    size_t at_bound = strlen("Bearer ") + ZGW_CREDENTIAL_BYTES_MAX;
    snprintf(h, sizeof h, "Bearer zl_");
    memset(h + strlen(h), 'a', at_bound - strlen(h));
    h[at_bound] = '\0';
    assert_int_equal(bearer(f, h, NOW_MS, &who), ZE_NOT_FOUND); /* unknown, at the bound */
    h[at_bound] = 'a';
    h[at_bound + 1] = '\0';
    assert_int_equal(bearer(f, h, NOW_MS, &who), ZE_NOT_FOUND); /* one past it */
    assert_int_equal(zgw_auth_bearer(f->auth, h, SIZE_MAX, NOW_MS, &who), ZE_NOT_FOUND);
}

static void test_bearer_revoked(void **state)
{
    fixture_t *f = *state;
    token_t t;
    create_ok(f, &t, "police", STREET, 0);
    zgw_principal_t before;
    assert_int_equal(bearer_of(f, &t, NOW_MS, &before), 0); /* now cached */
    Zhili__V1__Reply r;
    assert_int_equal(revoke(f, "admin", "", t.id, &r), 0);
    assert_true(r.token->revoked);
    assert_int_equal(r.token->revoked_ms, NOW_MS);
    zgw_principal_t who;
    assert_int_equal(bearer_of(f, &t, NOW_MS, &who), ZE_NOT_FOUND);
    assert_principal_empty(&who);
}

static void test_bearer_expired(void **state)
{
    fixture_t *f = *state;
    token_t t;
    create_ok(f, &t, "hotline", "220503", NOW_MS + 1000);
    zgw_principal_t who;
    assert_int_equal(bearer_of(f, &t, NOW_MS + 999, &who), 0);
    assert_int_equal(bearer_of(f, &t, NOW_MS + 1000, &who), ZE_NOT_FOUND);
    assert_int_equal(bearer_of(f, &t, NOW_MS + 100000, &who), ZE_NOT_FOUND);
}

/* A row that does not decode is refused (and logged), never trusted. */
static void test_bearer_corrupt_row(void **state)
{
    fixture_t *f = *state;
    token_t t;
    token_make(&t);
    ztxn_t *txn = ztxn_begin(f->store, true);
    ztxn_put(txn, zstore_table(f->store, "tokens"), t.hash, sizeof t.hash, "\xff\xff\xff", 3);
    assert_int_equal(ztxn_commit(&txn), 0);
    zgw_principal_t who;
    assert_int_equal(bearer_of(f, &t, NOW_MS, &who), ZE_NOT_FOUND);
    Zhili__V1__Reply r;
    assert_int_equal(list(f, "admin", "", &r), ZE_INTERNAL);
}

/* Only the hash is stored: the token text appears nowhere in the file. */
static void test_only_hash_stored(void **state)
{
    fixture_t *f = *state;
    token_t t;
    create_ok(f, &t, "staff", STREET, 0);
    char path[PATH_BYTES_MAX];
    snprintf(path, sizeof path, "%s/gateway/data.mdb", f->root);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    char *data = malloc((size_t)st.st_size);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)st.st_size, fp), (size_t)st.st_size);
    fclose(fp);
    const char *secret = t.text + strlen(ZGW_TOKEN_PREFIX);
    assert_null(memmem(data, (size_t)st.st_size, secret, strlen(secret)));
    assert_non_null(memmem(data, (size_t)st.st_size, t.hash, sizeof t.hash));
    free(data);
}

/* ------------------------------------------------------------- signed values */

static void test_sign_check(void **state)
{
    fixture_t *f = *state;
    token_t t;
    create_ok(f, &t, "command_center", "220503", 0);
    zgw_principal_t who, got;
    assert_int_equal(bearer_of(f, &t, NOW_MS, &who), 0);
    char v[ZGW_SIGNED_TEXT_BYTES];
    int64_t expires = NOW_MS + ZGW_SESSION_MS_DEFAULT;
    assert_int_equal(zgw_auth_sign(f->auth, &who, expires, v, sizeof v), 0);
    assert_int_equal(strlen(v), ZGW_SIGNED_TEXT_BYTES - 1);
    assert_int_equal(zgw_auth_check_signed(f->auth, v, strlen(v), NOW_MS, &got), 0);
    assert_string_equal(got.token_id, t.id);
    assert_string_equal(got.role, "command_center");
    assert_string_equal(got.area, "220503");
    assert_string_equal(got.name, who.name);
    assert_int_equal(zgw_auth_check_signed(f->auth, v, strlen(v), expires - 1, &got), 0);

    /* Another instance on the same store reads the same key from meta. */
    zgw_auth_t *again = zgw_auth_new(f->store);
    assert_non_null(again);
    assert_int_equal(zgw_auth_check_signed(again, v, strlen(v), NOW_MS, &got), 0);
    zgw_auth_destroy(&again);
    assert_null(again);
}

static void test_sign_refusals(void **state)
{
    fixture_t *f = *state;
    token_t t;
    create_ok(f, &t, "staff", STREET, 0);
    zgw_principal_t who;
    assert_int_equal(bearer_of(f, &t, NOW_MS, &who), 0);
    char v[ZGW_SIGNED_TEXT_BYTES];
    assert_int_equal(zgw_auth_sign(f->auth, &who, NOW_MS + 1000, v, sizeof v - 1), ZE_INVALID);
    assert_int_equal(zgw_auth_sign(f->auth, &who, 0, v, sizeof v), ZE_INVALID);
    zgw_principal_t bad = who;
    snprintf(bad.token_id, sizeof bad.token_id, "ABCDEF0123456789");
    assert_int_equal(zgw_auth_sign(f->auth, &bad, NOW_MS + 1000, v, sizeof v), ZE_INVALID);
    snprintf(bad.token_id, sizeof bad.token_id, "abc");
    assert_int_equal(zgw_auth_sign(f->auth, &bad, NOW_MS + 1000, v, sizeof v), ZE_INVALID);
}

static void test_check_tampered(void **state)
{
    fixture_t *f = *state;
    token_t t;
    create_ok(f, &t, "staff", STREET, 0);
    zgw_principal_t who, got;
    assert_int_equal(bearer_of(f, &t, NOW_MS, &who), 0);
    char v[ZGW_SIGNED_TEXT_BYTES], w[ZGW_SIGNED_TEXT_BYTES + 8];
    assert_int_equal(zgw_auth_sign(f->auth, &who, NOW_MS + 60000, v, sizeof v), 0);
    size_t len = strlen(v);
    /* One character changed anywhere: in the id, the expiry or the tag. */
    size_t positions[] = {0, 5, 21, 30, 40, len - 2};
    for (size_t i = 0; i < ZARRAY_LEN(positions); i++) {
        memcpy(w, v, sizeof v);
        w[positions[i]] = w[positions[i]] == 'A' ? 'B' : 'A';
        assert_int_equal(zgw_auth_check_signed(f->auth, w, len, NOW_MS, &got), ZE_NOT_FOUND);
        assert_principal_empty(&got);
    }
    assert_int_equal(zgw_auth_check_signed(f->auth, v, len - 1, NOW_MS, &got), ZE_NOT_FOUND);
    snprintf(w, sizeof w, "%sA", v);
    assert_int_equal(zgw_auth_check_signed(f->auth, w, len + 1, NOW_MS, &got), ZE_NOT_FOUND);
    memcpy(w, v, sizeof v);
    w[3] = '+'; /* not base64url */
    assert_int_equal(zgw_auth_check_signed(f->auth, w, len, NOW_MS, &got), ZE_NOT_FOUND);
    assert_int_equal(zgw_auth_check_signed(f->auth, NULL, 0, NOW_MS, &got), ZE_NOT_FOUND);
    assert_int_equal(zgw_auth_check_signed(f->auth, "", 0, NOW_MS, &got), ZE_NOT_FOUND);

    /* A tag made with another key: a second gateway's store. */
    char dir[PATH_BYTES_MAX], err[256];
    snprintf(dir, sizeof dir, "%s/other", f->root);
    zstore_options_t opts = {.dir = dir, .tables = zgw_auth_tables};
    zstore_t *other = NULL;
    assert_int_equal(zstore_open(&opts, &other, err, sizeof err), 0);
    zgw_auth_t *foreign = zgw_auth_new(other);
    assert_non_null(foreign);
    assert_int_equal(zgw_auth_sign(foreign, &who, NOW_MS + 60000, w, sizeof w), 0);
    assert_int_equal(zgw_auth_check_signed(f->auth, w, strlen(w), NOW_MS, &got), ZE_NOT_FOUND);
    zgw_auth_destroy(&foreign);
    zstore_destroy(&other);
}

static void test_check_expired_and_revoked(void **state)
{
    fixture_t *f = *state;
    token_t t, short_lived;
    create_ok(f, &t, "staff", STREET, 0);
    create_ok(f, &short_lived, "staff", STREET, NOW_MS + 5000);
    zgw_principal_t who, got;
    char v[ZGW_SIGNED_TEXT_BYTES];

    /* The value's own expiry. */
    assert_int_equal(bearer_of(f, &t, NOW_MS, &who), 0);
    assert_int_equal(zgw_auth_sign(f->auth, &who, NOW_MS + 1000, v, sizeof v), 0);
    assert_int_equal(zgw_auth_check_signed(f->auth, v, strlen(v), NOW_MS + 1000, &got),
                     ZE_NOT_FOUND);

    /* The token's expiry ends a session signed to last longer. */
    assert_int_equal(bearer_of(f, &short_lived, NOW_MS, &who), 0);
    assert_int_equal(zgw_auth_sign(f->auth, &who, NOW_MS + 60000, v, sizeof v), 0);
    assert_int_equal(zgw_auth_check_signed(f->auth, v, strlen(v), NOW_MS + 4999, &got), 0);
    assert_int_equal(zgw_auth_check_signed(f->auth, v, strlen(v), NOW_MS + 5000, &got),
                     ZE_NOT_FOUND);

    /* Revoking the token ends its sessions at once. */
    assert_int_equal(bearer_of(f, &t, NOW_MS, &who), 0);
    assert_int_equal(zgw_auth_sign(f->auth, &who, NOW_MS + 60000, v, sizeof v), 0);
    assert_int_equal(zgw_auth_check_signed(f->auth, v, strlen(v), NOW_MS, &got), 0);
    Zhili__V1__Reply r;
    assert_int_equal(revoke(f, "admin", "", t.id, &r), 0);
    assert_int_equal(zgw_auth_check_signed(f->auth, v, strlen(v), NOW_MS, &got), ZE_NOT_FOUND);

    /* A signed id that names no token. */
    zgw_principal_t ghost = who;
    snprintf(ghost.token_id, sizeof ghost.token_id, "0123456789abcdef");
    assert_int_equal(zgw_auth_sign(f->auth, &ghost, NOW_MS + 60000, v, sizeof v), 0);
    assert_int_equal(zgw_auth_check_signed(f->auth, v, strlen(v), NOW_MS, &got), ZE_NOT_FOUND);
}

static void test_ticket_lifetime(void **state)
{
    fixture_t *f = *state;
    token_t t;
    create_ok(f, &t, "command_center", "220503", 0);
    zgw_principal_t who, got;
    assert_int_equal(bearer_of(f, &t, NOW_MS, &who), 0);
    char v[ZGW_SIGNED_TEXT_BYTES];
    assert_int_equal(zgw_auth_sign(f->auth, &who, NOW_MS + ZGW_TICKET_MS, v, sizeof v), 0);
    assert_int_equal(zgw_auth_check_ticket(f->auth, v, strlen(v), NOW_MS, &got), 0);
    assert_string_equal(got.token_id, t.id);
    assert_int_equal(zgw_auth_check_ticket(f->auth, v, strlen(v), NOW_MS + ZGW_TICKET_MS, &got),
                     ZE_NOT_FOUND);
    /* A session-long value is no ticket. */
    assert_int_equal(zgw_auth_sign(f->auth, &who, NOW_MS + ZGW_SESSION_MS_DEFAULT, v, sizeof v), 0);
    assert_int_equal(zgw_auth_check_ticket(f->auth, v, strlen(v), NOW_MS, &got), ZE_NOT_FOUND);
    assert_int_equal(zgw_auth_check_signed(f->auth, v, strlen(v), NOW_MS, &got), 0);
}

/* ------------------------------------------------------------- the signing key */

static void test_key_in_meta(void **state)
{
    fixture_t *f = *state;
    char dir[PATH_BYTES_MAX], err[256];
    snprintf(dir, sizeof dir, "%s/keys", f->root);
    zstore_options_t opts = {.dir = dir, .tables = zgw_auth_tables};
    zstore_t *s = NULL;
    assert_int_equal(zstore_open(&opts, &s, err, sizeof err), 0);
    zgw_auth_t *a = zgw_auth_new(s);
    assert_non_null(a);
    zgw_auth_destroy(&a);
    ztxn_t *txn = ztxn_begin(s, false);
    zval_t v;
    assert_int_equal(ztxn_get(txn, ZSTORE_META, "auth_key", 8, &v), 0);
    assert_int_equal(v.len, crypto_auth_KEYBYTES);
    uint8_t key[crypto_auth_KEYBYTES];
    memcpy(key, v.data, sizeof key);
    ztxn_abort(&txn);

    /* Reopened: the same key, not a new one. */
    zstore_destroy(&s);
    assert_int_equal(zstore_open(&opts, &s, err, sizeof err), 0);
    a = zgw_auth_new(s);
    assert_non_null(a);
    zgw_auth_destroy(&a);
    txn = ztxn_begin(s, false);
    assert_int_equal(ztxn_get(txn, ZSTORE_META, "auth_key", 8, &v), 0);
    assert_memory_equal(v.data, key, sizeof key);
    ztxn_abort(&txn);

    /* A key of the wrong size is a damaged store: refused, not replaced. */
    txn = ztxn_begin(s, true);
    ztxn_put(txn, ZSTORE_META, "auth_key", 8, "short", 5);
    assert_int_equal(ztxn_commit(&txn), 0);
    assert_null(zgw_auth_new(s));
    zstore_destroy(&s);

    /* A store without the auth tables. */
    snprintf(dir, sizeof dir, "%s/bare", f->root);
    opts = (zstore_options_t){.dir = dir};
    assert_int_equal(zstore_open(&opts, &s, err, sizeof err), 0);
    assert_null(zgw_auth_new(s));
    zstore_destroy(&s);
}

/* ------------------------------------------------------------- token commands */

static void assert_invalid(fixture_t *f, const create_args_t *a, int code, const char *field,
                           const char *in_message)
{
    Zhili__V1__Reply r;
    uint64_t last = outbox_last(f);
    assert_int_equal(create(f, a, &r), code);
    if (field != NULL) {
        assert_string_equal(r.field, field);
    }
    assert_non_null(strstr(r.message, in_message));
    assert_int_equal(outbox_last(f), last);
}

static void test_create_validation(void **state)
{
    fixture_t *f = *state;
    token_t t;
    token_make(&t);
    create_args_t a = create_defaults(&t);
    char name64[ZGW_NAME_BYTES_MAX + 2];
    memset(name64, 'n', sizeof name64 - 1);
    name64[sizeof name64 - 1] = '\0';

    a.actor_role = "staff";
    assert_invalid(f, &a, ZE_FORBIDDEN, NULL, "only an admin may create");
    a.actor_role = NULL;
    assert_invalid(f, &a, ZE_FORBIDDEN, NULL, "only an admin");
    a = create_defaults(&t);
    a.hash_len = 31;
    assert_invalid(f, &a, ZE_INVALID, "token_create.hash", "32-byte");
    a.hash_len = 0;
    assert_invalid(f, &a, ZE_INVALID, "token_create.hash", "got 0 bytes");
    a = create_defaults(&t);
    a.role = "boss";
    assert_invalid(f, &a, ZE_INVALID, "token_create.role", "party_branch");
    a.role = "";
    assert_invalid(f, &a, ZE_INVALID, "token_create.role", "admin, command_center, hotline");
    a = create_defaults(&t);
    const char *const bad_areas[] = {
        "2205",    "22050a",      "220", "2205030010010020010", "22050300100100200",
        " 220503", "２２０５０３"};
    for (size_t i = 0; i < ZARRAY_LEN(bad_areas); i++) {
        a.area = bad_areas[i];
        assert_invalid(f, &a, ZE_INVALID, "token_create.area", "6, 9, 12, 15 or 18 digits");
    }
    a.area = "";
    assert_invalid(f, &a, ZE_INVALID, "token_create.area", "only admin tokens");
    a = create_defaults(&t);
    a.actor_area = "220503";
    a.area = "220504001";
    assert_invalid(f, &a, ZE_FORBIDDEN, "token_create.area", "outside your own scope");
    a.role = "admin";
    a.area = "";
    assert_invalid(f, &a, ZE_FORBIDDEN, "token_create.area", "outside your own scope");
    a = create_defaults(&t);
    const char *const bad_names[] = {"",     name64, "a\nb",     "tab\there",
                                     "\x7f", "\xff", "\xc0\xaf", "\xed\xa0\x80"};
    for (size_t i = 0; i < ZARRAY_LEN(bad_names); i++) {
        a.name = bad_names[i];
        assert_invalid(f, &a, ZE_INVALID, "token_create.name", "1 to 63 bytes");
    }
    a = create_defaults(&t);
    const int64_t bad_expiry[] = {NOW_MS, NOW_MS - 1, -1, INT64_MIN};
    for (size_t i = 0; i < ZARRAY_LEN(bad_expiry); i++) {
        a.expires_ms = bad_expiry[i];
        assert_invalid(f, &a, ZE_INVALID, "token_create.expires_ms", "0 (never)");
    }
    Zhili__V1__Reply r;
    assert_int_equal(list(f, "admin", "", &r), 0);
    assert_int_equal(r.tokens->n_tokens, 0); /* nothing was stored */
}

static void test_create_accepts(void **state)
{
    fixture_t *f = *state;
    token_t t;
    Zhili__V1__Reply r;
    char name63[ZGW_NAME_BYTES_MAX + 1];
    memset(name63, 'n', sizeof name63 - 1);
    name63[sizeof name63 - 1] = '\0';
    const char *const areas[] = {"220503", STREET, "220503001001", "220503001001002",
                                 "220503001001002003"};
    for (size_t i = 0; i < ZARRAY_LEN(areas); i++) {
        create_ok(f, &t, "resident", areas[i], 0);
    }
    create_ok(f, &t, "admin", "", NOW_MS + 1);
    token_make(&t);
    create_args_t a = create_defaults(&t);
    a.name = name63;
    a.actor_area = "220503";
    assert_int_equal(create(f, &a, &r), 0);
    assert_string_equal(r.token->name, name63);
    assert_int_equal(r.token->created_ms, NOW_MS);
    assert_false(r.token->revoked);

    /* The same hash again. */
    a.name = "again";
    assert_int_equal(create(f, &a, &r), ZE_CONFLICT);
    assert_string_equal(r.field, "token_create.hash");
    assert_non_null(strstr(r.message, t.id));
}

static void test_create_event(void **state)
{
    fixture_t *f = *state;
    token_t t;
    uint64_t last = outbox_last(f);
    create_ok(f, &t, "grid_member", "220503001001002", NOW_MS + 86400000);
    assert_int_equal(outbox_last(f), last + 1);
    Zhili__V1__Event *ev = outbox_event(f, last + 1);
    assert_string_equal(ev->source, "gateway");
    assert_string_equal(ev->type, "token_created");
    assert_string_equal(ev->area, "220503001001002");
    assert_string_equal(ev->request_id, "test-request");
    assert_string_equal(ev->actor->role, "admin");
    assert_int_equal(ev->body_case, ZHILI__V1__EVENT__BODY_TOKEN);
    assert_string_equal(ev->token->token->id, t.id);
    assert_string_equal(ev->token->token->role, "grid_member");
    assert_int_equal(ev->token->token->expires_ms, NOW_MS + 86400000);
    zhili__v1__event__free_unpacked(ev, NULL);

    /* token_ids maps the id to the hash, for revoke. */
    ztxn_t *txn = ztxn_begin(f->store, false);
    zval_t v;
    assert_int_equal(ztxn_get(txn, zstore_table(f->store, "token_ids"), t.id, 16, &v), 0);
    assert_int_equal(v.len, ZGW_TOKEN_HASH_BYTES);
    assert_memory_equal(v.data, t.hash, ZGW_TOKEN_HASH_BYTES);
    ztxn_abort(&txn);
}

static void test_revoke(void **state)
{
    fixture_t *f = *state;
    token_t t;
    create_ok(f, &t, "property", "220503001001002", 0);
    Zhili__V1__Reply r;
    assert_int_equal(revoke(f, "staff", "", t.id, &r), ZE_FORBIDDEN);
    assert_non_null(strstr(r.message, "only an admin may revoke"));
    assert_int_equal(revoke(f, "admin", "220504", t.id, &r), ZE_FORBIDDEN);
    assert_string_equal(r.field, "token_revoke.id");
    const char *const bad_ids[] = {"", "abc", "0123456789ABCDEF", "0123456789abcdeg",
                                   "0123456789abcdef0"};
    for (size_t i = 0; i < ZARRAY_LEN(bad_ids); i++) {
        assert_int_equal(revoke(f, "admin", "", bad_ids[i], &r), ZE_INVALID);
        assert_string_equal(r.field, "token_revoke.id");
    }
    assert_int_equal(revoke(f, "admin", "", "0123456789abcdef", &r), ZE_NOT_FOUND);
    assert_non_null(strstr(r.message, "no token has id 0123456789abcdef"));

    uint64_t last = outbox_last(f);
    assert_int_equal(revoke(f, "admin", "220503", t.id, &r), 0);
    assert_int_equal(outbox_last(f), last + 1);
    Zhili__V1__Event *ev = outbox_event(f, last + 1);
    assert_string_equal(ev->type, "token_revoked");
    assert_string_equal(ev->area, "220503001001002");
    assert_true(ev->token->token->revoked);
    zhili__v1__event__free_unpacked(ev, NULL);

    assert_int_equal(revoke(f, "admin", "", t.id, &r), ZE_CONFLICT);
    assert_non_null(strstr(r.message, "already revoked"));
    assert_int_equal(outbox_last(f), last + 1);
}

static void test_list(void **state)
{
    fixture_t *f = *state;
    token_t a, b, c;
    create_ok(f, &a, "staff", STREET, 0);
    create_ok(f, &b, "police", "220504001", 0);
    create_ok(f, &c, "admin", "", 0);
    Zhili__V1__Reply r;
    assert_int_equal(revoke(f, "admin", "", b.id, &r), 0);

    assert_int_equal(list(f, "admin", "", &r), 0);
    assert_int_equal(r.result_case, ZHILI__V1__REPLY__RESULT_TOKENS);
    assert_int_equal(r.tokens->n_tokens, 3);
    assert_string_equal(r.message, "");
    int revoked = 0;
    for (size_t i = 0; i < 3; i++) {
        revoked += r.tokens->tokens[i]->revoked;
        if (i > 0) { /* id order */
            assert_true(strcmp(r.tokens->tokens[i - 1]->id, r.tokens->tokens[i]->id) < 0);
        }
    }
    assert_int_equal(revoked, 1);

    /* A scoped admin sees its own area only. */
    assert_int_equal(list(f, "admin", "220503", &r), 0);
    assert_int_equal(r.tokens->n_tokens, 1);
    assert_string_equal(r.tokens->tokens[0]->id, a.id);

    assert_int_equal(list(f, "command_center", "", &r), ZE_FORBIDDEN);
    assert_non_null(strstr(r.message, "only an admin may list"));
    assert_int_equal(list(f, NULL, "", &r), ZE_FORBIDDEN);
}

static void test_list_bound(void **state)
{
    fixture_t *f = *state;
    /* One write transaction for all of them: a batch, as the runtime would. */
    ztxn_t *txn = ztxn_begin(f->store, true);
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.role = "admin";
    for (int i = 0; i < LIST_OVER_BOUND; i++) {
        token_t t;
        token_make(&t);
        Zhili__Gw__TokenCreate tc = ZHILI__GW__TOKEN_CREATE__INIT;
        tc.hash.data = t.hash;
        tc.hash.len = sizeof t.hash;
        tc.role = "resident";
        tc.area = "220503001001002003";
        tc.name = "住户";
        Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
        cmd.actor = &actor;
        cmd.body_case = ZHILI__V1__COMMAND__BODY_TOKEN_CREATE;
        cmd.token_create = &tc;
        Zhili__V1__Reply r = ZHILI__V1__REPLY__INIT;
        zsvc_ctx_t ctx = {.svc = f->svc,
                          .txn = txn,
                          .now_ms = NOW_MS,
                          .cmd = &cmd,
                          .reply = &r,
                          .arena = &f->arena};
        assert_int_equal(zgw_auth_on_command(&ctx, &cmd), 0);
    }
    assert_int_equal(ztxn_commit(&txn), 0);
    zarena_reset(&f->arena);
    Zhili__V1__Reply r;
    assert_int_equal(list(f, "admin", "", &r), 0);
    assert_int_equal(r.tokens->n_tokens, ZGW_TOKENS_LIST_MAX);
    assert_non_null(strstr(r.message, "only the first 10000 tokens"));
}

static void test_wrong_bodies(void **state)
{
    fixture_t *f = *state;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    Zhili__Gw__TokenRevoke tr = ZHILI__GW__TOKEN_REVOKE__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_TOKEN_REVOKE;
    cmd.token_revoke = &tr;
    assert_false(zgw_auth_is_query(&cmd));
    Zhili__V1__Reply r = ZHILI__V1__REPLY__INIT;
    ztxn_t *txn = ztxn_begin(f->store, false);
    zsvc_ctx_t ctx = {
        .svc = f->svc, .txn = txn, .now_ms = NOW_MS, .cmd = &cmd, .reply = &r, .arena = &f->arena};
    assert_int_equal(zgw_auth_on_query(&ctx, &cmd), ZE_INVALID);
    assert_string_equal(r.field, "body");
    Zhili__Gw__TokenList tl = ZHILI__GW__TOKEN_LIST__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_TOKEN_LIST;
    cmd.token_list = &tl;
    assert_true(zgw_auth_is_query(&cmd));
    assert_int_equal(zgw_auth_on_command(&ctx, &cmd), ZE_INVALID);
    assert_non_null(strstr(r.message, "token_create and token_revoke"));
    ztxn_abort(&txn);
}

/* ------------------------------------------------------------- permissions */

static void test_permissions(void **state)
{
    (void)state;
    for (size_t i = 0; zgw_roles[i] != NULL; i++) {
        assert_true(zgw_role_valid(zgw_roles[i]));
        assert_true(zgw_permit(zgw_roles[i], "session.create"));
    }
    size_t roles = 0;
    while (zgw_roles[roles] != NULL) {
        roles++;
    }
    assert_int_equal(roles, 11);
    assert_false(zgw_role_valid("root"));
    assert_false(zgw_role_valid("Admin"));
    assert_false(zgw_role_valid(""));
    assert_false(zgw_role_valid(NULL));

    assert_true(zgw_permit("admin", "token.manage"));
    assert_false(zgw_permit("command_center", "token.manage"));
    assert_false(zgw_permit("staff", "token.manage"));
    assert_true(zgw_permit("command_center", "metrics.read"));
    assert_false(zgw_permit("staff", "metrics.read"));
    assert_true(zgw_permit("police", "stream.read"));
    assert_true(zgw_permit("party_branch", "stream.read"));
    assert_false(zgw_permit("hotline", "stream.read"));
    assert_false(zgw_permit("resident", "stream.read"));
    assert_true(zgw_permit("staff", "test.counter.write"));
    assert_false(zgw_permit("resident", "test.counter.read"));

    assert_false(zgw_permit("admin", "no.such.permission"));
    assert_false(zgw_permit("root", "session.create"));
    assert_false(zgw_permit(NULL, "session.create"));
    assert_false(zgw_permit("admin", NULL));
    assert_true(zgw_permission_known("stream.read"));
    assert_false(zgw_permission_known("stream"));
    assert_false(zgw_permission_known(NULL));
}

static void test_area_within(void **state)
{
    (void)state;
    assert_true(zgw_area_within("", ""));
    assert_true(zgw_area_within("", "220503"));
    assert_true(zgw_area_within("220503", "220503"));
    assert_true(zgw_area_within("220503", "220503001"));
    assert_true(zgw_area_within("220503", "220503001001002003"));
    assert_false(zgw_area_within("220503", "22050")); /* shorter than the scope */
    assert_false(zgw_area_within("220503", ""));
    assert_false(zgw_area_within("220503", "220504001"));
    assert_false(zgw_area_within("220503001", "220503"));
    assert_false(zgw_area_within("220503001", "220503002001"));
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bearer_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_unknown_and_overlong, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bearer_corrupt_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_hash_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_tampered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_expired_and_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ticket_lifetime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_in_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_accepts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_bodies, setup, teardown),
        cmocka_unit_test(test_permissions),
        cmocka_unit_test(test_area_within),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
