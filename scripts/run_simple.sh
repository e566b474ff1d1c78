#!/usr/bin/env bash
# The "simple" rung (configs/simple.yaml) end to end; options as for scripts/run_rung.sh, e.g.
#   bash scripts/run_simple.sh --corpus demo --device cpu train.max_epoch=5
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/run_rung.sh" simple "$@"
