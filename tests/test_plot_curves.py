"""nmt_suite.analysis.curves (analysis/plot_curves.py) on a real fairseq-train run: tensorboard
events and the log fallback."""
import logging
import shutil
import subprocess
import sys

import matplotlib.pyplot as plt
import pytest
from conftest import REPO, TINY_TRAIN_ARGS, cli
from fairseq.logging import progress_bar

from nmt_suite.analysis import curves as plot_curves

SMALL = ("--encoder-embed-dim", "32", "--decoder-embed-dim", "32", "--encoder-ffn-embed-dim", "64",
         "--decoder-ffn-embed-dim", "64", "--encoder-layers", "1", "--decoder-layers", "1",
         "--encoder-attention-heads", "2", "--decoder-attention-heads", "2", "--max-tokens", "400")
VALIDATION = ("--validate-interval-updates", "2", "--eval-bleu", "--eval-bleu-detok", "space",
              "--eval-bleu-args", '{"beam": 1, "max_len_a": 0, "max_len_b": 12}')


@pytest.fixture(scope="module")
def run_dir(toy_bin, tmp_path_factory):
    """runs/<corpus>/<rung>/ as the run scripts lay it out: 4 updates, validation (with BLEU) every 2."""
    run = tmp_path_factory.mktemp("run")
    proc = cli("fairseq-train", toy_bin, *TINY_TRAIN_ARGS, *SMALL, *VALIDATION, "--max-update", "4",
               "--save-dir", run / "checkpoints", "--tensorboard-logdir", run / "tensorboard",
               "--no-epoch-checkpoints")
    (run / "train.log").write_text(proc.stdout + proc.stderr)  # what `... 2>&1 | tee train.log` keeps
    return run


def test_curves_from_tensorboard(run_dir):
    curves, source = plot_curves.load_curves(run_dir)
    assert source.startswith("tensorboard")
    assert [u for u, _ in curves["train_loss"]] == [1, 2, 3, 4]  # --log-interval 1
    assert [u for u, _ in curves["lr"]] == [1, 2, 3, 4]
    assert [u for u, _ in curves["valid_loss"]] == [2, 4]
    assert [u for u, _ in curves["valid_bleu"]] == [2, 4]
    assert all(0 <= bleu <= 100 for _, bleu in curves["valid_bleu"])


def test_log_fallback_gives_the_same_curves(run_dir, tmp_path):
    no_events = tmp_path / "run"
    no_events.mkdir()
    shutil.copy(run_dir / "train.log", no_events / "train.log")
    from_log, source = plot_curves.load_curves(no_events)
    from_events, _ = plot_curves.load_curves(run_dir)
    assert source.startswith("fairseq log")
    assert set(from_log) == set(from_events) == {"train_loss", "valid_loss", "valid_bleu", "lr"}
    for series in from_events:
        assert [u for u, _ in from_log[series]] == [u for u, _ in from_events[series]]
        # the log prints rounded values (3 decimals; BLEU 2)
        assert [v for _, v in from_log[series]] == pytest.approx([v for _, v in from_events[series]], abs=6e-3)


@pytest.mark.parametrize("log_format", ["json", "simple"])
def test_log_formats_written_by_fairseqs_progress_bar(tmp_path, log_format):
    """Lines produced by fairseq's own progress bars, written by a --log-file handler (bare messages)."""
    log = tmp_path / "train.log"
    handler = logging.FileHandler(log)
    bar_logger = logging.getLogger(progress_bar.__name__)
    bar_logger.addHandler(handler)
    bar_logger.setLevel(logging.INFO)
    try:
        bar = progress_bar.progress_bar(range(10), log_format=log_format, log_interval=1, epoch=1)
        for step in bar:
            if step in (2, 5):
                bar.log({"loss": 9.0 - step, "lr": 1e-4 * step, "num_updates": step}, tag="train_inner", step=step)
        valid = progress_bar.progress_bar([], log_format=log_format, epoch=1, prefix="valid on 'valid' subset")
        valid.print({"loss": 7.5, "bleu": 3.25, "num_updates": 5}, tag="valid", step=5)
        bar.print({"loss": 6.0, "lr": 5e-4, "num_updates": 5}, tag="train", step=5)
    finally:
        bar_logger.removeHandler(handler)
        handler.close()
    curves = plot_curves.curves_from_log(log)
    assert curves == {"train_loss": [(2, 7.0), (5, 4.0)], "lr": [(2, 2e-4), (5, 5e-4)],
                      "valid_loss": [(5, 7.5)], "valid_bleu": [(5, 3.25)]}


def test_cli_writes_plots_into_run_dir(run_dir):
    assert plot_curves.main([str(run_dir)]) == 0
    for suffix in ("png", "svg"):
        assert (run_dir / "plots" / f"curves.{suffix}").stat().st_size > 0
    curves, _ = plot_curves.load_curves(run_dir)
    fig = plot_curves.build_figure(curves)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss (base 2)", "BLEU", "lr"]
    assert {line.get_label() for line in fig.axes[0].get_lines()} == {"train loss", "valid loss"}
    plt.close(fig)


def test_run_without_events_or_log_is_a_clear_error(tmp_path, capsys):
    assert plot_curves.main([str(tmp_path)]) == 2
    assert "no losses found" in capsys.readouterr().err
    assert not (tmp_path / "plots").exists()


def test_entry_point_script_runs_as_documented(run_dir, tmp_path):
    """``python analysis/plot_curves.py RUN_DIR -o ...`` from any directory, as the docstring prints it."""
    out = tmp_path / "figs" / "curves.png"
    proc = subprocess.run([sys.executable, str(REPO / "analysis" / "plot_curves.py"), str(run_dir),
                           "-o", str(out), "--format", "png", "pdf"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(out), str(out.with_suffix(".pdf"))]
    assert out.stat().st_size > 0 and out.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    assert "DEBUG" not in proc.stderr  # no fairseq logging set-up floods the plotting script
    assert not list(out.parent.glob(".*"))  # no temporary file left behind
