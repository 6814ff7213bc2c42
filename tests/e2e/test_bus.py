"""The bus and the runtime end to end: real broker and test services on
loopback, driven through zhilictl. Each test states the property it checks."""
import json
import os
import shutil
import signal
import subprocess
import time

import zmq

from buswire import Peer, command, counter_add, decode_reply, pb_bytes, pb_int, route
from zhili_stack import BIN


def add(stack, svc, rid, amount=1, name="c"):
    return stack.call(svc, {"request_id": rid, "counter_add": {"name": name, "amount": amount}})


def wait_until(pred, timeout_s=15, what="condition"):
    end = time.time() + timeout_s
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_ok_means_durable_and_retry_changes_nothing(stack):
    """An OK reply survives kill -9 at once; a retried request_id returns the
    first reply and changes nothing, also after a restart."""
    stack.broker()
    stack.testsvc("svc")
    stack.wait_ready("svc")
    rc, first = add(stack, "svc", "r-1", 5)
    assert rc == 0 and first["status"] == "ok" and first["counter"]["value"] == 5
    stack.kill("svc")
    stack.restart("svc")
    stack.wait_ready("svc")
    rc, again = add(stack, "svc", "r-1", 5)
    assert again == first
    rc, got = stack.call("svc", {"counter_get": {"name": "c"}})
    assert got["counter"] == {"name": "c", "value": 5, "adds": 1}


def test_old_answers_are_pruned_and_recent_ones_kept(stack):
    """The answers kept for resends are removed once older than the keep time
    (ZHILI_REQUESTS_KEEP_MS here, ZHILI_REQUESTS_KEEP_DAYS in production): a
    resend within it changes nothing, one after it is a new request."""
    stack.broker()
    stack.testsvc("svc", ZHILI_REQUESTS_KEEP_MS="1500")
    stack.wait_ready("svc")
    # 1200 answers: the walk (512 rows a step, a step a second) needs several steps.
    load = subprocess.run([os.path.join(BIN, "zhili-testload"), "svc", "1200", "100", "old"],
                          env=stack.env, capture_output=True, text=True, timeout=60)
    assert load.returncode == 0, load.stderr
    rc, first = add(stack, "svc", "keep-me", 1, name="k")
    assert rc == 0 and first["counter"]["value"] == 1
    rc, again = add(stack, "svc", "keep-me", 1, name="k")
    assert again == first  # within the keep time: the first answer, nothing changed
    time.sleep(2.0)

    def pruned():
        add(stack, "svc", f"tick-{time.time()}", 1, name="ticks")  # pruning rides on writes
        return stack.stats("svc").get(("requests_pruned_total", ""), 0) >= 1201

    wait_until(pruned, 20, "old answers pruned")
    rc, later = add(stack, "svc", "keep-me", 1, name="k")
    assert rc == 0 and later["counter"]["value"] == 2  # older than the keep time: applied anew
    rc, got = stack.call("svc", {"counter_get": {"name": "c"}})
    assert got["counter"]["adds"] == 1200  # pruning removed answers, never counters


def test_bad_input_changes_nothing(stack):
    """An invalid command gets INVALID naming the field, is remembered as such
    under its request_id, and leaves no state and no event behind."""
    stack.broker()
    stack.testsvc("svc")
    stack.wait_ready("svc")
    rc, r = add(stack, "svc", "bad-1", 0)
    assert rc == 1 and r["status"] == "invalid" and r["field"] == "counter_add.amount"
    assert "amount" in r["message"]
    rc, r2 = add(stack, "svc", "bad-1", 0)
    assert r2 == r
    rc, got = stack.call("svc", {"counter_get": {"name": "c"}})
    assert rc == 1 and got["status"] == "not_found"
    assert stack.stats("svc")[("outbox_last_seq", "")] == 0
    rc, r = stack.call("svc", {"request_id": "x", "counter_add": {"name": "", "amount": 1}})
    assert r["status"] == "invalid" and r["field"] == "counter_add.name"


def test_failing_command_in_a_busy_batch_is_undone_alone(stack):
    """A command that fails after writing and emitting shares batches with
    thousands of good ones: the batch is run again with a child transaction
    per command, so the failure leaves no row and no event, every good command
    counts once, and the outbox holds exactly the good commands' events."""
    stack.broker()
    stack.testsvc("svc")
    stack.wait_ready("svc")
    count = 20000
    load = subprocess.Popen([os.path.join(BIN, "zhili-testload"), "svc", str(count), "500", "mix"],
                            env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    failed = 0
    while load.poll() is None or failed == 0:
        rc, r = add(stack, "svc", f"faw-{failed}", 1, name="fail-after-write")
        assert r["status"] == "conflict" and r["field"] == "counter_add.name", r
        failed += 1
    out, err = load.communicate(timeout=120)
    assert load.returncode == 0, out + err
    rc, got = stack.call("svc", {"counter_get": {"name": "c"}})
    assert got["counter"]["value"] == count and got["counter"]["adds"] == count
    rc, got = stack.call("svc", {"counter_get": {"name": "fail-after-write"}})
    assert got["status"] == "not_found"
    stats = stack.stats("svc")
    assert stats[("outbox_last_seq", "")] == count
    assert stats[("commands_total", "")] == count + failed
    assert stats[("events_emitted_total", "")] == count
    assert stats[("batch_reruns_total", "")] >= 1


def test_consumer_catches_up_and_applies_once(stack):
    """A consumer started late replays what it missed; killed and restarted,
    it resumes from its cursor; every event is applied once, in order, and its
    digest equals the producer's outbox."""
    stack.broker()
    stack.testsvc("prod")
    stack.wait_ready("prod")
    for i in range(20):
        assert add(stack, "prod", f"a-{i}")[0] == 0
    stack.testsvc("cons", consume="prod.")
    stack.wait_ready("cons")
    wait_until(lambda: stack.applied("cons", "prod")["cursor"] == 20, what="catch-up")
    stack.kill("cons")
    for i in range(20, 30):
        assert add(stack, "prod", f"a-{i}")[0] == 0
    stack.restart("cons")
    stack.wait_ready("cons")
    wait_until(lambda: stack.applied("cons", "prod")["cursor"] == 30, what="resume")
    for i in range(30, 40):  # and live
        assert add(stack, "prod", f"a-{i}")[0] == 0
    wait_until(lambda: stack.applied("cons", "prod")["cursor"] == 40, what="live")
    got, want = stack.applied("cons", "prod"), stack.applied("prod", "prod")
    assert got["applied"] == 40 and got["duplicates"] == 0 and got["out_of_order"] == 0
    assert got["digest"] == want["digest"]


def test_a_source_put_back_behind_the_cursor_is_named(stack):
    """A source whose store went back in time (restored from an older backup,
    wiped) would reuse seqs its consumers have applied: the consumer says so
    in its log and its stats instead of skipping new events in silence."""
    stack.broker()
    stack.testsvc("prod")
    stack.wait_ready("prod")
    for i in range(5):
        assert add(stack, "prod", f"b-{i}")[0] == 0
    stack.testsvc("cons", consume="prod.")
    stack.wait_ready("cons")
    wait_until(lambda: stack.applied("cons", "prod")["cursor"] == 5, what="catch-up")
    assert stack.stats("cons")[("source_behind", 'source="prod"')] == 0
    stack.kill("prod")
    shutil.rmtree(os.path.join(stack.env["ZHILI_DATA"], "prod"))  # its store is gone
    stack.restart("prod")
    stack.wait_ready("prod")
    wait_until(lambda: stack.stats("cons")[("source_behind", 'source="prod"')] == 1,
               what="the consumer names the source behind its cursor")
    assert "source_behind_cursor" in stack.log("cons")
    for i in range(5):  # the source catches up past the cursor: the episode ends
        assert add(stack, "prod", f"c-{i}")[0] == 0
    assert add(stack, "prod", "c-5")[0] == 0
    wait_until(lambda: stack.stats("cons")[("source_behind", 'source="prod"')] == 0,
               what="the source past the cursor again")


def test_lost_tail_is_noticed_by_heartbeat(stack):
    """Events that never reached a consumer live are fetched once a producer
    heartbeat shows a higher seq than the consumer's cursor."""
    stack.broker()
    # The producer publishes into a port nobody listens on: its live events and
    # heartbeats are lost, as when a PUB pipe overflows.
    stack.testsvc("prod", ZHILI_EVENTS_PUB="tcp://127.0.0.1:9")
    stack.testsvc("cons", consume="prod.")
    stack.wait_ready("prod")
    stack.wait_ready("cons")
    for i in range(5):
        assert add(stack, "prod", f"t-{i}")[0] == 0
    time.sleep(1.0)
    assert stack.applied("cons", "prod")["cursor"] == 0  # nothing told it yet
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(stack.env["ZHILI_EVENTS_PUB"])
    hb = b"\x0a\x04prod\x10\x05"  # Heartbeat{source:"prod", last_seq:5}
    end = time.time() + 10
    while time.time() < end and stack.applied("cons", "prod")["cursor"] < 5:
        pub.send_multipart([b"prod.~hb", hb])
        time.sleep(0.2)
    pub.close()
    assert stack.applied("cons", "prod")["cursor"] == 5


def test_broker_restart_loses_nothing(stack):
    """The broker keeps no state: after kill -9 and restart, workers register
    again and commands flow; nothing acknowledged is lost."""
    stack.broker()
    stack.testsvc("svc")
    stack.wait_ready("svc")
    assert add(stack, "svc", "b-1")[0] == 0
    stack.kill("broker")
    stack.restart("broker")
    rc, r = add(stack, "svc", "b-2")
    assert rc == 0, r
    rc, got = stack.call("svc", {"counter_get": {"name": "c"}})
    assert got["counter"]["value"] == 2


def test_fake_clock(stack):
    """With ZHILI_FAKE_CLOCK=1 a test sets and advances the service clock and
    events carry it; it never goes backwards; a real clock refuses."""
    stack.broker()
    stack.testsvc("fake", ZHILI_FAKE_CLOCK=1, ZHILI_FAKE_CLOCK_START_MS=1764000000000)
    stack.testsvc("real")
    stack.wait_ready("fake")
    stack.wait_ready("real")
    rc, r = stack.call("fake", {"clock_set": {"now_ms": 1764100000000}})
    assert rc == 0 and r["clock"] == {"now_ms": 1764100000000, "fake": True}
    rc, r = stack.call("fake", {"clock_advance": {"delta_ms": 1000}})
    assert r["clock"]["now_ms"] == 1764100001000
    rc, r = stack.call("fake", {"clock_set": {"now_ms": 1}})
    assert r["status"] == "invalid" and "backwards" in r["message"]
    assert add(stack, "fake", "f-1")[0] == 0
    out = stack.ctl("replay", "fake", "--from", "1", check=True).stdout.splitlines()
    assert json.loads(out[0])["ts_ms"] == 1764100001000
    rc, r = stack.call("real", {"clock_advance": {"delta_ms": 1000}})
    assert r["status"] == "forbidden"


def test_tail_and_replay(stack):
    """zhilictl tail prints one JSON event per line for a topic prefix;
    zhilictl replay prints a source's events from a given seq."""
    stack.broker()
    stack.testsvc("svc")
    stack.wait_ready("svc")
    tail = subprocess.Popen([os.path.join(BIN, "zhilictl"), "tail", "svc.added"],
                            env=stack.env, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # let the subscription reach the broker
        for i in range(3):
            assert add(stack, "svc", f"tl-{i}", amount=i + 1)[0] == 0
        lines = [json.loads(tail.stdout.readline()) for _ in range(3)]
    finally:
        tail.terminate()
        tail.wait(timeout=5)
    assert [e["seq"] for e in lines] == [1, 2, 3]
    assert lines[2]["counter_added"] == {"name": "c", "amount": 3, "value": 6}
    assert lines[0]["type"] == "added" and lines[0]["request_id"] == "tl-0"
    out = stack.ctl("replay", "svc", "--from", "2", check=True).stdout.splitlines()
    assert [json.loads(x)["seq"] for x in out] == [2, 3]
    r = stack.ctl("replay", "svc", "--from", "0")
    assert r.returncode == 0  # from 0 is read as from 1
    rc, r = stack.call("svc", {"replay": {"from_seq": 0}})
    assert r["status"] == "invalid" and r["field"] == "replay.from_seq"


def test_map_grows_when_full(stack):
    """A service started with a 1 MiB map grows it when full and retries the
    batch: every command is answered OK and nothing is lost."""
    stack.broker()
    stack.testsvc("svc", ZHILI_MAP_MB_INITIAL=1)
    stack.wait_ready("svc")
    assert stack.stats("svc")[("store_map_bytes", "")] == 1 << 20
    load = subprocess.run([os.path.join(BIN, "zhili-testload"), "svc", "6000", "500", "grow"],
                          env=stack.env, capture_output=True, text=True, timeout=120)
    assert load.returncode == 0, load.stdout + load.stderr
    assert stack.stats("svc")[("store_map_bytes", "")] > 1 << 20
    rc, got = stack.call("svc", {"counter_get": {"name": "c"}})
    assert got["counter"]["value"] == 6000 and got["counter"]["adds"] == 6000
    assert "map_grown" in stack.log("svc")


def test_full_disk_is_unavailable_not_a_crash(stack):
    """When the disk is full (here: a file-size limit), writes are answered
    UNAVAILABLE with a sentence, the service keeps running and answering
    reads, nothing half-written appears, and it recovers once space returns."""
    import resource

    stack.broker()
    stack.testsvc("svc")
    stack.wait_ready("svc")
    assert add(stack, "svc", "d-0")[0] == 0
    # The data file runs ahead of use with written zeros (store_prealloc), so
    # the limit is put 64 KiB past the last page in use, inside the file.
    used = stack.stats("svc")[("store_used_bytes", "")]
    data_file = os.path.join(stack.data, "svc", "data.mdb")
    assert os.path.getsize(data_file) >= used + 64 * 1024
    stack.kill("svc", signal.SIGTERM)
    limit = used + 64 * 1024

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    binary, env = stack.specs["svc"]
    e = dict(stack.env, ZHILI_SERVICE_NAME="svc")
    log = open(os.path.join(stack.logs, "svc-limited.log"), "ab")
    proc = subprocess.Popen([os.path.join(BIN, binary)], env=e, stdout=log, stderr=log,
                            preexec_fn=limited)
    try:
        stack.wait_ready("svc")
        statuses = []
        for i in range(1, 400):
            rc, r = stack.call("svc", {"request_id": f"d-{i}", "counter_add": {
                "name": "big-" + "x" * 60, "amount": 1}})
            statuses.append(r["status"])
            if r["status"] == "unavailable":
                assert "disk is full" in r["message"]
                break
        assert statuses[-1] == "unavailable", statuses
        assert proc.poll() is None  # still running
        ok = statuses.count("ok")
        rc, got = stack.call("svc", {"counter_get": {"name": "big-" + "x" * 60}})
        assert got["counter"]["adds"] == ok  # the refused batch left nothing
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        log.close()
    stack.restart("svc")  # space again: the same request goes through
    stack.wait_ready("svc")
    rc, r = stack.call("svc", {"request_id": f"d-{len(statuses)}", "counter_add": {
        "name": "big-" + "x" * 60, "amount": 1}})
    assert r["status"] == "ok" and r["counter"]["adds"] == ok + 1


def test_offload_with_deferred_reply(stack):
    """Slow work runs off the loop: other commands are answered meanwhile, the
    caller gets its answer when the work is done, and a resend while it runs
    changes nothing twice."""
    stack.broker()
    stack.testsvc("svc")
    stack.wait_ready("svc")
    slow = subprocess.Popen(
        [os.path.join(BIN, "zhilictl"), "call", "svc",
         json.dumps({"request_id": "slow-1", "slow_add": {"name": "s", "amount": 7, "work_ms": 1500}})],
        env=stack.env, stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    start = time.time()
    rc, r = add(stack, "svc", "quick-1", 1, name="q")
    assert rc == 0 and time.time() - start < 1.0  # not stuck behind the slow one
    rc, again = stack.call("svc", {"request_id": "slow-1", "slow_add": {"name": "s", "amount": 7, "work_ms": 1500}})
    out, _ = slow.communicate(timeout=20)
    first = json.loads(out)
    assert first["status"] == "ok" and first["counter"] == {"name": "s", "value": 7, "adds": 1}
    assert again == first
    rc, later = stack.call("svc", {"request_id": "slow-1", "slow_add": {"name": "s", "amount": 7, "work_ms": 1500}})
    assert later == first  # remembered under the original request_id
    rc, got = stack.call("svc", {"counter_get": {"name": "s"}})
    assert got["counter"]["adds"] == 1
    rc, bad = stack.call("svc", {"request_id": "slow-2", "slow_add": {"name": "s", "amount": 0}})
    assert bad["status"] == "invalid"
    rc, forged = stack.call("svc", {"request_id": "c-1", "continuation": {"kind": "slow_add", "key": "s"}})
    assert forged["status"] == "invalid"


def test_every_resend_of_a_waiting_command_is_answered(stack):
    """More resends of a deferred command than it keeps addresses for (4): the
    extra ones are told at once to come back (UNAVAILABLE, which zhilictl's
    client retries until the answer is stored), so every caller ends with the
    one answer, the work is done once, and the broker sees a reply for every
    request it handed over (no credit lost)."""
    stack.broker()
    stack.testsvc("svc")
    stack.wait_ready("svc")
    cmd = json.dumps({"request_id": "slow-r", "slow_add": {"name": "r", "amount": 3, "work_ms": 2000}})
    callers = []
    for _ in range(7):
        callers.append(subprocess.Popen([os.path.join(BIN, "zhilictl"), "call", "svc", cmd,
                                         "--timeout", "8000"],
                                        env=stack.env, stdout=subprocess.PIPE, text=True))
        time.sleep(0.1)
    answers = [json.loads(p.communicate(timeout=20)[0]) for p in callers]
    assert all(a == answers[0] for a in answers) and answers[0]["status"] == "ok", answers
    rc, later = stack.call("svc", json.loads(cmd))
    assert later["status"] == "ok" and later["counter"] == {"name": "r", "value": 3, "adds": 1}

    def broker(name):
        stats = json.loads(stack.ctl("stats", check=True).stdout)["stats"]
        (value,) = [x["value"] for x in stats
                    if x["name"] == name and x["labels"] == 'service="svc"']
        return value

    wait_until(lambda: broker("broker_requests_total") == broker("broker_replies_total"),
               what="a reply for every request")


def test_a_rerun_batch_answers_a_waiting_resend_once(stack):
    """Resends of a deferred command sent in one burst with commands that fail
    after writing: their batches run a second time, and each resend is still
    answered exactly once (its address is not kept twice), the failures are
    conflicts, and the broker sees one reply per request (no credit lost)."""
    stack.broker()
    stack.testsvc("svc")
    stack.wait_ready("svc")
    zctx = zmq.Context()
    peer = Peer(zctx, stack.env["ZHILI_BROKER"], timeout_ms=4000)
    slow = command("slow-x", 103, pb_bytes(1, "x") + pb_int(2, 2) + pb_int(3, 1500))
    peer.send("Q", route("svc", "slow-x"), slow)
    time.sleep(0.4)  # deferred now: its work runs for 1.5 s
    for k in range(3):
        peer.send("Q", route("svc", "slow-x"), slow)
        rid = f"faw-r{k}"
        peer.send("Q", route("svc", rid), command(rid, 100, counter_add("fail-after-write", 1)))
    replies = []
    while len(replies) < 7:
        msg = peer.recv()
        assert msg[0] == b"P", msg
        replies.append(decode_reply(msg[2]))
    assert peer.quiet(1000), "a request was answered twice"
    slow_answers = [r for r in replies if r["request_id"] == "slow-x"]
    assert len(slow_answers) == 4 and all(r["status"] == 0 for r in slow_answers), replies
    assert all(r["counter_value"] == 2 for r in slow_answers), replies
    fails = [r for r in replies if r["request_id"].startswith("faw-r")]
    assert len(fails) == 3 and all(r["status"] == 3 for r in fails), fails  # CONFLICT
    assert stack.stats("svc")[("batch_reruns_total", "")] >= 1
    stats = json.loads(stack.ctl("stats", check=True).stdout)["stats"]
    got = {x["name"]: x["value"] for x in stats if x["labels"] == 'service="svc"'}
    assert got["broker_requests_total"] == got["broker_replies_total"]
    zctx.destroy(linger=0)


def test_call_to_another_service(stack):
    """A service calls another through the broker after its batch commits and
    answers its caller with the outcome; with the other service down the
    caller gets UNAVAILABLE with a sentence, and nothing was applied."""
    stack.broker()
    stack.testsvc("a")
    stack.testsvc("b")
    stack.wait_ready("a")
    stack.wait_ready("b")
    cmd = {"request_id": "r-1", "remote_add": {"service": "b", "name": "x", "amount": 3}}
    rc, r = stack.call("a", cmd)
    assert rc == 0 and r["counter"] == {"name": "x", "value": 3, "adds": 1}, r
    rc, again = stack.call("a", cmd)
    assert again == r
    rc, got = stack.call("b", {"counter_get": {"name": "x"}})
    assert got["counter"]["adds"] == 1
    stack.kill("b")
    rc, r = stack.call("a", {"request_id": "r-2", "remote_add": {"service": "b", "name": "x", "amount": 1, "timeout_ms": 800}})
    assert r["status"] == "unavailable" and "other service" in r["message"], r


def test_consumer_rebuild_replays_from_one(stack):
    """A projection that resets its cursors (zsvc_consumed_reset) and clears
    its tables is rebuilt from every source's seq 1 to the same state."""
    stack.broker()
    stack.testsvc("prod")
    stack.testsvc("cons", consume="prod.")
    stack.wait_ready("prod")
    stack.wait_ready("cons")
    for i in range(25):
        assert add(stack, "prod", f"rb-{i}")[0] == 0
    wait_until(lambda: stack.applied("cons", "prod")["cursor"] == 25, what="first pass")
    before = stack.applied("cons", "prod")
    rc, r = stack.call("cons", {"request_id": "reset-1", "applied_reset": {}})
    assert rc == 0, r
    wait_until(lambda: stack.applied("cons", "prod")["cursor"] == 25, what="rebuild")
    after = stack.applied("cons", "prod")
    assert after == before and after["duplicates"] == 0
    assert stack.stats("cons")[("cursor", 'source="prod"')] == 25
