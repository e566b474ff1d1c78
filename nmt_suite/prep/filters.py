"""Filters on cleaned text, each drop counted by reason: empty sides, length outliers, bad
length ratios, duplicates, held-out leakage (the same sentence as
:func:`nmt_suite.tokens.sentence_key` defines it); and the seeded train/valid split.

Lengths are English words and Chinese characters (spaces not counted), as in HW5.
Every function returns the indices it keeps, in input order, and a :class:`Tally`.
"""
import random
from dataclasses import dataclass, field

from nmt_suite.tokens import sentence_key

# the order filters apply in; a dropped line is counted under the first reason it meets
REASONS = ("empty", "too_short", "too_long", "ratio", "duplicate", "split_to_valid", "leak_valid", "leak_test")


@dataclass(frozen=True)
class LengthLimits:
    min_len: int = 1
    max_len: int = 250
    max_ratio: float = 9.0


@dataclass
class Tally:
    """Lines in, lines kept, and how many were dropped for which reason (first reason wins)."""
    input: int = 0
    dropped: dict = field(default_factory=dict)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n

    @property
    def kept(self) -> int:
        return self.input - sum(self.dropped.values())

    def as_dict(self) -> dict:
        return {"input": self.input, "kept": self.kept, "dropped": dict(self.dropped)}


def en_length(line: str) -> int:
    return len(line.split())


def zh_length(line: str) -> int:
    return len(line) - line.count(" ")


def length_problem(length: int, limits: LengthLimits):
    if length == 0:
        return "empty"
    if length < limits.min_len:
        return "too_short"
    if length > limits.max_len:
        return "too_long"
    return None


def _keep_first_sound(items, problem_of, tally: Tally) -> list:
    """Indices of the items without a problem that are not exact duplicates of an earlier kept item;
    each dropped item is tallied under its problem (``duplicate`` for repeats)."""
    kept, seen = [], set()
    for i, item in enumerate(items):
        problem = problem_of(item)
        if problem is None:
            if item in seen:
                problem = "duplicate"
            else:
                seen.add(item)
        if problem:
            tally.drop(problem)
        else:
            kept.append(i)
    return kept


def _pair_problem(pair, limits: LengthLimits):
    le, lz = en_length(pair[0]), zh_length(pair[1])
    problem = length_problem(le, limits) or length_problem(lz, limits)
    if problem is None and max(le, lz) > limits.max_ratio * min(le, lz):
        problem = "ratio"
    return problem


def filter_pairs(en: list, zh: list, limits: LengthLimits, tally: Tally) -> list:
    """Drop pairs with an empty side, a side out of [min_len, max_len], a length ratio above
    max_ratio, or an exact (en, zh) duplicate of an earlier pair."""
    tally.input += len(en)
    return _keep_first_sound(zip(en, zh), lambda pair: _pair_problem(pair, limits), tally)


def filter_mono(zh: list, limits: LengthLimits, tally: Tally) -> list:
    """Drop lines out of [min_len, max_len] and exact duplicates of an earlier line."""
    tally.input += len(zh)
    return _keep_first_sound(zh, lambda line: length_problem(zh_length(line), limits), tally)


def split_valid(indices: list, ratio: float, seed: int) -> tuple:
    """(train, valid) index lists, both in input order; valid is a seeded sample of ``ratio``."""
    n_valid = max(1, round(len(indices) * ratio))
    if n_valid >= len(indices):
        return [], list(indices)
    chosen = set(random.Random(seed).sample(range(len(indices)), n_valid))
    train = [idx for pos, idx in enumerate(indices) if pos not in chosen]
    valid = [idx for pos, idx in enumerate(indices) if pos in chosen]
    return train, valid


def held_out_keys(lines: list) -> set:
    """The :func:`~nmt_suite.tokens.sentence_key` of each line; a line with none (punctuation
    only) never counts as a leak."""
    return {key for key in map(sentence_key, lines) if key}


def drop_leaks(indices: list, sides: list, held_out: dict, tally: Tally) -> list:
    """Keep the indices none of whose sides occurs in a held-out set.

    ``sides`` lists the line lists to check (e.g. [en, zh]); ``held_out`` maps a set name
    ("valid", "test") to one key set per side, in the same order. A drop is counted as
    ``leak_<name>`` for the first set it occurs in.
    """
    side_keys = [[sentence_key(side[i]) for i in indices] for side in sides]
    reasons = {}
    for name, key_sets in held_out.items():
        for keys, key_set in zip(side_keys, key_sets):
            for pos, key in enumerate(keys):
                if key in key_set and pos not in reasons:
                    reasons[pos] = f"leak_{name}"
    for reason in reasons.values():
        tally.drop(reason)
    return [idx for pos, idx in enumerate(indices) if pos not in reasons]
