"""Atomic files and content hashes: the one I/O layer of the suite (and of the plugin's writes).

Every output is written under a temporary sibling name (``.<name>.tmp-<pid>``, hidden and
unique per process, so parallel jobs may share a directory) and renamed into place only when
complete: a killed job leaves either the old file or the new one, never a truncated one, and
the next run sees the file (done) or not (redo). Standard library only, so that importing it
imports neither torch nor fairseq.
"""
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

_BLOCK = 1 << 20
TEMP_MARK = ".tmp-"
OLD_MARK = ".old-"  # a directory atomic_directory moved aside, left by a process killed mid-swap


def temp_name(path) -> Path:
    """The temporary sibling ``path`` is written under by this process."""
    path = Path(path)
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")


@contextmanager
def atomic_open(path, mode="w", encoding="utf-8"):
    """Open a temporary sibling of ``path`` for writing; on success flush, fsync and rename it onto
    ``path``; on any error remove it (``path`` keeps its old content)."""
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
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path, text: str) -> None:
    with atomic_open(path) as handle:
        handle.write(text)


def atomic_write_lines(path, lines) -> None:
    """One line per item, LF-terminated, UTF-8."""
    with atomic_open(path) as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")


def atomic_write_json(path, value) -> None:
    """Indented, keys sorted, UTF-8 (not ASCII-escaped), newline-terminated."""
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def atomic_copy(src, dst, copy=shutil.copyfile) -> None:
    """Copy ``src`` onto ``dst`` through a temporary sibling of ``dst`` (``copy(src, tmp)`` does the copying)."""
    dst = Path(dst)
    tmp = temp_name(dst)
    try:
        copy(str(src), str(tmp))
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_directory(path):
    """Fill a temporary sibling directory (yielded), then swap it in for ``path`` (an old ``path``
    is replaced as a whole); on error the temporary directory is removed and ``path`` stays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work, old = temp_name(path), path.with_name(f".{path.name}{OLD_MARK}{os.getpid()}")
    work.mkdir()
    try:
        yield work
        if path.exists():
            os.replace(path, old)
            os.replace(work, path)
            shutil.rmtree(old)
        else:
            os.replace(work, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def remove_stale_temps(directory, prefix: str = "") -> None:
    """Delete what killed processes left under temporary names for outputs named ``prefix*``."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for tmp in [*directory.glob(f".{prefix}*{TEMP_MARK}*"), *directory.glob(f".{prefix}*{OLD_MARK}*")]:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha256_json(value) -> str:
    """Hash of a JSON-serialisable value, independent of dict order."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
