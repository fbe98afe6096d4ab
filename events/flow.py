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
        return Step(actor, view.chunks_done if actor == APPLY else None)
    if view.staged_rows:
        return Step(FINALIZE)  # an atomic import ended early: its staging must be discarded
    if view.reverting:
        assert view.revert is not None
        return Step(NEXT["reverting"], view.revert.chunks)
    if view.spec.callback_url and view.webhook.delivered_at is None and not view.webhook.abandoned:
        return Step(WEBHOOK)
    return None


class Plan(NamedTuple):
    """How a ticket's chunks go: how many are staged so far, how many may be in flight, their turns."""

    chunks: int
    parallel: int
    after: tuple[int, ...]  # empty: one after another
    columns: tuple[str, ...]  # the dataset fields of a staged row's cells, in order


def plan(view: ImportView) -> Plan | None:
    """The chunks to apply: every one once the file is parsed, those staged so far while it is read."""
    if view.parsed is not None:
        p = view.parsed
        return Plan(p.chunks, p.parallel, p.after, p.columns)
    if view.staging is not None:
        s = view.staging
        return Plan(s.chunks, s.parallel, s.after, s.columns)
    return None


def due_chunks(view: ImportView) -> list[int]:
    """The chunks whose turn has come and that are not applied yet (being applied, or to send)."""
    chunks = plan(view)
    if chunks is None or view.terminal or view.threshold_exceeded:
        return []
    done = view.chunks_done
    if not chunks.after:  # one after another
        return [done] if done < chunks.chunks else []
    after = chunks.after
    end = min(chunks.chunks, done + max(1, chunks.parallel))  # after[k] >= k - parallel
    return [k for k in range(done, end) if after[k] < done and not view.chunk_applied(k)]


def steps(view: ImportView) -> list[Step]:
    """Every step the ticket is owed now: all due chunks while they are applied side by side."""
    step = next_step(view)
    if step is None:
        return []
    if step.actor == PARSE:  # the file is still read; the chunks staged so far are applied meanwhile
        return [step, *(Step(APPLY, k) for k in due_chunks(view))]
    if step.actor != APPLY:
        return [step]
    return [Step(APPLY, k) for k in due_chunks(view)]


def new_steps(before: ImportView, after: ImportView) -> list[Step]:
    """The steps owed after a change that were not owed before it: what the change's author sends
    (the others are on their way already, sent by whoever made them due)."""
    owed = set(steps(before))
    return [s for s in steps(after) if s not in owed]
