"""What the benchmarks measure and how: the configurations, their fairseq command lines, one
timed fairseq process, and the rates taken from its records.

Shared by the harness (:mod:`nmt_suite.bench.harness`) and the loss-curve comparison
(:mod:`nmt_suite.bench.curves`). Every configuration is a real ``fairseq-train`` /
``fairseq-generate`` process run through :mod:`nmt_suite.bench.fairseq_run`, which only adds clocks.
"""
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nmt_suite.plugin import PLUGIN_DIR
from nmt_suite.prep.sources import SHARED_DATA

REPO = Path(__file__).resolve().parents[2]

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


# ----------------------------------------------------------------------------- arguments
def model_args(model: str, ours: bool) -> list:
    arch, embed, ffn, heads, layers, dropout = MODELS[model]
    if ours:
        return ["--user-dir", PLUGIN_DIR, "--task", "translation_ext", "--arch", arch]
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
        args += ["--user-dir", PLUGIN_DIR, "--task", "translation_ext"]
    return [str(a) for a in override(args, config.extra)]


# ----------------------------------------------------------------------------- running
class RunFailed(RuntimeError):
    pass


def run_fairseq(mode: str, args: list, work: Path, tag: str, threads: int) -> dict:
    """Run ``nmt_suite.bench.fairseq_run`` and return its stats (records, peak memory) plus its stdout."""
    stats = work / f"{tag}.stats.json"
    log = work / f"{tag}.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "PYTHONUNBUFFERED": "1"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "nmt_suite.bench.fairseq_run", mode, str(stats), "--", *args]
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


def median(values):
    return statistics.median(values) if values else None


def rotated(names: list, repeat: int) -> list:
    k = repeat % len(names)
    return names[k:] + names[:k]


def resolve_data(opts, work: Path):
    """(corpus name, binarized corpus) of ``--data-bin`` or ``--corpus``."""
    if opts.data_bin:
        if not (opts.data_bin / "dict.en.txt").exists():
            raise SystemExit(f"--data-bin {opts.data_bin}: no dict.en.txt (not a fairseq-preprocess output)")
        return "custom", opts.data_bin
    from nmt_suite.bench.corpus import benchmark_corpus

    return benchmark_corpus(opts.corpus, work / "corpora", SHARED_DATA, opts.gen_sentences)
