"""The one place a Runtime is wired: the lower layers' runtime plus what only the edge knows (webhook bodies)."""

from __future__ import annotations

from typing import Any

import msgspec

from actors.runtime import Runtime
from actors.settings import Settings
from app.dialects import WEBHOOK_RENDERERS
from app.native_bodies import render_import
from events.catalog import TicketRow
from events.projections import ImportView


def render_webhook(view: ImportView, ticket: TicketRow, base_url: str) -> bytes:
    """The dialect's final status document (the native import JSON when the dialect has none)."""
    dialect = view.spec.dialect if view.spec else "native"
    renderer = WEBHOOK_RENDERERS.get(dialect)
    if renderer is not None:
        return renderer(view, ticket, base_url)
    return msgspec.json.encode({"type": "import.finished", "data": render_import(view)})


def make_runtime(settings: Settings, **options: Any) -> Runtime:
    """A Runtime for this process, with the dialects' webhook bodies passed down to the webhook step."""
    return Runtime(settings, render_webhook=render_webhook, **options)
