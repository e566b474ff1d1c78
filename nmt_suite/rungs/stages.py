"""What every stage of a pipeline shares: the run lock, and child processes run with their output logged.

Whether a stage is done already is the suite's one cache, :class:`nmt_suite.stage_cache.StageRecords`,
kept in ``<run>/.stages/``: a stage is skipped when its record holds the key of its inputs now.
Change a setting and that stage and the ones after it run again; interrupt a stage and it has
no record, so the next run repeats it (training then resumes from ``checkpoint_last.pt``,
which fairseq-train does by itself).
"""
import collections
import contextlib
import dataclasses
import fcntl
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from nmt_suite.processes import die_with_this_process

# Descriptors of the run locks this process holds. Children inherit them (and their forked
# children, such as data loader workers), so a lock stays held until they have all exited.
_HELD_LOCKS = []


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """One pipeline per run directory at a time (a second one fails at once instead of corrupting it)."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(run_dir) / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another pipeline (or a process it started) is still running in {run_dir} "
                               f"(lock {run_dir}/.lock)") from None
        _HELD_LOCKS.append(handle.fileno())
        try:
            yield
        finally:
            _HELD_LOCKS.remove(handle.fileno())


class StageFailed(RuntimeError):
    pass


@dataclasses.dataclass
class Progress:
    """A progress bar fed from a child's output: ``pattern``'s first group is the count so far."""

    desc: str
    pattern: str
    total: int = None


def run_logged(cmd, log_path: Path = None, echo=True, env=None, progress: Progress = None,
               shown: str = None) -> None:
    """Run a command, its output appended to ``log_path`` (and shown with ``echo``); StageFailed on a non-zero exit.

    Without ``echo`` the user sees the lines matching ``shown`` (a regex: the tool's own
    warnings), ``progress`` as a bar on a terminal, and on failure the end of the output. SIGTERM and SIGINT to this process are passed on to the child, which
    is waited for; a pipeline killed outright takes the child with it (Linux: parent-death
    signal), and the run lock stays held until the child has exited, so a restart never
    resumes beside an orphaned fairseq-train.
    """
    cmd = [str(c) for c in cmd]
    log = open(log_path, "a", encoding="utf-8") if log_path else None
    if echo:
        print(f"[pipeline] $ {shlex.join(cmd)}", flush=True)
    if log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} fairseq_ext pipeline: {shlex.join(cmd)}\n")
        log.flush()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                            pass_fds=tuple(_HELD_LOCKS),
                            preexec_fn=die_with_this_process())

    def forward(signum, _frame):
        proc.send_signal(signum)

    bar = None
    if progress is not None and not echo:
        from tqdm import tqdm

        bar = tqdm(total=progress.total, desc=progress.desc, unit="", disable=not sys.stderr.isatty(),
                   dynamic_ncols=True)
        pattern = re.compile(progress.pattern)
    tail = collections.deque(maxlen=15)
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for line in proc.stdout:
            tail.append(line)
            if echo or (shown and re.search(shown, line)):
                sys.stdout.write(line)
                sys.stdout.flush()
            if log:
                log.write(line)
                log.flush()
            if bar is not None:
                found = pattern.search(line)
                if found and int(found.group(1)) > bar.n:
                    bar.update(int(found.group(1)) - bar.n)
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if log:
            log.close()
        if bar is not None:
            bar.close()
    if code != 0:
        if not echo:
            sys.stderr.write("".join(f"  | {line}" for line in tail))
        where = f"; its output is in {log_path}" if log_path else ""
        raise StageFailed(f"command exited with status {code}{where}: {shlex.join(cmd)}")
