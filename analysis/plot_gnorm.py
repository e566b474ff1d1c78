#!/usr/bin/env python3
"""python analysis/plot_gnorm.py --help: see nmt_suite/analysis/gnorm.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmt_suite.analysis.gnorm import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
