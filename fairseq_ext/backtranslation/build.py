"""Build the boss training set: real pairs + filtered (optionally noised, tagged) synthetic pairs.

    python -m fairseq_ext.backtranslation.build --corpus-dir data/X \\
        --synthetic runs/X/bt/beam/merged.tsv --out-dir runs/X/boss/data [--tag] [--noise]

Only the synthetic pairs are binarized (fairseq-preprocess with ``--srcdict/--tgtdict``
from ``data/X/bin``); the real parallel data is never binarized again. ``<out-dir>/bin``
is a fairseq data directory whose ``train`` split is real + synthetic through fairseq's
own multi-file splits: the translation task concatenates ``train`` (a link to the real
data) and ``train1`` (synthetic), repeating the first ``--upsample-primary`` times.
fairseq's default for that option is -1, which fails on a multi-file split, so the
manifest's ``fairseq_train_args`` (``--upsample-primary <--upsample-real>``) must be
passed to fairseq-train. ``valid``/``test`` link to the real ones.

Before anything is moved into place, the binarized training set is checked against every
valid/test sentence (:mod:`.leakage`). The directory is built under a temporary name and
renamed when complete; a second run with the same inputs and options does nothing.
"""
import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

from fairseq_ext.backtranslation.files import read_json, sha256_file, sha256_json, write_json
from fairseq_ext.backtranslation.filters import FilterConfig, PairFilter
from fairseq_ext.backtranslation.leakage import HeldOutIndex, LeakError, verify_binarized
from fairseq_ext.backtranslation.noise import NoiseConfig, noise_sentence
from fairseq_ext.backtranslation.shards import CorruptChunkError, Record
from fairseq_ext.backtranslation.tagging import BT_TAG, MissingTagError, require_tag_in_dictionary, tag

MANIFEST = "manifest.json"


class BuildError(RuntimeError):
    pass


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


def write_synthetic(args, work: Path, held_out: HeldOutIndex) -> dict:
    """Filter, noise and tag the synthetic pairs into ``work/synthetic.{src,tgt}``; return counts."""
    pair_filter = PairFilter(args.filter_config, held_out, real_lang=args.tgt, synthetic_lang=args.src)
    noise_config = NoiseConfig()
    with open(work / f"synthetic.{args.src}", "w", encoding="utf-8") as out_src, \
            open(work / f"synthetic.{args.tgt}", "w", encoding="utf-8") as out_tgt, \
            open(work / "dropped.tsv", "w", encoding="utf-8") as dropped:
        for record in read_synthetic(args.synthetic):
            source = record.hypothesis
            if args.noise:
                source = " ".join(noise_sentence(source.split(), args.noise_seed, record.id, noise_config))
            reason = pair_filter.reason(record.source, record.hypothesis, source if args.noise else None)
            if reason is not None:
                dropped.write(f"{record.id}\t{reason}\n")
                continue
            if args.tag:
                source = tag(source)
            out_src.write(source + "\n")
            out_tgt.write(record.source + "\n")
    summary = pair_filter.summary()
    if summary["kept"] == 0:
        raise BuildError(f"all {summary['input']} synthetic pairs of {args.synthetic} were filtered out: "
                         f"{summary['dropped']}")
    return summary


def binarize_synthetic(args, work: Path, bin_dir: Path, index: int) -> None:
    """fairseq-preprocess the synthetic pairs with the corpus's dictionaries into ``train<index>``."""
    dicts = {lang: args.corpus_dir / "bin" / f"dict.{lang}.txt" for lang in (args.src, args.tgt)}
    staging = work / "preprocess"
    subprocess.run(
        [sys.executable, "-m", "fairseq_cli.preprocess", "--source-lang", args.src, "--target-lang", args.tgt,
         "--trainpref", str(work / "synthetic"), "--destdir", str(staging),
         "--srcdict", str(dicts[args.src]), "--tgtdict", str(dicts[args.tgt]), "--workers", str(args.workers)],
        check=True, capture_output=True, text=True,
    )
    for lang in (args.src, args.tgt):
        for ext in ("bin", "idx"):
            os.replace(staging / f"train.{args.src}-{args.tgt}.{lang}.{ext}",
                       bin_dir / f"train{index}.{args.src}-{args.tgt}.{lang}.{ext}")
    shutil.move(str(staging / "preprocess.log"), work / "preprocess.log")
    shutil.rmtree(staging)


def link_real(args, bin_dir: Path, final_bin_dir: Path) -> int:
    """Links to the real data (paths relative to where ``bin_dir`` will finally live); returns pairs."""
    real_bin = args.corpus_dir / "bin"
    for lang in (args.src, args.tgt):
        shutil.copyfile(real_bin / f"dict.{lang}.txt", bin_dir / f"dict.{lang}.txt")

    def link(name: str, target: Path):
        os.symlink(os.path.relpath(target.resolve(), final_bin_dir.resolve()), bin_dir / name)

    for split in ("train", "valid", "test"):
        split_pair = _real_prefix(real_bin, split, args.src, args.tgt)
        for lang in (args.src, args.tgt):
            for ext in ("bin", "idx"):
                link(f"{split}.{args.src}-{args.tgt}.{lang}.{ext}", real_bin / f"{split}.{split_pair}.{lang}.{ext}")
    from fairseq.data import data_utils

    pair = _real_prefix(real_bin, "train", args.src, args.tgt)
    return len(data_utils.load_indexed_dataset(str(real_bin / f"train.{pair}.{args.src}"), None, "mmap"))


def build_key(args) -> tuple:
    inputs = {
        "corpus_dir": str(args.corpus_dir),
        "corpus_hash": _corpus_hash(args.corpus_dir),
        "dict_sha256": {lang: sha256_file(args.corpus_dir / "bin" / f"dict.{lang}.txt") for lang in (args.src, args.tgt)},
        "synthetic": str(args.synthetic),
        "synthetic_sha256": sha256_file(args.synthetic),
    }
    options = {
        "src": args.src, "tgt": args.tgt, "tag": args.tag, "noise": args.noise,
        "noise_settings": dataclasses.asdict(NoiseConfig()) if args.noise else None,
        "noise_seed": args.noise_seed if args.noise else None, "upsample_real": args.upsample_real,
        "filters": dataclasses.asdict(args.filter_config),
    }
    comparable = {**inputs, "corpus_dir": None, "synthetic": None}
    return sha256_json({"inputs": comparable, "options": options}), inputs, options


def build(args) -> dict:
    args.corpus_dir, args.synthetic, args.out_dir = map(Path, (args.corpus_dir, args.synthetic, args.out_dir))
    if not args.synthetic.is_file():
        raise BuildError(f"synthetic pairs not found: {args.synthetic} (run the generation and merge first)")
    if args.upsample_real < 1:
        raise BuildError(f"--upsample-real must be >= 1, got {args.upsample_real}")
    for lang in (args.src, args.tgt):
        if not (args.corpus_dir / "bin" / f"dict.{lang}.txt").is_file():
            raise BuildError(f"{args.corpus_dir / 'bin' / f'dict.{lang}.txt'} not found: prepare the corpus first")
    if args.tag:
        require_tag_in_dictionary(args.corpus_dir / "bin" / f"dict.{args.src}.txt")
    key, inputs, options = build_key(args)
    manifest_path = args.out_dir / MANIFEST
    if manifest_path.is_file() and read_json(manifest_path).get("hash") == key:
        print(f"{args.out_dir}: up to date (same inputs and options), nothing to do", file=sys.stderr)
        return read_json(manifest_path)

    held_out = HeldOutIndex.from_corpus(args.corpus_dir, (args.src, args.tgt))
    for stale in args.out_dir.parent.glob(f".{args.out_dir.name}.*-*"):  # left by a killed build
        shutil.rmtree(stale, ignore_errors=True)
    work = args.out_dir.parent / f".{args.out_dir.name}.tmp-{os.getpid()}"
    (work / "bin").mkdir(parents=True)
    try:
        filter_summary = write_synthetic(args, work, held_out)
        real_pairs = link_real(args, work / "bin", args.out_dir / "bin")
        binarize_synthetic(args, work, work / "bin", 1)
        checked = verify_binarized(work / "bin", "train", args.src, args.tgt, held_out)
        manifest = {
            "hash": key,
            "inputs": inputs,
            "options": options,
            "filter": filter_summary,
            "train": {
                "real_pairs": real_pairs,
                "upsample_real": args.upsample_real,
                "synthetic_pairs": filter_summary["kept"],
                "total_pairs": real_pairs * args.upsample_real + filter_summary["kept"],
            },
            "fairseq_train_args": ["--upsample-primary", str(args.upsample_real)],
            "leak_check": {"held_out_sentences": len(held_out), "checked_sentences": checked, "leaks": 0},
            "outputs": {name: sha256_file(work / name)
                        for name in (f"synthetic.{args.src}", f"synthetic.{args.tgt}")},
        }
        write_json(work / MANIFEST, manifest)
        if args.out_dir.exists():
            old = args.out_dir.parent / f".{args.out_dir.name}.old-{os.getpid()}"
            os.replace(args.out_dir, old)
            os.replace(work, args.out_dir)
            shutil.rmtree(old)
        else:
            os.replace(work, args.out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
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
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    return parser


def parse_args(argv=None):
    args = build_parser().parse_args(argv)
    args.filter_config = FilterConfig(args.max_len, args.max_ratio, args.ratio_min_len, args.max_copy_overlap)
    return args


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
        manifest = build(args)
    except (BuildError, MissingTagError, LeakError, CorruptChunkError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as err:
        print(f"error: {' '.join(err.cmd[:3])} failed:\n{err.stderr[-3000:]}", file=sys.stderr)
        return 1
    print(f"{args.out_dir}: {manifest['train']['total_pairs']} training pairs "
          f"({manifest['filter']['kept']} synthetic kept of {manifest['filter']['input']}; "
          f"dropped {manifest['filter']['dropped']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
