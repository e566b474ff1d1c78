"""The per-update gradient-norm log (fairseq_ext/gnorm_tracker.py) against fairseq itself."""
import copy
import json
import math
import re
import shutil

import pytest
import torch
from conftest import MICRO_MODEL_ARGS, TINY_TRAIN_ARGS, cli
from fairseq import metrics, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.trainer import Trainer

from fairseq_ext import gnorm_tracker
from fairseq_ext.gnorm_tracker import GnormTracker
from nmt_suite.gnorm_log import TENSORBOARD_SUBDIR, GnormLogError, read_gnorm_log, truncate_gnorm_log

SMALL = (*MICRO_MODEL_ARGS, "--disable-validation")
BASE_RUN = ("--update-freq", "2", "--clip-norm", "1.0", "--save-interval-updates", "2",
            "--no-epoch-checkpoints")


# ---------------------------------------------------------------- fairseq-train (CLI) runs


def _train(toy_bin, save_dir, *extra):
    return cli("fairseq-train", toy_bin, *TINY_TRAIN_ARGS, *SMALL, *BASE_RUN,
               "--save-dir", save_dir, *extra)


def _logged_updates(proc) -> dict:
    """num_updates -> stats of fairseq's `train_inner` lines (--log-format simple, interval 1)."""
    logged = {}
    for line in (proc.stdout + proc.stderr).splitlines():
        if match := re.search(r"\| train_inner \| epoch \d+:\s+\d+ / \d+ (.*)$", line):
            stats = dict(item.split("=", 1) for item in match.group(1).split(", "))
            logged[int(stats["num_updates"])] = {k: float(v) for k, v in stats.items()}
    return logged


@pytest.fixture(scope="module")
def base_run(toy_bin, tmp_path_factory):
    """4 updates, --update-freq 2, --clip-norm 1.0, a checkpoint every 2 updates, tensorboard."""
    save_dir = tmp_path_factory.mktemp("gnorm_base") / "checkpoints"
    proc = _train(toy_bin, save_dir, "--max-update", "4",
                  "--tensorboard-logdir", save_dir.parent / "tensorboard")
    return save_dir, proc


def test_records_match_fairseq_log(base_run):
    save_dir, proc = base_run
    records = read_gnorm_log(save_dir / "gnorm.jsonl")
    logged = _logged_updates(proc)
    assert [r["update"] for r in records] == [1, 2, 3, 4] == sorted(logged)
    for r in records:
        log = logged[r["update"]]
        assert r["epoch"] == 1
        assert r["gnorm"] == pytest.approx(log["gnorm"], abs=5e-4)  # fairseq rounds to 3 places
        assert r["clip_norm"] == 1.0
        assert r["clipped"] == (log["clip"] == 100) == (r["gnorm"] > 1.0)
        assert r["loss"] == pytest.approx(log["loss"], abs=5e-4)
        assert r["ntokens"] == log["wpb"]  # target tokens of the 2 micro-batches
    # fairseq logs the lr set *after* an update; the record has the lr the update was taken with
    for prev, r in zip(records, records[1:]):
        assert r["lr"] == pytest.approx(logged[prev["update"]]["lr"])


def test_tensorboard_scalar_per_update(base_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    save_dir, _ = base_run
    records = read_gnorm_log(save_dir / "gnorm.jsonl")
    events = EventAccumulator(str(save_dir.parent / "tensorboard" / TENSORBOARD_SUBDIR))
    events.Reload()
    scalars = events.Scalars("gnorm")
    assert [e.step for e in scalars] == [r["update"] for r in records]
    assert [e.value for e in scalars] == pytest.approx([r["gnorm"] for r in records], rel=1e-6)


def test_restart_neither_duplicates_nor_skips(base_run, toy_bin, tmp_path):
    save_dir, _ = base_run
    resumed = tmp_path / "checkpoints"
    shutil.copytree(save_dir, resumed)
    before = read_gnorm_log(resumed / "gnorm.jsonl")
    # back to update 2: records 3 and 4 of the first attempt must go, 3..5 come from the rerun
    _train(toy_bin, resumed, "--max-update", "5", "--restore-file", resumed / "checkpoint_1_2.pt")
    after = read_gnorm_log(resumed / "gnorm.jsonl")
    assert [r["update"] for r in after] == [1, 2, 3, 4, 5]
    assert after[:2] == before[:2]
    # fairseq restores the data iterator and reseeds per update: the rerun retraces the first run
    assert [r["gnorm"] for r in after[2:4]] == pytest.approx([r["gnorm"] for r in before[2:4]], rel=1e-4)


# ---------------------------------------------------------------- in-process: fairseq's Trainer


def _trainer(toy_bin, save_dir, *extra):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [str(toy_bin), *map(str, TINY_TRAIN_ARGS), *SMALL,
                                                "--dropout", "0", "--save-dir", str(save_dir),
                                                *extra])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    trainer = Trainer(cfg, task, task.build_model(cfg.model), task.build_criterion(cfg.criterion))
    trainer.begin_epoch(1)
    return task, trainer


def _micro_batches(task, count, first=0, size=16):
    dataset = task.dataset("train")
    return [dataset.collater([dataset[i] for i in range(k * size, (k + 1) * size)])
            for k in range(first, first + count)]


def _hand_norm(trainer, samples) -> float:
    """Global L2 norm of the gradient of the summed loss / total sample size, on a copy."""
    model, criterion = copy.deepcopy(trainer.model), trainer.criterion  # criterion: no parameters
    model.train()
    sample_size = 0
    for sample in samples:
        loss, size, _ = criterion(model, sample)
        loss.backward()
        sample_size += size
    squares = [(p.grad.double() / sample_size).pow(2).sum() for p in model.parameters()
               if p.grad is not None]
    return math.sqrt(sum(squares))


@pytest.mark.parametrize("clip_norm, update_freq", [(0.0, 1), (0.05, 1), (0.05, 2)],
                         ids=["no-clip", "clip", "clip-update-freq-2"])
def test_norm_equals_hand_computed_and_fairseqs(toy_bin, tmp_path, clip_norm, update_freq):
    task, trainer = _trainer(toy_bin, tmp_path, "--clip-norm", str(clip_norm))
    expected, fairseq_logged = [], []
    for step in range(2):
        samples = _micro_batches(task, update_freq, first=step * update_freq)
        expected.append(_hand_norm(trainer, samples))
        with metrics.aggregate() as agg:
            trainer.train_step(samples)
        fairseq_logged.append(float(agg["gnorm"].avg))
    task.state_dict()  # what fairseq calls when it writes a checkpoint: flushes the log
    records = read_gnorm_log(tmp_path / "gnorm.jsonl")
    assert [r["update"] for r in records] == [1, 2]
    assert [r["gnorm"] for r in records] == pytest.approx(expected, rel=1e-5)
    assert [r["gnorm"] for r in records] == pytest.approx(fairseq_logged, rel=1e-6)
    assert [r["clipped"] for r in records] == [clip_norm > 0] * 2  # norms are >> 0.05
    assert all(r["clip_norm"] == clip_norm for r in records)


def test_fp32_nan_is_recorded_as_overflow(toy_bin, tmp_path):
    task, trainer = _trainer(toy_bin, tmp_path)
    samples = _micro_batches(task, 1)
    trainer.train_step(samples)
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    # fairseq stops an fp32 run on a NaN norm: it writes crash.pt, then raises FloatingPointError
    # (or fails inside its NanDetector re-run, whose hooks trip over torch 2.x: StopIteration)
    with pytest.raises((FloatingPointError, StopIteration)):
        trainer.train_step(samples)
    records = read_gnorm_log(tmp_path / "gnorm.jsonl")
    assert [(r["update"], r.get("overflow", False)) for r in records] == [(1, False), (2, True)]
    assert records[1]["gnorm"] is None and records[1]["loss"] is None
    assert math.isfinite(records[0]["gnorm"])


@pytest.mark.parametrize("rank, options, written", [
    (0, (), "gnorm.jsonl"), (0, ("--gnorm-log", "elsewhere/g.jsonl"), "elsewhere/g.jsonl"),
    (0, ("--no-gnorm-log",), None), (1, (), None)])
def test_where_it_writes(toy_bin, tmp_path, monkeypatch, rank, options, written):
    monkeypatch.setattr(gnorm_tracker.distributed_utils, "get_global_rank", lambda: rank)
    monkeypatch.chdir(tmp_path)
    task, trainer = _trainer(toy_bin, tmp_path / "ck", *options)
    trainer.train_step(_micro_batches(task, 1))
    task.state_dict()
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.jsonl"))
    assert files == ([] if written is None else [written if "/" in written else f"ck/{written}"])


# ---------------------------------------------------------------- the log file itself


def _records(tmp_path, lines):
    path = tmp_path / "gnorm.jsonl"
    path.write_text("".join(lines))
    return path


def test_flushes_every_interval_and_keeps_overflows(tmp_path):
    tracker = GnormTracker(tmp_path / "gnorm.jsonl", flush_every=3)
    tracker.start(0)
    for update in (1, 2, 3, 4):
        tracker.record_norm(update, 1, torch.tensor(float(update)), 2.5, 1e-3)
        tracker.record_stats(torch.tensor(10.0), 5, 5)
    assert [r["update"] for r in read_gnorm_log(tracker.path)] == [1, 2, 3]  # 4 is in memory
    tracker.record_norm(5, 1, torch.tensor(float("inf")), 2.5, 1e-3)  # AMP overflow: no stats
    tracker.record_norm(5, 1, torch.tensor(0.5), 2.5, 1e-3)  # the retry succeeds
    tracker.record_stats(torch.tensor(10.0), 5, 5)
    tracker.record_overflow(6, 1, 2.5, 1e-3)  # fp16: the optimizer raised
    tracker.close()
    records = read_gnorm_log(tracker.path)
    assert [(r["update"], r["gnorm"], r.get("overflow", False)) for r in records] == [
        (1, 1.0, False), (2, 2.0, False), (3, 3.0, False), (4, 4.0, False),
        (5, None, True), (5, 0.5, False), (6, None, True)]
    assert [r["clipped"] for r in records] == [False, False, True, True, False, False, False]
    assert records[0]["loss"] == pytest.approx(10 / 5 / math.log(2))


LOG_WITH_OVERFLOW = ['{"update": 1, "gnorm": 1.0}\n', '{"update": 2, "gnorm": 1.0}\n',
                     '{"update": 3, "gnorm": null, "overflow": true}\n', '{"update": 3, "gnorm": 1.0}\n',
                     '{"update": 4, "gn']  # a write interrupted by a crash


@pytest.mark.parametrize("last_update, kept", [(0, []), (2, [1, 2]), (3, [1, 2, 3, 3]), (9, [1, 2, 3, 3])])
def test_truncate_drops_later_records_and_partial_line(tmp_path, last_update, kept):
    path = _records(tmp_path, LOG_WITH_OVERFLOW)
    truncate_gnorm_log(path, last_update)
    assert [r["update"] for r in read_gnorm_log(path)] == kept
    assert path.read_text().endswith("\n") or not kept


def test_corrupt_line_is_an_error_naming_file_and_line(tmp_path):
    path = _records(tmp_path, ['{"update": 1}\n', "garbage\n", '{"update": 2}\n'])
    with pytest.raises(GnormLogError, match=r"gnorm.jsonl:2"):
        read_gnorm_log(path)
