"""The benchmark corpus: ted-lowres (shared data) binarized with a quick sentencepiece model,
or a generated stand-in when the shared data is absent.

The benchmark needs realistic sentence lengths and vocabulary size (they set the batch
shapes and the output projection's cost), not a clean corpus, so this is deliberately
simpler than scripts/prepare_data.py: drop pairs with an empty side, train one joint
unigram model on the training split, binarize with fairseq-preprocess. Each corpus is built
in a temporary folder that replaces ``<work_dir>/<name>-<key>`` when complete, then recorded
as done for its key (the hash of its inputs and settings) in ``<work_dir>/records/``
(nmt_suite.stage_cache): an interrupted build is never mistaken for a finished one.
"""
import json
import random
import subprocess
import sys
from pathlib import Path

from nmt_suite.files import atomic_directory, sha256_file
from nmt_suite.prep.sources import TED_LOWRES
from nmt_suite.stage_cache import StageRecords, stage_key

# ted-lowres protocol (see shared/data/README.md): parallel train, valid; the generation
# benchmark translates the first sentences of the test set.
TED_TRAIN, TED_VALID, TED_TEST = TED_LOWRES["train"], TED_LOWRES["valid"], TED_LOWRES["test"]
SRC, TGT = "en", "zh"


def _log(msg: str) -> None:
    print(f"[nmt_suite.bench.corpus] {msg}", file=sys.stderr, flush=True)


def _read_pairs(shared: Path, prefixes, keep_empty: bool = False):
    pairs = []
    for prefix in prefixes:
        en_path, zh_path = shared / f"{prefix}.{SRC}", shared / f"{prefix}.{TGT}"
        en = en_path.read_text(encoding="utf-8").split("\n")
        zh = zh_path.read_text(encoding="utf-8").split("\n")
        if en and en[-1] == "":
            en.pop()
        if zh and zh[-1] == "":
            zh.pop()
        if len(en) != len(zh):
            raise ValueError(f"{en_path} has {len(en)} lines but {zh_path} has {len(zh)}")
        for e, z in zip(en, zh):
            e, z = e.strip(), z.strip()
            if keep_empty or (e and z):
                pairs.append((e, z))
    return pairs


def _write_split(directory: Path, split: str, pairs) -> None:
    for side, lang in enumerate((SRC, TGT)):
        with open(directory / f"{split}.{lang}", "w", encoding="utf-8") as f:
            f.writelines(pair[side] + "\n" for pair in pairs)


def _binarize(text_dir: Path, dest: Path) -> None:
    cmd = [
        sys.executable, "-m", "fairseq_cli.preprocess", "--source-lang", SRC, "--target-lang", TGT,
        "--trainpref", text_dir / "train", "--validpref", text_dir / "valid",
        "--testpref", text_dir / "test", "--destdir", dest, "--joined-dictionary", "--workers", "2",
    ]
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"fairseq-preprocess failed:\n{proc.stderr[-3000:]}")


def _spm_encode_splits(raw: Path, out: Path, vocab_size: int) -> None:
    import sentencepiece as spm

    joint = raw / "spm_input.txt"
    with open(joint, "w", encoding="utf-8") as f:
        for lang in (SRC, TGT):
            f.write((raw / f"train.{lang}").read_text(encoding="utf-8"))
    spm.SentencePieceTrainer.train(
        input=str(joint), model_prefix=str(out / "spm"), vocab_size=vocab_size,
        character_coverage=0.9995, model_type="unigram", input_sentence_size=200000,
        shuffle_input_sentence=False, num_threads=2, minloglevel=2,  # deterministic: no sampling
    )
    sp = spm.SentencePieceProcessor(model_file=str(out / "spm.model"))
    for split in ("train", "valid", "test"):
        for lang in (SRC, TGT):
            lines = (raw / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()
            pieces = sp.encode(lines, out_type=str)
            (out / f"{split}.{lang}").write_text(
                "".join(" ".join(p) + "\n" for p in pieces), encoding="utf-8"
            )


def _build(work_dir: Path, corpus: str, inputs: dict, fill) -> Path:
    """``<work_dir>/<corpus>-<key>/bin``: as recorded when up to date for ``inputs``, else
    filled by ``fill(tmp_dir)`` in a temporary sibling that then replaces it."""
    key = stage_key(f"bench-corpus-{corpus}", inputs)
    name = f"{corpus}-{key[:12]}"
    records = StageRecords(work_dir / "records", base=work_dir)
    if records.up_to_date(name, key) is None:
        with atomic_directory(work_dir / name) as tmp:
            fill(tmp, key)
        outputs = sorted(p.relative_to(work_dir).as_posix() for p in (work_dir / name / "bin").iterdir())
        records.write(name, key, outputs, corpus=corpus)
    return work_dir / name / "bin"


def ted_lowres_bin(shared: Path, work_dir: Path, vocab_size: int = 8000,
                   test_sentences: int = 400) -> Path:
    """Binarized ted-lowres train/valid and the first *test_sentences* test pairs."""
    sources = [shared / f"{p}.{lang}" for p in TED_TRAIN + TED_VALID + TED_TEST for lang in (SRC, TGT)]
    settings = {"vocab_size": vocab_size, "test_sentences": test_sentences, "v": 1}
    inputs = {"settings": settings, "sources": [sha256_file(path) for path in sources]}

    def fill(tmp: Path, key: str) -> None:
        _log(f"building ted-lowres benchmark corpus in {tmp} (once; cached)")
        raw, text = tmp / "raw", tmp / "spm_text"
        raw.mkdir()
        text.mkdir()
        _write_split(raw, "train", _read_pairs(shared, TED_TRAIN))
        _write_split(raw, "valid", _read_pairs(shared, TED_VALID))
        _write_split(raw, "test", _read_pairs(shared, TED_TEST)[:test_sentences])
        _spm_encode_splits(raw, text, vocab_size)
        _binarize(text, tmp / "bin")
        (tmp / "manifest.json").write_text(json.dumps(
            {"corpus": "ted-lowres", "sources": [str(s) for s in sources], "settings": settings,
             "key": key}, indent=1))

    return _build(work_dir, "ted-lowres", inputs, fill)


def generated_bin(work_dir: Path, train_pairs: int = 20000, test_sentences: int = 400,
                  vocab: int = 6000, seed: int = 1) -> Path:
    """A generated stand-in with TED-like lengths: a random lexicon, target in shuffled chunks."""
    settings = {"train_pairs": train_pairs, "test_sentences": test_sentences, "vocab": vocab,
                "seed": seed, "v": 1}

    def fill(tmp: Path, key: str) -> None:
        _log(f"building generated benchmark corpus in {tmp} (once; cached)")
        rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        src_words = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(vocab)]
        lexicon = {w: f"z{i}" for i, w in enumerate(src_words)}
        weights = [1.0 / (rank + 1) for rank in range(vocab)]  # Zipf-like frequencies

        def pair():
            sent = rng.choices(src_words, weights=weights, k=max(3, min(60, int(rng.gauss(20, 10)))))
            tgt = [lexicon[w] for w in sent]
            cut = rng.randint(1, len(tgt))
            return " ".join(sent), " ".join(tgt[cut:] + tgt[:cut])

        text = tmp / "text"
        text.mkdir()
        for split, n in (("train", train_pairs), ("valid", 1000), ("test", test_sentences)):
            _write_split(text, split, [pair() for _ in range(n)])
        _binarize(text, tmp / "bin")
        (tmp / "manifest.json").write_text(json.dumps(
            {"corpus": "generated", "settings": settings, "key": key}, indent=1))

    return _build(work_dir, "generated", {"settings": settings}, fill)


def benchmark_corpus(kind: str, work_dir: Path, shared: Path, test_sentences: int) -> tuple[str, Path]:
    """(corpus name, bin dir) for ``--corpus`` *kind*: ted-lowres, generated or auto."""
    if kind == "auto":
        kind = "ted-lowres" if (shared / TED_TRAIN[0]).with_suffix(".en").exists() else "generated"
        if kind == "generated":
            _log(f"shared data not found under {shared}: using a generated corpus")
    if kind == "ted-lowres":
        return kind, ted_lowres_bin(shared, work_dir, test_sentences=test_sentences)
    if kind == "generated":
        return kind, generated_bin(work_dir, test_sentences=test_sentences)
    raise ValueError(f"unknown corpus {kind!r} (expected ted-lowres, generated or auto)")
