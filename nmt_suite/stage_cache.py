"""Stage outputs valid for these inputs: the one cache of the suite.

Every resumable step (a preparation step of a corpus, a stage of a rung, a back-translation
generation or build) has a *key*: a hash of everything its outputs depend on (its options,
the hashes of its input files, the keys of the stages it reads from). When the step finishes
it writes its record ``<records dir>/<stage>.json``, last and atomically::

    {"key": "...", "outputs": {"bin/dict.en.txt": "<sha256>", ...}, "info": {...},
     "wall_s": 12.3, "finished": 1764670000.0}

``outputs`` are paths relative to the directory the records describe. A step is up to date
when its record holds the key computed now and every recorded output is present with its
recorded hash; otherwise it runs again. A step killed midway has no record (it runs again),
a torn record counts as absent. Standard library only.
"""
import json
import time
from pathlib import Path

from nmt_suite.files import atomic_write_json, read_json, sha256_file, sha256_json


def stage_key(stage: str, inputs) -> str:
    """The key of ``stage`` for ``inputs`` (any JSON-serialisable value; dict order does not matter)."""
    return sha256_json({"stage": stage, "inputs": inputs})


class StageRecords:
    """The records of the stages whose outputs live under ``base`` (default: the records' parent)."""

    def __init__(self, directory, base=None):
        self.dir = Path(directory)
        self.base = Path(base) if base is not None else self.dir.parent
        self._hashes = {}

    def path(self, stage: str) -> Path:
        return self.dir / f"{stage}.json"

    def read(self, stage: str):
        """The record of ``stage``, or None when there is none (or only a torn one)."""
        try:
            record = read_json(self.path(stage))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return record if isinstance(record, dict) and "key" in record else None

    def stages(self) -> list:
        return sorted(path.stem for path in self.dir.glob("*.json")) if self.dir.is_dir() else []

    def file_hash(self, path) -> str:
        """sha256 of a file, computed once per (path, size, mtime) in this process."""
        path = Path(path)
        stat = path.stat()
        memo = (str(path), stat.st_size, stat.st_mtime_ns)
        if memo not in self._hashes:
            self._hashes[memo] = sha256_file(path)
        return self._hashes[memo]

    def has_output(self, rel: str, sha: str, bases=None) -> bool:
        """``rel`` is present under one of ``bases`` (default: this cache's base) with hash ``sha``."""
        for base in bases or (self.base,):
            path = Path(base) / rel
            if path.is_file() and self.file_hash(path) == sha:
                return True
        return False

    def up_to_date(self, stage: str, key: str, bases=None):
        """The record of ``stage`` when it holds ``key`` and all its outputs are intact; else None."""
        record = self.read(stage)
        if record is None or record["key"] != key:
            return None
        if not all(self.has_output(rel, sha, bases) for rel, sha in record.get("outputs", {}).items()):
            return None
        return record

    def write(self, stage: str, key: str, outputs=(), wall_s: float = 0.0, **info) -> dict:
        """Record ``stage`` as done for ``key``; ``outputs``: paths relative to the base (hashed now)
        or a mapping of such paths to their sha256."""
        if not isinstance(outputs, dict):
            outputs = {Path(rel).as_posix(): self.file_hash(self.base / rel) for rel in outputs}
        record = {"key": key, "outputs": dict(sorted(outputs.items())), "info": info,
                  "wall_s": round(wall_s, 3), "finished": time.time()}
        atomic_write_json(self.path(stage), record)
        return record

    def drop(self, stage: str) -> None:
        self.path(stage).unlink(missing_ok=True)
