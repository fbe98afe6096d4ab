"""A small native-API client for `importer submit` (upload, then poll with a progress bar) and `importer revert`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn


def submit_file(
    url: str,
    token: str,
    path: Path,
    *,
    dataset: str,
    mode: str,
    policy: str,
    threshold: str | None,
    headers: bool,
    separator: str | None,
    wait: bool,
    dry_run: bool = False,
    encoding: str | None = None,
    poll_interval: float = 0.5,
) -> int:
    """Upload `path`; returns the process exit code (0 ok, 1 import failed/canceled, 2 refused)."""
    console = Console(stderr=True)
    auth = {"Authorization": f"Bearer {token}"}
    fields = {"dataset": dataset, "mode": mode, "policy": policy, "headers": "true" if headers else "false"}
    if threshold:
        fields["threshold"] = threshold
    if separator:
        fields["separator"] = separator
    if dry_run:
        fields["dry_run"] = "true"
    if encoding:
        fields["encoding"] = encoding
    with httpx.Client(base_url=url.rstrip("/"), headers=auth, timeout=httpx.Timeout(30.0, read=300.0)) as client:
        with path.open("rb") as fh:
            resp = client.post("/imports", data=fields, files={"file": (path.name, fh)})
        if resp.status_code != 202:
            console.print(f"[red]refused ({resp.status_code}):[/red] {_message(resp)}")
            return 2
        view = resp.json()
        dry = " (dry run: no record is written)" if view.get("dry_run") else ""
        console.print(f"import {view['id']} accepted ({path.name} -> {dataset}){dry}")
        if not wait:
            print(resp.text)
            return 0
        with Progress(
            TextColumn("[bold]import {task.fields[ticket]}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[state]}"), TimeElapsedColumn(), console=console, transient=False,
        ) as progress:
            task = progress.add_task("import", total=100, ticket=view["id"], state=view["state"])
            while view["state"] not in ("completed", "failed", "canceled", "reverted"):
                time.sleep(poll_interval)
                r = client.get(f"/imports/{view['id']}")
                r.raise_for_status()
                view = r.json()
                progress.update(task, completed=view["percentage"], state=view["state"])
        rows = view["rows"]
        console.print(
            ("dry run, " if view.get("dry_run") else "")
            + f"{view['state']}: {rows['total']} rows — created {rows['created']}, updated {rows['updated']}, "
            f"unchanged {rows['unchanged']}, ignored {rows['ignored']}, failed {rows['failed']}, skipped {rows['skipped']}"
            + (f", rolled back {rows['rolled_back']}" if rows["rolled_back"] else "")
        )
        if view.get("error"):
            console.print(f"[red]{view['error']}[/red]")
        print(httpx.Response(200, json=view).text)
        return 0 if view["state"] == "completed" else 1


def revert_import(url: str, token: str, ticket: int, *, force: bool, wait: bool, poll_interval: float = 0.5) -> int:
    """Ask the service to undo import `ticket`; returns the exit code (0 accepted/reverted, 1 stopped by a failed step, 2 refused)."""
    console = Console(stderr=True)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url.rstrip("/"), headers=auth, timeout=30.0) as client:
        resp = client.post(f"/imports/{ticket}/revert", params={"force": "true"} if force else None)
        if resp.status_code != 202:
            console.print(f"[red]refused ({resp.status_code}):[/red] {_message(resp)}")
            return 2
        view = resp.json()
        console.print(f"revert of import {ticket} accepted" + (" (force: records changed since are undone too)" if force else ""))
        while wait and view["state"] != "reverted" and "failed" not in (view.get("revert") or {}):
            time.sleep(poll_interval)
            r = client.get(f"/imports/{ticket}")
            r.raise_for_status()
            view = r.json()
        if wait and "failed" in view["revert"]:
            console.print(f"[red]revert stopped:[/red] {view['revert']['failed']} (run it again to go on from there)")
            print(httpx.Response(200, json=view).text)
            return 1
        if wait:
            counts = view["revert"]
            console.print(
                f"reverted: deleted {counts['deleted']}, restored {counts['restored']}, conflicts {counts['conflicts']}"
                + (" (left as they are: a later import changed them; --force undoes them too)" if counts["conflicts"] else "")
            )
        print(httpx.Response(200, json=view).text)
        return 0


def _message(resp: httpx.Response) -> str:
    try:
        body: Any = resp.json()
        return str(body.get("error", {}).get("message", body))
    except ValueError:
        return resp.text[:500]
