#!/usr/bin/env python3
"""python analysis/plot_posemb.py --help: see nmt_suite/analysis/posemb.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmt_suite.analysis.posemb import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
