#include "common/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

struct zarena_chunk {
    zarena_chunk_t *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

void zarena_init(zarena_t *arena)
{
    arena->head = NULL;
    arena->total_bytes = 0;
}

void *zarena_alloc(zarena_t *arena, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    zarena_chunk_t *c = arena->head;
    if (c == NULL || c->size - c->used < bytes) {
        size_t size = bytes > ZARENA_CHUNK_BYTES ? bytes : ZARENA_CHUNK_BYTES;
        ZASSERT(arena->total_bytes + size <= ZARENA_BYTES_MAX);
        c = malloc(sizeof *c + size);
        ZASSERT(c != NULL);
        c->size = size;
        c->used = 0;
        c->next = arena->head;
        arena->head = c;
        arena->total_bytes += size;
    }
    void *p = c->data + c->used;
    c->used += bytes;
    memset(p, 0, bytes);
    return p;
}

char *zarena_strdup(zarena_t *arena, const char *s)
{
    if (s == NULL) {
        s = "";
    }
    size_t n = strlen(s) + 1;
    char *p = zarena_alloc(arena, n);
    memcpy(p, s, n);
    return p;
}

char *zarena_printf(zarena_t *arena, const char *fmt, ...)
{
    va_list ap;
    char probe[1];
    va_start(ap, fmt);
    int n = vsnprintf(probe, sizeof probe, fmt, ap);
    va_end(ap);
    ZASSERT(n >= 0);
    char *p = zarena_alloc(arena, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void zarena_reset(zarena_t *arena)
{
    zarena_chunk_t *keep = arena->head;
    if (keep == NULL) {
        return;
    }
    zarena_chunk_t *c = keep->next;
    while (c != NULL) {
        zarena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    keep->next = NULL;
    keep->used = 0;
    arena->total_bytes = keep->size;
}

void zarena_fini(zarena_t *arena)
{
    zarena_reset(arena);
    free(arena->head);
    arena->head = NULL;
    arena->total_bytes = 0;
}
