"""The web pages over HTTP (the browser tests drive them): static, local, no tenant data without a
token; and the native endpoints they use: the imports list and the tenant's live event stream."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support import Harness, contacts, sse, write_csv


def _tenant(h: Harness, name: str = "acme") -> dict[str, str]:
    token = h.tenant(name)["native"]["token"]
    h.dataset(name)
    return {"Authorization": f"Bearer {token}"}


def test_pages_are_static_local_and_locked_to_this_origin(embedded: Harness) -> None:
    c = embedded.client
    landing = c.get("/")
    assert landing.status_code == 200 and landing.headers["content-type"].startswith("text/html")
    assert {'href="/ui/"', 'href="/schema"', 'href="/health"'} <= set(re.findall(r'href="[^"]*"', landing.text))
    for path in ("/ui", "/ui/", "/ui/imports/7"):
        page = c.get(path)
        assert page.status_code == 200 and 'src="/ui/static/ui.js"' in page.text, path
        assert "default-src 'self'" in page.headers["content-security-policy"]
        refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert all(r.startswith("/") for r in refs), refs  # nothing from another host
    for name, kind in (("ui.js", "text/javascript"), ("ui.css", "text/css"), ("icon.svg", "image/svg+xml")):
        asset = c.get(f"/ui/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind), name
    assert not re.search(r"https?://", c.get("/ui/static/ui.js").text)  # the script calls this origin only
    for name in ("index.html", "..%2Fweb.py", "nope.js"):
        assert c.get(f"/ui/static/{name}").status_code == 404, name


def test_the_imports_list_is_the_tenants_newest_first(embedded: Harness, tmp_path: Path) -> None:
    auth = _tenant(embedded)
    other = _tenant(embedded, "globex")
    ids = []
    for i in range(3):
        resp = embedded.upload(auth["Authorization"][7:], write_csv(tmp_path / f"{i}.csv", contacts(5)), dataset="contacts")
        ids.append(resp.json()["id"])
    embedded.upload(other["Authorization"][7:], write_csv(tmp_path / "g.csv", contacts(5)), dataset="contacts")
    first = embedded.client.get("/imports?limit=2", headers=auth).json()
    assert [i["id"] for i in first["items"]] == ids[:0:-1] and first["next_before"] == ids[1]
    rest = embedded.client.get(f"/imports?limit=2&before={first['next_before']}", headers=auth).json()
    assert [i["id"] for i in rest["items"]] == ids[:1] and rest["next_before"] is None
    assert {"state", "percentage", "rows", "dry_run"} <= set(rest["items"][0])
    assert [i["id"] for i in embedded.client.get("/imports", headers=other).json()["items"]] == [ids[-1] + 1]
    assert embedded.client.get("/imports").status_code == 401
    assert embedded.client.get("/imports?limit=0", headers=auth).status_code == 400


def test_a_tenant_follows_its_own_import_over_server_sent_events(embedded: Harness, tmp_path: Path) -> None:
    auth = _tenant(embedded)
    other = _tenant(embedded, "globex")
    ticket = embedded.upload(auth["Authorization"][7:], write_csv(tmp_path / "a.csv", contacts(1200)), dataset="contacts").json()["id"]
    live = {**auth, "Accept": "text/event-stream"}
    streamed = sse(embedded.client.get(f"/imports/{ticket}/events", headers=live).text)
    logged = embedded.client.get(f"/imports/{ticket}/events", headers=auth).json()["events"]
    assert [json.loads(m["data"]) for m in streamed] == logged and streamed[-1]["event"] == "import_completed"
    resumed = sse(embedded.client.get(f"/imports/{ticket}/events", headers={**live, "Last-Event-ID": "2"}).text)
    assert [int(m["id"]) for m in resumed] == [e["seq"] for e in logged[2:]]
    assert embedded.client.get(f"/imports/{ticket}/events", headers={**other, "Accept": "text/event-stream"}).status_code == 404
    assert embedded.client.get(f"/imports/{ticket}/events", headers={"Accept": "text/event-stream"}).status_code == 401
