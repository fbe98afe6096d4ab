"""Checked chunks: a parsed chunk's rows validated against the dataset, ready to be decided and written."""

from __future__ import annotations

import hashlib

import msgspec

from actors.chunks import ParsedChunk, chunks_prefix
from events.datasets import KeyReader, RowValidator, ValidRow

# A checked row: (index, line, the validated row or what is wrong with it, prefixed with its line).
CheckedRow = tuple[int, int, ValidRow | str]


class CheckedChunk(msgspec.Struct, array_like=True, gc=False):
    """One chunk's rows after validation, and the keys that could be read from the rows that failed."""

    first: int  # the data-row index of its first row
    rows: list[CheckedRow]
    failed_keys: dict[int, str]  # row index -> key, for failed rows whose key cells are valid


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(CheckedChunk)


def check_rows(staged: ParsedChunk, validator: RowValidator, key_of: KeyReader) -> CheckedChunk:
    """Validate every row of a parsed chunk; a failed row's message names its line."""
    rows: list[CheckedRow] = []
    failed_keys: dict[int, str] = {}
    validate = validator.validate
    index = staged.first
    for line, cells in staged.rows:
        if isinstance(cells, str):  # the reader could not read this row: no cells, so no key either
            rows.append((index, line, cells))
        else:
            result = validate(cells)
            if isinstance(result, str):
                result = f"line {line}: {result}"
                if (failed_key := key_of(cells)) is not None:
                    failed_keys[index] = failed_key
            rows.append((index, line, result))
        index += 1
    return CheckedChunk(staged.first, rows, failed_keys)


def join_checked(pieces: list[CheckedChunk]) -> CheckedChunk:
    """One checked chunk from consecutive slices of it."""
    if len(pieces) == 1:
        return pieces[0]
    failed_keys: dict[int, str] = {}
    for piece in pieces:
        failed_keys.update(piece.failed_keys)
    return CheckedChunk(pieces[0].first if pieces else 0, [row for piece in pieces for row in piece.rows], failed_keys)


def checked_key(ticket_uuid: str, chunk: int, schema_json: bytes, columns: tuple[str, ...]) -> str:
    """Where a shared check of a chunk is stored: beside the parsed chunk (so it goes with it), named
    after what it depends on (a dataset redefined mid-import is checked again)."""
    digest = hashlib.blake2b(schema_json + b"\0" + "\0".join(columns).encode(), digest_size=8).hexdigest()
    return f"{chunks_prefix(ticket_uuid)}/{chunk}.checked-{digest}.msgpack"


def encode_checked(chunk: CheckedChunk) -> bytes:
    """Serialise a checked chunk (to cross from the process that checked it)."""
    return _encoder.encode(chunk)


def decode_checked(data: bytes) -> CheckedChunk:
    """Deserialise a checked chunk."""
    return _decoder.decode(data)
