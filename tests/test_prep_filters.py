"""Pair and monolingual filters, the leakage filter and the seeded valid split."""
import pytest

from nmt_suite.prep.filters import (LengthLimits, Tally, drop_leaks, filter_mono, filter_pairs, held_out_keys,
                                    split_valid)

LIMITS = LengthLimits(min_len=2, max_len=8, max_ratio=3.0)


@pytest.mark.parametrize("en,zh,reason", [
    ("the cat sat", "猫坐着", None),
    ("", "鼓掌", "empty"),
    ("the cat sat", "", "empty"),
    ("cat", "猫坐着", "too_short"),          # 1 English word < min_len 2
    ("the cat sat", "猫", "too_short"),      # 1 Chinese character
    ("one two three four five six seven eight nine", "数字很多", "too_long"),
    ("the cat", "非常非常大的猫", "ratio"),  # 2 words vs 7 characters > 3x
    ("the cat sat", "猫 坐 着", None),        # spaces are not characters
])
def test_pair_filter_reasons(en, zh, reason):
    tally = Tally()
    kept = filter_pairs([en], [zh], LIMITS, tally)
    assert kept == ([] if reason else [0])
    assert tally.as_dict() == {"input": 1, "kept": 0 if reason else 1, "dropped": {reason: 1} if reason else {}}


def test_duplicates_keep_the_first_pair_and_count_by_first_reason():
    en = ["the cat sat", "the cat sat", "the cat sat", "", ""]
    zh = ["猫坐着", "猫坐着", "猫坐了", "", ""]
    tally = Tally()
    assert filter_pairs(en, zh, LIMITS, tally) == [0, 2]
    assert tally.dropped == {"duplicate": 1, "empty": 2}
    assert tally.kept == 2


@pytest.mark.parametrize("train,held,leaks", [
    ("Thank you.", "thank you", True),
    ("Thank you!", "Thank  you .", True),
    ("谢谢。", "谢谢！", True),
    ("“谢谢”", "谢谢", True),
    ("Ｔｈａｎｋ ｙｏｕ", "thank you", True),    # full-width forms: NFKC
    ("<BT> Thank you", "Thank you.", True),    # the back-translation tag is not part of a sentence
    ("Thank you.", "Thank you all.", False),
    ("3.14", "314", True),
    ("...", "!!!", False),   # nothing left to compare: never a match
])
def test_leak_means_the_same_sentence_key(train, held, leaks):
    tally = Tally(input=1)
    kept = drop_leaks([0], [[train]], {"test": (held_out_keys([held]),)}, tally)
    assert (kept == []) is leaks
    assert tally.dropped == ({"leak_test": 1} if leaks else {})


def test_leakage_filter_removes_train_pairs_seen_in_valid_or_test_on_either_side():
    train_en = ["a new sentence", "Thank you!", "another one", "fresh text", "more text"]
    train_zh = ["新句子", "多谢", "又一个", "谢谢。", "更多"]
    held = {"valid": (held_out_keys(["Thank you."]), held_out_keys(["不同"])),
            "test": (held_out_keys(["Thank you", "More text"]), held_out_keys(["谢谢"]))}
    tally = Tally(input=5)
    kept = drop_leaks(range(5), [train_en, train_zh], held, tally)
    assert kept == [0, 2]
    # "Thank you!" is in valid and test: counted once, for valid (the first set)
    assert tally.dropped == {"leak_valid": 1, "leak_test": 2}


def test_mono_filter_and_leaks():
    mono = ["你好世界", "你好世界", "", "测试句子", "谢谢"]
    tally = Tally()
    kept = filter_mono(mono, LengthLimits(), tally)
    kept = drop_leaks(kept, [mono], {"test": (held_out_keys(["测试句子！"]),)}, tally)
    assert kept == [0, 4]
    assert tally.as_dict() == {"input": 5, "kept": 2, "dropped": {"duplicate": 1, "empty": 1, "leak_test": 1}}


def test_valid_split_is_seeded_ordered_and_disjoint():
    indices = list(range(0, 2000, 2))
    train, valid = split_valid(indices, 0.05, seed=3)
    assert len(valid) == 50 and len(train) == 950
    assert sorted(train + valid) == indices and not set(train) & set(valid)
    assert train == sorted(train) and valid == sorted(valid)
    assert split_valid(indices, 0.05, seed=3) == (train, valid)
    assert split_valid(indices, 0.05, seed=4)[1] != valid
