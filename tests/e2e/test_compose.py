# Goal: the deployment files stay deployable. docker-compose.yml must pass Debian's offline
# `docker-compose config -q` check (and that check must really reject broken files, shown by
# mutated copies that fail), every service must have a healthcheck and a restart policy, and
# the Dockerfile's runtime stage must be debian:bookworm-slim. No Docker engine is needed.
#
# Run: /usr/bin/python3 -m pytest tests/e2e/test_compose.py   (ZHILI_SRC = repo root)
import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

SRC = pathlib.Path(
    os.environ.get("ZHILI_SRC") or pathlib.Path(__file__).resolve().parents[2]
).resolve()
COMPOSE = SRC / "docker-compose.yml"
DOCKERFILE = SRC / "Dockerfile"
DOCKER_COMPOSE = shutil.which("docker-compose")


def compose_config(path, *extra):
    """Runs `docker-compose -f <path> config <extra>` offline; returns the CompletedProcess."""
    assert DOCKER_COMPOSE, "docker-compose is not installed (./dev deps installs it)"
    env = dict(os.environ)
    env.pop("COMPOSE_FILE", None)
    env.pop("DOCKER_HOST", None)
    return subprocess.run(
        [DOCKER_COMPOSE, "-f", str(path), "config", *extra],
        cwd=str(pathlib.Path(path).parent),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def load_compose():
    return yaml.safe_load(COMPOSE.read_text())


def write_copy(tmp_path, doc):
    """Writes a compose document next to a Dockerfile copy, so only the mutation differs."""
    shutil.copy(DOCKERFILE, tmp_path / "Dockerfile")
    out = tmp_path / "docker-compose.yml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def test_compose_file_passes_offline_check():
    r = compose_config(COMPOSE, "-q")
    assert r.returncode == 0, f"docker-compose config -q failed:\n{r.stdout}\n{r.stderr}"


def test_unmodified_copy_passes(tmp_path):
    # Control for the negative tests below: the copying itself does not break the file.
    r = compose_config(write_copy(tmp_path, load_compose()), "-q")
    assert r.returncode == 0, r.stderr


def test_unknown_key_is_rejected(tmp_path):
    doc = load_compose()
    first = next(iter(doc["services"]))
    doc["services"][first]["no_such_compose_key"] = "x"
    r = compose_config(write_copy(tmp_path, doc), "-q")
    assert r.returncode != 0, "an unknown key passed the compose check"
    assert "no_such_compose_key" in r.stderr


def test_depends_on_missing_service_is_rejected(tmp_path):
    doc = load_compose()
    first = next(iter(doc["services"]))
    doc["services"][first]["depends_on"] = ["no-such-service"]
    r = compose_config(write_copy(tmp_path, doc), "-q")
    assert r.returncode != 0, "depends_on naming a missing service passed the compose check"
    assert "no-such-service" in r.stderr


def test_every_service_has_healthcheck_and_restart():
    # Use compose's own normalised view, so anchors/extends are resolved as compose sees them.
    r = compose_config(COMPOSE)
    assert r.returncode == 0, r.stderr
    services = yaml.safe_load(r.stdout)["services"]
    assert "broker" in services
    for name, svc in services.items():
        hc = svc.get("healthcheck")
        assert hc and hc.get("test") and not hc.get("disable"), f"{name}: no healthcheck"
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), (
            f"{name}: restart policy is {svc.get('restart')!r}"
        )


def test_broker_ports_not_published_on_host():
    services = load_compose()["services"]
    assert "ports" not in services["broker"], "broker ports must stay on the compose network"


def dockerfile_stages():
    """[(image, stage_name_or_None)] for every FROM line, in order."""
    stages = []
    for line in DOCKERFILE.read_text().splitlines():
        m = re.match(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$", line, re.I)
        if m:
            stages.append((m.group(1), m.group(2)))
    return stages


def test_dockerfile_runtime_stage_is_bookworm_slim():
    stages = dockerfile_stages()
    assert len(stages) >= 2, f"expected a multi-stage Dockerfile, got {stages}"
    assert stages[0][0] == "debian:bookworm", stages
    assert stages[-1][0] == "debian:bookworm-slim", f"runtime stage is {stages[-1][0]}"


def test_dockerfile_runs_as_non_root():
    text = DOCKERFILE.read_text()
    runtime = text[text.rindex("FROM ") :]
    users = re.findall(r"^\s*USER\s+(\S+)", runtime, re.M)
    assert users and users[-1] not in ("root", "0"), f"runtime USER is {users}"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))


def test_image_ships_no_test_binaries(tmp_path):
    """The image copies what `cmake --install` puts out: the shipped binaries,
    never the test service, the load driver or the benchmarks."""
    build = pathlib.Path(os.environ.get("ZHILI_BIN", SRC / "build" / "bin")).parent
    r = subprocess.run(["cmake", "--install", str(build), "--prefix", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    shipped = sorted(p.name for p in (tmp_path / "bin").iterdir())
    assert "zhili-broker" in shipped and "zhilictl" in shipped
    assert not [n for n in shipped if "test" in n or "bench" in n], shipped


def test_services_start_after_a_healthy_broker():
    # Every other service waits for the broker's healthcheck (zhilictl stats), not only for
    # its container to exist: depends_on in the long form with condition service_healthy.
    doc = load_compose()
    for name, svc in doc["services"].items():
        if name == "broker":
            continue
        dep = svc.get("depends_on")
        assert isinstance(dep, dict) and dep.get("broker", {}).get("condition") == \
            "service_healthy", f"{name}: depends_on broker without condition service_healthy"
