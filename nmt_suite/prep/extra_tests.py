"""Extra test sets (out of domain) of a prepared corpus, in ``<corpus dir>/extra/<name>/``.

A rung's ``extra_tests: [flores200-devtest, tatoeba]`` translates and scores each set besides the
corpus' own valid and test splits. A set is one of :data:`EXTRA_TESTS` (files of the shared data
folder) or ``NAME=PREFIX`` for any aligned ``PREFIX.en`` / ``PREFIX.zh``. It is prepared with the
corpus' own sentencepiece model and dictionary, so the corpus (and its hash) stays as it is:

``ref/test.{en,zh}``     the lines as given (Chinese converted to the corpus' script, see below)
``bin/``                 ``test.en-zh.{en,zh}.{bin,idx}`` and the corpus' dictionaries
``manifest.json``        written last: the key of what it was built from

English is cleaned as the corpus' test split is; the reference is scored untouched except for
its script: a set whose Chinese is mixed (Tatoeba: Traditional and Simplified) is converted with
OpenCC to the corpus' script (Simplified unless the corpus was prepared with ``--zh-script tw``).
"""
import shutil
from pathlib import Path

from nmt_suite.files import (atomic_directory, atomic_write_json, atomic_write_lines, read_json, remove_stale_temps,
                             sha256_file)
from nmt_suite.names import is_plain_name
from nmt_suite.prep import binarize, clean, spm
from nmt_suite.prep.errors import PrepError
from nmt_suite.prep.sources import SHARED_DATA
from nmt_suite.prep.textio import read_pair
from nmt_suite.prep.workspace import locked

# name -> (file prefix under the shared data folder, the script of its Chinese; "mixed" is converted)
EXTRA_TESTS = {
    "flores200-devtest": ("wmt-flores-ntrex-tico-en-zh/flores200-devtest-hans", "cn"),
    "newstest2019": ("wmt-flores-ntrex-tico-en-zh/newstest2019-enzh", "cn"),
    "tatoeba": ("tatoeba-cmn-eng/all", "mixed"),
}
RESERVED = ("train", "valid", "test", "mono")  # the corpus' own splits
MANIFEST = "manifest.json"
EXTRA = "extra"  # the folder of a prepared corpus that holds its extra test sets


def resolve(spec, shared: Path = SHARED_DATA) -> tuple:
    """``name`` or ``NAME=PREFIX`` -> (name, file prefix, script of its Chinese); PrepError naming the problem."""
    if not isinstance(spec, str):
        raise PrepError(f"extra_tests: expected a test set name or NAME=PREFIX, got {spec!r}")
    name, sep, prefix = spec.partition("=")
    if not is_plain_name(name) or name in RESERVED:
        raise PrepError(f"extra_tests: {name!r} cannot name a test set (a plain folder name, not one of "
                        f"{', '.join(RESERVED)})")
    if sep:
        return name, Path(prefix).expanduser(), "unknown"
    if name not in EXTRA_TESTS:
        raise PrepError(f"extra_tests: unknown test set {name!r}; known: {', '.join(EXTRA_TESTS)}, or give "
                        f"NAME=PREFIX for PREFIX.en and PREFIX.zh")
    rel, script = EXTRA_TESTS[name]
    return name, Path(shared) / rel, script


def extra_dir(corpus_dir, name: str) -> Path:
    """Where an extra test set of a prepared corpus lives (the layout of the module docstring)."""
    return Path(corpus_dir) / EXTRA / name


def files_of(prefix: Path) -> tuple:
    return tuple(prefix.with_name(f"{prefix.name}.{lang}") for lang in ("en", "zh"))


def check_files(name: str, prefix: Path) -> None:
    for path in files_of(prefix):
        if not path.is_file():
            raise PrepError(f"extra_tests: {name}: {path} not found")


def conversion(source_script: str, corpus_script: str) -> str:
    """The ScriptConverter script that puts a set's Chinese in the corpus' script."""
    if corpus_script in ("tw", "cn"):
        return "keep" if source_script == corpus_script else corpus_script
    return "cn" if source_script == "mixed" else "keep"


def prepare_extra(corpus_dir: Path, name: str, prefix: Path, source_script: str, workers: int = 1,
                  log=print) -> Path:
    """``corpus_dir/extra/name/`` built (or left as it is when its manifest has the same key); returns it.
    Runs of several pipelines at once take turns (a lock on ``corpus_dir/extra``)."""
    check_files(name, prefix)
    with locked(Path(corpus_dir) / EXTRA):
        return _prepare_extra(Path(corpus_dir), name, prefix, source_script, workers, log)


def _prepare_extra(corpus_dir: Path, name: str, prefix: Path, source_script: str, workers: int, log) -> Path:
    from nmt_suite.prep.prepare import code_digest  # prepare.py imports the whole preparation

    out = extra_dir(corpus_dir, name)
    en_path, zh_path = files_of(prefix)
    corpus = read_json(corpus_dir / "manifest.json")
    script = conversion(source_script, (corpus.get("options") or {}).get("zh_script", "keep"))
    key = {"code": code_digest(clean, spm, binarize), "en": sha256_file(en_path), "zh": sha256_file(zh_path),
           "script": script, "spm": sha256_file(corpus_dir / "spm" / "spm.model"),
           "dict": sha256_file(corpus_dir / "bin" / "dict.en.txt")}
    if (out / MANIFEST).is_file() and read_json(out / MANIFEST).get("key") == key:
        return out
    log(f"[prep] extra test set {name}: {en_path} -> {out}")
    en, zh = read_pair(en_path, zh_path)
    if not en.lines:
        raise PrepError(f"extra_tests: {name}: {en_path} is empty")
    refs = [clean.for_reference(line) for line in clean.ScriptConverter(script).convert_lines(zh.lines)]
    model = corpus_dir / "spm" / "spm.model"
    remove_stale_temps(out.parent, name)
    with atomic_directory(out) as tmp:
        atomic_write_lines(tmp / "ref" / "test.en", [clean.for_reference(line) for line in en.lines])
        atomic_write_lines(tmp / "ref" / "test.zh", refs)
        spm.encode_file(model, [clean.clean_en(line) for line in en.lines], tmp / "spm_text" / "test.en", workers)
        spm.encode_file(model, [clean.clean_zh(line) for line in refs], tmp / "spm_text" / "test.zh", workers)
        binarize.binarize_test({f"test.{lang}": tmp / "spm_text" / f"test.{lang}" for lang in ("en", "zh")},
                               corpus_dir / "bin" / "dict.en.txt", tmp / "bin", workers)
        shutil.rmtree(tmp / "spm_text")
        atomic_write_json(tmp / MANIFEST, {"key": key, "name": name, "sentences": len(en.lines),
                                           "sources": {"en": str(en_path), "zh": str(zh_path)},
                                           "zh_conversion": script})
    return out
