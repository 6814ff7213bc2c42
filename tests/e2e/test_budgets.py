"""The budgets service end to end (docs/budgets.md): real broker, zhili-budgets,
zhili-funds and, for the HTTP routes, the gateway, as processes on loopback.
Each test states the property it checks."""
import datetime
import json
import os
import random
import threading
import time

import requests

from zhili_stack import Gateway

A = "220503001001002"          # the compound
OTHER = "220503001001009"
YEAR = 2026
# 2026-11-30T00:00:00+08:00 (Beijing): the fake clock's start.
TZ_NOV = int(datetime.datetime(2026, 11, 30, tzinfo=datetime.timezone(
    datetime.timedelta(hours=8))).timestamp() * 1000)
DAY_MS = 24 * 3600 * 1000

ADMIN = {"id": "zhilictl", "role": "admin", "area": ""}
FUNDS = {"id": "funds", "role": "service", "area": A}
PROPERTY = {"id": "prop-1", "role": "property", "area": A}
COMMITTEE = {"id": "li", "role": "committee", "area": A, "name": "李主任"}
BRANCH = {"id": "pb-1", "role": "party_branch", "area": A}
RESIDENT = {"id": "res-1", "role": "resident", "area": A}
OUTSIDER = {"id": "out-1", "role": "property", "area": OTHER}
LI = {"id": "li", "role": "committee", "area": A, "name": "李主任"}          # holder A
WANG = {"id": "wang", "role": "supervisor", "area": A, "name": "王监察"}     # holder B
STAFF = {"id": "staff-1", "role": "staff", "area": "220503001"}
SECRET_A, SECRET_B, SECRET_Q = "111111", "222222", "query-333"

LINES = [{"line": "2-01", "amount": 1200000, "standard": "每月一次电梯维保, 24小时故障响应"},
         {"line": "3-01", "amount": 5000}]


class Client:
    def __init__(self, stack):
        self.stack = stack
        self.n = 0

    def call(self, service, body, actor=ADMIN, rid=None):
        self.n += 1
        cmd = dict(body)
        cmd["actor"] = actor
        cmd["request_id"] = rid or f"t-{os.getpid()}-{self.n}-{random.random()}"
        rc, reply = self.stack.call(service, cmd)
        assert reply is not None, f"no reply to {cmd}"
        return reply

    def b(self, body, actor=ADMIN, rid=None):
        return self.call("budgets", body, actor, rid)

    def ok(self, body, actor=ADMIN, rid=None):
        r = self.b(body, actor, rid)
        assert r["status"] == "ok", (body, r)
        return r

    def budget(self, area=A, year=YEAR):
        return self.ok({"budgets_get": {"area": area, "year": year}})["budgets_budget"]

    def line(self, code):
        return next(x for x in self.budget()["lines"] if x["line"] == code)

    def draft(self, lines=LINES, income=2000000, actor=PROPERTY):
        return self.b({"budgets_draft": {"area": A, "year": YEAR, "expected_income": income,
                                         "lines": lines}}, actor)

    def activate(self):
        assert self.draft()["status"] == "ok"
        self.ok({"budgets_submit": {"area": A, "year": YEAR}}, PROPERTY)
        for who in (COMMITTEE, BRANCH, PROPERTY):
            r = self.ok({"budgets_sign": {"area": A, "year": YEAR}}, who)
        assert r["budgets_budget"]["state"] == "active"

    def reserve(self, wid, amount, line="3-01", rid=None):
        return self.b({"budgets_line_reserve": {"area": A, "year": YEAR, "line": line,
                                                "withdrawal_id": wid, "amount": amount}},
                      FUNDS, rid)

    def events(self, service="budgets"):
        r = self.stack.ctl("replay", service, "--from", "1", timeout=30)
        return [json.loads(x) for x in r.stdout.splitlines() if x.strip()]


def start(stack, funds=False):
    stack.broker()
    clock = {"ZHILI_FAKE_CLOCK": "1", "ZHILI_FAKE_CLOCK_START_MS": str(TZ_NOV)}
    stack.start("budgets", "zhili-budgets", **clock)
    if funds:
        stack.start("funds", "zhili-funds", ZHILI_FUNDS_PWHASH="test-fast",
                    ZHILI_FUNDS_BUDGET_TIMEOUT_MS="2000", **clock)
        stack.wait_ready("funds")
    stack.wait_ready("budgets")
    return Client(stack)


def wait_for(pred, timeout_s=5.0, what="condition"):
    end = time.time() + timeout_s
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_funds_withdrawals_against_the_real_budgets(stack):
    """Funds' withdrawal path on the real budgets: a request reserves on the line,
    two approvals post it and the reservation becomes spending, a void releases,
    a line short refuses naming the shortfall, on 1 December the execution of
    November is published with the spending as its actual, a reversal of the
    posted withdrawal (funds.reversed) gives the line its money back, and the
    year's deposits are next year's default expected income."""
    c = start(stack, funds=True)
    c.activate()
    f = lambda body, actor: c.call("funds", body, actor)  # noqa: E731
    assert f({"funds_account_open": {"account": A, "name": "幸福里小区共有资金账户",
                                     "holder_a": {"id": "li", "name": "李主任"},
                                     "holder_b": {"id": "wang", "name": "王监察"}}},
             STAFF)["status"] == "ok"
    for cred, secret, who in (("holder_a", SECRET_A, LI), ("holder_b", SECRET_B, WANG),
                              ("query", SECRET_Q, LI)):
        assert f({"funds_credential_set": {"account": A, "credential": cred, "secret": secret}},
                 who)["status"] == "ok"
    assert f({"funds_deposit": {"account": A, "category": "parking_fee", "amount": 900000,
                                "payer": "张三", "receipt": "P-1"}}, ADMIN)["status"] == "ok"

    def request(amount, line):
        return f({"funds_withdrawal_request": {"account": A, "amount": amount, "payee": "某电梯公司",
                                               "payee_kind": "organisation", "purpose": "电梯维保",
                                               "line": line}}, PROPERTY)
    w = request(30000, "2-01")
    assert w["status"] == "ok", w
    wid = w["funds_withdrawal"]["id"]
    assert c.line("2-01")["reserved"] == 30000
    assert f({"funds_withdrawal_approve": {"account": A, "withdrawal_id": wid,
                                           "secret": SECRET_A}}, LI)["status"] == "ok"
    r = r_posted = f({"funds_withdrawal_approve": {"account": A, "withdrawal_id": wid,
                                                   "secret": SECRET_B}}, WANG)
    assert r["funds_withdrawal"]["state"] == "posted", r
    wait_for(lambda: c.line("2-01").get("spent") == 30000, what="consume at budgets")
    line = c.line("2-01")
    assert line.get("reserved", 0) == 0 and line["remaining"] == 1200000 - 30000

    v = request(20000, "2-01")["funds_withdrawal"]["id"]
    assert c.line("2-01")["reserved"] == 20000
    assert f({"funds_withdrawal_void": {"account": A, "withdrawal_id": v, "reason": "重复"}},
             PROPERTY)["status"] == "ok"
    wait_for(lambda: c.line("2-01").get("reserved", 0) == 0, what="release at budgets")

    r = request(6000, "3-01")
    assert r["status"] == "conflict", r
    assert "预算科目余额不足" in r["message"] and "50.00 yuan left" in r["message"], r
    assert "10.00 yuan short" in r["message"], r
    assert c.line("3-01").get("reserved", 0) == 0

    # 1 December 00:00 Beijing: November's execution is published, once.
    c.ok({"clock_advance": {"delta_ms": DAY_MS}})
    def published():
        return [e for e in c.events() if e.get("type") == "execution_published"]
    ev = wait_for(published, what="execution_published")
    assert len(ev) == 1
    x = ev[0]["budgets_execution"]
    assert (x["area"], int(x["year"]), int(x["month"])) == (A, 2026, 11)
    row = next(r for r in x["rows"] if r["line"] == "2-01")
    assert int(row["budget_to_date"]) == 1100000 and int(row["actual_to_date"]) == 30000
    assert int(row["actual_month"]) == 30000 and int(row["variance"]) == 1070000
    assert int(row["rate_bp"]) == 272  # 30000 / 1100000 = 2.72%
    c.ok({"clock_advance": {"delta_ms": 3600 * 1000}})
    time.sleep(0.5)
    assert len(published()) == 1
    # The same figures on demand.
    e = c.ok({"budgets_execution_get": {"area": A, "year": YEAR, "month": 11}})
    assert e["budgets_execution"]["rows"] == x["rows"]
    html = c.ok({"budgets_notice_get": {"area": A, "year": YEAR, "month": 11}})
    html = html["budgets_notice"]["html"]
    assert "2026年11月 预算执行情况公示" in html and "电梯维保" in html, html
    assert "<td class=n>300.00</td>" in html  # the month's actual on 2-01
    assert c.b({"budgets_notice_get": {"area": A, "year": YEAR, "month": 0}})["status"] == \
        "invalid"
    # Funds reverses the posted withdrawal (冲正): its spending leaves the line.
    seq = r_posted["funds_withdrawal"]["entry_seq"]
    rv = f({"funds_reverse": {"account": A, "seq": seq, "reason": "重复付款退回"}}, ADMIN)
    assert rv["status"] == "ok", rv
    wait_for(lambda: c.line("2-01").get("spent", 0) == 0, what="reversal at budgets")
    assert c.line("2-01")["remaining"] == 1200000
    # 以收定支 without an entered income: next year's draft takes this year's revenue
    # (the 9000.00 yuan deposited; the reversed withdrawal is not revenue).
    def draft_2027(lines):
        return c.b({"budgets_draft": {"area": A, "year": 2027, "expected_income": 0,
                                      "lines": lines}}, PROPERTY)
    wait_for(lambda: draft_2027([{"line": "2-01", "amount": 900000}])["status"] == "ok",
             what="revenue from funds.deposited")
    r = draft_2027([{"line": "2-01", "amount": 900001}])
    assert r["status"] == "invalid" and "9000.00 yuan" in r["message"], r
    b = c.ok({"budgets_get": {"area": A, "year": 2027}})["budgets_budget"]
    assert b["expected_income"] == 900000 and b["total"] == 900000


def test_months_missed_while_down_are_published_in_order(stack):
    """A budgets service that is down over the turn of a month (here: its clock
    jumps from 30 November to 8 February) publishes, on its first tick back,
    every month of its budget that ended unpublished, in order and once —
    November and December of 2026 — and a later tick adds nothing."""
    c = start(stack)
    c.activate()
    c.ok({"clock_advance": {"delta_ms": 70 * DAY_MS}})

    def published():
        return [e["budgets_execution"] for e in c.events()
                if e.get("type") == "execution_published"]
    got = wait_for(lambda: published() if len(published()) >= 2 else None,
                   what="two execution_published")
    assert [(int(x["year"]), int(x["month"])) for x in got] == [(2026, 11), (2026, 12)]
    c.ok({"clock_advance": {"delta_ms": DAY_MS}})
    time.sleep(0.5)
    assert len(published()) == 2
    notice = c.ok({"budgets_notice_get": {"area": A, "year": YEAR, "month": 12}})
    assert "2026年12月 预算执行情况公示" in notice["budgets_notice"]["html"]


def test_a_late_consume_publishes_its_month_again(stack):
    """Spending on a 2026 line consumed in January 2027 lands in December 2026,
    which budgets published on 1 January: December is published again with
    the new actual (reporting counts the difference), and November, untouched,
    is not."""
    c = start(stack)
    c.activate()
    assert c.reserve("w-late", 3000)["status"] == "ok"
    c.ok({"clock_advance": {"delta_ms": 33 * DAY_MS}})       # 2 January 2027

    def published():
        return [e["budgets_execution"] for e in c.events()
                if e.get("type") == "execution_published"]
    wait_for(lambda: len(published()) >= 2, what="November and December")
    c.ok({"budgets_line_consume": {"withdrawal_id": "w-late"}}, FUNDS)
    got = wait_for(lambda: published() if len(published()) >= 3 else None,
                   what="December again")
    assert [(int(x["year"]), int(x["month"])) for x in got] == [(2026, 11), (2026, 12),
                                                                 (2026, 12)]
    def actual(x):
        return sum(int(r.get("actual_month", 0)) for r in x["rows"])
    assert actual(got[1]) == 0 and actual(got[2]) == 3000
    assert c.line("3-01")["spent"] == 3000


def test_racing_reservations_never_overspend(stack):
    """Twelve reservations of 1000 fen race for a line of 5000: exactly five win,
    and the line shows 5000 reserved, 0 remaining. Reservations are idempotent by
    withdrawal id whatever the request id; released ids stay released."""
    c = start(stack)
    c.activate()
    results = [None] * 12

    def go(i):
        results[i] = c.reserve(f"w-{i}", 1000, rid=f"race-{i}")
    threads = [threading.Thread(target=go, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r for r in results if r["status"] == "ok"]
    lost = [r for r in results if r["status"] != "ok"]
    assert len(won) == 5 and all(r["status"] == "conflict" for r in lost), results
    assert all("预算科目余额不足" in r["message"] for r in lost)
    line = c.line("3-01")
    assert (line["reserved"], line["remaining"]) == (5000, 0)
    wid = next(r["budgets_line_reservation"]["withdrawal_id"] for r in won)
    # Again under another request id: the same answer, nothing reserved twice.
    again = c.reserve(wid, 1000, rid="another")
    assert again["status"] == "ok" and again["budgets_line_reservation"]["state"] == "reserved"
    assert c.reserve(wid, 999)["status"] == "conflict"
    assert c.reserve(wid, 1000, line="2-01")["status"] == "conflict"
    # Consume, then consume again: OK; release after consume: conflict.
    r = c.b({"budgets_line_consume": {"withdrawal_id": wid}}, FUNDS)
    assert r["budgets_line_reservation"]["state"] == "consumed"
    assert c.b({"budgets_line_consume": {"withdrawal_id": wid}}, FUNDS)["status"] == "ok"
    assert c.b({"budgets_line_release": {"withdrawal_id": wid}}, FUNDS)["status"] == "conflict"
    line = c.line("3-01")
    assert (line["reserved"], line["spent"], line["remaining"]) == (4000, 1000, 0)
    # Release of an unknown id: OK, and a late reserve with it is refused.
    assert c.b({"budgets_line_release": {"withdrawal_id": "late"}}, FUNDS)["status"] == "ok"
    assert c.reserve("late", 1)["status"] == "conflict"
    assert c.b({"budgets_line_consume": {"withdrawal_id": "nope"}}, FUNDS)["status"] == "not_found"
    # Only funds (or an admin) reserves.
    r = c.b({"budgets_line_reserve": {"area": A, "year": YEAR, "line": "2-01",
                                      "withdrawal_id": "x", "amount": 1}}, PROPERTY)
    assert r["status"] == "forbidden"
    # Unknown line, other year.
    assert c.reserve("u1", 1, line="4-01")["status"] == "not_found"
    r = c.b({"budgets_line_reserve": {"area": A, "year": 2027, "line": "2-01",
                                      "withdrawal_id": "u2", "amount": 1}}, FUNDS)
    assert r["status"] == "not_found"
    line = c.line("3-01")
    assert (line["reserved"], line["spent"]) == (4000, 1000)


def test_cosigning_and_income_rule(stack):
    """联签联审: only a submitted budget is signed, by the committee, the party
    branch and the property company, in any order, each once; nobody else; it is
    reservable only once active. 以收定支: lines above the expected income are
    refused naming the shortfall. Every refusal changes nothing."""
    c = start(stack)
    r = c.draft(income=1000000)
    assert r["status"] == "invalid" and r["field"] == "expected_income", r
    assert "以收定支" in r["message"] and "2050.00 yuan short" in r["message"], r
    assert c.b({"budgets_get": {"area": A, "year": YEAR}})["status"] == "not_found"
    assert c.draft()["status"] == "ok"
    assert c.budget()["state"] == "draft" and c.budget()["total"] == 1205000
    sign = {"budgets_sign": {"area": A, "year": YEAR}}
    assert c.b(sign, COMMITTEE)["status"] == "conflict"  # not submitted yet
    assert c.b({"budgets_submit": {"area": A, "year": YEAR}}, COMMITTEE)["status"] == "forbidden"
    c.ok({"budgets_submit": {"area": A, "year": YEAR}}, PROPERTY)
    assert c.b({"budgets_submit": {"area": A, "year": YEAR}}, PROPERTY)["status"] == "conflict"
    assert c.draft()["status"] == "conflict"  # no redraft once submitted
    assert c.reserve("early", 1)["status"] == "conflict"  # not active yet
    for wrong in (RESIDENT, ADMIN, dict(COMMITTEE, role="supervisor")):
        assert c.b(sign, wrong)["status"] == "forbidden", wrong
    assert c.b(sign, dict(COMMITTEE, area=OTHER))["status"] == "forbidden"
    c.ok(sign, BRANCH)
    r = c.b(sign, BRANCH)
    assert r["status"] == "conflict" and "already signed" in r["message"]
    c.ok(sign, PROPERTY)
    b = c.budget()
    assert b["state"] == "submitted" and b["signed"] == ["party_branch", "property"]
    assert c.reserve("early", 1)["status"] == "conflict"
    b = c.ok(sign, COMMITTEE)["budgets_budget"]
    assert b["state"] == "active" and b["signed"] == ["party_branch", "property", "committee"]
    assert c.b(sign, COMMITTEE)["status"] == "conflict"
    assert c.reserve("now", 1)["status"] == "ok"
    types = [e["type"] for e in c.events()]
    assert types.count("signed") == 3 and types.count("activated") == 1


def test_bad_inputs_change_nothing(stack):
    """Every bad input gets a clear error naming the field and changes nothing;
    a compound may add and rename items of its own catalogue."""
    c = start(stack)
    bad = [
        ({"area": "2205", "year": YEAR, "expected_income": 10, "lines": LINES}, "area"),
        ({"area": A, "year": 1999, "expected_income": 2000000, "lines": LINES}, "year"),
        ({"area": A, "year": YEAR, "expected_income": 0, "lines": LINES}, "expected_income"),
        ({"area": A, "year": YEAR, "expected_income": 2000000, "lines": []}, "lines"),
        ({"area": A, "year": YEAR, "expected_income": 2000000,
          "lines": [{"line": "9-01", "amount": 5}]}, "lines[0]"),
        ({"area": A, "year": YEAR, "expected_income": 2000000,
          "lines": [{"line": "2-08", "amount": 5}]}, "lines[0]"),
        ({"area": A, "year": YEAR, "expected_income": 2000000,
          "lines": [{"line": "2-01", "amount": 0}]}, "lines[0]"),
        ({"area": A, "year": YEAR, "expected_income": 2000000,
          "lines": [{"line": "2-01", "amount": 1200, "monthly": [100] * 11}]}, "lines[0]"),
        ({"area": A, "year": YEAR, "expected_income": 2000000,
          "lines": [{"line": "2-01", "amount": 1200, "monthly": [100] * 12},
                    {"line": "2-01", "amount": 5}]}, "lines"),
        ({"area": A, "year": YEAR, "expected_income": 2000000,
          "lines": [{"line": "2-01", "amount": 5, "standard": "x" * 600}]}, "lines[0]"),
    ]
    for body, field in bad:
        r = c.b({"budgets_draft": body}, PROPERTY)
        assert r["status"] == "invalid" and r["field"] == field and r["message"], (body, r)
    assert c.draft(actor=RESIDENT)["status"] == "forbidden"
    assert c.draft(actor=OUTSIDER)["status"] == "forbidden"
    assert c.b({"budgets_get": {"area": A, "year": YEAR}})["status"] == "not_found"
    assert c.b({"budgets_execution_get": {"area": A, "year": YEAR, "month": 13}})["status"] == \
        "invalid"
    assert c.reserve("", 5)["status"] == "invalid"
    assert c.reserve("w", 0)["status"] == "invalid"
    assert c.reserve("w", 5, line="bad")["status"] == "invalid"
    # Own items: a new 2-08, a renamed 3-01; then a draft may use 2-08.
    c.ok({"budgets_item_set": {"area": A, "code": "2-08", "name": "充电桩维护"}}, PROPERTY)
    c.ok({"budgets_item_set": {"area": A, "code": "3-01", "name": "绿化修剪浇灌"}}, PROPERTY)
    assert c.b({"budgets_item_set": {"area": A, "code": "7-01", "name": "x"}},
               PROPERTY)["status"] == "invalid"
    assert c.b({"budgets_item_set": {"area": A, "code": "2-09", "name": ""}},
               PROPERTY)["status"] == "invalid"
    cat = c.ok({"budgets_catalogue_get": {"area": A}})["budgets_catalogue"]["items"]
    assert len(cat) == 29
    names = {i["code"]: i["name"] for i in cat}
    assert names["2-08"] == "充电桩维护" and names["3-01"] == "绿化修剪浇灌"
    assert len(c.ok({"budgets_catalogue_get": {"area": ""}})["budgets_catalogue"]["items"]) == 28
    assert c.draft(lines=[{"line": "2-08", "amount": 1200}])["status"] == "ok"
    assert c.line("2-08")["name"] == "充电桩维护"
    assert c.line("2-08")["monthly"] == [100] * 12


def test_http_routes(stack):
    """The gateway's budgets routes: the property company drafts and submits over
    HTTP, the three parties co-sign with their own tokens, residents read the
    budget and its execution, and a resident cannot draft."""
    c = start(stack)
    gw = Gateway(stack)
    tok = {role: gw.token(role, A)[0] for role in
           ("property", "committee", "party_branch", "resident")}
    h = {role: gw.auth(t) for role, t in tok.items()}
    r = requests.get(gw.url + "/api/v1/budgets/catalogue", headers=h["resident"], timeout=10)
    assert r.status_code == 200 and len(r.json()["items"]) == 28, r.text
    body = {"expected_income": 2000000, "lines": LINES}
    r = requests.put(f"{gw.url}/api/v1/budgets/{A}/{YEAR}", json=body, headers=h["resident"],
                     timeout=10)
    assert r.status_code == 403, r.text
    r = requests.put(f"{gw.url}/api/v1/budgets/{A}/{YEAR}", json=body, headers=h["property"],
                     timeout=10)
    assert r.status_code == 200 and r.json()["state"] == "draft", r.text
    r = requests.post(f"{gw.url}/api/v1/budgets/{A}/{YEAR}/submit", json={},
                      headers=h["property"], timeout=10)
    assert r.status_code == 200, r.text
    for role in ("committee", "party_branch", "property"):
        r = requests.post(f"{gw.url}/api/v1/budgets/{A}/{YEAR}/sign", json={},
                          headers=h[role], timeout=10)
        assert r.status_code == 200, r.text
    assert r.json()["state"] == "active"
    r = requests.post(f"{gw.url}/api/v1/budgets/{A}/{YEAR}/sign", json={},
                      headers=h["committee"], timeout=10)
    assert r.status_code == 409, r.text
    r = requests.get(f"{gw.url}/api/v1/budgets/{A}/{YEAR}", headers=h["resident"], timeout=10)
    assert r.status_code == 200 and r.json()["total"] == 1205000, r.text
    r = requests.get(f"{gw.url}/api/v1/budgets/{A}/{YEAR}/execution/11", headers=h["resident"],
                     timeout=10)
    assert r.status_code == 200 and int(r.json()["budget_to_date"]) == 1100000 + 8 * 417 + 3 * 416, r.text
    r = requests.get(f"{gw.url}/api/v1/budgets/{A}/{YEAR}/notice/11", headers=h["resident"],
                     timeout=10)
    assert r.status_code == 200 and "预算执行情况公示" in r.json()["html"], r.text
    page = requests.get(f"{gw.url}/api/v1/budgets/{A}/{YEAR}/notice/11/print",
                        headers=h["resident"], timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.text == r.json()["html"]
    c.ok({"budgets_get": {"area": A, "year": YEAR}})


def test_amendment_through_the_same_cosigning(stack):
    """An amendment of an active budget is drafted, submitted and co-signed by the
    same three parties; until then the old lines hold. It may not take a line
    below what is reserved and spent. Once applied the reservations stay, the
    version goes up and the version before stays readable (history)."""
    c = start(stack)
    c.activate()
    assert c.reserve("w1", 3000)["status"] == "ok"
    amended = [{"line": "2-01", "amount": 1000000}, {"line": "3-01", "amount": 8000},
               {"line": "4-01", "amount": 120000}]
    r = c.draft(lines=[{"line": "2-01", "amount": 1000000}, {"line": "3-01", "amount": 2000}])
    assert r["status"] == "conflict" and "3-01" in r["message"], r
    r = c.draft(lines=[{"line": "2-01", "amount": 1000000}])  # drops 3-01, which has 3000 used
    assert r["status"] == "conflict", r
    r = c.draft(lines=amended)
    assert r["status"] == "ok" and r["budgets_budget"]["state"] == "draft", r
    b = c.budget()
    assert b["state"] == "active" and int(b["version"]) == 1
    assert b["amendment"]["state"] == "draft" and b["amendment"]["total"] == 1128000
    assert c.reserve("w2", 2500)["status"] == "conflict"  # still the old 5000
    assert c.reserve("w3", 1, line="4-01")["status"] == "not_found"
    sign = {"budgets_sign": {"area": A, "year": YEAR}}
    assert c.b(sign, COMMITTEE)["status"] == "conflict"  # amendment not submitted
    c.ok({"budgets_submit": {"area": A, "year": YEAR}}, PROPERTY)
    assert c.draft(lines=amended)["status"] == "conflict"  # being co-signed
    c.ok(sign, COMMITTEE)
    assert c.b(sign, COMMITTEE)["status"] == "conflict"
    assert c.b(sign, RESIDENT)["status"] == "forbidden"
    c.ok(sign, BRANCH)
    b = c.ok(sign, PROPERTY)["budgets_budget"]
    assert b["state"] == "active" and int(b["version"]) == 2 and b["total"] == 1128000
    b = c.budget()
    assert "amendment" not in b
    line = c.line("3-01")
    assert (line["amount"], line["reserved"], line["remaining"]) == (8000, 3000, 5000)
    assert c.reserve("w2", 2500)["status"] == "ok"
    assert c.reserve("w3", 1, line="4-01")["status"] == "ok"
    old = c.ok({"budgets_get": {"area": A, "year": YEAR, "version": 1}})["budgets_budget"]
    assert old["state"] == "superseded" and old["total"] == 1205000
    assert c.b({"budgets_get": {"area": A, "year": YEAR, "version": 7}})["status"] == "not_found"
    assert [e["type"] for e in c.events()].count("amended") == 1
    assert c.b({"budgets_submit": {"area": A, "year": YEAR}}, PROPERTY)["status"] == "conflict"


def test_owners_queries_and_deadlines(stack):
    """质询: a resident of the compound asks about a line; the property company or
    the committee answers once; a query open past its 7-day deadline is flagged
    and published as query_overdue, once; answers are public."""
    c = start(stack)
    c.activate()
    raise_ = lambda body, who=RESIDENT: c.b({"budgets_query_raise": body}, who)  # noqa: E731
    q = {"area": A, "year": YEAR, "line": "2-01", "question": "电梯维保费为何高于去年?"}
    r = raise_(q)
    assert r["status"] == "ok", r
    q1 = r["budgets_query"]
    assert q1["id"] == "Q000001" and q1["state"] == "open"
    assert int(q1["deadline_ms"]) - int(q1["raised_ms"]) == 7 * DAY_MS
    q2 = raise_(dict(q, line="3-01", question="绿化?"))["budgets_query"]
    # Bad inputs and wrong people.
    assert raise_(q, PROPERTY)["status"] == "forbidden"
    assert raise_(q, dict(RESIDENT, area=OTHER))["status"] == "forbidden"
    assert raise_(dict(q, question=""))["status"] == "invalid"
    assert raise_(dict(q, question="x" * 1001))["status"] == "invalid"
    assert raise_(dict(q, line="4-01"))["status"] == "not_found"
    assert raise_(dict(q, year=2027))["status"] == "not_found"
    # A resident token scoped to a building of the compound may ask too.
    assert raise_(q, dict(RESIDENT, area=A + "003"))["status"] == "ok"
    ans = {"area": A, "id": q1["id"], "answer": "新增了电梯年检费用, 详见合同第3条"}
    assert c.b({"budgets_query_answer": ans}, RESIDENT)["status"] == "forbidden"
    assert c.b({"budgets_query_answer": dict(ans, answer="")}, PROPERTY)["status"] == "invalid"
    assert c.b({"budgets_query_answer": dict(ans, id="Q999999")}, PROPERTY)["status"] == \
        "not_found"
    r = c.ok({"budgets_query_answer": ans}, PROPERTY)["budgets_query"]
    assert r["state"] == "answered" and r["answered_by"] == "property"
    assert c.b({"budgets_query_answer": ans}, COMMITTEE)["status"] == "conflict"
    # Seven days and a minute later the other two are overdue, once each.
    c.ok({"clock_advance": {"delta_ms": 7 * DAY_MS + 60000}})
    def overdue():
        return [e for e in c.events() if e["type"] == "query_overdue"]
    wait_for(lambda: len(overdue()) == 2, what="query_overdue")
    assert {e["budgets_query"]["id"] for e in overdue()} == {q2["id"], "Q000003"}
    c.ok({"clock_advance": {"delta_ms": DAY_MS}})
    time.sleep(0.5)
    assert len(overdue()) == 2
    # A late answer is still taken; the overdue flag stays. The list is public.
    c.ok({"budgets_query_answer": dict(ans, id=q2["id"], answer="按季度补植")}, COMMITTEE)
    qs = c.ok({"budgets_queries_list": {"area": A}}, RESIDENT)["budgets_queries"]["queries"]
    assert [x["id"] for x in qs] == ["Q000001", "Q000002", "Q000003"]
    assert [x.get("overdue", False) for x in qs] == [False, True, True]
    assert qs[1]["answer"] == "按季度补植" and qs[1]["state"] == "answered"
    assert "asker" not in json.dumps(qs)


def test_evaluations_and_score(stack):
    """一查三评: the four components by their roles, one rating per household per
    month, and the month's score by the DESIGN §5 formula, re-weighted while a
    component has no data; bad inputs change nothing."""
    c = start(stack)
    ev = lambda body, who: c.b({"budgets_eval_record": dict(body, area=A, month="2026-11")}, who)  # noqa: E731
    score = lambda: c.ok({"budgets_score_get": {"area": A, "month": "2026-11"}})["budgets_score"]  # noqa: E731
    assert int(score()["score_x100"]) == -1
    # Bad inputs and wrong roles.
    assert ev({"kind": "rating", "rating": 6}, RESIDENT)["status"] == "invalid"
    assert ev({"kind": "rating", "rating": 0}, RESIDENT)["status"] == "invalid"
    assert ev({"kind": "rating", "rating": 5}, PROPERTY)["status"] == "forbidden"
    assert ev({"kind": "branch", "score": 90}, COMMITTEE)["status"] == "forbidden"
    assert ev({"kind": "questionnaire", "score": 101, "sample_size": 5}, COMMITTEE)["status"] == \
        "invalid"
    assert ev({"kind": "questionnaire", "score": 80, "sample_size": 0}, COMMITTEE)["status"] == \
        "invalid"
    assert ev({"kind": "bogus"}, COMMITTEE)["status"] == "invalid"
    assert c.b({"budgets_eval_record": {"area": A, "month": "2026-13", "kind": "branch",
                                        "score": 1}}, BRANCH)["status"] == "invalid"
    assert ev({"kind": "account_check", "passed": True}, OUTSIDER)["status"] == "forbidden"
    assert int(score()["score_x100"]) == -1
    # Ratings 4 and 5 from two households; the first cannot rate twice.
    assert ev({"kind": "rating", "rating": 4}, RESIDENT)["status"] == "ok"
    r = ev({"kind": "rating", "rating": 1}, RESIDENT)
    assert r["status"] == "conflict" and "one rating per household" in r["message"]
    s = ev({"kind": "rating", "rating": 5}, dict(RESIDENT, id="res-2", area=A + "002"))
    assert int(s["budgets_score"]["score_x100"]) == 9000  # only ratings: 6 × 4.5 of 30
    assert ev({"kind": "account_check", "passed": True, "note": "账实相符"},
              COMMITTEE)["status"] == "ok"
    assert ev({"kind": "questionnaire", "score": 80, "sample_size": 120}, COMMITTEE)["status"] == "ok"
    s = ev({"kind": "branch", "score": 90}, BRANCH)["budgets_score"]
    assert int(s["score_x100"]) == 8900  # 20 + 24 + 27 + 18
    assert int(s["ratings"]) == 2 and int(s["rating_mean_x100"]) == 450
    # A failed check replaces the pass.
    s = ev({"kind": "account_check", "passed": False, "note": "缺少发票"}, COMMITTEE)
    assert s["budgets_score"]["account_check"] == "failed"
    assert int(score()["score_x100"]) == 6900
    assert [e["type"] for e in c.events()].count("evaluated") == 6


def test_three_lists_progress_and_meetings(stack):
    """三张清单: 5 party-branch functions, 7 committee duties, 6 property services
    with the compound's standards; progress on a service by the property company
    (履约进度) and three-party meetings (三方评议会) are listed; bad inputs and
    wrong roles change nothing."""
    c = start(stack)
    l = c.ok({"budgets_lists_get": {"area": A}}, RESIDENT)["budgets_lists"]
    assert [len(l[k]) for k in ("branch_functions", "committee_duties", "property_services")] == \
        [5, 7, 6]
    assert l.get("meetings", []) == []
    std = {"area": A, "service": "S4", "standard": "草坪每月修剪两次"}
    assert c.b({"budgets_standard_set": std}, RESIDENT)["status"] == "forbidden"
    assert c.b({"budgets_standard_set": dict(std, service="S9")}, PROPERTY)["status"] == "invalid"
    assert c.b({"budgets_standard_set": dict(std, standard="")}, PROPERTY)["status"] == "invalid"
    c.ok({"budgets_standard_set": std}, COMMITTEE)
    prog = {"area": A, "service": "S4", "date": "2026-11-28", "note": "完成秋季修剪"}
    assert c.b({"budgets_progress_add": prog}, COMMITTEE)["status"] == "forbidden"
    assert c.b({"budgets_progress_add": dict(prog, date="2026-11-31")}, PROPERTY)["status"] == \
        "invalid"
    assert c.b({"budgets_progress_add": dict(prog, note="")}, PROPERTY)["status"] == "invalid"
    assert c.b({"budgets_progress_add": prog}, OUTSIDER)["status"] == "forbidden"
    c.ok({"budgets_progress_add": prog}, PROPERTY)
    c.ok({"budgets_progress_add": dict(prog, date="2026-11-29", note="补植3株")}, PROPERTY)
    meet = {"area": A, "date": "2026-11-29", "attendees": ["李主任", "王书记", "赵经理"],
            "minutes": "评议11月物业服务: 绿化达标, 保洁需加强"}
    assert c.b({"budgets_meeting_record": dict(meet, attendees=["李主任", "王书记"])},
               BRANCH)["status"] == "invalid"
    assert c.b({"budgets_meeting_record": meet}, PROPERTY)["status"] == "forbidden"
    c.ok({"budgets_meeting_record": meet}, BRANCH)
    l = c.ok({"budgets_lists_get": {"area": A}}, RESIDENT)["budgets_lists"]
    s4 = next(s for s in l["property_services"] if s["code"] == "S4")
    assert s4["standard"] == "草坪每月修剪两次"
    assert [p["note"] for p in s4["progress"]] == ["完成秋季修剪", "补植3株"]
    assert l["meetings"][0]["attendees"] == meet["attendees"]
    types = [e["type"] for e in c.events()]
    assert types.count("progress_updated") == 2 and types.count("meeting_recorded") == 1
