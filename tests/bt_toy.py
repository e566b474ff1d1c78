"""A toy prepared corpus in the layout of scripts/prepare_data.py's output, for the back-translation tests.

Sentences are piece-segmented like sentencepiece output ("▁the ▁cat"), the joined
dictionary holds the reserved <BT> tag, and bin-mono holds a monolingual zh split,
so the back-translation code runs on it exactly as on a corpus from prepare_data.
Session fixtures are memoised here, so test files that import them share one copy.
"""
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import TINY_TRAIN_ARGS, cli, write_toy_parallel
from nmt_suite.tokens import BT_TAG
# One OpenMP thread per process: on a small shared CPU, torch's default thread pool spins
# against the other processes and makes a tiny model's decoding ~20x slower (same results).
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
_MEMO = {}


def _pieces(line: str) -> str:
    return " ".join("\u2581" + w for w in line.split())


def _copy_as_pieces(src: Path, dst: Path) -> None:
    dst.write_text("".join(_pieces(line) + "\n" for line in src.read_text().splitlines()))


def write_toy_corpus(root: Path, planted_test=2, train=400, mono=240) -> Path:
    """Build ``root`` like data/<corpus>/ (clean, ref, spm_text, bin, bin-mono, manifest.json).

    The first ``planted_test`` zh sentences of the test split are appended to the
    monolingual corpus (as if it came from a source that also holds the test set); their
    ids are the last ones of bin-mono.
    """
    raw = write_toy_parallel(root / "raw", seed=0, sizes=(("train", train), ("valid", 30), ("test", 30)))
    extra = write_toy_parallel(root / "raw-mono", seed=1, sizes=(("mono", mono),))
    (root / "clean").mkdir(parents=True)
    (root / "ref").mkdir()
    (root / "spm_text").mkdir()
    for split in ("train", "valid", "test"):
        for lang in ("en", "zh"):
            text = (raw / f"{split}.{lang}").read_text()
            (root / "clean" / f"{split}.{lang}").write_text(text)
            if split != "train":
                (root / "ref" / f"{split}.{lang}").write_text(text)
            _copy_as_pieces(raw / f"{split}.{lang}", root / "spm_text" / f"{split}.{lang}")
    planted = (raw / "test.zh").read_text().splitlines()[:planted_test]
    mono_lines = (extra / "mono.zh").read_text().splitlines() + planted
    (root / "clean" / "mono.zh").write_text("".join(line + "\n" for line in mono_lines))
    (root / "spm_text" / "mono.zh").write_text("".join(_pieces(line) + "\n" for line in mono_lines))

    counts = Counter()
    for lang in ("en", "zh"):
        counts.update((root / "spm_text" / f"train.{lang}").read_text().split())
    dictionary = root / "dict.txt"
    dictionary.write_text("".join(f"{w} {c}\n" for w, c in counts.most_common()) + f"{BT_TAG} 0\n")
    cli("fairseq-preprocess", "--source-lang", "en", "--target-lang", "zh",
        "--trainpref", root / "spm_text/train", "--validpref", root / "spm_text/valid",
        "--testpref", root / "spm_text/test", "--destdir", root / "bin",
        "--srcdict", dictionary, "--tgtdict", dictionary, "--workers", "1")
    cli("fairseq-preprocess", "--source-lang", "zh", "--target-lang", "en", "--only-source",
        "--trainpref", root / "spm_text/mono", "--destdir", root / "bin-mono",
        "--srcdict", dictionary, "--workers", "1")
    for ext in ("bin", "idx"):
        (root / "bin-mono" / f"train.zh-en.zh.{ext}").rename(root / "bin-mono" / f"mono.zh-en.zh.{ext}")
    for lang in ("en", "zh"):
        (root / "bin-mono" / f"dict.{lang}.txt").write_text(dictionary.read_text())
    (root / "manifest.json").write_text(json.dumps({"hash": f"toy-{train}-{mono}-{planted_test}"}))
    return root


def toy_reverse_model(corpus: Path, save_dir: Path, updates: int = 12) -> Path:
    """A tiny zh->en model (quality is beside the point: the tests check bookkeeping)."""
    cli("fairseq-train", corpus / "bin", *TINY_TRAIN_ARGS, "--source-lang", "zh", "--target-lang", "en",
        "--max-update", updates, "--save-dir", save_dir, "--disable-validation",
        "--no-epoch-checkpoints", "--no-gnorm-log", env=ONE_THREAD)
    return save_dir / "checkpoint_last.pt"


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory) -> Path:
    if "corpus" not in _MEMO:
        _MEMO["corpus"] = write_toy_corpus(tmp_path_factory.mktemp("bt_corpus"))
    return _MEMO["corpus"]


@pytest.fixture(scope="session")
def toy_reverse_checkpoint(toy_corpus, tmp_path_factory) -> Path:
    if "reverse" not in _MEMO:
        _MEMO["reverse"] = toy_reverse_model(toy_corpus, tmp_path_factory.mktemp("bt_reverse"))
    return _MEMO["reverse"]


def generate_cmd(corpus: Path, checkpoint: Path, out_dir: Path, *extra) -> list:
    """A shard job of nmt_suite.backtranslation.generate on the toy corpus (sampling, chunks of 20)."""
    return [sys.executable, "-m", "nmt_suite.backtranslation.generate", "--data", corpus / "bin-mono",
            "--path", checkpoint, "--out-dir", out_dir, "--chunk-size", GENERATION_CHUNK, "--device", "cpu",
            "--decoding", "sampling", *extra]


GENERATION_CHUNK = 20


@pytest.fixture(scope="session")
def toy_generation(toy_corpus, toy_reverse_checkpoint, tmp_path_factory) -> Path:
    """An uninterrupted one-shard generation of the toy monolingual corpus, merged."""
    from nmt_suite.backtranslation.merge import merge

    if "generation" not in _MEMO:
        out = tmp_path_factory.mktemp("bt_generation")
        cli(*generate_cmd(toy_corpus, toy_reverse_checkpoint, out), env=ONE_THREAD)
        merge(out)
        _MEMO["generation"] = out
    return _MEMO["generation"]


BOSS_DATA_OPTIONS = ("--tag", "--noise")


def build_args(corpus: Path, generation: Path, out_dir: Path, *extra) -> list:
    """Arguments of nmt_suite.backtranslation.build for the toy corpus."""
    return ["--corpus-dir", str(corpus), "--synthetic", str(generation / "merged.tsv"),
            "--out-dir", str(out_dir), "--workers", "1", *extra]


@pytest.fixture(scope="session")
def toy_boss_data(toy_corpus, toy_generation, tmp_path_factory) -> Path:
    """The toy boss training set, tagged and noised, built with the CLI."""
    if "boss_data" not in _MEMO:
        out = tmp_path_factory.mktemp("bt_build") / "boss-data"
        cli(sys.executable, "-m", "nmt_suite.backtranslation.build",
            *build_args(toy_corpus, toy_generation, out, *BOSS_DATA_OPTIONS), env=ONE_THREAD)
        _MEMO["boss_data"] = out
    return _MEMO["boss_data"]
