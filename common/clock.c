#include "common/clock.h"

#include <time.h>

#include "common/err.h"

int64_t zclock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t zclock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void zclock_init(zclock_t *clock, bool fake, int64_t start_ms)
{
    clock->fake = fake;
    clock->fake_now_ms = start_ms != 0 ? start_ms : zclock_wall_ms();
}

int64_t zclock_now_ms(const zclock_t *clock)
{
    return clock->fake ? clock->fake_now_ms : zclock_wall_ms();
}

int zclock_set(zclock_t *clock, int64_t now_ms)
{
    if (!clock->fake) {
        return ZE_FORBIDDEN;
    }
    if (now_ms < clock->fake_now_ms) {
        return ZE_INVALID;
    }
    clock->fake_now_ms = now_ms;
    return 0;
}

int zclock_advance(zclock_t *clock, int64_t delta_ms)
{
    if (delta_ms < 0 || delta_ms > INT64_MAX - clock->fake_now_ms) {
        return clock->fake ? ZE_INVALID : ZE_FORBIDDEN;
    }
    return zclock_set(clock, clock->fake_now_ms + delta_ms);
}
