/* events: the broker's event proxy, XSUB (producers) -> XPUB (subscribers),
 * on a thread of its own so that a burst of events never delays commands. */
#ifndef ZHILI_BROKER_EVENTS_H
#define ZHILI_BROKER_EVENTS_H

#include <stdint.h>

typedef struct zevents zevents_t;

/* Bind both sockets and start the thread. NULL when a bind fails (logged). */
zevents_t *zevents_start(void *zctx, const char *xsub_bind, const char *xpub_bind);

/* Stop the thread and close its sockets. Idempotent; nulls *self_p. */
void zevents_stop(zevents_t **self_p);

int64_t zevents_forwarded(const zevents_t *self);
int64_t zevents_subscriptions(const zevents_t *self);

#endif
