"""The grid service end to end (docs/grid.md): a real broker, zhili-grid (on the
fake clock) and gateway on loopback, driven over HTTP and through zhilictl.
Each test states the property it checks. One stack serves the whole file (the
tests use their own areas, ids and counters), which keeps it well under a
minute on two shared cores."""
import json
import os
import subprocess
import zlib

import pytest
import requests

from zhili_stack import BIN, Gateway, Stack

DAY_MS = 24 * 3600 * 1000
ID_NUMBER = "11010519491231002X"     # a valid 居民身份证号码 (GB 11643 check)
PERSONAL_NAME = "王某某"
PHONE = "13712345678"
ADDRESS = "桃源小区1号楼101室"

UNITS_CSV = """code,name,leader,branch,lat,long,boundary
220503,二道江区,,,,,
220503001,东通化街道,李书记,东通化街道党工委,,,
220503001001,桃源社区,王主任,桃源社区党委,41.771,126.042,
220503001001001,桃源一网格,张网格,桃源一网格党支部,41.771,126.041,"41.770 126.040;41.772 126.040;41.772 126.042;41.770 126.042"
220503001001002,桃源二网格,刘网格,桃源二网格党支部,41.771,126.043,41.770 126.042;41.772 126.042;41.772 126.044;41.770 126.044
220503001001001001,1号楼,楼长甲,,41.77075,126.04075,41.7705 126.0405;41.7710 126.0405;41.7710 126.0410;41.7705 126.0410
220503001001001002,2号楼,,,41.7715,126.0415,
220503001001002001,3号楼,,,41.7712,126.0432,
220503001002,江南社区,,,41.80,126.10,
220503001002001,江南一网格,,,41.801,126.101,
"""


def check_char(first17):
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights)) % 11]


ID_NUMBER_2 = "22050219800101123" + check_char("22050219800101123")


class Grid:
    """The stack, tokens and small helpers shared by the tests."""

    def __init__(self, stack, gw, key):
        self.stack, self.gw, self.key = stack, gw, key
        self.tokens = {}

    def token(self, role, area):
        if (role, area) not in self.tokens:
            self.tokens[(role, area)] = self.gw.token(role, area=area, name=f"{role}-{area}")
        return self.tokens[(role, area)]

    def api(self, method, path, role=None, area="", body=None, params=None, key=None):
        headers = {}
        if role:
            headers.update(Gateway.auth(self.token(role, area)[0]))
        if key:
            headers["Idempotency-Key"] = key
        r = requests.request(method, self.gw.url + path, json=body, params=params,
                             headers=headers, timeout=10)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, r.text

    def call(self, command):
        rc, reply = self.stack.call("grid", command)
        return rc, reply

    def ok(self, command):
        rc, reply = self.call(command)
        assert rc == 0, reply
        return reply

    def events(self, prefix=""):
        r = self.stack.ctl("replay", "grid", "--from", "1", check=True)
        evs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        return [e for e in evs if e["type"].startswith(prefix)]

    def last_seq(self):
        evs = self.events()
        return evs[-1]["seq"] if evs else 0

    def advance(self, ms):
        reply = self.ok({"clock_advance": {"delta_ms": ms}})
        return reply["clock"]["now_ms"]


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


@pytest.fixture(scope="module")
def g(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("grid"))
    stack = Stack(tmp=tmp)
    key = os.urandom(32).hex()
    stack.broker()
    stack.start("grid", "zhili-grid", ZHILI_GRID_KEY=key, ZHILI_FAKE_CLOCK=1)
    gw = Gateway(stack)
    stack.wait_ready("grid")
    grid = Grid(stack, gw, key)
    grid.tmp = tmp
    r = stack.ctl("import", "units", write(tmp, "units.csv", UNITS_CSV))
    assert r.returncode == 0, r.stderr
    people = [
        {"id": "gm1", "name": "张网格", "kind": "grid_member", "area": "220503001001001"},
        {"id": "gm2", "name": "刘网格", "kind": "grid_member", "area": "220503001001002"},
        {"id": "aux1", "name": "赵辅警", "kind": "aux_police", "area": "220503001001001",
         "station": "东通化派出所"},
        {"id": "pol1", "name": "李民警", "kind": "community_police", "area": "220503001001",
         "station": "东通化派出所", "phone": "0435-1234567"},
        {"id": "chief1", "name": "孙所长", "kind": "station_chief", "area": "220503001001",
         "station": "东通化派出所"},
        {"id": "mp1", "name": "群防队员", "kind": "mass_prevention", "area": "220503001001001001"},
    ]
    for p in people:
        grid.ok({"grid_person_upsert": p})
    yield grid
    stack.stop()


# ---- start-up ------------------------------------------------------------------------

def test_refuses_to_start_without_a_key(tmp_path):
    """No key, a malformed key, two keys, or a key the store was not written
    with: the service exits at once and names the variable."""
    env = dict(os.environ, ZHILI_DATA=str(tmp_path), ZHILI_BROKER="tcp://127.0.0.1:1")
    for var in ("ZHILI_GRID_KEY", "ZHILI_GRID_KEY_FILE"):
        env.pop(var, None)
    run = lambda e: subprocess.run([os.path.join(BIN, "zhili-grid")], env=e,  # noqa: E731
                                   capture_output=True, text=True, timeout=10)
    r = run(env)
    assert r.returncode == 2 and "ZHILI_GRID_KEY" in r.stderr, r.stderr
    r = run(dict(env, ZHILI_GRID_KEY="not a key"))
    assert r.returncode == 2 and "ZHILI_GRID_KEY" in r.stderr
    keyfile = tmp_path / "key"
    keyfile.write_bytes(os.urandom(32))
    r = run(dict(env, ZHILI_GRID_KEY="00" * 32, ZHILI_GRID_KEY_FILE=str(keyfile)))
    assert r.returncode == 2 and "not both" in r.stderr
    r = run(dict(env, ZHILI_GRID_KEY_FILE=str(tmp_path / "missing")))
    assert r.returncode == 2 and "ZHILI_GRID_KEY_FILE" in r.stderr
    # A raw 32-byte key file is accepted; the store remembers it; another key is refused.
    p = subprocess.Popen([os.path.join(BIN, "zhili-grid")], env=dict(
        env, ZHILI_GRID_KEY_FILE=str(keyfile)), stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
        assert "started" in line, line
    finally:
        p.terminate()
        p.wait(timeout=10)
    r = run(dict(env, ZHILI_GRID_KEY="11" * 32))
    assert r.returncode == 2 and "not the key the store" in r.stderr, r.stderr


# ---- units: CSV, hierarchy, lookup ------------------------------------------------------

def test_csv_import_good_bad_and_skip_bad(g):
    """A good file imports parents first in batches; the same file again changes
    nothing; a file with bad rows names each bad line and imports nothing, unless
    --skip-bad, which imports the good rows only; export round-trips."""
    before = g.last_seq()
    r = g.stack.ctl("import", "units", write(g.tmp, "units.csv", UNITS_CSV))
    assert r.returncode == 0, r.stderr
    assert g.last_seq() == before, "a repeated import emitted events"

    good = "code,name\n220504,另一区\n220504001,甲街道\n"
    bad = (good +
           "220504001001,乙社区\n"
           "2205040010,坏编码\n"            # line 5: code
           "220504001002,\n"                # line 6: name
           "220504001003,\"未闭合\n"        # line 7: quote -> runs to the end
           )
    path = write(g.tmp, "bad.csv", bad)
    r = g.stack.ctl("import", "units", path)
    assert r.returncode == 1
    assert f"{path}:5: code:" in r.stderr, r.stderr
    assert f"{path}:6: name:" in r.stderr
    assert f"{path}:7: row:" in r.stderr
    assert "nothing was imported" in r.stderr
    assert g.call({"grid_unit_get": {"code": "220504"}})[0] == 1, "a bad file imported rows"

    orphan = "code,name,lat,long\n220504009001,孤儿社区,,\n220504,另一区,41,200\n"
    r = g.stack.ctl("import", "units", write(g.tmp, "orphan.csv", orphan))
    assert r.returncode == 1
    assert ":2: code: the parent unit 220504009" in r.stderr, r.stderr
    assert ":3: long:" in r.stderr

    dup = good + "220504,重复区\n"
    r = g.stack.ctl("import", "units", write(g.tmp, "dup.csv", dup))
    assert r.returncode == 1 and ":4: code: code 220504 already appears on line 2" in r.stderr

    r = g.stack.ctl("import", "units", path, "--skip-bad")
    assert r.returncode == 0, r.stderr
    assert "3 units" in r.stdout and "skipped 3 bad rows" in r.stdout, r.stdout
    assert g.ok({"grid_unit_get": {"code": "220504001001"}})["grid_unit_detail"]["unit"]["name"] == "乙社区"

    out = os.path.join(g.tmp, "export.csv")
    r = g.stack.ctl("export", "units", "--area", "220504", "--out", out)
    assert r.returncode == 0, r.stderr
    text = open(out, encoding="utf-8-sig").read()
    assert text.splitlines()[0] == "code,name,leader,branch,lat,long,boundary"
    assert "220504001001,乙社区" in text
    seq = g.last_seq()
    r = g.stack.ctl("import", "units", out)
    assert r.returncode == 0 and "created 0, changed 0, unchanged 3" in r.stdout, r.stdout
    assert g.last_seq() == seq
    # Export of the main file: boundaries survive the round trip exactly.
    out2 = os.path.join(g.tmp, "export2.csv")
    assert g.stack.ctl("export", "units", "--area", "220503", "--out", out2).returncode == 0
    r = g.stack.ctl("import", "units", out2)
    assert r.returncode == 0 and "created 0, changed 0" in r.stdout, r.stdout


def test_unit_events_feed_routing(g):
    """Every unit has a grid.unit_upserted event with the whole Unit (petitions'
    routing read model); a change emits one more; removal emits unit_removed."""
    evs = {e["grid_unit"]["code"]: e for e in g.events("unit_upserted")}
    e = evs["220503001001001"]
    assert e["area"] == "220503001001001" and e["source"] == "grid"
    assert e["grid_unit"]["branch"] == "桃源一网格党支部" and e["grid_unit"]["level"] == 4
    assert len(e["grid_unit"]["qr"]) == 16 and len(e["grid_unit"]["boundary"]) == 4
    st, u = g.api("PUT", "/api/v1/grid/units/220503001002001", "staff", "220503001002",
                  {"name": "江南一网格", "leader": "新网格长",
                   "centroid": {"lat": 41.801, "long": 126.101}})
    assert st == 200 and u["leader"] == "新网格长", u
    assert g.events("unit_upserted")[-1]["grid_unit"]["leader"] == "新网格长"
    st, u = g.api("PUT", "/api/v1/grid/units/220503001002001001", "staff", "220503001002",
                  {"name": "临时楼"})
    assert st == 200
    st, err = g.api("DELETE", "/api/v1/grid/units/220503001002001", "staff", "220503001002")
    assert st == 409 and "units below it" in err["error"]["message"]
    st, u = g.api("DELETE", "/api/v1/grid/units/220503001002001001", "staff", "220503001002")
    assert st == 200 and u["removed"] is True
    last = g.events("unit_removed")[-1]
    assert last["grid_unit"]["code"] == "220503001002001001" and last["grid_unit"]["removed"]


def test_hierarchy_queries_and_scope(g):
    """Ancestors, children and levels; the caller's area bounds every read by id."""
    st, d = g.api("GET", "/api/v1/grid/units/220503001001001", "staff", "220503001")
    assert st == 200, d
    assert [a["code"] for a in d["ancestors"]] == ["220503", "220503001", "220503001001"]
    assert d["children"] == 2 and d["unit"]["level"] == 4
    st, page = g.api("GET", "/api/v1/grid/units", "staff", "220503001",
                     params={"parent": "220503001001"})
    assert st == 200 and [u["code"] for u in page["units"]] == ["220503001001001",
                                                                "220503001001002"]
    st, page = g.api("GET", "/api/v1/grid/units", "staff", "220503001",
                     params={"level": "5", "limit": "2"})
    assert st == 200 and len(page["units"]) == 2 and page["next_after"]
    st, rest = g.api("GET", "/api/v1/grid/units", "staff", "220503001",
                     params={"level": "5", "after": page["next_after"]})
    assert st == 200 and len(rest["units"]) >= 1 and rest["next_after"] == ""
    # A grid member of grid 1 reads its grid, not grid 2 nor its community.
    assert g.api("GET", "/api/v1/grid/units/220503001001001", "grid_member",
                 "220503001001001")[0] == 200
    st, err = g.api("GET", "/api/v1/grid/units/220503001001002", "grid_member", "220503001001001")
    assert st == 403 and "outside your scope" in err["error"]["message"]
    assert g.api("GET", "/api/v1/grid/units/220503001001", "grid_member",
                 "220503001001001")[0] == 403
    assert g.api("GET", "/api/v1/grid/units", "grid_member", "220503001001001",
                 params={"area": "220503001001002"})[0] == 403
    # Writing units is staff's (and admin's) work.
    assert g.api("PUT", "/api/v1/grid/units/220503001001001", "grid_member", "220503001001001",
                 {"name": "x"})[0] == 403
    assert g.api("GET", "/api/v1/grid/units/220503001001001", "resident",
                 "220503001001001")[0] == 403
    st, err = g.api("GET", "/api/v1/grid/units/220599001001001", "staff", "220503001")
    assert st == 403


def test_point_lookup(g):
    """The smallest unit whose boundary holds the point, else the nearest centroid."""
    def locate(lat, lon):
        st, r = g.api("GET", "/api/v1/grid/locate", "staff", "220503",
                      params={"lat": lat, "long": lon})
        assert st == 200, r
        return r
    r = locate("41.7707", "126.0407")   # inside building 1 inside grid 1
    assert r["unit"]["code"] == "220503001001001001" and r["method"] == "boundary"
    assert r["grid"] == "220503001001001"
    r = locate("41.7715", "126.0415")   # grid 1, outside building 1
    assert r["unit"]["code"] == "220503001001001" and r["method"] == "boundary"
    r = locate("41.7712", "126.0433")   # grid 2
    assert r["unit"]["code"] == "220503001001002"
    r = locate("41.8012", "126.1012")   # no boundary there: nearest grid/building centroid
    assert r["method"] == "centroid" and r["unit"]["code"].startswith("220503001002001")
    assert 0 < r["distance_m"] < 100


# ---- people and police grids ----------------------------------------------------------

def test_people_and_teams(g):
    """Roles and levels; community police teams (社区警务团队) and the
    mass-prevention force are listed by area and kind."""
    st, people = g.api("GET", "/api/v1/grid/people", "staff", "220503001001",
                       params={"kind": "mass_prevention"})
    assert st == 200 and [p["id"] for p in people["people"]] == ["mp1"]
    st, err = g.api("PUT", "/api/v1/grid/people/gm9", "staff", "220503001001",
                    {"name": "x", "kind": "grid_member", "area": "220503001001"})
    assert st == 400 and err["error"]["field"] == "area" and "grid (15 digits)" in \
        err["error"]["message"]
    st, t = g.api("PUT", "/api/v1/grid/teams/T1", "police", "220503001001",
                  {"name": "桃源社区警务团队", "area": "220503001001", "station": "东通化派出所",
                   "leader": "chief1", "members": ["pol1", "aux1", "mp1", "gm1"]})
    assert st == 200 and t["members"] == ["aux1", "gm1", "mp1", "pol1"], t
    st, teams = g.api("GET", "/api/v1/grid/teams", "police", "220503001001")
    assert st == 200 and [x["id"] for x in teams["teams"]] == ["T1"]
    st, err = g.api("PUT", "/api/v1/grid/teams/T2", "police", "220503001001",
                    {"name": "x", "area": "220503001001", "leader": "nobody"})
    assert st == 400 and err["error"]["field"] == "leader"


def test_police_grid_links_both_ways(g):
    """A police grid (警格) lists its admin grids; each admin grid lists its police
    grids; changing the set emits a link event per change with the admin grid's
    area, so a police grid's events reach the grid and back."""
    body = {"name": "桃源警格", "area": "220503001001", "station": "东通化派出所",
            "officer": "pol1", "grids": ["220503001001002", "220503001001001"]}
    st, pg = g.api("PUT", "/api/v1/grid/police-grids/JG-TY-01", "police", "220503001001", body)
    assert st == 200 and pg["grids"] == ["220503001001001", "220503001001002"], pg
    st, pg = g.api("GET", "/api/v1/grid/police-grids/JG-TY-01", "grid_member", "220503001001002")
    assert st == 200 and "220503001001002" in pg["grids"]
    for grid in ("220503001001001", "220503001001002"):
        st, lst = g.api("GET", f"/api/v1/grid/units/{grid}/police-grids", "grid_member", grid)
        assert st == 200 and [p["id"] for p in lst["police_grids"]] == ["JG-TY-01"]
    st, d = g.api("GET", "/api/v1/grid/units/220503001001001", "staff", "220503")
    assert d["police_grids"] == ["JG-TY-01"]
    body["grids"] = ["220503001001001"]
    assert g.api("PUT", "/api/v1/grid/police-grids/JG-TY-01", "police", "220503001001",
                 body)[0] == 200
    st, lst = g.api("GET", "/api/v1/grid/units/220503001001002/police-grids", "grid_member",
                    "220503001001002")
    assert lst["police_grids"] == []
    links = [(e["type"], e["area"]) for e in g.events("police_")
             if e.get("grid_police_link", {}).get("police_grid") == "JG-TY-01"]
    assert links == [("police_linked", "220503001001001"), ("police_linked", "220503001001002"),
                     ("police_unlinked", "220503001001002")], links
    assert g.api("GET", "/api/v1/grid/police-grids/JG-TY-01", "grid_member",
                 "220503001001002")[0] == 403
    st, err = g.api("PUT", "/api/v1/grid/police-grids/JG-X", "police", "220503001001",
                    dict(body, officer="gm1"))
    assert st == 400 and err["error"]["field"] == "officer"


# ---- visits ---------------------------------------------------------------------------

def test_household_visits_by_grid_and_period(g):
    """Visits (入户走访) are listed by grid and period; the event leaves the
    findings out; a visitor must serve the household's area."""
    now = g.ok({"clock_advance": {"delta_ms": 0}})["clock"]["now_ms"]
    for i, (who, building, room) in enumerate([("gm1", "220503001001001001", "101"),
                                               ("gm1", "220503001001001002", "202"),
                                               ("gm2", "220503001001002001", "303")]):
        st, v = g.api("POST", "/api/v1/grid/visits", "grid_member", building[:15],
                      {"visitor": who, "building": building, "room": room,
                       "visited_ms": now - (3 - i) * 3600_000, "findings": f"住户情况{i}",
                       "hazards": [{"kind": "gas", "description": "燃气软管老化"}] if i == 0
                       else []})
        assert st == 201, v
    st, lst = g.api("GET", "/api/v1/grid/visits", "staff", "220503001001001",
                    params={"from": str(now - 4 * 3600_000), "to": str(now)})
    assert st == 200 and [v["room"] for v in lst["visits"]] == ["101", "202"]
    st, lst = g.api("GET", "/api/v1/grid/visits", "staff", "220503001001",
                    params={"from": str(now - 90 * 60_000)})
    assert [v["room"] for v in lst["visits"]] == ["303"]
    st, lst = g.api("GET", "/api/v1/grid/visits", "staff", "220503001001001001")
    assert [v["room"] for v in lst["visits"]] == ["101"]
    ev = [e for e in g.events("visit_recorded") if e["grid_visit"]["room"] == "101"][0]
    assert ev["grid_visit"]["findings"] == "" and ev["grid_visit"]["hazards"][0]["kind"] == "gas"
    assert ev["area"] == "220503001001001001"
    st, err = g.api("POST", "/api/v1/grid/visits", "grid_member", "220503001001001",
                    {"visitor": "gm2", "building": "220503001001001001", "room": "101"})
    assert st == 400 and err["error"]["field"] == "visitor"


# ---- disputes -------------------------------------------------------------------------

def dispute(g, area="220503001001001", key=None):
    st, d = g.api("POST", "/api/v1/grid/disputes", "grid_member", area[:15],
                  {"area": area, "type": "neighbor", "level": "general",
                   "description": "楼上装修噪音", "parties": [{"name": "甲"}, {"name": "乙"}]},
                  key=key)
    assert st == 201, d
    return d


ACTIONS = {
    "sign": {},
    "mediate": {"handler": "张网格", "note": "上门调解"},
    "resolve": {"outcome": "达成调解协议"},
    "fail": {"reason": "双方不接受"},
    "evaluate": {"satisfaction": "satisfied", "comment": "已回访", "stable": True},
    "archive": {},
}
ALLOWED = {"registered": {"sign"}, "signed": {"mediate"}, "mediating": {"resolve", "fail"},
           "resolved": {"evaluate"}, "failed": {"evaluate"}, "evaluated": {"archive"},
           "archived": set()}


def act(g, d, action):
    return g.api("POST", f"/api/v1/grid/disputes/{d['id']}/{action}", "grid_member",
                 d["area"][:15], ACTIONS[action])


def test_dispute_loop_and_every_invalid_transition(g):
    """registered → signed → mediating → resolved|failed → evaluated → archived;
    every other transition is 409 naming the current state and changes nothing;
    one event per transition, with the area, from which the rates follow."""
    d = dispute(g, key="dispute-e2e-1")
    assert dispute(g, key="dispute-e2e-1")["id"] == d["id"], "a resent register made two"
    path = ["sign", "mediate", "resolve", "evaluate", "archive"]
    state = "registered"
    for step in path + [None]:
        for action in ACTIONS:
            if action in ALLOWED[state]:
                continue
            seq = g.last_seq()
            st, err = act(g, d, action)
            assert st == 409, (state, action, err)
            assert f"is {state};" in err["error"]["message"], err
            assert g.last_seq() == seq
        if step:
            st, d = act(g, d, step)
            assert st == 200, d
            state = d["state"]
    assert state == "archived" and d["satisfaction"] == "satisfied" and d["stable"]
    f = dispute(g, area="220503001001002001")
    for step in ["sign", "mediate", "fail", "evaluate"]:
        st, f = act(g, f, step)
        assert st == 200, f
    assert f["state"] == "evaluated" and f["outcome"] == "双方不接受"
    mine = [e for e in g.events("dispute_") if e["grid_dispute"]["id"] in (d["id"], f["id"])]
    assert [e["type"] for e in mine if e["grid_dispute"]["id"] == d["id"]] == [
        "dispute_registered", "dispute_signed", "dispute_mediating", "dispute_resolved",
        "dispute_evaluated", "dispute_archived"]
    assert all(e["area"] in ("220503001001001", "220503001001002001") for e in mine)
    assert all("parties" not in e["grid_dispute"] for e in mine)
    registered = sum(e["type"] == "dispute_registered" for e in mine)
    resolved = sum(e["type"] == "dispute_resolved" for e in mine)
    failed = sum(e["type"] == "dispute_failed" for e in mine)
    assert (resolved / registered, resolved / (resolved + failed)) == (0.5, 0.5)
    st, lst = g.api("GET", "/api/v1/grid/disputes", "staff", "220503001001",
                    params={"state": "archived"})
    assert st == 200 and [x["id"] for x in lst["disputes"]] == [d["id"]]
    assert g.api("GET", f"/api/v1/grid/disputes/{d['id']}", "grid_member",
                 "220503001001002")[0] == 403
    assert g.api("GET", "/api/v1/grid/disputes/999999", "staff", "220503")[0] == 404


# ---- key persons ------------------------------------------------------------------------

def register_kp(g, interval_days=7, id_number=ID_NUMBER, role="police", area="220503001001"):
    return g.api("POST", "/api/v1/grid/keypersons", role, area,
                 {"area": "220503001001001", "category": "released", "risk": "high",
                  "responsible": "gm1", "visit_interval_days": interval_days,
                  "name": PERSONAL_NAME, "id_number": id_number, "phone": PHONE,
                  "address": ADDRESS})


def test_keyperson_access_audit_and_ciphertext(g):
    """Personal fields: police and the responsible grid's members only, each
    read through a reveal that writes an audit event (who, when, which record);
    no event carries them; the store holds them only as ciphertext."""
    st, kp = register_kp(g)
    assert st == 201, kp
    assert PERSONAL_NAME not in json.dumps(kp, ensure_ascii=False)
    assert register_kp(g)[0] == 409, "the same ID number registered twice"
    kid = kp["id"]

    def reveal(role, area):
        return g.api("POST", f"/api/v1/grid/keypersons/{kid}/reveal", role, area,
                     {"reason": "入户核查"})

    st, grant = reveal("police", "220503001001")
    assert st == 201, grant
    st, p = g.api("GET", f"/api/v1/grid/keypersons/{kid}/personal", "police", "220503001001",
                  params={"grant": grant["grant"]})
    assert st == 200 and p["id_number"] == ID_NUMBER and p["name"] == PERSONAL_NAME, p
    assert p["address"] == ADDRESS and p["phone"] == PHONE
    # The grant is the caller's own: another token (even police) cannot use it.
    st, err = g.api("GET", f"/api/v1/grid/keypersons/{kid}/personal", "police", "220503001",
                    params={"grant": grant["grant"]})
    assert st == 403 and err["error"]["field"] == "grant"
    st, grant2 = reveal("grid_member", "220503001001001")
    assert st == 201
    assert g.api("GET", f"/api/v1/grid/keypersons/{kid}/personal", "grid_member",
                 "220503001001001", params={"grant": grant2["grant"]})[0] == 200
    st, err = reveal("grid_member", "220503001001002")    # another grid's member
    assert st == 403 and "outside your scope" in err["error"]["message"]
    # A grid member whose scope is the community is not a member of the grid.
    st, err = reveal("grid_member", "220503001001")
    assert st == 403 and "grid members of grid 220503001001001" in err["error"]["message"]
    assert reveal("resident", "220503001001001")[0] == 403
    assert reveal("admin", "")[0] == 403
    assert reveal("staff", "220503001001")[0] == 403
    assert reveal("police", "220503001002")[0] == 403    # police outside the area
    # The public part is readable in scope, without personal fields.
    st, pub = g.api("GET", f"/api/v1/grid/keypersons/{kid}", "staff", "220503001001")
    assert st == 200 and pub["responsible"] == "gm1" and "name" not in pub
    # Audit: exactly the two successful reveals, with who and which record.
    audits = [e for e in g.events("keyperson_revealed") if e["grid_keyperson_access"]["id"] == kid]
    assert [e["actor"]["role"] for e in audits] == ["police", "grid_member"]
    assert audits[0]["actor"]["id"] == g.token("police", "220503001001")[1]
    assert audits[0]["grid_keyperson_access"]["reason"] == "入户核查"
    assert audits[0]["ts_ms"] > 0 and audits[0]["area"] == "220503001001001"
    # No event anywhere carries a personal field.
    everything = json.dumps(g.events(), ensure_ascii=False)
    for secret in (ID_NUMBER, PERSONAL_NAME, PHONE, ADDRESS):
        assert secret not in everything, secret
    # Update the personal fields; the old and new ID numbers stay off the disk.
    st, kp2 = g.api("PATCH", f"/api/v1/grid/keypersons/{kid}", "police", "220503001001",
                    {"id_number": ID_NUMBER_2, "risk": "medium"})
    assert st == 200 and kp2["risk"] == "medium", kp2
    st, grant = reveal("police", "220503001001")
    st, p = g.api("GET", f"/api/v1/grid/keypersons/{kid}/personal", "police", "220503001001",
                  params={"grant": grant["grant"]})
    assert p["id_number"] == ID_NUMBER_2 and p["name"] == PERSONAL_NAME
    with open(os.path.join(g.stack.data, "grid", "data.mdb"), "rb") as f:
        disk = f.read()
    for secret in (ID_NUMBER, ID_NUMBER_2, PHONE):
        assert secret.encode() not in disk, secret
    for secret in (PERSONAL_NAME, ADDRESS):
        assert secret.encode("utf-8") not in disk, secret
    # 解除列管 erases the sealed part; reveal is then refused.
    st, gone = g.api("DELETE", f"/api/v1/grid/keypersons/{kid}", "police", "220503001001",
                     params={"reason": "期满解除"})
    assert st == 200 and gone["removed"] and gone["removed_reason"] == "期满解除"
    assert reveal("police", "220503001001")[0] == 409
    st, again = register_kp(g)
    assert st == 201, "a released person can be registered again"
    st, err = g.api("DELETE", "/api/v1/grid/people/gm1", "staff", "220503001")
    assert st == 409 and f"key person {again['id']}" in err["error"]["message"], err


def test_missed_visit_timer(g):
    """With the fake clock: no overdue event before the interval ends, exactly
    one per missed interval after, and a visit starts a new interval."""
    rc, reply = g.call({"grid_keyperson_register": {
        "area": "220503001001002", "category": "mental", "risk": "medium", "responsible": "gm2",
        "visit_interval_days": 2, "name": "定时测试", "id_number": ID_NUMBER_2}})
    assert rc == 0, reply
    kid = reply["grid_keyperson"]["id"]

    def overdue():
        return [e["grid_keyperson_overdue"] for e in g.events("keyperson_visit_overdue")
                if e["grid_keyperson_overdue"]["id"] == kid]

    g.advance(2 * DAY_MS - 1)
    assert overdue() == []
    g.advance(1)
    assert [o["missed"] for o in overdue()] == [1]
    g.advance(DAY_MS)
    assert len(overdue()) == 1, "raised again inside the same interval"
    g.advance(5 * DAY_MS)          # day 8: the intervals ending on days 4, 6 and 8
    got = overdue()
    assert [o["missed"] for o in got] == [1, 2, 3, 4]
    assert [o["due_ms"] - got[0]["due_ms"] for o in got] == [0, 2 * DAY_MS, 4 * DAY_MS,
                                                             6 * DAY_MS]
    assert all(o["area"] == "220503001001002" and o["responsible"] == "gm2" for o in got)
    # Restarting the service raises nothing twice (the fake clock restarts
    # at the real time, so the test puts it back where it was).
    now = g.advance(0)
    g.stack.kill("grid")
    g.stack.restart("grid")
    g.stack.wait_ready("grid")
    g.ok({"clock_set": {"now_ms": now}})
    assert len(overdue()) == 4
    rc, v = g.call({"grid_visit_record": {"visitor": "gm2", "keyperson": kid, "findings": "稳定"}})
    assert rc == 0, v
    g.advance(2 * DAY_MS - 1)
    assert len(overdue()) == 4
    g.advance(1)
    assert len(overdue()) == 5
    st, lst = g.api("GET", "/api/v1/grid/keypersons", "police", "220503001001",
                    params={"overdue": "1"})
    assert st == 200 and kid in [k["id"] for k in lst["keypersons"]]


# ---- QR codes -------------------------------------------------------------------------

def test_qr_resolution_and_printing(g):
    """Every grid and building has a stable code that resolves without a token;
    zhilictl qr prints one SVG or PNG per unit pointing at the gateway."""
    st, d = g.api("GET", "/api/v1/grid/units/220503001001001", "staff", "220503")
    code = d["unit"]["qr"]
    assert len(code) == 16
    r = requests.get(f"{g.gw.url}/api/v1/qr/{code}", timeout=10)
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["unit"]["code"] == "220503001001001" and t["grid"] == "220503001001001"
    assert t["community_name"] == "桃源社区" and t["unit"]["boundary"] == []
    r = requests.get(f"{g.gw.url}/api/v1/qr/{code.upper()}", timeout=10)
    assert r.status_code == 200
    r = requests.get(f"{g.gw.url}/api/v1/qr/{'a' * 16}", timeout=10)
    assert r.status_code == 404
    r = requests.get(f"{g.gw.url}/api/v1/qr/not-a-code", timeout=10)
    assert r.status_code == 400 and r.json()["error"]["field"] == "code"
    st, b = g.api("GET", "/api/v1/grid/units/220503001001001001", "staff", "220503")
    r = requests.get(f"{g.gw.url}/api/v1/qr/{b['unit']['qr']}", timeout=10)
    assert r.json()["grid_name"] == "桃源一网格"
    st, c = g.api("GET", "/api/v1/grid/units/220503001001", "staff", "220503")
    assert c["unit"]["qr"] == "", "a community has no code"

    out = os.path.join(g.tmp, "qr")
    r = g.stack.ctl("qr", "--area", "220503001001", "--out", out, "--base-url",
                    "https://zhili.example.cn/")
    assert r.returncode == 0, r.stderr
    files = sorted(os.listdir(out))
    assert "220503001001001.svg" in files and "220503001001001001.svg" in files
    assert not any(f.startswith("220503001001.") for f in files)
    svg = open(os.path.join(out, "220503001001001.svg"), encoding="utf-8").read()
    assert f"https://zhili.example.cn/api/v1/qr/{code}" in svg and "桃源一网格" in svg
    out = os.path.join(g.tmp, "qrpng")
    r = g.stack.ctl("qr", "--area", "220503001001001", "--out", out, "--format", "png")
    assert r.returncode == 0, r.stderr
    png = open(os.path.join(out, "220503001001001.png"), "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    idat = png.index(b"IDAT")
    size = int.from_bytes(png[idat - 4:idat], "big")
    raw = zlib.decompress(png[idat + 4:idat + 4 + size])
    assert len(raw) == width * (width + 1)
    assert g.stack.ctl("qr", "--area", "2205", "--out", out, "--base-url", "ftp://x").returncode == 2
    # Stable across a restart.
    g.stack.kill("grid")
    g.stack.restart("grid")
    g.stack.wait_ready("grid")
    assert requests.get(f"{g.gw.url}/api/v1/qr/{code}", timeout=10).status_code == 200


# ---- bad input ------------------------------------------------------------------------

GM = ("grid_member", "220503001001001")
ST = ("staff", "220503001")
PO = ("police", "220503001001")
KP = {"area": "220503001001001", "category": "drug", "risk": "low", "responsible": "gm1",
      "visit_interval_days": 7, "name": "某人", "id_number": ID_NUMBER}
DIS = {"area": "220503001001001", "type": "family", "level": "major", "description": "d",
       "parties": [{"name": "甲"}]}
VIS = {"visitor": "gm1", "building": "220503001001001001", "room": "101"}
PG = {"name": "n", "area": "220503001001", "station": "s", "officer": "pol1",
      "grids": ["220503001001001"]}
BAD = [
    # units
    (ST, "PUT", "/api/v1/grid/units/2205030010010011", {"name": "x"}, "code"),
    (ST, "PUT", "/api/v1/grid/units/220503001001003", {"name": ""}, "name"),
    (ST, "PUT", "/api/v1/grid/units/220503001001003", {"name": 5}, "name"),
    (ST, "PUT", "/api/v1/grid/units/220503001001003", {"name": "x", "leader": "l" * 65}, "leader"),
    (ST, "PUT", "/api/v1/grid/units/220503001001003", {"name": "x", "branch": "\u0001"}, "branch"),
    (ST, "PUT", "/api/v1/grid/units/220503001001003", {"name": "x", "centroid": {"lat": 95,
                                                                                "long": 1}},
     "centroid"),
    (ST, "PUT", "/api/v1/grid/units/220503001001003", {"name": "x", "centroid": {"lat": "n"}},
     "centroid.lat"),
    (ST, "PUT", "/api/v1/grid/units/220503001001003", {"name": "x", "boundary": [
        {"lat": 1, "long": 1}, {"lat": 2, "long": 2}]}, "boundary"),
    (ST, "PUT", "/api/v1/grid/units/220503001009001", {"name": "x"}, "code"),
    (ST, "PUT", "/api/v1/grid/units/220503001001003", {"name": "x", "qr": "y"}, "qr"),
    (ST, "GET", "/api/v1/grid/units?level=9", None, "level"),
    (ST, "GET", "/api/v1/grid/units?limit=5000", None, "limit"),
    (ST, "GET", "/api/v1/grid/units?after=zz", None, "after"),
    (ST, "GET", "/api/v1/grid/units?parent=12", None, "parent"),
    (ST, "GET", "/api/v1/grid/units?level=x", None, "level"),
    (ST, "GET", "/api/v1/grid/locate?lat=91&long=126", None, "lat"),
    (ST, "GET", "/api/v1/grid/locate?lat=41&long=east", None, "long"),
    (ST, "GET", "/api/v1/grid/units?area=22x", None, "area"),
    # people
    (ST, "PUT", "/api/v1/grid/people/bad%20id", {"name": "x", "kind": "grid_member",
                                                  "area": "220503001001001"}, "id"),
    (ST, "PUT", "/api/v1/grid/people/p9", {"name": "", "kind": "grid_member",
                                           "area": "220503001001001"}, "name"),
    (ST, "PUT", "/api/v1/grid/people/p9", {"name": "x", "kind": "mayor",
                                           "area": "220503001001001"}, "kind"),
    (ST, "PUT", "/api/v1/grid/people/p9", {"name": "x", "kind": "grid_member",
                                           "area": "220503001001009"}, "area"),
    (ST, "PUT", "/api/v1/grid/people/p9", {"name": "x", "kind": "grid_member",
                                           "area": "220503001001001", "phone": "call me"}, "phone"),
    (ST, "PUT", "/api/v1/grid/people/p9", {"name": "x", "kind": "community_police",
                                           "area": "220503001001"}, "station"),
    (ST, "GET", "/api/v1/grid/people?kind=boss", None, "kind"),
    # police grids
    (PO, "PUT", "/api/v1/grid/police-grids/J9", dict(PG, name=""), "name"),
    (PO, "PUT", "/api/v1/grid/police-grids/J9", dict(PG, area="220503001001001"), "area"),
    (PO, "PUT", "/api/v1/grid/police-grids/J9", dict(PG, station=""), "station"),
    (PO, "PUT", "/api/v1/grid/police-grids/J9", dict(PG, officer="ghost"), "officer"),
    (PO, "PUT", "/api/v1/grid/police-grids/J9", dict(PG, grids=[]), "grids"),
    (PO, "PUT", "/api/v1/grid/police-grids/J9", dict(PG, grids=["220503001002001"]), "grids"),
    (PO, "PUT", "/api/v1/grid/police-grids/J9", dict(PG, grids=["220503001001001"] * 2), "grids"),
    # visits
    (GM, "POST", "/api/v1/grid/visits", dict(VIS, visitor="no body"), "visitor"),
    (GM, "POST", "/api/v1/grid/visits", dict(VIS, building="220503001001001"), "building"),
    (GM, "POST", "/api/v1/grid/visits", dict(VIS, room=""), "room"),
    (GM, "POST", "/api/v1/grid/visits", dict(VIS, visited_ms=4102444800000), "visited_ms"),
    (GM, "POST", "/api/v1/grid/visits", dict(VIS, findings="x" * 4001), "findings"),
    (GM, "POST", "/api/v1/grid/visits", dict(VIS, hazards=[{"kind": "ufo"}]), "hazards.kind"),
    (GM, "POST", "/api/v1/grid/visits", dict(VIS, keyperson=999999, building="", room=""),
     "keyperson"),
    (GM, "POST", "/api/v1/grid/visits", dict(VIS, keyperson=1), "room"),
    (GM, "GET", "/api/v1/grid/visits?from=yesterday", None, "from"),
    (GM, "GET", "/api/v1/grid/visits?from=2026-11-27&to=2026-11-26", None, "to"),
    # disputes
    (ST, "POST", "/api/v1/grid/disputes", dict(DIS, area="220503001"), "area"),
    (GM, "POST", "/api/v1/grid/disputes", dict(DIS, parties=[]), "parties"),
    (GM, "POST", "/api/v1/grid/disputes", dict(DIS, parties=[{"name": ""}]), "parties.name"),
    (GM, "POST", "/api/v1/grid/disputes", dict(DIS, parties=[{"name": "a", "contact": "?"}]),
     "parties.contact"),
    (GM, "POST", "/api/v1/grid/disputes", dict(DIS, type="war"), "type"),
    (GM, "POST", "/api/v1/grid/disputes", dict(DIS, level="epic"), "level"),
    (GM, "POST", "/api/v1/grid/disputes", dict(DIS, description=""), "description"),
    (GM, "POST", "/api/v1/grid/disputes", dict(DIS, extra=1), "extra"),
    (GM, "POST", "/api/v1/grid/disputes/abc/sign", {}, "id"),
    (GM, "POST", "/api/v1/grid/disputes/0/sign", {}, "id"),
    (GM, "POST", "/api/v1/grid/disputes/1/mediate", {"handler": ""}, "handler"),
    (GM, "POST", "/api/v1/grid/disputes/1/resolve", {"outcome": ""}, "outcome"),
    (GM, "POST", "/api/v1/grid/disputes/1/fail", {"reason": ""}, "reason"),
    (GM, "POST", "/api/v1/grid/disputes/1/evaluate", {"satisfaction": "meh"}, "satisfaction"),
    (GM, "GET", "/api/v1/grid/disputes?state=closed", None, "state"),
    # key persons
    (PO, "POST", "/api/v1/grid/keypersons", dict(KP, area="220503001001"), "area"),
    (PO, "POST", "/api/v1/grid/keypersons", dict(KP, category="vip"), "category"),
    (PO, "POST", "/api/v1/grid/keypersons", dict(KP, risk="extreme"), "risk"),
    (PO, "POST", "/api/v1/grid/keypersons", dict(KP, responsible="gm2"), "responsible"),
    (PO, "POST", "/api/v1/grid/keypersons", dict(KP, visit_interval_days=0),
     "visit_interval_days"),
    (PO, "POST", "/api/v1/grid/keypersons", dict(KP, visit_interval_days=366),
     "visit_interval_days"),
    (PO, "POST", "/api/v1/grid/keypersons", dict(KP, name=""), "name"),
    (PO, "POST", "/api/v1/grid/keypersons", dict(KP, id_number="110105194912310021"),
     "id_number"),
    (PO, "POST", "/api/v1/grid/keypersons", dict(KP, phone="x"), "phone"),
    (PO, "POST", "/api/v1/grid/keypersons", dict(KP, address="a" * 300), "address"),
    (PO, "POST", "/api/v1/grid/keypersons/1/reveal", {"reason": ""}, "reason"),
    (PO, "GET", "/api/v1/grid/keypersons?overdue=2", None, "overdue"),
    (PO, "GET", "/api/v1/grid/keypersons?category=vip", None, "category"),
    # teams
    (PO, "PUT", "/api/v1/grid/teams/T9", {"name": "", "area": "220503001001",
                                          "leader": "chief1"}, "name"),
    (PO, "PUT", "/api/v1/grid/teams/T9", {"name": "t", "area": "220503001001001",
                                          "leader": "chief1"}, "area"),
    (PO, "PUT", "/api/v1/grid/teams/T9", {"name": "t", "area": "220503001001",
                                          "leader": "chief1", "members": ["ghost"]}, "members"),
    (PO, "PUT", "/api/v1/grid/teams/T9", {"name": "t", "area": "220503001001",
                                          "leader": "chief1", "station": "s" * 129}, "station"),
    # more key persons and disputes
    (PO, "PATCH", "/api/v1/grid/keypersons/2", {"risk": "extreme"}, "risk"),
    (PO, "PATCH", "/api/v1/grid/keypersons/1", {"visit_interval_days": -1},
     "visit_interval_days"),
    (PO, "POST", "/api/v1/grid/keypersons/1/reveal", {"reason": "x"}, "reason"),
    (PO, "GET", "/api/v1/grid/keypersons/1/personal?grant=", None, "grant"),
    (GM, "POST", "/api/v1/grid/disputes/1/evaluate", {"satisfaction": "basic",
                                                     "comment": "c" * 501}, "comment"),
    (ST, "GET", "/api/v1/grid/locate?long=126", None, "lat"),
    (ST, "PUT", "/api/v1/grid/centers/220503001001001001/101", {"member": "x", "phone": "?"},
     "phone"),
    # party-member central households
    (ST, "PUT", "/api/v1/grid/centers/220503001001001/101", {"member": "x"}, "building"),
    (ST, "PUT", "/api/v1/grid/centers/220503001001001001/101", {"member": ""}, "member"),
    (ST, "PUT", "/api/v1/grid/centers/220503001001001001/101",
     {"member": "x", "households": ["102", "102"]}, "households"),
]


def test_bad_input_names_the_field_and_changes_nothing(g):
    """Every bad field of every route: HTTP 400 naming the field, and no event."""
    seq = g.last_seq()
    failures = []
    for (role, area), method, path, body, field in BAD:
        st, r = g.api(method, path, role, area, body)
        got = r.get("error", {}).get("field") if isinstance(r, dict) else r
        if st != 400 or got != field:
            failures.append((method, path, body, field, st, r))
    assert not failures, "\n".join(map(str, failures))
    assert g.last_seq() == seq, "a refused input changed something"
    # Malformed JSON and the wrong content type are the gateway's, also named.
    r = requests.post(g.gw.url + "/api/v1/grid/disputes", data="{",
                      headers=dict(Gateway.auth(g.token(*GM)[0]),
                                   **{"Content-Type": "application/json"}), timeout=10)
    assert r.status_code == 400 and r.json()["error"]["field"] == "body"
    assert g.last_seq() == seq


def test_centers_and_idempotent_writes(g):
    """Party-member central households (党员中心户, building + room) are the fifth
    level; a resent write with the same Idempotency-Key is applied once."""
    body = {"member": "党员老李", "phone": "13600000000", "households": ["102", "201", "202"]}
    path = "/api/v1/grid/centers/220503001001001001/101"
    st, c = g.api("PUT", path, "staff", "220503001", body, key="center-1")
    assert st == 200 and c["grid"] == "220503001001001", c
    seq = g.last_seq()
    st, c2 = g.api("PUT", path, "staff", "220503001", body, key="center-1")
    assert st == 200 and c2 == c and g.last_seq() == seq
    st, c3 = g.api("PUT", path, "staff", "220503001", body)   # same content, new key
    assert st == 200 and g.last_seq() == seq, "an unchanged center emitted an event"
    st, lst = g.api("GET", "/api/v1/grid/centers", "grid_member", "220503001001001")
    assert st == 200 and [x["room"] for x in lst["centers"]] == ["101"]
    st, gone = g.api("DELETE", path, "staff", "220503001")
    assert st == 200 and gone["removed"]
    assert g.api("DELETE", path, "staff", "220503001")[0] == 404
