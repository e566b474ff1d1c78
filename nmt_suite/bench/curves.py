"""Training-loss curves of two configurations (default: fp32 vs our fast bf16 options) over
the first few hundred updates, with two seeds each, to show that bf16 stays within
run-to-run noise.

- noise: mean absolute difference between the smoothed curves of the reference
  configuration under two seeds (seed changes initialisation, dropout and batch order);
- deviation: mean absolute difference between a configuration and the reference under the
  same seed (same initialisation and batches: only the arithmetic differs);
- within_noise: deviation <= noise, for every seed.

``python -m nmt_suite.bench --curves [--curve-updates 300] ...`` writes ``curves.json`` and
``curves.png`` to ``--out`` (default: the run directory) and
prints a JSON line plus a Markdown table. Long runs also give a steadier tokens/s figure.
"""
import json
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from nmt_suite.bench.measure import median, resolve_data, run_fairseq, train_args, train_configs, train_rates
from nmt_suite.files import atomic_open, atomic_write_text


def smooth(values: list, window: int) -> list:
    """Trailing moving average (the first points average what exists so far)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def mean_abs_diff(a: list, b: list, skip: int) -> float:
    pairs = list(zip(a, b))[skip:]
    return sum(abs(x - y) for x, y in pairs) / len(pairs)


def compare(curves: dict, reference: str, window: int) -> dict:
    """Noise of *reference* across seeds and every other config's deviation from it."""
    smoothed = {c: {s: smooth(v, window) for s, v in by_seed.items()} for c, by_seed in curves.items()}
    seeds = sorted(smoothed[reference])
    noise = None
    if len(seeds) >= 2:
        noise = median([mean_abs_diff(smoothed[reference][a], smoothed[reference][b], window)
                        for i, a in enumerate(seeds) for b in seeds[i + 1:]])
    summary = {"reference": reference, "window": window, "noise": noise, "configs": {}}
    for config, by_seed in smoothed.items():
        deviations = {s: mean_abs_diff(v, smoothed[reference][s], window) for s, v in by_seed.items()}
        final = {s: sum(v[-window:]) / len(v[-window:]) for s, v in curves[config].items()}
        summary["configs"][config] = {
            "deviation_by_seed": deviations,
            "final_loss_by_seed": final,
            "within_noise": None if noise is None or config == reference
            else all(d <= noise for d in deviations.values()),
        }
    return summary


def plot(curves: dict, window: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for config, by_seed in curves.items():
        for seed, losses in sorted(by_seed.items()):
            ax.plot(range(1, len(losses) + 1), smooth(losses, window), label=f"{config} seed {seed}",
                    linestyle="-" if seed == min(by_seed) else "--")
    ax.set_xlabel("update")
    ax.set_ylabel(f"training loss (base 2, moving average of {window})")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)


def run_curves(opts) -> int:
    work = opts.work_dir
    work.mkdir(parents=True, exist_ok=True)
    corpus, data = resolve_data(opts, work)
    runs_dir = Path(tempfile.mkdtemp(prefix="curves-", dir=work))
    out = opts.out or runs_dir
    configs = train_configs(opts.device)
    names = [n for n in opts.curve_configs.split(",") if n]
    if len(names) < 2 or any(n not in configs for n in names):
        raise SystemExit(f"--curve-configs needs >= 2 of {sorted(configs)}")
    seeds = [int(s) for s in opts.curve_seeds.split(",")]
    curves = {n: {} for n in names}
    speed = {n: {} for n in names}
    progress = tqdm(total=len(names) * len(seeds), desc="curves", disable=not sys.stderr.isatty())
    for seed in seeds:
        for name in names:
            args = train_args(opts, configs[name], data, opts.curve_updates, seed=seed)
            result = run_fairseq("train", args, runs_dir, f"curve-{name}-s{seed}", opts.threads)
            records = result["records"]
            curves[name][seed] = [r["loss"] for r in records]
            speed[name][seed] = train_rates(records, opts.warmup_updates)["tokens_per_s"]
            progress.update(1)
    progress.close()
    summary = compare(curves, names[0], opts.curve_smooth)
    summary["tokens_per_s_by_seed"] = speed
    summary["speedup_vs_reference"] = {
        n: median([speed[n][s] / speed[names[0]][s] for s in seeds]) for n in names}
    result = {"bench": "fairseq_ext-curves", "corpus": corpus, "model": opts.model,
              "updates": opts.curve_updates, "max_tokens": opts.max_tokens, "seeds": seeds,
              "threads": opts.threads, "summary": summary, "curves": curves}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "curves.json", json.dumps(result) + "\n")
    plot(curves, opts.curve_smooth, out / "curves.png")
    print(json.dumps({k: v for k, v in result.items() if k != "curves"}))
    print()
    print(f"| config | seed | final loss (last {opts.curve_smooth}) | mean abs dev from "
          f"{names[0]} | tokens/s |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        c = summary["configs"][name]
        for seed in seeds:
            print(f"| {name} | {seed} | {c['final_loss_by_seed'][seed]:.3f} | "
                  f"{c['deviation_by_seed'][seed]:.4f} | {speed[name][seed]:.0f} |")
    noise = summary["noise"]
    print(f"\nrun-to-run noise of {names[0]} (seeds {seeds}): "
          f"{'n/a' if noise is None else format(noise, '.4f')}; curves: {out / 'curves.png'}")
    return 0
