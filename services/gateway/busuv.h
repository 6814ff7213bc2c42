/* busuv: the gateway's ZeroMQ sockets on its libuv loop. ZMQ_FD is
 * edge-triggered, so every readiness drains until ZMQ_EVENTS shows no POLLIN
 * (bounded per turn; a uv_idle carries on where a bound stopped).
 *
 * calls: many commands in flight on one DEALER, matched by request_id,
 * resent under the same request_id every ZBUS_ATTEMPT_MS until their
 * deadline, answered exactly once each (a reply, or UNAVAILABLE at the
 * deadline). events: one SUB socket; each event or heartbeat goes to a
 * callback. */
#ifndef ZHILI_GATEWAY_BUSUV_H
#define ZHILI_GATEWAY_BUSUV_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "zhili.pb-c.h"

#define ZGW_CALLS_MAX 100000          /* commands in flight; more get UNAVAILABLE at once */
#define ZGW_CALL_MS_DEFAULT 10000
#define ZGW_DRAIN_PER_TURN 10000      /* messages read per socket per loop turn */

typedef struct zgw_bus zgw_bus_t;

/* The reply to a call: owned by the bus, valid during the callback only.
 * A call that got no answer by its deadline gets a Reply with status
 * UNAVAILABLE and a sentence. */
typedef void (*zgw_on_reply_fn)(void *ctx, const Zhili__V1__Reply *reply);

/* An event (topic "<source>.<type>") or heartbeat (topic "<source>.~hb"),
 * raw bytes valid during the callback only. */
typedef void (*zgw_on_event_fn)(void *ctx, const char *topic, size_t topic_len, const void *data,
                                size_t len);

zgw_bus_t *zgw_bus_new(uv_loop_t *loop, const char *broker, const char *events_sub,
                       zgw_on_event_fn on_event, void *event_ctx);
/* Set the ctx given to on_event (when the consumer is made after the bus). */
void zgw_bus_set_event_ctx(zgw_bus_t *self, void *event_ctx);

void zgw_bus_close(zgw_bus_t *self);       /* stop watching; handles close on the loop */
void zgw_bus_destroy(zgw_bus_t **self_p);  /* after the loop has run the closes */

/* Subscribe to a topic prefix on the events socket ("" for everything). */
int zgw_bus_subscribe(zgw_bus_t *self, const char *prefix);

/* Send cmd (packed here; cmd->request_id must be set) to `service`; on_reply
 * is called exactly once, unless zgw_bus_cancel is called first. Returns a
 * call handle, or 0 when the command is invalid or too many are in flight
 * (on_reply is then NOT called; the caller answers). */
uint64_t zgw_bus_call(zgw_bus_t *self, const char *service, const Zhili__V1__Command *cmd,
                      int timeout_ms, zgw_on_reply_fn on_reply, void *ctx);

/* Forget a call (its requester went away); a later reply is dropped. */
void zgw_bus_cancel(zgw_bus_t *self, uint64_t call);

/* Fetch the broker's stats; on_stats gets NULL when none came in timeout_ms. */
typedef void (*zgw_on_stats_fn)(void *ctx, const Zhili__V1__Stats *stats);
int zgw_bus_broker_stats(zgw_bus_t *self, int timeout_ms, zgw_on_stats_fn on_stats, void *ctx);

typedef struct {
    uint64_t calls_total, calls_inflight, replies_total, timeouts_total, resends_total,
        events_total, malformed_total;
} zgw_bus_stats_t;
void zgw_bus_stats(const zgw_bus_t *self, zgw_bus_stats_t *out);

#endif
