"""compose.yaml against what it runs: the image make image builds (its name, port, volume,
read-only root), and deploy/haproxy's configuration (the variables it reads). No compose runs
here (no registry for HAProxy's image); the image itself is tried in test_image.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def dockerfile(pattern: str) -> str:
    found = re.search(pattern, (ROOT / "Dockerfile").read_text(), re.M)
    assert found, pattern
    return found.group(1)


def test_one_server_by_default_two_replicas_behind_haproxy_by_profile() -> None:
    services = compose()["services"]
    default = [name for name, s in services.items() if "profiles" not in s]
    assert default == ["realtime"]
    assert {name for name, s in services.items() if "replicas" in s.get("profiles", [])} == {
        "replica-1", "replica-2", "haproxy"}
    port = dockerfile(r"^EXPOSE (\d+)$")
    assert services["realtime"]["ports"] == [f"127.0.0.1:{port}:{port}"]


def test_the_servers_run_the_image_as_make_image_names_it() -> None:
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version
    volume = dockerfile(r'^VOLUME \["([^"]+)"\]$')
    for name in ("realtime", "replica-1", "replica-2"):
        server = compose()["services"][name]
        assert server["image"] == f"${{REALTIME_IMAGE:-realtime:{version.group(1)}-cpu}}"
        assert server["build"]["context"] == "."
        assert server["read_only"] and server["tmpfs"] == ["/tmp"]
        assert [v.split(":", 1)[1] for v in server["volumes"]] == [volume]
        # longer than the drain (REALTIME_DRAIN_TIMEOUT_S, 30 s) and the processes' stop
        assert int(server["stop_grace_period"].rstrip("s")) > 30


def test_haproxy_gets_the_variables_its_configuration_reads() -> None:
    cfg = (ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()
    read = set(re.findall(r"\$\{(REALTIME_[A-Z0-9_]+)", cfg))
    haproxy = compose()["services"]["haproxy"]
    assert set(haproxy["environment"]) <= read
    port = dockerfile(r"^EXPOSE (\d+)$")
    assert haproxy["environment"]["REALTIME_REPLICA_1"] == f"replica-1:{port}"
    assert haproxy["environment"]["REALTIME_REPLICA_2"] == f"replica-2:{port}"
    assert "./deploy/haproxy/haproxy.cfg:" in haproxy["volumes"][0]
