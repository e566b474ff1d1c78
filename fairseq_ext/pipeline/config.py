"""Rung configs: YAML files in ``configs/``, merged, then overridden from the command line.

A config file is a mapping of sections. ``train``, ``generate`` and ``prepare`` hold
options of fairseq-train, fairseq-generate and scripts/prepare_data.py, written as
``option_name: value`` (``lr: 5e-4`` -> ``--lr 5e-4``; ``true`` -> a bare flag; ``false``
or ``null`` -> left out, so an override can switch a flag off). The other keys are read
by the pipeline itself (``device``, ``precision``, ``average``, ``plots``, ...) or by
another stage's code (``backtranslation``).

Resolution order, later wins:

1. the ``inherit:`` chain, parent first (``boss`` -> ``strong`` -> ``base``);
2. each file's ``corpora: {<corpus>: {...}}`` block, in the same order, so a per-corpus
   setting beats a generic one at any level (``corpora.demo.train.arch`` in strong.yaml
   beats ``train.arch`` of strong.yaml);
3. command-line overrides ``section.key=value`` (value parsed as YAML: ``train.lr=5e-4``,
   ``train.fp16=false``, ``average.last=1``, ``train.keep_last_epochs=null``).
"""
import copy
import hashlib
import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "configs"
# sections whose keys become command-line options of a tool
OPTION_SECTIONS = ("prepare", "train", "generate")


class ConfigError(ValueError):
    """A config file or an override is invalid; the message names the file or the override."""


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    return data


def deep_merge(base: dict, update: dict) -> dict:
    """A new dict: ``update`` merged into ``base``, mappings recursively, anything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def config_path(name_or_path, config_dir: Path = CONFIG_DIR) -> Path:
    """``strong`` -> configs/strong.yaml; an existing path is taken as is."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    return Path(config_dir) / f"{name_or_path}.yaml"


def _chain(path: Path, config_dir: Path, seen=()) -> list:
    """The config files from the root ancestor down to ``path``, each as (path, data)."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: inherit cycle through {' -> '.join(map(str, seen))}")
    data = _read_yaml(path)
    parent = data.pop("inherit", None)
    if parent is None:
        return [(path, data)]
    parent_path = config_path(parent, path.parent if (path.parent / f"{parent}.yaml").exists() else config_dir)
    return _chain(parent_path, config_dir, (*seen, path)) + [(path, data)]


def parse_override(text: str):
    """``train.lr=5e-4`` -> (["train", "lr"], "5e-4"); values are parsed as YAML scalars."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: expected section.key=value, e.g. train.lr=5e-4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {err}") from None
    return key.split("."), value


def apply_overrides(cfg: dict, overrides) -> dict:
    cfg = copy.deepcopy(cfg)
    for text in overrides:
        keys, value = parse_override(text)
        node = cfg
        for i, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"override {text!r}: {'.'.join(keys[:i + 1])} is a value ({child!r}), not a section")
            node = child
        node[keys[-1]] = value
    return cfg


def load_config(name_or_path, corpus: str, overrides=(), config_dir: Path = CONFIG_DIR) -> dict:
    """The resolved config of a rung for a corpus (see the module docstring for the order)."""
    chain = _chain(config_path(name_or_path, config_dir), Path(config_dir))
    cfg = {}
    for _, data in chain:
        cfg = deep_merge(cfg, {k: v for k, v in data.items() if k != "corpora"})
    for path, data in chain:
        per_corpus = (data.get("corpora") or {}).get(corpus)
        if per_corpus is not None:
            if not isinstance(per_corpus, dict):
                raise ConfigError(f"{path}: corpora.{corpus} must be a mapping")
            cfg = deep_merge(cfg, per_corpus)
    cfg = apply_overrides(cfg, overrides)
    for section in OPTION_SECTIONS:
        value = cfg.setdefault(section, {})
        if not isinstance(value, dict):
            raise ConfigError(f"section {section!r} must be a mapping of options, got {value!r}")
    cfg["rung"] = cfg.get("rung") or config_path(name_or_path, config_dir).stem
    cfg["corpus"] = corpus
    return cfg


def to_cli_args(options: dict) -> list:
    """``{"lr": 5e-4, "fp16": True, "no_save": False}`` -> ``["--lr", "0.0005", "--fp16"]``.

    Lists become several values after one option (``--adam-betas`` takes a string in
    fairseq, so write it as one: ``"(0.9,0.98)"``).
    """
    args = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + str(key).replace("_", "-")
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            args += [flag, *map(_scalar, value)]
        elif isinstance(value, dict):
            raise ConfigError(f"option {key!r}: a mapping cannot be a command-line value ({value!r})")
        else:
            args += [flag, _scalar(value)]
    return args


def _scalar(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def config_hash(obj) -> str:
    """A stable sha256 over JSON-serialisable settings (what a stage marker compares)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
