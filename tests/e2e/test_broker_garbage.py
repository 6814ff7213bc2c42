# Goal: garbage frames, wrong frame counts and oversize messages sent to the broker and to a
# worker never crash either process. After every case the broker and the worker are still
# running and a normal counter_add through `zhilictl call` still works; wherever the protocol
# allows an answer, the sender gets a clear one: the broker's ["E", sentence], or a
# ["P", request_id, Reply] whose status and message say what was wrong.
#
# The broker is driven with raw DEALER sockets speaking the frame protocol of common/bus.h.
# The worker is reached two ways: through the broker (which forwards the Command frame
# untouched) and directly, by pointing a second testsvc at a fake broker (a ROUTER owned by
# this test) that can send it frames the real broker would never forward.
#
# Run: ZHILI_BIN=build/bin ZHILI_SRC=. /usr/bin/python3 -m pytest -q tests/e2e/test_broker_garbage.py
import json
import os
import signal
import sys
import time
import uuid

import pytest
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from buswire import (Peer, _int64, _str, _varint, command, counter_add,  # noqa: E402
                     decode_reply, pb_bytes, pb_decode, pb_int, route)
from zhili_stack import Stack, free_ports  # noqa: E402

SVC = "garb"
MIB = 1 << 20
OPS_SENTENCE = "Q P W H D S"
STATUS_OK, STATUS_INVALID, STATUS_NOT_FOUND, STATUS_UNAVAILABLE = 0, 1, 2, 5


def register(service, credit, instance="garbage-test"):
    return pb_bytes(1, service) + pb_int(2, credit) + pb_bytes(3, instance)


def decode_stats(buf):
    f = pb_decode(buf)
    out = {"name": _str(f, 1), "stats": {}}
    for raw in f.get(2, []):
        s = pb_decode(raw)
        out["stats"][(_str(s, 1), _str(s, 3))] = _int64(s, 2)
    return out


def rid():
    return "garb-" + uuid.uuid4().hex


# Bytes protobuf-c must refuse: a varint that never ends, a length beyond the buffer.
GARBAGE = [b"\xff" * 16, b"\x0a\x7fshort", b"\x12\xff\xff\xff\xff\x0f", b"\x07\x00\x01"]


# ---- sockets ---------------------------------------------------------------------------

def expect_error(peer, *frames):
    msg = peer.ask(*frames)
    assert len(msg) == 2 and msg[0] == b"E", f"{frames!r:.200} -> {msg!r:.300}"
    return msg[1].decode()


def expect_reply(peer, request_id, *frames):
    msg = peer.ask(*frames)
    assert len(msg) == 3 and msg[0] == b"P", f"{frames!r:.200} -> {msg!r:.300}"
    assert msg[1] == request_id.encode()
    reply = decode_reply(msg[2])
    assert reply["request_id"] == request_id
    return reply


def broker_stats(peer):
    msg = peer.ask("S")
    assert len(msg) == 2 and msg[0] == b"S", msg
    st = decode_stats(msg[1])
    assert st["name"] == "broker"
    return st["stats"]


# ---- the stack -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """conftest's `stack`, shared by the module: one broker and one testsvc take every case,
    and each case ends by showing both are still serving."""
    s = Stack(tmp=str(tmp_path_factory.mktemp("garbage")))
    s.broker()
    s.testsvc(SVC)
    s.wait_ready(SVC)
    s.zctx = zmq.Context()
    yield s
    s.zctx.destroy(linger=0)
    codes = {}
    for name in list(s.procs):
        s.kill(name, signal.SIGTERM)
        codes[name] = s.procs[name].returncode
    # A clean exit after all that garbage: no assertion, no sanitizer report.
    bad = {n: c for n, c in codes.items() if c != 0}
    assert not bad, f"exit codes {bad}\n" + "\n".join(s.log(n)[-3000:] for n in bad)


@pytest.fixture
def peer(stack):
    p = Peer(stack.zctx, stack.env["ZHILI_BROKER"])
    yield p
    p.close()


def assert_healthy(s, services=(SVC,)):
    """Processes alive and a normal write through zhilictl still answered OK."""
    assert s.alive("broker"), s.log("broker")[-3000:]
    for svc in services:
        assert s.alive(svc), s.log(svc)[-3000:]
        rc, reply = s.call(svc, {"counter_add": {"name": "health", "amount": 1}})
        assert rc == 0 and reply["status"] == "ok", (rc, reply)


# ---- the broker ------------------------------------------------------------------------

def test_unknown_operations_get_the_list_of_operations(stack, peer):
    for frames in ([b""], [b"", b"Q"], [b"X"], [b"q"], [b"QQ"], [b"Query", b"x", b"y"],
                   [b"\x00"], [b"E", b"I am not the broker"], [b"\xff" * 3000]):
        sentence = expect_error(peer, *frames)
        assert OPS_SENTENCE in sentence, (frames, sentence)
    assert_healthy(stack)


def test_request_with_wrong_frame_count(stack, peer):
    r = rid()
    good_route, good_cmd = route(SVC, r), command(r, 100, counter_add("wrong-count", 1))
    for frames in (["Q"], ["Q", good_route], ["Q", good_route, good_cmd, b"x"],
                   ["Q", good_route, good_cmd, b"x", b"y"],
                   ["Q", good_route, good_cmd] + [b"extra"] * 9):
        sentence = expect_error(peer, *frames)
        assert "3 frames" in sentence and "Route" in sentence, sentence
    # None of them reached the worker: the counter does not exist.
    rc, reply = stack.call(SVC, {"counter_get": {"name": "wrong-count"}})
    assert rc == 1 and reply["status"] == "not_found", reply
    assert_healthy(stack)


def test_route_that_is_not_a_route(stack, peer):
    cmd = command(rid(), 100, counter_add("x", 1))
    for garbage in GARBAGE + [b"\x0a" + _varint(2000) + b"s" * 2000]:  # over the 1 KiB Route cap
        sentence = expect_error(peer, "Q", garbage, cmd)
        assert "zhili.v1.Route" in sentence, sentence
    for bad_id in ("", "r" * 201):
        sentence = expect_error(peer, "Q", route(SVC, bad_id), cmd)
        assert "request_id" in sentence, sentence
    assert_healthy(stack)


def test_invalid_service_name_is_answered_invalid(stack, peer):
    for name in ("BAD NAME", "", "x" * 65, "garb@", "@1", "garb@x", "ga/rb"):
        r = rid()
        reply = expect_reply(peer, r, "Q", route(name, r), command(r, 100, counter_add("n", 1)))
        assert reply["status"] == STATUS_INVALID, (name, reply)
        assert "service name" in reply["message"], reply
    assert_healthy(stack)


def test_worker_rejects_commands_that_are_not_commands(stack, peer):
    for garbage in GARBAGE:
        r = rid()
        reply = expect_reply(peer, r, "Q", route(SVC, r), garbage)
        assert reply["status"] == STATUS_INVALID, reply
        assert "not a valid zhili.v1.Command" in reply["message"], reply
    # request_id differs between the route and the command (an empty frame is a Command
    # whose request_id is "").
    for other in ("someone-else", ""):
        r = rid()
        cmd = command(other, 100, counter_add("mismatch", 1)) if other else b""
        reply = expect_reply(peer, r, "Q", route(SVC, r), cmd)
        assert reply["status"] == STATUS_INVALID, reply
        assert "request_id differs" in reply["message"], reply
    r = rid()
    reply = expect_reply(peer, r, "Q", route(SVC, r), command(r))
    assert reply["status"] == STATUS_INVALID and "no body" in reply["message"], reply
    rc, reply = stack.call(SVC, {"counter_get": {"name": "mismatch"}})
    assert rc == 1 and reply["status"] == "not_found", reply
    assert_healthy(stack)


def test_command_over_4_mib_is_refused_by_the_broker(stack, peer):
    r = rid()
    big = command(r, 100, counter_add("big", 1)) + pb_bytes(3, b"a" * (5 * MIB))
    reply = expect_reply(peer, r, "Q", route(SVC, r), big)
    assert reply["status"] == STATUS_INVALID, reply
    assert "4 MiB" in reply["message"], reply
    rc, reply = stack.call(SVC, {"counter_get": {"name": "big"}})
    assert rc == 1 and reply["status"] == "not_found", reply
    assert_healthy(stack)


def test_frame_over_the_transport_limit_drops_only_that_connection(stack, peer):
    r = rid()
    peer.send("Q", route(SVC, r), b"\x00" * (9 * MIB))
    # libzmq closes the connection on the broker side; no answer comes on it.
    assert peer.quiet(1000)
    assert stack.alive("broker"), stack.log("broker")[-3000:]
    fresh = Peer(stack.zctx, stack.env["ZHILI_BROKER"])
    try:
        broker_stats(fresh)
    finally:
        fresh.close()
    # The dropped DEALER reconnects by itself and is served again.
    end = time.time() + 10
    while True:
        peer.send("S")
        if not peer.quiet(500):
            assert peer.recv()[0] == b"S"
            break
        assert time.time() < end, "the DEALER never got through again"
    assert_healthy(stack)


def test_fake_worker_garbage(stack, peer):
    for garbage in GARBAGE:
        assert "registration" in expect_error(peer, "W", garbage)
    assert "registration" in expect_error(peer, "W")
    assert "registration" in expect_error(peer, "W", register("fake", 1), b"extra")
    for service, credit in (("fake", 0), ("fake", 100001), ("BAD NAME", 1), ("", 1)):
        sentence = expect_error(peer, "W", register(service, credit))
        assert "credit 1-100000" in sentence and "service name" in sentence, sentence
    for frames in (["P"], ["P", b"cid", b"rid"], ["P", b"cid", b"rid", b"reply", b"x"],
                   ["P"] + [b"x"] * 8):
        sentence = expect_error(peer, *frames)
        assert "4 frames" in sentence, sentence
    # A reply for a client that does not exist is dropped, and counted.
    before = broker_stats(peer)[("broker_dropped_replies_total", "")]
    peer.send("P", b"\x00nobody", b"rid", b"\xff\xff")
    peer.send("P", b"", b"rid", b"")
    after = broker_stats(peer)[("broker_dropped_replies_total", "")]
    assert after >= before + 2, (before, after)
    # A heartbeat (with or without extra frames) from a peer that never registered:
    # "register again".
    assert peer.ask("H") == [b"D"]
    assert peer.ask("H", b"junk", GARBAGE[0]) == [b"D"]
    # A disconnect from a stranger has no answer.
    peer.send("D")
    peer.send("D", b"junk")
    assert peer.quiet(300)
    assert_healthy(stack)


def test_no_worker_and_a_short_deadline_is_unavailable(stack, peer):
    r = rid()
    t0 = time.time()
    deadline = int(t0 * 1000) + 300
    reply = expect_reply(peer, r, "Q", route("nobody-runs-this", r, deadline),
                         command(r, 100, counter_add("n", 1)))
    elapsed = time.time() - t0
    assert reply["status"] == STATUS_UNAVAILABLE, reply
    assert "no worker of service 'nobody-runs-this' is running" in reply["message"], reply
    assert 0.2 <= elapsed < 2.5, elapsed
    # A deadline in the past is answered at the next sweep, not held forever.
    r = rid()
    reply = expect_reply(peer, r, "Q", route("nobody-runs-this", r, 1000),
                         command(r, 100, counter_add("n", 1)))
    assert reply["status"] == STATUS_UNAVAILABLE, reply
    assert_healthy(stack)


def test_stats_count_malformed_messages(stack, peer):
    before = broker_stats(peer)
    key = ("broker_malformed_total", "")
    assert key in before and ("broker_workers", f'service="{SVC}"') in before, before
    assert before[("broker_workers", f'service="{SVC}"')] == 1
    expect_error(peer, "X")
    expect_error(peer, "Q", b"garbage")
    expect_error(peer, "W", GARBAGE[0])
    after = broker_stats(peer)
    assert after[key] >= before[key] + 3, (before[key], after[key])
    # The same figure through zhilictl's JSON.
    r = stack.ctl("stats", check=True)
    doc = json.loads(r.stdout)
    assert doc["name"] == "broker"
    malformed = [s["value"] for s in doc["stats"] if s["name"] == "broker_malformed_total"]
    assert malformed and malformed[0] >= after[key], doc
    # S with extra frames is still a stats request; it never crashes the broker.
    msg = peer.ask("S", b"junk", b"more")
    assert msg[0] == b"S"
    assert_healthy(stack)


# ---- zhilictl and the worker's own validation ------------------------------------------

def test_zhilictl_refuses_unknown_json_fields(stack):
    for body, field in (({"counter_add": {"name": "u", "bogus": 1}}, "bogus"),
                        ({"no_such_body": {}}, "no_such_body")):
        r = stack.ctl("call", SVC, json.dumps(body))
        assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
        assert field in r.stderr, r.stderr
        assert r.stdout.strip() == ""
    r = stack.ctl("call", SVC, "{not json")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert_healthy(stack)


def test_zero_amount_is_invalid_and_changes_nothing(stack):
    name = "zero-" + uuid.uuid4().hex[:8]
    rc, reply = stack.call(SVC, {"counter_add": {"name": name, "amount": 0}})
    assert rc == 1, (rc, reply)
    assert reply["status"] == "invalid" and reply["field"] == "counter_add.amount", reply
    assert reply["message"], reply
    rc, reply = stack.call(SVC, {"counter_get": {"name": name}})
    assert rc == 1 and reply["status"] == "not_found", reply
    rc, reply = stack.call(SVC, {"counter_add": {"name": "", "amount": 1}})
    assert rc == 1 and reply["field"] == "counter_add.name", reply
    assert_healthy(stack)


# ---- a worker fed directly by a fake broker ---------------------------------------------

class FakeBroker:
    """A ROUTER the worker connects to instead of the real broker."""

    def __init__(self, ctx):
        self.endpoint = f"tcp://127.0.0.1:{free_ports(1)[0]}"
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(self.endpoint)
        self.wid = None
        self.seen = {}  # request_id -> (client id, Reply) of every P the worker sent

    def next(self, timeout_s):
        """The next message from the worker (its routing id noted), or None."""
        if self.sock.poll(int(timeout_s * 1000)) == 0:
            return None
        msg = self.sock.recv_multipart()
        self.wid = msg[0]
        if msg[1] == b"P":
            assert len(msg) == 5, msg
            self.seen[msg[3].decode(errors="replace")] = (msg[2], decode_reply(msg[4]))
        return msg[1:]

    def drain(self, wait_s):
        end = time.time() + wait_s
        while time.time() < end:
            self.next(max(0.0, end - time.time()))

    def wait_register(self, timeout_s=10.0):
        end = time.time() + timeout_s
        while time.time() < end:
            msg = self.next(0.5)
            if msg and msg[0] == b"W":
                reg = pb_decode(msg[1])
                return _str(reg, 1), reg.get(2, [0])[-1]
        raise AssertionError("the worker never registered")

    def send(self, *frames):
        self.sock.send_multipart([self.wid] + [f.encode() if isinstance(f, str) else f
                                               for f in frames])

    def reply_to(self, request_id, *frames, timeout_s=5.0):
        """Send ["Q", client, request_id, *frames]; the worker's Reply."""
        self.seen.pop(request_id, None)
        self.send("Q", b"client-1", request_id, *frames)
        end = time.time() + timeout_s
        while request_id not in self.seen:
            assert time.time() < end, f"no reply to {request_id!r}"
            self.next(max(0.0, end - time.time()))
        cid, reply = self.seen[request_id]
        assert cid == b"client-1" and reply["request_id"] == request_id, (cid, reply)
        return reply

    def close(self):
        self.sock.close(0)


def good(request_id, name="direct", amount=1):
    return command(request_id, 100, counter_add(name, amount))


def test_worker_fed_garbage_directly(stack):
    name = "garb-direct"
    fake = FakeBroker(stack.zctx)
    try:
        stack.testsvc(name, ZHILI_BROKER=fake.endpoint)
        service, credit = fake.wait_register()
        assert service == name and credit >= 1
        r = rid()
        assert fake.reply_to(r, good(r))["status"] == STATUS_OK

        # Answerable: the frames are right, the Command is not. The last one is a Command
        # of 5 MiB, over the worker's 4 MiB unpack limit (the broker would refuse it first).
        for garbage in GARBAGE + [b"\x0a" + _varint(5 * MIB) + b"a" * (5 * MIB)]:
            r = rid()
            reply = fake.reply_to(r, garbage)
            assert reply["status"] == STATUS_INVALID, reply
            assert "not a valid zhili.v1.Command" in reply["message"], reply
        r = rid()
        reply = fake.reply_to(r, good("someone-else"))
        assert reply["status"] == STATUS_INVALID and "request_id differs" in reply["message"]
        r = rid()
        reply = fake.reply_to(r, command(r))
        assert reply["status"] == STATUS_INVALID and "no body" in reply["message"], reply
        # A write without a request_id (the real broker refuses it) is refused alone: a
        # good write sent right behind it, so likely in the same batch, still succeeds.
        fake.send("Q", b"client-1", b"", good("", name="no-id"))
        r = rid()
        reply = fake.reply_to(r, good(r, name="batch-mate"))
        assert reply["status"] == STATUS_OK and reply["counter_value"] == 1, reply
        fake.drain(0.3)
        cid, reply = fake.seen[""]
        assert reply["status"] == STATUS_INVALID, reply
        assert "request_id" in reply["message"], reply

        # Unanswerable: no usable client id or request id, or not a request at all.
        dropped = [rid() for _ in range(3)]
        fake.send("Q", b"client-1", dropped[0])
        fake.send("Q", b"client-1", dropped[1], good(dropped[1]), b"extra")
        fake.send("Q", b"client-1", dropped[2], good(dropped[2]), *[b"x"] * 6)
        long_cid = rid()
        fake.send("Q", b"c" * 256, long_cid, good(long_cid))
        fake.send("Q", b"client-1", "r" * 201, good("r" * 201))
        fake.send("Q", b"client-1", b"a\x00b", good("a\x00b"))
        for frames in (["Q"], [b""], ["ZZ", b"x"], ["E", b"you sent garbage"],
                       ["E", b"\xff" * 300], ["P", b"client-1", b"x", b"y"], ["S"],
                       ["H", b"junk"], [GARBAGE[0]] * 7):
            fake.send(*frames)
        r = rid()
        assert fake.reply_to(r, good(r))["status"] == STATUS_OK
        fake.drain(0.5)
        for d in dropped + [long_cid, "r" * 201, "a\x00b"]:
            assert d not in fake.seen, (d, fake.seen[d])
        # None of those wrote anything: one counter_add of "direct" before, one after.
        r = rid()
        reply = fake.reply_to(r, command(r, 101, pb_bytes(1, "direct")))
        assert reply["status"] == STATUS_OK and reply["counter_value"] == 2, reply

        # "D" from the broker: register again.
        fake.send("D")
        assert fake.wait_register(5)[0] == name

        # A frame over the transport limit: the worker's libzmq drops the connection. The
        # process survives it and still shuts down cleanly.
        fake.send("Q", b"client-1", rid(), b"\x00" * (9 * MIB))
        time.sleep(1.0)
        assert stack.alive(name), stack.log(name)[-3000:]
        assert "malformed_request" in stack.log(name)
        stack.kill(name, signal.SIGTERM)
        assert stack.procs[name].returncode == 0, stack.log(name)[-3000:]
    finally:
        fake.close()
    assert_healthy(stack)


def test_worker_recovers_after_an_oversize_frame_from_its_broker(stack):
    """libzmq ends a DEALER's session for good after an oversize frame; the
    worker notices the silence and connects a fresh socket."""
    name = "garb-oversize"
    fake = FakeBroker(stack.zctx)
    try:
        stack.testsvc(name, ZHILI_BROKER=fake.endpoint)
        fake.wait_register()
        fake.send("Q", b"client-1", rid(), b"\x00" * (9 * MIB))
        r = rid()
        end = time.time() + 3
        while True:
            try:
                reply = fake.reply_to(r, good(r), timeout_s=0.5)
                break
            except AssertionError:
                assert time.time() < end, "the worker never came back"
        assert reply["status"] == STATUS_OK, reply
    finally:
        fake.close()
        stack.kill(name, signal.SIGTERM)
