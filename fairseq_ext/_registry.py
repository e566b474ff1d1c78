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
