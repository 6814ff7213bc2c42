"""The gateway's HTTP layer (services/gateway/http) behaves as http.h says.

Goal: drive the real layer over loopback sockets through zhili-http-demo
(a test-only server built on http.h alone) and check every promise the
gateway relies on: plain answers with headers, the 1 MiB body limit with a
JSON 413, asynchronous answers and their cancellation when the client
leaves, SSE streams (order, end, combining many writes into one), WebSocket
(echo, fragments, ping/pong, closes from either side), a client that stops
reading does not hold up others, static files, h2o's own 400 and 404, and a
clean shutdown with connections still open.

Set ZHILI_HTTP_VALGRIND=1 to run every demo process under valgrind; the
teardown then fails on any memory error or leak in the valgrind log.
"""
import base64
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import time

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("ZHILI_SRC", os.path.abspath(os.path.join(HERE, "..", "..")))
BIN = os.environ.get("ZHILI_BIN", os.path.join(SRC, "build", "bin"))
DEMO = os.path.join(BIN, "zhili-http-demo")
VALGRIND = os.environ.get("ZHILI_HTTP_VALGRIND", "") not in ("", "0")
# Valgrind slows the server by an order of magnitude; deadlines scale.
SLOW = 5.0 if VALGRIND else 1.0
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BODY_MAX = 1 << 20
ERROR_413 = {"error": {"status": "invalid",
                       "message": "the request body is larger than 1 MiB", "field": "body"}}


# ---- the demo process ------------------------------------------------------

class Demo:
    def __init__(self, tmp):
        self.www = os.path.join(tmp, "www")
        os.makedirs(os.path.join(self.www, "sub"), exist_ok=True)
        with open(os.path.join(self.www, "index.html"), "w") as f:
            f.write("<h1>root index</h1>\n")
        with open(os.path.join(self.www, "sub", "index.html"), "w") as f:
            f.write("<h1>sub index</h1>\n")
        with open(os.path.join(self.www, "sub", "a.txt"), "w") as f:
            f.write("static file a\n")
        self.stderr_path = os.path.join(tmp, "demo.stderr")
        self.vg_log = os.path.join(tmp, "valgrind.log")
        cmd = [DEMO, "127.0.0.1:0", self.www]
        if VALGRIND:
            cmd = ["valgrind", "--leak-check=full", "--show-leak-kinds=all",
                   "--errors-for-leak-kinds=definite,indirect,possible", "--track-fds=no",
                   "--log-file=" + self.vg_log] + cmd
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr)
        line = self.proc.stdout.readline().decode().strip()
        assert line.startswith("port="), f"demo did not start: {line!r} {self.log()}"
        self.port = int(line.split("=", 1)[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def log(self):
        self.stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def counters(self):
        return requests.get(self.url + "/counters", timeout=5 * SLOW).json()

    def wait_counter(self, name, at_least, timeout):
        deadline = time.time() + timeout * SLOW
        while True:
            value = self.counters()[name]
            if value >= at_least or time.time() > deadline:
                return value
            time.sleep(0.05)

    def stop(self):
        """SIGTERM: the demo closes the server and must exit 0, leak-free."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("demo did not exit after SIGTERM: " + self.log())
        self.stderr.close()
        assert rc == 0, f"demo exit code {rc}: {self.log()}"
        if VALGRIND:
            with open(self.vg_log) as f:
                report = f.read()
            assert "ERROR SUMMARY: 0 errors" in report, report
            assert "definitely lost" not in report or "definitely lost: 0 bytes" in report, report


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = Demo(str(tmp_path_factory.mktemp("http")))
    yield d
    d.stop()


# ---- raw HTTP helpers ----------------------------------------------------------

def connect(port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10 * SLOW)
    s.connect(("127.0.0.1", port))
    return s


def read_all(s):
    """Everything until EOF; a reset after the response still returns it."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def split_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


class Reader:
    """Buffered reads of exact sizes and lines from a socket."""

    def __init__(self, s):
        self.s = s
        self.buf = b""

    def fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def until(self, sep):
        while sep not in self.buf:
            self.fill()
        out, _, self.buf = self.buf.partition(sep)
        return out

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def read_chunks(reader):
    """The body of a chunked response, as the list of its chunks."""
    chunks = []
    while True:
        size = int(reader.until(b"\r\n").split(b";")[0], 16)
        if size == 0:
            reader.until(b"\r\n")
            return chunks
        chunks.append(reader.exact(size))
        reader.exact(2)


# ---- WebSocket client ------------------------------------------------------------

class WS:
    """A minimal RFC 6455 client: masked frames out, fragments, control frames."""

    def __init__(self, port, path="/ws", rcvbuf=None):
        self.s = connect(port, rcvbuf)
        key = base64.b64encode(os.urandom(16))
        self.s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.r = Reader(self.s)
        head = self.r.until(b"\r\n\r\n").decode("latin-1")
        status, headers, _ = split_response(head.encode("latin-1") + b"\r\n\r\n")
        assert status == 101, head
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        assert headers["sec-websocket-accept"] == accept

    def send(self, opcode, payload=b"", fin=True):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        key = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
        self.s.sendall(head + mask + masked)

    def recv_frame(self):
        b0, b1 = self.r.exact(2)
        assert b1 & 0x80 == 0, "server frames are not masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.r.exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.r.exact(8))[0]
        return b0 & 0x0F, bool(b0 & 0x80), self.r.exact(n)

    def recv(self):
        """One complete message: (opcode, payload)."""
        opcode, fin, payload = self.recv_frame()
        while not fin:
            _, fin, more = self.recv_frame()
            payload += more
        return opcode, payload

    def at_eof(self):
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


# ---- plain requests ------------------------------------------------------------------

def test_echo_returns_body_and_headers(demo):
    body = json.dumps({"hello": "world", "n": [1, 2, 3]})
    r = requests.post(demo.url + "/echo", data=body, timeout=5 * SLOW)
    assert r.status_code == 200
    assert r.text == body
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-method"] == "POST"
    assert r.headers["content-length"] == str(len(body))
    assert r.cookies.get("demo") == "1"
    r = requests.get(demo.url + "/echo", timeout=5 * SLOW)
    assert (r.status_code, r.text, r.headers["x-method"]) == (200, "", "GET")


def test_request_views_path_query_and_headers(demo):
    r = requests.get(demo.url + "/echo/sub/path?a=1&b=%20x", headers={"X-Test": "yes"},
                     timeout=5 * SLOW)
    assert r.status_code == 200
    assert r.headers["x-path"] == "/echo/sub/path"
    assert r.headers["x-query"] == "a=1&b=%20x"
    assert r.headers["x-seen-test"] == "yes"  # looked up as "x-TEST"
    assert r.headers["x-seen-host"] == "127.0.0.1:%d" % demo.port
    r = requests.get(demo.url + "/echo", timeout=5 * SLOW)
    assert (r.headers["x-query"], r.headers["x-seen-test"]) == ("", "-")  # "" vs absent


def test_prefix_matches_whole_segments(demo):
    # "/echo" serves /echo and /echo/..., not /echoes (h2o's path matching).
    assert requests.get(demo.url + "/echoes", timeout=5 * SLOW).status_code == 404


def test_pipelined_requests_are_answered_in_order(demo):
    before = demo.counters()
    s = connect(demo.port)
    s.sendall(b"GET /later?ms=100 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
              b"GET /echo?last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = read_all(s)
    s.close()
    assert raw.count(b"HTTP/1.1 200 OK") == 3
    assert raw.index(b'{"later":true}') < raw.index(b"hello") < raw.index(b"x-query: last")
    assert demo.counters()["later_cancelled"] == before["later_cancelled"]


def test_body_of_exactly_1_mib_is_accepted(demo):
    body = b"x" * BODY_MAX
    r = requests.put(demo.url + "/echo", data=body, timeout=20 * SLOW)
    assert r.status_code == 200
    assert len(r.content) == BODY_MAX


def test_body_over_1_mib_gets_json_413(demo):
    s = connect(demo.port)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n{\"a\":" % (BODY_MAX + 1))
    status, headers, body = split_response(read_all(s))
    s.close()
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == ERROR_413
    assert requests.get(demo.url + "/echo", timeout=5 * SLOW).status_code == 200


def test_body_over_1_mib_sent_whole_is_refused_and_server_lives(demo):
    # h2o answers 413 on seeing Content-Length and closes without reading
    # the body, so a client still sending may get a reset instead of the
    # answer (a known h2o 2.2 behaviour). Whatever arrives must be the 413.
    s = connect(demo.port)
    try:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % (4 * BODY_MAX) + b"z" * (4 * BODY_MAX))
    except (BrokenPipeError, ConnectionResetError):
        pass
    raw = read_all(s)
    s.close()
    if raw:
        status, _, body = split_response(raw)
        assert (status, json.loads(body)) == (413, ERROR_413)
    assert requests.get(demo.url + "/echo", timeout=5 * SLOW).status_code == 200


def test_async_answer_comes_later(demo):
    t0 = time.time()
    r = requests.get(demo.url + "/later", timeout=5 * SLOW)
    assert r.status_code == 200
    assert r.json() == {"later": True}
    assert time.time() - t0 >= 0.19


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_client_leaving_before_async_answer_cancels_it(demo, how):
    before = demo.counters()
    s = connect(demo.port)
    s.sendall(b"GET /later?ms=%d HTTP/1.1\r\nHost: x\r\n\r\n" % int(1000 * SLOW))
    time.sleep(0.2 * SLOW)  # the request has reached the handler
    if how == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    cancelled = demo.wait_counter("later_cancelled", before["later_cancelled"] + 1, 2)
    assert cancelled == before["later_cancelled"] + 1
    time.sleep(1.2 * SLOW)  # past the timer: it must not have fired
    after = demo.counters()
    assert after["later_answered"] == before["later_answered"]
    assert requests.get(demo.url + "/echo", timeout=5 * SLOW).status_code == 200


# ---- SSE -------------------------------------------------------------------------------

def sse_events(port, n):
    """Open /sse?n=N on a raw socket: (headers, chunks of the body)."""
    s = connect(port)
    s.sendall(b"GET /sse?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
    r = Reader(s)
    status, headers, _ = split_response(r.until(b"\r\n\r\n") + b"\r\n\r\n")
    assert status == 200
    chunks = read_chunks(r)
    s.close()
    return headers, chunks


def test_sse_events_arrive_in_order_then_end(demo):
    t0 = time.time()
    headers, chunks = sse_events(demo.port, 150)
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache"
    events = b"".join(chunks).decode().split("\n\n")
    assert events[-1] == ""
    assert events[:-1] == ["data: %d" % i for i in range(150)]
    # 100 at once, then 50 at 10 ms each: about half a second.
    assert time.time() - t0 < 3 * SLOW


def test_sse_writes_in_one_turn_go_out_in_one_send(demo):
    _, chunks = sse_events(demo.port, 120)
    # The handler wrote events 0..99 in one loop turn: one h2o_send, one chunk.
    assert chunks[0] == b"".join(b"data: %d\n\n" % i for i in range(100))


def test_sse_with_requests_library(demo):
    with requests.get(demo.url + "/sse?n=5", stream=True, timeout=5 * SLOW) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines == [b"data: %d" % i for i in range(5)]


def test_sse_client_leaving_midway_closes_the_stream(demo):
    before = demo.counters()["sse_closed"]
    s = connect(demo.port)
    s.sendall(b"GET /sse?n=100000 HTTP/1.1\r\nHost: x\r\n\r\n")
    Reader(s).until(b"data: 100\n\n")
    s.close()
    assert demo.wait_counter("sse_closed", before + 1, 3) == before + 1


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_client_leaving_an_idle_sse_stream_is_noticed_without_a_write(demo, how):
    # Nothing is written to /idle after its first event, so no failed write can
    # tell; the layer's hang-up sweep (every 200 ms) must.
    before = demo.counters()["sse_closed"]
    s = connect(demo.port)
    s.sendall(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
    Reader(s).until(b"data: idle\n\n")
    if how == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    assert demo.wait_counter("sse_closed", before + 1, 1.5 * SLOW) == before + 1


# ---- WebSocket ----------------------------------------------------------------------

def test_ws_echo_and_greeting_written_before_the_101(demo):
    ws = WS(demo.port)
    assert ws.recv() == (1, b"hello")
    ws.send(1, b"abc")
    assert ws.recv() == (1, b"abc")
    big = os.urandom(70000).hex().encode()  # 140 kB: a 64-bit length
    ws.send(1, big)
    assert ws.recv() == (1, big)
    ws.send(1, b"frag", fin=False)
    ws.send(0, b"mented")
    assert ws.recv() == (1, b"fragmented")
    ws.close()


def test_ws_ping_gets_pong(demo):
    ws = WS(demo.port)
    assert ws.recv() == (1, b"hello")
    ws.send(9, b"are you there")
    assert ws.recv() == (10, b"are you there")
    ws.close()


def test_ws_server_closes_with_code_and_reason(demo):
    before = demo.counters()["ws_closed"]
    ws = WS(demo.port)
    assert ws.recv() == (1, b"hello")
    ws.send(1, b"close")
    assert ws.recv() == (8, close_payload(4000, b"bye"))
    ws.send(8, close_payload(4000))
    assert ws.at_eof()
    ws.close()
    assert demo.wait_counter("ws_closed", before + 1, 3) == before + 1


def test_ws_client_close_is_answered(demo):
    before = demo.counters()["ws_closed"]
    ws = WS(demo.port)
    assert ws.recv() == (1, b"hello")
    ws.send(8, close_payload(1000, b"done"))
    opcode, payload = ws.recv()
    assert opcode == 8
    assert struct.unpack("!H", payload[:2])[0] == 1000
    assert ws.at_eof()
    ws.close()
    assert demo.wait_counter("ws_closed", before + 1, 3) == before + 1


def test_ws_client_vanishing_is_noticed(demo):
    before = demo.counters()["ws_closed"]
    ws = WS(demo.port)
    assert ws.recv() == (1, b"hello")
    ws.close()
    assert demo.wait_counter("ws_closed", before + 1, 3) == before + 1


def test_ws_server_close_without_client_reply_is_cut(demo):
    before = demo.counters()["ws_closed"]
    ws = WS(demo.port)
    assert ws.recv() == (1, b"hello")
    ws.send(1, b"close")
    assert ws.recv() == (8, close_payload(4000, b"bye"))
    # No close frame back: the layer gives up after its close wait (5 s).
    t0 = time.time()
    assert demo.wait_counter("ws_closed", before + 1, 10) == before + 1
    assert 4 < time.time() - t0 < 10 * SLOW
    assert ws.at_eof()
    ws.close()


def test_ws_message_over_limit_is_refused_with_1009(demo):
    ws = WS(demo.port)
    assert ws.recv() == (1, b"hello")
    try:
        ws.send(2, b"\0" * (BODY_MAX + 1))
    except (BrokenPipeError, ConnectionResetError):
        pass
    opcode, payload = ws.recv()
    assert opcode == 8
    assert struct.unpack("!H", payload[:2])[0] == 1009
    ws.close()


def test_ws_client_not_reading_is_cut_when_its_queue_overflows(demo):
    # The echoes pile up in the layer's queue; past 8 MiB it cuts the
    # connection (with a write still in flight) instead of growing.
    before = demo.counters()["ws_closed"]
    ws = WS(demo.port, rcvbuf=4096)
    message = b"m" * (BODY_MAX - 16)
    try:
        for _ in range(24):
            ws.send(1, message)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert demo.wait_counter("ws_closed", before + 1, 10) == before + 1
    ws.s.settimeout(10 * SLOW)
    read_all(ws.s)
    ws.close()


def test_ws_plain_get_is_refused(demo):
    r = requests.get(demo.url + "/ws", timeout=5 * SLOW)
    assert r.status_code == 400


def test_ws_bad_key_gets_400(demo):
    s = connect(demo.port)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n")
    r = Reader(s)
    status, headers, _ = split_response(r.until(b"\r\n\r\n") + b"\r\n\r\n")
    body = r.exact(int(headers["content-length"]))
    s.close()
    assert status == 400
    assert json.loads(body)["error"]["field"] == "upgrade"


# ---- a client that does not read --------------------------------------------------

def test_non_reading_client_does_not_delay_others(demo):
    before = demo.counters()
    slow = connect(demo.port, rcvbuf=4096)
    slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    # The demo sees more than 1 MiB pending and closes the stream politely...
    assert demo.wait_counter("slow_detected", before["slow_detected"] + 1, 10) == \
        before["slow_detected"] + 1
    # ...while other clients' streams run as usual.
    t0 = time.time()
    _, chunks = sse_events(demo.port, 150)
    assert b"".join(chunks).count(b"data: ") == 150
    assert time.time() - t0 < 2 * SLOW
    # The polite close cannot finish (nothing is read), so the layer cuts
    # the connection after its close wait (5 s) and reports on_close.
    assert demo.wait_counter("slow_closed", before["slow_closed"] + 1, 10) == \
        before["slow_closed"] + 1
    slow.settimeout(10 * SLOW)
    read_all(slow)  # drains to EOF: the connection is really closed
    slow.close()


# ---- static files, h2o's own answers -----------------------------------------------

def test_static_file_and_index(demo):
    r = requests.get(demo.url + "/sub/a.txt", timeout=5 * SLOW)
    assert (r.status_code, r.text) == (200, "static file a\n")
    assert r.headers["content-type"].startswith("text/plain")
    r = requests.get(demo.url + "/", timeout=5 * SLOW)
    assert (r.status_code, r.text) == (200, "<h1>root index</h1>\n")
    assert r.headers["content-type"].startswith("text/html")
    r = requests.get(demo.url + "/sub/", timeout=5 * SLOW)
    assert (r.status_code, r.text) == (200, "<h1>sub index</h1>\n")


def test_unknown_path_is_404(demo):
    before = demo.counters()["responses_4xx"]
    r = requests.get(demo.url + "/no/such/thing", timeout=5 * SLOW)
    assert r.status_code == 404
    assert demo.counters()["responses_4xx"] == before + 1


def test_path_outside_static_dir_is_refused(demo):
    s = connect(demo.port)
    s.sendall(b"GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, _, body = split_response(read_all(s))
    s.close()
    assert status in (400, 404)
    assert b"root:" not in body


@pytest.mark.parametrize("garbage", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    b"\x00\x01\x02\x03\r\n\r\n",
])
def test_malformed_request_gets_400_and_server_lives(demo, garbage):
    s = connect(demo.port)
    s.sendall(garbage)
    raw = read_all(s)
    s.close()
    assert raw.startswith(b"HTTP/1.1 400"), raw
    assert requests.get(demo.url + "/echo", timeout=5 * SLOW).status_code == 200


def test_all_streams_closed_in_the_end(demo):
    deadline = time.time() + 5 * SLOW
    while demo.counters()["streams_open"] != 0 and time.time() < deadline:
        time.sleep(0.05)
    c = demo.counters()
    assert c["streams_open"] == 0
    assert c["streams_total"] >= 10
    assert c["bytes_streamed_total"] > 0


# ---- shutdown with everything open ---------------------------------------------------

def test_shutdown_closes_every_connection_cleanly(tmp_path):
    d = Demo(str(tmp_path))
    try:
        idle = connect(d.port)
        idle.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Reader(idle).until(b"\r\n\r\n").startswith(b"HTTP/1.1 200")
        pending = connect(d.port)
        pending.sendall(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n")
        sse = connect(d.port)
        sse.sendall(b"GET /sse?n=100000 HTTP/1.1\r\nHost: x\r\n\r\n")
        Reader(sse).until(b"data: 1\n\n")
        ws = WS(d.port)
        assert ws.recv() == (1, b"hello")
        slow = connect(d.port, rcvbuf=4096)
        slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        half = connect(d.port)
        half.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        time.sleep(0.2 * SLOW)
    finally:
        d.stop()  # asserts exit 0 (and a clean valgrind report)
    for s in (idle, pending, sse, ws.s, slow, half):
        s.settimeout(5 * SLOW)
        read_all(s)  # every connection reaches EOF
        s.close()


def test_listen_address_in_use_fails_at_start(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    p = subprocess.run([DEMO, "127.0.0.1:%d" % port, str(tmp_path)], capture_output=True,
                       timeout=30 * SLOW)
    busy.close()
    assert p.returncode == 1
    assert b"in use" in p.stderr
