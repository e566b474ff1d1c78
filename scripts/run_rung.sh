#!/usr/bin/env bash
# Run one rung of the baseline ladder end to end into runs/<corpus>/<rung>/:
# prepare -> fairseq-train -> average checkpoints -> fairseq-generate valid/test ->
# sacrebleu (BLEU --tokenize zh, chrF) -> results.json + prediction.txt -> plots.
#
#   bash scripts/run_rung.sh RUNG [--corpus NAME] [--device auto|cpu|cuda] [--fresh] [--dry-run] [--verbose]
#                                 [section.key=value ...]
#
# RUNG is a config in configs/ (simple, medium, strong, postnorm; boss: scripts/run_boss.sh) or a YAML path.
# Every config value can be overridden, e.g. train.max_epoch=5 train.lr=5e-4 generate.beam=4
# precision=cpu-bf16; every option is checked before anything runs. Re-running resumes
# (finished stages are skipped, training continues from checkpoint_last.pt).
# Env: PYTHON (default: the project's .venv/bin/python).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
case "${1:-}" in
  ""|-*) exec "$PYTHON" -m nmt_suite.rungs.run "$@" ;;  # no RUNG: usage (or --help)
esac
RUNG="$1"; shift
echo "run_rung.sh: rung=$RUNG python=$PYTHON args: $*"
exec "$PYTHON" -m nmt_suite.rungs.run --rung "$RUNG" "$@"
