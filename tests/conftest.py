"""Shared fixtures: real SQLite/PostgreSQL storage, in-process and Redis brokers, a running worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Harness, need, need_module, postgres_url, redis_url
from tests.support.object_store import S3Server


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    need("postgres")
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    base = postgres_url()
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's standalone S3 server, one process for the session (each test makes its own bucket)."""
    need_module("moto.server")  # the server extra (flask, werkzeug) must be there too
    server = S3Server(tmp_path_factory.mktemp("s3"))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_namespace() -> Iterator[str]:
    """A Redis namespace for one test, deleted afterwards."""
    need("redis")
    import redis

    ns = f"importer-test-{uuid.uuid4().hex[:10]}"
    yield ns
    client = redis.Redis.from_url(redis_url())
    keys = list(client.scan_iter(f"{ns}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _db_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'importer.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same storage suite on SQLite and on PostgreSQL."""
    return _db_url(request.param, tmp_path, request)


@pytest.fixture
def harness_settings() -> dict[str, Any]:
    """Settings the `harness` starts with besides its own; a test module overrides this fixture to change them."""
    return {}


@pytest.fixture(params=["embedded", "scaled"])
def harness(request: pytest.FixtureRequest, tmp_path: Path, harness_settings: dict[str, Any]) -> Iterator[Harness]:
    """A running pipeline: embedded = SQLite + in-process broker; scaled = PostgreSQL + Redis."""
    if request.param == "embedded":
        h = Harness.start(tmp_path, database_url=_db_url("sqlite", tmp_path, request), **harness_settings)
    else:
        ns = request.getfixturevalue("redis_namespace")
        h = Harness.start(
            tmp_path, database_url=_db_url("postgres", tmp_path, request), redis_url=redis_url(), redis_namespace=ns,
            **harness_settings,
        )
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Harness]:
    """The embedded default only (SQLite + in-process broker) for tests about one front door."""
    h = Harness.start(tmp_path, database_url=f"sqlite:///{tmp_path / 'importer.db'}")
    try:
        yield h
    finally:
        h.stop()
