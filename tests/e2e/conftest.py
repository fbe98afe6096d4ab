"""Fixtures for the end-to-end tests: the real `importer serve` in a process of its own."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import serving_importer


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
