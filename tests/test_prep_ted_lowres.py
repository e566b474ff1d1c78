"""The ted-lowres protocol (shared/data/README.md) prepared for real: counts in the manifest
and no valid/test sentence in the training or monolingual text.

sentencepiece is BPE here only to keep the test quick; sources, cleaning and filters (the
protocol) are exactly those of the default preparation."""
import json

import pytest

from conftest import SHARED_DATA, requires_shared_data
from nmt_suite.prep.filters import held_out_keys
from nmt_suite.tokens import sentence_key
from prep_toy import run_prepare

LIANG = SHARED_DATA / "ted-en-zh-liangyming"
IWSLT = SHARED_DATA / "iwslt17-ted-zh-en"
VALID = ("dev2010", "tst2010")
TEST = tuple(f"tst{year}" for year in range(2011, 2016))


def read(path) -> list:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """(corpus folder, the run's stderr)."""
    data = tmp_path_factory.mktemp("ted_lowres")
    code, out, err = run_prepare(["--corpus", "ted-lowres", "--data-dir", data, "--shared-data", SHARED_DATA,
                                  "--spm-type", "bpe", "--workers", "2"])
    assert code == 0, err
    return data / "ted-lowres", err


@pytest.fixture(scope="module")
def ted_lowres(prepared):
    return prepared[0]


@requires_shared_data
def test_real_corpora_give_no_warning_or_notice(prepared):
    """Their blank and wrong-script lines (a few per thousand) stay below the warning threshold."""
    _, err = prepared
    assert not [line for line in err.splitlines() if line.startswith(("[prep] warning", "[prep] notice"))]


@requires_shared_data
def test_manifest_counts_follow_the_protocol(ted_lowres):
    manifest = json.loads((ted_lowres / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["train"]["input"] == 35_981
    assert counts["mono"]["input"] == 20_495
    assert counts["valid"]["input"] == counts["valid"]["kept"] == 2_436
    assert counts["test"]["input"] == counts["test"]["kept"] == 6_992
    for role in ("train", "mono"):
        tally = counts[role]
        assert tally["kept"] + sum(tally["dropped"].values()) == tally["input"]
    # the 51 lines whose English side is empty next to a note such as （鼓掌） (SOURCE.md)
    assert counts["train"]["dropped"]["empty"] >= 51
    assert counts["train"]["dropped"]["leak_valid"] > 0 and counts["train"]["dropped"]["leak_test"] > 0
    assert [f["path"] for f in manifest["sources"]["mono"]] == [str(LIANG / "train-filtered.zh")]
    assert len(read(ted_lowres / "clean" / "train.en")) == counts["train"]["kept"]
    assert len(read(ted_lowres / "clean" / "mono.zh")) == counts["mono"]["kept"]
    assert manifest["dictionary"]["size"] % 8 == 0 and manifest["dictionary"]["bt_tag_id"] >= 4


@requires_shared_data
def test_references_are_the_untouched_iwslt_sets(ted_lowres):
    for split, sets in (("valid", VALID), ("test", TEST)):
        for lang in ("en", "zh"):
            expected = [line for name in sets for line in read(IWSLT / f"{name}.{lang}")]
            assert read(ted_lowres / "ref" / f"{split}.{lang}") == expected
            assert len(read(ted_lowres / "clean" / f"{split}.{lang}")) == len(expected)


@requires_shared_data
def test_no_valid_or_test_sentence_reaches_training_text(ted_lowres):
    held = {lang: held_out_keys([line for split in ("valid", "test") for line in read(ted_lowres / "clean" / f"{split}.{lang}")])
            for lang in ("en", "zh")}
    held_raw = {lang: {line for name in VALID + TEST for line in read(IWSLT / f"{name}.{lang}")} for lang in ("en", "zh")}
    for name, lang in (("train.en", "en"), ("train.zh", "zh"), ("mono.zh", "zh")):
        text = read(ted_lowres / "clean" / name)
        assert not [line for line in text if sentence_key(line) in held[lang]]
        assert not set(text) & held_raw[lang]
