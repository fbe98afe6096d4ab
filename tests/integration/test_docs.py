"""The API docs at /schema load every asset from this service: no CDN, so they render offline."""

from __future__ import annotations

import re

from tests.support import Harness


def test_schema_page_loads_only_local_assets(embedded: Harness) -> None:
    page = embedded.client.get("/schema")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert urls and all(u.startswith("/schema-assets/") for u in urls), urls
    for url in urls:
        got = embedded.client.get(url)
        assert got.status_code == 200 and len(got.content) > 1000, url
    assert "Apache License" in embedded.client.get("/schema-assets/LICENSE").text


def test_only_the_listed_assets_are_served(embedded: Harness) -> None:
    for name in ("swagger-editor-bundle.js", "..%2F__init__.py", "index.html"):
        assert embedded.client.get(f"/schema-assets/{name}").status_code == 404, name
    assert embedded.client.get("/schema/openapi.json").json()["paths"]["/imports"]
