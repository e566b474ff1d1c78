"""Oracle back-translation: each monolingual sentence gets its own real English back."""
import shutil

from bt_toy import toy_corpus  # noqa: F401  (fixture)
from nmt_suite.backtranslation.oracle import main as oracle_main
from nmt_suite.backtranslation.shards import Record


def test_oracle_pairs_each_monolingual_line_with_its_real_english(toy_corpus, tmp_path, capsys):
    import sentencepiece

    corpus = tmp_path / "corpus"
    shutil.copytree(toy_corpus, corpus)
    (corpus / "spm").mkdir()
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus / "clean" / "train.en"), model_prefix=str(corpus / "spm" / "spm"), model_type="word",
        vocab_size=20, hard_vocab_limit=False, minloglevel=2)
    sp = sentencepiece.SentencePieceProcessor(model_file=str(corpus / "spm" / "spm.model"))

    mono = (corpus / "clean" / "mono.zh").read_text().splitlines()
    english = [f"english of line {i}" for i in range(len(mono))]
    # the raw parallel text: another order, raw spacing, a pair not in the monolingual data,
    # and the line of mono[5] missing
    raw = [(f"  {zh}  ", en) for i, (zh, en) in enumerate(zip(mono, english)) if i != 5][::-1]
    raw.append(("z9 z9 z9 z9 z9 z9 z9", "not monolingual"))
    (tmp_path / "raw.zh").write_text("".join(zh + "\n" for zh, _ in raw))
    (tmp_path / "raw.en").write_text("".join(en + "\n" for _, en in raw))

    assert oracle_main(["--corpus-dir", str(corpus), "--parallel", str(tmp_path / "raw"),
                        "--out-dir", str(tmp_path / "oracle")]) == 0
    assert f"{len(mono) - 1} of {len(mono)} monolingual sentences matched" in capsys.readouterr().err
    pieces = (corpus / "spm_text" / "mono.zh").read_text().splitlines()
    records = [Record.from_line(line, "merged.tsv") for line in (tmp_path / "oracle" / "merged.tsv").read_text().splitlines()]
    assert [r.id for r in records] == list(range(len(mono)))
    assert [r.source for r in records] == pieces
    for r in records:
        expected = "" if r.id == 5 else " ".join(sp.encode(english[r.id], out_type=str))
        assert r.hypothesis == expected

    assert oracle_main(["--corpus-dir", str(corpus), "--parallel", str(tmp_path / "raw"),
                        "--out-dir", str(tmp_path / "oracle")]) == 0
    assert "up to date" in capsys.readouterr().err


def test_oracle_refuses_misaligned_parallel_text(toy_corpus, tmp_path, capsys):
    (tmp_path / "raw.zh").write_text("a\nb\n")
    (tmp_path / "raw.en").write_text("a\n")
    code = oracle_main(["--corpus-dir", str(toy_corpus), "--parallel", str(tmp_path / "raw"),
                        "--out-dir", str(tmp_path / "oracle")])
    assert code == 1 and not (tmp_path / "oracle").exists()
    assert "raw.en has 1 lines but" in capsys.readouterr().err
