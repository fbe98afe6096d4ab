"""The whole log as NDJSON (format `importer-log`, version 1): export it, import it into an empty database."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from events.tables import batches, credentials, datasets, events, tenants, tickets
from events.types import chunk_slot

FORMAT = "importer-log"
VERSION = 1
EVENT_BATCH = 1000


class LogFileError(Exception):
    """The log cannot be exported or imported; the message says what to do."""


class Header(msgspec.Struct, frozen=True, kw_only=True):
    """First line: what the file is, and what was exported."""

    format: str
    version: int
    exported_at: datetime | None = None
    tenant: str | None = None
    since: datetime | None = None


class Credential(msgspec.Struct, frozen=True):
    """A tenant's credential: the public half and the sha256 of the secret half."""

    dialect: str
    ident: str | None
    secret_hash: str


class TenantLine(msgspec.Struct, frozen=True, tag="tenant", tag_field="kind"):
    """A tenant, its hashed credentials and its (sensitive) webhook secret."""

    id: int
    name: str
    created_at: datetime
    webhook_secret: str  # sensitive: signs the callbacks
    credentials: list[Credential]


class DatasetLine(msgspec.Struct, frozen=True, tag="dataset", tag_field="kind"):
    """A dataset definition (not its records)."""

    id: int
    tenant: int
    name: str
    created_at: datetime
    schema: msgspec.Raw  # the stored definition, verbatim


class BatchLine(msgspec.Struct, frozen=True, tag="batch", tag_field="kind"):
    """An admin-dialect batch (it may exist before its file)."""

    id: str
    tenant: int
    type: str
    company_id: str | None
    company_project_id: str | None
    created_at: datetime


class TicketLine(msgspec.Struct, frozen=True, tag="ticket", tag_field="kind"):
    """A ticket's immutable facts, id preserved (its secret_uri is never exported)."""

    id: int
    uuid: str
    tenant: int
    dataset: int
    dialect: str
    dedup_key: str | None
    has_callback: bool
    created_at: datetime


class EventLine(msgspec.Struct, frozen=True, tag="event", tag_field="kind"):
    """One logged event."""

    ticket: int
    seq: int
    type: str
    body: msgspec.Raw  # the stored event, verbatim


class EndLine(msgspec.Struct, frozen=True, tag="end", tag_field="kind"):
    """The trailer: how many lines of each kind precede it (a shorter file was truncated)."""

    tenants: int
    datasets: int
    batches: int
    tickets: int
    events: int


Line = TenantLine | DatasetLine | BatchLine | TicketLine | EventLine | EndLine
_encoder = msgspec.json.Encoder()
_lines = msgspec.json.Decoder(Line)


class _EventHead(msgspec.Struct):
    type: str
    at: datetime
    chunk: int | None = None


def reserved(name: str) -> bool:
    """Tenants named __like_this__ belong to the deployment (the operator's) and are never exported."""
    return name.startswith("__") and name.endswith("__")


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _raw(text: str | bytes) -> msgspec.Raw:
    data = text.encode() if isinstance(text, str) else bytes(text)
    if b"\n" in data or b"\r" in data:  # keep one object per line
        data = _encoder.encode(msgspec.json.decode(data))
    return msgspec.Raw(data)


def export_log(conn: sa.Connection, write: Callable[[bytes], Any], *, tenant: str | None = None, since: datetime | None = None) -> EndLine:
    """Write the log (tenants, datasets, batches, tickets, events) line by line; returns the counts."""
    picked = sa.select(tenants.c.id).where(sa.not_(tenants.c.name.like(r"\_\_%\_\_", escape="\\")))
    if tenant is not None:
        picked = picked.where(tenants.c.name == tenant)
        if conn.execute(picked).first() is None:
            raise LogFileError(f"no tenant named {tenant!r}")

    def emit(obj: object) -> None:
        write(_encoder.encode(obj) + b"\n")

    emit(Header(format=FORMAT, version=VERSION, exported_at=datetime.now(UTC), tenant=tenant, since=since))
    creds: dict[int, list[Credential]] = {}
    for row in conn.execute(sa.select(credentials).where(credentials.c.tenant_id.in_(picked)).order_by(credentials.c.id)):
        creds.setdefault(row.tenant_id, []).append(Credential(row.dialect, row.ident, row.secret_hash))
    n = dict.fromkeys(("tenants", "datasets", "batches", "tickets", "events"), 0)
    for row in conn.execute(sa.select(tenants).where(tenants.c.id.in_(picked)).order_by(tenants.c.id)):
        emit(TenantLine(row.id, row.name, _utc(row.created_at), row.webhook_secret, creds.get(row.id, [])))
        n["tenants"] += 1
    for row in conn.execute(sa.select(datasets).where(datasets.c.tenant_id.in_(picked)).order_by(datasets.c.id)):
        emit(DatasetLine(row.id, row.tenant_id, row.name, _utc(row.created_at), _raw(row.schema)))
        n["datasets"] += 1
    for row in conn.execute(sa.select(batches).where(batches.c.tenant_id.in_(picked)).order_by(batches.c.created_at, batches.c.id)):
        emit(BatchLine(row.id, row.tenant_id, row.type, row.company_id, row.company_project_id, _utc(row.created_at)))
        n["batches"] += 1
    chosen = sa.select(tickets.c.id).where(tickets.c.tenant_id.in_(picked))
    if since is not None:
        chosen = chosen.where(tickets.c.created_at >= _utc(since))
    stream = conn.execution_options(yield_per=EVENT_BATCH)
    for row in stream.execute(sa.select(tickets).where(tickets.c.id.in_(chosen)).order_by(tickets.c.id)):
        emit(TicketLine(row.id, row.uuid, row.tenant_id, row.dataset_id, row.dialect, row.dedup_key, bool(row.has_callback), _utc(row.created_at)))
        n["tickets"] += 1
    query = sa.select(events.c.ticket, events.c.seq, events.c.type, events.c.body).where(events.c.ticket.in_(chosen))
    for ticket, seq, kind, body in stream.execute(query.order_by(events.c.ticket, events.c.seq)):
        emit(EventLine(ticket, seq, kind, _raw(body)))
        n["events"] += 1
    end = EndLine(**n)
    emit(end)
    return end


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)


def _header(first: bytes | None) -> Header:
    if first is None:
        raise LogFileError("the file is empty; expected an importer-log export")
    try:
        header = msgspec.json.decode(first, type=Header)
    except msgspec.MsgspecError:
        raise LogFileError('the first line is not an importer-log header {"format": "importer-log", "version": 1}') from None
    if header.format != FORMAT:
        raise LogFileError(f"not an importer log (format {header.format!r})")
    if header.version != VERSION:
        raise LogFileError(f"importer-log version {header.version} is not supported (this version reads {VERSION})")
    return header


class _Importer:
    """Inserts lines in file order; with merge, rows whose id exists are skipped (after a sanity check)."""

    def __init__(self, conn: sa.Connection, merge: bool) -> None:
        self.conn = conn
        self.merge = merge
        self.seen = dict.fromkeys(("tenants", "datasets", "batches", "tickets", "events"), 0)
        self.added = dict(self.seen)
        self.skipped_tickets: set[int] = set()
        self.new_tickets: list[TicketLine] = []
        self.pending: list[dict[str, Any]] = []

    def _existing(self, table: sa.Table, key: Any, *cols: sa.ColumnElement[Any]) -> Any:
        return self.conn.execute(sa.select(*cols).where(table.c.id == key)).first()

    def _skip(self, what: str, key: object, here: Sequence[Any] | None, there: tuple[Any, ...]) -> bool:
        if here is None:
            return False
        if not self.merge:
            raise LogFileError(f"{what} {key} already exists; import into an empty database or pass --merge")
        if tuple(here) != there:
            raise LogFileError(f"{what} {key} is {tuple(here)} here but {there} in the log; cannot merge")
        return True

    def add(self, line: Line) -> None:
        c = self.conn
        match line:
            case TenantLine():
                self.seen["tenants"] += 1
                if reserved(line.name) or self._skip("tenant", line.id, self._existing(tenants, line.id, tenants.c.name), (line.name,)):
                    return
                c.execute(tenants.insert().values(id=line.id, name=line.name, webhook_secret=line.webhook_secret, created_at=line.created_at))
                if line.credentials:
                    c.execute(credentials.insert(), [{"tenant_id": line.id, **msgspec.structs.asdict(k)} for k in line.credentials])
                self.added["tenants"] += 1
            case DatasetLine():
                self.seen["datasets"] += 1
                if self._skip("dataset", line.id, self._existing(datasets, line.id, datasets.c.tenant_id, datasets.c.name), (line.tenant, line.name)):
                    return
                c.execute(datasets.insert().values(id=line.id, tenant_id=line.tenant, name=line.name, schema=bytes(line.schema).decode(), created_at=line.created_at))
                self.added["datasets"] += 1
            case BatchLine():
                self.seen["batches"] += 1
                if self._skip("batch", line.id, self._existing(batches, line.id, batches.c.tenant_id), (line.tenant,)):
                    return
                c.execute(batches.insert().values(
                    id=line.id, tenant_id=line.tenant, type=line.type, company_id=line.company_id,
                    company_project_id=line.company_project_id, created_at=line.created_at,
                ))
                self.added["batches"] += 1
            case TicketLine():
                self.seen["tickets"] += 1
                self.new_tickets.append(line)
                if len(self.new_tickets) >= EVENT_BATCH:
                    self.flush()
            case EventLine():
                self.seen["events"] += 1
                head = msgspec.json.decode(line.body, type=_EventHead)
                if head.type != line.type:
                    raise LogFileError(f"ticket {line.ticket} seq {line.seq}: type {line.type!r} but the body says {head.type!r}")
                self.pending.append({
                    "ticket": line.ticket, "seq": line.seq, "type": line.type, "at": head.at,
                    "chunk": chunk_slot(line.type, head.chunk), "body": bytes(line.body),
                })
                if len(self.pending) >= EVENT_BATCH:
                    self.flush()
            case EndLine():
                self.flush()
                if msgspec.structs.asdict(line) != self.seen:
                    raise LogFileError(f"the file is damaged: its trailer counts {msgspec.structs.asdict(line)} but it holds {self.seen}")

    def flush(self) -> None:
        """Insert buffered tickets (skipping existing ones when merging), then their events."""
        if self.new_tickets:
            batch, self.new_tickets = self.new_tickets, []
            here = dict(self.conn.execute(
                sa.select(tickets.c.id, tickets.c.uuid).where(tickets.c.id.in_([t.id for t in batch]))
            ).all())
            rows = []
            for t in batch:
                if self._skip("ticket", t.id, (here[t.id],) if t.id in here else None, (t.uuid,)):
                    self.skipped_tickets.add(t.id)
                    continue
                rows.append({
                    "id": t.id, "uuid": t.uuid, "tenant_id": t.tenant, "dataset_id": t.dataset, "dialect": t.dialect,
                    "dedup_key": t.dedup_key, "has_callback": t.has_callback, "secret_uri": None, "created_at": t.created_at,
                })
            if rows:
                self.conn.execute(tickets.insert(), rows)
                self.added["tickets"] += len(rows)
        rows = [e for e in self.pending if e["ticket"] not in self.skipped_tickets]
        self.pending = []
        if rows:
            self.conn.execute(events.insert(), rows)
            self.added["events"] += len(rows)


def _reset_sequences(conn: sa.Connection) -> None:
    """PostgreSQL: move each id sequence past the explicit ids just inserted."""
    if conn.dialect.name != "postgresql":
        return  # SQLite picks max(id) + 1 by itself
    for table in ("tenants", "datasets", "tickets"):
        conn.execute(sa.text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        ))


def import_log(conn: sa.Connection, lines: Iterable[bytes], *, merge: bool = False) -> dict[str, int]:
    """Load an export into this database (inside the caller's transaction); returns rows added per kind."""
    it = (raw for raw in (line.strip() for line in lines) if raw)
    _header(next(it, None))
    if not merge:
        used = {t.name: _count(conn, t) for t in (datasets, tickets, batches)}
        used["tenants"] = sum(1 for (name,) in conn.execute(sa.select(tenants.c.name)) if not reserved(name))
        if any(used.values()):
            busy = ", ".join(f"{n} {k}" for k, n in used.items() if n)
            raise LogFileError(f"the database is not empty ({busy}); import into an empty one, or pass --merge to skip existing ids")
    # The deployment's own tenants (the operator's) step aside so exported ids cannot collide with them.
    kept = [(row, list(conn.execute(sa.select(credentials).where(credentials.c.tenant_id == row.id))))
            for row in conn.execute(sa.select(tenants)) if reserved(row.name)]
    for row, _ in kept:
        conn.execute(tenants.delete().where(tenants.c.id == row.id))
    loader = _Importer(conn, merge)
    ended = False
    try:
        for raw in it:
            if ended:
                raise LogFileError("lines after the end-of-log trailer")
            try:
                line = _lines.decode(raw)
            except msgspec.MsgspecError as exc:
                raise LogFileError(f"line {sum(loader.seen.values()) + 2}: {exc}") from None
            loader.add(line)
            ended = isinstance(line, EndLine)
    except IntegrityError as exc:
        raise LogFileError(f"the log conflicts with this database: {exc.orig}") from None
    if not ended:
        raise LogFileError("the file ends without its trailer line: it was truncated; nothing was imported")
    _reset_sequences(conn)
    for row, creds in kept:
        new_id = conn.execute(tenants.insert().values(name=row.name, webhook_secret=row.webhook_secret, created_at=row.created_at)).inserted_primary_key
        assert new_id is not None
        for k in creds:
            conn.execute(credentials.insert().values(tenant_id=new_id[0], dialect=k.dialect, ident=k.ident, secret_hash=k.secret_hash))
    return loader.added
