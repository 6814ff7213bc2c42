/* arena: bump allocation for the messages a command handler builds (reply
 * results, event bodies), released all at once when the batch is done. */
#ifndef ZHILI_ARENA_H
#define ZHILI_ARENA_H

#include <stddef.h>

#define ZARENA_CHUNK_BYTES (64u << 10)
#define ZARENA_BYTES_MAX (256u << 20) /* one batch never needs more */

typedef struct zarena_chunk zarena_chunk_t;
typedef struct {
    zarena_chunk_t *head;
    size_t total_bytes;
} zarena_t;

void zarena_init(zarena_t *arena);

/* Zeroed, 16-byte aligned memory owned by the arena. Aborts when memory is
 * exhausted or the arena exceeds ZARENA_BYTES_MAX (a programmer error). */
void *zarena_alloc(zarena_t *arena, size_t bytes);

/* Copy of s (NULL gives ""). */
char *zarena_strdup(zarena_t *arena, const char *s);
char *zarena_printf(zarena_t *arena, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Free everything but one chunk, for reuse. */
void zarena_reset(zarena_t *arena);
void zarena_fini(zarena_t *arena);

#endif
