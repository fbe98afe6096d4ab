"""Where the tests find Redis and PostgreSQL, and what a test does when one is unreachable."""

from __future__ import annotations

import importlib
import os
import socket
from types import ModuleType
from typing import NoReturn
from urllib.parse import urlparse

import pytest

REQUIRE = os.environ.get("IMPORTER_REQUIRE_SERVICES") == "1"


def redis_url() -> str:
    """Where tests find Redis."""
    return os.environ.get("IMPORTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def postgres_url() -> str:
    """Where tests find PostgreSQL."""
    return os.environ.get("IMPORTER_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def service_available(service: str) -> str | None:
    """None when the service answers, else why not."""
    url = urlparse(redis_url() if service == "redis" else postgres_url())
    port = url.port or (6379 if service == "redis" else 5432)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", port), timeout=2):
            return None
    except OSError as exc:
        return str(exc)


def unavailable(what: str) -> NoReturn:
    """Skip a test for something this machine lacks; under IMPORTER_REQUIRE_SERVICES=1 (CI), fail it."""
    if REQUIRE:
        pytest.fail(f"{what} (IMPORTER_REQUIRE_SERVICES=1: CI must provide it)")
    pytest.skip(what)


def need(service: str) -> None:
    """Skip (or, in CI, fail) when a service is unreachable."""
    reason = service_available(service)
    if reason is not None:
        unavailable(f"{service} unreachable: {reason}")


def need_module(name: str) -> ModuleType:
    """Import a test dependency, or skip (fail in CI) when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(f"{name} is not installed: {exc}")
