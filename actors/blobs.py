"""The blob store: uploaded sources and parsed chunks, under one folder or in an S3 bucket."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import NamedTuple, Protocol

from actors.errors import StepError


class BlobUnavailable(StepError):
    """The object store cannot be reached (or refused the request): try again later."""


class Blobs(Protocol):
    """What the steps and the API need from a blob store; keys are slash-separated and relative.

    A key is written once: `put_file` for sources (the API or the download step), `write_bytes`
    for parsed chunks (identical bytes whoever parses the file). Readers need a local path, so
    `local_copy` lends one for the length of a `with` block.
    """

    def temp_path(self, suffix: str = "") -> Path:
        """A fresh local scratch file (an upload being received, a download in progress)."""
        ...

    def put_file(self, key: str, local: Path) -> None:
        """Store a finished local file under `key`; the local file is consumed."""
        ...

    def write_bytes(self, key: str, data: bytes) -> None:
        """Store a small blob whole."""
        ...

    def read_bytes(self, key: str) -> bytes:
        """Read a small blob whole (FileNotFoundError when absent)."""
        ...

    def exists(self, key: str) -> bool:
        """True when the blob is there."""
        ...

    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """A local path holding the blob while the block runs (FileNotFoundError when absent)."""
        ...

    def delete_tree(self, prefix: str) -> None:
        """Remove every blob under `prefix` (a folder), if any."""
        ...

    def check(self) -> str | None:
        """None when the store is usable, else what is wrong with it (for /ready)."""
        ...


class LocalBlobs:
    """Files under one folder (the embedded default); keys never escape the root."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)

    def path(self, key: str) -> Path:
        """The file behind a key (which must be a relative path inside the store)."""
        target = (self.root / key).resolve()
        if not target.is_relative_to(self.root) or target == self.root:
            raise ValueError(f"blob key escapes the store: {key!r}")
        return target

    def temp_path(self, suffix: str = "") -> Path:
        """A fresh file path for an upload in progress (same filesystem, so moving is atomic)."""
        return scratch_file(self.root / "tmp", suffix)

    def put_file(self, key: str, local: Path) -> None:
        """Move a finished temp file under `key`."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, target)

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write a whole blob atomically (write to a temp file, then rename)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")  # racing writers never share a temp file
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def read_bytes(self, key: str) -> bytes:
        """Read a whole (small) blob."""
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        """True when the blob is there."""
        return self.path(key).exists()

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """The blob's own file: it is already local."""
        path = self.path(key)
        if not path.exists():
            raise FileNotFoundError(f"blob {key!r} is not in the store")
        yield path

    def delete_tree(self, prefix: str) -> None:
        """Remove a folder of blobs (or one blob), if present."""
        target = self.path(prefix)
        if target.is_file():
            target.unlink(missing_ok=True)
        shutil.rmtree(target, ignore_errors=True)

    def check(self) -> str | None:
        """The folder must be writable."""
        return None if os.access(self.root, os.W_OK) else f"blob folder {self.root} is not writable"


def scratch_file(folder: Path, suffix: str = "") -> Path:
    """A new empty file in `folder` (created if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, suffix=suffix)
    os.close(fd)
    return Path(name)


class S3Options(NamedTuple):
    """How to reach an S3-compatible store (empty strings: the client's defaults)."""

    endpoint: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    session_token: str = ""
    region: str = ""
    part_bytes: int = 8 * 1024 * 1024  # multipart upload past this size, in parts of it
    timeout: float = 30.0  # one request, connect included
    attempts: int = 3  # per request, with backoff, before BlobUnavailable


def open_blobs(url: str, local_root: Path, scratch: Path, s3: S3Options) -> Blobs:
    """The store a deployment names: `s3://bucket/prefix` (object storage) or, when empty, a folder."""
    if not url:
        return LocalBlobs(local_root)
    from actors.blobs_s3 import S3Blobs  # obstore only where object storage is used

    return S3Blobs(url, scratch, s3)
