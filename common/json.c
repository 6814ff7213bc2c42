/* json: a generic protobuf <-> JSON mapping driven by protobuf-c descriptors.
 * The JSON rules are in codec.h; the choices made here beyond them:
 *   - float/double NaN and infinities are written as the strings "NaN",
 *     "Infinity" and "-Infinity" (JSON has no such numbers) and read back;
 *   - a proto string that is not valid UTF-8 (protobuf-c does not check) is
 *     written with each byte of an ill-formed sequence replaced by U+FFFD,
 *     because JSON text must be UTF-8 and dropping the value would hide it;
 *   - an enum number unknown to the descriptor is written as the integer but
 *     refused on input, which comes from outside and must name a real value;
 *   - null for a field means absent; null inside an array is an error, since
 *     a repeated field has no absent elements;
 *   - the nesting of the input JSON is checked before conversion, so neither
 *     pass recurses deeper than ZCODEC_JSON_DEPTH_MAX whatever the schema.
 * A message is written two ways: as a jansson tree (zjson_from_msg) and as
 * text straight from the descriptors (zjson_text_from_msg), which must equal
 * jansson's compact dump of the tree byte for byte and costs about a seventh
 * of tree, dump and delete. Both take each value from one place (slot_view,
 * utf8_piece, base64_write, field_written); the text side also copies
 * jansson's escaping and real formatting, which the unit test checks against
 * the installed library on thousands of random messages.
 * A message is read two ways too: from a jansson tree (zjson_to_msg) and,
 * for plain request bodies, straight from the text (zjson_fast_to_msg),
 * which declines whatever it cannot read exactly as json_loadb and
 * zjson_to_msg would; both convert each scalar with jin_to_slot, and the
 * unit test compares them on thousands of random and damaged texts.
 * Messages built from JSON are allocated with malloc exactly as protobuf-c's
 * unpacker would, so protobuf_c_message_free_unpacked(msg, NULL) frees them,
 * also half-built ones on the error paths. */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/err.h"

_Static_assert(sizeof(json_int_t) == sizeof(int64_t), "jansson must hold 64-bit integers");
_Static_assert(ZCODEC_ERR_BYTES >= 64, "error buffers must hold a useful sentence");

/* Longest enum value name written to JSON; longer names fall back to numbers. */
#define ZJSON_ENUM_NAME_BYTES 256

/* Conversion state: the dotted path of the value being read, and the caller's
 * buffers for the first error. Conversion stops at that first error. */
typedef struct {
    char path[ZCODEC_ERR_BYTES];
    size_t path_len;
    char *err;   /* ZCODEC_ERR_BYTES or NULL */
    char *field; /* ZCODEC_ERR_BYTES or NULL */
} jctx_t;

/* ---- path and errors --------------------------------------------------- */

/* Paths longer than the buffer are cut; the error stays readable. */
static void path_advance(jctx_t *c, int written)
{
    size_t room = sizeof c->path - 1 - c->path_len;
    size_t n = written > 0 ? (size_t)written : 0;
    c->path_len += n < room ? n : room;
}

/* Append text, cut at the buffer's end (NUL-terminated either way). The
 * path is built for every field converted, error or not, so no stdio here:
 * snprintf was ~1.5% of the gateway's CPU per request. */
static void path_append(jctx_t *c, const char *text, size_t len)
{
    size_t room = sizeof c->path - 1 - c->path_len;
    size_t n = len < room ? len : room;
    memcpy(c->path + c->path_len, text, n);
    c->path[c->path_len + n] = '\0';
    path_advance(c, (int)n);
}

static size_t path_push_key(jctx_t *c, const char *key)
{
    size_t saved = c->path_len;
    if (saved > 0) {
        path_append(c, ".", 1);
    }
    path_append(c, key, strlen(key));
    return saved;
}

/* The decimal digits of u, written backwards so that they end just before
 * end (which has room for 20); returns where they start. */
static char *u64_digits(uint64_t u, char *end)
{
    do {
        *--end = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    return end;
}

static size_t path_push_index(jctx_t *c, size_t index)
{
    size_t saved = c->path_len;
    char buf[24];
    char *end = buf + sizeof buf - 1;
    *end = ']';
    char *start = u64_digits(index, end);
    *--start = '[';
    path_append(c, start, (size_t)(buf + sizeof buf - start));
    return saved;
}

static void path_pop(jctx_t *c, size_t saved)
{
    c->path_len = saved;
    c->path[saved] = '\0';
}

static void utf8_scrub(char *s);

/* Appends n bytes to a ZCODEC_ERR_BYTES buffer holding *len bytes, cutting
 * what does not fit: a cut message still names the start of the path. */
static void buf_append(char *buf, size_t *len, const char *src, size_t n)
{
    size_t room = ZCODEC_ERR_BYTES - 1 - *len;
    size_t take = n < room ? n : room;
    memcpy(buf + *len, src, take);
    *len += take;
    buf[*len] = '\0';
}

/* Records "path: reason" where path is the first err_path_len bytes of the
 * current path (an unknown key is reported at its parent), and the whole
 * current path as the offending field. Returns ZE_INVALID. */
__attribute__((format(printf, 3, 0))) static int vfail_at(jctx_t *c, size_t err_path_len,
                                                          const char *fmt, va_list ap)
{
    char reason[ZCODEC_ERR_BYTES];
    vsnprintf(reason, sizeof reason, fmt, ap);
    if (c->err != NULL) {
        size_t len = 0;
        buf_append(c->err, &len, c->path, err_path_len);
        if (err_path_len > 0) {
            buf_append(c->err, &len, ": ", 2);
        }
        buf_append(c->err, &len, reason, strlen(reason));
        utf8_scrub(c->err);
    }
    if (c->field != NULL) {
        size_t len = 0;
        buf_append(c->field, &len, c->path, c->path_len);
        utf8_scrub(c->field);
    }
    return ZE_INVALID;
}

__attribute__((format(printf, 3, 4))) static int fail_at(jctx_t *c, size_t err_path_len,
                                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(c, err_path_len, fmt, ap);
    va_end(ap);
    return rc;
}

__attribute__((format(printf, 2, 3))) static int fail(jctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail_at(c, c->path_len, fmt, ap);
    va_end(ap);
    return rc;
}

/* Out of memory is not the input's fault: ZE_INTERNAL, not ZE_INVALID. */
static int fail_oom(jctx_t *c)
{
    fail(c, "out of memory");
    return ZE_INTERNAL;
}

/* ---- small leaves ------------------------------------------------------ */

/* ASCII only: enum and field names are identifiers, and <ctype.h> would
 * depend on the locale. */
static bool ascii_upper(char ch)
{
    return ch >= 'A' && ch <= 'Z';
}
static bool ascii_lower(char ch)
{
    return ch >= 'a' && ch <= 'z';
}
static bool ascii_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}
static char ascii_to_upper(char ch)
{
    return ascii_lower(ch) ? (char)(ch - 'a' + 'A') : ch;
}
static char ascii_to_lower(char ch)
{
    return ascii_upper(ch) ? (char)(ch - 'A' + 'a') : ch;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF), or 0 when it is ill-formed. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char b = s[0];
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    size_t len;
    if (b < 0x80) {
        return 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        lo = b == 0xE0 ? 0xA0 : lo;
        hi = b == 0xED ? 0x9F : hi;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        lo = b == 0xF0 ? 0x90 : lo;
        hi = b == 0xF4 ? 0x8F : hi;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return len;
}

static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq_len(p + i, n - i);
        if (len == 0) {
            return false;
        }
        i += len;
    }
    return true;
}

/* Error texts end up in JSON replies and logs, so they must be UTF-8 even
 * when cut mid-character or built from a hand-made key: each byte of an
 * ill-formed sequence becomes '?', in place. */
static void utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq_len(p + i, n - i);
        if (len == 0) {
            p[i] = '?';
            len = 1;
        }
        i += len;
    }
}

/* Bytes of one element of a field of type t, as protobuf-c lays it out. */
static size_t slot_bytes(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    ZASSERT(!"unknown protobuf-c field type");
    return 0;
}

/* Proto2 optional scalars and bytes carry a has_ flag at quantifier_offset;
 * strings and messages use the pointer instead (protobuf-c's layout). */
static bool field_has_flag(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_OPTIONAL && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
           f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE;
}

/* ---- enum names -------------------------------------------------------- */

/* Length of the enum type's UPPER_SNAKE prefix at the start of value_name:
 * "UrgencyLevel" matches "URGENCY_LEVEL_" of "URGENCY_LEVEL_HIGH" and
 * "HTTPCode" matches "HTTP_CODE_". 0 when value_name does not start so. */
static size_t enum_prefix_len(const char *type_name, const char *value_name)
{
    size_t j = 0;
    for (size_t i = 0; type_name[i] != '\0'; i++) {
        char ch = type_name[i];
        char prev = i > 0 ? type_name[i - 1] : '\0';
        char next = type_name[i + 1];
        bool word_start =
            i > 0 && ascii_upper(ch) &&
            (ascii_lower(prev) || ascii_digit(prev) || (ascii_upper(prev) && ascii_lower(next)));
        if (word_start) {
            if (value_name[j] != '_') {
                return 0;
            }
            j++;
        }
        if (value_name[j] != ascii_to_upper(ch)) {
            return 0;
        }
        j++;
    }
    return value_name[j] == '_' ? j + 1 : 0;
}

/* The part of value_name that JSON shows, before lower-casing. A value that
 * is nothing but the prefix keeps its whole name. */
static const char *enum_json_stem(const ProtobufCEnumDescriptor *desc, const char *value_name)
{
    size_t prefix = enum_prefix_len(desc->short_name, value_name);
    return value_name[prefix] != '\0' ? value_name + prefix : value_name;
}

const char *zjson_enum_name(const ProtobufCEnumDescriptor *desc, int value, char *buf,
                            size_t buf_len)
{
    ZASSERT(desc != NULL && buf != NULL);
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(desc, value);
    if (ev == NULL) {
        return NULL;
    }
    const char *stem = enum_json_stem(desc, ev->name);
    size_t n = strlen(stem);
    if (n >= buf_len) {
        return NULL;
    }
    for (size_t i = 0; i <= n; i++) {
        buf[i] = ascii_to_lower(stem[i]);
    }
    return buf;
}

int zjson_enum_value(const ProtobufCEnumDescriptor *desc, const char *name, int *value)
{
    ZASSERT(desc != NULL && name != NULL && value != NULL);
    /* The full proto name, aliases included. */
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(desc, name);
    if (ev != NULL) {
        *value = ev->value;
        return 0;
    }
    /* The JSON name: exactly the lower-case stem, no other spelling. */
    for (unsigned i = 0; i < desc->n_values; i++) {
        const char *stem = enum_json_stem(desc, desc->values[i].name);
        size_t k = 0;
        while (stem[k] != '\0' && ascii_to_lower(stem[k]) == name[k]) {
            k++;
        }
        if (stem[k] == '\0' && name[k] == '\0') {
            *value = desc->values[i].value;
            return 0;
        }
    }
    return -1;
}

/* ---- message -> JSON: one value, decided once -------------------------- */

/* What one proto value becomes in JSON. Both writers, the jansson tree
 * (zjson_from_msg) and the text (zjson_text_from_msg), take it from
 * slot_view, so codec.h's rules live in one place: enum names, uint64 above
 * INT64_MAX as a string, NaN and infinities as strings. */
typedef enum {
    JV_INTEGER, /* i */
    JV_REAL,    /* d, finite */
    JV_BOOL,    /* b */
    JV_STRING,  /* text, text_len: UTF-8 still to be repaired (utf8_piece) */
    JV_BYTES,   /* bytes, written as base64 */
    JV_MESSAGE, /* msg; NULL (only in a hand-built array) is JSON null */
} jv_kind_t;

typedef struct {
    jv_kind_t kind;
    bool b;
    int64_t i;
    double d;
    const char *text;
    size_t text_len;
    const ProtobufCBinaryData *bytes;
    const ProtobufCMessage *msg;
    char buf[ZJSON_ENUM_NAME_BYTES]; /* an enum's name or a uint64's digits */
} jv_t;

_Static_assert(ZJSON_ENUM_NAME_BYTES >= 21, "a jv_t holds the digits of any uint64");

static void jv_integer(jv_t *v, int64_t i)
{
    v->kind = JV_INTEGER;
    v->i = i;
}

static void jv_string(jv_t *v, const char *text, size_t text_len)
{
    v->kind = JV_STRING;
    v->text = text;
    v->text_len = text_len;
}

/* uint64 above INT64_MAX does not fit a JSON integer as jansson (and
 * JavaScript) read it, so it is written as a decimal string. */
static void jv_u64(jv_t *v, uint64_t u)
{
    if (u <= INT64_MAX) {
        jv_integer(v, (int64_t)u);
        return;
    }
    char *end = v->buf + sizeof v->buf;
    char *start = u64_digits(u, end);
    jv_string(v, start, (size_t)(end - start));
}

/* JSON has no NaN or infinities: they are written as strings. */
static void jv_double(jv_t *v, double d)
{
    if (isnan(d)) {
        jv_string(v, "NaN", 3);
    } else if (isinf(d)) {
        jv_string(v, d > 0 ? "Infinity" : "-Infinity", d > 0 ? 8 : 9);
    } else {
        v->kind = JV_REAL;
        v->d = d;
    }
}

/* A number the descriptor does not know stays a number. */
static void jv_enum(jv_t *v, const ProtobufCEnumDescriptor *desc, int value)
{
    const char *name = zjson_enum_name(desc, value, v->buf, sizeof v->buf);
    if (name != NULL) {
        jv_string(v, name, strlen(name));
    } else {
        jv_integer(v, value);
    }
}

/* The JSON value of one element of field f stored at slot. */
static void slot_view(const ProtobufCFieldDescriptor *f, const void *slot, jv_t *v)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        jv_integer(v, *(const int32_t *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        jv_integer(v, *(const uint32_t *)slot);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        jv_integer(v, *(const int64_t *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        jv_u64(v, *(const uint64_t *)slot);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        jv_double(v, *(const float *)slot);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        jv_double(v, *(const double *)slot);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        v->kind = JV_BOOL;
        v->b = *(const protobuf_c_boolean *)slot != 0;
        break;
    case PROTOBUF_C_TYPE_ENUM:
        jv_enum(v, f->descriptor, *(const int *)slot);
        break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        jv_string(v, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES:
        v->kind = JV_BYTES;
        v->bytes = slot;
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        v->kind = JV_MESSAGE;
        v->msg = *(ProtobufCMessage *const *)slot;
        break;
    default:
        ZASSERT(!"unknown protobuf-c field type");
    }
}

/* U+FFFD, which stands for each byte of an ill-formed UTF-8 sequence. */
#define UTF8_REPLACEMENT "\xEF\xBF\xBD"
#define UTF8_REPLACEMENT_BYTES 3

/* The next character of s[0..n), n > 0, as JSON shows it: a well-formed
 * sequence as it is, or U+FFFD for one byte of an ill-formed one (JSON text
 * must be UTF-8, and dropping the value would hide it). Sets *piece and
 * *piece_len; returns the bytes of s consumed. */
static size_t utf8_piece(const char *s, size_t n, const char **piece, size_t *piece_len)
{
    size_t len = utf8_seq_len((const unsigned char *)s, n);
    if (len == 0) {
        *piece = UTF8_REPLACEMENT;
        *piece_len = UTF8_REPLACEMENT_BYTES;
        return 1;
    }
    *piece = s;
    *piece_len = len;
    return len;
}

/* Bytes of the base64 text of n bytes, NUL included; 0 when that size
 * would wrap (base64 grows by 4/3). */
static size_t base64_bytes(size_t n)
{
    return n > SIZE_MAX / 2 ? 0 : sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
}

/* Writes the base64 text of b and its NUL into out, cap = base64_bytes(b->len)
 * bytes (standard alphabet, padded); returns the text's length. */
static size_t base64_write(char *out, size_t cap, const ProtobufCBinaryData *b)
{
    if (b->len == 0) {
        out[0] = '\0';
        return 0;
    }
    sodium_bin2base64(out, cap, b->data, b->len, sodium_base64_VARIANT_ORIGINAL);
    return cap - 1;
}

/* A repeated field's C array as protobuf-c lays it out. */
typedef struct {
    const char *elems;
    size_t count;
    size_t elem_bytes;
} jarray_t;

static jarray_t repeated_of(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)msg;
    return (jarray_t){
        .elems = *(const char *const *)(base + f->offset),
        .count = *(const size_t *)(base + f->quantifier_offset),
        .elem_bytes = slot_bytes(f->type),
    };
}

/* Whether field f appears in the JSON: oneof members only when selected,
 * proto2 optionals only when present, messages only when non-NULL; proto3
 * scalars and repeated fields always. */
static bool field_written(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)msg;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) {
            return false;
        }
    } else if (field_has_flag(f)) {
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type == PROTOBUF_C_TYPE_STRING) {
        const void *p = *(const void *const *)(base + f->offset);
        return p != NULL && p != f->default_value;
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED) {
        return *(const void *const *)(base + f->offset) != NULL;
    }
    return true;
}

/* ---- message -> JSON tree ---------------------------------------------- */

static json_t *msg_to_json(const ProtobufCMessage *msg, int depth);

/* Valid UTF-8 passes as is; otherwise each byte of an ill-formed sequence
 * becomes U+FFFD (3 bytes), hence the 3x buffer. */
static json_t *string_to_json(const char *s, size_t n)
{
    if (utf8_valid(s, n)) {
        return json_stringn_nocheck(s, n);
    }
    if (n > (SIZE_MAX - 1) / UTF8_REPLACEMENT_BYTES) {
        return NULL;
    }
    char *buf = malloc(n * UTF8_REPLACEMENT_BYTES + 1);
    if (buf == NULL) {
        return NULL;
    }
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        const char *piece;
        size_t piece_len;
        i += utf8_piece(s + i, n - i, &piece, &piece_len);
        memcpy(buf + out, piece, piece_len);
        out += piece_len;
    }
    json_t *j = json_stringn_nocheck(buf, out);
    free(buf);
    return j;
}

static json_t *bytes_to_json(const ProtobufCBinaryData *b)
{
    if (b->len == 0) {
        return json_string("");
    }
    size_t cap = base64_bytes(b->len);
    char *buf = cap > 0 ? malloc(cap) : NULL;
    if (buf == NULL) {
        return NULL;
    }
    json_t *j = json_stringn_nocheck(buf, base64_write(buf, cap, b));
    free(buf);
    return j;
}

/* One value of field f stored at slot; depth is that of the enclosing
 * object or array. NULL only when out of memory or too deep. */
static json_t *slot_to_json(const ProtobufCFieldDescriptor *f, const void *slot, int depth)
{
    jv_t v;
    slot_view(f, slot, &v);
    switch (v.kind) {
    case JV_INTEGER:
        return json_integer(v.i);
    case JV_REAL:
        return json_real(v.d);
    case JV_BOOL:
        return json_boolean(v.b);
    case JV_STRING:
        return string_to_json(v.text, v.text_len);
    case JV_BYTES:
        return bytes_to_json(v.bytes);
    case JV_MESSAGE:
        return v.msg != NULL ? msg_to_json(v.msg, depth + 1) : json_null();
    }
    ZASSERT(!"unknown JSON value kind");
    return NULL;
}

static json_t *repeated_to_json(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                                int depth)
{
    if (depth > ZCODEC_JSON_DEPTH_MAX) {
        return NULL;
    }
    jarray_t arr = repeated_of(msg, f);
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < arr.count; i++) {
        json_t *e = slot_to_json(f, arr.elems + i * arr.elem_bytes, depth);
        if (e == NULL || json_array_append_new(a, e) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

static json_t *msg_to_json(const ProtobufCMessage *msg, int depth)
{
    if (depth > ZCODEC_JSON_DEPTH_MAX) {
        return NULL;
    }
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    json_t *obj = json_object();
    for (unsigned i = 0; obj != NULL && i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (!field_written(msg, f)) {
            continue;
        }
        json_t *v = f->label == PROTOBUF_C_LABEL_REPEATED
                        ? repeated_to_json(msg, f, depth + 1)
                        : slot_to_json(f, (const char *)msg + f->offset, depth);
        /* set_new consumes v even when it fails. */
        if (v == NULL || json_object_set_new_nocheck(obj, f->name, v) != 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}

json_t *zjson_from_msg(const ProtobufCMessage *msg)
{
    ZASSERT(msg != NULL);
    return msg_to_json(msg, 1);
}

/* ---- message -> JSON text ---------------------------------------------- */

/* The text starts in a buffer on the caller's stack and moves to a malloc'd
 * one, doubling, only past that; most replies and events fit the first size,
 * so they cost one exact malloc at the end. (A 1 KiB first malloc and a
 * shrinking realloc cost 1,100 instructions a reply, most of it glibc
 * consolidating its fast bins for a "large" request.) */
#define ZJSON_TEXT_BYTES_INITIAL 1024
/* Longest real jansson prints: "%.17g" of a finite double is at most 24
 * bytes ("-1.2345678901234567e-308"), then ".0" at most. */
#define ZJSON_REAL_BYTES 32

/* The text so far and a sticky failure (out of memory or too deep): the
 * writers stop adding once it is set, and it is checked once at the end. */
typedef struct {
    char *buf;   /* stack, or malloc'd once past it */
    char *stack; /* the caller's ZJSON_TEXT_BYTES_INITIAL bytes */
    size_t len;
    size_t cap; /* at least len + 1: room for the final NUL */
    bool failed;
} jtext_t;

#define JTEXT_INIT(stack_buf) \
    {.buf = (stack_buf), .stack = (stack_buf), .len = 0, .cap = sizeof(stack_buf), .failed = false}

/* The size needed stays under SIZE_MAX / 4, so the doubled size (under
 * twice what was needed) cannot wrap. */
static char *jt_grow(jtext_t *t, size_t n)
{
    if (n > SIZE_MAX / 4 - t->len) {
        t->failed = true;
        return NULL;
    }
    size_t need = t->len + n + 1;
    size_t cap = t->cap * 2 > need ? t->cap * 2 : need;
    char *buf = t->buf == t->stack ? malloc(cap) : realloc(t->buf, cap);
    if (buf == NULL) {
        t->failed = true;
        return NULL;
    }
    if (t->buf == t->stack) {
        memcpy(buf, t->stack, t->len);
    }
    t->buf = buf;
    t->cap = cap;
    return buf + t->len;
}

/* Where to write n more bytes, with room left for the final NUL; NULL once
 * the text has failed. */
static char *jt_room(jtext_t *t, size_t n)
{
    if (t->failed) {
        return NULL;
    }
    return n < t->cap - t->len ? t->buf + t->len : jt_grow(t, n);
}

static void jt_put(jtext_t *t, const char *s, size_t n)
{
    char *p = jt_room(t, n);
    if (p != NULL) {
        memcpy(p, s, n);
        t->len += n;
    }
}

static void jt_putc(jtext_t *t, char ch)
{
    char *p = jt_room(t, 1);
    if (p != NULL) {
        *p = ch;
        t->len++;
    }
}

/* As jansson's "%lld", without stdio. */
static void jt_integer(jtext_t *t, int64_t i)
{
    char buf[24];
    char *end = buf + sizeof buf;
    char *start = u64_digits(i < 0 ? 0 - (uint64_t)i : (uint64_t)i, end);
    if (i < 0) {
        *--start = '-';
    }
    jt_put(t, start, (size_t)(end - start));
}

/* A finite double exactly as jansson 2.14 dumps it (jsonp_dtostr, precision
 * 17): "%.17g", the locale's one-byte decimal point turned into '.', ".0"
 * added when there is neither '.' nor 'e' (so that it reads back as a real),
 * and the exponent without '+' or leading zeros: "1e+17" is "1e17", "1e-05"
 * "1e-5". A jansson built with dtoa (after 2.14) prints the shortest form
 * instead; the unit test compares with the installed library. */
static size_t real_format(double d, char buf[ZJSON_REAL_BYTES])
{
    int n = snprintf(buf, ZJSON_REAL_BYTES, "%.17g", d);
    ZASSERT(n > 0 && n <= ZJSON_REAL_BYTES - 3);
    size_t len = (size_t)n;
    char *e = NULL;
    bool point = false;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == 'e') {
            e = buf + i;
        } else if (!ascii_digit(buf[i]) && buf[i] != '-' && buf[i] != '+') {
            buf[i] = '.';
            point = true;
        }
    }
    if (e == NULL) {
        if (!point) {
            memcpy(buf + len, ".0", 2);
            len += 2;
        }
        return len;
    }
    /* e is followed by a sign and at least one digit: keep a '-' only. */
    char *keep = e[1] == '-' ? e + 2 : e + 1;
    char *digits = e + 2;
    while (*digits == '0') {
        digits++;
    }
    memmove(keep, digits, (size_t)(buf + len - digits));
    return len - (size_t)(digits - keep);
}

/* A byte jansson escapes: '"', '\\' or a control character, the latter as
 * \b \f \n \r \t or \u00XX in upper case. '/' and DEL are not escaped. */
static void jt_escape(jtext_t *t, unsigned char b)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *two = NULL;
    switch (b) {
    case '"':
        two = "\\\"";
        break;
    case '\\':
        two = "\\\\";
        break;
    case '\b':
        two = "\\b";
        break;
    case '\f':
        two = "\\f";
        break;
    case '\n':
        two = "\\n";
        break;
    case '\r':
        two = "\\r";
        break;
    case '\t':
        two = "\\t";
        break;
    default: {
        char seq[6] = {'\\', 'u', '0', '0', hex[b >> 4], hex[b & 0xF]};
        jt_put(t, seq, sizeof seq);
        return;
    }
    }
    jt_put(t, two, 2);
}

/* A string as jansson writes it, with ill-formed UTF-8 repaired as in the
 * tree. Runs of bytes that need no change are copied at once. */
static void jt_string(jtext_t *t, const char *s, size_t n)
{
    jt_putc(t, '"');
    size_t run = 0; /* first byte not yet written */
    for (size_t i = 0; i < n;) {
        unsigned char b = (unsigned char)s[i];
        if (b >= 0x20 && b < 0x80 && b != '"' && b != '\\') {
            i++;
            continue;
        }
        if (b < 0x80) {
            jt_put(t, s + run, i - run);
            jt_escape(t, b);
            run = ++i;
            continue;
        }
        const char *piece;
        size_t piece_len;
        size_t used = utf8_piece(s + i, n - i, &piece, &piece_len);
        if (piece != s + i) {
            jt_put(t, s + run, i - run);
            jt_put(t, piece, piece_len);
            run = i + used;
        }
        i += used;
    }
    jt_put(t, s + run, n - run);
    jt_putc(t, '"');
}

/* Base64 needs no escaping: it is encoded straight into the text. */
static void jt_bytes(jtext_t *t, const ProtobufCBinaryData *b)
{
    size_t cap = base64_bytes(b->len);
    char *p = cap > 0 ? jt_room(t, cap + 1) : NULL;
    if (p == NULL) {
        t->failed = true;
        return;
    }
    *p = '"';
    t->len += 1 + base64_write(p + 1, cap, b);
    jt_putc(t, '"');
}

static void jt_msg(jtext_t *t, const ProtobufCMessage *msg, int depth);

/* One value of field f stored at slot, as slot_to_json. */
static void jt_slot(jtext_t *t, const ProtobufCFieldDescriptor *f, const void *slot, int depth)
{
    jv_t v;
    slot_view(f, slot, &v);
    char real[ZJSON_REAL_BYTES];
    switch (v.kind) {
    case JV_INTEGER:
        jt_integer(t, v.i);
        break;
    case JV_REAL:
        jt_put(t, real, real_format(v.d, real));
        break;
    case JV_BOOL:
        jt_put(t, v.b ? "true" : "false", v.b ? 4 : 5);
        break;
    case JV_STRING:
        jt_string(t, v.text, v.text_len);
        break;
    case JV_BYTES:
        jt_bytes(t, v.bytes);
        break;
    case JV_MESSAGE:
        if (v.msg != NULL) {
            jt_msg(t, v.msg, depth + 1);
        } else {
            jt_put(t, "null", 4);
        }
        break;
    }
}

/* As repeated_to_json: the array is at depth. */
static void jt_repeated(jtext_t *t, const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                        int depth)
{
    if (depth > ZCODEC_JSON_DEPTH_MAX) {
        t->failed = true;
        return;
    }
    jarray_t arr = repeated_of(msg, f);
    jt_putc(t, '[');
    for (size_t i = 0; !t->failed && i < arr.count; i++) {
        if (i > 0) {
            jt_putc(t, ',');
        }
        jt_slot(t, f, arr.elems + i * arr.elem_bytes, depth);
    }
    jt_putc(t, ']');
}

/* Field f's value in a message at depth, as msg_to_json makes it. */
static void jt_field(jtext_t *t, const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                     int depth)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        jt_repeated(t, msg, f, depth + 1);
    } else {
        jt_slot(t, f, (const char *)msg + f->offset, depth);
    }
}

/* Keys in descriptor order, as msg_to_json adds them and jansson keeps
 * them. Field names are proto identifiers ([A-Za-z0-9_]), which jansson
 * writes unescaped. */
static void jt_msg(jtext_t *t, const ProtobufCMessage *msg, int depth)
{
    if (depth > ZCODEC_JSON_DEPTH_MAX) {
        t->failed = true;
        return;
    }
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    char sep = '{';
    for (unsigned i = 0; !t->failed && i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (!field_written(msg, f)) {
            continue;
        }
        size_t name_len = strlen(f->name);
        char *p = jt_room(t, name_len + 4);
        if (p == NULL) {
            return;
        }
        p[0] = sep;
        p[1] = '"';
        memcpy(p + 2, f->name, name_len);
        memcpy(p + 2 + name_len, "\":", 2);
        t->len += name_len + 4;
        sep = ',';
        jt_field(t, msg, f, depth);
    }
    if (sep == '{') {
        jt_putc(t, '{');
    }
    jt_putc(t, '}');
}

/* The finished text, shrunk to fit (the hub keeps thousands of them), or
 * NULL with the buffer freed when the text failed. */
static char *jt_finish(jtext_t *t, size_t *len)
{
    char *p = jt_room(t, 0);
    if (p == NULL) {
        if (t->buf != t->stack) {
            free(t->buf);
        }
        return NULL;
    }
    *p = '\0';
    char *text = t->buf;
    if (t->buf == t->stack) {
        text = malloc(t->len + 1);
        if (text == NULL) {
            return NULL;
        }
        memcpy(text, t->stack, t->len + 1);
    } else if (t->cap > t->len + 1) {
        char *fit = realloc(t->buf, t->len + 1);
        text = fit != NULL ? fit : t->buf;
    }
    if (len != NULL) {
        *len = t->len;
    }
    return text;
}

char *zjson_text_from_msg(const ProtobufCMessage *msg, size_t *len)
{
    ZASSERT(msg != NULL);
    char stack[ZJSON_TEXT_BYTES_INITIAL];
    jtext_t t = JTEXT_INIT(stack);
    jt_msg(&t, msg, 1);
    return jt_finish(&t, len);
}

int zjson_text_from_field(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                          char **out, size_t *len)
{
    ZASSERT(msg != NULL && out != NULL);
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    ZASSERT(f == NULL || (f >= desc->fields && f < desc->fields + desc->n_fields));
    *out = NULL;
    if (f == NULL || !field_written(msg, f)) {
        return ZE_NOT_FOUND;
    }
    /* The value sits in msg, at depth 1, exactly as in the whole text. */
    char stack[ZJSON_TEXT_BYTES_INITIAL];
    jtext_t t = JTEXT_INIT(stack);
    jt_field(&t, msg, f, 1);
    *out = jt_finish(&t, len);
    return *out != NULL ? 0 : ZE_INTERNAL;
}

/* ---- JSON -> message: one scalar value, decided once ------------------- */

/* A scalar JSON value as both readers meet it: zjson_to_msg takes it from a
 * jansson value (jin_of_json), zjson_fast_to_msg straight from the text. The
 * rules that turn it into a field's C value live here once (jin_to_slot); a
 * value that does not fit comes back as a jin_err_t, which the slow path
 * words (fail_jin) and the fast path declines. */
typedef enum {
    JIN_INTEGER, /* i, as jansson holds a JSON integer (a long long) */
    JIN_REAL,    /* d */
    JIN_STRING,  /* s[0..n): NUL bytes possible, s[n] never read */
    JIN_TRUE,
    JIN_FALSE,
    JIN_OTHER, /* null, an object or an array */
} jin_kind_t;

typedef struct {
    jin_kind_t kind;
    int64_t i;
    double d;
    const char *s;
    size_t n;
} jin_t;

/* Why a value does not fit a field: fail_jin has one wording for each. */
typedef enum {
    JIN_OK = 0,
    JIN_NOT_INTEGER,
    JIN_NOT_NUMBER,
    JIN_NOT_BOOLEAN,
    JIN_NOT_ENUM,
    JIN_NOT_STRING,
    JIN_OUT_OF_RANGE,
    JIN_UNKNOWN_NAME,   /* of the enum */
    JIN_UNKNOWN_NUMBER, /* of the enum */
    JIN_NUL_BYTE,
    JIN_BAD_UTF8,
    JIN_NO_MEMORY,
} jin_err_t;

/* Optional '-', then at least one digit, and nothing else (no '+', spaces or
 * NUL bytes): the strings an integer field takes. */
static bool text_is_decimal(const char *s, size_t n)
{
    size_t i = n > 0 && s[0] == '-' ? 1 : 0;
    if (i >= n) {
        return false;
    }
    for (; i < n; i++) {
        if (!ascii_digit(s[i])) {
            return false;
        }
    }
    return true;
}

/* The digits of decimal text (text_is_decimal, or a JSON integer token)
 * after its optional '-', as strtoull reads them; false above UINT64_MAX,
 * where strtoull sets ERANGE. Counted by hand: s need not end in a NUL. */
static bool decimal_magnitude(const char *s, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    for (size_t i = s[0] == '-' ? 1 : 0; i < n; i++) {
        unsigned digit = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - digit) / 10) {
            return false;
        }
        x = x * 10 + digit;
    }
    *out = x;
    return true;
}

/* Decimal text as strtoll reads it: false where strtoll sets ERANGE (for a
 * JSON integer, jansson's "too big integer"). */
static bool decimal_to_i64(const char *s, size_t n, int64_t *out)
{
    uint64_t m;
    if (!decimal_magnitude(s, n, &m)) {
        return false;
    }
    if (s[0] != '-') {
        if (m > INT64_MAX) {
            return false;
        }
        *out = (int64_t)m;
    } else {
        if (m > (uint64_t)INT64_MAX + 1) {
            return false;
        }
        *out = m > INT64_MAX ? INT64_MIN : -(int64_t)m;
    }
    return true;
}

static bool text_is(const char *s, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    return n == k && memcmp(s, lit, k) == 0;
}

static jin_err_t jin_to_i64(const jin_t *v, int64_t min, int64_t max, int64_t *out)
{
    int64_t x;
    if (v->kind == JIN_INTEGER) {
        x = v->i;
    } else if (v->kind == JIN_STRING && text_is_decimal(v->s, v->n)) {
        if (!decimal_to_i64(v->s, v->n, &x)) {
            return JIN_OUT_OF_RANGE;
        }
    } else {
        return JIN_NOT_INTEGER;
    }
    if (x < min || x > max) {
        return JIN_OUT_OF_RANGE;
    }
    *out = x;
    return JIN_OK;
}

static jin_err_t jin_to_u64(const jin_t *v, uint64_t max, uint64_t *out)
{
    uint64_t x;
    if (v->kind == JIN_INTEGER) {
        if (v->i < 0) {
            return JIN_OUT_OF_RANGE;
        }
        x = (uint64_t)v->i;
    } else if (v->kind == JIN_STRING && text_is_decimal(v->s, v->n)) {
        /* strtoull would wrap "-5" silently; only "-0..." is a valid uint. */
        if (!decimal_magnitude(v->s, v->n, &x) || (v->s[0] == '-' && x != 0)) {
            return JIN_OUT_OF_RANGE;
        }
    } else {
        return JIN_NOT_INTEGER;
    }
    if (x > max) {
        return JIN_OUT_OF_RANGE;
    }
    *out = x;
    return JIN_OK;
}

/* NaN and infinities come as the strings jv_double writes. */
static jin_err_t jin_to_double(const jin_t *v, double *out)
{
    if (v->kind == JIN_REAL) {
        *out = v->d;
    } else if (v->kind == JIN_INTEGER) {
        *out = (double)v->i;
    } else if (v->kind == JIN_STRING && text_is(v->s, v->n, "NaN")) {
        *out = NAN;
    } else if (v->kind == JIN_STRING && text_is(v->s, v->n, "Infinity")) {
        *out = INFINITY;
    } else if (v->kind == JIN_STRING && text_is(v->s, v->n, "-Infinity")) {
        *out = -INFINITY;
    } else {
        return JIN_NOT_NUMBER;
    }
    return JIN_OK;
}

static jin_err_t jin_to_float(const jin_t *v, float *out)
{
    double d;
    jin_err_t e = jin_to_double(v, &d);
    if (e != JIN_OK) {
        return e;
    }
    if (isfinite(d) && (d > FLT_MAX || d < -FLT_MAX)) {
        return JIN_OUT_OF_RANGE;
    }
    *out = (float)d;
    return JIN_OK;
}

/* zjson_enum_value reads a C string: a name with a NUL byte, or too long
 * for any name JSON shows (ZJSON_ENUM_NAME_BYTES), is unknown. */
static jin_err_t jin_to_enum(const ProtobufCEnumDescriptor *desc, const jin_t *v, int *out)
{
    if (v->kind == JIN_STRING) {
        char name[ZJSON_ENUM_NAME_BYTES];
        if (v->n >= sizeof name || memchr(v->s, '\0', v->n) != NULL) {
            return JIN_UNKNOWN_NAME;
        }
        memcpy(name, v->s, v->n);
        name[v->n] = '\0';
        return zjson_enum_value(desc, name, out) == 0 ? JIN_OK : JIN_UNKNOWN_NAME;
    }
    if (v->kind != JIN_INTEGER) {
        return JIN_NOT_ENUM;
    }
    int64_t x;
    jin_err_t e = jin_to_i64(v, INT32_MIN, INT32_MAX, &x);
    if (e != JIN_OK) {
        return e;
    }
    if (protobuf_c_enum_descriptor_get_value(desc, (int)x) == NULL) {
        return JIN_UNKNOWN_NUMBER;
    }
    *out = (int)x;
    return JIN_OK;
}

/* A proto string is a C string: NUL bytes cannot be carried, and JSON built
 * by hand (json_stringn_nocheck) may hold invalid UTF-8. */
static jin_err_t jin_to_string(const jin_t *v, char **out)
{
    if (v->kind != JIN_STRING) {
        return JIN_NOT_STRING;
    }
    if (memchr(v->s, '\0', v->n) != NULL) {
        return JIN_NUL_BYTE;
    }
    if (!utf8_valid(v->s, v->n)) {
        return JIN_BAD_UTF8;
    }
    char *copy = malloc(v->n + 1);
    if (copy == NULL) {
        return JIN_NO_MEMORY;
    }
    memcpy(copy, v->s, v->n);
    copy[v->n] = '\0';
    *out = copy;
    return JIN_OK;
}

/* protobuf-c numbers its ten integer types first, INT32 to FIXED64 (its
 * ABI fixes the numbers), and every other type after them. */
_Static_assert(PROTOBUF_C_TYPE_INT32 == 0 && PROTOBUF_C_TYPE_FLOAT > PROTOBUF_C_TYPE_FIXED64 &&
                   PROTOBUF_C_TYPE_DOUBLE > PROTOBUF_C_TYPE_FIXED64 &&
                   PROTOBUF_C_TYPE_BOOL > PROTOBUF_C_TYPE_FIXED64 &&
                   PROTOBUF_C_TYPE_ENUM > PROTOBUF_C_TYPE_FIXED64 &&
                   PROTOBUF_C_TYPE_STRING > PROTOBUF_C_TYPE_FIXED64 &&
                   PROTOBUF_C_TYPE_BYTES > PROTOBUF_C_TYPE_FIXED64 &&
                   PROTOBUF_C_TYPE_MESSAGE > PROTOBUF_C_TYPE_FIXED64,
               "protobuf-c's integer types come first");

static bool type_is_integer(ProtobufCType t)
{
    return t <= PROTOBUF_C_TYPE_FIXED64;
}

/* Integer types by width and sign; the slot is written only on success. */
static jin_err_t jin_to_integer_slot(ProtobufCType t, const jin_t *v, void *slot)
{
    int64_t i = 0;
    uint64_t u = 0;
    jin_err_t e;
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((e = jin_to_i64(v, INT32_MIN, INT32_MAX, &i)) == JIN_OK) {
            *(int32_t *)slot = (int32_t)i;
        }
        return e;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((e = jin_to_u64(v, UINT32_MAX, &u)) == JIN_OK) {
            *(uint32_t *)slot = (uint32_t)u;
        }
        return e;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if ((e = jin_to_u64(v, UINT64_MAX, &u)) == JIN_OK) {
            *(uint64_t *)slot = u;
        }
        return e;
    default: /* int64, sint64, sfixed64 */
        if ((e = jin_to_i64(v, INT64_MIN, INT64_MAX, &i)) == JIN_OK) {
            *(int64_t *)slot = i;
        }
        return e;
    }
}

/* v into the C slot of field f, which is neither bytes nor a message (the
 * readers take those apart). Pointer slots are written only on success, so
 * a half-built message stays exactly what protobuf_c_message_free_unpacked
 * expects. */
static jin_err_t jin_to_slot(const ProtobufCFieldDescriptor *f, const jin_t *v, void *slot)
{
    if (type_is_integer(f->type)) {
        return jin_to_integer_slot(f->type, v, slot);
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT:
        return jin_to_float(v, slot);
    case PROTOBUF_C_TYPE_DOUBLE:
        return jin_to_double(v, slot);
    case PROTOBUF_C_TYPE_BOOL:
        if (v->kind != JIN_TRUE && v->kind != JIN_FALSE) {
            return JIN_NOT_BOOLEAN;
        }
        *(protobuf_c_boolean *)slot = v->kind == JIN_TRUE;
        return JIN_OK;
    case PROTOBUF_C_TYPE_ENUM:
        return jin_to_enum(f->descriptor, v, slot);
    case PROTOBUF_C_TYPE_STRING:
        return jin_to_string(v, slot);
    default:
        ZASSERT(!"jin_to_slot: not a scalar field type");
        return JIN_NOT_STRING;
    }
}

/* Where a oneof member f stands: the id of the member of its oneof that is
 * set, 0 when none is (or f is not in a oneof). */
static uint32_t oneof_case(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
        return 0;
    }
    return *(const uint32_t *)((const char *)msg + f->quantifier_offset);
}

/* Marks singular field f present once its value is in place (never
 * before, so that a failed member is never freed by free_unpacked as if it
 * were set): the oneof's case, or the has_ flag. */
static void field_mark_set(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    char *base = (char *)msg;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        *(uint32_t *)(base + f->quantifier_offset) = f->id;
    } else if (field_has_flag(f)) {
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    }
}

/* A message of type desc with its defaults, allocated as protobuf-c's
 * unpacker would; NULL when out of memory. */
static ProtobufCMessage *msg_new(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *msg = malloc(desc->sizeof_message);
    if (msg != NULL) {
        protobuf_c_message_init(desc, msg);
    }
    return msg;
}

/* ---- JSON tree -> message: leaves -------------------------------------- */

static void jin_of_json(const json_t *v, jin_t *in)
{
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        in->kind = JIN_INTEGER;
        in->i = json_integer_value(v);
        break;
    case JSON_REAL:
        in->kind = JIN_REAL;
        in->d = json_real_value(v);
        break;
    case JSON_STRING:
        in->kind = JIN_STRING;
        in->s = json_string_value(v);
        in->n = json_string_length(v);
        break;
    case JSON_TRUE:
        in->kind = JIN_TRUE;
        break;
    case JSON_FALSE:
        in->kind = JIN_FALSE;
        break;
    default:
        in->kind = JIN_OTHER;
        break;
    }
}

/* The error of a value v that did not fit field f (0 when it did). */
static int fail_jin(jctx_t *c, const ProtobufCFieldDescriptor *f, const jin_t *v, jin_err_t e)
{
    static const char *const reasons[] = {
        [JIN_NOT_INTEGER] = "expected an integer",
        [JIN_NOT_NUMBER] = "expected a number",
        [JIN_NOT_BOOLEAN] = "expected a boolean",
        [JIN_NOT_ENUM] = "expected an enum name or number",
        [JIN_NOT_STRING] = "expected a string",
        [JIN_OUT_OF_RANGE] = "out of range",
        [JIN_NUL_BYTE] = "NUL character in a string",
        [JIN_BAD_UTF8] = "invalid UTF-8",
    };
    const ProtobufCEnumDescriptor *enum_desc = f->descriptor; /* for the enum errors */
    switch (e) {
    case JIN_OK:
        return 0;
    case JIN_UNKNOWN_NAME: {
        /* Cut where a C string would end, and to what an error can hold. */
        int shown = v->n < ZCODEC_ERR_BYTES ? (int)v->n : ZCODEC_ERR_BYTES;
        return fail(c, "unknown value \"%.*s\" of enum %s", shown, v->s, enum_desc->name);
    }
    case JIN_UNKNOWN_NUMBER:
        return fail(c, "unknown value %" PRId64 " of enum %s", v->i, enum_desc->name);
    case JIN_NO_MEMORY:
        return fail_oom(c);
    default:
        ZASSERT((size_t)e < ZARRAY_LEN(reasons) && reasons[e] != NULL);
        return fail(c, "%s", reasons[e]);
    }
}

/* Standard base64 with padding; libsodium rejects missing padding, stray
 * characters and non-zero trailing bits. */
static int json_to_bytes(jctx_t *c, const json_t *v, ProtobufCBinaryData *out)
{
    if (!json_is_string(v)) {
        return fail(c, "expected a base64 string");
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0) {
        *out = (ProtobufCBinaryData){.len = 0, .data = NULL};
        return 0;
    }
    size_t cap = n / 4 * 3 + 3;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        return fail_oom(c);
    }
    size_t len = 0;
    if (sodium_base642bin(buf, cap, s, n, NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
        free(buf);
        return fail(c, "invalid base64");
    }
    if (len == 0) {
        free(buf);
        buf = NULL;
    }
    *out = (ProtobufCBinaryData){.len = len, .data = buf};
    return 0;
}

/* ---- JSON tree -> message: fields -------------------------------------- */

static int obj_to_msg(jctx_t *c, const json_t *v, const ProtobufCMessageDescriptor *desc,
                      ProtobufCMessage **out);

/* Converts v into the C slot of field f (a struct member or an array
 * element); scalars by the rules both readers share. */
static int json_to_slot(jctx_t *c, const ProtobufCFieldDescriptor *f, const json_t *v, void *slot)
{
    if (f->type == PROTOBUF_C_TYPE_BYTES) {
        return json_to_bytes(c, v, slot);
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        return obj_to_msg(c, v, f->descriptor, slot);
    }
    jin_t in;
    jin_of_json(v, &in);
    return fail_jin(c, f, &in, jin_to_slot(f, &in, slot));
}

/* The array and its count are stored in the message before the elements are
 * converted, and the count grows one element at a time: on failure
 * free_unpacked then frees exactly the elements already built. */
static int set_repeated(jctx_t *c, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                        const json_t *v)
{
    if (!json_is_array(v)) {
        return fail(c, "expected an array");
    }
    size_t n = json_array_size(v);
    if (n == 0) {
        return 0;
    }
    size_t elem_bytes = slot_bytes(f->type);
    char *arr = calloc(n, elem_bytes);
    if (arr == NULL) {
        return fail_oom(c);
    }
    size_t *count = (size_t *)((char *)msg + f->quantifier_offset);
    *(char **)((char *)msg + f->offset) = arr;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t saved = path_push_index(c, i);
        const json_t *e = json_array_get(v, i);
        int rc = json_is_null(e) ? fail(c, "null in an array")
                                 : json_to_slot(c, f, e, arr + i * elem_bytes);
        path_pop(c, saved);
        if (rc != 0) {
            return rc;
        }
        (*count)++;
    }
    return 0;
}

static int set_field(jctx_t *c, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                     const json_t *v)
{
    char *base = (char *)msg;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        return set_repeated(c, msg, f, v);
    }
    int rc = json_to_slot(c, f, v, base + f->offset);
    if (rc == 0) {
        field_mark_set(msg, f);
    }
    return rc;
}

/* One key of a JSON object: find the field, refuse a second oneof member
 * (JSON keys are unique, so no field is set twice), convert. */
static int set_member(jctx_t *c, ProtobufCMessage *msg, const char *key, size_t key_len,
                      const json_t *v)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    size_t saved = path_push_key(c, key);
    const ProtobufCFieldDescriptor *f = NULL;
    if (strlen(key) == key_len) {
        f = protobuf_c_message_descriptor_get_field_by_name(desc, key);
    }
    int rc = 0;
    if (f == NULL) {
        rc = fail_at(c, saved, "unknown field \"%s\"", key);
    } else if (json_is_null(v)) {
        rc = 0; /* null means absent: the field keeps its default */
    } else if (oneof_case(msg, f) != 0) {
        const ProtobufCFieldDescriptor *other =
            protobuf_c_message_descriptor_get_field(desc, oneof_case(msg, f));
        rc = fail_at(c, saved, "\"%s\" and \"%s\" are both set but belong to one oneof",
                     other != NULL ? other->name : "?", f->name);
    } else {
        rc = set_field(c, msg, f, v);
    }
    path_pop(c, saved);
    return rc;
}

static int obj_to_msg(jctx_t *c, const json_t *v, const ProtobufCMessageDescriptor *desc,
                      ProtobufCMessage **out)
{
    if (!json_is_object(v)) {
        return fail(c, "expected an object");
    }
    ProtobufCMessage *msg = msg_new(desc);
    if (msg == NULL) {
        return fail_oom(c);
    }
    const char *key;
    size_t key_len;
    json_t *value;
    int rc = 0;
    /* jansson's iteration API takes a non-const object but does not modify it. */
    json_t *obj = (json_t *)v;
    json_object_keylen_foreach(obj, key, key_len, value)
    {
        rc = set_member(c, msg, key, key_len, value);
        if (rc != 0) {
            break;
        }
    }
    if (rc != 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return rc;
    }
    *out = msg;
    return 0;
}

/* Bounds JSON nesting before any conversion, independently of the schema;
 * the walk itself stops one level past the limit. depth is that of v. */
static int check_depth(jctx_t *c, const json_t *v, int depth)
{
    if (!json_is_object(v) && !json_is_array(v)) {
        return 0;
    }
    if (depth > ZCODEC_JSON_DEPTH_MAX) {
        return fail(c, "nested deeper than %d levels", ZCODEC_JSON_DEPTH_MAX);
    }
    int rc = 0;
    if (json_is_array(v)) {
        for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
            size_t saved = path_push_index(c, i);
            rc = check_depth(c, json_array_get(v, i), depth + 1);
            path_pop(c, saved);
        }
        return rc;
    }
    const char *key;
    json_t *value;
    json_t *obj = (json_t *)v;
    json_object_foreach(obj, key, value)
    {
        size_t saved = path_push_key(c, key);
        rc = check_depth(c, value, depth + 1);
        path_pop(c, saved);
        if (rc != 0) {
            break;
        }
    }
    return rc;
}

/* ---- JSON text -> message: the fast path ------------------------------- */

/* zjson_fast_to_msg reads plain request bodies straight from the text,
 * without a jansson tree: json_loadb, zjson_to_msg and json_delete cost
 * 12,000 of the gateway's 51,000 instructions for {"name":"w","amount":1},
 * this path about 1,200 (zhili-bench-json, body_counter). It takes only
 * what json_loadb (jansson 2.14, JSON_REJECT_DUPLICATES) and then
 * zjson_to_msg would take, converting each value with the same
 * jin_to_slot, and declines the rest for the caller to read the slow way,
 * which also words the error. Where it takes anything its grammar is
 * jansson's; it declines more: keys with escapes or naming no field, null,
 * non-empty arrays, bytes fields, and nesting past ZJSON_FAST_DEPTH_MAX. A
 * NUL byte is declined by the grammar itself: it is neither whitespace nor
 * the start of a token, and a string may not hold it raw. */

#define ZJSON_FAST_DEPTH_MAX 8    /* objects nested deeper are declined */
#define ZJSON_FAST_KEY_BYTES 64   /* longest key taken, with its NUL */
#define ZJSON_FAST_FIELDS_MAX 256 /* fields of a message type taken (seen_t) */
#define ZJSON_FAST_EXTRAS_MAX 8
#define ZJSON_FAST_REAL_BYTES 64    /* longest real number taken, with its NUL */
#define ZJSON_FAST_STRING_BYTES 256 /* escaped strings decoded on the stack */
_Static_assert(ZJSON_FAST_DEPTH_MAX < ZCODEC_JSON_DEPTH_MAX,
               "the slow path's depth limit never refuses what the fast path takes");
_Static_assert(ZJSON_FAST_FIELDS_MAX % 64 == 0, "seen_t is whole words");

typedef struct {
    const char *text;
    size_t len;
    size_t pos; /* the next byte to read */
    /* The extras and their fields. A top-level member of one of those
     * fields is read (it must be valid JSON) but not converted: the extra
     * replaces it, as json_object_set would. */
    const zjson_extra_t *extras;
    const ProtobufCFieldDescriptor *extra_fields[ZJSON_FAST_EXTRAS_MAX];
    int extra_count;
    int extras_found;
    char scratch[ZJSON_FAST_STRING_BYTES]; /* one decoded string at a time */
} jfast_t;

/* The fields an object has named, by index: a key met twice is a duplicate
 * (keys are field names, so the same key is the same field), which jansson
 * refuses. It also bounds an object's members by the type's fields. */
typedef struct {
    uint64_t bits[ZJSON_FAST_FIELDS_MAX / 64];
} seen_t;

/* Marks field k seen; false when it already was. */
static bool seen_add(seen_t *seen, size_t k)
{
    uint64_t bit = UINT64_C(1) << (k % 64);
    if (seen->bits[k / 64] & bit) {
        return false;
    }
    seen->bits[k / 64] |= bit;
    return true;
}

/* Skips jansson's whitespace (space, tab, newline, carriage return and
 * nothing else) and returns the next byte, or -1 at the end of the text. */
static int jf_peek(jfast_t *p)
{
    while (p->pos < p->len) {
        char ch = p->text[p->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            return (unsigned char)ch;
        }
        p->pos++;
    }
    return -1;
}

/* Consumes ch if it comes next after whitespace. */
static bool jf_eat(jfast_t *p, char ch)
{
    if (jf_peek(p) != (unsigned char)ch) {
        return false;
    }
    p->pos++;
    return true;
}

/* Consumes the n bytes of word if they come next (no whitespace first). */
static bool jf_literal(jfast_t *p, const char *word, size_t n)
{
    if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n) != 0) {
        return false;
    }
    p->pos += n;
    return true;
}

/* Field names are proto identifiers. */
static bool ascii_ident(char ch)
{
    return ascii_lower(ch) || ascii_upper(ch) || ascii_digit(ch) || ch == '_';
}

/* The field that key[0..n) names, or NULL to decline: a key that is not an
 * identifier names no field (the slow path calls it unknown), and one of
 * ZJSON_FAST_KEY_BYTES or more is declined, since protobuf-c looks names
 * up as C strings and the copy is on the stack. */
static const ProtobufCFieldDescriptor *jf_field(const ProtobufCMessageDescriptor *desc,
                                                const char *key, size_t n)
{
    char name[ZJSON_FAST_KEY_BYTES];
    if (n >= sizeof name) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ascii_ident(key[i])) {
            return NULL;
        }
        name[i] = key[i];
    }
    name[n] = '\0';
    return protobuf_c_message_descriptor_get_field_by_name(desc, name);
}

/* A member's key and its colon; the field it names, or NULL to decline. A
 * key with an escape fails jf_field ('\\' is not an identifier byte): no
 * field name needs one, and decoding it is jansson's business. */
static const ProtobufCFieldDescriptor *jf_key(jfast_t *p, const ProtobufCMessageDescriptor *desc)
{
    if (!jf_eat(p, '"')) {
        return NULL;
    }
    const char *key = p->text + p->pos;
    const char *quote = memchr(key, '"', p->len - p->pos);
    if (quote == NULL) {
        return NULL;
    }
    p->pos += (size_t)(quote - key) + 1;
    if (!jf_eat(p, ':')) {
        return NULL;
    }
    return jf_field(desc, key, (size_t)(quote - key));
}

/* ---- the fast path: numbers -------------------------------------------- */

static size_t digits_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && ascii_digit(s[i])) {
        i++;
    }
    return i;
}

/* Length of jansson's number token at s[0..n):
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? with *real set when it has
 * a fraction or an exponent; 0 when no such token starts there ("-",
 * "1.", ".5", "+1", "1e"). A leading zero ends the token ("01" is "0" then
 * "1"), and what follows a token must be a ',' or '}', which the caller
 * checks. */
static size_t number_len(const char *s, size_t n, bool *real)
{
    size_t i = n > 0 && s[0] == '-' ? 1 : 0;
    size_t whole = i < n && s[i] == '0' ? 1 : digits_len(s + i, n - i);
    if (whole == 0) {
        return 0;
    }
    i += whole;
    *real = false;
    if (i < n && s[i] == '.') {
        size_t frac = digits_len(s + i + 1, n - i - 1);
        if (frac == 0) {
            return 0;
        }
        i += 1 + frac;
        *real = true;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        i += i < n && (s[i] == '+' || s[i] == '-') ? 1 : 0;
        size_t exp = digits_len(s + i, n - i);
        if (exp == 0) {
            return 0;
        }
        i += exp;
        *real = true;
    }
    return i;
}

/* A real token as jansson reads it: strtod, refusing only an overflow to
 * +-HUGE_VAL (an underflow is taken as strtod gives it). Declined too: a
 * token longer than ZJSON_FAST_REAL_BYTES - 1, and one strtod does not read
 * whole, which happens when the locale's decimal point is not '.' (jansson
 * swaps it in first). */
static bool jf_real(const char *s, size_t n, jin_t *v)
{
    char buf[ZJSON_FAST_REAL_BYTES];
    if (n >= sizeof buf) {
        return false;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    double d = strtod(buf, &end);
    if (end != buf + n || ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE)) {
        return false;
    }
    v->kind = JIN_REAL;
    v->d = d;
    return true;
}

/* A number token: an integer (no fraction, no exponent) as jansson's
 * strtoll reads it, declined where that overflows ("too big integer"), or
 * a real. */
static bool jf_number(jfast_t *p, jin_t *v)
{
    const char *s = p->text + p->pos;
    bool real = false;
    size_t n = number_len(s, p->len - p->pos, &real);
    if (n == 0) {
        return false;
    }
    p->pos += n;
    if (real) {
        return jf_real(s, n, v);
    }
    v->kind = JIN_INTEGER;
    return decimal_to_i64(s, n, &v->i);
}

/* ---- the fast path: strings -------------------------------------------- */

/* Finds the closing quote of the string whose opening quote is at p->pos,
 * checking the raw bytes as jansson does: no control characters (NUL among
 * them) and well-formed UTF-8. Escapes are checked as they are decoded;
 * here the byte after a backslash is only stepped over, so that \" does
 * not end the string. */
static bool jf_string_end(const jfast_t *p, size_t *end, bool *escaped)
{
    const unsigned char *s = (const unsigned char *)p->text;
    size_t i = p->pos + 1;
    *escaped = false;
    while (i < p->len) {
        unsigned char b = s[i];
        if (b == '"') {
            *end = i;
            return true;
        }
        if (b < 0x20) {
            return false;
        }
        if (b == '\\') {
            *escaped = true;
            i += 2;
        } else if (b < 0x80) {
            i++;
        } else {
            size_t len = utf8_seq_len(s + i, p->len - i);
            if (len == 0) {
                return false;
            }
            i += len;
        }
    }
    return false; /* no closing quote */
}

/* The value of the 4 hex digits at s, either case, or -1. */
static long hex4(const char *s)
{
    long x = 0;
    for (int i = 0; i < 4; i++) {
        char ch = s[i];
        int d = ascii_digit(ch)          ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0) {
            return -1;
        }
        x = x * 16 + d;
    }
    return x;
}

/* The \u escape at s[0..n) (s starts "\u"): its code point and the bytes
 * it takes, 12 for a surrogate pair, which jansson joins into one. 0 for
 * what jansson refuses: fewer than 4 hex digits, a lone or mismatched
 * surrogate, and \u0000 (a NUL, refused in strings and keys alike). */
static size_t jf_unicode(const char *s, size_t n, uint32_t *cp)
{
    long hi = n >= 6 ? hex4(s + 2) : -1;
    if (hi <= 0 || (hi >= 0xDC00 && hi <= 0xDFFF)) {
        return 0;
    }
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = (uint32_t)hi;
        return 6;
    }
    long lo = n >= 12 && s[6] == '\\' && s[7] == 'u' ? hex4(s + 8) : -1;
    if (lo < 0xDC00 || lo > 0xDFFF) {
        return 0;
    }
    *cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
    return 12;
}

/* UTF-8 of a code point that is not a surrogate, at most U+10FFFF, into
 * out; returns its length. */
static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The one-letter escapes jansson takes, decoded; 0 for any other letter. */
static char escape_value(char letter)
{
    switch (letter) {
    case '"':
    case '\\':
    case '/':
        return letter;
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        return 0;
    }
}

/* Decodes the inside of a string, s[0..n), into out (n bytes suffice: no
 * escape decodes longer than it is written). False for an escape jansson
 * refuses. A backslash is never the last byte (jf_string_end steps over
 * the byte after it). */
static bool jf_unescape(const char *s, size_t n, char *out, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            out[o++] = s[i++];
            continue;
        }
        char simple = escape_value(s[i + 1]);
        if (simple != 0) {
            out[o++] = simple;
            i += 2;
            continue;
        }
        uint32_t cp = 0;
        size_t used = s[i + 1] == 'u' ? jf_unicode(s + i, n - i, &cp) : 0;
        if (used == 0) {
            return false;
        }
        o += utf8_encode(cp, out + o);
        i += used;
    }
    *out_len = o;
    return true;
}

/* A string token into v: in place when it has no escapes, else decoded
 * into p->scratch or, when longer, a buffer *heap the caller frees. */
static bool jf_string(jfast_t *p, jin_t *v, char **heap)
{
    size_t end = 0;
    bool escaped = false;
    if (!jf_string_end(p, &end, &escaped)) {
        return false;
    }
    const char *s = p->text + p->pos + 1;
    size_t n = end - p->pos - 1;
    p->pos = end + 1;
    v->kind = JIN_STRING;
    if (!escaped) {
        v->s = s;
        v->n = n;
        return true;
    }
    char *buf = p->scratch;
    if (n > sizeof p->scratch) {
        buf = *heap = malloc(n);
        if (buf == NULL) {
            return false;
        }
    }
    v->s = buf;
    return jf_unescape(s, n, buf, &v->n);
}

/* ---- the fast path: members and objects -------------------------------- */

/* One value that is neither an object nor an array. null is declined: the
 * slow path takes it as absent, which is not worth a case here. */
static bool jf_scalar(jfast_t *p, jin_t *v, char **heap)
{
    int ch = jf_peek(p);
    if (ch == '"') {
        return jf_string(p, v, heap);
    }
    if (ch == '-' || ascii_digit((char)ch)) {
        return jf_number(p, v);
    }
    if (jf_literal(p, "true", 4)) {
        v->kind = JIN_TRUE;
        return true;
    }
    if (jf_literal(p, "false", 5)) {
        v->kind = JIN_FALSE;
        return true;
    }
    return false;
}

/* A scalar into field f of msg, by the rules of the slow path. */
static bool jf_set_scalar(jfast_t *p, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    jin_t v;
    char *heap = NULL;
    bool ok = jf_scalar(p, &v, &heap) && jin_to_slot(f, &v, (char *)msg + f->offset) == JIN_OK;
    free(heap);
    if (ok) {
        field_mark_set(msg, f);
    }
    return ok;
}

/* A top-level member that an extra replaces: read, checked, dropped. */
static bool jf_skip_scalar(jfast_t *p)
{
    jin_t v;
    char *heap = NULL;
    bool ok = jf_scalar(p, &v, &heap);
    free(heap);
    return ok;
}

static bool jf_object(jfast_t *p, ProtobufCMessage *msg, int depth);

/* An object into message field f of msg, which is at depth. */
static bool jf_set_message(jfast_t *p, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                           int depth)
{
    ProtobufCMessage *sub = msg_new(f->descriptor);
    if (sub == NULL) {
        return false;
    }
    if (!jf_object(p, sub, depth + 1)) {
        protobuf_c_message_free_unpacked(sub, NULL);
        return false;
    }
    *(ProtobufCMessage **)((char *)msg + f->offset) = sub;
    field_mark_set(msg, f);
    return true;
}

/* A repeated field takes only an empty array, which the slow path reads as
 * no elements: the field stays as it is. */
static bool jf_empty_array(jfast_t *p)
{
    return jf_eat(p, '[') && jf_eat(p, ']');
}

/* The value of field f into msg, which is at depth. Declined: a second
 * member of a oneof (the slow path refuses it), bytes (base64 is left to
 * the slow path), and whatever the value's reader declines. */
static bool jf_member(jfast_t *p, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                      int depth)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        return jf_empty_array(p);
    }
    if (oneof_case(msg, f) != 0) {
        return false;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_BYTES:
        return false;
    case PROTOBUF_C_TYPE_MESSAGE:
        return jf_set_message(p, msg, f, depth);
    default:
        return jf_set_scalar(p, msg, f);
    }
}

/* Whether an extra sets field f (only the top-level object has extras). */
static bool jf_extra_sets(const jfast_t *p, const ProtobufCFieldDescriptor *f)
{
    for (int i = 0; i < p->extras_found; i++) {
        if (p->extra_fields[i] == f) {
            return true;
        }
    }
    return false;
}

/* An object's members into msg, which is at depth (the top level is 1).
 * Declined: nesting past ZJSON_FAST_DEPTH_MAX, a type with more than
 * ZJSON_FAST_FIELDS_MAX fields, and a key met twice. */
static bool jf_object(jfast_t *p, ProtobufCMessage *msg, int depth)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    if (depth > ZJSON_FAST_DEPTH_MAX || desc->n_fields > ZJSON_FAST_FIELDS_MAX || !jf_eat(p, '{')) {
        return false;
    }
    if (jf_eat(p, '}')) {
        return true;
    }
    seen_t seen = {{0}};
    do {
        const ProtobufCFieldDescriptor *f = jf_key(p, desc);
        if (f == NULL || !seen_add(&seen, (size_t)(f - desc->fields))) {
            return false;
        }
        bool replaced = depth == 1 && jf_extra_sets(p, f);
        if (!(replaced ? jf_skip_scalar(p) : jf_member(p, msg, f, depth))) {
            return false;
        }
    } while (jf_eat(p, ','));
    return jf_eat(p, '}');
}

/* Finds each extra's field. Declined: more than ZJSON_FAST_EXTRAS_MAX
 * extras, a key that names no field, two extras of one field, a field that
 * is neither a string nor an integer (which takes a decimal string), and a
 * value that is not UTF-8 (json_stringn refuses it, and the slow path then
 * keeps the body's member). */
static bool jf_extras_find(jfast_t *p, const ProtobufCMessageDescriptor *desc)
{
    if (p->extra_count > ZJSON_FAST_EXTRAS_MAX) {
        return false;
    }
    for (int i = 0; i < p->extra_count; i++) {
        const zjson_extra_t *x = &p->extras[i];
        ZASSERT(x->key != NULL && x->value != NULL);
        const ProtobufCFieldDescriptor *f = jf_field(desc, x->key, x->key_len);
        if (f == NULL || f->label == PROTOBUF_C_LABEL_REPEATED || jf_extra_sets(p, f) ||
            (f->type != PROTOBUF_C_TYPE_STRING && !type_is_integer(f->type)) ||
            !utf8_valid(x->value, x->value_len)) {
            return false;
        }
        p->extra_fields[p->extras_found++] = f;
    }
    return true;
}

/* The extras into the top-level message, after its members, as strings by
 * the slow path's rules. Declined: a value that does not fit its field, and
 * a second member of a oneof. */
static bool jf_extras_set(const jfast_t *p, ProtobufCMessage *msg)
{
    for (int i = 0; i < p->extras_found; i++) {
        const ProtobufCFieldDescriptor *f = p->extra_fields[i];
        jin_t v = {.kind = JIN_STRING, .s = p->extras[i].value, .n = p->extras[i].value_len};
        if (oneof_case(msg, f) != 0 || jin_to_slot(f, &v, (char *)msg + f->offset) != JIN_OK) {
            return false;
        }
        field_mark_set(msg, f);
    }
    return true;
}

/* ---- public ------------------------------------------------------------ */

static void jctx_init(jctx_t *c, char *err, char *field)
{
    c->path[0] = '\0';
    c->path_len = 0;
    c->err = err;
    c->field = field;
    if (err != NULL) {
        err[0] = '\0';
    }
    if (field != NULL) {
        field[0] = '\0';
    }
}

int zjson_to_msg(const json_t *json, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
                 char err[ZCODEC_ERR_BYTES], char field[ZCODEC_ERR_BYTES])
{
    ZASSERT(desc != NULL && out != NULL);
    *out = NULL;
    jctx_t c;
    jctx_init(&c, err, field);
    if (json == NULL) {
        return fail(&c, "expected an object");
    }
    int rc = check_depth(&c, json, 1);
    if (rc == 0) {
        rc = obj_to_msg(&c, json, desc, out);
    }
    return rc;
}

int zjson_parse_msg(const char *text, size_t len, const ProtobufCMessageDescriptor *desc,
                    ProtobufCMessage **out, char err[ZCODEC_ERR_BYTES],
                    char field[ZCODEC_ERR_BYTES])
{
    ZASSERT(desc != NULL && out != NULL);
    ZASSERT(text != NULL || len == 0);
    *out = NULL;
    jctx_t c;
    jctx_init(&c, err, field);
    if (len > ZCODEC_JSON_BYTES_MAX) {
        return fail(&c, "JSON text longer than %u bytes", (unsigned)ZCODEC_JSON_BYTES_MAX);
    }
    /* Duplicate keys are refused: with "last one wins" two readers of the
     * same text could disagree about what it says. */
    json_error_t jerr;
    json_t *json = json_loadb(text != NULL ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (json == NULL) {
        return fail(&c, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
    }
    int rc = zjson_to_msg(json, desc, out, err, field);
    json_decref(json);
    return rc;
}

int zjson_fast_to_msg(const char *text, size_t len, const zjson_extra_t *extras, int extra_count,
                      const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
    ZASSERT(desc != NULL && out != NULL);
    ZASSERT(text != NULL || len == 0);
    ZASSERT(extra_count >= 0 && (extras != NULL || extra_count == 0));
    *out = NULL;
    if (len > ZCODEC_JSON_BYTES_MAX) {
        return ZE_AGAIN;
    }
    /* Field by field: an initializer would also clear the scratch buffer. */
    jfast_t p;
    p.text = text;
    p.len = len;
    p.pos = 0;
    p.extras = extras;
    p.extra_count = extra_count;
    p.extras_found = 0;
    if (!jf_extras_find(&p, desc)) {
        return ZE_AGAIN;
    }
    ProtobufCMessage *msg = msg_new(desc);
    if (msg == NULL) {
        return ZE_AGAIN;
    }
    /* An empty text is an empty object (a GET's body); otherwise one
     * object and nothing after it but whitespace. */
    bool ok = len == 0 || (jf_object(&p, msg, 1) && jf_peek(&p) == -1);
    if (!ok || !jf_extras_set(&p, msg)) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return ZE_AGAIN;
    }
    *out = msg;
    return 0;
}
