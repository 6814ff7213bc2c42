"""Fault test of the reliable bus: the broker, two producers and three
consumers on loopback; 100k commands while subscribers, a producer and the
broker are killed with SIGKILL at random moments and restarted. Every command
acknowledged OK must be applied exactly once, and every consumer's applied
sequence must equal each producer's outbox (same count, same BLAKE2b chain,
no duplicate, nothing out of order)."""
import json
import os
import random
import subprocess
import time

from zhili_stack import BIN

COMMANDS = int(os.environ.get("ZHILI_FAULT_COMMANDS", "100000"))
PRODUCERS = ["prod-a", "prod-b"]
CONSUMERS = ["cons-1", "cons-2", "cons-3"]


def test_kill9_everyone_under_load(stack):
    seed = int(os.environ.get("ZHILI_FAULT_SEED", str(int(time.time()))))
    rnd = random.Random(seed)
    print(f"seed={seed}")
    stack.broker()
    for p in PRODUCERS:
        stack.testsvc(p)
    for c in CONSUMERS:
        stack.testsvc(c, consume=",".join(p + "." for p in PRODUCERS))
    for name in PRODUCERS + CONSUMERS:
        stack.wait_ready(name)

    load = subprocess.Popen(
        [os.path.join(BIN, "zhili-testload"), ",".join(PRODUCERS), str(COMMANDS), "100",
         "fault", "240"],
        env=stack.env, stdout=subprocess.PIPE, text=True)
    victims = [rnd.choice(CONSUMERS), rnd.choice(PRODUCERS), "broker", rnd.choice(CONSUMERS),
               rnd.choice(PRODUCERS)]
    killed = []
    for victim in victims:
        time.sleep(rnd.uniform(0.05, 0.4))
        if load.poll() is not None:
            break
        stack.kill(victim)
        killed.append(victim)
        time.sleep(rnd.uniform(0.05, 0.3))
        stack.restart(victim)
    out, _ = load.communicate(timeout=300)
    result = json.loads(out)
    print(f"killed={killed} load={result}")
    assert load.returncode == 0, result
    # The faults must have hit the load, or the test proves nothing.
    assert len(killed) >= 3, killed
    assert result["acked"] == COMMANDS

    # Exactly once at the producers: each OK command added 1 exactly once.
    for p in PRODUCERS:
        stack.wait_ready(p)
        rc, got = stack.call(p, {"counter_get": {"name": "c"}})
        assert rc == 0, got
        assert got["counter"]["value"] == result["per_service"][p], (p, got)
        assert got["counter"]["adds"] == result["per_service"][p]

    # Every consumer converges to each producer's outbox.
    want = {p: stack.applied(p, p) for p in PRODUCERS}
    for p in PRODUCERS:
        assert want[p]["applied"] == result["per_service"][p]
    end = time.time() + 90
    pending = {(c, p) for c in CONSUMERS for p in PRODUCERS}
    while pending and time.time() < end:
        for c, p in sorted(pending):
            got = stack.applied(c, p)
            assert got["duplicates"] == 0 and got["out_of_order"] == 0, (c, p, got)
            if got["cursor"] == want[p]["cursor"]:
                assert got == want[p] | {"source": p}, (c, p, got, want[p])
                pending.discard((c, p))
        time.sleep(0.5)
    assert not pending, f"not converged: {pending}"
