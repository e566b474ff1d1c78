#!/usr/bin/env python3
"""Prepare a corpus under data/<name>/ (see nmt_suite/prep/prepare.py for the layout).

    python scripts/prepare_data.py --corpus ted-lowres
    python scripts/prepare_data.py --corpus local --train PREFIX --test PREFIX [--valid ...] [--mono FILE]
    python scripts/prepare_data.py --corpus ted2020 [--mirror-url URL]
    python scripts/prepare_data.py --corpus demo
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmt_suite.prep.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
