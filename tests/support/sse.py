"""Reading a text/event-stream body in tests."""

from __future__ import annotations


def sse(text: str) -> list[dict[str, str]]:
    """Parse a text/event-stream body into its messages (comments dropped)."""
    messages = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if line and not line.startswith(":"))
        if fields:
            messages.append(fields)
    return messages
