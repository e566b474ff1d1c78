"""Building the boss training set: no leak of valid/test sentences, caching, bad input."""
import json
import shutil

import pytest

from bt_toy import BOSS_DATA_OPTIONS, build_args
from bt_toy import toy_boss_data, toy_corpus, toy_generation, toy_reverse_checkpoint  # noqa: F401  (fixtures)
from conftest import cli
from nmt_suite.backtranslation.build import BuildSettings, build, parse_args
from nmt_suite.backtranslation.build import main as build_main
from nmt_suite.backtranslation.synthetic_filters import FilterConfig

PLANTED = 2  # write_toy_corpus appends the first two test sentences to the monolingual corpus


def build_in_process(capsys, *args):
    """The build CLI's main() in this process (skips a ~10 s fairseq import per call); (exit code, stderr)."""
    code = build_main(build_args(*args))
    return code, capsys.readouterr().err


def plain(pieces: str) -> str:
    return "".join(pieces.replace("<BT>", "").replace("\u2581", " ").split())


def binarized_sentences(bin_dir, name, lang):
    """The sentences fairseq will read from ``bin_dir/<name>.en-zh.<lang>``, as plain text."""
    from fairseq.data import Dictionary, data_utils

    dictionary = Dictionary.load(str(bin_dir / f"dict.{lang}.txt"))
    data = data_utils.load_indexed_dataset(str(bin_dir / f"{name}.en-zh.{lang}"), dictionary, "mmap")
    return [dictionary.string(data[i]) for i in range(len(data))]


@pytest.fixture
def boss_data(toy_boss_data):
    return toy_boss_data


def test_planted_test_sentences_never_reach_the_training_set(toy_corpus, boss_data):
    mono_size = len((toy_corpus / "spm_text" / "mono.zh").read_text().splitlines())
    planted_ids = set(range(mono_size - PLANTED, mono_size))
    dropped = dict(line.split("\t") for line in (boss_data / "dropped.tsv").read_text().splitlines())
    assert {int(i) for i, reason in dropped.items() if reason == "leak"} >= planted_ids

    held_out = {plain(line) for split in ("valid", "test") for lang in ("en", "zh")
                for line in (toy_corpus / "ref" / f"{split}.{lang}").read_text().splitlines()}
    planted = {plain(line) for line in (toy_corpus / "spm_text" / "mono.zh").read_text().splitlines()[-PLANTED:]}
    assert planted <= held_out
    bin_dir = boss_data / "bin"
    for name in ("train", "train1"):
        for lang in ("en", "zh"):
            sentences = {plain(s) for s in binarized_sentences(bin_dir, name, lang)}
            assert sentences and not sentences & held_out, f"{name}.{lang} holds a valid/test sentence"
    assert not (bin_dir / "train2.en-zh.en.bin").exists()

    manifest = json.loads((boss_data / "manifest.json").read_text())
    assert manifest["filter"]["dropped"]["leak"] >= PLANTED
    assert manifest["filter"]["input"] == mono_size
    assert manifest["filter"]["kept"] + sum(manifest["filter"]["dropped"].values()) == mono_size
    assert manifest["train"]["synthetic_pairs"] == len(binarized_sentences(bin_dir, "train1", "zh"))
    assert manifest["leak_check"]["leaks"] == 0 and manifest["leak_check"]["checked_sentences"] > 0


def test_a_second_build_is_a_no_op_and_an_option_change_rebuilds(toy_corpus, toy_generation, boss_data,
                                                                  tmp_path, capsys):
    out = tmp_path / "boss-data"
    shutil.copytree(boss_data, out, symlinks=True)
    manifest_before = (out / "manifest.json").read_text()
    code, err = build_in_process(capsys, toy_corpus, toy_generation, out, *BOSS_DATA_OPTIONS)
    assert code == 0 and "up to date" in err
    assert (out / "manifest.json").read_text() == manifest_before
    settings = BuildSettings(toy_corpus, toy_generation / "merged.tsv", out, tag=True, noise=True, workers=1)
    assert build(settings) == json.loads(manifest_before)  # the typed call: same settings, same no-op
    assert "up to date" in capsys.readouterr().err

    (out / "bin" / "train1.en-zh.en.bin").write_bytes(b"torn")  # a damaged output is no cache hit
    assert build(settings) == json.loads(manifest_before)
    assert "up to date" not in capsys.readouterr().err
    assert (out / "bin" / "train1.en-zh.en.bin").read_bytes() == (boss_data / "bin" / "train1.en-zh.en.bin").read_bytes()

    (tmp_path / ".boss-data.tmp-999999" / "bin").mkdir(parents=True)  # what a killed build leaves behind
    code, err = build_in_process(capsys, toy_corpus, toy_generation, out, *BOSS_DATA_OPTIONS, "--upsample-real", "3")
    assert code == 0 and "up to date" not in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["train"]["upsample_real"] == 3
    assert manifest["train"]["total_pairs"] == 3 * manifest["train"]["real_pairs"] + manifest["train"]["synthetic_pairs"]
    assert manifest["fairseq_train_args"] == ["--upsample-primary", "3"]
    assert (out / "bin" / "train.en-zh.zh.bin").resolve() == (toy_corpus / "bin" / "train.en-zh.zh.bin").resolve()
    assert not (out / "bin" / "train1.en-zh.zh.bin").is_symlink()
    assert not list(tmp_path.glob(".boss-data.*"))  # no temporary directory left behind


def test_real_training_data_holding_a_test_sentence_is_refused(toy_corpus, toy_generation, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    shutil.copytree(toy_corpus, corpus)
    spm = corpus / "spm_text"
    for lang in ("en", "zh"):
        test_line = (spm / f"test.{lang}").read_text().splitlines()[5]
        (tmp_path / f"train.{lang}").write_text((spm / f"train.{lang}").read_text() + test_line + "\n")
    shutil.rmtree(corpus / "bin")
    cli("fairseq-preprocess", "--source-lang", "en", "--target-lang", "zh", "--trainpref", tmp_path / "train",
        "--validpref", spm / "valid", "--testpref", spm / "test", "--destdir", corpus / "bin",
        "--srcdict", corpus / "dict.txt", "--tgtdict", corpus / "dict.txt", "--workers", "1")
    out = tmp_path / "boss-data"
    code, err = build_in_process(capsys, corpus, toy_generation, out)
    assert code == 1
    assert "train.en-zh.en.bin" in err and "sentence 401 is a valid/test sentence" in err
    assert not out.exists() and not list(tmp_path.glob(".boss-data.*"))


@pytest.mark.parametrize("settings", [
    BuildSettings("data/x", "runs/x/bt/merged.tsv", "runs/x/boss/bt-data"),
    BuildSettings("data/x", "merged.tsv", "out", src="zh", tgt="en", tag=True, noise=True, noise_seed=7,
                  upsample_real=3, filters=FilterConfig(100, 2.5, 3, 0.5), workers=5),
    BuildSettings("data/x", "merged.tsv", "out", noise=True, workers=1),
])
def test_the_command_of_build_settings_parses_back_to_them(settings):
    command = settings.command()
    assert command[1:3] == ["-m", "nmt_suite.backtranslation.build"]
    assert parse_args(command[3:]) == settings


@pytest.mark.parametrize("break_input, message", [
    (lambda c, g: (c / "bin" / "dict.en.txt").write_text("hello 1\n"), "has no entry for the back-translation tag <BT>"),
    (lambda c, g: (c / "manifest.json").unlink(), "manifest.json not found"),
    (lambda c, g: (g / "merged.tsv").write_text("0\t-1.0\tonly three\n"), "merged.tsv:1: expected 4 tab-separated"),
    (lambda c, g: (g / "merged.tsv").unlink(), "synthetic pairs not found"),
])
def test_bad_input_is_refused_with_the_file_named(toy_corpus, toy_generation, tmp_path, capsys, break_input, message):
    corpus, generation = tmp_path / "corpus", tmp_path / "generation"
    shutil.copytree(toy_corpus, corpus)
    shutil.copytree(toy_generation, generation)
    break_input(corpus, generation)
    out = tmp_path / "boss-data"
    code, err = build_in_process(capsys, corpus, generation, out, "--tag")
    assert code == 1 and message in err
    assert not out.exists()

