/* bus: the ZeroMQ side of zhili (docs/protocol.md has the frame tables).
 *
 * Commands travel through the broker's ROUTER; every peer is a DEALER and the
 * first frame of every message is a one-letter operation:
 *   client -> broker   Q  Route  Command          a request
 *   broker -> worker   Q  client-id  request-id  Command
 *   worker -> broker   P  client-id  request-id  Reply
 *   broker -> client   P  request-id  Reply
 *   worker -> broker   W  Register                ready, with credit
 *   worker <-> broker  H                          heartbeat
 *   worker <-> broker  D                          disconnect / please register again
 *   client -> broker   S                          stats request
 *   broker -> client   S  Stats
 *   broker -> anyone   E  sentence                a malformed message that has no reply
 * Events: producers PUB to the broker's XSUB; subscribers SUB from its XPUB;
 * two frames, topic "<source>.<type>" then the serialized Event; heartbeats
 * are "<source>.~hb" then a Heartbeat. */
#ifndef ZHILI_BUS_H
#define ZHILI_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "zhili.pb-c.h"

#define ZBUS_OP_REQUEST 'Q'
#define ZBUS_OP_REPLY 'P'
#define ZBUS_OP_REGISTER 'W'
#define ZBUS_OP_HEARTBEAT 'H'
#define ZBUS_OP_DISCONNECT 'D'
#define ZBUS_OP_STATS 'S'
#define ZBUS_OP_ERROR 'E'

#define ZBUS_FRAMES_MAX 6                      /* frames kept of one message; more is malformed */
#define ZBUS_MSG_BYTES_MAX (4u << 20)          /* a Command, Reply or Event */
#define ZBUS_TRANSPORT_BYTES_MAX (8u << 20)    /* ZMQ_MAXMSGSIZE: beyond it libzmq drops the peer */
#define ZBUS_HWM_MSGS 200000                   /* every socket's SNDHWM and RCVHWM */
#define ZBUS_NAME_BYTES_MAX 64                 /* service and source names */
#define ZBUS_TOPIC_BYTES_MAX 128
#define ZBUS_DEADLINE_MS_DEFAULT 5000
#define ZBUS_DEADLINE_MS_MAX 60000
#define ZBUS_ATTEMPT_MS 2000                   /* zbus_call resends after this long */
#define ZBUS_HB_SUFFIX "~hb"

_Static_assert(ZBUS_MSG_BYTES_MAX < ZBUS_TRANSPORT_BYTES_MAX,
               "the transport limit must leave room to answer an oversize message");

/* A received multipart message. */
typedef struct {
    zmq_msg_t parts[ZBUS_FRAMES_MAX];
    int count;        /* frames kept */
    int total;        /* frames received, count or more */
} zbus_frames_t;

/* New socket with every limit set explicitly: HWMs, MAXMSGSIZE, LINGER 0,
 * and for ROUTER sockets ROUTER_MANDATORY. NULL on failure (logged). */
void *zbus_socket_new(void *zctx, int type);

/* Receive one whole message without blocking. 0, ZE_AGAIN when none waits,
 * ZE_INTERNAL on a socket error. Frames beyond ZBUS_FRAMES_MAX are read and
 * dropped (counted in total). Close with zbus_frames_close. */
int zbus_frames_recv(void *socket, zbus_frames_t *frames);
void zbus_frames_close(zbus_frames_t *frames);

/* Whether a message waits on socket (ZMQ_EVENTS). This makes libzmq process
 * the socket's pending commands: a getpid and a poll(2) when its mailbox is
 * idle. false for NULL. */
bool zbus_readable(void *socket);

/* Block until one of the sockets may have a message, or timeout_ms passes
 * (-1: no limit): 1, or 0 on timeout or a signal. ZMQ_FD turns readable only
 * when commands arrive, and any libzmq call on the socket may process them
 * first (a send does, now and then), so a socket is asked for ZMQ_EVENTS
 * before sleeping on its descriptor, unless settled[i] says that the last
 * call on it was a receive that found nothing: that receive processed every
 * command, so the descriptor is armed. settled may be NULL (none is).
 * zmq_poll does the same with two passes of ZMQ_EVENTS over every socket
 * and two poll(2)s; this is one poll(2) and only the checks needed. */
int zbus_wait(void *const *sockets, const bool *settled, int count, long timeout_ms);
#define ZBUS_WAIT_SOCKETS_MAX 8

/* Frame i as bytes, and whether frame i is the one-letter operation op. */
const void *zbus_frame_data(zbus_frames_t *frames, int i, size_t *len);
bool zbus_frame_is_op(zbus_frames_t *frames, int i, char op);
/* Copy frame i into a NUL-terminated string; false when too long or has NUL. */
bool zbus_frame_str(zbus_frames_t *frames, int i, char *out, size_t out_len);

/* Send frames given as (data, len) pairs, non-blocking. 0, ZE_AGAIN on HWM,
 * ZE_UNAVAILABLE when a ROUTER peer is gone, ZE_INTERNAL otherwise. */
int zbus_send(void *socket, int count, const void *const *data, const size_t *lens);

/* A Reply with status and message, packed into a malloc'd buffer. */
int zbus_reply_pack(const char *request_id, int code, const char *message, uint8_t **out,
                    size_t *out_len);

/* Valid names: 1..ZBUS_NAME_BYTES_MAX of [a-z0-9_-], optionally "@<digits>". */
bool zbus_name_valid(const char *name);

/* A fresh request id: 32 hex characters, NUL-terminated. The first 16 are
 * random per process (drawn again in a forked child), the last 16 count,
 * so ids are unique without a system call per id (getrandom was ~1% of the
 * gateway's CPU on its read route). Not for secrets. Loop thread only. */
void zbus_request_id_new(char out[33]);

/* Services remember answers by request_id alone, so a client's own
 * Idempotency-Key is scoped to its caller before it becomes one:
 * "<actor_id>.<key>". Two callers using the same key (two districts'
 * hotlines numbering tickets alike) then never receive each other's answers
 * or have their commands swallowed. `cap` includes the NUL; ZE_INVALID when
 * the result would not fit. */
int zbus_request_id_scoped(const char *actor_id, const char *key, size_t key_len, char *out,
                           size_t cap);
/* The client's key inside a request_id scoped to `actor_id`, else the whole
 * request_id (for what is shown to people, e.g. a hotline ticket number). */
const char *zbus_request_id_key(const char *request_id, const char *actor_id);

/* ---- client: call services by name through the broker ------------------- */

typedef struct zbus_client zbus_client_t;

/* Connect a DEALER to the broker. NULL on failure. The client owns its socket. */
zbus_client_t *zbus_client_new(void *zctx, const char *broker_endpoint);
void zbus_client_destroy(zbus_client_t **self_p);

/* The DEALER socket, for zmq_poll by callers that multiplex. */
void *zbus_client_socket(zbus_client_t *self);

/* Send a packed Command without waiting. deadline_ms is absolute wall clock.
 * 0, ZE_AGAIN when the socket is full, ZE_INVALID for a bad name or size. */
int zbus_client_send(zbus_client_t *self, const char *service, const char *request_id,
                     int64_t deadline_ms, const uint8_t *cmd, size_t cmd_len);

/* Receive one reply without blocking. 0 with *reply (caller frees with
 * zcodec_free(&(*reply)->base), or zhili__v1__reply__free_unpacked(*reply,
 * NULL) which visits every result member); ZE_AGAIN when none waits;
 * ZE_INVALID for a malformed reply (logged, dropped). A broker 'E' message is
 * returned as a Reply with status INTERNAL and the broker's sentence. */
int zbus_client_recv(zbus_client_t *self, Zhili__V1__Reply **reply);

/* Call and wait: set a request_id when cmd has none, send, wait for the reply
 * with that id, resending under the same id every ZBUS_ATTEMPT_MS and after an
 * UNAVAILABLE from the broker, until timeout_ms passes. 0 with *reply, or
 * ZE_TIMEOUT. Replies to other request ids are dropped. */
int zbus_call(zbus_client_t *self, const char *service, Zhili__V1__Command *cmd, int timeout_ms,
              Zhili__V1__Reply **reply);

/* The broker's stats. 0 with *stats (free with zhili__v1__stats__free_unpacked). */
int zbus_broker_stats(zbus_client_t *self, int timeout_ms, Zhili__V1__Stats **stats);

#endif
