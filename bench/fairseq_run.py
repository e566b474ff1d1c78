"""Run stock fairseq-train / fairseq-generate with timing instruments, for the benchmark.

    python -m bench.fairseq_run {train,generate} STATS.json -- <fairseq-train/generate arguments>

This is exactly the console script (``fairseq_cli.train.cli_main`` /
``fairseq_cli.generate.cli_main``; no plugin unless the arguments say ``--user-dir``),
plus :mod:`fairseq_ext.checkpoint_safety` (without its allow-list no fairseq checkpoint
loads on torch >= 2.6; it also makes fairseq's checkpoint copies atomic, nothing else), plus instruments that only observe:

- train: after every ``Trainer.train_step`` the wall and process-CPU clocks, the target
  tokens of the update and its logged loss (the interval between two consecutive updates
  therefore includes data loading, the optimizer step and logging);
- generate: around every ``task.inference_step`` (what fairseq-generate's own timer
  covers) the clocks, sentences and generated tokens;
- at exit: peak resident memory of the process (VmHWM) and, on CUDA, peak allocated memory.

STATS.json is written when the command ends (also when it fails: ``"exit"`` says how).
"""
import importlib.util
import json
import os
import resource
import sys
import time
from pathlib import Path


def _clocks() -> dict:
    return {"wall": time.perf_counter(), "cpu": time.process_time()}


def _instrument_train(records: list) -> None:
    from fairseq.trainer import Trainer

    original = Trainer.train_step

    def train_step(self, samples, *args, **kwargs):
        out = original(self, samples, *args, **kwargs)
        ntokens = sum(int(s.get("ntokens", 0)) for s in samples if s)
        loss = out.get("loss") if isinstance(out, dict) else None
        records.append({**_clocks(), "ntokens": ntokens,
                        "loss": None if loss is None else float(loss),
                        "num_updates": self.get_num_updates()})
        return out

    Trainer.train_step = train_step


def _instrument_generate(records: list) -> None:
    from fairseq import tasks

    original_setup = tasks.setup_task

    def setup_task(cfg, **kwargs):
        task = original_setup(cfg, **kwargs)
        inference_step = task.inference_step

        def timed_inference_step(generator, models, sample, *args, **kw):
            start = _clocks()
            hypos = inference_step(generator, models, sample, *args, **kw)
            end = _clocks()
            records.append({
                "wall": end["wall"] - start["wall"], "cpu": end["cpu"] - start["cpu"],
                "nsentences": len(hypos), "ntokens": sum(len(h[0]["tokens"]) for h in hypos),
            })
            return hypos

        task.inference_step = timed_inference_step
        return task

    tasks.setup_task = setup_task


def _peak_rss_mb() -> float:
    """High-water mark of this process's resident memory.

    VmHWM belongs to the current address space, so it starts afresh at exec; getrusage's
    ru_maxrss does not (a child would report at least its parent's size at fork)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # other systems


def _peak_memory() -> dict:
    peak = {"peak_rss_mb": _peak_rss_mb()}
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            peak["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    except Exception:  # noqa: BLE001 - memory figures are best effort, never fail the run
        pass
    return peak


def _load_plugin_module(name: str) -> None:
    """Execute one self-contained module of fairseq_ext (not the plugin package around it, which
    would register our components in the stock runs)."""
    path = Path(__file__).resolve().parents[1] / "fairseq_ext" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[0] not in ("train", "generate") or argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    mode, stats_path, fairseq_args = argv[0], argv[1], argv[3:]
    records: list = []
    _load_plugin_module("checkpoint_safety")  # torch>=2.6 refuses fairseq checkpoints otherwise
    _load_plugin_module("loader_shutdown")  # stock runs stopped by --max-update abort at exit otherwise
    if mode == "train":
        from fairseq_cli.train import cli_main

        _instrument_train(records)
    else:
        from fairseq_cli.generate import cli_main

        _instrument_generate(records)
    sys.argv = [f"fairseq-{mode}", *fairseq_args]
    status = "ok"
    try:
        cli_main()
    except SystemExit as exc:  # argparse errors and fairseq's own exits
        status = f"exit {exc.code}"
        raise
    except BaseException as exc:
        status = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        tmp = f"{stats_path}.tmp"
        with open(tmp, "w") as f:
            json.dump({"mode": mode, "exit": status, "records": records, **_peak_memory()}, f)
        os.replace(tmp, stats_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
