"""Reading corpus files strictly: UTF-8 only, no NUL bytes, CRLF accepted, errors name file and line.

Lines are split on LF only (``str.splitlines`` would also split on U+2028, U+0085, ...
and silently break the alignment of parallel files).
"""
import hashlib
from dataclasses import dataclass
from pathlib import Path

from nmt_suite.prep.errors import PrepError


@dataclass
class TextFile:
    """A validated input file: its lines (without terminators), hash and size."""
    path: Path
    lines: list
    sha256: str
    bytes: int

    def describe(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "lines": len(self.lines), "bytes": self.bytes}


def _line_of(data: bytes, offset: int) -> tuple:
    """(1-based line, 1-based byte column) of a byte offset."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def read_text(path: Path) -> TextFile:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PrepError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise PrepError(f"{path}: is a directory, expected a text file") from None
    except OSError as err:
        raise PrepError(f"{path}: cannot read ({err.strerror})") from None
    nul = data.find(b"\0")
    if nul >= 0:
        line, col = _line_of(data, nul)
        raise PrepError(f"{path}:{line}: NUL byte at byte column {col} (binary or UTF-16 file?)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line, col = _line_of(data, err.start)
        raise PrepError(f"{path}:{line}: invalid UTF-8 (byte 0x{data[err.start]:02x} at byte column {col}: "
                        f"{err.reason})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if "\r" in text:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not lines:
        raise PrepError(f"{path}: empty file (no lines)")
    return TextFile(path, lines, hashlib.sha256(data).hexdigest(), len(data))


def read_pair(en_path: Path, zh_path: Path) -> tuple:
    """Two aligned files, checked to have the same number of lines."""
    a = read_text(en_path)
    b = read_text(zh_path)
    if len(a.lines) != len(b.lines):
        longer, n = (a, len(b.lines)) if len(a.lines) > len(b.lines) else (b, len(a.lines))
        raise PrepError(f"misaligned files: {a.path} has {len(a.lines)} lines but {b.path} has "
                        f"{len(b.lines)}; {longer.path}:{n + 1} has no partner line")
    return a, b


def read_tsv_pairs(path: Path) -> tuple:
    """A tab-separated file ``en<TAB>zh[<TAB>attribution]`` (Tatoeba ``cmn.txt``) -> (en, zh) lines.

    Every line must have as many fields as the first (2 or 3): a line whose first TAB was
    typed as spaces (as in some copies of cmn.txt) is an error, not a pair with the
    attribution taken for Chinese."""
    tsv = read_text(path)
    fields_per_line = len(tsv.lines[0].split("\t"))
    en, zh = [], []
    for number, line in enumerate(tsv.lines, 1):
        fields = line.split("\t")
        if len(fields) != fields_per_line or fields_per_line not in (2, 3):
            expected = fields_per_line if fields_per_line in (2, 3) and number > 1 else "2 or 3"
            raise PrepError(f"{path}:{number}: expected {expected} tab-separated fields (en, zh[, attribution]), "
                            f"found {len(fields)}")
        en.append(fields[0])
        zh.append(fields[1])
    return tsv, en, zh
