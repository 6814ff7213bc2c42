#!/usr/bin/env python3
"""Start the real zhili stack for the browser test (tests/browser/dashboard.test.mjs).

broker, grid, petitions, reporting, funds and gateway (with ZHILI_WEB_ASSETS), on free ports,
data in a temporary directory; imports deploy/demo/units.csv. Prints one JSON line
{url, token, hotline, dir} on stdout, then runs until stdin closes or SIGTERM, and stops all
(the data directory is removed unless ZHILI_BROWSER_KEEP is set).
"""
import json
import os
import shutil
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from zhili_stack import SRC, Gateway, Stack  # noqa: E402


def main():
    assets = sys.argv[1] if len(sys.argv) > 1 else ""
    stack = Stack()
    try:
        stack.broker()
        stack.start("grid", "zhili-grid", ZHILI_GRID_KEY=os.urandom(32).hex())
        stack.start("petitions", "zhili-petitions")
        stack.start("funds", "zhili-funds", ZHILI_FUNDS_PWHASH="test-fast")
        stack.start("reporting", "zhili-reporting")
        for svc in ("grid", "petitions", "reporting"):
            stack.wait_ready(svc, timeout_s=20)
        gw = Gateway(stack, ZHILI_WEB_ASSETS=assets, ZHILI_GATEWAY_TEST_ROUTES="0")
        r = stack.ctl("import", "units", os.path.join(SRC, "deploy", "demo", "units.csv"))
        if r.returncode != 0:
            raise RuntimeError("units import failed: " + r.stdout + r.stderr)
        token, _ = gw.token("admin", name="browser test")
        hotline, _ = gw.token("hotline", area="370612", name="browser hotline")
        print(json.dumps({"url": gw.url, "token": token, "hotline": hotline, "dir": stack.dir}),
              flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        sys.stdin.read()  # until the test closes our stdin (or dies)
    finally:
        stack.stop()
        if not os.environ.get("ZHILI_BROWSER_KEEP"):
            shutil.rmtree(stack.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
