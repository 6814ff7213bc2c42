/* auth: bearer tokens, sessions, stream tickets and the permission table
 * (docs/auth.md). Tokens live only as BLAKE2b-256 hashes in the gateway's own
 * LMDB (table "tokens"); they are created and revoked by commands to the
 * service "gateway" (zhilictl token create / revoke / list). */
#ifndef ZHILI_GATEWAY_AUTH_H
#define ZHILI_GATEWAY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/service.h"
#include "common/store.h"

#define ZGW_TOKEN_PREFIX "zl_"
#define ZGW_TOKEN_TEXT_BYTES 64          /* "zl_" + 43 base64url chars of 32 random bytes, + NUL room */
#define ZGW_ROLE_BYTES_MAX 31
#define ZGW_AREA_BYTES_MAX 18            /* the longest area code: a building */
#define ZGW_NAME_BYTES_MAX 63
#define ZGW_SESSION_MS_DEFAULT (12 * 3600 * 1000)
#define ZGW_TICKET_MS 60000              /* stream tickets are short-lived */
#define ZGW_CREDENTIAL_BYTES_MAX 256

/* Additions (auth.c, permissions.c). */
#define ZGW_TOKEN_HASH_BYTES 32          /* BLAKE2b-256 of the whole token text */
#define ZGW_TOKEN_RANDOM_BYTES 32        /* randomness in one token */
#define ZGW_TOKEN_ID_HEX 16              /* id: hex of the hash's first 8 bytes */
#define ZGW_TOKENS_LIST_MAX 10000        /* token_list answers at most this many */
#define ZGW_TOKEN_INFO_BYTES_MAX 512     /* one packed TokenInfo in the "tokens" table */
#define ZGW_SIGNED_RAW_BYTES (ZGW_TOKEN_ID_HEX + 8 + 32) /* id | expires_ms BE | mac */
#define ZGW_SIGNED_TEXT_BYTES 76         /* base64url of ZGW_SIGNED_RAW_BYTES (75) + NUL */
#define ZGW_ROLES_MAX 16                 /* roles in the permission table */

_Static_assert(3 + (ZGW_TOKEN_RANDOM_BYTES * 4 + 2) / 3 < ZGW_TOKEN_TEXT_BYTES,
               "a token's text must fit ZGW_TOKEN_TEXT_BYTES with its NUL");
_Static_assert((ZGW_SIGNED_RAW_BYTES * 4 + 2) / 3 + 1 == ZGW_SIGNED_TEXT_BYTES,
               "ZGW_SIGNED_TEXT_BYTES is the base64url length of a signed value plus NUL");
_Static_assert(ZGW_TOKEN_TEXT_BYTES <= ZGW_CREDENTIAL_BYTES_MAX,
               "a token must fit the credential bound");

/* Who is calling: what a verified token, session or ticket says. */
typedef struct {
    char token_id[17];                   /* 16 hex chars */
    char role[ZGW_ROLE_BYTES_MAX + 1];
    char area[ZGW_AREA_BYTES_MAX + 1];   /* prefix it may act in; "" everywhere */
    char name[ZGW_NAME_BYTES_MAX + 1];
} zgw_principal_t;

/* The tables the gateway's store needs (NULL-terminated), for its zsvc spec. */
extern const char *const zgw_auth_tables[];

/* Gateway service handlers for token_create / token_revoke (writes) and
 * token_list (query), for the gateway's embedded runtime. Admin only. */
int zgw_auth_on_command(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);
bool zgw_auth_is_query(const Zhili__V1__Command *cmd);
int zgw_auth_on_query(zsvc_ctx_t *ctx, const Zhili__V1__Command *cmd);

typedef struct zgw_auth zgw_auth_t;

/* Load the signing key for sessions and tickets from the store's meta table,
 * creating it at first start (a durable write; call it with no write
 * transaction open, before serving). NULL (logged) on failure, also when the
 * store lacks zgw_auth_tables. The store must outlive the auth object. */
zgw_auth_t *zgw_auth_new(zstore_t *store);
void zgw_auth_destroy(zgw_auth_t **self_p);

/* Verify an "Authorization" header value ("Bearer zl_..."): 0 with *who set;
 * ZE_NOT_FOUND when missing, malformed, unknown, revoked or expired (all 401,
 * without saying which). Reads the store in a read transaction (call it on
 * the service's thread, between zsvc steps); ZE_UNAVAILABLE when the store
 * cannot be read (503, not the caller's fault). "Bearer" is matched without
 * regard to case and is followed by exactly one space. */
int zgw_auth_bearer(zgw_auth_t *self, const char *header, size_t header_len, int64_t now_ms,
                    zgw_principal_t *who);

/* Session cookie value and stream ticket: signed with crypto_auth over the
 * token id and an expiry. sign writes a NUL-terminated value of
 * ZGW_SIGNED_TEXT_BYTES - 1 characters (0, or ZE_INVALID when out is too
 * small, who->token_id is not 16 hex characters or expires_ms <= 0). The
 * value never outlasts its token: check verifies signature and expiry, then
 * that the token is still usable at now_ms (not revoked, not expired), and
 * fills *who from the token's current record; any failure is ZE_NOT_FOUND. */
int zgw_auth_sign(zgw_auth_t *self, const zgw_principal_t *who, int64_t expires_ms, char *out,
                  size_t out_len);
int zgw_auth_check_signed(zgw_auth_t *self, const char *value, size_t len, int64_t now_ms,
                          zgw_principal_t *who);
/* As check_signed, for a stream ticket (?ticket=): also refuses a value that
 * would live more than ZGW_TICKET_MS past now_ms, so a 12-hour session value
 * is no ticket (addition). ZE_UNAVAILABLE from either when the store cannot
 * be read. */
int zgw_auth_check_ticket(zgw_auth_t *self, const char *value, size_t len, int64_t now_ms,
                          zgw_principal_t *who);

/* The permission table (permissions.c): may `role` do `permission`? */
bool zgw_permit(const char *role, const char *permission);
/* Is `role` one of the roles of docs/auth.md? */
bool zgw_role_valid(const char *role);
/* The roles of docs/auth.md, NULL-terminated (addition). */
extern const char *const zgw_roles[];
/* Does the permission table have a row for `permission`? For routes to assert
 * their permission names at start: zgw_permit is false for an unknown name
 * (addition). */
bool zgw_permission_known(const char *permission);
/* The permissions `role` holds, in table order: the first at or after row
 * `index`, with *next the row to ask from for the one after; NULL when there
 * is none. For whoami, so that a page shows only what the role may read. */
const char *zgw_permission_of(const char *role, size_t index, size_t *next);

/* Is `area` inside `scope` (scope is a prefix of area)? "" is everywhere. */
bool zgw_area_within(const char *scope, const char *area);

#endif
