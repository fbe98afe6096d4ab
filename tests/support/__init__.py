"""Shared test helpers, one room each; import any of them from here (`from tests.support import Harness`).

services   where Redis and PostgreSQL are, and skip-or-fail when one (or a tool, a test dependency) is missing
harness    Harness: a runtime, a worker and an HTTP client; native_auth and submit for the native API
waiting    wait_for: the one way to wait (on the ticket's event log, with a timeout)
checks     what every log must satisfy; the records an import must leave
files      CSV/XLSX/XLS files made by the usual libraries; the contacts schema and rows
handmade   XLSX parts, OLE2 compound files and lying zips made by hand
servers    free ports, a webhook receiver, a file site; net_servers: the actors.net source and FTP servers
processes  `importer` commands and `importer serve` in processes of their own
scaled     a scaled deployment of `importer worker` processes on PostgreSQL + Redis
doors      which front door a path belongs to; ErrorShapes: each door's error body against its own schema
schema     upgrade_to: a database at a given migration revision
watching   Watch: a probe in a thread whose failures reach the test; process-tree RSS and /health samples
"""

from tests.support.checks import (
    RANK,
    check_exactly_once,
    check_log,
    events_of,
    expected_record,
    staged_count,
    ticket_records,
    types_of,
)
from tests.support.doors import ErrorShapes, door_of
from tests.support.files import (
    CONTACTS_SCHEMA,
    contacts,
    make_xlsx,
    rows_of,
    to_shared_strings,
    write_csv,
    write_xls,
    write_xlsx,
)
from tests.support.handmade import (
    NS,
    REL,
    RELNS,
    compound_file,
    hand_xlsx,
    inline_row,
    lie_about_size,
    sheet_xml,
)
from tests.support.harness import Harness, native_auth, submit
from tests.support.processes import IMPORTER, importer_process, served, serving_importer
from tests.support.scaled import (
    PrivateRedis,
    Scaled,
    WorkerProcess,
    on_private_redis,
    pending_messages,
    redis_client,
    requeue_unacked,
    wait_drained,
)
from tests.support.schema import upgrade_to
from tests.support.servers import Receiver, Site, closed_port, free_port, receiver, serving_site
from tests.support.services import (
    need,
    need_module,
    postgres_url,
    redis_url,
    service_available,
    unavailable,
)
from tests.support.sse import sse
from tests.support.waiting import settled, terminal, wait_for
from tests.support.watching import ServiceSample, Watch, tree_rss

__all__ = [
    "CONTACTS_SCHEMA",
    "ErrorShapes",
    "IMPORTER",
    "NS",
    "RANK",
    "REL",
    "RELNS",
    "Harness",
    "PrivateRedis",
    "Receiver",
    "Scaled",
    "ServiceSample",
    "Site",
    "Watch",
    "WorkerProcess",
    "on_private_redis",
    "check_exactly_once",
    "check_log",
    "closed_port",
    "compound_file",
    "contacts",
    "door_of",
    "events_of",
    "expected_record",
    "free_port",
    "hand_xlsx",
    "importer_process",
    "inline_row",
    "lie_about_size",
    "make_xlsx",
    "native_auth",
    "need",
    "need_module",
    "pending_messages",
    "postgres_url",
    "receiver",
    "redis_client",
    "redis_url",
    "requeue_unacked",
    "rows_of",
    "served",
    "service_available",
    "serving_importer",
    "serving_site",
    "settled",
    "sse",
    "sheet_xml",
    "staged_count",
    "submit",
    "terminal",
    "ticket_records",
    "to_shared_strings",
    "tree_rss",
    "types_of",
    "unavailable",
    "upgrade_to",
    "wait_drained",
    "wait_for",
    "write_csv",
    "write_xls",
    "write_xlsx",
]
