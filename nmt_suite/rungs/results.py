"""``results.json`` of a run: what it contains, how it is checked, and the figures read from fairseq's log.

Every run of every rung writes the same record, :class:`RunResults`, so runs compare
(scripts/summarize_runs.py); a pipeline that reports more declares a subclass with its fields.
Times: ``train_time_s`` is fairseq's cumulative training time over all sessions of a
resumed run; ``wall_time_s`` holds each stage's seconds as it last ran (for a resumed
training, its last session), their ``total``, and ``this_invocation``.
"""
import dataclasses
import re
import subprocess
import types
import typing
from pathlib import Path

SCHEMA_VERSION = 1
SPLITS = ("valid", "test")


def optional(**kwargs):
    """A field of RunResults (or a subclass) that is absent from results.json when None."""
    return dataclasses.field(default=None, metadata={"optional": True}, kw_only=True, **kwargs)


@dataclasses.dataclass
class RunResults:
    """One run's ``results.json``: its keys, in this order, with these types."""

    schema_version: int
    corpus: str
    rung: str
    scores: dict                  # split -> a SCORE_SCHEMA mapping, or None when the split has no reference
    params: int
    updates: int
    epochs: int
    train_time_s: float
    wall_time_s: dict             # stage -> seconds, "total", "this_invocation"
    tokens_per_s: float | None
    corpus_hash: str
    data_dir: str
    git_commit: str | None        # None outside a git checkout
    git_dirty: bool | None
    checkpoint: str
    averaged_checkpoints: list
    device: str
    precision: str
    config: dict
    commands: dict
    versions: dict
    prediction_file: str
    prediction_lines: int
    missing_hypotheses: dict      # split -> sentences fairseq-generate gave no hypothesis
    plots: dict                   # plot -> "ok", "skipped: ..." or "failed: ..."
    created: str
    # what the training cost, whatever its budget: target tokens seen (from fairseq's log), the
    # model's FLOPs per target token (forward + backward, torch's counter) and their product
    train_tokens: int | None = optional()
    flops_per_token: float | None = optional()
    train_flops: float | None = optional()
    budget: dict | None = optional()  # train.budget_*: the budget, the updates it bought, the options set

    def to_json(self) -> dict:
        """The content of results.json; an optional field that is None is left out."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                if not (field.metadata.get("optional") and getattr(self, field.name) is None)}

    @classmethod
    def from_json(cls, data: dict, where="results.json") -> "RunResults":
        """The record of a results.json's content, checked (the keys other pipelines add are left out)."""
        validate_results(data, where, cls)
        return cls(**{field.name: data.get(field.name) for field in dataclasses.fields(cls)})


SCORE_SCHEMA = {"bleu": (int, float), "bleu_signature": str, "chrf": (int, float), "chrf_signature": str,
                "n_sentences": int}


class ResultsSchemaError(ValueError):
    pass


def _accepted(annotation) -> tuple:
    """The types isinstance accepts for a field's annotation (a float field takes an int too)."""
    parts = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    return tuple(t for part in parts for t in ((int, float) if part is float else (part,)))


def results_schema(record=RunResults) -> dict:
    """key -> accepted types, of every key ``record`` requires."""
    hints = typing.get_type_hints(record)
    return {field.name: _accepted(hints[field.name]) for field in dataclasses.fields(record)
            if not field.metadata.get("optional")}


def validate_results(results: dict, where="results.json", record=RunResults) -> dict:
    """Raise ResultsSchemaError naming the first missing or mistyped key; return ``results``."""
    for key, accepted in results_schema(record).items():
        if key not in results:
            raise ResultsSchemaError(f"{where}: missing key {key!r}")
        value = results[key]
        if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
            names = " or ".join(t.__name__ for t in accepted)
            raise ResultsSchemaError(f"{where}: {key!r} is {type(value).__name__}, expected {names}")
    if results["schema_version"] != SCHEMA_VERSION:
        raise ResultsSchemaError(f"{where}: schema_version {results['schema_version']}, expected {SCHEMA_VERSION}")
    for split in SPLITS:
        if split not in results["scores"]:
            raise ResultsSchemaError(f"{where}: scores has no {split!r} entry")
    for split, entry in results["scores"].items():  # valid, test and any extra test set
        if entry is None:
            continue
        for key, types_ in SCORE_SCHEMA.items():
            if not isinstance(entry.get(key), types_):
                raise ResultsSchemaError(f"{where}: scores.{split}.{key} missing or not {types_}")
        if "tok:zh" not in entry["bleu_signature"]:
            raise ResultsSchemaError(f"{where}: scores.{split}.bleu_signature is not tokenize=zh")
    if "total" not in results["wall_time_s"]:
        raise ResultsSchemaError(f"{where}: wall_time_s has no 'total'")
    return results


# ------------------------------------------------------------------ fairseq log

_PARAMS = re.compile(r"num\. shared model params: ([\d,]+)")
_LOADED = re.compile(r"Loaded checkpoint .* \(epoch \d+ @ (\d+) updates\)")
_EPOCH_LINE = re.compile(r"\| train \| epoch \d+ \| (.*)$")
_SESSION = "fairseq_ext pipeline:"


def _fields(text: str) -> dict:
    out = {}
    for part in text.split(" | "):
        name, _, value = part.strip().partition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def train_log_stats(log_path: Path) -> dict:
    """Figures from fairseq-train's log (all sessions appended by the pipeline).

    tokens_per_s: fairseq's own end-of-epoch ``wps`` (target tokens per second)
    combined over epochs and sessions: sum of tokens / sum of time, with an epoch's
    tokens = ``wpb`` x its updates and its time = tokens / ``wps``.
    """
    params, tokens, seconds = None, 0.0, 0.0
    prev_updates = 0
    if not Path(log_path).exists():
        return {"params": None, "tokens_per_s": None, "tokens": None}
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if _SESSION in line:
                prev_updates = 0
            elif m := _LOADED.search(line):
                prev_updates = int(m.group(1))
            elif m := _PARAMS.search(line):
                params = int(m.group(1).replace(",", ""))
            elif m := _EPOCH_LINE.search(line):
                fields = _fields(m.group(1))
                if not {"wps", "wpb", "num_updates"} <= fields.keys():
                    continue
                updates = fields["num_updates"] - prev_updates
                prev_updates = fields["num_updates"]
                if updates > 0 and fields["wps"] > 0:
                    epoch_tokens = fields["wpb"] * updates
                    tokens += epoch_tokens
                    seconds += epoch_tokens / fields["wps"]
    return {"params": params, "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
            "tokens": round(tokens) if tokens else None}


def checkpoint_counters(state: dict) -> dict:
    """updates, completed epochs and cumulative training time recorded in a fairseq checkpoint."""
    extra = state.get("extra_state") or {}
    history = state.get("optimizer_history") or [{}]
    # fairseq stores the epoch to continue with: E + 1 after a finished epoch E, E mid-epoch
    next_epoch = int((extra.get("train_iterator") or {}).get("epoch", 1))
    return {
        "updates": int(history[-1].get("num_updates", 0)),
        "epochs": max(next_epoch - 1, 0),
        "train_time_s": round(float(extra.get("previous_training_time", 0.0)), 1),
    }


def count_params(model_state: dict) -> int:
    """Distinct parameter elements in a state dict (tied weights counted once)."""
    seen, total = set(), 0
    for tensor in model_state.values():
        ptr = tensor.untyped_storage().data_ptr()
        if ptr in seen:
            continue
        seen.add(ptr)
        total += tensor.numel()
    return total


def git_state(repo: Path):
    """(commit, dirty) of the checkout, (None, None) outside git."""
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip() != ""
        return commit, dirty
    except (OSError, subprocess.CalledProcessError):
        return None, None
