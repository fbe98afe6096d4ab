"""`python -m actors.check_child`: the lean process that checks chunks for actors.check_ahead.

It reads requests from stdin and writes answers to stdout, each a 4-byte big-endian length and a
msgpack array: request [seq, parsed chunk bytes, schema JSON, columns], answer [seq, ok, the checked
chunk in slices (a list of serialised CheckedChunks) or the error]. It ends when stdin closes (its worker ended, however it ended).
"""

from __future__ import annotations

import struct
import sys
from typing import IO

import msgspec

from actors.checks import check_rows, encode_checked
from actors.chunks import ParsedChunk, decode_chunk
from events.datasets import DatasetSchema, KeyReader, RowValidator

_HEAD = struct.Struct(">I")
_validators: dict[tuple[bytes, tuple[str, ...]], tuple[RowValidator, KeyReader]] = {}


def read_frame(stream: IO[bytes]) -> bytes | None:
    """One length-prefixed frame, or None at the end of the stream."""
    head = stream.read(_HEAD.size)
    if len(head) < _HEAD.size:
        return None
    (size,) = _HEAD.unpack(head)
    body = stream.read(size)
    return body if len(body) == size else None


def write_frame(stream: IO[bytes], body: bytes) -> None:
    """Write one length-prefixed frame and flush it."""
    stream.write(_HEAD.pack(len(body)) + body)
    stream.flush()


_SLICE = 500  # rows checked and serialised at a time: the child holds one slice's results, not a chunk's


def check(parsed: bytes, schema_json: bytes, columns: tuple[str, ...]) -> list[bytes]:
    """Check one parsed chunk; the checked chunk, serialised in slices (validators kept per schema and columns)."""
    found = _validators.get((schema_json, columns))
    if found is None:
        schema = msgspec.json.decode(schema_json, type=DatasetSchema)
        found = _validators[(schema_json, columns)] = (RowValidator(schema, columns), KeyReader(schema, columns))
        while len(_validators) > 16:
            del _validators[next(iter(_validators))]
    chunk = decode_chunk(parsed)
    rows, pieces = chunk.rows, []
    for start in range(0, len(rows), _SLICE):
        piece = ParsedChunk(chunk.first + start, rows[start : start + _SLICE])
        rows[start : start + _SLICE] = [None] * len(piece.rows)  # type: ignore[list-item]  # its cells go now
        pieces.append(encode_checked(check_rows(piece, *found)))
    return pieces


def main() -> None:
    """Answer requests until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    decode, encode = msgspec.msgpack.decode, msgspec.msgpack.encode
    while (frame := read_frame(stdin)) is not None:
        seq, parsed, schema_json, columns = decode(frame)
        try:
            answer = [seq, True, check(parsed, schema_json, tuple(columns))]
        except Exception as exc:  # a bug shows in the worker's log; the worker checks the chunk itself
            answer = [seq, False, f"{type(exc).__name__}: {exc}"]
        write_frame(stdout, encode(answer))


if __name__ == "__main__":
    main()
