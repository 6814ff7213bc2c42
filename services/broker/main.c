/* zhili-broker: configuration and signals; the routing is in broker.c. */
#include <signal.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "common/proc.h"
#include "services/broker/broker.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int main(void)
{
    zlog_init("broker", zcfg_log_level());
    zbroker_config_t cfg = {
        .router_bind = zcfg_str("ZHILI_BROKER_BIND", "tcp://127.0.0.1:7100"),
        .xsub_bind = zcfg_str("ZHILI_EVENTS_XSUB_BIND", "tcp://127.0.0.1:7101"),
        .xpub_bind = zcfg_str("ZHILI_EVENTS_XPUB_BIND", "tcp://127.0.0.1:7102"),
        .heartbeat_ms = zcfg_int("ZHILI_HEARTBEAT_MS", 1000, 50, 60000),
        .queue_max = zcfg_int("ZHILI_BROKER_QUEUE_MAX", ZBROKER_QUEUE_MAX, 1, 10000000),
    };
    zproc_on_stop(on_signal);
    return zbroker_run(&cfg, &stop_requested) == 0 ? 0 : 1;
}
