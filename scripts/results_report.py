#!/usr/bin/env python
"""A results document from finished runs: python scripts/results_report.py STUDY.yaml (see --help)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nmt_suite.rungs.report import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
