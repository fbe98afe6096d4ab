"""Which chunks of one import may be applied side by side: never two that share a key.

A chunk's outcomes depend only on the records its keys name, so chunks with no key in common
commute: applied at once by different workers, they decide and write exactly what one after
another would. Chunks that share a key keep file order: the later waits for the earlier. At most
`parallel` chunks are in flight (a chunk waits for every chunk `parallel` places back), so only
the last few chunks' keys are kept while the file is read: memory stays flat in the rows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable

from actors.chunks import ParsedRow
from events.coerce import CONVERTERS, CellError
from events.datasets import DatasetSchema
from events.types import ImportSpec


def side_by_side(spec: ImportSpec) -> bool:
    """Whether an import's chunks may be applied side by side. Not with an error threshold: the
    row that crosses it must be the one a run in file order crosses it at."""
    return spec.threshold is None and spec.threshold_percent is None


def overlaps_parse(spec: ImportSpec) -> bool:
    """Whether an import's chunks may be applied while its file is still read: only where its rows
    reach the dataset at finalize (atomic, dry run), so a file refused at its last byte still leaves
    nothing written; and not with an error threshold (a percentage needs the file's row count)."""
    return side_by_side(spec) and (spec.policy == "atomic" or spec.dry_run)


class ChunkOrder:
    """Reads each chunk's keys as the file is staged; `after` is FileParsed.after."""

    def __init__(self, parallel: int) -> None:
        self.parallel = max(1, parallel)
        self.after: list[int] = []
        self._recent: deque[set[Hashable]] = deque(maxlen=self.parallel - 1)  # the last chunks' keys, newest last

    def add(self, keys: set[Hashable]) -> None:
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


class KeyTokens:
    """What stands for each row's key when chunks are compared: the key fields' stored values,
    converted by the same functions the row checks use (so two rows naming one record give equal
    tokens). A third of the cost of reading the canonical key text; a row whose key cells do not
    convert fails its check and names no record, so it gives none."""

    def __init__(self, schema: DatasetSchema, columns: tuple[str, ...]) -> None:
        where = {name: i for i, name in enumerate(columns)}
        kinds = {f.name: f.type for f in schema.fields}
        self._fields = tuple((where[k], CONVERTERS[kinds[k]]) for k in schema.key if k in where and k in kinds)
        if len(self._fields) != len(schema.key):
            self._fields = ()  # a key column is missing: no row names a record

    def __call__(self, rows: Iterable[ParsedRow]) -> set[Hashable]:
        """The tokens of a chunk's rows."""
        out: set[Hashable] = set()
        if not self._fields:
            return out
        add = out.add
        if len(self._fields) == 1:
            ((at, convert),) = self._fields
            for _, cells in rows:
                if isinstance(cells, str) or at >= len(cells) or (cell := cells[at]) is None:
                    continue
                try:  # noqa: SIM105 - suppress() costs a context manager a row
                    add(convert(cell))
                except CellError:
                    pass
            return out
        for _, cells in rows:
            if isinstance(cells, str):
                continue
            try:  # noqa: SIM105 - as above
                add(tuple(convert(cells[at]) for at, convert in self._fields))  # type: ignore[arg-type]
            except (CellError, IndexError, TypeError, AttributeError):
                pass  # a short row or an empty key cell: no record named
        return out
