"""Vendor dialects: one module each, thin translations over the one engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.dialects import admin, teamtracks, thalamus, yesmail

DIALECT_HANDLERS: list[Any] = [*yesmail.ROUTES, *thalamus.ROUTES, *teamtracks.ROUTES, *admin.ROUTES]

# Webhook bodies: the dialect's final status document for a ticket (see actors/deliver_webhook.py).
WEBHOOK_RENDERERS: dict[str, Callable[..., bytes]] = {
    **getattr(yesmail, "WEBHOOK_RENDERERS", {}),
    **getattr(thalamus, "WEBHOOK_RENDERERS", {}),
    **getattr(teamtracks, "WEBHOOK_RENDERERS", {}),
    **getattr(admin, "WEBHOOK_RENDERERS", {}),
}

# Path prefix -> the dialect's error renderer, for errors raised before any route handler (404, 405).
ERROR_PREFIXES: dict[str, Callable[..., Any]] = {**getattr(thalamus, "ERROR_PREFIXES", {})}
