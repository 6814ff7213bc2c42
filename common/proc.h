/* proc: process plumbing every binary shares. */
#ifndef ZHILI_PROC_H
#define ZHILI_PROC_H

/* Call on_stop for SIGINT and SIGTERM (without SA_RESTART, so a blocking poll
 * returns), and ignore SIGPIPE and SIGXFSZ: a closed peer or a file-size
 * limit is an error code, not a death. */
void zproc_on_stop(void (*on_stop)(int sig));

#endif
