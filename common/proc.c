#include "common/proc.h"

#include <signal.h>
#include <string.h>

void zproc_on_stop(void (*on_stop)(int sig))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A file-size limit then shows as EFBIG, answered as a full disk. */
    signal(SIGXFSZ, SIG_IGN);
}
