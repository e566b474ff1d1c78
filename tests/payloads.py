"""Checkpoints crafted to run code when loaded, and a stand-in for upstream fairseq's loader.

Each payload touches a marker file when it runs; a test that loads one asserts the marker
never appears.
"""
import copy
import importlib.abc
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

# fairseq 0.12.3's call in checkpoint_utils.load_checkpoint_to_cpu; upstream's newest adds
# weights_only=False to it.
FAIRSEQ_LOAD_CALL = 'torch.load(f, map_location=torch.device("cpu"))'
UPSTREAM_LOAD_CALL = 'torch.load(f, map_location=torch.device("cpu"), weights_only=False)'


class SystemCallPayload:
    """Unpickles as ``os.system(command)``: what an unrestricted ``torch.load`` would run."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def touch_expression(marker: Path) -> str:
    """Python source that creates ``marker`` when eval()ed."""
    return f"__import__('os').system('touch {marker}')"


def _in_model_config(field, template):
    def craft(state, marker):
        setattr(state["cfg"]["model"], field, template.format(touch_expression(marker)))

    return craft


def _in_legacy_args(field, template):
    def craft(state, marker):
        # a pre-hydra checkpoint: every option in one argparse Namespace, no cfg
        state["args"] = copy.copy(state["cfg"]["model"])
        state["cfg"] = None
        setattr(state["args"], field, template.format(touch_expression(marker)))

    return craft


def _in_pickle(state, marker):
    state["extra_state"]["payload"] = SystemCallPayload(f"touch {marker}")


@dataclass(frozen=True)
class Payload:
    craft: object  # (state, marker) -> None, modifies a genuine checkpoint's state in place
    culprit: str  # what the refusal names besides the file
    env: tuple = ()  # environment the checkpoint is loaded under
    upstream_loader: bool = False  # fairseq's loader calls torch.load(..., weights_only=False)


NO_WEIGHTS_ONLY_ENV = (("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1"),)
PAYLOADS = {
    # fairseq eval()s it (utils.eval_str_dict) when it builds each attention layer
    "cfg.model xformers config": Payload(
        _in_model_config("encoder_xformers_att_config", "[{}] and None"),
        "cfg.model.encoder_xformers_att_config"),
    # fairseq eval()s it (utils.eval_str_list) when it builds the output projection
    "cfg.model adaptive softmax cutoff": Payload(
        _in_model_config("adaptive_softmax_cutoff", "{} or [8]"), "cfg.model.adaptive_softmax_cutoff"),
    "legacy args xformers config": Payload(
        _in_legacy_args("encoder_xformers_att_config", "[{}] and None"), "args.encoder_xformers_att_config"),
    "pickle reduce, no-weights-only env": Payload(_in_pickle, "posix.system", env=NO_WEIGHTS_ONLY_ENV),
    "pickle reduce, upstream loader": Payload(_in_pickle, "posix.system", upstream_loader=True),
}


def craft_checkpoint(genuine: Path, payload: Payload, path: Path) -> Path:
    """Save ``genuine`` with ``payload`` added as ``path``; return the marker the payload would create."""
    from fairseq_ext.checkpoint_safety import safe_load

    marker = path.parent / "payload_ran"
    state = safe_load(genuine)
    payload.craft(state, marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return marker


def upstream_load_checkpoint_to_cpu(checkpoint_utils):
    """fairseq's load_checkpoint_to_cpu as upstream's newest has it, defined in checkpoint_utils' globals."""
    source = inspect.getsource(checkpoint_utils.load_checkpoint_to_cpu)
    assert FAIRSEQ_LOAD_CALL in source, "fairseq's torch.load call changed; update FAIRSEQ_LOAD_CALL"
    namespace = {}
    exec(source.replace(FAIRSEQ_LOAD_CALL, UPSTREAM_LOAD_CALL), vars(checkpoint_utils), namespace)
    return namespace["load_checkpoint_to_cpu"]


class UpstreamLoaderOnImport(importlib.abc.MetaPathFinder):
    """Swaps in the upstream loader as soon as fairseq.checkpoint_utils has been executed."""

    def find_spec(self, name, path, target=None):
        if name != "fairseq.checkpoint_utils":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            module.load_checkpoint_to_cpu = upstream_load_checkpoint_to_cpu(module)

        spec.loader.exec_module = exec_module
        return spec


def upstream_loader_env(directory: Path) -> dict:
    """Environment under which every Python process (CLIs, translate.sh's children) loads with the
    upstream loader: a sitecustomize on PYTHONPATH installs it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        f"import payloads\nsys.meta_path.insert(0, payloads.UpstreamLoaderOnImport())\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")]))}
