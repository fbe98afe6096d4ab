"""The CLI as a user drives it: serve, tenants, datasets, submit --wait, events (real processes)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from events.db import make_engine
from tests.support import CONTACTS_SCHEMA, IMPORTER, contacts, redis_url, write_csv


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


def test_submit_exits_non_zero_when_the_import_fails(acme: tuple[str, dict[str, str], str], tmp_path: Path) -> None:
    url, env, token = acme
    rows = contacts(50)
    for r in rows[1:]:
        r[2] = "nope"
    path = write_csv(tmp_path / "bad.csv", rows)
    done = _cli(
        {**env, "IMPORTER_URL": url, "IMPORTER_TOKEN": token},
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


def test_serve_help_says_the_worker_runs_in_a_child_process() -> None:
    shown = " ".join(_cli(dict(os.environ), "serve", "--help").stdout.split())
    assert "in a child process" in shown and "same process" not in shown


def test_worker_processes_signalled_as_a_group_log_each_line_once(tmp_path: Path, redis_namespace: str) -> None:
    """Ctrl-C in a terminal (or `timeout`, or a service manager) signals the whole process group,
    and the parent forwards the signal too (and people press Ctrl-C twice): every child still stops
    once and says so once."""
    env = {
        **os.environ, "IMPORTER_DATA_DIR": str(tmp_path / "data"), "IMPORTER_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "IMPORTER_REDIS_URL": redis_url(), "IMPORTER_REDIS_NAMESPACE": redis_namespace, "IMPORTER_LOG_FORMAT": "json",
    }
    make_engine(env["IMPORTER_DATABASE_URL"]).dispose()  # the schema exists before two processes open it
    log = tmp_path / "worker.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([*IMPORTER, "worker", "--processes", "2", "--threads", "1"], env=env, stderr=err, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("consuming") < 2:
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGTERM)
        while log.read_text().count("received signal") < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):  # and again while they stop, as a second Ctrl-C does
            os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    ours = [(line["logger"], line["message"]) for line in lines if line["logger"].startswith("importer")]
    stopping = [m for _, m in ours if "received signal" in m]
    assert len(stopping) == 2 and len({m.split()[1] for m in stopping}) == 2, ours  # one line per child
    assert len(ours) == len(set(ours)), ours


def test_submit_dry_run_reports_the_counts_and_writes_nothing(acme: tuple[str, dict[str, str], str], tmp_path: Path) -> None:
    url, env, token = acme
    rows = contacts(30)
    rows[5][2] = "x"
    path = write_csv(tmp_path / "c.csv", rows)
    env = {**env, "IMPORTER_URL": url, "IMPORTER_TOKEN": token}
    done = _cli(env, "submit", str(path), "--dataset", "contacts", "--dry-run", "--wait")
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout.strip().splitlines()[-1])
    assert final["dry_run"] is True and final["state"] == "completed"
    assert (final["rows"]["created"], final["rows"]["failed"]) == (29, 1)
    assert "dry run" in done.stderr and "created 29" in done.stderr
    dataset = httpx.get(f"{url}/datasets/contacts", headers={"Authorization": f"Bearer {token}"})
    assert dataset.json()["records"] == 0


def test_submit_encoding_reads_a_cp1252_file_and_an_invalid_byte_is_refused_by_line(
    acme: tuple[str, dict[str, str], str], tmp_path: Path
) -> None:
    url, env, token = acme
    env = {**env, "IMPORTER_URL": url, "IMPORTER_TOKEN": token}
    path = tmp_path / "cp1252.csv"
    path.write_bytes("email,name\r\na@example.com,€ Zoë\r\n".encode("cp1252"))
    done = _cli(env, "submit", str(path), "--dataset", "contacts", "--encoding", "cp1252", "--wait")
    assert done.returncode == 0, done.stderr
    records = httpx.get(f"{url}/datasets/contacts/records", headers={"Authorization": f"Bearer {token}"}).json()
    assert [r["values"]["name"] for r in records["items"]] == ["€ Zoë"]
    path.write_bytes(b"email,name\r\na@example.com,A\r\nb@example.com,\x81\r\n")
    refused = _cli(env, "submit", str(path), "--dataset", "contacts", "--encoding", "cp1252")
    assert refused.returncode == 2 and "byte 0x81 at line 3" in refused.stderr
