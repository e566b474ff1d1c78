"""Spike detection (nmt_suite.analysis.spikes) on synthetic gradient-norm series."""
import json
import math
import random

import pytest

from nmt_suite.analysis import spikes
from nmt_suite.analysis.spikes import detect_spikes


def _noisy(n, level=1.0, seed=0, spread=0.15):
    rng = random.Random(seed)
    return [level * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def _with(series, changes):
    series = list(series)
    for index, value in changes.items():
        series[index] = value
    return series


# (name, series, options, expected [(update, rounded factor)]); updates are 1-based positions
CASES = [
    ("empty", [], {}, []),
    ("flat", [1.0] * 200, {}, []),
    ("noise only", _noisy(300), {}, []),
    ("slow decline (early training)", [8 * math.exp(-i / 60) + 0.5 for i in range(300)], {}, []),
    ("fast warm-up rise stays under the factor", [0.5 + i / 100 for i in range(200)], {}, []),
    ("one spike", _with([1.0] * 100, {59: 5.0}), {}, [(60, 5.0)]),
    ("two spikes", _with([1.0] * 200, {49: 4.0, 149: 8.0}), {}, [(50, 4.0), (150, 8.0)]),
    ("burst counts once, at its peak", _with([1.0] * 100, {60: 3.0, 61: 6.0, 62: 3.5}), {}, [(62, 6.0)]),
    ("bursts further apart than merge-within stay separate",
     _with([1.0] * 100, {40: 3.0, 50: 4.0}), {"merge_within": 5}, [(41, 3.0), (51, 4.0)]),
    ("too early: not enough history", _with([1.0] * 50, {4: 10.0}), {}, []),
    ("just under the factor", _with([1.0] * 100, {59: 2.4}), {}, []),
    ("factor is configurable", _with([1.0] * 100, {59: 2.0}), {"factor": 1.5}, [(60, 2.0)]),
    ("the baseline follows a level change", [1.0] * 100 + [3.0] * 100, {}, [(101, 3.0)]),
    ("overflows (None/NaN/inf) are neither baseline nor spikes",
     _with([1.0] * 100, {30: None, 31: float("nan"), 32: float("inf"), 70: 6.0}), {}, [(71, 6.0)]),
    ("a spike does not raise the next baseline",
     _with([1.0] * 100, {50: 9.0, 52: 3.0}), {"merge_within": 0}, [(51, 9.0), (53, 3.0)]),
]


@pytest.mark.parametrize("name, series, options, expected", CASES, ids=[c[0] for c in CASES])
def test_detect_spikes(name, series, options, expected):
    found = detect_spikes(series, **options)
    assert [(s.update, round(s.factor, 1)) for s in found] == expected
    for s in found:
        assert s.factor == pytest.approx(s.gnorm / s.baseline)


def test_update_numbers_are_used_for_reporting_and_merging():
    series = _with([1.0] * 100, {60: 4.0, 63: 5.0})
    updates = [1000 + 10 * i for i in range(100)]  # every 10th update logged
    found = detect_spikes(series, updates, merge_within=5)
    assert [s.update for s in found] == [1600, 1630]


@pytest.mark.parametrize("options", [{"window": 0}, {"factor": 1.0}, {"min_history": 0}])
def test_invalid_options(options):
    with pytest.raises(ValueError):
        detect_spikes([1.0] * 20, **options)


def test_top_spikes_keeps_the_largest_in_update_order():
    found = detect_spikes(_with([1.0] * 300, {50: 4.0, 120: 9.0, 200: 3.0, 280: 6.0}))
    assert [s.update for s in spikes.top_spikes(found, 2)] == [121, 281]


def test_cli_lists_spikes_and_overflows(tmp_path, capsys):
    records = [{"update": u, "gnorm": g, "clip_norm": 1.0} for u, g in enumerate([1.0] * 40, 1)]
    records[29]["gnorm"] = 7.0
    records.insert(10, {"update": 11, "gnorm": None, "overflow": True})
    log = tmp_path / "gnorm.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert spikes.main([str(log), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(s["update"], s["factor"]) for s in out["spikes"]] == [(30, 7.0)]
    assert out["overflows"] == [11]
    assert spikes.main([str(log)]) == 0
    table = capsys.readouterr().out
    assert "1 spike(s)" in table and "      30" in table and "overflow" in table


def test_cli_missing_file_is_a_clear_error(tmp_path, capsys):
    assert spikes.main([str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err
