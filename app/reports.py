"""Reports read back from an import's stored file: its failed rows as CSV, and the pieces the admin
dialect's result file shares with it (row/outcome pairing, formula escaping, streamed CSV)."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from actors.blobs import BlobUnavailable
from actors.readers import BadRow, FileInfo, ReaderError, inspect_file, read_rows
from actors.runtime import Runtime
from app.errors import Conflict, NotFound, Unavailable
from events.projections import FailureSource, ImportView, RowResult, iter_results

logger = logging.getLogger("importer.reports")

SourceRow = tuple[int, list[str | None]] | BadRow
ERROR_COLUMNS = ("row_number", "error")
# Spreadsheet apps run a cell starting with these as a formula (OWASP "CSV injection").
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "\0")
FLUSH_ROWS = 500  # CSV rows per streamed piece


def escape_cell(value: str | None) -> str:
    """A cell safe to open in a spreadsheet: a leading formula character gets a quote before it."""
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_LEADS) else value


def fit(cells: list[str | None], width: int) -> list[str | None]:
    """Drop trailing empty cells beyond the header, so added columns line up where they can."""
    if len(cells) <= width:
        return cells
    end = len(cells)
    while end > width and not cells[end - 1]:
        end -= 1
    return cells[:end]


def until_unreadable(rows: Iterator[SourceRow]) -> Iterator[SourceRow]:
    """The rows until the file turns unreadable (the import saw the same and failed there)."""
    try:
        yield from rows
    except ReaderError as exc:
        logger.warning("report cut short: %s", exc)


def csv_stream(rows: Iterable[list[str]]) -> Iterator[bytes]:
    """Rows as UTF-8 CSV (CRLF), yielded a few hundred rows at a time."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    for n, row in enumerate(rows, 1):
        out.writerow(row)
        if n % FLUSH_ROWS == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def with_results(
    rows: Iterator[SourceRow], results: Iterator[RowResult]
) -> Iterator[tuple[int, SourceRow, RowResult | None]]:
    """Data rows (header already taken) numbered as the import numbered them, each with its
    result when `results` (in index order) has one for it."""
    pending = next(results, None)
    for index, item in enumerate(rows):
        while pending is not None and pending.index < index:
            pending = next(results, None)
        yield index, item, pending if pending is not None and pending.index == index else None


class Source:
    """An import's stored file as a local path (a streamed copy when blobs live in object storage),
    inspected exactly as the import read it. `rows()` reads it lazily and gives the copy back when
    the stream ends, however it ends; `close()` does so for a caller that never reads."""

    def __init__(self, path: Path, info: FileInfo, copy: AbstractContextManager[Path], budget: int) -> None:
        self.path, self.info, self._copy, self._budget = path, info, copy, budget
        self._open = True

    def rows(self) -> Iterator[SourceRow]:
        """The file's rows as the engine's reader gives them."""
        try:
            yield from read_rows(self.path, self.info, max_unpacked_bytes=self._budget)
        finally:
            self.close()

    def close(self) -> None:
        """Give back the local copy (once)."""
        if self._open:
            self._open = False
            self._copy.__exit__(None, None, None)


def source_of(rt: Runtime, view: ImportView) -> Source:
    """Open the import's stored file: 409 while there is none, 404 once retention removed it,
    503 while the object store is down, 409 when it cannot be read again."""
    if view.file is None or view.spec is None:
        raise Conflict(f"import {view.ticket} has no file yet", code="no_file")
    if view.file_removed:
        raise NotFound(f"import {view.ticket}'s file was removed after the retention period", code="file_removed")
    copy = rt.blobs.local_copy(view.file.blob)
    try:
        path = copy.__enter__()
    except BlobUnavailable as exc:
        raise Unavailable(f"the stored file cannot be read now; retry later ({exc})") from None
    except OSError:  # removed by hand (not by retention): say so without the server's path or key
        logger.warning("import %s: its stored file is gone", view.ticket, exc_info=True)
        raise Conflict(f"import {view.ticket}'s file is no longer stored", code="file_missing") from None
    read = view.parsed or view.spec  # the separator, encoding and sheet the import settled on
    try:
        info = inspect_file(
            path, separator=read.separator, encoding=read.encoding, sheet=read.sheet,
            max_unpacked_bytes=rt.settings.max_unpacked_bytes,
        )
    except ReaderError as exc:
        copy.__exit__(None, None, None)
        raise Conflict(f"import {view.ticket}: its file cannot be read again: {exc}", code="unreadable_file") from None
    except OSError:  # an OSError names the server's path: keep it for the operator's log
        copy.__exit__(None, None, None)
        logger.warning("import %s: its stored file cannot be read", view.ticket, exc_info=True)
        raise Conflict(f"import {view.ticket}: its file cannot be read again", code="unreadable_file") from None
    return Source(path, info, copy, rt.settings.max_unpacked_bytes)


def failed_rows(
    view: ImportView, rows: Iterator[SourceRow], failures: FailureSource | None = None
) -> tuple[list[str | None] | None, Iterator[tuple[SourceRow, RowResult]]]:
    """The file's header (None without one) and its failed rows, each with its result, in file order
    (the row failures read from the log, a chunk at a time: cached views keep none)."""
    rows = until_unreadable(rows)
    header: list[str | None] | None = None
    if view.spec is None or view.spec.headers:
        first = next(rows, None)
        header = [] if first is None or isinstance(first, BadRow) else list(first[1])
    failed = iter_results(view, frozenset("f"), failures)
    return header, ((item, result) for _, item, result in with_results(rows, failed) if result is not None)


def error_table(view: ImportView, rows: Iterator[SourceRow], failures: FailureSource | None = None) -> Iterator[list[str | None]]:
    """The error report as rows of text: the header (the file's, else column_N), then each failed
    row's cells as read, padded to the header, and its row_number (line in the file) and error."""
    header, failed = failed_rows(view, rows, failures)
    width = len(header) if header is not None else None
    for item, result in failed:
        cells = [] if isinstance(item, BadRow) else list(item[1])
        if width is None:  # no header in the file: name the columns the first failed row has
            width = len(cells)
            header = [f"column_{i + 1}" for i in range(width)]
        if header is not None:
            yield [*header, *ERROR_COLUMNS]
            header = None
        cells = fit(cells, width)
        line = item.line if isinstance(item, BadRow) else item[0]
        yield [*cells, *[None] * (width - len(cells)), str(result.line or line), result.error]
    if header is not None:  # no failed rows: the header alone
        yield [*header, *ERROR_COLUMNS]
    elif width is None:
        yield list(ERROR_COLUMNS)


def error_csv(view: ImportView, rows: Iterator[SourceRow], failures: FailureSource | None = None) -> Iterator[bytes]:
    """GET /imports/{id}/errors.csv: the error table as CSV, every cell escaped against formulas."""
    return csv_stream([escape_cell(c) for c in row] for row in error_table(view, rows, failures))
