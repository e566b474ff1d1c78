#!/usr/bin/env python
"""Paired significance of runs against the first: python scripts/compare_runs.py RUN_A RUN_B [...] (see --help)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nmt_suite.rungs.compare import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
