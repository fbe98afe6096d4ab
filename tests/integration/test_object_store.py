"""Blobs in S3-compatible object storage (a real moto server process): the store's contract, /ready,
the store stopping mid-upload and mid-parse, and retention."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import obstore
import pytest
import sqlalchemy as sa

from actors.blobs import Blobs, BlobUnavailable, LocalBlobs, S3Options
from actors.blobs_s3 import S3Blobs
from actors.remove_expired import remove_expired
from events.db import read_tx
from tests.support import Harness, check_exactly_once, contacts, types_of, write_csv
from tests.support.object_store import CutProxy, S3Server, s3_settings

MB = 1024 * 1024


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[CutProxy]:
    """The S3 server behind a proxy the test can cut."""
    cut = CutProxy(s3_server.port)
    try:
        yield cut
    finally:
        cut.close()


def _s3(server: S3Server, tmp: Path, bucket: str | None = None, **options: object) -> S3Blobs:
    given = {"endpoint": server.url, "access_key_id": "test", "secret_access_key": "test", "region": "us-east-1",
             "timeout": 3.0, "attempts": 2} | options
    return S3Blobs(f"s3://{bucket or server.bucket()}/some/prefix", tmp / "scratch", S3Options(**given))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_both_stores_keep_one_contract(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store: Blobs = LocalBlobs(tmp_path / "blobs") if kind == "local" else _s3(request.getfixturevalue("s3_server"), tmp_path)
    source = store.temp_path()
    source.write_bytes(b"email\nann@example.com\n")
    store.put_file("sources/u-1", source)
    assert not source.exists()  # consumed
    store.write_bytes("chunks/u-1/0.msgpack", b"\x01\x02")
    store.write_bytes("chunks/u-1/1.msgpack", b"\x03")
    assert store.read_bytes("chunks/u-1/0.msgpack") == b"\x01\x02"
    assert store.exists("chunks/u-1/1.msgpack") and not store.exists("chunks/u-1/2.msgpack")
    with store.local_copy("sources/u-1") as path:
        assert path.read_bytes() == b"email\nann@example.com\n"
    assert path.exists() == (kind == "local")  # object storage: the scratch copy is gone after the block
    with pytest.raises(FileNotFoundError):
        store.read_bytes("chunks/u-1/9.msgpack")
    with pytest.raises(FileNotFoundError), store.local_copy("sources/none"):
        pass
    store.delete_tree("chunks/u-1")
    assert not store.exists("chunks/u-1/0.msgpack") and store.exists("sources/u-1")
    store.delete_tree("sources/u-1")
    assert not store.exists("sources/u-1")
    assert store.check() is None


def test_a_file_past_the_part_size_goes_up_in_parts_and_comes_back_whole(s3_server: S3Server, tmp_path: Path) -> None:
    store = _s3(s3_server, tmp_path, part_bytes=5 * MB)
    big = store.temp_path()
    with big.open("wb") as out:
        for i in range(11):
            out.write(bytes([i]) * MB)
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    store.put_file("sources/big", big)
    etag = obstore.head(store.store, "sources/big")["e_tag"] or ""
    assert etag.strip('"').endswith("-3"), etag  # a multipart upload of three parts (5 + 5 + 1 MB)
    with store.local_copy("sources/big") as path:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_ready_fails_and_says_so_when_the_bucket_is_missing_or_the_store_unreachable(s3_server: S3Server, tmp_path: Path) -> None:
    missing = _s3(s3_server, tmp_path, bucket="no-such-bucket")
    assert missing.check() == f"bucket 'no-such-bucket' at {s3_server.url} does not exist (create it first)"
    h = Harness.start(tmp_path, **s3_settings(s3_server.url, "no-such-bucket"))
    try:
        resp = h.client.get("/ready")
        assert resp.status_code == 503
        assert resp.json()["checks"]["blobs"] == f"error: bucket 'no-such-bucket' at {s3_server.url} does not exist (create it first)"
    finally:
        h.stop()
    dead = _s3(s3_server, tmp_path, bucket="any", endpoint="http://127.0.0.1:9", attempts=1)  # nothing listens there
    assert (dead.check() or "").startswith("object store unreachable (bucket"), dead.check()
    with pytest.raises(BlobUnavailable, match="object store .* failed reading x"):
        dead.read_bytes("x")


@pytest.fixture
def harness_on_s3(s3_server: S3Server, proxy: CutProxy, tmp_path: Path) -> Iterator[tuple[Harness, str]]:
    """The embedded pipeline with its blobs in a fresh bucket, reached through the proxy."""
    bucket = s3_server.bucket()
    h = Harness.start(tmp_path, **s3_settings(proxy.url, bucket))
    try:
        yield h, bucket
    finally:
        h.stop()


def _tickets(h: Harness) -> int:
    with read_tx(h.rt.engine) as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM tickets")).scalar() or 0)


def test_store_stopped_mid_upload_is_a_clear_503_and_nothing_half_written_is_visible(
    harness_on_s3: tuple[Harness, str], s3_server: S3Server, proxy: CutProxy, tmp_path: Path
) -> None:
    h, bucket = harness_on_s3
    token = h.tenant()["native"]["token"]
    h.dataset("acme")
    big = write_csv(tmp_path / "big.csv", contacts(150_000))  # ~12 MB: a multipart upload
    assert big.stat().st_size > 9 * MB
    proxy.arm(after_bytes=4 * MB)  # the store stops while the first part is on its way
    resp = h.upload(token, big, dataset="contacts")
    assert proxy.cut_event.is_set()
    assert resp.status_code == 503, resp.text
    assert resp.headers["Retry-After"] == "5"
    error = resp.json()["error"]
    assert error["code"] == "unavailable"
    assert error["message"].startswith("the file could not be stored, so the import was not accepted; retry later")
    assert _tickets(h) == 0  # no ticket, no event
    assert s3_server.keys(bucket) == []  # the unfinished multipart upload is not an object
    assert not list((Path(h.settings.data_dir) / "tmp").iterdir())  # the spooled copy is gone too

    proxy.restore()
    small = write_csv(tmp_path / "small.csv", contacts(300))
    resp = h.upload(token, small, dataset="contacts")
    assert resp.status_code == 202, resp.text
    view = h.wait(resp.json()["id"])
    assert view.state == "completed" and view.created == 300
    assert s3_server.keys(bucket) == [f"importer/sources/{view.uuid}"]  # chunks removed at the end


def test_store_stopped_mid_parse_the_ticket_waits_then_resumes_when_it_is_back(
    harness_on_s3: tuple[Harness, str], s3_server: S3Server, proxy: CutProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h, bucket = harness_on_s3
    token = h.tenant()["native"]["token"]
    h.dataset("acme")
    rows = contacts(5000)  # ten chunks of 500
    path = write_csv(tmp_path / "c.csv", rows)
    # The upload and the source's download go through; the store stops after ~2 staged chunks.
    proxy.arm(after_bytes=path.stat().st_size + 60_000)
    caplog.set_level(logging.WARNING, logger="importer.pipeline")
    resp = h.upload(token, path, dataset="contacts")
    assert resp.status_code == 202, resp.text
    ticket = resp.json()["id"]
    assert proxy.cut_event.wait(30), "the store was never cut"
    deadline = time.monotonic() + 30
    while not any("step parse_file: object store" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "parse_file never met the stopped store"
        time.sleep(0.05)
    assert types_of(h.rt, ticket) == ["import_requested", "file_stored"]  # waiting, not failed
    assert [k for k in s3_server.keys(bucket) if "/chunks/" in k]  # it was mid-parse: chunks staged

    proxy.restore()
    h.wait(ticket, timeout=60)
    check_exactly_once(h.rt, ticket, rows)
    assert types_of(h.rt, ticket).count("file_parsed") == 1
    assert not list((Path(h.settings.data_dir) / "tmp").iterdir())  # the worker's scratch copy was deleted


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_finished_tickets_file_is_removed_after_retention_and_the_log_keeps_its_sha256(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings: dict[str, str] = {"blob_retention_hours": "24"}
    if kind == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        settings |= s3_settings(server.url, server.bucket())
    h = Harness.start(tmp_path, **settings)
    try:
        token = h.tenant()["native"]["token"]
        h.dataset("acme")
        path = write_csv(tmp_path / "c.csv", contacts(20))
        ticket = h.upload(token, path, dataset="contacts").json()["id"]
        view = h.wait(ticket)
        assert view.file is not None and h.rt.blobs.exists(view.file.blob)
        assert remove_expired(h.rt, datetime.now(UTC) + timedelta(hours=23)) == []  # not yet
        assert remove_expired(h.rt, datetime.now(UTC) + timedelta(hours=25)) == [ticket]
        assert not h.rt.blobs.exists(view.file.blob)
        after = h.rt.view(ticket)
        assert after is not None and after.file_removed and types_of(h.rt, ticket)[-1] == "file_removed"
        assert after.file is not None and after.file.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert remove_expired(h.rt, datetime.now(UTC) + timedelta(hours=25)) == []  # once
        status = h.client.get(f"/imports/{ticket}", headers={"Authorization": f"Bearer {token}"})
        assert status.status_code == 200 and status.json()["state"] == "completed"
    finally:
        h.stop()
