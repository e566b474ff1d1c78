"""Reading what fairseq-generate and fairseq-interactive print: one line per sentence and kind
(``S-<id>`` source, ``H-<id>`` hypothesis pieces, ``D-<id>`` detokenized, ``P-``, ``A-``, ``W-``, ``C-``)
among lines of log."""
import re

PER_SENTENCE = re.compile(r"^[SWHDPAC]-\d+\t")


class GenerateOutputError(ValueError):
    pass


def parse_hypotheses(lines, source="fairseq output") -> dict:
    """``{sentence id: hypothesis pieces}`` of the best (first) hypothesis of each sentence;
    a malformed ``H-`` line is an error naming ``source`` and the line number."""
    hyps = {}
    for lineno, line in enumerate(lines, 1):
        if not line.startswith("H-"):
            continue
        fields = line.rstrip("\n").split("\t")
        if len(fields) < 2:
            raise GenerateOutputError(f"{source}:{lineno}: malformed hypothesis line {line!r}")
        try:
            sid = int(fields[0][2:])
        except ValueError:
            raise GenerateOutputError(f"{source}:{lineno}: bad sentence id in {line!r}") from None
        hyps.setdefault(sid, fields[2] if len(fields) > 2 else "")
    return hyps


def read_hypotheses(path) -> dict:
    """:func:`parse_hypotheses` of a file."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return parse_hypotheses(handle, source=str(path))
