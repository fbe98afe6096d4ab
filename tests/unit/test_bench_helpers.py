"""The bench's pure helpers: the fairness row's percentile and verdict, and `--only`'s stage selection."""

from __future__ import annotations

import argparse

import pytest

from bench import fairness, stages
from bench.run import parse_args


def test_p95_of_five_lies_between_the_fourth_and_the_fifth() -> None:
    # Given five small imports' times, in any order
    times = [0.5, 0.1, 0.4, 0.2, 0.3]
    # When their percentiles are taken, Then they interpolate between the closest ranks
    assert fairness.percentile(times, 95) == pytest.approx(0.4 + 0.8 * (0.5 - 0.4))
    assert fairness.percentile(times, 50) == pytest.approx(0.3)
    assert fairness.percentile(times, 100) == pytest.approx(0.5)
    assert fairness.percentile(times, 0) == pytest.approx(0.1)
    assert fairness.percentile([0.7], 95) == pytest.approx(0.7)
    with pytest.raises(ValueError):
        fairness.percentile([], 95)


def test_fairness_is_judged_only_on_imports_that_ran_beside_the_big_one() -> None:
    # Given five small imports that all ended while the big import ran, within 2 s at p95
    fast = fairness.summarize([0.2, 0.3, 0.25, 0.4, 1.9], [True] * 5)
    # Then the goal is met; with one far slower, it is missed
    assert fast["under_load"] == 5 and fast["max_s"] == 1.9
    assert fairness.verdict(fast) is True
    assert fairness.verdict(fairness.summarize([0.2, 0.3, 0.25, 0.4, 9.0], [True] * 5)) is False
    # Given only three ran under load (the big import then ended): not judged while they are fast ...
    partial = fairness.summarize([0.2, 0.3, 0.4, 0.01, 0.01], [True, True, True, False, False])
    assert partial["under_load"] == 3
    assert fairness.verdict(partial) is None
    # ... but missed when those three are already too slow
    assert fairness.verdict(fairness.summarize([3.0, 2.5, 4.0, 0.01, 0.01], [True, True, True, False, False])) is False
    assert fairness.verdict(fairness.summarize([], [])) is None


def test_only_takes_known_stage_names() -> None:
    assert stages.parse_only("embedded, Workers,fairness") == {"embedded", "workers", "fairness"}
    for bad in ("", " , ", "embedded,turbo"):
        with pytest.raises(argparse.ArgumentTypeError):
            stages.parse_only(bad)
    assert parse_args(["--quick", "--only", "workers"]).only == {"workers"}
    assert parse_args(["--quick"]).only is None
    with pytest.raises(SystemExit):
        parse_args(["--only", "nope"])


def test_a_selected_stage_brings_the_floors_and_files_its_ratio_needs() -> None:
    # Given no --only: every group, less what a --no-* option turns off
    every = stages.selected(None, argparse.Namespace(no_scaled=False, no_s3=False, no_probe=False, no_peer=False))
    assert every == set(stages.GROUPS)
    no_pg = stages.selected(None, argparse.Namespace(no_scaled=True, no_s3=False, no_probe=True, no_peer=False))
    assert not no_pg & {"scaled", "s3", "workers", "probe"} and "fairness" in no_pg
    # When some groups are chosen, Then their floors (and only theirs) run, on the files they read
    chosen = stages.selected(frozenset({"scaled", "workers"}), argparse.Namespace(no_scaled=False))
    assert stages.floors_for(chosen) == {"floor.pg_copy", "floor.pg_loop"}
    assert stages.files_for(chosen) == {"csv", "csv_small"}
    assert stages.floors_for(frozenset({"workers", "fairness", "probe"})) == frozenset()
    assert stages.files_for(frozenset({"fairness"})) == {"csv", "side"}
    assert stages.floors_for(frozenset({"xls"})) == {"floor.xlrd.xls"}
    assert stages.floors_for(frozenset({"floors"})) >= stages.floors_for(frozenset(stages.GROUPS) - {"floors"})
