"""Corpus preparation and the demo corpus import neither torch nor fairseq nor the plugin:
``prepare_data.py --help``, the rung scripts' option checks and the back-translation build
import them without paying for torch."""
import subprocess
import sys

import pytest

HEAVY = ("torch", "fairseq", "fairseq_cli", "fairseq_ext")


@pytest.mark.parametrize("modules", [("nmt_suite.prep", "nmt_suite.prep.cli"), ("nmt_suite.demo_corpus",),
                                     ("nmt_suite.prep.prepare", "nmt_suite.prep.binarize")])
def test_import_loads_no_torch_fairseq_or_plugin(modules):
    code = (f"import importlib, sys\nfor name in {list(modules)!r}: importlib.import_module(name)\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"{', '.join(modules)} imported {proc.stdout.strip()}"
