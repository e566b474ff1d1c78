"""How the suite reaches the plugin: its directory for fairseq's ``--user-dir``, and loading it here.

Finding the directory does not import the plugin (importing it imports fairseq and torch), so
the suite's modules stay light until a stage really runs fairseq in this process.
"""
import importlib
import importlib.util
import logging
from pathlib import Path

PLUGIN_PACKAGE = "fairseq_ext"
PLUGIN_DIR = Path(importlib.util.find_spec(PLUGIN_PACKAGE).submodule_search_locations[0]).resolve()


def load_plugin():
    """Import the plugin, which registers its components with fairseq (what ``--user-dir`` does).

    fairseq's ``import_user_module`` skips a user dir whose package is already imported, so a
    process that loads the plugin here may still pass ``--user-dir`` to fairseq's functions.
    """
    return importlib.import_module(PLUGIN_PACKAGE)


def import_fairseq():
    """Import fairseq in this process, keeping the root logger as it was.

    fairseq's import runs ``logging.basicConfig(level=DEBUG)`` (models/wav2vec/
    wav2vec2_classification.py), after which every library's debug lines (matplotlib's font
    search, ...) reach the user's terminal. Call this before the process's first fairseq import.
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    module = importlib.import_module("fairseq")
    root.setLevel(level)
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    return module
