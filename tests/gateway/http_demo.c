/* http_demo: a test-only server that drives every part of the HTTP layer
 * through http.h alone, for tests/e2e/test_http_layer.py. Not installed.
 *
 *   zhili-http-demo LISTEN STATIC_DIR      e.g. 127.0.0.1:0 /tmp/www
 *
 * Prints "port=N" once listening. SIGTERM or SIGINT closes the server and
 * exits 0 after a clean teardown (so valgrind can check for leaks).
 *
 *   /echo      200 application/json: the request body; the method, path,
 *              query and two request headers as X-* headers; a Set-Cookie
 *   /later?ms=M  answers after M ms (200); a client leaving first cancels it
 *   /counters  JSON counters: cancellations, stream closes, layer stats
 *   /sse?n=N   events "data: I" 0..N-1: 100 at once, then one per 10 ms
 *   /idle      an SSE stream that sends "data: idle" once and then nothing
 *   /ws        WebSocket: greets "hello", echoes, "close" closes 4000 "bye"
 *   /slow      64 KiB events every ms until 1 MiB is pending, then closes
 *   /          static files from STATIC_DIR */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define SSE_EVENTS_DEFAULT 10
#define SSE_EVENTS_MAX 100000
#define SSE_BURST 100
#define SSE_INTERVAL_MS 10
#define LATER_DELAY_MS 200
#define LATER_DELAY_MS_MAX 60000
#define SLOW_CHUNK_BYTES (64u << 10)
#define SLOW_PENDING_MAX (1u << 20)
#define SLOW_TOTAL_MAX (256u << 20)

typedef struct {
    uv_loop_t *loop;
    zhttp_server_t *server;
    uv_signal_t sigterm, sigint;
    unsigned later_pending; /* open /later timers */
    unsigned long later_cancelled, later_answered, sse_closed, ws_closed, slow_detected,
        slow_closed;
    char *slow_chunk;
} demo_t;

/* A timer that belongs to one request or stream; freed in its close
 * callback, as libuv wants. */
typedef struct {
    uv_timer_t timer;
    demo_t *demo;
    zhttp_req_t *req;       /* /later */
    zhttp_stream_t *stream; /* /sse, /slow */
    long next, count;
    size_t total;
} job_t;

static void on_job_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static job_t *job_new(demo_t *demo)
{
    job_t *job = calloc(1, sizeof *job);
    if (job == NULL) {
        return NULL;
    }
    job->demo = demo;
    uv_timer_init(demo->loop, &job->timer);
    job->timer.data = job;
    return job;
}

static void job_end(job_t *job)
{
    uv_close((uv_handle_t *)&job->timer, on_job_closed);
}

/* ---- /echo, /counters ------------------------------------------------------ */

/* Copies a request view into a response header (bounded, "-" when absent). */
static void echo_header(zhttp_req_t *req, const char *name, zhttp_str_t value)
{
    char buf[256];
    if (value.data == NULL) {
        snprintf(buf, sizeof buf, "-");
    } else {
        snprintf(buf, sizeof buf, "%.*s", (int)(value.len < 200 ? value.len : 200), value.data);
    }
    zhttp_req_add_header(req, name, buf);
}

static void on_echo(void *ctx, zhttp_req_t *req)
{
    (void)ctx;
    echo_header(req, "X-Method", zhttp_req_method(req));
    echo_header(req, "X-Path", zhttp_req_path(req));
    echo_header(req, "X-Query", zhttp_req_query(req));
    echo_header(req, "X-Seen-Test", zhttp_req_header(req, "x-TEST"));
    echo_header(req, "X-Seen-Host", zhttp_req_header(req, "Host"));
    zhttp_req_add_header(req, "Set-Cookie", "demo=1; Path=/; HttpOnly");
    zhttp_str_t body = zhttp_req_body(req);
    zhttp_respond(req, 200, "application/json", body.data, body.len);
}

static void on_counters(void *ctx, zhttp_req_t *req)
{
    demo_t *demo = ctx;
    zhttp_stats_t stats;
    zhttp_server_stats(demo->server, &stats);
    char body[1024];
    int len =
        snprintf(body, sizeof body,
                 "{\"later_cancelled\":%lu,\"later_answered\":%lu,\"sse_closed\":%lu,"
                 "\"ws_closed\":%lu,\"slow_detected\":%lu,\"slow_closed\":%lu,"
                 "\"requests_total\":%llu,\"responses_4xx\":%llu,\"responses_5xx\":%llu,"
                 "\"streams_open\":%llu,\"streams_total\":%llu,"
                 "\"bytes_streamed_total\":%llu}",
                 demo->later_cancelled, demo->later_answered, demo->sse_closed, demo->ws_closed,
                 demo->slow_detected, demo->slow_closed, (unsigned long long)stats.requests_total,
                 (unsigned long long)stats.responses_4xx, (unsigned long long)stats.responses_5xx,
                 (unsigned long long)stats.streams_open, (unsigned long long)stats.streams_total,
                 (unsigned long long)stats.bytes_streamed_total);
    zhttp_respond(req, 200, "application/json", body, (size_t)len);
}

/* ---- /later ------------------------------------------------------------------ */

static long query_long(zhttp_req_t *req, const char *key, long fallback, long max);

static void on_later_timer(uv_timer_t *timer)
{
    job_t *job = timer->data;
    static const char body[] = "{\"later\":true}";
    job->demo->later_answered++;
    zhttp_respond(job->req, 200, "application/json", body, sizeof body - 1);
    job_end(job);
}

/* The client left first: cancel the work, and never touch the req again. */
static void on_later_gone(void *ctx)
{
    job_t *job = ctx;
    job->demo->later_cancelled++;
    uv_timer_stop(&job->timer);
    job_end(job);
}

static void on_later(void *ctx, zhttp_req_t *req)
{
    job_t *job = job_new(ctx);
    if (job == NULL) {
        zhttp_respond(req, 503, NULL, NULL, 0);
        return;
    }
    job->req = req;
    zhttp_req_on_gone(req, on_later_gone, job);
    long delay_ms = query_long(req, "ms", LATER_DELAY_MS, LATER_DELAY_MS_MAX);
    uv_timer_start(&job->timer, on_later_timer, (uint64_t)delay_ms, 0);
}

/* ---- /sse -------------------------------------------------------------------- */

static void sse_emit(job_t *job)
{
    char line[64];
    int len = snprintf(line, sizeof line, "data: %ld\n\n", job->next++);
    zhttp_stream_write(job->stream, line, (size_t)len);
}

static void on_sse_timer(uv_timer_t *timer)
{
    job_t *job = timer->data;
    if (job->next < job->count) {
        sse_emit(job);
    }
    if (job->next >= job->count) {
        uv_timer_stop(timer);
        zhttp_stream_close(job->stream, 0, NULL);
    }
}

static void on_sse_close(void *ctx, zhttp_stream_t *stream)
{
    (void)stream;
    job_t *job = ctx;
    job->demo->sse_closed++;
    uv_timer_stop(&job->timer);
    job_end(job);
}

static long query_long(zhttp_req_t *req, const char *key, long fallback, long max)
{
    zhttp_str_t query = zhttp_req_query(req);
    char buf[128];
    snprintf(buf, sizeof buf, "%.*s", (int)query.len, query.data);
    size_t key_len = strlen(key);
    if (strncmp(buf, key, key_len) != 0 || buf[key_len] != '=') {
        return fallback;
    }
    char *end = NULL;
    long value = strtol(buf + key_len + 1, &end, 10);
    return (end == buf + key_len + 1 || value < 0 || value > max) ? fallback : value;
}

static void on_sse(void *ctx, zhttp_req_t *req)
{
    job_t *job = job_new(ctx);
    if (job == NULL) {
        zhttp_respond(req, 503, NULL, NULL, 0);
        return;
    }
    job->count = query_long(req, "n", SSE_EVENTS_DEFAULT, SSE_EVENTS_MAX);
    zhttp_req_add_header(req, "Cache-Control", "no-cache");
    zhttp_stream_cbs_t cbs = {.ctx = job, .on_close = on_sse_close};
    job->stream = zhttp_stream_start(req, "text/event-stream", &cbs);
    if (job->stream == NULL) {
        job_end(job);
        return;
    }
    /* Many writes in one turn: the layer must send them in one write. */
    while (job->next < job->count && job->next < SSE_BURST) {
        sse_emit(job);
    }
    uv_timer_start(&job->timer, on_sse_timer, SSE_INTERVAL_MS, SSE_INTERVAL_MS);
}

/* ---- /idle: nothing is written after the first event, so only the layer's
 * hang-up sweep can notice that the client left ------------------------------ */

static void on_idle(void *ctx, zhttp_req_t *req)
{
    job_t *job = job_new(ctx);
    if (job == NULL) {
        zhttp_respond(req, 503, NULL, NULL, 0);
        return;
    }
    zhttp_stream_cbs_t cbs = {.ctx = job, .on_close = on_sse_close};
    job->stream = zhttp_stream_start(req, "text/event-stream", &cbs);
    if (job->stream == NULL) {
        job_end(job);
        return;
    }
    static const char first[] = "data: idle\n\n";
    zhttp_stream_write(job->stream, first, sizeof first - 1);
}

/* ---- /slow: a client that does not read shows as pending bytes --------- */

static void on_slow_timer(uv_timer_t *timer)
{
    job_t *job = timer->data;
    demo_t *demo = job->demo;
    if (zhttp_stream_pending(job->stream) > SLOW_PENDING_MAX || job->total > SLOW_TOTAL_MAX) {
        static const char last[] = "event: closed\ndata: slow client\n\n";
        demo->slow_detected++;
        zhttp_stream_write(job->stream, last, sizeof last - 1);
        zhttp_stream_close(job->stream, 0, NULL);
        uv_timer_stop(timer);
        return;
    }
    zhttp_stream_write(job->stream, demo->slow_chunk, SLOW_CHUNK_BYTES);
    job->total += SLOW_CHUNK_BYTES;
}

static void on_slow_close(void *ctx, zhttp_stream_t *stream)
{
    (void)stream;
    job_t *job = ctx;
    job->demo->slow_closed++;
    uv_timer_stop(&job->timer);
    job_end(job);
}

static void on_slow(void *ctx, zhttp_req_t *req)
{
    job_t *job = job_new(ctx);
    if (job == NULL) {
        zhttp_respond(req, 503, NULL, NULL, 0);
        return;
    }
    zhttp_stream_cbs_t cbs = {.ctx = job, .on_close = on_slow_close};
    job->stream = zhttp_stream_start(req, "text/event-stream", &cbs);
    if (job->stream == NULL) {
        job_end(job);
        return;
    }
    uv_timer_start(&job->timer, on_slow_timer, 1, 1);
}

/* ---- /ws ------------------------------------------------------------------------ */

static void on_ws_message(void *ctx, zhttp_stream_t *stream, bool text, const void *data,
                          size_t len)
{
    (void)ctx;
    (void)text;
    if (len == 5 && memcmp(data, "close", 5) == 0) {
        zhttp_stream_close(stream, 4000, "bye");
        return;
    }
    zhttp_stream_write(stream, data, len);
}

static void on_ws_close(void *ctx, zhttp_stream_t *stream)
{
    (void)stream;
    demo_t *demo = ctx;
    demo->ws_closed++;
}

static void on_ws(void *ctx, zhttp_req_t *req)
{
    if (!zhttp_req_is_websocket(req)) {
        static const char body[] = "{\"error\":{\"status\":\"invalid\",\"message\":\"WebSocket "
                                   "only\"}}";
        zhttp_respond(req, 400, "application/json", body, sizeof body - 1);
        return;
    }
    zhttp_stream_cbs_t cbs = {.ctx = ctx, .on_close = on_ws_close, .on_message = on_ws_message};
    zhttp_stream_t *stream = zhttp_ws_upgrade(req, &cbs);
    if (stream != NULL) {
        /* Written before the 101 has gone out: the layer must queue it. */
        zhttp_stream_write(stream, "hello", 5);
    }
}

/* ---- main ------------------------------------------------------------------------ */

static void on_signal(uv_signal_t *signal_handle, int signum)
{
    (void)signum;
    demo_t *demo = signal_handle->data;
    zhttp_server_close(demo->server);
    uv_close((uv_handle_t *)&demo->sigterm, NULL);
    uv_close((uv_handle_t *)&demo->sigint, NULL);
}

static int demo_routes(demo_t *demo, const char *static_dir)
{
    zhttp_server_t *s = demo->server;
    int rc = zhttp_server_handle(s, "/echo", on_echo, demo);
    rc = rc != 0 ? rc : zhttp_server_handle(s, "/later", on_later, demo);
    rc = rc != 0 ? rc : zhttp_server_handle(s, "/counters", on_counters, demo);
    rc = rc != 0 ? rc : zhttp_server_handle(s, "/sse", on_sse, demo);
    rc = rc != 0 ? rc : zhttp_server_handle(s, "/ws", on_ws, demo);
    rc = rc != 0 ? rc : zhttp_server_handle(s, "/slow", on_slow, demo);
    rc = rc != 0 ? rc : zhttp_server_handle(s, "/idle", on_idle, demo);
    rc = rc != 0 ? rc : zhttp_server_static(s, "/", static_dir);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s LISTEN STATIC_DIR\n", argv[0]);
        return 2;
    }
    demo_t demo = {.loop = uv_default_loop()};
    demo.slow_chunk = malloc(SLOW_CHUNK_BYTES);
    memset(demo.slow_chunk, 'x', SLOW_CHUNK_BYTES);
    memcpy(demo.slow_chunk, "data: ", 6);
    memcpy(demo.slow_chunk + SLOW_CHUNK_BYTES - 2, "\n\n", 2);
    char err[256];
    demo.server = zhttp_server_new(demo.loop, argv[1], err, sizeof err);
    if (demo.server == NULL) {
        fprintf(stderr, "zhili-http-demo: %s\n", err);
        free(demo.slow_chunk);
        return 1;
    }
    int rc = demo_routes(&demo, argv[2]);
    rc = rc != 0 ? rc : zhttp_server_start(demo.server);
    if (rc != 0) {
        fprintf(stderr, "zhili-http-demo: start failed (%d)\n", rc);
        return 1;
    }
    uv_signal_init(demo.loop, &demo.sigterm);
    uv_signal_init(demo.loop, &demo.sigint);
    demo.sigterm.data = demo.sigint.data = &demo;
    uv_signal_start(&demo.sigterm, on_signal, SIGTERM);
    uv_signal_start(&demo.sigint, on_signal, SIGINT);
    printf("port=%d\n", zhttp_server_port(demo.server));
    fflush(stdout);
    uv_run(demo.loop, UV_RUN_DEFAULT);
    zhttp_server_destroy(&demo.server);
    free(demo.slow_chunk);
    rc = uv_loop_close(demo.loop);
    if (rc != 0) {
        fprintf(stderr, "zhili-http-demo: loop not empty at exit: %s\n", uv_strerror(rc));
        return 1;
    }
    return 0;
}
