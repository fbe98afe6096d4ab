"""The blob store: uploaded sources and staged chunks as files under one folder."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path


class BlobStore:
    """Files addressed by slash-separated keys; keys never escape the root."""

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
        fd, name = tempfile.mkstemp(dir=self.root / "tmp", suffix=suffix)
        os.close(fd)
        return Path(name)

    def adopt(self, temp: Path, key: str) -> Path:
        """Move a finished temp file under `key`."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        return target

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

    def delete_tree(self, key: str) -> None:
        """Remove a folder of blobs, if present."""
        shutil.rmtree(self.path(key), ignore_errors=True)
