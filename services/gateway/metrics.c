/* /metrics and /readyz: the gateway's own figures plus the broker's and every
 * registered service's, fetched through the broker at scrape time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"
#include "common/log.h"
#include "services/gateway/gateway.h"

#define SCRAPE_MS 1000
#define SCRAPE_SERVICES_MAX 64

typedef struct {
    zgw_t *gw;
    zhttp_req_t *req;
    bool gone;
    int waiting;
    char *text;
    size_t text_len;
    FILE *out;
    uint64_t calls[SCRAPE_SERVICES_MAX];
    int call_count;
} scrape_t;

static void put_stat(FILE *out, const char *prefix, const char *service,
                     const Zhili__V1__Stat *st)
{
    bool labels = st->labels[0] != '\0';
    if (service != NULL) {
        fprintf(out, "%s%s{service=\"%s\"%s%s} %lld\n", prefix, st->name, service,
                labels ? "," : "", st->labels, (long long)st->value);
    } else {
        fprintf(out, "%s%s%s%s%s %lld\n", prefix, st->name, labels ? "{" : "", st->labels,
                labels ? "}" : "", (long long)st->value);
    }
}

static void put_gateway(zgw_t *gw, FILE *out)
{
    zgw_metrics_t *m = &gw->metrics;
    fprintf(out, "# TYPE zhili_gateway_http_responses_total counter\n");
    for (int c = 1; c < 6; c++) {
        fprintf(out, "zhili_gateway_http_responses_total{class=\"%dxx\"} %llu\n", c,
                (unsigned long long)m->by_class[c]);
    }
    fprintf(out, "# TYPE zhili_gateway_command_latency_ms histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < ZGW_LATENCY_BUCKETS; i++) {
        cum += m->latency_buckets[i];
        fprintf(out, "zhili_gateway_command_latency_ms_bucket{le=\"%g\"} %llu\n",
                zgw_latency_bounds_ms[i], (unsigned long long)cum);
    }
    fprintf(out, "zhili_gateway_command_latency_ms_bucket{le=\"+Inf\"} %llu\n",
            (unsigned long long)m->latency_count);
    fprintf(out, "zhili_gateway_command_latency_ms_sum %g\n", m->latency_sum_ms);
    fprintf(out, "zhili_gateway_command_latency_ms_count %llu\n",
            (unsigned long long)m->latency_count);
    zgw_hub_stats_t h;
    zgw_hub_stats(gw->hub, &h);
    fprintf(out, "zhili_gateway_stream_clients %llu\nzhili_gateway_stream_clients_total %llu\n"
                 "zhili_gateway_stream_deliveries_total %llu\nzhili_gateway_stream_bytes_total %llu\n"
                 "zhili_gateway_stream_dropped_slow_total %llu\nzhili_gateway_stream_fetches_total %llu\n"
                 "zhili_gateway_stream_hub_replays_total %llu\nzhili_gateway_stream_sources %llu\n",
            (unsigned long long)h.clients, (unsigned long long)h.clients_total,
            (unsigned long long)h.deliveries_total, (unsigned long long)h.bytes_total,
            (unsigned long long)h.dropped_slow_total, (unsigned long long)h.fetches_total,
            (unsigned long long)h.hub_replays_total, (unsigned long long)h.sources);
    zgw_bus_stats_t b;
    zgw_bus_stats(gw->bus, &b);
    fprintf(out, "zhili_gateway_calls_total %llu\nzhili_gateway_calls_inflight %llu\n"
                 "zhili_gateway_call_timeouts_total %llu\nzhili_gateway_call_resends_total %llu\n"
                 "zhili_gateway_events_received_total %llu\n",
            (unsigned long long)b.calls_total, (unsigned long long)b.calls_inflight,
            (unsigned long long)b.timeouts_total, (unsigned long long)b.resends_total,
            (unsigned long long)b.events_total);
}

static void scrape_finish(scrape_t *s)
{
    fclose(s->out);
    if (!s->gone) {
        zhttp_respond(s->req, 200, "text/plain; version=0.0.4; charset=utf-8", s->text,
                      s->text_len);
    }
    free(s->text);
    free(s);
}

static void on_scrape_gone(void *ctx)
{
    scrape_t *s = ctx;
    s->gone = true;
}

static void on_service_stats(void *ctx, const Zhili__V1__Reply *r)
{
    scrape_t *s = ctx;
    if (r->status == ZHILI__V1__STATUS__STATUS_OK && r->result_case == ZHILI__V1__REPLY__RESULT_STATS) {
        for (size_t i = 0; i < r->stats->n_stats; i++) {
            put_stat(s->out, "zhili_service_", r->stats->name, r->stats->stats[i]);
        }
    }
    if (--s->waiting == 0) {
        scrape_finish(s);
    }
}

static void ask_service(scrape_t *s, const char *service)
{
    if (s->call_count == SCRAPE_SERVICES_MAX) {
        return;
    }
    Zhili__V1__StatsRequest sr = ZHILI__V1__STATS_REQUEST__INIT;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    char rid[48];
    snprintf(rid, sizeof rid, "gw-metrics-%p-%d", (void *)s, s->call_count);
    cmd.request_id = rid;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_STATS;
    cmd.stats = &sr;
    uint64_t call = zgw_bus_call(s->gw->bus, service, &cmd, SCRAPE_MS, on_service_stats, s);
    if (call != 0) {
        s->calls[s->call_count++] = call;
        s->waiting++;
    }
}

static void on_broker_stats(void *ctx, const Zhili__V1__Stats *st)
{
    scrape_t *s = ctx;
    s->waiting = 1; /* held until every service is asked */
    if (st == NULL) {
        fprintf(s->out, "zhili_broker_up 0\n");
    } else {
        fprintf(s->out, "zhili_broker_up 1\n");
        for (size_t i = 0; i < st->n_stats; i++) {
            const Zhili__V1__Stat *x = st->stats[i];
            put_stat(s->out, "zhili_", NULL, x);
            const char *q = strstr(x->labels, "service=\"");
            if (strcmp(x->name, "broker_workers") == 0 && x->value > 0 && q != NULL) {
                char svc[80];
                if (sscanf(q, "service=\"%79[^\"]\"", svc) == 1) {
                    ask_service(s, svc);
                }
            }
        }
    }
    if (--s->waiting == 0) {
        scrape_finish(s);
    }
}

void zgw_metrics_serve(zgw_t *gw, zhttp_req_t *req)
{
    scrape_t *s = calloc(1, sizeof *s);
    ZASSERT(s != NULL);
    s->gw = gw;
    s->req = req;
    s->out = open_memstream(&s->text, &s->text_len);
    ZASSERT(s->out != NULL);
    put_gateway(gw, s->out);
    zhttp_req_on_gone(req, on_scrape_gone, s);
    if (zgw_bus_broker_stats(gw->bus, SCRAPE_MS, on_broker_stats, s) != 0) {
        on_broker_stats(s, NULL);
    }
}

/* ---- /readyz ------------------------------------------------------------ */

typedef struct {
    zgw_t *gw;
    zhttp_req_t *req;
    bool gone;
} ready_t;

static void on_ready_gone(void *ctx)
{
    ((ready_t *)ctx)->gone = true;
}

static bool registered(const Zhili__V1__Stats *st, const char *service)
{
    char want[96];
    snprintf(want, sizeof want, "service=\"%s\"", service);
    for (size_t i = 0; i < st->n_stats; i++) {
        if (strcmp(st->stats[i]->name, "broker_workers") == 0 && st->stats[i]->value > 0 &&
            strcmp(st->stats[i]->labels, want) == 0) {
            return true;
        }
    }
    return false;
}

static void on_ready_stats(void *ctx, const Zhili__V1__Stats *st)
{
    ready_t *r = ctx;
    if (!r->gone) {
        json_t *missing = json_array();
        for (int i = 0; st != NULL && i < r->gw->cfg.required_count; i++) {
            if (!registered(st, r->gw->cfg.required[i])) {
                json_array_append_new(missing, json_string(r->gw->cfg.required[i]));
            }
        }
        bool ok = st != NULL && json_array_size(missing) == 0;
        json_t *body = json_pack("{s:b, s:b, s:o}", "ready", ok, "broker", st != NULL, "missing",
                                 missing);
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        zhttp_respond(r->req, ok ? 200 : 503, "application/json; charset=utf-8", text,
                      strlen(text));
        free(text);
    }
    free(r);
}

void zgw_readyz_serve(zgw_t *gw, zhttp_req_t *req)
{
    ready_t *r = calloc(1, sizeof *r);
    ZASSERT(r != NULL);
    *r = (ready_t){gw, req, false};
    zhttp_req_on_gone(req, on_ready_gone, r);
    if (zgw_bus_broker_stats(gw->bus, SCRAPE_MS, on_ready_stats, r) != 0) {
        on_ready_stats(r, NULL);
    }
}
