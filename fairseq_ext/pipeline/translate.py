"""English lines on stdin -> Chinese lines on stdout, with a trained run (scripts/translate.sh).

    echo "Tom bought three books yesterday." | bash scripts/translate.sh runs/demo/strong

Cleans each line with prepare_data's English rules, encodes it with the corpus'
sentencepiece model, translates with fairseq-interactive (``--user-dir fairseq_ext``, so
checkpoints load through our safe loader) and decodes the pieces again. One output line
per input line, in order; a line that is empty after cleaning gives an empty line.
fairseq's log goes to stderr.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

from fairseq_ext.pipeline.evaluate import decode_pieces
from fairseq_ext.prep.clean import clean_en
from fairseq_ext.pipeline.run import USER_DIR, tool


def translate_lines(lines, data_dir: Path, checkpoint: Path, beam=5, device="cpu", batch_size=64,
                    source_lang="en", target_lang="zh", extra_args=()) -> list:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(Path(data_dir) / "spm" / "spm.model"))
    cleaned = [clean_en(line) for line in lines]  # as prepare_data cleaned the training sources
    todo = [(i, " ".join(sp.encode(line, out_type=str))) for i, line in enumerate(cleaned) if line]
    out = [""] * len(lines)
    if not todo:
        return out
    cmd = [*tool("fairseq-interactive"), Path(data_dir) / "bin", "--user-dir", USER_DIR,
           "--task", "translation_ext", "--source-lang", source_lang, "--target-lang", target_lang,
           "--path", checkpoint, "--beam", beam, "--buffer-size", batch_size, "--batch-size", batch_size,
           "--required-batch-size-multiple", 1,  # else fairseq drops a last batch of < 8 lines (fairseq #5036)
           *(["--cpu"] if device == "cpu" else []), *extra_args]
    proc = subprocess.run([str(c) for c in cmd], input="".join(f"{enc}\n" for _, enc in todo),
                          capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"fairseq-interactive exited with status {proc.returncode}")
    hyps = {}
    for line in proc.stdout.splitlines():
        if line.startswith("H-"):
            fields = line.split("\t")
            hyps.setdefault(int(fields[0][2:]), fields[2] if len(fields) > 2 else "")
    if len(hyps) != len(todo):
        raise RuntimeError(f"fairseq-interactive returned {len(hyps)} translations for {len(todo)} lines")
    for k, (i, _) in enumerate(todo):
        out[i] = decode_pieces(sp, hyps[k])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Translate English lines on stdin to Chinese on stdout.")
    parser.add_argument("run_dir", type=Path, help="runs/<corpus>/<rung> of a finished run")
    parser.add_argument("--checkpoint", type=Path, help="default: RUN_DIR/checkpoint_avg.pt")
    parser.add_argument("--data", type=Path, help="prepared corpus dir (default: from RUN_DIR/results.json)")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    args = parser.parse_args(argv)
    results_path = args.run_dir / "results.json"
    data = args.data
    if data is None:
        if not results_path.exists():
            parser.error(f"{results_path} not found: finish the run first, or pass --data and --checkpoint")
        data = Path(json.loads(results_path.read_text(encoding="utf-8"))["data_dir"])
    checkpoint = args.checkpoint or args.run_dir / "checkpoint_avg.pt"
    for path in (checkpoint, data / "spm" / "spm.model", data / "bin"):
        if not path.exists():
            parser.error(f"{path} not found")
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    lines = sys.stdin.read().splitlines()
    try:
        translations = translate_lines(lines, data, checkpoint, beam=args.beam, device=device)
    except RuntimeError as err:
        print(f"translate: {err}", file=sys.stderr)
        return 1
    sys.stdout.write("".join(f"{t}\n" for t in translations))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
