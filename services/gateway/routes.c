/* The route table. One row per resource and method; later services add
 * their rows here and to docs/openapi.yaml (tests/e2e/test_gateway.py checks
 * that every row is documented). Permissions are keys of permissions.c. */
#include "services/gateway/routes.h"

#include <string.h>

#define CMD(m, p, svc, c, perm, ok, sum) {m, p, ZGW_ROUTE_COMMAND, svc, c, perm, ok, NULL, false, sum}
#define TEST(m, p, svc, c, perm, ok, sum) {m, p, ZGW_ROUTE_COMMAND, svc, c, perm, ok, NULL, true, sum}
#define BUILTIN(m, p, name, perm, sum) {m, p, ZGW_ROUTE_BUILTIN, NULL, NULL, perm, 200, name, false, sum}

const zgw_route_t zgw_routes[] = {
    BUILTIN("GET", "/healthz", "healthz", NULL, "the process is up"),
    BUILTIN("GET", "/readyz", "readyz", NULL, "the broker answers and the required services are registered"),
    BUILTIN("GET", "/metrics", "metrics", "metrics.read", "Prometheus text: gateway, broker and service figures"),
    BUILTIN("GET", "/api/v1/whoami", "whoami", "session.create", "the caller's role, area and name"),
    BUILTIN("POST", "/api/v1/session", "session_create", "session.create", "trade a bearer token for a session cookie"),
    BUILTIN("DELETE", "/api/v1/session", "session_delete", NULL, "end the session (clears the cookie)"),
    BUILTIN("POST", "/api/v1/stream-ticket", "ticket", "stream.read", "a short-lived ticket for ?ticket= on the stream URLs"),
    BUILTIN("GET", "/api/v1/stream", "stream", "stream.read", "live events as Server-Sent Events, resumable with Last-Event-ID"),
    BUILTIN("GET", "/api/v1/ws", "ws", "stream.read", "live events over WebSocket, resumable with ?since="),
    BUILTIN("GET", "/api/v1/routes", "routes", "session.create", "this table, for clients and docs"),

    /* ---- grid (services/grid) ---- */

    /* ---- petitions (services/petitions) ---- */

    /* Test-only resources on the test counter service (tests/testsvc). */
    TEST("POST", "/api/v1/test/counters", "testsvc", "counter_add", "test.counter.write", 201, "add to a test counter"),
    TEST("GET", "/api/v1/test/counters/{name}", "testsvc", "counter_get", "test.counter.read", 200, "read a test counter"),
};

const int zgw_route_count = (int)(sizeof zgw_routes / sizeof zgw_routes[0]);

/* Does `path` fit `pattern`? Fills params for {x} segments. */
static bool fits(const char *pattern, const char *path, int path_len, zgw_param_t *params,
                 int *count)
{
    const char *p = pattern;
    int at = 0;
    *count = 0;
    while (*p != '\0') {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            int start = at;
            while (at < path_len && path[at] != '/') {
                at++;
            }
            if (at == start || *count == ZGW_PATH_PARAMS_MAX) {
                return false;
            }
            params[*count] = (zgw_param_t){p + 1, (int)(close - p - 1), path + start, at - start};
            (*count)++;
            p = close + 1;
        } else {
            if (at >= path_len || path[at] != *p) {
                return false;
            }
            at++;
            p++;
        }
    }
    return at == path_len;
}

int zgw_route_match(const char *method, int method_len, const char *path, int path_len,
                    bool test_routes, zgw_param_t params[ZGW_PATH_PARAMS_MAX], int *param_count)
{
    int found = -1;
    for (int i = 0; i < zgw_route_count; i++) {
        const zgw_route_t *r = &zgw_routes[i];
        if ((r->test_only && !test_routes) || !fits(r->pattern, path, path_len, params, param_count)) {
            continue;
        }
        if ((int)strlen(r->method) == method_len && memcmp(r->method, method, (size_t)method_len) == 0) {
            return i;
        }
        found = -2;
    }
    return found;
}
