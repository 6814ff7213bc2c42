/* libFuzzer harness: the direct JSON reader (zjson_fast_to_msg) against the
 * jansson path it stands in for (json_loadb + zjson_to_msg). Input: one byte
 * choosing the message type (Command or one of its body members), one byte
 * choosing how many path-parameter extras to cut from the tail, then the text.
 * It aborts when the fast reader takes a text the jansson path refuses, or
 * takes it into a message that packs differently; sanitizers catch the rest.
 * Not built by ctest; build and run by hand (docs/api.md, "Calling"):
 *
 *   cmake -S . -B /tmp/build-fuzz -DCMAKE_C_COMPILER=clang -DZHILI_FUZZ=ON
 *   make -C /tmp/build-fuzz zhili-fuzz-json-fast
 *   /tmp/build-fuzz/bin/zhili-fuzz-json-fast -max_total_time=300 CORPUS_DIR
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/err.h"
#include "zhili.pb-c.h"

#define TYPES_MAX 256
#define EXTRAS_MAX 4
#define EXTRA_BYTES 16

static const ProtobufCMessageDescriptor *types[TYPES_MAX];
static int type_count;

static void types_init(void)
{
    const ProtobufCMessageDescriptor *cmd = &zhili__v1__command__descriptor;
    types[type_count++] = cmd;
    for (unsigned i = 0; i < cmd->n_fields && type_count < TYPES_MAX; i++) {
        if (cmd->fields[i].type == PROTOBUF_C_TYPE_MESSAGE) {
            types[type_count++] = cmd->fields[i].descriptor;
        }
    }
}

/* The slow path exactly as zjson_fast_to_msg's contract states it. */
static ProtobufCMessage *slow(const char *text, size_t len, const zjson_extra_t *extras, int n,
                              const ProtobufCMessageDescriptor *desc)
{
    json_error_t e;
    json_t *json = len == 0 ? json_object() : json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    if (json == NULL || !json_is_object(json)) {
        json_decref(json);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        json_object_setn_new(json, extras[i].key, extras[i].key_len,
                             json_stringn(extras[i].value, extras[i].value_len));
    }
    ProtobufCMessage *m = NULL;
    zjson_to_msg(json, desc, &m, NULL, NULL);
    json_decref(json);
    return m;
}

static uint8_t *packed(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len + 1);
    if (buf == NULL) {
        abort();
    }
    protobuf_c_message_pack(m, buf);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (type_count == 0) {
        types_init();
    }
    if (size < 2) {
        return 0;
    }
    const ProtobufCMessageDescriptor *desc = types[data[0] % type_count];
    int n = data[1] % (EXTRAS_MAX + 1);
    data += 2;
    size -= 2;
    /* Extras: key = a field name of desc, value = EXTRA_BYTES cut from the tail. */
    zjson_extra_t extras[EXTRAS_MAX];
    int got = 0;
    for (int i = 0; i < n && size >= EXTRA_BYTES + 1 && desc->n_fields > 0; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[data[size - 1] % desc->n_fields];
        size_t vlen = data[size - 2] % EXTRA_BYTES;
        size -= EXTRA_BYTES + 1;
        extras[got++] = (zjson_extra_t){f->name, strlen(f->name), (const char *)data + size, vlen};
    }
    const char *text = (const char *)data;
    ProtobufCMessage *fast = NULL;
    int rc = zjson_fast_to_msg(size ? text : NULL, size, extras, got, desc, &fast);
    ProtobufCMessage *ref = slow(text, size, extras, got, desc);
    if (rc == 0) {
        if (ref == NULL) {
            abort(); /* the fast reader took what the jansson path refuses */
        }
        size_t a_len, b_len;
        uint8_t *a = packed(fast, &a_len), *b = packed(ref, &b_len);
        if (a_len != b_len || memcmp(a, b, a_len) != 0) {
            abort(); /* the two readers disagree */
        }
        free(a);
        free(b);
        zcodec_free(fast);
    } else if (rc != ZE_AGAIN || fast != NULL) {
        abort();
    }
    if (ref != NULL) {
        zcodec_free(ref);
    }
    return 0;
}
