"""Step `download`: fetch a URL source into the blob store, SSRF-checked, retried when transient."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from actors.net import DownloadError, download
from actors.readers import ReaderError, inspect_file
from events import log as event_log
from events.db import write_tx
from events.flow import DOWNLOAD, Step, next_step
from events.log import now
from events.types import DownloadAttempted, Event, FileStored, ImportFailed

if TYPE_CHECKING:
    from actors.runtime import Runtime

logger = logging.getLogger("importer.download")


def run(rt: Runtime, ticket: int, _chunk: int | None = None) -> None:
    """Download the ticket's source once; record FileStored, or the attempt and maybe the failure."""
    view = rt.view(ticket)
    if view is None or view.spec is None or next_step(view) != Step(DOWNLOAD):
        return
    row = rt.ticket(ticket)
    uri = row.secret_uri or view.spec.source_uri or ""
    key = f"sources/{view.uuid}"
    dest = rt.blobs.temp_path()  # local scratch; stored under `key` once it is known to be importable
    s = rt.settings
    attempt = view.download_attempts + 1
    new: list[Event]
    retry_in: float | None = None
    try:
        got = download(
            uri, dest, max_bytes=s.max_upload_bytes, allow=rt.allow, connect_timeout=s.download_connect_timeout,
            read_timeout=s.download_read_timeout, deadline=s.download_deadline,
        )
        fmt = inspect_file(dest, separator=view.spec.separator, encoding=view.spec.encoding, sheet=view.spec.sheet,
                           max_unpacked_bytes=s.max_unpacked_bytes).format
        name = unquote(urlsplit(view.spec.source_uri or "").path.rsplit("/", 1)[-1]) or None
        rt.blobs.put_file(key, dest)  # BlobUnavailable: the step is tried again later
        new = [FileStored(at=now(), blob=key, size=got.size, sha256=got.sha256, format=fmt, filename=name)]
    except DownloadError as exc:
        message = str(exc)
        new = [DownloadAttempted(at=now(), attempt=attempt, error=message, transient=exc.transient)]
        if exc.transient and attempt < s.download_attempts:
            retry_in = min(60.0, 0.5 * 2 ** (attempt - 1))
        else:
            tries = f" after {attempt} attempts" if attempt > 1 else ""
            new.append(ImportFailed(at=now(), reason=f"download failed{tries}: {message}"))
    except ReaderError as exc:
        new = [ImportFailed(at=now(), reason=f"the downloaded file cannot be imported: {exc}")]
    finally:
        dest.unlink(missing_ok=True)  # stored (moved or uploaded) or not wanted
    with write_tx(rt.engine) as conn:
        event_log.append(conn, ticket, view.seq, new)
    if retry_in is not None:
        logger.info("download attempt %d failed (%s); retrying in %.1fs", attempt, new[0], retry_in)
        rt.actors[DOWNLOAD].send_with_options(args=(ticket,), delay=int(retry_in * 1000))
    else:
        rt.drive(ticket)
