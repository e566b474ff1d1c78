"""Versions of the software a prepared corpus or a run was made with, read from the installed
distributions' metadata (nothing is imported)."""
import importlib.metadata
import platform

# name recorded -> distributions that provide it, first installed wins
DISTRIBUTIONS = {
    "torch": ("torch",),
    "fairseq": ("ve-fairseq", "fairseq", "fairseq-fixed"),
    "sacrebleu": ("sacrebleu",),
    "sentencepiece": ("sentencepiece",),
    "opencc": ("opencc", "opencc-python-reimplemented"),
    "fairseq_ext": ("fairseq-ext",),
}


def installed_version(name: str) -> str:
    for dist in DISTRIBUTIONS.get(name, (name,)):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def software_versions(*names) -> dict:
    """``{"python": ..., name: version, ...}`` for each name of :data:`DISTRIBUTIONS` asked for."""
    return {"python": platform.python_version(), **{name: installed_version(name) for name in names}}
