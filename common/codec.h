/* codec: protobuf pack/unpack with size limits, and a generic protobuf<->JSON
 * mapping driven by protobuf-c's descriptors (used by the gateway and the CLI).
 *
 * JSON form (docs/protocol.md):
 *   - field names are the .proto names (snake_case);
 *   - enums by name, lower case, without the enum's UPPER_SNAKE type prefix
 *     (Status.STATUS_NOT_FOUND <-> "not_found"); on input the full proto name
 *     and the number are accepted too;
 *   - int32/uint32/sint/fixed/int64/uint64 as JSON integers; on input a string
 *     of decimal digits is accepted too (for 64-bit values from JavaScript);
 *     uint64 above INT64_MAX is written as a string;
 *   - bool, float, double as JSON; bytes as standard base64 with padding;
 *   - a oneof: only the member that is set appears; two members of one oneof
 *     in the input is an error naming both;
 *   - nested messages as objects (absent when NULL); repeated as arrays (always
 *     written, possibly empty); scalars always written, zero included;
 *   - unknown keys, wrong types, out-of-range numbers, bad base64, invalid
 *     UTF-8 and depth over ZCODEC_JSON_DEPTH_MAX are errors naming the field
 *     path, e.g. "body.counter_add.amount: expected an integer".
 */
#ifndef ZHILI_CODEC_H
#define ZHILI_CODEC_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZCODEC_MSG_BYTES_MAX (4u << 20)  /* one protobuf message on the bus */
#define ZCODEC_JSON_DEPTH_MAX 32
#define ZCODEC_ERR_BYTES 256
/* Longest JSON text zjson_parse_msg reads: base64 and field names make JSON
 * larger than the protobuf form of the same message. */
#define ZCODEC_JSON_BYTES_MAX (4u * ZCODEC_MSG_BYTES_MAX)

/* Envelopes (codec.c explains): a message whose descriptor has one oneof of
 * at least ZCODEC_ONEOF_BIG_MEMBERS members, like Command, Reply and Event, is
 * sized, packed, unpacked and freed without protobuf-c's walk over every
 * member. A descriptor over any of these bounds takes protobuf-c's paths. */
#define ZCODEC_ONEOF_BIG_MEMBERS 9    /* members that make a oneof big */
#define ZCODEC_ENVELOPE_FIELDS_MAX 32 /* fields outside the big oneof */
#define ZCODEC_ENVELOPE_BYTES_MAX 512 /* the C struct, copied on the stack to pack */
#define ZCODEC_ENVELOPES_MAX 8        /* envelope descriptors in one process */
/* Descriptors of ZCODEC_ONEOF_BIG_MEMBERS fields or more remembered, as
 * envelopes or not. */
#define ZCODEC_DESCS_SEEN_MAX 64
_Static_assert(ZCODEC_ENVELOPES_MAX <= ZCODEC_DESCS_SEEN_MAX, "an envelope is a seen descriptor");

/* One top-level field of packed protobuf bytes, read in place. */
typedef struct {
    uint32_t id;         /* in: the field number */
    bool found;          /* out: a record with that number was met */
    const uint8_t *data; /* out, length-delimited records: the value's bytes */
    size_t len;
    uint64_t varint;     /* out, varint records: the value */
} zcodec_field_t;

/* Read the wanted top-level fields of data[0..len) without unpacking or
 * allocating: each takes the last record of its number (protobuf's rule for
 * a singular field met twice) if that record is length-delimited or a
 * varint. 0, or ZE_INVALID when a record does not scan: malformed bytes, or
 * an encoding the scan leaves to zcodec_unpack (long tags, groups). The
 * values are not checked further: a caller that needs the whole message
 * valid unpacks it. */
int zcodec_peek(const uint8_t *data, size_t len, zcodec_field_t *fields, size_t n);

/* Serialize into a malloc'd buffer the caller frees. ZE_INVALID when the packed
 * size exceeds max_bytes (0 = ZCODEC_MSG_BYTES_MAX), checked before
 * allocating; ZE_INTERNAL when out of memory. */
int zcodec_pack(const ProtobufCMessage *msg, size_t max_bytes, uint8_t **out, size_t *out_len);

/* Parse bytes. ZE_INVALID when len exceeds max_bytes (0 = ZCODEC_MSG_BYTES_MAX)
 * or the bytes are not a valid message. The caller frees *out with
 * zcodec_free(*out), or protobuf_c_message_free_unpacked(*out, NULL) (also
 * through the generated *_free_unpacked): the message is allocated with
 * malloc exactly as protobuf-c's unpacker allocates it. */
int zcodec_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                  size_t max_bytes, ProtobufCMessage **out);

/* Frees a message made by zcodec_unpack or zjson_to_msg (or any message
 * allocated with malloc the way protobuf-c's unpacker does), like
 * protobuf_c_message_free_unpacked(msg, NULL) but, for an envelope, without
 * visiting every member of its big oneof. NULL is a no-op. */
void zcodec_free(ProtobufCMessage *msg);

/* Message -> new JSON object (caller decrefs); NULL only when out of memory,
 * or when nesting exceeds ZCODEC_JSON_DEPTH_MAX (possible only with a
 * recursive schema). A string that is not valid UTF-8 is written with each
 * offending byte replaced by U+FFFD; NaN and infinities as the strings "NaN",
 * "Infinity", "-Infinity" (read back by zjson_to_msg); an enum number the
 * descriptor does not know as the integer. */
json_t *zjson_from_msg(const ProtobufCMessage *msg);

/* Message -> its compact JSON text, written straight from the descriptors:
 * byte for byte json_dumps(zjson_from_msg(msg), JSON_COMPACT) (jansson 2.14:
 * reals as "%.17g" with ".0" added to whole numbers, non-ASCII unescaped),
 * in about a seventh of the instructions. A malloc'd NUL-terminated buffer
 * the caller frees; *len (len may be NULL) is its length without the NUL.
 * NULL only when out of memory or nested deeper than ZCODEC_JSON_DEPTH_MAX,
 * as zjson_from_msg. */
char *zjson_text_from_msg(const ProtobufCMessage *msg, size_t *len);

/* The JSON text of field f's value alone, exactly as it appears after
 * "name": in zjson_text_from_msg(msg), e.g. a Reply's result member
 * (f from protobuf_c_message_descriptor_get_field(desc, reply->result_case);
 * f may be NULL). 0 with *out (the caller frees) and *len (may be NULL);
 * ZE_NOT_FOUND with *out NULL when the field is not in the JSON (f NULL, a
 * oneof member not set, a NULL message); ZE_INTERNAL when out of memory or
 * too deep. f must be one of msg's fields (asserted). */
int zjson_text_from_field(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                          char **out, size_t *len);

/* JSON object -> new message of type desc, allocated with malloc so that
 * zcodec_free(*out) or protobuf_c_message_free_unpacked(*out, NULL) frees it. On error returns
 * ZE_INVALID, *out is NULL, err holds "path: reason" and field (may be NULL)
 * the dotted path of the offending field (for an unknown key, the path
 * includes the key while err names its parent). err and field may be NULL.
 * Out of memory is ZE_INTERNAL. null for any field means absent; an enum
 * number the descriptor does not know is refused. */
int zjson_to_msg(const json_t *json, const ProtobufCMessageDescriptor *desc,
                 ProtobufCMessage **out, char err[ZCODEC_ERR_BYTES],
                 char field[ZCODEC_ERR_BYTES]);

/* Parse text then convert; malformed JSON names line and column. Duplicate
 * keys and text longer than ZCODEC_JSON_BYTES_MAX are ZE_INVALID. */
int zjson_parse_msg(const char *text, size_t len, const ProtobufCMessageDescriptor *desc,
                    ProtobufCMessage **out, char err[ZCODEC_ERR_BYTES],
                    char field[ZCODEC_ERR_BYTES]);

/* One member put into the object before conversion, replacing one of the same
 * key (the gateway's path parameters): a JSON string value given as raw bytes.
 * key and value are never NULL (asserted); borrowed, read during the call
 * only. */
typedef struct {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} zjson_extra_t;

/* The fast path of json_loadb + zjson_to_msg, for plain request bodies: reads
 * text[0..len) straight into a message of type desc, without a jansson tree.
 * 0 with *out: exactly the message (the same packed bytes) that this slow
 * path gives:
 *     json = len == 0 ? json_object()
 *                     : json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
 *     (json must be an object)
 *     for each extra:
 *         json_object_setn_new(json, key, key_len, json_stringn(value, value_len));
 *     zjson_to_msg(json, desc, out, ...)
 * allocated the same way (the caller frees it with zcodec_free).
 * ZE_AGAIN with *out NULL when it declines: any text the slow path refuses,
 * and what it leaves to it (keys with escapes or of 64 bytes or more, null,
 * non-empty arrays, bytes fields, objects nested deeper than 8, reals of 64
 * characters or more, types of more than 256 fields, more than 8 extras, two
 * extras of one field, extras for fields that are neither strings nor
 * integers, out of memory); the caller then runs the slow path, which words
 * the error. Never a success the slow path would not give. text may be NULL
 * when len is 0; extras may be NULL when extra_count is 0. */
int zjson_fast_to_msg(const char *text, size_t len, const zjson_extra_t *extras, int extra_count,
                      const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);

/* Enum value <-> JSON name as described above. The name is written to buf
 * (returned); NULL when the value is unknown or the name does not fit.
 * zjson_enum_value accepts the JSON name or the full proto name; 0 / -1. */
const char *zjson_enum_name(const ProtobufCEnumDescriptor *desc, int value, char *buf,
                            size_t buf_len);
int zjson_enum_value(const ProtobufCEnumDescriptor *desc, const char *name, int *value);

#endif
