#!/usr/bin/env bash
# English lines on stdin -> Chinese lines on stdout with a trained run, one output line per input line:
#   echo "Tom bought three books yesterday." | bash scripts/translate.sh runs/demo/strong [--beam 5] [--device cpu]
# Options: --checkpoint PATH (default RUN_DIR/checkpoint_avg.pt), --data DIR (default from results.json),
# --log FILE (fairseq's log, default RUN_DIR/translate.log), --verbose (fairseq's log on stderr too).
# Env: PYTHON (default: the project's .venv/bin/python).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
for arg in "$@"; do
  if [ "$arg" = "--verbose" ]; then echo "translate.sh: python=$PYTHON args: $*" >&2; fi
done
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m nmt_suite.translate "$@"
