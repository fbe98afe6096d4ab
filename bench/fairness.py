"""The fairness row: small imports, one after another, while a big import is being applied.

Each small import goes to a dataset of its own (so it never waits for the big import's dataset
lock, only for the queue, the workers and the database) and is timed from its 202 response to the
first status response that says it completed (polled every 50 ms). The log's `finished_at` is
kept beside it: it is stamped before the last transaction waits for its turn at the database, so
it can be earlier than the moment a caller could see the import done.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import data
from bench.service import TERMINAL, Service, parse_iso

SIDE_ROWS = 100
SIDE_COUNT = 5
GOAL_P95 = 2.0  # seconds from 202 to completed
SIDE_TIMEOUT = 30.0  # a small import still running after this is counted at this time
SIDE_EXTRA = 25.0  # seconds a fairness stage needs beyond the big import's parse, for the small imports
POLL = 0.05


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated between the closest ranks (numpy's default).

    Of five values, p95 lies 80% of the way from the 4th to the 5th (the max).
    """
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(seconds: Sequence[float], loaded: Sequence[bool]) -> dict[str, Any]:
    """p50/p95/max of the small imports' times, and how many of them ran while the big one did."""
    if not seconds:
        return {"count": 0, "under_load": 0}
    under = [s for s, x in zip(seconds, loaded, strict=True) if x]
    return {
        "count": len(seconds),
        "under_load": len(under),
        "p50_s": round(percentile(seconds, 50), 3),
        "p95_s": round(percentile(seconds, 95), 3),
        "max_s": round(max(seconds), 3),
        "seconds_each": [round(s, 3) for s in seconds],
        "loaded_p95_s": round(percentile(under, 95), 3) if under else None,
    }


def verdict(got: dict[str, Any], goal: float = GOAL_P95, count: int = SIDE_COUNT) -> bool | None:
    """Met when every small import ran under load and their p95 is within `goal`; missed when the
    ones that did already exceed it; None (not judged) when too few ran under load to tell."""
    if got.get("under_load", 0) >= count:
        return bool(got["p95_s"] <= goal)
    loaded = got.get("loaded_p95_s")
    return False if loaded is not None and loaded > goal else None


def describe(got: dict[str, Any]) -> str:
    """The table's note: each small import's time, p95 and max, and what the big import did meanwhile."""
    if not got.get("count"):
        return "no small import ran (time budget)"
    each = ", ".join(f"{s:.2f}" for s in got["seconds_each"])
    parts = [
        f"{SIDE_ROWS} rows each, one after another: 202 -> completed {each} s (p95 {got['p95_s']:.2f}, max {got['max_s']:.2f})",
        f"the big import applied {got['big_applied_before']:,} -> {got['big_applied_after']:,} rows meanwhile",
    ]
    if got["under_load"] < got["count"]:
        parts.append(f"ONLY {got['under_load']} of {got['count']} ended while it still ran (it was {got['big_state_after']})")
    if got.get("timed_out"):
        parts.append(f"{got['timed_out']} still running after {SIDE_TIMEOUT:.0f}s (counted at that time)")
    return "; ".join(parts)


def _applied(body: dict[str, Any]) -> int:
    return int((body.get("rows") or {}).get("processed") or 0)


def side_datasets(client: httpx.Client, count: int) -> list[str]:
    """`count` datasets with the bench schema, one for each small import."""
    names = [f"side{n}" for n in range(1, count + 1)]
    for name in names:
        r = client.put(f"/datasets/{name}", json=data.schema())
        if r.status_code not in (200, 201):
            raise RuntimeError(f"PUT /datasets/{name} answered {r.status_code}: {r.text[:300]}")
    return names


def side_imports(
    svc: Service, client: httpx.Client, big: int, path: Path, datasets: Sequence[str], deadline: float
) -> dict[str, Any]:
    """Import `path` into each dataset in turn, each after the previous one ended; time each from its
    202 to the status response that shows it ended, and note whether the big import still ran then."""
    seconds: list[float] = []
    logged: list[float] = []  # 202 -> the log's finished_at, for comparison
    loaded: list[bool] = []
    timed_out = 0
    before = _applied(svc.status(client, big))
    big_body: dict[str, Any] = {}
    for name in datasets:
        if time.time() >= deadline:
            break
        ticket, _, accepted = svc.upload(client, path, "partial", dataset=name)
        body = svc.status(client, ticket)
        while body.get("state") not in TERMINAL and time.time() < min(deadline, accepted + SIDE_TIMEOUT):
            time.sleep(POLL)
            body = svc.status(client, ticket)
        seconds.append(time.time() - accepted)  # for one still running: a lower bound, already past the goal
        if body.get("state") not in TERMINAL:
            timed_out += 1
            client.post(f"/imports/{ticket}/cancel")
        elif body["state"] != "completed":
            raise RuntimeError(f"small import {ticket} ended {body['state']}: {body.get('error')}")
        else:
            logged.append(round((parse_iso(body.get("finished_at")) or time.time()) - accepted, 3))
        big_body = svc.status(client, big)
        loaded.append(big_body.get("state") not in TERMINAL)
    return {
        **summarize(seconds, loaded),
        "logged_each": logged,
        "timed_out": timed_out,
        "big_applied_before": before,
        "big_applied_after": _applied(big_body),
        "big_state_after": big_body.get("state"),
    }


def run(svc: Service, big_path: Path, side_path: Path, *, cap: float, count: int = SIDE_COUNT) -> dict[str, Any]:
    """Upload `big_path`; once its rows are being applied, run the small imports; then cancel it."""
    with svc.client(timeout=60.0) as client:
        names = side_datasets(client, count)
        big, sent, _ = svc.upload(client, big_path, "partial")
        deadline = sent + cap
        body = svc.status(client, big)
        while _applied(body) == 0 and body.get("state") not in TERMINAL:
            if time.time() >= deadline:
                raise RuntimeError(f"no row of the big import was applied within {cap:.0f}s (time budget)")
            time.sleep(0.2)
            body = svc.status(client, big)
        if body.get("state") in TERMINAL:
            raise RuntimeError(f"the big import ended ({body.get('state')}) before its rows were seen being applied")
        got = side_imports(svc, client, big, side_path, names, deadline)
        if svc.status(client, big).get("state") not in TERMINAL:
            client.post(f"/imports/{big}/cancel")
    return got
