"""Decoding choices for back-translation (Edunov et al., 2018, "Understanding
Back-Translation at Scale"): beam search, unrestricted sampling, top-k sampling, and beam
search whose output gets source-side noise (:mod:`.noise`).

Beam + noise decodes exactly like beam; the noise is applied when the training set is
built, so both choices share one (expensive) generation and its cache.
"""
from argparse import Namespace
from dataclasses import asdict, dataclass

CHOICES = ("beam", "sampling", "topk", "beam+noise")


@dataclass(frozen=True)
class Decoding:
    method: str = "beam"
    beam: int = 5
    topk: int = 10
    temperature: float = 1.0
    # fairseq's default cap (0 * srclen + 200) lets sampling ramble; synthetic sources this
    # long would be dropped by the length filters anyway.
    max_len_a: float = 1.5
    max_len_b: int = 10

    def __post_init__(self):
        if self.method not in CHOICES:
            raise ValueError(f"unknown decoding {self.method!r}; choose from {', '.join(CHOICES)}")
        if self.beam < 1 or self.topk < 1 or self.temperature <= 0:
            raise ValueError(f"invalid decoding settings: {self}")

    @property
    def noisy(self) -> bool:
        return self.method == "beam+noise"

    @property
    def generation_method(self) -> str:
        """What the reverse model actually does ("beam+noise" generates like "beam")."""
        return "beam" if self.noisy else self.method

    def generation_settings(self) -> dict:
        """The settings that decide the generated text (recorded, and checked on resume)."""
        settings = asdict(self)
        settings["method"] = self.generation_method
        if settings["method"] == "beam":
            del settings["topk"], settings["temperature"]
        else:
            del settings["beam"]
            if settings["method"] == "sampling":
                del settings["topk"]
        return settings

    def fairseq_args(self) -> Namespace:
        """Arguments for :meth:`fairseq.tasks.FairseqTask.build_generator`."""
        method = self.generation_method
        return Namespace(
            beam=self.beam if method == "beam" else 1,
            sampling=method != "beam",
            sampling_topk=self.topk if method == "topk" else -1,
            temperature=self.temperature if method != "beam" else 1.0,
            max_len_a=self.max_len_a,
            max_len_b=self.max_len_b,
        )
