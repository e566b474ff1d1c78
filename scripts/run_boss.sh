#!/usr/bin/env bash
# The "boss" rung (configs/boss.yaml): strong + back-translation, end to end and resumable:
# reverse zh->en model -> sharded synthetic English for data/<corpus>/bin-mono -> filtered,
# optionally tagged/noised training set -> forward model (optionally fine-tuned on real data)
# -> the same evaluation as the other rungs -> runs/<corpus>/<name>/results.json (strong's BLEU beside it).
#
#   bash scripts/run_boss.sh [--corpus NAME] [--name RUN_NAME] [--device auto|cpu|cuda] [--fresh] [--dry-run]
#                            [section.key=value ...]
#
# Back-translation settings are `backtranslation.<key>=value` overrides (see
# nmt_suite/backtranslation/boss.py, class Settings), e.g.
#   bash scripts/run_boss.sh --corpus ted-lowres --name boss-sampling-tagged \
#        backtranslation.decoding=sampling backtranslation.tag=true
# --dry-run prints every command, including one per back-translation shard for running
# shards on other machines. Env: PYTHON (default: the project's .venv/bin/python).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
echo "run_boss.sh: python=$PYTHON args: $*"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m nmt_suite.backtranslation.boss "$@"
