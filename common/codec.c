/* codec: protobuf pack/unpack with explicit size limits. Both directions refuse
 * oversize input before touching memory, so a peer can never make us allocate
 * more than the bound.
 *
 * Envelopes. Command, Reply and Event carry a few fields and one oneof of a
 * hundred members. protobuf-c's size, pack and free walk every field
 * descriptor, members included, and its unpack walks them too; that was a
 * fifth of the gateway's work per request for messages of four fields. For a
 * descriptor with exactly one oneof of at least ZCODEC_ONEOF_BIG_MEMBERS
 * members (an envelope) we build once a clone descriptor without those
 * members, let protobuf-c work on the clone, and handle the one active member
 * apart:
 *   - size and pack: protobuf-c writes the fields in the order of the fields
 *     array (by number), then the unknown fields. We write the same order in
 *     three parts: the envelope fields numbered below the member, the member,
 *     the other envelope fields and the unknown fields. The envelope parts are
 *     protobuf-c's size and pack of a shallow copy of the message whose
 *     descriptor is a slice of the clone (they read only magic, n_fields and
 *     fields of it). A message member is written by hand as protobuf-c writes
 *     it (tag, length, then protobuf-c's pack of the sub-message, sized once
 *     instead of twice); a member of any other type by protobuf-c, with a
 *     descriptor naming that member alone. The bytes are protobuf-c's.
 *   - unpack: a scan of the top-level records finds the member's record. When
 *     it is a message, the only member record, and first or last, the rest is
 *     unpacked with the clone and the member with its own descriptor. Anything
 *     else (two member records, one in the middle, a scalar member, bytes the
 *     scan does not take) goes to protobuf-c's unpack, which decides. Either
 *     way the result is the message protobuf-c would make: malloc'd, with the
 *     original descriptor and no unknown fields beyond the input's, so the
 *     generated *_free_unpacked frees it.
 *   - free: the member by its type, then the rest through the clone.
 * What we learn of a descriptor lives in a small static table, the one piece
 * of state in this module: a cache of what the compiled-in descriptors say,
 * never a message. It is filled under a mutex and read without one: an entry
 * is complete before the count that publishes it is stored (release) and never
 * changes after, so a thread that reads the count (acquire) sees it whole. */
#include "common/codec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* The fast unpack leaves the bytes to protobuf-c's unpack; not a ZE_ code. */
#define UNPACK_DECLINED 1
/* Longest tag and length varints the record scan reads: field numbers below
 * 2^25 and lengths below 2^28, beyond ZCODEC_MSG_BYTES_MAX. Longer ones are
 * valid protobuf and left to protobuf-c. */
#define SCAN_TAG_BYTES_MAX 4
#define SCAN_LENGTH_BYTES_MAX 4
#define SCAN_VARINT_BYTES_MAX 10 /* as protobuf-c reads a varint value */

_Static_assert(ZCODEC_MSG_BYTES_MAX < (1u << (7 * SCAN_LENGTH_BYTES_MAX)),
               "a length the scan cannot read is over the bus limit anyway");

/* An envelope descriptor: the original, its clone without the big oneof's
 * members and the arrays the clone points into. */
typedef struct {
    const ProtobufCMessageDescriptor *desc;
    ProtobufCMessageDescriptor clone;
    unsigned case_offset; /* of the big oneof's case, a uint32_t */
    uint64_t low_ids;     /* bit n set: field n < 64 is outside the big oneof */
    ProtobufCFieldDescriptor fields[ZCODEC_ENVELOPE_FIELDS_MAX];
    unsigned by_name[ZCODEC_ENVELOPE_FIELDS_MAX];
    ProtobufCIntRange ranges[ZCODEC_ENVELOPE_FIELDS_MAX + 1]; /* and the end marker */
} envelope_t;

/* A descriptor seen with ZCODEC_ONEOF_BIG_MEMBERS fields or more. */
typedef struct {
    const ProtobufCMessageDescriptor *desc;
    const envelope_t *env; /* NULL: not an envelope, protobuf-c's paths serve it */
} seen_t;

static envelope_t envelopes[ZCODEC_ENVELOPES_MAX];
static unsigned envelope_count; /* under seen_lock */
static seen_t seen[ZCODEC_DESCS_SEEN_MAX];
static atomic_uint seen_count; /* seen[0, seen_count) are complete */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- learning a descriptor (once, under seen_lock) ---------------------- */

static bool member_of(const ProtobufCFieldDescriptor *f, unsigned case_offset)
{
    return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 && f->quantifier_offset == case_offset;
}

static unsigned oneof_members(const ProtobufCMessageDescriptor *desc, unsigned case_offset)
{
    unsigned n = 0;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        n += member_of(&desc->fields[i], case_offset);
    }
    return n;
}

/* 0 with the case offset of desc's one big oneof; -1 when it has none or more
 * than one. Quadratic in the fields, once per descriptor. */
static int big_oneof_find(const ProtobufCMessageDescriptor *desc, unsigned *case_offset)
{
    bool found = false;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0 ||
            (found && f->quantifier_offset == *case_offset)) {
            continue;
        }
        if (oneof_members(desc, f->quantifier_offset) >= ZCODEC_ONEOF_BIG_MEMBERS) {
            if (found) {
                return -1;
            }
            found = true;
            *case_offset = f->quantifier_offset;
        }
    }
    return found ? 0 : -1;
}

/* Copies the fields outside the big oneof; orig[i] is the index in the
 * original of env->fields[i]. Their count, or 0 when there are none, too many,
 * or they are not in number order (field ranges rely on it). */
static unsigned envelope_fields_copy(envelope_t *env, unsigned orig[ZCODEC_ENVELOPE_FIELDS_MAX])
{
    const ProtobufCMessageDescriptor *desc = env->desc;
    unsigned n = 0;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (member_of(f, env->case_offset)) {
            continue;
        }
        if (n == ZCODEC_ENVELOPE_FIELDS_MAX || (n > 0 && f->id <= env->fields[n - 1].id)) {
            return 0;
        }
        env->fields[n] = *f;
        orig[n] = i;
        if (f->id < 64) {
            env->low_ids |= UINT64_C(1) << f->id;
        }
        n++;
    }
    return n;
}

/* The clone's name index: the original's without the members, renumbered.
 * -1 when the original's does not list each of the n fields once. */
static int envelope_names_index(envelope_t *env, const unsigned *orig, unsigned n)
{
    const unsigned *by_name = env->desc->fields_sorted_by_name;
    unsigned m = 0;
    for (unsigned k = 0; k < env->desc->n_fields; k++) {
        for (unsigned j = 0; j < n; j++) {
            if (orig[j] == by_name[k] && m < n) {
                env->by_name[m++] = j;
                break;
            }
        }
    }
    return m == n ? 0 : -1;
}

/* protobuf-c's field ranges over the clone's n fields: one range per run of
 * consecutive numbers, then an end marker holding n. The range count. */
static unsigned envelope_ranges(envelope_t *env, unsigned n)
{
    unsigned r = 0;
    for (unsigned i = 0; i < n; i++) {
        if (i == 0 || env->fields[i].id != env->fields[i - 1].id + 1) {
            env->ranges[r].start_value = (int)env->fields[i].id;
            env->ranges[r].orig_index = i;
            r++;
        }
    }
    env->ranges[r].start_value = 0;
    env->ranges[r].orig_index = n;
    return r;
}

/* 0 with env describing desc as an envelope; -1 when desc is not one. The
 * clone keeps desc's message_init, so a message the clone unpacks gets the
 * original descriptor; the message must fit the stack copy made to pack. */
static int envelope_build(const ProtobufCMessageDescriptor *desc, envelope_t *env)
{
    memset(env, 0, sizeof *env);
    env->desc = desc;
    if (desc->message_init == NULL || desc->sizeof_message > ZCODEC_ENVELOPE_BYTES_MAX ||
        big_oneof_find(desc, &env->case_offset) != 0) {
        return -1;
    }
    unsigned orig[ZCODEC_ENVELOPE_FIELDS_MAX];
    unsigned n = envelope_fields_copy(env, orig);
    if (n == 0) {
        return -1;
    }
    env->clone = *desc;
    env->clone.n_fields = n;
    env->clone.fields = env->fields;
    env->clone.fields_sorted_by_name = NULL;
    if (desc->fields_sorted_by_name != NULL) {
        if (envelope_names_index(env, orig, n) != 0) {
            return -1;
        }
        env->clone.fields_sorted_by_name = env->by_name;
    }
    env->clone.n_field_ranges = envelope_ranges(env, n);
    env->clone.field_ranges = env->ranges;
    return 0;
}

/* Looks desc up again under the lock (another thread may have learned it),
 * else learns it. With the table full, desc is not remembered and takes
 * protobuf-c's paths; it is looked at again, under the lock, on each use. */
static const envelope_t *envelope_learn(const ProtobufCMessageDescriptor *desc)
{
    int rc = pthread_mutex_lock(&seen_lock);
    ZASSERT(rc == 0);
    unsigned n = atomic_load_explicit(&seen_count, memory_order_relaxed);
    const envelope_t *env = NULL;
    unsigned i = 0;
    while (i < n && seen[i].desc != desc) {
        i++;
    }
    if (i < n) {
        env = seen[i].env;
    } else if (n < ZCODEC_DESCS_SEEN_MAX) {
        if (envelope_count < ZCODEC_ENVELOPES_MAX &&
            envelope_build(desc, &envelopes[envelope_count]) == 0) {
            env = &envelopes[envelope_count++];
        }
        seen[n].desc = desc;
        seen[n].env = env;
        atomic_store_explicit(&seen_count, n + 1, memory_order_release);
    }
    rc = pthread_mutex_unlock(&seen_lock);
    ZASSERT(rc == 0);
    return env;
}

/* desc's envelope, or NULL when protobuf-c's paths serve it. A oneof of
 * ZCODEC_ONEOF_BIG_MEMBERS needs as many fields: smaller descriptors are not
 * looked up at all. */
static const envelope_t *envelope_find(const ProtobufCMessageDescriptor *desc)
{
    if (desc->n_fields < ZCODEC_ONEOF_BIG_MEMBERS) {
        return NULL;
    }
    unsigned n = atomic_load_explicit(&seen_count, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        if (seen[i].desc == desc) {
            return seen[i].env;
        }
    }
    return envelope_learn(desc);
}

/* ---- the active member -------------------------------------------------- */

/* The member msg's big oneof holds, or NULL when none: protobuf-c writes and
 * frees no member when the case names none of them. */
static const ProtobufCFieldDescriptor *member_active(const envelope_t *env,
                                                     const ProtobufCMessage *msg)
{
    uint32_t id;
    memcpy(&id, (const char *)msg + env->case_offset, sizeof id);
    if (id == 0) {
        return NULL;
    }
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(env->desc, id);
    return f != NULL && member_of(f, env->case_offset) ? f : NULL;
}

static void member_attach(const envelope_t *env, ProtobufCMessage *msg,
                          const ProtobufCFieldDescriptor *f, ProtobufCMessage *sub)
{
    uint32_t id = f->id;
    memcpy((char *)msg + f->offset, &sub, sizeof sub);
    memcpy((char *)msg + env->case_offset, &id, sizeof id);
}

/* Frees the active member as protobuf_c_message_free_unpacked would (a
 * default value is never freed) and sets the case to none. */
static void member_free(const envelope_t *env, ProtobufCMessage *msg)
{
    const ProtobufCFieldDescriptor *f = member_active(env, msg);
    if (f == NULL) {
        return;
    }
    char *member = (char *)msg + f->offset;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        ProtobufCMessage *sub;
        memcpy(&sub, member, sizeof sub);
        if (sub != NULL && sub != f->default_value) {
            protobuf_c_message_free_unpacked(sub, NULL);
        }
    } else if (f->type == PROTOBUF_C_TYPE_STRING) {
        char *s;
        memcpy(&s, member, sizeof s);
        if (s != NULL && s != f->default_value) {
            free(s);
        }
    } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
        ProtobufCBinaryData bd;
        memcpy(&bd, member, sizeof bd);
        const ProtobufCBinaryData *def = f->default_value;
        if (bd.data != NULL && (def == NULL || bd.data != def->data)) {
            free(bd.data);
        }
    }
    uint32_t none = 0;
    memcpy((char *)msg + env->case_offset, &none, sizeof none);
}

/* ---- size and pack ------------------------------------------------------ */

/* A message as protobuf-c's size and pack see it, in parts (see the top): a
 * copy whose descriptor is switched to each part in turn. */
typedef struct {
    union {
        ProtobufCMessage base;
        max_align_t align;
        unsigned char bytes[ZCODEC_ENVELOPE_BYTES_MAX];
    } view;
    const envelope_t *env;
    unsigned n_unknown;
    unsigned below;                         /* envelope fields numbered below the member */
    const ProtobufCFieldDescriptor *member; /* NULL when none is written */
    const ProtobufCMessage *sub;            /* the member when it is a message */
    size_t sub_bytes;                       /* its packed size, from the size pass */
} split_t;

static size_t varint_bytes(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t varint_write(uint64_t v, uint8_t *out)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static void split_init(split_t *s, const envelope_t *env, const ProtobufCMessage *msg)
{
    memcpy(&s->view, msg, env->desc->sizeof_message);
    s->env = env;
    s->n_unknown = msg->n_unknown_fields;
    s->below = 0;
    s->sub = NULL;
    s->sub_bytes = 0;
    s->member = member_active(env, msg);
    if (s->member == NULL) {
        return;
    }
    if (s->member->type == PROTOBUF_C_TYPE_MESSAGE || s->member->type == PROTOBUF_C_TYPE_STRING) {
        const void *ptr;
        memcpy(&ptr, (const char *)msg + s->member->offset, sizeof ptr);
        if (ptr == NULL || ptr == s->member->default_value) {
            s->member = NULL; /* protobuf-c writes no such member */
            return;
        }
        s->sub = s->member->type == PROTOBUF_C_TYPE_MESSAGE ? ptr : NULL;
    }
    unsigned n = env->clone.n_fields;
    if (env->fields[n - 1].id < s->member->id) {
        s->below = n; /* the usual layout: the envelope fields first */
        return;
    }
    while (env->fields[s->below].id < s->member->id) {
        s->below++;
    }
}

/* protobuf-c's size (buf NULL) or pack of the copy with n fields only, plus
 * the unknown fields when `unknown`. protobuf-c's size and pack read only
 * magic, n_fields and fields of the descriptor; the part lives on the stack
 * for this one call. */
static size_t split_generic(split_t *s, const ProtobufCFieldDescriptor *fields, unsigned n,
                            bool unknown, uint8_t *buf)
{
    if (n == 0 && (!unknown || s->n_unknown == 0)) {
        return 0;
    }
    ProtobufCMessageDescriptor part = {
        .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
        .name = s->env->desc->name,
        .n_fields = n,
        .fields = fields,
    };
    s->view.base.descriptor = &part;
    s->view.base.n_unknown_fields = unknown ? s->n_unknown : 0;
    size_t len = buf == NULL ? protobuf_c_message_get_packed_size(&s->view.base)
                             : protobuf_c_message_pack(&s->view.base, buf);
    s->view.base.descriptor = NULL;
    return len;
}

/* A message member as protobuf-c writes it: tag, length, the message. The
 * sub-message is sized once, in the size pass; protobuf-c sizes it twice. */
static size_t split_member(split_t *s, uint8_t *buf)
{
    if (s->member == NULL) {
        return 0;
    }
    if (s->sub == NULL) {
        return split_generic(s, s->member, 1, false, buf);
    }
    uint64_t tag = (uint64_t)s->member->id << 3 | PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    if (buf == NULL) {
        s->sub_bytes = protobuf_c_message_get_packed_size(s->sub);
        return varint_bytes(tag) + varint_bytes(s->sub_bytes) + s->sub_bytes;
    }
    size_t len = varint_write(tag, buf);
    len += varint_write(s->sub_bytes, buf + len);
    size_t written = protobuf_c_message_pack(s->sub, buf + len);
    ZASSERT(written == s->sub_bytes);
    return len + written;
}

/* Size (buf NULL) or pack in number order: the envelope fields below the
 * member, the member, the other fields and the unknown ones. The size comes
 * first: it records the member's size for the pack. */
static size_t split_write(split_t *s, uint8_t *buf)
{
    const envelope_t *env = s->env;
    size_t len = split_generic(s, env->fields, s->below, false, buf);
    len += split_member(s, buf == NULL ? NULL : buf + len);
    len += split_generic(s, env->fields + s->below, env->clone.n_fields - s->below, true,
                         buf == NULL ? NULL : buf + len);
    return len;
}

int zcodec_pack(const ProtobufCMessage *msg, size_t max_bytes, uint8_t **out, size_t *out_len)
{
    ZASSERT(msg != NULL && out != NULL && out_len != NULL);
    *out = NULL;
    *out_len = 0;
    if (max_bytes == 0) {
        max_bytes = ZCODEC_MSG_BYTES_MAX;
    }
    const envelope_t *env = envelope_find(msg->descriptor);
    split_t split;
    if (env != NULL) {
        split_init(&split, env, msg);
    }
    /* Size first: a message over the bus limit is refused before allocating. */
    size_t size = env != NULL ? split_write(&split, NULL) : protobuf_c_message_get_packed_size(msg);
    if (size > max_bytes) {
        return ZE_INVALID;
    }
    /* malloc(0) may return NULL; an empty message still gets a valid buffer. */
    uint8_t *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL) {
        return ZE_INTERNAL;
    }
    size_t written = env != NULL ? split_write(&split, buf) : protobuf_c_message_pack(msg, buf);
    ZASSERT(written == size);
    *out = buf;
    *out_len = written;
    return ZE_OK;
}

/* ---- unpack ------------------------------------------------------------- */

/* One top-level record: the tag at start, the value (past a length prefix)
 * at value, the next record at end. */
typedef struct {
    size_t start, value, end;
    uint32_t id;
    unsigned wire_type;
} record_t;

/* The length of the varint at data[at..len) if it ends within bytes_max
 * bytes, else 0. */
static size_t varint_scan(const uint8_t *data, size_t len, size_t at, size_t bytes_max,
                          uint64_t *value)
{
    if (at < len && data[at] < 0x80) {
        *value = data[at]; /* most tags and lengths: one byte */
        return 1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < bytes_max && at + i < len; i++) {
        v |= (uint64_t)(data[at + i] & 0x7f) << (7 * i);
        if ((data[at + i] & 0x80) == 0) {
            *value = v;
            return i + 1;
        }
    }
    return 0;
}

/* Delimits the record at data[at..len) as protobuf-c's unpack does. -1 for
 * what the scan does not take, malformed or only unusual (field 0, a long
 * tag or length, groups): protobuf-c's unpack then decides. */
static int record_scan(const uint8_t *data, size_t len, size_t at, record_t *r)
{
    uint64_t tag;
    uint64_t n;
    size_t used = varint_scan(data, len, at, SCAN_TAG_BYTES_MAX, &tag);
    if (used == 0 || tag >> 3 == 0) {
        return -1;
    }
    r->start = at;
    r->id = (uint32_t)(tag >> 3);
    r->wire_type = (unsigned)(tag & 7);
    r->value = at + used;
    size_t rest = len - r->value;
    if (r->wire_type == PROTOBUF_C_WIRE_TYPE_VARINT) {
        used = varint_scan(data, len, r->value, SCAN_VARINT_BYTES_MAX, &n);
        r->end = r->value + used;
        return used > 0 ? 0 : -1;
    } else if (r->wire_type == PROTOBUF_C_WIRE_TYPE_64BIT ||
               r->wire_type == PROTOBUF_C_WIRE_TYPE_32BIT) {
        size_t width = r->wire_type == PROTOBUF_C_WIRE_TYPE_64BIT ? 8 : 4;
        r->end = r->value + width;
        return rest >= width ? 0 : -1;
    } else if (r->wire_type == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) {
        used = varint_scan(data, len, r->value, SCAN_LENGTH_BYTES_MAX, &n);
        if (used == 0 || n > rest - used) {
            return -1;
        }
        r->value += used;
        r->end = r->value + (size_t)n;
        return 0;
    }
    return -1;
}

int zcodec_peek(const uint8_t *data, size_t len, zcodec_field_t *fields, size_t n)
{
    ZASSERT(data != NULL || len == 0);
    for (size_t k = 0; k < n; k++) {
        fields[k].found = false;
    }
    size_t at = 0;
    while (at < len) {
        record_t r;
        if (record_scan(data, len, at, &r) != 0) {
            return ZE_INVALID;
        }
        for (size_t k = 0; k < n; k++) {
            zcodec_field_t *f = &fields[k];
            if (f->id != r.id) {
                continue;
            }
            if (r.wire_type == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) {
                *f = (zcodec_field_t){f->id, true, data + r.value, r.end - r.value, 0};
            } else if (r.wire_type == PROTOBUF_C_WIRE_TYPE_VARINT) {
                uint64_t v = 0;
                varint_scan(data, len, r.value, SCAN_VARINT_BYTES_MAX, &v);
                *f = (zcodec_field_t){f->id, true, NULL, 0, v};
            }
        }
        at = r.end;
    }
    return ZE_OK;
}

/* Whether id numbers one of the fields outside the big oneof: a bit for the
 * low numbers, else a scan (envelopes have few such fields); either costs
 * less than protobuf-c's lookup by number. */
static bool envelope_has(const envelope_t *env, uint32_t id)
{
    if (id < 64) {
        return (env->low_ids >> id) & 1;
    }
    for (unsigned i = 0; i < env->clone.n_fields; i++) {
        if (env->fields[i].id == id) {
            return true;
        }
    }
    return false;
}

/* 0 with *member set to the one record of env's big oneof in data and *field
 * to its descriptor (NULL when there is none); -1 when there are two or more,
 * or a record does not scan. A number outside the envelope that the original
 * knows is a member: the original holds the envelope and the members only. */
static int member_locate(const envelope_t *env, const uint8_t *data, size_t len, record_t *member,
                         const ProtobufCFieldDescriptor **field)
{
    *field = NULL;
    size_t at = 0;
    while (at < len) {
        record_t r;
        if (record_scan(data, len, at, &r) != 0) {
            return -1;
        }
        const ProtobufCFieldDescriptor *f =
            envelope_has(env, r.id) ? NULL
                                    : protobuf_c_message_descriptor_get_field(env->desc, r.id);
        if (f != NULL) {
            if (*field != NULL) {
                return -1;
            }
            *member = r;
            *field = f;
        }
        at = r.end;
    }
    return 0;
}

/* The fast unpack (see the top): ZE_OK with *out, ZE_INVALID, or
 * UNPACK_DECLINED for protobuf-c's unpack to decide. */
static int envelope_unpack(const envelope_t *env, const uint8_t *data, size_t len,
                           ProtobufCMessage **out)
{
    record_t r;
    const ProtobufCFieldDescriptor *f;
    if (member_locate(env, data, len, &r, &f) != 0) {
        return UNPACK_DECLINED;
    }
    const uint8_t *rest = data;
    size_t rest_len = len;
    if (f != NULL) {
        if (f->type != PROTOBUF_C_TYPE_MESSAGE ||
            r.wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED || (r.start != 0 && r.end != len)) {
            return UNPACK_DECLINED;
        }
        rest = r.start == 0 ? data + r.end : data;
        rest_len = len - (r.end - r.start);
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack(&env->clone, NULL, rest_len, rest);
    if (msg == NULL) {
        return ZE_INVALID;
    }
    /* desc's message_init set it already; said here, since the free relies on it. */
    msg->descriptor = env->desc;
    if (f != NULL) {
        ProtobufCMessage *sub =
            protobuf_c_message_unpack(f->descriptor, NULL, r.end - r.value, data + r.value);
        if (sub == NULL) {
            zcodec_free(msg);
            return ZE_INVALID;
        }
        member_attach(env, msg, f, sub);
    }
    *out = msg;
    return ZE_OK;
}

int zcodec_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                  size_t max_bytes, ProtobufCMessage **out)
{
    ZASSERT(desc != NULL && out != NULL);
    ZASSERT(data != NULL || len == 0);
    *out = NULL;
    if (max_bytes == 0) {
        max_bytes = ZCODEC_MSG_BYTES_MAX;
    }
    if (len > max_bytes) {
        return ZE_INVALID;
    }
    static const uint8_t empty[1] = {0};
    if (len == 0) {
        data = empty;
    }
    const envelope_t *env = envelope_find(desc);
    if (env != NULL) {
        int rc = envelope_unpack(env, data, len, out);
        if (rc != UNPACK_DECLINED) {
            return rc;
        }
    }
    /* protobuf-c does not tell malformed input from out-of-memory; bytes from
     * the wire are far more likely to be wrong, so both are ZE_INVALID. */
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, len, data);
    if (msg == NULL) {
        return ZE_INVALID;
    }
    *out = msg;
    return ZE_OK;
}

/* ---- free --------------------------------------------------------------- */

void zcodec_free(ProtobufCMessage *msg)
{
    if (msg == NULL) {
        return;
    }
    const envelope_t *env = envelope_find(msg->descriptor);
    if (env != NULL) {
        /* The clone has the same layout and no member left to visit. */
        member_free(env, msg);
        msg->descriptor = &env->clone;
    }
    protobuf_c_message_free_unpacked(msg, NULL);
}
