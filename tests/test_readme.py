"""The README's ```bash blocks run as printed, in order, in a copy of the checkout.

A block the test cannot run here in bounded time is exempted by the line right before its
fence: ``<!-- readme-test: skip (reason) -->``. Every other ```bash block runs in a fresh
``bash -eo pipefail`` with one torch thread and no virtualenv on PATH, as a reader's shell
would; afterwards the copy's ``git status`` may show nothing outside data/ and runs/.
"""
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, SHARED_DATA

README = REPO / "README.md"
SKIP_MARKER = re.compile(r"<!--\s*readme-test:\s*skip\s*(?:\((?P<reason>[^)]*)\))?\s*-->")
FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<info>\S*)")
BLOCK_TIMEOUT_S = 300
# the paths a README command may write into (both git-ignored)
OUTPUT_DIRS = ("data/", "runs/")


class ReadmeError(ValueError):
    pass


@dataclass
class Block:
    line: int        # README line of the opening fence
    lang: str
    code: str
    skip: str        # the exemption reason; "" = the block runs


def _closes(line: str, opening: str) -> bool:
    """A closing fence: only the opening's fence character, at least as many, nothing else."""
    stripped = line.strip()
    return len(stripped) >= len(opening) and set(stripped) == {opening[0]}


def parse_blocks(text: str, name: str = "README.md") -> list:
    """Every fenced block of a Markdown text, with the skip reason of the marker right before it."""
    blocks, lines, i, pending = [], text.splitlines(), 0, None
    while i < len(lines):
        line = lines[i]
        marker = SKIP_MARKER.fullmatch(line.strip())  # a marker is a line of its own, not a mention in prose
        fence = FENCE.match(line)
        if marker:
            reason = (marker.group("reason") or "").strip()
            if not reason:
                raise ReadmeError(f"{name}:{i + 1}: readme-test skip marker without a reason in parentheses")
            pending = (i + 1, reason)
        elif fence:
            start, closing = i, fence.group("fence")
            i += 1
            while i < len(lines) and not _closes(lines[i], closing):
                i += 1
            if i == len(lines):
                raise ReadmeError(f"{name}:{start + 1}: code block never closed")
            lang = fence.group("info").lower()
            if pending and lang != "bash":
                raise ReadmeError(f"{name}:{pending[0]}: readme-test skip marker before a {lang or 'plain'} "
                                  f"block; it only exempts ```bash blocks")
            blocks.append(Block(start + 1, lang, "\n".join(lines[start + 1:i]) + "\n", pending[1] if pending else ""))
            pending = None
        elif pending and line.strip():
            raise ReadmeError(f"{name}:{pending[0]}: readme-test skip marker not right before a code block")
        i += 1
    if pending:
        raise ReadmeError(f"{name}:{pending[0]}: readme-test skip marker not right before a code block")
    return blocks


@pytest.mark.parametrize("text, expected", [
    ("```bash\necho hi\n```\n", [(1, "bash", "echo hi\n", "")]),
    ("<!-- readme-test: skip (needs a GPU) -->\n```bash\nnvidia-smi\n```\n",
     [(2, "bash", "nvidia-smi\n", "needs a GPU")]),
    ("<!-- readme-test: skip (slow) -->\n\n```bash\na\n```\n```bash\nb\n```\n",
     [(3, "bash", "a\n", "slow"), (6, "bash", "b\n", "")]),
    ("text\n```python\nx = 1\n```\n````markdown\n```bash\nnot a block\n```\n````\n",
     [(2, "python", "x = 1\n", ""), (5, "markdown", "```bash\nnot a block\n```\n", "")]),
    ("```\nplain\n```\n```BASH\nls\n\n```\n", [(1, "", "plain\n", ""), (4, "bash", "ls\n\n", "")]),
    ("```bash\necho ```python\n````\n", [(1, "bash", "echo ```python\n", "")]),
    ("marked `<!-- readme-test: skip (reason) -->` in prose\n```bash\nls\n```\n", [(2, "bash", "ls\n", "")]),
])
def test_parse_blocks(text, expected):
    assert [(b.line, b.lang, b.code, b.skip) for b in parse_blocks(text)] == expected


@pytest.mark.parametrize("text, message", [
    ("<!-- readme-test: skip -->\n```bash\nls\n```\n", "README.md:1: readme-test skip marker without a reason"),
    ("<!-- readme-test: skip () -->\n```bash\nls\n```\n", "README.md:1: readme-test skip marker without a reason"),
    ("<!-- readme-test: skip (slow) -->\nprose\n```bash\nls\n```\n", "README.md:1: readme-test skip marker not right"),
    ("```bash\nls\n```\n<!-- readme-test: skip (slow) -->\n", "README.md:4: readme-test skip marker not right"),
    ("<!-- readme-test: skip (slow) -->\n```python\nx\n```\n", "README.md:1: readme-test skip marker before a python"),
    ("intro\n```bash\nls\n", "README.md:2: code block never closed"),
])
def test_parse_blocks_rejects(text, message):
    with pytest.raises(ReadmeError, match=re.escape(message)):
        parse_blocks(text)


def test_every_bash_block_runs_or_is_exempt_with_a_reason():
    """The README parses (each marker has a reason and sits on a bash block) and no shell block hides under another tag."""
    blocks = parse_blocks(README.read_text(encoding="utf-8"))
    mislabelled = [b.line for b in blocks if b.lang in ("sh", "shell", "console", "zsh", "shell-session")]
    assert not mislabelled, f"README.md lines {mislabelled}: tag shell commands ```bash so that this test runs them"
    assert any(b.lang == "bash" and not b.skip for b in blocks), "README.md has no ```bash block that runs"


def _checkout_copy(root: Path) -> Path:
    """The checkout's files as a commit would hold them (tracked or not ignored), committed in a fresh repository."""
    copy = root / "repo"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True, text=True).stdout.split("\0")
    files = sorted({f for f in files if f and (REPO / f).is_file()})  # a file deleted in the work tree is left out
    for rel in files:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, copy / rel, follow_symlinks=False)
    git = ["git", "-c", "user.name=readme-test", "-c", "user.email=readme-test@localhost", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=copy, check=True)
    subprocess.run([*git, "add", "-f", "--", *files], cwd=copy, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "checkout copy"], cwd=copy, check=True)
    (copy / ".venv").symlink_to(REPO / ".venv")
    (copy / ".git" / "info").mkdir(exist_ok=True)
    (copy / ".git" / "info" / "exclude").write_text("/.venv\n")  # the test's own link is no README output
    if SHARED_DATA.parent.is_dir():
        (root / "shared").symlink_to(SHARED_DATA.parent)
    return copy


def _reader_env() -> dict:
    """A reader's shell: no virtualenv active, one torch thread (the test shares the machine's cores)."""
    venv_bin = os.path.realpath(REPO / ".venv" / "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and os.path.realpath(p) != venv_bin)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _text(output) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def test_readme_bash_blocks_run_as_printed(tmp_path):
    """Each block not exempted exits 0, in README order; none writes outside data/ and runs/."""
    blocks = [b for b in parse_blocks(README.read_text(encoding="utf-8")) if b.lang == "bash" and not b.skip]
    copy = _checkout_copy(tmp_path)
    env = _reader_env()
    for block in blocks:
        try:
            proc = subprocess.run(["bash", "-eo", "pipefail", "-c", block.code], cwd=copy, env=env,
                                  capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired as err:
            raise AssertionError(f"README.md:{block.line}: block ran over {BLOCK_TIMEOUT_S} s\n{block.code}"
                                 f"--- stdout ---\n{_text(err.stdout)[-3000:]}\n"
                                 f"--- stderr ---\n{_text(err.stderr)[-3000:]}") from None
        assert proc.returncode == 0, (
            f"README.md:{block.line}: block exited {proc.returncode}\n{block.code}"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}")
    # ignored files too: fairseq's default ./checkpoints/ and *.pt are git-ignored, and still a mess
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored=matching"],
                            cwd=copy, check=True, capture_output=True, text=True).stdout.splitlines()
    stray = [line for line in status if not line[3:].startswith(OUTPUT_DIRS)
             and "__pycache__/" not in line and line[3:] != ".venv"]
    assert not stray, "README commands wrote outside data/ and runs/:\n" + "\n".join(stray)
    shutil.rmtree(copy)  # ~100 MB of corpora and checkpoints; a failed run keeps its copy for a look
