/* Open311 GeoReport v2 for petitions (docs/petitions.md, "Open311"), under
 * /open311/v2/:
 *   GET  services.{xml,json}            the catalogue
 *   GET  services/{code}.{xml,json}     a service definition (attribute urgency)
 *   POST requests.{xml,json}            file a petition (form-encoded, api_key)
 *   GET  requests.{xml,json}            service_request_id, service_code,
 *                                       start_date, end_date, status
 *   GET  requests/{id}.{xml,json}       one request
 * XML through libxml2's xmlTextWriter, JSON through jansson in the spec's
 * Spark convention (arrays at the top). Errors are the spec's shape with its
 * HTTP codes: 404 for what does not exist, 403 for a missing or wrong
 * api_key, 400 for everything else (the body's code can be more specific).
 * api_key is a bearer token (a hotline token, normally); jurisdiction_id
 * names the district. Requests are answered in place (type realtime), so
 * there are no tokens. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <libxml/xmlwriter.h>

#include "common/bus.h"
#include "common/caltime.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"
#include "services/gateway/apiutil.h"
#include "services/gateway/open311.h"

#define BASE "/open311/v2/"
#define SERVICE "petitions"
#define OPEN_STATES "received,assigned,signed,in_progress,returned,reopened"
#define CLOSED_STATES "replied,evaluated,archived"

typedef enum { R_SERVICES, R_DEFINITION, R_REQUESTS, R_REQUEST } resource_t;

/* One Open311 call in flight to the petitions service. */
typedef struct {
    zgw_t *gw;
    zhttp_req_t *req;
    uint64_t call;
    bool xml;
    resource_t resource;
    bool post;
    char
        key[ZGW_O311_VALUE_BYTES_MAX / 64]; /* service_code of a definition; account_id of a POST */
} o311_call_t;

/* ---- output: one tree, two spellings ------------------------------------ */

typedef enum { F_STR, F_NUM, F_INT, F_BOOL, F_NULL } fkind_t;

typedef struct {
    const char *name;
    fkind_t kind;
    const char *s;
    double d;
    bool b;
} field_t;

typedef struct {
    bool xml;
    xmlBufferPtr buf;
    xmlTextWriterPtr w;
    json_t *root; /* JSON: the top-level array or object */
} out_t;

static void out_begin(out_t *o, bool xml, const char *root, bool array)
{
    memset(o, 0, sizeof *o);
    o->xml = xml;
    if (xml) {
        o->buf = xmlBufferCreate();
        ZASSERT(o->buf != NULL);
        o->w = xmlNewTextWriterMemory(o->buf, 0);
        ZASSERT(o->w != NULL);
        xmlTextWriterStartDocument(o->w, NULL, "utf-8", NULL);
        xmlTextWriterStartElement(o->w, BAD_CAST root);
    } else {
        o->root = array ? json_array() : json_object();
    }
}

static void xml_field(xmlTextWriterPtr w, const field_t *f)
{
    char num[64];
    switch (f->kind) {
    case F_STR:
        xmlTextWriterWriteElement(w, BAD_CAST f->name, BAD_CAST(f->s ? f->s : ""));
        break;
    case F_NUM:
        snprintf(num, sizeof num, "%.9g", f->d);
        xmlTextWriterWriteElement(w, BAD_CAST f->name, BAD_CAST num);
        break;
    case F_INT:
        snprintf(num, sizeof num, "%lld", (long long)f->d);
        xmlTextWriterWriteElement(w, BAD_CAST f->name, BAD_CAST num);
        break;
    case F_BOOL:
        xmlTextWriterWriteElement(w, BAD_CAST f->name, BAD_CAST(f->b ? "true" : "false"));
        break;
    case F_NULL:
        xmlTextWriterStartElement(w, BAD_CAST f->name);
        xmlTextWriterEndElement(w);
        break;
    }
}

static json_t *json_field(const field_t *f)
{
    switch (f->kind) {
    case F_STR:
        return json_string(f->s ? f->s : "");
    case F_NUM:
        return json_real(f->d);
    case F_INT:
        return json_integer((json_int_t)f->d);
    case F_BOOL:
        return json_boolean(f->b);
    default:
        return json_null();
    }
}

/* One <item> of fields, or one object in the top-level array. */
static void out_item(out_t *o, const char *item, const field_t *fields, size_t n)
{
    if (o->xml) {
        xmlTextWriterStartElement(o->w, BAD_CAST item);
        for (size_t i = 0; i < n; i++) {
            xml_field(o->w, &fields[i]);
        }
        xmlTextWriterEndElement(o->w);
        return;
    }
    json_t *obj = json_object();
    for (size_t i = 0; i < n; i++) {
        json_object_set_new(obj, fields[i].name, json_field(&fields[i]));
    }
    json_array_append_new(o->root, obj);
}

static void out_send(zgw_t *gw, zhttp_req_t *req, out_t *o, int status)
{
    zgw_count_status(gw, status);
    if (o->xml) {
        xmlTextWriterEndDocument(o->w); /* closes every open element */
        xmlFreeTextWriter(o->w);
        zhttp_respond(req, status, "text/xml; charset=utf-8", xmlBufferContent(o->buf),
                      (size_t)xmlBufferLength(o->buf));
        xmlBufferFree(o->buf);
        return;
    }
    char *text = json_dumps(o->root, JSON_COMPACT);
    json_decref(o->root);
    zhttp_respond(req, status, "application/json; charset=utf-8", text ? text : "[]",
                  text ? strlen(text) : 2);
    free(text);
}

/* The spec's error document: HTTP `status`, body code `code`. */
static void send_error(zgw_t *gw, zhttp_req_t *req, bool xml, int status, int code,
                       const char *description)
{
    out_t o;
    out_begin(&o, xml, "errors", true);
    field_t f[] = {{"code", F_INT, NULL, code, false},
                   {"description", F_STR, description, 0, false}};
    out_item(&o, "error", f, ZARRAY_LEN(f));
    out_send(gw, req, &o, status);
}

/* ---- input -------------------------------------------------------------- */

/* A parameter from the query (GET) or the form body (POST): 1, 0 absent
 * (an empty value counts as absent, as the spec asks), -1 malformed. */
static int param(zhttp_req_t *req, bool post, const char *name, char *out, size_t cap)
{
    zhttp_str_t src = post ? zhttp_req_body(req) : zhttp_req_query(req);
    out[0] = '\0';
    int rc = zgw_query_get(src, name, out, cap);
    if (rc != 1) {
        out[0] = '\0';
    }
    return rc == 1 && out[0] == '\0' ? 0 : rc;
}

/* The caller named by api_key (or a bearer header). */
static int api_key_check(zgw_pet_t *p, zhttp_req_t *req, bool post, const char *permission,
                         zgw_principal_t *who, const char **why)
{
    char key[ZGW_CREDENTIAL_BYTES_MAX], header[ZGW_CREDENTIAL_BYTES_MAX + 16];
    int rc = param(req, post, "api_key", key, sizeof key);
    zhttp_str_t auth = zhttp_req_header(req, "authorization");
    int64_t now = zclock_wall_ms();
    if (rc == 1) {
        int n = snprintf(header, sizeof header, "Bearer %s", key);
        rc = zgw_auth_bearer(p->gw->auth, header, (size_t)n, now, who);
    } else if (rc == 0 && auth.data != NULL) {
        rc = zgw_auth_bearer(p->gw->auth, auth.data, auth.len, now, who);
    } else {
        *why = "api_key was not provided";
        return -1;
    }
    if (rc != 0) {
        *why = rc == ZE_UNAVAILABLE ? "the token store cannot be read; try again"
                                    : "invalid api_key received";
        return -1;
    }
    if (!zgw_permit(who->role, permission)) {
        *why = "this api_key may not do that";
        return -1;
    }
    return 0;
}

static bool jurisdiction_ok(zgw_pet_t *p, zhttp_req_t *req, bool post)
{
    char j[ZGW_O311_JURISDICTION_BYTES_MAX + 1];
    int rc = param(req, post, "jurisdiction_id", j, sizeof j);
    return rc == 0 || (rc == 1 && (p->jurisdiction[0] == '\0' || strcmp(j, p->jurisdiction) == 0));
}

/* ---- replies from the petitions service --------------------------------- */

static const char *status_of(const Zhili__Petitions__Petition *v)
{
    return v->state == ZHILI__PETITIONS__STATE__STATE_REPLIED ||
                   v->state == ZHILI__PETITIONS__STATE__STATE_EVALUATED ||
                   v->state == ZHILI__PETITIONS__STATE__STATE_ARCHIVED
               ? "closed"
               : "open";
}

static const char *state_zh(int state)
{
    static const char *const names[] = {"",           "已受理", "已派单",
                                        "已签收",     "办理中", "已办结",
                                        "已回访评价", "已归档", "已退单，待重新派单",
                                        "重办中"};
    return state > 0 && state < (int)ZARRAY_LEN(names) ? names[state] : "";
}

static void put_request(out_t *o, const Zhili__Petitions__Petition *v)
{
    char notes[ZGW_O311_VALUE_BYTES_MAX / 4], code[32];
    bool closed = strcmp(status_of(v), "closed") == 0;
    if (v->merged_into[0] != '\0') {
        snprintf(notes, sizeof notes, "重复件，已合并至 %s", v->merged_into);
    } else {
        snprintf(notes, sizeof notes, "%s", closed && v->reply[0] ? v->reply : state_zh(v->state));
    }
    char cat[32];
    const char *cat_code =
        zjson_enum_name(&zhili__petitions__category__descriptor, v->category, cat, sizeof cat);
    snprintf(code, sizeof code, "%s", cat_code ? cat_code : "");
    const char *updated = closed && v->replied_at[0]    ? v->replied_at
                          : closed && v->archived_at[0] ? v->archived_at
                                                        : v->updated_at;
    bool point =
        v->point_present_case == ZHILI__PETITIONS__PETITION__POINT_PRESENT_POINT && v->point;
    field_t f[] = {
        {"service_request_id", F_STR, v->id, 0, false},
        {"status", F_STR, status_of(v), 0, false},
        {"status_notes", F_STR, notes, 0, false},
        {"service_name", F_STR, v->category_name, 0, false},
        {"service_code", F_STR, code, 0, false},
        {"description", F_STR, v->content, 0, false},
        {"agency_responsible", F_STR, v->assigned_name[0] ? v->assigned_name : v->assigned_to, 0,
         false},
        {"service_notice", F_STR, "", 0, false},
        {"requested_datetime", F_STR, v->received_at, 0, false},
        {"updated_datetime", F_STR, updated, 0, false},
        {"expected_datetime", F_STR, v->reply_deadline, 0, false},
        {"address", F_STR, v->address, 0, false},
        {"address_id", F_STR, v->area, 0, false},
        {"zipcode", F_STR, "", 0, false},
        {"lat", point ? F_NUM : F_NULL, NULL, point ? v->point->lat : 0, false},
        {"long", point ? F_NUM : F_NULL, NULL, point ? v->point->long_ : 0, false},
        {"media_url", F_STR, v->media_url, 0, false},
    };
    out_item(o, "request", f, ZARRAY_LEN(f));
}

static void put_services(out_t *o, const Zhili__Petitions__Catalogue *c)
{
    for (size_t i = 0; i < c->n_entries; i++) {
        const Zhili__Petitions__CatalogueEntry *e = c->entries[i];
        char keywords[128];
        snprintf(keywords, sizeof keywords, "%s, %s, 12345", e->code, e->name);
        field_t f[] = {
            {"service_code", F_STR, e->code, 0, false},
            {"service_name", F_STR, e->name, 0, false},
            {"description", F_STR, e->description, 0, false},
            {"metadata", F_BOOL, NULL, 0, true},
            {"type", F_STR, "realtime", 0, false},
            {"keywords", F_STR, keywords, 0, false},
            {"group", F_STR, e->group, 0, false},
        };
        out_item(o, "service", f, ZARRAY_LEN(f));
    }
}

/* The one attribute every service has: urgency (紧急程度), a singlevaluelist. */
static void put_definition(out_t *o, const char *code)
{
    static const char *const keys[] = {"normal", "urgent", "critical"};
    static const char *const names[] = {"一般", "紧急", "特急"};
    field_t a[] = {
        {"variable", F_BOOL, NULL, 0, true},
        {"code", F_STR, "urgency", 0, false},
        {"datatype", F_STR, "singlevaluelist", 0, false},
        {"required", F_BOOL, NULL, 0, false},
        {"datatype_description", F_STR, "normal 一般 (default), urgent 紧急, critical 特急", 0,
         false},
        {"order", F_INT, NULL, 1, false},
        {"description", F_STR, "紧急程度：特急（危及生命财产）、紧急（停水停电停气停暖）、一般", 0,
         false},
    };
    if (o->xml) {
        xmlTextWriterWriteElement(o->w, BAD_CAST "service_code", BAD_CAST code);
        xmlTextWriterStartElement(o->w, BAD_CAST "attributes");
        xmlTextWriterStartElement(o->w, BAD_CAST "attribute");
        for (size_t i = 0; i < ZARRAY_LEN(a); i++) {
            xml_field(o->w, &a[i]);
        }
        xmlTextWriterStartElement(o->w, BAD_CAST "values");
        for (size_t i = 0; i < ZARRAY_LEN(keys); i++) {
            xmlTextWriterStartElement(o->w, BAD_CAST "value");
            xmlTextWriterWriteElement(o->w, BAD_CAST "key", BAD_CAST keys[i]);
            xmlTextWriterWriteElement(o->w, BAD_CAST "name", BAD_CAST names[i]);
            xmlTextWriterEndElement(o->w);
        }
        return; /* out_send closes the open elements */
    }
    json_t *attr = json_object(), *values = json_array();
    for (size_t i = 0; i < ZARRAY_LEN(a); i++) {
        json_object_set_new(attr, a[i].name, json_field(&a[i]));
    }
    for (size_t i = 0; i < ZARRAY_LEN(keys); i++) {
        json_array_append_new(values, json_pack("{s:s, s:s}", "key", keys[i], "name", names[i]));
    }
    json_object_set_new(attr, "values", values);
    json_object_set_new(o->root, "service_code", json_string(code));
    json_object_set_new(o->root, "attributes", json_pack("[o]", attr));
}

/* A service error in the spec's codes (the body keeps ours). */
static void send_reply_error(o311_call_t *c, const Zhili__V1__Reply *r)
{
    int http = 400, code = zgw_http_status((int)r->status);
    char msg[600];
    const char *field = r->field;
    const char *name = !strcmp(field, "category")        ? "service_code"
                       : !strcmp(field, "content")       ? "description"
                       : !strcmp(field, "area")          ? "address_id"
                       : !strcmp(field, "point")         ? "lat/long"
                       : !strcmp(field, "citizen.phone") ? "phone"
                       : !strcmp(field, "citizen.name")  ? "first_name/last_name"
                       : !strcmp(field, "address")       ? "address_string"
                       : !strcmp(field, "urgency")       ? "attribute[urgency]"
                       : !strcmp(field, "id")            ? "service_request_id"
                                                         : field;
    if (r->status == ZHILI__V1__STATUS__STATUS_NOT_FOUND ||
        (!strcmp(field, "category") && c->post)) {
        http = code = 404; /* "service_code ... was not found" */
    } else if (r->status == ZHILI__V1__STATUS__STATUS_FORBIDDEN) {
        http = code = 403;
    }
    snprintf(msg, sizeof msg, "%s%s%s", name[0] ? name : "", name[0] ? ": " : "", r->message);
    send_error(c->gw, c->req, c->xml, http, code, msg);
}

static void on_gone(void *ctx)
{
    o311_call_t *c = ctx;
    zgw_bus_cancel(c->gw->bus, c->call);
    free(c);
}

static void on_reply(void *ctx, const Zhili__V1__Reply *r)
{
    o311_call_t *c = ctx;
    out_t o;
    if (r->status != ZHILI__V1__STATUS__STATUS_OK) {
        send_reply_error(c, r);
    } else if (c->resource == R_SERVICES &&
               r->result_case == ZHILI__V1__REPLY__RESULT_PETITION_CATALOGUE) {
        out_begin(&o, c->xml, "services", true);
        put_services(&o, r->petition_catalogue);
        out_send(c->gw, c->req, &o, 200);
    } else if (c->resource == R_DEFINITION &&
               r->result_case == ZHILI__V1__REPLY__RESULT_PETITION_CATALOGUE) {
        bool known = false;
        for (size_t i = 0; i < r->petition_catalogue->n_entries; i++) {
            known = known || strcmp(r->petition_catalogue->entries[i]->code, c->key) == 0;
        }
        if (!known) {
            char msg[200];
            snprintf(msg, sizeof msg, "service_code %.60s was not found", c->key);
            send_error(c->gw, c->req, c->xml, 404, 404, msg);
        } else {
            out_begin(&o, c->xml, "service_definition", false);
            put_definition(&o, c->key);
            out_send(c->gw, c->req, &o, 200);
        }
    } else if (c->post && r->result_case == ZHILI__V1__REPLY__RESULT_PETITION) {
        const Zhili__Petitions__Petition *v = r->petition;
        char notice[256];
        snprintf(notice, sizeof notice, "已派单至 %s，%s 前签收，%s 前办结", v->assigned_to,
                 v->sign_deadline, v->reply_deadline);
        out_begin(&o, c->xml, "service_requests", true);
        field_t f[] = {{"service_request_id", F_STR, v->id, 0, false},
                       {"service_notice", F_STR, notice, 0, false},
                       {"account_id", c->key[0] ? F_STR : F_NULL, c->key, 0, false}};
        out_item(&o, "request", f, ZARRAY_LEN(f));
        out_send(c->gw, c->req, &o, 200);
    } else if (r->result_case == ZHILI__V1__REPLY__RESULT_PETITION) {
        out_begin(&o, c->xml, "service_requests", true);
        put_request(&o, r->petition);
        out_send(c->gw, c->req, &o, 200);
    } else if (r->result_case == ZHILI__V1__REPLY__RESULT_PETITION_PAGE) {
        out_begin(&o, c->xml, "service_requests", true);
        for (size_t i = 0; i < r->petition_page->n_petitions; i++) {
            put_request(&o, r->petition_page->petitions[i]);
        }
        out_send(c->gw, c->req, &o, 200);
    } else {
        send_error(c->gw, c->req, c->xml, 400, 500,
                   "the petitions service gave an unexpected answer");
    }
    free(c);
}

/* Send cmd to the petitions service as `who` (NULL: anonymous). */
static void call(zgw_pet_t *p, zhttp_req_t *req, Zhili__V1__Command *cmd,
                 const zgw_principal_t *who, o311_call_t *proto)
{
    char rid[ZSTORE_REQUEST_ID_BYTES_MAX + 1];
    /* A write takes its Idempotency-Key as the JSON API does, and refuses a
     * malformed one the same way (a resend must not become a second
     * petition); a read needs none. */
    if (proto->post && who != NULL) {
        if (zgw_request_id(req, who->token_id, rid) != 0) {
            char msg[128];
            snprintf(msg, sizeof msg,
                     "Idempotency-Key must be 1 to %d printable ASCII characters without spaces",
                     ZGW_IDEMPOTENCY_KEY_BYTES_MAX);
            send_error(p->gw, req, proto->xml, 400, 400, msg);
            return;
        }
    } else {
        zbus_request_id_new(rid);
    }
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    if (who != NULL) {
        actor.id = (char *)who->token_id;
        actor.role = (char *)who->role;
        actor.area = (char *)who->area;
        actor.name = (char *)who->name;
        cmd->area = (char *)who->area;
    }
    cmd->request_id = rid;
    cmd->actor = &actor;
    o311_call_t *c = malloc(sizeof *c);
    ZASSERT(c != NULL);
    *c = *proto;
    c->gw = p->gw;
    c->req = req;
    c->call = zgw_bus_call(p->gw->bus, SERVICE, cmd, (int)p->gw->cfg.call_timeout_ms, on_reply, c);
    if (c->call == 0) {
        free(c);
        send_error(p->gw, req, proto->xml, 400, 503, "the gateway has too many requests in flight");
        return;
    }
    zhttp_req_on_gone(req, on_gone, c);
}

/* ---- the resources ------------------------------------------------------ */

static void get_catalogue(zgw_pet_t *p, zhttp_req_t *req, o311_call_t *proto)
{
    Zhili__Petitions__CatalogueGet cg = ZHILI__PETITIONS__CATALOGUE_GET__INIT;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_CATALOGUE_GET;
    cmd.petition_catalogue_get = &cg;
    call(p, req, &cmd, NULL, proto);
}

/* Decoded form values of a POST. */
typedef struct {
    char service_code[64], lat[64], lon[64], address_string[1024], address_id[64];
    char first_name[256], last_name[256], phone[64], description[ZGW_O311_VALUE_BYTES_MAX];
    char media_url[1024], urgency[64], account_id[64];
} form_t;

static int form_read(zhttp_req_t *req, form_t *f, const char **bad)
{
    struct {
        const char *name;
        char *out;
        size_t cap;
    } fields[] = {
        {"service_code", f->service_code, sizeof f->service_code},
        {"lat", f->lat, sizeof f->lat},
        {"long", f->lon, sizeof f->lon},
        {"address_string", f->address_string, sizeof f->address_string},
        {"address_id", f->address_id, sizeof f->address_id},
        {"first_name", f->first_name, sizeof f->first_name},
        {"last_name", f->last_name, sizeof f->last_name},
        {"phone", f->phone, sizeof f->phone},
        {"description", f->description, sizeof f->description},
        {"media_url", f->media_url, sizeof f->media_url},
        {"attribute[urgency]", f->urgency, sizeof f->urgency},
        {"attribute%5Burgency%5D", f->urgency, sizeof f->urgency},
        {"account_id", f->account_id, sizeof f->account_id},
    };
    for (size_t i = 0; i < ZARRAY_LEN(fields); i++) {
        if (fields[i].out[0] != '\0') {
            continue; /* attribute[urgency] in either spelling */
        }
        if (param(req, true, fields[i].name, fields[i].out, fields[i].cap) < 0) {
            *bad = fields[i].name;
            return -1;
        }
    }
    return 0;
}

static bool number_parse(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    *out = strtod(s, &end);
    return end != s && *end == '\0' && errno == 0 && isfinite(*out);
}

/* Chinese names put the family name first; others "first last". */
static void name_join(const form_t *f, char *out, size_t cap)
{
    bool cjk = false;
    for (const char *s = f->first_name; *s; s++) {
        cjk = cjk || (unsigned char)*s >= 0x80;
    }
    for (const char *s = f->last_name; *s; s++) {
        cjk = cjk || (unsigned char)*s >= 0x80;
    }
    if (cjk) {
        snprintf(out, cap, "%s%s", f->last_name, f->first_name);
    } else {
        snprintf(out, cap, "%s%s%s", f->first_name, f->first_name[0] && f->last_name[0] ? " " : "",
                 f->last_name);
    }
}

static void post_request(zgw_pet_t *p, zhttp_req_t *req, o311_call_t *proto)
{
    zhttp_str_t ct = zhttp_req_header(req, "content-type");
    if (ct.data == NULL || ct.len < 33 ||
        strncasecmp(ct.data, "application/x-www-form-urlencoded", 33) != 0) {
        send_error(p->gw, req, proto->xml, 400, 400,
                   "send the request as Content-Type: "
                   "application/x-www-form-urlencoded");
        return;
    }
    zgw_principal_t who;
    const char *why = NULL, *bad = NULL;
    if (api_key_check(p, req, true, "petitions.create", &who, &why) != 0) {
        send_error(p->gw, req, proto->xml, 403, 403, why);
        return;
    }
    if (!jurisdiction_ok(p, req, true)) {
        send_error(p->gw, req, proto->xml, 404, 404, "jurisdiction_id provided was not found");
        return;
    }
    form_t *f = calloc(1, sizeof *f);
    ZASSERT(f != NULL);
    char msg[160], name[520];
    double lat = 0, lon = 0;
    if (form_read(req, f, &bad) != 0) {
        snprintf(msg, sizeof msg, "%s is not valid percent-encoding or is too long", bad);
        send_error(p->gw, req, proto->xml, 400, 400, msg);
    } else if (f->service_code[0] == '\0') {
        send_error(p->gw, req, proto->xml, 400, 400, "service_code was not provided");
    } else if ((f->lat[0] != '\0') != (f->lon[0] != '\0') ||
               (f->lat[0] && (!number_parse(f->lat, &lat) || !number_parse(f->lon, &lon)))) {
        send_error(p->gw, req, proto->xml, 400, 400,
                   "lat and long must both be given, as WGS84 "
                   "decimal degrees");
    } else if (!f->lat[0] && !f->address_string[0] && !f->address_id[0]) {
        send_error(p->gw, req, proto->xml, 400, 400,
                   "a location is required: lat & long, "
                   "address_string or address_id (an area code)");
    } else {
        Zhili__Petitions__Citizen cz = ZHILI__PETITIONS__CITIZEN__INIT;
        Zhili__Petitions__Point pt = ZHILI__PETITIONS__POINT__INIT;
        Zhili__Petitions__Create cr = ZHILI__PETITIONS__CREATE__INIT;
        name_join(f, name, sizeof name);
        cz.name = name;
        cz.phone = f->phone;
        cr.category = f->service_code;
        cr.urgency = f->urgency;
        cr.content = f->description;
        cr.area = f->address_id;
        cr.address = f->address_string;
        cr.citizen = &cz;
        cr.channel = "open311";
        cr.media_url = f->media_url;
        if (f->lat[0]) {
            pt.lat = lat;
            pt.long_ = lon;
            cr.point_present_case = ZHILI__PETITIONS__CREATE__POINT_PRESENT_POINT;
            cr.point = &pt;
        }
        Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
        cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_CREATE;
        cmd.petition_create = &cr;
        snprintf(proto->key, sizeof proto->key, "%s", f->account_id);
        call(p, req, &cmd, &who, proto);
    }
    free(f);
}

/* start_date / end_date: the spec's 90-day window, end inclusive. */
static int dates(zhttp_req_t *req, char *from, char *to, const char **why)
{
    char s[64], e[64];
    int64_t start = 0, end = 0;
    int hs = param(req, false, "start_date", s, sizeof s),
        he = param(req, false, "end_date", e, sizeof e);
    if (hs < 0 || he < 0 || (hs == 1 && ztime_parse(s, &start) != 0) ||
        (he == 1 && ztime_parse(e, &end) != 0)) {
        *why = "start_date and end_date must be w3c datetimes such as 2026-11-26T00:00:00+08:00";
        return -1;
    }
    if (hs == 0 && he == 0) {
        end = zclock_wall_ms();
    }
    if (hs == 0) {
        start = end - ZGW_O311_SPAN_MS;
    } else if (he == 0) {
        end = start + ZGW_O311_SPAN_MS;
    }
    if (end < start || end - start > ZGW_O311_SPAN_MS) {
        *why = "start_date must not be after end_date, and they may not span more than 90 days";
        return -1;
    }
    ztime_format(start, from);
    ztime_format(end + 1, to);
    return 0;
}

static int status_states(zhttp_req_t *req, char *out, size_t cap)
{
    char s[64];
    int rc = param(req, false, "status", s, sizeof s);
    out[0] = '\0';
    if (rc <= 0) {
        return rc;
    }
    bool open = false, closed = false;
    char *save = NULL;
    for (char *tok = strtok_r(s, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "open") == 0) {
            open = true;
        } else if (strcmp(tok, "closed") == 0) {
            closed = true;
        } else {
            return -1;
        }
    }
    snprintf(out, cap, "%s%s%s", open ? OPEN_STATES : "", open && closed ? "," : "",
             closed ? CLOSED_STATES : "");
    return 0;
}

static void get_requests(zgw_pet_t *p, zhttp_req_t *req, o311_call_t *proto, const char *id)
{
    zgw_principal_t who;
    const char *why = NULL;
    if (api_key_check(p, req, false, "petitions.read", &who, &why) != 0) {
        send_error(p->gw, req, proto->xml, 403, 403, why);
        return;
    }
    if (!jurisdiction_ok(p, req, false)) {
        send_error(p->gw, req, proto->xml, 404, 404, "jurisdiction_id provided was not found");
        return;
    }
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    if (id != NULL) {
        Zhili__Petitions__Get g = ZHILI__PETITIONS__GET__INIT;
        g.id = (char *)id;
        cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_GET;
        cmd.petition_get = &g;
        call(p, req, &cmd, &who, proto);
        return;
    }
    char ids[ZGW_O311_VALUE_BYTES_MAX / 8], codes[256], states[128];
    char from[ZTIME_RFC3339_BYTES], to[ZTIME_RFC3339_BYTES];
    int has_ids = param(req, false, "service_request_id", ids, sizeof ids);
    if (has_ids < 0 || param(req, false, "service_code", codes, sizeof codes) < 0) {
        send_error(p->gw, req, proto->xml, 400, 400,
                   "service_request_id and service_code are "
                   "comma-separated lists");
        return;
    }
    if (status_states(req, states, sizeof states) != 0) {
        send_error(p->gw, req, proto->xml, 400, 400,
                   "status must be open, closed, or both "
                   "comma-separated");
        return;
    }
    if (has_ids != 1 && dates(req, from, to, &why) != 0) {
        send_error(p->gw, req, proto->xml, 400, 400, why);
        return;
    }
    Zhili__Petitions__List l = ZHILI__PETITIONS__LIST__INIT;
    l.limit = ZGW_O311_RESULTS_MAX;
    if (has_ids == 1) {
        l.ids = ids; /* "This overrides all other arguments." */
    } else {
        l.category = codes;
        l.state = states;
        l.from = from;
        l.to = to;
    }
    cmd.body_case = ZHILI__V1__COMMAND__BODY_PETITION_LIST;
    cmd.petition_list = &l;
    call(p, req, &cmd, &who, proto);
}

/* "requests/P0000000001.json" -> resource, format and the {id}/{code}. */
static int route(const char *rest, size_t len, o311_call_t *c, char *arg, size_t cap)
{
    const char *dot = NULL;
    for (size_t i = 0; i < len; i++) {
        dot = rest[i] == '.' ? rest + i : dot;
    }
    if (dot == NULL) {
        return -1;
    }
    size_t ext = len - (size_t)(dot - rest) - 1, stem = (size_t)(dot - rest);
    if (ext == 4 && memcmp(dot + 1, "json", 4) == 0) {
        c->xml = false;
    } else if (!(ext == 3 && memcmp(dot + 1, "xml", 3) == 0)) {
        return -2; /* a format we do not speak (the answer is XML, the required one) */
    }
    struct {
        const char *name;
        resource_t plain, with_arg;
    } names[] = {{"services", R_SERVICES, R_DEFINITION}, {"requests", R_REQUESTS, R_REQUEST}};
    for (size_t i = 0; i < ZARRAY_LEN(names); i++) {
        size_t n = strlen(names[i].name);
        if (stem == n && memcmp(rest, names[i].name, n) == 0) {
            c->resource = names[i].plain;
            return 0;
        }
        if (stem > n + 1 && memcmp(rest, names[i].name, n) == 0 && rest[n] == '/' &&
            memchr(rest + n + 1, '/', stem - n - 1) == NULL && stem - n - 1 < cap) {
            c->resource = names[i].with_arg;
            memcpy(arg, rest + n + 1, stem - n - 1);
            arg[stem - n - 1] = '\0';
            return 0;
        }
    }
    return -1;
}

void zgw_open311_on_request(void *ctx, zhttp_req_t *req)
{
    zgw_pet_t *p = ctx;
    zhttp_str_t path = zhttp_req_path(req), method = zhttp_req_method(req);
    o311_call_t c = {.xml = true};
    char raw[128] = "", arg[128] = "";
    size_t base = strlen(BASE);
    int rc = path.len > base && memcmp(path.data, BASE, base) == 0
                 ? route(path.data + base, path.len - base, &c, raw, sizeof raw)
                 : -1;
    if (rc == -2) {
        send_error(p->gw, req, true, 400, 400, "the format must be .xml or .json");
        return;
    }
    if (rc != 0 || !zgw_url_decode(raw, strlen(raw), arg, sizeof arg)) {
        send_error(p->gw, req, c.xml, 404, 404,
                   "no such Open311 resource: see /open311/v2/"
                   "services.xml, services/{code}, requests, requests/{id}");
        return;
    }
    bool get = method.len == 3 && memcmp(method.data, "GET", 3) == 0;
    c.post = method.len == 4 && memcmp(method.data, "POST", 4) == 0;
    if (!get && !(c.post && c.resource == R_REQUESTS)) {
        send_error(p->gw, req, c.xml, 400, 405,
                   c.resource == R_REQUESTS ? "requests takes GET or POST"
                                            : "this resource takes GET");
        return;
    }
    if (c.post) {
        post_request(p, req, &c);
    } else if (c.resource == R_SERVICES || c.resource == R_DEFINITION) {
        if (!jurisdiction_ok(p, req, false)) {
            send_error(p->gw, req, c.xml, 404, 404, "jurisdiction_id provided was not found");
            return;
        }
        snprintf(c.key, sizeof c.key, "%s", c.resource == R_DEFINITION ? arg : "");
        get_catalogue(p, req, &c);
    } else {
        get_requests(p, req, &c, c.resource == R_REQUEST ? arg : NULL);
    }
}
