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

static size_t path_push_index(jctx_t *c, size_t index)
{
    size_t saved = c->path_len;
    char buf[24];
    size_t n = sizeof buf;
    buf[--n] = ']';
    do {
        buf[--n] = (char)('0' + index % 10);
        index /= 10;
    } while (index != 0);
    buf[--n] = '[';
    path_append(c, buf + n, sizeof buf - n);
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

/* The JSON string v equals the literal lit, NUL bytes included. */
static bool json_string_is(const json_t *v, const char *lit)
{
    size_t n = strlen(lit);
    return json_string_length(v) == n && memcmp(json_string_value(v), lit, n) == 0;
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

/* ---- message -> JSON --------------------------------------------------- */

static json_t *msg_to_json(const ProtobufCMessage *msg, int depth);

/* Valid UTF-8 passes as is; otherwise each byte of an ill-formed sequence
 * becomes U+FFFD (3 bytes), hence the 3x buffer. */
static json_t *string_to_json(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || utf8_valid(s, n)) {
        return json_stringn_nocheck(n > 0 ? s : "", n);
    }
    if (n > (SIZE_MAX - 1) / 3) {
        return NULL;
    }
    char *buf = malloc(n * 3 + 1);
    if (buf == NULL) {
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq_len(p + i, n - i);
        if (len == 0) {
            memcpy(buf + out, "\xEF\xBF\xBD", 3);
            out += 3;
            i += 1;
        } else {
            memcpy(buf + out, s + i, len);
            out += len;
            i += len;
        }
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
    /* Base64 grows by 4/3; refuse sizes whose encoded length would wrap. */
    if (b->len > SIZE_MAX / 2) {
        return NULL;
    }
    size_t cap = sodium_base64_ENCODED_LEN(b->len, sodium_base64_VARIANT_ORIGINAL);
    char *buf = malloc(cap);
    if (buf == NULL) {
        return NULL;
    }
    sodium_bin2base64(buf, cap, b->data, b->len, sodium_base64_VARIANT_ORIGINAL);
    json_t *j = json_stringn_nocheck(buf, cap - 1);
    free(buf);
    return j;
}

/* uint64 above INT64_MAX does not fit a JSON integer as jansson (and
 * JavaScript) read it, so it is written as a decimal string. */
static json_t *u64_to_json(uint64_t u)
{
    if (u <= INT64_MAX) {
        return json_integer((json_int_t)u);
    }
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, u);
    return json_string(buf);
}

static json_t *double_to_json(double d)
{
    if (isnan(d)) {
        return json_string("NaN");
    }
    if (isinf(d)) {
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    }
    return json_real(d);
}

static json_t *enum_to_json(const ProtobufCEnumDescriptor *desc, int value)
{
    char buf[ZJSON_ENUM_NAME_BYTES];
    const char *name = zjson_enum_name(desc, value, buf, sizeof buf);
    return name != NULL ? json_string(name) : json_integer(value);
}

/* One value of field f stored at slot; depth is that of the enclosing
 * object or array. NULL only when out of memory or too deep. */
static json_t *slot_to_json(const ProtobufCFieldDescriptor *f, const void *slot, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)slot);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)slot);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)slot);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return u64_to_json(*(const uint64_t *)slot);
    case PROTOBUF_C_TYPE_FLOAT:
        return double_to_json(*(const float *)slot);
    case PROTOBUF_C_TYPE_DOUBLE:
        return double_to_json(*(const double *)slot);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)slot);
    case PROTOBUF_C_TYPE_ENUM:
        return enum_to_json(f->descriptor, *(const int *)slot);
    case PROTOBUF_C_TYPE_STRING:
        return string_to_json(*(char *const *)slot);
    case PROTOBUF_C_TYPE_BYTES:
        return bytes_to_json(slot);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
        /* Only a hand-built message can hold a NULL array element. */
        return sub != NULL ? msg_to_json(sub, depth + 1) : json_null();
    }
    }
    ZASSERT(!"unknown protobuf-c field type");
    return NULL;
}

static json_t *repeated_to_json(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                                int depth)
{
    if (depth > ZCODEC_JSON_DEPTH_MAX) {
        return NULL;
    }
    const char *base = (const char *)msg;
    size_t n = *(const size_t *)(base + f->quantifier_offset);
    const char *arr = *(const char *const *)(base + f->offset);
    size_t elem_bytes = slot_bytes(f->type);
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++) {
        json_t *e = slot_to_json(f, arr + i * elem_bytes, depth);
        if (e == NULL || json_array_append_new(a, e) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
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

/* ---- JSON -> message: leaves ------------------------------------------- */

/* Optional '-', then at least one digit, and nothing else (no '+', spaces or
 * NUL bytes), so that strtoll/strtoull cannot skip or accept anything. */
static bool json_is_decimal(const json_t *v)
{
    if (!json_is_string(v)) {
        return false;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    size_t i = s[0] == '-' ? 1 : 0;
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

static int json_to_i64(jctx_t *c, const json_t *v, int64_t min, int64_t max, int64_t *out)
{
    int64_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_decimal(v)) {
        errno = 0;
        long long ll = strtoll(json_string_value(v), NULL, 10);
        if (errno == ERANGE) {
            return fail(c, "out of range");
        }
        x = ll;
    } else {
        return fail(c, "expected an integer");
    }
    if (x < min || x > max) {
        return fail(c, "out of range");
    }
    *out = x;
    return 0;
}

static int json_to_u64(jctx_t *c, const json_t *v, uint64_t max, uint64_t *out)
{
    uint64_t x;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0) {
            return fail(c, "out of range");
        }
        x = (uint64_t)json_integer_value(v);
    } else if (json_is_decimal(v)) {
        const char *s = json_string_value(v);
        /* strtoull would wrap "-5" silently; only "-0..." is a valid uint. */
        if (s[0] == '-' && s[1 + strspn(s + 1, "0")] != '\0') {
            return fail(c, "out of range");
        }
        errno = 0;
        unsigned long long ull = strtoull(s, NULL, 10);
        if (errno == ERANGE) {
            return fail(c, "out of range");
        }
        x = ull;
    } else {
        return fail(c, "expected an integer");
    }
    if (x > max) {
        return fail(c, "out of range");
    }
    *out = x;
    return 0;
}

static int json_to_double(jctx_t *c, const json_t *v, double *out)
{
    if (json_is_real(v)) {
        *out = json_real_value(v);
    } else if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
    } else if (json_is_string(v) && json_string_is(v, "NaN")) {
        *out = NAN;
    } else if (json_is_string(v) && json_string_is(v, "Infinity")) {
        *out = INFINITY;
    } else if (json_is_string(v) && json_string_is(v, "-Infinity")) {
        *out = -INFINITY;
    } else {
        return fail(c, "expected a number");
    }
    return 0;
}

static int json_to_float(jctx_t *c, const json_t *v, float *out)
{
    double d;
    int rc = json_to_double(c, v, &d);
    if (rc != 0) {
        return rc;
    }
    if (isfinite(d) && (d > FLT_MAX || d < -FLT_MAX)) {
        return fail(c, "out of range");
    }
    *out = (float)d;
    return 0;
}

static int json_to_enum(jctx_t *c, const ProtobufCEnumDescriptor *desc, const json_t *v, int *out)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strlen(s) == json_string_length(v) && zjson_enum_value(desc, s, out) == 0) {
            return 0;
        }
        return fail(c, "unknown value \"%s\" of enum %s", s, desc->name);
    }
    if (!json_is_integer(v)) {
        return fail(c, "expected an enum name or number");
    }
    int64_t x;
    int rc = json_to_i64(c, v, INT32_MIN, INT32_MAX, &x);
    if (rc != 0) {
        return rc;
    }
    if (protobuf_c_enum_descriptor_get_value(desc, (int)x) == NULL) {
        return fail(c, "unknown value %" PRId64 " of enum %s", x, desc->name);
    }
    *out = (int)x;
    return 0;
}

/* A proto string is a C string: NUL bytes cannot be carried, and JSON built
 * by hand (json_stringn_nocheck) may hold invalid UTF-8. */
static int json_to_string(jctx_t *c, const json_t *v, char **out)
{
    if (!json_is_string(v)) {
        return fail(c, "expected a string");
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (memchr(s, '\0', n) != NULL) {
        return fail(c, "NUL character in a string");
    }
    if (!utf8_valid(s, n)) {
        return fail(c, "invalid UTF-8");
    }
    char *copy = malloc(n + 1);
    if (copy == NULL) {
        return fail_oom(c);
    }
    memcpy(copy, s, n + 1);
    *out = copy;
    return 0;
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

/* ---- JSON -> message: fields ------------------------------------------- */

static int obj_to_msg(jctx_t *c, const json_t *v, const ProtobufCMessageDescriptor *desc,
                      ProtobufCMessage **out);

/* Integer types by width and sign; the slot is written only on success. */
static int json_to_integer_slot(jctx_t *c, ProtobufCType t, const json_t *v, void *slot)
{
    int64_t i = 0;
    uint64_t u = 0;
    int rc;
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((rc = json_to_i64(c, v, INT32_MIN, INT32_MAX, &i)) == 0) {
            *(int32_t *)slot = (int32_t)i;
        }
        return rc;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((rc = json_to_u64(c, v, UINT32_MAX, &u)) == 0) {
            *(uint32_t *)slot = (uint32_t)u;
        }
        return rc;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if ((rc = json_to_u64(c, v, UINT64_MAX, &u)) == 0) {
            *(uint64_t *)slot = u;
        }
        return rc;
    default: /* int64, sint64, sfixed64 */
        if ((rc = json_to_i64(c, v, INT64_MIN, INT64_MAX, &i)) == 0) {
            *(int64_t *)slot = i;
        }
        return rc;
    }
}

/* Converts v into the C slot of field f (a struct member or an array
 * element). Pointer slots are written only on success, so a half-built
 * message stays exactly what protobuf_c_message_free_unpacked expects. */
static int json_to_slot(jctx_t *c, const ProtobufCFieldDescriptor *f, const json_t *v, void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return json_to_integer_slot(c, f->type, v, slot);
    case PROTOBUF_C_TYPE_FLOAT:
        return json_to_float(c, v, slot);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_to_double(c, v, slot);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v)) {
            return fail(c, "expected a boolean");
        }
        *(protobuf_c_boolean *)slot = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return json_to_enum(c, f->descriptor, v, slot);
    case PROTOBUF_C_TYPE_STRING:
        return json_to_string(c, v, slot);
    case PROTOBUF_C_TYPE_BYTES:
        return json_to_bytes(c, v, slot);
    case PROTOBUF_C_TYPE_MESSAGE:
        return obj_to_msg(c, v, f->descriptor, slot);
    }
    ZASSERT(!"unknown protobuf-c field type");
    return ZE_INTERNAL;
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
    if (rc != 0) {
        return rc;
    }
    /* Presence is marked only after the value is in place, so that a failed
     * member is never freed by free_unpacked as if it were set. */
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        *(uint32_t *)(base + f->quantifier_offset) = f->id;
    } else if (field_has_flag(f)) {
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    }
    return 0;
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
    } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF &&
               *(uint32_t *)((char *)msg + f->quantifier_offset) != 0) {
        uint32_t other_id = *(uint32_t *)((char *)msg + f->quantifier_offset);
        const ProtobufCFieldDescriptor *other =
            protobuf_c_message_descriptor_get_field(desc, other_id);
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
    ProtobufCMessage *msg = malloc(desc->sizeof_message);
    if (msg == NULL) {
        return fail_oom(c);
    }
    protobuf_c_message_init(desc, msg);
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
