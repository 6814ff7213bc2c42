/* Project error codes. Functions return 0 or one of these negative codes;
 * foreign codes (errno, ZeroMQ, LMDB) are mapped where they are met. The first
 * seven correspond one to one with zhili.v1.Status. */
#ifndef ZHILI_ERR_H
#define ZHILI_ERR_H

#include <stdio.h>
#include <stdlib.h>

enum {
    ZE_OK = 0,
    ZE_INVALID = -1,     /* the input is wrong; the message names the field */
    ZE_NOT_FOUND = -2,
    ZE_CONFLICT = -3,    /* the current state does not allow it */
    ZE_FORBIDDEN = -4,
    ZE_UNAVAILABLE = -5, /* try again later: disk full, peer down, deadline */
    ZE_INTERNAL = -6,
    ZE_MAP_FULL = -7,    /* store: the LMDB map must grow, then retry */
    ZE_AGAIN = -8,       /* non-blocking call would block */
    ZE_TIMEOUT = -9,     /* a deadline passed */
};

/* Status value (zhili.v1.Status number) for an error code. */
int zerr_status(int code);

/* Error code for a zhili.v1.Status number. */
int zerr_from_status(int status);

/* Lower-case name, as in JSON and HTTP error bodies: "invalid", "not_found"... */
const char *zerr_name(int code);

/* Assertion that is never compiled out: programmer errors only, never input. */
#define ZASSERT(expr)                                                                   \
    do {                                                                                \
        if (!(expr)) {                                                                  \
            fprintf(stderr, "level=fatal event=assert file=%s line=%d expr=\"%s\"\n",   \
                    __FILE__, __LINE__, #expr);                                         \
            abort();                                                                    \
        }                                                                               \
    } while (0)

#define ZARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
