"""Run a read-decide-write step again when another writer got to the log (or the lock) first."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError

from events.log import StaleSeq

T = TypeVar("T")


def retry_conflicts(fn: Callable[[], T], attempts: int = 8) -> T:
    """Run a read-decide-write step again when another writer got to the log (or the lock) first."""
    for attempt in range(attempts):
        try:
            return fn()
        except (StaleSeq, IntegrityError) as exc:
            last: Exception = exc
        except OperationalError as exc:
            if "locked" not in str(exc).lower():
                raise
            last = exc
        time.sleep(min(0.5, 0.01 * (2**attempt)) * random.random())  # decorrelate racing writers
    raise last
