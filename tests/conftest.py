"""Shared fixtures: a toy corpus the tests generate, binarized and trained with the real CLIs."""
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from nmt_suite.prep.sources import SHARED_DATA

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # fairseq-* console scripts live beside this python
USER_DIR = REPO / "fairseq_ext"

requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"shared corpora not present at {SHARED_DATA}"
)


def cli(name: str, *args, cwd=None, env=None, check=True, timeout=600) -> subprocess.CompletedProcess:
    """Run a console script from the venv (fairseq-train, ...) or `python <script>`; return the result."""
    exe = str(BIN / name) if (BIN / name).exists() else name
    # One torch thread per CLI: on 2 cores a second thread competing with pytest or another
    # job makes small models several times slower, not faster.
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    full_env["PATH"] = f"{BIN}{os.pathsep}{full_env.get('PATH', '')}"
    proc = subprocess.run(
        [exe, *map(str, args)], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{name} {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
        )
    return proc


def write_toy_parallel(directory: Path, seed: int = 0, sizes=(("train", 3000), ("valid", 100), ("test", 100))):
    """A toy 'translation' task: a word-for-word lexicon with reversed word order."""
    rng = random.Random(seed)
    words = "the cat dog sat on mat a big small red blue house tree bird sees eats".split()
    lexicon = {w: f"z{i}" for i, w in enumerate(words)}
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in sizes:
        with open(directory / f"{split}.en", "w") as fen, open(directory / f"{split}.zh", "w") as fzh:
            for _ in range(n):
                sent = rng.choices(words, k=rng.randint(3, 9))
                fen.write(" ".join(sent) + "\n")
                fzh.write(" ".join(lexicon[w] for w in reversed(sent)) + "\n")
    return directory


@pytest.fixture(scope="session")
def toy_bin(tmp_path_factory) -> Path:
    """Toy corpus binarized with fairseq-preprocess --joined-dictionary (en->zh)."""
    root = tmp_path_factory.mktemp("toy")
    raw = write_toy_parallel(root / "raw")
    dest = root / "bin"
    cli(
        "fairseq-preprocess", "--source-lang", "en", "--target-lang", "zh",
        "--trainpref", raw / "train", "--validpref", raw / "valid", "--testpref", raw / "test",
        "--destdir", dest, "--joined-dictionary", "--workers", "1",
    )
    return dest


TINY_TRAIN_ARGS = (
    "--user-dir", USER_DIR, "--task", "translation_ext", "--arch", "transformer_prenorm_tiny",
    "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--lr", "2e-3",
    "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "10",
    "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
    "--max-tokens", "4000", "--cpu", "--seed", "1", "--no-progress-bar", "--log-format", "simple",
    "--log-interval", "1", "--num-workers", "0",
)


# A model far smaller than transformer_prenorm_tiny (dim 32, one layer each side) for tests
# about bookkeeping rather than quality; appended after an --arch, it overrides its sizes.
MICRO_MODEL_DIM = 32
MICRO_MODEL_ARGS = (
    "--encoder-embed-dim", str(MICRO_MODEL_DIM), "--decoder-embed-dim", str(MICRO_MODEL_DIM),
    "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64",
    "--encoder-layers", "1", "--decoder-layers", "1",
    "--encoder-attention-heads", "2", "--decoder-attention-heads", "2", "--max-tokens", "400",
)


@pytest.fixture(scope="session")
def tiny_checkpoint(toy_bin, tmp_path_factory) -> Path:
    """transformer_prenorm_tiny trained for a few updates on the toy corpus."""
    save_dir = tmp_path_factory.mktemp("tiny_ckpt")
    cli("fairseq-train", toy_bin, *TINY_TRAIN_ARGS, "--max-update", "30", "--save-dir", save_dir)
    return save_dir / "checkpoint_last.pt"


def child_pids(pid: int) -> list:
    """The pids of ``pid``'s children (Linux /proc)."""
    try:
        return [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent does not)."""
    try:
        return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    except FileNotFoundError:
        return False
