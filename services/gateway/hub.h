/* hub: live event streams (SSE and WebSocket) with gap-free resume.
 *
 * The hub keeps, per source, a ring of the most recent events as rendered
 * JSON, gapless in seq (it repairs its own gaps by replay). Each client has
 * a position per source; an event id is that vector ("petitions:120,funds:33").
 * A client resuming from an id older than what the ring holds is served the
 * difference from the source's outbox through replay, then from the ring, so
 * it gets every event it missed, none twice, in per-source order, also after
 * the gateway restarts. Filters (topic prefixes, area prefix) decide what is
 * written; positions advance over every event. Events move from the ring to a
 * client only while its stream holds less than a send watermark, so a client
 * that reads slowly falls behind in the shared ring rather than in a private
 * copy. A client whose unsent bytes plus what it is behind in the ring pass
 * the bound, or that the ring has left behind, is closed with a final event
 * naming the reason. */
#ifndef ZHILI_GATEWAY_HUB_H
#define ZHILI_GATEWAY_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "services/gateway/busuv.h"
#include "services/gateway/http/http.h"

#define ZGW_SOURCES_MAX 64
#define ZGW_TOPICS_MAX 16
#define ZGW_TOPIC_BYTES_MAX 128
#define ZGW_SINCE_BYTES_MAX 4096
#define ZGW_CLIENTS_MAX 20000
#define ZGW_RING_EVENTS_DEFAULT 20000
#define ZGW_CLIENT_QUEUE_BYTES_DEFAULT (16u << 20)
/* Unsent bytes a client's stream may hold before the hub stops moving events
 * into it (a quarter of the bound when that is smaller). */
#define ZGW_SEND_WATERMARK_BYTES (64u << 10)
/* A page fetched from a source's outbox for a resuming client (up to
 * ZGW_FETCH_EVENTS events) is written whole unless it passes this. */
#define ZGW_FETCH_PENDING_BYTES (1u << 20)
#define ZGW_STREAM_HEARTBEAT_MS_DEFAULT 15000
#define ZGW_FETCH_EVENTS 1000

typedef struct zgw_hub zgw_hub_t;

typedef struct {
    size_t ring_events;          /* ZHILI_STREAM_RING_EVENTS */
    size_t client_queue_bytes;   /* ZHILI_STREAM_QUEUE_BYTES: how far behind, in bytes */
    int64_t heartbeat_ms;        /* ZHILI_STREAM_HEARTBEAT_MS */
} zgw_hub_config_t;

zgw_hub_t *zgw_hub_new(uv_loop_t *loop, zgw_bus_t *bus, const zgw_hub_config_t *cfg);
void zgw_hub_close(zgw_hub_t *self);        /* close every client; stop timers */
void zgw_hub_destroy(zgw_hub_t **self_p);

/* The bus's event callback (zgw_on_event_fn): ctx is the hub. */
void zgw_hub_on_event(void *ctx, const char *topic, size_t topic_len, const void *data,
                      size_t len);

/* What a client asked for, already authorized by the caller. */
typedef struct {
    const char *topics;      /* comma-separated prefixes, "" or NULL for all */
    const char *area;        /* area prefix, within the caller's scope; "" all */
    const char *since;       /* Last-Event-ID or ?since=, NULL or "" for "from now" */
    size_t since_len;
    bool websocket;
} zgw_stream_req_t;

/* Validate the request and start streaming on `req`. 0 when the stream was
 * started (the req is answered); ZE_INVALID with `field` and `msg` filled
 * when topics or since are malformed, ZE_UNAVAILABLE when the hub holds the
 * most clients it can (the caller answers either). */
int zgw_hub_serve(zgw_hub_t *self, zhttp_req_t *req, const zgw_stream_req_t *sr, char *field,
                  size_t field_len, char *msg, size_t msg_len);

typedef struct {
    uint64_t clients, clients_total, deliveries_total, bytes_total, dropped_slow_total,
        fetches_total, hub_replays_total, sources;
} zgw_hub_stats_t;
void zgw_hub_stats(const zgw_hub_t *self, zgw_hub_stats_t *out);

#endif
