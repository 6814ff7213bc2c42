"""The gateway end to end: real broker, test service and gateway processes on
loopback, driven over HTTP (requests), SSE and WebSocket (raw sockets), and
zhilictl for tokens. Each test states the property it checks."""
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

from zhili_stack import BIN, SRC, Gateway

ROLES = ["admin", "command_center", "hotline", "staff", "grid_member", "police", "committee",
         "supervisor", "property", "party_branch", "resident"]


@pytest.fixture
def gw(stack):
    stack.broker()
    stack.testsvc("testsvc")
    g = Gateway(stack)
    stack.wait_ready("testsvc")
    stack.wait_ready("gateway")
    return g


def post_counter(gw, token, name, amount=1, key=None, area=None):
    headers = Gateway.auth(token)
    if key:
        headers["Idempotency-Key"] = key
    url = gw.url + "/api/v1/test/counters" + (f"?area={area}" if area else "")
    return requests.post(url, json={"name": name, "amount": amount}, headers=headers, timeout=10)


# ---- SSE and WebSocket clients ------------------------------------------------

class Sse:
    """A minimal SSE reader over a raw socket (so a test controls reading).
    It decodes chunked transfer encoding and keeps offsets rather than
    re-slicing, so thousands of events parse in linear time."""

    def __init__(self, gw, path, headers=None, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:  # before connect, so that the window is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", gw.port))
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{gw.port}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.wire = bytearray()   # bytes as received (chunked)
        self.raw = bytearray()    # decoded body
        self.pos = 0              # parse position in raw
        self.ended = False
        while b"\r\n\r\n" not in self.wire:
            self._recv(10)
        end = self.wire.index(b"\r\n\r\n")
        head = bytes(self.wire[:end])
        del self.wire[:end + 4]
        self.status = int(head.split(b" ")[1])
        self.chunked = b"transfer-encoding: chunked" in head.lower()

    def _recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("stream closed")
        self.wire += data

    def _decode(self):
        if not self.chunked:
            self.raw += self.wire
            del self.wire[:]
            return
        at = 0
        while True:
            nl = self.wire.find(b"\r\n", at)
            if nl < 0:
                break
            size = int(bytes(self.wire[at:nl]).split(b";")[0], 16)
            if len(self.wire) < nl + 2 + size + 2:
                break
            if size == 0:
                self.ended = True
            self.raw += self.wire[nl + 2:nl + 2 + size]
            at = nl + 2 + size + 2
        del self.wire[:at]

    def event(self, timeout=10):
        """The next SSE message as a dict of its fields (comments skipped)."""
        end = time.time() + timeout
        while True:
            self._decode()
            sep = self.raw.find(b"\n\n", self.pos)
            if sep >= 0:
                block = bytes(self.raw[self.pos:sep]).decode()
                self.pos = sep + 2
                if self.pos > (1 << 20):
                    del self.raw[:self.pos]
                    self.pos = 0
                fields = {}
                for line in block.split("\n"):
                    if line.startswith(":") or not line:
                        continue
                    k, _, v = line.partition(":")
                    fields[k] = v[1:] if v.startswith(" ") else v
                if "data" in fields:  # a bare "retry:" block is not a message
                    return fields
                continue
            if self.ended:
                raise EOFError("stream ended")
            left = end - time.time()
            if left <= 0:
                raise TimeoutError("no event")
            try:
                self._recv(left)
            except socket.timeout:
                raise TimeoutError("no event")

    def events(self, n, timeout=10, skip_heartbeats=True):
        out = []
        while len(out) < n:
            e = self.event(timeout)
            if skip_heartbeats and e.get("event") == "heartbeat":
                continue
            out.append(e)
        return out

    def close(self):
        self.sock.close()


def data_events(sse, n, timeout=10):
    return [(e["id"], json.loads(e["data"])) for e in sse.events(n, timeout)]


# ---- auth ---------------------------------------------------------------------

def test_auth_matrix(gw):
    """Every role against the test routes inside and outside its area, no
    token, an unknown token and a revoked one: 401 / 403 / 2xx as the
    permission table says, and nothing changes on a refusal."""
    allowed = {"admin", "staff"}
    for role in ROLES:
        token, _ = gw.token(role, area="220503")
        r = post_counter(gw, token, f"m-{role}", area="220503001")
        assert r.status_code == (201 if role in allowed else 403), (role, r.text)
        r = requests.get(gw.url + f"/api/v1/test/counters/m-{role}?area=220503",
                         headers=Gateway.auth(token), timeout=10)
        assert r.status_code == (200 if role in allowed else 403), (role, r.text)
        r = post_counter(gw, token, f"out-{role}", area="370612")
        assert r.status_code == 403, (role, r.text)
        assert r.json()["error"]["status"] == "forbidden"
        s = requests.get(gw.url + "/api/v1/whoami", headers=Gateway.auth(token), timeout=10)
        assert s.status_code == 200 and s.json()["role"] == role and s.json()["area"] == "220503"
    admin, _ = gw.token("admin")
    for role in ROLES:  # the refused ones changed nothing
        r = requests.get(gw.url + f"/api/v1/test/counters/out-{role}", headers=Gateway.auth(admin),
                         timeout=10)
        assert r.status_code == 404
    r = requests.get(gw.url + "/api/v1/test/counters/x", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["status"] == "unauthenticated"
    r = requests.get(gw.url + "/api/v1/test/counters/x", headers=Gateway.auth("zl_nope"), timeout=10)
    assert r.status_code == 401
    token, tid = gw.token("staff", area="220503")
    assert post_counter(gw, token, "rv").status_code == 201
    gw.stack.ctl("token", "revoke", tid, check=True)
    assert post_counter(gw, token, "rv").status_code == 401


def test_session_cookie_and_ticket(gw):
    """A token traded for a session cookie (HttpOnly, SameSite=Strict) works
    without the header; a stream ticket opens the stream; logout clears it."""
    token, _ = gw.token("command_center", area="220503")
    s = requests.Session()
    r = s.post(gw.url + "/api/v1/session", headers=Gateway.auth(token), timeout=10)
    assert r.status_code == 201
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and token not in cookie
    assert s.get(gw.url + "/api/v1/whoami", timeout=10).json()["role"] == "command_center"
    t = s.post(gw.url + "/api/v1/stream-ticket", timeout=10).json()["ticket"]
    sse = Sse(gw, f"/api/v1/stream?ticket={t}")
    assert sse.status == 200
    sse.close()
    assert Sse(gw, "/api/v1/stream?ticket=bogus").status == 401
    s.delete(gw.url + "/api/v1/session", timeout=10)
    assert s.get(gw.url + "/api/v1/whoami", timeout=10).status_code == 401


# ---- commands -----------------------------------------------------------------

def test_statuses_and_idempotency(gw):
    """Reply statuses map to HTTP codes; an Idempotency-Key makes a resend
    return the first answer and change nothing; errors name the field."""
    token, _ = gw.token("staff", area="220503")
    r1 = post_counter(gw, token, "idem", 5, key="12345-20261126-000183")
    r2 = post_counter(gw, token, "idem", 5, key="12345-20261126-000183")
    assert r1.status_code == r2.status_code == 201
    assert r1.json() == r2.json() == {"name": "idem", "value": 5, "adds": 1}
    assert r1.headers["X-Request-Id"] == "12345-20261126-000183"
    # The same key from another caller is another request: applied, and not
    # answered with the first caller's reply.
    other, _ = gw.token("staff", area="220503")
    r3 = post_counter(gw, other, "idem", 5, key="12345-20261126-000183")
    assert r3.status_code == 201 and r3.json() == {"name": "idem", "value": 10, "adds": 2}
    assert r3.headers["X-Request-Id"] == "12345-20261126-000183"
    r = post_counter(gw, token, "idem", 5, key="k" * 184)
    assert r.status_code == 400 and r.json()["error"]["field"] == "Idempotency-Key"
    r = post_counter(gw, token, "idem", 0)
    assert r.status_code == 400 and r.json()["error"]["field"] == "amount"
    r = requests.get(gw.url + "/api/v1/test/counters/none", headers=Gateway.auth(token), timeout=10)
    assert r.status_code == 404 and r.json()["error"]["status"] == "not_found"
    r = requests.get(gw.url + "/api/v1/test/counters/idem", headers=Gateway.auth(token), timeout=10)
    assert r.json()["value"] == 10


def test_bad_input(gw):
    """Oversize bodies, wrong content types, malformed JSON, unknown fields,
    wrong types, bad keys, unknown routes and methods: a clear 4xx naming the
    problem, and nothing changes."""
    token, _ = gw.token("staff", area="220503")
    h = Gateway.auth(token)
    url = gw.url + "/api/v1/test/counters"
    # The gateway answers 413 from the headers, before the body arrives (a
    # client that insists on sending it may see the connection reset instead).
    big = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    big.sendall((f"POST /api/v1/test/counters HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {(1 << 20) + 1}\r\n\r\n").encode())
    answer = big.recv(65536)
    big.close()
    assert answer.startswith(b"HTTP/1.1 413") and b'"field":"body"' in answer, answer
    r = requests.post(url, data="name=x", headers={**h, "Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 415 and r.json()["error"]["field"] == "Content-Type"
    r = requests.post(url, data='{"name": "x",\n "amount": }', headers={**h, "Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and "line 2" in r.json()["error"]["message"]
    r = requests.post(url, json={"name": "x", "amount": 1, "colour": "red"}, headers=h, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["field"] == "colour"
    r = requests.post(url, json={"name": "x", "amount": "lots"}, headers=h, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["field"] == "amount"
    r = requests.post(url, json=[1, 2], headers=h, timeout=10)
    assert r.status_code == 400
    r = requests.post(url, json={"name": "x", "amount": 1}, headers={**h, "Idempotency-Key": "a b"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["field"] == "Idempotency-Key"
    r = requests.get(gw.url + "/api/v1/nothing", headers=h, timeout=10)
    assert r.status_code == 404
    r = requests.delete(url, headers=h, timeout=10)
    assert r.status_code == 405
    r = requests.get(gw.url + "/api/v1/test/counters/x", headers=Gateway.auth(token), timeout=10)
    assert r.status_code == 404  # nothing of the above was applied


def test_unavailable_service(stack):
    """With the service down, a command waits out its deadline and gets 503
    with the broker's sentence; the gateway stays up."""
    stack.broker()
    g = Gateway(stack, ZHILI_CALL_TIMEOUT_MS="800")
    stack.wait_ready("gateway")
    token, _ = g.token("staff", area="220503")
    r = post_counter(g, token, "x")
    assert r.status_code == 503 and "testsvc" in r.json()["error"]["message"]


# ---- streams ------------------------------------------------------------------

def test_stream_filters_and_resume(gw):
    """Topic and area filters decide what a client gets; reconnecting with
    Last-Event-ID gives every missed event once, in order."""
    admin, _ = gw.token("admin")
    staff, _ = gw.token("staff", area="220503")
    all_ = Sse(gw, "/api/v1/stream?topics=testsvc.", Gateway.auth(admin))
    mine = Sse(gw, "/api/v1/stream?area=220503001", Gateway.auth(admin))
    none = Sse(gw, "/api/v1/stream?topics=nothing.", Gateway.auth(admin))
    time.sleep(0.3)
    for i in range(6):
        area = "220503001" if i % 2 == 0 else "220503002"
        assert post_counter(gw, staff, "s", area=area).status_code == 201
    got = data_events(all_, 6)
    assert [e["seq"] for _, e in got] == list(range(1, 7))
    assert [e["seq"] for _, e in data_events(mine, 3)] == [1, 3, 5]
    with pytest.raises(TimeoutError):
        none.events(1, timeout=0.7)
    last_id = got[2][0]  # the client saw 1..3 and dropped
    all_.close()
    for i in range(3):
        assert post_counter(gw, staff, "s").status_code == 201
    again = Sse(gw, "/api/v1/stream?topics=testsvc.", {**Gateway.auth(admin), "Last-Event-ID": last_id})
    assert [e["seq"] for _, e in data_events(again, 6)] == [4, 5, 6, 7, 8, 9]
    with pytest.raises(TimeoutError):
        again.events(1, timeout=0.5)
    r = Sse(gw, "/api/v1/stream", {**Gateway.auth(admin), "Last-Event-ID": "garbage"})
    assert r.status == 400
    outside = Sse(gw, "/api/v1/stream?area=370612", Gateway.auth(staff))
    assert outside.status == 403


def test_resume_after_gateway_kill9(gw):
    """A client resumes across a kill -9 of the gateway: what the new
    gateway's memory never held comes from the source's outbox."""
    admin, _ = gw.token("admin")
    staff, _ = gw.token("staff", area="220503")
    sse = Sse(gw, "/api/v1/stream?topics=testsvc.", Gateway.auth(admin))
    time.sleep(0.3)
    for _ in range(5):
        post_counter(gw, staff, "k")
    got = data_events(sse, 5)
    last_id = got[-1][0]
    sse.close()
    gw.stack.kill("gateway")
    for i in range(5):  # straight to the service while the gateway is down
        rc, _ = gw.stack.call("testsvc", {"request_id": f"down-{i}",
                                          "counter_add": {"name": "k", "amount": 1}})
        assert rc == 0
    gw.start()
    again = Sse(gw, "/api/v1/stream?topics=testsvc.", {**Gateway.auth(admin), "Last-Event-ID": last_id})
    seqs = [e["seq"] for _, e in data_events(again, 5)]
    assert seqs == [6, 7, 8, 9, 10]
    post_counter(gw, staff, "k")
    assert [e["seq"] for _, e in data_events(again, 1)] == [11]


def test_resume_far_behind_the_ring_is_fetched_in_pages(stack):
    """A client resuming from an id thousands of events back, far behind what
    the gateway's ring holds (100 events here), gets every event it missed from
    the source's outbox, page after page, in order, none twice, then the live
    ones, and it is not judged slow while it catches up."""
    stack.broker()
    stack.testsvc("testsvc")
    g = Gateway(stack, ZHILI_STREAM_RING_EVENTS="100")
    stack.wait_ready("testsvc")
    admin, _ = g.token("admin")
    load = subprocess.run([os.path.join(BIN, "zhili-testload"), "testsvc", "5000", "500", "far"],
                          env=stack.env, capture_output=True, text=True, timeout=120)
    assert load.returncode == 0, load.stderr
    start = time.time()
    sse = Sse(g, "/api/v1/stream?topics=testsvc.",
              {**Gateway.auth(admin), "Last-Event-ID": "testsvc:10"})
    seqs = [e["seq"] for _, e in data_events(sse, 4990, timeout=20)]
    assert seqs == list(range(11, 5001))
    assert time.time() - start < 20, "the catch-up trickled"
    rc, _ = stack.call("testsvc", {"request_id": "live-1", "counter_add": {"name": "c", "amount": 1}})
    assert rc == 0 and [e["seq"] for _, e in data_events(sse, 1)] == [5001]
    m = requests.get(g.url + "/metrics", headers=Gateway.auth(admin), timeout=10).text
    assert re.search(r"^zhili_gateway_stream_dropped_slow_total 0$", m, re.M), m


def test_slow_client_is_dropped_and_others_flow(stack):
    """A client that never reads is closed once its queue passes the bound,
    with a final event naming the reason; a reading client keeps getting
    events within a second meanwhile."""
    stack.broker()
    stack.testsvc("testsvc")
    g = Gateway(stack, ZHILI_STREAM_QUEUE_BYTES=str(1 << 20))
    stack.wait_ready("testsvc")
    admin, _ = g.token("admin")
    slow = socket.create_connection(("127.0.0.1", g.port))
    slow.sendall(f"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\r\n".encode())
    fast = Sse(g, "/api/v1/stream", Gateway.auth(admin))
    time.sleep(0.3)
    import threading
    EVENTS = 8000
    got, gaps = [], []

    def read():
        last = time.time()
        while len(got) < EVENTS:
            got.append(fast.events(1, timeout=30)[0])
            gaps.append(time.time() - last)
            last = time.time()

    reader = threading.Thread(target=read)
    reader.start()
    # A steady few thousand events a second, which a Python reader keeps up
    # with on a busy machine; the one that never reads still falls a few MiB
    # behind, past the 1 MiB bound.
    load = subprocess.run([os.path.join(BIN, "zhili-testload"), "testsvc", str(EVENTS), "4", "slow"],
                          env=stack.env, capture_output=True, text=True, timeout=120)
    assert load.returncode == 0
    # The slow one wakes up now: it gets the backlog already handed to the
    # socket, then the reason it was closed (the gateway dropped the rest).
    slow.settimeout(5)
    data = bytearray()
    try:
        while True:
            chunk = slow.recv(1 << 20)
            if not chunk:
                break
            data += chunk
            if b"event: closed" in data:
                break
    except socket.timeout:
        pass
    reader.join(timeout=60)
    assert len(got) == EVENTS
    # The reading client never waited a second for its next event.
    assert max(gaps[1:]) < 1.0, max(gaps[1:])
    m = requests.get(g.url + "/metrics", headers=Gateway.auth(admin), timeout=10).text
    assert re.search(r"^zhili_gateway_stream_dropped_slow_total [1-9]", m, re.M), m
    assert b"event: closed" in data and b"slow client" in data


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1))


def test_burst_to_paused_readers_waits_in_the_shared_ring(stack):
    """Backpressure: while 40 clients read nothing, a burst of 10 000 events
    stays in the hub's shared ring instead of being copied into 40 private
    queues (about 3 MB each), and every client then gets every event, in
    order, none twice, none dropped."""
    CLIENTS, EVENTS = 40, 10000
    stack.broker()
    stack.testsvc("testsvc")
    # A lag bound well above the burst: no client may be judged slow here.
    g = Gateway(stack, ZHILI_STREAM_QUEUE_BYTES=str(64 << 20))
    stack.wait_ready("testsvc")
    admin, _ = g.token("admin")
    # Each stream is up (headers read) before the burst; little room in the kernel.
    clients = [Sse(g, "/api/v1/stream?topics=testsvc.", Gateway.auth(admin), rcvbuf=16384)
               for _ in range(CLIENTS)]
    pid = stack.procs["gateway"].pid
    before = rss_kib(pid)
    load = subprocess.run([os.path.join(BIN, "zhili-testload"), "testsvc", str(EVENTS), "1000",
                           "burst"], env=stack.env, capture_output=True, text=True, timeout=120)
    assert load.returncode == 0, load.stderr
    time.sleep(1.0)  # the hub has the burst; the clients still read nothing
    grown_mib = (rss_kib(pid) - before) / 1024
    # Private copies would be 40 x ~3 MB; the watermark holds ~64 KiB each.
    assert grown_mib < 40, f"gateway grew by {grown_mib:.1f} MiB during the burst"
    for c in clients:
        events = c.events(EVENTS, timeout=30)
        assert all("event" not in e for e in events)  # no "closed"
        seqs = [json.loads(e["data"])["seq"] for e in events]
        assert seqs == list(range(1, EVENTS + 1)), "gap, duplicate or loss"
        c.close()
    m = requests.get(g.url + "/metrics", headers=Gateway.auth(admin), timeout=10).text
    assert re.search(r"^zhili_gateway_stream_dropped_slow_total 0$", m, re.M), m


class Ws:
    """A minimal WebSocket client (RFC 6455) over a raw socket."""

    def __init__(self, gw, path, headers=None):
        import base64
        self.sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ")[1])

    def send(self, opcode, payload=b""):
        mask = os.urandom(4)
        n = len(payload)
        hdr = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
        self.sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _need(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data

    def recv(self):
        self._need(2)
        op, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        off = 2
        if n == 126:
            self._need(4)
            n, off = int.from_bytes(self.buf[2:4], "big"), 4
        elif n == 127:
            self._need(10)
            n, off = int.from_bytes(self.buf[2:10], "big"), 10
        self._need(off + n)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return op, payload

    def message(self):
        while True:
            op, payload = self.recv()
            if op == 1:
                m = json.loads(payload)
                if m.get("type") != "heartbeat":
                    return m
            elif op == 8:
                return {"type": "close", "code": int.from_bytes(payload[:2], "big")}


def test_websocket_stream_ping_close(gw):
    """Events over WebSocket with ids, resume with ?since=, ping answered by
    pong, and a client close answered by a close."""
    admin, _ = gw.token("admin")
    staff, _ = gw.token("staff", area="220503")
    ws = Ws(gw, "/api/v1/ws?topics=testsvc.", Gateway.auth(admin))
    assert ws.status == 101
    time.sleep(0.3)
    for _ in range(3):
        post_counter(gw, staff, "w")
    msgs = [ws.message() for _ in range(3)]
    assert [m["event"]["seq"] for m in msgs] == [1, 2, 3]
    assert msgs[0]["topic"] == "testsvc.added"
    ws.send(9, b"hi")
    op, payload = ws.recv()
    while op != 10:
        op, payload = ws.recv()
    assert payload == b"hi"
    ws.send(8, (1000).to_bytes(2, "big"))
    op, _ = ws.recv()
    while op != 8:
        op, _ = ws.recv()
    again = Ws(gw, f"/api/v1/ws?topics=testsvc.&since={msgs[0]['id']}", Gateway.auth(admin))
    assert [again.message()["event"]["seq"] for _ in range(2)] == [2, 3]
    plain = requests.get(gw.url + "/api/v1/ws", headers=Gateway.auth(admin), timeout=10)
    assert plain.status_code == 400


# ---- ops ----------------------------------------------------------------------

def test_health_ready_metrics(stack):
    """/healthz is up at once; /readyz waits for the broker and the required
    services; /metrics has the gateway's, the broker's and the services'
    figures, and needs a metrics role."""
    stack.broker()
    g = Gateway(stack, ZHILI_REQUIRED_SERVICES="testsvc")
    assert requests.get(g.url + "/healthz", timeout=5).status_code == 200
    r = requests.get(g.url + "/readyz", timeout=5)
    assert r.status_code == 503 and r.json()["missing"] == ["testsvc"]
    stack.testsvc("testsvc")
    stack.wait_ready("testsvc")
    assert requests.get(g.url + "/readyz", timeout=5).status_code == 200
    cc, _ = g.token("command_center", area="220503")
    hot, _ = g.token("hotline", area="220503")
    assert requests.get(g.url + "/metrics", headers=Gateway.auth(hot), timeout=5).status_code == 403
    m = requests.get(g.url + "/metrics", headers=Gateway.auth(cc), timeout=5).text
    for name in ["zhili_gateway_command_latency_ms_bucket", "zhili_broker_workers",
                 "zhili_service_commands_total{service=\"testsvc\"}", "zhili_gateway_stream_clients"]:
        assert name in m, name


def test_openapi_documents_every_route():
    """docs/openapi.yaml names every path and method of the route table."""
    import yaml
    out = subprocess.run([os.path.join(BIN, "zhili-gateway"), "--routes"], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    with open(os.path.join(SRC, "docs", "openapi.yaml")) as f:
        doc = yaml.safe_load(f)
    for line in out:
        method, path = line.split()[:2]
        assert path in doc["paths"], path
        assert method.lower() in doc["paths"][path], (method, path)
