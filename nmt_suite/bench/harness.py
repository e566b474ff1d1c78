"""Benchmark harness: stock fairseq vs fairseq_ext, measured side by side in one process tree.

    python -m nmt_suite.bench [--corpus auto] [--model strong] [--repeats 3] [--out DIR] ...
    python -m nmt_suite.bench --curves [--curve-updates 300] ...       # loss curves fp32 vs bf16

Every configuration (:mod:`nmt_suite.bench.measure`) is a real ``fairseq-train`` /
``fairseq-generate`` process (run through :mod:`nmt_suite.bench.fairseq_run`, which only adds
clocks). Configurations are interleaved, repeat by repeat, with the order rotated each repeat,
so that the load of a shared machine hits all of them alike; every ratio is taken within a
repeat and the median over repeats is reported. The first ``--warmup-updates`` updates (and the first
generated batch) of every process are excluded.

Output: one JSON line on stdout, then a Markdown table; both also written to ``--out``.
"""
import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from nmt_suite.bench.curves import run_curves
from nmt_suite.bench.measure import (Config, MODELS, generate_args, generate_configs, generate_rates,
                                     median, resolve_data, rotated, run_fairseq, train_args,
                                     train_configs, train_rates)
from nmt_suite.device import DeviceError, add_device_option, resolve_device
from nmt_suite.fairseq_output import parse_hypotheses
from nmt_suite.files import atomic_write_text

DEFAULT_TRAIN = {"cpu": ["stock_fp32", "ours_fp32", "ours_bf16", "ours_fast", "ours_fast_nognorm"],
                 "cuda": ["stock_fp32", "stock_amp", "stock_bf16", "ours_fp32", "ours_bf16", "ours_fast",
                          "ours_fast_nognorm"]}
DEFAULT_GENERATE = {"cpu": ["stock", "ours_bf16"], "cuda": ["stock", "stock_fp16", "ours_bf16"]}
GNORM_PAIR = ("ours_fast_nognorm", "ours_fast")  # (without, with) the tracker



# ----------------------------------------------------------------------------- sections
def bench_training(opts, data: Path, work: Path, names: list, progress) -> tuple:
    configs = train_configs(opts.device)
    updates = opts.warmup_updates + opts.measure_updates + 1
    runs = {n: [] for n in names}
    checkpoint = None
    for rep in range(opts.repeats):
        for name in rotated(names, rep):
            save_dir = None
            if name == "stock_fp32" and rep == 0 and opts.gen_checkpoint is None:
                save_dir = work / "stock_checkpoint"
            args = train_args(opts, configs[name], data, updates, save_dir=save_dir)
            result = run_fairseq("train", args, work, f"train-{name}-r{rep}", opts.threads)
            rates = train_rates(result["records"], opts.warmup_updates)
            rates.update({k: result.get(k) for k in ("peak_rss_mb", "peak_cuda_mb") if k in result})
            runs[name].append(rates)
            progress.update(1)
            progress.set_postfix_str(f"{name} r{rep}: {rates['tokens_per_s']:.0f} tok/s")
            if save_dir is not None:
                checkpoint = save_dir / "checkpoint_last.pt"
    return runs, checkpoint


def summarize_training(runs: dict, configs: dict, flops_per_token: dict, peaks: dict, opts) -> dict:
    out = {}
    reference = runs.get("stock_fp32")
    for name, rs in runs.items():
        tps = [r["tokens_per_s"] for r in rs]
        dtype = "bf16" if any(o in configs[name].extra for o in ("--cpu-bf16", "--bf16")) else (
            "fp16" if "--amp" in configs[name].extra else "fp32")
        peak = peaks.get(dtype) or peaks["fp32"]
        achieved = median(tps) * flops_per_token[configs[name].ours]
        out[name] = {
            "about": configs[name].about,
            "tokens_per_s": median(tps),
            "tokens_per_s_runs": tps,
            "tokens_per_cpu_s": median([r["tokens_per_cpu_s"] for r in rs]),
            "speedup_vs_stock": None if reference is None else median(
                [r["tokens_per_s"] / ref["tokens_per_s"] for r, ref in zip(rs, reference)]),
            "matmul_dtype": dtype,
            "achieved_tflops": achieved / 1e12,
            "mfu": achieved / peak,
            "peak_rss_mb": median([r["peak_rss_mb"] for r in rs]),
            "peak_cuda_mb": median([r["peak_cuda_mb"] for r in rs if r.get("peak_cuda_mb")]),
            "args": " ".join(configs[name].extra),
        }
    return out


def bench_generation(opts, data: Path, work: Path, checkpoint: Path, names: list, progress) -> dict:
    configs = generate_configs(opts.device)
    runs = {n: [] for n in names}
    hyps = {}
    for rep in range(opts.repeats):
        for name in rotated(names, rep):
            args = generate_args(opts, configs[name], data, checkpoint)
            result = run_fairseq("generate", args, work, f"generate-{name}-r{rep}", opts.threads)
            rates = generate_rates(result["records"])
            rates.update({k: result.get(k) for k in ("peak_rss_mb", "peak_cuda_mb") if k in result})
            runs[name].append(rates)
            hyps.setdefault(name, parse_hypotheses(result["stdout"].splitlines(),
                                                   source=f"fairseq-generate {name} (stdout)"))
            progress.update(1)
            progress.set_postfix_str(f"generate {name} r{rep}: {rates['sentences_per_s']:.1f} sent/s")
    out = {}
    reference = runs.get("stock")
    for name, rs in runs.items():
        same = [hyps[name].get(i) == h for i, h in hyps.get("stock", {}).items()]
        out[name] = {
            "about": configs[name].about,
            "sentences_per_s": median([r["sentences_per_s"] for r in rs]),
            "tokens_per_s": median([r["tokens_per_s"] for r in rs]),
            "tokens_per_s_runs": [r["tokens_per_s"] for r in rs],
            "speedup_vs_stock": None if reference is None else median(
                [r["tokens_per_s"] / ref["tokens_per_s"] for r, ref in zip(rs, reference)]),
            "sentences_per_s_speedup_vs_stock": None if reference is None else median(
                [r["sentences_per_s"] / ref["sentences_per_s"] for r, ref in zip(rs, reference)]),
            "identical_hypotheses_pct": 100.0 * sum(same) / len(same) if same else None,
            "sentences_total": rs[0]["sentences_total"],
            "generated_tokens": rs[0]["tokens_total"],
            "peak_rss_mb": median([r["peak_rss_mb"] for r in rs]),
            "peak_cuda_mb": median([r["peak_cuda_mb"] for r in rs if r.get("peak_cuda_mb")]),
            "args": " ".join(configs[name].extra),
        }
    return out


# ----------------------------------------------------------------------------- report
def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"### Training ({result['model']} model, {result['corpus']}, {result['device_name']}, "
        f"{s['threads'] or 'default'} threads, max-tokens {s['max_tokens']}, "
        f"median of {s['repeats']} interleaved repeats x {s['measure_updates']} updates)",
        "",
        "| config | tokens/s | x stock | tokens/CPU-s | TFLOP/s | MFU | peak RSS MB | options |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in result["train"].items():
        lines.append(
            f"| {name} | {r['tokens_per_s']:.0f} | {_fmt(r['speedup_vs_stock'], '.2f')} | "
            f"{r['tokens_per_cpu_s']:.0f} | {r['achieved_tflops']:.3f} | {100 * r['mfu']:.1f}% "
            f"({r['matmul_dtype']}) | {r['peak_rss_mb']:.0f} | {r['args'] or '-'} |")
    peaks = ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in result["peak_flops"].items())
    lines += ["", f"Matmul peak measured here: {peaks}; model: "
              f"{result['flops_per_token'] / 1e6:.1f} MFLOP per target token (fwd+bwd).",
              f"gnorm tracker overhead: {_fmt(result['gnorm_overhead_pct'], '.1f')}% "
              f"({GNORM_PAIR[1]} vs {GNORM_PAIR[0]})."]
    if result["generate"]:
        lines += ["", f"### Generation (beam {s['beam']}, {result['generate_sentences']} sentences, "
                  f"checkpoint {result['generate_checkpoint']})", "",
                  "| config | sentences/s | tokens/s | x stock (tokens/s) | same hyps as stock | "
                  "peak RSS MB | options |", "|---|---:|---:|---:|---:|---:|---|"]
        for name, r in result["generate"].items():
            lines.append(
                f"| {name} | {r['sentences_per_s']:.1f} | {r['tokens_per_s']:.0f} | "
                f"{_fmt(r['speedup_vs_stock'], '.2f')} | {_fmt(r['identical_hypotheses_pct'], '.0f')}% | "
                f"{r['peak_rss_mb']:.0f} | {r['args'] or '-'} |")
    lines += ["", "Targets: " + ", ".join(f"{k}: {v}" for k, v in result["targets"].items())]
    return "\n".join(lines) + "\n"


def _fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m nmt_suite.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="auto", choices=["auto", "ted-lowres", "generated"],
                   help="auto: ted-lowres when the shared data exists, else a generated corpus")
    p.add_argument("--data-bin", type=Path, help="use this binarized en-zh corpus instead")
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "fairseq_ext_bench",
                   help="cache of binarized corpora and per-run logs")
    p.add_argument("--out", type=Path, help="write results.json and results.md here")
    p.add_argument("--model", default="strong", choices=sorted(MODELS))
    add_device_option(p)
    p.add_argument("--threads", type=int, default=0, help="OMP/MKL threads per run (0: torch default)")
    p.add_argument("--train-configs", help="comma-separated; 'list' prints them all "
                   f"(default cpu: {','.join(DEFAULT_TRAIN['cpu'])}; cuda: {','.join(DEFAULT_TRAIN['cuda'])})")
    p.add_argument("--generate-configs", help="comma-separated, or 'none' (default cpu: "
                   f"{','.join(DEFAULT_GENERATE['cpu'])}; cuda: {','.join(DEFAULT_GENERATE['cuda'])})")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup-updates", type=int, default=2, help="updates excluded from timing")
    p.add_argument("--measure-updates", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=4096)
    p.add_argument("--lr", default="0.002")
    p.add_argument("--warmup-lr-updates", type=int, default=4000, help="--warmup-updates of the lr schedule")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log-interval", type=int, default=100)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--gen-batch-size", type=int, default=50)
    p.add_argument("--gen-sentences", type=int, default=400, help="test sentences to translate")
    p.add_argument("--gen-checkpoint", type=Path,
                   help="checkpoint for the generation benchmark (default: the stock training run's)")
    p.add_argument("--flop-batches", type=int, default=1, help="batches the FLOP count runs on")
    p.add_argument("--peak-seconds", type=float, default=0.5, help="length of each matmul-peak timing")
    p.add_argument("--curves", action="store_true", help="run the loss-curve comparison instead")
    p.add_argument("--curve-updates", type=int, default=300)
    p.add_argument("--curve-configs", default="ours_fp32,ours_fast")
    p.add_argument("--curve-seeds", default="1,2")
    p.add_argument("--curve-smooth", type=int, default=20, help="moving-average window (updates)")
    opts = p.parse_args(argv)
    # the fairseq runs start in their work directory (see run_fairseq): paths must not be relative
    for name in ("data_bin", "work_dir", "out", "gen_checkpoint"):
        if getattr(opts, name) is not None:
            setattr(opts, name, getattr(opts, name).resolve())
    try:
        opts.device = resolve_device(opts.device)
    except DeviceError as err:
        p.error(str(err))
    opts.train_configs = opts.train_configs or ",".join(DEFAULT_TRAIN[opts.device])
    opts.generate_configs = opts.generate_configs or ",".join(DEFAULT_GENERATE[opts.device])
    return opts


def environment(opts) -> dict:
    import fairseq
    import torch

    if opts.device == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        name += f" ({os.cpu_count()} logical CPUs)"
    return {"device": opts.device, "device_name": name, "torch": torch.__version__,
            "fairseq": fairseq.__version__, "python": platform.python_version()}


def main(argv=None) -> int:
    opts = parse_args(argv)
    if opts.train_configs == "list":
        for c in train_configs(opts.device).values():
            print(f"{c.name:24s} {c.about}  [{' '.join(c.extra)}]")
        return 0
    if opts.curves:
        return run_curves(opts)
    import torch

    if opts.threads:
        torch.set_num_threads(opts.threads)
    work = opts.work_dir
    work.mkdir(parents=True, exist_ok=True)
    corpus, data = resolve_data(opts, work)
    runs_dir = Path(tempfile.mkdtemp(prefix="runs-", dir=work))
    tconfigs = train_configs(opts.device)
    train_names = [n for n in opts.train_configs.split(",") if n]
    unknown = [n for n in train_names if n not in tconfigs]
    gen_names = [] if opts.generate_configs == "none" else opts.generate_configs.split(",")
    unknown += [n for n in gen_names if n not in generate_configs(opts.device)]
    if unknown:
        raise SystemExit(f"unknown config(s) {unknown}; see --train-configs list")
    if "stock_fp32" not in train_names:
        train_names.insert(0, "stock_fp32")  # the reference of every ratio

    from nmt_suite.bench.flops import matmul_peak, training_flops_per_token

    total = opts.repeats * (len(train_names) + len(gen_names))
    progress = tqdm(total=total, desc="bench", disable=not sys.stderr.isatty())
    dtypes = ("fp32", "bf16", "fp16") if opts.device == "cuda" else ("fp32", "bf16")
    peaks = {dtype: matmul_peak(opts.device, dtype, min_seconds=opts.peak_seconds) for dtype in dtypes}
    train_runs, checkpoint = bench_training(opts, data, runs_dir, train_names, progress)
    flops = {ours: training_flops_per_token(train_args(opts, Config("flops", ours), data, 1), opts.flop_batches)
             for ours in (False, True)}
    peaks = {dtype: max(peaks[dtype], matmul_peak(opts.device, dtype, min_seconds=opts.peak_seconds))
             for dtype in peaks}  # measured before and after the runs: the best of both
    train = summarize_training(train_runs, tconfigs, flops, peaks, opts)
    checkpoint = opts.gen_checkpoint or checkpoint
    generate = bench_generation(opts, data, runs_dir, checkpoint, gen_names, progress) if gen_names else {}
    progress.close()

    gnorm = None
    if all(n in train_runs for n in GNORM_PAIR):
        without, with_ = (train_runs[n] for n in GNORM_PAIR)
        gnorm = median([100.0 * (a["tokens_per_s"] / b["tokens_per_s"] - 1) for a, b in zip(without, with_)])
    fastest = max((r["speedup_vs_stock"] or 0, n) for n, r in train.items() if n.startswith("ours"))
    gen_best = max(((r["speedup_vs_stock"] or 0) for n, r in generate.items() if n.startswith("ours")),
                   default=None)
    result = {
        "bench": "fairseq_ext", **environment(opts), "corpus": corpus, "data_bin": str(data),
        "model": opts.model,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
        "peak_flops": peaks,
        "flops_per_token": flops[True],
        "flops_per_token_stock": flops[False],
        "train": train,
        "gnorm_overhead_pct": gnorm,
        "generate": generate,
        "generate_checkpoint": str(checkpoint) if gen_names else None,
        "generate_sentences": max((r["sentences_total"] for r in generate.values()), default=0),
        "targets": {
            "best_training_speedup": fastest[0], "best_training_config": fastest[1],
            "training_speedup_ge_1.5": fastest[0] >= 1.5,
            "gnorm_overhead_le_2pct": None if gnorm is None else gnorm <= 2.0,
            "generation_ge_stock": None if gen_best is None else gen_best >= 1.0,
        },
        "runs_dir": str(runs_dir),
    }
    line = json.dumps(result, sort_keys=False)
    table = markdown(result)
    print(line)
    print()
    print(table, end="")
    if opts.out:
        opts.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(opts.out / "results.json", json.dumps(result, indent=1) + "\n")
        atomic_write_text(opts.out / "results.md", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
