#!/usr/bin/env bash
# English lines on stdin -> Chinese lines on stdout with a trained run:
#   echo "Tom bought three books yesterday." | bash scripts/translate.sh runs/demo/strong [--beam 5] [--device cpu]
# Options: --checkpoint PATH (default RUN_DIR/checkpoint_avg.pt), --data DIR (default from results.json).
# Env: PYTHON (default: the project's .venv/bin/python).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
echo "translate.sh: python=$PYTHON args: $*" >&2
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m fairseq_ext.pipeline.translate "$@"
