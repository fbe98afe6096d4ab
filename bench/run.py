"""`python -m bench.run [--rows N] [--quick] [--only STAGES] [--profile]`: the whole benchmark in one run.

Generates seeded data under a temp dir, measures the floors, the peer, the embedded and the
scaled service side by side (with 1 and 2 worker processes, and small imports during a big one),
prints one table and writes bench/results/latest.json. A failing stage shows its error in the
table and the run goes on; a time budget keeps the run bounded. `--only` measures some stages
(and the floors their ratios need) in a shorter run.

Over 400 lines on purpose: the stages and their side-by-side table must run in one process, one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench import data, fairness, report, stages
from bench.service import MB, Service, libpq_url, postgres_url, run_measured, with_search_path

SMALL_ROWS = 100_000
XLSX_ROWS = 200_000
XLS_ROWS = 60_000
XLSX_SMALL_DIVISOR = 8  # the small sheet (RSS growth check, openpyxl's floor) has 1/8 of the rows
BUDGET = 500.0
PROBE_RATE = 1000.0  # issue 11: p99 <= 20 ms at 1,000 req/s during a 1M-row embedded import
PROBE_WINDOW = 10.0  # seconds of status requests in each phase (parse, apply)
SETUP_SECONDS = 9.0  # tenant + dataset through the CLI, serve start, stop: per service stage
PEER_WEIGHT = 25.0


class Bench:
    """The run's plan, its time budget and its results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rows: int = args.rows
        self.small: int = args.small_rows
        self.started = time.monotonic()
        self.deadline: float = self.started + float(args.budget)
        self.results: list[dict[str, Any]] = []
        self.by_key: dict[str, dict[str, Any]] = {}
        self.extra: dict[str, Any] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="importer-bench-", dir=args.tmp))
        self.files: dict[str, Path] = {}
        self.pg_schema = ""
        self.extra["load_avg_at_start"] = [round(x, 2) for x in os.getloadavg()]
        self.pending: list[float] = []
        self.overheads: list[float] = []  # seconds each service stage spent outside the import
        self.parse_rates: dict[str, float] = {}  # rows/s from upload to FileParsed, per format, as last seen
        self.groups = stages.selected(args.only, args)  # the stage groups this run measures
        self.floor_keys = stages.floors_for(self.groups)
        self.extra["stages"] = [g for g in stages.GROUPS if g in self.groups]

    # --- bookkeeping -------------------------------------------------------------------------

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def stage(
        self, key: str, label: str, fn: Callable[[], dict[str, Any]], *, floor: str | None = None,
        min_seconds: float = 5.0,
    ) -> dict[str, Any]:
        """Run one measurement; record its result or its error, never raise."""
        entry: dict[str, Any] = {"key": key, "label": label}
        if floor:
            entry["floor"] = floor
            entry["floor_label"] = self.by_key.get(floor, {}).get("label", floor)
        if self.remaining() < min_seconds:
            entry["error"] = f"skipped: {self.remaining():.0f}s left of the time budget"
        else:
            began = time.monotonic()
            print(f"... {label}", file=sys.stderr, flush=True)
            try:
                entry.update(fn())
            except Exception as exc:  # one stage's failure must not end the run
                entry["error"] = f"{type(exc).__name__}: {exc}"[:400]
                if self.args.verbose:
                    traceback.print_exc()
            entry["stage_seconds"] = round(time.monotonic() - began, 1)
        rows, seconds = entry.get("rows"), entry.get("seconds")
        base = self.by_key.get(floor or "", {})
        if rows and seconds and not entry.get("error"):
            entry["rate"] = rows / seconds
            if base.get("rate"):
                entry["ratio"] = entry["rate"] / base["rate"]
        if entry.get("rate_max") and base.get("rate"):
            entry["ratio_max"] = entry["rate_max"] / base["rate"]
        if entry.get("peak_rss") is not None:
            entry["peak_rss_mb"] = round(entry.pop("peak_rss") / MB, 1)
        self.results.append(entry)
        self.by_key[key] = entry
        status = entry.get("error") or f"{entry.get('rate', 0):,.0f} rows/s in {entry.get('seconds', 0):.2f}s"
        print(f"    {status}", file=sys.stderr, flush=True)
        return entry

    def timeout(self) -> float:
        return max(10.0, self.remaining() - 15.0)

    # --- stages ------------------------------------------------------------------------------

    def generate(self) -> None:
        """Write the files: the CSVs in one process, the sheets in another, side by side."""
        began = time.monotonic()
        a = self.args
        need = stages.files_for(self.groups)
        small = self.tmp / "bench-small.csv"
        has_small = 0 < self.small < self.rows
        if "csv_small" in need and not has_small:
            need |= {"csv"}  # no smaller file: the stages that want one read the CSV
        jobs: dict[str, tuple[Callable[..., Path], Path, int, dict[str, Any]]] = {}
        if self.rows > 0 and "csv" in need:
            head = (small, self.small) if has_small and "csv_small" in need else None
            jobs["csv"] = (data.write_csv, self.tmp / "bench.csv", self.rows, {"head": head})
        elif has_small and "csv_small" in need:
            jobs["csv_small"] = (data.write_csv, small, self.small, {})
        if a.xlsx_rows > 0 and "xlsx" in need:
            jobs["xlsx"] = (data.write_xlsx, self.tmp / "bench.xlsx", a.xlsx_rows, {})
            jobs["xlsx_small"] = (data.write_xlsx, self.tmp / "bench-small.xlsx", a.xlsx_rows // XLSX_SMALL_DIVISOR, {})
        if a.xls_rows > 0 and "xls" in need:
            jobs["xls"] = (data.write_xls, self.tmp / "bench.xls", a.xls_rows, {})
        if "side" in need:  # the fairness row's small imports
            jobs["side"] = (data.write_csv, self.tmp / "bench-side.csv", fairness.SIDE_ROWS, {})
        sizes: dict[str, Any] = {}
        with ProcessPoolExecutor(max_workers=2) as pool:
            futures = {key: pool.submit(fn, path, count, **kw) for key, (fn, path, count, kw) in jobs.items()}
            for key, fut in futures.items():
                count = jobs[key][2]
                try:
                    self.files[key] = fut.result()
                    sizes[key] = {"rows": count, "mb": round(self.files[key].stat().st_size / MB, 1)}
                except Exception as exc:
                    sizes[key] = {"rows": count, "error": f"{type(exc).__name__}: {exc}"}
        if "csv" in self.files and small.exists():
            self.files["csv_small"] = small
            sizes["csv_small"] = {"rows": self.small, "mb": round(small.stat().st_size / MB, 1)}
        self.extra["data"] = {"seconds": round(time.monotonic() - began, 1), "files": sizes, "seed": data.SEED}
        print(f"... data generated in {self.extra['data']['seconds']}s: {sizes}", file=sys.stderr, flush=True)

    def floor(self, kind: str, *args: str) -> dict[str, Any]:
        out, peak, _ = run_measured([sys.executable, "-m", "bench.floors", kind, *args], timeout=self.timeout())
        got = json.loads(out.strip().splitlines()[-1])
        return {"rows": got["rows"], "seconds": got["seconds"], "peak_rss": peak}

    def _need(self, key: str) -> Path:
        if key not in self.files:
            raise RuntimeError(f"no {key} file (generation failed or was skipped)")
        return self.files[key]

    def floors(self) -> None:
        """The floors the selected stages' ratios need (all of them with `floors` selected)."""
        a = self.args
        csv_path = self.files.get("csv")
        plan: list[tuple[str, str, Callable[[], dict[str, Any]], str | None]] = [
            ("floor.sqlite", f"floor CSV->SQLite csv.reader+executemany ({self.rows:,})",
             lambda: self.floor("sqlite", str(self._need("csv")), str(self.tmp / "floor.db")), None),
        ]
        if "csv_small" in self.files:
            plan.append(("floor.sqlite.small", f"floor CSV->SQLite csv.reader+executemany ({self.small:,})",
                         lambda: self.floor("sqlite", str(self._need("csv_small")), str(self.tmp / "floor-small.db")), None))
        if not a.no_scaled and csv_path is not None:
            plan += [
                ("floor.pg_copy", f"floor CSV->PostgreSQL psycopg COPY of the file ({self.rows:,})",
                 lambda: self.floor("pg_copy", str(csv_path), self.pg_dsn()), None),
                ("floor.pg_loop", f"floor CSV->PostgreSQL csv.reader+COPY write_row ({self.rows:,})",
                 lambda: self.floor("pg_loop", str(csv_path), self.pg_dsn()), None),
            ]
        plan += [
            ("floor.calamine.xlsx", f"floor XLSX python-calamine read ({a.xlsx_rows:,})",
             lambda: self.floor("calamine", str(self._need("xlsx"))), None),
            ("floor.openpyxl.xlsx", f"floor XLSX openpyxl read-only read ({a.xlsx_rows // XLSX_SMALL_DIVISOR:,})",
             lambda: self.floor("openpyxl", str(self._need("xlsx_small"))), "floor.calamine.xlsx"),
            ("floor.xlrd.xls", f"floor XLS xlrd read ({a.xls_rows:,})",
             lambda: self.floor("xlrd", str(self._need("xls"))), None),
            ("floor.calamine.xls", f"floor XLS python-calamine read ({a.xls_rows:,})",
             lambda: self.floor("calamine", str(self._need("xls"))), "floor.xlrd.xls"),
        ]
        for key, label, fn, floor in plan:
            if key in self.floor_keys:
                self.stage(key, label, fn, floor=floor)
        (self.tmp / "floor.db").unlink(missing_ok=True)
        (self.tmp / "floor-small.db").unlink(missing_ok=True)

    def pg_dsn(self) -> str:
        if not self.pg_schema:
            import psycopg

            self.pg_schema = f"bench_floor_{int(time.time())}"
            with psycopg.connect(libpq_url(postgres_url()), autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.pg_schema}"')
        return libpq_url(with_search_path(postgres_url(), self.pg_schema))

    def drop_pg_schema(self) -> None:
        if not self.pg_schema:
            return
        try:
            import psycopg

            with psycopg.connect(libpq_url(postgres_url()), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.pg_schema}" CASCADE')
        except Exception as exc:
            print(f"could not drop schema {self.pg_schema}: {exc}", file=sys.stderr)

    def peer(self, file_key: str, rows: int, weight: float | None = None) -> dict[str, Any]:
        csv_path = self._need(file_key)
        exe = Path(sys.executable).with_name("sqlite-utils")
        if not exe.exists():
            found = shutil.which("sqlite-utils")
            if not found:
                raise RuntimeError("sqlite-utils is not installed (pip install -e '.[bench]')")
            exe = Path(found)
        db = self.tmp / "peer.db"
        db.unlink(missing_ok=True)
        _, peak, wall = run_measured([str(exe), "insert", str(db), "t", str(csv_path), "--csv", "--pk", "id"],
                                     timeout=min(max(30.0, self.cap(weight)), max(10.0, self.remaining() - 5))
                                     if weight else self.timeout())
        db.unlink(missing_ok=True)
        return {"rows": rows, "seconds": wall, "peak_rss": peak, "note": "wall time incl. start-up; detects types"}

    def cap(self, weight: float, rows: int = 0, fmt: str = "", extra: float = 0.0) -> float:
        """This stage's share of what is left of the budget (later stages keep theirs), but at least
        enough to parse the file and apply some chunks when a smaller import showed the parse rate."""
        setup = sum(self.overheads) / len(self.overheads) if self.overheads else SETUP_SECONDS
        left = self.remaining() - setup * len(self.pending) - 10.0
        share = left * weight / max(1e-9, sum(self.pending))
        rate = self.parse_rates.get(fmt)
        floor = rows / rate * 1.25 + 15.0 + extra if rate and rows else 10.0
        return max(10.0, min(max(share, floor), self.remaining() - setup - 5.0))

    def _learn(self, fmt: str, got: dict[str, Any]) -> None:
        ph = got.get("phases", {})
        if ph.get("total_rows") and ph.get("sent_to_parsed_s"):
            self.parse_rates[fmt] = ph["total_rows"] / max(0.1, ph["sent_to_parsed_s"])

    def service_import(
        self, name: str, file_key: str, expect: int, weight: float, *, scaled: bool = False, policy: str = "partial",
        s3: bool = False, processes: int | None = None, env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        path = self._need(file_key)
        workdir = self.tmp / name
        fmt = path.suffix.lstrip(".")
        cap = self.cap(weight, expect, fmt)
        began = time.monotonic()
        try:
            with Service(workdir, scaled=scaled, processes=processes or self.args.processes, s3=s3, env=env) as svc:
                got = svc.run_import(path, policy=policy, expect_rows=expect, cap=cap)
        finally:
            if not self.args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        self.overheads.append(time.monotonic() - began - float(got.get("elapsed") or got["seconds"]))
        self._learn(fmt, got)
        got["cap_seconds"] = round(cap, 1)
        got["expect"] = expect
        ph = got.get("phases", {})
        notes = [got.pop("note", ""), f"upload {got['upload_seconds']:.1f}s"]
        if "stored_to_parsed_s" in ph:
            notes.append(f"parse {ph['stored_to_parsed_s']:.1f}s")
        if "apply_s" in ph:
            notes.append(f"apply {ph['apply_s']:.1f}s ({ph['chunks']} chunks, first {ph['chunk_first_ms']:.0f} ms, "
                         f"last {ph['chunk_last_ms']:.0f} ms each)")
        got["note"] = "; ".join(n for n in notes if n)
        return got

    def probe(self, weight: float) -> dict[str, Any]:
        path = self._need("csv")
        workdir = self.tmp / "emb-probe"
        cap = self.cap(weight, self.rows, "csv", extra=2 * PROBE_WINDOW + 5)
        try:
            with Service(workdir) as svc:
                got = svc.probe_status(path, rate=PROBE_RATE, window=PROBE_WINDOW, cap=cap)
        finally:
            if not self.args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        self.extra["status_latency"] = got
        parts = []
        for phase in ("parse", "apply", "all"):
            p = got.get(phase, {})
            if "p99_ms" in p:
                parts.append(f"{phase}: p50 {p['p50_ms']:.1f} / p99 {p['p99_ms']:.1f} / max {p['max_ms']:.0f} ms "
                             f"at {p['achieved_rate']:.0f} req/s")
            elif p.get("skipped"):
                parts.append(f"{phase}: not probed ({p['skipped']})")
        if "requests" not in got.get("all", {}) or not got["all"]["requests"]:
            raise RuntimeError("no status request was measured: " + "; ".join(parts))
        return {"note": "; ".join(parts)}

    def fairness_stage(self, name: str, weight: float, *, scaled: bool = False) -> dict[str, Any]:
        """Small imports one after another while a big one is applied (bench/fairness.py); the big one is then canceled."""
        cap = self.cap(weight, self.rows, "csv", extra=fairness.SIDE_EXTRA)
        big, side = self._need("csv"), self._need("side")
        workdir = self.tmp / name
        try:
            with Service(workdir, scaled=scaled, processes=self.args.processes) as svc:
                got = fairness.run(svc, big, side, cap=cap)
        finally:
            if not self.args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        got["cap_seconds"] = round(cap, 1)
        got["note"] = fairness.describe(got)
        return got

    def plan(self) -> list[tuple[str, str, float, Callable[[float], dict[str, Any]], str | None]]:
        """The selected service stages in order: (key, label, budget weight, run it, floor key)."""
        a, g = self.args, self.groups
        n, s, x = f"{self.rows:,}", f"{self.small:,}", f"{a.xlsx_rows:,}"
        side = f"{fairness.SIDE_COUNT} x {fairness.SIDE_ROWS}-row imports one after another"
        plan: list[tuple[str, str, float, Callable[[float], dict[str, Any]], str | None]] = []
        if "embedded" in g and "csv_small" in self.files:  # first: it shows the parse rate the 1M-row stages' caps need
            plan.append(("embedded.csv.partial.small", f"service CSV->SQLite embedded partial ({s})", 25,
                         lambda w: self.service_import("emb-partial-small", "csv_small", self.small, w),
                         "floor.sqlite.small"))
            # the same with check ahead (off by default embedded): the lever's worth and memory, side by side
            plan.append(("embedded.csv.partial.small.ahead", f"service CSV->SQLite embedded partial, check ahead on ({s})", 25,
                         lambda w: self.service_import("emb-partial-ahead", "csv_small", self.small, w,
                                                       env={"IMPORTER_CHECK_AHEAD": "true"}),
                         "floor.sqlite.small"))
        if "embedded" in g:
            plan.append(("embedded.csv.partial", f"service CSV->SQLite embedded partial ({n})", 90,
                         lambda w: self.service_import("emb-partial", "csv", self.rows, w), "floor.sqlite"))
        if "probe" in g:
            plan.append(("embedded.status", f"status GET at {PROBE_RATE:.0f}/s during an embedded import ({n})", 55,
                         self.probe, None))
        if "embedded" in g:
            plan.append(("embedded.csv.atomic", f"service CSV->SQLite embedded atomic ({n})", 70,
                         lambda w: self.service_import("emb-atomic", "csv", self.rows, w, policy="atomic"), "floor.sqlite"))
        if "fairness" in g:
            plan.append(("embedded.fairness", f"fairness: {side} during an embedded import ({n})", 15,
                         lambda w: self.fairness_stage("emb-fairness", w), None))
        if "scaled" in g:
            plan.append(("scaled.csv.partial",
                         f"service CSV->PostgreSQL scaled, Redis + {a.processes} worker procs, partial ({n})", 60,
                         lambda w: self.service_import("scaled", "csv", self.rows, w, scaled=True), "floor.pg_copy"))
        if "s3" in g:
            plan.append(("scaled.csv.partial.s3",
                         f"service CSV->PostgreSQL scaled, blobs on S3 (moto), Redis + {a.processes} worker procs, partial ({n})",
                         60, lambda w: self.service_import("scaled-s3", "csv", self.rows, w, scaled=True, s3=True),
                         "floor.pg_copy"))
        if "fairness" in g and not a.no_scaled:
            plan.append(("scaled.fairness", f"fairness: {side} during a scaled import, Redis + {a.processes} worker procs ({n})",
                         15, lambda w: self.fairness_stage("scaled-fairness", w, scaled=True), None))
        if "workers" in g:  # both on the same file, so the ratio compares like with like
            key, rows = ("csv_small", self.small) if "csv_small" in self.files else ("csv", self.rows)
            for procs in (1, 2):
                plan.append((f"scaled.workers.{procs}",
                             f"workers: service CSV->PostgreSQL scaled, Redis + {procs} worker proc{'s' * (procs > 1)}, "
                             f"partial ({rows:,}, the same file for 1 and 2)", 20,
                             lambda w, procs=procs: self.service_import(  # type: ignore[misc]
                                 f"workers-{procs}", key, rows, w, scaled=True, processes=procs),
                             "scaled.workers.1" if procs > 1 else None))
            # the same 2 processes applying one chunk at a time: what applying side by side is worth
            plan.append(("scaled.workers.2.serial",
                         f"workers: service CSV->PostgreSQL scaled, Redis + 2 worker procs, one chunk at a time "
                         f"(IMPORTER_APPLY_PARALLEL=1), partial ({rows:,})", 20,
                         lambda w: self.service_import("workers-2-serial", key, rows, w, scaled=True, processes=2,
                                                       env={"IMPORTER_APPLY_PARALLEL": "1"}),
                         "scaled.workers.1"))
        if "xlsx" in g:
            plan += [
                ("embedded.xlsx.small", f"service XLSX->SQLite embedded partial ({a.xlsx_rows // XLSX_SMALL_DIVISOR:,})", 15,
                 lambda w: self.service_import("emb-xlsx-small", "xlsx_small", a.xlsx_rows // XLSX_SMALL_DIVISOR, w),
                 "floor.calamine.xlsx"),
                ("embedded.xlsx", f"service XLSX->SQLite embedded partial ({x})", 40,
                 lambda w: self.service_import("emb-xlsx", "xlsx", a.xlsx_rows, w), "floor.calamine.xlsx"),
            ]
        if "xls" in g:
            plan.append(("embedded.xls", f"service XLS->SQLite embedded partial ({a.xls_rows:,})", 25,
                         lambda w: self.service_import("emb-xls", "xls", a.xls_rows, w), "floor.xlrd.xls"))
        return plan

    def add_notes(self) -> None:
        """Notes that compare two stages: scaled against the write_row loop, 2 worker processes against 1."""
        loop, scaled = self.by_key.get("floor.pg_loop", {}), self.by_key.get("scaled.csv.partial", {})
        if scaled.get("rate") and loop.get("rate"):
            extra = f"{scaled['rate'] / loop['rate']:.2f}x the csv.reader+write_row loop"
            scaled["note"] = "; ".join(x for x in (scaled.get("note"), extra) if x)
        one, two = self.by_key.get("scaled.workers.1", {}), self.by_key.get("scaled.workers.2", {})
        if two.get("ratio") is not None:
            cut = " (ESTIMATED: a run was cut)" if one.get("estimated") or two.get("estimated") else ""
            extra = f"2 procs / 1 proc = {two['ratio']:.2f}x{cut}"
            two["note"] = "; ".join(x for x in (two.get("note"), extra) if x)

    def run(self) -> int:
        a = self.args
        print(f"bench: {self.rows:,} CSV rows, XLSX {a.xlsx_rows:,}, XLS {a.xls_rows:,}; stages {', '.join(self.extra['stages'])}; "
              f"data under {self.tmp}", file=sys.stderr, flush=True)
        try:
            self.generate()
            self.floors()
            s, n = f"{self.small:,}", f"{self.rows:,}"
            plan = self.plan()
            peer_small = "peer" in self.groups and "csv_small" in self.files
            self.pending = [w for _, _, w, _, _ in plan] + ([PEER_WEIGHT] if peer_small else [])
            for key, label, weight, fn, floor in plan:
                self.stage(key, label, lambda fn=fn, weight=weight: fn(weight), floor=floor)  # type: ignore[misc]
                self.pending.pop(0)
            self.add_notes()
            if peer_small:
                self.stage("peer.sqlite_utils.small", f"peer sqlite-utils insert --csv --pk id ({s})",
                           lambda: self.peer("csv_small", self.small, PEER_WEIGHT), floor="floor.sqlite.small",
                           min_seconds=20.0)
                self.pending.clear()
            small_peer = self.by_key.get("peer.sqlite_utils.small", {})
            guess = small_peer.get("seconds", 0) * self.rows / max(1, self.small) if small_peer.get("seconds") else 0
            if "peer" in self.groups and (not peer_small or (guess and self.remaining() > 1.5 * guess + 20)):
                self.stage("peer.sqlite_utils", f"peer sqlite-utils insert --csv --pk id ({n})",
                           lambda: self.peer("csv", self.rows), floor="floor.sqlite")
            elif "peer" in self.groups:
                self.extra["peer_full_skipped"] = f"needs ~{guess:.0f}s, {self.remaining():.0f}s left"
        finally:
            self.drop_pg_schema()
            if not a.keep:
                shutil.rmtree(self.tmp, ignore_errors=True)
        return self.finish()

    # --- the verdict -------------------------------------------------------------------------

    def targets(self) -> list[dict[str, Any]]:
        """Each selected stage's goal, met or missed (None: not measured or not judged)."""
        r, g = self.by_key, self.groups
        out: list[dict[str, Any]] = []

        def ratio_target(key: str, goal: float, text: str, *, above: bool = False) -> None:
            e = r.get(key, {})

            def meets(ratio: float) -> bool:
                return ratio > goal if above else ratio >= goal

            if e.get("ratio") is None:
                if e.get("ratio_max") is not None:  # cut before any row was applied: only an upper bound
                    met = False if not meets(e["ratio_max"]) else None
                    out.append({"target": text, "met": met, "measured": f"< {e['ratio_max']:.2f}x ({e.get('note', '')})"})
                else:
                    out.append({"target": text, "met": None, "measured": e.get("error") or "not measured"})
                return
            floor_rate = r[e["floor"]]["rate"]
            if e.get("estimated"):
                out.append({"target": text, "met": meets(e["ratio"]),
                            "measured": f"~{e['ratio']:.2f}x ESTIMATED ({e['rate']:,.0f} vs {floor_rate:,.0f} rows/s; "
                                        f"cut at {e['elapsed']:.0f}s with {e['applied']:,} rows applied)"})
                return
            out.append({"target": text, "met": meets(e["ratio"]),
                        "measured": f"{e['ratio']:.2f}x ({e['rate']:,.0f} vs {floor_rate:,.0f} rows/s)"})

        n = f"{self.rows:,}"
        if "embedded" in g:
            ratio_target("embedded.csv.partial", 0.5, f"CSV->SQLite embedded partial >= 0.5x floor ({n} rows)")
            ratio_target("embedded.csv.atomic", 0.4, f"CSV->SQLite embedded atomic >= 0.4x floor ({n} rows)")
        if "scaled" in g:
            ratio_target("scaled.csv.partial", 0.5, f"CSV->PostgreSQL scaled >= 0.5x COPY ({n} rows)")
        if "workers" in g:
            rows = (r.get("scaled.workers.2") or r.get("scaled.workers.1") or {}).get("expect")
            ratio_target("scaled.workers.2", 1.0, "CSV->PostgreSQL scaled, 1 vs 2 worker processes: 2 procs > 1.0x 1 proc "
                         f"({f'{rows:,}' if rows else '?'} rows, the same file)", above=True)
        if "xlsx" in g:
            ratio_target("embedded.xlsx", 0.5, "XLSX >= 0.5x python-calamine")
            out.append(self.growth_target("embedded.xlsx", "embedded.xlsx.small",
                                          f"XLSX peak RSS does not grow with the sheet ({XLSX_SMALL_DIVISOR}x rows: <= 1.25x)"))
        if "xls" in g:
            ratio_target("embedded.xls", 1.0, "XLS >= 1x xlrd")
        if "embedded" in g:
            peaks = [(k, r[k]["peak_rss_mb"]) for k in ("embedded.csv.partial", "embedded.csv.atomic") if r.get(k, {}).get("peak_rss_mb")]
            if peaks:
                worst = max(p for _, p in peaks)
                out.append({"target": f"embedded service peak RSS <= 200 MB during a {n}-row CSV import", "met": worst <= 200,
                            "measured": ", ".join(f"{k.split('.')[-1]} {p:.0f} MB" for k, p in peaks)})
            else:
                out.append({"target": "embedded service peak RSS <= 200 MB", "met": None, "measured": "not measured"})
            out.append(self.growth_target("embedded.csv.partial", "embedded.csv.partial.small",
                                          f"{n}-row peak RSS <= 1.25x the {self.small:,}-row peak"))
        if "probe" in g:
            lat = (self.extra.get("status_latency") or {}).get("all")
            if lat and lat.get("p99_ms") is not None:
                out.append({"target": f"status p99 <= 20 ms at {PROBE_RATE:.0f} req/s during a {n}-row embedded import",
                            "met": lat["p99_ms"] <= 20.0 and lat.get("achieved_rate", 0) >= 0.9 * PROBE_RATE,
                            "measured": f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms at "
                                        f"{lat['achieved_rate']} req/s ({lat['requests']} requests, {lat['errors']} errors)"})
            else:
                out.append({"target": "status p99 <= 20 ms at 200 req/s", "met": None, "measured": "not measured"})
        if "fairness" in g:
            for mode in ("embedded", "scaled")[: 1 if self.args.no_scaled else 2]:
                out.append(self.fairness_target(mode))
        return out

    def growth_target(self, big_key: str, small_key: str, text: str) -> dict[str, Any]:
        """Peak RSS of the bigger file's import at most 1.25x the smaller one's."""
        big, small = self.by_key.get(big_key, {}), self.by_key.get(small_key, {})
        if not (big.get("peak_rss_mb") and small.get("peak_rss_mb")):
            return {"target": text, "met": None, "measured": "not measured"}
        growth = big["peak_rss_mb"] / small["peak_rss_mb"]
        return {"target": text, "met": growth <= 1.25,
                "measured": f"{big['peak_rss_mb']:.0f} MB vs {small['peak_rss_mb']:.0f} MB ({growth:.2f}x)"}

    def fairness_target(self, mode: str) -> dict[str, Any]:
        """p95 of the small imports' times from 202 to completed, during a big import."""
        e = self.by_key.get(f"{mode}.fairness", {})
        text = (f"fairness {mode}: p95 <= {fairness.GOAL_P95:.0f} s from 202 to completed, {fairness.SIDE_COUNT} x "
                f"{fairness.SIDE_ROWS}-row imports during a {self.rows:,}-row import")
        if e.get("p95_s") is None:
            return {"target": text, "met": None, "measured": e.get("error") or "not measured"}
        measured = f"p95 {e['p95_s']:.2f} s, max {e['max_s']:.2f} s"
        if e["under_load"] < fairness.SIDE_COUNT:
            measured += f" (only {e['under_load']} of {fairness.SIDE_COUNT} ended while the big import ran: not judged on the rest)"
        return {"target": text, "met": fairness.verdict(e), "measured": measured}

    def finish(self) -> int:
        try:
            targets = self.targets()
        except Exception as exc:  # the results still get written
            targets = [{"target": "judging the targets", "met": None, "measured": f"{type(exc).__name__}: {exc}"}]
        total = round(time.monotonic() - self.started, 1)
        try:
            text = report.table(self.results)
            markdown = report.markdown_table(self.results)
        except Exception as exc:
            text = markdown = f"(table failed: {type(exc).__name__}: {exc})"
        print()
        print(text)
        print()
        print("targets:")
        print(report.targets_table(targets))
        print(f"\ntotal {total}s (budget {self.args.budget:.0f}s)")
        payload = {
            "date": report.now_iso(),
            "machine": report.machine(),
            "args": {k: v for k, v in vars(self.args).items() if k != "tmp"},
            "total_seconds": total,
            "results": self.results,
            "targets": targets,
            **self.extra,
            "table": text,
            "markdown": markdown,
        }
        out = report.write_json(payload, Path(self.args.out) if self.args.out else None)
        print(f"results: {out}")
        return 0


def profile(args: argparse.Namespace) -> int:
    """Profile an import (CSV, or --format xlsx/xls at --xlsx-rows/--xls-rows) with py-spy: the
    embedded service (serve and its worker child) or the scaled worker."""
    exe = Path(sys.executable).with_name("py-spy")
    spy = str(exe) if exe.exists() else shutil.which("py-spy")
    if not spy:
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="importer-profile-", dir=args.tmp))
    out = Path(args.profile_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        write, rows = {"csv": (data.write_csv, args.rows), "xlsx": (data.write_xlsx, args.xlsx_rows),
                       "xls": (data.write_xls, args.xls_rows)}[args.format]
        path = write(tmp / f"bench.{args.format}", rows)
        with Service(tmp / "svc", scaled=args.profile_scaled, processes=args.processes) as svc:
            pid = svc.procs["worker" if args.profile_scaled else "serve"].pid
            cmd = [spy, "record", "--pid", str(pid), "--format", "speedscope", "-o", str(out), "--rate", "100",
                   "--nonblocking", "--subprocesses"]  # the worker child too
            if args.gil:
                cmd.append("--gil")
            if args.native:
                cmd.append("--native")
            recorder = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.0)
            try:
                got = svc.run_import(path, policy=args.policy, expect_rows=rows, cap=args.budget)
            finally:
                recorder.send_signal(2)  # SIGINT: py-spy writes the profile and exits
                try:
                    _, err = recorder.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    recorder.kill()
                    err = b""
        print(f"import: {got['rows']:,} rows in {got['seconds']:.2f}s ({got['rows'] / got['seconds']:,.0f} rows/s) "
              f"under py-spy", file=sys.stderr)
        if not out.exists():
            print(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}", file=sys.stderr)
            return 1
        print(f"phases: {got.get('phases')}", file=sys.stderr)
        summary = report.summarize_speedscope(out, top=args.top)
        print(f"threads were working in {summary['working_share_percent']}% of the samples (the rest waited)")
        for kind in ("self", "inclusive"):
            print(f"\ntop functions by {kind} time (% of the working samples):")
            for item in summary[kind]:
                print(f"  {item['percent']:5.1f}%  {item['function']}")
        print(f"\nspeedscope profile: {out} (open at https://www.speedscope.app)")
        report.write_json({"date": report.now_iso(), "import": got, "profile": str(out), **summary},
                          report.RESULTS / "profile.json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--rows", type=int, default=None, help="CSV rows (default 1,000,000; 20,000 with --quick)")
    p.add_argument("--quick", action="store_true", help="a small smoke run (20k CSV rows, small sheets)")
    p.add_argument("--small-rows", type=int, default=None, help=f"the smaller CSV: RSS growth check, peer, workers row ({SMALL_ROWS:,})")
    p.add_argument("--xlsx-rows", type=int, default=None, help=f"XLSX rows ({XLSX_ROWS:,})")
    p.add_argument("--xls-rows", type=int, default=None, help=f"XLS rows ({XLS_ROWS:,}, at most 65,535)")
    p.add_argument("--processes", type=int, default=2,
                   help="`importer worker --processes` in the scaled and scaled fairness stages (the workers row runs 1 and 2)")
    p.add_argument("--only", type=stages.parse_only, default=None, metavar="STAGES",
                   help=f"measure only these stages, comma-separated, from: {', '.join(stages.GROUPS)} "
                        "(the floors their ratios need run too; the --no-* options still apply)")
    p.add_argument("--budget", type=float, default=BUDGET,
                   help=f"seconds the run may take ({BUDGET:.0f}: with a fresh venv's install, make bench stays under 10 min)")
    p.add_argument("--no-scaled", action="store_true", help="skip PostgreSQL/Redis (floors, scaled, s3, workers and scaled fairness)")
    p.add_argument("--no-s3", action="store_true", help="skip the scaled stage with blobs on an S3 server (moto)")
    p.add_argument("--no-probe", action="store_true", help="skip the status-latency import")
    p.add_argument("--no-peer", action="store_true", help="skip sqlite-utils")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (data, service logs)")
    p.add_argument("--tmp", default=None, help="parent of the temp dir (default: the system temp dir)")
    p.add_argument("--out", default=None, help="results JSON (default bench/results/latest.json)")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of failing stages")
    p.add_argument("--profile", action="store_true", help="instead: profile one embedded import (CSV; see --format) with py-spy")
    p.add_argument("--format", choices=("csv", "xlsx", "xls"), default="csv",
                   help="the file --profile imports (xlsx: --xlsx-rows rows, xls: --xls-rows)")
    p.add_argument("--profile-out", default="/tmp/importer-profile.speedscope.json", help="py-spy output")
    p.add_argument("--profile-scaled", action="store_true",
                   help="--profile the scaled service (PostgreSQL, Redis, `importer worker` and its processes)")
    p.add_argument("--policy", default="partial", help="policy of the profiled import")
    p.add_argument("--gil", action="store_true", help="py-spy --gil: only the thread holding the GIL")
    p.add_argument("--native", action="store_true", help="py-spy --native: C frames too (the GC, sqlite3, msgspec)")
    p.add_argument("--top", type=int, default=20, help="functions listed from the profile")
    args = p.parse_args(argv)
    quick = args.quick
    args.rows = args.rows or (20_000 if quick else 1_000_000)
    args.small_rows = args.small_rows or (5_000 if quick else min(SMALL_ROWS, args.rows))
    args.xlsx_rows = args.xlsx_rows if args.xlsx_rows is not None else (8_000 if quick else XLSX_ROWS)
    args.xls_rows = min(65_535, args.xls_rows if args.xls_rows is not None else (4_000 if quick else XLS_ROWS))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        return profile(args)
    return Bench(args).run()


if __name__ == "__main__":
    raise SystemExit(main())
