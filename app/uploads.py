"""Streaming multipart: the file part goes to disk as it arrives, never whole into memory."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from actors.blobs import Blobs
from app.errors import BadRequest, TooLarge, UnsupportedMedia

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

    fields: dict[str, str] = {}
    state: dict[str, object] = {"parts": 0, "headers": {}, "field": None}
    header_field = bytearray()
    header_value = bytearray()
    current: dict[str, object] = {}
    spool: dict[str, object] = {}

    def on_part_begin() -> None:
        state["parts"] = int(state["parts"]) + 1  # type: ignore[call-overload]
        if int(state["parts"]) > max_parts:  # type: ignore[call-overload]
            raise BadRequest(f"too many form parts (more than {max_parts})")
        current.clear()
        current["headers"] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers = current["headers"]
        assert isinstance(headers, dict)
        headers[bytes(header_field).decode("latin-1").lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        headers = current["headers"]
        assert isinstance(headers, dict)
        _, disp = parse_options_header(headers.get("content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename")
        current["name"] = name
        if filename is not None or name == "file":
            if "file" in spool:
                raise BadRequest("only one file may be uploaded per request")
            path = blobs.temp_path()
            spool["file"] = UploadedFile(
                path=path,
                filename=_safe_name(filename.decode("utf-8", "replace")) if filename else None,
                size=0,
                sha256="",
                content_type=headers.get("content-type", b"").decode("latin-1") or None,
            )
            spool["handle"] = open(path, "wb")  # noqa: SIM115 - closed in on_part_end / finally
            spool["hash"] = hashlib.sha256()
            current["is_file"] = True
        else:
            current["is_file"] = False
            current["value"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if current.get("is_file"):
            upload = spool["file"]
            assert isinstance(upload, UploadedFile)
            upload.size += len(chunk)
            if upload.size > max_bytes:
                raise TooLarge(f"file is larger than the {_mb(max_bytes)} limit")
            handle = spool["handle"]
            assert hasattr(handle, "write")
            handle.write(chunk)
            spool["hash"].update(chunk)  # type: ignore[attr-defined]
        else:
            value = current["value"]
            assert isinstance(value, bytearray)
            value.extend(chunk)
            if len(value) > max_field_bytes:
                raise BadRequest(f"form field {current.get('name')!r} is longer than {max_field_bytes} bytes")

    def on_part_end() -> None:
        if current.get("is_file"):
            handle = spool.pop("handle")
            assert hasattr(handle, "close")
            handle.close()
            upload = spool["file"]
            assert isinstance(upload, UploadedFile)
            upload.sha256 = spool["hash"].hexdigest()  # type: ignore[attr-defined]
        else:
            value = current["value"]
            assert isinstance(value, bytearray)
            try:
                fields[str(current["name"])] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"form field {current.get('name')!r} is not UTF-8 text") from None

    received = 0
    try:  # the parser refuses a boundary over 256 characters in its constructor
        parser = MultipartParser(
            params[b"boundary"],
            {
                "on_part_begin": on_part_begin,
                "on_part_data": on_part_data,
                "on_part_end": on_part_end,
                "on_header_field": on_header_field,
                "on_header_value": on_header_value,
                "on_header_end": on_header_end,
                "on_headers_finished": on_headers_finished,
            },
            max_header_count=16,
        )
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes + _OVERHEAD:
                raise TooLarge(f"upload is larger than the {_mb(max_bytes)} limit")
            parser.write(chunk)
        parser.finalize()
    except (BadRequest, TooLarge):
        _cleanup(spool)
        raise
    except Exception as exc:  # the parser's own errors: a malformed body
        _cleanup(spool)
        if getattr(exc, "status_code", None) == 413:
            raise TooLarge(f"upload is larger than the {_mb(max_bytes)} limit") from None
        raise BadRequest(f"malformed multipart body: {exc}") from None
    if "handle" in spool:  # the body ended inside the file part
        _cleanup(spool)
        raise BadRequest("malformed multipart body: the file part is incomplete")
    upload = spool.get("file")
    return Form(fields=fields, file=upload if isinstance(upload, UploadedFile) else None)


def _cleanup(spool: dict[str, object]) -> None:
    handle = spool.pop("handle", None)
    if handle is not None:
        handle.close()  # type: ignore[attr-defined]
    upload = spool.get("file")
    if isinstance(upload, UploadedFile):
        upload.path.unlink(missing_ok=True)


def _safe_name(name: str) -> str:
    """A filename for display only: no directories, no control characters, bounded length."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:255] if cleaned not in ("", ".", "..") else "upload"


