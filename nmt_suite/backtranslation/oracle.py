"""Oracle back-translation: the *real* English of the monolingual sentences instead of a
reverse model's output, as an upper bound for what back-translation can give.

    python -m nmt_suite.backtranslation.oracle --corpus-dir data/ted-lowres \\
        --parallel ../shared/data/ted-en-zh-liangyming/train-filtered --out-dir runs/ted-lowres/bt/oracle

``--parallel PREFIX`` names the raw parallel text (``PREFIX.en``/``PREFIX.zh``) whose Chinese
side is the corpus's monolingual source. prepare_data cleaned, filtered and deduplicated
that Chinese into ``clean/mono.zh``; each of those lines is matched back to its raw pair by
cleaning the raw Chinese the same way (prepare_data's own cleaning functions and script
option) and comparing sentence keys (:func:`nmt_suite.tokens.sentence_key`). The matched English is cleaned
and encoded with the corpus's sentencepiece model. The output is a ``merged.tsv`` like a
generation's, so building the training set is the same; an unmatched line gets an empty
English side (dropped as ``empty`` by the filters) and is counted in ``oracle.json``.
A second run with the same inputs does nothing (:mod:`nmt_suite.stage_cache`).
"""
import argparse
import sys
from pathlib import Path

from nmt_suite.backtranslation.merge import MERGED
from nmt_suite.backtranslation.shards import Record
from nmt_suite.files import atomic_open, atomic_write_json, read_json
from nmt_suite.stage_cache import StageRecords, stage_key
from nmt_suite.tokens import sentence_key

ORACLE_JSON = "oracle.json"  # what the oracle matched, for the reader
ORACLE_STAGE = "oracle"
STAGES_DIR = ".stages"


class OracleError(RuntimeError):
    pass


def _lines(path: Path) -> list:
    if not path.is_file():
        raise OracleError(f"file not found: {path}")
    with open(path, encoding="utf-8", newline="\n") as handle:
        return [line.rstrip("\n").rstrip("\r") for line in handle]


def build_oracle(corpus_dir: Path, parallel_prefix: str, out_dir: Path) -> dict:
    import sentencepiece

    from nmt_suite.prep.clean import ScriptConverter, clean_en, clean_zh

    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    raw_en_path, raw_zh_path = Path(f"{parallel_prefix}.en"), Path(f"{parallel_prefix}.zh")
    mono_clean_path, mono_pieces_path = corpus_dir / "clean" / "mono.zh", corpus_dir / "spm_text" / "mono.zh"
    spm_model = corpus_dir / "spm" / "spm.model"
    raw_en, raw_zh = _lines(raw_en_path), _lines(raw_zh_path)
    if len(raw_en) != len(raw_zh):
        raise OracleError(f"{raw_en_path} has {len(raw_en)} lines but {raw_zh_path} has {len(raw_zh)}")
    mono_clean, mono_pieces = _lines(mono_clean_path), _lines(mono_pieces_path)
    if len(mono_clean) != len(mono_pieces):
        raise OracleError(f"{mono_clean_path} and {mono_pieces_path} differ in length")
    if not spm_model.is_file():
        raise OracleError(f"sentencepiece model not found: {spm_model}")
    options = read_json(corpus_dir / "manifest.json").get("options", {})
    records = StageRecords(out_dir / STAGES_DIR, base=out_dir)
    key = stage_key(ORACLE_STAGE, {
        "inputs": [records.file_hash(p)
                   for p in (raw_en_path, raw_zh_path, mono_clean_path, mono_pieces_path, spm_model)],
        "zh_script": options.get("zh_script", "keep"), "zh_punct": options.get("zh_punct", "full"),
    })
    if records.up_to_date(ORACLE_STAGE, key) is not None:
        print(f"{out_dir}: up to date, nothing to do", file=sys.stderr)
        return read_json(out_dir / ORACLE_JSON)

    converted = ScriptConverter(options.get("zh_script", "keep")).convert_lines(raw_zh)
    english_of = {}
    for zh, en in zip(converted, raw_en):
        english_of.setdefault(sentence_key(clean_zh(zh, options.get("zh_punct", "full"))), en)
    sp = sentencepiece.SentencePieceProcessor(model_file=str(spm_model))
    matched = 0
    with atomic_open(out_dir / MERGED) as out:
        for i, (clean, pieces) in enumerate(zip(mono_clean, mono_pieces)):
            en = english_of.get(sentence_key(clean))
            hypothesis = " ".join(sp.encode(clean_en(en), out_type=str)) if en is not None else ""
            matched += en is not None
            out.write(Record(i, 0.0, pieces, hypothesis).to_line())
    info = {"parallel": str(parallel_prefix), "monolingual": len(mono_clean),
            "matched": matched, "unmatched": len(mono_clean) - matched}
    atomic_write_json(out_dir / ORACLE_JSON, info)
    records.write(ORACLE_STAGE, key, outputs=(MERGED, ORACLE_JSON))
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-dir", type=Path, required=True, help="prepared corpus (data/<corpus>)")
    parser.add_argument("--parallel", required=True, help="PREFIX of the raw PREFIX.en / PREFIX.zh")
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        info = build_oracle(args.corpus_dir, args.parallel, args.out_dir)
    except (OracleError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.out_dir / MERGED}: {info['matched']} of {info['monolingual']} monolingual sentences "
          f"matched to their real English", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
