"""From fairseq-generate output to detokenized hypotheses in the original order, and their scores.

fairseq-generate prints hypotheses in batch order (sorted by length), each tagged with
the index of its source sentence (``H-<id>``). We put them back in source order, decode
the sentencepiece pieces with the corpus' own model (not a string replace, so
byte-fallback pieces decode too), and score against the untouched references with
sacrebleu, ``--tokenize zh`` for BLEU, plus chrF, each with its signature.
"""
from pathlib import Path

import sacrebleu

from nmt_suite.fairseq_output import GenerateOutputError
from nmt_suite.tokens import NOT_IN_TRANSLATIONS


def decode_pieces(sp, pieces: str) -> str:
    """Pieces -> text; specials dropped, no leading/trailing space (a lone final ``▁`` decodes to one)."""
    return sp.decode_pieces([p for p in pieces.split() if p not in NOT_IN_TRANSLATIONS]).strip()


def in_source_order(hyps: dict, n: int, sp):
    """n detokenized lines, line i = hypothesis of sentence i; missing ids give empty lines.

    Returns (lines, missing ids). An id >= n means the output belongs to another data set.
    """
    stray = [sid for sid in hyps if not 0 <= sid < n]
    if stray:
        raise GenerateOutputError(
            f"hypothesis ids {sorted(stray)[:5]} outside 0..{n - 1}: generate output and references disagree")
    lines, missing = [], []
    for sid in range(n):
        if sid in hyps:
            lines.append(decode_pieces(sp, hyps[sid]))
        else:
            lines.append("")
            missing.append(sid)
    return lines, missing


def split_files(data_dir, split: str, lang: str) -> Path:
    """A split's untouched text in a prepared corpus: ``ref/<split>.<lang>`` for its own valid and test,
    ``extra/<name>/ref/test.<lang>`` for an extra test set (nmt_suite.prep.extra_tests)."""
    from nmt_suite.prep.extra_tests import extra_dir
    from nmt_suite.rungs.results import SPLITS

    if split in SPLITS:
        return Path(data_dir) / "ref" / f"{split}.{lang}"
    return extra_dir(data_dir, split) / "ref" / f"test.{lang}"


def read_lines(path: Path) -> list:
    with open(path, encoding="utf-8", newline="\n") as f:
        return [line.rstrip("\n").rstrip("\r") for line in f]


def scoring_metrics() -> dict:
    """The metrics every run is scored with: BLEU (tokenize zh) and chrF, sacrebleu's defaults otherwise."""
    return {"bleu": sacrebleu.metrics.BLEU(tokenize="zh"), "chrf": sacrebleu.metrics.CHRF()}


def score(hyps: list, refs: list) -> dict:
    """BLEU (tokenize zh) and chrF of detokenized hypotheses against one reference each."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    bleu, chrf = scoring_metrics().values()
    bleu_score = bleu.corpus_score(hyps, [refs])
    chrf_score = chrf.corpus_score(hyps, [refs])
    return {
        "bleu": round(bleu_score.score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "bleu_detail": str(bleu_score),
        "chrf": round(chrf_score.score, 2),
        "chrf_signature": str(chrf.get_signature()),
        "n_sentences": len(refs),
    }
