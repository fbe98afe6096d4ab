"""Fixtures of the integration suite beyond the root's: a local site that serves files and takes callbacks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Site, serving_site


@pytest.fixture
def site() -> Iterator[Site]:
    """A running file site (GET /files/<name>, /secure/<name> behind basic auth; POST /hook)."""
    with serving_site() as server:
        yield server
