"""summarize_runs.py --by-seed: runs that differ only in their seed are one system."""
import pytest
from results_toy import results_json

from nmt_suite.files import atomic_write_json
from nmt_suite.rungs.results import RunResults
from nmt_suite.rungs.summarize import COLUMNS, main, seed_groups


def _run(rung, seed=1, corpus="toy", train=None, bleu=20.0, chrf=40.0) -> dict:
    return results_json(corpus, rung, seed=seed, train=train, scores={"test": (bleu, chrf)})


@pytest.mark.parametrize("runs, groups", [
    ([_run("strong", 1), _run("strong-s2", 2), _run("strong-s3", 3)], [["strong", "strong-s2", "strong-s3"]]),
    ([_run("strong", 1), _run("strong-lr", 1, train={"lr": 0.001}), _run("strong-s2", 2)],
     [["strong", "strong-s2"], ["strong-lr"]]),
    ([_run("strong", 1), _run("strong", 2, corpus="other")], [["strong"], ["strong"]]),
    ([_run("strong", 1), _run("strong-again", 1)], [["strong", "strong-again"]]),  # a rerun: same seed
    ([_run("strong", 1), {**_run("strong-s2", 2), "config": {**_run("strong-s2", 2)["config"], "threads": 2}}],
     [["strong", "strong-s2"]]),  # threads set the speed only
    ([_run("strong", 1, train={"arch": "a"}), _run("postnorm", 2, train={"arch": "b"}),
      _run("strong-s2", 2, train={"arch": "a"})], [["strong", "strong-s2"], ["postnorm"]]),
], ids=["seeds", "other-option", "other-corpus", "same-seed", "threads", "interleaved"])
def test_seed_groups(runs, groups):
    results = [RunResults.from_json(run) for run in runs]
    assert [[r.rung for r in group] for group in seed_groups(results)] == groups


def _write(runs_dir, runs):
    for run in runs:
        atomic_write_json(runs_dir / run["corpus"] / run["rung"] / "results.json", run)


@pytest.mark.parametrize("runs, row", [
    ([_run("strong", 1, bleu=20, chrf=40), _run("strong-s2", 2, bleu=22, chrf=41),
      _run("strong-s3", 3, bleu=24, chrf=45)],
     "| toy | strong | 3 | 22.00 ± 2.00 | 42.00 ± 2.65 | 1, 2, 3 |"),
    ([_run("strong", 7, bleu=30.5, chrf=50.25)], "| toy | strong | 1 | 30.50 ± – | 50.25 ± – | 7 |"),
    ([_run("strong", 1, bleu=20.5, chrf=40), _run("strong-s2", 2, bleu=21.5, chrf=40)],
     "| toy | strong | 2 | 21.00 ± 0.71 | 40.00 ± 0.00 | 1, 2 |"),
], ids=["three-seeds", "one-seed", "two-seeds"])
def test_by_seed_row(tmp_path, capsys, runs, row):
    _write(tmp_path, runs)
    assert main([str(tmp_path), "--by-seed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| corpus | system | n seeds | test BLEU (mean ± sd) | test chrF (mean ± sd) | seeds |"
    assert lines[2:] == [row]


def test_default_table_keeps_one_row_per_run(tmp_path, capsys):
    _write(tmp_path, [_run("strong", 1, bleu=20), _run("strong-s2", 2, bleu=22)])
    assert main([str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| " + " | ".join(COLUMNS) + " |"
    assert [line.split(" | ")[1:3] for line in lines[2:]] == [["strong", "20.00"], ["strong-s2", "22.00"]]
