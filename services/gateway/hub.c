/* Live streams with gap-free resume (hub.h explains the model). */
#include "services/gateway/hub.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"

#define HOUSEKEEP_MS 500
#define AREA_BYTES_MAX 18

/* An event as the hub keeps it. The JSON is made on first need (hev_render):
 * with no stream open, rendering every event was the gateway's largest
 * user-space cost on a write route, so the packed bytes are kept instead. */
typedef struct {
    uint64_t seq;
    char *topic;       /* "<source>.<type>", malloc'd with raw in one block */
    const uint8_t *raw; /* the packed Event */
    size_t raw_len;
    char *json;        /* NULL until rendered; its own block */
    size_t json_len;
    uint64_t cum;      /* ring only: the source's delivery bytes through this event */
    char area[AREA_BYTES_MAX + 1];
} hev_t;

typedef struct {
    char name[ZBUS_NAME_BYTES_MAX + 1];
    hev_t *ring;       /* ring[(i) % cap] for seq base+1 .. last */
    uint64_t base;     /* seq before the first held event */
    uint64_t last;     /* newest seq held (== base when empty) */
    uint64_t known_last;
    /* Running totals of delivery bytes (hev_t.cum) at base and at last: how far
     * behind a client is, in bytes, without walking the ring. */
    uint64_t cum_base, cum_last;
    uint64_t replay_call;
    int64_t retry_at_mono_ms;
    bool started;      /* base is meaningful: an event or heartbeat was seen */
    struct zgw_hub *hub;
    int index;
} hsource_t;

typedef struct client client_t;

typedef struct {
    uint64_t pos;      /* last seq passed (written or filtered out) */
    uint64_t fetch_call;
    int64_t fetch_retry_mono_ms;
    client_t *client;  /* back pointers for the fetch callback */
    int index;
    bool known;        /* has a position */
    /* Reached the ring: from then on falling out of it means the client is
     * too slow. Before that (a resume from an older id) it catches up from
     * the source's outbox, however far back it starts. */
    bool live;
} cpos_t;

struct client {
    zgw_hub_t *hub;
    client_t *prev, *next;
    zhttp_stream_t *stream;
    bool websocket, closing;
    bool held;         /* stopped at the send watermark with events to go */
    int rr;            /* the source the next pump starts with */
    int topic_count;
    char topics[ZGW_TOPICS_MAX][ZGW_TOPIC_BYTES_MAX + 1];
    char area[AREA_BYTES_MAX + 1];
    cpos_t pos[ZGW_SOURCES_MAX];
};

struct zgw_hub {
    uv_loop_t *loop;
    zgw_bus_t *bus;
    zgw_hub_config_t cfg;
    hsource_t sources[ZGW_SOURCES_MAX];
    int source_count;
    client_t *clients;
    uv_timer_t housekeep, heartbeat;
    uv_check_t pump;
    bool dirty;
    size_t held_count; /* clients with held set: pumped every turn */
    size_t send_watermark;
    uint64_t call_seq;
    char *scratch;     /* one rendered delivery */
    size_t scratch_cap;
    zgw_hub_stats_t stats;
};

/* ---- rendering ---------------------------------------------------------- */

static Zhili__V1__Event *unpack_event(const void *data, size_t len)
{
    ProtobufCMessage *m = NULL;
    if (zcodec_unpack(&zhili__v1__event__descriptor, data, len, 0, &m) != 0) {
        return NULL;
    }
    return (Zhili__V1__Event *)m;
}

/* What the hub needs of an event before it is rendered: where it comes from,
 * its place, its area and type (slices, not NUL-terminated). */
typedef struct {
    const char *source, *area, *type;
    size_t source_len, area_len, type_len;
    uint64_t seq;
} ev_head_t;

static ev_head_t head_of(const Zhili__V1__Event *ev)
{
    return (ev_head_t){ev->source, ev->area,          ev->type, strlen(ev->source),
                       strlen(ev->area), strlen(ev->type), ev->seq};
}

static bool text_ok(const uint8_t *p, size_t len)
{
    return memchr(p, '\0', len) == NULL;
}

/* The head read in place from packed bytes (Event fields 1 source, 2 seq,
 * 4 area, 5 type), without unpacking the body: the live path needs only
 * these, and the body is unpacked once, when the event is rendered. False
 * for bytes that do not scan or texts with a NUL. */
static bool head_peek(const void *data, size_t len, ev_head_t *hd)
{
    zcodec_field_t f[4] = {{.id = 1}, {.id = 2}, {.id = 4}, {.id = 5}};
    if (zcodec_peek(data, len, f, 4) != 0 || (f[0].found && !text_ok(f[0].data, f[0].len)) ||
        (f[2].found && !text_ok(f[2].data, f[2].len)) ||
        (f[3].found && !text_ok(f[3].data, f[3].len))) {
        return false;
    }
    static const char empty[1] = "";
    *hd = (ev_head_t){f[0].found ? (const char *)f[0].data : empty,
                      f[2].found ? (const char *)f[2].data : empty,
                      f[3].found ? (const char *)f[3].data : empty,
                      f[0].found ? f[0].len : 0,
                      f[2].found ? f[2].len : 0,
                      f[3].found ? f[3].len : 0,
                      f[1].found ? f[1].varint : 0};
    return true;
}

/* The head of a live event: read in place, or from a full unpack when the
 * in-place read does not take the bytes (a valid but unusual encoding);
 * *own is then that event, which the caller frees after using the head.
 * False when neither reads it. */
static bool head_get(const void *data, size_t len, ev_head_t *hd, Zhili__V1__Event **own)
{
    *own = NULL;
    if (head_peek(data, len, hd)) {
        return true;
    }
    *own = unpack_event(data, len);
    if (*own == NULL) {
        return false;
    }
    *hd = head_of(*own);
    return true;
}

/* The event with head `hd`, packed as raw[0..raw_len), not yet rendered. */
static hev_t hev_new(const ev_head_t *hd, const void *raw, size_t raw_len)
{
    hev_t h = {.seq = hd->seq, .raw_len = raw_len};
    size_t tlen = hd->source_len + 1 + hd->type_len;
    h.topic = malloc(tlen + 1 + raw_len);
    ZASSERT(h.topic != NULL);
    memcpy(h.topic, hd->source, hd->source_len);
    h.topic[hd->source_len] = '.';
    memcpy(h.topic + hd->source_len + 1, hd->type, hd->type_len);
    h.topic[tlen] = '\0';
    memcpy(h.topic + tlen + 1, raw, raw_len);
    h.raw = (const uint8_t *)h.topic + tlen + 1;
    size_t alen = hd->area_len < sizeof h.area - 1 ? hd->area_len : sizeof h.area - 1;
    memcpy(h.area, hd->area, alen);
    h.area[alen] = '\0';
    return h;
}

/* The event's JSON, made once; `ev` is its unpacked form when the caller
 * has it (NULL: unpacked again from raw). */
static void hev_render(hev_t *h, const Zhili__V1__Event *ev)
{
    if (h->json != NULL) {
        return;
    }
    Zhili__V1__Event *own = ev == NULL ? unpack_event(h->raw, h->raw_len) : NULL;
    const Zhili__V1__Event *use = ev != NULL ? ev : own;
    if (use == NULL) {
        /* Its head read well on arrival, its body does not: shown as {}. */
        zlog(ZLOG_WARN, "malformed_event", "topic", h->topic, NULL);
    }
    size_t len = 0;
    h->json = use != NULL ? zjson_text_from_msg(&use->base, &len) : NULL;
    if (own != NULL) {
        zcodec_free(&own->base);
    }
    if (h->json == NULL) {
        h->json = strdup("{}");
        ZASSERT(h->json != NULL);
        len = 2;
    }
    h->json_len = len;
}

static void hev_free(hev_t *h)
{
    free(h->topic);
    free(h->json);
    h->topic = h->json = NULL;
}

/* ---- sources and the ring ---------------------------------------------- */

static int source_find(zgw_hub_t *h, const char *name, size_t len, bool create)
{
    for (int i = 0; i < h->source_count; i++) {
        if (strlen(h->sources[i].name) == len && memcmp(h->sources[i].name, name, len) == 0) {
            return i;
        }
    }
    if (!create || h->source_count == ZGW_SOURCES_MAX || len == 0 || len > ZBUS_NAME_BYTES_MAX) {
        return -1;
    }
    hsource_t *s = &h->sources[h->source_count];
    memset(s, 0, sizeof *s);
    memcpy(s->name, name, len);
    s->hub = h;
    s->index = h->source_count;
    s->ring = calloc(h->cfg.ring_events, sizeof *s->ring);
    ZASSERT(s->ring != NULL);
    h->stats.sources = (uint64_t)++h->source_count;
    return h->source_count - 1;
}

static hev_t *ring_at(zgw_hub_t *h, hsource_t *s, uint64_t seq)
{
    return &s->ring[seq % h->cfg.ring_events];
}

/* Append the next event (seq == last + 1), evicting the oldest when full. */
static void ring_append(zgw_hub_t *h, hsource_t *s, hev_t ev)
{
    ZASSERT(ev.seq == s->last + 1);
    if (s->last - s->base == h->cfg.ring_events) {
        hev_t *oldest = ring_at(h, s, s->base + 1);
        s->cum_base = oldest->cum;
        hev_free(oldest);
        s->base++;
    }
    /* With streams open every event is rendered at once (they need it); the
     * cost of a delivery is then the JSON plus the id and framing, else
     * estimated from the packed size (JSON runs about twice as long). */
    if (h->clients != NULL) {
        hev_render(&ev, NULL);
    }
    size_t body = ev.json != NULL ? ev.json_len : 2 * ev.raw_len;
    ev.cum = s->cum_last + body + strlen(ev.topic) + 64;
    s->cum_last = ev.cum;
    *ring_at(h, s, ev.seq) = ev;
    s->last = ev.seq;
    if (s->known_last < s->last) {
        s->known_last = s->last;
    }
    h->dirty = true;
}

/* A source the hub met first at `seq`: it holds nothing before it. */
static void source_start_at(zgw_hub_t *h, int i, uint64_t before)
{
    hsource_t *s = &h->sources[i];
    s->base = s->last = before;
    s->cum_base = s->cum_last = 0;
    s->started = true;
    for (client_t *c = h->clients; c != NULL; c = c->next) {
        if (!c->pos[i].known) {
            c->pos[i].known = true; /* from now on */
            c->pos[i].pos = before;
        }
    }
}

/* ---- the hub's own gap repair ------------------------------------------ */

static void on_hub_replay(void *ctx, const Zhili__V1__Reply *r);

static void send_replay(zgw_hub_t *h, const char *source, uint64_t from, zgw_on_reply_fn fn,
                        void *ctx, uint64_t *call)
{
    Zhili__V1__Replay rp = ZHILI__V1__REPLAY__INIT;
    rp.from_seq = from;
    rp.max = ZGW_FETCH_EVENTS;
    Zhili__V1__Actor actor = ZHILI__V1__ACTOR__INIT;
    actor.id = "gateway";
    actor.role = "service";
    char rid[64];
    snprintf(rid, sizeof rid, "gw-replay-%d-%" PRIu64, (int)uv_os_getpid(), ++h->call_seq);
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.request_id = rid;
    cmd.actor = &actor;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_REPLAY;
    cmd.replay = &rp;
    *call = zgw_bus_call(h->bus, source, &cmd, 5000, fn, ctx);
}

static void hub_replay(zgw_hub_t *h, int i)
{
    hsource_t *s = &h->sources[i];
    if (s->replay_call != 0 || zclock_mono_ms() < s->retry_at_mono_ms) {
        return;
    }
    h->stats.hub_replays_total++;
    send_replay(h, s->name, s->last + 1, on_hub_replay, s, &s->replay_call);
}

static void on_hub_replay(void *ctx, const Zhili__V1__Reply *r)
{
    hsource_t *s = ctx;
    zgw_hub_t *h = s->hub;
    s->replay_call = 0;
    if (r->status != ZHILI__V1__STATUS__STATUS_OK ||
        r->result_case != ZHILI__V1__REPLY__RESULT_REPLAY) {
        s->retry_at_mono_ms = zclock_mono_ms() + 1000;
        return;
    }
    if (r->replay->last_seq > s->known_last) {
        s->known_last = r->replay->last_seq;
    }
    for (size_t k = 0; k < r->replay->n_events; k++) {
        Zhili__V1__Event *ev = unpack_event(r->replay->events[k].data, r->replay->events[k].len);
        if (ev != NULL && ev->seq == s->last + 1 && strcmp(ev->source, s->name) == 0) {
            ev_head_t hd = head_of(ev);
            ring_append(h, s, hev_new(&hd, r->replay->events[k].data, r->replay->events[k].len));
        }
        if (ev != NULL) {
            zcodec_free(&ev->base);
        }
    }
    if (s->known_last > s->last) {
        hub_replay(h, s->index); /* more pages */
    }
}

static void on_heartbeat(zgw_hub_t *h, int i, const void *data, size_t len)
{
    Zhili__V1__Heartbeat *hb = zhili__v1__heartbeat__unpack(NULL, len, data);
    if (hb == NULL) {
        return;
    }
    hsource_t *s = &h->sources[i];
    if (!s->started) {
        source_start_at(h, i, hb->last_seq);
    }
    if (hb->last_seq > s->known_last) {
        s->known_last = hb->last_seq;
    }
    if (s->known_last > s->last) {
        hub_replay(h, i); /* a lost tail */
    }
    zhili__v1__heartbeat__free_unpacked(hb, NULL);
}

void zgw_hub_on_event(void *ctx, const char *topic, size_t topic_len, const void *data,
                      size_t len)
{
    zgw_hub_t *h = ctx;
    const char *dot = memchr(topic, '.', topic_len);
    int i = dot ? source_find(h, topic, (size_t)(dot - topic), true) : -1;
    if (i < 0) {
        return;
    }
    size_t rest = topic_len - (size_t)(dot + 1 - topic);
    if (rest == strlen(ZBUS_HB_SUFFIX) && memcmp(dot + 1, ZBUS_HB_SUFFIX, rest) == 0) {
        on_heartbeat(h, i, data, len);
        return;
    }
    hsource_t *s = &h->sources[i];
    ev_head_t hd;
    Zhili__V1__Event *own = NULL;
    if (!head_get(data, len, &hd, &own) || hd.source_len != strlen(s->name) ||
        memcmp(hd.source, s->name, hd.source_len) != 0 || hd.seq == 0) {
        zlog(ZLOG_WARN, "malformed_event", "source", s->name, NULL);
    } else {
        if (!s->started) {
            source_start_at(h, i, hd.seq - 1);
        }
        if (hd.seq > s->known_last) {
            s->known_last = hd.seq;
        }
        if (hd.seq == s->last + 1 && s->replay_call == 0) {
            ring_append(h, s, hev_new(&hd, data, len));
        } else if (hd.seq > s->last + 1) {
            hub_replay(h, i); /* a gap: the replay brings it, this one included */
        }
    }
    if (own != NULL) {
        zcodec_free(&own->base);
    }
}

/* ---- delivering to one client ------------------------------------------ */

static void scratch_reserve(zgw_hub_t *h, size_t need)
{
    if (need > h->scratch_cap) {
        h->scratch_cap = need * 2;
        h->scratch = realloc(h->scratch, h->scratch_cap);
        ZASSERT(h->scratch != NULL);
    }
}

static size_t u64_dec(uint64_t v, char *out)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t k = 0; k < n; k++) {
        out[k] = tmp[n - 1 - k];
    }
    return n;
}

/* The client's position vector, "source:seq,source:seq", formatted by hand:
 * it is written once per delivery, and snprintf was 39 % of the gateway's
 * CPU at 1.5M deliveries/s (docs/performance.md). */
static size_t format_id(const client_t *c, char *out, size_t cap)
{
    size_t n = 0;
    const zgw_hub_t *h = c->hub;
    for (int i = 0; i < h->source_count; i++) {
        if (c->pos[i].known) {
            size_t nl = strlen(h->sources[i].name);
            if (n + nl + 24 >= cap) {
                break;
            }
            if (n > 0) {
                out[n++] = ',';
            }
            memcpy(out + n, h->sources[i].name, nl);
            n += nl;
            out[n++] = ':';
            n += u64_dec(c->pos[i].pos, out + n);
        }
    }
    return n;
}

static bool wanted(const client_t *c, const hev_t *ev)
{
    if (!(c->area[0] == '\0' || strncmp(ev->area, c->area, strlen(c->area)) == 0)) {
        return false;
    }
    if (c->topic_count == 0) {
        return true;
    }
    for (int k = 0; k < c->topic_count; k++) {
        if (strncmp(ev->topic, c->topics[k], strlen(c->topics[k])) == 0) {
            return true;
        }
    }
    return false;
}

static void close_client(client_t *c, const char *reason);

/* Bytes queued for the client, 0 when the stream refused them (it is being
 * closed: on_close follows). */
static size_t write_event(client_t *c, hev_t *ev)
{
    hev_render(ev, NULL);
    zgw_hub_t *h = c->hub;
    char id[ZGW_SINCE_BYTES_MAX];
    size_t id_len = format_id(c, id, sizeof id);
    size_t tlen = strlen(ev->topic);
    scratch_reserve(h, id_len + tlen + ev->json_len + 96);
    char *o = h->scratch;
    size_t n = 0;
#define PUT(s, l) (memcpy(o + n, (s), (l)), n += (l))
#define PUTS(lit) PUT(lit, sizeof lit - 1)
    if (c->websocket) {
        PUTS("{\"type\":\"event\",\"id\":\"");
        PUT(id, id_len);
        PUTS("\",\"topic\":\"");
        PUT(ev->topic, tlen);
        PUTS("\",\"event\":");
        PUT(ev->json, ev->json_len);
        PUTS("}");
    } else {
        PUTS("id: ");
        PUT(id, id_len);
        PUTS("\ndata: ");
        PUT(ev->json, ev->json_len);
        PUTS("\n\n");
    }
#undef PUTS
#undef PUT
    if (zhttp_stream_write(c->stream, h->scratch, n) != 0) {
        c->closing = true; /* the layer cut it; nothing more goes in */
        return 0;
    }
    h->stats.deliveries_total++;
    h->stats.bytes_total += (uint64_t)n;
    return n;
}

/* Pass one event: written when it matches, the position moves either way.
 * Returns the bytes queued. */
static size_t deliver(client_t *c, int i, hev_t *ev)
{
    c->pos[i].pos = ev->seq;
    if (!c->closing && wanted(c, ev)) {
        return write_event(c, ev);
    }
    return 0;
}

static void on_client_fetch(void *ctx, const Zhili__V1__Reply *r);
static void pump_client(client_t *c);

static void start_fetch(client_t *c, int i)
{
    zgw_hub_t *h = c->hub;
    cpos_t *p = &c->pos[i];
    if (zclock_mono_ms() < p->fetch_retry_mono_ms) {
        return;
    }
    h->stats.fetches_total++;
    send_replay(h, h->sources[i].name, p->pos + 1, on_client_fetch, p, &p->fetch_call);
    if (p->fetch_call == 0) {
        p->fetch_retry_mono_ms = zclock_mono_ms() + 1000;
    }
}

/* Older events than the ring holds come from the source's outbox. */
static void on_client_fetch(void *ctx, const Zhili__V1__Reply *r)
{
    cpos_t *p = ctx;
    client_t *c = p->client;
    p->fetch_call = 0;
    uint64_t before = p->pos;
    size_t pending = zhttp_stream_pending(c->stream);
    if (r->status == ZHILI__V1__STATUS__STATUS_OK &&
        r->result_case == ZHILI__V1__REPLY__RESULT_REPLAY) {
        /* A page goes out whole unless it is unusually large: past
         * ZGW_FETCH_PENDING_BYTES the rest is dropped (the position stays
         * before it) and fetched again once the client has read. */
        for (size_t k = 0; k < r->replay->n_events && pending < ZGW_FETCH_PENDING_BYTES &&
                           !c->closing;
             k++) {
            Zhili__V1__Event *ev =
                unpack_event(r->replay->events[k].data, r->replay->events[k].len);
            if (ev != NULL && ev->seq == p->pos + 1) {
                ev_head_t hd = head_of(ev);
                hev_t h = hev_new(&hd, r->replay->events[k].data, r->replay->events[k].len);
                hev_render(&h, ev);
                pending += deliver(c, p->index, &h);
                hev_free(&h);
            }
            if (ev != NULL) {
                zcodec_free(&ev->base);
            }
        }
    }
    if (p->pos == before && pending < c->hub->send_watermark) {
        /* No progress (source down or busy): try again shortly. */
        p->fetch_retry_mono_ms = zclock_mono_ms() + 1000;
    }
    pump_client(c);
}

static void client_set_held(client_t *c, bool held)
{
    if (c->held != held) {
        c->held = held;
        if (held) {
            c->hub->held_count++;
        } else {
            c->hub->held_count--;
        }
    }
}

static void drop_slow(client_t *c, const char *reason)
{
    c->hub->stats.dropped_slow_total++;
    zhttp_stream_discard(c->stream); /* the reason goes next, not after the backlog */
    close_client(c, reason);
}

/* How far behind the client is in source i's ring, in delivery bytes. */
static uint64_t ring_lag(zgw_hub_t *h, const hsource_t *s, uint64_t pos)
{
    if (pos >= s->last) {
        return 0; /* caught up, or an id from ahead of what the ring has seen */
    }
    uint64_t at = pos == s->base ? s->cum_base : ring_at(h, (hsource_t *)s, pos)->cum;
    return s->cum_last - at;
}

/* Backpressure: events go from the shared ring into a client's stream only
 * while fewer than send_watermark bytes wait there, and the pump comes back
 * (every loop turn while the client is held) as the socket drains. So the
 * gateway holds at most about a watermark per client, not a copy of every
 * backlog; a client falls behind in the ring instead. It is slow, and closed
 * with a final event, when its unsent bytes plus what it has not yet been
 * passed in the ring exceed client_queue_bytes, or when the ring drops
 * events it has not been passed. */
static void pump_client(client_t *c)
{
    zgw_hub_t *h = c->hub;
    if (c->closing) {
        client_set_held(c, false);
        return;
    }
    size_t pending = zhttp_stream_pending(c->stream);
    uint64_t behind = pending;
    bool held = false;
    int n = h->source_count;
    c->rr = n > 0 ? (c->rr + 1) % n : 0;
    for (int k = 0; k < n && !c->closing; k++) {
        int i = (c->rr + k) % n;
        hsource_t *s = &h->sources[i];
        cpos_t *p = &c->pos[i];
        if (!s->started || !p->known || p->fetch_call != 0) {
            continue;
        }
        if (p->pos < s->base) {
            if (p->live) {
                char reason[160];
                snprintf(reason, sizeof reason,
                         "slow client: fell behind the %zu most recent %s events the gateway "
                         "keeps", h->cfg.ring_events, s->name);
                drop_slow(c, reason);
                break;
            }
            if (pending < h->send_watermark) {
                start_fetch(c, i);
            } else {
                held = true; /* fetch on as the socket drains */
            }
            continue;
        }
        p->live = true;
        while (p->pos < s->last && pending < h->send_watermark && !c->closing) {
            pending += deliver(c, i, ring_at(h, s, p->pos + 1));
        }
        held = held || (p->pos < s->last && !c->closing);
        behind += ring_lag(h, s, p->pos);
    }
    if (!c->closing && behind > h->cfg.client_queue_bytes) {
        char reason[128];
        snprintf(reason, sizeof reason, "slow client: more than %zu bytes waiting to be sent",
                 h->cfg.client_queue_bytes);
        drop_slow(c, reason);
    }
    client_set_held(c, held && !c->closing);
}

/* ---- client lifecycle --------------------------------------------------- */

/* Tell the client why, then close; on_stream_close frees it. */
static void close_client(client_t *c, const char *reason)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    char buf[256];
    if (c->websocket) {
        int n = snprintf(buf, sizeof buf, "{\"type\":\"closed\",\"reason\":\"%s\"}", reason);
        zhttp_stream_write(c->stream, buf, (size_t)n);
        zhttp_stream_close(c->stream, 1008, reason);
    } else {
        int n = snprintf(buf, sizeof buf, "event: closed\ndata: {\"reason\":\"%s\"}\n\n", reason);
        zhttp_stream_write(c->stream, buf, (size_t)n);
        zhttp_stream_close(c->stream, 0, reason);
    }
}

static void on_stream_close(void *ctx, zhttp_stream_t *stream)
{
    (void)stream;
    client_t *c = ctx;
    zgw_hub_t *h = c->hub;
    client_set_held(c, false);
    for (int i = 0; i < ZGW_SOURCES_MAX; i++) {
        if (c->pos[i].fetch_call != 0) {
            zgw_bus_cancel(h->bus, c->pos[i].fetch_call);
        }
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        h->clients = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    h->stats.clients--;
    free(c);
}

static void on_ws_message(void *ctx, zhttp_stream_t *stream, bool text, const void *data,
                          size_t len)
{
    /* Clients have nothing to say on the stream; pings are the layer's. */
    (void)ctx;
    (void)stream;
    (void)text;
    (void)data;
    (void)len;
}

static void on_heartbeat_timer(uv_timer_t *t)
{
    zgw_hub_t *h = t->data;
    char buf[96];
    int64_t now = zclock_wall_ms();
    for (client_t *c = h->clients; c != NULL; c = c->next) {
        if (c->closing) {
            continue;
        }
        int n = c->websocket ? snprintf(buf, sizeof buf, "{\"type\":\"heartbeat\",\"ts_ms\":%lld}",
                                        (long long)now)
                             : snprintf(buf, sizeof buf, "event: heartbeat\ndata: {\"ts_ms\":%lld}\n\n",
                                        (long long)now);
        zhttp_stream_write(c->stream, buf, (size_t)n);
    }
}

static void on_housekeep(uv_timer_t *t)
{
    zgw_hub_t *h = t->data;
    for (int i = 0; i < h->source_count; i++) {
        hsource_t *s = &h->sources[i];
        if (s->started && s->known_last > s->last) {
            hub_replay(h, i);
        }
    }
    h->dirty = true; /* retries of client fetches happen in the pump */
}

/* New events (dirty) reach every client; otherwise only held clients are
 * pumped, to continue as their sockets drain. */
static void on_pump(uv_check_t *chk)
{
    zgw_hub_t *h = chk->data;
    if (!h->dirty && h->held_count == 0) {
        return;
    }
    bool all = h->dirty;
    h->dirty = false;
    client_t *c = h->clients;
    while (c != NULL) {
        client_t *next = c->next; /* pump may close c (freed later, in on_close) */
        if (all || c->held) {
            pump_client(c);
        }
        c = next;
    }
}

/* ---- starting a stream -------------------------------------------------- */

static bool topic_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
           ch == '-' || ch == '@' || ch == '~';
}

static int parse_topics(client_t *c, const char *topics, char *msg, size_t msg_len)
{
    const char *p = topics ? topics : "";
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len > ZGW_TOPIC_BYTES_MAX || c->topic_count == ZGW_TOPICS_MAX) {
            snprintf(msg, msg_len, "topics are 1 to %d comma-separated prefixes of at most %d "
                     "bytes, such as petitions.,funds.deposited",
                     ZGW_TOPICS_MAX, ZGW_TOPIC_BYTES_MAX);
            return ZE_INVALID;
        }
        for (size_t k = 0; k < len; k++) {
            if (!topic_char(p[k])) {
                snprintf(msg, msg_len, "a topic prefix may hold a-z, 0-9 and . _ - @ ~ only");
                return ZE_INVALID;
            }
        }
        memcpy(c->topics[c->topic_count++], p, len);
        p += len + (end ? 1 : 0);
    }
    return 0;
}

/* "source:seq,source:seq" -> positions (sources created as needed). */
static int parse_since(zgw_hub_t *h, client_t *c, const char *since, size_t len, char *msg,
                       size_t msg_len)
{
    if (len > ZGW_SINCE_BYTES_MAX) {
        snprintf(msg, msg_len, "the event id is longer than %d bytes", ZGW_SINCE_BYTES_MAX);
        return ZE_INVALID;
    }
    size_t at = 0;
    while (at < len) {
        const char *item = since + at;
        const char *comma = memchr(item, ',', len - at);
        size_t ilen = comma ? (size_t)(comma - item) : len - at;
        const char *colon = memchr(item, ':', ilen);
        char num[24], name[ZBUS_NAME_BYTES_MAX + 1] = "";
        size_t nlen = colon ? ilen - (size_t)(colon + 1 - item) : 0;
        size_t name_len = colon ? (size_t)(colon - item) : 0;
        if (name_len > 0 && name_len <= ZBUS_NAME_BYTES_MAX) {
            memcpy(name, item, name_len);
            name[name_len] = '\0';
        }
        int i = zbus_name_valid(name) ? source_find(h, name, name_len, true) : -1;
        char *end = NULL;
        if (nlen > 0 && nlen < sizeof num) {
            memcpy(num, colon + 1, nlen);
            num[nlen] = '\0';
        }
        errno = 0;
        unsigned long long seq = nlen > 0 && nlen < sizeof num ? strtoull(num, &end, 10) : 0;
        if (i < 0 || nlen == 0 || nlen >= sizeof num || errno != 0 || *end != '\0' ||
            num[0] == '-') {
            snprintf(msg, msg_len, "an event id is a list of source:seq pairs, such as "
                     "petitions:120,funds:33");
            return ZE_INVALID;
        }
        c->pos[i].known = true;
        c->pos[i].pos = seq;
        at += ilen + (comma ? 1 : 0);
    }
    return 0;
}

static client_t *client_new(zgw_hub_t *h, const zgw_stream_req_t *sr)
{
    client_t *c = calloc(1, sizeof *c);
    ZASSERT(c != NULL);
    c->hub = h;
    c->websocket = sr->websocket;
    snprintf(c->area, sizeof c->area, "%s", sr->area ? sr->area : "");
    for (int i = 0; i < ZGW_SOURCES_MAX; i++) {
        c->pos[i].client = c;
        c->pos[i].index = i;
    }
    for (int i = 0; i < h->source_count; i++) {
        if (h->sources[i].started) {
            c->pos[i].known = true; /* from now, unless the id says otherwise */
            c->pos[i].pos = h->sources[i].last;
        }
    }
    return c;
}

int zgw_hub_serve(zgw_hub_t *h, zhttp_req_t *req, const zgw_stream_req_t *sr, char *field,
                  size_t field_len, char *msg, size_t msg_len)
{
    if (h->stats.clients >= ZGW_CLIENTS_MAX) {
        snprintf(msg, msg_len, "the gateway serves the most streams it can (%d); try later",
                 ZGW_CLIENTS_MAX);
        return ZE_UNAVAILABLE;
    }
    client_t *c = client_new(h, sr);
    int rc = parse_topics(c, sr->topics, msg, msg_len);
    snprintf(field, field_len, "topics");
    if (rc == 0 && sr->since != NULL && sr->since_len > 0) {
        rc = parse_since(h, c, sr->since, sr->since_len, msg, msg_len);
        snprintf(field, field_len, sr->websocket ? "since" : "Last-Event-ID");
    }
    if (rc != 0) {
        free(c);
        return rc;
    }
    zhttp_stream_cbs_t cbs = {.ctx = c, .on_close = on_stream_close, .on_message = on_ws_message};
    if (!sr->websocket) {
        zhttp_req_add_header(req, "cache-control", "no-cache");
        zhttp_req_add_header(req, "x-accel-buffering", "no");
    }
    c->stream = sr->websocket ? zhttp_ws_upgrade(req, &cbs)
                              : zhttp_stream_start(req, "text/event-stream; charset=utf-8", &cbs);
    if (c->stream == NULL) {
        free(c);
        return 0; /* the layer answered (a bad handshake) or the client left */
    }
    c->next = h->clients;
    if (h->clients != NULL) {
        h->clients->prev = c;
    }
    h->clients = c;
    h->stats.clients++;
    h->stats.clients_total++;
    if (!sr->websocket) {
        static const char hello[] = "retry: 1000\n: zhili event stream\n\n";
        zhttp_stream_write(c->stream, hello, sizeof hello - 1);
    }
    pump_client(c);
    return 0;
}

/* ---- the hub ------------------------------------------------------------ */

zgw_hub_t *zgw_hub_new(uv_loop_t *loop, zgw_bus_t *bus, const zgw_hub_config_t *cfg)
{
    zgw_hub_t *h = calloc(1, sizeof *h);
    ZASSERT(h != NULL);
    h->loop = loop;
    h->bus = bus;
    h->cfg = *cfg;
    h->send_watermark = cfg->client_queue_bytes / 4 < ZGW_SEND_WATERMARK_BYTES
                            ? cfg->client_queue_bytes / 4
                            : ZGW_SEND_WATERMARK_BYTES;
    uv_timer_init(loop, &h->housekeep);
    h->housekeep.data = h;
    uv_timer_start(&h->housekeep, on_housekeep, HOUSEKEEP_MS, HOUSEKEEP_MS);
    uv_timer_init(loop, &h->heartbeat);
    h->heartbeat.data = h;
    uv_timer_start(&h->heartbeat, on_heartbeat_timer, (uint64_t)cfg->heartbeat_ms,
                   (uint64_t)cfg->heartbeat_ms);
    uv_check_init(loop, &h->pump);
    h->pump.data = h;
    uv_check_start(&h->pump, on_pump);
    return h;
}

void zgw_hub_close(zgw_hub_t *h)
{
    for (client_t *c = h->clients; c != NULL; c = c->next) {
        close_client(c, "the gateway is shutting down");
    }
    uv_timer_stop(&h->housekeep);
    uv_close((uv_handle_t *)&h->housekeep, NULL);
    uv_timer_stop(&h->heartbeat);
    uv_close((uv_handle_t *)&h->heartbeat, NULL);
    uv_check_stop(&h->pump);
    uv_close((uv_handle_t *)&h->pump, NULL);
}

void zgw_hub_destroy(zgw_hub_t **self_p)
{
    zgw_hub_t *h = *self_p;
    if (h == NULL) {
        return;
    }
    for (int i = 0; i < h->source_count; i++) {
        hsource_t *s = &h->sources[i];
        for (uint64_t q = s->base + 1; q <= s->last; q++) {
            hev_free(ring_at(h, s, q));
        }
        free(s->ring);
    }
    free(h->scratch);
    free(h);
    *self_p = NULL;
}

void zgw_hub_stats(const zgw_hub_t *self, zgw_hub_stats_t *out)
{
    *out = self->stats;
}
