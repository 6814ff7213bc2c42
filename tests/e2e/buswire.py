"""For tests that speak the bus's frames with raw ZeroMQ sockets: a DEALER
peer, and the protobuf wire format by hand (there is no generated Python
code), enough to build a Route and a Command and to read what comes back."""
import zmq


def _varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(num, wire_type):
    return _varint((num << 3) | wire_type)


def pb_bytes(num, value):
    if isinstance(value, str):
        value = value.encode()
    return _key(num, 2) + _varint(len(value)) + value


def pb_int(num, value):
    return _key(num, 0) + _varint(value) if value else b""


def _read_varint(buf, i):
    shift = value = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def pb_decode(buf):
    """{field number: [values]}: ints for varints, bytes for everything else."""
    fields, i = {}, 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 2:
            n, i = _read_varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field")
            v, i = bytes(buf[i:i + n]), i + n
        elif wt in (1, 5):
            n = 8 if wt == 1 else 4
            v, i = bytes(buf[i:i + n]), i + n
        else:
            raise ValueError(f"wire type {wt}")
        fields.setdefault(num, []).append(v)
    return fields


def _str(fields, num):
    return fields.get(num, [b""])[-1].decode(errors="replace")


def _int64(fields, num):
    v = fields.get(num, [0])[-1]
    return v - (1 << 64) if v >= 1 << 63 else v


def route(service, request_id, deadline_ms=0):
    return pb_bytes(1, service) + pb_bytes(2, request_id) + pb_int(3, deadline_ms)


def counter_add(name, amount):
    return pb_bytes(1, name) + pb_int(2, amount)


def command(request_id, body_field=None, body=b""):
    """Command{request_id=1, <body_field>=body}; counter_add is field 100."""
    out = pb_bytes(1, request_id)
    if body_field is not None:
        out += pb_bytes(body_field, body)
    return out


def decode_reply(buf):
    f = pb_decode(buf)
    counter = pb_decode(f[100][-1]) if 100 in f else {}
    return {"request_id": _str(f, 1), "status": f.get(2, [0])[-1], "message": _str(f, 3),
            "field": _str(f, 4), "counter_value": _int64(counter, 2) if counter else None}


class Peer:
    """A raw DEALER on the broker's ROUTER."""

    def __init__(self, ctx, endpoint, timeout_ms=3000):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        self.sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
        self.sock.connect(endpoint)

    def send(self, *frames):
        self.sock.send_multipart([f.encode() if isinstance(f, str) else f for f in frames])

    def recv(self):
        return self.sock.recv_multipart()

    def ask(self, *frames):
        self.send(*frames)
        return self.recv()

    def quiet(self, wait_ms):
        """No message arrives within wait_ms."""
        return self.sock.poll(wait_ms) == 0

    def close(self):
        self.sock.close(0)
