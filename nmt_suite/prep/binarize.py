"""Binarization with ``fairseq-preprocess`` and the one joint dictionary it uses.

fairseq-preprocess runs as :mod:`nmt_suite.prep.fairseq_preprocess` (fairseq's own CLI with
a faster, byte-identical ``Dictionary.encode_line``).

The dictionary is written from the sentencepiece vocabulary (so ``<BT>`` and every piece
get an id even when the training text never uses them) with training-text counts, padded
to a multiple of 8 entries as fairseq pads its own, and passed as ``--srcdict``. The
monolingual Chinese text is binarized with that same dictionary as the source side of
zh->en (``bin-mono/mono.zh-en.zh.{bin,idx}``).
"""
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from nmt_suite.files import atomic_write_lines
from nmt_suite.prep.errors import PrepError
from nmt_suite.processes import die_with_this_process
from nmt_suite.tokens import BT_TAG

# sentencepiece's control pieces; fairseq's Dictionary has its own <s> <pad> </s> <unk>
SPM_CONTROL_PIECES = ("<unk>", "<s>", "</s>", "<pad>")
FAIRSEQ_SPECIALS = 4
PAD_MULTIPLE = 8
REPO = Path(__file__).resolve().parents[2]


def count_pieces(paths: list) -> Counter:
    counts = Counter()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                counts.update(line.split())
    return counts


def write_dictionary(spm_vocab: Path, train_texts: list, out_dir: Path) -> dict:
    """``dict.en.txt`` and the identical ``dict.zh.txt``: every sentencepiece piece in model
    order as ``piece count``."""
    with open(spm_vocab, encoding="utf-8") as f:
        pieces = [line.split("\t", 1)[0] for line in f.read().split("\n") if line]
    pieces = [p for p in pieces if p not in SPM_CONTROL_PIECES]
    counts = count_pieces(train_texts)
    entries = [f"{p} {counts.get(p, 0)}" for p in pieces]
    padding = -(len(entries) + FAIRSEQ_SPECIALS) % PAD_MULTIPLE
    entries += [f"madeupword{i:04d} 0" for i in range(padding)]
    for lang in ("en", "zh"):
        atomic_write_lines(out_dir / f"dict.{lang}.txt", entries)
    return {"size": len(entries) + FAIRSEQ_SPECIALS, "bt_tag_id": FAIRSEQ_SPECIALS + pieces.index(BT_TAG),
            "pieces_unseen_in_train": sum(1 for p in pieces if not counts.get(p))}


def run_preprocess(args: list, work_dir: Path) -> None:
    """The one way the suite runs fairseq-preprocess (:mod:`nmt_suite.prep.fairseq_preprocess`).

    ``args`` are fairseq-preprocess's own options, for any language pair and mode (``--srcdict``
    / ``--tgtdict`` / ``--joined-dictionary``, ``--only-source``, ...); items may be paths or
    numbers. It runs in ``work_dir`` (relative paths in ``args`` are taken from there), as a
    child that dies with this process. On failure it raises :class:`PrepError` with the tail
    of its output."""
    cmd = [sys.executable, "-m", "nmt_suite.prep.fairseq_preprocess", *map(str, args)]
    # the suite is importable in the child even from a checkout that is not installed
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, cwd=work_dir, capture_output=True, text=True,
                          preexec_fn=die_with_this_process(),  # no orphan writes on after a kill -9
                          env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": python_path})
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise PrepError(f"fairseq-preprocess failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


def _link_inputs(links: dict, in_dir: Path) -> None:
    in_dir.mkdir(parents=True, exist_ok=True)
    for name, target in links.items():
        os.symlink(Path(target).resolve(), in_dir / name)


def binarize_parallel(texts: dict, dict_path: Path, out_dir: Path, workers: int) -> None:
    """``texts`` maps ``{train,valid,test}.{en,zh}`` to spm_text files; writes
    ``{split}.en-zh.{en,zh}.{bin,idx}`` into ``out_dir`` (the dictionary files are the
    dictionary step's, so fairseq's re-saved copies are dropped)."""
    in_dir = out_dir.parent / f"{out_dir.name}-inputs"
    _link_inputs(texts, in_dir)
    run_preprocess(["--source-lang", "en", "--target-lang", "zh", "--joined-dictionary",
                    "--srcdict", dict_path, "--trainpref", in_dir / "train", "--validpref", in_dir / "valid",
                    "--testpref", in_dir / "test", "--destdir", out_dir, "--workers", workers], out_dir.parent)
    shutil.rmtree(in_dir)
    _drop_log(out_dir)
    for lang in ("en", "zh"):
        (out_dir / f"dict.{lang}.txt").unlink()


def binarize_test(texts: dict, dict_path: Path, out_dir: Path, workers: int) -> None:
    """``texts`` maps ``test.{en,zh}`` to spm_text files; writes ``test.en-zh.{en,zh}.{bin,idx}`` and the
    dictionary's two copies into ``out_dir``, a folder fairseq-generate reads on its own."""
    in_dir = out_dir.parent / f"{out_dir.name}-inputs"
    _link_inputs(texts, in_dir)
    run_preprocess(["--source-lang", "en", "--target-lang", "zh", "--joined-dictionary", "--srcdict", dict_path,
                    "--testpref", in_dir / "test", "--destdir", out_dir, "--workers", workers], out_dir.parent)
    shutil.rmtree(in_dir)
    _drop_log(out_dir)
    for lang in ("en", "zh"):
        shutil.copyfile(dict_path, out_dir / f"dict.{lang}.txt")


def binarize_mono(mono_text: Path, dict_path: Path, out_dir: Path, workers: int) -> None:
    """Monolingual zh as the source side of zh->en: mono.zh-en.zh.{bin,idx} plus both dict copies."""
    in_dir = out_dir.parent / f"{out_dir.name}-inputs"
    _link_inputs({"mono.zh": mono_text}, in_dir)
    run_preprocess(["--source-lang", "zh", "--target-lang", "en", "--only-source", "--srcdict", dict_path,
                    "--testpref", in_dir / "mono", "--destdir", out_dir, "--workers", workers], out_dir.parent)
    shutil.rmtree(in_dir)
    _drop_log(out_dir)
    for ext in ("bin", "idx"):
        os.replace(out_dir / f"test.zh-en.zh.{ext}", out_dir / f"mono.zh-en.zh.{ext}")
    for lang in ("en", "zh"):
        shutil.copyfile(dict_path, out_dir / f"dict.{lang}.txt")


def _drop_log(out_dir: Path) -> None:
    """fairseq's preprocess.log carries timestamps; it is not part of the corpus."""
    (out_dir / "preprocess.log").unlink(missing_ok=True)
