#!/usr/bin/env bash
# The performance benchmarks (stock fairseq vs fairseq_ext), results into runs/bench/<stamp>/:
#   1. python -m nmt_suite.bench           training tokens/s (stock fairseq vs ours), gnorm-tracker overhead,
#                                generation, MFU, peak memory  -> results.json, results.md
#   2. python -m nmt_suite.bench --curves  training-loss curves fp32 vs our fast bf16 options (two seeds)
#                                -> curves.json, curves.png          (skipped with CURVES=0)
# Every knob is an env var; anything after the script name goes to both commands, e.g.
#   bash bench/run_bench.sh --threads 1 --repeats 5
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
OUT="${OUT:-$REPO/runs/bench/$(date +%Y%m%d-%H%M%S)}"
CORPUS="${CORPUS:-auto}"
MODEL="${MODEL:-strong}"
CURVES="${CURVES:-1}"
CURVE_UPDATES="${CURVE_UPDATES:-300}"
echo "run_bench.sh: out=$OUT corpus=$CORPUS model=$MODEL curves=$CURVES curve_updates=$CURVE_UPDATES python=$PYTHON args: $*"
cd "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -m nmt_suite.bench --corpus "$CORPUS" --model "$MODEL" --out "$OUT" "$@"
if [ "$CURVES" = 1 ]; then
  "$PYTHON" -m nmt_suite.bench --curves --corpus "$CORPUS" --model "$MODEL" --curve-updates "$CURVE_UPDATES" --out "$OUT" "$@"
fi
