/* codec: protobuf pack/unpack with explicit size limits. Both directions refuse
 * oversize input before touching memory, so a peer can never make us allocate
 * more than the bound. */
#include "common/codec.h"

#include <stdlib.h>

#include "common/err.h"

int zcodec_pack(const ProtobufCMessage *msg, size_t max_bytes, uint8_t **out, size_t *out_len)
{
    ZASSERT(msg != NULL && out != NULL && out_len != NULL);
    *out = NULL;
    *out_len = 0;
    if (max_bytes == 0) {
        max_bytes = ZCODEC_MSG_BYTES_MAX;
    }
    /* Size first: a message over the bus limit is refused before allocating. */
    size_t size = protobuf_c_message_get_packed_size(msg);
    if (size > max_bytes) {
        return ZE_INVALID;
    }
    /* malloc(0) may return NULL; an empty message still gets a valid buffer. */
    uint8_t *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL) {
        return ZE_INTERNAL;
    }
    size_t written = protobuf_c_message_pack(msg, buf);
    ZASSERT(written == size);
    *out = buf;
    *out_len = written;
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
    /* protobuf-c does not tell malformed input from out-of-memory; bytes from
     * the wire are far more likely to be wrong, so both are ZE_INVALID. */
    static const uint8_t empty[1] = {0};
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, len, len > 0 ? data : empty);
    if (msg == NULL) {
        return ZE_INVALID;
    }
    *out = msg;
    return ZE_OK;
}
