"""Atomic file writes and content hashes, used by every back-translation stage.

Every output is written under a temporary name in its destination directory and renamed
into place only when complete, so a killed job leaves either the old file or the new
one, never a truncated one; the next run sees the file (done) or not (redo).
"""
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path


def temp_name(path: Path) -> Path:
    """A temporary sibling of ``path``, unique per process (shards may share a directory)."""
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_open(path, mode="w", encoding="utf-8"):
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    kwargs = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
    try:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path, data) -> None:
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, sort_keys=True)
        handle.write("\n")


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def sha256_file(path, block=1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(data) -> str:
    """Hash of a JSON-able value, independent of key order."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def remove_stale_temps(directory: Path, prefix: str) -> None:
    """Delete temporaries left by killed jobs for outputs named ``prefix*`` in ``directory``."""
    for tmp in Path(directory).glob(f"{prefix}*.tmp-*"):
        tmp.unlink(missing_ok=True)
