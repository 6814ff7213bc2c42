/* The JSON API: authentication, the route table, command routes through the
 * broker, and the small built-in routes (docs/api.md, docs/openapi.yaml). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "services/gateway/apiutil.h"
#include "services/gateway/gateway.h"
#include "services/gateway/report_csv.h"
#include "services/gateway/routes.h"

#define COOKIE_NAME "zhili_session"
#define QUERY_VALUE_BYTES_MAX 4096

const double zgw_latency_bounds_ms[ZGW_LATENCY_BUCKETS] = {1,   2,   5,    10,   25,   50,
                                                           100, 250, 500, 1000, 2500, 10000};

/* ---- responses ---------------------------------------------------------- */

static void respond_json(zgw_t *gw, zhttp_req_t *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    zgw_count_status(gw, status);
    zhttp_respond(req, status, "application/json; charset=utf-8", text ? text : "{}",
                  text ? strlen(text) : 2);
    free(text);
}

static void respond_error(zgw_t *gw, zhttp_req_t *req, int status, const char *name,
                          const char *message, const char *field)
{
    json_t *err = json_pack("{s:s, s:s}", "status", name, "message", message);
    if (field != NULL && field[0] != '\0') {
        json_object_set_new(err, "field", json_string(field));
    }
    respond_json(gw, req, status, json_pack("{s:o}", "error", err));
}

/* ---- small parsers ------------------------------------------------------ */

static bool area_valid(const char *area)
{
    size_t n = strlen(area);
    if (n > ZGW_AREA_BYTES_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)area[i])) {
            return false;
        }
    }
    return true;
}

/* The session cookie's value, if any. */
static zhttp_str_t cookie_get(const zhttp_req_t *req)
{
    zhttp_str_t h = zhttp_req_header(req, "cookie");
    zhttp_str_t none = {NULL, 0};
    size_t nlen = strlen(COOKIE_NAME);
    for (size_t i = 0; h.data != NULL && i + nlen < h.len; i++) {
        if ((i == 0 || h.data[i - 1] == ' ' || h.data[i - 1] == ';') &&
            memcmp(h.data + i, COOKIE_NAME "=", nlen + 1) == 0) {
            const char *v = h.data + i + nlen + 1;
            const char *semi = memchr(v, ';', h.len - (size_t)(v - h.data));
            return (zhttp_str_t){v, semi ? (size_t)(semi - v) : h.len - (size_t)(v - h.data)};
        }
    }
    return none;
}

/* Bearer token, else session cookie, else (streams only) ?ticket=. */
static int authenticate(zgw_t *gw, zhttp_req_t *req, bool allow_ticket, zgw_principal_t *who)
{
    int64_t now = zclock_wall_ms();
    zhttp_str_t auth = zhttp_req_header(req, "authorization");
    if (auth.data != NULL) {
        return zgw_auth_bearer(gw->auth, auth.data, auth.len, now, who);
    }
    zhttp_str_t cookie = cookie_get(req);
    if (cookie.data != NULL) {
        return zgw_auth_check_signed(gw->auth, cookie.data, cookie.len, now, who);
    }
    char ticket[ZGW_CREDENTIAL_BYTES_MAX];
    if (allow_ticket && zgw_query_get(zhttp_req_query(req), "ticket", ticket, sizeof ticket) == 1) {
        return zgw_auth_check_ticket(gw->auth, ticket, strlen(ticket), now, who);
    }
    return ZE_NOT_FOUND;
}

/* ---- command routes ----------------------------------------------------- */

typedef struct {
    zgw_t *gw;
    zhttp_req_t *req;
    uint64_t call;
    int ok_status;
    int64_t started_mono_ms;
    const char *command;   /* the route's Command member, to name fields as the client sent them */
    const char *render;    /* the route's renderer of the result (report_csv.h), or NULL */
    char actor_id[sizeof ((zgw_principal_t *)0)->token_id]; /* the caller's, for X-Request-Id */
} pending_t;

static void on_gone(void *ctx)
{
    pending_t *p = ctx;
    zgw_bus_cancel(p->gw->bus, p->call);
    free(p);
}

static void observe_latency(zgw_t *gw, int64_t ms)
{
    for (int i = 0; i < ZGW_LATENCY_BUCKETS; i++) {
        if ((double)ms <= zgw_latency_bounds_ms[i]) {
            gw->metrics.latency_buckets[i]++;
            break;
        }
    }
    gw->metrics.latency_count++;
    gw->metrics.latency_sum_ms += (double)ms;
}

/* The reply's result member as JSON (NULL when none). */
static json_t *result_json(const Zhili__V1__Reply *r)
{
    json_t *all = zjson_from_msg(&r->base);
    json_t *result = NULL;
    const char *key;
    json_t *value;
    json_object_foreach(all, key, value) {
        if (strcmp(key, "request_id") && strcmp(key, "status") && strcmp(key, "message") &&
            strcmp(key, "field")) {
            result = json_incref(value);
            break;
        }
    }
    json_decref(all);
    return result;
}

/* The reply's result member as the body ({} when none), written straight
 * from the message: no JSON tree (a tenth of the work of building, dumping
 * and freeing one). Every result member is a message, so the body is an
 * object. */
static void respond_result(zgw_t *gw, zhttp_req_t *req, int status, const Zhili__V1__Reply *r)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(r->base.descriptor, (unsigned)r->result_case);
    char *text = NULL;
    size_t len = 0;
    int rc = zjson_text_from_field(&r->base, f, &text, &len);
    if (rc == ZE_INTERNAL) {
        respond_error(gw, req, 500, "internal", "the answer could not be written (out of memory)",
                      NULL);
        return;
    }
    zgw_count_status(gw, status);
    zhttp_respond(req, status, "application/json; charset=utf-8", rc == 0 ? text : "{}",
                  rc == 0 ? len : 2);
    free(text);
}

/* The codec names fields from the Command; the client knows them from its body. */
static const char *strip_prefix(const char *field, const char *command)
{
    size_t n = strlen(command);
    if (strncmp(field, command, n) == 0 && field[n] == '.') {
        return field + n + 1;
    }
    return strncmp(field, command, n) == 0 && field[n] == '\0' ? "body" : field;
}

/* A command route's result through its renderer (report_csv.h). */
static void respond_rendered(zgw_t *gw, zhttp_req_t *req, const char *render, int status,
                             json_t *result)
{
    json_t *html = strcmp(render, "html") == 0 ? json_object_get(result, "html") : NULL;
    if (json_is_string(html)) {
        /* A page to print and pin on the bulletin board (公示栏). */
        zgw_count_status(gw, status);
        zhttp_respond(req, status, "text/html; charset=utf-8", json_string_value(html),
                      json_string_length(html));
        json_decref(result);
        return;
    }
    if (strcmp(render, "report_csv") != 0) {
        if (strcmp(render, "report") == 0) {
            zgw_report_nulls(result);
        }
        respond_json(gw, req, status, result);
        return;
    }
    char filename[96], disposition[160];
    size_t len = 0;
    char *csv = zgw_report_csv(result, &len, filename, sizeof filename);
    json_decref(result);
    if (csv == NULL) {
        respond_error(gw, req, 500, "internal", "the CSV could not be made (out of memory)", NULL);
        return;
    }
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s\"", filename);
    zhttp_req_add_header(req, "content-disposition", disposition);
    zgw_count_status(gw, status);
    zhttp_respond(req, status, "text/csv; charset=utf-8", csv, len);
    free(csv);
}

static void on_reply(void *ctx, const Zhili__V1__Reply *r)
{
    pending_t *p = ctx;
    zgw_t *gw = p->gw;
    observe_latency(gw, zclock_mono_ms() - p->started_mono_ms);
    zhttp_req_add_header(p->req, "x-request-id", zbus_request_id_key(r->request_id, p->actor_id));
    if (r->status == ZHILI__V1__STATUS__STATUS_OK && p->render != NULL) {
        json_t *result = result_json(r);
        respond_rendered(gw, p->req, p->render, p->ok_status, result ? result : json_object());
    } else if (r->status == ZHILI__V1__STATUS__STATUS_OK) {
        respond_result(gw, p->req, p->ok_status, r);
    } else {
        respond_error(gw, p->req, zgw_http_status((int)r->status),
                      zerr_name(zerr_from_status((int)r->status)), r->message,
                      strip_prefix(r->field, p->command));
    }
    free(p);
}

typedef struct {
    int http;
    char name[32];
    char msg[ZCODEC_ERR_BYTES + 64];
    char field[ZCODEC_ERR_BYTES];
} failure_t;

static int fail(failure_t *f, int http, const char *name, const char *field, const char *msg)
{
    f->http = http;
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->field, sizeof f->field, "%s", field ? field : "");
    snprintf(f->msg, sizeof f->msg, "%s", msg);
    return -1;
}

/* The request body as a JSON object ({} when a GET or DELETE has none). */
static json_t *body_json(zhttp_req_t *req, failure_t *f)
{
    zhttp_str_t body = zhttp_req_body(req);
    zhttp_str_t method = zhttp_req_method(req);
    bool has_body = body.len > 0;
    if (!has_body) {
        return json_object();
    }
    zhttp_str_t ct = zhttp_req_header(req, "content-type");
    if (ct.data == NULL || ct.len < 16 || strncasecmp(ct.data, "application/json", 16) != 0) {
        fail(f, 415, "invalid", "Content-Type", "send the body as Content-Type: application/json");
        return NULL;
    }
    (void)method;
    json_error_t err;
    json_t *j = json_loadb(body.data, body.len, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL) {
        char msg[300];
        snprintf(msg, sizeof msg, "the body is not valid JSON: line %d, column %d: %s", err.line,
                 err.column, err.text);
        fail(f, 400, "invalid", "body", msg);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        fail(f, 400, "invalid", "body", "the body must be a JSON object");
        return NULL; /* j is freed: not to be looked at again */
    }
    return j;
}

/* request_id from Idempotency-Key, scoped to the caller (zgw_request_id),
 * else a fresh one. */
static int request_id(zhttp_req_t *req, const zgw_principal_t *who,
                      char out[ZSTORE_REQUEST_ID_BYTES_MAX + 1], failure_t *f)
{
    int rc = zgw_request_id(req, who->token_id, out);
    if (rc != 0) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "Idempotency-Key must be 1 to %d printable ASCII characters without spaces",
                 ZGW_IDEMPOTENCY_KEY_BYTES_MAX);
        return fail(f, 400, "invalid", "Idempotency-Key", msg);
    }
    return 0;
}

/* The area the command acts on: the body's "area", else ?area=; it must lie
 * inside the caller's scope. Returns 0 with area set ("" when none given). */
static int resolve_area(zhttp_req_t *req, json_t *body, const zgw_principal_t *who,
                        char area[ZGW_AREA_BYTES_MAX + 1], failure_t *f)
{
    json_t *a = json_object_get(body, "area");
    char q[64];
    int found = zgw_query_get(zhttp_req_query(req), "area", q, sizeof q);
    const char *given = json_is_string(a) ? json_string_value(a) : found == 1 ? q : "";
    if (found < 0 || strlen(given) > ZGW_AREA_BYTES_MAX || !area_valid(given)) {
        return fail(f, 400, "invalid", "area", "area must be an area code of up to 18 digits");
    }
    if (!zgw_area_within(who->area, given[0] ? given : who->area)) {
        char msg[160];
        snprintf(msg, sizeof msg, "area %s is outside your scope %s", given, who->area);
        return fail(f, 403, "forbidden", "area", msg);
    }
    /* Without an area the command acts in the caller's whole scope (both are
     * at most ZGW_AREA_BYTES_MAX, checked above and by the token's record). */
    const char *use = given[0] ? given : who->area;
    size_t len = strnlen(use, ZGW_AREA_BYTES_MAX);
    memcpy(area, use, len);
    area[len] = '\0';
    return 0;
}

/* A request without a body (GET, DELETE) passes its query parameters as
 * string fields of the command body (list filters, pagination); "area" is
 * the scope and handled apart. Fields fed this way are strings or 64-bit
 * integers in the .proto, since a query has no types. */
static int add_query_fields(zhttp_req_t *req, json_t *body, failure_t *f)
{
    zhttp_str_t q = zhttp_req_query(req);
    if (zhttp_req_body(req).len > 0 || q.len == 0) {
        return 0;
    }
    const char *p = q.data, *end = q.data + q.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        char name[64], value[QUERY_VALUE_BYTES_MAX];
        if (eq == NULL || !zgw_url_decode(p, (size_t)(eq - p), name, sizeof name) ||
            !zgw_url_decode(eq + 1, (size_t)(stop - eq - 1), value, sizeof value)) {
            return fail(f, 400, "invalid", "query", "the query must be name=value pairs, percent-encoded");
        }
        if (strcmp(name, "area") != 0) {
            json_object_set_new(body, name, json_string(value));
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

static Zhili__V1__Command *build_command(zhttp_req_t *req, const zgw_route_t *route,
                                         const zgw_param_t *params, int param_count,
                                         const zgw_principal_t *who, failure_t *f)
{
    json_t *body = body_json(req, f);
    char rid[ZSTORE_REQUEST_ID_BYTES_MAX + 1], area[ZGW_AREA_BYTES_MAX + 1];
    if (body == NULL || request_id(req, who, rid, f) != 0 || resolve_area(req, body, who, area, f) != 0) {
        json_decref(body);
        return NULL;
    }
    if (add_query_fields(req, body, f) != 0) {
        json_decref(body);
        return NULL;
    }
    for (int i = 0; i < param_count; i++) {
        char name[64], value[QUERY_VALUE_BYTES_MAX];
        size_t name_len = params[i].name_len < (int)sizeof name - 1 ? (size_t)params[i].name_len
                                                                    : sizeof name - 1;
        memcpy(name, params[i].name, name_len);
        name[name_len] = '\0';
        if (!zgw_url_decode(params[i].value, (size_t)params[i].value_len, value, sizeof value)) {
            json_decref(body);
            fail(f, 400, "invalid", name, "a path segment is not valid percent-encoding");
            return NULL;
        }
        json_object_set_new(body, name, json_string(value));
    }
    /* Built by hand: json_pack's format parsing was 6% of a write request. */
    json_t *cmd = json_object();
    json_object_set_new_nocheck(cmd, "request_id", json_string_nocheck(rid));
    json_object_set_new_nocheck(cmd, "area", json_string_nocheck(area));
    json_object_set_new_nocheck(cmd, route->command, body);
    ProtobufCMessage *m = NULL;
    char err[ZCODEC_ERR_BYTES], field[ZCODEC_ERR_BYTES];
    int rc = zjson_to_msg(cmd, &zhili__v1__command__descriptor, &m, err, field);
    json_decref(cmd);
    if (rc != 0) {
        fail(f, 400, "invalid", strip_prefix(field, route->command), err);
        return NULL;
    }
    return (Zhili__V1__Command *)m;
}

/* The command of a plain request built without a jansson tree
 * (zjson_fast_to_msg): exactly what build_command makes of it, or NULL for
 * build_command to take the request, which it does for every error too (it
 * words them). Declined here: a query string (query fields, ?area=), a path
 * parameter named area, a body not sent as JSON, anything the fast reader
 * declines, and any area or Idempotency-Key build_command would refuse. */
static Zhili__V1__Command *build_command_fast(zhttp_req_t *req, const zgw_route_t *route,
                                              const zgw_param_t *params, int param_count,
                                              const zgw_principal_t *who)
{
    zhttp_str_t body = zhttp_req_body(req);
    const ProtobufCFieldDescriptor *bf = protobuf_c_message_descriptor_get_field_by_name(
        &zhili__v1__command__descriptor, route->command);
    if (zhttp_req_query(req).len > 0 || bf == NULL || bf->type != PROTOBUF_C_TYPE_MESSAGE ||
        param_count > ZGW_PATH_PARAMS_MAX) {
        return NULL;
    }
    if (body.len > 0) {
        zhttp_str_t ct = zhttp_req_header(req, "content-type");
        if (ct.data == NULL || ct.len < 16 || strncasecmp(ct.data, "application/json", 16) != 0) {
            return NULL;
        }
    }
    /* Path parameters become string members replacing body members. */
    char values[ZGW_PATH_PARAMS_MAX][QUERY_VALUE_BYTES_MAX];
    zjson_extra_t extras[ZGW_PATH_PARAMS_MAX];
    for (int i = 0; i < param_count; i++) {
        if ((params[i].name_len == 4 && memcmp(params[i].name, "area", 4) == 0) ||
            !zgw_url_decode(params[i].value, (size_t)params[i].value_len, values[i],
                            sizeof values[i])) {
            return NULL;
        }
        extras[i] = (zjson_extra_t){params[i].name, (size_t)params[i].name_len, values[i],
                                    strlen(values[i])};
    }
    ProtobufCMessage *sub = NULL;
    if (zjson_fast_to_msg(body.data, body.len, extras, param_count, bf->descriptor, &sub) != 0) {
        return NULL;
    }
    /* The area as resolve_area reads it: the body's string "area" (which the
     * fast reader put into the message's string field of that name), else the
     * caller's scope. */
    const ProtobufCFieldDescriptor *af =
        protobuf_c_message_descriptor_get_field_by_name(bf->descriptor, "area");
    const char *given = "";
    if (af != NULL) {
        /* A string outside any oneof: its slot always holds a string. */
        bool plain = af->type == PROTOBUF_C_TYPE_STRING && af->label != PROTOBUF_C_LABEL_REPEATED &&
                     !(af->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
        given = plain ? *(const char *const *)((const char *)sub + af->offset) : NULL;
    }
    char rid[ZSTORE_REQUEST_ID_BYTES_MAX + 1];
    if (given == NULL || strlen(given) > ZGW_AREA_BYTES_MAX || !area_valid(given) ||
        !zgw_area_within(who->area, given[0] ? given : who->area) ||
        zgw_request_id(req, who->token_id, rid) != 0) {
        zcodec_free(sub);
        return NULL;
    }
    Zhili__V1__Command *cmd = malloc(sizeof *cmd);
    ZASSERT(cmd != NULL);
    zhili__v1__command__init(cmd);
    cmd->request_id = strdup(rid);
    cmd->area = strdup(given[0] ? given : who->area);
    ZASSERT(cmd->request_id != NULL && cmd->area != NULL);
    cmd->body_case = (Zhili__V1__Command__BodyCase)bf->id;
    *(ProtobufCMessage **)((char *)cmd + bf->offset) = sub;
    return cmd;
}

static void command_route(zgw_t *gw, zhttp_req_t *req, const zgw_route_t *route,
                          const zgw_param_t *params, int param_count, const zgw_principal_t *who)
{
    failure_t f;
    Zhili__V1__Command *cmd = build_command_fast(req, route, params, param_count, who);
    if (cmd == NULL) {
        cmd = build_command(req, route, params, param_count, who, &f);
    }
    if (cmd == NULL) {
        respond_error(gw, req, f.http, f.name, f.msg, f.field);
        return;
    }
    /* The caller is who the token says, never what the body claims. */
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = (char *)who->token_id;
    actor.role = (char *)who->role;
    actor.area = (char *)who->area;
    actor.name = (char *)who->name;
    Zhili__V1__Actor *claimed = cmd->actor;
    cmd->actor = &actor;
    pending_t *p = calloc(1, sizeof *p);
    ZASSERT(p != NULL);
    *p = (pending_t){gw, req, 0, route->ok_status, zclock_mono_ms(), route->command,
                     route->builtin, ""};
    memcpy(p->actor_id, who->token_id, sizeof p->actor_id);
    p->call = zgw_bus_call(gw->bus, route->service, cmd, (int)gw->cfg.call_timeout_ms, on_reply, p);
    cmd->actor = claimed;
    zcodec_free(&cmd->base);
    if (p->call == 0) {
        free(p);
        respond_error(gw, req, 503, "unavailable", "the gateway has too many requests in flight",
                      NULL);
        return;
    }
    zhttp_req_on_gone(req, on_gone, p);
}

/* ---- built-in routes ---------------------------------------------------- */

static json_t *principal_json(const zgw_principal_t *who)
{
    json_t *perms = json_array();
    size_t at = 0;
    for (const char *p = zgw_permission_of(who->role, 0, &at); p != NULL;
         p = zgw_permission_of(who->role, at, &at)) {
        json_array_append_new(perms, json_string(p));
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "token_id", who->token_id, "role", who->role,
                     "area", who->area, "name", who->name, "permissions", perms);
}

static void session_create(zgw_t *gw, zhttp_req_t *req, const zgw_principal_t *who)
{
    char value[ZGW_CREDENTIAL_BYTES_MAX], cookie[ZGW_CREDENTIAL_BYTES_MAX + 128];
    int64_t expires = zclock_wall_ms() + gw->cfg.session_ms;
    if (zgw_auth_sign(gw->auth, who, expires, value, sizeof value) != 0) {
        respond_error(gw, req, 500, "internal", "the session could not be signed", NULL);
        return;
    }
    snprintf(cookie, sizeof cookie, COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld",
             value, (long long)(gw->cfg.session_ms / 1000));
    zhttp_req_add_header(req, "set-cookie", cookie);
    json_t *j = principal_json(who);
    json_object_set_new(j, "expires_ms", json_integer(expires));
    respond_json(gw, req, 201, j);
}

static void session_delete(zgw_t *gw, zhttp_req_t *req)
{
    zhttp_req_add_header(req, "set-cookie",
                         COOKIE_NAME "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    respond_json(gw, req, 200, json_object());
}

static void ticket(zgw_t *gw, zhttp_req_t *req, const zgw_principal_t *who)
{
    char value[ZGW_CREDENTIAL_BYTES_MAX];
    int64_t expires = zclock_wall_ms() + ZGW_TICKET_MS;
    if (zgw_auth_sign(gw->auth, who, expires, value, sizeof value) != 0) {
        respond_error(gw, req, 500, "internal", "the ticket could not be signed", NULL);
        return;
    }
    respond_json(gw, req, 201, json_pack("{s:s, s:I}", "ticket", value, "expires_ms",
                                         (json_int_t)expires));
}

static void stream(zgw_t *gw, zhttp_req_t *req, const zgw_principal_t *who, bool websocket)
{
    char topics[ZGW_TOPICS_MAX * (ZGW_TOPIC_BYTES_MAX + 1)] = "", area[64] = "";
    char since[ZGW_SINCE_BYTES_MAX + 1] = "";
    zhttp_str_t q = zhttp_req_query(req);
    if (zgw_query_get(q, "topics", topics, sizeof topics) < 0 || zgw_query_get(q, "area", area, sizeof area) < 0 ||
        zgw_query_get(q, "since", since, sizeof since) < 0) {
        respond_error(gw, req, 400, "invalid", "a query parameter is not valid percent-encoding "
                      "or is too long", "query");
        return;
    }
    if (!area_valid(area)) {
        respond_error(gw, req, 400, "invalid", "area must be an area code of up to 18 digits", "area");
        return;
    }
    if (!zgw_area_within(who->area, area[0] ? area : who->area)) {
        respond_error(gw, req, 403, "forbidden", "that area is outside your scope", "area");
        return;
    }
    if (websocket && !zhttp_req_is_websocket(req)) {
        respond_error(gw, req, 400, "invalid", "this route expects a WebSocket upgrade", NULL);
        return;
    }
    zhttp_str_t last = zhttp_req_header(req, "last-event-id");
    zgw_stream_req_t sr = {topics, area[0] ? area : who->area, since, strlen(since), websocket};
    if (!websocket && last.data != NULL) {
        sr.since = last.data;
        sr.since_len = last.len;
    }
    char field[32], msg[256];
    int rc = zgw_hub_serve(gw->hub, req, &sr, field, sizeof field, msg, sizeof msg);
    if (rc != 0) {
        respond_error(gw, req, rc == ZE_INVALID ? 400 : 503, zerr_name(rc), msg,
                      rc == ZE_INVALID ? field : NULL);
    } else {
        zgw_count_status(gw, websocket ? 101 : 200);
    }
}

static void routes_list(zgw_t *gw, zhttp_req_t *req)
{
    json_t *list = json_array();
    for (int i = 0; i < zgw_route_count; i++) {
        const zgw_route_t *r = &zgw_routes[i];
        if (r->test_only && !gw->cfg.test_routes) {
            continue;
        }
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "method", r->method,
                                              "path", r->pattern, "permission",
                                              r->permission ? r->permission : "", "summary",
                                              r->summary));
    }
    respond_json(gw, req, 200, json_pack("{s:o}", "routes", list));
}

static void builtin(zgw_t *gw, zhttp_req_t *req, const zgw_route_t *r, const zgw_principal_t *who)
{
    const char *b = r->builtin;
    if (strcmp(b, "healthz") == 0) {
        respond_json(gw, req, 200, json_pack("{s:s}", "status", "ok"));
    } else if (strcmp(b, "readyz") == 0) {
        zgw_readyz_serve(gw, req);
    } else if (strcmp(b, "metrics") == 0) {
        zgw_count_status(gw, 200);
        zgw_metrics_serve(gw, req);
    } else if (strcmp(b, "whoami") == 0) {
        respond_json(gw, req, 200, principal_json(who));
    } else if (strcmp(b, "session_create") == 0) {
        session_create(gw, req, who);
    } else if (strcmp(b, "session_delete") == 0) {
        session_delete(gw, req);
    } else if (strcmp(b, "ticket") == 0) {
        ticket(gw, req, who);
    } else if (strcmp(b, "stream") == 0 || strcmp(b, "ws") == 0) {
        stream(gw, req, who, strcmp(b, "ws") == 0);
    } else {
        routes_list(gw, req);
    }
}

/* ---- the entry point ---------------------------------------------------- */

void zgw_on_request(void *ctx, zhttp_req_t *req)
{
    zgw_t *gw = ctx;
    zhttp_str_t method = zhttp_req_method(req), path = zhttp_req_path(req);
    zgw_param_t params[ZGW_PATH_PARAMS_MAX];
    int param_count = 0;
    int i = zgw_route_match(method.data, (int)method.len, path.data, (int)path.len,
                            gw->cfg.test_routes, params, &param_count);
    if (i < 0) {
        respond_error(gw, req, i == -2 ? 405 : 404, i == -2 ? "invalid" : "not_found",
                      i == -2 ? "this resource does not take that method" : "no such resource",
                      NULL);
        return;
    }
    const zgw_route_t *r = &zgw_routes[i];
    zgw_principal_t who = {.role = "", .area = ""};
    bool open = r->permission == NULL ||
                (strcmp(r->builtin ? r->builtin : "", "metrics") == 0 && gw->cfg.metrics_public);
    if (!open) {
        bool streamy = r->builtin && (!strcmp(r->builtin, "stream") || !strcmp(r->builtin, "ws"));
        if (authenticate(gw, req, streamy, &who) != 0) {
            zhttp_req_add_header(req, "www-authenticate", "Bearer realm=\"zhili\"");
            respond_error(gw, req, 401, "unauthenticated",
                          "send Authorization: Bearer <token> (zhilictl token create)", NULL);
            return;
        }
        if (!zgw_permit(who.role, r->permission)) {
            char msg[160];
            snprintf(msg, sizeof msg, "role %s may not %s %s", who.role, r->method, r->pattern);
            respond_error(gw, req, 403, "forbidden", msg, NULL);
            return;
        }
    }
    if (r->kind == ZGW_ROUTE_BUILTIN) {
        builtin(gw, req, r, &who);
    } else {
        command_route(gw, req, r, params, param_count, &who);
    }
}
