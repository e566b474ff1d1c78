#!/usr/bin/env python3
"""python analysis/plot_attention.py --help: see nmt_suite/analysis/attention.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmt_suite.analysis.attention import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
