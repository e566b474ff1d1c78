"""Step-level caching, staging and publishing for one prepared corpus directory.

A step's key (:func:`nmt_suite.stage_cache.stage_key`) covers its options, the hashes of its
inputs and the source of the code that builds it. A built step's files go to ``.staging/``
(each step builds in a temporary directory of its own, then its files are moved there) with
its record ``.staging/.prep-state/<step>.json`` (:class:`nmt_suite.stage_cache.StageRecords`:
the key and the sha256 of each output). Nothing under the corpus directory itself changes
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

from nmt_suite.files import remove_stale_temps, temp_name
from nmt_suite.stage_cache import StageRecords, stage_key

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

    def __post_init__(self):
        self.root = Path(self.root)
        self.staged = StageRecords(self.staging / STATE, base=self.staging)
        self.published = StageRecords(self.root / STATE, base=self.root)

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

    def _drop_staged(self, name: str) -> None:
        """Remove a step's staged record and the staged outputs it lists."""
        record = self.staged.read(name)
        if record is not None:
            for rel in record["outputs"]:
                (self.staging / rel).unlink(missing_ok=True)
            self.staged.drop(name)

    def step(self, name: str, key_parts: dict, build, log=print) -> StepResult:
        """Run ``build(tmp_dir) -> info`` unless an identical step is already done.

        ``build`` writes its outputs under ``tmp_dir`` using their final relative paths.
        """
        key = stage_key(name, key_parts)
        bases = (self.staging, self.root)
        for records in (self.staged, self.published):
            record = records.up_to_date(name, key, bases)
            if record is not None:
                for rel, sha in record["outputs"].items():
                    leftover = self.staging / rel  # of a build killed before writing its record
                    if leftover.is_file() and records.file_hash(leftover) != sha:
                        leftover.unlink()
                result = StepResult(name, key, record["outputs"], record["info"], built=False)
                log(f"[prep] {name}: up to date")
                self.results[name] = result
                return result
            if records is self.staged:  # a killed run's build of this step with other inputs: never to be published
                self._drop_staged(name)
        start = time.time()
        # per-process name: a child of a killed run (a fairseq-preprocess worker) that is still
        # finishing can only write into its own, abandoned directory
        tmp = temp_name(self.staging / name)
        tmp.mkdir(parents=True)
        try:
            info = build(tmp) or {}
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            self._remove_empty_staging()
            raise
        outputs = []
        for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
            rel = path.relative_to(tmp).as_posix()
            dest = self.staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
            outputs.append(rel)
        shutil.rmtree(tmp)
        seconds = time.time() - start
        record = self.staged.write(name, key, outputs, wall_s=seconds, **info)
        result = StepResult(name, key, record["outputs"], info, built=True, seconds=seconds)
        log(f"[prep] {name}: built in {result.seconds:.1f} s")
        self.results[name] = result
        return result

    def remove_abandoned(self) -> None:
        """What killed runs left under temporary names: step build directories, half-written
        records and manifests (only one run holds the lock at a time)."""
        for directory in (self.staging, self.staged.dir, self.root):
            remove_stale_temps(directory)
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
        self.published.dir.mkdir(exist_ok=True)
        for name in sorted(self.results):
            staged = self.staged.path(name)
            if staged.exists():
                os.replace(staged, self.published.path(name))
        for name in self.published.stages():
            if name not in self.results:
                self.published.drop(name)
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
