"""An IsoFLOP study of a corpus: every (budget, size) point trained as a resumable run, then fitted and plotted.

    python scripts/isoflop.py --corpus ted-lowres              # the default grid (nmt_suite.isoflop.grid)
    python scripts/isoflop.py --corpus demo --quick            # the tiny built-in grid (15 small runs)

Each point is a rung run (configs/strong.yaml with the point's size and ``train.budget_flops``)
in ``runs/<corpus>/isoflop/<budget>/<size>/``: interrupted, it resumes; finished (its
``point.json`` holds the key of its settings, or the ``isoflop.json`` already in ``--out``
records a point with that key, as a committed study does), it is skipped. The point is evaluated on valid
only: fairseq's last validation loss (``nll_loss``, bits per target token, of the final
weights) is what the fits use; valid BLEU (greedy) is reported beside it. Then
``isoflop.json`` (points, fits), ``isoflop.png``, ``scaling.png`` and the page that reads them,
``isoflop.md`` (nmt_suite.isoflop.report), go into ``--out``
(default ``runs/<corpus>/isoflop/``).
"""
import argparse
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from nmt_suite.files import atomic_write_json, atomic_write_lines, read_json
from nmt_suite.isoflop import fits
from nmt_suite.isoflop.grid import GRIDS, Grid, budget_name, override_value, size_family
from nmt_suite.rungs import config as config_mod
from nmt_suite.rungs.config import ConfigError, load_config
from nmt_suite.rungs.run import Pipeline, PipelineError
from nmt_suite.rungs.stages import StageFailed, run_lock
from nmt_suite.stage_cache import stage_key

POINT_FILE = "point.json"
LOSS_UNIT = "bits per target token (fairseq's valid nll_loss, final weights)"


class PointRun(Pipeline):
    """One point: a rung run that stops after scoring valid (no test, no plots, no results.json)."""

    def stages(self) -> list:
        return [self.prepare, self.train, self.average, lambda: self.generate(("valid",))]

    def valid_bleu(self) -> float:
        import sentencepiece as spm

        from nmt_suite.fairseq_output import read_hypotheses
        from nmt_suite.rungs.evaluate import in_source_order, read_lines, score

        sp = spm.SentencePieceProcessor(model_file=str(self.data / "spm" / "spm.model"))
        refs = read_lines(self.data / "ref" / "valid.zh")
        hyps, _ = in_source_order(read_hypotheses(self.run_dir / "generate-valid.txt"), len(refs), sp)
        atomic_write_lines(self.run_dir / "hyp.valid.zh", hyps)
        return score(hyps, refs)["bleu"]

    def point(self, budget: float, size) -> dict:
        """Run the stages, then the point's record."""
        from nmt_suite.analysis.curves import last_validation
        from nmt_suite.rungs.results import train_log_stats

        start = time.time()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stage in self.stages():
            stage()
        valid = last_validation(self.run_dir / "train.log")
        if "nll_loss" not in valid:
            raise PipelineError(f"{self.run_dir / 'train.log'}: no validation loss; did training run?")
        compute = self.trained_compute(train_log_stats(self.run_dir / "train.log")["tokens"])
        return {
            "budget_flops": budget, "size": size.name, "width": size.width, "layers": size.layers,
            "heads": size.heads, "lr": size.lr, "params": self.compute["params"],
            "flops_per_token": compute["flops_per_token"], "tokens": compute["train_tokens"],
            "train_flops": compute["train_flops"], "updates": int(valid["num_updates"]),
            "valid_loss": valid["nll_loss"], "valid_bleu": self.valid_bleu(),
            "train_wall_s": (self.records.read("train") or {}).get("wall_s"),
            "wall_s": round(time.time() - start, 1), "run_dir": str(self.run_dir),
        }


def point_config(grid: Grid, corpus: str, budget: float, size, seed: int, config_dir: Path, device=None) -> dict:
    overrides = [f"{key}={override_value(value)}" for key, value in grid.settings]
    overrides += [f"train.{key}={override_value(value)}" for key, value in size.train_overrides().items()]
    overrides += [f"train.budget_flops={budget!r}", f"train.seed={seed}"]
    if device:
        overrides.append(f"device={device}")
    cfg = load_config(grid.rung, corpus, overrides, config_dir)
    cfg["rung"] = f"isoflop-{budget_name(budget)}-{size.name}"
    return cfg


def run_points(grid: Grid, corpus: str, study_dir: Path, data_dir: Path, seed: int, config_dir: Path,
               device=None, dry_run=False, recorded=(), jobs: int = 1) -> list:
    """Every point of the grid (trained or read back), in grid order, each with its settings' ``key``.

    ``recorded``: points of an earlier ``isoflop.json``; one whose key matches is taken as it is
    (so a study whose runs are gone, e.g. a committed one, grows by the points it lacks). ``jobs``:
    how many points train side by side (their budgets are FLOPs, so this changes their wall time only)."""
    from tqdm import tqdm

    runs = []
    for budget, size in grid.points():
        cfg = point_config(grid, corpus, budget, size, seed, config_dir, device)
        run = PointRun(cfg, data_dir, study_dir.parent.parent, run_dir=study_dir / budget_name(budget) / size.name)
        run.check()
        runs.append((budget, size, cfg, run))
    if dry_run:
        for budget, size, _, run in runs:
            print(f"[isoflop] {budget_name(budget)} {size.name}: {run.run_dir}")
        return []
    points, todo = {}, {}
    recorded = {p["key"]: p for p in recorded if "key" in p}
    for i, (budget, size, cfg, run) in enumerate(runs):
        key = stage_key("isoflop_point", {"config": cfg, "budget": budget})
        done = run.run_dir / POINT_FILE
        record = recorded.get(key)
        if record is None and done.exists():
            saved = read_json(done)
            record = {**saved["point"], "key": key} if saved.get("key") == key else None
        if record is not None:
            points[i] = record
            print(f"[isoflop] {budget_name(budget)} {size.name}: done already, skipped", flush=True)
        else:
            todo[i] = (budget, size, key, run)
    bar = tqdm(total=len(todo), desc="isoflop points", unit="point", disable=not sys.stderr.isatty())
    for i, point in _train_points(todo, jobs):
        budget, size, key, run = todo[i]
        atomic_write_json(run.run_dir / POINT_FILE, {"key": key, "point": point})
        print(f"[isoflop] {budget_name(budget)} {size.name}: {point['params']:,} params, {point['updates']} "
              f"updates, valid loss {point['valid_loss']:.3f}, BLEU {point['valid_bleu']}", flush=True)
        points[i] = {**point, "key": key}
        bar.update()
    bar.close()
    return [points[i] for i in range(len(runs))]


def _train_point(budget: float, size, run: PointRun, log: Path = None, threads: int = None) -> dict:
    """One point's stages under its run lock; with ``log`` (a worker of several), this process's
    output goes there (the workers' lines would interleave) and its fairseq takes ``threads``
    threads unless the environment says otherwise."""
    if threads:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, str(threads))
    if log is not None:
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
            os.dup2(out, stream.fileno())
        os.close(out)
    with run_lock(run.run_dir):
        return run.point(budget, size)


def _train_points(todo: dict, jobs: int):
    """(index, point record) of each point of ``todo`` (index -> budget, size, key, run), as they
    finish: one at a time, or in ``jobs`` worker processes side by side (each point's fairseq on
    cores // jobs threads unless its config sets them; its output in the point's ``point.log``)."""
    if jobs <= 1 or len(todo) <= 1:
        for i, (budget, size, _, run) in todo.items():
            print(f"[isoflop] {budget_name(budget)} {size.name}: training in {run.run_dir}", flush=True)
            yield i, _train_point(budget, size, run)
        return
    first = next(iter(todo.values()))[-1]  # the corpus is prepared once, before the workers share it
    first.run_dir.mkdir(parents=True, exist_ok=True)
    first.prepare()
    threads = max(1, (os.cpu_count() or 1) // jobs) if first.cfg.get("threads") is None else None
    # spawned, not forked: a fork of a process whose torch has started its thread pool can hang
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {}
        for i, (budget, size, _, run) in todo.items():
            run.run_dir.mkdir(parents=True, exist_ok=True)
            print(f"[isoflop] {budget_name(budget)} {size.name}: training in {run.run_dir} "
                  f"(output: {run.run_dir / 'point.log'})", flush=True)
            futures[pool.submit(_train_point, budget, size, run, run.run_dir / "point.log", threads)] = i
        for future in as_completed(futures):
            yield futures[future], future.result()


def fit_study(points: list, predict_at: float) -> dict:
    """The fits of ``isoflop.json`` from its points."""
    law_f = fits.flops_per_token_law([(p["params"], p["flops_per_token"]) for p in points])
    parabolas, optima = {}, []
    for budget in sorted({p["budget_flops"] for p in points}):
        at = [p for p in points if p["budget_flops"] == budget]
        fit = fits.parabola([p["params"] for p in at], [p["valid_loss"] for p in at])
        # the residuals are in the order of ``sizes``
        parabolas[budget_name(budget)] = {"budget_flops": budget, "sizes": [p["size"] for p in at], **fit}
        vertex = fit["vertex"]
        if vertex:  # the power laws use the optima inside the grid (the others are extrapolations)
            n_opt = vertex["params"]
            flops_per_token = 10 ** (law_f[0] * math.log10(n_opt) + law_f[1])
            se = vertex["log10_params_se"]
            vertex["tokens"] = budget / flops_per_token
        if vertex and vertex["inside_grid"]:
            optima.append({"budget": budget, "params": n_opt, "tokens": budget / flops_per_token,
                           "log10_params_se": se, "log10_tokens_se": None if se is None else abs(law_f[0]) * se})
    laws = fits.power_laws(optima)
    return {
        "parabolas": parabolas,
        "flops_per_token": {"exponent": law_f[0], "log10_coefficient": law_f[1]},
        "power_laws": laws,
        "prediction": ({"budget_flops": predict_at, **fits.predict(laws, predict_at)}
                       if laws.get("params") else None),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isoflop.py", description="IsoFLOP study: train a grid of model sizes at several FLOP "
        "budgets, fit a parabola of valid loss over log(params) per budget and power laws N_opt(C), D_opt(C).")
    parser.add_argument("--corpus", required=True, help="ted-lowres, demo, or a corpus prepared under --data-dir")
    parser.add_argument("--quick", action="store_true", help="the tiny built-in grid (3 budgets x 5 sizes, "
                        "for the demo corpus)")
    parser.add_argument("--budgets", help="comma-separated FLOP budgets instead of the grid's, e.g. 1e12,3e12,1e13")
    parser.add_argument("--base-width", type=int, help="width of the narrowest size instead of the grid's")
    parser.add_argument("--sizes", type=int, help="number of sizes instead of the grid's")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="points trained side by side, e.g. one per core "
                        "(default 1; the budgets are FLOPs, so the results do not depend on it)")
    parser.add_argument("--predict", type=float, help="budget (FLOPs) to predict N_opt and D_opt for "
                        "(default: 10x the largest budget)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--data-dir", type=Path, default=config_mod.REPO / "data")
    parser.add_argument("--runs-dir", type=Path, default=config_mod.REPO / "runs")
    parser.add_argument("--config-dir", type=Path, default=config_mod.CONFIG_DIR)
    parser.add_argument("--out", type=Path, help="where isoflop.json and the plots go "
                        "(default: RUNS_DIR/CORPUS/isoflop)")
    parser.add_argument("--dry-run", action="store_true", help="check every point's options, train nothing")
    return parser


def grid_from_args(args) -> Grid:
    grid = GRIDS["quick" if args.quick else "default"]
    budgets = grid.budgets
    if args.budgets:
        try:
            budgets = tuple(sorted(float(b) for b in args.budgets.split(",") if b.strip()))
        except ValueError:
            raise ConfigError(f"--budgets {args.budgets!r}: expected numbers such as 1e12,3e12,1e13") from None
    sizes = grid.sizes
    if args.base_width or args.sizes:
        base, steps = args.base_width or grid.sizes[0].width, args.sizes or len(grid.sizes)
        if base < 2 or steps < 1:
            raise ConfigError("--base-width must be >= 2 and --sizes >= 1")
        sizes = tuple(size_family(base, steps))
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    if len(budgets) < 1 or any(not (b > 0 and math.isfinite(b)) for b in budgets):
        raise ConfigError(f"--budgets: positive numbers needed, got {budgets}")
    return Grid(budgets=budgets, sizes=sizes, rung=grid.rung, settings=grid.settings)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        grid = grid_from_args(args)
        study_dir = args.runs_dir.resolve() / args.corpus / "isoflop"
        out = (args.out or study_dir).resolve()
        started = time.time()
        earlier = out / "isoflop.json"
        points = run_points(grid, args.corpus, study_dir, args.data_dir.resolve(), args.seed,
                            args.config_dir, args.device, args.dry_run,
                            recorded=read_json(earlier).get("points", []) if earlier.is_file() else (),
                            jobs=args.jobs)
        if args.dry_run:
            return 0
        if len(grid.sizes) < 3:
            raise ConfigError("a parabola per budget needs >= 3 sizes")
        study = {
            "corpus": args.corpus, "seed": args.seed, "loss": LOSS_UNIT,
            "grid": {"budgets": list(grid.budgets), "sizes": [s.name for s in grid.sizes], "rung": grid.rung,
                     "size_rule": "nmt_suite.isoflop.grid: width x2 every two steps (x1.5 on odd ones); "
                                  "1 encoder and 1 decoder layer below width 32, +1 per doubling; ffn 4 x width; "
                                  "heads of 16 dimensions",
                     "settings": {k: v for k, v in grid.settings}},
            "points": points,
            "fits": fit_study(points, args.predict or 10 * max(grid.budgets)),
            "train_wall_s": round(sum(p["train_wall_s"] or 0 for p in points), 1),
            "points_wall_s": round(sum(p["wall_s"] for p in points), 1),
            "arguments": list(sys.argv[1:] if argv is None else argv),
            "this_invocation_s": round(time.time() - started, 1),
        }
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "isoflop.json", study)
        from nmt_suite.isoflop import report
        from nmt_suite.isoflop.plots import plot_isoflop, plot_scaling

        plot_isoflop(study, out / "isoflop.png")
        plot_scaling(study, out / "scaling.png")
        report.write(study, out / report.PAGE_NAME)
    except (ConfigError, PipelineError, StageFailed, ValueError) as err:
        print(f"[isoflop] error: {err}", file=sys.stderr, flush=True)
        return 2 if isinstance(err, ConfigError) else 1
    print(summary(study))
    print(f"[isoflop] wrote {out / 'isoflop.json'}, {out / 'isoflop.png'}, {out / 'scaling.png'}, "
          f"{out / 'isoflop.md'}")
    return 0


def summary(study: dict) -> str:
    """The fits in a few lines."""
    lines = []
    for name, fit in study["fits"]["parabolas"].items():
        v = fit["vertex"]
        if v is None:
            optimum = "no optimum (the parabola opens downwards)"
        else:
            se = f" +- {v['log10_params_se']:.3f}" if v["log10_params_se"] is not None else ""
            optimum = (f"N_opt {v['params'] / 1e6:.3f}M params (log10 {v['log10_params']:.3f}{se})"
                       + ("" if v["inside_grid"] else " (outside the grid)"))
        lines.append(f"[isoflop] {name} FLOPs: {optimum}; rms residual {fit['rms_residual']:.3f}")
    laws = study["fits"]["power_laws"]
    for what, label in (("params", "N_opt"), ("tokens", "D_opt")):
        law = laws.get(what)
        if law:
            se = law["exponent_se"]
            lines.append(f"[isoflop] {label} ~ C^{law['exponent']:.3f}" + (f" +- {se:.3f}" if se is not None else ""))
    if study["fits"]["prediction"]:
        p = study["fits"]["prediction"]
        lines.append(f"[isoflop] at {p['budget_flops']:.3g} FLOPs: N_opt {p['params'] / 1e6:.2f}M params, "
                     f"D_opt {p['tokens'] / 1e6:.2f}M target tokens")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
