"""The web pages: a landing page at /, and /ui/ (a tenant's imports; one import, live).

The pages are static HTML with a script and a stylesheet shipped in the package (app/static/): no
build step, nothing from a CDN. The script asks for the tenant's native token once (a form, or
`#token=` in the URL, never a query string), keeps it in sessionStorage and calls the native API
with it as a bearer header, following an import over its Server-Sent Events stream.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.response import File

from app.errors import NotFound

STATIC = Path(__file__).parent / "static"
ASSET_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
# Everything the pages load comes from this origin; inline scripts and styles are refused.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _page(name: str) -> Response[bytes]:
    """One of the HTML pages, with headers that keep it to this origin."""
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    return Response((STATIC / name).read_bytes(), media_type="text/html; charset=utf-8", headers=headers)


@get("/", include_in_schema=False, sync_to_thread=False)
def landing() -> Response[bytes]:
    """What this service is, with links to the web UI, the API docs and /health."""
    return _page("index.html")


@get(["/ui", "/ui/imports/{ticket:int}"], include_in_schema=False, sync_to_thread=False)
def ui(ticket: int | None = None) -> Response[bytes]:
    """The web UI's shell; its script renders the imports list or one import from the URL."""
    return _page("ui.html")


@get("/ui/static/{name:str}", include_in_schema=False, sync_to_thread=False, cache=3600)
def ui_asset(name: str) -> File:
    """The UI's stylesheet, script and icon."""
    path = STATIC / name
    media_type = ASSET_TYPES.get(path.suffix)
    if media_type is None or "/" in name or not path.is_file():
        raise NotFound(f"no UI asset named {name!r}")
    return File(path, media_type=media_type, content_disposition_type="inline")


WEB_HANDLERS = [landing, ui, ui_asset]
