"""Step `parse_file`: read the stored file once, map its columns, stage its rows in chunks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import TYPE_CHECKING

from actors import faults
from actors.chunk_order import ChunkOrder, KeyTokens, overlaps_parse, side_by_side
from actors.chunks import ParsedChunk, ParsedRow, chunk_key, encode_chunk
from actors.errors import StepFailed
from actors.memory import release_memory
from actors.readers import BadRow, FileInfo, ReaderError, open_file
from actors.retry import retry_conflicts
from events import catalog, locks
from events import log as event_log
from events.datasets import RowValidator, SchemaError
from events.db import read_tx, write_tx
from events.flow import PARSE, Step, new_steps, next_step
from events.log import now
from events.mapping import Columns, resolve_columns
from events.projections import fold
from events.types import ChunksStaged, FileParsed, ImportSpec

if TYPE_CHECKING:
    from actors.runtime import Runtime


def run(rt: Runtime, ticket: int, _chunk: int | None = None) -> None:
    """Parse the ticket's file, stage its chunks, record FileParsed (or fail the ticket)."""
    view = rt.view(ticket)
    if view is None or next_step(view) != Step(PARSE) or view.spec is None or view.file is None:
        return  # a stale or duplicate message: the step is done or not due
    row = rt.ticket(ticket)
    with read_tx(rt.engine) as conn:
        dataset = catalog.dataset_by_id(conn, row.dataset_id)
    if dataset is None:
        raise StepFailed(f"dataset {view.spec.dataset!r} no longer exists")
    spec = view.spec
    refused: str | None = None
    try:
        # Object storage: the worker streams the file to local scratch first (readers seek).
        with rt.blobs.local_copy(view.file.blob) as path:
            info, rows = open_file(
                path, separator=spec.separator, encoding=spec.encoding, sheet=spec.sheet,
                max_unpacked_bytes=rt.settings.max_unpacked_bytes,
            )
            with closing(rows):
                columns = resolve_columns(dataset.schema, spec, info.first_row)
                RowValidator(dataset.schema, columns.fields)  # refuses missing required columns up front
                parallel = rt.settings.resolved_apply_parallel if side_by_side(spec) else 1
                order = ChunkOrder(parallel) if parallel > 1 else None
                keys = KeyTokens(dataset.schema, columns.fields)
                announce = _Announce(rt, ticket, dataset.id, columns.fields, order) if (
                    rt.settings.resolved_parse_overlap and overlaps_parse(spec)) else None
                staged = _stage(rt, view.uuid, rows, info, spec, columns, order, keys, announce)
                if staged is None:
                    return  # the import ended while its file was read (canceled, or a step failed for good)
                total, chunks = staged
        release_memory()  # a sheet's buffers go back to the OS before the chunks are applied
    except (ReaderError, SchemaError) as exc:
        refused = str(exc)
    except FileNotFoundError:
        raise StepFailed(f"the stored file {view.file.blob} is no longer in the blob store") from None
    if refused is not None:
        release_memory()  # a hostile file's buffers, freed with the traceback, go back to the OS
        raise StepFailed(refused)
    header = tuple(c or "" for c in info.first_row) if spec.headers else ()
    event = FileParsed(
        at=now(), total_rows=total, chunks=chunks, header=header, columns=columns.fields,
        ignored_columns=columns.ignored, format=info.format, separator=info.separator,
        encoding=info.encoding, sheet=info.sheet, lean_images=True,
        parallel=order.parallel if order else 1, after=tuple(order.after) if order else (),
    )

    def record() -> list[Step] | None:
        with write_tx(rt.engine) as conn:
            locks.dataset_writes(conn, dataset.id)  # chunks staged so far may be being applied
            now_view = rt.views.load(conn, ticket)
            if now_view is None or now_view.terminal or now_view.parsed is not None:
                return None  # ended meanwhile, or a second delivery of this step recorded it first
            event_log.append(conn, ticket, now_view.seq, [event])
        # what FileParsed made due (chunks applied while the file was read are in flight already)
        return new_steps(now_view, fold([event], now_view))

    owed = retry_conflicts(record)
    if owed is None:
        return
    faults.hit("parse_file", "after_commit")
    for step in owed:
        rt.send(ticket, step)


class _Announce:
    """Records the chunks staged so far (ChunksStaged) and sends the ones that became due, so they
    are applied while the rest of the file is read. Returns False once the import has ended."""

    def __init__(self, rt: Runtime, ticket: int, dataset_id: int, columns: tuple[str, ...], order: ChunkOrder | None) -> None:
        self.rt, self.ticket, self.dataset_id, self.columns, self.order = rt, ticket, dataset_id, columns, order
        self.recorded = 0  # chunks the log holds as staged

    def __call__(self, staged: int) -> bool:
        before = self.recorded
        sent = retry_conflicts(lambda: self._record(staged))
        if sent is None:
            return False
        for step in sent:
            self.rt.send(self.ticket, step)
        for n in range(before + 1, self.recorded + 1):
            faults.hit("parse_file", "announced", n)
        return True

    def _record(self, staged: int) -> list[Step] | None:
        with write_tx(self.rt.engine) as conn:
            # As apply_chunk, its log read and append are one turn at the dataset's lock; while a chunk
            # holds it the parse reads on, and the next call records every chunk staged by then.
            if not locks.try_dataset_writes(conn, self.dataset_id):
                return []
            view = self.rt.views.load(conn, self.ticket)
            if view is None or view.terminal:
                return None
            have = view.staging.chunks if view.staging is not None else 0
            if view.parsed is not None or staged <= have:
                self.recorded = max(self.recorded, have)
                return []  # a second delivery of the parse got here first: the same chunks, announced
            after = tuple(self.order.after[have:staged]) if self.order is not None else ()
            event = ChunksStaged(
                at=now(), chunks=staged, columns=self.columns,
                parallel=self.order.parallel if self.order is not None else 1, after=after,
            )
            event_log.append(conn, self.ticket, view.seq, [event])
        self.recorded = staged
        return new_steps(view, fold([event], view))


def _stage(
    rt: Runtime,
    ticket_uuid: str,
    rows: Iterator[tuple[int, list[str | None]] | BadRow],
    info: FileInfo,
    spec: ImportSpec,
    columns: Columns,
    order: ChunkOrder | None,
    keys: KeyTokens,
    announce: _Announce | None,
) -> tuple[int, int] | None:
    """Write the file's data rows as chunks (and, side by side, note which keys each holds);
    returns (rows, chunks), or None when `announce` found the import ended."""
    size = rt.settings.chunk_size
    total = chunks = 0
    batch: list[ParsedRow] = []
    for staged in _project(rows, spec, columns, info.format):
        batch.append(staged)
        if len(batch) == size:
            _write(rt, ticket_uuid, chunks, ParsedChunk(total, batch), order, keys)
            total += len(batch)
            chunks += 1
            batch = []
            faults.hit("parse_file", "staged", chunks)
            if announce is not None and not announce(chunks):
                return None
    if batch:
        _write(rt, ticket_uuid, chunks, ParsedChunk(total, batch), order, keys)
        total += len(batch)
        chunks += 1
    return total, chunks


def _write(rt: Runtime, ticket_uuid: str, number: int, chunk: ParsedChunk, order: ChunkOrder | None, keys: KeyTokens) -> None:
    rt.blobs.write_bytes(chunk_key(ticket_uuid, number), encode_chunk(chunk))
    if order is not None:
        order.add(keys(chunk.rows))


def _project(
    rows: Iterator[tuple[int, list[str | None]] | BadRow], spec: ImportSpec, columns: Columns, fmt: str
) -> Iterator[ParsedRow]:
    """Each data row as (line, cells for the mapped fields) or (line, what is wrong with it)."""
    indices = columns.indices
    width = columns.width
    first = spec.headers
    identity = width is not None and indices == tuple(range(width))  # every column, in order
    fields = columns.fields
    last = max(indices, default=-1)
    # A CSV row without a mapped cell is a failed row, never a null that would blank the field of
    # an existing record; a spreadsheet drops trailing empty cells, so there the cell is empty.
    sheet = fmt != "csv"
    for item in rows:
        if first:
            first = False
            continue  # the header row
        if isinstance(item, BadRow):
            yield (item.line, f"line {item.line}: {item.message}")
            continue
        line, cells = item
        n = len(cells)
        if identity and n == width:
            yield (line, cells)
            continue
        if width is not None and n != width:
            extra_empty = n > width and all(c is None or c == "" for c in cells[width:])
            short_sheet = n < width and sheet  # spreadsheets drop trailing empty cells
            if not (extra_empty or short_sheet):
                yield (line, f"line {line}: {n} values, but the header has {width} columns")
                continue
        if n <= last and not sheet:
            missing = next(j for j, i in enumerate(indices) if i >= n)
            yield (line, f"line {line}: no column {indices[missing] + 1} (field {fields[missing]!r}): the row has {n} values")
            continue
        yield (line, [cells[i] if i < n else None for i in indices])
