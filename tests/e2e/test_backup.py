"""zhilictl backup end to end (docs/operations.md, "Backup" and "Restore"): a
real broker and test service (tests/testsvc), a hot copy taken while writes
keep landing, the service restored from the copy in a fresh data directory,
and the command's refusals. Each test states the property it checks."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from zhili_stack import BIN

SUMMARY = re.compile(r"^backup: (\S+) copied to (\S+)/data\.mdb, (\d+) bytes in (\d+) ms$")
PRE_LOAD = 3000      # counter_add commands acknowledged before the backup (counter "c")
NAMED = 20           # counters n0..n19, one add each, also before the backup


def add(stack, rid, name, amount=1, svc="bk"):
    return stack.call(svc, {"request_id": rid, "counter_add": {"name": name, "amount": amount}})


def counter(stack, name, svc="bk"):
    rc, r = stack.call(svc, {"counter_get": {"name": name}})
    assert rc == 0, r
    return r["counter"]


def run_testload(stack, count, prefix, window=200, timeout_s=120):
    """Run zhili-testload to completion: `count` adds of 1 to counter "c"."""
    r = subprocess.run([os.path.join(BIN, "zhili-testload"), "bk", str(count), str(window),
                        prefix, str(timeout_s)],
                       env=stack.env, capture_output=True, text=True, timeout=timeout_s + 30)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def wait_until(pred, timeout_s=20, what="condition"):
    end = time.time() + timeout_s
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Writer(threading.Thread):
    """Adds 1 to counter "hot" through zhilictl until stopped, each under its
    own request_id; `acked` counts the OK replies, in order."""

    def __init__(self, stack):
        super().__init__(daemon=True)
        self.stack = stack
        self.stop = threading.Event()
        self.acked = 0
        self.failed = []

    def run(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            rc, r = add(self.stack, f"hot-{i}", "hot")
            if rc == 0:
                self.acked += 1
            else:
                self.failed.append(r)


def test_hot_backup_under_load_restores_every_acknowledged_write(stack, tmp_path):
    """A backup taken while the service keeps committing (a load generator and a
    writer thread) is one consistent snapshot: restored into a fresh data
    directory, the service starts; it holds every write acknowledged before
    the backup began; each counter's value matches its count of adds and the
    outbox holds exactly one event per add (state and outbox from the same
    transaction); retried request_ids change nothing; new writes go on after
    the copy's last seq. The running service never noticed the copy."""
    # Grow the map from 1 MiB during the test: the copy must cope with a
    # service that remaps under it.
    stack.broker()
    stack.testsvc("bk", ZHILI_MAP_MB_INITIAL=1)
    stack.wait_ready("bk")
    run_testload(stack, PRE_LOAD, "pre")
    for i in range(NAMED):
        rc, r = add(stack, f"named-{i}", f"n{i}", i + 1)
        assert rc == 0, r

    writer = Writer(stack)
    writer.start()
    load = subprocess.Popen([os.path.join(BIN, "zhili-testload"), "bk", "1000000", "100",
                             "load", "120"], env=stack.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: writer.acked >= 5 and counter(stack, "c")["value"] > PRE_LOAD + 500,
                   what="the load to be under way")
        # Everything acknowledged up to here must be in the copy.
        hot_before = writer.acked
        c_before = counter(stack, "c")["value"]
        dest = tmp_path / "backups" / "bk-1"
        (tmp_path / "backups").mkdir()
        r = stack.ctl("backup", "--data", os.path.join(stack.data, "bk"), "--out", str(dest),
                      timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert load.poll() is None, "the load generator stopped before the backup ended"
        c_after = counter(stack, "c")["value"]
        wait_until(lambda: writer.acked > hot_before + 3, what="writes after the backup")
    finally:
        writer.stop.set()
        writer.join(timeout=30)
        load.send_signal(signal.SIGTERM)
        load.wait(timeout=10)
    assert writer.failed == []
    assert c_after >= c_before

    m = SUMMARY.match(r.stdout.strip())
    assert m, r.stdout
    assert m.group(1) == os.path.join(stack.data, "bk") and m.group(2) == str(dest)
    assert int(m.group(3)) == os.path.getsize(dest / "data.mdb") > 0
    assert sorted(os.listdir(dest)) == ["data.mdb"]

    c_final = counter(stack, "c")["value"]
    hot_final = counter(stack, "hot")["value"]
    stack.kill("bk", signal.SIGTERM)

    # Restore: a fresh data directory holding the copy as the service's store.
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copytree(dest, restored / "bk")
    stack.testsvc("bk", ZHILI_DATA=str(restored))
    stack.wait_ready("bk")

    c = counter(stack, "c")
    hot = counter(stack, "hot")
    assert c_before <= c["value"] <= c_final and c["value"] == c["adds"]
    assert hot_before <= hot["value"] <= hot_final and hot["value"] == hot["adds"]
    for i in range(NAMED):
        assert counter(stack, f"n{i}") == {"name": f"n{i}", "value": i + 1, "adds": 1}
    events = c["adds"] + hot["adds"] + NAMED
    assert stack.stats("bk")[("outbox_last_seq", "")] == events
    outbox = stack.applied("bk", "bk")
    assert outbox["applied"] == outbox["cursor"] == events

    # The requests table came along: resending acknowledged requests changes nothing.
    run_testload(stack, PRE_LOAD, "pre")
    rc, r = add(stack, "named-3", "n3", 4)
    assert rc == 0 and r["counter"] == {"name": "n3", "value": 4, "adds": 1}
    assert counter(stack, "c") == c
    # And the restored store takes new writes after the copy's last seq.
    rc, r = add(stack, "after-restore", "after", 7)
    assert rc == 0 and r["counter"]["value"] == 7
    assert stack.stats("bk")[("outbox_last_seq", "")] == events + 1


def test_backup_by_service_name_and_never_over_a_backup(stack, tmp_path):
    """`zhilictl backup SERVICE` copies $ZHILI_DATA/SERVICE; a second backup
    into the same directory is refused and leaves the first one untouched;
    a destination that is a file, or has no parent, is refused."""
    stack.broker()
    stack.testsvc("bk")
    stack.wait_ready("bk")
    assert add(stack, "one", "c", 5)[0] == 0
    dest = tmp_path / "bk-by-name"
    r = stack.ctl("backup", "bk", "--out", str(dest))
    assert r.returncode == 0, r.stderr
    assert SUMMARY.match(r.stdout.strip()).group(1) == os.path.join(stack.data, "bk")
    before = (dest / "data.mdb").read_bytes()

    r = stack.ctl("backup", "bk", "--out", str(dest))
    assert r.returncode == 1 and "is not empty" in r.stderr and r.stdout == ""
    assert (dest / "data.mdb").read_bytes() == before
    assert sorted(os.listdir(dest)) == ["data.mdb"]

    afile = tmp_path / "a-file"
    afile.write_text("not a directory")
    r = stack.ctl("backup", "bk", "--out", str(afile))
    assert r.returncode == 1 and "is not a directory" in r.stderr
    assert afile.read_text() == "not a directory"
    r = stack.ctl("backup", "bk", "--out", str(tmp_path / "no" / "such" / "parent"))
    assert r.returncode == 1 and "its parent must exist" in r.stderr
    assert not (tmp_path / "no").exists()
    assert stack.alive("bk")


def test_bad_input_is_refused_with_a_sentence(stack, tmp_path):
    """Usage errors exit 2; a missing or empty source, a source that is a file
    and a non-empty destination exit 1 with a sentence on stderr, and none of
    them creates anything, neither in the source nor at the destination."""
    for args in [(), ("--out", str(tmp_path / "x")), ("bk",), ("bk", "--data", "d", "--out", "x"),
                 ("bk", "--out"), ("bk", "--out", "x", "--bogus"), ("Bad/Name", "--out", "x")]:
        r = stack.ctl("backup", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.strip() and r.stdout == "", args
    assert not (tmp_path / "x").exists()

    dest = tmp_path / "out"
    r = stack.ctl("backup", "--data", str(tmp_path / "missing"), "--out", str(dest))
    assert r.returncode == 1 and "no LMDB environment" in r.stderr and "missing" in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = stack.ctl("backup", "--data", str(empty), "--out", str(dest))
    assert r.returncode == 1 and "holds no data.mdb" in r.stderr
    assert os.listdir(empty) == []     # no environment was made where none was
    r = stack.ctl("backup", "nosuchservice", "--out", str(dest))
    assert r.returncode == 1 and "no LMDB environment" in r.stderr
    afile = tmp_path / "a-file"
    afile.write_text("x")
    r = stack.ctl("backup", "--data", str(afile), "--out", str(dest))
    assert r.returncode == 1 and "is not a directory" in r.stderr
    assert not dest.exists()

    stack.broker()
    stack.testsvc("bk")
    stack.wait_ready("bk")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("keep me")
    r = stack.ctl("backup", "bk", "--out", str(full))
    assert r.returncode == 1 and "is not empty" in r.stderr and "never overwrites" in r.stderr
    assert sorted(os.listdir(full)) == ["keep.txt"]
    assert (full / "keep.txt").read_text() == "keep me"


def test_unreadable_paths_are_refused(stack, tmp_path):
    """Run as a user that may not read the store or write the destination, the
    backup exits 1 naming the permission problem, and creates nothing."""
    stack.broker()
    stack.testsvc("bk")
    stack.wait_ready("bk")
    assert add(stack, "one", "c", 1)[0] == 0
    src = os.path.join(stack.data, "bk")
    if os.geteuid() != 0:
        os.chmod(src, 0)
        try:
            r = stack.ctl("backup", "--data", src, "--out", str(tmp_path / "o"))
        finally:
            os.chmod(src, 0o750)
        assert r.returncode == 1 and "Permission denied" in r.stderr
        assert not (tmp_path / "o").exists()
        return
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot drop privileges")

    def as_nobody(*args):
        return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               os.path.join(BIN, "zhilictl"), "backup", *args],
                              env=stack.env, capture_output=True, text=True, timeout=30)

    # The store is under root's private tmp directory.
    r = as_nobody("--data", src, "--out", "/tmp/zhili-backup-nobody-never")
    assert r.returncode == 1 and "Permission denied" in r.stderr, r.stderr
    assert not os.path.exists("/tmp/zhili-backup-nobody-never")

    # A copy of the store that nobody may read, in a directory it may write,
    # but whose lock.mdb it may not write (a backup takes a reader slot).
    shared = tempfile.mkdtemp(prefix="zhili-backup-perm-")
    try:
        os.chmod(shared, 0o777)
        store = os.path.join(shared, "bk")
        os.mkdir(store, 0o755)
        stack.ctl("backup", "bk", "--out", os.path.join(shared, "copy"), check=True)
        shutil.copy(os.path.join(shared, "copy", "data.mdb"), store)
        os.chmod(os.path.join(store, "data.mdb"), 0o644)
        open(os.path.join(store, "lock.mdb"), "wb").close()
        os.chmod(os.path.join(store, "lock.mdb"), 0o644)
        never = os.path.join(shared, "never")
        r = as_nobody("--data", store, "--out", never)
        assert r.returncode == 1 and "Permission denied" in r.stderr, r.stderr
        assert "service's user" in r.stderr
        assert not os.path.exists(never)    # the directory it made is gone again
        # The lock is writable now, but the destination's directory is not.
        os.chmod(os.path.join(store, "lock.mdb"), 0o666)
        os.chmod(shared, 0o755)
        r = as_nobody("--data", store, "--out", never)
        assert r.returncode == 1 and "cannot create the backup directory" in r.stderr, r.stderr
        assert "Permission denied" in r.stderr and not os.path.exists(never)
        os.chmod(shared, 0o777)
        r = as_nobody("--data", store, "--out", os.path.join(shared, "ok"))
        assert r.returncode == 0, r.stderr
    finally:
        shutil.rmtree(shared, ignore_errors=True)
