"""Rules that drop bad synthetic pairs, each with the reason counted in the manifest.

A pair is (``real``: the monolingual sentence, the forward model's *target*;
``synthetic``: the reverse model's output, the forward model's *source*), both as
space-separated sentencepiece pieces. Rules are tried in the order of :data:`REASONS`;
the first that fires names the reason.
"""
from collections import Counter
from dataclasses import dataclass
from typing import Optional

from nmt_suite.backtranslation.leakage import HeldOutIndex
from nmt_suite.tokens import sentence_key

REASONS = ("empty", "too_long", "length_ratio", "copy", "leak", "duplicate")


@dataclass(frozen=True)
class FilterConfig:
    max_len: int = 250  # pieces, either side
    max_ratio: float = 3.0  # longer / shorter side, in pieces
    # Ratios of very short sentences say little ("Yes ." vs "是的 ，我 同意 。"): the ratio rule
    # applies only when the longer side has more pieces than this.
    ratio_min_len: int = 5
    # Share of the synthetic side's word pieces that also occur in the real side at or above
    # which the pair is a copy (the reverse model echoing untranslated input). Names shared
    # by both languages ("TED") stay below it in any sentence that also translates something.
    max_copy_overlap: float = 0.8

    def __post_init__(self):
        if self.max_len < 1 or self.max_ratio < 1 or not 0 < self.max_copy_overlap <= 1:
            raise ValueError(f"invalid filter settings: {self}")


def _has_letter(piece: str) -> bool:
    return any(ch.isalpha() for ch in piece)


def copy_overlap(real: list, synthetic: list) -> float:
    """Fraction of the synthetic side's word pieces (with multiplicity) that the real side also has.

    Pieces without a letter (punctuation, digits) are left out: after cleaning both
    languages share them, and "▁Yes ." is no copy of "是的 .".
    """
    words = [p for p in synthetic if _has_letter(p)]
    if not words:
        return 0.0
    available = Counter(real)
    shared = 0
    for piece in words:
        if available[piece] > 0:
            available[piece] -= 1
            shared += 1
    return shared / len(words)


class PairFilter:
    """Stateful (it remembers pairs for ``duplicate``); counts every verdict in :attr:`counts`."""

    def __init__(self, config: FilterConfig = FilterConfig(), held_out: Optional[HeldOutIndex] = None,
                 real_lang: str = "zh", synthetic_lang: str = "en"):
        self.config = config
        self.held_out = held_out
        self.real_lang, self.synthetic_lang = real_lang, synthetic_lang
        self.seen = set()
        self.counts = Counter({reason: 0 for reason in REASONS})
        self.kept = 0

    def reason(self, real: str, synthetic: str, noisy: Optional[str] = None) -> Optional[str]:
        """Why the pair must go, or None to keep it (a kept pair is remembered).

        ``noisy``: the synthetic side as it will be trained on, when noise changes it; the
        leak rule checks it too (the other rules judge the reverse model's own output).
        """
        verdict = self._reason(real, synthetic, noisy)
        if verdict is None:
            self.kept += 1
        else:
            self.counts[verdict] += 1
        return verdict

    def _reason(self, real: str, synthetic: str, noisy: Optional[str]) -> Optional[str]:
        cfg = self.config
        real_pieces, synthetic_pieces = real.split(), synthetic.split()
        if not real_pieces or not synthetic_pieces or not sentence_key(real) or not sentence_key(synthetic):
            return "empty"
        lengths = sorted((len(real_pieces), len(synthetic_pieces)))
        if lengths[1] > cfg.max_len:
            return "too_long"
        if lengths[1] > cfg.ratio_min_len and lengths[1] / lengths[0] > cfg.max_ratio:
            return "length_ratio"
        if (sentence_key(real) == sentence_key(synthetic)
                or copy_overlap(real_pieces, synthetic_pieces) >= cfg.max_copy_overlap):
            return "copy"
        if self.held_out is not None and (
            self.held_out.contains(self.real_lang, real)
            or any(self.held_out.contains(self.synthetic_lang, s) for s in (synthetic, noisy) if s is not None)
        ):
            return "leak"
        key = (sentence_key(real), sentence_key(synthetic))
        if key in self.seen:
            return "duplicate"
        self.seen.add(key)
        return None

    def summary(self) -> dict:
        total = self.kept + sum(self.counts.values())
        return {"input": total, "kept": self.kept, "dropped": dict(self.counts)}
