"""The per-update gradient-norm log ``gnorm.jsonl``: its format, reading it and cutting it back.

The plugin's tracker (:mod:`fairseq_ext.gnorm_tracker`, which documents every field) writes
it; the analysis reads it. Standard library only, so reading a log imports neither torch nor fairseq.
"""
import json
import logging
from pathlib import Path

from nmt_suite.files import atomic_write_lines

logger = logging.getLogger(__name__)

FILE_NAME = "gnorm.jsonl"
TENSORBOARD_SUBDIR = "train_gnorm"


class GnormLogError(ValueError):
    """The gradient-norm log is not a valid JSON-lines file."""


def read_gnorm_log(path) -> list:
    """Records of a gnorm log, in file order.

    A last line without its newline is the remains of an interrupted write and is ignored;
    any other unparsable line is an error naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gradient-norm log not found: {path}")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    records = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("update"), int):
                raise ValueError("not a record with an integer 'update'")
        except ValueError as err:
            if lineno == len(lines):  # unterminated last line: an interrupted write
                logger.warning("%s:%d: ignoring incomplete last line", path, lineno)
                break
            raise GnormLogError(f"{path}:{lineno}: invalid gnorm record ({err})") from None
        records.append(record)
    return records


def truncate_gnorm_log(path, last_update: int) -> int:
    """Drop records with ``update > last_update`` (and an incomplete last line); returns the
    highest applied update kept (0 if none). Rewrites through a temporary file and rename."""
    path = Path(path)
    if not path.exists():
        return 0
    with open(path, encoding="utf-8") as f:
        text = f.read()
    records = read_gnorm_log(path)
    kept = [r for r in records if r["update"] <= last_update]
    if len(kept) != len(records) or (text and not text.endswith("\n")):
        atomic_write_lines(path, (json.dumps(r) for r in kept))
        logger.info("%s: resuming after update %d, dropped %d later record(s)",
                    path, last_update, len(records) - len(kept))
    return max((r["update"] for r in kept if not r.get("overflow")), default=0)
