"""The clean steps: cleaning on several processes, the filters, the seeded valid split and the
leakage filter; they write ``clean/`` and ``ref/`` and return the kept/dropped counts, with the
blank and wrong-script line counts the warnings are made from."""
import multiprocessing
from pathlib import Path

from tqdm import tqdm

from nmt_suite.files import atomic_write_lines
from nmt_suite.prep import clean, filters
from nmt_suite.prep.errors import PrepError
from nmt_suite.prep.filters import Tally

CLEAN_CHUNK = 20_000
# A valid or test set is refused when more than half of its pairs have a blank side after
# cleaning: a score over it would mostly measure the blanks.
MAX_BLANK_SHARE = 0.5
# A warning names a split when more than this share of its pairs has a blank side, or of its
# lines is in the wrong script (English lines mostly Chinese characters, Chinese lines without
# any). The real corpora of shared/data have at most 0.4 % blank pairs and 0.1 % wrong-script
# lines; swapped or mislabelled files give far more.
WARN_SHARE = 0.02

_converters = {}


def _clean_chunk(task):
    """Worker: (lang, script, punct, want_ref, lines) -> (cleaned lines, reference lines or None)."""
    lang, script, punct, want_ref, lines = task
    if lang == "en":
        return [clean.clean_en(line) for line in lines], ([clean.for_reference(x) for x in lines] if want_ref else None)
    if script not in _converters:
        _converters[script] = clean.ScriptConverter(script)
    converted = _converters[script].convert_lines(lines)
    cleaned = [clean.clean_zh(line, punct) for line in converted]
    return cleaned, ([clean.for_reference(x) for x in converted] if want_ref else None)


class Cleaner:
    """Cleans many lines on ``workers`` processes, in order, with a progress bar."""

    def __init__(self, opts):
        self.opts = opts
        self._pool = None

    def __call__(self, lang: str, lines: list, what: str, want_ref: bool = False) -> tuple:
        tasks = [(lang, self.opts.zh_script, self.opts.zh_punct, want_ref, lines[i:i + CLEAN_CHUNK])
                 for i in range(0, len(lines), CLEAN_CHUNK)]
        if self.opts.workers > 1 and len(tasks) > 1 and self._pool is None:
            self._pool = multiprocessing.get_context("fork").Pool(self.opts.workers)
        mapper = self._pool.imap if self._pool is not None and len(tasks) > 1 else map
        cleaned, refs = [], []
        with tqdm(total=len(lines), desc=f"clean {what}", unit="line", disable=None, leave=False) as bar:
            for chunk_clean, chunk_ref in mapper(_clean_chunk, tasks):
                cleaned += chunk_clean
                refs += chunk_ref or []
                bar.update(len(chunk_clean))
        return cleaned, (refs if want_ref else None)

    def close(self):
        if self._pool is not None:
            self._pool.close()
            self._pool.join()


def _write(tmp: Path, rel: str, lines) -> None:
    atomic_write_lines(tmp / rel, lines)


def _counts_message(tally: Tally) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in tally.dropped.items()) or "none"


def _paths(files: list) -> str:
    return ", ".join(f["path"] for f in files)


def blank_counts(en: list, zh: list) -> dict:
    """Lines left empty by cleaning, per side, and pairs with at least one empty side."""
    return {"en": sum(1 for x in en if not x), "zh": sum(1 for x in zh if not x),
            "pairs": sum(1 for e, z in zip(en, zh) if not e or not z)}


def script_counts(en: list = None, zh: list = None) -> dict:
    """English lines that are mostly Chinese characters, non-empty Chinese lines without any."""
    counts = {}
    if en is not None:
        counts["en_mostly_cjk"] = sum(1 for x in en if clean.mostly_cjk(x))
    if zh is not None:
        counts["zh_without_cjk"] = sum(1 for x in zh if x and not clean.has_cjk(x))
    return counts


def _check_held_out(split: str, en: list, zh: list, files: list) -> None:
    blank = blank_counts(en, zh)
    if blank["pairs"] > MAX_BLANK_SHARE * len(en):
        raise PrepError(f"{split}: {blank['pairs']:,} of {len(en):,} pairs of {_paths(files)} have a blank side "
                        f"after cleaning (en {blank['en']:,}, zh {blank['zh']:,}); a {split} set needs text on "
                        f"both sides")


_SCRIPT_PROBLEMS = {"en_mostly_cjk": "English lines are mostly Chinese characters",
                    "zh_without_cjk": "Chinese lines contain no Chinese character"}
_SWAPPED = "; are the files swapped or mislabelled?"


def warning_lines(counts: dict, source_files: dict) -> list:
    """One line per split and problem whose share is above WARN_SHARE."""
    lines = []
    for split, split_counts in counts.items():
        total = split_counts["input"]
        files = source_files.get(split)
        where = _paths(files) if isinstance(files, list) else files
        found = [(split_counts["script"][key], what, _SWAPPED) for key, what in _SCRIPT_PROBLEMS.items()
                 if key in split_counts["script"]]
        if "empty_after_cleaning" in split_counts:
            found.append((split_counts["empty_after_cleaning"]["pairs"], "pairs have a blank side after cleaning", ""))
        lines += [f"{split}: {n:,} of {total:,} {what} ({n / total:.1%}; {where}){hint}"
                  for n, what, hint in found if n > WARN_SHARE * total]
    return lines


def build_clean_parallel(tmp: Path, opts, cleaner: Cleaner, train, valid, test) -> dict:
    """clean/{train,valid,test}.{en,zh} and ref/{valid,test}.{en,zh}; returns the counts.
    A given valid or test set that is mostly blank after cleaning is refused."""
    split_valid = valid is None
    held = {}
    for split, data in (("valid", valid), ("test", test)):
        if data is not None:
            en, en_ref = cleaner("en", data.en, f"{split}.en", want_ref=True)
            zh, zh_ref = cleaner("zh", data.zh, f"{split}.zh", want_ref=True)
            _check_held_out(split, en, zh, data.files)
            held[split] = (en, zh, en_ref, zh_ref)
    train_en, train_en_ref = cleaner("en", train.en, "train.en", want_ref=split_valid)
    train_zh, train_zh_ref = cleaner("zh", train.zh, "train.zh", want_ref=split_valid)

    tally = Tally()
    kept = filters.filter_pairs(train_en, train_zh, opts.limits, tally)
    if split_valid:
        kept, valid_idx = filters.split_valid(kept, opts.valid_ratio, opts.seed)
        tally.drop("split_to_valid", len(valid_idx))
        pick = lambda lines: [lines[i] for i in valid_idx]  # noqa: E731
        held["valid"] = (pick(train_en), pick(train_zh), pick(train_en_ref), pick(train_zh_ref))
    held_keys = {split: (filters.held_out_keys(held[split][0]), filters.held_out_keys(held[split][1]))
                 for split in ("valid", "test")}
    kept = filters.drop_leaks(kept, [train_en, train_zh], held_keys, tally)
    if not kept:
        leaked = any(reason.startswith("leak_") for reason in tally.dropped)
        raise PrepError(f"train: all {tally.input} pairs of {_paths(train.files)} were dropped by the filters "
                        f"({_counts_message(tally)}); nothing left to train on"
                        + ("; sentences of valid or test are never trained on, so train needs its own" if leaked
                           else ""))

    _write(tmp, "clean/train.en", (train_en[i] for i in kept))
    _write(tmp, "clean/train.zh", (train_zh[i] for i in kept))
    counts = {"train": {**tally.as_dict(), "script": script_counts(train_en, train_zh)}}
    for split in ("valid", "test"):
        en, zh, en_ref, zh_ref = held[split]
        _write(tmp, f"clean/{split}.en", en)
        _write(tmp, f"clean/{split}.zh", zh)
        _write(tmp, f"ref/{split}.en", en_ref)
        _write(tmp, f"ref/{split}.zh", zh_ref)
        counts[split] = {"input": len(en), "kept": len(en), "empty_after_cleaning": blank_counts(en, zh),
                         "script": script_counts(en, zh)}
    if split_valid:
        counts["valid"]["split_from_train"] = {"ratio": opts.valid_ratio, "seed": opts.seed}
    return {"counts": counts}


def build_clean_mono(tmp: Path, opts, cleaner: Cleaner, mono_lines: list, mono_files: list,
                     held_zh: dict) -> dict:
    """clean/mono.zh: cleaned, length-filtered, deduplicated, without valid/test sentences."""
    zh, _ = cleaner("zh", mono_lines, "mono.zh")
    tally = Tally()
    kept = filters.filter_mono(zh, opts.limits, tally)
    held_keys = {split: (filters.held_out_keys(lines),) for split, lines in held_zh.items()}
    kept = filters.drop_leaks(kept, [zh], held_keys, tally)
    if not kept:
        raise PrepError(f"mono: all {tally.input} lines of {_paths(mono_files)} were dropped by the filters "
                        f"({_counts_message(tally)})")
    _write(tmp, "clean/mono.zh", (zh[i] for i in kept))
    return {"counts": {"mono": {**tally.as_dict(), "script": script_counts(zh=zh)}}}
