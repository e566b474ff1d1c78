"""Source-side noise for "beam + noise" back-translation (Edunov et al., 2018, sec. 3.1):
delete words with probability 0.1, replace words by a filler token with probability 0.1,
and permute words so that none moves more than 3 positions (Lample et al., 2018: sort by
``i + U(0, k + 1)``).

Noise acts on whole words. In sentencepiece output a word is a piece starting with the
word-boundary mark ``▁`` plus the pieces that follow it. fairseq's
``fairseq.data.noising`` cannot find these words (it knows only BPE *end/continuation*
markers, not a *start* marker), and draws from the global numpy RNG; here each sentence
has its own generator seeded by ``(seed, sentence id)``, so the noisy corpus is the same
however generation was sharded or resumed.
"""
from dataclasses import dataclass

import numpy as np

WORD_START = "\u2581"  # sentencepiece's "▁"
FILLER = "<unk>"  # a symbol of every fairseq dictionary, so it binarizes to its own id


@dataclass(frozen=True)
class NoiseConfig:
    drop: float = 0.1
    blank: float = 0.1
    max_swap: int = 3
    filler: str = FILLER

    def __post_init__(self):
        if not (0 <= self.drop < 1 and 0 <= self.blank <= 1 and self.max_swap >= 0):
            raise ValueError(f"invalid noise settings: {self}")


def spm_words(pieces):
    """Group sentencepiece pieces into words (a new word starts at each ``▁``-piece)."""
    words = []
    for piece in pieces:
        if not words or piece.startswith(WORD_START):
            words.append([piece])
        else:
            words[-1].append(piece)
    return words


def add_noise(pieces, rng: np.random.Generator, config: NoiseConfig = NoiseConfig()):
    """Noisy copy of a sentence (list of pieces): shuffle, then drop, then blank words."""
    words = spm_words(pieces)
    if not words:
        return []
    if config.max_swap > 0:
        keys = np.arange(len(words)) + rng.uniform(0, config.max_swap + 1, len(words))
        words = [words[i] for i in np.argsort(keys, kind="stable")]
    keep = rng.random(len(words)) >= config.drop
    if not keep.any():  # a sentence never vanishes: keep one word
        keep[rng.integers(len(words))] = True
    words = [w for w, k in zip(words, keep) if k]
    blank = rng.random(len(words)) < config.blank
    noisy = []
    for word, is_blank in zip(words, blank):
        noisy.extend([config.filler] if is_blank else word)
    return noisy


def noise_sentence(pieces, seed: int, sentence_id: int, config: NoiseConfig = NoiseConfig()):
    """:func:`add_noise` with the sentence's own generator (reproducible per sentence)."""
    return add_noise(pieces, np.random.default_rng([seed, sentence_id]), config)
