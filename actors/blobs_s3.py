"""The blob store on S3-compatible object storage (AWS S3, MinIO, ...) through obstore."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import obstore
from obstore.store import S3Store

from actors.blobs import BlobUnavailable, S3Options, scratch_file

T = TypeVar("T")
_READ = 1024 * 1024  # a streamed read hands over at least this much at a time


def parse_blob_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) from `s3://bucket/prefix`; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"IMPORTER_BLOB_URL must look like s3://bucket/prefix, got {url!r}")
    return parts.netloc, parts.path.strip("/")


class S3Blobs:
    """Blobs as objects under `prefix` in one bucket; the bucket must exist (see `check`)."""

    def __init__(self, url: str, scratch: Path, options: S3Options) -> None:
        self.bucket, self.prefix = parse_blob_url(url)
        self.scratch = scratch
        self.options = options
        self.where = f"bucket {self.bucket!r}" + (f" at {options.endpoint}" if options.endpoint else "")
        given = {
            "endpoint": options.endpoint, "access_key_id": options.access_key_id,
            "secret_access_key": options.secret_access_key, "token": options.session_token,
            "region": options.region,
        }
        config = {k: v for k, v in given.items() if v}
        timeout = timedelta(seconds=options.timeout)
        self.store = S3Store(
            self.bucket,
            prefix=self.prefix or None,
            client_options={
                "allow_http": options.endpoint.startswith("http://"),
                "connect_timeout": min(timeout, timedelta(seconds=5)),
                "timeout": timeout,
            },
            retry_config={
                "max_retries": max(0, options.attempts - 1),
                "retry_timeout": timeout,
                "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=2), "base": 2},
            },
            **config,  # type: ignore[arg-type]
        )

    def temp_path(self, suffix: str = "") -> Path:
        """A fresh file in this process's local scratch folder."""
        return scratch_file(self.scratch, suffix)

    def put_file(self, key: str, local: Path) -> None:
        """Stream the file up (multipart past `part_bytes`; an unfinished upload is never visible)."""
        try:
            self._call(f"storing {key}", lambda: obstore.put(
                self.store, key, local, chunk_size=self.options.part_bytes, max_concurrency=2,
            ))
        finally:
            local.unlink(missing_ok=True)

    def write_bytes(self, key: str, data: bytes) -> None:
        """One PUT: atomic, so a racing writer of the same (identical) chunk is harmless."""
        self._call(f"storing {key}", lambda: obstore.put(self.store, key, data, use_multipart=False))

    def read_bytes(self, key: str) -> bytes:
        """One GET, whole."""
        return self._call(f"reading {key}", lambda: bytes(obstore.get(self.store, key).bytes()))

    def exists(self, key: str) -> bool:
        """A HEAD request."""
        try:
            self._call(f"looking up {key}", lambda: obstore.head(self.store, key))
        except FileNotFoundError:
            return False
        return True

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """Stream the object to a scratch file, lend its path, delete it afterwards."""
        path = self.temp_path()
        try:
            def download() -> None:
                with path.open("wb") as out:
                    for piece in obstore.get(self.store, key).stream(min_chunk_size=_READ):
                        out.write(piece)

            self._call(f"reading {key}", download)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def delete_tree(self, prefix: str) -> None:
        """Delete the object `prefix` and those under `prefix/` (listed, deleted in batches)."""
        def delete() -> None:
            with suppress(FileNotFoundError):
                obstore.delete(self.store, prefix)
            for batch in obstore.list(self.store, prefix.rstrip("/") + "/", chunk_size=1000):
                obstore.delete(self.store, [item["path"] for item in batch])

        self._call(f"deleting {prefix}/", delete)

    def check(self) -> str | None:
        """List at most one object: says whether the bucket exists and answers."""
        try:
            next(iter(obstore.list(self.store, chunk_size=1)), None)
        except Exception as exc:
            text = str(exc)
            if "NoSuchBucket" in text:
                return f"{self.where} does not exist (create it first)"
            return f"object store unreachable ({self.where}): {_first_line(text)}"
        return None

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one request; a missing object stays FileNotFoundError, any other failure is BlobUnavailable."""
        try:
            return fn()
        except FileNotFoundError:
            raise
        except Exception as exc:  # obstore's errors, and the OS's when the connection breaks
            raise BlobUnavailable(f"object store ({self.where}) failed {what}: {_first_line(str(exc))}") from None


def _first_line(text: str) -> str:
    """obstore's messages end in a multi-line debug dump: keep the sentence."""
    return text.strip().splitlines()[0][:300] if text.strip() else "no detail"
