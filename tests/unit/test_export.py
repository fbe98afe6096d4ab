"""The log file (importer-log v1): Given an export, When imported into an empty database and exported again,
Then the same lines; and every damaged or misplaced file is refused with a sentence that says why."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa

from events.db import make_engine, read_tx, write_tx
from events.export import (
    FORMAT,
    VERSION,
    Credential,
    DatasetLine,
    EndLine,
    EventLine,
    Header,
    LogFileError,
    TenantLine,
    TicketLine,
    export_log,
    import_log,
    reserved,
)
from events.types import FileStored, ImportRequested, ImportSpec, encode_event

AT = datetime(2026, 1, 1, tzinfo=UTC)
SCHEMA = b'{"fields":[{"name":"email","type":"email","required":true}],"key":["email"]}'


def encoded(*lines: object) -> list[bytes]:
    return [msgspec.json.encode(line) for line in lines]


def event_line(ticket: int, seq: int, event: ImportRequested | FileStored) -> EventLine:
    body = encode_event(event)
    return EventLine(ticket, seq, msgspec.json.decode(body)["type"], msgspec.Raw(body))


HEADER = Header(format=FORMAT, version=VERSION, exported_at=AT)
BODY = [
    TenantLine(1, "acme", AT, "whsec_x", [Credential("native", None, "ab" * 32), Credential("yesmail", "acme-1", "cd" * 32)]),
    DatasetLine(1, 1, "contacts", AT, msgspec.Raw(SCHEMA)),
    TicketLine(1, "7f0c9a56-0000-4000-8000-000000000001", 1, 1, "native", None, False, AT),
    event_line(1, 1, ImportRequested(at=AT, tenant="acme", spec=ImportSpec(dataset="contacts"), uuid="7f0c9a56-0000-4000-8000-000000000001")),
    event_line(1, 2, FileStored(at=AT, blob="sources/1", size=10, sha256="x", format="csv")),
]
END = EndLine(tenants=1, datasets=1, batches=0, tickets=1, events=2)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty database (SQLite, the embedded default)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}")
    yield engine
    engine.dispose()


def exported(engine: sa.Engine, **options: object) -> list[bytes]:
    out = io.BytesIO()
    with read_tx(engine) as conn:
        export_log(conn, out.write, **options)  # type: ignore[arg-type]
    return out.getvalue().splitlines()


def test_an_imported_log_exports_line_for_line_the_same(engine: sa.Engine) -> None:
    with write_tx(engine) as conn:
        added = import_log(conn, encoded(HEADER, *BODY, END))
    assert added == {"tenants": 1, "datasets": 1, "batches": 0, "tickets": 1, "events": 2}
    first, *rest = exported(engine)
    assert msgspec.json.decode(first, type=Header).format == FORMAT
    assert rest == encoded(*BODY, END)


def test_one_tenants_export_holds_only_that_tenant(engine: sa.Engine) -> None:
    other = TenantLine(2, "globex", AT, "whsec_y", [])
    with write_tx(engine) as conn:
        import_log(conn, encoded(HEADER, *BODY, other, msgspec.structs.replace(END, tenants=2)))
    lines = exported(engine, tenant="globex")
    assert lines[1:] == encoded(other, EndLine(tenants=1, datasets=0, batches=0, tickets=0, events=0))
    with pytest.raises(LogFileError, match="^no tenant named 'initech'$"):
        exported(engine, tenant="initech")


def test_the_deployments_own_tenants_are_never_exported_nor_imported(engine: sa.Engine) -> None:
    assert reserved("__ops__") and not reserved("__ops") and not reserved("acme")
    operator = TenantLine(9, "__ops__", AT, "whsec_ops", [])
    with write_tx(engine) as conn:
        added = import_log(conn, encoded(HEADER, operator, *BODY, msgspec.structs.replace(END, tenants=2)))
    assert added["tenants"] == 1
    assert b"__ops__" not in b"".join(exported(engine))


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "^the file is empty; expected an importer-log export$"),
        ([b"not json"], "^the first line is not an importer-log header"),
        (encoded(Header(format="other", version=1)), r"^not an importer log \(format 'other'\)$"),
        (encoded(Header(format=FORMAT, version=2)), r"^importer-log version 2 is not supported \(this version reads 1\)$"),
        (encoded(HEADER, *BODY), "^the file ends without its trailer line: it was truncated; nothing was imported$"),
        (encoded(HEADER, *BODY[:3], END), "^the file is damaged: its trailer counts"),
        (encoded(HEADER, *BODY, END, END), "^lines after the end-of-log trailer$"),
        ([*encoded(HEADER), b'{"kind": "nonsense"}'], "^line 2: "),
    ],
)
def test_a_file_that_is_not_a_whole_log_is_refused(engine: sa.Engine, lines: list[bytes], message: str) -> None:
    with pytest.raises(LogFileError, match=message), write_tx(engine) as conn:
        import_log(conn, lines)


def test_an_event_whose_body_contradicts_its_line_is_refused(engine: sa.Engine) -> None:
    lying = msgspec.structs.replace(BODY[4], type="file_parsed")
    with pytest.raises(LogFileError, match="^ticket 1 seq 2: type 'file_parsed' but the body says 'file_stored'$"), write_tx(engine) as conn:
        import_log(conn, encoded(HEADER, *BODY[:4], lying, END))


def test_a_database_in_use_takes_a_log_only_as_a_merge_of_what_agrees(engine: sa.Engine) -> None:
    with write_tx(engine) as conn:
        import_log(conn, encoded(HEADER, *BODY, END))
    with pytest.raises(LogFileError, match=r"^the database is not empty \(1 datasets, 1 tickets, 1 tenants\)"), write_tx(engine) as conn:
        import_log(conn, encoded(HEADER, *BODY, END))
    with write_tx(engine) as conn:
        assert import_log(conn, encoded(HEADER, *BODY, END), merge=True) == dict.fromkeys(("tenants", "datasets", "batches", "tickets", "events"), 0)
    renamed = msgspec.structs.replace(BODY[0], name="acme-renamed")
    with pytest.raises(LogFileError, match=r"^tenant 1 is \('acme',\) here but \('acme-renamed',\) in the log; cannot merge$"), write_tx(engine) as conn:
        import_log(conn, encoded(HEADER, renamed, *BODY[1:], END), merge=True)
