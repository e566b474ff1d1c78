"""scripts/translate.sh: one output line per input line, quiet by default, options checked first.

The line splitting, the one-line guarantee and the isolation of failing lines are unit-tested;
the rest runs the real translate.sh on a micro model trained here with fairseq-train on a
small prepared corpus (scripts/prepare_data.py's code, as a ``local`` corpus).
"""
import json
import os
import shutil
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from conftest import MICRO_MODEL_ARGS, REPO, TINY_TRAIN_ARGS, cli
from prep_toy import run_prepare, write_toy_corpus

from nmt_suite.translate import (
    GIVE_UP_AFTER,
    READY_MARKER,
    FairseqFailed,
    InteractiveRunner,
    one_line,
    split_lines,
    translate_sources,
)

TRANSLATE_SH = REPO / "scripts" / "translate.sh"
LINE_BREAKS = "\n\x0b\x0c\r\x1c\x1d\x1e\x85\u2028\u2029"  # where str.splitlines() breaks


def translate_sh(*args, stdin: bytes = b"", timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one torch thread: the machine has 2 cores
    return subprocess.run(["bash", str(TRANSLATE_SH), *map(str, args)], input=stdin, capture_output=True,
                          env=env, timeout=timeout)


def out_lines(proc) -> list:
    text = proc.stdout.decode("utf-8")
    assert text == "" or text.endswith("\n")
    return text.split("\n")[:-1]


def err_lines(proc) -> list:
    return proc.stderr.decode("utf-8").splitlines()


# --- pure logic -------------------------------------------------------------------------

@pytest.mark.parametrize("data, expected", [
    (b"", []),
    (b"\n", [b""]),
    (b"\n\n", [b"", b""]),
    (b"a\nb\nc\n", [b"a", b"b", b"c"]),
    (b"a\nb\nc", [b"a", b"b", b"c"]),  # no final newline
    (b"a\r\nb\r\n", [b"a", b"b"]),  # CRLF
    (b"a\r\r\n", [b"a\r"]),  # only the CRLF's own \r goes
    (b"a\rb\n", [b"a\rb"]),  # a lone \r is no line break
    ("a\u2028b\u2029c\n".encode(), ["a\u2028b\u2029c".encode()]),
    (b"a\x0bb\x0cc\x1cd\x1de\x1ef\n", [b"a\x0bb\x0cc\x1cd\x1de\x1ef"]),
    ("a\x85b\n".encode(), ["a\x85b".encode()]),
])
def test_split_lines_breaks_at_newline_only(data, expected):
    assert split_lines(data) == expected


def test_line_breaks_are_those_of_str_splitlines():
    assert LINE_BREAKS == "".join(c for c in map(chr, range(sys.maxunicode + 1)) if len(f"a{c}b".splitlines()) > 1)


@pytest.mark.parametrize("separator", list(LINE_BREAKS) + ["\t", " \u00a0 "])
def test_one_line_leaves_no_line_break(separator):
    text = one_line(f" 猫{separator}看见{separator}{separator}鱼 ")
    assert text == "猫 看见 鱼" and text.splitlines() == [text]


def fake_run_batch(bad: set, calls: list):
    """Like fairseq-interactive: hypotheses up to the first bad source, then a failure."""
    def run_batch(sources):
        calls.append(list(sources))
        hyps = {}
        for k, src in enumerate(sources):
            if src in bad:
                return hyps, f"RuntimeError: cannot translate {src}"
            hyps[k] = src.upper()
        return hyps, None
    return run_batch


@pytest.mark.parametrize("n, bad, max_runs", [
    (0, set(), 0),
    (5, set(), 1),
    (1, {1}, 1),
    (64, {1}, 2 * 6 + 1),  # bisection: about 2 log2(n) runs, not one per line
    (64, {64}, 2 * 6 + 1),
    (64, {5, 6, 40}, 3 * (2 * 6 + 1)),
    (9, set(range(1, GIVE_UP_AFTER)), 2 * 9),  # one failure too few to give up before a success
])
def test_translate_sources_leaves_out_only_the_failing_lines(n, bad, max_runs):
    sources = [(i, f"s{i}") for i in range(1, n + 1)]
    calls, warnings = [], []
    done = translate_sources(sources, fake_run_batch({f"s{i}" for i in bad}, calls),
                             lambda lineno, reason: warnings.append((lineno, reason)))
    assert done == {i: f"S{i}" for i in range(1, n + 1) if i not in bad}
    assert [lineno for lineno, _ in warnings] == sorted(bad)
    assert all(f"cannot translate s{lineno}" in reason for lineno, reason in warnings)
    assert len(calls) <= max_runs


def test_translate_sources_gives_up_when_every_line_fails():
    sources = [(i, f"s{i}") for i in range(1, 101)]
    calls, warnings = [], []
    with pytest.raises(FairseqFailed, match=f"each of the {GIVE_UP_AFTER} lines"):
        translate_sources(sources, fake_run_batch({s for _, s in sources}, calls),
                          lambda lineno, reason: warnings.append(lineno))
    assert warnings == list(range(1, GIVE_UP_AFTER + 1)) and len(calls) < 4 * GIVE_UP_AFTER


FAKE_INTERACTIVE = """
import sys
if {ready!r}:
    print("INFO | fairseq_cli.interactive | {marker}:", file=sys.stderr)
print("2020-01-01 | INFO | fairseq_cli.interactive | {{'_name': None}}")
for i, line in enumerate(sys.stdin):
    if "BAD" in line:
        sys.exit("Traceback (most recent call last):\\nRuntimeError: cannot translate " + line.strip())
    print(f"S-{{i}}\\t{{line.strip()}}\\nH-{{i}}\\t-0.5\\t{{line.strip().upper()}}", flush=True)
"""


def fake_interactive(tmp_path, ready: bool) -> list:
    script = tmp_path / "fake_interactive.py"
    script.write_text(FAKE_INTERACTIVE.format(ready=ready, marker=READY_MARKER))
    return [sys.executable, script]


@pytest.mark.parametrize("verbose", [False, True])
def test_interactive_runner_isolates_a_failing_line_and_logs(tmp_path, capsys, verbose):
    log_path = tmp_path / "translate.log"
    sources = [(1, "▁a"), (2, "▁b BAD"), (3, "▁c"), (4, "▁d")]
    warnings = []
    with open(log_path, "a", encoding="utf-8") as log:
        runner = InteractiveRunner(fake_interactive(tmp_path, ready=True), log, log_path, verbose)
        done = translate_sources(sources, runner, lambda lineno, reason: warnings.append((lineno, reason)))
    assert done == {1: "▁A", 3: "▁C", 4: "▁D"}
    assert [lineno for lineno, _ in warnings] == [2]
    assert "RuntimeError: cannot translate ▁b BAD" in warnings[0][1] and str(log_path) in warnings[0][1]
    log_text = log_path.read_text(encoding="utf-8")
    assert log_text.count("{'_name': None}") >= 2 and "S-0" not in log_text and "H-0" not in log_text
    assert (capsys.readouterr().err == log_text) == verbose


def test_interactive_runner_failing_before_reading_input_is_fatal(tmp_path):
    log_path = tmp_path / "translate.log"
    with open(log_path, "a", encoding="utf-8") as log:
        runner = InteractiveRunner(fake_interactive(tmp_path, ready=False), log, log_path, False)
        with pytest.raises(FairseqFailed, match=f"exit status 1: RuntimeError: cannot translate BAD.*{log_path}"):
            runner(["BAD"])


# --- scripts/translate.sh ---------------------------------------------------------------

@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A prepared toy corpus and a micro model trained on it, in a run dir with results.json."""
    tmp = tmp_path_factory.mktemp("translate")
    raw = write_toy_corpus(tmp / "raw", n_train=600, n_valid=20, n_test=20, n_mono=1)
    code, _, err = run_prepare(["--corpus", "local", "--train", raw / "train", "--valid", raw / "valid",
                                "--test", raw / "test", "--data-dir", tmp / "data", "--vocab-size", 100,
                                "--workers", 1])
    assert code == 0, err
    data = tmp / "data" / "local"
    cli("fairseq-train", data / "bin", *TINY_TRAIN_ARGS, *MICRO_MODEL_ARGS, "--max-update", 200,
        "--save-dir", tmp / "ckpt", "--no-epoch-checkpoints", "--disable-validation", "--log-interval", 50)
    run_dir = tmp / "runs" / "local" / "micro"
    run_dir.mkdir(parents=True)
    (tmp / "ckpt" / "checkpoint_last.pt").rename(run_dir / "checkpoint_avg.pt")
    (run_dir / "results.json").write_text(json.dumps({"data_dir": str(data)}))
    return SimpleNamespace(tmp=tmp, data=data, run_dir=run_dir, log=run_dir / "translate.log")


@pytest.fixture
def fake_run(tmp_path):
    """A run dir and data dir whose files exist (but are empty): enough for the option checks."""
    data = tmp_path / "data"
    for rel in ("spm/spm.model", "bin/dict.en.txt", "bin/dict.zh.txt"):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).touch()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint_avg.pt").touch()
    (run_dir / "results.json").write_text(json.dumps({"data_dir": str(data)}))
    return run_dir, data


@pytest.mark.parametrize("args, setup, culprit", [
    (["--beam", "0"], None, "--beam must be at least 1, got 0"),
    (["--beam", "-3"], None, "--beam must be at least 1, got -3"),
    (["--beam", "five"], None, "--beam: invalid int value: 'five'"),
    (["--device", "gpu"], None, "--device: invalid choice: 'gpu'"),
    (["--no-such-option"], None, "unrecognized arguments: --no-such-option"),
    ([], lambda run, data: shutil.rmtree(run), "run dir {run} not found"),
    ([], lambda run, data: (run / "checkpoint_avg.pt").unlink(), "{run}/checkpoint_avg.pt not found"),
    (["--checkpoint", "{run}/nope.pt"], None, "{run}/nope.pt not found"),
    ([], lambda run, data: (run / "results.json").unlink(), "{run}/results.json not found"),
    ([], lambda run, data: (run / "results.json").write_text("{"), "{run}/results.json: no data_dir in it"),
    ([], lambda run, data: (run / "results.json").write_text("{}"), "{run}/results.json: no data_dir in it"),
    (["--data", "{data}/nope"], None, "data dir {data}/nope not found"),
    ([], lambda run, data: (data / "spm/spm.model").unlink(), "{data}/spm/spm.model not found"),
    ([], lambda run, data: shutil.rmtree(data / "bin"), "{data}/bin/dict.en.txt not found"),
    ([], lambda run, data: (data / "bin/dict.zh.txt").unlink(), "{data}/bin/dict.zh.txt not found"),
    (["--log", "{run}/no/such/dir/t.log"], None, "cannot append to log {run}/no/such/dir/t.log"),
])
def test_bad_options_fail_fast_with_one_line(fake_run, args, setup, culprit):
    run, data = fake_run
    if setup:
        setup(run, data)
    start = time.monotonic()
    proc = translate_sh(*[a.format(run=run, data=data) for a in [str(run), *args]], stdin=b"Hello.\n")
    elapsed = time.monotonic() - start
    errors = err_lines(proc)
    assert proc.returncode == 2 and proc.stdout == b"" and len(errors) == 1, proc.stderr
    assert errors[0].startswith("translate.sh: error: ") and culprit.format(run=run, data=data) in errors[0]
    assert elapsed < 3, f"{elapsed:.1f} s: checked after a heavy import?"  # importing fairseq alone takes ~4 s
    assert not (run / "translate.log").exists()


@pytest.mark.parametrize("broken, culprit", [
    ("checkpoint_avg.pt", "checkpoint {run}/checkpoint_avg.pt: cannot be used: "),
    ("spm/spm.model", "{data}/spm/spm.model: not a sentencepiece model ("),
], ids=["checkpoint", "spm-model"])
def test_unreadable_checkpoint_or_spm_model_fails_before_fairseq_starts(model, fake_run, broken, culprit):
    run, data = fake_run
    shutil.copy(model.run_dir / "checkpoint_avg.pt", run)
    shutil.copy(model.data / "spm" / "spm.model", data / "spm")
    (run if broken.endswith(".pt") else data).joinpath(broken).write_bytes(b"garbage")
    proc = translate_sh(run, "--device", "cpu", stdin=b"The cat sees a fish.\n")
    errors = err_lines(proc)
    assert proc.returncode == 2 and proc.stdout == b"" and len(errors) == 1, proc.stderr
    assert errors[0].startswith(f"translate.sh: error: {culprit.format(run=run, data=data)}")
    assert (run / "translate.log").read_text() == ""  # fairseq-interactive never started


def test_device_cuda_without_cuda_fails_before_fairseq_starts(fake_run):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    run, _ = fake_run
    proc = translate_sh(run, "--device", "cuda", stdin=b"The cat sees a fish.\n")
    assert proc.returncode == 2 and proc.stdout == b""
    assert err_lines(proc) == ["translate.sh: error: device=cuda but torch sees no CUDA device"]
    assert (run / "translate.log").read_text() == ""


def test_separators_inside_lines_keep_three_lines_and_verbose_shows_fairseq_log(model):
    lines = ["The cat sees a fish.\u2028Today.", "The dog\x0ceats\x85 some bread.", "My teacher\rlikes the map."]
    proc = translate_sh(model.run_dir, "--device", "cpu", "--beam", 2, "--verbose",
                        stdin="".join(f"{line}\r\n" for line in lines).encode("utf-8"))
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    translations = out_lines(proc)
    assert len(translations) == 3 and all(translations)
    stderr = proc.stderr.decode("utf-8")
    assert stderr.startswith("translate.sh: python=") and "fairseq_cli.interactive" in stderr


def test_a_too_long_line_gives_an_empty_line_and_a_warning_and_stderr_is_quiet(model):
    log_before = model.log.read_text(encoding="utf-8") if model.log.exists() else ""
    long_line = " ".join(["the cat sees a fish"] * 300)  # 1,500 words
    proc = translate_sh(model.run_dir, "--device", "cpu", "--beam", 2,
                        stdin=f"The cat sees a fish.\n{long_line}\n\nThe dog eats some bread.\n".encode("utf-8"))
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    translations = out_lines(proc)
    assert len(translations) == 4 and translations[0] and translations[1] == translations[2] == "" and translations[3]
    warnings = err_lines(proc)
    assert len(warnings) == 1 and warnings[0].startswith("translate.sh: warning: line 2 left empty: too long:")
    assert "at most 1024 (max_source_positions)" in warnings[0]
    # fairseq's config dump and warnings went to the log, appended
    log = model.log.read_text(encoding="utf-8")
    assert log.startswith(log_before) and "fairseq_cli.interactive" in log[len(log_before):]
    assert "line 2 left empty" in log[len(log_before):]


def test_fairseq_failing_on_every_input_exits_1_naming_the_log(model, tmp_path):
    """A dictionary that does not fit the checkpoint: fairseq fails loading it, before any line."""
    data = tmp_path / "data"
    shutil.copytree(model.data / "spm", data / "spm")
    shutil.copytree(model.data / "bin", data / "bin")
    for lang in ("en", "zh"):
        with open(data / "bin" / f"dict.{lang}.txt", "a", encoding="utf-8") as f:
            f.write("".join(f"extra{i} 1\n" for i in range(8)))
    proc = translate_sh(model.run_dir, "--data", data, "--device", "cpu", "--log", tmp_path / "t.log",
                        stdin=b"The cat sees a fish.\n")
    assert proc.returncode == 1 and proc.stdout == b""
    errors = err_lines(proc)
    assert len(errors) == 1 and errors[0].startswith("translate.sh: error: fairseq-interactive exit status 1: ")
    assert str(tmp_path / "t.log") in errors[0] and "size mismatch" in (tmp_path / "t.log").read_text()
