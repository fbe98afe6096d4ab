"""The OpenAPI docs UI at /schema: Swagger UI served from the swagger-ui-py package, never from a CDN."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar import get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.response import File

from app.errors import NotFound

ASSETS = "/schema-assets"
# The files the page loads, plus the bundle's licence; nothing else of the package is served.
SERVED = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
    "LICENSE": "text/plain",
}


def assets_dir() -> Path:
    """Where swagger-ui-py keeps Swagger UI's files (found without importing the package)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("the swagger-ui-py package is not installed; it ships the API docs' assets")
    return Path(spec.origin).parent / "static"


@get(f"{ASSETS}/{{name:str}}", include_in_schema=False, sync_to_thread=False, cache=3600)
def asset(name: str) -> File:
    """One of Swagger UI's files."""
    media_type = SERVED.get(name)
    if media_type is None:
        raise NotFound(f"no docs asset named {name!r}")
    return File(assets_dir() / name, media_type=media_type, content_disposition_type="inline")


def openapi_config() -> OpenAPIConfig:
    """/schema renders Swagger UI from local assets; /schema/openapi.json and .yaml stay as they were."""
    swagger = SwaggerRenderPlugin(
        js_url=f"{ASSETS}/swagger-ui-bundle.js",
        css_url=f"{ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
        path=["/", "/swagger"],
    )
    return OpenAPIConfig(
        title="importer",
        version="0.1.0",
        path="/schema",
        render_plugins=[swagger, JsonRenderPlugin(), YamlRenderPlugin()],
    )

