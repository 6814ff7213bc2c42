/* The gateway's route lookup (services/gateway/routes.c) against the plain
 * definition: the first row of the table, in order, whose pattern fits the
 * path and whose method is the request's; 405 (-2) when some row fits the
 * path with another method; 404 (-1) when none fits. Paths are made from
 * every pattern, with variations that must fit other rows or none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "services/gateway/routes.h"

#define PATH_BYTES_MAX 256

/* Does path fit pattern, where {x} is one non-empty segment? */
static bool fits_plain(const char *pattern, const char *path)
{
    while (*pattern != '\0') {
        if (*pattern == '{') {
            pattern = strchr(pattern, '}') + 1;
            if (*path == '\0' || *path == '/') {
                return false;
            }
            path += strcspn(path, "/");
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *path == '\0';
}

static int match_plain(const char *method, const char *path, bool test_routes)
{
    int found = -1;
    for (int i = 0; i < zgw_route_count; i++) {
        const zgw_route_t *r = &zgw_routes[i];
        if ((r->test_only && !test_routes) || !fits_plain(r->pattern, path)) {
            continue;
        }
        if (strcmp(r->method, method) == 0) {
            return i;
        }
        found = -2;
    }
    return found;
}

/* The pattern with each {x} replaced by `value`. */
static void fill(const char *pattern, const char *value, char out[PATH_BYTES_MAX])
{
    size_t n = 0;
    for (const char *p = pattern; *p != '\0' && n + strlen(value) + 1 < PATH_BYTES_MAX;) {
        if (*p == '{') {
            n += (size_t)snprintf(out + n, PATH_BYTES_MAX - n, "%s", value);
            p = strchr(p, '}') + 1;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}

static void check(const char *method, const char *path, bool test_routes)
{
    zgw_param_t params[ZGW_PATH_PARAMS_MAX];
    int count = 0;
    int want = match_plain(method, path, test_routes);
    int got = zgw_route_match(method, (int)strlen(method), path, (int)strlen(path), test_routes,
                              params, &count);
    if (got != want) {
        fail_msg("%s %s (test routes %d): got %d, want %d", method, path, test_routes, got, want);
    }
}

static void test_every_row_and_variations(void **state)
{
    (void)state;
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
    static const char *const values[] = {"220503", "x", "units", "2026"};
    static const char *const suffixes[] = {"", "/", "/x", "/extra/more", ".csv"};
    char base[PATH_BYTES_MAX], path[PATH_BYTES_MAX + 16];
    int checked = 0;
    for (int i = 0; i < zgw_route_count; i++) {
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
            fill(zgw_routes[i].pattern, values[v], base);
            for (size_t s = 0; s < sizeof suffixes / sizeof suffixes[0]; s++) {
                snprintf(path, sizeof path, "%s%s", base, suffixes[s]);
                for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
                    check(methods[m], path, true);
                    check(methods[m], path, false);
                    checked += 2;
                }
            }
            /* Cut short: every prefix ending before a '/'. */
            for (size_t cut = 1; cut < strlen(base); cut++) {
                if (base[cut] == '/') {
                    snprintf(path, sizeof path, "%.*s", (int)cut, base);
                    check("GET", path, true);
                    checked++;
                }
            }
        }
    }
    assert_true(checked > 1000);
}

static void test_outside_every_group(void **state)
{
    (void)state;
    static const char *const paths[] = {"",        "/",         "/api",     "/api/v1",
                                        "/api/v1/", "/api/v2/x", "/nothing", "/api/v1/nothing",
                                        "/healthz/", "//",       "/api//v1"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        check("GET", paths[i], true);
        check("POST", paths[i], false);
    }
    zgw_param_t params[ZGW_PATH_PARAMS_MAX];
    int count = 0;
    assert_int_equal(zgw_route_match("GET", 3, "/api/v1/nothing", 15, true, params, &count), -1);
    int i = zgw_route_match("DELETE", 6, "/healthz", 8, true, params, &count);
    assert_int_equal(i, -2);
}

static void test_params(void **state)
{
    (void)state;
    zgw_param_t params[ZGW_PATH_PARAMS_MAX];
    int count = 0;
    const char *path = "/api/v1/test/counters/abc";
    int i = zgw_route_match("GET", 3, path, (int)strlen(path), true, params, &count);
    assert_true(i >= 0);
    assert_string_equal(zgw_routes[i].command, "counter_get");
    assert_int_equal(count, 1);
    assert_int_equal(params[0].value_len, 3);
    assert_memory_equal(params[0].value, "abc", 3);
    assert_int_equal(params[0].name_len, 4);
    assert_memory_equal(params[0].name, "name", 4);
    /* Test-only rows are invisible without the switch. */
    assert_int_equal(zgw_route_match("GET", 3, path, (int)strlen(path), false, params, &count), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row_and_variations),
        cmocka_unit_test(test_outside_every_group),
        cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
