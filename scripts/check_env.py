"""Fail when the project venv holds a package that must never be installed here.

fairseq's metadata asks for torchaudio, and any unpinned route to torch pulls several
GB of nvidia-* CUDA packages. On a machine without CUDA neither may appear.
"""
import importlib.metadata as md
import sys


def forbidden_distributions(cuda_allowed: bool) -> list[str]:
    names = sorted({(d.metadata["Name"] or "").lower() for d in md.distributions()})
    bad = [n for n in names if n == "torchaudio"]
    if not cuda_allowed:
        bad += [n for n in names if n.startswith("nvidia-") or n == "triton"]
    return bad


def main() -> int:
    import torch

    cuda_allowed = torch.version.cuda is not None
    bad = forbidden_distributions(cuda_allowed)
    build = f"CUDA {torch.version.cuda}" if cuda_allowed else "CPU"
    if bad:
        print(f"check_env: forbidden packages in {sys.prefix}: {', '.join(bad)}", file=sys.stderr)
        return 1
    print(f"check_env: torch {torch.__version__} ({build} build); no torchaudio"
          + ("" if cuda_allowed else ", no nvidia/triton packages"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
