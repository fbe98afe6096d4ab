"""Fuzzing with a small budget: schemathesis against /schema (no 5xx; answers match the schema; every
4xx is its door's error shape), a fixed sweep of extreme integers, long strings and deep JSON over
every operation, and Hypothesis feeding arbitrary bytes through the upload, the readers and the pipeline."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import (
    CONTACTS_SCHEMA,
    ErrorShapes,
    Harness,
    contacts,
    door_of,
    need_module,
    write_csv,
)

schemathesis = need_module("schemathesis")  # part of the test extras: CI fails rather than skip without it

from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
)

DATASETS = ("contacts", "partner_sales", "rma", "transactions")


class Api:
    """An embedded service with one tenant holding an import, a batch and every dataset."""

    def __init__(self, h: Harness, tmp: Path) -> None:
        from app.ops import issue_operator_token
        from events.db import write_tx

        self.h = h
        self.creds = h.tenant("fuzz")
        for name in DATASETS:
            h.dataset("fuzz", name)
        with write_tx(h.rt.engine) as conn:
            self.operator = issue_operator_token(conn)
        self.csv = write_csv(tmp / "c.csv", contacts(20))
        resp = h.upload(self.creds["native"]["token"], self.csv, dataset="contacts")
        assert resp.status_code == 202
        self.ticket = int(resp.json()["id"])
        h.wait(self.ticket)
        batch = h.client.post("/api/adm/import/batch", json={"Type": "Transactions"}, headers=self.auth("/api/adm/")).json()
        self.batch = batch["batchId"]
        self.openapi = h.client.get("/schema/openapi.json").json()
        self.shapes = ErrorShapes(self.openapi)

    def auth(self, path: str) -> dict[str, str]:
        """Valid credentials for the front door `path` belongs to (fuzzing behind the login)."""
        c = self.creds
        if path.startswith("/v2/"):
            return {"Api-User": c["yesmail"]["api_user"], "Api-Key": c["yesmail"]["api_key"]}
        if path.startswith("/api/v4/"):
            return {"Thalamus-Touchpoint": c["thalamus"]["touchpoint"], "Thalamus-Token": c["thalamus"]["token"]}
        if path.startswith(("/objectimport", "/job")):
            t = c["teamtracks"]
            return {"tenant": t["tenant"], "Ocp-Apim-Subscription-Key": t["subscription_key"], "Authorization": f"Bearer {t['bearer_token']}"}
        if path.startswith("/api/"):
            return {"Authorization": f"Bearer {c['admin']['bearer_token']}"}
        if path.startswith("/ops/"):
            return {"Authorization": f"Bearer {self.operator}"}
        return {"Authorization": f"Bearer {c['native']['token']}"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("fuzz")
    h = Harness.start(tmp, database_url=f"sqlite:///{tmp / 'importer.db'}", allowed_hosts="")
    try:
        yield Api(h, tmp)
    finally:
        h.stop()


def test_no_request_gets_a_5xx_and_every_answer_matches_the_schema(api: Api) -> None:
    """Every operation of /schema, with generated parameters and bodies, behind valid credentials."""
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", api.h.client.app)
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/metrics":
            continue  # Prometheus text; the access and metrics suites cover it
        operations += 1

        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.headers = {**(case.headers or {}), **api.auth(case.path)}
            response = case.call()
            if 400 <= response.status_code < 500:
                # Whatever the operation documents: the error is its door's own shape.
                problems = api.shapes.problems(case.path, response.status_code, response.text)
                assert not problems, (response.status_code, problems, response.text[:300])
            case.validate_response(response, checks=checks)

        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - collect every operation's first failure, then report them all
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    assert operations >= 25
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("url", [
    "/imports/{big}", "/imports/{big}/events", "/imports/{big}/results", "/imports/{big}/cancel", "/imports/-1",
    "/ops/imports/{big}/view", "/ops/imports/{big}/events", "/ops/imports/{big}/webhook/redeliver",
    "/datasets/contacts/records?after={big}",
])
def test_integers_no_database_can_hold_get_404_or_an_empty_page_not_a_500(api: Api, url: str) -> None:
    """Found by the schema fuzzer: a 26-digit ticket id or cursor reached the driver and raised."""
    url = url.format(big=10**25)
    method = "POST" if url.endswith(("/cancel", "/redeliver")) else "GET"
    resp = api.h.client.request(method, url, headers=api.auth(url))
    if "records" in url:
        assert resp.status_code == 200 and resp.json() == {"items": [], "next_after": None}
    else:
        assert resp.status_code == 404, resp.text
        assert resp.json()["error"]["code"] == "unknown_import"


def test_native_error_responses_match_the_schema(api: Api) -> None:
    schema = api.h.client.get("/schema/openapi.json").json()
    documented = schema["paths"]["/datasets/{name}"]["put"]["responses"]["400"]["content"]["application/json"]["schema"]
    if "$ref" in documented:
        documented = schema["components"]["schemas"][documented["$ref"].rsplit("/", 1)[-1]]
    answer = api.h.client.put("/datasets/x", json={}, headers=api.auth("/datasets")).json()
    assert set(documented.get("required", [])) <= set(answer)


# ---------------------------------------------------------------- a fixed sweep of extreme values

HUGE = (2**63, -(2**63) - 1, 10**30, -1)  # past int64 both ways, past any id, negative
LONG = ("x" * 10_000, "9" * 400)  # a long word, and a number no integer type holds
DEEP = ("[" * 40 + "]" * 40, '{"a":' * 20_000 + "1" + "}" * 20_000)  # past the 32-level bound; 40 KB, under the 64 KB cap
FORM_FIELDS = ("dataset", "name", "type", "mode", "threshold", "errorThreshold", "callback_url", "mapping", "key", "headers")


def _baseline(api: Api, method: str, path: str) -> tuple[dict[str, str], dict[str, str], Any]:
    """Valid path and query values for an operation, and a valid JSON body when it takes one."""
    values = {"ticket": str(api.ticket), "name": "swept" if method == "put" else "contacts", "dataset": "contacts",
              "id": str(api.ticket), "trackId": "rma", "jobId": str(uuid.uuid4()), "dialect": "native"}
    query = {"BatchId": api.batch, "Type": "Transactions"} if door_of(path) == "admin" else {}
    if path.startswith("/api/v4/import/file"):
        query = {"name": "swept", "type": "25011"}
    body: Any = None
    if method == "put":
        body = CONTACTS_SCHEMA
    elif path.endswith("/file-import"):
        body = {"source": {"uri": "http://127.0.0.1:9/a.csv"}, "errorThreshold": 1, "importType": "update"}
    elif path.endswith(("/import/batch", "/importBatches")):
        body = {"Type": "Transactions", "CompanyId": str(uuid.uuid4()), "CompanyProjectId": str(uuid.uuid4())}
    return values, query, body


def _sweep(api: Api, method: str, path: str, operation: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Requests that put one extreme value where a valid one goes: each path, query and header
    parameter, each top-level body field, the whole body, and (for uploads) every form field."""
    values, query, body = _baseline(api, method, path)
    auth = api.auth(path)
    scalars: tuple[Any, ...] = (*HUGE, *LONG)
    requests: list[tuple[str, dict[str, Any]]] = []

    def add(what: str, path_values: dict[str, str] = values, params: dict[str, str] = query,
            headers: dict[str, str] = auth, **kw: Any) -> None:
        url = path.format(**{k: quote(v, safe="") for k, v in path_values.items()})
        if body is not None and "content" not in kw and "json_body" not in kw:
            kw["content"] = json.dumps(body)
        if "json_body" in kw:
            kw["content"] = json.dumps(kw.pop("json_body"))
        if "content" in kw:
            headers = {**headers, "Content-Type": "application/json"}
        requests.append((what, {"method": method.upper(), "url": url, "params": params, "headers": headers, **kw}))

    for param in operation.get("parameters", []):
        where, name = param["in"], param["name"]
        for value in scalars:
            text = str(value)
            if where == "path":
                add(f"path {name}={text[:20]}", path_values={**values, name: text})
            elif where == "query":
                add(f"query {name}={text[:20]}", params={**query, name: text})
            elif where == "header":
                add(f"header {name}={text[:20]}", headers={**auth, name: text})
    if method in ("post", "put"):
        for value in (*scalars, 10**400, "y" * 100_000):
            add(f"body {str(value)[:20]}", json_body=value)
            for field in body or ():
                add(f"body field {field}={str(value)[:20]}", json_body={**body, field: value})
        for deep in DEEP:
            add(f"body {len(deep)} bytes deep", content=deep)
        if body is None:  # an upload route: a file, and every form field a door reads set to the extreme value
            for value in scalars:
                add(f"form fields={str(value)[:20]}", data={f: str(value) for f in FORM_FIELDS},
                    files={"file": ("swept.csv", api.csv.read_bytes(), "text/csv")})
    return requests


def test_extreme_integers_long_strings_and_deep_json_on_every_operation_get_no_5xx(api: Api) -> None:
    """Each operation of /schema with one value at a time made extreme: never a 5xx, and every
    4xx is its door's own error shape (native: the documented NativeError, each dialect its own)."""
    failures: list[str] = []
    sent = 0
    for path, operations in api.openapi["paths"].items():
        if path in ("/metrics",):
            continue
        for method, operation in operations.items():
            for what, request in _sweep(api, method, path, operation):
                resp = api.h.client.request(**request)
                sent += 1
                if resp.status_code >= 500:
                    failures.append(f"{method.upper()} {path} {what}: {resp.status_code} {resp.text[:200]}")
                elif resp.status_code >= 400 and (problems := api.shapes.problems(path, resp.status_code, resp.text)):
                    failures.append(f"{method.upper()} {path} {what}: {resp.status_code} {problems} {resp.text[:200]}")
    assert not failures, f"{len(failures)} of {sent}:\n" + "\n".join(failures[:40])
    assert sent >= 700, sent


# ---------------------------------------------------------------- arbitrary files through the pipeline


def _near_csv() -> st.SearchStrategy[bytes]:
    alphabet = st.sampled_from(list("email,name,age\r\n\"; \t") + ["\x00", "é", "\ufeff", "a@x.io", "1", '"', "\r"])
    return st.lists(alphabet, max_size=300).map(lambda parts: "".join(parts).encode("utf-8"))


def _stored_xlsx() -> bytes:
    import io
    import zipfile

    from tests.support import hand_xlsx, inline_row, sheet_xml

    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"fuzz-{os.getpid()}.xlsx"
    hand_xlsx(path, sheet_xml(inline_row(1, "email", "name", "age") + inline_row(2, "a@x.io", "A", "1")))
    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    path.unlink()
    return out.getvalue()


STORED_XLSX = _stored_xlsx()


def _mutated(flips: list[tuple[int, int]]) -> bytes:
    data = bytearray(STORED_XLSX)
    for at, value in flips:
        data[at % len(data)] = value
    return bytes(data)


FILES = st.one_of(
    _near_csv(),
    st.binary(max_size=400).map(lambda b: b"email,name,age\r\n" + b),
    st.lists(st.tuples(st.integers(0, len(STORED_XLSX)), st.integers(0, 255)), min_size=1, max_size=6).map(_mutated),
    st.builds(lambda magic, rest: magic + rest, st.sampled_from([b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\xff\xfe"]),
              st.binary(max_size=300)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=FILES)
def test_any_file_gets_a_4xx_or_a_ticket_that_ends_and_accounts_for_every_row(api: Api, data: bytes) -> None:
    """Whatever bytes arrive: a 4xx with a message, or an accepted import that reaches a terminal
    state in bounded time with one outcome per row and every failure naming its line."""
    h = api.h
    auth = api.auth("/imports")
    start = time.monotonic()
    resp = h.client.post("/imports", data={"dataset": "contacts"}, files={"file": ("fuzz.csv", data)}, headers=auth)
    assert resp.status_code in (202, 400, 413, 415), resp.text
    if resp.status_code != 202:
        assert resp.json()["error"]["message"]
        return
    view = h.wait(resp.json()["id"], timeout=30)
    assert time.monotonic() - start < 30
    assert view.state in ("completed", "failed"), view
    if view.state == "failed":
        assert view.reason
        return
    assert view.processed == view.total_rows
    results = h.client.get(f"/imports/{view.ticket}/results?outcome=failed&limit=10000", headers=auth).json()["items"]
    assert len(results) == view.failed
    assert all(r["error"] and r["error"].startswith(f"line {r['line']}: ") for r in results), results
