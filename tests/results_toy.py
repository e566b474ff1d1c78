"""Finished runs without training: run dirs with a valid results.json and hypothesis files.

References are toy Chinese sentences (tests/prep_toy.py's lexicon); a system's hypotheses are the
references with a share of their characters replaced, so how far apart two systems are is set
by that share.
"""
import random
from pathlib import Path

from prep_toy import sentence

from nmt_suite.files import atomic_write_json, atomic_write_lines
from nmt_suite.rungs.evaluate import score, split_files
from nmt_suite.rungs.results import SCHEMA_VERSION, SPLITS, RunResults, validate_results

NOISE_CHARACTERS = "的一是了人我在有他这中大来上国个到说们为子和你地出道也时年"


def write_references(data_dir: Path, n: int = 40, seed: int = 0) -> list:
    """``data_dir/ref/<split>.zh`` for every split: ``n`` sentences; returns the test references."""
    rng = random.Random(seed)
    refs = {split: [sentence(rng)[1] for _ in range(n)] for split in SPLITS}
    for split, lines in refs.items():
        atomic_write_lines(data_dir / "ref" / f"{split}.zh", lines)
    return refs["test"]


def noisy(lines: list, share: float, seed: int) -> list:
    """``lines`` with about ``share`` of their characters replaced by common characters."""
    rng = random.Random(seed)
    return ["".join(rng.choice(NOISE_CHARACTERS) if rng.random() < share else c for c in line) for line in lines]


def results_json(corpus="toy", rung="strong", data_dir="data/toy", seed=1, train=None, scores=None) -> dict:
    """A valid results.json; ``train``: config options besides the seed; ``scores``: split -> (BLEU, chrF)."""
    config = {"rung": rung, "corpus": corpus, "device": "cpu", "prepare": {}, "generate": {"beam": 5},
              "train": {"arch": "transformer_prenorm_tiny", "lr": 0.003, **(train or {}), "seed": seed}}
    entries = {split: None for split in SPLITS}
    for split, (bleu, chrf) in (scores or {}).items():
        entries[split] = {"bleu": bleu, "bleu_signature": "nrefs:1|case:mixed|eff:no|tok:zh|smooth:exp|version:2",
                          "chrf": chrf, "chrf_signature": "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2",
                          "n_sentences": 40}
    results = RunResults(
        schema_version=SCHEMA_VERSION, corpus=corpus, rung=rung, scores=entries, params=3_000_000, updates=200,
        epochs=1, train_time_s=60.0, wall_time_s={"total": 90.0, "this_invocation": 90.0}, tokens_per_s=1000.0,
        corpus_hash="0" * 64, data_dir=str(data_dir), git_commit=None, git_dirty=None,
        checkpoint="checkpoint_avg.pt", averaged_checkpoints=["checkpoint_last.pt"], device="cpu",
        precision="fp32", config=config, commands={}, versions={}, prediction_file="prediction.txt",
        prediction_lines=40, missing_hypotheses={split: 0 for split in SPLITS}, plots={},
        created="2025-01-01T00:00:00")
    return validate_results(results.to_json())


def write_run(run_dir: Path, data_dir: Path, hyps: dict, seed=1, train=None) -> Path:
    """A finished run: ``hyp.<split>.zh`` for each split of ``hyps`` and a results.json scoring them."""
    scores = {}
    for split, lines in hyps.items():
        atomic_write_lines(run_dir / f"hyp.{split}.zh", lines)
        refs = split_files(data_dir, split, "zh").read_text(encoding="utf-8").splitlines()
        measured = score(lines, refs)
        scores[split] = (measured["bleu"], measured["chrf"])
    atomic_write_json(run_dir / "results.json",  # run_dir is runs/<corpus>/<rung>
                      results_json(run_dir.parent.name, run_dir.name, data_dir, seed, train, scores))
    return run_dir
