"""Start real zhili processes on loopback for end-to-end tests.

Every stack gets free ports and its own data directory, so ctest can run
tests in parallel. Nothing here imitates ZeroMQ, LMDB or HTTP: the tests talk
to the real binaries over sockets (and through `zhilictl`)."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("ZHILI_SRC", os.path.abspath(os.path.join(HERE, "..", "..")))
BIN = os.environ.get("ZHILI_BIN", os.path.join(SRC, "build", "bin"))


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Stack:
    """A broker plus any number of named processes, with shared endpoints."""

    def __init__(self, tmp=None, heartbeat_ms=None):
        # Short heartbeats make failover quick in tests; sanitizer builds are
        # slow enough to need longer ones (ZHILI_E2E_HEARTBEAT_MS).
        heartbeat_ms = heartbeat_ms or int(os.environ.get("ZHILI_E2E_HEARTBEAT_MS", "200"))
        self.dir = tmp or tempfile.mkdtemp(prefix="zhili-e2e-")
        self.data = os.path.join(self.dir, "data")
        self.logs = os.path.join(self.dir, "logs")
        os.makedirs(self.logs, exist_ok=True)
        p = free_ports(3)
        self.env = dict(os.environ)
        self.env.update({
            "ZHILI_BROKER": f"tcp://127.0.0.1:{p[0]}",
            "ZHILI_EVENTS_PUB": f"tcp://127.0.0.1:{p[1]}",
            "ZHILI_EVENTS_SUB": f"tcp://127.0.0.1:{p[2]}",
            "ZHILI_BROKER_BIND": f"tcp://127.0.0.1:{p[0]}",
            "ZHILI_EVENTS_XSUB_BIND": f"tcp://127.0.0.1:{p[1]}",
            "ZHILI_EVENTS_XPUB_BIND": f"tcp://127.0.0.1:{p[2]}",
            "ZHILI_DATA": self.data,
            "ZHILI_HEARTBEAT_MS": str(heartbeat_ms),
            "ZHILI_LOG": "info",
        })
        self.procs = {}
        self.specs = {}

    # -- processes ---------------------------------------------------------
    def start(self, name, binary, **env):
        """Start (or restart) process `name` running build/bin/<binary>."""
        self.specs[name] = (binary, env)
        e = dict(self.env)
        e.update({k: str(v) for k, v in env.items()})
        log = open(os.path.join(self.logs, f"{name}.log"), "ab")
        self.procs[name] = subprocess.Popen([os.path.join(BIN, binary)], env=e,
                                            stdout=log, stderr=log)
        log.close()
        return self.procs[name]

    def restart(self, name):
        binary, env = self.specs[name]
        return self.start(name, binary, **env)

    def broker(self):
        return self.start("broker", "zhili-broker")

    def testsvc(self, name, consume=None, **env):
        if consume:
            env["ZHILI_TESTSVC_CONSUME"] = consume
        return self.start(name, "zhili-testsvc", ZHILI_SERVICE_NAME=name, **env)

    def kill(self, name, sig=signal.SIGKILL):
        p = self.procs.get(name)
        if p and p.poll() is None:
            p.send_signal(sig)
            p.wait(timeout=10)

    def alive(self, name):
        p = self.procs.get(name)
        return p is not None and p.poll() is None

    def stop(self):
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)

    def log(self, name):
        with open(os.path.join(self.logs, f"{name}.log"), errors="replace") as f:
            return f.read()

    # -- the CLI -----------------------------------------------------------
    def ctl(self, *args, timeout=30, check=False):
        r = subprocess.run([os.path.join(BIN, "zhilictl"), *args], env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"zhilictl {args} -> {r.returncode}: {r.stdout} {r.stderr}")
        return r

    def call(self, service, command, timeout_ms=10000):
        """Send a Command (a dict) and return (exit status, reply dict or None)."""
        r = self.ctl("call", service, json.dumps(command), "--timeout", str(timeout_ms),
                     timeout=timeout_ms / 1000 + 10)
        reply = json.loads(r.stdout) if r.stdout.strip() else None
        return r.returncode, reply

    def wait_ready(self, service, timeout_s=10):
        """Until `service` answers a stats query."""
        end = time.time() + timeout_s
        while time.time() < end:
            rc, reply = self.call(service, {"stats": {}}, timeout_ms=1000)
            if rc == 0:
                return reply
        raise AssertionError(f"{service} did not become ready:\n{self.log(service)}")

    def stats(self, service):
        rc, reply = self.call(service, {"stats": {}})
        assert rc == 0, reply
        return {(s["name"], s["labels"]): s["value"] for s in reply["stats"]["stats"]}

    def applied(self, service, source):
        rc, reply = self.call(service, {"applied_get": {"source": source}})
        assert rc == 0, reply
        return reply["applied"]


class Gateway:
    """A gateway process on a free port, with helpers for tokens and HTTP."""

    def __init__(self, stack, name="gateway", **env):
        self.stack = stack
        self.name = name
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        env.setdefault("ZHILI_GATEWAY_TEST_ROUTES", "1")
        env.setdefault("ZHILI_CALL_TIMEOUT_MS", "3000")
        env["ZHILI_HTTP"] = f"127.0.0.1:{self.port}"
        self.env = env
        self.start()

    def start(self):
        self.stack.start(self.name, "zhili-gateway", **self.env)
        self.wait_up()

    def wait_up(self, timeout_s=10):
        import requests
        end = time.time() + timeout_s
        while time.time() < end:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError("gateway did not come up:\n" + self.stack.log(self.name))

    def token(self, role, area="", name="test"):
        """Create a token through zhilictl; returns (token, id)."""
        args = ["token", "create", "--role", role, "--name", name]
        if area:
            args += ["--area", area]
        r = self.stack.ctl(*args, check=True)
        kv = dict(line.split("=", 1) for line in r.stdout.split() if "=" in line)
        return kv["token"], kv["id"]

    @staticmethod
    def auth(token):
        return {"Authorization": "Bearer " + token}
