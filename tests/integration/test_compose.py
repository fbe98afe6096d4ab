"""The production topology as written: compose.yaml and the Dockerfile describe a sound scaled deployment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from actors.settings import AWS_VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[2]
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _depends(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec.get("condition", "") for name, spec in (service.get("depends_on") or {}).items()}


def test_services_replicas_and_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"redis", "postgres", "minio", "minio-bucket", "api", "worker"} <= services.keys()
    for name, data in (("postgres", "/var/lib/postgresql/data"), ("minio", "/data")):
        volumes = [v.split(":") for v in services[name]["volumes"]]
        assert any(target == data and vol in compose["volumes"] for vol, target, *_ in volumes), f"{name} keeps no data"
    assert services["api"]["deploy"]["replicas"] >= 2
    assert services["worker"]["deploy"]["replicas"] >= 1
    for name in ("api", "worker"):
        assert services[name].get("restart") in ("always", "unless-stopped", "on-failure"), f"{name} must come back after a crash"


def test_healthchecks_and_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("redis", "postgres", "minio", "api"):
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"
    assert "/ready" in " ".join(services["api"]["healthcheck"]["test"])
    assert _depends(services["minio-bucket"]) == {"minio": "service_healthy"}
    for name in ("api", "worker"):
        assert _depends(services[name]) == {
            "redis": "service_healthy", "postgres": "service_healthy", "minio-bucket": "service_completed_successfully",
        }


def test_commands_and_blobs_in_object_storage_with_no_shared_disk(compose: dict[str, Any]) -> None:
    services = compose["services"]
    api, worker = services["api"], services["worker"]
    assert api["command"][:2] == ["importer", "serve"] and "0.0.0.0" in api["command"]
    assert worker["command"][:2] == ["importer", "worker"]
    for service in (api, worker):  # any host can run either: nothing is mounted
        assert not service.get("volumes"), service.get("volumes")
        env = _env(service)
        bucket = env["IMPORTER_BLOB_URL"].removeprefix("s3://").split("/")[0]
        assert env["IMPORTER_BLOB_URL"].startswith("s3://") and env["AWS_ENDPOINT_URL"] == "http://minio:9000"
        assert f"local/{bucket}" in " ".join(services["minio-bucket"]["entrypoint"]), "the bucket is created before use"
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
            _env(services["minio"])["MINIO_ROOT_USER"], _env(services["minio"])["MINIO_ROOT_PASSWORD"])


def test_settings_come_only_from_the_environment(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("api", "worker"):
        env = _env(services[name])
        assert {"IMPORTER_DATABASE_URL", "IMPORTER_REDIS_URL", "IMPORTER_DATA_DIR"} <= env.keys()
        assert env["IMPORTER_REDIS_URL"].startswith("redis://redis:")
        assert "@postgres:" in env["IMPORTER_DATABASE_URL"]
        for key in env:
            known = key.startswith("IMPORTER_") and key[9:].lower() in Settings.__struct_fields__
            assert known or key in AWS_VARIABLES.values(), f"{name}: unknown setting {key}"
        assert not any(str(part).startswith("--") and "=" in str(part) for part in services[name]["command"])


def test_no_secrets_but_the_demo_database_and_object_store_passwords(compose: dict[str, Any]) -> None:
    password = _env(compose["services"]["postgres"])["POSTGRES_PASSWORD"]
    demo = compose["x-s3-demo-credentials"]
    for name, service in compose["services"].items():
        for key, val in _env(service).items():
            if SECRETISH.search(key) and (name, key) != ("postgres", "POSTGRES_PASSWORD"):
                assert val in (demo["user"], demo["password"]), f"{name} sets a secret: {key}"
            for user_pass in re.findall(r"://([^/@\s]+)@", val):
                assert user_pass.partition(":")[2] in ("", password), f"{name}: {key} carries another credential"
    text = (ROOT / "compose.yaml").read_text()
    assert not re.search(r"whsec_|imp_[A-Za-z0-9_-]{8,}|ops_[A-Za-z0-9_-]{8,}", text)


def test_the_dockerfile_installs_the_package() -> None:
    dockerfile = ROOT / "Dockerfile"
    assert dockerfile.exists()
    text = dockerfile.read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", text, re.MULTILINE)
    for part in ("pyproject.toml", "app", "actors", "events"):
        assert re.search(rf"^COPY .*\b{part}\b", text, re.MULTILINE), f"the image lacks {part}"
    assert re.search(r"^RUN .*pip install [^\n]*\s\.(\s|$)", text, re.MULTILINE), "the package is not installed"
    assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE), "the service should not run as root"
    assert "importer" in text.splitlines()[-1] or re.search(r'^CMD \["importer"', text, re.MULTILINE)
