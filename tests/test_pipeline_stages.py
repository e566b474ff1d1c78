"""Child processes of a pipeline: they die with it, and its run lock outlives none of them."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import alive

from nmt_suite.rungs.run import UPDATES_IN_LOG
from nmt_suite.rungs.stages import StageFailed, run_lock, run_logged

# A pipeline stand-in: takes the run lock, starts one child through run_logged and waits for it.
# The child writes its pid, then sleeps; with KEEP it first clears its parent-death signal, as a
# grandchild or a process that re-parents itself would have none.
PIPELINE = """
import sys
from nmt_suite.rungs.stages import run_lock, run_logged
run_dir, pid_file, keep = sys.argv[1], sys.argv[2], sys.argv[3] == "keep"
child = ("import ctypes, os, sys, time\\n"
         + ("ctypes.CDLL(None).prctl(1, 0)\\n" if keep else "")
         + "open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid())); os.replace(sys.argv[1] + '.tmp', sys.argv[1])\\n"
         + "time.sleep(float(sys.argv[2]))\\n")
with run_lock(run_dir):
    run_logged([sys.executable, "-c", child, pid_file, "6"], echo=False)
"""



def _kill_pipeline_once_its_child_runs(tmp_path: Path, keep: str) -> int:
    pid_file = tmp_path / "child.pid"
    proc = subprocess.Popen([sys.executable, "-c", PIPELINE, str(tmp_path / "run"), str(pid_file), keep])
    deadline = time.time() + 60
    while not pid_file.exists():
        assert proc.poll() is None and time.time() < deadline, "the child never started"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    return int(pid_file.read_text())


def _lock_is_free(run_dir: Path) -> bool:
    try:
        with run_lock(run_dir):
            return True
    except RuntimeError:
        return False


LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal, /proc: Linux")


@LINUX_ONLY
def test_a_child_dies_with_the_pipeline_and_the_lock_is_free_after(tmp_path):
    child = _kill_pipeline_once_its_child_runs(tmp_path, "plain")
    deadline = time.time() + 5
    while alive(child) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(child)
    assert _lock_is_free(tmp_path / "run")


@LINUX_ONLY
def test_the_lock_stays_held_while_a_child_that_outlived_the_pipeline_runs(tmp_path):
    child = _kill_pipeline_once_its_child_runs(tmp_path, "keep")
    try:
        assert alive(child)
        assert not _lock_is_free(tmp_path / "run")  # a restart now would resume beside the survivor
        deadline = time.time() + 30
        while alive(child) and time.time() < deadline:
            time.sleep(0.1)
        assert _lock_is_free(tmp_path / "run")
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_failed_quiet_command_shows_the_end_of_its_output(tmp_path, capsys):
    script = "import sys\nfor i in range(40): print('line', i)\nsys.exit(3)"
    with pytest.raises(StageFailed, match=r"status 3; its output is in .*x\.log"):
        run_logged([sys.executable, "-c", script], tmp_path / "x.log", echo=False)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "line 39" in captured.err and "line 20" not in captured.err  # the last 15 lines
    assert "line 0\n" in (tmp_path / "x.log").read_text()


@pytest.mark.parametrize("line, updates", [
    ("2026-12-02 06:50:43 | INFO | train_inner | epoch 001:     50 / 187 loss=8.868, nll_loss=8.615, "
     "ppl=392.04, wps=6916.8, ups=4.68, wpb=1471.3, bsz=131.7, num_updates=50, lr=0.00100007, gnorm=1.546", 50),
    ("2026-12-02 06:50:54 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 4.386 | nll_loss 3.44 "
     "| ppl 10.86 | wps 20067.2 | wpb 1113.4 | bsz 99.2 | num_updates 100", 100),
    ("2026-12-02 06:50:40 | INFO | fairseq_cli.train | num. model params: 3,004,416", None),
])
def test_the_training_progress_bar_reads_fairseqs_update_count(line, updates):
    found = re.search(UPDATES_IN_LOG, line)
    assert (int(found.group(1)) if found else None) == updates
