"""`python -m bench.validate`: microseconds per row of the row check, the Python path vs msgspec's.

Both validators check the same rows of the bench's 10-column dataset (the CSV's cells: ints,
an email, a decimal, a date, a boolean, text) in one process, in alternating rounds of one chunk
each, as apply_chunk runs them; each figure is the best round's CPU time, as the box is shared
and noisy. Two more row sets show the other paths: `sparse` leaves a third of the optional cells
empty, `messy` writes one cell per row another way the converters accept (mixed-case emails and
'Yes' msgspec's path takes; '+7' and ' 12.50 ' it refuses, so those rows take the fallback).
The last lines split the msgspec row into its parts: the conversion alone, the email check, and
building the result (the values dict, the key, the ValidRow), which both paths pay.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable, Sequence

import msgspec

from bench import data
from events.coerce import email_shape
from events.datasets import RowValidator, ValidRow, parse_schema
from events.rowcheck import row_struct

Row = list[str | None]


def bench_rows(count: int) -> list[Row]:
    """The CSV's cells for the first `count` bench rows, as the CSV reader gives them."""
    flags = ("false", "true")
    return [
        [str(i), email, name, f"{c // 100}.{c % 100:02d}", data._DATES[d], flags[a], cat, note]
        + [str(q), cc]
        for i, email, name, c, d, a, cat, note, q, cc in data.rows(count)
    ]


def sparse(rows: list[Row], seed: int = 1) -> list[Row]:
    """The rows with a third of their optional cells (every column but the key) left empty."""
    rng = random.Random(seed)
    return [[row[0], *("" if rng.random() < 1 / 3 else c for c in row[1:])] for row in rows]


def messy(rows: list[Row], seed: int = 2) -> list[Row]:
    """The rows with one cell each written another way that the converters still accept."""
    rng = random.Random(seed)
    ways = (
        (1, str.title),  # Ann.Smith1@Example.Com
        (5, lambda b: "Yes" if b == "true" else "no"),
        (8, lambda q: f"+{q}"),
        (3, lambda d: f" {d} "),
    )
    out = []
    for row in rows:
        column, rewrite = ways[rng.randrange(len(ways))]
        changed = list(row)
        changed[column] = rewrite(str(changed[column]))
        out.append(changed)
    return out


def per_row(make: Callable[[], RowValidator], rows: list[Row]) -> float:
    """Seconds per row of one chunk's pass over `rows`, as apply_chunk makes it: a validator per
    chunk, `validate` looked up per row (a validator may switch paths), the results kept."""
    kept = []
    started = time.thread_time()  # CPU time: the box's other processes do not count
    validator = make()
    for cells in rows:
        kept.append(validator.validate(cells))
    return (time.thread_time() - started) / len(rows)


def measure(rows: list[Row], rounds: int) -> tuple[float, float]:
    """The best round's microseconds per row: (Python path, msgspec path), in alternating rounds."""
    schema = parse_schema(data.schema())

    def python() -> RowValidator:
        return RowValidator(schema, data.HEADER, engine="python")

    def checked() -> RowValidator:
        return RowValidator(schema, data.HEADER, engine="msgspec")

    first, second = python(), checked()
    assert [first.validate(r) for r in rows] == [second.validate(r) for r in rows], "they differ"
    best_old = best_new = float("inf")
    for _ in range(rounds):
        best_old = min(best_old, per_row(python, rows))
        best_new = min(best_new, per_row(checked, rows))
    return best_old * 1e6, best_new * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    """Print us/row for the Python and the msgspec row check, and their ratio, per row set."""
    parser = argparse.ArgumentParser(prog="python -m bench.validate", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000, help="rows per round (1,000)")
    parser.add_argument("--rounds", type=int, default=150, help="rounds per path (150)")
    args = parser.parse_args(argv)
    rows = bench_rows(args.rows)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"row check, 10 fields, {args.rows} rows x {args.rounds} rounds, load {load}")
    print(f"{'rows':<8}{'python us/row':>15}{'msgspec us/row':>16}{'speed-up':>10}")
    for name, chosen in (("bench", rows), ("sparse", sparse(rows)), ("messy", messy(rows))):
        old, new = measure(chosen, args.rounds)
        print(f"{name:<8}{old:>15.2f}{new:>16.2f}{old / new:>9.2f}x")
    for part, us in parts(rows, args.rounds).items():
        print(f"  part: {part:<44}{us:>6.2f} us/row")
    return 0


def parts(rows: list[Row], rounds: int) -> dict[str, float]:
    """The best round's microseconds per row of the msgspec path's parts, on the bench rows."""
    schema = parse_schema(data.schema())
    plan = tuple((f.name, f.type, f.required) for f in schema.fields)
    row_type, convert, check = row_struct(plan), msgspec.convert, email_shape

    def converting(cells: Row) -> object:
        return convert(cells, row_type, strict=False)

    def email(cells: Row) -> object:
        text = str(cells[1]).lower()
        return len(text) <= 64 and check(text) is not None and text.isascii()

    def result(cells: Row) -> object:
        c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 = cells
        values = {"id": c0, "email": c1, "name": c2, "amount": c3, "signup": c4}
        values.update(active=c5, category=c6, note=c7, quantity=c8, country=c9)
        return ValidRow(f"[{c0}]", values)

    named = {
        "msgspec.convert of the row (strict=False)": converting,
        "email: lowercase and grammar": email,
        "result: values dict, key, ValidRow": result,
    }
    best = dict.fromkeys(named, float("inf"))
    for _ in range(rounds):
        for name, function in named.items():
            started = time.thread_time()
            for cells in rows:
                function(cells)
            best[name] = min(best[name], (time.thread_time() - started) / len(rows))
    return {name: seconds * 1e6 for name, seconds in best.items()}


if __name__ == "__main__":
    raise SystemExit(main())
