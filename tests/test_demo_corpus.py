"""The built-in demo corpus: deterministic, covers its lexicon, keeps valid/test out of train."""
import re

import pytest

from nmt_suite.demo_corpus import (
    NOUNS,
    _Generator,
    en_number,
    generate_demo_corpus,
    lexicon_entries,
    write_demo_corpus,
    zh_digits,
    zh_number,
)

SMALL = dict(n_train=3000, n_valid=100, n_test=150, n_mono=500)


@pytest.fixture(scope="module")
def default_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    info = write_demo_corpus(out)
    return out, info


def _has_any(text, forms):
    """One of the forms occurs as whole words (not "one" inside "twenty-one")."""
    return any(re.search(rf"(?<![\w-]){re.escape(form)}(?![\w-])", text, re.IGNORECASE) for form in forms)


def _lines(path):
    return path.read_text(encoding="utf-8").split("\n")[:-1]


@pytest.mark.parametrize("n, en, zh, zh_counting", [
    (1, "one", "一", "一"),
    (2, "two", "二", "两"),
    (10, "ten", "十", "十"),
    (12, "twelve", "十二", "十二"),
    (20, "twenty", "二十", "二十"),
    (22, "twenty-two", "二十二", "二十二"),
    (99, "ninety-nine", "九十九", "九十九"),
    (100, "one hundred", "一百", "一百"),
    (105, "one hundred and five", "一百零五", "一百零五"),
    (110, "one hundred and ten", "一百一十", "一百一十"),
    (219, "two hundred and nineteen", "二百一十九", "两百一十九"),
    (999, "nine hundred and ninety-nine", "九百九十九", "九百九十九"),
])
def test_numbers(n, en, zh, zh_counting):
    assert en_number(n) == en
    assert zh_number(n) == zh
    assert zh_number(n, counting=True) == zh_counting


@pytest.mark.parametrize("year, zh", [(1998, "一九九八"), (2005, "二零零五"), (1950, "一九五零")])
def test_years_are_read_digit_by_digit(year, zh):
    assert zh_digits(year) == zh


def _noun(en):
    return next(n for n in NOUNS if n.en == en)


@pytest.mark.parametrize("noun, n, demonstrative, en, zh", [
    ("book", 3, None, "three books", "三本书"),
    ("cat", 2, None, "two cats", "两只猫"),
    ("cat", 22, None, "twenty-two cats", "二十二只猫"),
    ("apple", 1, None, "an apple", "一个苹果"),
    ("cup of tea", 2, None, "two cups of tea", "两杯茶"),
    ("shirt", 1, ("this", "这"), "this shirt", "这件衬衫"),
    ("shirt", 3, ("those", "那"), "those three shirts", "那三件衬衫"),
    ("fish", 5, None, "five fish", "五条鱼"),
])
def test_measure_words(noun, n, demonstrative, en, zh):
    phrase = _Generator(rng=None).counted(_noun(noun), n=n, demonstrative=demonstrative, adjective=False)
    assert (phrase.en, phrase.zh) == (en, zh)


def test_same_seed_same_bytes_other_seed_other_corpus(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_demo_corpus(a, seed=7, **SMALL)
    write_demo_corpus(b, seed=7, **SMALL)
    write_demo_corpus(c, seed=8, **SMALL)
    names = sorted(p.name for p in a.iterdir())
    assert names == ["mono.zh", "test.en", "test.zh", "train.en", "train.zh", "valid.en", "valid.zh"]
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "train.en").read_bytes() != (c / "train.en").read_bytes()


def test_default_size_and_alignment(default_corpus):
    out, info = default_corpus
    assert info["counts"]["train"] >= 20000
    for split in ("train", "valid", "test"):
        en, zh = _lines(out / f"{split}.en"), _lines(out / f"{split}.zh")
        assert len(en) == len(zh) == info["counts"][split]
        assert all(line.strip() for line in en + zh)
    # real Chinese characters on the target side, none on the source side
    assert all(re.search(r"[\u4e00-\u9fff]", line) for line in _lines(out / "train.zh"))
    assert not any(re.search(r"[\u4e00-\u9fff]", line) for line in _lines(out / "train.en"))


def test_every_lexicon_entry_is_in_train(default_corpus):
    out, _ = default_corpus
    en_text = " ".join(_lines(out / "train.en"))
    zh_text = "".join(_lines(out / "train.zh"))
    missing = [(category, key) for category, key, forms, zh in lexicon_entries()
               if not _has_any(en_text, forms) or zh not in zh_text]
    assert missing == []


def test_coverage_holds_for_a_small_train_split():
    corpus = generate_demo_corpus(seed=3, **SMALL)
    en_text = " ".join(en for en, _ in corpus["train"])
    zh_text = "".join(zh for _, zh in corpus["train"])
    missing = [(category, key) for category, key, forms, zh in lexicon_entries()
               if not _has_any(en_text, forms) or zh not in zh_text]
    assert missing == []


def test_no_valid_or_test_sentence_reaches_train_or_mono(default_corpus):
    out, _ = default_corpus
    train_en, train_zh = set(_lines(out / "train.en")), set(_lines(out / "train.zh"))
    mono = set(_lines(out / "mono.zh"))
    for split in ("valid", "test"):
        en, zh = set(_lines(out / f"{split}.en")), set(_lines(out / f"{split}.zh"))
        assert not en & train_en
        assert not zh & train_zh
        assert not zh & mono
    assert len(train_en) == len(_lines(out / "train.en"))  # no duplicate pairs either
    assert not set(_lines(out / "valid.en")) & set(_lines(out / "test.en"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_train=100), "n_train must be >="),
    (dict(n_test=0), "n_test must be >= 1"),
])
def test_bad_sizes_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_demo_corpus(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x" / "train.en").exists()
