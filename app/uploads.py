"""Streaming multipart: the file part goes to disk as it arrives, never whole into memory."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import msgspec
from litestar import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from actors.blobs import Blobs
from app.errors import BadRequest, TooLarge, UnsupportedMedia

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks  # a typing-only name there

_OVERHEAD = 1024 * 1024  # multipart framing and small fields on top of the file limit


class UploadedFile(msgspec.Struct):
    """The file part, spooled to a temp file in the blob store."""

    path: Path
    filename: str | None
    size: int
    sha256: str
    content_type: str | None


class Form(msgspec.Struct):
    """A parsed multipart body: small text fields and at most one file."""

    fields: dict[str, str]
    file: UploadedFile | None

    def discard(self) -> None:
        """Delete the spooled file (on any refusal after the upload)."""
        if self.file is not None:
            self.file.path.unlink(missing_ok=True)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


async def receive_form(
    request: Request[Any, Any, Any], blobs: Blobs, *, max_bytes: int, max_parts: int, max_field_bytes: int
) -> Form:
    """Parse a multipart/form-data body as it streams in, enforcing every limit as it goes."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UnsupportedMedia("expected a multipart/form-data body with a 'file' part")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + _OVERHEAD:
        raise TooLarge(f"upload is {int(declared)} bytes; the limit is {_mb(max_bytes)}")
    reader = _FormReader(blobs, max_bytes=max_bytes, max_parts=max_parts, max_field_bytes=max_field_bytes)
    received = 0
    try:  # the parser refuses a boundary over 256 characters in its constructor
        parser = MultipartParser(params[b"boundary"], reader.callbacks(), max_header_count=16)
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes + _OVERHEAD:
                raise TooLarge(f"upload is larger than the {_mb(max_bytes)} limit")
            parser.write(chunk)
        parser.finalize()
    except (BadRequest, TooLarge):
        reader.abandon()
        raise
    except Exception as exc:  # the parser's own errors: a malformed body
        reader.abandon()
        if getattr(exc, "status_code", None) == 413:
            raise TooLarge(f"upload is larger than the {_mb(max_bytes)} limit") from None
        raise BadRequest(f"malformed multipart body: {exc}") from None
    if reader.handle is not None:  # the body ended inside the file part
        reader.abandon()
        raise BadRequest("malformed multipart body: the file part is incomplete")
    return Form(fields=reader.fields, file=reader.file)


class _FormReader:
    """The multipart parser's callbacks: text fields kept (bounded), the one file part spooled to disk."""

    def __init__(self, blobs: Blobs, *, max_bytes: int, max_parts: int, max_field_bytes: int) -> None:
        self.blobs = blobs
        self.max_bytes, self.max_parts, self.max_field_bytes = max_bytes, max_parts, max_field_bytes
        self.fields: dict[str, str] = {}
        self.file: UploadedFile | None = None
        self.handle: BinaryIO | None = None  # open while the file part streams in
        self._hash = hashlib.sha256()
        self._parts = 0
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._name = ""
        self._value: bytearray | None = None  # the text field being read (None: the file part)

    def callbacks(self) -> MultipartCallbacks:
        """The callbacks python-multipart calls, by its names."""
        return {
            "on_part_begin": self.part_begin,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
        }

    def part_begin(self) -> None:
        self._parts += 1
        if self._parts > self.max_parts:
            raise BadRequest(f"too many form parts (more than {self.max_parts})")
        self._headers = {}

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field.extend(data[start:end])

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value.extend(data[start:end])

    def header_end(self) -> None:
        self._headers[bytes(self._header_field).decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def headers_finished(self) -> None:
        _, disp = parse_options_header(self._headers.get("content-disposition", b""))
        self._name = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename")
        if filename is None and self._name != "file":
            self._value = bytearray()
            return
        if self.file is not None:
            raise BadRequest("only one file may be uploaded per request")
        path = self.blobs.temp_path()
        self.file = UploadedFile(
            path=path,
            filename=_safe_name(filename.decode("utf-8", "replace")) if filename else None,
            size=0,
            sha256="",
            content_type=self._headers.get("content-type", b"").decode("latin-1") or None,
        )
        self.handle = open(path, "wb")  # noqa: SIM115 - closed in part_end / abandon
        self._value = None

    def part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._value is not None:
            self._value.extend(chunk)
            if len(self._value) > self.max_field_bytes:
                raise BadRequest(f"form field {self._name!r} is longer than {self.max_field_bytes} bytes")
            return
        assert self.file is not None and self.handle is not None
        self.file.size += len(chunk)
        if self.file.size > self.max_bytes:
            raise TooLarge(f"file is larger than the {_mb(self.max_bytes)} limit")
        self.handle.write(chunk)
        self._hash.update(chunk)

    def part_end(self) -> None:
        if self._value is not None:
            try:
                self.fields[self._name] = self._value.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"form field {self._name!r} is not UTF-8 text") from None
            return
        assert self.file is not None and self.handle is not None
        self.handle.close()
        self.handle = None
        self.file.sha256 = self._hash.hexdigest()

    def abandon(self) -> None:
        """A refused body: close and delete what was spooled."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        if self.file is not None:
            self.file.path.unlink(missing_ok=True)


def _safe_name(name: str) -> str:
    """A filename for display only: no directories, no control characters, bounded length."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:255] if cleaned not in ("", ".", "..") else "upload"


