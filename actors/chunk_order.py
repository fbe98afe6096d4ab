"""Which chunks of one import may be applied side by side: never two that share a key.

A chunk's outcomes depend only on the records its keys name, so chunks with no key in common
commute: applied at once by different workers, they decide and write exactly what one after
another would. Chunks that share a key keep file order: the later waits for the earlier. At most
`parallel` chunks are in flight (a chunk waits for every chunk `parallel` places back), so only
the last few chunks' keys are kept while the file is read: memory stays flat in the rows.
"""

from __future__ import annotations

from collections import deque

from events.types import ImportSpec


def side_by_side(spec: ImportSpec) -> bool:
    """Whether an import's chunks may be applied side by side. Not with an error threshold: the
    row that crosses it must be the one a run in file order crosses it at."""
    return spec.threshold is None and spec.threshold_percent is None


class ChunkOrder:
    """Reads each chunk's keys as the file is staged; `after` is FileParsed.after."""

    def __init__(self, parallel: int) -> None:
        self.parallel = max(1, parallel)
        self.after: list[int] = []
        self._recent: deque[set[str]] = deque(maxlen=self.parallel - 1)  # the last chunks' keys, newest last

    def add(self, keys: set[str]) -> None:
        """The next chunk's keys (of its rows whose key cells are valid; the others write nothing)."""
        chunk = len(self.after)
        wait = chunk - self.parallel  # the window
        for back, earlier in enumerate(reversed(self._recent), 1):
            if not keys.isdisjoint(earlier):
                wait = chunk - back  # the nearest chunk sharing a key: the ones before it are waited for too
                break
        self.after.append(max(wait, -1))
        if self._recent.maxlen:
            self._recent.append(keys)
