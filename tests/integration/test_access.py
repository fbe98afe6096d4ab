"""Access: every route of every dialect refuses a missing, wrong, cross-dialect or other tenant's
credential; secrets are stored hashed and compared in constant time; keys rotate; submissions
are rate limited per tenant with 429 and Retry-After."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.routes import HTTPRoute

from app import ratelimit, service
from app.errors import TooManyRequests
from app.ops import issue_operator_token
from app.tenants import check_pair, rotate_webhook_secret
from app.uploads import UploadedFile
from app.wiring import make_runtime
from events import catalog
from events.db import read_tx, write_tx
from events.tables import UtcDateTime, credentials, tenants
from events.types import ImportSpec
from tests.support import CONTACTS_SCHEMA, ErrorShapes, Harness, contacts, door_of, write_csv

PUBLIC = {"/health", "/ready", "/metrics", "/schema-assets/{name:str}", "/", "/ui", "/ui/imports/{ticket:int}", "/ui/static/{name:str}"}  # no tenant data; everything else needs a credential
DATASETS = ("contacts", "a_only", "partner_sales", "rma", "transactions")  # tenant B has only contacts
OTHER_SCHEMA = {"fields": [{"name": "sku", "type": "string", "required": True}], "key": ["sku"]}


class World:
    """Tenant A with one import in every dialect and a dataset for each; tenant B with contacts only,
    so a valid request of B's naming A's dataset, import type or track meets the ownership check."""

    def __init__(self, h: Harness, tmp: Path) -> None:
        self.h = h
        self.a = h.tenant("tenant-a")
        self.b = h.tenant("tenant-b")
        for name in DATASETS:
            h.dataset("tenant-a", name)
        h.dataset("tenant-b", "contacts")
        with write_tx(h.rt.engine) as conn:
            self.operator = issue_operator_token(conn)
        path = write_csv(tmp / "a.csv", contacts(3))
        self.csv = path.read_bytes()
        native = h.upload(self.a["native"]["token"], path, dataset="a_only").json()
        self.native, self.native_uuid = native["id"], native["uuid"]
        ym = self.a["yesmail"]
        self.yesmail = h.client.post(
            "/v2/reference-data/a_only/records/file-import", json={"source": {"uri": "http://127.0.0.1:9/a.csv"}},
            headers={"Api-User": ym["api_user"], "Api-Key": ym["api_key"]},
        ).json()["id"]
        th = self.a["thalamus"]
        self.thalamus = h.client.post(
            f"/api/v4/import/file?name=a&type=25011&touchpoint={th['touchpoint']}&token={th['token']}",
            files={"file": ("a.csv", path.read_bytes())},
        ).json()["id"]
        self.job = h.client.post("/objectimport/rma", files={"file": ("a.csv", path.read_bytes())}, headers=self.creds("teamtracks", self.a)).json()["jobId"]
        auth = self.creds("admin", self.a)
        self.batch = h.client.post("/api/adm/import/batch", json={"Type": "Transactions"}, headers=auth).json()["batchId"]
        assert h.client.post(f"/api/adm/import/file?batchId={self.batch}", files={"file": ("a.csv", path.read_bytes())}, headers=auth).status_code == 200

    @staticmethod
    def creds(dialect: str, of: dict[str, Any], wrong: bool = False) -> dict[str, str]:
        """The headers a caller of this dialect sends (wrong=True: the right id, a wrong secret)."""
        bad = "x" + uuid.uuid4().hex
        if dialect in ("native", "admin"):
            token = of[dialect]["token" if dialect == "native" else "bearer_token"]
            return {"Authorization": f"Bearer {bad if wrong else token}"}
        if dialect == "yesmail":
            return {"Api-User": of["yesmail"]["api_user"], "Api-Key": bad if wrong else of["yesmail"]["api_key"]}
        if dialect == "thalamus":
            return {"Thalamus-Touchpoint": of["thalamus"]["touchpoint"], "Thalamus-Token": bad if wrong else of["thalamus"]["token"]}
        t = of["teamtracks"]
        return {"tenant": t["tenant"], "Ocp-Apim-Subscription-Key": bad if wrong else t["subscription_key"],
                "Authorization": f"Bearer {bad if wrong else t['bearer_token']}"}

    def body(self, method: str, path: str, schema: dict[str, Any]) -> dict[str, Any]:
        """What a request to this route needs to pass validation (its JSON or file, and its query)."""
        upload = {"files": {"file": ("a.csv", self.csv, "text/csv")}}
        if method == "PUT":
            return {"json": schema}
        if path == "/imports":
            return {"data": {"dataset": "a_only"}, **upload}
        if path.endswith("/file-import"):
            return {"json": {"source": {"uri": "http://127.0.0.1:9/a.csv"}}}
        if path == "/api/v4/import/status":  # the id by query (also /status/{id})
            return {"params": {"id": str(self.thalamus)}}
        if path == "/api/v4/import/file":
            return {"params": {"name": "walked", "type": "25011"}, **upload}  # World made "a"
        if path.endswith(("/import/batch", "/importBatches")):
            return {"json": {"Type": "Transactions"}}
        if path.startswith("/objectimport/") or (path.startswith("/api/adm") and path.endswith("/file")):
            return upload
        return {}

    def fill(self, path: str, fresh: bool = False) -> str:
        """A concrete URL naming tenant A's resources (fresh: an admin upload goes to a new batch of A's)."""
        values = {"ticket": self.native, "name": "a_only", "dataset": "a_only", "trackId": "rma", "jobId": self.job, "dialect": "native"}
        if path.startswith("/v2/"):
            values["id"] = self.yesmail
        elif path.startswith("/api/v4/"):
            values["id"] = self.thalamus
        url = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(values[m[1]]), path)
        if not path.startswith("/api/adm"):
            return url
        batch = self.batch
        if fresh and path.endswith("/file"):
            made = self.h.client.post("/api/adm/import/batch", json={"Type": "Transactions"}, headers=self.creds("admin", self.a))
            batch = made.json()["batchId"]
        return f"{url}?BatchId={batch}"


def dialect_of(path: str) -> str:
    """Whose credentials a route takes; a route nobody classified fails the walk."""
    door = door_of(path)
    assert door is not None, f"route {path} is not classified: decide which credential protects it"
    return door


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("access")
    h = Harness.start(tmp, database_url=f"sqlite:///{tmp / 'importer.db'}")
    try:
        yield World(h, tmp)
    finally:
        h.stop()


def routes(world: World) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, hidden-from-schema ones included."""
    app = world.h.client.app
    found = []
    for route in app.routes:
        if isinstance(route, HTTPRoute) and not route.path.startswith("/schema"):
            found += [(m, route.path) for m in sorted(route.methods) if m not in ("HEAD", "OPTIONS")]
    return found


def test_the_walk_covers_every_route_in_the_openapi_schema(world: World) -> None:
    schema = world.h.client.get("/schema/openapi.json").json()
    listed = {(m.upper(), re.sub(r"\{(\w+)\}", r"\1", p.rstrip("/") or "/")) for p, ops in schema["paths"].items() for m in ops}
    walked = {(m, re.sub(r"\{(\w+)(?::\w+)?\}", r"\1", p.rstrip("/") or "/")) for m, p in routes(world)}
    assert listed <= walked, listed - walked
    assert len(walked - {(m, p) for m, p in walked if p in PUBLIC}) >= 25


def test_every_route_refuses_missing_wrong_and_cross_dialect_credentials(world: World) -> None:
    h = world.h
    checked = 0
    for method, path in routes(world):
        if path in PUBLIC:
            continue
        dialect = dialect_of(path)
        url = world.fill(path)
        attempts: dict[str, dict[str, str]] = {"missing": {}}
        if dialect == "ops":
            attempts |= {"wrong": {"Authorization": "Bearer ops_" + uuid.uuid4().hex},
                         "a tenant's token": {"Authorization": f"Bearer {world.a['native']['token']}"}}
        else:
            attempts["wrong"] = world.creds(dialect, world.a, wrong=True)
            other = "admin" if dialect == "native" else "native"  # A's own credential of another front door
            attempts["cross-dialect"] = world.creds(other, world.a)
        for what, headers in attempts.items():
            resp = h.client.request(method, url, headers=headers)
            assert resp.status_code in (400, 401, 403), f"{method} {path} with {what} credentials: {resp.status_code} {resp.text[:200]}"
            if dialect != "thalamus" or what == "wrong":  # Thalamus answers "no touchpoint" with 400, as documented
                assert resp.status_code == 401, f"{method} {path} with {what} credentials: {resp.status_code}"
            assert world.native_uuid not in resp.text and world.job not in resp.text
            checked += 1
    assert checked >= 75


def _owner_answer(world: World, method: str, path: str, resp: Any) -> str | None:
    """None when `resp` is the route's "not yours" answer to tenant B; else what is wrong."""
    dialect = dialect_of(path)
    if dialect == "ops":
        expected, marker = 401, "operator token"  # no tenant owns the ops routes: a tenant's token is no operator's
    elif path == "/api/v4/import/file":
        expected, marker = 400, "ImportTypeNotEnabled"  # Thalamus' answer for a type this tenant has no dataset for
    elif path.endswith(("/import/batch", "/importBatches")):
        expected, marker = 400, "dataset 'transactions' does not exist"  # the admin API refuses with 400
    else:
        expected, marker = 404, {"native": "unknown_", "yesmail": "does not exist", "thalamus": "ImportNotFound",
                                 "teamtracks": "does not exist", "admin": "No import batch exists"}[dialect]
    if resp.status_code != expected or marker not in resp.text:
        return f"{method} {path}: {resp.status_code} {resp.text[:300]} (expected {expected} naming {marker!r})"
    return None


def test_another_tenants_credentials_see_none_of_tenant_a(world: World) -> None:
    """Tenant B sends each route a body that passes validation (the same one tenant A's own
    credentials get a 2xx or a state conflict with), so what answers is the ownership check."""
    h = world.h
    walk = [(m, p) for m, p in routes(world) if p not in PUBLIC]
    walk.sort(key=lambda mp: mp == ("PUT", "/datasets/{name:str}"))  # B's own a_only would hide A's: last
    before = h.client.get("/datasets/a_only", headers=world.creds("native", world.a)).json()
    wrong: list[str] = []
    for method, path in walk:
        dialect = dialect_of(path)
        url = world.fill(path)
        headers = {"Authorization": f"Bearer {world.b['native']['token']}"} if dialect == "ops" else world.creds(dialect, world.b)
        resp = h.client.request(method, url, headers=headers, **world.body(method, path, OTHER_SCHEMA))
        for secret in (world.native_uuid, world.job, world.a["tenant"]):
            assert secret in url or secret not in resp.text, f"{method} {url} leaked {secret}"
        if (method, path) == ("GET", "/imports"):  # B's own list: answered, and without A's imports
            assert resp.status_code == 200 and resp.json()["items"] == [], resp.text[:300]
        elif (method, path) == ("PUT", "/datasets/{name:str}"):
            # Names are per tenant: B's PUT makes B's own dataset and leaves A's as it was.
            assert resp.status_code == 201, resp.text
            assert h.client.get("/datasets/a_only", headers=world.creds("native", world.a)).json() == before
            assert h.client.get("/datasets/a_only", headers=world.creds("native", world.b)).json()["records"] == 0
        elif (problem := _owner_answer(world, method, path, resp)) is not None:
            wrong.append(problem)
    assert not wrong, "\n".join(wrong)
    # The control: the same bodies with A's own credentials pass validation.
    refused = []
    for method, path in walk:
        if dialect_of(path) == "ops":
            continue
        resp = h.client.request(method, world.fill(path, fresh=True), headers=world.creds(dialect_of(path), world.a),
                                **world.body(method, path, CONTACTS_SCHEMA))
        if not (200 <= resp.status_code < 300 or resp.status_code == 409):
            refused.append(f"{method} {path}: {resp.status_code} {resp.text[:300]}")
    assert not refused, "tenant A's own request was refused, so B's answer proves nothing:\n" + "\n".join(refused)


def test_credentials_are_stored_hashed_never_in_plain_text(world: World) -> None:
    secrets = {
        world.a["native"]["token"], world.a["yesmail"]["api_key"], world.a["thalamus"]["token"],
        world.a["teamtracks"]["subscription_key"], world.a["teamtracks"]["bearer_token"], world.a["admin"]["bearer_token"],
        world.operator,
    }
    with read_tx(world.h.rt.engine) as conn:
        stored = [tuple(r) for r in conn.execute(sa.select(credentials))]
        dump = repr(stored) + repr([tuple(r) for r in conn.execute(sa.select(tenants))])
    hashes = {row[4] for row in stored}
    for secret in secrets:
        assert secret not in dump
        assert hashlib.sha256(secret.encode()).hexdigest() in hashes


def test_secret_comparisons_are_constant_time(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs compare the secret's hash with hmac.compare_digest, and an unknown identifier does the
    same work; bearer tokens are looked up by their sha256 (timing can only reveal the hash)."""
    import app.tenants as tenants_module

    calls: list[tuple[str, str]] = []
    real = tenants_module.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tenants_module.hmac, "compare_digest", spy)
    ym = world.a["yesmail"]
    with read_tx(world.h.rt.engine) as conn:
        assert check_pair(conn, "yesmail", ym["api_user"], ym["api_key"]) is not None
        assert check_pair(conn, "yesmail", ym["api_user"], "wrong") is None
        assert check_pair(conn, "yesmail", "nobody", "wrong") is None
    assert len(calls) == 3 and all(len(a) == len(b) == 64 for a, b in calls)


def test_rotating_the_operator_token_and_the_webhook_secret(world: World) -> None:
    h = world.h
    url = f"/ops/imports/{world.native}/view"
    old = world.operator
    assert h.client.get(url, headers={"Authorization": f"Bearer {old}"}).status_code == 200
    with write_tx(h.rt.engine) as conn:
        new = issue_operator_token(conn)
    assert h.client.get(url, headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert h.client.get(url, headers={"Authorization": f"Bearer {new}"}).status_code == 200
    world.operator = new
    with write_tx(h.rt.engine) as conn:
        tenant = catalog.tenant_by_name(conn, "tenant-a")
        assert tenant is not None
        before = tenant.webhook_secret
        secret = rotate_webhook_secret(conn, tenant.id)
    with read_tx(h.rt.engine) as conn:
        after = catalog.tenant_by_name(conn, "tenant-a")
    assert after is not None and after.webhook_secret == secret != before and secret.startswith("whsec_")


# ---------------------------------------------------------------- rate limiting


def test_retry_after_counts_from_the_oldest_submission_in_the_window() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    recent = [now - timedelta(seconds=s) for s in (1, 10, 45)]
    assert ratelimit.retry_after(recent, 0, now) is None  # 0: unlimited
    assert ratelimit.retry_after(recent, 4, now) is None  # room for one more
    assert ratelimit.retry_after(recent, 3, now) == 15  # the one 45 s old leaves the window in 15 s
    assert ratelimit.retry_after(recent, 2, now) == 50
    assert ratelimit.retry_after([now - timedelta(seconds=61)], 1, now) is None
    # SQLite hands back naive UTC; the column type makes it aware before anything compares it
    assert UtcDateTime().process_result_value(now.replace(tzinfo=None), None) == now


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Harness]:
    h = Harness.start(tmp_path, database_url=f"sqlite:///{tmp_path / 'importer.db'}", submit_rate_per_minute=2)
    try:
        yield h
    finally:
        h.stop()


def test_submissions_past_the_per_tenant_rate_get_429_with_retry_after(limited: Harness, tmp_path: Path) -> None:
    h = limited
    a, b = h.tenant("a"), h.tenant("b")
    for name in ("a", "b"):
        h.dataset(name)
    path = write_csv(tmp_path / "c.csv", contacts(2))
    token = a["native"]["token"]
    first = h.client.post("/imports", data={"dataset": "contacts"}, files={"file": ("c.csv", path.read_bytes())},
                          headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k1"})
    assert first.status_code == 202
    assert h.upload(token, path, dataset="contacts").status_code == 202
    refused = h.upload(token, path, dataset="contacts")
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "2 per minute" in refused.json()["error"]["message"]
    assert not list((h.rt.blobs.root / "tmp").iterdir())  # the refused upload was not kept
    # a replay of an accepted submission is not a new one: same ticket, no 429
    replay = h.client.post("/imports", data={"dataset": "contacts"}, files={"file": ("c.csv", path.read_bytes())},
                           headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k1"})
    assert replay.status_code == 202 and replay.json()["id"] == first.json()["id"]
    # other tenants have their own budget; reads are never limited
    assert h.upload(b["native"]["token"], path, dataset="contacts").status_code == 202
    assert h.client.get(f"/imports/{first.json()['id']}", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def _exhaust(h: Harness, creds: dict[str, Any], tmp: Path) -> None:
    path = write_csv(tmp / "c.csv", contacts(2))
    for _ in range(2):
        assert h.upload(creds["native"]["token"], path, dataset="contacts").status_code == 202


def _doors(h: Harness, tmp: Path) -> dict[str, Any]:
    """Tenant a with its submissions used up, and one submission through each front door."""
    creds = h.tenant("a")
    for name in ("contacts", "partner_sales", "rma", "transactions"):
        h.dataset("a", name)
    _exhaust(h, creds, tmp)
    data = write_csv(tmp / "d.csv", contacts(2)).read_bytes()
    ym, th = creds["yesmail"], creds["thalamus"]
    admin = World.creds("admin", creds)
    batch = h.client.post("/api/adm/import/batch", json={"Type": "Transactions"}, headers=admin).json()["batchId"]
    return {
        "native": lambda: h.client.post("/imports", data={"dataset": "contacts"}, files={"file": ("a.csv", data)},
                                        headers=World.creds("native", creds)),
        "native json": lambda: h.client.post("/imports", json={"dataset": "contacts", "uri": "http://127.0.0.1:9/a.csv"},
                                             headers=World.creds("native", creds)),
        "yesmail": lambda: h.client.post("/v2/reference-data/contacts/records/file-import", json={"source": {"uri": "http://127.0.0.1:9/a.csv"}},
                                         headers={"Api-User": ym["api_user"], "Api-Key": ym["api_key"]}),
        "thalamus": lambda: h.client.post(f"/api/v4/import/file?name=a&type=25011&touchpoint={th['touchpoint']}&token={th['token']}",
                                          files={"file": ("a.csv", data)}),
        "teamtracks": lambda: h.client.post("/objectimport/rma", files={"file": ("a.csv", data)}, headers=World.creds("teamtracks", creds)),
        "admin": lambda: h.client.post(f"/api/adm/import/file?batchId={batch}", files={"file": ("a.csv", data)}, headers=admin),
    }


def test_every_front_door_is_limited_through_start_import(limited: Harness, tmp_path: Path) -> None:
    h = limited
    doors = _doors(h, tmp_path)
    with read_tx(h.rt.engine) as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM tickets")).scalar()
    for door, call in doors.items():
        resp = call()
        # each dialect words it in its own shape; the admin API answers every refusal with 400
        assert resp.status_code == (400 if door == "admin" else 429), (door, resp.status_code, resp.text)
        assert "2 per minute" in resp.text, (door, resp.text)
    with read_tx(h.rt.engine) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM tickets")).scalar() == before


def test_every_door_sends_retry_after_in_its_own_error_shape(limited: Harness, tmp_path: Path) -> None:
    """Native and the four dialects: the refusal carries Retry-After, the seconds its sentence
    names, the same for every door (one window), in the door's documented error shape."""
    h = limited
    doors = _doors(h, tmp_path)
    shapes = ErrorShapes(h.client.get("/schema/openapi.json").json())
    paths = {"native": "/imports", "native json": "/imports", "yesmail": "/v2/", "thalamus": "/api/v4/",
             "teamtracks": "/objectimport/", "admin": "/api/adm/"}
    waits = {}
    for door, call in doors.items():
        resp = call()
        assert resp.status_code == (400 if door == "admin" else 429), (door, resp.status_code, resp.text)
        assert not shapes.problems(paths[door], resp.status_code, resp.text), (door, resp.text)
        waits[door] = int(resp.headers["retry-after"])
        assert 1 <= waits[door] <= 60 and f"retry in {waits[door]} s" in resp.text, (door, resp.headers, resp.text)
    assert max(waits.values()) - min(waits.values()) <= 1, waits  # one window (a second may tick between doors)


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_the_limit_holds_across_api_processes_sharing_the_database(tmp_path: Path, db: str, request: pytest.FixtureRequest) -> None:
    """Two runtimes (two API processes) count the same tickets: the window is the database's."""
    url = str(request.getfixturevalue("pg_schema_url")) if db == "postgres" else f"sqlite:///{tmp_path / 'importer.db'}"
    h = Harness.start(tmp_path, database_url=url, submit_rate_per_minute=3)
    other = make_runtime(h.settings)
    try:
        h.tenant("a")
        h.dataset("a")
        with read_tx(h.rt.engine) as conn:
            tenant = catalog.tenant_by_name(conn, "a")
        assert tenant is not None
        outcomes = []
        for i in range(5):
            rt = h.rt if i % 2 == 0 else other
            path = write_csv(tmp_path / f"{i}.csv", contacts(1))
            upload = UploadedFile(path=path, filename=path.name, size=path.stat().st_size, sha256="0" * 64, content_type=None)
            try:
                service.start_import(rt, tenant, ImportSpec(dataset="contacts"), upload=upload)
                outcomes.append("accepted")
            except TooManyRequests as exc:
                assert 1 <= exc.retry_after <= 60
                outcomes.append("429")
        assert outcomes == ["accepted"] * 3 + ["429"] * 2
    finally:
        other.close()
        h.stop()


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_concurrent_submissions_cannot_overshoot_the_limit(tmp_path: Path, db: str, request: pytest.FixtureRequest) -> None:
    import threading

    url = str(request.getfixturevalue("pg_schema_url")) if db == "postgres" else f"sqlite:///{tmp_path / 'importer.db'}"
    h = Harness.start(tmp_path, database_url=url, submit_rate_per_minute=3)
    try:
        h.tenant("a")
        h.dataset("a")
        with read_tx(h.rt.engine) as conn:
            tenant = catalog.tenant_by_name(conn, "a")
        assert tenant is not None
        gate = threading.Barrier(6, timeout=30)
        outcomes: list[str] = []

        def submit(i: int) -> None:
            path = write_csv(tmp_path / f"{i}.csv", contacts(1))
            upload = UploadedFile(path=path, filename=path.name, size=path.stat().st_size, sha256="0" * 64, content_type=None)
            gate.wait()
            try:
                service.start_import(h.rt, tenant, ImportSpec(dataset="contacts"), upload=upload)
                outcomes.append("accepted")
            except TooManyRequests:
                outcomes.append("429")

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(outcomes) == ["429"] * 3 + ["accepted"] * 3
    finally:
        h.stop()
