"""The petitions service end to end (docs/petitions.md): a real broker,
zhili-petitions (with the fake clock) and zhili-gateway on loopback, driven
over HTTP as the 12345 hotline, grid members, staff, the command center and
residents would, plus zhilictl for tokens, the clock and the outbox. When a
zhili-grid binary is in ZHILI_BIN, the routing read model is checked against
the real grid service too; otherwise those cases are skipped.

One stack serves the module (it takes a second to start); each test states
the property it checks and uses its own tickets and areas."""
import json
import os
import signal
import time
import xml.etree.ElementTree as ET

import pytest
import requests

from zhili_stack import BIN, Gateway, Stack

DISTRICT = "220503"
STREET = "220503001"
COMMUNITY = "220503001001"
GRID = "220503001001002"
BUILDING = "220503001001002003"
# The fake clock starts three days back (on a whole minute), so that the tests'
# advances (about a day) stay in the past of the wall clock Open311's default
# 90-day window is measured against.
START_MS = (int(time.time() * 1000) - 3 * 24 * 3600 * 1000) // 60000 * 60000
MIN = 60 * 1000
HOUR = 60 * MIN
DAY = 24 * HOUR


class Env:
    def __init__(self, stack, gw):
        self.stack = stack
        self.gw = gw
        self.tokens = {}
        self.ids = {}

    def token(self, name, role, area):
        tok, tid = self.gw.token(role, area, name=name)
        self.tokens[name] = tok
        self.ids[name] = tid

    def req(self, method, path, who=None, body=None, key=None, raw=None, headers=None):
        h = dict(headers or {})
        if who:
            h["Authorization"] = "Bearer " + self.tokens[who]
        if key:
            h["Idempotency-Key"] = key
        if raw is not None:
            h.setdefault("Content-Type", "application/json")
            return requests.request(method, self.gw.url + path, data=raw, headers=h, timeout=10)
        return requests.request(method, self.gw.url + path, json=body, headers=h, timeout=10)

    def call(self, cmd):
        rc, reply = self.stack.call("petitions", cmd)
        assert reply is not None, cmd
        return reply

    def now(self):
        return self.call({"clock_advance": {"delta_ms": 0}})["clock"]["now_ms"]

    def advance(self, ms):
        return self.call({"clock_advance": {"delta_ms": ms}})["clock"]["now_ms"]

    def events(self):
        r = self.stack.ctl("replay", "petitions", "--from", "1", timeout=30)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def stats(self):
        return self.stack.stats("petitions")


def petition(ticket_area=BUILDING, category="noise", urgency="normal", **extra):
    body = {"category": category, "urgency": urgency, "content": "楼上夜间装修噪音",
            "area": ticket_area, "address": "二道江区幸福家园3号楼2单元",
            "citizen": {"name": "张女士", "phone": "13812341234"}, "channel": "hotline"}
    body.update(extra)
    return body


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    stack = Stack(tmp=str(tmp_path_factory.mktemp("petitions")))
    stack.broker()
    stack.start("petitions", "zhili-petitions", ZHILI_FAKE_CLOCK="1",
                ZHILI_FAKE_CLOCK_START_MS=str(START_MS))
    gw = Gateway(stack, ZHILI_QR_RATE_ADDRESS="100000/60", ZHILI_QR_RATE_CODE="100000/60",
                 ZHILI_OPEN311_JURISDICTION=DISTRICT)
    stack.wait_ready("petitions")
    e = Env(stack, gw)
    e.token("hotline", "hotline", DISTRICT)
    e.token("hotline2", "hotline", DISTRICT)
    e.token("grid", "grid_member", GRID)               # a grid inside the community
    e.token("other_grid", "grid_member", "220503001002001")
    e.token("community", "staff", COMMUNITY)
    e.token("street", "staff", STREET)
    e.token("center", "command_center", DISTRICT)
    e.token("police", "police", COMMUNITY)
    e.token("resident", "resident", GRID)
    e.token("admin", "admin", "")
    yield e
    stack.stop()


def push(env, ticket, who="hotline", **kw):
    r = env.req("POST", "/api/v1/petitions", who, petition(**kw), key=ticket)
    assert r.status_code == 201, r.text
    return r.json()


def act(env, pid, action, who, body=None):
    return env.req("POST", f"/api/v1/petitions/{pid}/{action}", who, body or {})


def wait_for(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


# ---- the hotline's contract --------------------------------------------------

def test_hotline_push_contract_and_resend(env):
    """DESIGN §5: 201 with id, state, assigned_to and RFC 3339 +08:00 deadlines;
    the ticket id is the request_id, so a resend returns the same petition."""
    before = env.stats()[("petitions_received_total", "")]
    now = env.now()
    p = push(env, "12345-20261126-000183", category="noise", urgency="normal")
    assert p["state"] == "assigned"
    assert p["assigned_to"] == COMMUNITY          # no grid units known: the community
    assert p["routing"] == "fallback_community"
    assert p["sign_deadline"].endswith("+08:00") and p["reply_deadline"].endswith("+08:00")
    assert p["category"] == "noise" and p["category_name"] == "噪音扰民"
    assert p["citizen"]["phone"] == "13812341234"  # the hotline that pushed it needs it
    again = push(env, "12345-20261126-000183", category="parking")
    assert again["id"] == p["id"] and again["category"] == "noise"
    assert env.stats()[("petitions_received_total", "")] == before + 1
    g = env.req("GET", f"/api/v1/petitions/{p['id']}", "hotline").json()
    assert g["state"] == "assigned" and g["id"] == p["id"]
    # deadlines from the assignment: 2 h to sign, 7 days to reply (fake clock)
    import datetime
    sign = datetime.datetime.fromisoformat(g["sign_deadline"]).timestamp() * 1000
    reply = datetime.datetime.fromisoformat(g["reply_deadline"]).timestamp() * 1000
    assert abs(sign - (now + 2 * HOUR)) < 5 * MIN
    assert abs(reply - (now + 7 * DAY)) < 5 * MIN
    crit = push(env, "12345-crit-1", urgency="critical")
    s = datetime.datetime.fromisoformat(crit["sign_deadline"]).timestamp() * 1000
    r = datetime.datetime.fromisoformat(crit["reply_deadline"]).timestamp() * 1000
    assert r - s == 2 * HOUR - 30 * MIN


def test_whole_loop(env):
    """received → assigned → signed → in_progress → replied → evaluated →
    archived over HTTP, each step by the role that does it, with events
    complete enough for the reporting formulas."""
    p = push(env, "loop-1")
    pid = p["id"]
    steps = [("sign", "grid", {}, "signed"),
             ("progress", "grid", {"note": "已上门了解情况"}, "in_progress"),
             ("progress", "community", {"note": "已约谈装修住户"}, "in_progress"),
             ("reply", "grid", {"text": "已协调住户，夜间停止施工"}, "replied"),
             ("evaluate", "hotline", {"solved": True, "satisfaction": "satisfied"}, "evaluated"),
             ("archive", "center", {"note": "归档"}, "archived")]
    for action, who, body, state in steps:
        r = act(env, pid, action, who, body)
        assert r.status_code == 200, (action, r.text)
        assert r.json()["state"] == state
    final = env.req("GET", f"/api/v1/petitions/{pid}", "center").json()
    assert final["reply"] == "已协调住户，夜间停止施工"
    assert final["satisfaction"] == "satisfied" and final["solved"] is True
    assert [n["kind"] for n in final["notes"]] == ["progress", "progress", "archive"]
    evs = [e for e in env.events() if e["petition_change"]["id"] == pid]
    types = [e["type"] for e in evs]
    assert types == ["received", "assigned", "signed", "progress", "progress", "replied",
                     "evaluated", "archived"]
    for e in evs:
        assert e["area"] == BUILDING and e["petition_change"]["category"] == "noise"
    by = {e["type"]: e["petition_change"] for e in evs}
    assert by["signed"]["on_time"] is True and by["replied"]["on_time"] is True
    assert by["evaluated"]["solved"] is True and by["evaluated"]["satisfaction"] == "satisfied"
    assert by["received"]["citizen"]["phone"] == "138****1234"


ACTIONS = {
    "assign": ("center", {"unit": GRID}),
    "sign": ("grid", {}),
    "progress": ("grid", {"note": "进展"}),
    "reply": ("grid", {"text": "答复"}),
    "evaluate": ("hotline", {"solved": True, "satisfaction": "satisfied"}),
    "archive": ("center", {}),
    "return": ("grid", {"reason": "not_our_duty"}),
    "merge": ("center", {"into": None}),
    "urge": ("center", {"note": "请加快办理"}),
    "extend": ("center", {"note": "情况复杂"}),
}
ALLOWED = {
    "assign": {"received", "returned", "assigned"},
    "sign": {"assigned", "reopened"},
    "progress": {"signed", "in_progress"},
    "reply": {"signed", "in_progress"},
    "evaluate": {"replied"},
    "archive": {"evaluated"},
    "return": {"assigned", "signed"},
    "merge": {"received", "assigned", "signed", "in_progress", "returned", "reopened"},
    "urge": {"assigned", "signed", "in_progress", "reopened"},
    "extend": {"signed", "in_progress"},
}
PATHS = {
    "assigned": [],
    "signed": ["sign"],
    "in_progress": ["sign", "progress"],
    "replied": ["sign", "reply"],
    "evaluated": ["sign", "reply", "evaluate"],
    "archived": ["sign", "reply", "evaluate", "archive"],
    "returned": ["return"],
    "reopened": ["sign", "reply", "evaluate_bad"],
}


def reach(env, state, ticket):
    pid = push(env, ticket)["id"]
    for step in PATHS[state]:
        if step == "evaluate_bad":
            r = act(env, pid, "evaluate", "hotline", {"solved": False, "satisfaction": "dissatisfied"})
        else:
            who, body = ACTIONS[step]
            r = act(env, pid, step, who, body)
        assert r.status_code == 200, (state, step, r.text)
    assert env.req("GET", f"/api/v1/petitions/{pid}", "center").json()["state"] == state
    return pid


def test_every_invalid_transition_is_409_naming_the_state(env):
    """Every action the current state does not allow answers 409 naming the
    state, and changes nothing."""
    primary = push(env, "inv-primary")["id"]
    refused = 0
    for state in PATHS:
        pid = reach(env, state, f"inv-{state}")
        for action, (who, body) in ACTIONS.items():
            if action in ALLOWED and state in ALLOWED[action]:
                continue
            b = dict(body)
            if action == "merge":
                b["into"] = primary
            r = act(env, pid, action, who, b)
            assert r.status_code == 409, (state, action, r.text)
            err = r.json()["error"]
            assert err["status"] == "conflict" and state in err["message"], err
            refused += 1
        assert env.req("GET", f"/api/v1/petitions/{pid}", "center").json()["state"] == state
    assert refused >= 50


def test_authorization(env):
    """Only the assigned unit signs; a hotline token reads only what it pushed;
    the phone is masked for everyone who does not need it."""
    pid = push(env, "auth-1")["id"]
    for who in ("other_grid", "street", "center", "admin", "police", "hotline"):
        r = act(env, pid, "sign", who)
        assert r.status_code == 403, (who, r.text)
    assert env.req("GET", f"/api/v1/petitions/{pid}", "hotline2").status_code == 403
    mine = env.req("GET", "/api/v1/petitions?limit=1000", "hotline2").json()["petitions"]
    assert all(p["id"] != pid for p in mine)
    assert env.req("GET", f"/api/v1/petitions/{pid}", "center").json()["citizen"]["phone"] == \
        "138****1234"
    assert env.req("GET", f"/api/v1/petitions/{pid}", "grid").json()["citizen"]["phone"] == \
        "13812341234"
    assert env.req("GET", f"/api/v1/petitions/{pid}", "other_grid").status_code == 403
    assert env.req("GET", f"/api/v1/petitions/{pid}", "resident").status_code == 403
    assert env.req("GET", f"/api/v1/petitions/{pid}").status_code == 401
    assert env.req("POST", "/api/v1/petitions", "resident", petition()).status_code == 403
    r = act(env, pid, "evaluate", "hotline2", {"solved": True, "satisfaction": "satisfied"})
    assert r.status_code == 403
    assert act(env, pid, "sign", "grid").status_code == 200
    assert act(env, pid, "sign", "community").status_code == 409


def test_returned_reroute_reopen_and_merge(env):
    """退单 goes back to the supervising level with a reason, counted per unit;
    不满意 reopens (重办), counted; a duplicate merges into its primary."""
    pid = push(env, "ret-1")["id"]
    r = act(env, pid, "return", "grid", {"reason": "not_our_duty", "note": "属物业职责"})
    assert r.status_code == 200 and r.json()["state"] == "returned"
    assert r.json()["assigned_to"] == STREET
    assert act(env, pid, "return", "grid", {"reason": "bogus"}).status_code == 409
    counts = env.req("GET", f"/api/v1/petitions/units/{COMMUNITY}/counts", "center").json()
    assert counts["returns"] >= 1
    r = act(env, pid, "assign", "street", {"unit": GRID})
    assert r.status_code == 200 and r.json()["assigned_to"] == GRID
    for step, who, body in [("sign", "grid", {}), ("reply", "grid", {"text": "已处理"}),
                            ("evaluate", "hotline", {"solved": False, "satisfaction": "dissatisfied"})]:
        assert act(env, pid, step, who, body).status_code == 200
    got = env.req("GET", f"/api/v1/petitions/{pid}", "center").json()
    assert got["state"] == "reopened" and got["reopens"] == 1
    dup = push(env, "ret-dup")["id"]
    r = act(env, dup, "merge", "center", {"into": pid})
    assert r.status_code == 200 and r.json()["merged_into"] == pid
    assert env.req("GET", f"/api/v1/petitions/{pid}", "center").json()["duplicates"] == [dup]


def test_deadlines_escalate_once_with_the_fake_clock(env):
    """An overdue sign or reply is escalated once per breach, never before the
    deadline; an extension is granted only before the deadline."""
    p = push(env, "due-1", urgency="urgent")              # sign 30 min, reply 24 h
    pid = p["id"]

    def escalations(kind):
        return [e for e in env.events() if e["type"] == kind and e["petition_change"]["id"] == pid]

    env.advance(30 * MIN - 1000)
    time.sleep(0.5)
    assert escalations("overdue_sign") == []
    env.advance(2000)
    assert wait_for(lambda: escalations("overdue_sign"))
    env.advance(MIN)
    env.advance(MIN)
    time.sleep(0.6)
    ev = escalations("overdue_sign")
    assert len(ev) == 1
    assert ev[0]["petition_change"]["escalated_to"] == DISTRICT
    assert env.req("GET", f"/api/v1/petitions/{pid}", "center").json()["sign_overdue"] is True
    overdue = env.req("GET", "/api/v1/petitions?overdue=true&limit=1000", "center").json()
    assert pid in [x["id"] for x in overdue["petitions"]]
    assert act(env, pid, "sign", "grid").status_code == 200
    assert act(env, pid, "urge", "center", {"note": "催办"}).status_code == 200
    env.advance(24 * HOUR)
    assert wait_for(lambda: escalations("overdue_reply"))
    r = act(env, pid, "extend", "center", {})
    assert r.status_code == 409 and "before the deadline" in r.json()["error"]["message"]
    time.sleep(0.4)
    assert len(escalations("overdue_reply")) == 1
    assert len(escalations("overdue_sign")) == 1
    # an extension approved in time moves the reply deadline to 15 days
    q = push(env, "due-2")["id"]
    assert act(env, q, "sign", "grid").status_code == 200
    r = act(env, q, "extend", "center", {"note": "情况复杂"})
    assert r.status_code == 200 and r.json()["extended"] is True


def test_batch_with_bad_rows(env):
    """A batch of rows: valid ones accepted, invalid ones reported by index,
    no row half-applied; a resend changes nothing."""
    before = env.stats()[("petitions_received_total", "")]
    rows = [petition(ticket="b-1"), petition(category="loud", ticket="b-2"),
            petition(ticket_area="220504001001", ticket="b-3"), petition(ticket="b-1"),
            petition(content="", ticket="b-5"), petition(ticket="b-6", urgency="critical")]
    r = env.req("POST", "/api/v1/petitions/batch", "hotline", {"petitions": rows}, key="batch-1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [a["index"] for a in body["accepted"]] == [0, 3, 5]
    assert body["accepted"][1]["existing"] is True
    assert body["accepted"][0]["petition"]["id"] == body["accepted"][1]["petition"]["id"]
    rej = {x["index"]: x for x in body["rejected"]}
    assert set(rej) == {1, 2, 4}
    assert rej[1]["field"] == "category" and rej[2]["status"] == "forbidden"
    assert rej[4]["field"] == "content"
    assert env.stats()[("petitions_received_total", "")] == before + 2
    again = env.req("POST", "/api/v1/petitions/batch", "hotline", {"petitions": rows}, key="batch-1")
    assert again.json() == body
    assert env.stats()[("petitions_received_total", "")] == before + 2
    bad = [petition(ticket="b-7"), dict(petition(ticket="b-8"), colour="red")]
    assert env.req("POST", "/api/v1/petitions/batch", "hotline", {"petitions": bad}).status_code == 400
    big = [petition(ticket=f"big-{i}") for i in range(1001)]
    r = env.req("POST", "/api/v1/petitions/batch", "hotline", {"petitions": big})
    assert r.status_code == 400 and "1000" in r.json()["error"]["message"]
    assert env.req("POST", "/api/v1/petitions/batch", "hotline", {"petitions": []}).status_code == 400
    assert env.stats()[("petitions_received_total", "")] == before + 2


BAD_FIELDS = [
    ({"category": None}, 400, "category"),
    ({"category": "loud"}, 400, "category"),
    ({"category": 3}, 400, "category"),
    ({"urgency": "asap"}, 400, "urgency"),
    ({"content": ""}, 400, "content"),
    ({"content": "x" * 4001}, 400, "content"),
    ({"content": "a\u0001b"}, 400, "content"),
    ({"area": "22050"}, 403, "area"),          # the gateway: shorter than the token's scope
    ({"area": "2205030010010"}, 400, "area"),
    ({"area": "22050300100100a"}, 400, "area"),
    ({"area": "220504001001"}, 403, "area"),
    ({"address": "第一行\n第二行"}, 400, "address"),
    ({"address": "长" * 101}, 400, "address"),
    ({"citizen": {"name": "张", "phone": "12345"}}, 400, "citizen.phone"),
    ({"citizen": {"name": "张", "phone": "12812341234"}}, 400, "citizen.phone"),
    ({"citizen": {"name": "名" * 30, "phone": ""}}, 400, "citizen.name"),
    ({"citizen": "张女士"}, 400, "citizen"),
    ({"channel": "qr"}, 400, "channel"),
    ({"channel": "fax"}, 400, "channel"),
    ({"media_url": "javascript:alert(1)"}, 400, "media_url"),
    ({"ticket": "a b"}, 400, "ticket"),
    ({"colour": "red"}, 400, "colour"),
    ({"point": {"lat": 120, "long": 10}, "area": ""}, 400, "point"),
    ({"area": "", "address": ""}, 400, "area"),
]


@pytest.mark.parametrize("change,status,field", BAD_FIELDS)
def test_bad_inputs_change_nothing(env, change, status, field):
    """Every bad field gets a clear error naming it, and nothing is filed."""
    before = env.stats()[("petitions_received_total", "")]
    body = petition()
    for k, v in change.items():
        if v is None:
            body.pop(k)
        else:
            body[k] = v
    r = env.req("POST", "/api/v1/petitions", "hotline", body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err.get("field", "").startswith(field) and err["message"], err
    assert env.stats()[("petitions_received_total", "")] == before


def test_bad_requests(env):
    """Malformed bodies, headers and ids are refused with a clear error."""
    assert env.req("POST", "/api/v1/petitions", "hotline", raw="{not json").status_code == 400
    assert env.req("POST", "/api/v1/petitions", "hotline", raw="[1,2]").status_code == 400
    r = env.req("POST", "/api/v1/petitions", "hotline", raw=json.dumps(petition()),
                headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = env.req("POST", "/api/v1/petitions", "hotline", petition(), key="k" * 201)
    assert r.status_code == 400 and r.json()["error"]["field"] == "Idempotency-Key"
    for bad in ("P1", "nope", "P00000000x1"):
        r = env.req("GET", f"/api/v1/petitions/{bad}", "center")
        assert r.status_code == 400 and r.json()["error"]["field"] == "id"
    assert env.req("GET", "/api/v1/petitions/P9999999999", "center").status_code == 404
    r = act(env, "P9999999999", "sign", "grid")
    assert r.status_code == 404
    pid = push(env, "badreq-1")["id"]
    assert act(env, pid, "evaluate", "hotline", {"satisfaction": "satisfied"}).status_code == 409
    assert act(env, pid, "sign", "grid").status_code == 200
    assert act(env, pid, "progress", "grid", {"note": ""}).status_code == 400
    assert act(env, pid, "reply", "grid", {"text": ""}).status_code == 400
    assert act(env, pid, "reply", "grid", {"text": "好"}).status_code == 200
    r = act(env, pid, "evaluate", "hotline", {"satisfaction": "satisfied"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "solved"
    r = act(env, pid, "evaluate", "hotline", {"solved": True, "satisfaction": "great"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "satisfaction"
    for q, field in [("state=done", "state"), ("category=loud", "category"), ("overdue=maybe", "overdue"),
                     ("from=yesterday", "from"), ("limit=1001", "limit"), ("limit=x", "limit"),
                     ("cursor=zz", "cursor")]:
        r = env.req("GET", "/api/v1/petitions?" + q, "center")
        assert r.status_code == 400 and r.json()["error"]["field"] == field, (q, r.text)


def test_lists_pages_and_inbox(env):
    """Lists by area, state, category, overdue and time, newest first, with a
    cursor and an explicit maximum page; a unit's inbox, oldest first."""
    area = "220503001003001"
    ids = [push(env, f"list-{i}", ticket_area=area, category="parking" if i % 2 else "noise")["id"]
           for i in range(7)]
    page1 = env.req("GET", f"/api/v1/petitions?area={area}&limit=3", "center").json()
    assert [p["id"] for p in page1["petitions"]] == ids[::-1][:3]
    page2 = env.req("GET", f"/api/v1/petitions?area={area}&limit=3&cursor={page1['next_cursor']}",
                    "center").json()
    assert [p["id"] for p in page2["petitions"]] == ids[::-1][3:6]
    page3 = env.req("GET", f"/api/v1/petitions?area={area}&limit=3&cursor={page2['next_cursor']}",
                    "center").json()
    assert [p["id"] for p in page3["petitions"]] == ids[:1] and page3["next_cursor"] == ""
    park = env.req("GET", f"/api/v1/petitions?area={area}&category=parking", "center").json()
    assert len(park["petitions"]) == 3
    both = env.req("GET", f"/api/v1/petitions?area={area}&category=parking,noise&state=assigned",
                   "center").json()
    assert len(both["petitions"]) == 7
    future = env.req("GET", f"/api/v1/petitions?area={area}&from=2099-01-01", "center").json()
    assert future["petitions"] == []
    past = env.req("GET", f"/api/v1/petitions?area={area}&to=2000-01-01", "center").json()
    assert past["petitions"] == []
    assert env.req("GET", f"/api/v1/petitions?area=220504", "center").status_code == 403
    inbox = env.req("GET", "/api/v1/petitions/inbox/220503001003", "community").status_code
    assert inbox == 403   # another community's inbox
    inbox = env.req("GET", "/api/v1/petitions/inbox/220503001003?limit=5", "center").json()
    assert [p["id"] for p in inbox["petitions"]] == ids[:5]
    rest = env.req("GET", f"/api/v1/petitions/inbox/220503001003?cursor={inbox['next_cursor']}",
                   "center").json()
    assert [p["id"] for p in rest["petitions"]] == ids[5:]
    cat = env.req("GET", "/api/v1/petitions/catalogue", "hotline").json()
    assert [e["code"] for e in cat["entries"]] == ["property", "noise", "sanitation", "parking",
                                                   "neighbor_dispute", "municipal",
                                                   "public_safety", "other"]
    assert cat["entries"][1]["name"] == "噪音扰民"


def test_qr_scan_and_its_rate_limit(env):
    """A resident scans a grid's or building's code without a token; the
    gateway limits scans per client address and per code (429, Retry-After)."""
    r = env.req("POST", f"/api/v1/qr/{BUILDING}/petitions",
                body={"category": "sanitation", "content": "楼道垃圾无人清理",
                      "citizen": {"name": "李先生", "phone": "13900001111"}})
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["channel"] == "qr" and p["area"] == BUILDING and p["assigned_to"] == COMMUNITY
    assert p["citizen"]["phone"] == "139****1111"
    assert env.req("POST", "/api/v1/qr/nosuchcode/petitions",
                   body={"category": "noise", "content": "x"}).status_code == 404
    assert env.req("POST", f"/api/v1/qr/{BUILDING}/petitions",
                   body={"category": "noise", "content": "x", "area": GRID}).status_code == 400
    assert env.req("POST", f"/api/v1/qr/{BUILDING}/petitions",
                   body={"category": "x", "content": "x"}).status_code == 400
    # a gateway with tight limits: 3 per code, 5 per address, per 10 minutes
    gw2 = Gateway(env.stack, name="gateway-qr", ZHILI_QR_RATE_ADDRESS="5/600",
                  ZHILI_QR_RATE_CODE="3/600")
    body = {"category": "noise", "content": "夜间噪音"}

    def scan(code):
        return requests.post(f"{gw2.url}/api/v1/qr/{code}/petitions", json=body, timeout=10)
    assert [scan(GRID).status_code for _ in range(3)] == [201, 201, 201]
    r = scan(GRID)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "QR code" in r.json()["error"]["message"]
    assert [scan(BUILDING).status_code for _ in range(2)] == [201, 201]
    r = scan(BUILDING)
    assert r.status_code == 429 and "address" in r.json()["error"]["message"]
    env.stack.kill("gateway-qr", signal.SIGTERM)


# ---- Open311 GeoReport v2 ----------------------------------------------------

def o311(env, method, path, **kw):
    return requests.request(method, env.gw.url + "/open311/v2/" + path, timeout=10, **kw)


def test_open311_services(env):
    """services and service definitions in XML and JSON, with the spec's fields."""
    root = ET.fromstring(o311(env, "GET", "services.xml").content)
    assert root.tag == "services"
    services = root.findall("service")
    assert [s.findtext("service_code") for s in services][:2] == ["property", "noise"]
    for s in services:
        for f in ("service_code", "service_name", "description", "metadata", "type", "keywords", "group"):
            assert s.find(f) is not None, f
        assert s.findtext("type") == "realtime" and s.findtext("metadata") == "true"
    js = o311(env, "GET", "services.json").json()
    assert js[1]["service_name"] == "噪音扰民" and len(js) == 8
    d = ET.fromstring(o311(env, "GET", "services/noise.xml").content)
    assert d.tag == "service_definition" and d.findtext("service_code") == "noise"
    attr = d.find("attributes/attribute")
    assert attr.findtext("code") == "urgency" and attr.findtext("datatype") == "singlevaluelist"
    assert [v.findtext("key") for v in attr.findall("values/value")] == ["normal", "urgent", "critical"]
    dj = o311(env, "GET", "services/noise.json").json()
    assert dj["service_code"] == "noise" and dj["attributes"][0]["required"] is False
    r = o311(env, "GET", "services/loud.xml")
    assert r.status_code == 404 and ET.fromstring(r.content).findtext("error/code") == "404"
    r = o311(env, "GET", "services.json?jurisdiction_id=elsewhere.gov")
    assert r.status_code == 404 and r.json()[0]["code"] == 404
    assert o311(env, "GET", f"services.json?jurisdiction_id={DISTRICT}").status_code == 200
    r = o311(env, "GET", "services.csv")
    assert r.status_code == 400 and ET.fromstring(r.content).tag == "errors"
    assert o311(env, "GET", "nothing.json").status_code == 404


def test_open311_post_and_get_requests(env):
    """POST requests (form-encoded, api_key = a hotline token) and GET requests
    with service_code, status, start_date/end_date and service_request_id."""
    key = env.tokens["hotline"]
    form = {"api_key": key, "service_code": "parking", "address_id": "220503001004001",
            "description": "小区门口车辆乱停，消防通道被堵", "first_name": "先生", "last_name": "王",
            "phone": "13700001111", "attribute[urgency]": "urgent", "account_id": "acct-7"}
    r = o311(env, "POST", "requests.xml", data=form)
    assert r.status_code == 200, r.text
    req = ET.fromstring(r.content).find("request")
    sid = req.findtext("service_request_id")
    assert sid.startswith("P") and req.findtext("account_id") == "acct-7"
    assert req.findtext("service_notice")
    rj = o311(env, "POST", "requests.json", data=dict(form, lat="41.75", long="126.19",
                                                       address_id=""))
    assert rj.status_code == 200 and rj.json()[0]["service_request_id"].startswith("P")
    addr_only = o311(env, "POST", "requests.json",
                     data={"api_key": key, "service_code": "other", "address_string": "江畔名居东门",
                           "description": "咨询老旧小区改造"})
    assert addr_only.status_code == 200
    flagged = env.req("GET", f"/api/v1/petitions/{addr_only.json()[0]['service_request_id']}",
                      "hotline").json()
    assert flagged["manual_routing"] is True and flagged["assigned_to"] == DISTRICT
    # errors in the spec's shape and codes
    cases = [({k: v for k, v in form.items() if k != "api_key"}, 403),
             (dict(form, api_key="zl_" + "A" * 43), 403),
             (dict(form, service_code="loud"), 404),
             ({k: v for k, v in form.items() if k != "service_code"}, 400),
             ({k: v for k, v in form.items() if k != "address_id"}, 400),
             (dict(form, lat="41.7"), 400),
             (dict(form, lat="north", long="east", address_id=""), 400),
             (dict(form, description=""), 400),
             (dict(form, phone="12"), 400),
             (dict(form, address_id="2205"), 400),
             (dict(form, address_id="220504001"), 403),
             (dict(form, jurisdiction_id="elsewhere.gov"), 404)]
    for data, code in cases:
        r = o311(env, "POST", "requests.xml", data=data)
        assert r.status_code == code, (data, r.text)
        e = ET.fromstring(r.content)
        assert e.tag == "errors" and e.findtext("error/description"), r.text
    r = o311(env, "POST", "requests.json", data=json.dumps(form),
             headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    # A malformed Idempotency-Key is refused as on the JSON API; a good one
    # makes a resend answer with the same petition.
    r = o311(env, "POST", "requests.json", data=form, headers={"Idempotency-Key": "a b"})
    assert r.status_code == 400 and "Idempotency-Key" in r.json()[0]["description"], r.text
    first = o311(env, "POST", "requests.json", data=form, headers={"Idempotency-Key": "t-311-1"})
    again = o311(env, "POST", "requests.json", data=form, headers={"Idempotency-Key": "t-311-1"})
    assert first.status_code == 200 and again.status_code == 200
    assert first.json()[0]["service_request_id"] == again.json()[0]["service_request_id"]
    # GET one and many
    one = ET.fromstring(o311(env, "GET", f"requests/{sid}.xml?api_key={key}").content)
    got = one.find("request")
    for f in ("service_request_id", "status", "status_notes", "service_name", "service_code",
              "description", "agency_responsible", "service_notice", "requested_datetime",
              "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "lat",
              "long", "media_url"):
        assert got.find(f) is not None, f
    assert got.findtext("status") == "open" and got.findtext("service_code") == "parking"
    assert got.findtext("address_id") == "220503001004001"
    assert got.findtext("requested_datetime").endswith("+08:00")
    assert o311(env, "GET", f"requests/{sid}.json").status_code == 403
    assert o311(env, "GET", f"requests/P9999999999.json?api_key={key}").status_code == 404
    other = env.tokens["hotline2"]
    assert o311(env, "GET", f"requests/{sid}.json?api_key={other}").status_code == 403
    lst = o311(env, "GET", f"requests.json?api_key={key}&service_code=parking&status=open").json()
    assert sid in [x["service_request_id"] for x in lst]
    assert all(x["service_code"] == "parking" and x["status"] == "open" for x in lst)
    closed = o311(env, "GET", f"requests.json?api_key={key}&status=closed").json()
    assert all(x["status"] == "closed" for x in closed) and closed, "the loop test closed some"
    ids = o311(env, "GET", f"requests.json?api_key={key}&service_request_id={sid}").json()
    assert [x["service_request_id"] for x in ids] == [sid]
    far = o311(env, "GET", f"requests.json?api_key={key}&start_date=2020-01-01T00:00:00Z"
                           f"&end_date=2020-02-01T00:00:00Z").json()
    assert far == []
    span = o311(env, "GET", f"requests.json?api_key={key}&start_date=2020-01-01T00:00:00Z"
                            f"&end_date=2020-06-01T00:00:00Z")
    assert span.status_code == 400 and "90 days" in span.json()[0]["description"]
    assert o311(env, "GET", f"requests.json?api_key={key}&status=pending").status_code == 400
    assert o311(env, "GET", f"requests.json?api_key={key}&start_date=soon").status_code == 400
    assert o311(env, "DELETE", "requests.json").status_code == 400


def test_metrics_show_petitions(env):
    """/metrics carries the service's counts by state and overdue."""
    text = env.req("GET", "/metrics", "center").text
    assert 'zhili_service_petitions{service="petitions",state="assigned"}' in text
    assert 'zhili_service_petitions_overdue{service="petitions",kind="sign"}' in text
    assert 'zhili_service_petitions_escalations_total{service="petitions",kind="sign"}' in text


def test_restart_catches_up_on_deadlines(env):
    """A deadline that passes while the service is down is escalated once when
    it comes back; breaches escalated before the restart are not repeated."""
    pid = push(env, "restart-1")["id"]                    # sign by now + 2 h
    escalated_before = [e for e in env.events() if e["type"] == "overdue_sign"]
    now = env.now()
    env.stack.kill("petitions", signal.SIGTERM)
    env.stack.start("petitions", "zhili-petitions", ZHILI_FAKE_CLOCK="1",
                    ZHILI_FAKE_CLOCK_START_MS=str(now + 3 * HOUR))
    env.stack.wait_ready("petitions")

    def mine():
        return [e for e in env.events()
                if e["type"] == "overdue_sign" and e["petition_change"]["id"] == pid]
    assert wait_for(mine)
    time.sleep(0.6)
    after = [e for e in env.events() if e["type"] == "overdue_sign"]
    assert len(mine()) == 1
    before_ids = {e["petition_change"]["id"] for e in escalated_before}
    again = [e for e in after if e["petition_change"]["id"] in before_ids]
    assert len(again) == len(escalated_before)             # none repeated


# ---- with the real grid service ------------------------------------------------

GRID_BIN = os.path.join(BIN, "zhili-grid")


@pytest.mark.skipif(not os.path.exists(GRID_BIN), reason="no zhili-grid binary in ZHILI_BIN")
def test_routing_with_the_grid_service(env):
    """Units the grid service publishes route petitions to their grid, and its
    QR codes file straight to the right unit."""
    env.stack.start("grid", "zhili-grid", ZHILI_GRID_KEY="11" * 32)
    env.stack.wait_ready("grid")
    chain = [("220503", "二道江区"), ("220503002", "东昌街道"), ("220503002001", "幸福社区"),
             ("220503002001001", "幸福家园网格"), ("220503002001001001", "幸福家园1号楼")]
    for code, name in chain:
        rc, reply = env.stack.call("grid", {"grid_unit_upsert": {"code": code, "name": name}})
        assert rc == 0 or reply["status"] == "conflict", reply
    assert wait_for(lambda: env.stats().get(("petitions_grid_units", ""), 0) >= 5, timeout=15)
    p = push(env, "grid-1", ticket_area="220503002001001001")
    assert p["assigned_to"] == "220503002001001" and p["routing"] == "unit"
    assert p["assigned_name"] == "幸福家园网格"
    units = [e["grid_unit"] for e in
             (json.loads(line) for line in env.stack.ctl("replay", "grid", "--from", "1").stdout.splitlines())
             if e.get("type") == "unit_upserted" and e["grid_unit"].get("qr")]
    if units:
        u = units[-1]
        r = env.req("POST", f"/api/v1/qr/{u['qr'].upper()}/petitions",
                    body={"category": "noise", "content": "夜间噪音"})
        assert r.status_code == 201 and r.json()["area"] == u["code"]
    env.stack.kill("grid", signal.SIGTERM)
