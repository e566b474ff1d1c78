"""Overhead of the per-update gradient-norm tracker: training tokens/s with it on vs. off.

    python -m nmt_suite.bench.gnorm_tracker [--data data/demo/bin] [--updates 60] [--threads 1]

Two fairseq Trainers for ``--task translation_ext`` are built from the same command line
and seed, one with ``--no-gnorm-log``, and train on the same pre-collated batches,
alternating update by update (on/off, then off/on, ...), so drift and other processes'
load hit both alike. Reported: target tokens / total time per mode and their ratio, and
the median of the per-update time ratios (robust to the bursts of a shared machine), for
wall-clock time and for this process's CPU time. Target: ratio >= 0.98.

The tracker under test is exactly the production path: the wrapped ``clip_grad_norm``, the
reduce_metrics hook and a flush (one device->host copy, write, fsync) every
``--log-interval`` updates. Without ``--data`` a demo corpus (nmt_suite.demo_corpus,
characters as Chinese tokens) is generated and binarized into a temporary directory.
"""
import argparse
import itertools
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from nmt_suite.gnorm_log import FILE_NAME, read_gnorm_log
from nmt_suite.plugin import PLUGIN_DIR


def demo_bin(work: Path, sentences: int) -> Path:
    from nmt_suite.demo_corpus import write_demo_corpus

    raw, tok = work / "raw", work / "tok"
    write_demo_corpus(raw, n_train=sentences, n_valid=50, n_test=50)
    tok.mkdir()
    for split in ("train", "valid", "test"):
        (tok / f"{split}.en").write_text((raw / f"{split}.en").read_text(encoding="utf-8"), encoding="utf-8")
        zh_lines = (raw / f"{split}.zh").read_text(encoding="utf-8").splitlines()
        (tok / f"{split}.zh").write_text("".join(" ".join(line.replace(" ", "")) + "\n" for line in zh_lines),
                                         encoding="utf-8")
    dest = work / "bin"
    subprocess.run([sys.executable, "-m", "fairseq_cli.preprocess", "--source-lang", "en",
                    "--target-lang", "zh", "--trainpref", tok / "train", "--validpref", tok / "valid",
                    "--destdir", dest, "--joined-dictionary", "--workers", "1"],
                   check=True, capture_output=True)
    return dest


def build_trainer(data: Path, save_dir: Path, train_args, tracker_on: bool):
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.trainer import Trainer

    argv = [str(data), "--user-dir", str(PLUGIN_DIR), "--task", "translation_ext",
            "--save-dir", str(save_dir), *train_args] + ([] if tracker_on else ["--no-gnorm-log"])
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    task.load_dataset(cfg.dataset.train_subset)
    trainer = Trainer(cfg, task, task.build_model(cfg.model), task.build_criterion(cfg.criterion))
    trainer.begin_epoch(1)
    return cfg, task, trainer


def fixed_batches(cfg, task, count: int):
    """``count`` batches of one shuffled epoch, from its start again if it has fewer."""
    epoch = task.get_batch_iterator(
        dataset=task.dataset(cfg.dataset.train_subset), max_tokens=cfg.dataset.max_tokens,
        max_positions=(cfg.task.max_source_positions, cfg.task.max_target_positions),
        seed=cfg.common.seed, ignore_invalid_inputs=True,
    ).next_epoch_itr(shuffle=True)
    batches = list(itertools.islice(epoch, count))
    return [batches[i % len(batches)] for i in range(count)]


def timed_update(trainer, batch):
    """One update; (wall seconds, process CPU seconds)."""
    import torch

    wall, cpu = time.perf_counter(), time.process_time()
    trainer.train_step([batch])
    if trainer.cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nmt_suite.bench.gnorm_tracker",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="fairseq-preprocess output (default: a generated demo corpus)")
    parser.add_argument("--demo-sentences", type=int, default=4000, help="size of the generated corpus")
    parser.add_argument("--arch", default="transformer_prenorm_tiny")
    parser.add_argument("--max-tokens", type=int, default=2000)
    parser.add_argument("--log-interval", type=int, default=100,
                        help="fairseq's --log-interval = the tracker's flush interval (default %(default)s)")
    parser.add_argument("--updates", type=int, default=60, help="timed updates per mode (default %(default)s)")
    parser.add_argument("--warmup-updates", type=int, default=3, help="untimed updates per trainer first")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default %(default)s: steadier on a shared machine)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cpu", action="store_true", help="train on CPU even when CUDA is available")
    args = parser.parse_args(argv)
    import torch

    from nmt_suite.plugin import import_fairseq

    import_fairseq()  # this benchmark trains models in this process
    warnings.simplefilter("ignore", UserWarning)  # hydra's and torch's deprecation notices
    warnings.simplefilter("ignore", FutureWarning)

    train_args = ["--arch", args.arch, "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--lr", "1e-3",
                  "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "100", "--clip-norm", "1.0",
                  "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
                  "--max-tokens", str(args.max_tokens), "--seed", str(args.seed),
                  "--log-interval", str(args.log_interval), "--num-workers", "0"]
    if args.cpu or not torch.cuda.is_available():
        train_args.append("--cpu")
    torch.set_num_threads(args.threads)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print("torch threads:", torch.get_num_threads(), "| device:", "cpu" if "--cpu" in train_args else "cuda")
    with tempfile.TemporaryDirectory(prefix="bench_gnorm_") as tmp:
        tmp = Path(tmp)
        data = args.data or demo_bin(tmp / "demo", args.demo_sentences)
        trainers = {mode: build_trainer(data, tmp / mode, train_args, tracker_on=mode == "on")
                    for mode in ("off", "on")}
        cfg, task, _ = trainers["on"]
        batches = fixed_batches(cfg, task, args.warmup_updates + args.updates)
        for batch in batches[:args.warmup_updates]:
            for _, _, trainer in trainers.values():
                trainer.train_step([batch])
        times = {"on": [], "off": []}  # per update: (wall, cpu)
        for i, batch in enumerate(batches[args.warmup_updates:]):
            for mode in (("on", "off") if i % 2 == 0 else ("off", "on")):
                times[mode].append(timed_update(trainers[mode][2], batch))
        trainers["on"][1].state_dict()  # flush, as a checkpoint save would
        logged = len(read_gnorm_log(tmp / "on" / FILE_NAME))
    tokens = sum(int(b["ntokens"]) for b in batches[args.warmup_updates:])
    print(f"{args.updates} timed updates per mode, {tokens} target tokens, same batches and seed; "
          f"{logged} updates in the tracker's log")
    for clock, k in (("wall", 0), ("CPU", 1)):
        rate = {mode: tokens / sum(t[k] for t in times[mode]) for mode in times}
        paired = statistics.median(off[k] / on[k] for on, off in zip(times["on"], times["off"]))
        print(f"{clock:>4} time: off {rate['off']:8.1f} tok/s  on {rate['on']:8.1f} tok/s  "
              f"ratio on/off {rate['on'] / rate['off']:.4f}  median per-update ratio {paired:.4f}"
              f"  (target >= 0.98)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
