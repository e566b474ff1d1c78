"""scripts/isoflop.py on the demo corpus: a small grid trained, fitted and plotted; a re-run trains nothing.

One budget keeps the test short (every point costs a FLOP count, a fairseq-train and a decoding);
the power laws over several budgets, their plot and page are tested on a synthetic study."""
import json
import math
import shutil

import pytest
from conftest import REPO, cli

BUDGETS = (1e10,)


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
    first = cli(*args, "--jobs", "2", timeout=1200)  # two points side by side, each in a worker process
    out = tmp / "runs" / "demo" / "isoflop"
    logs = {p: p.stat().st_mtime_ns for p in out.glob("*/*/train.log")}
    point_logs = {p.parent.name: p.read_text() for p in out.glob("*/*/point.log")}
    second = cli(*args)
    logs_after = {p: p.stat().st_mtime_ns for p in logs}
    study = json.loads((out / "isoflop.json").read_text())
    # the runs gone, only isoflop.json left (a committed study): its points are taken as recorded
    kept = tmp / "kept"
    kept.mkdir()
    (kept / "isoflop.json").write_text((out / "isoflop.json").read_text())
    shutil.rmtree(out)
    third = cli(*args, "--out", kept)
    return {"out": kept, "first": first, "second": second, "third": third, "logs": logs, "logs_after": logs_after,
            "point_logs": point_logs,
            "json": study,
            "third_json": json.loads((kept / "isoflop.json").read_text())}


def test_every_point_trains_to_its_budget(study):
    points = study["json"]["points"]
    assert sorted({p["budget_flops"] for p in points}) == list(BUDGETS)
    assert len(points) == 3 and len({p["params"] for p in points}) == 3
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
    assert set(fits["parabolas"]) == {"1e10"}
    assert _finite_numbers(fits)
    for fit in fits["parabolas"].values():
        assert len(fit["residuals"]) == 3 and all(abs(r) < 1e-6 for r in fit["residuals"])  # 3 points, 3 coefficients
    for name in ("isoflop.png", "scaling.png"):
        assert (study["out"] / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_page_reads_every_point_and_fit_from_the_json(study, tmp_path):
    page = (study["out"] / "isoflop.md").read_text()
    for p in study["json"]["points"]:
        assert f"| {p['size']} | {p['params']:,} |" in page and f"| {p['valid_loss']:.3f} |" in page
    for name, fit in study["json"]["fits"]["parabolas"].items():
        if fit["vertex"]:
            assert f"| {name} | {fit['vertex']['params']:,.0f} |" in page
    # the page is a function of the json alone: rewritten from a copy, it comes out the same
    (tmp_path / "isoflop.json").write_text((study["out"] / "isoflop.json").read_text())
    cli("python", "-m", "nmt_suite.isoflop.report", str(tmp_path / "isoflop.json"))
    assert (tmp_path / "isoflop.md").read_text() == page


def test_the_committed_study_page_is_generated_from_its_json():
    from nmt_suite.files import read_json
    from nmt_suite.isoflop.report import render

    study = REPO / "docs" / "isoflop.json"
    assert (REPO / "docs" / "isoflop.md").read_text() == render(read_json(study)), \
        "docs/isoflop.md is stale: python -m nmt_suite.isoflop.report docs/isoflop.json"
    for name in ("isoflop.png", "scaling.png"):
        assert (REPO / "docs" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("content, message", [(None, "no such file"), ("{}", "not an isoflop.json")])
def test_report_of_a_bad_file_exits_2_with_one_line(tmp_path, content, message):
    path = tmp_path / "isoflop.json"
    if content is not None:
        path.write_text(content)
    result = cli("python", "-m", "nmt_suite.isoflop.report", str(path), check=False)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "isoflop.md").exists()


def test_side_by_side_points_each_write_their_own_log(study):
    points = [p["size"] for p in study["json"]["points"]]
    assert sorted(study["point_logs"]) == sorted(points)
    for size, log in study["point_logs"].items():
        assert "[pipeline] budget: 1e+10 FLOPs" in log and "[pipeline] train: transformer_prenorm" in log, size
    assert "[pipeline] train:" not in study["first"].stdout  # only the workers' logs have their stages
    assert study["first"].stdout.count("updates, valid loss") == 3


def test_a_rerun_trains_nothing(study):
    assert study["second"].stdout.count("done already, skipped") == 3
    assert "training in" not in study["second"].stdout
    assert len(study["logs"]) == 3 and study["logs_after"] == study["logs"]


def test_a_study_without_its_runs_is_rebuilt_from_its_json(study):
    assert study["third"].stdout.count("done already, skipped") == 3 and "training in" not in study["third"].stdout
    assert study["third_json"]["points"] == study["json"]["points"]
    assert study["third_json"]["fits"] == study["json"]["fits"]


@pytest.mark.parametrize("option, message", [
    (["--budgets", "lots"], "--budgets 'lots': expected numbers"),
    (["--budgets", "0"], "--budgets: positive numbers needed"),
    (["--jobs", "0"], "--jobs must be >= 1"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, option, message):
    result = cli("python", str(REPO / "scripts" / "isoflop.py"), "--corpus", "demo", "--quick", *option,
                 "--runs-dir", str(tmp_path), check=False)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())
