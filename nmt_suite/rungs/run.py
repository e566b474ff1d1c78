"""One rung end to end: prepare -> fairseq-train -> average -> fairseq-generate -> score -> results.json -> plots.

    python -m nmt_suite.rungs.run --rung strong --corpus demo [--device cpu] [--fresh] [train.lr=1e-3 ...]

(scripts/run_<rung>.sh call this.) Outputs go to ``runs/<corpus>/<rung>/``: ``checkpoints/``,
``checkpoint_avg.pt``, ``generate-<split>.txt``, ``hyp.<split>.zh``, ``prediction.txt`` (test),
``results.json``, ``plots/``, each tool's ``*.log``, and the stage records ``.stages/``.
Re-running skips the stages whose record holds the key of their inputs now and lets
fairseq-train resume from ``checkpoints/checkpoint_last.pt``; ``--fresh`` empties the run
directory first. The pipeline is one process; fairseq-train itself spreads over
all GPUs of the machine with its own DDP (see docs/distributed.md for several machines).
"""
import argparse
import json
import os
import pickle
import shlex
import shutil
import sys
import time
from pathlib import Path

from nmt_suite import gnorm_log
from nmt_suite.device import DeviceError, add_device_option, resolve_device
from nmt_suite.files import atomic_copy, atomic_write_json, atomic_write_lines, read_json, remove_stale_temps, temp_name
from nmt_suite.plugin import PLUGIN_DIR
from nmt_suite.rungs import config as config_mod
from nmt_suite.rungs.budget import BUDGET_KEYS, BudgetError, budget_options, check_budget, updates_for
from nmt_suite.rungs.config import ConfigError, check_name, load_config, to_cli_args
from nmt_suite.rungs.results import SCHEMA_VERSION, SPLITS, RunResults, validate_results
from nmt_suite.rungs.stages import Progress, StageFailed, run_lock, run_logged
from nmt_suite.stage_cache import StageRecords, stage_key

REPO = config_mod.REPO
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "amp", "cpu-bf16")
# console scripts the pipeline runs -> their module, for an environment without the script
_MODULES = {"fairseq-train": "fairseq_cli.train", "fairseq-generate": "fairseq_cli.generate",
            "fairseq-interactive": "fairseq_cli.interactive", "fairseq-ext-prepare": "nmt_suite.prep.cli"}
# the stages whose seconds results.json reports (their records' wall_s)
TIMED_STAGES = ("prepare", "compute", "train", "average", "generate_valid", "generate_test")  # + extra tests


class PipelineError(RuntimeError):
    pass


def tool(name: str) -> list:
    """A console script of this interpreter's environment (``python -m`` when it has none)."""
    exe = Path(sys.executable).parent / name
    return [str(exe)] if exe.exists() else [sys.executable, "-m", _MODULES[name]]


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
    from nmt_suite.rungs.results import checkpoint_counters

    return checkpoint_counters(safe_load(checkpoint, mmap=True))["updates"]


def usable_last_checkpoint(ckpt_dir: Path):
    """The name of the checkpoint fairseq-train will resume from, after healing a broken checkpoint_last.pt.

    A checkpoint_last.pt that cannot be read (cut short by a kill or a full disk) would stop every
    resume; it is moved aside to checkpoint_last.pt.broken and replaced by a copy of the newest
    checkpoint that loads. None when no checkpoint loads (training starts from scratch).
    A checkpoint refused as unsafe is never worked around.
    """
    from fairseq_ext.checkpoint_safety import UnsafeCheckpointError

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
    atomic_copy(best, last)
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
    """One rung: the stages of :meth:`stages`, run in order by :meth:`run`, into ``run_dir``.

    Each stage is a method without arguments that reads what the stages before it set on the
    pipeline (``corpus_hash``, ``data_key``, ``train_key``, ``avg_key``, ...) and sets its own.
    """
    # config sections this pipeline reads besides config.SETTINGS (name -> allowed keys, None = any)
    SECTIONS = {}
    # what its results.json holds
    RESULTS = RunResults

    def __init__(self, cfg: dict, data_dir: Path, runs_dir: Path, run_dir: Path = None):
        self.cfg = cfg
        self.corpus = check_name(cfg["corpus"], "corpus name")
        self.rung = check_name(cfg["rung"], "rung name")
        if self.rung in RESERVED_RUN_NAMES:
            raise ConfigError(f"rung name {self.rung!r} is reserved: runs/<corpus>/{self.rung}/ {RESERVED_RUN_NAMES[self.rung]}")
        self.data = Path(data_dir) / self.corpus
        self.train_data = self.data / "bin"  # what fairseq-train trains on (the boss rung's: more)
        self.run_dir = Path(run_dir) if run_dir is not None else Path(runs_dir) / self.corpus / self.rung
        self.verbose = bool(cfg.get("verbose"))
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.records = StageRecords(self.run_dir / ".stages")
        try:
            self.device = resolve_device(str(cfg.get("device", "auto")))
        except DeviceError as err:
            raise ConfigError(str(err)) from None
        self.precision, train_prec, gen_prec = precision_options(self.device, str(cfg.get("precision", "auto")))
        try:
            self.budget = check_budget(cfg["train"])  # {} without one
        except BudgetError as err:
            raise ConfigError(str(err)) from None
        self.train_options = {**{k: v for k, v in cfg["train"].items() if k not in BUDGET_KEYS},
                              **{k: v for k, v in train_prec.items() if v is not None}}
        self.generate_options = {**cfg["generate"], **gen_prec}
        self.extra_tests = self._extra_tests(cfg.get("extra_tests"))  # name -> (file prefix, script)
        threads = cfg.get("threads")  # checked with the other values in check()
        # torch's intra-op threads in fairseq-train/-generate; null = torch's default (all cores)
        self.child_env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}
        # what the stages set, in the order they run
        self.corpus_hash = None  # prepare: the prepared corpus' hash (its manifest's)
        self.data_key = None     # the key of the training data (prepare: the corpus hash)
        self.compute = None      # train: what a training update costs (budget.measure), and the budget's plan
        self.train_key = None    # train
        self.avg_key = None      # average, with the names of the checkpoints it averaged:
        self.averaged = None
        self.scores = None       # evaluate: split -> scores (None without a reference)
        self.missing = None      # evaluate: split -> ids of sentences without a hypothesis
        self.plot_status = None  # plots: plot -> "ok", "skipped: ..." or "failed: ..."

    def stages(self) -> list:
        """What :meth:`run` does, in this order."""
        return [self.prepare, self.train, self.average, self.generate, self.evaluate, self.plots]

    @staticmethod
    def _extra_tests(value) -> dict:
        from nmt_suite.prep import extra_tests
        from nmt_suite.prep.errors import PrepError

        if value is None:
            return {}
        if not isinstance(value, list):
            raise ConfigError(f"extra_tests: expected a list of test set names, got {value!r}")
        resolved = {}
        try:
            for spec in value:
                name, prefix, script = extra_tests.resolve(spec)
                if name in resolved:
                    raise ConfigError(f"extra_tests: {name!r} is listed twice")
                resolved[name] = (prefix, script)
        except PrepError as err:
            raise ConfigError(str(err)) from None
        return resolved

    @property
    def eval_splits(self) -> tuple:
        """What is translated and scored: the corpus' valid and test, then each extra test set."""
        return (*SPLITS, *self.extra_tests)

    def split_data(self, split: str) -> tuple:
        """(the binarized folder, fairseq's subset name) of a split."""
        from nmt_suite.prep.extra_tests import extra_dir

        if split in SPLITS:
            return self.data / "bin", split
        return extra_dir(self.data, split) / "bin", "test"

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

    def prepare_args(self):
        """The options of prepare_data.py for this corpus, None for a corpus that is used as already prepared."""
        source = self.corpus_source
        if source == "prepared":
            return None
        corpus = ["--corpus", self.corpus] if source == "builtin" else ["--corpus", "local", "--name", self.corpus]
        return [*corpus, "--data-dir", self.data.parent, *to_cli_args(self.cfg["prepare"])]

    def prepare_cmd(self):
        """prepare_data.py's command line (its console script), None for a corpus used as already prepared."""
        args = self.prepare_args()
        return None if args is None else [*tool("fairseq-ext-prepare"), *args]

    def check(self) -> None:
        """Everything the stages' tools would refuse, before anything runs (ConfigError naming the key)."""
        from nmt_suite.rungs.checks import check_argparse_options, check_fairseq_options, check_values
        from nmt_suite.prep import cli as prep_cli

        for section, keys in SET_BY_PIPELINE.items():
            for key in keys:
                if self.cfg[section].get(key) is not None:
                    raise ConfigError(f"{section}.{key}: set by the pipeline (from --corpus, --data-dir, --runs-dir "
                                      f"and the rung); it cannot be overridden")
        prepare = self.prepare_args()
        check_values({**self.cfg, "train": self.train_options, "generate": self.generate_options})
        from nmt_suite.prep.errors import PrepError
        from nmt_suite.prep.extra_tests import check_files

        for name, (prefix, _) in self.extra_tests.items():
            try:
                check_files(name, prefix)
            except PrepError as err:
                raise ConfigError(str(err)) from None
        if prepare is not None:
            check_argparse_options(prep_cli.build_parser(), [str(a) for a in prepare], "prepare_data.py",
                                   "prepare", then=prep_cli.options_from_args)
        elif self.cfg["prepare"]:
            raise ConfigError(f"prepare.{next(iter(self.cfg['prepare']))}: {self.data} is used as already "
                              f"prepared; to prepare it again give its files too (prepare.train=PREFIX "
                              f"prepare.test=PREFIX ...)")
        check_fairseq_options("fairseq-train", "train", [str(a) for a in self.train_cmd()[len(tool("fairseq-train")):]])
        check_fairseq_options("fairseq-generate", "generate",
                              [str(a) for a in self.generate_cmd("test", self.run_dir)[len(tool("fairseq-generate")):]])

    def train_cmd(self):
        return [*tool("fairseq-train"), self.train_data, "--user-dir", PLUGIN_DIR,
                "--save-dir", self.ckpt_dir, "--tensorboard-logdir", self.run_dir / "tensorboard",
                *to_cli_args(self.train_options)]

    def generate_cmd(self, split, results_dir):
        t = self.cfg["train"]
        data, subset = self.split_data(split)
        return [*tool("fairseq-generate"), data, "--user-dir", PLUGIN_DIR,
                "--task", t.get("task", "translation_ext"),
                "--source-lang", t.get("source_lang", "en"), "--target-lang", t.get("target_lang", "zh"),
                "--path", self.run_dir / "checkpoint_avg.pt", "--gen-subset", subset,
                "--results-path", results_dir, *to_cli_args(self.generate_options)]

    def describe(self) -> str:
        lines = [f"# resolved config ({self.rung} on {self.corpus}, device {self.device}, "
                 f"precision {self.precision}, threads {self.cfg.get('threads') or 'default'})",
                 json.dumps(self.cfg, indent=2, sort_keys=True),
                 "# prepare", self.prepare_line(),
                 "# train", shlex.join(map(str, self.train_cmd()))]
        for split in self.eval_splits:
            lines += [f"# generate {split}", shlex.join(map(str, self.generate_cmd(split, self.run_dir)))]
        return "\n".join(lines)

    # ------------------------------------------------------------ stages

    def prepare_line(self) -> str:
        command = self.prepare_cmd()
        return shlex.join(map(str, command)) if command else f"(prepared already: {self.data})"

    def prepare(self) -> None:
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
            corpus_hash = read_json(manifest)["hash"]
        except (OSError, ValueError, KeyError) as err:
            raise PipelineError(f"{manifest}: no corpus hash after preparation ({err})") from None
        for needed in ("bin/dict.en.txt", "spm/spm.model", "ref/valid.zh", "ref/test.en"):
            if not (self.data / needed).exists():
                raise PipelineError(f"prepared corpus incomplete: {self.data / needed} is missing")
        if self.extra_tests:
            from nmt_suite.prep.errors import PrepError
            from nmt_suite.prep.extra_tests import prepare_extra

            for name, (prefix, script) in self.extra_tests.items():
                try:
                    prepare_extra(self.data, name, prefix, script, log=lambda m: print(m, flush=True))
                except PrepError as err:
                    raise PipelineError(str(err)) from None
        self.records.write("prepare", corpus_hash, wall_s=time.time() - start)
        self.corpus_hash = self.data_key = corpus_hash

    def measure_compute(self) -> None:
        """FLOPs per target token and target tokens per update of this training (measured once, in a child
        process); with a budget, the updates it buys replace the stopping options (nmt_suite.rungs.budget)."""
        key = stage_key("compute", {"train": self.train_options, "data": self.data_key, "on": str(self.train_data)})
        record = self.records.up_to_date("compute", key)
        if record:
            measured = record["info"]["measured"]
        else:
            out = self.run_dir / "compute.json"
            print("[pipeline] compute: counting the training FLOPs per target token on real batches", flush=True)
            start = time.time()
            planned = self.train_options
            if self.budget:  # the options a budget sets, with a stand-in count: they change no FLOPs
                self.train_options = {**planned, **budget_options(self.budget, 1, planned.get("lr_scheduler"))}
            try:
                args = self.train_cmd()[len(tool("fairseq-train")):]
            finally:
                self.train_options = planned
            run_logged([sys.executable, "-m", "nmt_suite.rungs.budget", "--out", out, "--", *args],
                       self.run_dir / "compute.log", echo=self.verbose, env=self.child_env)
            measured = read_json(out)
            out.unlink()
            self.records.write("compute", key, wall_s=time.time() - start, measured=measured)
        self.compute = {**measured, "budget": None}
        if self.budget:
            updates = updates_for(self.budget, measured["flops_per_token"], measured["tokens_per_update"])
            options = budget_options(self.budget, updates, self.train_options.get("lr_scheduler"))
            replaced = [k for k in options if self.train_options.get(k) not in (None, options[k])]
            self.train_options = {**self.train_options, **options}
            self.compute["budget"] = {**self.budget, "updates": updates, "options": options}
            what = (f"{self.budget['budget_flops']:.3g} FLOPs" if "budget_flops" in self.budget
                    else f"{self.budget['budget_tokens']:.3g} target tokens")
            print(f"[pipeline] budget: {what} = {updates} updates of {measured['tokens_per_update']:.0f} target "
                  f"tokens at {measured['flops_per_token'] / 1e6:.2f} MFLOP per token"
                  + (f" (replaces {', '.join(f'train.{k}' for k in replaced)})" if replaced else ""), flush=True)

    def train(self) -> None:
        """fairseq-train on ``train_data`` (``data_key``), resuming from checkpoint_last.pt."""
        self.measure_compute()
        data_key = self.data_key
        key = stage_key("train", {"train": self.train_options, "data": data_key})  # threads: speed only
        self.train_key = key
        if self.records.up_to_date("train", key):
            print("[pipeline] train: done already (same settings), skipped", flush=True)
            return
        started = self.records.read("train.started")
        started_on = started["info"].get("data_key", "?") if started else None
        last = self.ckpt_dir / "checkpoint_last.pt"
        if last.exists():
            if started and started_on != data_key:
                raise PipelineError(
                    f"the prepared corpus changed since {last} was trained (corpus hash "
                    f"{started_on[:12]} -> {data_key[:12]}); its dictionary may "
                    f"differ. Re-run with --fresh to train from scratch.")
            resumed = usable_last_checkpoint(self.ckpt_dir)
            note = "" if started and started.get("key") == key else " (settings changed since it was written)"
            if resumed:
                print(f"[pipeline] train: resuming from {resumed}{note}", flush=True)
        self.records.write("train.started", key, data_key=data_key)
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
        self.records.write("train", key, wall_s=time.time() - start)

    def average(self) -> None:
        """checkpoint_avg.pt: the mean of the last ``average.last`` checkpoints."""
        from nmt_suite.rungs.averaging import average_checkpoints, last_checkpoints

        n = int((self.cfg.get("average") or {}).get("last", 1))
        paths = last_checkpoints(self.ckpt_dir, n)
        key = stage_key("average", {"train": self.train_key, "last": n, "checkpoints": [p.name for p in paths]})
        out = self.run_dir / "checkpoint_avg.pt"
        self.avg_key = key
        record = self.records.up_to_date("average", key)
        if record:
            print("[pipeline] average: done already, skipped", flush=True)
            self.averaged = record["info"]["averaged"]
            return
        print(f"[pipeline] average: {', '.join(p.name for p in paths)} -> {out.name}", flush=True)
        start = time.time()
        self.averaged = average_checkpoints(paths, out)["averaged"]
        self.records.write("average", key, outputs=[out.name], wall_s=time.time() - start, averaged=self.averaged)

    def generate(self, splits=None) -> None:
        """generate-<split>.txt: fairseq-generate with checkpoint_avg.pt on each of ``splits``
        (default :attr:`eval_splits`)."""
        for split in self.eval_splits if splits is None else splits:
            stage = f"generate_{split}"
            key = stage_key(stage, {"average": self.avg_key, "generate": self.generate_options})
            out = self.run_dir / f"generate-{split}.txt"
            if self.records.up_to_date(stage, key):
                print(f"[pipeline] generate {split}: done already, skipped", flush=True)
                continue
            # fairseq-generate writes generate-<split>.txt into a folder of its own: a temporary one
            remove_stale_temps(self.run_dir, f"generate-{split}")
            tmp_dir = temp_name(self.run_dir / f"generate-{split}")
            print(f"[pipeline] generate {split} (beam {self.generate_options.get('beam')})", flush=True)
            start = time.time()
            try:
                run_logged(self.generate_cmd(split, tmp_dir), self.run_dir / f"generate-{split}.log",
                           echo=self.verbose, env=self.child_env)
                # complete once fairseq-generate exits; it names the file after the subset it decoded
                os.replace(tmp_dir / f"generate-{self.split_data(split)[1]}.txt", out)
            finally:
                shutil.rmtree(tmp_dir, ignore_errors=True)
            self.records.write(stage, key, outputs=[out.name], wall_s=time.time() - start)

    def evaluate(self) -> None:
        """hyp.<split>.zh in source order, prediction.txt, and scores (None for a split without reference)."""
        import sentencepiece as spm

        from nmt_suite.fairseq_output import read_hypotheses
        from nmt_suite.rungs.evaluate import in_source_order, read_lines, score, split_files

        sp = spm.SentencePieceProcessor(model_file=str(self.data / "spm" / "spm.model"))
        scores, missing, hyps, refs = {}, {}, {}, {}
        for split in self.eval_splits:
            n = len(read_lines(split_files(self.data, split, "en")))
            hyps[split], missing[split] = in_source_order(
                read_hypotheses(self.run_dir / f"generate-{split}.txt"), n, sp)
            atomic_write_lines(self.run_dir / f"hyp.{split}.zh", hyps[split])
            ref_path = split_files(self.data, split, "zh")
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
        atomic_copy(self.run_dir / "hyp.test.zh", self.run_dir / "prediction.txt")
        self.scores, self.missing = scores, missing

    def plots(self) -> None:
        """nmt_suite.analysis' figures into plots/; a failed plot warns, it does not fail the run."""
        key = stage_key("plots", {"average": self.avg_key})
        record = self.records.up_to_date("plots", key)
        if record:
            print("[pipeline] plots: done already, skipped", flush=True)
            self.plot_status = record["info"]["status"]
            return
        if not self.cfg.get("plots", True):
            self.plot_status = {"all": "switched off (plots: false)"}
            return
        from fairseq_ext.checkpoint_safety import safe_load

        plots_dir = self.run_dir / "plots"
        plots_dir.mkdir(exist_ok=True)
        checkpoint = self.run_dir / "checkpoint_avg.pt"
        model_keys = safe_load(checkpoint, mmap=True)["model"].keys()
        gnorm = Path(self.train_options.get("gnorm_log") or self.ckpt_dir / gnorm_log.FILE_NAME)
        jobs = {  # plot -> (the argument of its module, True or why it does not apply)
            "gnorm": (gnorm, gnorm.exists() or f"no {gnorm} (tracker off?)"),
            "posemb": (checkpoint, any("embed_positions" in k or "self_attn" in k for k in model_keys)
                       or "the model has no positional embeddings"),
            "curves": (self.run_dir, True),
        }
        status, start = {}, time.time()
        for name, (arg, applicable) in jobs.items():
            if applicable is not True:
                status[name] = f"skipped: {applicable}"
            else:
                try:
                    run_logged([sys.executable, "-m", f"nmt_suite.analysis.{name}", arg,
                                "-o", plots_dir / f"{name}.png"], self.run_dir / "plots.log", echo=False)
                    status[name] = "ok"
                except StageFailed as err:
                    status[name] = f"failed: {err}"
            print(f"[pipeline] plot {name}: {status[name]}", flush=True)
        if not any(s.startswith("failed") for s in status.values()):
            self.records.write("plots", key, wall_s=time.time() - start, status=status)
        self.plot_status = status

    # ------------------------------------------------------------ all

    def run(self) -> dict:
        """Every stage, then results.json (returned)."""
        started = time.time()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stage in self.stages():
            stage()
        results = self.results(started)
        atomic_write_json(self.run_dir / "results.json", results)
        print(f"[pipeline] wrote {self.run_dir / 'results.json'}", flush=True)
        return results

    def results(self, started: float) -> dict:
        """The content of results.json, checked, once every stage has run."""
        return validate_results(self.RESULTS(**self.result_fields(started)).to_json(), record=self.RESULTS)

    def trained_compute(self, tokens) -> dict:
        """``train_tokens``, ``flops_per_token`` and ``train_flops`` of the run, from the target tokens
        fairseq-train's log reports and the measured FLOPs per token (None where unknown)."""
        flops_per_token = (self.compute or {}).get("flops_per_token")
        return {"train_tokens": tokens, "flops_per_token": flops_per_token,
                "train_flops": flops_per_token * tokens if flops_per_token and tokens else None}

    def result_fields(self, started: float) -> dict:
        """The fields of ``RESULTS`` for this run (``started``: when this invocation began)."""
        from fairseq_ext.checkpoint_safety import safe_load
        from nmt_suite.rungs.results import checkpoint_counters, count_params, git_state, train_log_stats
        from nmt_suite.versions import software_versions

        counters = checkpoint_counters(safe_load(self.ckpt_dir / "checkpoint_last.pt"))
        log_stats = train_log_stats(self.run_dir / "train.log")
        compute = self.compute or {}
        params = log_stats["params"] or count_params(safe_load(self.run_dir / "checkpoint_avg.pt")["model"])
        timed = (*TIMED_STAGES, *(f"generate_{name}" for name in self.extra_tests))
        walls = {name: (self.records.read(name) or {}).get("wall_s", 0.0) for name in timed}
        walls["total"] = round(sum(walls.values()), 1)
        walls["this_invocation"] = round(time.time() - started, 1)
        commit, dirty = git_state(REPO)
        with open(self.run_dir / "prediction.txt", encoding="utf-8") as prediction:
            prediction_lines = len(prediction.readlines())
        return dict(
            schema_version=SCHEMA_VERSION, corpus=self.corpus, rung=self.rung, scores=self.scores,
            params=int(params), **counters, wall_time_s=walls, tokens_per_s=log_stats["tokens_per_s"],
            **self.trained_compute(log_stats["tokens"]), budget=compute.get("budget"),
            corpus_hash=self.corpus_hash, data_dir=str(self.data), git_commit=commit, git_dirty=dirty,
            checkpoint="checkpoint_avg.pt", averaged_checkpoints=self.averaged, device=self.device,
            precision=self.precision, config=self.cfg,
            commands={"prepare": self.prepare_line(),
                      "train": shlex.join(map(str, self.train_cmd())),
                      "generate": shlex.join(map(str, self.generate_cmd("test", "RESULTS_DIR")))},
            versions=software_versions("torch", "fairseq", "sacrebleu", "sentencepiece", "fairseq_ext"),
            prediction_file="prediction.txt", prediction_lines=prediction_lines,
            missing_hypotheses={split: len(ids) for split, ids in self.missing.items()},
            plots=self.plot_status, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


def build_run_parser(script: str, description: str, examples: str, rung_help: str, fresh: str,
                     rung_default: str = None) -> argparse.ArgumentParser:
    """The command line of scripts/<script> (the rung and the boss scripts): the options they share.

    Without ``rung_default`` the rung is required (run_rung.sh passes its first argument as ``--rung``).
    """
    parser = argparse.ArgumentParser(
        prog=script, usage=f"bash scripts/{script} {'' if rung_default else 'RUNG '}[options] [section.key=value ...]",
        description=description, epilog=f"Overrides: any config value as section.key=value, e.g. {examples}")
    parser.add_argument("--rung", required=rung_default is None, default=rung_default, help=rung_help)
    parser.add_argument("--corpus", default="ted2020", help="corpus name: ted2020, ted-lowres, demo, or one "
                        "prepared under --data-dir (default: %(default)s)")
    add_device_option(parser, default=None, help_text="overrides the config's device")
    parser.add_argument("--fresh", action="store_true", help=fresh)
    parser.add_argument("--data-dir", type=Path, default=REPO / "data", help="default: %(default)s")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "runs", help="default: %(default)s")
    parser.add_argument("--config-dir", type=Path, default=config_mod.CONFIG_DIR, help="default: %(default)s")
    parser.add_argument("--dry-run", action="store_true", help="check every option, print the resolved config "
                        "and commands, run nothing")
    parser.add_argument("--verbose", action="store_true", help="show the output of fairseq and the other tools "
                        "(always in the run's *.log files)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    return parser


def build_parser():
    return build_run_parser(
        "run_rung.sh", description="Run one rung of the baseline ladder end to end (prepare, train, average, "
                                   "generate, score, plot) into runs/<corpus>/<rung>/.",
        examples="train.lr=5e-4 train.max_epoch=5 generate.beam=4 average.last=1 precision=cpu-bf16 "
                 "train.fp16=false.",
        rung_help="config name in configs/ (simple, medium, strong, postnorm, ...; boss: run_boss.sh) "
                  "or a path to a YAML config",
        fresh="delete what is in runs/<corpus>/<rung>/ first")


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
    # pickle.UnpicklingError: also the plugin's UnsafeCheckpointError (imported, it would import torch)
    except (ConfigError, PipelineError, StageFailed, RuntimeError, FileNotFoundError, pickle.UnpicklingError) as err:
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
