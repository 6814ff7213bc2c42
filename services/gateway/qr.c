/* The rate limit in front of a resident's QR scan (open311.h): residents have
 * no token, so the gateway bounds how often one client address, and one
 * printed code, may file. Fixed windows in two bounded tables; the route
 * itself is the route table's (POST /api/v1/qr/{code}/petitions). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/err.h"
#include "services/gateway/apiutil.h"
#include "services/gateway/open311.h"

#define QR_PREFIX "/api/v1/qr/"
#define QR_SUFFIX "/petitions"

int zgw_qr_rate_parse(const char *text, uint32_t *limit, int64_t *window_ms)
{
    char *end = NULL;
    long n = strtol(text, &end, 10);
    if (end == text || *end != '/' || n < 1 || n > 1000000) {
        return -1;
    }
    const char *s = end + 1;
    long secs = strtol(s, &end, 10);
    if (end == s || *end != '\0' || secs < 1 || secs > 86400) {
        return -1;
    }
    *limit = (uint32_t)n;
    *window_ms = (int64_t)secs * 1000;
    return 0;
}

static uint32_t hash(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return h;
}

int zgw_qr_table_take(zgw_qr_table_t *t, const char *key, int64_t now_ms, bool commit)
{
    uint32_t h = hash(key);
    zgw_qr_slot_t *free_slot = NULL;
    for (uint32_t i = 0; i < ZGW_QR_PROBES; i++) {
        zgw_qr_slot_t *s = &t->slots[(h + i) % ZGW_QR_SLOTS];
        bool expired = s->key[0] == '\0' || now_ms - s->window_start_ms >= t->window_ms;
        if (s->key[0] != '\0' && strcmp(s->key, key) == 0) {
            uint32_t used = expired ? 0 : s->count;
            if (used >= t->limit) {
                return (int)((s->window_start_ms + t->window_ms - now_ms + 999) / 1000);
            }
            if (commit) {
                s->window_start_ms = expired ? now_ms : s->window_start_ms;
                s->count = used + 1;
            }
            return 0;
        }
        if (expired && free_slot == NULL) {
            free_slot = s;
        }
    }
    if (free_slot == NULL) {
        /* Every nearby slot holds a live key: refuse rather than forget one,
         * so a flood of addresses cannot reset anyone's window. */
        return (int)(t->window_ms / 1000);
    }
    if (commit) {
        snprintf(free_slot->key, sizeof free_slot->key, "%s", key);
        free_slot->window_start_ms = now_ms;
        free_slot->count = 1;
    }
    return 0;
}

static void rate_load(zgw_qr_table_t *t, const char *name, const char *def)
{
    const char *v = zcfg_str(name, def);
    if (zgw_qr_rate_parse(v, &t->limit, &t->window_ms) != 0) {
        zcfg_fail(name, "expected COUNT/SECONDS such as %s (1-1000000 per 1-86400 s), got \"%s\"",
                  def, v);
    }
}

zgw_pet_t *zgw_pet_new(zgw_t *gw)
{
    zgw_pet_t *p = calloc(1, sizeof *p);
    ZASSERT(p != NULL);
    p->gw = gw;
    rate_load(&p->by_address, "ZHILI_QR_RATE_ADDRESS", ZGW_QR_ADDRESS_DEFAULT);
    rate_load(&p->by_code, "ZHILI_QR_RATE_CODE", ZGW_QR_CODE_DEFAULT);
    const char *j = zcfg_str("ZHILI_OPEN311_JURISDICTION", "");
    if (strlen(j) > ZGW_O311_JURISDICTION_BYTES_MAX) {
        zcfg_fail("ZHILI_OPEN311_JURISDICTION", "at most %d characters",
                  ZGW_O311_JURISDICTION_BYTES_MAX);
    }
    snprintf(p->jurisdiction, sizeof p->jurisdiction, "%s", j);
    return p;
}

void zgw_pet_destroy(zgw_pet_t **self_p)
{
    if (self_p != NULL) {
        free(*self_p);
        *self_p = NULL;
    }
}

static void too_many(zgw_pet_t *p, zhttp_req_t *req, int retry_s, const char *what)
{
    char retry[16], body[256];
    snprintf(retry, sizeof retry, "%d", retry_s > 0 ? retry_s : 1);
    snprintf(body, sizeof body,
             "{\"error\":{\"status\":\"rate_limited\",\"message\":\"too many "
             "reports from %s; try again in %s s or call 12345\"}}",
             what, retry);
    zgw_count_status(p->gw, 429);
    zhttp_req_add_header(req, "retry-after", retry);
    zhttp_respond(req, 429, "application/json; charset=utf-8", body, strlen(body));
}

void zgw_qr_on_request(void *ctx, zhttp_req_t *req)
{
    zgw_pet_t *p = ctx;
    zhttp_str_t path = zhttp_req_path(req), method = zhttp_req_method(req);
    size_t pre = strlen(QR_PREFIX), suf = strlen(QR_SUFFIX);
    bool scan = method.len == 4 && memcmp(method.data, "POST", 4) == 0 && path.len > pre + suf &&
                memcmp(path.data, QR_PREFIX, pre) == 0 &&
                memcmp(path.data + path.len - suf, QR_SUFFIX, suf) == 0;
    size_t code_len = scan ? path.len - pre - suf : 0;
    if (scan && code_len > 0 && code_len <= ZGW_QR_KEY_BYTES_MAX &&
        memchr(path.data + pre, '/', code_len) == NULL) {
        char code[ZGW_QR_KEY_BYTES_MAX + 1], addr[64];
        memcpy(code, path.data + pre, code_len);
        code[code_len] = '\0';
        zhttp_req_peer(req, addr, sizeof addr);
        int64_t now = zclock_mono_ms();
        const char *who = addr[0] ? addr : "unknown";
        /* Both limits are looked at before either counts, so a refusal by
         * one does not use up the other. */
        int wait = zgw_qr_table_take(&p->by_address, who, now, false);
        if (wait > 0) {
            too_many(p, req, wait, "this address");
            return;
        }
        wait = zgw_qr_table_take(&p->by_code, code, now, false);
        if (wait > 0) {
            too_many(p, req, wait, "this QR code");
            return;
        }
        zgw_qr_table_take(&p->by_address, who, now, true);
        zgw_qr_table_take(&p->by_code, code, now, true);
    }
    zgw_on_request(p->gw, req);
}
