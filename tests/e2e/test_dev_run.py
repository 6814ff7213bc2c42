"""Goal: `./dev run` brings the demo up and down cleanly, and a second run finds it again.

The first run on an empty data directory serves the dashboard, seeds the three districts
(units, budgets, fee bills), and its hotline simulators' petitions flow, located only at
buildings of deploy/demo/units.csv. Ctrl-C (SIGINT to the process group, as a terminal
sends it) stops every child within seconds and dev exits 130. The second run on the same
data directory reuses the admin token of data/admin.token, finds the units and petitions of
the first, and its seed changes nothing twice. Everything runs on free ports with its own
data directory (the ZHILI_* overrides dev honours) and without a build (ZHILI_DEV_NO_BUILD:
ctest has built ZHILI_BIN already)."""
import csv
import json
import os
import queue
import signal
import subprocess
import threading
import time

import requests

from zhili_stack import BIN, SRC, free_ports

DEV = os.path.join(SRC, "dev")
UNITS_CSV = os.path.join(SRC, "deploy", "demo", "units.csv")
DISTRICTS = ("370612", "220503", "420103")
COMPOUND = "370612001001001"  # 正阳一网格, the first compound of the seed
STOP_S = 8  # dev waits 5 s before SIGKILL, the hotline's timeout 1 s more


def units():
    with open(UNITS_CSV, newline="", encoding="utf-8") as f:
        return {row["code"] for row in csv.DictReader(f)}


def local_month():
    # The district's calendar (DESIGN §3): the seed bills this month's 物业费.
    return time.strftime("%Y-%m", time.gmtime(time.time() + 8 * 3600))


class DevRun:
    """`./dev run` in its own process group, its output read by a thread."""

    def __init__(self, env):
        self.lines = queue.Queue()
        self.out = []
        self.proc = subprocess.Popen([DEV, "run"], cwd=SRC, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True, text=True)
        self.pgid = self.proc.pid
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, prefix, timeout_s):
        """The rest of the first output line starting with prefix."""
        end = time.time() + timeout_s
        while time.time() < end:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, "dev exited:\n" + "\n".join(self.out)
                continue
            self.out.append(line)
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        raise AssertionError(f"no '{prefix}' within {timeout_s} s:\n" + "\n".join(self.out))

    def group(self):
        """Processes still in the group: {pid: command name}."""
        left = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:]
            state, _ppid, pgrp = rest.split()[:3]
            if int(pgrp) == self.pgid and state != "Z":
                left[int(pid)] = name
        return left

    def interrupt(self):
        """Ctrl-C: SIGINT to the whole group. Returns (exit status, seconds until all gone)."""
        start = time.time()
        os.killpg(self.pgid, signal.SIGINT)
        rc = self.proc.wait(timeout=STOP_S + 5)
        while self.group() and time.time() < start + STOP_S:
            time.sleep(0.1)
        return rc, time.time() - start

    def kill(self):
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


def dev_env(tmp_path):
    p = free_ports(4)
    env = dict(os.environ)
    env.update({
        "ZHILI_BIN": BIN,
        "ZHILI_DEV_NO_BUILD": "1",
        "ZHILI_DATA": str(tmp_path / "data"),
        "ZHILI_HTTP": f"127.0.0.1:{p[3]}",
        "ZHILI_BROKER_BIND": f"tcp://127.0.0.1:{p[0]}",
        "ZHILI_EVENTS_XSUB_BIND": f"tcp://127.0.0.1:{p[1]}",
        "ZHILI_EVENTS_XPUB_BIND": f"tcp://127.0.0.1:{p[2]}",
        "ZHILI_BROKER": f"tcp://127.0.0.1:{p[0]}",
        "ZHILI_EVENTS_PUB": f"tcp://127.0.0.1:{p[1]}",
        "ZHILI_EVENTS_SUB": f"tcp://127.0.0.1:{p[2]}",
        # The seed sets 48 withdrawal secrets and checks 48 approvals: Argon2id at its
        # cheapest keeps the first run short (docs/funds.md).
        "ZHILI_FUNDS_PWHASH": "test-fast",
    })
    return env, f"http://127.0.0.1:{p[3]}"


def api(url, token, path, **params):
    r = requests.get(url + path, params=params, timeout=10,
                     headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r.json()


def petition_areas(url, token, want, timeout_s=15):
    """Areas of the first `want` petition events on the admin's live stream (SSE)."""
    areas = []
    with requests.get(url + "/api/v1/stream", params={"topics": "petitions."}, stream=True,
                      timeout=timeout_s, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status_code == 200, r.status_code
        end = time.time() + timeout_s
        named = None  # the "event:" of the message being read: heartbeat, closed, or none
        for line in r.iter_lines(decode_unicode=True):
            if line and line.startswith("event:"):
                named = line[6:].strip()
            elif line and line.startswith("data:"):
                data = json.loads(line[5:])
                assert named != "closed", data  # the gateway closed the stream: say why
                if named is None:
                    areas.append(data["area"])
            elif not line:
                named = None
            if len(areas) >= want or time.time() > end:
                break
    return areas


def fee_rates(url, token):
    """收缴率 of this month for each district in the one table, waiting for reporting."""
    end = time.time() + 15
    while True:
        rates = {}
        for d in DISTRICTS:
            rep = api(url, token, "/api/v1/report", area=d, period=local_month())
            cell = next(c for c in rep["total"]["cells"] if c["indicator"] == "fee_collection_rate")
            rates[d] = cell["current"]
        if all(r["denominator"] == 96 for r in rates.values()) or time.time() > end:
            return rates
        time.sleep(0.5)


def seeded(url, token):
    """What the seed leaves in the first compound: budget, withdrawals, fee summary, once
    funds has told budgets that the withdrawal was posted (its tick: reserved -> spent)."""
    year = local_month()[:4]
    end = time.time() + 10
    while True:
        budget = api(url, token, f"/api/v1/budgets/{COMPOUND}/{year}")
        if not any(line["reserved"] for line in budget["lines"]) or time.time() > end:
            break
        time.sleep(0.2)
    withdrawals = api(url, token, f"/api/v1/funds/{COMPOUND}/withdrawals")["withdrawals"]
    fees = api(url, token, f"/api/v1/funds/{COMPOUND}/fees/{local_month()}")
    return budget, withdrawals, fees


def check_stop(run):
    rc, took = run.interrupt()
    left = run.group()
    assert not left, f"still running {took:.1f} s after SIGINT: {left}\n" + "\n".join(run.out)
    assert rc == 130, (rc, run.out)
    assert took < STOP_S, took


def test_dev_run_up_down_and_again(tmp_path):
    env, url = dev_env(tmp_path)
    known = units()

    # First run: an empty data directory.
    run = DevRun(env)
    try:
        assert run.wait_for("zhili dashboard:", 60) == url + "/"
        token = run.wait_for("admin token:", 10)
        assert token.startswith("zl_"), token
        page = requests.get(url + "/", timeout=10)
        assert page.status_code == 200, page.status_code
        assert page.headers["Content-Type"].startswith("text/html")
        assert "<title>治理" in page.content.decode("utf-8")  # the command-center dashboard

        districts = {u["code"] for u in api(url, token, "/api/v1/grid/units", level=1)["units"]}
        assert set(DISTRICTS) <= districts, districts

        # The hotline simulators push one petition a second per district, each at a
        # building the seed made (zhilictl hotline --units).
        areas = petition_areas(url, token, want=3)
        assert len(areas) >= 3, areas
        assert all(a in known and len(a) == 18 for a in areas), areas

        rates = fee_rates(url, token)
        for d, r in rates.items():
            assert r["rate"] is not None and 0.5 < r["rate"] < 1, (d, r)
        budget, withdrawals, fees = seeded(url, token)
        assert budget["state"] == "active", budget
        assert sorted(budget["signed"]) == ["committee", "party_branch", "property"], budget
        assert [w["state"] for w in withdrawals] == ["posted"], withdrawals
        assert sum(line["spent"] for line in budget["lines"]) == withdrawals[0]["amount"]
        assert fees["households_billed"] == 12 and 0 < fees["households_paid"] < 12, fees
        petitions = len(api(url, token, "/api/v1/petitions", area="370612",
                            limit=1000)["petitions"])
        check_stop(run)
    finally:
        run.kill()

    with open(tmp_path / "data" / "admin.token") as f:
        assert f.read().strip() == token

    # Second run on the same data: the same token, the units, petitions and the seed's
    # figures of the first run, nothing done twice.
    run = DevRun(env)
    try:
        assert run.wait_for("zhili dashboard:", 60) == url + "/"
        assert run.wait_for("admin token:", 10) == token
        assert api(url, token, "/api/v1/whoami")["role"] == "admin"
        districts = {u["code"] for u in api(url, token, "/api/v1/grid/units", level=1)["units"]}
        assert set(DISTRICTS) <= districts, districts
        again = len(api(url, token, "/api/v1/petitions", area="370612", limit=1000)["petitions"])
        assert again >= petitions > 0, (again, petitions)
        budget2, withdrawals2, fees2 = seeded(url, token)
        assert (budget2["version"], budget2["state"]) == (budget["version"], "active"), budget2
        assert budget2["lines"] == budget["lines"]
        assert [w["id"] for w in withdrawals2] == [w["id"] for w in withdrawals], withdrawals2
        assert (fees2["households_billed"], fees2["households_paid"], fees2["amount_paid"]) == (
            fees["households_billed"], fees["households_paid"], fees["amount_paid"]), fees2
        assert fee_rates(url, token) == rates
        check_stop(run)
    finally:
        run.kill()


def test_hotline_units_refused(tmp_path):
    """A units file that names no unit under the area, or none at all, is a usage error
    (status 2) before anything is sent."""
    ctl = os.path.join(BIN, "zhilictl")
    headerless = tmp_path / "units.csv"
    headerless.write_text("370612,烟台市牟平区\n", encoding="utf-8")
    for area, path, why in (("999999", UNITS_CSV, "no unit under 999999"),
                            ("370612", str(tmp_path / "missing.csv"), "cannot read"),
                            ("370612", str(headerless), "the header must name")):
        r = subprocess.run([ctl, "hotline", "--rate", "1", "--duration", "1", "--area", area,
                            "--units", path, "--token", "t", "--url", "http://127.0.0.1:9"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and why in r.stderr, (area, path, r.returncode, r.stderr)
