"""Which stages a run measures (`--only`), and the floors and files those stages need."""

from __future__ import annotations

import argparse

# Every group `--only` takes, in the order the run measures them.
GROUPS = ("floors", "embedded", "probe", "fairness", "scaled", "s3", "workers", "xlsx", "xls", "peer")

# The floors whose rate a group's ratios (or notes) are computed against: they run with the group.
FLOORS = {
    "floors": {"floor.sqlite", "floor.sqlite.small", "floor.pg_copy", "floor.pg_loop", "floor.calamine.xlsx",
               "floor.openpyxl.xlsx", "floor.xlrd.xls", "floor.calamine.xls"},
    "embedded": {"floor.sqlite", "floor.sqlite.small"},
    "peer": {"floor.sqlite", "floor.sqlite.small"},
    "scaled": {"floor.pg_copy", "floor.pg_loop"},
    "s3": {"floor.pg_copy"},
    "xlsx": {"floor.calamine.xlsx"},
    "xls": {"floor.xlrd.xls"},
}

# The generated files each group reads ("side" is the 100-row CSV of the fairness row).
FILES = {
    "floors": {"csv", "csv_small", "xlsx", "xlsx_small", "xls"},
    "embedded": {"csv", "csv_small"},
    "probe": {"csv"},
    "fairness": {"csv", "side"},
    "scaled": {"csv"},
    "s3": {"csv"},
    "workers": {"csv_small"},
    "xlsx": {"xlsx", "xlsx_small"},
    "xls": {"xls"},
    "peer": {"csv", "csv_small"},
}

# What each `--no-*` option takes out of the run.
DISABLED_BY = {
    "no_scaled": {"scaled", "s3", "workers"},  # and the scaled half of the fairness row (see Bench)
    "no_s3": {"s3"},
    "no_probe": {"probe"},
    "no_peer": {"peer"},
}


def parse_only(text: str) -> frozenset[str]:
    """`--only embedded,workers` as a set of group names; an unknown or missing name is an error."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"name at least one of: {', '.join(GROUPS)}")
    unknown = sorted(set(names) - set(GROUPS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown stage {', '.join(unknown)}; choose from: {', '.join(GROUPS)}")
    return frozenset(names)


def selected(only: frozenset[str] | None, args: argparse.Namespace) -> frozenset[str]:
    """The groups this run measures: `--only`'s (all by default) less what a `--no-*` option turns off."""
    chosen = set(only if only is not None else GROUPS)
    for option, groups in DISABLED_BY.items():
        if getattr(args, option, False):
            chosen -= groups
    return frozenset(chosen)


def floors_for(groups: frozenset[str]) -> frozenset[str]:
    """The floor stages the selected groups need."""
    return frozenset(key for group in groups for key in FLOORS.get(group, ()))


def files_for(groups: frozenset[str]) -> frozenset[str]:
    """The generated files the selected groups need."""
    return frozenset(key for group in groups for key in FILES.get(group, ()))
