"""Command line of scripts/prepare_data.py (console script ``fairseq-ext-prepare``): build
``data/<name>/`` for one corpus."""
import argparse
import json
import math
import os
import sys
from pathlib import Path

from nmt_suite.files import atomic_write_json
from nmt_suite.names import PLAIN_NAME_RULE, is_plain_name
from nmt_suite.prep import clean, sources, spm
from nmt_suite.prep.errors import PrepError
from nmt_suite.prep.filters import REASONS
from nmt_suite.prep.prepare import Options, prepare

REPO = Path(__file__).resolve().parents[2]

DEFAULTS = {
    "zh_script": "keep", "zh_punct": "full", "min_len": 1, "max_len": 250, "max_ratio": 9.0,
    "valid_ratio": 0.01, "seed": 1, "spm_type": "unigram", "vocab_size": 8000, "character_coverage": 0.9995,
    "spm_sample": 100_000, "spm_threads": 2,
}
# Per-corpus defaults, overridden by the command line. HW5's TED2020 references are Traditional
# (Taiwan) while its monolingual corpus is Simplified; the demo grammar has ~1,300 word types.
CORPUS_DEFAULTS = {"ted2020": {"zh_script": "tw"}, "demo": {"vocab_size": 1000}}
# sentencepiece's random generator takes an unsigned 32-bit seed
SEED_MAX = 2**32 - 1


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _int_in(low: int, high: int = None):
    """An integer option in [low, high] (no upper bound when high is None)."""
    def parse(text):
        value = _integer(text)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"must be >= {low}, got {value}" if high is None else f"must be in [{low}, {high}], got {value}")
        return value
    return parse


def _finite(text: str) -> float:
    """A float that can be written to manifest.json (JSON has no NaN or infinity)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _ratio(text):
    value = _finite(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _fraction(text):
    value = _finite(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value}")
    return value


def _coverage(text):
    value = _finite(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def _folder_name(text: str) -> str:
    if not is_plain_name(text):
        raise argparse.ArgumentTypeError(
            f"must be a plain folder name ({PLAIN_NAME_RULE}), got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prepare_data.py", allow_abbrev=False,  # --vocab 100 must not pass for --vocab-size
        description="Prepare an en-zh corpus under DATA_DIR/NAME: clean, filter, sentencepiece, binarize. "
                    "Re-running with the same inputs and options does nothing.")
    p.add_argument("--corpus", required=True, choices=sources.CORPORA)
    p.add_argument("--data-dir", type=Path, default=REPO / "data", help="parent of the corpus folder (%(default)s)")
    p.add_argument("--name", type=_folder_name, help="corpus folder name (default: the corpus)")
    g = p.add_argument_group("local corpus roles (--corpus local; each repeatable, concatenated in order)")
    g.add_argument("--train", action="append", default=[], metavar="SRC",
                   help="PREFIX (PREFIX.en + PREFIX.zh) or a tab-separated file en<TAB>zh[<TAB>attribution]")
    g.add_argument("--valid", action="append", default=[], metavar="SRC",
                   help="as --train; without it a seeded --valid-ratio of train is split off")
    g.add_argument("--test", action="append", default=[], metavar="SRC", help="as --train (required)")
    g.add_argument("--mono", action="append", default=[], metavar="FILE", help="monolingual Chinese, FILE or FILE.zh")
    g = p.add_argument_group("sources")
    g.add_argument("--shared-data", type=Path, default=sources.SHARED_DATA,
                   help="shared corpora folder for ted-lowres (%(default)s)")
    g.add_argument("--mirror-url", help=f"base URL with the ted2020 files instead of {sources.TED2020_BASE_URL}")
    g.add_argument("--download-dir", type=Path, help="where ted2020 archives are downloaded or placed by hand "
                                                     "(default DATA_DIR/NAME/downloads)")
    g = p.add_argument_group("cleaning and filters")
    g.add_argument("--zh-script", choices=clean.ZH_SCRIPTS,
                   help="convert Chinese with OpenCC: tw = s2twp, cn = t2s (default: keep; ted2020: tw)")
    g.add_argument("--zh-punct", choices=clean.ZH_PUNCT_STYLES,
                   help="Chinese punctuation next to Chinese text: full-width (default) or half-width as in HW5")
    g.add_argument("--min-len", type=_int_in(1), help="min English words / Chinese characters (1)")
    g.add_argument("--max-len", type=_int_in(1), help="max English words / Chinese characters (250)")
    g.add_argument("--max-ratio", type=_ratio, help="max length ratio between the sides (9)")
    g.add_argument("--valid-ratio", type=_fraction, help="share of train split off as valid when the source "
                                                         "has no valid set (0.01)")
    g.add_argument("--seed", type=_int_in(0, SEED_MAX),
                   help="seed of the valid split, spm sampling, demo generator (1)")
    g = p.add_argument_group("sentencepiece")
    g.add_argument("--spm-type", choices=spm.SPM_TYPES, help="model type (unigram)")
    g.add_argument("--vocab-size", type=_int_in(spm.MIN_VOCAB_SIZE),
                   help="joint vocabulary size, lowered with a notice when the training text is too small for it "
                        "(8000; demo: 1000)")
    g.add_argument("--character-coverage", type=_coverage, help="share of characters the model covers (0.9995)")
    g.add_argument("--spm-sample", type=_int_in(0),
                   help="train sentencepiece on at most this many lines per language, seeded sample; 0 = all (100000)")
    g.add_argument("--spm-threads", type=_int_in(1),
                   help="sentencepiece training threads; part of the model, as unigram results depend on it (2)")
    g = p.add_argument_group("execution (never changes outputs)")
    g.add_argument("--workers", type=_int_in(1), default=min(os.cpu_count() or 1, 8),
                   help="processes for cleaning, threads for encoding, fairseq-preprocess workers (%(default)s)")
    g.add_argument("--stats-json", type=Path, help="write this run's per-stage wall and CPU seconds to this file")
    return p


def options_from_args(args, parser) -> Options:
    if args.corpus == "local":
        if not args.train or not args.test:
            parser.error("--corpus local needs --train and --test (and optionally --valid, --mono)")
    elif args.train or args.valid or args.test or args.mono:
        parser.error(f"--train/--valid/--test/--mono are for --corpus local, not {args.corpus}")
    if args.mirror_url and args.corpus != "ted2020":
        parser.error("--mirror-url is for --corpus ted2020")
    settings = {**DEFAULTS, **CORPUS_DEFAULTS.get(args.corpus, {})}
    for key in DEFAULTS:
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if settings["min_len"] > settings["max_len"]:
        parser.error(f"--min-len {settings['min_len']} is above --max-len {settings['max_len']}")
    name = args.corpus if args.name is None else args.name
    if name != args.corpus and name in sources.CORPORA:
        # the rung scripts rebuild a built-in corpus from its own source under its name
        parser.error(f"--name {name} is the built-in corpus {name}'s folder; choose another name")
    data_dir = args.data_dir.absolute()  # fairseq-preprocess runs in another working directory
    return Options(corpus=args.corpus, name=name, data_dir=data_dir, workers=args.workers,
                   train=args.train, valid=args.valid, test=args.test, mono=args.mono,
                   shared_data=args.shared_data, mirror_url=args.mirror_url,
                   download_dir=args.download_dir or data_dir / name / "downloads", **settings)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _dropped(tally: dict) -> str:
    order = {reason: i for i, reason in enumerate(REASONS)}
    items = sorted(tally["dropped"].items(), key=lambda item: order.get(item[0], len(order)))
    return ", ".join(f"{reason} {n:,}" for reason, n in items) or "none"


def summary(outcome) -> str:
    m = outcome.manifest
    counts = m["counts"]
    train = counts["train"]
    lines = [f"{outcome.root}: corpus hash {m['hash'][:16]}",
             f"  clean/     train {train['kept']:,} pairs of {train['input']:,} (dropped: {_dropped(train)}); "
             f"valid {counts['valid']['kept']:,}; test {counts['test']['kept']:,}"]
    if "mono" in counts:
        mono = counts["mono"]
        lines.append(f"             mono.zh {mono['kept']:,} of {mono['input']:,} (dropped: {_dropped(mono)})")
    lines += [f"  ref/       valid/test references as given ({m['options']['zh_script']} script)",
              f"  spm/       spm.model ({m['options']['spm_type']}, {m['spm']['pieces']:,} pieces, {m['spm']['bt_tag']} "
              f"reserved)",
              "  spm_text/  encoded text",
              f"  bin/       fairseq binarized en-zh, joined dictionary of {m['dictionary']['size']:,} entries"]
    if "mono" in counts:
        lines.append("  bin-mono/  mono.zh-en.zh.{bin,idx} with the same dictionary")
    lines.append(f"  {outcome.root / 'manifest.json'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    opts = options_from_args(args, parser)
    _log(f"[prep] corpus {opts.corpus} -> {opts.root} (workers {opts.workers}); options: "
         + json.dumps(opts.content_options(), sort_keys=True))
    try:
        outcome = prepare(opts, log=_log)
    except PrepError as err:
        _log(f"prepare_data.py: error: {err}")
        _log(f"[prep] nothing published; existing files under {opts.root} are unchanged")
        return 1
    if outcome.changed:
        print(summary(outcome))
    else:
        print(f"{outcome.root}: up to date (corpus hash {outcome.manifest['hash'][:16]}); nothing to do")
    if args.stats_json:
        atomic_write_json(args.stats_json, {"corpus": opts.corpus, "stages": outcome.stages,
                                            "stages_cpu": outcome.stages_cpu, "steps": outcome.steps,
                                            "changed": outcome.changed})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
