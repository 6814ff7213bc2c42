"""The funds service end to end (docs/funds.md): real broker, zhili-funds, the
budgets test double (tests/budgetstub) and, for the HTTP routes, the gateway,
as processes on loopback. Each test states the property it checks."""
import datetime
import json
import os
import random
import re
import signal
import subprocess
import time

import pytest
import requests

from zhili_stack import BIN, Gateway

A = "220503001001002"          # the compound (its trust account)
OTHER = "220503001001009"      # another compound
BUILDING = A + "001"
# 2026-11-30T00:00:00+08:00 (Beijing), the fake clock's start in several tests.
TZ_NOV = int(datetime.datetime(2026, 11, 30, tzinfo=datetime.timezone(
    datetime.timedelta(hours=8))).timestamp() * 1000)

ADMIN = {"id": "zhilictl", "role": "admin", "area": ""}
LI = {"id": "li", "role": "committee", "area": A, "name": "李主任"}          # holder A
WANG = {"id": "wang", "role": "supervisor", "area": A, "name": "王监察"}     # holder B
ZHAO = {"id": "zhao", "role": "supervisor", "area": A, "name": "赵监察"}     # not a holder
STAFF = {"id": "staff-1", "role": "staff", "area": "220503001"}
PROPERTY = {"id": "prop-1", "role": "property", "area": A}
RESIDENT = {"id": "res-1", "role": "resident", "area": A}
OUTSIDER = {"id": "out-1", "role": "committee", "area": OTHER}
PARTY = {"id": "pb-1", "role": "party_branch", "area": A}
SECRET_A, SECRET_B, SECRET_Q = "111111", "222222", "query-333"


class Funds:
    """Calls to the funds service through zhilictl, with an actor."""

    def __init__(self, stack):
        self.stack = stack
        self.n = 0

    def call(self, body, actor=ADMIN, rid=None, service="funds", timeout_ms=10000):
        self.n += 1
        cmd = dict(body)
        cmd["actor"] = actor
        cmd["request_id"] = rid or f"t-{os.getpid()}-{self.n}-{random.random()}"
        rc, reply = self.stack.call(service, cmd, timeout_ms=timeout_ms)
        assert reply is not None, f"no reply to {cmd}"
        return reply

    def ok(self, body, actor=ADMIN, rid=None):
        r = self.call(body, actor, rid)
        assert r["status"] == "ok", (body, r)
        return r

    def account(self, account=A, actor=ADMIN):
        return self.ok({"funds_account_get": {"account": account}}, actor)["funds_account"]

    def verify(self, account=A):
        return self.ok({"funds_verify": {"account": account}})["funds_verify"]

    def deposit(self, amount, receipt, category="parking_fee", payer="张三", account=A, actor=ADMIN,
                rid=None, kind=None):
        d = {"account": account, "category": category, "amount": amount, "payer": payer,
             "receipt": receipt}
        if kind:
            d["payer_kind"] = kind
        return self.call({"funds_deposit": d}, actor, rid)

    def request(self, amount, line="2-01", actor=PROPERTY, rid=None, payee="某物业公司",
                timeout_ms=10000):
        return self.call({"funds_withdrawal_request": {
            "account": A, "amount": amount, "payee": payee, "payee_kind": "organisation",
            "purpose": "电梯维保 11月", "line": line}}, actor, rid, timeout_ms=timeout_ms)

    def approve(self, wid, actor, secret, rid=None):
        return self.call({"funds_withdrawal_approve": {"account": A, "withdrawal_id": wid,
                                                      "secret": secret}}, actor, rid)

    def open(self):
        self.ok({"funds_account_open": {"account": A, "name": "幸福里小区共有资金账户",
                                        "holder_a": {"id": "li", "name": "李主任"},
                                        "holder_b": {"id": "wang", "name": "王监察"}}}, STAFF)
        self.ok({"funds_credential_set": {"account": A, "credential": "holder_a",
                                          "secret": SECRET_A}}, LI)
        self.ok({"funds_credential_set": {"account": A, "credential": "holder_b",
                                          "secret": SECRET_B}}, WANG)
        self.ok({"funds_credential_set": {"account": A, "credential": "query",
                                          "secret": SECRET_Q}}, LI)


def start(stack, budgets=True, fake_clock=None, lines=None, **env):
    stack.broker()
    fenv = {"ZHILI_FUNDS_PWHASH": "test-fast", "ZHILI_FUNDS_BUDGET_TIMEOUT_MS": "1000"}
    if fake_clock is not None:
        fenv.update({"ZHILI_FAKE_CLOCK": "1", "ZHILI_FAKE_CLOCK_START_MS": str(fake_clock)})
    fenv.update(env)
    stack.start("funds", "zhili-funds", **fenv)
    if budgets:
        stack.start("budgets", "zhili-budgetstub",
                    ZHILI_BUDGETSTUB_LINES=lines or f"{A}:2026:2-01:1000000,{A}:2026:3-01:5000",
                    ZHILI_BUDGETSTUB_DEFAULT_FEN="0")
        stack.wait_ready("budgets")
    stack.wait_ready("funds")
    return Funds(stack)


def outbox_last(stack):
    return stack.stats("funds")[("outbox_last_seq", "")]


def budget_line(stack, line):
    stats = stack.stats("budgets")
    key = f'line="{A}:2026:{line}"'
    return {n: stats.get((n, key)) for n in ("budgetstub_remaining", "budgetstub_reserved",
                                             "budgetstub_spent")}


def wait_for(pred, timeout_s=5.0, what="condition"):
    end = time.time() + timeout_s
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# ---- withdrawals: two holders, two people, two secrets -------------------------

def test_withdrawal_needs_both_holders(stack):
    """A withdrawal holds money (available drops, balance does not), needs holder
    A and holder B with their own secrets, refuses the same person twice and a
    wrong secret without saying which part was wrong, then posts one entry and
    consumes the line's reservation at budgets."""
    f = start(stack)
    f.open()
    assert f.deposit(80000, "P-001")["status"] == "ok"
    w = f.request(30000)
    assert w["status"] == "ok", w
    w = w["funds_withdrawal"]
    assert w["state"] == "pending" and w["line_remaining"] == 1000000 - 30000
    acct = f.account()
    assert (acct["balance"], acct["held"], acct["available"]) == (80000, 30000, 50000)
    assert budget_line(stack, "2-01")["budgetstub_reserved"] == 30000
    wid = w["id"]
    r = f.approve(wid, LI, "wrong-1")
    assert r["status"] == "forbidden" and "did not match" in r["message"], r
    assert "secret" not in r["message"] and "holder" not in r["message"]
    r = f.approve(wid, ZHAO, SECRET_B)
    assert r["status"] == "forbidden"  # not a holder
    r = f.approve(wid, LI, SECRET_A)
    assert r["status"] == "ok" and len(r["funds_withdrawal"]["approvals"]) == 1
    r = f.approve(wid, LI, SECRET_A)
    assert r["status"] == "forbidden" and "same person" in r["message"], r
    # Holder A's token cannot borrow B's secret either: it is the actor that counts.
    r = f.approve(wid, dict(LI, role="supervisor"), SECRET_B)
    assert r["status"] == "forbidden"
    r = f.approve(wid, WANG, SECRET_B)
    assert r["status"] == "ok", r
    w = r["funds_withdrawal"]
    assert w["state"] == "posted" and w["entry_seq"] == 2
    assert {a["holder"] for a in w["approvals"]} == {"holder_a", "holder_b"}
    acct = f.account()
    assert (acct["balance"], acct["held"], acct["available"]) == (50000, 0, 50000)
    wait_for(lambda: budget_line(stack, "2-01")["budgetstub_spent"] == 30000, what="consume")
    assert budget_line(stack, "2-01")["budgetstub_reserved"] == 0
    v = f.verify()
    assert v["ok"] and v["entries"] == 2 and v["balance"] == 50000
    # Posted: nothing more to approve, reject or void.
    assert f.approve(wid, WANG, SECRET_B)["status"] == "conflict"
    r = f.call({"funds_withdrawal_void": {"account": A, "withdrawal_id": wid, "reason": "x"}},
               PROPERTY)
    assert r["status"] == "conflict"


def test_reject_void_expire_release_the_hold(stack):
    """Rejected, voided and expired withdrawals release their hold and their
    reservation at budgets; only the right people may reject or void."""
    f = start(stack, fake_clock=TZ_NOV, ZHILI_FUNDS_WITHDRAWAL_TTL_MS="3600000")
    f.open()
    f.deposit(100000, "P-1")
    w1 = f.request(10000)["funds_withdrawal"]["id"]
    w2 = f.request(20000)["funds_withdrawal"]["id"]
    w3 = f.request(30000)["funds_withdrawal"]["id"]
    assert f.account()["held"] == 60000
    r = f.call({"funds_withdrawal_reject": {"account": A, "withdrawal_id": w1, "reason": "重复"}},
               PROPERTY)
    assert r["status"] == "forbidden"
    r = f.call({"funds_withdrawal_reject": {"account": A, "withdrawal_id": w1, "reason": ""}}, WANG)
    assert r["status"] == "invalid" and r["field"] == "reason"
    r = f.call({"funds_withdrawal_reject": {"account": A, "withdrawal_id": w1, "reason": "重复"}},
               WANG)
    assert r["funds_withdrawal"]["state"] == "rejected"
    r = f.call({"funds_withdrawal_void": {"account": A, "withdrawal_id": w2, "reason": "撤回"}}, LI)
    assert r["status"] == "forbidden"  # LI did not request it
    r = f.call({"funds_withdrawal_void": {"account": A, "withdrawal_id": w2, "reason": "撤回"}},
               PROPERTY)
    assert r["funds_withdrawal"]["state"] == "voided"
    f.approve(w3, LI, SECRET_A)
    f.ok({"clock_advance": {"delta_ms": 3600 * 1000 + 1}})
    wait_for(lambda: f.account()["held"] == 0, what="expiry")
    got = f.ok({"funds_withdrawal_get": {"account": A, "withdrawal_id": w3}})["funds_withdrawal"]
    assert got["state"] == "expired" and got["reason"]
    assert f.approve(w3, WANG, SECRET_B)["status"] == "conflict"
    wait_for(lambda: budget_line(stack, "2-01")["budgetstub_reserved"] == 0, what="releases")
    assert budget_line(stack, "2-01")["budgetstub_spent"] == 0
    assert f.account()["balance"] == 100000 and f.verify()["ok"]


def test_line_check_fails_closed_without_budgets(stack):
    """Without budgets the line check is never skipped: the request is refused
    with UNAVAILABLE and 预算服务不可用 after the call's timeout, and the hold is
    released. Once budgets answers, the same request goes through."""
    f = start(stack, budgets=False)
    f.open()
    f.deposit(50000, "P-1")
    before = time.time()
    r = f.request(10000, rid="req-closed", timeout_ms=2500)
    took = time.time() - before
    assert r["status"] == "unavailable" and "预算服务不可用" in r["message"], r
    assert took < 5.0
    wait_for(lambda: f.account()["held"] == 0, what="the hold to be released")
    ws = f.ok({"funds_withdrawals_list": {"account": A}})["funds_withdrawals"]["withdrawals"]
    assert ws and all(w["state"] == "refused" for w in ws), ws
    assert f.account()["available"] == 50000
    stack.start("budgets", "zhili-budgetstub", ZHILI_BUDGETSTUB_LINES=f"{A}:2026:2-01:1000000")
    stack.wait_ready("budgets")
    time.sleep(5.2)  # the service refuses at once for a few seconds after a timeout
    r = f.request(10000, rid="req-closed")
    assert r["status"] == "ok" and r["funds_withdrawal"]["state"] == "pending", r
    assert f.account()["held"] == 10000


def test_line_and_account_short(stack):
    """以收定支: a request is refused when the account's available money or the
    budget line's remainder is short, and a refusal holds nothing for long."""
    f = start(stack)
    f.open()
    f.deposit(20000, "P-1")
    r = f.request(20001)
    assert r["status"] == "conflict" and "以收定支" in r["message"] and r["field"] == "amount"
    r = f.request(6000, line="3-01")  # the line has 5000
    assert r["status"] == "conflict" and r["field"] == "line" and "预算科目余额不足" in r["message"]
    r = f.request(100, line="9-99")
    assert r["status"] == "not_found" and r["field"] == "line"
    wait_for(lambda: f.account()["held"] == 0, what="holds released")
    assert f.request(5000, line="3-01")["status"] == "ok"
    r = f.request(1, line="3-01")
    assert r["status"] == "conflict"
    wait_for(lambda: f.account()["held"] == 5000, what="the refused hold released")


# ---- credentials --------------------------------------------------------------

def test_lockout_and_two_party_reset(stack):
    """Five wrong secrets lock a credential, even against the right one, until an
    admin and a supervisor (two different people, any order) reset it."""
    f = start(stack, fake_clock=TZ_NOV)
    f.open()
    f.deposit(50000, "P-1")
    wid = f.request(1000)["funds_withdrawal"]["id"]
    for i in range(5):
        r = f.approve(wid, LI, f"wrong-{i}")
        assert r["status"] == "forbidden" and "did not match" in r["message"], r
    r = f.approve(wid, LI, SECRET_A)
    assert r["status"] == "forbidden" and "locked" in r["message"], r
    cred = f.account(actor=WANG)["credentials"][0]
    assert cred["locked"] and cred["failures"] == 5
    # The lock is announced once the checks settled.
    f.ok({"clock_advance": {"delta_ms": 31000}})
    wait_for(lambda: "credential_locked" in stack.ctl("replay", "funds", "--from", "1").stdout,
             what="the lock event")
    # Holder B is not affected.
    assert f.approve(wid, WANG, SECRET_B)["status"] == "ok"
    reset = {"funds_credential_reset": {"account": A, "credential": "holder_a"}}
    assert f.call(reset, LI)["status"] == "forbidden"            # a committee member
    assert f.call(reset, RESIDENT)["status"] == "forbidden"
    r = f.ok(reset, WANG)                                          # the supervisor's half
    assert r["funds_credential"]["locked"] and r["funds_credential"]["reset_by_supervisor"] == "wang"
    assert f.approve(wid, LI, SECRET_A)["status"] == "forbidden"  # still locked
    same = {"id": "wang", "role": "admin", "area": ""}
    assert f.call(reset, same)["status"] == "forbidden"           # the same person, twice
    r = f.ok(reset, ADMIN)
    assert not r["funds_credential"]["locked"] and r["funds_credential"]["failures"] == 0
    assert f.call(reset, ADMIN)["status"] == "conflict"          # not locked any more
    r = f.approve(wid, LI, SECRET_A)
    assert r["status"] == "ok" and r["funds_withdrawal"]["state"] == "posted", r


def test_secret_rules_and_query_ticket(stack):
    """Secrets: only their holder sets them, a change needs the current one, a
    bad secret is INVALID; the query secret unlocks a short-lived full view,
    residents otherwise see the public view without personal data."""
    f = start(stack, ZHILI_FUNDS_TICKET_MS="1500")
    f.open()
    set_a = {"account": A, "credential": "holder_a", "secret": "new-secret"}
    assert f.call({"funds_credential_set": set_a}, WANG)["status"] == "forbidden"
    r = f.call({"funds_credential_set": set_a}, LI)
    assert r["status"] == "invalid" and r["field"] == "current_secret"
    r = f.call({"funds_credential_set": dict(set_a, current_secret="nope-nope")}, LI)
    assert r["status"] == "forbidden"
    r = f.call({"funds_credential_set": dict(set_a, secret="12345")}, LI)
    assert r["status"] == "invalid" and r["field"] == "secret"
    r = f.ok({"funds_credential_set": dict(set_a, current_secret=SECRET_A)}, LI)
    assert r["funds_credential"]["failures"] == 0
    f.deposit(1234, "P-9", payer="张三")
    f.deposit(500, "AD-1", category="advertising_rent", payer="某传媒公司", kind="organisation")
    pub = f.ok({"funds_entries_list": {"account": A}}, RESIDENT)["funds_entries"]
    assert pub["public_view"] and pub["entries"][0]["payer"] == "" and \
        pub["entries"][1]["payer"] == "某传媒公司"
    acct = f.account(actor=RESIDENT)
    assert acct["public_view"] and acct["holders"] == [] and acct["balance"] == 1734
    assert f.call({"funds_query_unlock": {"account": A, "secret": "wrong-q"}},
                  RESIDENT)["status"] == "forbidden"
    t = f.ok({"funds_query_unlock": {"account": A, "secret": SECRET_Q}}, RESIDENT)["funds_ticket"]
    full = f.ok({"funds_entries_list": {"account": A, "ticket": t["ticket"]}}, RESIDENT)
    assert not full["funds_entries"]["public_view"] and \
        full["funds_entries"]["entries"][0]["payer"] == "张三"
    r = f.call({"funds_account_get": {"account": A, "ticket": "x" * 43}}, RESIDENT)
    assert r["status"] == "forbidden" and r["field"] == "ticket"
    time.sleep(1.7)
    r = f.call({"funds_account_get": {"account": A, "ticket": t["ticket"]}}, RESIDENT)
    assert r["status"] == "forbidden"  # expired
    assert f.call({"funds_account_get": {"account": A}}, OUTSIDER)["status"] == "forbidden"
    # A resident whose token is scoped to a building of the compound reads its
    # compound's account, in the public view only, and writes nothing.
    in_building = dict(RESIDENT, id="res-2", area=BUILDING)
    acct = f.account(actor=in_building)
    assert acct["public_view"] and acct["holders"] == [] and acct["balance"] == 1734
    pub = f.ok({"funds_entries_list": {"account": A}}, in_building)["funds_entries"]
    assert pub["public_view"] and pub["entries"][0]["payer"] == ""
    r = f.call({"funds_deposit": {"account": A, "category": "property_fee", "amount": 1,
                                  "payer": "x", "payer_kind": "person", "receipt": "R-B"}},
               in_building)
    assert r["status"] == "forbidden"
    other_building = dict(RESIDENT, id="res-3", area=OTHER + "001")
    assert f.call({"funds_account_get": {"account": A}}, other_building)["status"] == "forbidden"


# ---- the journal ----------------------------------------------------------------

def test_idempotent_retries(stack):
    """A resent command (same request_id) returns the first answer and changes
    nothing twice; a new command with a used receipt number is CONFLICT."""
    f = start(stack)
    f.open()
    r1 = f.deposit(700, "R-1", rid="dep-1")
    r2 = f.deposit(700, "R-1", rid="dep-1")
    assert r1 == r2 and r1["funds_entry"]["seq"] == 1
    r3 = f.deposit(700, "R-1", rid="dep-2")
    assert r3["status"] == "conflict" and r3["field"] == "receipt"
    w1 = f.request(100, rid="wr-1")
    w2 = f.request(100, rid="wr-1")
    assert w1 == w2 and f.account()["held"] == 100
    a1 = f.approve(w1["funds_withdrawal"]["id"], LI, SECRET_A, rid="ap-1")
    a2 = f.approve(w1["funds_withdrawal"]["id"], LI, SECRET_A, rid="ap-1")
    assert a1 == a2 and a1["status"] == "ok"
    assert f.account()["entries"] == 1 and f.verify()["ok"]


def test_bad_inputs_change_nothing(stack):
    """Every field of every write has its clear error, naming the field, and a
    refused command leaves no entry, no event and no hold behind."""
    f = start(stack)
    f.open()
    f.deposit(10000, "P-1")
    last = outbox_last(stack)
    dep = {"account": A, "category": "parking_fee", "amount": 100, "payer": "张三", "receipt": "X-1"}
    cases = [
        ({"funds_deposit": dict(dep, account="22050300100100")}, ADMIN, "invalid", "account"),
        ({"funds_deposit": dict(dep, account=OTHER)}, ADMIN, "not_found", "account"),
        ({"funds_deposit": dict(dep, category="unspecified")}, ADMIN, "invalid", "category"),
        ({"funds_deposit": dict(dep, amount=0)}, ADMIN, "invalid", "amount"),
        ({"funds_deposit": dict(dep, amount=-5)}, ADMIN, "invalid", "amount"),
        ({"funds_deposit": dict(dep, amount=100000001)}, ADMIN, "invalid", "amount"),
        ({"funds_deposit": dict(dep, payer="")}, ADMIN, "invalid", "payer"),
        ({"funds_deposit": dict(dep, payer="x" * 121)}, ADMIN, "invalid", "payer"),
        ({"funds_deposit": dict(dep, payer="a\tb")}, ADMIN, "invalid", "payer"),
        ({"funds_deposit": dict(dep, receipt="")}, ADMIN, "invalid", "receipt"),
        ({"funds_deposit": dict(dep, receipt="#rent-1")}, ADMIN, "invalid", "receipt"),
        ({"funds_deposit": dict(dep, receipt="r" * 65)}, ADMIN, "invalid", "receipt"),
        ({"funds_deposit": dict(dep, receipt="P-1")}, ADMIN, "conflict", "receipt"),
        ({"funds_deposit": dict(dep, memo="m" * 301)}, ADMIN, "invalid", "memo"),
        ({"funds_deposit": dep}, RESIDENT, "forbidden", None),
        ({"funds_deposit": dep}, OUTSIDER, "forbidden", "account"),
        ({"funds_deposit": dep}, {"id": "", "role": "admin", "area": ""}, "forbidden", "actor"),
        ({"funds_withdrawal_request": {"account": A, "amount": 0, "payee": "p", "purpose": "x",
                                       "line": "2-01"}}, PROPERTY, "invalid", "amount"),
        ({"funds_withdrawal_request": {"account": A, "amount": 10, "payee": "", "purpose": "x",
                                       "line": "2-01"}}, PROPERTY, "invalid", "payee"),
        ({"funds_withdrawal_request": {"account": A, "amount": 10, "payee": "p", "purpose": "",
                                       "line": "2-01"}}, PROPERTY, "invalid", "purpose"),
        ({"funds_withdrawal_request": {"account": A, "amount": 10, "payee": "p", "purpose": "x",
                                       "line": ""}}, PROPERTY, "invalid", "line"),
        ({"funds_withdrawal_request": {"account": A, "amount": 10, "payee": "p", "purpose": "x",
                                       "line": "2-01", "year": 1999}}, PROPERTY, "invalid", "year"),
        ({"funds_withdrawal_request": {"account": A, "amount": 10, "payee": "p", "purpose": "x",
                                       "line": "2-01", "payee_kind": "household"}}, PROPERTY,
         "invalid", "payee_kind"),
        ({"funds_withdrawal_request": {"account": A, "amount": 10, "payee": "p", "purpose": "x",
                                       "line": "2-01"}}, RESIDENT, "forbidden", None),
        ({"funds_withdrawal_approve": {"account": A, "withdrawal_id": A + "-w99",
                                       "secret": SECRET_A}}, LI, "not_found", "withdrawal_id"),
        ({"funds_withdrawal_approve": {"account": A, "withdrawal_id": "w1",
                                       "secret": SECRET_A}}, LI, "not_found", "withdrawal_id"),
        ({"funds_withdrawal_approve": {"account": A, "withdrawal_id": A + "-w1",
                                       "secret": "123"}}, LI, "invalid", "secret"),
        ({"funds_account_open": {"account": A, "name": "x", "holder_a": {"id": "a", "name": "a"},
                                 "holder_b": {"id": "b", "name": "b"}}}, STAFF, "conflict", "account"),
        ({"funds_account_open": {"account": OTHER, "name": "x", "holder_a": {"id": "a", "name": "a"},
                                 "holder_b": {"id": "a", "name": "b"}}}, ADMIN, "forbidden",
         "holder_b.id"),
        ({"funds_account_open": {"account": OTHER, "name": "", "holder_a": {"id": "a", "name": "a"},
                                 "holder_b": {"id": "b", "name": "b"}}}, ADMIN, "invalid", "name"),
        ({"funds_account_open": {"account": OTHER, "name": "x", "holder_b": {"id": "b", "name": "b"}}},
         ADMIN, "invalid", "holder_a"),
        ({"funds_account_open": {"account": OTHER, "name": "x", "holder_a": {"id": "a", "name": "a"},
                                 "holder_b": {"id": "b", "name": "b"}}}, PROPERTY, "forbidden", None),
        ({"funds_reverse": {"account": A, "seq": 99, "reason": "x"}}, ADMIN, "not_found", "seq"),
        ({"funds_reverse": {"account": A, "seq": 1, "reason": ""}}, ADMIN, "invalid", "reason"),
        ({"funds_credential_reset": {"account": A, "credential": "holder_a"}}, ADMIN, "conflict",
         "credential"),
        ({"funds_statement_get": {"account": A, "month": "2026-13"}}, ADMIN, "invalid", "month"),
        ({"funds_entries_list": {"account": A, "from": "yesterday"}}, ADMIN, "invalid", "from"),
        ({"funds_entries_list": {"account": A, "limit": 1001}}, ADMIN, "invalid", "limit"),
        ({"funds_fee_bill": {"account": A, "period": "2026-11", "flat_fen": 100,
                             "rate_fen_per_m2": 100, "households": [{"building": BUILDING,
                                                                      "room": "1"}]}},
         ADMIN, "invalid", "rate_fen_per_m2"),
        ({"funds_fee_bill": {"account": A, "period": "11/2026", "flat_fen": 100,
                             "households": [{"building": BUILDING, "room": "1"}]}},
         ADMIN, "invalid", "period"),
        ({"funds_fee_bill": {"account": A, "period": "2026-11", "flat_fen": 100,
                             "households": [{"building": BUILDING, "room": "1"},
                                            {"building": OTHER + "001", "room": "1"}]}},
         ADMIN, "invalid", "households[1].building"),
        ({"funds_fee_bill": {"account": A, "period": "2026-11", "rate_fen_per_m2": 120,
                             "households": [{"building": BUILDING, "room": "1"}]}},
         ADMIN, "invalid", "households[0].floor_area_centi_m2"),
        ({"funds_fee_pay": {"account": A, "period": "2026-11", "building": BUILDING, "room": "1",
                            "amount": 10, "receipt": "F-1"}}, ADMIN, "not_found", "room"),
        ({"funds_asset_register": {"account": A, "name": "活动室", "kind": "unspecified",
                                   "location": "1号楼", "area_centi_m2": 100}}, ADMIN, "invalid",
         "kind"),
        ({"funds_asset_register": {"account": A, "name": "活动室", "kind": 1,
                                   "location": "1号楼", "area_centi_m2": 0}}, ADMIN, "invalid",
         "area_centi_m2"),
        ({"funds_asset_step": {"account": A, "asset_id": 7, "step": "department_count"}}, ADMIN,
         "not_found", "asset_id"),
        ({"funds_rent_post": {"account": A}}, RESIDENT, "forbidden", None),
    ]
    for body, actor, status, field in cases:
        r = f.call(body, actor)
        assert r["status"] == status, (body, r)
        if field is not None:
            assert r["field"] == field, (body, r)
        assert r["message"], r
    # Malformed input never reaches a handler as something else.
    rc, r = stack.call("funds", {"request_id": "c-1", "continuation": {"kind": "secret", "key": "x"}})
    assert r["status"] == "invalid"
    acct = f.account()
    assert (acct["balance"], acct["held"], acct["entries"]) == (10000, 0, 1)
    assert outbox_last(stack) == last
    assert f.verify()["ok"]


def test_reversal_and_monthly_statement(stack):
    """Corrections are new reversing entries; the monthly statement, by the local
    calendar, adds up (opening + revenue - withdrawals = closing) and the next
    month opens where the last closed."""
    f = start(stack, fake_clock=TZ_NOV + 23 * 3600 * 1000)  # 2026-11-30 23:00 Beijing
    f.open()
    f.deposit(10000, "N-1", category="property_fee")
    f.deposit(2000, "N-2", category="parking_fee")
    wid = f.request(3000)["funds_withdrawal"]["id"]
    f.approve(wid, LI, SECRET_A)
    f.approve(wid, WANG, SECRET_B)
    r = f.ok({"funds_reverse": {"account": A, "seq": 2, "reason": "重复录入"}}, LI)
    e = r["funds_entry"]
    assert e["kind"] == "reversal" and e["reverses"] == 2 and e["amount"] == 2000
    assert e["debit"] == "revenue:parking_fee" and e["credit"] == "cash"
    assert f.call({"funds_reverse": {"account": A, "seq": 2, "reason": "again"}}, LI)["status"] == \
        "conflict"
    assert f.call({"funds_reverse": {"account": A, "seq": 4, "reason": "no"}}, LI)["status"] == \
        "conflict"  # a reversal is not reversed
    f.ok({"clock_advance": {"delta_ms": 3600 * 1000}})  # 2026-12-01 00:00 Beijing: December
    f.deposit(500, "D-1", category="advertising_rent")
    r = f.ok({"funds_reverse": {"account": A, "seq": 3, "reason": "退款"}}, LI)  # money back
    assert r["funds_entry"]["debit"] == "cash"
    nov = f.ok({"funds_statement_get": {"account": A, "month": "2026-11"}})["funds_statement"]
    dec = f.ok({"funds_statement_get": {"account": A, "month": "2026-12"}})["funds_statement"]
    jan = f.ok({"funds_statement_get": {"account": A, "month": "2027-01"}})["funds_statement"]
    for st in (nov, dec, jan):
        assert st["opening"] + st["revenue_total"] - st["withdrawals_total"] == st["closing"], st
        assert sum(c["amount"] for c in st["revenue"]) == st["revenue_total"]
        assert sum(w["amount"] for w in st["withdrawals"]) == st["withdrawals_total"]
    rev = {c["category"]: c["amount"] for c in nov["revenue"]}
    assert rev["property_fee"] == 10000 and rev["parking_fee"] == 0
    assert nov["withdrawals"] == [{"line": "2-01", "amount": 3000}]
    assert (nov["opening"], nov["closing"]) == (0, 7000)
    assert dec["opening"] == nov["closing"] and dec["closing"] == 7000 + 500 + 3000
    assert dec["withdrawals"] == [{"line": "2-01", "amount": -3000}]
    assert jan["opening"] == jan["closing"] == dec["closing"] and jan["first_seq"] == 0
    assert f.account()["balance"] == dec["closing"] and f.verify()["ok"]
    dec_entries = f.ok({"funds_entries_list": {"account": A, "from": "2026-12-01",
                                               "to": "2027-01-01"}})["funds_entries"]["entries"]
    assert [e["seq"] for e in dec_entries] == [5, 6]
    cats = f.ok({"funds_entries_list": {"account": A, "category": "property_fee"}})
    assert [e["seq"] for e in cats["funds_entries"]["entries"]] == [1]
    out = stack.ctl("funds", "statement", A, "2026-11").stdout
    assert "期末余额" in out and "70.00 元" in out


# ---- tampering --------------------------------------------------------------------

def records(data, needle):
    """Offsets of journal records (magic ZFJ1) whose receipt field is `needle`."""
    found = []
    for m in re.finditer(re.escape(needle), data):
        start = data.rfind(b"ZFJ1", max(0, m.start() - 600), m.start())
        if start < 0:
            continue
        at = start + 81
        ok = True
        for i in range(3):  # account, payer, then the receipt
            if at + 2 > len(data):
                ok = False
                break
            n = int.from_bytes(data[at:at + 2], "big")
            if i == 2:
                ok = n == len(needle) and data[at + 2:at + 2 + n] == needle
            at += 2 + n
        if ok:
            found.append(start)
    return found


def tamper(stack, mutate):
    stack.kill("funds", signal.SIGTERM)
    path = os.path.join(stack.data, "funds", "data.mdb")
    with open(path, "rb") as fh:
        data = bytearray(fh.read())
    changed = mutate(data)
    assert changed > 0
    with open(path, "wb") as fh:
        fh.write(data)
    stack.restart("funds")
    stack.wait_ready("funds")


def test_tampering_is_named(stack):
    """Changing one journal value in the LMDB file (the service stopped, bytes
    found and flipped) is found by verify, which names that entry, through the
    service, zhilictl and HTTP; putting the bytes back makes it whole again."""
    f = start(stack)
    f.open()
    for i in range(1, 21):
        f.deposit(1000 + i, f"TAMPER-{i:04d}")
    assert f.verify()["ok"]

    def amount_of_7(data):
        offs = records(data, b"TAMPER-0007")
        for o in offs:
            data[o + 25 + 7] ^= 0x01  # lowest byte of the amount (1007 fen -> 1006)
        return len(offs)

    tamper(stack, amount_of_7)
    v = f.verify()
    assert not v["ok"] and v["first_bad_seq"] == 7, v
    r = stack.ctl("funds", "verify", A)
    assert r.returncode == 1 and "first_bad_entry=7" in r.stdout, r.stdout
    gw = Gateway(stack)
    token, _ = gw.token("command_center", area="220503")
    resp = requests.get(f"{gw.url}/api/v1/funds/{A}/verify", headers=Gateway.auth(token), timeout=10)
    assert resp.status_code == 200 and resp.json()["first_bad_seq"] == 7, resp.text
    tamper(stack, amount_of_7)  # flip back
    assert f.verify()["ok"]

    def receipt_of_3(data):
        offs = records(data, b"TAMPER-0003")
        for o in offs:
            at = data.index(b"TAMPER-0003", o)
            data[at + 10] = ord("9")
        return len(offs)

    tamper(stack, receipt_of_3)
    v = f.verify()
    assert not v["ok"] and v["first_bad_seq"] == 3 and "changed" in v["problem"], v


# ---- fees and assets ---------------------------------------------------------------

def test_fees_collection_rate_and_arrears(stack):
    """Households are billed per m² or flat, payments are 物业费 deposits, the
    collection rate counts households paid in full, the arrears list names the
    rest, and the events carry the period's totals for reporting."""
    f = start(stack)
    f.open()
    hh = [{"building": BUILDING, "room": f"1-{i}01", "floor_area_centi_m2": 8953 + i}
          for i in range(4)]
    r = f.ok({"funds_fee_bill": {"account": A, "period": "2026-11", "rate_fen_per_m2": 120,
                                 "households": hh}}, PROPERTY)
    assert r["funds_fee_bill"]["billed"] == 4 and r["funds_fee_bill"]["households_billed"] == 4
    again = f.call({"funds_fee_bill": {"account": A, "period": "2026-11", "rate_fen_per_m2": 120,
                                       "households": hh[:1]}}, PROPERTY)
    assert again["status"] == "conflict"
    f.ok({"funds_fee_bill": {"account": A, "period": "2026", "flat_fen": 36000,
                             "households": hh[:2]}}, PROPERTY)
    amount0 = (120 * 8953 + 50) // 100
    pay = {"account": A, "period": "2026-11", "building": BUILDING}
    r = f.ok({"funds_fee_pay": dict(pay, room="1-001", amount=amount0, receipt="F-1")}, PROPERTY)
    assert r["funds_fee_bill_view"]["paid"] == amount0 and r["funds_fee_bill_view"]["paid_ms"] > 0
    r = f.call({"funds_fee_pay": dict(pay, room="1-001", amount=1, receipt="F-2")}, PROPERTY)
    assert r["status"] == "conflict"  # already paid
    r = f.call({"funds_fee_pay": dict(pay, room="1-101", amount=10**6, receipt="F-3")}, PROPERTY)
    assert r["status"] == "invalid" and r["field"] == "amount"
    f.ok({"funds_fee_pay": dict(pay, room="1-101", amount=5000, receipt="F-4")}, PROPERTY)
    r = f.call({"funds_fee_pay": dict(pay, room="1-101", amount=1, receipt="F-4")}, PROPERTY)
    assert r["status"] == "conflict" and r["field"] == "receipt"
    s = f.ok({"funds_fee_summary_get": {"account": A, "period": "2026-11"}}, RESIDENT)
    s = s["funds_fee_summary"]
    assert (s["households_billed"], s["households_paid"], s["rate_permille"]) == (4, 1, 250)
    assert s["amount_paid"] == amount0 + 5000
    arrears = f.ok({"funds_arrears_list": {"account": A, "period": "2026-11"}}, LI)
    rows = arrears["funds_arrears"]["households"]
    assert [h["room"] for h in rows] == ["1-101", "1-201", "1-301"]
    page = f.ok({"funds_arrears_list": {"account": A, "period": "2026-11", "limit": 2}}, LI)
    page2 = f.ok({"funds_arrears_list": {"account": A, "period": "2026-11", "limit": 2,
                                         "after": page["funds_arrears"]["next_after"]}}, LI)
    assert [h["room"] for h in page2["funds_arrears"]["households"]] == ["1-301"]
    assert f.call({"funds_arrears_list": {"account": A, "period": "2026-11"}},
                  RESIDENT)["status"] == "forbidden"
    acct = f.account()
    assert acct["balance"] == amount0 + 5000 and acct["entries"] == 2
    out = stack.ctl("replay", "funds", "--from", "1").stdout
    paid = [json.loads(line) for line in out.splitlines() if '"fee_paid"' in line]
    assert paid and paid[-1]["funds_fee"]["households_billed"] == 4 and \
        paid[-1]["funds_fee"]["households_paid"] == 1
    deposited = [json.loads(line) for line in out.splitlines() if '"deposited"' in line]
    assert all(d["funds_entry"]["payer"] == "" for d in deposited)  # households stay private


def test_assets_inventory_lease_and_rent(stack):
    """两房一共: an asset goes through 部门盘点 → 物业提报 → 现场核验 → 群众审议 in
    order, each step by its own roles with who and when; only then can it be
    leased; its rent is posted as 场地租金 for the current month at once and on
    the 1st of every later month, once."""
    f = start(stack, fake_clock=TZ_NOV)
    f.open()
    r = f.ok({"funds_asset_register": {"account": A, "name": "闲置车棚", "kind":
                                       "public_revenue_site", "location": "3号楼北侧",
                                       "area_centi_m2": 12000}}, PROPERTY)
    aid = r["funds_asset"]["id"]
    assert r["funds_asset"]["status"] == "idle"
    step = lambda s, actor: f.call({"funds_asset_step": {"account": A, "asset_id": aid, "step": s,
                                                         "note": "ok"}}, actor)
    lease = {"funds_asset_lease": {"account": A, "asset_id": aid, "operator": "某旧物驿站",
                                   "monthly_rent": 80000, "start_month": "2026-11"}}
    assert step("property_report", PROPERTY)["status"] == "conflict"
    assert step("department_count", PROPERTY)["status"] == "forbidden"
    assert step("department_count", STAFF)["status"] == "ok"
    assert step("department_count", STAFF)["status"] == "conflict"
    assert step("property_report", PROPERTY)["status"] == "ok"
    assert f.call(lease, LI)["status"] == "conflict"  # not through the four steps
    assert step("public_review", LI)["status"] == "conflict"
    assert step("site_verify", WANG)["status"] == "ok"
    r = step("public_review", PARTY)
    assert r["status"] == "ok"
    inv = r["funds_asset"]["inventory"]
    assert [i["step"] for i in inv] == ["department_count", "property_report", "site_verify",
                                        "public_review"]
    assert [i["by"] for i in inv] == ["staff-1", "prop-1", "wang", "pb-1"]
    assert all(i["ts_ms"] > 0 for i in inv)
    assert f.call(lease, PROPERTY)["status"] == "forbidden"
    r = f.ok(lease, LI)
    assert r["funds_asset"]["status"] == "in_use"
    assert f.account()["balance"] == 80000  # November's rent, posted at once
    assert f.ok({"funds_rent_post": {"account": A}})["funds_rent"]["posted"] == 0
    f.ok({"clock_advance": {"delta_ms": 2 * 24 * 3600 * 1000}})  # into December
    wait_for(lambda: f.account()["balance"] == 160000, what="December's rent")
    assert f.ok({"funds_rent_post": {"account": A}})["funds_rent"]["posted"] == 0
    entries = f.ok({"funds_entries_list": {"account": A, "category": "venue_rent"}},
                   RESIDENT)["funds_entries"]["entries"]
    assert [e["payer"] for e in entries] == ["某旧物驿站", "某旧物驿站"]  # an organisation
    assert f.call(lease, LI)["status"] == "conflict"  # already leased
    r = f.ok({"funds_asset_lease_end": {"account": A, "asset_id": aid, "reason": "到期"}}, LI)
    assert r["funds_asset"]["status"] == "idle"
    listed = f.ok({"funds_assets_list": {"account": A}}, RESIDENT)["funds_assets"]["assets"]
    assert len(listed) == 1 and listed[0]["lease"]["ended"]
    # A new round of 清底 starts with 部门盘点 again.
    assert step("department_count", STAFF)["funds_asset"]["round"] == 2


# ---- the invariants under a random sequence ----------------------------------------

def test_random_sequence_keeps_the_invariants(stack):
    """Thousands of random operations (deposits with repeated receipts, requests,
    right and wrong approvals, rejects, voids, reversals) through one pipe: the
    balance always equals the sum of the entries, available is never negative,
    no posted withdrawal lacks two distinct approvals, receipts stay unique."""
    f = start(stack, lines=f"{A}:2026:2-01:100000000,{A}:2026:3-01:3000000")
    f.open()
    rng = random.Random(20261126)
    pipe = subprocess.Popen([os.path.join(BIN, "zhilictl"), "funds", "pipe", "--timeout", "10000"],
                            env=stack.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, bufsize=1)

    def send(body, actor):
        cmd = dict(body)
        cmd["actor"] = actor
        pipe.stdin.write(json.dumps(cmd, ensure_ascii=False) + "\n")
        pipe.stdin.flush()
        return json.loads(pipe.stdout.readline())

    try:
        receipts, pending, posted_ids = [], [], set()
        ok_deposits = ok_posted = ok_reversed = 0
        counts = {}
        for i in range(4000):
            op = rng.random()
            if op < 0.45:
                receipt = rng.choice(receipts) if receipts and rng.random() < 0.1 else f"R-{i}"
                r = send({"funds_deposit": {"account": A, "category": rng.choice(
                    ["property_fee", "parking_fee", "advertising_rent", "venue_rent", "other"]),
                    "amount": rng.randint(1, 200000), "payer": "住户", "receipt": receipt}},
                    rng.choice([ADMIN, PROPERTY, LI]))
                assert r["status"] == ("conflict" if receipt in receipts else "ok"), r
                if r["status"] == "ok":
                    receipts.append(receipt)
                    ok_deposits += 1
            elif op < 0.65:
                r = send({"funds_withdrawal_request": {
                    "account": A, "amount": rng.randint(1, 300000), "payee": "某公司",
                    "payee_kind": "organisation", "purpose": "维修", "line": rng.choice(["2-01", "3-01"])}},
                    PROPERTY)
                assert r["status"] in ("ok", "conflict"), r
                if r["status"] == "ok":
                    pending.append(r["funds_withdrawal"]["id"])
            elif op < 0.9 and pending:
                wid = rng.choice(pending)
                who, secret = rng.choice([(LI, SECRET_A), (WANG, SECRET_B)])
                if rng.random() < 0.08:
                    secret = "wrong-secret"
                r = send({"funds_withdrawal_approve": {"account": A, "withdrawal_id": wid,
                                                       "secret": secret}}, who)
                assert r["status"] in ("ok", "forbidden", "conflict"), r
                if r["status"] == "forbidden" and "locked" in r["message"]:
                    for actor in (WANG, ADMIN):
                        send({"funds_credential_reset": {"account": A, "credential":
                              "holder_a" if who is LI else "holder_b"}}, actor)
                if r["status"] == "ok" and r["funds_withdrawal"]["state"] == "posted":
                    pending.remove(wid)
                    posted_ids.add(wid)
                    ok_posted += 1
            elif op < 0.95 and pending:
                wid = rng.choice(pending)
                if rng.random() < 0.5:
                    r = send({"funds_withdrawal_reject": {"account": A, "withdrawal_id": wid,
                                                          "reason": "不符合预算"}}, WANG)
                else:
                    r = send({"funds_withdrawal_void": {"account": A, "withdrawal_id": wid,
                                                        "reason": "撤回"}}, PROPERTY)
                assert r["status"] == "ok", r
                pending.remove(wid)
            else:
                seq = rng.randint(1, max(1, ok_deposits + ok_posted + ok_reversed))
                r = send({"funds_reverse": {"account": A, "seq": seq, "reason": "更正"}}, ADMIN)
                assert r["status"] in ("ok", "conflict", "not_found"), r
                ok_reversed += r["status"] == "ok"
            counts[r["status"]] = counts.get(r["status"], 0) + 1
            if i % 1000 == 999:
                acct = send({"funds_account_get": {"account": A}}, ADMIN)["funds_account"]
                assert acct["available"] >= 0 and acct["held"] >= 0
                v = send({"funds_verify": {"account": A}}, ADMIN)["funds_verify"]
                assert v["ok"] and v["balance"] == acct["balance"], v
    finally:
        pipe.stdin.close()
        try:
            pipe.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pipe.kill()
    print("random sequence:", ok_deposits, ok_posted, ok_reversed, counts)
    assert ok_deposits > 1000 and ok_posted > 100, (ok_deposits, ok_posted, counts)
    # The whole journal: balances and receipts.
    entries, after = [], 0
    while True:
        page = f.ok({"funds_entries_list": {"account": A, "after_seq": after, "limit": 1000}})
        entries += page["funds_entries"]["entries"]
        after = page["funds_entries"]["next_after_seq"]
        if after == 0:
            break
    running = 0
    for e in entries:
        if e["kind"] == "deposit" or (e["kind"] == "reversal" and e["debit"] == "cash"):
            running += e["amount"]
        else:
            running -= e["amount"]
        assert e["balance"] == running and running >= 0
    acct = f.account()
    assert acct["balance"] == running and acct["entries"] == len(entries)
    got = [e["receipt"] for e in entries if e["receipt"]]
    assert len(got) == len(set(got))
    # Every posted withdrawal has two approvals by the two holders, two people.
    ws, after = [], 0
    while True:
        page = f.ok({"funds_withdrawals_list": {"account": A, "after": after, "limit": 1000}})
        ws += page["funds_withdrawals"]["withdrawals"]
        after = page["funds_withdrawals"]["next_after"]
        if after == 0:
            break
    posted = [w for w in ws if w["state"] == "posted"]
    assert {w["id"] for w in posted} == posted_ids
    for w in posted:
        assert len(w["approvals"]) == 2
        assert {a["holder"] for a in w["approvals"]} == {"holder_a", "holder_b"}
        assert len({a["actor"] for a in w["approvals"]}) == 2
    # A refused line check is settled by the service's next tick (docs/funds.md):
    # on a busy machine that can trail the last reply, so let the holds settle.
    def holds():
        ws2, after2 = [], 0
        while True:
            page2 = f.ok({"funds_withdrawals_list": {"account": A, "after": after2, "limit": 1000}})
            ws2 += page2["funds_withdrawals"]["withdrawals"]
            after2 = page2["funds_withdrawals"]["next_after"]
            if after2 == 0:
                break
        return sum(w["amount"] for w in ws2 if w["state"] in ("pending", "reserving")), f.account()

    end = time.time() + 15
    held, acct = holds()
    while acct["held"] != held and time.time() < end:
        time.sleep(0.5)
        held, acct = holds()
    assert acct["held"] == held and acct["available"] == acct["balance"] - held >= 0
    assert f.verify()["ok"]


def test_kill9_during_deposits(stack):
    """SIGKILL of the service while deposits stream in: every acknowledged deposit
    is in the journal exactly once (resends under the same request_id get the
    stored answer), and the chain verifies after the restart."""
    f = start(stack)
    f.open()
    lines = [json.dumps({"request_id": f"k9-{i}", "actor": PROPERTY, "funds_deposit": {
        "account": A, "category": "property_fee", "amount": 100 + i, "payer": "住户",
        "receipt": f"K-{i}"}}) for i in range(1500)]
    path = os.path.join(stack.dir, "deposits.jsonl")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    out_path = os.path.join(stack.dir, "replies.jsonl")
    with open(path) as src, open(out_path, "w") as dst:
        pipe = subprocess.Popen([os.path.join(BIN, "zhilictl"), "funds", "pipe", "--timeout",
                                 "20000"], env=stack.env, stdin=src, stdout=dst)
        try:
            wait_for(lambda: f.account()["entries"] >= 300, what="deposits under way")
            stack.kill("funds", signal.SIGKILL)
            time.sleep(0.3)
            stack.restart("funds")
            pipe.wait(timeout=120)
        finally:
            if pipe.poll() is None:
                pipe.kill()
                pipe.wait()
    with open(out_path) as fh:
        replies = [json.loads(line) for line in fh]
    assert len(replies) == 1500 and all(r["status"] == "ok" for r in replies), \
        [r for r in replies if r["status"] != "ok"][:3]
    assert sorted(r["funds_entry"]["seq"] for r in replies) == list(range(1, 1501))
    acct = f.account()
    assert acct["entries"] == 1500 and acct["balance"] == sum(100 + i for i in range(1500))
    assert f.verify()["ok"]


# ---- over HTTP ------------------------------------------------------------------------

def test_http_routes(stack):
    """Through the gateway: holders are the people behind their tokens, a
    resident sees the public view, an approval needs the holder's token and
    secret, and a compound outside the token's area is refused."""
    f = start(stack)
    gw = Gateway(stack)
    staff, _ = gw.token("staff", area="220503001", name="街道")
    li, li_id = gw.token("committee", area=A, name="李主任")
    wang, wang_id = gw.token("supervisor", area=A, name="王监察")
    prop, _ = gw.token("property", area=A, name="物业")
    res, _ = gw.token("resident", area=A, name="居民")
    other, _ = gw.token("committee", area=OTHER, name="隔壁")
    url = f"{gw.url}/api/v1/funds/{A}"

    def h(tok, key=None):
        d = Gateway.auth(tok)
        if key:
            d["Idempotency-Key"] = key
        return d

    r = requests.post(url, json={"name": "幸福里", "holder_a": {"id": li_id, "name": "李主任"},
                                 "holder_b": {"id": wang_id, "name": "王监察"}},
                      headers=h(staff), timeout=10)
    assert r.status_code == 201, r.text
    for tok, cred, secret in ((li, "holder_a", SECRET_A), (wang, "holder_b", SECRET_B)):
        r = requests.put(f"{url}/credentials/{cred}", json={"secret": secret}, headers=h(tok),
                         timeout=10)
        assert r.status_code == 200, r.text
    r = requests.post(f"{url}/deposits", json={"category": "parking_fee", "amount": 9000,
                                               "payer": "张三", "receipt": "H-1"},
                      headers=h(prop, "dep-h1"), timeout=10)
    assert r.status_code == 201 and r.json()["seq"] == 1, r.text
    r2 = requests.post(f"{url}/deposits", json={"category": "parking_fee", "amount": 9000,
                                                "payer": "张三", "receipt": "H-1"},
                       headers=h(prop, "dep-h1"), timeout=10)
    assert r2.json() == r.json()
    r = requests.post(f"{url}/deposits", json={"category": "parking_fee", "amount": 0,
                                               "payer": "张三", "receipt": "H-2"},
                      headers=h(prop), timeout=10)
    assert r.status_code == 400 and r.json()["error"]["field"] == "amount"
    r = requests.post(f"{url}/withdrawals", json={"amount": 4000, "payee": "某物业公司",
                                                  "payee_kind": "organisation",
                                                  "purpose": "电梯维保", "line": "2-01"},
                      headers=h(prop), timeout=10)
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    r = requests.post(f"{url}/withdrawals/{wid}/approve", json={"secret": "bad-bad"},
                      headers=h(li), timeout=10)
    assert r.status_code == 403
    r = requests.post(f"{url}/withdrawals/{wid}/approve", json={"secret": SECRET_A},
                      headers=h(li), timeout=10)
    assert r.status_code == 200 and r.json()["state"] == "pending"
    r = requests.post(f"{url}/withdrawals/{wid}/approve", json={"secret": SECRET_B},
                      headers=h(wang), timeout=10)
    assert r.status_code == 200 and r.json()["state"] == "posted", r.text
    r = requests.get(f"{url}/entries", headers=h(res), timeout=10)
    assert r.status_code == 200 and r.json()["public_view"]
    assert [e["payer"] for e in r.json()["entries"]] == ["", ""]
    assert r.json()["entries"][1]["payee"] == "某物业公司"
    month = time.strftime("%Y-%m", time.gmtime(time.time() + 8 * 3600))
    r = requests.get(f"{url}/statements/{month}", headers=h(res), timeout=10)
    assert r.status_code == 200 and r.json()["closing"] == 5000
    r = requests.get(f"{url}/verify", headers=h(li), timeout=10)
    assert r.status_code == 200 and r.json()["ok"]
    assert requests.get(f"{url}/verify", headers=h(res), timeout=10).status_code == 403
    assert requests.get(url, headers=h(other), timeout=10).status_code == 403
    r = requests.get(url, headers=h(li), timeout=10)
    assert r.json()["balance"] == 5000 and not r.json()["public_view"]
