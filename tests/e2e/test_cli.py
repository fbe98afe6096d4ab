"""The CLI as a user drives it: serve, tenants, datasets, submit --wait, events (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import CONTACTS_SCHEMA, contacts, write_csv

IMPORTER = [sys.executable, "-m", "app.cli"]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IMPORTER, *args], env=env, capture_output=True, text=True, timeout=600)


def test_a_200k_row_csv_imports_through_submit_wait(served: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, env = served
    created = _cli(env, "tenants", "create", "acme", "--json")
    assert created.returncode == 0, created.stderr
    creds = json.loads(created.stdout)
    assert set(creds) >= {"tenant", "native", "yesmail", "thalamus", "teamtracks", "admin"}
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(CONTACTS_SCHEMA))
    made = _cli(env, "datasets", "create", "contacts", "--tenant", "acme", "--schema", str(schema))
    assert made.returncode == 0, made.stderr
    path = write_csv(tmp_path / "big.csv", contacts(200_000))
    done = _cli(
        {**env, "IMPORTER_URL": url, "IMPORTER_TOKEN": creds["native"]["token"]},
        "submit", str(path), "--dataset", "contacts", "--wait",
    )
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout.strip().splitlines()[-1])
    assert final["state"] == "completed"
    assert final["rows"]["created"] == 200_000 and final["rows"]["failed"] == 0
    assert "created 200000" in done.stderr
    events = _cli(env, "events", str(final["id"]))
    types = [json.loads(line)["type"] for line in events.stdout.splitlines()]
    assert types[0] == "import_requested" and types[-1] == "import_completed"
    assert types.count("chunk_applied") == 40


def test_submit_exits_non_zero_when_the_import_fails(served: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, env = served
    creds = json.loads(_cli(env, "tenants", "create", "acme", "--json").stdout)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(CONTACTS_SCHEMA))
    _cli(env, "datasets", "create", "contacts", "--tenant", "acme", "--schema", str(schema))
    rows = contacts(50)
    for r in rows[1:]:
        r[2] = "nope"
    path = write_csv(tmp_path / "bad.csv", rows)
    done = _cli(
        {**env, "IMPORTER_URL": url, "IMPORTER_TOKEN": creds["native"]["token"]},
        "submit", str(path), "--dataset", "contacts", "--threshold", "3", "--wait",
    )
    assert done.returncode == 1
    assert "threshold" in done.stderr
    refused = _cli({**env, "IMPORTER_URL": url, "IMPORTER_TOKEN": "wrong"}, "submit", str(path), "--dataset", "contacts")
    assert refused.returncode == 2 and "401" in refused.stderr


def test_tenants_create_refuses_reserved_duplicate_and_blank_names(tmp_path: Path) -> None:
    env = {**os.environ, "IMPORTER_DATA_DIR": str(tmp_path / "data")}
    env.pop("IMPORTER_REDIS_URL", None)
    env.pop("IMPORTER_DATABASE_URL", None)
    assert _cli(env, "tenants", "create", "acme").returncode == 0
    blank = "names use ASCII letters"
    for name, said in (("__ops__", "is reserved"), ("acme", "already exists"), (" ", blank), ("x ", blank), ("a\u202eb", blank)):
        refused = _cli(env, "tenants", "create", name)
        assert refused.returncode == 1 and said in refused.stderr, (name, refused.stderr)
