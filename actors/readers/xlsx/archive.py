"""The workbook's zip, guarded: an unpacking budget, a ratio that marks zip bombs, errors translated."""

from __future__ import annotations

import zipfile
import zlib
from typing import IO
from xml.parsers import expat

from actors.readers.errors import ReaderError

MAX_RATIO = 200  # a part inflating more than this many times its packed size is a zip bomb
_RATIO_EXEMPT = 1 << 20  # parts this small cannot be bombs, whatever their ratio


class Archive:
    """An open workbook zip and the unpacked bytes spent so far (declared, and really inflated)."""

    def __init__(self, path: str, budget: int) -> None:
        self.limit = budget
        self.declared = 0
        self.used = 0
        try:
            self.zip = zipfile.ZipFile(path)
        except Exception as exc:
            raise translate(exc) from exc
        self.names = {n.lower(): n for n in self.zip.namelist()}

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the zip."""
        self.zip.close()

    def has(self, name: str) -> bool:
        """True when the archive holds this part (names compare without case)."""
        return name.lower() in self.names

    def open(self, name: str) -> Part:
        """Open a part after checking its declared size and ratio against the budget."""
        real = self.names.get(name.lower())
        if real is None:
            raise ReaderError(f"corrupt or truncated workbook: its part {name} is missing")
        info = self.zip.getinfo(real)
        if info.flag_bits & 0x1:
            raise ReaderError("workbook is password-protected")
        self.declared += info.file_size
        bomb = info.file_size > _RATIO_EXEMPT and info.file_size > MAX_RATIO * info.compress_size
        if self.declared > self.limit or bomb:
            raise _too_large(self.limit)
        return Part(self.zip.open(info), self)


class Part:
    """A part being inflated, charged to the archive's budget as the bytes come out."""

    def __init__(self, stream: IO[bytes], archive: Archive) -> None:
        self.stream = stream
        self.archive = archive

    def read(self, size: int) -> bytes:
        """Up to size inflated bytes; ReaderError once the archive's budget is spent."""
        data = self.stream.read(size)
        self.archive.used += len(data)
        if self.archive.used > self.archive.limit:  # declared sizes can lie; this count cannot
            raise _too_large(self.archive.limit)
        return data


def _too_large(limit: int) -> ReaderError:
    """The refusal of a workbook past its unpacking budget or ratio."""
    return ReaderError(
        f"workbook is too large when unpacked (over {limit} bytes, or a part inflates more than "
        f"{MAX_RATIO} times); refused as a possible zip bomb"
    )


def translate(exc: Exception) -> Exception:
    """Archive and XML failures as the caller's ReaderError; anything else is a bug, kept as is."""
    if isinstance(exc, ReaderError):
        return exc
    if isinstance(exc, (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError)):
        return ReaderError(f"corrupt or truncated workbook: {exc}")
    if isinstance(exc, (expat.ExpatError, UnicodeDecodeError)):
        return ReaderError(f"corrupt workbook: malformed XML ({exc})")
    if isinstance(exc, RuntimeError) and "encrypted" in str(exc):
        return ReaderError("workbook is password-protected")
    return exc
