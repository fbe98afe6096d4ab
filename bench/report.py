"""The results: one table on stdout, the same as JSON in bench/results/latest.json, the targets judged."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1024 * 1024


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, Python and SQLite versions, kernel."""
    import sqlite3

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    ram = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gb": round(ram / 1024**3, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
    }
    with contextlib.suppress(OSError):
        info["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    for name, cmd in (("postgres", ["psql", "--version"]), ("redis", ["redis-server", "--version"])):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            info[name] = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout.strip()[:80]
    return info


def _fmt_rate(rate: float | None) -> str:
    return f"{rate:,.0f}" if rate else "-"


def table(results: list[dict[str, Any]]) -> str:
    """The results as one fixed-width table."""
    head = ("stage", "rows", "seconds", "rows/s", "x floor", "floor", "peak RSS MB", "note")
    lines = [head]
    for r in results:
        note = f"ERROR: {r['error']}" if r.get("error") else r.get("note", "")
        lines.append((
            r["label"],
            f"{r['rows']:,}" if r.get("rows") else "-",
            ("~" if r.get("estimated") else "") + (f"{r['seconds']:.2f}" if r.get("seconds") else "-"),
            ("~" if r.get("estimated") else "") + _fmt_rate(r.get("rate")),
            ("~" if r.get("estimated") else "") + (f"{r['ratio']:.2f}" if r.get("ratio") is not None else ""),
            r.get("floor_label", ""),
            f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else "-",
            note,
        ))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head) - 1)]
    out = []
    for n, line in enumerate(lines):
        cells = [str(c).ljust(w) if i in (0, 5) else str(c).rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=False))]
        out.append("  ".join([*cells, str(line[-1])]).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths) + "  ----")
    return "\n".join(out)


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The same table in Markdown (for docs/performance.md)."""
    rows = ["| stage | rows | seconds | rows/s | × floor | floor | peak RSS MB | note |", "|---|--:|--:|--:|--:|---|--:|---|"]
    for r in results:
        note = f"ERROR: {r['error']}" if r.get("error") else r.get("note", "")
        cells = [
            r["label"],
            f"{r['rows']:,}" if r.get("rows") else "-",
            ("~" if r.get("estimated") else "") + (f"{r['seconds']:.2f}" if r.get("seconds") else "-"),
            ("~" if r.get("estimated") else "") + _fmt_rate(r.get("rate")),
            ("~" if r.get("estimated") else "") + (f"{r['ratio']:.2f}" if r.get("ratio") is not None else ""),
            r.get("floor_label", ""),
            f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else "-",
            note.replace("|", "/"),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def targets_table(targets: list[dict[str, Any]]) -> str:
    """The targets, each met or not, as text lines."""
    out = []
    for t in targets:
        mark = {True: "MET ", False: "MISS", None: "n/a "}[t["met"]]
        out.append(f"  [{mark}] {t['target']}: {t['measured']}")
    return "\n".join(out)


def write_json(payload: dict[str, Any], path: Path | None = None) -> Path:
    """Write the results to bench/results/latest.json (git-ignored)."""
    path = path or RESULTS / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def now_iso() -> str:
    """The current UTC time, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Leaf frames of a thread that waits rather than works (py-spy cannot always tell them apart here).
_IDLE_LEAVES = (
    ("threading.py", "wait"), ("queue.py", "get"), ("selectors.py", "select"), ("thread.py", "_worker"),
    ("runners.py", "run"), ("base_events.py", "_run_once"), ("base_events.py", "run_forever"), ("threading.py", "_wait_for_tstate_lock"),
    ("stub.py", "__next__"), ("time.py", "sleep"), ("socket.py", "accept"), ("popen_fork.py", "wait"),
)


def summarize_speedscope(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive time per function from a py-spy speedscope profile (all threads summed).

    Samples whose innermost frame is a wait (a thread parked on a lock, a queue, a selector) are
    dropped: the percentages are of the time threads spent working.
    """
    doc = json.loads(path.read_text())
    frames = doc["shared"]["frames"]
    idle = {
        i for i, f in enumerate(frames)
        if any(
            str(f.get("file", "")).endswith("/" + file) and str(f.get("name", "")).rsplit(".", 1)[-1] == fn
            for file, fn in _IDLE_LEAVES
        )
    }
    self_w: dict[int, float] = defaultdict(float)
    grand = idle_w = 0.0
    for prof in doc["profiles"]:
        if prof.get("type") != "sampled":
            continue
        for stack, weight in zip(prof["samples"], prof["weights"], strict=False):
            if not stack:
                continue
            if stack[-1] in idle:
                idle_w += weight
                continue
            grand += weight
            self_w[stack[-1]] += weight
    grand = grand or 1.0

    def name(i: int) -> str:
        f = frames[i]
        file = str(f.get("file", ""))
        for marker in ("/site-packages/", "/work/main/", "/lib/python3.11/"):
            if marker in file:
                file = file.split(marker, 1)[1]
                break
        return f"{f.get('name', '?')} ({file})"

    def ranked(weights: dict[int, float]) -> list[dict[str, Any]]:
        merged: dict[str, float] = defaultdict(float)
        for i, w in weights.items():
            merged[name(i)] += w  # one line per function (all its lines summed)
        best = sorted(merged.items(), key=lambda kv: -kv[1])[:top]
        return [{"function": k, "percent": round(100 * v / grand, 1)} for k, v in best]

    return {
        "working_share_percent": round(100 * grand / max(1e-9, grand + idle_w), 1),
        "self": ranked(self_w),
        "inclusive": _ranked_inclusive(doc, frames, idle, name, grand, top),
    }


def _ranked_inclusive(
    doc: dict[str, Any], frames: list[dict[str, Any]], idle: set[int], name: Callable[[int], str], grand: float, top: int
) -> list[dict[str, Any]]:
    """Inclusive time per function name: a sample counts once for each function on its stack."""
    totals: dict[str, float] = defaultdict(float)
    names = [name(i) for i in range(len(frames))]
    for prof in doc["profiles"]:
        if prof.get("type") != "sampled":
            continue
        for stack, weight in zip(prof["samples"], prof["weights"], strict=False):
            if not stack or stack[-1] in idle:
                continue
            for n in {names[f] for f in stack}:
                totals[n] += weight
    best = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return [{"function": k, "percent": round(100 * v / grand, 1)} for k, v in best]


def python_exe() -> str:
    """The interpreter running the bench (the venv's)."""
    return sys.executable
