"""The pipeline as one table: which step a ticket needs next, decided from its view alone."""

from __future__ import annotations

from typing import NamedTuple

from events.projections import ImportView


class Step(NamedTuple):
    """A unit of work to enqueue: the actor's name and, for chunks, which one."""

    actor: str
    chunk: int | None = None


DOWNLOAD = "download"
PARSE = "parse_file"
APPLY = "apply_chunk"
FINALIZE = "finalize"
WEBHOOK = "deliver_webhook"
REVERT = "revert_chunk"

# Before the terminal event: the step that follows each stage of the log.
NEXT = {
    "requested": DOWNLOAD,  # a URL source has no file yet
    "stored": PARSE,
    "parsed": APPLY,
    "applied": FINALIZE,  # every chunk applied, or the threshold was crossed
    "reverting": REVERT,  # after the terminal event: a revert was asked for and is not done
}


def stage(view: ImportView) -> str:
    """Where a non-terminal ticket stands."""
    if view.file is None:
        return "requested"
    if view.parsed is None:
        return "stored"
    if view.threshold_exceeded or view.chunks_applied >= view.parsed.chunks:
        return "applied"
    return "parsed"


def next_step(view: ImportView) -> Step | None:
    """The one step this ticket needs now, or None when nothing is owed."""
    if view.spec is None:
        return None
    if not view.terminal:
        actor = NEXT[stage(view)]
        if actor == DOWNLOAD and not view.spec.source_uri:
            return None  # an upload always records its file with the request
        return Step(actor, view.chunks_applied if actor == APPLY else None)
    if view.staged_rows:
        return Step(FINALIZE)  # an atomic import ended early: its staging must be discarded
    if view.revert is not None and not view.revert.done:
        return Step(NEXT["reverting"], view.revert.chunks)
    if view.spec.callback_url and view.webhook.delivered_at is None and not view.webhook.abandoned:
        return Step(WEBHOOK)
    return None
