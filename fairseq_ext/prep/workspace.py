"""Step-level caching, staging and publishing for one prepared corpus directory.

A step has a key (a hash of its options, the hashes of its inputs and the source of the
code that builds it). A built step's files go to ``.staging/`` (each written to a
temporary directory first, then renamed) with a record ``.staging/.prep-state/<step>.json``
of its key and the sha256 of each output. Nothing under the corpus directory itself changes
until every step has succeeded; then staged files and records are renamed into place
(records under ``.prep-state/``) and ``manifest.json`` is written last. A run killed at any
point leaves complete records only for complete steps, so the next run rebuilds exactly the
rest and ends with the same bytes. A run that fails (bad input, a tool's error) removes
``.staging/``: the published files and records stay as they were. A step whose key matches
its record (staged, else published) and whose outputs are present (staged or published)
with the recorded hashes is skipped.
"""
import fcntl
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fairseq_ext.prep.files import atomic_write_json, read_json, sha256_file, sha256_json

STAGING = ".staging"
STATE = ".prep-state"
LOCK = ".lock"


@dataclass
class StepResult:
    name: str
    key: str
    outputs: dict            # relative path -> sha256
    info: dict
    built: bool
    seconds: float = 0.0


@dataclass
class Workspace:
    root: Path
    results: dict = field(default_factory=dict)
    _hashes: dict = field(default_factory=dict)

    @property
    def staging(self) -> Path:
        return self.root / STAGING

    def locate(self, rel: str) -> Path:
        """Where an output of a finished step is now: staged, or already published."""
        staged = self.staging / rel
        return staged if staged.exists() else self.root / rel

    def logical_path(self, path) -> str:
        """A file of this corpus (staged or published) as ``source/train.en``; others unchanged."""
        path = Path(path)
        for base in (self.staging, self.root):
            if path.is_relative_to(base):
                return path.relative_to(base).as_posix()
        return str(path)

    def output_hash(self, rel: str) -> str:
        return self.results_by_output()[rel]

    def results_by_output(self) -> dict:
        return {rel: sha for result in self.results.values() for rel, sha in result.outputs.items()}

    def _hash(self, path: Path) -> str:
        stat = path.stat()
        memo_key = (str(path), stat.st_size, stat.st_mtime_ns)
        if memo_key not in self._hashes:
            self._hashes[memo_key] = sha256_file(path)
        return self._hashes[memo_key]

    def _available(self, rel: str, sha: str) -> bool:
        for path in (self.staging / rel, self.root / rel):
            if path.is_file() and self._hash(path) == sha:
                return True
        return False

    def _drop_staged(self, name: str) -> None:
        """Remove a step's staged record and the staged outputs it lists."""
        path = self.staging / STATE / f"{name}.json"
        if path.is_file():
            for rel in read_json(path)["outputs"]:
                (self.staging / rel).unlink(missing_ok=True)
            path.unlink()

    def step(self, name: str, key_parts: dict, build, log=print) -> StepResult:
        """Run ``build(tmp_dir) -> info`` unless an identical step is already done.

        ``build`` writes its outputs under ``tmp_dir`` using their final relative paths.
        """
        key = sha256_json({"step": name, **key_parts})
        for staged in (True, False):
            path = (self.staging if staged else self.root) / STATE / f"{name}.json"
            record = read_json(path) if path.is_file() else None
            if record and record.get("key") == key and all(
                    self._available(rel, sha) for rel, sha in record["outputs"].items()):
                for rel, sha in record["outputs"].items():
                    leftover = self.staging / rel  # of a build killed before writing its record
                    if leftover.is_file() and self._hash(leftover) != sha:
                        leftover.unlink()
                result = StepResult(name, key, record["outputs"], record.get("info", {}), built=False)
                log(f"[prep] {name}: up to date")
                self.results[name] = result
                return result
            if staged:  # a killed run's build of this step with other inputs: never to be published
                self._drop_staged(name)
        start = time.time()
        # per-process name: a child of a killed run (a fairseq-preprocess worker) that is still
        # finishing can only write into its own, abandoned directory
        tmp = self.staging / f".tmp-{name}-{os.getpid()}"
        tmp.mkdir(parents=True)
        try:
            info = build(tmp) or {}
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            self._remove_empty_staging()
            raise
        outputs = {}
        for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
            rel = path.relative_to(tmp).as_posix()
            outputs[rel] = sha256_file(path)
            dest = self.staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
        shutil.rmtree(tmp)
        atomic_write_json(self.staging / STATE / f"{name}.json", {"key": key, "outputs": outputs, "info": info})
        result = StepResult(name, key, outputs, info, built=True, seconds=time.time() - start)
        log(f"[prep] {name}: built in {result.seconds:.1f} s")
        self.results[name] = result
        return result

    def remove_abandoned(self) -> None:
        """Temporary directories of killed runs (only one run holds the lock at a time)."""
        for tmp in self.staging.glob(".tmp-*") if self.staging.is_dir() else ():
            shutil.rmtree(tmp, ignore_errors=True)
        self._remove_empty_staging()

    def _remove_empty_staging(self) -> None:
        try:
            self.staging.rmdir()
        except OSError:
            pass  # absent, or holds staged outputs of finished steps

    def discard_staging(self) -> None:
        """After a failed run: drop everything it (or a killed run before it) staged."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def publish(self, previous_outputs: list) -> int:
        """Rename every staged output, then every staged record, into place; remove published
        files of the previous manifest that no step produces any more, and the records of steps
        this run did not have (e.g. mono steps after --mono is removed). Returns the number of
        files moved."""
        moved = 0
        for rel in sorted(self.results_by_output()):
            staged = self.staging / rel
            if staged.exists():
                dest = self.root / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, dest)
                moved += 1
        state = self.root / STATE
        state.mkdir(exist_ok=True)
        for name in sorted(self.results):
            staged = self.staging / STATE / f"{name}.json"
            if staged.exists():
                os.replace(staged, state / staged.name)
        for path in state.glob("*.json"):
            if path.stem not in self.results:
                path.unlink()
        current = self.results_by_output()
        for rel in previous_outputs:
            if rel not in current:
                (self.root / rel).unlink(missing_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        return moved


@contextmanager
def locked(root: Path):
    """One prepare_data run per corpus directory at a time; a second one waits."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "a") as handle:  # "a": never touches the file, only locks it
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"[prep] {root} is being prepared by another run; waiting for it", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
