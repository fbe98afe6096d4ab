"""One settings object, read once from IMPORTER_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

MB = 1024 * 1024
AWS_VARIABLES = {  # the names every S3 client reads; IMPORTER_S3_* wins when both are set
    "s3_endpoint": "AWS_ENDPOINT_URL",
    "s3_access_key_id": "AWS_ACCESS_KEY_ID",
    "s3_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "s3_session_token": "AWS_SESSION_TOKEN",
    "s3_region": "AWS_REGION",
}


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every knob of the service; each field is read from IMPORTER_<NAME> (upper case)."""

    data_dir: str = "./data"
    database_url: str = ""  # empty: sqlite file under data_dir
    redis_url: str = ""  # empty: in-process broker and worker (embedded default)
    redis_namespace: str = "importer"
    blob_dir: str = ""  # empty: <data_dir>/blobs
    blob_url: str = ""  # s3://bucket/prefix: blobs in S3-compatible object storage; empty: blob_dir
    blob_part_bytes: int = 8 * MB  # object storage: multipart upload past this size, in parts of it
    blob_timeout: float = 30.0  # object storage: one request, before it is retried
    blob_attempts: int = 3  # object storage: tries per request before the store counts as unavailable
    blob_retention_hours: float = 168.0  # a finished ticket's file is removed this long after it ended; 0 = kept
    # Object storage endpoint and credentials: from the usual AWS_* variables (see AWS_VARIABLES).
    s3_endpoint: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_session_token: str = ""
    s3_region: str = ""
    chunk_size: int = 5000
    # While a worker applies chunk k, a lean child process checks chunk k+1's rows (actors.check_ahead).
    # Unset: on when scaled; off embedded, where its ~30 MB would take the service past its 200 MB.
    check_ahead: bool | None = None
    # How many chunks of one import may be applied at once, by any worker (never two that share a
    # key). Unset: one at a time embedded (one process, one SQLite writer), at least 2 when scaled.
    apply_parallel: int | None = None
    # Atomic imports and dry runs (no error threshold) apply chunks while the file is still read:
    # their rows reach the dataset only at finalize, so a file refused late leaves nothing written.
    # Unset: on when scaled (the parse runs beside the applies of other processes); off embedded,
    # where one process's threads take turns at the interpreter and it measured no faster.
    parse_overlap: bool | None = None
    max_upload_bytes: int = 50 * MB
    max_form_parts: int = 32
    max_form_field_bytes: int = 64 * 1024
    max_unpacked_bytes: int = 1024 * MB
    worker_threads: int = 4
    # The longest an idle worker waits between looks at Redis (dramatiq backs off up to it). 20 ms
    # measured no faster than 100 on the bench, and its looks took a third of the workers' samples.
    worker_poll_ms: int = 100
    embedded_worker: Literal["process", "thread"] = "process"  # `serve` without Redis: "process" (a child) or "thread" (in the API process)
    worker_processes: int = 1
    max_retries: int = 5
    retry_min_backoff_ms: int = 200
    retry_max_backoff_ms: int = 10_000
    stall_seconds: float = 300.0
    resume_interval_seconds: float = 60.0
    broker_check_seconds: float = 2.0  # how often workers look for a Redis that restarted empty
    allowed_hosts: str = ""
    download_connect_timeout: float = 10.0
    download_read_timeout: float = 30.0
    download_deadline: float = 300.0
    download_attempts: int = 4
    webhook_timeout: float = 10.0
    webhook_schedule: str = "5s,5m,30m,2h,5h,10h,10h"
    public_url: str = ""  # base URL for absolute links (Content-Location); empty: from the request
    log_format: str = "auto"  # auto | json | text
    log_level: str = "INFO"
    submit_rate_per_minute: int = 0  # per tenant; 0 = unlimited
    results_page_max: int = 10_000
    # HTTP limits uvicorn lacks (app/http_guard.py); a real client on a slow line meets them easily.
    max_header_bytes: int = 64 * 1024  # request line + headers; past it: 431
    header_timeout: float = 30.0  # a whole request head must arrive within this; else 408
    body_timeout: float = 60.0  # a body that sends nothing for this long: 408
    body_min_rate: int = 1024  # bytes/s a body must average once it has run body_timeout seconds

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'importer.db'}"

    @property
    def resolved_blob_dir(self) -> Path:
        """Where uploaded files and parsed chunks live."""
        return Path(self.blob_dir) if self.blob_dir else Path(self.data_dir) / "blobs"

    @property
    def resolved_apply_parallel(self) -> int:
        """Chunks of one import in flight at once (1: one after another, in file order)."""
        if self.apply_parallel is not None:
            return max(1, self.apply_parallel)
        return 1 if self.embedded else max(2, self.worker_processes)

    @property
    def resolved_parse_overlap(self) -> bool:
        """Whether atomic imports and dry runs apply chunks while their file is still read."""
        return not self.embedded if self.parse_overlap is None else self.parse_overlap

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: the API process runs the worker itself."""
        return not self.redis_url


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build Settings from IMPORTER_* variables (and explicit overrides, which win)."""
    source = os.environ if env is None else env
    raw: dict[str, object] = {}
    for name in Settings.__struct_fields__:
        value = source.get(f"IMPORTER_{name.upper()}")
        if value is None and name in AWS_VARIABLES:
            value = source.get(AWS_VARIABLES[name])
        if value is not None:
            raw[name] = value
    raw.update(overrides)
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SystemExit(f"invalid IMPORTER_* setting: {exc}") from None
