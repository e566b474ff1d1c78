"""scripts/prepare_data.py end to end on a toy corpus: layout and manifest, caching, bad input and
bad option values (refused, nothing changed), CRLF / TSV input, and kill -9 followed by a
resumed run."""
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from fairseq.data import Dictionary, data_utils

from conftest import BIN, cli
from nmt_suite.names import is_plain_name
from nmt_suite.prep.workspace import STATE
from nmt_suite.stage_cache import StageRecords
from prep_toy import run_prepare, snapshot, toy_args, write_toy_corpus


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The toy corpus, prepared once (uninterrupted): the reference for the other tests."""
    root = tmp_path_factory.mktemp("prep")
    raw = write_toy_corpus(root / "raw")
    code, out, err = run_prepare(toy_args(raw, root / "data"))
    assert code == 0, err
    return SimpleNamespace(raw=raw, data=root / "data", corpus=root / "data" / "local", out=out, err=err)


def copy_prepared(toy, tmp_path) -> Path:
    shutil.copytree(toy.data, tmp_path / "data")
    return tmp_path / "data"


def lines(path: Path) -> list:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def steps_built(stats: Path) -> set:
    return {name for name, step in json.loads(stats.read_text())["steps"].items() if step["built"]}


def test_layout_manifest_and_counts(toy):
    c = toy.corpus
    manifest = json.loads((c / "manifest.json").read_text())
    for split in ("train", "valid", "test"):
        for lang in ("en", "zh"):
            for part in ("clean", "spm_text"):
                assert (c / part / f"{split}.{lang}").is_file()
            for ext in ("bin", "idx"):
                assert manifest["outputs"][f"bin/{split}.en-zh.{lang}.{ext}"]
    counts = manifest["counts"]
    train = counts["train"]
    assert train["input"] == 1500 and train["kept"] == len(lines(c / "clean/train.en"))
    assert train["kept"] + sum(train["dropped"].values()) == train["input"]
    assert train["dropped"]["empty"] == 1 and train["dropped"]["leak_valid"] >= 1 and train["dropped"]["leak_test"] >= 1
    assert train["dropped"]["duplicate"] > 1
    assert counts["mono"]["dropped"]["leak_test"] >= 1
    # valid/test: one line per source line, references as given
    for split in ("valid", "test"):
        assert counts[split]["kept"] == counts[split]["input"] == 60
        for lang in ("en", "zh"):
            assert lines(c / "ref" / f"{split}.{lang}") == lines(toy.raw / f"{split}.{lang}")
            assert len(lines(c / "clean" / f"{split}.{lang}")) == 60
    # the full-width pair was normalised, the sound note removed
    assert "The CAT sees a fish." in lines(c / "clean/train.en")
    assert not any("笑声" in line or "（" in line for line in lines(c / "clean/train.zh"))
    # one dictionary with <BT> everywhere; binarized sizes match the text
    d = Dictionary.load(str(c / "bin/dict.en.txt"))
    assert d.index("<BT>") == manifest["dictionary"]["bt_tag_id"] != d.unk()
    assert len(d) % 8 == 0 and len(d) == manifest["dictionary"]["size"]
    for name in ("bin/dict.zh.txt", "bin-mono/dict.zh.txt", "bin-mono/dict.en.txt"):
        assert (c / name).read_bytes() == (c / "bin/dict.en.txt").read_bytes()
    assert len(data_utils.load_indexed_dataset(str(c / "bin/train.en-zh.zh"), d)) == train["kept"]
    mono = data_utils.load_indexed_dataset(str(c / "bin-mono/mono.zh-en.zh"), d)
    assert len(mono) == counts["mono"]["kept"] == len(lines(c / "clean/mono.zh"))
    assert manifest["spm"]["model_sha256"] == manifest["outputs"]["spm/spm.model"]
    assert len(manifest["hash"]) == 64 and str(c) in toy.out


def test_binarized_files_equal_stock_fairseq_preprocess(toy, tmp_path):
    """Our fairseq-preprocess (faster encode_line) writes the bytes the console script writes."""
    c = toy.corpus
    cli("fairseq-preprocess", "--source-lang", "en", "--target-lang", "zh", "--joined-dictionary",
        "--srcdict", c / "bin/dict.en.txt", "--trainpref", c / "spm_text/train", "--validpref", c / "spm_text/valid",
        "--testpref", c / "spm_text/test", "--destdir", tmp_path, "--workers", "2")
    produced = sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".bin", ".idx"))
    assert len(produced) == 12
    for name in produced:
        assert (tmp_path / name).read_bytes() == (c / "bin" / name).read_bytes(), name


def test_step_records_hold_the_manifest_keys_and_output_hashes(toy):
    """Each step's record ``.prep-state/<step>.json`` holds the key manifest.json lists for it and
    the sha256 of the outputs it built; together they are the manifest's outputs."""
    c = toy.corpus
    manifest = json.loads((c / "manifest.json").read_text())
    records = StageRecords(c / STATE)
    assert records.stages() == sorted(manifest["steps"])
    outputs = {}
    for step, key in manifest["steps"].items():
        record = records.up_to_date(step, key)
        assert record is not None, step
        assert not set(record["outputs"]) & set(outputs), step
        outputs.update(record["outputs"])
    assert outputs == manifest["outputs"]
    assert records.read("spm")["info"]["vocab_size"] == manifest["spm"]["vocab_size"]


def test_a_damaged_output_is_rebuilt_by_its_step_alone(toy, tmp_path):
    data = copy_prepared(toy, tmp_path)
    (data / "local" / "spm_text" / "test.en").write_text("not what the step wrote\n", encoding="utf-8")
    stats = tmp_path / "stats.json"
    code, _, err = run_prepare(toy_args(toy.raw, data, "--stats-json", stats))
    assert code == 0, err
    assert steps_built(stats) == {"encode-test.en"}  # the same text again: bin/ stays up to date
    assert snapshot(data / "local") == snapshot(toy.corpus)


def test_second_run_does_nothing_and_says_so(toy, tmp_path):
    data = copy_prepared(toy, tmp_path)
    corpus = data / "local"
    before = {p: p.stat().st_mtime_ns for p in corpus.rglob("*") if p.is_file()}
    code, out, err = run_prepare(toy_args(toy.raw, data, "--stats-json", tmp_path / "stats.json"))
    assert code == 0, err
    assert "up to date" in out and "nothing to do" in out
    assert steps_built(tmp_path / "stats.json") == set()
    assert {p: p.stat().st_mtime_ns for p in corpus.rglob("*") if p.is_file()} == before


def test_changes_rebuild_only_what_depends_on_them(toy, tmp_path):
    data = copy_prepared(toy, tmp_path)
    reference = snapshot(toy.corpus)
    stats = tmp_path / "stats.json"

    assert run_prepare(toy_args(toy.raw, data, "--workers", "1", "--stats-json", stats))[0] == 0
    assert steps_built(stats) == set()  # --workers never changes outputs

    mono = tmp_path / "mono.zh"
    mono.write_text("\n".join(lines(toy.raw / "mono.zh")[:-50]) + "\n", encoding="utf-8")
    args = toy_args(toy.raw, data, "--stats-json", stats)
    args[args.index("--mono") + 1] = str(mono)
    assert run_prepare(args)[0] == 0
    assert steps_built(stats) == {"clean-mono", "encode-mono.zh", "binarize-mono"}
    after = snapshot(data / "local")
    changed = {rel for rel in reference if after[rel] != reference[rel]}
    assert changed == {"clean/mono.zh", "spm_text/mono.zh", "bin-mono/mono.zh-en.zh.bin",
                       "bin-mono/mono.zh-en.zh.idx", "manifest.json"}


def _corrupt(raw: Path, name: str, line: int, data: bytes) -> None:
    """Replace 1-based ``line`` of ``raw/name`` by ``data``."""
    content = (raw / name).read_bytes().split(b"\n")
    content[line - 1] = data
    (raw / name).write_bytes(b"\n".join(content))


BAD_INPUTS = {
    "misaligned": (lambda raw: (raw / "train.zh").write_bytes(b"".join(
        (raw / "train.zh").read_bytes().splitlines(keepends=True)[:-1])), [],
        r"misaligned files: {raw}/train.en has 1500 lines but {raw}/train.zh has 1499; {raw}/train.en:1500"),
    "invalid utf-8": (lambda raw: _corrupt(raw, "valid.zh", 7, "猫".encode()[:2] + b"\xff"), [],
                      r"{raw}/valid.zh:7: invalid UTF-8 \(byte 0xe7 at byte column 1"),
    "nul byte": (lambda raw: _corrupt(raw, "test.en", 3, b"a\x00b"), [], r"{raw}/test.en:3: NUL byte at byte column 2"),
    "empty file": (lambda raw: (raw / "mono.zh").write_bytes(b""), [], r"{raw}/mono.zh: empty file"),
    "emptied by filtering": (lambda raw: (raw / "train.en").write_bytes(b"\n" * 1500), [],
                             r"train: all 1500 pairs of {raw}/train.en, {raw}/train.zh were dropped by the filters "
                             r"\(empty 1500\)"),
    "missing file": (lambda raw: (raw / "valid.zh").unlink(), [], r"{raw}/valid.zh: file not found"),
    "missing prefix": (lambda raw: None, ["--test", "{raw}/nope"], r"{raw}/nope: file not found \(expected"),
    "bad tsv line": (lambda raw: (raw / "cmn.txt").write_text("Hi.\t嗨。\tCC-BY\nWe try. 我们来试试。\tCC-BY\n"),
                     ["--test", "{raw}/cmn.txt"], r"{raw}/cmn.txt:2: expected 3 tab-separated fields \(en, zh\[, "
                     r"attribution\]\), found 2"),
    "mono is a directory": (lambda raw: (raw / "monodir").mkdir(), ["--mono", "{raw}/monodir"],
                            r"{raw}/monodir: is a directory, not a file \(expected a Chinese text file"),
    "train is a directory": (lambda raw: (raw / "pairs").mkdir(), ["--train", "{raw}/pairs"],
                             r"{raw}/pairs: is a directory, not a file \(expected {raw}/pairs.en and"),
    "blank test set": (lambda raw: (raw / "test.en").write_bytes(b"\n" * 60), [],
                       r"test: 60 of 60 pairs of {raw}/test.en, {raw}/test.zh have a blank side after cleaning "
                       r"\(en 60, zh 0\); a test set needs text on both sides"),
    "valid set of asides": (lambda raw: _corrupt_lines(raw, "valid.zh", range(1, 41), "（鼓掌）".encode()), [],
                            r"valid: 40 of 60 pairs of {raw}/valid.en, {raw}/valid.zh have a blank side after "
                            r"cleaning \(en 0, zh 40\)"),
    "train is the test set": (lambda raw: [shutil.copy(raw / f"test.{lang}", raw / f"train.{lang}")
                                           for lang in ("en", "zh")],
                              [], r"train: all 60 pairs of {raw}/train.en, {raw}/train.zh were dropped by the filters "
                              r"\(leak_test 60\); nothing left to train on; sentences "
                              r"of valid or test are never trained on"),
    # the clean step is rebuilt (a changed train file) and staged before sentencepiece refuses
    "vocabulary below the required characters": (
        lambda raw: (raw / "train.en").write_bytes((raw / "train.en").read_bytes().replace(b"cat", b"kitten")),
        ["--vocab-size", "20"], r"sentencepiece training on clean/train.{{en,zh}} failed: --vocab-size 20 is smaller "
        r"than the (\d+) pieces this training text needs \(\d+ characters to cover at --character-coverage 0.9995, "
        r"plus 4 reserved\); raise --vocab-size to at least \1 or lower --character-coverage"),
}


def _corrupt_lines(raw: Path, name: str, numbers, data: bytes) -> None:
    for number in numbers:
        _corrupt(raw, name, number, data)


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_clearly_and_changes_nothing(toy, tmp_path, case):
    make_bad, extra, message = BAD_INPUTS[case]
    raw = tmp_path / "raw"
    shutil.copytree(toy.raw, raw)
    make_bad(raw)
    data = copy_prepared(toy, tmp_path)
    before = snapshot(data / "local", hidden=True)  # published files and the step records
    code, out, err = run_prepare(toy_args(raw, data, *[a.format(raw=raw) for a in extra]))
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("prepare_data.py: error:")]
    assert len(errors) == 1 and re.search(message.format(raw=re.escape(str(raw))), errors[0]), err
    assert "nothing published" in err
    assert snapshot(data / "local", hidden=True) == before
    assert not (data / "local" / ".staging").exists()


NOT_A_PLAIN_NAME = "must be a plain folder name (letters, digits and . _ + -; not starting with '.', no '..'), got "
BAD_OPTION_VALUES = [
    ("--corpus", "wmt", "invalid choice: 'wmt'"),
    ("--zh-script", "klingon", "invalid choice: 'klingon'"),
    ("--spm-type", "wordpiece", "invalid choice: 'wordpiece'"),
    ("--vocab-size", "0", "must be >= 5, got 0"),
    ("--vocab-size", "4", "must be >= 5, got 4"),
    ("--vocab-size", "8k", "expected an integer, got '8k'"),
    ("--max-ratio", "nan", "must be a finite number, got 'nan'"),
    ("--max-ratio", "inf", "must be a finite number, got 'inf'"),
    ("--max-ratio", "-2", "must be >= 1, got -2.0"),
    ("--max-ratio", "0", "must be >= 1, got 0.0"),
    ("--valid-ratio", "nan", "must be a finite number, got 'nan'"),
    ("--valid-ratio", "0", "must be between 0 and 1 (exclusive), got 0.0"),
    ("--character-coverage", "inf", "must be a finite number, got 'inf'"),
    ("--character-coverage", "0", "must be in (0, 1], got 0.0"),
    ("--min-len", "0", "must be >= 1, got 0"),
    ("--max-len", "-1", "must be >= 1, got -1"),
    ("--spm-sample", "-1", "must be >= 0, got -1"),
    ("--spm-threads", "0", "must be >= 1, got 0"),
    ("--workers", "0", "must be >= 1, got 0"),
    ("--seed", "-1", "must be in [0, 4294967295], got -1"),
    ("--seed", "4294967296", "must be in [0, 4294967295], got 4294967296"),
    ("--name", "", NOT_A_PLAIN_NAME + "''"),
    ("--name", "../elsewhere", NOT_A_PLAIN_NAME + "'../elsewhere'"),
    ("--name", "..", NOT_A_PLAIN_NAME + "'..'"),
    ("--name", "a/b", NOT_A_PLAIN_NAME + "'a/b'"),
    ("--name", "a\\b", NOT_A_PLAIN_NAME + "'a\\\\b'"),
    ("--name", ".hidden", NOT_A_PLAIN_NAME + "'.hidden'"),
    ("--name", "my corpus", NOT_A_PLAIN_NAME + "'my corpus'"),
    ("--name", "mine\n", NOT_A_PLAIN_NAME + "'mine\\n'"),
    ("--name", "_mine", NOT_A_PLAIN_NAME + "'_mine'"),
    ("--name", "mine..old", NOT_A_PLAIN_NAME + "'mine..old'"),
]


@pytest.mark.parametrize("name,plain", [("mine", True), ("ted-lowres", True), ("my_corpus.v2+bt", True),
                                        ("2023", True), ("", False), (".", False), ("..", False), ("a..b", False),
                                        (".mine", False), ("-mine", False), ("a/b", False), ("a b", False),
                                        ("mine\t", False), ("语料", False)])
def test_plain_name(name, plain):
    assert is_plain_name(name) is plain


@pytest.mark.parametrize("option,value,message", BAD_OPTION_VALUES)
def test_bad_option_value_is_refused_at_parsing(toy, tmp_path, option, value, message):
    data = copy_prepared(toy, tmp_path)
    before, entries = snapshot(data, hidden=True), sorted(tmp_path.iterdir())
    args = toy_args(toy.raw, data)
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    code, _, err = run_prepare(args)
    assert code == 2
    assert err.splitlines()[-1].startswith(f"prepare_data.py: error: argument {option}: {message}"), err
    assert snapshot(data, hidden=True) == before and sorted(tmp_path.iterdir()) == entries


@pytest.mark.parametrize("extra, message", [
    (["--name", "demo"], "--name demo is the built-in corpus demo's folder"),      # the rung scripts rebuild it
    (["--name", "ted-lowres"], "--name ted-lowres is the built-in corpus ted-lowres's folder"),
    (["--vocab", "100"], "unrecognized arguments: --vocab 100"),                   # no abbreviations
])
def test_built_in_corpus_names_and_abbreviated_options_are_refused(toy, tmp_path, extra, message):
    code, _, err = run_prepare(toy_args(toy.raw, tmp_path / "data", *extra))
    assert code == 2 and message in err.splitlines()[-1], err
    assert not (tmp_path / "data").exists()


def test_relative_paths_give_the_same_corpus(toy, tmp_path, monkeypatch):
    """fairseq-preprocess runs in a working directory of its own: a relative --data-dir must still work."""
    shutil.copytree(toy.raw, tmp_path / "raw")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_prepare(toy_args(Path("raw"), Path("data")))
    assert code == 0, err
    assert snapshot(tmp_path / "data" / "local" / "bin") == snapshot(toy.corpus / "bin")


def test_crlf_bom_and_tsv_inputs_give_the_same_corpus(toy, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for path in toy.raw.iterdir():
        text = path.read_bytes().replace(b"\n", b"\r\n")
        (raw / path.name).write_bytes((b"\xef\xbb\xbf" if path.name == "train.en" else b"") + text)
    en, zh = lines(toy.raw / "valid.en"), lines(toy.raw / "valid.zh")
    (raw / "valid.tsv").write_text("".join(f"{e}\t{z}\tCC-BY 2.0 (France)\r\n" for e, z in zip(en, zh)),
                                   encoding="utf-8")
    data = copy_prepared(toy, tmp_path)
    args = toy_args(raw, data, "--stats-json", tmp_path / "stats.json")
    args[args.index("--valid") + 1] = str(raw / "valid.tsv")
    code, _, err = run_prepare(args)
    assert code == 0, err
    # the sources' hashes changed, so cleaning re-ran, and produced the very same text
    assert steps_built(tmp_path / "stats.json") == {"clean-parallel", "clean-mono"}
    new, old = snapshot(data / "local"), snapshot(toy.corpus)
    assert {k: v for k, v in new.items() if k != "manifest.json"} == {k: v for k, v in old.items()
                                                                        if k != "manifest.json"}


def _start_cli(args: list) -> subprocess.Popen:
    """prepare_data.py's console script (nmt_suite.prep.cli:main) in a process of its own."""
    return subprocess.Popen([str(BIN / "fairseq-ext-prepare"), *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(proc: subprocess.Popen, condition, what: str, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"prepare_data.py ended (exit {proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_kill_9_then_rerun_gives_identical_outputs(toy, tmp_path):
    """Killed while encoding, restarted and killed while binarizing, restarted: the same bytes
    as the uninterrupted run."""
    data = tmp_path / "data"
    corpus = data / "local"
    kill_points = {
        # sentencepiece is recorded (staged): the run is encoding (or just past it)
        "encoding": lambda: (corpus / ".staging" / ".prep-state" / "spm.json").exists(),
        # fairseq-preprocess is running in the binarize step's temporary directory
        "binarization": lambda: any((corpus / ".staging").glob(".binarize.tmp-*/bin-inputs")),
    }
    for point, reached in kill_points.items():
        proc = _start_cli(toy_args(toy.raw, data))
        _wait_for(proc, reached, point)
        if point == "binarization":
            time.sleep(1.0)  # let fairseq-preprocess get going
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        assert not (corpus / "manifest.json").exists()  # nothing was published
    code, out, err = run_prepare(toy_args(toy.raw, data))
    assert code == 0, err
    assert "spm: up to date" in err  # steps finished before the kills were not redone
    assert snapshot(corpus) == snapshot(toy.corpus)
    assert not (corpus / ".staging").exists()


def test_killed_run_with_other_options_is_not_published_by_the_next_run(toy, tmp_path):
    """A run killed after staging its own sentencepiece model, then the original options again:
    the published steps are up to date and the killed run's staged files are dropped, not
    renamed over them."""
    data = copy_prepared(toy, tmp_path)
    corpus = data / "local"
    before = snapshot(corpus, hidden=True)
    proc = _start_cli(toy_args(toy.raw, data, "--vocab-size", "90"))
    _wait_for(proc, lambda: (corpus / ".staging" / ".prep-state" / "spm.json").exists(), "the staged spm record")
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert snapshot(corpus) == snapshot(toy.corpus)  # nothing published by the killed run
    code, out, err = run_prepare(toy_args(toy.raw, data, "--stats-json", tmp_path / "stats.json"))
    assert code == 0, err
    assert steps_built(tmp_path / "stats.json") == set()
    assert snapshot(corpus, hidden=True) == before
    assert not (corpus / ".staging").exists()
