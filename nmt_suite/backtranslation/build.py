"""Build the boss training set: real pairs + filtered (optionally noised, tagged) synthetic pairs.

    python -m nmt_suite.backtranslation.build --corpus-dir data/X \\
        --synthetic runs/X/bt/beam/merged.tsv --out-dir runs/X/boss/data [--tag] [--noise]

Only the synthetic pairs are binarized (fairseq-preprocess through
:func:`nmt_suite.prep.binarize.run_preprocess`, with ``--srcdict/--tgtdict`` from ``data/X/bin``); the real parallel data is never binarized again. ``<out-dir>/bin``
is a fairseq data directory whose ``train`` split is real + synthetic through fairseq's
own multi-file splits: the translation task concatenates ``train`` (a link to the real
data) and ``train1`` (synthetic), repeating the first ``--upsample-primary`` times.
fairseq's default for that option is -1, which fails on a multi-file split, so the
manifest's ``fairseq_train_args`` (``--upsample-primary <--upsample-real>``) must be
passed to fairseq-train. ``valid``/``test`` link to the real ones.

Before anything is moved into place, the binarized training set is checked against every
valid/test sentence (:mod:`.leakage`). The directory is built under a temporary name and
swapped in when complete (:func:`nmt_suite.files.atomic_directory`); a second run with the
same inputs and options does nothing (its record ``<out-dir>/.stages/build.json``,
:mod:`nmt_suite.stage_cache`).

In-process callers build a :class:`BuildSettings` and call :func:`build`, catching
:data:`BUILD_ERRORS` as :func:`main` does; ``BuildSettings.command()`` is the equivalent
command line.
"""
import argparse
import dataclasses
import os
import shutil
import sys
from pathlib import Path

from nmt_suite.backtranslation.leakage import HeldOutIndex, LeakError, verify_binarized
from nmt_suite.backtranslation.noise import NoiseConfig, noise_sentence
from nmt_suite.backtranslation.shards import CorruptChunkError, Record
from nmt_suite.backtranslation.synthetic_filters import FilterConfig, PairFilter
from nmt_suite.backtranslation.tagging import MissingTagError, require_tag_in_dictionary, tag
from nmt_suite.files import atomic_directory, atomic_write_json, read_json, remove_stale_temps
from nmt_suite.prep.binarize import run_preprocess
from nmt_suite.prep.errors import PrepError
from nmt_suite.stage_cache import StageRecords, stage_key
from nmt_suite.tokens import BT_TAG

MANIFEST = "manifest.json"
BUILD_STAGE = "build"
STAGES_DIR = ".stages"
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)


class BuildError(RuntimeError):
    pass


# what a build refuses with a message of its own (main prints it; in-process callers catch the same)
BUILD_ERRORS = (BuildError, MissingTagError, LeakError, CorruptChunkError, PrepError, FileNotFoundError, ValueError)


@dataclasses.dataclass(frozen=True)
class BuildSettings:
    """Everything a build reads and decides, as the command line gives it."""

    corpus_dir: Path
    synthetic: Path
    out_dir: Path
    src: str = "en"  # the forward model's source language: the synthetic side
    tgt: str = "zh"  # the forward model's target language: the monolingual side
    tag: bool = False
    noise: bool = False
    noise_seed: int = 1
    upsample_real: int = 1
    filters: FilterConfig = FilterConfig()
    workers: int = DEFAULT_WORKERS

    def __post_init__(self):
        for name in ("corpus_dir", "synthetic", "out_dir"):
            object.__setattr__(self, name, Path(getattr(self, name)))

    def command(self) -> list:
        """The equivalent ``python -m nmt_suite.backtranslation.build ...`` (``parse_args`` of
        everything after the module name gives these settings back)."""
        f = self.filters
        return [sys.executable, "-m", "nmt_suite.backtranslation.build",
                "--corpus-dir", str(self.corpus_dir), "--synthetic", str(self.synthetic),
                "--out-dir", str(self.out_dir), "--src", self.src, "--tgt", self.tgt,
                "--upsample-real", str(self.upsample_real), "--noise-seed", str(self.noise_seed),
                "--max-len", str(f.max_len), "--max-ratio", str(f.max_ratio),
                "--ratio-min-len", str(f.ratio_min_len), "--max-copy-overlap", str(f.max_copy_overlap),
                *(["--workers", str(self.workers)] if self.workers != DEFAULT_WORKERS else []),
                *(["--tag"] if self.tag else []), *(["--noise"] if self.noise else [])]


def _real_prefix(bin_dir: Path, split: str, src: str, tgt: str) -> str:
    for pair in (f"{src}-{tgt}", f"{tgt}-{src}"):
        if all((bin_dir / f"{split}.{pair}.{lang}.{ext}").is_file() for lang in (src, tgt) for ext in ("bin", "idx")):
            return pair
    raise BuildError(f"no binarized '{split}' split for {src}-{tgt} in {bin_dir}")


def _corpus_hash(corpus_dir: Path) -> str:
    manifest = corpus_dir / "manifest.json"
    if not manifest.is_file():
        raise BuildError(f"{manifest} not found: prepare the corpus first (scripts/prepare_data.py)")
    corpus_hash = read_json(manifest).get("hash")
    if not corpus_hash:
        raise BuildError(f"{manifest} has no top-level 'hash'")
    return corpus_hash


def read_synthetic(path: Path):
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            yield Record.from_line(line, f"{path}:{lineno}")


def write_synthetic(settings: BuildSettings, work: Path, held_out: HeldOutIndex) -> dict:
    """Filter, noise and tag the synthetic pairs into ``work/synthetic.{src,tgt}``; return counts."""
    s = settings
    pair_filter = PairFilter(s.filters, held_out, real_lang=s.tgt, synthetic_lang=s.src)
    noise_config = NoiseConfig()
    with open(work / f"synthetic.{s.src}", "w", encoding="utf-8") as out_src, \
            open(work / f"synthetic.{s.tgt}", "w", encoding="utf-8") as out_tgt, \
            open(work / "dropped.tsv", "w", encoding="utf-8") as dropped:
        for record in read_synthetic(s.synthetic):
            source = record.hypothesis
            if s.noise:
                source = " ".join(noise_sentence(source.split(), s.noise_seed, record.id, noise_config))
            reason = pair_filter.reason(record.source, record.hypothesis, source if s.noise else None)
            if reason is not None:
                dropped.write(f"{record.id}\t{reason}\n")
                continue
            if s.tag:
                source = tag(source)
            out_src.write(source + "\n")
            out_tgt.write(record.source + "\n")
    summary = pair_filter.summary()
    if summary["kept"] == 0:
        raise BuildError(f"all {summary['input']} synthetic pairs of {s.synthetic} were filtered out: "
                         f"{summary['dropped']}")
    return summary


def binarize_synthetic(settings: BuildSettings, work: Path, bin_dir: Path, index: int) -> list:
    """Binarize the synthetic pairs with the corpus's dictionaries into ``train<index>``; return
    the files written (relative to ``work``)."""
    s = settings
    dicts = {lang: (s.corpus_dir / "bin" / f"dict.{lang}.txt").resolve() for lang in (s.src, s.tgt)}
    staging = work / "preprocess"
    run_preprocess(["--source-lang", s.src, "--target-lang", s.tgt, "--trainpref", (work / "synthetic").resolve(),
                    "--destdir", staging.resolve(), "--srcdict", dicts[s.src], "--tgtdict", dicts[s.tgt],
                    "--workers", s.workers], work)
    written = []
    for lang in (s.src, s.tgt):
        for ext in ("bin", "idx"):
            name = f"train{index}.{s.src}-{s.tgt}.{lang}.{ext}"
            os.replace(staging / f"train.{s.src}-{s.tgt}.{lang}.{ext}", bin_dir / name)
            written.append(bin_dir.relative_to(work) / name)
    shutil.move(str(staging / "preprocess.log"), work / "preprocess.log")
    shutil.rmtree(staging)
    return written


def link_real(settings: BuildSettings, bin_dir: Path, final_bin_dir: Path) -> int:
    """Links to the real data (paths relative to where ``bin_dir`` will finally live); returns pairs."""
    s = settings
    real_bin = s.corpus_dir / "bin"
    for lang in (s.src, s.tgt):
        shutil.copyfile(real_bin / f"dict.{lang}.txt", bin_dir / f"dict.{lang}.txt")

    def link(name: str, target: Path):
        os.symlink(os.path.relpath(target.resolve(), final_bin_dir.resolve()), bin_dir / name)

    for split in ("train", "valid", "test"):
        split_pair = _real_prefix(real_bin, split, s.src, s.tgt)
        for lang in (s.src, s.tgt):
            for ext in ("bin", "idx"):
                link(f"{split}.{s.src}-{s.tgt}.{lang}.{ext}", real_bin / f"{split}.{split_pair}.{lang}.{ext}")
    from fairseq.data import data_utils

    pair = _real_prefix(real_bin, "train", s.src, s.tgt)
    return len(data_utils.load_indexed_dataset(str(real_bin / f"train.{pair}.{s.src}"), None, "mmap"))


def build_key(settings: BuildSettings, records: StageRecords) -> tuple:
    """(key, inputs, options): the key of the build, and what it is computed from (paths are
    described in ``inputs`` but left out of the key: a moved corpus is the same corpus)."""
    s = settings
    inputs = {
        "corpus_dir": str(s.corpus_dir),
        "corpus_hash": _corpus_hash(s.corpus_dir),
        "dict_sha256": {lang: records.file_hash(s.corpus_dir / "bin" / f"dict.{lang}.txt") for lang in (s.src, s.tgt)},
        "synthetic": str(s.synthetic),
        "synthetic_sha256": records.file_hash(s.synthetic),
    }
    options = {
        "src": s.src, "tgt": s.tgt, "tag": s.tag, "noise": s.noise,
        "noise_settings": dataclasses.asdict(NoiseConfig()) if s.noise else None,
        "noise_seed": s.noise_seed if s.noise else None, "upsample_real": s.upsample_real,
        "filters": dataclasses.asdict(s.filters),
    }
    comparable = {**inputs, "corpus_dir": None, "synthetic": None}
    return stage_key(BUILD_STAGE, {"inputs": comparable, "options": options}), inputs, options


def build(settings: BuildSettings) -> dict:
    """Build ``settings.out_dir`` (unless it is up to date); return its manifest."""
    s = settings
    if not s.synthetic.is_file():
        raise BuildError(f"synthetic pairs not found: {s.synthetic} (run the generation and merge first)")
    if s.upsample_real < 1:
        raise BuildError(f"--upsample-real must be >= 1, got {s.upsample_real}")
    for lang in (s.src, s.tgt):
        if not (s.corpus_dir / "bin" / f"dict.{lang}.txt").is_file():
            raise BuildError(f"{s.corpus_dir / 'bin' / f'dict.{lang}.txt'} not found: prepare the corpus first")
    if s.tag:
        require_tag_in_dictionary(s.corpus_dir / "bin" / f"dict.{s.src}.txt")
    records = StageRecords(s.out_dir / STAGES_DIR, base=s.out_dir)
    key, inputs, options = build_key(s, records)
    if records.up_to_date(BUILD_STAGE, key) is not None:
        print(f"{s.out_dir}: up to date (same inputs and options), nothing to do", file=sys.stderr)
        return read_json(s.out_dir / MANIFEST)

    held_out = HeldOutIndex.from_corpus(s.corpus_dir, (s.src, s.tgt))
    remove_stale_temps(s.out_dir.parent, s.out_dir.name)  # left by a killed build
    with atomic_directory(s.out_dir) as work:
        (work / "bin").mkdir()
        filter_summary = write_synthetic(s, work, held_out)
        real_pairs = link_real(s, work / "bin", s.out_dir / "bin")
        binarized = binarize_synthetic(s, work, work / "bin", 1)
        checked = verify_binarized(work / "bin", "train", s.src, s.tgt, held_out)
        synthetic_files = [f"synthetic.{s.src}", f"synthetic.{s.tgt}"]
        work_records = StageRecords(work / STAGES_DIR, base=work)
        manifest = {
            "hash": key,
            "inputs": inputs,
            "options": options,
            "filter": filter_summary,
            "train": {
                "real_pairs": real_pairs,
                "upsample_real": s.upsample_real,
                "synthetic_pairs": filter_summary["kept"],
                "total_pairs": real_pairs * s.upsample_real + filter_summary["kept"],
            },
            "fairseq_train_args": ["--upsample-primary", str(s.upsample_real)],
            "leak_check": {"held_out_sentences": len(held_out), "checked_sentences": checked, "leaks": 0},
            "outputs": {name: work_records.file_hash(work / name) for name in synthetic_files},
        }
        atomic_write_json(work / MANIFEST, manifest)
        work_records.write(BUILD_STAGE, key, outputs=[MANIFEST, *synthetic_files, *binarized])
    return manifest


def build_parser() -> argparse.ArgumentParser:
    defaults = FilterConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--corpus-dir", type=Path, required=True, help="prepared corpus (data/<corpus>)")
    parser.add_argument("--synthetic", type=Path, required=True, help="merged.tsv of the generation")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--src", default="en", help="forward model's source language (the synthetic side)")
    parser.add_argument("--tgt", default="zh", help="forward model's target language (the monolingual side)")
    parser.add_argument("--tag", action="store_true", help=f"prefix synthetic sources with the reserved tag {BT_TAG}")
    parser.add_argument("--noise", action="store_true", help="Edunov et al. noise on synthetic sources")
    parser.add_argument("--noise-seed", type=int, default=1)
    parser.add_argument("--upsample-real", type=int, default=1,
                        help="times the real data is repeated in the mix (fairseq-train --upsample-primary)")
    parser.add_argument("--max-len", type=int, default=defaults.max_len)
    parser.add_argument("--max-ratio", type=float, default=defaults.max_ratio)
    parser.add_argument("--ratio-min-len", type=int, default=defaults.ratio_min_len)
    parser.add_argument("--max-copy-overlap", type=float, default=defaults.max_copy_overlap)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    return parser


def parse_args(argv=None) -> BuildSettings:
    args = build_parser().parse_args(argv)
    return BuildSettings(
        corpus_dir=args.corpus_dir, synthetic=args.synthetic, out_dir=args.out_dir, src=args.src, tgt=args.tgt,
        tag=args.tag, noise=args.noise, noise_seed=args.noise_seed, upsample_real=args.upsample_real,
        filters=FilterConfig(args.max_len, args.max_ratio, args.ratio_min_len, args.max_copy_overlap),
        workers=args.workers)


def main(argv=None) -> int:
    try:
        settings = parse_args(argv)
        manifest = build(settings)
    except BUILD_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{settings.out_dir}: {manifest['train']['total_pairs']} training pairs "
          f"({manifest['filter']['kept']} synthetic kept of {manifest['filter']['input']}; "
          f"dropped {manifest['filter']['dropped']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
