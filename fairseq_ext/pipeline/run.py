"""One rung end to end: prepare -> fairseq-train -> average -> fairseq-generate -> score -> results.json -> plots.

    python -m fairseq_ext.pipeline.run --rung strong --corpus demo [--device cpu] [--fresh] [train.lr=1e-3 ...]

(scripts/run_<rung>.sh call this.) Outputs go to ``runs/<corpus>/<rung>/`` (layout in
INTERFACES.md). Re-running skips the stages whose marker matches their settings and
lets fairseq-train resume from ``checkpoints/checkpoint_last.pt``; ``--fresh`` deletes
the run directory first. The pipeline is one process; fairseq-train itself spreads over
all GPUs of the machine with its own DDP (see docs/distributed.md for several machines).
"""
import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

import fairseq_ext
from fairseq_ext.checkpoint_safety import UnsafeCheckpointError
from fairseq_ext.pipeline import config as config_mod
from fairseq_ext.pipeline.config import ConfigError, check_name, config_hash, load_config, to_cli_args
from fairseq_ext.pipeline.stages import (
    Progress,
    StageBook,
    StageFailed,
    atomic_write_json,
    atomic_write_text,
    run_lock,
    run_logged,
)

REPO = config_mod.REPO
USER_DIR = Path(fairseq_ext.__file__).resolve().parent
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "amp", "cpu-bf16")
_MODULES = {"fairseq-train": "fairseq_cli.train", "fairseq-generate": "fairseq_cli.generate",
            "fairseq-interactive": "fairseq_cli.interactive"}


class PipelineError(RuntimeError):
    pass


def tool(name: str) -> list:
    """A fairseq console script of this interpreter's environment (``python -m`` when it has none)."""
    exe = Path(sys.executable).parent / name
    return [str(exe)] if exe.exists() else [sys.executable, "-m", _MODULES[name]]


def resolve_device(requested: str) -> str:
    import torch

    if requested not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {requested!r}")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but torch sees no CUDA device")
    return requested


def precision_options(device: str, precision: str):
    """(resolved precision, extra fairseq-train options, extra fairseq-generate options)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        precision = "fp16" if device == "cuda" else "fp32"
    if device == "cpu":
        if precision in ("fp16", "bf16", "amp"):
            raise ConfigError(f"precision={precision} needs CUDA; on CPU use fp32 or cpu-bf16 "
                              f"(fairseq's --bf16 --cpu crashes)")
        train = {"cpu": True, "cpu_bf16": precision == "cpu-bf16" or None}
        return precision, train, {"cpu": True}
    if precision == "cpu-bf16":
        raise ConfigError("precision=cpu-bf16 is for device=cpu")
    flag = {"fp32": {}, "fp16": {"fp16": True}, "bf16": {"bf16": True}, "amp": {"amp": True}}[precision]
    generate = {"fp16": True} if precision in ("fp16", "amp") else dict(flag)
    return precision, dict(flag), generate


def _updates(checkpoint: Path) -> int:
    from fairseq_ext.checkpoint_safety import safe_load
    from fairseq_ext.pipeline.results import checkpoint_counters

    return checkpoint_counters(safe_load(checkpoint, mmap=True))["updates"]


def usable_last_checkpoint(ckpt_dir: Path):
    """The name of the checkpoint fairseq-train will resume from, after healing a broken checkpoint_last.pt.

    A checkpoint_last.pt that cannot be read (cut short by a kill or a full disk) would stop every
    resume; it is moved aside to checkpoint_last.pt.broken and replaced by a copy of the newest
    checkpoint that loads. None when no checkpoint loads (training starts from scratch).
    A checkpoint refused as unsafe is never worked around.
    """
    def updates(path):
        try:
            return _updates(path)
        except UnsafeCheckpointError:
            raise
        except Exception as err:  # noqa: BLE001 - torch raises RuntimeError, EOFError, pickle and zip errors
            return err

    last = Path(ckpt_dir) / "checkpoint_last.pt"
    problem = updates(last)
    if not isinstance(problem, Exception):
        return last.name
    candidates = []
    for path in sorted(Path(ckpt_dir).glob("checkpoint*.pt")):
        if path.name != last.name:
            found = updates(path)
            if not isinstance(found, Exception):
                # equal updates: an update or epoch checkpoint over checkpoint_best.pt, then the newest
                candidates.append((found, path.name != "checkpoint_best.pt", path.stat().st_mtime, path))
    os.replace(last, last.with_name(last.name + ".broken"))
    reason = str(problem).splitlines()[0] if str(problem) else type(problem).__name__
    if not candidates:
        print(f"[pipeline] warning: {last} cannot be read ({reason}) and no other checkpoint loads; moved it to "
              f"{last.name}.broken, training starts from scratch", flush=True)
        return None
    n_updates, _, _, best = max(candidates)
    tmp = last.with_name(f".{last.name}.tmp")
    shutil.copyfile(best, tmp)
    os.replace(tmp, last)
    print(f"[pipeline] warning: {last} cannot be read ({reason}); moved it to {last.name}.broken and resume "
          f"from {best.name} (update {n_updates}), the newest checkpoint that loads", flush=True)
    return best.name


def _refuse_under_launcher():
    """The pipeline is launched once; a launcher (torchrun, srun) starting it per rank would race."""
    for var in ("WORLD_SIZE", "SLURM_NTASKS"):
        if int(os.environ.get(var, "1") or 1) > 1:
            raise PipelineError(
                f"{var}={os.environ[var]}: run_<rung>.sh is started once, not once per rank. On one "
                f"machine fairseq-train already uses every GPU; for several machines run the printed "
                f"fairseq-train command under torchrun/srun (docs/distributed.md), then re-run this "
                f"script once to evaluate.")


# prepare_data.py's built-in corpora; any other corpus name is a local corpus: prepared from
# ``prepare.train``/``prepare.test``/... files, or already prepared under DATA_DIR/NAME
BUILTIN_CORPORA = ("ted2020", "ted-lowres", "demo")
LOCAL_ROLES = ("train", "valid", "test", "mono")
# the update count in fairseq-train's log lines: "num_updates=50" (train), "num_updates 100" (valid)
UPDATES_IN_LOG = r"num_updates[= ](\d+)"
# folders under runs/<corpus>/ that are not runs
RESERVED_RUN_NAMES = {"bt": "holds the back-translations every boss run shares"}
# options the pipeline passes itself: where the corpus, checkpoints and predictions are
SET_BY_PIPELINE = {
    "prepare": ("corpus", "name", "data_dir"),
    "train": ("data", "user_dir", "save_dir", "tensorboard_logdir"),
    "generate": ("data", "user_dir", "task", "source_lang", "target_lang", "path", "gen_subset", "results_path"),
}


class Pipeline:
    # config sections this pipeline reads besides config.SETTINGS (name -> allowed keys, None = any)
    SECTIONS = {}

    def __init__(self, cfg: dict, data_dir: Path, runs_dir: Path):
        self.cfg = cfg
        self.corpus = check_name(cfg["corpus"], "corpus name")
        self.rung = check_name(cfg["rung"], "rung name")
        if self.rung in RESERVED_RUN_NAMES:
            raise ConfigError(f"rung name {self.rung!r} is reserved: runs/<corpus>/{self.rung}/ {RESERVED_RUN_NAMES[self.rung]}")
        self.data = Path(data_dir) / self.corpus
        self.run_dir = Path(runs_dir) / self.corpus / self.rung
        self.verbose = bool(cfg.get("verbose"))
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.book = StageBook(self.run_dir)
        self.device = resolve_device(str(cfg.get("device", "auto")))
        self.precision, train_prec, gen_prec = precision_options(self.device, str(cfg.get("precision", "auto")))
        self.train_options = {**cfg["train"], **{k: v for k, v in train_prec.items() if v is not None}}
        self.generate_options = {**cfg["generate"], **gen_prec}
        threads = cfg.get("threads")  # checked with the other values in check()
        # torch's intra-op threads in fairseq-train/-generate; null = torch's default (all cores)
        self.child_env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}

    # ------------------------------------------------------------ commands

    @property
    def corpus_source(self) -> str:
        """``builtin``, ``local`` (prepared here from prepare.* files) or ``prepared`` (used as it is)."""
        if self.corpus in BUILTIN_CORPORA:
            return "builtin"
        if any(self.cfg["prepare"].get(role) for role in LOCAL_ROLES):
            return "local"
        if (self.data / "manifest.json").exists():
            return "prepared"
        raise ConfigError(
            f"unknown corpus {self.corpus!r}: not one of {', '.join(BUILTIN_CORPORA)} and nothing prepared at "
            f"{self.data}; prepare it first (scripts/prepare_data.py --corpus local --name {self.corpus} "
            f"--train PREFIX --valid PREFIX --test PREFIX) or pass prepare.train=PREFIX prepare.test=PREFIX ...")

    def prepare_cmd(self):
        """prepare_data.py's command line, None for a corpus that is used as already prepared."""
        source = self.corpus_source
        if source == "prepared":
            return None
        corpus = ["--corpus", self.corpus] if source == "builtin" else ["--corpus", "local", "--name", self.corpus]
        return [sys.executable, REPO / "scripts" / "prepare_data.py", *corpus,
                "--data-dir", self.data.parent, *to_cli_args(self.cfg["prepare"])]

    def check(self) -> None:
        """Everything the stages' tools would refuse, before anything runs (ConfigError naming the key)."""
        from fairseq_ext.pipeline.checks import check_argparse_options, check_fairseq_options, check_values
        from fairseq_ext.prep import cli as prep_cli

        for section, keys in SET_BY_PIPELINE.items():
            for key in keys:
                if self.cfg[section].get(key) is not None:
                    raise ConfigError(f"{section}.{key}: set by the pipeline (from --corpus, --data-dir, --runs-dir "
                                      f"and the rung); it cannot be overridden")
        prepare = self.prepare_cmd()
        check_values({**self.cfg, "train": self.train_options, "generate": self.generate_options})
        if prepare is not None:
            check_argparse_options(prep_cli.build_parser(), [str(a) for a in prepare[2:]], "prepare_data.py",
                                   "prepare", then=prep_cli.options_from_args)
        elif self.cfg["prepare"]:
            raise ConfigError(f"prepare.{next(iter(self.cfg['prepare']))}: {self.data} is used as already "
                              f"prepared; to prepare it again give its files too (prepare.train=PREFIX "
                              f"prepare.test=PREFIX ...)")
        check_fairseq_options("fairseq-train", "train", [str(a) for a in self.train_cmd()[len(tool("fairseq-train")):]])
        check_fairseq_options("fairseq-generate", "generate",
                              [str(a) for a in self.generate_cmd("test", self.run_dir)[len(tool("fairseq-generate")):]])

    def train_cmd(self):
        return [*tool("fairseq-train"), self.data / "bin", "--user-dir", USER_DIR,
                "--save-dir", self.ckpt_dir, "--tensorboard-logdir", self.run_dir / "tensorboard",
                *to_cli_args(self.train_options)]

    def generate_cmd(self, split, results_dir):
        t = self.cfg["train"]
        return [*tool("fairseq-generate"), self.data / "bin", "--user-dir", USER_DIR,
                "--task", t.get("task", "translation_ext"),
                "--source-lang", t.get("source_lang", "en"), "--target-lang", t.get("target_lang", "zh"),
                "--path", self.run_dir / "checkpoint_avg.pt", "--gen-subset", split,
                "--results-path", results_dir, *to_cli_args(self.generate_options)]

    def describe(self) -> str:
        lines = [f"# resolved config ({self.rung} on {self.corpus}, device {self.device}, "
                 f"precision {self.precision}, threads {self.cfg.get('threads') or 'default'})",
                 json.dumps(self.cfg, indent=2, sort_keys=True),
                 "# prepare", self.prepare_line(),
                 "# train", shlex.join(map(str, self.train_cmd()))]
        for split in ("valid", "test"):
            lines += [f"# generate {split}", shlex.join(map(str, self.generate_cmd(split, self.run_dir)))]
        return "\n".join(lines)

    # ------------------------------------------------------------ stages

    def prepare_line(self) -> str:
        command = self.prepare_cmd()
        return shlex.join(map(str, command)) if command else f"(prepared already: {self.data})"

    def prepare(self) -> str:
        """prepare_data.py does nothing when its outputs are up to date, so it always runs (when it applies)."""
        start = time.time()
        command = self.prepare_cmd()
        if command is None:
            print(f"[pipeline] prepare: using the prepared corpus {self.data}", flush=True)
        else:
            print(f"[pipeline] prepare: corpus {self.corpus} -> {self.data}", flush=True)
            run_logged(command, self.run_dir / "prepare.log", echo=self.verbose,
                       shown=r"^\[prep\] (warning|notice): ")
        manifest = self.data / "manifest.json"
        try:
            corpus_hash = json.loads(manifest.read_text(encoding="utf-8"))["hash"]
        except (OSError, ValueError, KeyError) as err:
            raise PipelineError(f"{manifest}: no corpus hash after preparation ({err})") from None
        for needed in ("bin/dict.en.txt", "spm/spm.model", "ref/valid.zh", "ref/test.en"):
            if not (self.data / needed).exists():
                raise PipelineError(f"prepared corpus incomplete: {self.data / needed} is missing")
        self.book.record("prepare", corpus_hash, time.time() - start)
        return corpus_hash

    def train(self, corpus_hash) -> str:
        key = config_hash({"train": self.train_options, "corpus": corpus_hash})  # threads: speed only
        if self.book.is_done("train", key):
            print("[pipeline] train: done already (same settings), skipped", flush=True)
            return key
        started = self.book.marker("train.started")
        last = self.ckpt_dir / "checkpoint_last.pt"
        if last.exists():
            if started and started.get("corpus_hash") != corpus_hash:
                raise PipelineError(
                    f"the prepared corpus changed since {last} was trained (corpus hash "
                    f"{started.get('corpus_hash', '?')[:12]} -> {corpus_hash[:12]}); its dictionary may "
                    f"differ. Re-run with --fresh to train from scratch.")
            resumed = usable_last_checkpoint(self.ckpt_dir)
            note = "" if started and started.get("key") == key else " (settings changed since it was written)"
            if resumed:
                print(f"[pipeline] train: resuming from {resumed}{note}", flush=True)
        self.book.record("train.started", key, 0.0, corpus_hash=corpus_hash)
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        start = time.time()
        total = self.train_options.get("max_update")
        print(f"[pipeline] train: {self.train_options.get('arch')}"
              + (f", up to update {total}" if total else "")
              + f"; fairseq's log: {self.run_dir / 'train.log'}", flush=True)
        run_logged(self.train_cmd(), self.run_dir / "train.log", echo=self.verbose, env=self.child_env,
                   progress=Progress(f"train {self.rung}", UPDATES_IN_LOG, int(total) if total else None))
        if not last.exists():
            raise PipelineError(f"fairseq-train finished without writing {last}; see {self.run_dir / 'train.log'}")
        print(f"[pipeline] train: finished at update {_updates(last)} ({time.time() - start:.0f} s)", flush=True)
        self.book.record("train", key, time.time() - start)
        return key

    def average(self, train_key) -> tuple:
        from fairseq_ext.pipeline.averaging import average_checkpoints, last_checkpoints

        n = int((self.cfg.get("average") or {}).get("last", 1))
        paths = last_checkpoints(self.ckpt_dir, n)
        key = config_hash({"train": train_key, "last": n, "checkpoints": [p.name for p in paths]})
        out = self.run_dir / "checkpoint_avg.pt"
        marker = self.book.marker("average")
        if self.book.is_done("average", key) and out.exists():
            print("[pipeline] average: done already, skipped", flush=True)
            return key, marker["averaged"]
        print(f"[pipeline] average: {', '.join(p.name for p in paths)} -> {out.name}", flush=True)
        start = time.time()
        info = average_checkpoints(paths, out)
        self.book.record("average", key, time.time() - start, averaged=info["averaged"])
        return key, info["averaged"]

    def generate(self, split, avg_key) -> str:
        key = config_hash({"average": avg_key, "generate": self.generate_options, "split": split})
        out = self.run_dir / f"generate-{split}.txt"
        if self.book.is_done(f"generate_{split}", key) and out.exists():
            print(f"[pipeline] generate {split}: done already, skipped", flush=True)
            return key
        tmp_dir = self.run_dir / f".generate-{split}.tmp"
        shutil.rmtree(tmp_dir, ignore_errors=True)
        print(f"[pipeline] generate {split} (beam {self.generate_options.get('beam')})", flush=True)
        start = time.time()
        run_logged(self.generate_cmd(split, tmp_dir), self.run_dir / f"generate-{split}.log", echo=self.verbose,
                   env=self.child_env)
        os.replace(tmp_dir / f"generate-{split}.txt", out)
        shutil.rmtree(tmp_dir, ignore_errors=True)
        self.book.record(f"generate_{split}", key, time.time() - start)
        return key

    def evaluate(self) -> tuple:
        """hyp.<split>.zh in source order, prediction.txt, and scores (None for a split without reference)."""
        import sentencepiece as spm

        from fairseq_ext.pipeline.evaluate import in_source_order, read_hypotheses, read_lines, score

        sp = spm.SentencePieceProcessor(model_file=str(self.data / "spm" / "spm.model"))
        scores, missing, hyps, refs = {}, {}, {}, {}
        for split in ("valid", "test"):
            n = len(read_lines(self.data / "ref" / f"{split}.en"))
            hyps[split], missing[split] = in_source_order(
                read_hypotheses(self.run_dir / f"generate-{split}.txt"), n, sp)
            atomic_write_text(self.run_dir / f"hyp.{split}.zh", "".join(f"{line}\n" for line in hyps[split]))
            ref_path = self.data / "ref" / f"{split}.zh"
            if ref_path.exists():
                refs[split] = read_lines(ref_path)
                if len(refs[split]) != n:
                    raise PipelineError(f"{ref_path} has {len(refs[split])} lines, {split}.en has {n}")
                scores[split] = score(hyps[split], refs[split])
                print(f"[pipeline] {split}: BLEU {scores[split]['bleu']}  chrF {scores[split]['chrf']}  "
                      f"({scores[split]['bleu_signature']})", flush=True)
            else:
                scores[split] = None
                print(f"[pipeline] {split}: no reference {ref_path}, not scored", flush=True)
            if missing[split]:
                print(f"[pipeline] warning: {len(missing[split])} {split} sentences got no hypothesis "
                      f"(skipped by fairseq-generate, e.g. too long); they are empty lines", flush=True)
        sources = read_lines(self.data / "ref" / "test.en")
        for i in range(min(3, len(sources))):
            print(f"[pipeline] example: {sources[i]}\n             -> {hyps['test'][i]}"
                  + (f"\n        (ref) {refs['test'][i]}" if "test" in refs else ""), flush=True)
        shutil.copyfile(self.run_dir / "hyp.test.zh", self.run_dir / ".prediction.txt.tmp")
        os.replace(self.run_dir / ".prediction.txt.tmp", self.run_dir / "prediction.txt")
        return scores, missing

    def plots(self, avg_key, model_keys) -> dict:
        """analysis/plot_*.py (when present) into plots/; a failed plot warns, it does not fail the run."""
        key = config_hash({"average": avg_key})
        marker = self.book.marker("plots")
        if self.book.is_done("plots", key):
            print("[pipeline] plots: done already, skipped", flush=True)
            return marker["status"]
        if not self.cfg.get("plots", True):
            return {"all": "switched off (plots: false)"}
        plots_dir = self.run_dir / "plots"
        plots_dir.mkdir(exist_ok=True)
        gnorm = Path(self.train_options.get("gnorm_log") or self.ckpt_dir / "gnorm.jsonl")
        jobs = {
            "gnorm": (["plot_gnorm.py", gnorm], gnorm.exists() or f"no {gnorm} (tracker off?)"),
            "posemb": (["plot_posemb.py", self.run_dir / "checkpoint_avg.pt"],
                       any("embed_positions" in k or "self_attn" in k for k in model_keys)
                       or "the model has no positional embeddings"),
            "curves": (["plot_curves.py", self.run_dir], True),
        }
        status, start = {}, time.time()
        for name, ((script, arg), applicable) in jobs.items():
            script_path = REPO / "analysis" / script
            if not script_path.exists():
                status[name] = f"skipped: {script_path} not found"
            elif applicable is not True:
                status[name] = f"skipped: {applicable}"
            else:
                try:
                    run_logged([sys.executable, script_path, arg, "-o", plots_dir / f"{name}.png"],
                               self.run_dir / "plots.log", echo=False)
                    status[name] = "ok"
                except StageFailed as err:
                    status[name] = f"failed: {err}"
            print(f"[pipeline] plot {name}: {status[name]}", flush=True)
        if not any(s.startswith("failed") for s in status.values()):
            self.book.record("plots", key, time.time() - start, status=status)
        return status

    # ------------------------------------------------------------ all

    def run(self) -> dict:
        from fairseq_ext.checkpoint_safety import safe_load
        from fairseq_ext.pipeline.results import (
            SCHEMA_VERSION,
            checkpoint_counters,
            count_params,
            git_state,
            train_log_stats,
            validate_results,
        )

        started = time.time()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        corpus_hash = self.prepare()
        train_key = self.train(corpus_hash)
        avg_key, averaged = self.average(train_key)
        for split in ("valid", "test"):
            self.generate(split, avg_key)
        scores, missing = self.evaluate()
        avg_state = safe_load(self.run_dir / "checkpoint_avg.pt")
        model_keys = list(avg_state["model"].keys())
        counters = checkpoint_counters(safe_load(self.ckpt_dir / "checkpoint_last.pt"))
        log_stats = train_log_stats(self.run_dir / "train.log")
        params = log_stats["params"] or count_params(avg_state["model"])
        del avg_state
        plots = self.plots(avg_key, model_keys)
        walls = {name: (self.book.marker(name) or {}).get("wall_s", 0.0)
                 for name in ("prepare", "train", "average", "generate_valid", "generate_test")}
        walls["total"] = round(sum(walls.values()), 1)
        walls["this_invocation"] = round(time.time() - started, 1)
        commit, dirty = git_state(REPO)
        results = {
            "schema_version": SCHEMA_VERSION,
            "corpus": self.corpus,
            "rung": self.rung,
            "scores": scores,
            "params": int(params),
            **counters,
            "wall_time_s": walls,
            "tokens_per_s": log_stats["tokens_per_s"],
            "corpus_hash": corpus_hash,
            "data_dir": str(self.data),
            "git_commit": commit,
            "git_dirty": dirty,
            "checkpoint": "checkpoint_avg.pt",
            "averaged_checkpoints": averaged,
            "device": self.device,
            "precision": self.precision,
            "config": self.cfg,
            "commands": {"prepare": self.prepare_line(),
                         "train": shlex.join(map(str, self.train_cmd())),
                         "generate": shlex.join(map(str, self.generate_cmd("test", "RESULTS_DIR")))},
            "versions": _versions(),
            "prediction_file": "prediction.txt",
            "prediction_lines": len(open(self.run_dir / "prediction.txt", encoding="utf-8").readlines()),
            "missing_hypotheses": {split: len(ids) for split, ids in missing.items()},
            "plots": plots,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        validate_results(results)
        atomic_write_json(self.run_dir / "results.json", results)
        print(f"[pipeline] wrote {self.run_dir / 'results.json'}", flush=True)
        return results


def _versions() -> dict:
    import fairseq
    import sacrebleu
    import sentencepiece
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "fairseq": fairseq.__version__,
            "sacrebleu": sacrebleu.__version__, "sentencepiece": sentencepiece.__version__,
            "fairseq_ext": fairseq_ext.__version__}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="run_rung.sh", usage="bash scripts/run_rung.sh RUNG [options] [section.key=value ...]",
        description="Run one rung of the baseline ladder end to end (prepare, train, average, "
                    "generate, score, plot) into runs/<corpus>/<rung>/.",
        epilog="Overrides: any config value as section.key=value, e.g. train.lr=5e-4 train.max_epoch=5 "
               "generate.beam=4 average.last=1 precision=cpu-bf16 train.fp16=false.")
    parser.add_argument("--rung", required=True, help="config name in configs/ (simple, medium, strong, "
                        "postnorm, ...; boss: run_boss.sh) or a path to a YAML config")
    add_run_arguments(parser, fresh="delete what is in runs/<corpus>/<rung>/ first")
    return parser


def add_run_arguments(parser, fresh: str) -> None:
    """The options the rung and boss scripts share."""
    parser.add_argument("--corpus", default="ted2020", help="corpus name: ted2020, ted-lowres, demo, or one "
                        "prepared under --data-dir (default: %(default)s)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides the config's device")
    parser.add_argument("--fresh", action="store_true", help=fresh)
    parser.add_argument("--data-dir", type=Path, default=REPO / "data", help="default: %(default)s")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "runs", help="default: %(default)s")
    parser.add_argument("--config-dir", type=Path, default=config_mod.CONFIG_DIR, help="default: %(default)s")
    parser.add_argument("--dry-run", action="store_true", help="check every option, print the resolved config "
                        "and commands, run nothing")
    parser.add_argument("--verbose", action="store_true", help="show the output of fairseq and the other tools "
                        "(always in the run's *.log files)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")


def empty_run_dir(run_dir: Path, runs_dir: Path) -> None:
    """--fresh: delete what is inside the run's own folder, never outside ``runs_dir`` and never through a link."""
    run_dir, runs_dir = Path(run_dir), Path(runs_dir).resolve()
    if run_dir.is_symlink() or not run_dir.resolve().is_relative_to(runs_dir) or run_dir.resolve() == runs_dir:
        raise PipelineError(f"--fresh: {run_dir} is not a run folder inside {runs_dir}; nothing deleted")
    for child in run_dir.iterdir():
        if child.name != ".lock":
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def execute(args, overrides: list, pipeline_class, tag: str, describe) -> int:
    """The command-line body shared by the rung and boss scripts.

    Refuses to run under a distributed launcher, builds the pipeline from the config and
    checks every option (exit 2 on a bad one, before anything is written), honours --dry-run,
    and under the run's lock honours --fresh and runs every stage (exit 1 when one fails).
    `describe(pipeline)` is the one-line summary printed first.
    """
    try:
        _refuse_under_launcher()
        overrides = [*overrides, *([f"device={args.device}"] if args.device else []),
                     *(["verbose=true"] if args.verbose else [])]
        cfg = load_config(args.rung, args.corpus, overrides, args.config_dir, pipeline_class.SECTIONS)
        pipeline = pipeline_class(cfg, args.data_dir.resolve(), args.runs_dir.resolve())
        pipeline.check()
    except (ConfigError, PipelineError) as err:
        print(f"[{tag}] error: {err}", file=sys.stderr, flush=True)
        return 2
    try:
        print(f"[{tag}] {describe(pipeline)}", flush=True)
        if args.dry_run:
            print(pipeline.describe())
            return 0
        with run_lock(pipeline.run_dir):
            if args.fresh:
                empty_run_dir(pipeline.run_dir, args.runs_dir)
                print(f"[{tag}] --fresh: emptied {pipeline.run_dir}", flush=True)
            results = pipeline.run()
    except (ConfigError, PipelineError, StageFailed, RuntimeError, FileNotFoundError, UnsafeCheckpointError) as err:
        print(f"[{tag}] error: {err}", file=sys.stderr, flush=True)
        return 1
    test = results["scores"]["test"]
    if test:
        print(f"[{tag}] test BLEU {test['bleu']} chrF {test['chrf']}  ({pipeline.run_dir})", flush=True)
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return execute(
        args, args.overrides, Pipeline, "pipeline",
        lambda p: f"rung {p.rung}, corpus {p.corpus}, device {p.device}, precision {p.precision}, "
                  f"run dir {p.run_dir}",
    )


if __name__ == "__main__":
    raise SystemExit(main())
