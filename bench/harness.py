"""Benchmark harness: stock fairseq vs fairseq_ext, measured side by side in one process tree.

    python -m bench [--corpus auto] [--model strong] [--repeats 3] [--out DIR] ...
    python -m bench --curves [--curve-updates 300] ...       # loss curves fp32 vs bf16

Every configuration is a real ``fairseq-train`` / ``fairseq-generate`` process (run
through :mod:`bench.fairseq_run`, which only adds clocks). Configurations are
interleaved, repeat by repeat, with the order rotated each repeat, so that the load of
a shared machine hits all of them alike; every ratio is taken within a repeat and the
median over repeats is reported. The first ``--warmup-updates`` updates (and the first
generated batch) of every process are excluded.

Output: one JSON line on stdout, then a Markdown table; both also written to ``--out``.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
USER_DIR = REPO / "fairseq_ext"
SHARED_DATA = REPO.parent / "shared" / "data"

# (our arch, embed, ffn, heads, layers, dropout); the stock `transformer` gets
# the same numbers spelled out as fairseq options.
MODELS = {
    "strong": ("transformer_prenorm", 256, 1024, 4, 6, 0.3),
    "tiny": ("transformer_prenorm_tiny", 128, 512, 4, 2, 0.1),
}

# The options that make up "our fast configuration" (each one is also its own config below).
FAST_OPTIONS = ["--cpu-bf16", "--optimizer", "fused_adam",
                "--criterion", "label_smoothed_cross_entropy_fused", "--fast-dropout"]


@dataclass
class Config:
    name: str
    ours: bool  # --user-dir fairseq_ext --task translation_ext --arch <ours>; else stock fairseq
    extra: list = field(default_factory=list)
    about: str = ""


def train_configs(device: str) -> dict:
    """Training configurations by name; ``stock_fp32`` is the reference of every ratio."""
    configs = [
        Config("stock_fp32", False, [], "stock fairseq `transformer`, same hyper-parameters"),
        Config("ours_fp32", True, [], "transformer_prenorm, translation_ext (gnorm tracker on)"),
        Config("ours_fp32_nognorm", True, ["--no-gnorm-log"], "ours_fp32 without the tracker"),
        Config("ours_bf16", True, ["--cpu-bf16"], "+ bf16 autocast"),
        Config("ours_fp32_fused_adam", True, ["--optimizer", "fused_adam"], "fp32 + fused Adam"),
        Config("ours_fp32_fused_ce", True, ["--criterion", "label_smoothed_cross_entropy_fused"],
               "fp32 + fused label-smoothed CE"),
        Config("ours_fp32_fast_dropout", True, ["--fast-dropout"], "fp32 + fast dropout"),
        Config("ours_bf16_fused_adam", True, ["--cpu-bf16", "--optimizer", "fused_adam"],
               "bf16 + fused Adam"),
        Config("ours_bf16_fused_ce", True, ["--cpu-bf16", "--criterion", "label_smoothed_cross_entropy_fused"],
               "bf16 + fused label-smoothed CE"),
        Config("ours_bf16_fast_dropout", True, ["--cpu-bf16", "--fast-dropout"], "bf16 + fast dropout"),
        Config("ours_fast", True, list(FAST_OPTIONS), "all fast options: " + " ".join(FAST_OPTIONS)),
        Config("ours_fast_nognorm", True, FAST_OPTIONS + ["--no-gnorm-log"],
               "ours_fast without the tracker"),
    ]
    if device == "cuda":
        configs[1:1] = [
            Config("stock_amp", False, ["--amp"], "stock fairseq, fp16 AMP"),
            Config("stock_bf16", False, ["--bf16"], "stock fairseq, pure bf16 (fp32 master)"),
        ]
    return {c.name: c for c in configs}


def generate_configs(device: str = "cpu") -> dict:
    configs = [
        Config("stock", False, [], "stock fairseq-generate"),
        Config("ours_fp32", True, [], "translation_ext"),
        Config("ours_bf16", True, ["--cpu-bf16"], "translation_ext --cpu-bf16"),
    ]
    if device == "cuda":
        configs.insert(1, Config("stock_fp16", False, ["--fp16"], "stock fairseq-generate --fp16"))
    return {c.name: c for c in configs}


DEFAULT_TRAIN = {"cpu": ["stock_fp32", "ours_fp32", "ours_bf16", "ours_fast", "ours_fast_nognorm"],
                 "cuda": ["stock_fp32", "stock_amp", "stock_bf16", "ours_fp32", "ours_bf16", "ours_fast",
                          "ours_fast_nognorm"]}
DEFAULT_GENERATE = {"cpu": ["stock", "ours_bf16"], "cuda": ["stock", "stock_fp16", "ours_bf16"]}
GNORM_PAIR = ("ours_fast_nognorm", "ours_fast")  # (without, with) the tracker


# ----------------------------------------------------------------------------- arguments
def model_args(model: str, ours: bool) -> list:
    arch, embed, ffn, heads, layers, dropout = MODELS[model]
    if ours:
        return ["--user-dir", USER_DIR, "--task", "translation_ext", "--arch", arch]
    shape = []
    for side in ("encoder", "decoder"):
        shape += [f"--{side}-embed-dim", embed, f"--{side}-ffn-embed-dim", ffn,
                  f"--{side}-attention-heads", heads, f"--{side}-layers", layers,
                  f"--{side}-normalize-before"]
    return ["--task", "translation", "--arch", "transformer", *shape,
            "--share-decoder-input-output-embed", "--dropout", dropout, "--activation-fn", "relu"]


def hparams(opts) -> list:
    """The strong rung's training settings (configs/strong.yaml), without stopping criteria."""
    return [
        "--source-lang", "en", "--target-lang", "zh",
        "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--lr", opts.lr,
        "--lr-scheduler", "inverse_sqrt", "--warmup-updates", opts.warmup_lr_updates,
        "--warmup-init-lr", "1e-07", "--clip-norm", "1.0",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
        "--max-tokens", opts.max_tokens, "--seed", opts.seed,
    ]


def device_args(device: str) -> list:
    return ["--cpu"] if device == "cpu" else []


def train_args(opts, config: Config, data: Path, updates: int, save_dir=None, seed=None) -> list:
    args = [data, *model_args(opts.model, config.ours), *hparams(opts), *device_args(opts.device),
            "--max-update", updates, "--disable-validation", "--log-format", "json",
            "--log-interval", opts.log_interval, "--no-progress-bar"]
    if save_dir is None:
        args += ["--no-save"]
    else:
        args += ["--save-dir", save_dir, "--no-epoch-checkpoints"]
    args = override(args, config.extra)
    if seed is not None:
        args = override(args, ["--seed", seed])
    return [str(a) for a in args]


def override(args: list, extra: list) -> list:
    """*args* with each option of *extra* replacing the same option (and its value) in *args*."""
    args = [str(a) for a in args]
    extra = [str(a) for a in extra]
    i = 0
    while i < len(extra):
        opt = extra[i]
        has_value = i + 1 < len(extra) and not extra[i + 1].startswith("--")
        value = [extra[i + 1]] if has_value else []
        if opt in args:
            j = args.index(opt)
            old_has_value = j + 1 < len(args) and not args[j + 1].startswith("--")
            args[j:j + 1 + old_has_value] = [opt, *value]
        else:
            args += [opt, *value]
        i += 1 + has_value
    return args


def generate_args(opts, config: Config, data: Path, checkpoint: Path) -> list:
    args = [data, "--path", checkpoint, "--gen-subset", "test", "--source-lang", "en",
            "--target-lang", "zh", "--beam", opts.beam, "--lenpen", "1.0", "--max-len-a", "1.2",
            "--max-len-b", "10", "--batch-size", opts.gen_batch_size, *device_args(opts.device),
            # fairseq main drops a last batch smaller than this multiple (default 8)
            "--required-batch-size-multiple", "1"]
    if config.ours:
        args += ["--user-dir", USER_DIR, "--task", "translation_ext"]
    return [str(a) for a in override(args, config.extra)]


# ----------------------------------------------------------------------------- running
class RunFailed(RuntimeError):
    pass


def run_fairseq(mode: str, args: list, work: Path, tag: str, threads: int) -> dict:
    """Run ``bench.fairseq_run`` and return its stats (records, peak memory) plus its stdout."""
    stats = work / f"{tag}.stats.json"
    log = work / f"{tag}.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "PYTHONUNBUFFERED": "1"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "bench.fairseq_run", mode, str(stats), "--", *args]
    with open(log, "w") as out:
        # cwd: what a run writes relative to it (our gnorm log under --no-save) stays in its work dir
        proc = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=out, text=True)
    if proc.returncode != 0 or not stats.exists():
        tail = log.read_text(errors="replace")[-3000:]
        raise RunFailed(f"{tag}: {' '.join(cmd)}\nexited {proc.returncode}; log {log}:\n{tail}")
    result = json.loads(stats.read_text())
    result["stdout"] = proc.stdout
    return result


def train_rates(records: list, warmup: int) -> dict:
    """Tokens per wall second and per CPU second over the updates after *warmup*."""
    if len(records) < warmup + 2:
        raise RunFailed(f"only {len(records)} updates recorded; need more than warm-up {warmup} + 1")
    first, measured = records[warmup], records[warmup + 1:]
    tokens = sum(r["ntokens"] for r in measured)
    return {"tokens_per_s": tokens / (measured[-1]["wall"] - first["wall"]),
            "tokens_per_cpu_s": tokens / (measured[-1]["cpu"] - first["cpu"]),
            "updates": len(measured), "tokens": tokens}


def generate_rates(records: list) -> dict:
    measured = records[1:] if len(records) > 1 else records  # first batch: warm-up
    wall = sum(r["wall"] for r in measured)
    sentences = sum(r["nsentences"] for r in measured)
    tokens = sum(r["ntokens"] for r in measured)
    return {"sentences_per_s": sentences / wall, "tokens_per_s": tokens / wall,
            "tokens_per_cpu_s": tokens / sum(r["cpu"] for r in measured),
            "batches": len(measured), "sentences_total": sum(r["nsentences"] for r in records),
            "tokens_total": sum(r["ntokens"] for r in records)}


def hypotheses(stdout: str) -> dict:
    hyps = {}
    for line in stdout.splitlines():
        if line.startswith("H-"):
            parts = line.split("\t")
            hyps[int(parts[0][2:])] = parts[2] if len(parts) > 2 else ""
    return hyps


def median(values):
    return statistics.median(values) if values else None


def rotated(names: list, repeat: int) -> list:
    k = repeat % len(names)
    return names[k:] + names[:k]


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
            hyps.setdefault(name, hypotheses(result["stdout"]))
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


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="auto", choices=["auto", "ted-lowres", "generated"],
                   help="auto: ted-lowres when the shared data exists, else a generated corpus")
    p.add_argument("--data-bin", type=Path, help="use this binarized en-zh corpus instead")
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "fairseq_ext_bench",
                   help="cache of binarized corpora and per-run logs")
    p.add_argument("--out", type=Path, help="write results.json and results.md here")
    p.add_argument("--model", default="strong", choices=sorted(MODELS))
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
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
    if opts.device == "auto":
        import torch

        opts.device = "cuda" if torch.cuda.is_available() else "cpu"
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


def resolve_data(opts, work: Path):
    if opts.data_bin:
        if not (opts.data_bin / "dict.en.txt").exists():
            raise SystemExit(f"--data-bin {opts.data_bin}: no dict.en.txt (not a fairseq-preprocess output)")
        return "custom", opts.data_bin
    from bench.corpus import benchmark_corpus

    return benchmark_corpus(opts.corpus, work / "corpora", SHARED_DATA, opts.gen_sentences)


def main(argv=None) -> int:
    opts = parse_args(argv)
    if opts.train_configs == "list":
        for c in train_configs(opts.device).values():
            print(f"{c.name:24s} {c.about}  [{' '.join(c.extra)}]")
        return 0
    if opts.curves:
        from bench.curves import run_curves

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

    from bench.flops import matmul_peak, training_flops_per_token

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
        write_atomic(opts.out / "results.json", json.dumps(result, indent=1) + "\n")
        write_atomic(opts.out / "results.md", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
