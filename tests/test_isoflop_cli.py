"""scripts/isoflop.py on the demo corpus: a small grid trained, fitted and plotted; a re-run trains nothing."""
import json
import math

import pytest
from conftest import REPO, cli

BUDGETS = (4e10, 1e11)


def _finite_numbers(value):
    if isinstance(value, dict):
        return all(_finite_numbers(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite_numbers(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value) or value is None


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("isoflop")
    args = ["python", str(REPO / "scripts" / "isoflop.py"), "--corpus", "demo", "--quick", "--sizes", "3",
            "--budgets", ",".join(map(str, BUDGETS)), "--data-dir", str(tmp / "data"), "--runs-dir", str(tmp / "runs"),
            "--predict", "1e12"]
    first = cli(*args, timeout=1200)
    out = tmp / "runs" / "demo" / "isoflop"
    logs = {p: p.stat().st_mtime_ns for p in out.glob("*/*/train.log")}
    second = cli(*args)
    return {"out": out, "first": first, "second": second, "logs": logs,
            "json": json.loads((out / "isoflop.json").read_text())}


def test_every_point_trains_to_its_budget(study):
    points = study["json"]["points"]
    assert sorted({p["budget_flops"] for p in points}) == list(BUDGETS)
    assert len(points) == 6 and len({p["params"] for p in points}) == 3
    for p in points:
        assert {"budget_flops", "params", "tokens", "valid_loss", "valid_bleu", "updates"} <= p.keys()
        # the plan uses the mean batch of a whole epoch; a partial epoch's batches differ by a few %
        assert p["train_flops"] == pytest.approx(p["budget_flops"], rel=0.05), p
        assert 0 < p["valid_loss"] < 20
    # the same budget buys a bigger model fewer updates
    at = sorted((p for p in points if p["budget_flops"] == BUDGETS[0]), key=lambda p: p["params"])
    assert [p["updates"] for p in at] == sorted((p["updates"] for p in at), reverse=True)


def test_fits_are_written_finite_with_both_plots(study):
    fits = study["json"]["fits"]
    assert set(fits["parabolas"]) == {"4e10", "1e11"}
    assert _finite_numbers(fits)
    for fit in fits["parabolas"].values():
        assert len(fit["residuals"]) == 3 and all(abs(r) < 1e-6 for r in fit["residuals"])  # 3 points, 3 coefficients
    for name in ("isoflop.png", "scaling.png"):
        assert (study["out"] / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_rerun_trains_nothing(study):
    assert study["second"].stdout.count("done already, skipped") == 6
    assert "training in" not in study["second"].stdout
    assert {p: p.stat().st_mtime_ns for p in study["logs"]} == study["logs"]


@pytest.mark.parametrize("option, message", [
    (["--budgets", "lots"], "--budgets 'lots': expected numbers"),
    (["--budgets", "0"], "--budgets: positive numbers needed"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, option, message):
    result = cli("python", str(REPO / "scripts" / "isoflop.py"), "--corpus", "demo", "--quick", *option,
                 "--runs-dir", str(tmp_path), check=False)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())
