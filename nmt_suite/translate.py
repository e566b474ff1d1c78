"""English lines on stdin -> Chinese lines on stdout, with a trained run.

    echo "Tom bought three books yesterday." | bash scripts/translate.sh runs/demo/strong

(scripts/translate.sh runs ``python -m nmt_suite.translate``.)

Input lines end at "\\n" only (a CRLF's "\\r" is dropped; other separators such as U+2028
stay inside their line). Each line is cleaned with prepare_data's English rules, encoded
with the corpus' sentencepiece model, translated with fairseq-interactive
(``--user-dir`` the plugin, so checkpoints load through its safe loader) and decoded again.
stdout gets exactly one line per input line, in order: a line that is empty after cleaning
gives an empty line, and so does a line that cannot be translated (not UTF-8, longer than
the checkpoint's max source positions, or fairseq fails on it), with a one-line warning on
stderr naming it. fairseq's log goes to RUN_DIR/translate.log (``--log``), and to stderr
too with ``--verbose``.

Options are checked before anything imports fairseq or torch (importing this module imports neither).
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nmt_suite.argparsing import OneLineErrorParser
from nmt_suite.device import DeviceError, add_device_option, resolve_device
from nmt_suite.fairseq_output import PER_SENTENCE, GenerateOutputError, read_hypotheses
from nmt_suite.plugin import PLUGIN_DIR

PROG = "translate.sh"
SOURCE_LANG, TARGET_LANG = "en", "zh"
# fairseq-interactive logs this once task and model are loaded, right before it reads its
# input: a failure without it is not about any input line.
READY_MARKER = "Type the input sentence and press return"
# A fairseq failure on lines tried one at a time, before any line translated, this many
# times in a row means fairseq fails on everything (e.g. a broken install), not on them.
GIVE_UP_AFTER = 8


class FairseqFailed(RuntimeError):
    """fairseq-interactive fails whatever the input: no line can be translated."""


def split_lines(data: bytes) -> list:
    """stdin's bytes -> its lines (bytes), split at b"\\n" only; one trailing b"\\r" (CRLF) is dropped."""
    lines = data.split(b"\n")
    if lines[-1] == b"":  # the final newline ends the last line, it does not start another
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def one_line(text: str) -> str:
    """``text`` with every run of whitespace as one space: str.splitlines() finds no break in it.

    Every character str.splitlines() breaks at ("\\n", "\\r", "\\x0b", "\\x0c", "\\x1c"-"\\x1e",
    "\\x85", U+2028, U+2029) is whitespace to str.split().
    """
    return " ".join(text.split())


def translate_sources(sources: list, run_batch, warn) -> dict:
    """``{line number: hypothesis pieces}`` for ``(line number, encoded line)`` pairs.

    ``run_batch(encoded lines)`` returns ``({position: pieces}, error or None)`` and raises
    :class:`FairseqFailed` when no input could succeed. Lines a failed run left without a
    hypothesis are retried in halves until each failing line is alone; those get
    ``warn(line number, reason)`` and no entry.
    """
    done, failed_alone = {}, 0
    pending = [list(sources)] if sources else []
    while pending:
        batch = pending.pop()
        hyps, error = run_batch([src for _, src in batch])
        missing = []
        for k, (lineno, src) in enumerate(batch):
            if k in hyps:
                done[lineno] = hyps[k]
            else:
                missing.append((lineno, src))
        if not missing:
            continue
        if len(batch) > 1:
            half = (len(missing) + 1) // 2
            pending.extend(part for part in (missing[half:], missing[:half]) if part)  # first half runs first
            continue
        warn(batch[0][0], f"fairseq-interactive failed on it: {error or 'no translation returned'}")
        failed_alone += 1
        if not done and failed_alone >= GIVE_UP_AFTER:
            raise FairseqFailed(f"fairseq-interactive failed on each of the {failed_alone} lines it was "
                                f"given one at a time and translated none: {error or 'no translation returned'}")
    return done


class InteractiveRunner:
    """One fairseq-interactive process per call over encoded lines; its log goes to ``log``."""

    def __init__(self, cmd: list, log, log_path: Path, verbose: bool):
        self.cmd, self.log, self.log_path, self.verbose = [str(c) for c in cmd], log, log_path, verbose
        # LOGLEVEL=INFO: READY_MARKER is an INFO message; UTF-8 whatever the locale.
        self.env = {**os.environ, "LOGLEVEL": "INFO", "PYTHONIOENCODING": "utf-8"}

    def write_log(self, text: str) -> None:
        self.log.write(text)
        self.log.flush()
        if self.verbose:
            sys.stderr.write(text)
            sys.stderr.flush()

    def __call__(self, sources: list) -> tuple:
        self.write_log(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {PROG}: {len(sources)} lines: "
                       f"{shlex.join(self.cmd)}\n")
        with tempfile.TemporaryDirectory(prefix="translate-") as tmp:
            out_path = Path(tmp) / "stdout.txt"
            with open(out_path, "wb") as out:
                proc = subprocess.run(self.cmd, input="".join(f"{src}\n" for src in sources).encode("utf-8"),
                                      stdout=out, stderr=subprocess.PIPE, env=self.env)
            stderr = proc.stderr.decode("utf-8", errors="replace")
            with open(out_path, encoding="utf-8", errors="replace") as f:
                logged = [line for line in f if not PER_SENTENCE.match(line)]  # the rest is log
            try:
                hyps = read_hypotheses(out_path)
                error = None
            except GenerateOutputError as err:
                hyps, error = {}, str(err)
        log_text = stderr + "".join(logged)
        if log_text and not log_text.endswith("\n"):
            log_text += "\n"
        self.write_log(log_text)
        if proc.returncode != 0:
            last = [line.strip() for line in stderr.splitlines() if line.strip()]
            error = f"exit status {proc.returncode}{': ' + last[-1] if last else ''} (log: {self.log_path})"
            if READY_MARKER not in log_text:
                raise FairseqFailed(f"fairseq-interactive {error}")
        return {k: h for k, h in hyps.items() if 0 <= k < len(sources)}, error


def max_source_positions(checkpoint) -> int:
    """The longest source (in tokens, end-of-sentence included) the checkpoint's model takes."""
    from fairseq_ext.checkpoint_safety import safe_load

    state = safe_load(checkpoint, mmap=True)
    cfg = state.get("cfg") or {}
    for section in (cfg.get("model"), cfg.get("task"), state.get("args")):
        value = section.get("max_source_positions") if isinstance(section, dict) \
            else getattr(section, "max_source_positions", None)
        if value:
            return int(value)
    raise ValueError("its config has no max_source_positions")


def translate_lines(lines: list, sp, run_batch, max_positions: int, warn) -> list:
    """One translation per entry of ``lines`` (str, or None for a line that could not be read)."""
    from nmt_suite.rungs.evaluate import decode_pieces
    from nmt_suite.prep.clean import clean_en

    sources = []
    for lineno, line in enumerate(lines, 1):
        cleaned = clean_en(line) if line is not None else ""  # as prepare_data cleaned the training sources
        if not cleaned:
            continue
        pieces = sp.encode(cleaned, out_type=str)
        if len(pieces) + 1 > max_positions:  # + end of sentence
            warn(lineno, f"too long: {len(pieces) + 1} tokens with end of sentence, the model takes "
                         f"at most {max_positions} (max_source_positions)")
        elif pieces:
            sources.append((lineno, one_line(" ".join(pieces))))  # fairseq reads one line per source
    hyps = translate_sources(sources, run_batch, warn)
    return [one_line(decode_pieces(sp, hyps[n])) if n in hyps else "" for n in range(1, len(lines) + 1)]


def decode_input(raw_lines: list, warn) -> list:
    """UTF-8 bytes lines -> str lines; None (with a warning) for a line that is not UTF-8."""
    lines = []
    for lineno, raw in enumerate(raw_lines, 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            warn(lineno, f"not valid UTF-8 (byte {err.start + 1} of the line)")
            lines.append(None)
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog=PROG, description="Translate English lines on stdin to Chinese on stdout.")
    parser.add_argument("run_dir", type=Path, help="runs/<corpus>/<rung> of a finished run")
    parser.add_argument("--checkpoint", type=Path, help="default: RUN_DIR/checkpoint_avg.pt")
    parser.add_argument("--data", type=Path, help="prepared corpus dir (default: from RUN_DIR/results.json)")
    parser.add_argument("--beam", type=int, default=5)
    add_device_option(parser)
    parser.add_argument("--log", type=Path, help="fairseq's log, appended (default: RUN_DIR/translate.log)")
    parser.add_argument("--verbose", action="store_true", help="copy fairseq's log to stderr too")
    return parser


def check_options(parser, args) -> tuple:
    """(data dir, checkpoint, log path) once the options are sound and the files exist; else a parser error."""
    if args.beam < 1:
        parser.error(f"--beam must be at least 1, got {args.beam}")
    if not args.run_dir.is_dir():
        parser.error(f"run dir {args.run_dir} not found")
    data = args.data
    if data is None:
        results_path = args.run_dir / "results.json"
        if not results_path.is_file():
            parser.error(f"{results_path} not found: finish the run first, or pass --data and --checkpoint")
        try:
            data = Path(json.loads(results_path.read_text(encoding="utf-8"))["data_dir"])
        except (ValueError, KeyError, TypeError) as err:
            parser.error(f"{results_path}: no data_dir in it ({type(err).__name__}: {err}); pass --data")
    if not data.is_dir():
        parser.error(f"data dir {data} not found")
    checkpoint = args.checkpoint or args.run_dir / "checkpoint_avg.pt"
    needed = [data / "spm" / "spm.model", *(data / "bin" / f"dict.{lang}.txt" for lang in (SOURCE_LANG, TARGET_LANG))]
    for path in (checkpoint, *needed):
        if not path.is_file():
            parser.error(f"{path} not found")
    return data, checkpoint, args.log or args.run_dir / "translate.log"


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    data, checkpoint, log_path = check_options(parser, args)
    try:
        log = open(log_path, "a", encoding="utf-8")
    except OSError as err:
        parser.error(f"cannot append to log {log_path}: {err.strerror}")
    with log:
        return _translate(parser, args, data, checkpoint, log, log_path)


def _translate(parser, args, data: Path, checkpoint: Path, log, log_path: Path) -> int:
    import sentencepiece as spm

    try:
        device = resolve_device(args.device)
    except DeviceError as err:
        parser.error(str(err))  # names the --device value
    try:
        max_positions = max_source_positions(checkpoint)
    except Exception as err:  # unreadable, unsafe or not a fairseq checkpoint
        parser.error(f"checkpoint {checkpoint}: cannot be used: {one_line(str(err))}")
    spm_model = data / "spm" / "spm.model"
    try:
        sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    except (OSError, RuntimeError) as err:
        parser.error(f"{spm_model}: not a sentencepiece model ({one_line(str(err))})")

    from nmt_suite.rungs.run import tool

    cmd = [*tool("fairseq-interactive"), data / "bin", "--user-dir", PLUGIN_DIR,
           "--task", "translation_ext", "--source-lang", SOURCE_LANG, "--target-lang", TARGET_LANG,
           "--path", checkpoint, "--beam", args.beam, "--buffer-size", 64, "--batch-size", 64,
           "--max-source-positions", max_positions,  # the checkpoint's limit, which the length check uses
           "--required-batch-size-multiple", 1,  # else fairseq drops a last batch of < 8 lines
           *(["--cpu"] if device == "cpu" else [])]
    run_batch = InteractiveRunner(cmd, log, log_path, args.verbose)

    def warn(lineno, reason):
        message = f"{PROG}: warning: line {lineno} left empty: {reason}\n"
        sys.stderr.write(message)
        log.write(message)
        log.flush()

    lines = decode_input(split_lines(sys.stdin.buffer.read()), warn)
    try:
        translations = translate_lines(lines, sp, run_batch, max_positions, warn)
    except FairseqFailed as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write("".join(f"{t}\n" for t in translations).encode("utf-8"))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
