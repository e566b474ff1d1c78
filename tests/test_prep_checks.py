"""What prepare_data.py warns about or adjusts without refusing: wrong-script and blank lines
(counted, warned on every run), and a vocabulary too large for the training text (lowered,
with a notice, and recorded in manifest.json)."""
import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import cli
from nmt_suite.prep.clean_step import warning_lines
from prep_toy import run_prepare, toy_args, write_toy_corpus


@pytest.fixture(scope="module")
def toy_raw(tmp_path_factory) -> Path:
    return write_toy_corpus(tmp_path_factory.mktemp("raw"))


def _lines(path: Path) -> list:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def _write(path: Path, lines: list) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _swap_train_sides(raw: Path, rows: range) -> None:
    en, zh = _lines(raw / "train.en"), _lines(raw / "train.zh")
    for i in rows:
        en[i], zh[i] = zh[i], en[i]
    _write(raw / "train.en", en)
    _write(raw / "train.zh", zh)


def _replace_lines(path: Path, rows: range, text: str) -> None:
    lines = _lines(path)
    for i in rows:
        lines[i] = text
    _write(path, lines)


def _warnings(err: str) -> list:
    return [line.removeprefix("[prep] warning: ") for line in err.splitlines() if line.startswith("[prep] warning: ")]


SWAPPED = "; are the files swapped or mislabelled?"
WARNING_CASES = {
    "clean toy corpus": (lambda raw: None, []),
    "a tenth of train swapped": (lambda raw: _swap_train_sides(raw, range(100, 250)), [
        "train: 150 of 1,500 English lines are mostly Chinese characters (10.0%; {raw}/train.en, {raw}/train.zh)"
        + SWAPPED,
        "train: 150 of 1,500 Chinese lines contain no Chinese character (10.0%; {raw}/train.en, {raw}/train.zh)"
        + SWAPPED]),
    "valid with a few applause-only lines": (lambda raw: _replace_lines(raw / "valid.zh", range(5), "（鼓掌）"), [
        "valid: 5 of 60 pairs have a blank side after cleaning (8.3%; {raw}/valid.en, {raw}/valid.zh)"]),
    "one blank test line is below the threshold": (lambda raw: _replace_lines(raw / "test.en", range(1), ""), []),
    "mono partly English": (lambda raw: _replace_lines(raw / "mono.zh", range(2, 32), "Not Chinese at all."), [
        "mono: 30 of 300 Chinese lines contain no Chinese character (10.0%; {raw}/mono.zh)" + SWAPPED]),
}


@pytest.mark.parametrize("case", list(WARNING_CASES))
def test_suspicious_lines_are_warned_about_on_every_run(toy_raw, tmp_path, case):
    change, expected = WARNING_CASES[case]
    raw = tmp_path / "raw"
    shutil.copytree(toy_raw, raw)
    change(raw)
    expected = [line.format(raw=raw) for line in expected]
    code, _, err = run_prepare(toy_args(raw, tmp_path / "data"))
    assert code == 0, err
    assert _warnings(err) == expected
    code, out, err = run_prepare(toy_args(raw, tmp_path / "data"))
    assert code == 0 and "nothing to do" in out
    assert _warnings(err) == expected


def _counts(**splits) -> dict:
    """Counts as the clean steps record them: split -> (lines, en mostly CJK, zh without CJK, blank pairs)."""
    counts = {}
    for split, (total, en_cjk, zh_latin, blank) in splits.items():
        script = {"zh_without_cjk": zh_latin} if en_cjk is None else {"en_mostly_cjk": en_cjk,
                                                                       "zh_without_cjk": zh_latin}
        counts[split] = {"input": total, "script": script}
        if blank is not None:
            counts[split]["empty_after_cleaning"] = {"en": blank, "zh": 0, "pairs": blank}
    return counts


FILES = {"train": [{"path": "t.en"}, {"path": "t.zh"}], "valid": "split from train", "test": [{"path": "x.tsv"}],
         "mono": [{"path": "m.zh"}]}


@pytest.mark.parametrize("counts,expected", [
    (_counts(train=(1000, 0, 0, None), valid=(100, 0, 0, 0), test=(100, 0, 0, 0)), []),
    # more than 2 % warns; 2 % exactly does not
    (_counts(train=(1000, 20, 21, None)),
     ["train: 21 of 1,000 Chinese lines contain no Chinese character (2.1%; t.en, t.zh)" + SWAPPED]),
    (_counts(valid=(100, 3, 0, 0)),
     ["valid: 3 of 100 English lines are mostly Chinese characters (3.0%; split from train)" + SWAPPED]),
    (_counts(test=(100, 0, 0, 2)), []),
    (_counts(test=(100, 0, 0, 3)), ["test: 3 of 100 pairs have a blank side after cleaning (3.0%; x.tsv)"]),
    (_counts(mono=(50, None, 50, None)),
     ["mono: 50 of 50 Chinese lines contain no Chinese character (100.0%; m.zh)" + SWAPPED]),
])
def test_warning_thresholds(counts, expected):
    assert warning_lines(counts, FILES) == expected


def test_own_corpus_with_default_options_lowers_a_too_large_vocabulary(tmp_path):
    """6,000 pairs of one's own (made as README's example makes them) with every default:
    --vocab-size 8000 is more than the text supports, so the largest size sentencepiece accepts
    is used, said once, recorded, and equal to asking for it."""
    raw = tmp_path / "raw"
    cli("python", "-m", "nmt_suite.demo_corpus", raw, "--train", "6000", "--valid", "300", "--test", "300")
    data = tmp_path / "data"
    args = ["--corpus", "local", "--name", "mine", "--data-dir", data,
            "--train", raw / "train", "--valid", raw / "valid", "--test", raw / "test"]
    code, out, err = run_prepare(args)
    assert code == 0, err
    manifest = json.loads((data / "mine" / "manifest.json").read_text())
    used = manifest["spm"]["vocab_size"]["used"]
    assert manifest["spm"]["vocab_size"] == {"requested": 8000, "used": used} and used < 8000
    assert manifest["spm"]["pieces"] == manifest["spm"]["trainer_options"]["vocab_size"] == used
    assert manifest["options"]["vocab_size"] == 8000
    notices = [line for line in err.splitlines() if "notice" in line]
    assert notices == [f"[prep] notice: --vocab-size 8,000 is more than sentencepiece can build from this training "
                       f"text; using {used:,}, the largest it accepts"]
    assert re.search(rf"spm\.model \(unigram, {used:,} pieces", out)

    code, _, err = run_prepare([*args, "--vocab-size", used])
    assert code == 0, err
    assert "notice" not in err and "[prep] spm: built" in err
    again = json.loads((data / "mine" / "manifest.json").read_text())
    assert again["spm"]["vocab_size"] == {"requested": used, "used": used}
    assert again["outputs"]["spm/spm.model"] == manifest["outputs"]["spm/spm.model"]
