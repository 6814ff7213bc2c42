#include "bench/common/bench_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"

int zbench_ports_pick(int *ports, int count)
{
    int fds[ZBENCH_PORTS_MAX];
    int rc = 0;
    ZASSERT(count <= ZBENCH_PORTS_MAX);
    for (int i = 0; i < count; i++) {
        fds[i] = -1;
    }
    for (int i = 0; i < count && rc == 0; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0) {
            rc = -1;
        } else {
            ports[i] = ntohs(a.sin_port);
        }
    }
    for (int i = 0; i < count; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    return rc;
}

char **zbench_env_build(char over[][ZBENCH_ENV_VAR_BYTES_MAX], int n)
{
    extern char **environ;
    size_t count = 0;
    while (environ[count] != NULL) {
        count++;
    }
    char **envp = calloc(count + (size_t)n + 1, sizeof *envp);
    ZASSERT(envp != NULL);
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        bool replaced = false;
        for (int j = 0; j < n && !replaced; j++) {
            size_t name_len = (size_t)(strchr(over[j], '=') - over[j]) + 1;
            replaced = strncmp(environ[i], over[j], name_len) == 0;
        }
        if (!replaced) {
            envp[k++] = environ[i];
        }
    }
    for (int j = 0; j < n; j++) {
        envp[k++] = over[j];
    }
    return envp;
}
