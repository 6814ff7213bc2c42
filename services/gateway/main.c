/* zhili-gateway: configuration, wiring and the loop; the rules live in
 * api.c (routes), hub.c (streams), auth.c (tokens) and http/ (h2o). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/err.h"
#include "common/log.h"
#include "services/gateway/gateway.h"
#include "services/gateway/open311.h"
#include "services/gateway/routes.h"

#define SVC_FDS_MAX 4

typedef struct {
    zgw_t gw;
    uv_signal_t sigint, sigterm;
    uv_poll_t *svc_polls[SVC_FDS_MAX];
    int svc_fds[SVC_FDS_MAX];
    int svc_fd_count;
    uv_timer_t svc_timer;
    bool stopping;
    zgw_pet_t *pet; /* Open311 and the QR scan limit (open311.c, qr.c) */
} app_t;

static void load_config(zgw_config_t *cfg)
{
    cfg->http = zcfg_str("ZHILI_HTTP", "0.0.0.0:8080");
    cfg->web_dir = zcfg_str("ZHILI_WEB_DIR", ZHILI_WEB_DIR_DEFAULT);
    cfg->test_routes = zcfg_bool("ZHILI_GATEWAY_TEST_ROUTES", false);
    cfg->metrics_public = zcfg_bool("ZHILI_METRICS_PUBLIC", false);
    cfg->call_timeout_ms = zcfg_int("ZHILI_CALL_TIMEOUT_MS", ZGW_CALL_MS_DEFAULT, 100, 60000);
    cfg->session_ms = zcfg_int("ZHILI_SESSION_MS", ZGW_SESSION_MS_DEFAULT, 60000,
                               30LL * 24 * 3600 * 1000);
    cfg->hub.ring_events = (size_t)zcfg_int("ZHILI_STREAM_RING_EVENTS", ZGW_RING_EVENTS_DEFAULT,
                                            16, 10000000);
    cfg->hub.client_queue_bytes = (size_t)zcfg_int(
        "ZHILI_STREAM_QUEUE_BYTES", ZGW_CLIENT_QUEUE_BYTES_DEFAULT, 4096, 1LL << 30);
    cfg->hub.heartbeat_ms = zcfg_int("ZHILI_STREAM_HEARTBEAT_MS", ZGW_STREAM_HEARTBEAT_MS_DEFAULT,
                                     100, 600000);
    const char *req = zcfg_str("ZHILI_REQUIRED_SERVICES", "");
    for (const char *p = req; *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len > 64 || cfg->required_count == ZGW_REQUIRED_MAX) {
            zcfg_fail("ZHILI_REQUIRED_SERVICES", "expected up to %d service names, comma-separated",
                      ZGW_REQUIRED_MAX);
        }
        memcpy(cfg->required[cfg->required_count++], p, len);
        p += len + (end ? 1 : 0);
    }
}

/* The gateway's own service (tokens) runs on the same loop. */
static void svc_pump(app_t *app);

static void on_svc_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    svc_pump(h->data);
}

static void on_svc_timer(uv_timer_t *t)
{
    svc_pump(t->data);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void svc_unwatch(app_t *app)
{
    for (int i = 0; i < app->svc_fd_count; i++) {
        uv_poll_stop(app->svc_polls[i]);
        uv_close((uv_handle_t *)app->svc_polls[i], free_handle);
    }
    app->svc_fd_count = 0;
}

/* (Re)watch the service's descriptors; handles are heap memory freed in
 * their close callback, since a closing handle may not be reused at once. */
static void svc_watch(app_t *app)
{
    svc_unwatch(app);
    app->svc_fd_count = zsvc_fds(app->gw.svc, app->svc_fds, SVC_FDS_MAX);
    for (int i = 0; i < app->svc_fd_count; i++) {
        uv_poll_t *p = malloc(sizeof *p);
        ZASSERT(p != NULL);
        uv_poll_init(app->gw.loop, p, app->svc_fds[i]);
        p->data = app;
        uv_poll_start(p, UV_READABLE, on_svc_poll);
        app->svc_polls[i] = p;
    }
}

static void svc_pump(app_t *app)
{
    if (app->stopping) {
        return;
    }
    int64_t wait = zsvc_step(app->gw.svc);
    int fds[SVC_FDS_MAX];
    int n = zsvc_fds(app->gw.svc, fds, SVC_FDS_MAX);
    if (n != app->svc_fd_count || memcmp(fds, app->svc_fds, sizeof(int) * (size_t)n) != 0) {
        svc_watch(app);
    }
    uv_timer_start(&app->svc_timer, on_svc_timer, (uint64_t)(wait > 0 ? wait : 0), 0);
}

/* ---- start and stop ----------------------------------------------------- */

static void on_stop_signal(uv_signal_t *h, int signum)
{
    app_t *app = h->data;
    if (app->stopping) {
        return;
    }
    app->stopping = true;
    zlog(ZLOG_INFO, "stopping", "signal", signum == SIGINT ? "SIGINT" : "SIGTERM", NULL);
    zgw_hub_close(app->gw.hub);
    zhttp_server_close(app->gw.http);
    zgw_bus_close(app->gw.bus);
    svc_unwatch(app);
    uv_timer_stop(&app->svc_timer);
    uv_close((uv_handle_t *)&app->svc_timer, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
}

static int start_http(app_t *app)
{
    zgw_t *gw = &app->gw;
    char err[256];
    gw->http = zhttp_server_new(gw->loop, gw->cfg.http, err, sizeof err);
    if (gw->http == NULL) {
        zlog(ZLOG_ERROR, "http_failed", "listen", gw->cfg.http, "msg", err, NULL);
        return -1;
    }
    app->pet = zgw_pet_new(gw);
    zhttp_server_handle(gw->http, "/api/v1/qr", zgw_qr_on_request, app->pet);
    zhttp_server_handle(gw->http, "/open311/", zgw_open311_on_request, app->pet);
    zhttp_server_handle(gw->http, "/api/", zgw_on_request, gw);
    zhttp_server_handle(gw->http, "/healthz", zgw_on_request, gw);
    zhttp_server_handle(gw->http, "/readyz", zgw_on_request, gw);
    zhttp_server_handle(gw->http, "/metrics", zgw_on_request, gw);
    /* Build-tree assets (ECharts from npm, web/package.json) under /assets/ when
     * ZHILI_WEB_ASSETS names their directory; the page works without them. */
    const char *assets = getenv("ZHILI_WEB_ASSETS");
    if (assets != NULL && assets[0] != '\0') {
        zhttp_server_static(gw->http, "/assets/", assets);
    }
    zhttp_server_static(gw->http, "/", gw->cfg.web_dir);
    int rc = zhttp_server_start(gw->http);
    if (rc != 0) {
        zlog(ZLOG_ERROR, "http_failed", "listen", gw->cfg.http, "msg", uv_strerror(rc), NULL);
        return -1;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", zhttp_server_port(gw->http));
    zlog(ZLOG_INFO, "listening", "http", gw->cfg.http, "port", port, NULL);
    return 0;
}

static void print_routes(void)
{
    for (int i = 0; i < zgw_route_count; i++) {
        printf("%s %s%s\n", zgw_routes[i].method, zgw_routes[i].pattern,
               zgw_routes[i].test_only ? " test" : "");
    }
}

static const zsvc_spec_t gateway_spec = {
    .name = "gateway",
    .tables = zgw_auth_tables,
    .on_command = zgw_auth_on_command,
    .is_query = zgw_auth_is_query,
    .on_query = zgw_auth_on_query,
};

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--routes") == 0) {
        print_routes();
        return 0;
    }
    static app_t app;
    zgw_t *gw = &app.gw;
    zlog_init("gateway", zcfg_log_level());
    zcfg_common_t common;
    zcfg_common_load(&common);
    load_config(&gw->cfg);
    signal(SIGPIPE, SIG_IGN);
    gw->loop = uv_default_loop();
    gw->svc = zsvc_open(&gateway_spec);
    if (gw->svc == NULL || (gw->auth = zgw_auth_new(zsvc_store(gw->svc))) == NULL) {
        return 1;
    }
    gw->bus = zgw_bus_new(gw->loop, common.broker, common.events_sub, zgw_hub_on_event, NULL);
    if (gw->bus == NULL) {
        return 1;
    }
    gw->hub = zgw_hub_new(gw->loop, gw->bus, &gw->cfg.hub);
    zgw_bus_set_event_ctx(gw->bus, gw->hub);
    zgw_bus_subscribe(gw->bus, "");
    if (start_http(&app) != 0) {
        return 1;
    }
    uv_timer_init(gw->loop, &app.svc_timer);
    app.svc_timer.data = &app;
    svc_watch(&app);
    svc_pump(&app);
    uv_signal_init(gw->loop, &app.sigint);
    uv_signal_init(gw->loop, &app.sigterm);
    app.sigint.data = app.sigterm.data = &app;
    uv_signal_start(&app.sigint, on_stop_signal, SIGINT);
    uv_signal_start(&app.sigterm, on_stop_signal, SIGTERM);
    uv_run(gw->loop, UV_RUN_DEFAULT);
    zgw_hub_destroy(&gw->hub);
    zgw_bus_destroy(&gw->bus);
    zhttp_server_destroy(&gw->http);
    zgw_pet_destroy(&app.pet);
    zgw_auth_destroy(&gw->auth);
    zsvc_close(&gw->svc);
    uv_loop_close(gw->loop);
    zlog(ZLOG_INFO, "stopped", NULL);
    return 0;
}
