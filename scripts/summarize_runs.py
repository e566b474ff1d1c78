#!/usr/bin/env python
"""Markdown table of all runs: python scripts/summarize_runs.py [RUNS_DIR] (default: runs/)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nmt_suite.rungs.summarize import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
