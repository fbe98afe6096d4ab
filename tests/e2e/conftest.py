"""Fixtures for the end-to-end tests: the real `importer serve` in a process of its own."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import CONTACTS_SCHEMA, IMPORTER, serving_importer


@pytest.fixture
def served_process(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], subprocess.Popen[bytes]]]:
    """`importer serve` on the embedded default, in its own process and data dir."""
    env = {**os.environ, "IMPORTER_DATA_DIR": str(tmp_path / "data"), "IMPORTER_LOG_FORMAT": "json"}
    env.pop("IMPORTER_REDIS_URL", None)
    env.pop("IMPORTER_DATABASE_URL", None)
    with serving_importer(env, tmp_path / "serve.log") as (url, proc):
        yield url, env, proc


@pytest.fixture
def served(served_process: tuple[str, dict[str, str], subprocess.Popen[bytes]]) -> tuple[str, dict[str, str]]:
    """The served API's URL and the environment that reaches its data dir."""
    return served_process[0], served_process[1]


@pytest.fixture
def acme(served: tuple[str, dict[str, str]], tmp_path: Path) -> tuple[str, dict[str, str], str]:
    """The served API with tenant acme and its contacts dataset, made through the CLI: (url, env, native token)."""
    url, env = served
    made = subprocess.run([*IMPORTER, "tenants", "create", "acme", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(CONTACTS_SCHEMA))
    subprocess.run([*IMPORTER, "datasets", "create", "contacts", "--tenant", "acme", "--schema", str(schema)],
                   env=env, capture_output=True, check=True, timeout=120)
    return url, env, str(json.loads(made.stdout)["native"]["token"])
