/* auth: bearer tokens, signed session and ticket values, and the gateway's
 * token commands (docs/auth.md).
 *
 * Storage, in the gateway's own LMDB:
 *   tokens     BLAKE2b-256(token text) (32 bytes) -> packed zhili.gw.TokenInfo
 *   token_ids  id (16 ASCII hex chars)            -> the 32-byte hash
 *   meta       "auth_key"                         -> crypto_auth key for signed values
 * The token text itself is never stored, logged or sent to the gateway when
 * it is made: zhilictl makes it and sends only the hash.
 *
 * A signed value (session cookie, stream ticket) is
 *   base64url-no-padding( id (16 ASCII hex) | expires_ms (8 bytes BE) | mac (32) )
 * with mac = crypto_auth (HMAC-SHA-512-256) over the first 24 bytes. Checking
 * one also looks the token up, so revoking a token ends its sessions and
 * tickets at once. */
#include "services/gateway/auth.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "gateway.pb-c.h"

#define AUTH_KEY_NAME "auth_key"
#define SIGNED_EXPIRES_AT ZGW_TOKEN_ID_HEX
#define SIGNED_MAC_AT (ZGW_TOKEN_ID_HEX + 8)
#define SIGNED_TEXT_LEN (ZGW_SIGNED_TEXT_BYTES - 1)
#define BEARER_SCHEME "bearer "
#define KEY_LOAD_ATTEMPTS 2 /* a full map grows once, then it is an error */
#define ROLES_TEXT_BYTES 256

_Static_assert(crypto_generichash_BYTES == ZGW_TOKEN_HASH_BYTES, "hash is BLAKE2b-256");
_Static_assert(SIGNED_MAC_AT + crypto_auth_BYTES == ZGW_SIGNED_RAW_BYTES,
               "a signed value is id, expiry and one crypto_auth tag");
_Static_assert(ZGW_TOKEN_ID_HEX == 2 * 8, "an id is the hex of 8 bytes");
_Static_assert(sizeof(((zgw_principal_t *)0)->token_id) == ZGW_TOKEN_ID_HEX + 1,
               "the principal holds one id and its NUL");

const char *const zgw_auth_tables[] = {"tokens", "token_ids", NULL};

/* Verified bearer tokens, by hash: a hit skips the store read and the
 * record's decoding (about 3k instructions, a twentieth of a read request).
 * Direct-mapped on the hash's first byte. Only usable tokens are kept, with
 * their expiry; any write of a token record (create, revoke) bumps
 * token_writes, which empties the cache, so a revocation counts from its
 * commit as before. Writes and checks run on the same thread (the gateway's
 * loop), so the counter needs no lock. */
#define CACHE_SLOTS 256

typedef struct {
    uint8_t hash[ZGW_TOKEN_HASH_BYTES];
    zgw_principal_t who;
    int64_t expires_ms; /* 0: never */
    uint64_t writes;    /* token_writes when filled */
    bool used;
} cached_t;

static uint64_t token_writes = 1;

struct zgw_auth {
    zstore_t *store;
    int tokens; /* table indexes in store */
    int token_ids;
    uint8_t key[crypto_auth_KEYBYTES];
    cached_t cache[CACHE_SLOTS];
};

/* ---- small pure checks ---------------------------------------------------- */

static void token_id_hex(const uint8_t hash[ZGW_TOKEN_HASH_BYTES], char id[ZGW_TOKEN_ID_HEX + 1])
{
    sodium_bin2hex(id, ZGW_TOKEN_ID_HEX + 1, hash, ZGW_TOKEN_ID_HEX / 2);
}

static bool token_id_valid(const char *id, size_t len)
{
    if (len != ZGW_TOKEN_ID_HEX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* "" or 6, 9, 12, 15 or 18 digits: the levels of the area code (DESIGN §3). */
static bool area_code_valid(const char *area)
{
    size_t len = strlen(area);
    if (len > ZGW_AREA_BYTES_MAX || len % 3 != 0 || len == 3) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (area[i] < '0' || area[i] > '9') {
            return false;
        }
    }
    return true;
}

/* Bytes of one UTF-8 sequence starting at s (at most len bytes), 0 when it is
 * not well formed (overlong forms, surrogates and values past U+10FFFF included). */
static size_t utf8_seq_len(const unsigned char *s, size_t len)
{
    size_t n = s[0] < 0x80                    ? 1
               : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
               : s[0] >= 0xe0 && s[0] <= 0xef ? 3
               : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                              : 0;
    if (n == 0 || n > len) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f)) {
        return 0;
    }
    return n;
}

/* A name for audit: valid UTF-8 without control characters (it ends up in
 * logs, JSON and terminals). */
static bool display_text_valid(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text);
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq_len(s + i, len - i);
        if (n == 0 || s[i] < 0x20 || s[i] == 0x7f) {
            return false;
        }
        i += n;
    }
    return true;
}

/* What a token looks like: "zl_" then base64url characters. Anything else is
 * refused before it costs a hash and a lookup. */
static bool token_text_valid(const char *token, size_t len)
{
    size_t prefix_len = strlen(ZGW_TOKEN_PREFIX);
    if (len <= prefix_len || len > ZGW_CREDENTIAL_BYTES_MAX ||
        memcmp(token, ZGW_TOKEN_PREFIX, prefix_len) != 0) {
        return false;
    }
    for (size_t i = prefix_len; i < len; i++) {
        char c = token[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

static bool token_usable_at(const Zhili__Gw__TokenInfo *info, int64_t now_ms)
{
    return !info->revoked && (info->expires_ms == 0 || now_ms < info->expires_ms);
}

static const char *roles_text(char buf[ROLES_TEXT_BYTES])
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; zgw_roles[i] != NULL && used < ROLES_TEXT_BYTES; i++) {
        int n = snprintf(buf + used, ROLES_TEXT_BYTES - used, "%s%s", i ? ", " : "", zgw_roles[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    return buf;
}

/* ---- stored rows -------------------------------------------------------- */

/* The TokenInfo stored under hash: 0 with *out (the caller frees it with
 * zhili__gw__token_info__free_unpacked), ZE_NOT_FOUND, the transaction's
 * sticky error, or ZE_INTERNAL for a row that does not decode (logged). */
static int info_get(ztxn_t *txn, int tokens, const uint8_t hash[ZGW_TOKEN_HASH_BYTES],
                    Zhili__Gw__TokenInfo **out)
{
    *out = NULL;
    zval_t v;
    int rc = ztxn_get(txn, tokens, hash, ZGW_TOKEN_HASH_BYTES, &v);
    if (rc != 0) {
        return rc;
    }
    ProtobufCMessage *m = NULL;
    if (zcodec_unpack(&zhili__gw__token_info__descriptor, v.data, v.len, ZGW_TOKEN_INFO_BYTES_MAX,
                      &m) != 0) {
        zlog(ZLOG_ERROR, "token_row_corrupt", NULL);
        return ZE_INTERNAL;
    }
    *out = (Zhili__Gw__TokenInfo *)m;
    return 0;
}

static bool copy_bounded(char *dst, size_t dst_size, const char *src)
{
    size_t len = strlen(src);
    if (len >= dst_size) {
        return false;
    }
    memcpy(dst, src, len + 1);
    return true;
}

/* 0, or ZE_NOT_FOUND for a stored row whose fields do not fit (never written so). */
static int principal_fill(const Zhili__Gw__TokenInfo *info, zgw_principal_t *who)
{
    if (strlen(info->id) != ZGW_TOKEN_ID_HEX ||
        !copy_bounded(who->token_id, sizeof who->token_id, info->id) ||
        !copy_bounded(who->role, sizeof who->role, info->role) ||
        !copy_bounded(who->area, sizeof who->area, info->area) ||
        !copy_bounded(who->name, sizeof who->name, info->name)) {
        zlog(ZLOG_ERROR, "token_row_corrupt", "id", info->id, NULL);
        memset(who, 0, sizeof *who);
        return ZE_NOT_FOUND;
    }
    return 0;
}

/* Is the token under hash usable at now_ms? 0 with *who, ZE_NOT_FOUND, or a
 * storage error. */
static int principal_by_hash(zgw_auth_t *self, ztxn_t *txn,
                             const uint8_t hash[ZGW_TOKEN_HASH_BYTES], int64_t now_ms,
                             zgw_principal_t *who)
{
    Zhili__Gw__TokenInfo *info = NULL;
    int rc = info_get(txn, self->tokens, hash, &info);
    if (rc == ZE_INTERNAL) {
        rc = ZE_NOT_FOUND; /* an unreadable row is logged and refused */
    }
    if (rc == 0) {
        rc = token_usable_at(info, now_ms) ? principal_fill(info, who) : ZE_NOT_FOUND;
        if (rc == 0) {
            cached_t *c = &self->cache[hash[0]];
            memcpy(c->hash, hash, ZGW_TOKEN_HASH_BYTES);
            c->who = *who;
            c->expires_ms = info->expires_ms;
            c->writes = token_writes;
            c->used = true;
        }
        zhili__gw__token_info__free_unpacked(info, NULL);
    }
    return rc;
}

/* The cached principal for hash when it is still usable at now_ms. */
static bool cache_get(zgw_auth_t *self, const uint8_t hash[ZGW_TOKEN_HASH_BYTES], int64_t now_ms,
                      zgw_principal_t *who)
{
    const cached_t *c = &self->cache[hash[0]];
    if (!c->used || c->writes != token_writes ||
        sodium_memcmp(c->hash, hash, ZGW_TOKEN_HASH_BYTES) != 0 ||
        (c->expires_ms != 0 && now_ms >= c->expires_ms)) {
        return false;
    }
    *who = c->who;
    return true;
}

/* ---- the signing key ---------------------------------------------------- */

/* 0 with self->key from meta, or a new key stored durably; a negative code
 * when the store fails or holds a key of the wrong size. */
static int key_load_once(zgw_auth_t *self)
{
    ztxn_t *txn = ztxn_begin(self->store, true);
    if (txn == NULL) {
        return ZE_INTERNAL;
    }
    zval_t v;
    int rc = ztxn_get(txn, ZSTORE_META, AUTH_KEY_NAME, strlen(AUTH_KEY_NAME), &v);
    if (rc == 0 && v.len == sizeof self->key) {
        memcpy(self->key, v.data, sizeof self->key);
        ztxn_abort(&txn);
        return 0;
    }
    if (rc == 0) {
        /* Replacing it silently would hide a damaged store; say so instead. */
        zlog(ZLOG_ERROR, "auth_key_corrupt", "msg", "meta auth_key has the wrong size", NULL);
        ztxn_abort(&txn);
        return ZE_INTERNAL;
    }
    if (rc != ZE_NOT_FOUND) {
        ztxn_abort(&txn);
        return rc;
    }
    randombytes_buf(self->key, sizeof self->key);
    ztxn_put(txn, ZSTORE_META, AUTH_KEY_NAME, strlen(AUTH_KEY_NAME), self->key, sizeof self->key);
    rc = ztxn_commit(&txn);
    if (rc == 0) {
        zlog(ZLOG_INFO, "auth_key_created", NULL);
    }
    return rc;
}

static int key_load(zgw_auth_t *self)
{
    int rc = ZE_INTERNAL;
    for (int attempt = 0; attempt < KEY_LOAD_ATTEMPTS; attempt++) {
        rc = key_load_once(self);
        if (rc != ZE_MAP_FULL || zstore_grow(self->store) != 0) {
            break;
        }
    }
    return rc;
}

zgw_auth_t *zgw_auth_new(zstore_t *store)
{
    ZASSERT(store != NULL);
    if (sodium_init() < 0) {
        zlog(ZLOG_ERROR, "auth_init_failed", "msg", "libsodium could not be initialised", NULL);
        return NULL;
    }
    zgw_auth_t *self = calloc(1, sizeof *self);
    ZASSERT(self != NULL);
    self->store = store;
    self->tokens = zstore_table(store, "tokens");
    self->token_ids = zstore_table(store, "token_ids");
    if (self->tokens < 0 || self->token_ids < 0) {
        zlog(ZLOG_ERROR, "auth_init_failed", "msg", "the store lacks the tables of zgw_auth_tables",
             NULL);
        zgw_auth_destroy(&self);
        return NULL;
    }
    int rc = key_load(self);
    if (rc != 0) {
        zlog(ZLOG_ERROR, "auth_init_failed", "msg", "cannot load or store the signing key", "code",
             zerr_name(rc), NULL);
        zgw_auth_destroy(&self);
        return NULL;
    }
    return self;
}

void zgw_auth_destroy(zgw_auth_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    sodium_memzero((*self_p)->key, sizeof(*self_p)->key);
    free(*self_p);
    *self_p = NULL;
}

/* ---- verification --------------------------------------------------------- */

int zgw_auth_bearer(zgw_auth_t *self, const char *header, size_t header_len, int64_t now_ms,
                    zgw_principal_t *who)
{
    ZASSERT(self != NULL && who != NULL);
    memset(who, 0, sizeof *who);
    size_t scheme_len = strlen(BEARER_SCHEME);
    if (header == NULL || header_len <= scheme_len ||
        header_len - scheme_len > ZGW_CREDENTIAL_BYTES_MAX ||
        strncasecmp(header, BEARER_SCHEME, scheme_len) != 0) {
        return ZE_NOT_FOUND;
    }
    const char *token = header + scheme_len;
    size_t token_len = header_len - scheme_len;
    if (!token_text_valid(token, token_len)) {
        return ZE_NOT_FOUND;
    }
    uint8_t hash[ZGW_TOKEN_HASH_BYTES];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)token, token_len, NULL, 0);
    if (cache_get(self, hash, now_ms, who)) {
        return 0;
    }
    ztxn_t *txn = ztxn_begin(self->store, false);
    if (txn == NULL) {
        return ZE_UNAVAILABLE;
    }
    int rc = principal_by_hash(self, txn, hash, now_ms, who);
    ztxn_abort(&txn);
    return rc == 0 || rc == ZE_NOT_FOUND ? rc : ZE_UNAVAILABLE;
}

int zgw_auth_sign(zgw_auth_t *self, const zgw_principal_t *who, int64_t expires_ms, char *out,
                  size_t out_len)
{
    ZASSERT(self != NULL && who != NULL && out != NULL);
    size_t id_len = strnlen(who->token_id, sizeof who->token_id);
    if (out_len < ZGW_SIGNED_TEXT_BYTES || !token_id_valid(who->token_id, id_len) ||
        expires_ms <= 0) {
        return ZE_INVALID;
    }
    uint8_t raw[ZGW_SIGNED_RAW_BYTES];
    memcpy(raw, who->token_id, ZGW_TOKEN_ID_HEX);
    zstore_be64_put(raw + SIGNED_EXPIRES_AT, (uint64_t)expires_ms);
    crypto_auth(raw + SIGNED_MAC_AT, raw, SIGNED_MAC_AT, self->key);
    sodium_bin2base64(out, out_len, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return 0;
}

/* The token id and expiry in a signed value whose tag verifies; ZE_NOT_FOUND
 * for anything else. crypto_auth_verify compares in constant time. */
static int signed_open(zgw_auth_t *self, const char *value, size_t len,
                       char id[ZGW_TOKEN_ID_HEX + 1], int64_t *expires_ms)
{
    uint8_t raw[ZGW_SIGNED_RAW_BYTES];
    size_t raw_len = 0;
    if (value == NULL || len != SIGNED_TEXT_LEN ||
        sodium_base642bin(raw, sizeof raw, value, len, NULL, &raw_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        raw_len != sizeof raw ||
        crypto_auth_verify(raw + SIGNED_MAC_AT, raw, SIGNED_MAC_AT, self->key) != 0) {
        return ZE_NOT_FOUND;
    }
    memcpy(id, raw, ZGW_TOKEN_ID_HEX);
    id[ZGW_TOKEN_ID_HEX] = '\0';
    *expires_ms = (int64_t)zstore_be64_get(raw + SIGNED_EXPIRES_AT);
    return token_id_valid(id, ZGW_TOKEN_ID_HEX) ? 0 : ZE_NOT_FOUND;
}

/* check_signed, with an upper bound on the remaining lifetime (0: none). */
static int check_signed(zgw_auth_t *self, const char *value, size_t len, int64_t now_ms,
                        int64_t ttl_max_ms, zgw_principal_t *who)
{
    ZASSERT(self != NULL && who != NULL);
    memset(who, 0, sizeof *who);
    char id[ZGW_TOKEN_ID_HEX + 1];
    int64_t expires_ms = 0;
    if (signed_open(self, value, len, id, &expires_ms) != 0 || expires_ms <= now_ms ||
        (ttl_max_ms > 0 && (uint64_t)expires_ms - (uint64_t)now_ms > (uint64_t)ttl_max_ms)) {
        return ZE_NOT_FOUND;
    }
    ztxn_t *txn = ztxn_begin(self->store, false);
    if (txn == NULL) {
        return ZE_UNAVAILABLE;
    }
    zval_t v;
    int rc = ztxn_get(txn, self->token_ids, id, ZGW_TOKEN_ID_HEX, &v);
    if (rc == 0 && v.len != ZGW_TOKEN_HASH_BYTES) {
        rc = ZE_NOT_FOUND;
    }
    if (rc == 0) {
        uint8_t hash[ZGW_TOKEN_HASH_BYTES];
        memcpy(hash, v.data, sizeof hash);
        rc = principal_by_hash(self, txn, hash, now_ms, who);
    }
    ztxn_abort(&txn);
    return rc == 0 || rc == ZE_NOT_FOUND ? rc : ZE_UNAVAILABLE;
}

int zgw_auth_check_signed(zgw_auth_t *self, const char *value, size_t len, int64_t now_ms,
                          zgw_principal_t *who)
{
    return check_signed(self, value, len, now_ms, 0, who);
}

int zgw_auth_check_ticket(zgw_auth_t *self, const char *value, size_t len, int64_t now_ms,
                          zgw_principal_t *who)
{
    return check_signed(self, value, len, now_ms, ZGW_TICKET_MS, who);
}

/* ---- command handlers --------------------------------------------------- */

static int require_admin(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd, const char *verb)
{
    const char *role = cmd->actor != NULL ? cmd->actor->role : "";
    if (strcmp(role, "admin") != 0) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, NULL,
                         "only an admin may %s tokens; this command comes from role \"%.*s\"", verb,
                         ZGW_ROLE_BYTES_MAX, role);
    }
    return 0;
}

static Zhili__Gw__TokenInfo *info_copy(zsvc_ctx_t *ctx, const Zhili__Gw__TokenInfo *src)
{
    Zhili__Gw__TokenInfo *info = zsvc_alloc(ctx, sizeof *info);
    zhili__gw__token_info__init(info);
    info->id = zsvc_strdup(ctx, src->id);
    info->role = zsvc_strdup(ctx, src->role);
    info->area = zsvc_strdup(ctx, src->area);
    info->name = zsvc_strdup(ctx, src->name);
    info->created_ms = src->created_ms;
    info->expires_ms = src->expires_ms;
    info->revoked = src->revoked;
    info->revoked_ms = src->revoked_ms;
    return info;
}

/* Store info under hash, emit `type` with it and make it the reply. */
static int info_commit(zsvc_ctx_t *ctx, const uint8_t hash[ZGW_TOKEN_HASH_BYTES],
                       Zhili__Gw__TokenInfo *info, const char *type)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (zcodec_pack(&info->base, ZGW_TOKEN_INFO_BYTES_MAX, &buf, &len) != 0) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL, "a token record is larger than %d bytes",
                         ZGW_TOKEN_INFO_BYTES_MAX);
    }
    ztxn_put(ctx->txn, zsvc_table(ctx, "tokens"), hash, ZGW_TOKEN_HASH_BYTES, buf, len);
    free(buf);
    token_writes++; /* every cached principal is looked up again */
    Zhili__Gw__TokenEvent *ev = zsvc_alloc(ctx, sizeof *ev);
    zhili__gw__token_event__init(ev);
    ev->token = info;
    zsvc_emit(ctx, type, info->area, ZHILI__V1__EVENT__BODY_TOKEN, ev);
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_TOKEN;
    ctx->reply->token = info;
    return ztxn_err(ctx->txn);
}

static int token_create_check(zsvc_ctx_t *ctx, const Zhili__Gw__TokenCreate *tc, const char *scope)
{
    char roles[ROLES_TEXT_BYTES];
    if (tc->hash.len != ZGW_TOKEN_HASH_BYTES) {
        return zsvc_fail(ctx, ZE_INVALID, "token_create.hash",
                         "hash must be the 32-byte BLAKE2b-256 of the token text; got %zu bytes",
                         tc->hash.len);
    }
    if (!zgw_role_valid(tc->role)) {
        return zsvc_fail(ctx, ZE_INVALID, "token_create.role",
                         "role must be one of %s; got \"%.*s\"", roles_text(roles),
                         ZGW_ROLE_BYTES_MAX, tc->role);
    }
    if (!area_code_valid(tc->area)) {
        return zsvc_fail(ctx, ZE_INVALID, "token_create.area",
                         "area must be \"\" or an area code of 6, 9, 12, 15 or 18 digits");
    }
    if (tc->area[0] == '\0' && strcmp(tc->role, "admin") != 0) {
        return zsvc_fail(ctx, ZE_INVALID, "token_create.area",
                         "a %s token needs an area of at least 6 digits (a district or below); "
                         "only admin tokens may act everywhere",
                         tc->role);
    }
    if (!zgw_area_within(scope, tc->area)) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "token_create.area",
                         "area \"%s\" is outside your own scope \"%.*s\"", tc->area,
                         ZGW_AREA_BYTES_MAX, scope);
    }
    size_t name_len = strlen(tc->name);
    if (name_len == 0 || name_len > ZGW_NAME_BYTES_MAX || !display_text_valid(tc->name)) {
        return zsvc_fail(ctx, ZE_INVALID, "token_create.name",
                         "name must be 1 to %d bytes of UTF-8 text without control characters",
                         ZGW_NAME_BYTES_MAX);
    }
    if (tc->expires_ms != 0 && tc->expires_ms <= ctx->now_ms) {
        return zsvc_fail(ctx, ZE_INVALID, "token_create.expires_ms",
                         "expires_ms must be 0 (never) or a time after now (%lld)",
                         (long long)ctx->now_ms);
    }
    return 0;
}

static int token_create(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const Zhili__Gw__TokenCreate *tc = cmd->token_create;
    int rc = token_create_check(ctx, tc, cmd->actor->area);
    if (rc != 0) {
        return rc;
    }
    const uint8_t *hash = tc->hash.data;
    char id[ZGW_TOKEN_ID_HEX + 1];
    token_id_hex(hash, id);
    int ids = zsvc_table(ctx, "token_ids");
    zval_t v;
    if (ztxn_get(ctx->txn, zsvc_table(ctx, "tokens"), hash, ZGW_TOKEN_HASH_BYTES, &v) == 0 ||
        ztxn_get(ctx->txn, ids, id, ZGW_TOKEN_ID_HEX, &v) == 0) {
        return zsvc_fail(ctx, ZE_CONFLICT, "token_create.hash",
                         "a token with id %s exists already; make a new token", id);
    }
    Zhili__Gw__TokenInfo *info = zsvc_alloc(ctx, sizeof *info);
    zhili__gw__token_info__init(info);
    info->id = zsvc_strdup(ctx, id);
    info->role = zsvc_strdup(ctx, tc->role);
    info->area = zsvc_strdup(ctx, tc->area);
    info->name = zsvc_strdup(ctx, tc->name);
    info->created_ms = ctx->now_ms;
    info->expires_ms = tc->expires_ms;
    ztxn_put(ctx->txn, ids, id, ZGW_TOKEN_ID_HEX, hash, ZGW_TOKEN_HASH_BYTES);
    return info_commit(ctx, hash, info, "token_created");
}

static int token_revoke(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    const char *id = cmd->token_revoke->id;
    if (!token_id_valid(id, strlen(id))) {
        return zsvc_fail(ctx, ZE_INVALID, "token_revoke.id",
                         "id must be the 16 lower-case hex characters printed when the token "
                         "was created");
    }
    zval_t v;
    if (ztxn_get(ctx->txn, zsvc_table(ctx, "token_ids"), id, ZGW_TOKEN_ID_HEX, &v) != 0 ||
        v.len != ZGW_TOKEN_HASH_BYTES) {
        return zsvc_fail(ctx, ZE_NOT_FOUND, "token_revoke.id", "no token has id %s", id);
    }
    uint8_t hash[ZGW_TOKEN_HASH_BYTES];
    memcpy(hash, v.data, sizeof hash);
    Zhili__Gw__TokenInfo *stored = NULL;
    if (info_get(ctx->txn, zsvc_table(ctx, "tokens"), hash, &stored) != 0) {
        return zsvc_fail(ctx, ZE_INTERNAL, NULL,
                         "token %s has an id but no readable record; see the gateway's log", id);
    }
    Zhili__Gw__TokenInfo *info = info_copy(ctx, stored);
    zhili__gw__token_info__free_unpacked(stored, NULL);
    if (!zgw_area_within(cmd->actor->area, info->area)) {
        return zsvc_fail(ctx, ZE_FORBIDDEN, "token_revoke.id",
                         "token %s acts in area \"%s\", outside your own scope \"%.*s\"", id,
                         info->area, ZGW_AREA_BYTES_MAX, cmd->actor->area);
    }
    if (info->revoked) {
        return zsvc_fail(ctx, ZE_CONFLICT, "token_revoke.id",
                         "token %s is already revoked (state revoked since revoked_ms %lld)", id,
                         (long long)info->revoked_ms);
    }
    info->revoked = true;
    info->revoked_ms = ctx->now_ms;
    return info_commit(ctx, hash, info, "token_revoked");
}

int zgw_auth_on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    switch (cmd->body_case) {
    case ZHILI__V1__COMMAND__BODY_TOKEN_CREATE:
        return require_admin(ctx, cmd, "create") ? ZE_FORBIDDEN : token_create(ctx, cmd);
    case ZHILI__V1__COMMAND__BODY_TOKEN_REVOKE:
        return require_admin(ctx, cmd, "revoke") ? ZE_FORBIDDEN : token_revoke(ctx, cmd);
    default:
        return zsvc_fail(ctx, ZE_INVALID, "body",
                         "the gateway takes token_create and token_revoke as commands");
    }
}

bool zgw_auth_is_query(const Zhili__V1__Command *cmd)
{
    return cmd->body_case == ZHILI__V1__COMMAND__BODY_TOKEN_LIST;
}

typedef struct {
    zsvc_ctx_t *ctx;
    const char *scope;
    Zhili__Gw__TokenInfo **items;
    size_t count;
} token_list_t;

/* One row of "tokens": copied into the reply when inside the caller's scope.
 * Returns 1 to stop at the bound, ZE_INTERNAL for an unreadable row. */
static int on_token_row(void *arg, zval_t key, zval_t val)
{
    (void)key;
    token_list_t *list = arg;
    ProtobufCMessage *m = NULL;
    if (zcodec_unpack(&zhili__gw__token_info__descriptor, val.data, val.len,
                      ZGW_TOKEN_INFO_BYTES_MAX, &m) != 0) {
        zlog(ZLOG_ERROR, "token_row_corrupt", NULL);
        return ZE_INTERNAL;
    }
    Zhili__Gw__TokenInfo *info = (Zhili__Gw__TokenInfo *)m;
    int rc = 0;
    if (zgw_area_within(list->scope, info->area)) {
        if (list->count == ZGW_TOKENS_LIST_MAX) {
            rc = 1;
        } else {
            list->items[list->count++] = info_copy(list->ctx, info);
        }
    }
    zhili__gw__token_info__free_unpacked(info, NULL);
    return rc;
}

/* Every token inside the caller's scope, in id order, at most
 * ZGW_TOKENS_LIST_MAX; a longer list is cut there and the reply's message says so. */
static int token_list(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    token_list_t list = {ctx, cmd->actor->area, NULL, 0};
    list.items = zsvc_alloc(ctx, ZGW_TOKENS_LIST_MAX * sizeof *list.items);
    int rc = ztxn_scan(ctx->txn, zsvc_table(ctx, "tokens"), NULL, 0, NULL, 0, &list, on_token_row);
    if (rc < 0) {
        return zsvc_fail(ctx, rc == ZE_INTERNAL ? ZE_INTERNAL : ZE_UNAVAILABLE, NULL,
                         "the token list cannot be read now; see the gateway's log");
    }
    Zhili__Gw__TokenInfos *infos = zsvc_alloc(ctx, sizeof *infos);
    zhili__gw__token_infos__init(infos);
    infos->n_tokens = list.count;
    infos->tokens = list.items;
    ctx->reply->result_case = ZHILI__V1__REPLY__RESULT_TOKENS;
    ctx->reply->tokens = infos;
    if (rc > 0) {
        zsvc_fail(ctx, 0, NULL, "only the first %d tokens are listed", ZGW_TOKENS_LIST_MAX);
    }
    return 0;
}

int zgw_auth_on_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd)
{
    if (cmd->body_case != ZHILI__V1__COMMAND__BODY_TOKEN_LIST) {
        return zsvc_fail(ctx, ZE_INVALID, "body", "the gateway takes token_list as a query");
    }
    return require_admin(ctx, cmd, "list") ? ZE_FORBIDDEN : token_list(ctx, cmd);
}
