"""Idempotent registration into fairseq's registries.

fairseq raises "Cannot register duplicate ..." when a name is registered twice. That
happens when two copies of this plugin are imported into one process (a pip-installed
copy plus a ``--user-dir`` checkout imported under another module name, or a module
executed twice). Every component of ours registers through these helpers: a name
already held by *the same component* (same qualified name, same module basename) is
left as it is; a name held by anything else is a real conflict and still raises.
"""
from fairseq.criterions import CRITERION_REGISTRY, register_criterion
from fairseq.models import (
    ARCH_CONFIG_REGISTRY,
    MODEL_REGISTRY,
    register_model,
    register_model_architecture,
)
from fairseq.optim import OPTIMIZER_REGISTRY, register_optimizer
from fairseq.tasks import TASK_REGISTRY, register_task


def _same_component(existing, new) -> bool:
    return getattr(existing, "__qualname__", None) == getattr(new, "__qualname__", None) and (
        getattr(existing, "__module__", "").rsplit(".", 1)[-1]
        == getattr(new, "__module__", "").rsplit(".", 1)[-1]
    )


def _once(registry, name, register):
    def wrapper(component):
        existing = registry.get(name)
        if existing is not None and _same_component(existing, component):
            return existing
        return register(component)

    return wrapper


def register_model_once(name, dataclass=None):
    return _once(MODEL_REGISTRY, name, register_model(name, dataclass=dataclass))


def register_architecture_once(model_name, arch_name):
    return _once(ARCH_CONFIG_REGISTRY, arch_name, register_model_architecture(model_name, arch_name))


def register_task_once(name, dataclass=None):
    return _once(TASK_REGISTRY, name, register_task(name, dataclass=dataclass))


def register_optimizer_once(name, dataclass=None):
    return _once(OPTIMIZER_REGISTRY, name, register_optimizer(name, dataclass=dataclass))


def register_criterion_once(name, dataclass=None):
    return _once(CRITERION_REGISTRY, name, register_criterion(name, dataclass=dataclass))


def tolerate_second_copy_as_user_dir():
    """Let ``--user-dir <another copy of fairseq_ext>`` through once fairseq_ext is imported.

    fairseq's ``utils.import_user_module`` raises "module name is not globally unique"
    when a package of that name was already imported from another path, e.g. a script
    that imported the pip-installed fairseq_ext and then runs a fairseq CLI entry point
    with ``--user-dir`` pointing at a checkout. Both copies register the same
    components, so we keep the loaded one (and say so) instead of failing.
    """
    import logging
    import os
    import sys

    from fairseq import utils

    original = utils.import_user_module
    if getattr(original, "_fairseq_ext_guard", False):
        return
    package = __name__.split(".")[0]

    def import_user_module(args):
        user_dir = getattr(args, "user_dir", None)
        loaded = sys.modules.get(package)
        if user_dir is not None and loaded is not None:
            path = os.path.abspath(user_dir).rstrip(os.sep)
            if os.path.basename(path) == package and path not in list(loaded.__path__):
                logging.getLogger(__name__).warning(
                    "--user-dir=%s: %s is already imported from %s; using that copy",
                    user_dir, package, list(loaded.__path__)[0],
                )
                return
        return original(args)

    import_user_module._fairseq_ext_guard = True
    utils.import_user_module = import_user_module
