/* routes: the one table mapping HTTP resources to service commands
 * (routes.c). Later services add their rows there; docs/openapi.yaml
 * describes every row (a test checks it). */
#ifndef ZHILI_GATEWAY_ROUTES_H
#define ZHILI_GATEWAY_ROUTES_H

#include <stdbool.h>

#define ZGW_PATH_PARAMS_MAX 4

typedef enum {
    ZGW_ROUTE_COMMAND = 0,  /* forwarded to `service` as Command.<command> */
    ZGW_ROUTE_BUILTIN,      /* answered by the gateway itself (builtin names the handler) */
} zgw_route_kind_t;

typedef struct {
    const char *method;      /* GET POST PUT PATCH DELETE */
    const char *pattern;     /* "/api/v1/petitions/{id}": {x} matches one segment */
    zgw_route_kind_t kind;
    const char *service;     /* command routes: target service */
    const char *command;     /* command routes: the Command oneof member, e.g. "counter_add" */
    const char *permission;  /* permissions.c key; NULL: no token needed */
    int ok_status;           /* 200, or 201 for creations */
    const char *builtin;     /* builtin routes: "healthz", "stream", ...; command routes:
                              * NULL, or a renderer of the result (report_csv.h) */
    bool test_only;          /* only with ZHILI_GATEWAY_TEST_ROUTES=1 */
    const char *summary;     /* one line for docs and the route listing */
} zgw_route_t;

extern const zgw_route_t zgw_routes[];
extern const int zgw_route_count;

/* Match a request: the route index, or -1 (404), or -2 when the path matches
 * but not the method (405). Path parameters are returned as borrowed slices
 * of `path` in order. */
typedef struct {
    const char *name;        /* the {name} of the pattern (a slice of it) */
    int name_len;
    const char *value;
    int value_len;
} zgw_param_t;

int zgw_route_match(const char *method, int method_len, const char *path, int path_len,
                    bool test_routes, zgw_param_t params[ZGW_PATH_PARAMS_MAX], int *param_count);

#endif
