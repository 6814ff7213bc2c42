/* A minimal HTTP/1.1 keep-alive client (httpc.h). */
#include "tools/zhilictl/httpc.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct zhc {
    int fd;
    bool busy; /* a request was sent and its response is not complete */
    char *buf; /* the response as it arrives */
    size_t len, cap;
    size_t head_len; /* status line and headers, 0 until the blank line */
    size_t body_len; /* from Content-Length */
    int status;
};

int zhc_url_parse(const char *url, char host[ZHC_HOST_BYTES_MAX + 1], int *port)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0) {
        return -1;
    }
    p += 7;
    size_t n = strcspn(p, ":/");
    if (n == 0 || n > ZHC_HOST_BYTES_MAX) {
        return -1;
    }
    memcpy(host, p, n);
    host[n] = '\0';
    *port = 80;
    if (p[n] == ':') {
        char *end = NULL;
        long v = strtol(p + n + 1, &end, 10);
        if (end == p + n + 1 || (*end != '\0' && *end != '/') || v < 1 || v > 65535) {
            return -1;
        }
        *port = (int)v;
    }
    return 0;
}

zhc_t *zhc_open(const char *host, int port, char *err, size_t err_cap)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_cap, "cannot resolve %s: %s", host, gai_strerror(rc));
        return NULL;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, err_cap, "cannot connect to %s:%d: %s", host, port, strerror(errno));
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    zhc_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        snprintf(err, err_cap, "out of memory");
        return NULL;
    }
    c->fd = fd;
    return c;
}

void zhc_close(zhc_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    zhc_t *c = *self_p;
    close(c->fd);
    free(c->buf);
    free(c);
    *self_p = NULL;
}

int zhc_fd(const zhc_t *self)
{
    return self->fd;
}

bool zhc_busy(const zhc_t *self)
{
    return self->busy;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int zhc_send(zhc_t *self, const char *method, const char *path, const char *headers,
             const char *content_type, const void *body, size_t body_len)
{
    if (self->busy) {
        return -1;
    }
    char head[ZHC_REQUEST_HEAD_BYTES_MAX];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: zhili\r\n%s%s%s%sContent-Length: %zu\r\n\r\n", method,
                     path, headers ? headers : "", content_type ? "Content-Type: " : "",
                     content_type ? content_type : "", content_type ? "\r\n" : "", body_len);
    if (n < 0 || (size_t)n >= sizeof head) {
        return -1;
    }
    self->len = self->head_len = self->body_len = 0;
    self->status = 0;
    if (write_all(self->fd, head, (size_t)n) != 0 ||
        (body_len > 0 && write_all(self->fd, body, body_len) != 0)) {
        return -1;
    }
    self->busy = true;
    return 0;
}

/* Parse the head once the blank line is in: status and Content-Length. */
static int parse_head(zhc_t *c)
{
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (end == NULL) {
        return c->len > ZHC_HEAD_BYTES_MAX ? -1 : 0;
    }
    c->head_len = (size_t)(end - c->buf) + 4;
    if (c->len < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0) {
        return -1;
    }
    c->status = atoi(c->buf + 9);
    bool have_length = false;
    for (char *line = strstr(c->buf, "\r\n"); line != NULL && line < end;
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "content-length:", 15) == 0) {
            c->body_len = strtoul(line + 17, NULL, 10);
            have_length = true;
        }
    }
    return have_length && c->body_len <= ZHC_BODY_BYTES_MAX ? 1 : -1;
}

int zhc_read(zhc_t *self)
{
    if (!self->busy) {
        return -1;
    }
    for (;;) {
        if (self->cap - self->len < 4096) {
            size_t cap = self->cap ? self->cap * 2 : 65536;
            if (cap > 2 * (ZHC_HEAD_BYTES_MAX + ZHC_BODY_BYTES_MAX)) {
                return -1;
            }
            char *buf = realloc(self->buf, cap + 1);
            if (buf == NULL) {
                return -1;
            }
            self->buf = buf;
            self->cap = cap;
        }
        ssize_t n = recv(self->fd, self->buf + self->len, self->cap - self->len, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        }
        if (n <= 0) {
            return -1;
        }
        self->len += (size_t)n;
        self->buf[self->len] = '\0';
        if (self->head_len == 0) {
            int rc = parse_head(self);
            if (rc <= 0) {
                if (rc < 0) {
                    return -1;
                }
                continue;
            }
        }
        if (self->len >= self->head_len + self->body_len) {
            self->busy = false;
            return 1;
        }
    }
}

int zhc_wait(zhc_t *self, int timeout_ms)
{
    struct pollfd p = {.fd = self->fd, .events = POLLIN};
    for (;;) {
        int rc = zhc_read(self);
        if (rc != 0) {
            return rc;
        }
        int n = poll(&p, 1, timeout_ms);
        if (n == 0) {
            return 0;
        }
        if (n < 0 && errno != EINTR) {
            return -1;
        }
    }
}

int zhc_status(const zhc_t *self)
{
    return self->status;
}

const char *zhc_body(const zhc_t *self, size_t *len)
{
    *len = self->body_len;
    return self->buf != NULL ? self->buf + self->head_len : "";
}
