#!/usr/bin/env python3
"""Start the real zhili stack for the browser test (tests/browser/dashboard.test.mjs).

broker, grid, petitions, reporting, funds, budgets and gateway (with ZHILI_WEB_ASSETS), on free
ports, data in a temporary directory; imports deploy/demo/units.csv. Prints one JSON line
{url, token, hotline, roles, dir} on stdout, then runs until stdin closes or SIGTERM, and stops
all (the data directory is removed unless ZHILI_BROWSER_KEEP is set).

`roles` holds one token of every role of docs/auth.md, {role: {token, id, area}}, each scoped to
an area on the path down to the compound COMPOUND (正阳一网格), so the test can log in as each
and check what the page shows it.
"""
import json
import os
import shutil
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from zhili_stack import SRC, Gateway, Stack  # noqa: E402

COMPOUND = "370612001001001"  # 烟台市牟平区 宁海街道 正阳社区 正阳一网格
# role -> (area, name): the people of DESIGN §1, where each would typically sit
ROLES = {
    "admin": ("", "系统管理员"),
    "command_center": ("370612", "牟平区指挥中心"),
    "hotline": ("370612", "12345热线"),
    "staff": ("370612001", "宁海街道 王主任"),
    "grid_member": (COMPOUND, "正阳一网格 陈网格员"),
    "police": ("370612001001", "正阳社区 王警官"),
    "committee": (COMPOUND, "正阳一网格 业委会主任"),
    "supervisor": (COMPOUND, "正阳一网格 小区监察人"),
    "property": (COMPOUND, "正阳物业公司"),
    "party_branch": (COMPOUND, "正阳一网格党支部"),
    "resident": (COMPOUND, "正阳一网格 居民"),
}


def main():
    assets = sys.argv[1] if len(sys.argv) > 1 else ""
    stack = Stack()
    try:
        stack.broker()
        stack.start("grid", "zhili-grid", ZHILI_GRID_KEY=os.urandom(32).hex())
        stack.start("petitions", "zhili-petitions")
        stack.start("funds", "zhili-funds", ZHILI_FUNDS_PWHASH="test-fast")
        stack.start("budgets", "zhili-budgets")
        stack.start("reporting", "zhili-reporting")
        for svc in ("grid", "petitions", "reporting", "funds", "budgets"):
            stack.wait_ready(svc, timeout_s=20)
        gw = Gateway(stack, ZHILI_WEB_ASSETS=assets, ZHILI_GATEWAY_TEST_ROUTES="0")
        r = stack.ctl("import", "units", os.path.join(SRC, "deploy", "demo", "units.csv"))
        if r.returncode != 0:
            raise RuntimeError("units import failed: " + r.stdout + r.stderr)
        token, _ = gw.token("admin", name="browser test")
        hotline, _ = gw.token("hotline", area="370612", name="browser hotline")
        roles = {}
        for role, (area, name) in ROLES.items():
            t, i = gw.token(role, area=area, name=name)
            roles[role] = {"token": t, "id": i, "area": area}
        print(json.dumps({"url": gw.url, "token": token, "hotline": hotline, "roles": roles,
                          "compound": COMPOUND, "dir": stack.dir}), flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        sys.stdin.read()  # until the test closes our stdin (or dies)
    finally:
        stack.stop()
        if not os.environ.get("ZHILI_BROWSER_KEEP"):
            shutil.rmtree(stack.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
