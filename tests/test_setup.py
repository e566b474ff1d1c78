"""`make venv` (run by `make test` and `make demo`) is idempotent and keeps CUDA packages out."""
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

VENV = REPO / ".venv"
in_project_venv = pytest.mark.skipif(
    Path(sys.prefix).resolve() != VENV.resolve(), reason="tests are not running in the project's .venv"
)


def pip_freeze():
    return subprocess.run([sys.executable, "-m", "pip", "freeze", "--all"], capture_output=True, text=True,
                          check=True).stdout


@in_project_venv
def test_second_make_venv_installs_nothing():
    before = pip_freeze()
    out = subprocess.run(["make", "-C", str(REPO), "venv"], capture_output=True, text=True, check=True)
    assert "up to date" in out.stdout
    assert "pip" not in out.stdout and "Installing" not in out.stdout
    assert pip_freeze() == before


@in_project_venv
def test_no_cuda_or_torchaudio_packages():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "check_env.py")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    import torch

    if torch.version.cuda is None:
        assert "nvidia" not in pip_freeze().lower()
    assert "torchaudio" not in pip_freeze().lower()
