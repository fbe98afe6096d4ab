"""Parsed chunks: the rows in a compact binary form, written once by parse, read by apply."""

from __future__ import annotations

import msgspec

# A staged row: (line in the file, cells for the mapped fields) or (line, error message).
ParsedRow = tuple[int, list[str | None] | str]


class ParsedChunk(msgspec.Struct, array_like=True):
    """One chunk of rows; `first` is the data-row index of its first row."""

    first: int
    rows: list[ParsedRow]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()  # untyped: our own trusted blobs, and 10x faster than typed


def chunks_prefix(ticket_uuid: str) -> str:
    """The folder of a ticket's chunks (by uuid: unique even across deployments sharing a bucket)."""
    return f"chunks/{ticket_uuid}"


def chunk_key(ticket_uuid: str, chunk: int) -> str:
    """Where a ticket's chunk lives in the blob store."""
    return f"{chunks_prefix(ticket_uuid)}/{chunk}.msgpack"


def encode_chunk(chunk: ParsedChunk) -> bytes:
    """Serialise a chunk."""
    return _encoder.encode(chunk)


def decode_chunk(data: bytes) -> ParsedChunk:
    """Deserialise a chunk."""
    first, rows = _decoder.decode(data)
    return ParsedChunk(first, rows)
