/* Helpers shared by the gateway's HTTP handlers (apiutil.h), moved from api.c. */
#include "services/gateway/apiutil.h"

#include <ctype.h>
#include <string.h>

#include "common/bus.h"
#include "common/err.h"

void zgw_count_status(zgw_t *gw, int status)
{
    gw->metrics.requests_total++;
    gw->metrics.by_class[status / 100 < 6 ? status / 100 : 0]++;
}

int zgw_http_status(int status)
{
    switch (status) {
    case ZHILI__V1__STATUS__STATUS_OK:
        return 200;
    case ZHILI__V1__STATUS__STATUS_INVALID:
        return 400;
    case ZHILI__V1__STATUS__STATUS_NOT_FOUND:
        return 404;
    case ZHILI__V1__STATUS__STATUS_CONFLICT:
        return 409;
    case ZHILI__V1__STATUS__STATUS_FORBIDDEN:
        return 403;
    case ZHILI__V1__STATUS__STATUS_UNAVAILABLE:
        return 503;
    default:
        return 500;
    }
}

static int hexval(char ch)
{
    return isdigit((unsigned char)ch) ? ch - '0'
           : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
           : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10
                                      : -1;
}

/* Percent-decode src[0..len) into out; false when malformed, too long or NUL. */
bool zgw_url_decode(const char *src, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = src[i];
        if (ch == '%') {
            int hi = i + 2 < len ? hexval(src[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(src[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return false;
            }
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (ch == '\0' || n + 1 >= cap) {
            return false;
        }
        out[n++] = ch;
    }
    out[n] = '\0';
    return true;
}

/* The value of query parameter `name`: 1 found, 0 absent, -1 malformed. */
int zgw_query_get(zhttp_str_t q, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = q.data, *end = q.data + q.len;
    while (p != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            return zgw_url_decode(p + nlen + 1, (size_t)(stop - p - (ptrdiff_t)nlen - 1), out, cap)
                       ? 1
                       : -1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

int zgw_request_id(zhttp_req_t *req, const char *actor_id,
                   char out[ZSTORE_REQUEST_ID_BYTES_MAX + 1])
{
    zhttp_str_t key = zhttp_req_header(req, "idempotency-key");
    if (key.data == NULL) {
        zbus_request_id_new(out);
        return 0;
    }
    bool ok = key.len > 0 && key.len <= ZGW_IDEMPOTENCY_KEY_BYTES_MAX;
    for (size_t i = 0; ok && i < key.len; i++) {
        ok = key.data[i] > ' ' && key.data[i] < 127;
    }
    if (!ok) {
        return ZE_INVALID;
    }
    return zbus_request_id_scoped(actor_id, key.data, key.len, out,
                                  ZSTORE_REQUEST_ID_BYTES_MAX + 1);
}
