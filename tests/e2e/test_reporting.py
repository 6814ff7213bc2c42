"""The one table (docs/reporting.md) end to end: a real broker, zhili-petitions
and zhili-grid (on fake clocks, so deadlines pass and last year exists),
zhili-reporting and the gateway on loopback. The scenario is built by sending
real commands over HTTP as the hotline, grid members, police and the command
center would; every figure below is computed by hand from it.

The scenario (district 220503; events of last year at 2025-10-05 09:00, of
this year from T0 = 2026-10-05 09:00, +08:00):

  last year   q1 noise @C11 signed, replied (on time), evaluated 满意 solved
              q2 noise @C12 signed, replied (on time)
  T0          p1 noise @C11, p2 property @C11, p3 noise @C12, p4 property @C12,
              p5 noise @C21, p6 noise @G211 (grid level, in C21),
              p7 noise @S2 (a street's code: in no community)
              sign p1 p2 p3; reply p1 p2 p3; evaluate p1 满意 solved,
              p2 基本满意 unsolved, p3 不满意 unsolved (reopens p3)
  T0+3h       overdue_sign for p3 (reopened) p4 p5 p6 p7; sign p3 p4 p5 late;
              reply p3 again, evaluate p3 满意 solved
  T0+8d3h     overdue_reply for p4 p5 p6 p7; reply p4 p5 late
  grid, T0    disputes @C11: resolved, failed, open; @C12: resolved;
              visits: 2 @C11, 1 @C12; key persons: kp1 @C11, kp2 @C12 released;
              a day later kp1's visit is missed once
  funds, T0   the trust account of compound G111 (in C11): deposits 物业费 1000.00,
              停车费 200.00, 广告位租金 50.00 (then reversed, 冲正), 利息 1.00; a withdrawal
              of 300.00 approved by both holders; October's 物业费 billed to 3 households
              at 100.00, 2 paid in full (each payment also a 物业费 deposit); one
              household billed for the whole year 2026 (unpaid)
  budgets     the real zhili-budgets, its clock from SEPT = 2026-09-15: G111's 2026
              budget co-signed then, lines 2-01 12 000.00 split evenly (1 000.00 a month)
              and 3-01 1 200.00 in a profile (200.00 in September, 400.00 in October);
              the clock to T0 publishes September (budget 1 200.00, actual 0); the
              withdrawal above is spent on 2-01 in October; the clock to 1 November
              publishes October (budget 1 400.00, actual 300.00)

Districts 220504 (alerts) and 220505 (a black-listed compound) keep their
own scenarios out of 220503's figures. One stack serves the module; the
tests run in file order and the last ones (alerts, rebuild) depend on the
earlier ones' events."""
import csv
import datetime
import io
import json
import os
import time

import pytest
import requests

from zhili_stack import Gateway, Stack

TZ = datetime.timezone(datetime.timedelta(hours=8))
LAST = int(datetime.datetime(2025, 10, 5, 9, 0, tzinfo=TZ).timestamp() * 1000)
T0 = int(datetime.datetime(2026, 10, 5, 9, 0, tzinfo=TZ).timestamp() * 1000)
SEPT = int(datetime.datetime(2026, 9, 15, 9, 0, tzinfo=TZ).timestamp() * 1000)
NOV1 = int(datetime.datetime(2026, 11, 1, 0, 0, 30, tzinfo=TZ).timestamp() * 1000)
HOUR = 3600 * 1000
DAY = 24 * HOUR

D = "220503"
S1, S2 = "220503001", "220503002"
C11, C12, C21 = "220503001001", "220503001002", "220503002001"
G111, G112, G121, G211 = "220503001001001", "220503001001002", "220503001002001", "220503002001001"
B1111, B1121, B1211, B2111 = G111 + "001", G112 + "001", G121 + "001", G211 + "001"
ALERT_STREET, ALERT_GRID = "220504001", "220504001001001"
BLACK_COMPOUND = "220505001001001"

UNITS_CSV = f"""code,name
220503,二道江区
{S1},东通化街道
{S2},桃园街道
{C11},桃源社区
{C12},江南社区
{C21},五道江社区
{G111},桃源一网格
{G112},桃源二网格
{G121},江南一网格
{G211},五道江一网格
{B1111},1号楼
{B1121},2号楼
{B1211},3号楼
{B2111},4号楼
220504,另一区
{ALERT_STREET},告警街道
220504001001,告警社区
{ALERT_GRID},告警网格
"""


def check_char(first17):
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights)) % 11]


ID1 = "22050319800101123" + check_char("22050319800101123")
ID2 = "22050319900202456" + check_char("22050319900202456")


class Env:
    def __init__(self, stack, gw):
        self.stack, self.gw = stack, gw
        self.tokens = {}
        self.pets = {}

    def token(self, role, area):
        if (role, area) not in self.tokens:
            self.tokens[(role, area)] = self.gw.token(role, area, name=f"{role}-{area}")[0]
        return self.tokens[(role, area)]

    def api(self, method, path, role, area, body=None, params=None, key=None):
        h = Gateway.auth(self.token(role, area))
        if key:
            h["Idempotency-Key"] = key
        return requests.request(method, self.gw.url + path, json=body, params=params, headers=h,
                                timeout=10)

    def ok(self, method, path, role, area, body=None, params=None, key=None):
        r = self.api(method, path, role, area, body, params, key)
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        return r.json()

    # -- petitions --
    def push(self, name, area, category="noise"):
        """A hotline push; the hotline of the petition's district evaluates it later."""
        p = self.ok("POST", "/api/v1/petitions", "hotline", area[:6],
                    {"category": category, "content": "测试诉求" + name, "area": area,
                     "address": "测试地址", "citizen": {"name": "张女士", "phone": "13812341234"},
                     "channel": "hotline"}, key="rep-" + name)
        self.pets[name] = p
        return p

    def act(self, name, action, body=None):
        p = self.pets[name]
        if action == "evaluate":
            role, area = "hotline", p["area"][:6]
        else:
            role, area = "grid_member", p["assigned_to"]
        return self.ok("POST", f"/api/v1/petitions/{p['id']}/{action}", role, area, body or {})

    def clock(self, service, **kw):
        rc, reply = self.stack.call(service, kw)
        assert rc == 0, reply
        return reply["clock"]["now_ms"]

    # -- reporting --
    def settle(self, timeout=20):
        """Until reporting has applied every event its sources wrote."""
        want = {s: self.stack.stats(s)[("outbox_last_seq", "")]
                for s in ("petitions", "grid", "funds", "budgets")}
        end = time.time() + timeout
        while time.time() < end:
            st = self.stack.stats("reporting")
            if all(st.get(("cursor", f'source="{s}"'), 0) >= n for s, n in want.items()):
                return
            time.sleep(0.05)
        raise AssertionError(f"reporting did not catch up with {want}:\n"
                             + self.stack.log("reporting")[-3000:])

    def report(self, area=D, period="2026-10", level="community", role="admin", scope=""):
        return self.ok("GET", "/api/v1/report", role, scope,
                       params={"area": area, "period": period, "level": level})

    def cells(self, area, indicator, period="2026-10", **params):
        return self.ok("GET", "/api/v1/report/cells", "admin", "",
                       params=dict(area=area, period=period, indicator=indicator, **params))

    def outbox(self, source):
        r = self.stack.ctl("replay", source, "--from", "1", timeout=30)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def build_scenario(e):
    stack = e.stack
    units = os.path.join(stack.dir, "units.csv")
    with open(units, "w", encoding="utf-8") as f:
        f.write(UNITS_CSV)
    r = stack.ctl("import", "units", units)
    assert r.returncode == 0, r.stderr
    for pid, area in (("gm111", G111), ("gm121", G121), ("gma", ALERT_GRID)):
        rc, reply = stack.call("grid", {"grid_person_upsert": {
            "id": pid, "name": "网格员" + pid, "kind": "grid_member", "area": area}})
        assert rc == 0, reply
    # Petitions routes to grid units once its read model has grid's events.
    grid_last = stack.stats("grid")[("outbox_last_seq", "")]
    deadline = time.time() + 10
    while stack.stats("petitions").get(("cursor", 'source="grid"'), 0) < grid_last:
        assert time.time() < deadline, "petitions did not read grid's units"
        time.sleep(0.05)
    # ---- last year (petitions clock at LAST) ----
    e.push("q1", B1111)
    e.push("q2", B1211)
    for n in ("q1", "q2"):
        e.act(n, "sign")
        e.act(n, "reply", {"text": "已处理"})
    e.act("q1", "evaluate", {"solved": True, "satisfaction": "satisfied"})
    # ---- this year ----
    e.clock("petitions", clock_set={"now_ms": T0})
    for n, area, cat in (("p1", B1111, "noise"), ("p2", B1121, "property"),
                         ("p3", B1211, "noise"), ("p4", B1211, "property"),
                         ("p5", B2111, "noise"), ("p6", G211, "noise"), ("p7", S2, "noise")):
        e.push(n, area, cat)
    for i in range(3):
        e.ok("POST", "/api/v1/petitions", "hotline", BLACK_COMPOUND[:6],
             {"category": "property", "content": f"物业不作为{i}", "area": BLACK_COMPOUND,
              "citizen": {"name": "李先生", "phone": "13912345678"}}, key=f"rep-black-{i}")
    for n in ("p1", "p2", "p3"):
        e.act(n, "sign")
        e.act(n, "reply", {"text": "已办结"})
    e.act("p1", "evaluate", {"solved": True, "satisfaction": "satisfied"})
    e.act("p2", "evaluate", {"solved": False, "satisfaction": "basically_satisfied"})
    assert e.act("p3", "evaluate", {"solved": False, "satisfaction": "dissatisfied"})[
        "state"] == "reopened"
    e.clock("petitions", clock_advance={"delta_ms": 3 * HOUR})
    for n in ("p3", "p4", "p5"):
        e.act(n, "sign")
    e.act("p3", "reply", {"text": "重新办结"})
    e.act("p3", "evaluate", {"solved": True, "satisfaction": "satisfied"})
    e.clock("petitions", clock_advance={"delta_ms": 8 * DAY})
    for n in ("p4", "p5"):
        e.act(n, "reply", {"text": "超期办结"})
    # ---- grid, this year (its clock starts at T0) ----
    disputes = [(G111, "resolve"), (G111, "fail"), (G111, None), (G121, "resolve")]
    for area, end in disputes:
        d = e.ok("POST", "/api/v1/grid/disputes", "grid_member", area,
                 {"area": area, "type": "neighbor", "level": "general", "description": "纠纷",
                  "parties": [{"name": "甲"}, {"name": "乙"}]})
        steps = [("sign", {}), ("mediate", {"handler": "调解员", "note": "调解"})] if end else []
        if end == "resolve":
            steps.append(("resolve", {"outcome": "达成协议"}))
        elif end == "fail":
            steps.append(("fail", {"reason": "不接受"}))
        for action, body in steps:
            e.ok("POST", f"/api/v1/grid/disputes/{d['id']}/{action}", "grid_member", area, body)
    for visitor, building, room in (("gm111", B1111, "101"), ("gm111", B1111, "102"),
                                    ("gm121", B1211, "201")):
        e.ok("POST", "/api/v1/grid/visits", "grid_member", building[:15],
             {"visitor": visitor, "building": building, "room": room, "findings": "正常"})
    kps = []
    for grid, community, who, idn, days in ((G111, C11, "gm111", ID1, 1),
                                            (G121, C12, "gm121", ID2, 30)):
        kps.append(e.ok("POST", "/api/v1/grid/keypersons", "police", community,
                        {"area": grid, "category": "released", "risk": "high",
                         "responsible": who, "visit_interval_days": days, "name": "某某",
                         "id_number": idn, "phone": "13700000000", "address": "某地"}))
    e.ok("DELETE", f"/api/v1/grid/keypersons/{kps[1]['id']}", "police", C12,
         params={"reason": "期满解除"})
    e.clock("grid", clock_advance={"delta_ms": DAY + 1000})
    budgets_scenario(e)
    funds_scenario(e)
    budgets_publish_october(e)
    e.settle()


BUDGET_ACTORS = {role: {"id": f"{role}-{G111}", "role": role, "area": G111}
                 for role in ("property", "committee", "party_branch")}


def budgets_call(e, body, role="property"):
    cmd = dict(body, actor=BUDGET_ACTORS[role], request_id=f"rep-budgets-{time.time_ns()}")
    rc, reply = e.stack.call("budgets", cmd)
    assert rc == 0, (body, reply)
    return reply


def published(e):
    return [ev for ev in e.outbox("budgets") if ev["type"] == "execution_published"]


def wait_published(e, n):
    deadline = time.time() + 10
    while len(got := published(e)) < n:
        assert time.time() < deadline, f"budgets did not publish {n} executions: {got}"
        time.sleep(0.1)
    return got


def budgets_scenario(e):
    """G111's 2026 budget co-signed in September; September published on 1 October."""
    profile = [0] * 8 + [20000, 40000, 30000, 30000]
    budgets_call(e, {"budgets_draft": {"area": G111, "year": 2026, "expected_income": 2000000,
                                       "lines": [{"line": "2-01", "amount": 1200000},
                                                 {"line": "3-01", "amount": 120000,
                                                  "monthly": profile}]}})
    budgets_call(e, {"budgets_submit": {"area": G111, "year": 2026}})
    for role in ("committee", "party_branch", "property"):
        r = budgets_call(e, {"budgets_sign": {"area": G111, "year": 2026}}, role)
    assert r["budgets_budget"]["state"] == "active", r
    e.clock("budgets", clock_set={"now_ms": T0})
    (sept,) = wait_published(e, 1)
    assert int(sept["budgets_execution"]["month"]) == 9


def budgets_publish_october(e):
    """Once funds' withdrawal is spent on 2-01 (in October, budgets' clock), 1 November."""
    deadline = time.time() + 10
    while True:
        b = budgets_call(e, {"budgets_get": {"area": G111, "year": 2026}})["budgets_budget"]
        if next(x for x in b["lines"] if x["line"] == "2-01").get("spent") == 30000:
            break
        assert time.time() < deadline, b
        time.sleep(0.05)
    e.clock("budgets", clock_set={"now_ms": NOV1})
    assert int(wait_published(e, 2)[1]["budgets_execution"]["month"]) == 10


def funds_scenario(e):
    """The trust account of G111 through the funds service's commands."""
    n = [0]
    holder_a = {"id": "li", "role": "committee", "area": G111, "name": "李主任"}
    holder_b = {"id": "wang", "role": "supervisor", "area": G111, "name": "王监察"}

    def ok(body, actor=None):
        n[0] += 1
        cmd = dict(body, request_id=f"rep-funds-{n[0]}",
                   actor=actor or {"id": "staff-1", "role": "staff", "area": S1})
        rc, reply = e.stack.call("funds", cmd)
        assert rc == 0, (body, reply)
        return reply

    ok({"funds_account_open": {"account": G111, "name": "桃源一网格共有资金账户",
                               "holder_a": {"id": "li", "name": "李主任"},
                               "holder_b": {"id": "wang", "name": "王监察"}}})
    ok({"funds_credential_set": {"account": G111, "credential": "holder_a", "secret": "111111"}},
       holder_a)
    ok({"funds_credential_set": {"account": G111, "credential": "holder_b", "secret": "222222"}},
       holder_b)
    seqs = {}
    for receipt, category, amount, kind in (("R-1", "property_fee", 100000, "organisation"),
                                            ("R-2", "parking_fee", 20000, "person"),
                                            ("R-3", "advertising_rent", 5000, "organisation"),
                                            ("R-4", "interest", 100, "organisation")):
        d = ok({"funds_deposit": {"account": G111, "category": category, "amount": amount,
                                  "payer": "某单位", "payer_kind": kind, "receipt": receipt}})
        seqs[receipt] = d["funds_entry"]["seq"]
    ok({"funds_reverse": {"account": G111, "seq": seqs["R-3"], "reason": "收据开错"}})
    w = ok({"funds_withdrawal_request": {"account": G111, "amount": 30000, "payee": "某电梯公司",
                                         "payee_kind": "organisation", "purpose": "电梯维保",
                                         "line": "2-01"}},
           {"id": "prop-1", "role": "property", "area": G111})["funds_withdrawal"]
    for holder, secret in ((holder_a, "111111"), (holder_b, "222222")):
        ok({"funds_withdrawal_approve": {"account": G111, "withdrawal_id": w["id"],
                                         "secret": secret}}, holder)
    rooms = ["101", "102", "103"]
    ok({"funds_fee_bill": {"account": G111, "period": "2026-10", "flat_fen": 10000,
                           "households": [{"building": B1111, "room": r} for r in rooms]}})
    for r in rooms[:2]:
        ok({"funds_fee_pay": {"account": G111, "period": "2026-10", "building": B1111, "room": r,
                              "amount": 10000, "receipt": f"F-{r}", "payer": "住户"}})
    # An annual bill counts in the year 2026 only.
    ok({"funds_fee_bill": {"account": G111, "period": "2026", "flat_fen": 120000,
                           "households": [{"building": B1111, "room": "201"}]}})


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    stack = Stack(tmp=str(tmp_path_factory.mktemp("reporting")))
    stack.broker()
    stack.start("grid", "zhili-grid", ZHILI_GRID_KEY=os.urandom(32).hex(), ZHILI_FAKE_CLOCK=1,
                ZHILI_FAKE_CLOCK_START_MS=T0)
    stack.start("petitions", "zhili-petitions", ZHILI_FAKE_CLOCK=1,
                ZHILI_FAKE_CLOCK_START_MS=LAST)
    stack.start("funds", "zhili-funds", ZHILI_FUNDS_PWHASH="test-fast", ZHILI_FAKE_CLOCK=1,
                ZHILI_FAKE_CLOCK_START_MS=T0 + 2 * HOUR)
    stack.start("budgets", "zhili-budgets", ZHILI_FAKE_CLOCK=1, ZHILI_FAKE_CLOCK_START_MS=SEPT)
    stack.start("reporting", "zhili-reporting", ZHILI_FAKE_CLOCK=1,
                ZHILI_FAKE_CLOCK_START_MS=T0 + 10 * DAY,
                ZHILI_REPORTING_ALERTS="ontime_sign_rate<90%@street;"
                                       "budget_execution_rate<10%@grid")
    gw = Gateway(stack)
    for s in ("grid", "petitions", "funds", "budgets", "reporting"):
        stack.wait_ready(s)
    e = Env(stack, gw)
    build_scenario(e)
    yield e
    stack.stop()


def cell(row, indicator, which="current"):
    for c in row["cells"]:
        if c["indicator"] == indicator:
            return c[which]
    raise KeyError(indicator)


def rate(row, indicator, which="current"):
    c = cell(row, indicator, which)
    return (c["numerator"], c["denominator"], c["rate"])


def rows_by_area(rep):
    return {r["area"]: r for r in rep["rows"]}


# ---- the formulas, against the hand-computed scenario -------------------------------------

EXPECTED = {
    # area: counts, then rates as (numerator, denominator)
    C11: dict(petitions_received=2, escalations=0, property_complaints=1,
              property_complaints_overdue=0, disputes_registered=3, household_visits=2,
              keypersons_managed=1, keyperson_visits_missed=1,
              sign_rate=(2, 2), ontime_sign_rate=(2, 2), completion_rate=(2, 2),
              ontime_completion_rate=(2, 2), satisfaction_rate=(2, 2), resolution_rate=(1, 2),
              dispute_resolution_rate=(1, 3), mediation_success_rate=(1, 2)),
    C12: dict(petitions_received=2, escalations=3, property_complaints=1,
              property_complaints_overdue=1, disputes_registered=1, household_visits=1,
              keypersons_managed=0, keyperson_visits_missed=0,
              sign_rate=(2, 2), ontime_sign_rate=(1, 2), completion_rate=(2, 2),
              ontime_completion_rate=(1, 2), satisfaction_rate=(1, 2), resolution_rate=(1, 2),
              dispute_resolution_rate=(1, 1), mediation_success_rate=(1, 1)),
    C21: dict(petitions_received=2, escalations=4, property_complaints=0,
              property_complaints_overdue=0, disputes_registered=0, household_visits=0,
              keypersons_managed=0, keyperson_visits_missed=0,
              sign_rate=(1, 2), ontime_sign_rate=(0, 2), completion_rate=(1, 2),
              ontime_completion_rate=(0, 2), satisfaction_rate=(0, 0), resolution_rate=(0, 0),
              dispute_resolution_rate=(0, 0), mediation_success_rate=(0, 0)),
    D: dict(petitions_received=7, escalations=9, property_complaints=2,
            property_complaints_overdue=1, disputes_registered=4, household_visits=3,
            keypersons_managed=1, keyperson_visits_missed=1,
            sign_rate=(5, 7), ontime_sign_rate=(3, 7), completion_rate=(5, 7),
            ontime_completion_rate=(3, 7), satisfaction_rate=(3, 4), resolution_rate=(2, 4),
            dispute_resolution_rate=(2, 4), mediation_success_rate=(2, 3)),
}


def check_row(row, want, which="current"):
    for ind, v in want.items():
        if isinstance(v, tuple):
            num, den, r = rate(row, ind, which)
            assert (num, den) == v, (row["area"], ind, num, den, v)
            # A zero denominator is null: neither 0 % nor 100 %.
            assert r == (None if den == 0 else num / den), (row["area"], ind, r)
        else:
            assert cell(row, ind, which)["value"] == v, (row["area"], ind, cell(row, ind, which))


def test_each_formula_by_community(env):
    """Every indicator of DESIGN §5 that has landed, per community and for the
    district's total, equals the figure computed by hand from the scenario."""
    rep = env.report()
    assert rep["period"] == "2026-10" and rep["previous_period"] == "2025-10"
    assert rep["level"] == "community"
    rows = rows_by_area(rep)
    assert list(rows) == [C11, C12, C21], list(rows)
    assert rows[C11]["name"] == "桃源社区" and rep["total"]["name"] == "二道江区"
    for area in (C11, C12, C21):
        check_row(rows[area], EXPECTED[area])
    check_row(rep["total"], EXPECTED[D])
    codes = [i["code"] for i in rep["indicators"]]
    for code in ("petitions_received", "sign_rate", "ontime_sign_rate", "completion_rate",
                 "ontime_completion_rate", "satisfaction_rate", "resolution_rate", "escalations",
                 "disputes_registered", "dispute_resolution_rate", "mediation_success_rate",
                 "household_visits", "keypersons_managed", "keyperson_visits_missed",
                 "fund_balance", "fee_collection_rate", "budget_execution_rate", "queries_open",
                 "property_score"):
        assert code in codes, code
    pending = {i["code"] for i in rep["indicators"] if i["pending"]}
    assert "budget_execution_rate" not in pending and "fund_balance" not in pending
    assert "queries_open" in pending
    # October's execution, published by budgets on 1 November (test_budget_execution_rate).
    assert rate(rows[C11], "budget_execution_rate") == (30000, 140000, 30000 / 140000)
    assert rate(rows[C12], "budget_execution_rate") == (0, 0, None)
    # Figures still waiting for budgets are null, not 0.
    assert cell(rows[C11], "queries_open")["value"] is None
    assert cell(rows[C11], "property_score")["value"] is None


def test_zero_denominators_are_null(env):
    """A rate whose denominator is 0 is null in JSON; 0 of 2 is 0.0, not null."""
    rows = rows_by_area(env.report())
    assert rate(rows[C21], "satisfaction_rate") == (0, 0, None)
    assert rate(rows[C21], "mediation_success_rate") == (0, 0, None)
    assert rate(rows[C21], "ontime_sign_rate") == (0, 2, 0.0)
    # Nothing happened in C21 last year: every rate of the year before is null.
    assert rate(rows[C21], "sign_rate", "previous") == (0, 0, None)
    assert rate(rows[C12], "satisfaction_rate", "previous") == (0, 0, None)


def test_roll_up_children_add_up(env):
    """Children's counts (and every numerator and denominator) add up to the
    parent's; what no child holds (p7, located at a street) is the
    unallocated row, and streets add up to the district exactly."""
    by_community = env.report()
    by_street = env.report(level="street")
    assert "unallocated" not in by_street
    streets = rows_by_area(by_street)
    assert list(streets) == [S1, S2]
    check_row(streets[S2], dict(petitions_received=3, escalations=6, sign_rate=(1, 3)))
    unalloc = by_community["unallocated"]
    check_row(unalloc, dict(petitions_received=1, escalations=2, sign_rate=(0, 1)))
    for rep, extra in ((by_community, [unalloc]), (by_street, [])):
        for ind in rep["indicators"]:
            if ind["pending"] or ind["kind"] == "score":
                continue
            for which in ("current", "previous"):
                keys = ["numerator", "denominator"] if ind["kind"] == "rate" else ["value"]
                for k in keys:
                    total = cell(rep["total"], ind["code"], which)[k]
                    parts = sum(cell(r, ind["code"], which)[k] for r in rep["rows"] + extra)
                    assert parts == total, (rep["level"], ind["code"], which, k, parts, total)
    # The street's own table adds up to its row in the district's.
    s1 = env.report(area=S1, level="community")
    assert s1["total"] == streets[S1]
    # Grid level under a community, and buildings under a grid.
    grids = rows_by_area(env.report(area=C11, level="grid"))
    assert cell(grids[G111], "petitions_received")["value"] == 1
    assert cell(grids[G112], "property_complaints")["value"] == 1
    b = rows_by_area(env.report(area=G111, level="building"))
    assert cell(b[B1111], "household_visits")["value"] == 2


def test_year_on_year(env):
    """The same period a year before sits beside each figure (events of
    last year made on petitions' fake clock), for months and for years."""
    rows = rows_by_area(env.report())
    check_row(rows[C11], dict(petitions_received=1, sign_rate=(1, 1), ontime_sign_rate=(1, 1),
                              completion_rate=(1, 1), satisfaction_rate=(1, 1),
                              resolution_rate=(1, 1), escalations=0), "previous")
    check_row(rows[C12], dict(petitions_received=1, completion_rate=(1, 1)), "previous")
    year = env.report(period="2026", level="street")
    assert year["period"] == "2026" and year["previous_period"] == "2025"
    check_row(year["total"], EXPECTED[D])
    check_row(year["total"], dict(petitions_received=2, sign_rate=(2, 2),
                                  satisfaction_rate=(1, 1)), "previous")
    # Last year's own table has nothing the year before it.
    last = env.report(period="2025-10")
    check_row(last["total"], dict(petitions_received=2), "current")
    check_row(last["total"], dict(petitions_received=0, sign_rate=(0, 0)), "previous")


def test_drill_down_lists_exactly_the_contributing_events(env):
    """Every cell → the events behind it: for the district's on-time sign rate
    the first on-time signing of p1, p2, p3 (numerator) and the first
    assignment of p1..p7 (denominator), each with source, seq, type, time and
    area; pages follow next_cursor; the amounts add up to the figure."""
    ids = {env.pets[n]["id"]: n for n in env.pets}
    evs = {e["seq"]: e for e in env.outbox("petitions")}
    full = env.cells(D, "ontime_sign_rate", limit=1000)
    assert full["figure"]["numerator"] == 3 and full["figure"]["denominator"] == 7
    assert full["next_cursor"] == ""
    num = [r for r in full["events"] if r["part"] == "numerator"]
    den = [r for r in full["events"] if r["part"] == "denominator"]
    assert sorted(ids[evs[r["seq"]]["petition_change"]["id"]] for r in num) == ["p1", "p2", "p3"]
    assert sorted(ids[evs[r["seq"]]["petition_change"]["id"]] for r in den) == [
        "p1", "p2", "p3", "p4", "p5", "p6", "p7"]
    for r in full["events"]:
        ev = evs[r["seq"]]
        assert r["source"] == "petitions" and r["type"] == ev["type"] and r["area"] == ev["area"]
        assert r["ts_ms"] == ev["ts_ms"] and r["time"].endswith("+08:00")
        assert r["amount"] == 1
    for r in num:
        assert evs[r["seq"]]["type"] == "signed" and evs[r["seq"]]["petition_change"]["on_time"]
    assert sum(r["amount"] for r in num) == 3
    # Pages of 2 give the same list.
    got, cursor = [], ""
    for _ in range(10):
        page = env.cells(D, "ontime_sign_rate", limit=2, cursor=cursor)
        got += page["events"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert got == full["events"]
    # One part only, and a community's cell (a prefix over its buildings).
    only = env.cells(D, "ontime_sign_rate", part="numerator")
    assert only["events"] == num
    esc = env.cells(C12, "escalations")
    assert sorted((ids[evs[r["seq"]]["petition_change"]["id"]], r["type"])
                  for r in esc["events"]) == [("p3", "overdue_sign"), ("p4", "overdue_reply"),
                                              ("p4", "overdue_sign")]
    # Grid's events, and a stock: every registration and release up to the period's end.
    kp = env.cells(D, "keypersons_managed")
    assert sorted((r["type"], r["amount"]) for r in kp["events"]) == [
        ("keyperson_registered", 1), ("keyperson_registered", 1), ("keyperson_removed", -1)]
    assert sum(r["amount"] for r in kp["events"]) == kp["figure"]["value"] == 1
    med = env.cells(D, "mediation_success_rate")
    assert sorted((r["part"], r["type"]) for r in med["events"]) == [
        ("denominator", "dispute_failed"), ("denominator", "dispute_resolved"),
        ("denominator", "dispute_resolved"), ("numerator", "dispute_resolved"),
        ("numerator", "dispute_resolved")]
    # A year's cell spans its months.
    assert len(env.cells(D, "petitions_received", period="2025")["events"]) == 2


def test_csv_export_for_excel(env):
    """report.csv: UTF-8 with a BOM, Chinese headers, CRLF, area codes kept
    as text for Excel, the same figures as the JSON."""
    r = env.api("GET", "/api/v1/report.csv", "admin", "",
                params={"area": D, "period": "2026-10", "level": "community"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv; charset=utf-8")
    assert 'filename="report-220503-2026-10.csv"' in r.headers["content-disposition"]
    raw = r.content
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    head = rows[0]
    assert head[:4] == ["区域编码", "区域名称", "受理诉求数", "受理诉求数(上年同期)"]
    for h in ("签收率", "签收率分子", "签收率分母", "及时签收率", "办结率", "满意率", "解决率",
              "矛盾纠纷化解率", "调解成功率", "入户走访数", "列管重点人员数"):
        assert h in head, h
    assert "共有资金余额(元)" in head and "物业费收缴率分母" in head
    assert "预算执行率分母(元)" in head and "未答复质询数" not in "".join(head)  # still pending
    body = {row[0]: dict(zip(head, row)) for row in rows[1:]}
    assert set(body) == {f'="{a}"' for a in (C11, C12, C21, D)}
    c11 = body[f'="{C11}"']
    assert c11["区域名称"] == "桃源社区" and c11["受理诉求数"] == "2"
    assert c11["解决率"] == "50.00%" and c11["解决率分子"] == "1" and c11["解决率分母"] == "2"
    assert c11["共有资金余额(元)"] == "1101.00" and c11["物业费收缴率"] == "66.67%"
    # Its parts are amounts: yuan, as the other money columns.
    assert (c11["预算执行率"], c11["预算执行率分子(元)"], c11["预算执行率分母(元)"]) == (
        "21.43%", "300.00", "1400.00")
    assert body[f'="{C21}"']["满意率"] == ""          # a null rate is an empty cell
    assert body[f'="{D}"']["区域名称"].startswith("合计")
    assert [row[1] for row in rows[1:]][-2] == "本级及未细分"


def test_funds_figures(env):
    """Money from funds' journal events (fen): revenue by category net of a
    reversal (冲正), withdrawals, the trust account's balance at the period's
    end, and the fee collection rate of October's bills (2 of 3 households)."""
    want = dict(revenue_property_fee=120000, revenue_parking=20000, revenue_advertising=0,
                revenue_venue=0, revenue_other=100, withdrawals=30000, fund_balance=110100,
                fee_collection_rate=(2, 3))
    grids = rows_by_area(env.report(area=C11, level="grid"))
    check_row(grids[G111], want)
    check_row(grids[G112], dict(fund_balance=0, fee_collection_rate=(0, 0)))
    rep = env.report()
    check_row(rows_by_area(rep)[C11], want)
    check_row(rep["total"], want)
    check_row(rep["total"], dict(fund_balance=0, withdrawals=0, fee_collection_rate=(0, 0)),
              "previous")
    year = dict(want, fee_collection_rate=(2, 4))   # and the annual bill, unpaid
    check_row(env.report(period="2026", level="street")["total"], year)
    evs = {ev["seq"]: ev for ev in env.outbox("funds")}
    bal = env.cells(D, "fund_balance")
    assert sum(r["amount"] for r in bal["events"]) == bal["figure"]["value"] == 110100
    assert sorted(r["type"] for r in bal["events"]) == ["deposited"] * 6 + ["reversed",
                                                                           "withdrawn"]
    assert all(r["source"] == "funds" and r["area"] == G111 for r in bal["events"])
    adv = env.cells(D, "revenue_advertising")
    assert sorted((evs[r["seq"]]["type"], r["amount"]) for r in adv["events"]) == [
        ("deposited", 5000), ("reversed", -5000)]
    fees = env.cells(G111, "fee_collection_rate")
    assert sorted((r["part"], r["type"]) for r in fees["events"]) == [
        ("denominator", "fee_billed")] * 3 + [("numerator", "fee_paid")] * 2
    fees_year = env.cells(G111, "fee_collection_rate", period="2026")
    assert len(fees_year["events"]) == 6 and fees_year["figure"]["denominator"] == 4
    annual = [r for r in fees_year["events"] if r not in fees["events"]]
    assert len(annual) == 1 and evs[annual[0]["seq"]]["funds_fee"]["period"] == "2026"


def test_budget_execution_rate(env):
    """预算执行率 from budgets' execution_published: the month's budget and actual
    summed over the lines (not the to-date figures), counted in the published
    month at the compound and every level above, null where nothing is budgeted;
    a year is the sum of its published months; each month is published once;
    the drill-down lists the publication with the amounts it added."""
    evs = published(env)
    assert [(ev["area"], int(ev["budgets_execution"]["month"])) for ev in evs] == [
        (G111, 9), (G111, 10)]
    oct_ev = evs[1]
    rows = oct_ev["budgets_execution"]["rows"]
    assert sum(int(r.get("budget_month", 0)) for r in rows) == 140000
    # What counts is the month's, not the to-date figures budgets also sends.
    assert int(oct_ev["budgets_execution"]["budget_to_date"]) == 1000000 + 60000
    october = (30000, 140000, 30000 / 140000)
    # The compound (a grid row), its community, its street and the district's total.
    grids = rows_by_area(env.report(area=C11, level="grid"))
    assert rate(grids[G111], "budget_execution_rate") == october
    assert rate(grids[G112], "budget_execution_rate") == (0, 0, None)
    by_street = env.report(level="street")
    assert rate(rows_by_area(by_street)[S1], "budget_execution_rate") == october
    assert rate(rows_by_area(by_street)[S2], "budget_execution_rate") == (0, 0, None)
    district = env.report()
    assert rate(district["total"], "budget_execution_rate") == october
    assert rate(district["total"], "budget_execution_rate", "previous") == (0, 0, None)
    # September: 0 of 1 200.00 is 0 %, not null; November is not published yet.
    assert rate(env.report(period="2026-09")["total"], "budget_execution_rate") == (
        0, 120000, 0.0)
    assert rate(env.report(period="2026-11")["total"], "budget_execution_rate") == (0, 0, None)
    year = env.report(period="2026", level="street")["total"]
    assert rate(year, "budget_execution_rate") == (30000, 260000, 30000 / 260000)
    # Drill-down: the October publication (an event of 1 November) behind both parts.
    cells = env.cells(D, "budget_execution_rate")
    assert cells["figure"]["numerator"] == 30000 and cells["figure"]["denominator"] == 140000
    assert [(r["part"], r["source"], r["seq"], r["type"], r["area"], r["amount"])
            for r in cells["events"]] == [
        ("numerator", "budgets", oct_ev["seq"], "execution_published", G111, 30000),
        ("denominator", "budgets", oct_ev["seq"], "execution_published", G111, 140000)]
    assert cells["events"][0]["time"].startswith("2026-11-01T")
    assert len(env.cells(G111, "budget_execution_rate", period="2026")["events"]) == 4
    # A later tick publishes nothing again: each month once.
    env.clock("budgets", clock_advance={"delta_ms": DAY})
    time.sleep(0.5)
    env.settle()
    assert len(published(env)) == 2
    assert rate(env.report()["total"], "budget_execution_rate") == october


def test_budget_execution_alert_judges_the_last_ended_month(env):
    """An alert rule on 预算执行率 judges the month before the current one, the
    last that budgets can have published (the current month never has a
    figure): G111 spent 0 of September's 1 200.00, below 10 %, so one alert
    names 2026-09 with those parts; compounds with nothing budgeted get none."""
    def budget_alerts():
        return [e for e in env.outbox("reporting") if e["type"].startswith("alert")
                and e["reporting_alert"]["indicator"] == "budget_execution_rate"]
    end = time.time() + 10
    while time.time() < end and not budget_alerts():
        time.sleep(0.2)
    got = budget_alerts()
    assert [(e["type"], e["area"]) for e in got] == [("alert", G111)], got
    a = got[0]["reporting_alert"]
    assert a["period"] == "2026-09" and a["value"] == 0
    assert int(a.get("numerator", 0)) == 0 and int(a["denominator"]) == 120000
    listed = env.ok("GET", "/api/v1/report/alerts", "command_center", D)["alerts"]
    assert [(x["area"], x["period"]) for x in listed
            if x["indicator"] == "budget_execution_rate"] == [(G111, "2026-09")]


def test_red_black_list(env):
    """红黑榜: from petitions' property complaints now (the score waits for
    budgets): three complaints past their reply deadline in a month put a
    compound on the black list; others are unrated until budgets scores them."""
    rb = env.ok("GET", "/api/v1/report/redblack", "admin", "",
                params={"area": "220505", "period": "2026-10"})
    assert rb["score_pending"] is True
    (entry,) = [x for x in rb["entries"] if x["area"] == BLACK_COMPOUND]
    assert entry["list"] == "black" and entry["complaints"] == 3
    assert entry["complaints_overdue"] == 3 and entry["reasons"]
    mine = env.ok("GET", "/api/v1/report/redblack", "resident", G121,
                  params={"area": G121, "period": "2026-10"})
    (g121,) = mine["entries"]
    assert (g121["list"], g121["complaints"], g121["complaints_overdue"],
            g121["complaints_replied"]) == ("unrated", 1, 1, 1)
    assert env.api("GET", "/api/v1/report/redblack", "admin", "",
                   params={"area": D, "period": "2026"}).json()["error"]["field"] == "period"


BAD = [
    ("/api/v1/report", {"area": D, "period": "2026-13"}, "period"),
    ("/api/v1/report", {"area": D, "period": "last month"}, "period"),
    ("/api/v1/report", {"area": D}, "period"),
    ("/api/v1/report", {"area": D, "period": "2026-10", "level": "city"}, "level"),
    ("/api/v1/report", {"area": S1, "period": "2026-10", "level": "street"}, "level"),
    ("/api/v1/report", {"area": "22050", "period": "2026-10"}, "area"),
    ("/api/v1/report", {"area": B1111, "period": "2026-10"}, "area"),
    ("/api/v1/report", {"area": D, "period": "2026-10", "colour": "red"}, "colour"),
    ("/api/v1/report/cells", {"area": D, "period": "2026-10", "indicator": "nope"}, "indicator"),
    ("/api/v1/report/cells", {"area": D, "period": "2026-10", "indicator": "sign_rate",
                              "part": "value"}, "part"),
    ("/api/v1/report/cells", {"area": D, "period": "2026-10", "indicator": "sign_rate",
                              "limit": "5000"}, "limit"),
    ("/api/v1/report/cells", {"area": D, "period": "2026-10", "indicator": "sign_rate",
                              "limit": "many"}, "limit"),
    ("/api/v1/report/cells", {"area": D, "period": "2026-10", "indicator": "sign_rate",
                              "cursor": "0:zz"}, "cursor"),
]


@pytest.mark.parametrize("path,params,field", BAD)
def test_bad_input_names_the_field(env, path, params, field):
    """Every bad input is a 400 naming the field, and changes nothing."""
    r = env.api("GET", path, "admin", "", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field, r.json()


def test_scope_and_permissions(env):
    """The table is scoped to the token's area and read by those who lead;
    a hotline or resident token cannot read it; rebuild is an operator's."""
    r = env.api("GET", "/api/v1/report", "staff", S1,
                params={"area": D, "period": "2026-10"})
    assert r.status_code == 403
    mine = env.ok("GET", "/api/v1/report", "staff", S1, params={"period": "2026-10"})
    assert mine["area"] == S1 and list(rows_by_area(mine)) == [C11, C12]
    for role in ("hotline", "resident", "property"):
        assert env.api("GET", "/api/v1/report", role, D,
                       params={"period": "2026-10"}).status_code == 403, role
    assert env.api("POST", "/api/v1/report/rebuild", "command_center", D).status_code == 403
    # An admin without an area sees every district, and the whole as the total.
    everything = env.ok("GET", "/api/v1/report", "admin", "", params={"period": "2026-10"})
    assert everything["area"] == "" and everything["level"] == "district"
    assert list(rows_by_area(everything)) == [D, "220504", "220505"]
    assert cell(everything["total"], "petitions_received")["value"] == 7 + 3


def alerts_of(env, area):
    return [(e["type"], e["reporting_alert"]["numerator"], e["reporting_alert"]["denominator"])
            for e in env.outbox("reporting")
            if e["type"].startswith("alert") and e["area"] == area]


def wait_alerts(env, area, n, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        got = alerts_of(env, area)
        if len(got) >= n:
            time.sleep(0.6)  # a few ticks more: nothing further may come
            return alerts_of(env, area)
        time.sleep(0.1)
    return alerts_of(env, area)


def test_alerts_once_per_crossing(env):
    """ontime_sign_rate < 90 % for a street in the current month raises
    reporting.alert once when crossed, reporting.alert_cleared once when
    back, and again on the next crossing; a restart announces nothing twice."""
    assert alerts_of(env, ALERT_STREET) == []
    env.push("a1", ALERT_GRID + "001")          # 0 of 1 signed: below 90 %
    env.settle()
    assert wait_alerts(env, ALERT_STREET, 1) == [("alert", 0, 1)]
    env.act("a1", "sign")                        # 1 of 1: back
    env.settle()
    assert wait_alerts(env, ALERT_STREET, 2) == [("alert", 0, 1), ("alert_cleared", 1, 1)]
    env.push("a2", ALERT_GRID + "001")          # 1 of 2: crossed again
    env.settle()
    want = [("alert", 0, 1), ("alert_cleared", 1, 1), ("alert", 1, 2)]
    assert wait_alerts(env, ALERT_STREET, 3) == want
    env.stack.kill("reporting")
    env.stack.restart("reporting")
    env.stack.wait_ready("reporting")
    env.settle()
    time.sleep(1.0)
    assert alerts_of(env, ALERT_STREET) == want
    listed = env.ok("GET", "/api/v1/report/alerts", "command_center", "220504")["alerts"]
    (a,) = [x for x in listed if x["area"] == ALERT_STREET]
    assert a["active"] and a["rule"] == "ontime_sign_rate<0.9@street" and a["configured"]
    assert a["period"] == "2026-10" and a["value"] == 0.5
    # The command center of 220503 sees none of 220504's alerts.
    other = env.ok("GET", "/api/v1/report/alerts", "command_center", D)["alerts"]
    assert all(x["area"].startswith(D) for x in other)
    # ?area= narrows the list to that area and what lies under it.
    narrowed = env.ok("GET", "/api/v1/report/alerts", "command_center", "220504",
                      params={"area": ALERT_GRID})["alerts"]
    assert narrowed == [x for x in listed if x["area"].startswith(ALERT_GRID)]
    assert not any(x["area"] == ALERT_STREET for x in narrowed)


def test_rebuild_gives_the_same_table(env):
    """zhilictl reporting rebuild drops the projection and replays every
    source from seq 1: the tables, the CSV, the red/black list and the
    drill-down are identical afterwards, and no alert is announced again."""
    def snapshot():
        return [env.report(), env.report(period="2026", level="street"),
                env.report(area=C11, level="grid"), env.report(period="2025-10"),
                env.api("GET", "/api/v1/report.csv", "admin", "",
                        params={"area": D, "period": "2026-10"}).content,
                env.ok("GET", "/api/v1/report/redblack", "admin", "",
                       params={"area": "220505", "period": "2026-10"}),
                env.cells(D, "ontime_sign_rate"), env.cells(D, "keypersons_managed"),
                env.cells(D, "budget_execution_rate", period="2026")]
    before = snapshot()
    alerts_before = [e for e in env.outbox("reporting") if e["type"].startswith("alert")]
    gen = env.stack.stats("reporting")[("reporting_generation", "")]
    r = env.stack.ctl("reporting", "rebuild", "--wait", "--timeout", "60", timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    started = json.loads(r.stdout.splitlines()[0])
    assert started["generation"] == gen + 1
    assert {s["source"]: s["seq"] for s in started["sources"]}["petitions"] > 0
    env.settle()
    assert snapshot() == before
    time.sleep(1.0)
    assert [e for e in env.outbox("reporting") if e["type"].startswith("alert")] == alerts_before
    st = env.stack.stats("reporting")
    assert st[("reporting_rebuilding", "")] == 0 and st[("reporting_generation", "")] == gen + 1
    # zhilictl's export is the gateway's CSV byte for byte.
    out = os.path.join(env.stack.dir, "t.csv")
    r = env.stack.ctl("reporting", "export", "--area", D, "--period", "2026-10", "--csv",
                      "--out", out)
    assert r.returncode == 0, r.stderr
    with open(out, "rb") as f:
        assert f.read() == before[4]
