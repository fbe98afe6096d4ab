"""Fixtures of the fault suite: a scaled deployment of real worker processes on PostgreSQL + Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Scaled, redis_url


@pytest.fixture
def scaled(pg_schema_url: str, redis_namespace: str, tmp_path: Path) -> Iterator[Scaled]:
    """PostgreSQL schema + Redis namespace + shared data dir; tests start the workers they need."""
    cluster = Scaled(tmp_path, pg_schema_url, redis_url(), redis_namespace)
    try:
        yield cluster
    finally:
        cluster.close()
