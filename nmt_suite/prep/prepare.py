"""The preparation of one corpus, step by step, into ``data/<name>/``:

``source/`` (demo, ted2020 only)  the generated or extracted raw files
``clean/``     cleaned text; train filtered, deduplicated and leak-filtered; valid/test one
               line per source line; ``mono.zh`` when the corpus has monolingual data
``ref/``       valid/test lines as given (zh converted only with --zh-script)
``spm/``       the joint sentencepiece model, trained on clean/train.* only
``spm_text/``  every clean file as space-separated pieces
``bin/``       fairseq-preprocess --joined-dictionary output (en-zh)
``bin-mono/``  clean/mono.zh binarized with the same dictionary (zh-en source side)
``manifest.json`` written last; its ``hash`` identifies the corpus

Each step is cached (see :mod:`nmt_suite.prep.workspace`): its key covers the options and
input hashes it depends on and the source of the modules that compute it (the reserved
tokens and the sentence key of :mod:`nmt_suite.tokens` included).
"""
import hashlib
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from nmt_suite import tokens
from nmt_suite.files import read_json
from nmt_suite.prep import binarize, clean, clean_step, filters, manifest, sources, spm
from nmt_suite.prep.clean_step import Cleaner, build_clean_mono, build_clean_parallel
from nmt_suite.prep.errors import PrepError
from nmt_suite.prep.filters import LengthLimits
from nmt_suite.prep.workspace import Workspace, locked
from nmt_suite.versions import installed_version

SPLITS = ("train", "valid", "test")
LANGS = ("en", "zh")


@dataclass
class Options:
    corpus: str
    name: str
    data_dir: Path
    zh_script: str
    zh_punct: str
    min_len: int
    max_len: int
    max_ratio: float
    valid_ratio: float
    seed: int
    spm_type: str
    vocab_size: int
    character_coverage: float
    spm_sample: int
    spm_threads: int
    workers: int
    train: list = field(default_factory=list)
    valid: list = field(default_factory=list)
    test: list = field(default_factory=list)
    mono: list = field(default_factory=list)
    shared_data: Path = None
    mirror_url: str = None
    download_dir: Path = None

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / self.name

    @property
    def limits(self) -> LengthLimits:
        return LengthLimits(self.min_len, self.max_len, self.max_ratio)

    def content_options(self) -> dict:
        """Every option that can change an output (not paths, workers, mirrors)."""
        return {k: getattr(self, k) for k in (
            "corpus", "zh_script", "zh_punct", "min_len", "max_len", "max_ratio", "valid_ratio", "seed",
            "spm_type", "vocab_size", "character_coverage", "spm_sample", "spm_threads")}


def code_digest(*modules) -> str:
    """Hash of the modules' source: changing a rule rebuilds what it computed."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def _read_lines(path: Path) -> list:
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


# ------------------------------------------------------------------ driver


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Outcome:
    root: Path
    manifest: dict
    changed: bool
    stages: dict          # stage -> wall seconds (this run)
    stages_cpu: dict      # stage -> CPU seconds of this process, its threads and finished children
    steps: dict           # step -> {"built": bool, "seconds": float}


def prepare(opts: Options, log=print) -> Outcome:
    """Build or update ``opts.root``. On failure nothing is published and what the run staged
    is removed; an interrupted run (a kill, Ctrl-C) keeps it for the next one to resume."""
    opts.root.mkdir(parents=True, exist_ok=True)
    with locked(opts.root):
        ws = Workspace(opts.root)
        try:
            return _prepare_locked(ws, opts, log)
        except Exception:
            ws.discard_staging()
            raise


class _Laps:
    """Wall and CPU seconds per stage of this run."""

    def __init__(self):
        self.wall, self.cpu = {}, {}
        self._last = (time.time(), _cpu_seconds())

    def __call__(self, stage: str) -> None:
        now = (time.time(), _cpu_seconds())
        self.wall[stage] = self.wall.get(stage, 0.0) + now[0] - self._last[0]
        self.cpu[stage] = self.cpu.get(stage, 0.0) + now[1] - self._last[1]
        self._last = now


def _prepare_locked(ws: Workspace, opts: Options, log) -> Outcome:
    ws.remove_abandoned()
    lap = _Laps()
    spec, origin = _resolve_sources(ws, opts, log)
    lap("sources")
    source_files, counts, clean_files = _clean_steps(ws, opts, spec, lap, log)
    for line in clean_step.warning_lines(counts, source_files):
        log(f"[prep] warning: {line}")
    trained = _subword_steps(ws, opts, clean_files, lap, log)
    notice = spm.vocab_notice(trained.info)
    if notice:
        log(f"[prep] notice: {notice}")
    dict_info = _binarize_steps(ws, opts, "clean/mono.zh" in clean_files, log)
    lap("binarize")

    outputs = ws.results_by_output()
    content = manifest.build(opts, source_files, origin, counts, ws, trained.info, dict_info, outputs)
    manifest_path = opts.root / manifest.MANIFEST
    previous = read_json(manifest_path) if manifest_path.is_file() else None
    changed = any(r.built for r in ws.results.values()) or ws.staging.exists() or previous != content
    if changed:
        ws.publish(list(previous.get("outputs", {})) if previous else [])
        manifest.write(manifest_path, content)
    lap("publish")
    return Outcome(opts.root, content, changed, lap.wall, lap.cpu,
                   {name: {"built": r.built, "seconds": round(r.seconds, 3)} for name, r in ws.results.items()})


def _resolve_sources(ws: Workspace, opts: Options, log) -> tuple:
    """The corpus's role -> files spec, after generating (demo) or fetching (ted2020) them."""
    if opts.corpus == "ted-lowres":
        return sources.ted_lowres_spec(Path(opts.shared_data)), {}
    if opts.corpus == "local":
        return sources.CorpusSpec(train=[sources.parallel_source(a) for a in opts.train],
                                  valid=[sources.parallel_source(a) for a in opts.valid] or None,
                                  test=[sources.parallel_source(a) for a in opts.test],
                                  mono=[sources.mono_source(a) for a in opts.mono]), {}
    if opts.corpus == "demo":
        from nmt_suite import demo_corpus

        result = ws.step("source", {"code": code_digest(demo_corpus), "seed": opts.seed},
                         lambda tmp: demo_corpus.write_demo_corpus(tmp / "source", seed=opts.seed), log)
        return sources.source_dir_spec(ws.locate, has_valid=True, has_mono=True), {"generator": result.info}
    if opts.corpus == "ted2020":
        from nmt_suite.prep import download

        downloads = download.ensure_files(sources.TED2020_FILES, opts.mirror_url or sources.TED2020_BASE_URL,
                                          Path(opts.download_dir), log)
        ws.step("source", {"code": code_digest(sources), "archives": {n: d["sha256"] for n, d in downloads.items()}},
                lambda tmp: sources.extract_ted2020(Path(opts.download_dir), tmp / "source"), log)
        return sources.source_dir_spec(ws.locate, has_valid=False, has_mono=True), {"downloads": downloads}
    raise PrepError(f"unknown corpus {opts.corpus!r} (expected one of {', '.join(sources.CORPORA)})")


def _clean_steps(ws: Workspace, opts: Options, spec, lap, log) -> tuple:
    """Read and validate every source, then the clean steps. Returns (source files, counts, clean files)."""
    train = sources.load_parallel(spec.train)
    valid = sources.load_parallel(spec.valid) if spec.valid else None
    test = sources.load_parallel(spec.test)
    mono_lines, mono_files = sources.load_mono(spec.mono) if spec.mono else ([], [])
    source_files = {"train": train.files, "valid": valid.files if valid else "split from train",
                    "test": test.files, "mono": mono_files}
    for files in source_files.values():
        for described in files if isinstance(files, list) else ():
            described["path"] = ws.logical_path(described["path"])
    lap("read+validate")

    zh_opts = {k: getattr(opts, k) for k in ("zh_script", "zh_punct", "min_len", "max_len")}
    parallel_key = {
        "code": code_digest(clean, filters, clean_step, tokens), "options": {**zh_opts, "max_ratio": opts.max_ratio},
        "split": None if valid else {"valid_ratio": opts.valid_ratio, "seed": opts.seed},
        "inputs": {role: [f["sha256"] for f in source_files[role]] for role in ("train", "valid", "test")
                   if isinstance(source_files[role], list)}}
    clean_files = [f"clean/{s}.{lang}" for s in SPLITS for lang in LANGS]
    cleaner = Cleaner(opts)
    try:
        cleaned = ws.step("clean-parallel", parallel_key,
                          lambda tmp: build_clean_parallel(tmp, opts, cleaner, train, valid, test), log)
        counts = dict(cleaned.info["counts"])
        if mono_lines:
            held_rel = {split: f"clean/{split}.zh" for split in ("valid", "test")}
            mono_key = {"code": code_digest(clean, filters, clean_step, tokens), "options": zh_opts,
                        "inputs": [f["sha256"] for f in mono_files],
                        "held_out": {s: ws.output_hash(rel) for s, rel in held_rel.items()}}
            mono = ws.step("clean-mono", mono_key, lambda tmp: build_clean_mono(
                tmp, opts, cleaner, mono_lines, mono_files,
                {s: _read_lines(ws.locate(rel)) for s, rel in held_rel.items()}), log)
            counts.update(mono.info["counts"])
            clean_files.append("clean/mono.zh")
    finally:
        cleaner.close()
    lap("clean")
    return source_files, counts, clean_files


def _subword_steps(ws: Workspace, opts: Options, clean_files: list, lap, log):
    """Train sentencepiece on clean/train.*, then encode every clean file (one step per file)."""
    import sentencepiece

    spm_options = spm.trainer_options(opts.spm_type, opts.vocab_size, opts.character_coverage, opts.spm_threads)
    spm_key = {"code": code_digest(spm, tokens), "sentencepiece": sentencepiece.__version__, "options": spm_options,
               "sample": opts.spm_sample, "seed": opts.seed,
               "inputs": [ws.output_hash(f"clean/train.{lang}") for lang in LANGS]}
    trained = ws.step("spm", spm_key, lambda tmp: spm.train(
        _read_lines(ws.locate("clean/train.en")), _read_lines(ws.locate("clean/train.zh")),
        tmp / "spm", spm_options, opts.spm_sample, opts.seed), log)
    lap("spm-train")

    for rel in clean_files:
        out_rel = rel.replace("clean/", "spm_text/", 1)

        def encode(tmp, rel=rel, out_rel=out_rel):
            lines = _read_lines(ws.locate(rel))
            with tqdm(total=len(lines), desc=f"encode {rel}", unit="line", disable=None, leave=False) as bar:
                spm.encode_file(ws.locate("spm/spm.model"), lines, tmp / out_rel, opts.workers, bar)

        ws.step(f"encode-{Path(rel).name}", {"model": ws.output_hash("spm/spm.model"),
                                            "input": ws.output_hash(rel)}, encode, log)
    lap("spm-encode")
    return trained


def _binarize_steps(ws: Workspace, opts: Options, has_mono: bool, log) -> dict:
    """The joined dictionary (bin/dict.{en,zh}.txt), then bin/ and bin-mono/ binarized with it,
    both fairseq-preprocess runs at once (each is mostly start-up and single-file work).
    Returns the dictionary info."""
    dictionary = ws.step("dictionary", {
        "code": code_digest(binarize, tokens), "vocab": ws.output_hash("spm/spm.vocab"),
        "counted": [ws.output_hash(f"spm_text/train.{lang}") for lang in LANGS]},
        lambda tmp: binarize.write_dictionary(
            ws.locate("spm/spm.vocab"), [ws.locate(f"spm_text/train.{lang}") for lang in LANGS], tmp / "bin"), log)
    common = {"code": code_digest(binarize, tokens), "fairseq": installed_version("fairseq"),
              "dict": ws.output_hash("bin/dict.en.txt")}
    bin_inputs = {f"{s}.{lang}": f"spm_text/{s}.{lang}" for s in SPLITS for lang in LANGS}
    jobs = [("binarize", {**common, "inputs": {name: ws.output_hash(rel) for name, rel in bin_inputs.items()}},
             lambda tmp: binarize.binarize_parallel({n: ws.locate(r) for n, r in bin_inputs.items()},
                                                    ws.locate("bin/dict.en.txt"), tmp / "bin", opts.workers))]
    if has_mono:
        jobs.append(("binarize-mono", {**common, "input": ws.output_hash("spm_text/mono.zh")},
                     lambda tmp: binarize.binarize_mono(ws.locate("spm_text/mono.zh"), ws.locate("bin/dict.en.txt"),
                                                        tmp / "bin-mono", opts.workers)))
    with ThreadPoolExecutor(len(jobs)) as pool:
        for future in [pool.submit(ws.step, name, key, build, log) for name, key, build in jobs]:
            future.result()
    return dictionary.info
