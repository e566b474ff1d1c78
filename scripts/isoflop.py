#!/usr/bin/env python
"""IsoFLOP study of a corpus: python scripts/isoflop.py --corpus ted-lowres | --corpus demo --quick (see --help)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nmt_suite.isoflop.study import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
