"""Names callers and operators choose, and the characters each kind may use (see docs/dialects.md)."""

from __future__ import annotations

import re

MAX_IDENTIFIER = 200
_IDENTIFIER = re.compile(r"[A-Za-z0-9._-]+\Z")
IDENTIFIER_RULE = f"ASCII letters, digits, '-', '_' and '.' (not only dots), up to {MAX_IDENTIFIER} characters"


def identifier_problem(name: str) -> str | None:
    """Why `name` cannot name a dataset or a tenant, or None. ASCII only: no look-alike letters
    from other scripts, no control, bidi or invisible characters, nothing a URL path would change."""
    if not name or len(name) > MAX_IDENTIFIER or not _IDENTIFIER.match(name) or not name.strip("."):
        return f"names use {IDENTIFIER_RULE}; got {name!r}"
    return None


def display_name_problem(name: str) -> str | None:
    """Why a free-text name (a Thalamus import's) cannot be used, or None: any script is fine, but
    no control, format (bidi overrides, zero-width), unassigned or private-use characters and no
    line or paragraph separators (what str.isprintable refuses; the plain space is allowed)."""
    if not name.isprintable():
        bad = next(ch for ch in name if not ch.isprintable())
        return f"a name cannot contain control, bidi or invisible characters (found U+{ord(bad):04X})"
    return None
