"""Run stock fairseq-train / fairseq-generate with timing instruments, for the benchmark.

    python -m nmt_suite.bench.fairseq_run {train,generate} STATS.json -- <fairseq-train/generate arguments>

This is exactly the console script (``fairseq_cli.train.cli_main`` /
``fairseq_cli.generate.cli_main``), with the plugin imported first (see :func:`main` for why
that leaves the stock configurations stock), plus instruments that only observe:

- train: after every ``Trainer.train_step`` the wall and process-CPU clocks, the target
  tokens of the update and its logged loss (the interval between two consecutive updates
  therefore includes data loading, the optimizer step and logging);
- generate: around every ``task.inference_step`` (what fairseq-generate's own timer
  covers) the clocks, sentences and generated tokens;
- at exit: peak resident memory of the process (VmHWM) and, on CUDA, peak allocated memory.

STATS.json is written when the command ends (also when it fails: ``"exit"`` says how).
"""
import json
import resource
import sys
import time

from nmt_suite.files import atomic_write_text
from nmt_suite.plugin import load_plugin


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


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[0] not in ("train", "generate") or argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    mode, stats_path, fairseq_args = argv[0], argv[1], argv[3:]
    records: list = []
    # Every run, stock ones included, needs two parts of the plugin: its checkpoint allow-list
    # (torch >= 2.6 refuses to load any fairseq checkpoint without it) and its loader shutdown
    # (a stock run stopped by --max-update aborts at exit otherwise). Importing the plugin installs
    # them and registers our components under names of their own: the translation_ext task, the
    # transformer_prenorm* architectures, the rnn_seq2seq model, the fused_adam optimizer and the
    # label_smoothed_cross_entropy_fused criterion. Nothing in it patches fairseq's `translation`
    # task, `transformer` model, `adam` or `label_smoothed_cross_entropy` (bf16 autocast, fast
    # dropout and the gnorm tracker are translation_ext's mixins; the --user-dir guard only acts on
    # --user-dir), so `--task translation --arch transformer` runs the same code as the console
    # script, plus the checkpoint checks at load and atomic checkpoint copies at save.
    # The "ours" runs pass --user-dir PLUGIN_DIR, which fairseq finds already imported.
    load_plugin()
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
        atomic_write_text(stats_path, json.dumps({"mode": mode, "exit": status, "records": records,
                                                  **_peak_memory()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
