/* bench_util: what every benchmark under bench/ needs to start the real
 * binaries on loopback (not shipped, not a test). */
#ifndef ZHILI_BENCH_UTIL_H
#define ZHILI_BENCH_UTIL_H

#define ZBENCH_PORTS_MAX 8
#define ZBENCH_ENV_VAR_BYTES_MAX 128

/* count (<= ZBENCH_PORTS_MAX) distinct free TCP ports on 127.0.0.1: each is
 * bound to port 0 and read back, all held open until every one is picked.
 * 0, or -1 when a socket fails. */
int zbench_ports_pick(int *ports, int count);

/* environ without the names the overrides set ("NAME=value"), then the
 * overrides. Built before fork, because the child of a threaded process may
 * call only async-signal-safe functions before it execs. The array is the
 * caller's to free; the strings stay borrowed. */
char **zbench_env_build(char over[][ZBENCH_ENV_VAR_BYTES_MAX], int n);

#endif
