/* broker: routes commands to live workers by service name and forwards events
 * (docs/protocol.md). It keeps no state that matters: a restarted broker
 * learns its workers again from their registrations and heartbeats, and
 * clients resend what was in flight. */
#ifndef ZHILI_BROKER_H
#define ZHILI_BROKER_H

#include <signal.h>
#include <stdint.h>

#define ZBROKER_SERVICES_MAX 256
#define ZBROKER_WORKERS_MAX 1024
#define ZBROKER_QUEUE_MAX 100000          /* requests waiting for a worker, per service */
#define ZBROKER_CREDIT_MAX 100000
#define ZBROKER_HB_LIVENESS 3             /* heartbeats missed before a worker is dropped */
#define ZBROKER_SWEEP_MS 50               /* how often queued deadlines are checked */

typedef struct {
    const char *router_bind;   /* ZHILI_BROKER_BIND      tcp://127.0.0.1:7100 */
    const char *xsub_bind;     /* ZHILI_EVENTS_XSUB_BIND tcp://127.0.0.1:7101 */
    const char *xpub_bind;     /* ZHILI_EVENTS_XPUB_BIND tcp://127.0.0.1:7102 */
    int64_t heartbeat_ms;      /* ZHILI_HEARTBEAT_MS     1000 */
    int64_t queue_max;         /* ZHILI_BROKER_QUEUE_MAX */
} zbroker_config_t;

/* Run until *stop becomes non-zero. Returns 0, or -1 when a socket cannot be
 * bound (logged with the endpoint). */
int zbroker_run(const zbroker_config_t *cfg, volatile sig_atomic_t *stop);

#endif
