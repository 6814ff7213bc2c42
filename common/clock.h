/* clock: milliseconds since the epoch (UTC). Real by default; a service started
 * with ZHILI_FAKE_CLOCK=1 gets a fake clock that tests set and advance through
 * the clock_set / clock_advance commands, because deadlines and monthly periods
 * are domain rules that tests must be able to reach. */
#ifndef ZHILI_CLOCK_H
#define ZHILI_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    bool fake;
    int64_t fake_now_ms;
} zclock_t;

/* Real clock, or fake starting at start_ms (0 = the real time now). */
void zclock_init(zclock_t *clock, bool fake, int64_t start_ms);

int64_t zclock_now_ms(const zclock_t *clock);

/* Fake clock only; a fake clock never goes backwards. 0, or ZE_FORBIDDEN for a
 * real clock, ZE_INVALID for a move backwards. */
int zclock_set(zclock_t *clock, int64_t now_ms);
int zclock_advance(zclock_t *clock, int64_t delta_ms);

/* Monotonic milliseconds, for timeouts and heartbeats (never faked). */
int64_t zclock_mono_ms(void);

/* Wall clock milliseconds (never faked): deadlines on the bus. */
int64_t zclock_wall_ms(void);

#endif
