"""The boss rung: strong + back-translation, every stage cached and resumable.

    python -m nmt_suite.backtranslation.boss --corpus demo [--device cpu] [--fresh] [backtranslation.tag=true ...]

(scripts/run_boss.sh calls this.) Its stages, in the order of :meth:`BossPipeline.stages`, each
skipped when its output is up to date: the corpus is prepared as for every rung, then

1. reverse model: the ``backtranslation.reverse_rung`` config (strong) trained zh -> en on the
   same prepared corpus (same sentencepiece model and dictionary; fairseq reads the en-zh
   files in reverse), checkpoints averaged, scored on valid -> ``runs/<corpus>/<reverse_rung>-zh-en/``;
2. synthetic English for ``data/<corpus>/bin-mono``: ``backtranslation.shards`` resumable shard
   jobs of :mod:`.generate` (run one after another here; ``--dry-run`` prints them for other
   machines), merged in sentence order -> ``runs/<corpus>/bt/<name>/merged.tsv``; or the oracle
   (``backtranslation.oracle=PREFIX``, :mod:`.oracle`);
3. the training set: filtered, optionally noised and tagged, binarized with the corpus
   dictionary, checked for leaks (:mod:`.build`) -> ``runs/<corpus>/<rung>/bt-data/``;
4. with ``backtranslation.finetune=true`` only: pretraining, the forward model on real + synthetic
   data in ``<rung>/bt-train/``, which the next stage fine-tunes on the real data only
   (``fairseq-train --finetune-from-model``, options ``backtranslation.finetune_train``);
5. the forward model, trained like the strong rung (on real + synthetic data, or fine-tuned),
   averaging, fairseq-generate on the real (untagged) valid/test, scores, plots: the other rungs'
   stages (:mod:`nmt_suite.rungs.run`); ``results.json`` (:class:`BossResults`) adds the strong
   run's scores and every back-translation count.

``--fresh`` empties ``runs/<corpus>/<rung>/`` only; the reverse model and the generations are
shared by all boss variants (tagged or not, another rung name) and kept.
"""
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

from nmt_suite.backtranslation import build
from nmt_suite.backtranslation.decoding import CHOICES, Decoding
from nmt_suite.backtranslation.generate import GENERATION_JSON, JOBS_LOG, generation_records
from nmt_suite.backtranslation.merge import MERGED, merge
from nmt_suite.backtranslation.synthetic_filters import FilterConfig
from nmt_suite.files import read_json, sha256_file
from nmt_suite.rungs.config import ConfigError, check_name, load_config
from nmt_suite.rungs.results import SPLITS, RunResults, optional
from nmt_suite.rungs.run import Pipeline, PipelineError, build_run_parser, execute
from nmt_suite.rungs.stages import run_lock, run_logged
from nmt_suite.stage_cache import stage_key


# what each Settings field type accepts from YAML (an int where a float is expected; null for a collection)
_TYPES = {str: (str, "a string"), bool: (bool, "true or false"), int: (int, "an integer"),
          float: ((int, float), "a number"), tuple: ((list, tuple, type(None)), "a list"),
          dict: ((dict, type(None)), "a mapping")}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The ``backtranslation`` section of the boss config (override as ``backtranslation.<key>=...``)."""

    reverse_rung: str = "strong"           # config of the zh->en model
    reverse_name: str = ""                 # its run directory under runs/<corpus>/ (default: <reverse_rung>-zh-en)
    reverse_overrides: tuple = ()          # "section.key=value" for the reverse model only
    reverse_eval: bool = True              # score the reverse model on valid (zh->en BLEU)
    strong_rung: str = "strong"            # whose results.json is reported beside ours
    decoding: str = "beam"                 # beam | sampling | topk | beam+noise
    beam: int = 5
    topk: int = 10
    temperature: float = 1.0
    max_len_a: float = Decoding.max_len_a
    max_len_b: int = Decoding.max_len_b
    shards: int = 1
    chunk_size: int = 1000
    max_tokens: int = 8192
    limit: int = 0                         # back-translate only the first N monolingual sentences (0 = all)
    seed: int = 1
    oracle: str = ""                       # PREFIX of raw parallel text: its real English instead of a model's
    tag: bool = False
    noise_seed: int = 1
    upsample_real: int = 1
    filters: dict = dataclasses.field(default_factory=dict)
    finetune: bool = False
    finetune_train: dict = dataclasses.field(default_factory=lambda: {"lr": 0.0005, "warmup_updates": 200,
                                                                      "max_epoch": 5})

    @classmethod
    def from_config(cls, section) -> "Settings":
        if not isinstance(section, (dict, type(None))):
            raise ConfigError(f"backtranslation must be a mapping, got {section!r}")
        section = dict(section or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ConfigError(f"backtranslation: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for field in dataclasses.fields(cls):
            accepted, expected = _TYPES[field.type]
            if field.name in section and not isinstance(section[field.name], accepted):
                raise ConfigError(f"backtranslation.{field.name}={section[field.name]!r}: must be {expected}")
        if "reverse_overrides" in section:
            section["reverse_overrides"] = tuple(section["reverse_overrides"] or ())
        if "finetune_train" in section:
            section["finetune_train"] = {**cls().finetune_train, **(section["finetune_train"] or {})}
        settings = cls(**section)
        try:
            settings.decoding_config()
            settings.filter_config()
        except (ValueError, TypeError) as err:
            raise ConfigError(f"backtranslation: {err}") from None
        if settings.shards < 1 or settings.chunk_size < 1 or settings.upsample_real < 1 or settings.limit < 0:
            raise ConfigError("backtranslation: shards, chunk_size and upsample_real must be >= 1, limit >= 0")
        for name in ("reverse_name", "strong_rung"):
            if getattr(settings, name):
                check_name(getattr(settings, name), f"backtranslation.{name}")
        return settings

    def decoding_config(self) -> Decoding:
        return Decoding(self.decoding, beam=self.beam, topk=self.topk, temperature=self.temperature,
                        max_len_a=self.max_len_a, max_len_b=self.max_len_b)

    def filter_config(self) -> FilterConfig:
        return FilterConfig(**(self.filters or {}))


@dataclasses.dataclass
class BossResults(RunResults):
    """The boss rung's results.json: every rung's keys, and these."""

    strong: dict | None           # the strong run's scores beside ours; None without a strong run
    backtranslation: dict         # settings, and what each back-translation stage did
    bleu_gain_over_strong: dict | None = optional()  # split -> our BLEU - strong's, with strong's test scores


class BossPipeline(Pipeline):
    SECTIONS = {"backtranslation": tuple(field.name for field in dataclasses.fields(Settings))}
    RESULTS = BossResults

    def __init__(self, cfg, data_dir: Path, runs_dir: Path):
        super().__init__(cfg, data_dir, runs_dir)
        self.data_dir, self.runs_dir = Path(data_dir), Path(runs_dir)
        self.bt = Settings.from_config(cfg.get("backtranslation"))
        self.bt_walls, self.bt_info = {}, {}
        self.bt_bin = self.run_dir / "bt-data" / "bin"
        self.pretrain_dir = self.run_dir / "bt-train"
        if self.bt.finetune:  # this run's own training is the fine-tuning on real data
            self.train_options = {**self.train_options, **self.bt.finetune_train,
                                  "finetune_from_model": str(self.pretrain_dir / "checkpoint_avg.pt")}
        else:
            self.train_data = self.bt_bin
            self.train_options = {**self.train_options, "upsample_primary": self.bt.upsample_real}
        # what the back-translation stages set
        self.reverse_checkpoint = None  # reverse_model: the zh->en model's checkpoint_avg.pt
        self.merged = None              # synthetic: merged.tsv, (id, synthetic English, Chinese) per line

    def stages(self) -> list:
        """What :meth:`run` does, in this order: the back-translation stages come before the
        forward model's training, which reads the training set they built (``data_key``)."""
        return [self.prepare, self.reverse_model, self.synthetic, self.training_set, self.pretrain,
                self.train, self.average, self.generate, self.evaluate, self.plots]

    def _stage_wall(self, name: str, key: str, seconds: float) -> None:
        """Seconds a stage's work took: this invocation's, or when it found the work done, the
        invocation's that did it (kept in this run's stage records, like the pipeline's walls)."""
        record = self.records.read(f"bt_{name}")
        if record is None or record["key"] != key:
            record = self.records.write(f"bt_{name}", key, wall_s=seconds)
        self.bt_walls[name] = record["wall_s"]

    # ------------------------------------------------------------ 1. reverse model

    def reverse_run(self) -> Pipeline:
        name = self.reverse_name
        overrides = ["train.source_lang=zh", "train.target_lang=en", f"rung={name}", "plots=false",
                     f"device={self.cfg.get('device', 'auto')}", f"precision={self.cfg.get('precision', 'auto')}",
                     f"threads={self.cfg.get('threads') or 'null'}", f"verbose={str(self.verbose).lower()}",
                     *self.bt.reverse_overrides]
        cfg = load_config(self.bt.reverse_rung, self.corpus, overrides)
        return Pipeline(cfg, self.data_dir, self.runs_dir)

    def check(self) -> None:
        if self.reverse_name == self.rung:
            raise ConfigError(f"backtranslation.reverse_name: {self.rung!r} is this run's own folder")
        super().check()
        try:
            self.reverse_run().check()
        except ConfigError as err:
            raise ConfigError(f"reverse model ({self.reverse_name}): {err}") from None

    @property
    def reverse_name(self) -> str:
        return self.bt.reverse_name or f"{self.bt.reverse_rung}-zh-en"

    def reverse_model(self) -> None:
        """The zh->en model, trained, averaged and scored by the rung pipeline in its own run directory."""
        if self.bt.oracle:
            return  # the oracle's English is real: no model translates
        reverse = self.reverse_run()
        print(f"[boss] reverse model (zh->en, {self.bt.reverse_rung} config) in {reverse.run_dir}", flush=True)
        with run_lock(reverse.run_dir):
            reverse.data_key = self.corpus_hash
            reverse.train()
            reverse.average()
            checkpoint = reverse.run_dir / "checkpoint_avg.pt"
            info = {"run_dir": str(reverse.run_dir), "checkpoint": str(checkpoint), "averaged": reverse.averaged,
                    "command": shlex.join(map(str, reverse.train_cmd()))}
            if self.bt.reverse_eval:
                reverse.generate(splits=("valid",))
                info["valid"] = self._score_reverse(reverse)
                print(f"[boss] reverse model valid BLEU (zh->en) {info['valid']['bleu']} "
                      f"({info['valid']['bleu_signature']})", flush=True)
        info["wall_s"] = {stage: (reverse.records.read(stage) or {}).get("wall_s", 0.0)
                          for stage in ("train", "average", "generate_valid")}
        self.bt_walls["reverse"] = sum(info["wall_s"].values())
        self.bt_info["reverse"] = info
        self.reverse_checkpoint = checkpoint

    def _score_reverse(self, reverse: Pipeline) -> dict:
        import sacrebleu
        import sentencepiece

        from nmt_suite.fairseq_output import read_hypotheses
        from nmt_suite.rungs.evaluate import in_source_order, read_lines

        sp = sentencepiece.SentencePieceProcessor(model_file=str(self.data / "spm" / "spm.model"))
        refs = read_lines(self.data / "ref" / "valid.en")
        hyps, missing = in_source_order(read_hypotheses(reverse.run_dir / "generate-valid.txt"), len(refs), sp)
        bleu = sacrebleu.metrics.BLEU()
        return {"bleu": round(bleu.corpus_score(hyps, [refs]).score, 2), "bleu_signature": str(bleu.get_signature()),
                "n_sentences": len(refs), "missing_hypotheses": len(missing)}

    # ------------------------------------------------------------ 2. synthetic English

    def generation_key(self, checkpoint: Path) -> str:
        """The key of the back-translation of bin-mono with ``checkpoint``: what its sentences depend on."""
        return stage_key("synthetic", {
            "checkpoint": sha256_file(checkpoint), "decoding": self.bt.decoding_config().generation_settings(),
            "chunk_size": self.bt.chunk_size, "seed": self.bt.seed, "limit": self.bt.limit,
            "max_tokens": self.bt.max_tokens, "mono": sha256_file(self.data / "bin-mono" / "mono.zh-en.zh.bin")})

    def generation_dir(self, checkpoint: Path) -> Path:
        """Where the back-translation with ``checkpoint`` goes: shared by every boss run of the corpus."""
        method = self.bt.decoding_config().generation_method
        return self.runs_dir / self.corpus / "bt" / f"{self.reverse_name}.{method}.{self.generation_key(checkpoint)[:12]}"

    def shard_cmd(self, checkpoint: Path, out_dir: Path, shard_id: int) -> list:
        decoding = self.bt.decoding_config()
        fp16 = self.device == "cuda" and self.precision in ("fp16", "amp")
        return [sys.executable, "-m", "nmt_suite.backtranslation.generate", "--data", self.data / "bin-mono",
                "--path", checkpoint, "--out-dir", out_dir, "--shards", self.bt.shards, "--shard-id", shard_id,
                "--chunk-size", self.bt.chunk_size, "--decoding", decoding.generation_method,
                "--beam", decoding.beam, "--topk", decoding.topk, "--temperature", decoding.temperature,
                "--max-len-a", decoding.max_len_a, "--max-len-b", decoding.max_len_b,
                "--max-tokens", self.bt.max_tokens, "--limit", self.bt.limit, "--seed", self.bt.seed,
                "--device", self.device, *(["--fp16"] if fp16 else [])]

    def synthetic(self) -> None:
        """merged.tsv: the reverse model's English for bin-mono (its shard jobs, merged), or the oracle's."""
        if self.bt.oracle:
            from nmt_suite.backtranslation.oracle import build_oracle

            start = time.time()
            out_dir = self.runs_dir / self.corpus / "bt" / "oracle"
            print(f"[boss] oracle: the real English of {self.bt.oracle}.zh -> {out_dir}", flush=True)
            self.bt_info["generation"] = {"dir": str(out_dir), "oracle": build_oracle(self.data, self.bt.oracle, out_dir)}
            self._stage_wall("synthetic", out_dir.name, time.time() - start)
            self.merged = out_dir / MERGED
            return
        key = self.generation_key(self.reverse_checkpoint)
        out_dir = self.generation_dir(self.reverse_checkpoint)
        records = generation_records(out_dir)
        if records.up_to_date("merge", key):
            print(f"[boss] synthetic English: done already ({out_dir / MERGED})", flush=True)
        else:
            for shard in range(self.bt.shards):
                print(f"[boss] back-translate shard {shard + 1}/{self.bt.shards} -> {out_dir}", flush=True)
                out_dir.mkdir(parents=True, exist_ok=True)
                run_logged(self.shard_cmd(self.reverse_checkpoint, out_dir, shard), out_dir / "generate.log",
                           echo=False, env=self.child_env)
            merge(out_dir, self.bt.shards)
            records.write("merge", key, outputs=[MERGED])
        jobs = [json.loads(line) for line in (out_dir / JOBS_LOG).read_text().splitlines()] \
            if (out_dir / JOBS_LOG).exists() else []
        self.bt_info["generation"] = {"dir": str(out_dir), **read_json(out_dir / GENERATION_JSON), "jobs": jobs}
        # decoding seconds summed over shard jobs (wherever they ran), not this invocation's wall time
        self.bt_walls["synthetic"] = sum(job["seconds"] for job in jobs)
        self.merged = out_dir / MERGED

    # ------------------------------------------------------------ 3. training set

    def build_settings(self, merged: Path) -> build.BuildSettings:
        return build.BuildSettings(
            corpus_dir=self.data, synthetic=merged, out_dir=self.run_dir / "bt-data",
            src=self.cfg["train"].get("source_lang", "en"), tgt=self.cfg["train"].get("target_lang", "zh"),
            tag=self.bt.tag, noise=self.bt.decoding_config().noisy, noise_seed=self.bt.noise_seed,
            upsample_real=self.bt.upsample_real, filters=self.bt.filter_config())

    def training_set(self) -> None:
        """bt-data/: real + filtered synthetic pairs, binarized with the corpus dictionary; sets ``data_key``."""
        start = time.time()
        print(f"[boss] training set: real + filtered synthetic -> {self.run_dir / 'bt-data'}", flush=True)
        settings = self.build_settings(self.merged)
        print("[boss] $", shlex.join(settings.command()), flush=True)
        try:
            manifest = build.build(settings)  # in this process: one fairseq import less
        except build.BUILD_ERRORS as err:
            raise PipelineError(f"building the training set failed: {err}") from None
        expected = ["--upsample-primary", str(self.bt.upsample_real)]
        if manifest["fairseq_train_args"] != expected:
            raise PipelineError(f"{self.bt_bin.parent}/manifest.json asks fairseq-train for "
                                f"{manifest['fairseq_train_args']}, expected {expected}")
        self._stage_wall("training_set", manifest["hash"], time.time() - start)
        self.bt_info["training_set"] = {k: manifest[k] for k in ("filter", "train", "leak_check", "options", "hash")}
        self.data_key = stage_key("boss_data", {"corpus": self.corpus_hash, "boss_data": manifest["hash"]})

    # ------------------------------------------------------------ 4. pretraining (with fine-tuning only)

    def pretrain_run(self) -> Pipeline:
        """With fine-tuning: the forward model on real + synthetic data, in its own run directory."""
        pre = Pipeline(self.cfg, self.data_dir, self.runs_dir, run_dir=self.pretrain_dir)
        pre.train_data = self.bt_bin
        pre.train_options = {**pre.train_options, "upsample_primary": self.bt.upsample_real}
        return pre

    def pretrain(self) -> None:
        """With fine-tuning: train and average the pretrain run; its average is what ``train`` fine-tunes."""
        if not self.bt.finetune:
            return
        pre = self.pretrain_run()
        print(f"[boss] forward model on real + synthetic in {pre.run_dir}, then fine-tuned on real data", flush=True)
        start = time.time()
        pre.data_key = self.data_key
        pre.train()
        pre.average()
        self._stage_wall("pretrain", pre.avg_key, time.time() - start)
        self.bt_info["bt_train"] = {"run_dir": str(pre.run_dir), "command": shlex.join(map(str, pre.train_cmd()))}
        self.data_key = stage_key("pretrained", {"corpus": self.corpus_hash, "pretrained": pre.avg_key})

    # ------------------------------------------------------------ results

    def strong_results(self):
        path = self.runs_dir / self.corpus / self.bt.strong_rung / "results.json"
        if not path.exists():
            print(f"[boss] no {path}: run scripts/run_strong.sh --corpus {self.corpus} to compare", flush=True)
            return None
        strong = read_json(path)
        return {"results": str(path), "scores": strong.get("scores"), "corpus_hash": strong.get("corpus_hash"),
                "updates": strong.get("updates"), "wall_time_s": strong.get("wall_time_s")}

    def result_fields(self, started: float) -> dict:
        fields = super().result_fields(started)
        scores, strong, gain = fields["scores"], self.strong_results(), None
        if strong and strong.get("corpus_hash") != fields["corpus_hash"]:
            strong["note"] = "prepared from another version of the corpus: scores not comparable"
        if strong and (strong.get("scores") or {}).get("test") and scores["test"]:
            gain = {split: round(scores[split]["bleu"] - strong["scores"][split]["bleu"], 2)
                    for split in SPLITS if (strong["scores"].get(split) and scores.get(split))}
        walls = dict(fields["wall_time_s"])
        for name, seconds in self.bt_walls.items():
            walls[f"bt_{name}"] = round(seconds, 1)
        walls["total"] = round(sum(v for k, v in walls.items() if k not in ("total", "this_invocation")), 1)
        backtranslation = {"settings": dataclasses.asdict(self.bt), **self.bt_info,
                           "finetuned_on_real": self.bt.finetune}
        return {**fields, "wall_time_s": walls, "strong": strong, "backtranslation": backtranslation,
                "bleu_gain_over_strong": gain}

    def run(self) -> dict:
        results = super().run()
        if results["strong"] and results.get("bleu_gain_over_strong"):
            print(f"[boss] test BLEU {results['scores']['test']['bleu']} vs strong "
                  f"{results['strong']['scores']['test']['bleu']} ({results['bleu_gain_over_strong']['test']:+.2f})",
                  flush=True)
        return results

    def describe(self) -> str:
        """The resolved config and every command, in the order they run."""
        reverse = self.reverse_run()
        checkpoint = reverse.run_dir / "checkpoint_avg.pt"
        out_dir = (self.generation_dir(checkpoint) if checkpoint.exists()
                   else self.runs_dir / self.corpus / "bt" / "GENERATION_DIR")
        lines = [f"# resolved config ({self.rung} on {self.corpus}, device {self.device}, precision {self.precision})",
                 json.dumps(self.cfg, indent=2, sort_keys=True),
                 "# prepare", self.prepare_line(),
                 f"# 1. reverse model (zh->en) in {reverse.run_dir}", shlex.join(map(str, reverse.train_cmd()))]
        if self.bt.oracle:
            lines += ["# 2. oracle: the real English instead of back-translation",
                      f"{sys.executable} -m nmt_suite.backtranslation.oracle --corpus-dir {self.data} "
                      f"--parallel {self.bt.oracle} --out-dir {self.runs_dir / self.corpus / 'bt' / 'oracle'}"]
            out_dir = self.runs_dir / self.corpus / "bt" / "oracle"
        else:
            lines += [f"# 2. back-translation: {self.bt.shards} resumable shard job(s); any machines sharing "
                      f"{self.runs_dir} can run them, then merge"]
            lines += [shlex.join(map(str, self.shard_cmd(checkpoint, out_dir, k))) for k in range(self.bt.shards)]
            lines += [f"{sys.executable} -m nmt_suite.backtranslation.merge --out-dir {out_dir} "
                      f"--shards {self.bt.shards}"]
        lines += ["# 3. training set", shlex.join(self.build_settings(out_dir / MERGED).command())]
        if self.bt.finetune:
            lines += [f"# 4a. forward model on real + synthetic in {self.pretrain_dir}",
                      shlex.join(map(str, self.pretrain_run().train_cmd())), "# 4b. fine-tuned on real data"]
        else:
            lines += ["# 4. forward model on real + synthetic"]
        lines.append(shlex.join(map(str, self.train_cmd())))
        for split in SPLITS:
            lines += [f"# 5. generate {split}", shlex.join(map(str, self.generate_cmd(split, self.run_dir)))]
        return "\n".join(lines)


def build_parser():
    parser = build_run_parser(
        "run_boss.sh", description="The boss rung: strong + back-translation (reverse model, sharded synthetic "
                                   "data, filtered/tagged training set, forward model, evaluation) into "
                                   "runs/<corpus>/<rung>/.",
        examples="backtranslation.decoding=sampling backtranslation.tag=true backtranslation.shards=4 "
                 f"train.max_epoch=5. Decodings: {', '.join(CHOICES)}.",
        rung_default="boss", rung_help="config name or YAML path (default: %(default)s)",
        fresh="empty runs/<corpus>/<name>/ first (keeps the reverse model and the generations)")
    parser.add_argument("--name", help="run directory name under runs/<corpus>/ (default: the rung), "
                                       "e.g. boss-sampling-tagged for a variant")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    overrides = list(args.overrides) + ([f"rung={args.name}"] if args.name else [])
    return execute(
        args, overrides, BossPipeline, "boss",
        lambda p: f"rung {p.rung}, corpus {p.corpus}, device {p.device}, "
                  f"back-translation {json.dumps(dataclasses.asdict(p.bt), sort_keys=True)}",
    )


if __name__ == "__main__":
    raise SystemExit(main())
