/* gateway: the state shared by the gateway's modules (main.c wires it). */
#ifndef ZHILI_GATEWAY_H
#define ZHILI_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/service.h"
#include "services/gateway/auth.h"
#include "services/gateway/busuv.h"
#include "services/gateway/http/http.h"
#include "services/gateway/hub.h"

#define ZGW_LATENCY_BUCKETS 12
#define ZGW_REQUIRED_MAX 16

typedef struct {
    const char *http;            /* ZHILI_HTTP 0.0.0.0:8080 */
    const char *web_dir;         /* ZHILI_WEB_DIR */
    bool test_routes;            /* ZHILI_GATEWAY_TEST_ROUTES */
    bool metrics_public;         /* ZHILI_METRICS_PUBLIC */
    int64_t call_timeout_ms;     /* ZHILI_CALL_TIMEOUT_MS */
    int64_t session_ms;          /* ZHILI_SESSION_MS */
    char required[ZGW_REQUIRED_MAX][65]; /* ZHILI_REQUIRED_SERVICES */
    int required_count;
    zgw_hub_config_t hub;
} zgw_config_t;

typedef struct {
    uint64_t requests_total, by_class[6];   /* 1xx..5xx by first digit */
    uint64_t latency_buckets[ZGW_LATENCY_BUCKETS]; /* service call latency, cumulative on output */
    uint64_t latency_count;
    double latency_sum_ms;
} zgw_metrics_t;

typedef struct {
    zgw_config_t cfg;
    uv_loop_t *loop;
    zhttp_server_t *http;
    zgw_bus_t *bus;
    zgw_hub_t *hub;
    zgw_auth_t *auth;
    zsvc_t *svc;                 /* the gateway's own service: tokens */
    zgw_metrics_t metrics;
} zgw_t;

/* The handler of every API route (api.c); ctx is the zgw_t. */
void zgw_on_request(void *ctx, zhttp_req_t *req);

/* Latency bucket bounds in ms, for api.c and metrics.c. */
extern const double zgw_latency_bounds_ms[ZGW_LATENCY_BUCKETS];

/* /metrics (metrics.c): gathers the broker's and every service's figures. */
void zgw_metrics_serve(zgw_t *gw, zhttp_req_t *req);

/* /readyz (metrics.c). */
void zgw_readyz_serve(zgw_t *gw, zhttp_req_t *req);

#endif
