"""nmt_suite.prep.extra_tests: which out-of-domain sets exist and how their Chinese is converted."""
import pytest
from conftest import SHARED_DATA, requires_shared_data

from nmt_suite.prep import clean
from nmt_suite.prep.errors import PrepError
from nmt_suite.prep.extra_tests import EXTRA_TESTS, check_files, conversion, resolve


@pytest.mark.parametrize("source, corpus, expected", [
    ("mixed", "keep", "cn"),   # Tatoeba into a Simplified corpus (ted-lowres keeps its Simplified text)
    ("cn", "keep", "keep"),    # FLORES (Hans) as it is
    ("unknown", "keep", "keep"),  # the user's own files: as given
    ("cn", "tw", "tw"),        # a corpus prepared with --zh-script tw gets Traditional references
    ("mixed", "tw", "tw"),
    ("cn", "cn", "keep"),
    ("mixed", "cn", "cn"),
])
def test_conversion_puts_references_in_the_corpus_script(source, corpus, expected):
    assert conversion(source, corpus) == expected


@pytest.mark.parametrize("spec, culprit", [
    ("flores", "unknown test set 'flores'"),
    ("test=/x/y", "'test' cannot name a test set"),
    ("../up=/x/y", "'../up' cannot name a test set"),
    (3, "expected a test set name or NAME=PREFIX"),
])
def test_bad_names(spec, culprit):
    with pytest.raises(PrepError, match=culprit.replace("(", r"\(").replace(".", r"\.")):
        resolve(spec)


def test_own_files_by_prefix(tmp_path):
    name, prefix, script = resolve(f"mine={tmp_path}/set")
    assert (name, prefix, script) == ("mine", tmp_path / "set", "unknown")
    with pytest.raises(PrepError, match=f"extra_tests: mine: {tmp_path}/set.en not found"):
        check_files(name, prefix)


@requires_shared_data
@pytest.mark.parametrize("name", sorted(EXTRA_TESTS))
def test_every_registered_set_is_in_the_shared_data(name):
    _, prefix, _ = resolve(name, SHARED_DATA)
    check_files(name, prefix)


@requires_shared_data
def test_tatoeba_references_become_simplified():
    _, prefix, source = resolve("tatoeba", SHARED_DATA)
    lines = prefix.with_name(prefix.name + ".zh").read_text(encoding="utf-8").splitlines()[:200]
    converted = clean.ScriptConverter(conversion(source, "keep")).convert_lines(lines)
    assert "乾杯!" in lines and "干杯!" in converted  # a Traditional line of the file's first 200
    assert sum(a != b for a, b in zip(lines, converted)) > 10
