"""Synthetic-pair filters, the held-out index, noise and tagging: table-driven, no model needed."""
import numpy as np
import pytest

from nmt_suite.backtranslation.synthetic_filters import REASONS, FilterConfig, PairFilter, copy_overlap
from nmt_suite.backtranslation.leakage import HeldOutIndex
from nmt_suite.backtranslation.noise import NoiseConfig, add_noise, noise_sentence, spm_words
from nmt_suite.backtranslation.tagging import tag
from nmt_suite.tokens import BT_TAG

LONG_ZH = " ".join(["▁我"] * 300)
LONG_EN = " ".join(["▁I"] * 300)
TEST_ZH = "▁谢谢 你 们 。"  # a held-out sentence in the index below
TEST_EN = "▁Thank ▁you ▁all ."


@pytest.mark.parametrize("real, synthetic, expected", [
    ("▁我 喜欢 猫 。", "▁I ▁like ▁cats .", None),
    ("▁是的 .", "▁Yes .", None),                              # shared punctuation is no copy
    ("▁我 喜欢 猫 。", "", "empty"),
    ("", "▁I ▁like ▁cats .", "empty"),
    ("▁我 喜欢 猫 。", "▁", "empty"),                           # only a word-boundary mark
    (LONG_ZH, LONG_EN, "too_long"),
    ("▁我 喜欢 猫 。", " ".join(["▁cat"] * 20), "length_ratio"),
    (" ".join(["▁猫"] * 20), "▁cats .", "length_ratio"),
    ("▁好", "▁very ▁good ▁indeed ▁my ▁friend", None),          # short: ratio rule does not apply
    ("▁我 喜欢 猫 。", "▁我 喜欢 猫 。", "copy"),
    ("▁我 喜欢 猫 。", "▁我 喜欢 ▁cats", "copy"),                # 2 of 3 word pieces echoed (>= 0.6)
    ("▁TED 演讲 。", "▁TED ▁talk ▁today .", None),              # a shared name is no copy
    (TEST_ZH, "▁Thanks ▁a ▁lot .", "leak"),                    # monolingual side is a test sentence
    ("▁多谢 大家 。", TEST_EN, "leak"),                         # synthetic side is a test sentence
    ("▁谢谢你们。", "▁Thanks .", "leak"),                       # another segmentation of the same text
])
def test_single_pair_reason(real, synthetic, expected):
    held_out = HeldOutIndex({"zh": [TEST_ZH.replace("▁", " ")], "en": ["Thank you all."]})
    config = FilterConfig(max_copy_overlap=0.6)
    assert PairFilter(config, held_out).reason(real, synthetic) == expected


@pytest.mark.parametrize("real, synthetic, expected", [
    ("▁a ▁b", "▁c ▁d", 0.0),
    ("▁a ▁b", "▁a ▁d", 0.5),
    ("▁a ▁b", "▁a ▁a", 0.5),      # multiplicity: the real side has one "▁a"
    ("▁a ▁b", "▁a ▁b , .", 1.0),  # pieces without a letter are left out
    ("▁a", ", .", 0.0),
])
def test_copy_overlap(real, synthetic, expected):
    assert copy_overlap(real.split(), synthetic.split()) == pytest.approx(expected)


def test_duplicates_and_counts_per_reason():
    pairs = [
        ("▁我 喜欢 猫 。", "▁I ▁like ▁cats ."),
        ("▁我 喜欢 猫 。", "▁I ▁like ▁cats ."),     # same pair again
        ("▁我喜欢猫。", "▁I ▁like ▁cats ."),         # same text, other segmentation
        ("▁我 喜欢 狗 。", "▁I ▁like ▁cats ."),     # same synthetic side, other target: kept
        ("▁我 喜欢 狗 。", ""),
    ]
    pair_filter = PairFilter()
    verdicts = [pair_filter.reason(r, s) for r, s in pairs]
    assert verdicts == [None, "duplicate", "duplicate", None, "empty"]
    summary = pair_filter.summary()
    assert summary["input"] == 5 and summary["kept"] == 2
    assert summary["dropped"] == {**{r: 0 for r in REASONS}, "duplicate": 2, "empty": 1}


@pytest.mark.parametrize("lang, text, held_out", [
    ("en", "▁Thank ▁you ▁all .", True),
    ("en", "Thank  you all!", True),               # punctuation does not make another sentence
    ("en", "ＴＨＡＮＫ　ｙｏｕ　ａｌｌ．", True),  # full-width forms (NFKC)
    ("en", f"{BT_TAG} ▁Thank ▁you ▁all .", True),
    ("en", "▁Thank ▁you ▁all ▁again .", False),
    ("zh", "▁Thank ▁you ▁all .", False),           # the index is per language
    ("zh", "▁谢谢 你 们 。", True),
    ("zh", "( 笑声 )", True),
    ("en", "...", False),                          # no letter or digit: never a held-out sentence
])
def test_held_out_index_compares_sentence_keys(lang, text, held_out):
    index = HeldOutIndex({"en": ["Thank you all.", "..."], "zh": ["谢谢你们。", "（笑声）"]})
    assert index.contains(lang, text) is held_out


@pytest.mark.parametrize("pieces, words", [
    ("▁the ▁cat", [["▁the"], ["▁cat"]]),
    ("▁un believ able ▁!", [["▁un", "believ", "able"], ["▁!"]]),
    ("▁ 谢谢 ▁TED", [["▁", "谢谢"], ["▁TED"]]),
    ("", []),
])
def test_spm_words(pieces, words):
    assert spm_words(pieces.split()) == words


SENTENCE = "▁a b ▁c ▁d e f ▁g ▁h ▁i ▁j ▁k ▁l ▁m ▁n ▁o ▁p".split()


@pytest.mark.parametrize("config, check", [
    (NoiseConfig(drop=0, blank=0, max_swap=0), lambda out: out == SENTENCE),
    (NoiseConfig(drop=0, blank=0), lambda out: sorted(map(tuple, spm_words(out))) == sorted(map(tuple, spm_words(SENTENCE)))),
    (NoiseConfig(drop=0, blank=1.0, max_swap=0), lambda out: out == ["<unk>"] * len(spm_words(SENTENCE))),
    (NoiseConfig(drop=0.99, blank=0, max_swap=0), lambda out: len(spm_words(out)) >= 1),
    (NoiseConfig(drop=0.5, blank=0, max_swap=0), lambda out: [w for w in spm_words(SENTENCE) if w in spm_words(out)] == spm_words(out)),
])
def test_noise_properties(config, check):
    for seed in range(50):
        assert check(add_noise(SENTENCE, np.random.default_rng(seed), config))


def test_swaps_stay_within_three_positions():
    words = [f"▁w{i}" for i in range(30)]
    moved = 0
    for seed in range(200):
        out = add_noise(words, np.random.default_rng(seed), NoiseConfig(drop=0, blank=0, max_swap=3))
        displacement = [abs(out.index(w) - i) for i, w in enumerate(words)]
        assert max(displacement) <= 3
        moved = max(moved, max(displacement))
    assert moved == 3  # the bound is reached, not just respected


def test_default_noise_rates_and_determinism():
    words = [f"▁w{i}" for i in range(20000)]
    out = noise_sentence(words, seed=1, sentence_id=7)
    assert out == noise_sentence(words, seed=1, sentence_id=7)
    assert out != noise_sentence(words, seed=1, sentence_id=8)
    dropped = 1 - (len(out) / len(words))
    blanks = out.count("<unk>") / len(out)
    assert 0.09 < dropped < 0.11 and 0.09 < blanks < 0.11


@pytest.mark.parametrize("pieces, tagged", [
    ("▁hello ▁world", f"{BT_TAG} ▁hello ▁world"),
    ("", BT_TAG),
])
def test_tag(pieces, tagged):
    assert tag(pieces) == tagged


def test_leak_rule_also_checks_the_noisy_synthetic_side():
    held_out = HeldOutIndex({"en": ["Thank you all."]})
    pair_filter = PairFilter(held_out=held_out)
    assert pair_filter.reason("▁谢谢 大家 。", "▁Thank ▁you ▁all ▁again .", noisy="▁Thank ▁you ▁all .") == "leak"
    assert pair_filter.reason("▁谢谢 大家 。", "▁Thank ▁you ▁all ▁again .", noisy="▁you ▁Thank ▁all .") is None
