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
import difflib
from pathlib import Path

import yaml

from nmt_suite.names import PLAIN_NAME_RULE, is_plain_name

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "configs"
# sections whose keys become command-line options of a tool (checked against that tool's parser)
OPTION_SECTIONS = ("prepare", "train", "generate")
# every other key a rung config may hold, and the keys of its sections; a pipeline that reads more
# (the boss rung's ``backtranslation``) passes its own sections to load_config
SETTINGS = {"device": None, "precision": None, "threads": None, "verbose": None, "plots": None,
            "rung": None, "average": ("last",), "extra_tests": None}
FILE_ONLY_KEYS = ("inherit", "corpora")
# sections only another script's pipeline reads
OTHER_SCRIPTS = {"backtranslation": "scripts/run_boss.sh"}


class ConfigError(ValueError):
    """A config file or an override is invalid; the message names the file or the override."""


def check_name(name, what: str) -> str:
    """``name`` if it is a plain folder name (no path separator, no ``..``, no leading dot), else ConfigError."""
    if not is_plain_name(name):
        raise ConfigError(f"{what} must be a plain folder name ({PLAIN_NAME_RULE}), got {name!r}")
    return name


def unknown_key_message(key, known, what: str) -> str:
    """``unknown section 'trian' (did you mean 'train'?)``, or the list of known keys when nothing is close."""
    close = difflib.get_close_matches(str(key), list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(sorted(known))}"
    return f"unknown {what} {key!r}{hint}"


def _known_sections(extra_sections: dict) -> dict:
    return {**{name: None for name in OPTION_SECTIONS}, **SETTINGS, **extra_sections}


def check_keys(data: dict, where: str, extra_sections: dict, top_level=True) -> None:
    """Refuse keys no stage reads (a misspelt section would otherwise be ignored in silence)."""
    known = _known_sections(extra_sections)
    allowed = [*known, *FILE_ONLY_KEYS] if top_level else list(known)
    for key, value in data.items():
        if key in OTHER_SCRIPTS and key not in allowed:
            raise ConfigError(f"{where}: section {key!r} is read by {OTHER_SCRIPTS[key]}, not by this script")
        if key not in allowed:
            raise ConfigError(f"{where}: {unknown_key_message(key, allowed, 'section or setting')}")
        if (known.get(key) or key in OPTION_SECTIONS or key == "corpora") and not isinstance(value, (dict, type(None))):
            raise ConfigError(f"{where}: {key} must be a mapping, got {value!r}")
        if known.get(key) and isinstance(value, dict):
            for sub in value:
                if sub not in known[key]:
                    raise ConfigError(f"{where}: {unknown_key_message(sub, known[key], f'key of {key}')}")


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


def apply_overrides(cfg: dict, overrides, extra_sections: dict = None) -> dict:
    cfg = copy.deepcopy(cfg)
    for text in overrides:
        keys, value = parse_override(text)
        if extra_sections is not None:
            nested = value
            for key in reversed(keys[1:]):
                nested = {key: nested}
            check_keys({keys[0]: nested}, f"override {text!r}", extra_sections, top_level=False)
        node = cfg
        for i, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"override {text!r}: {'.'.join(keys[:i + 1])} is a value ({child!r}), not a section")
            node = child
        node[keys[-1]] = value
    return cfg


def load_config(name_or_path, corpus: str, overrides=(), config_dir: Path = CONFIG_DIR,
                extra_sections: dict = None) -> dict:
    """The resolved config of a rung for a corpus (see the module docstring for the order).

    Every key of every file and override must be one a stage reads (``extra_sections``: the
    pipeline's own sections besides SETTINGS, as name -> allowed keys or None for any).
    """
    extra_sections = dict(extra_sections or {})
    chain = _chain(config_path(name_or_path, config_dir), Path(config_dir))
    cfg = {}
    for path, data in chain:
        check_keys(data, str(path), extra_sections)
        for block_corpus, block in (data.get("corpora") or {}).items():
            if not isinstance(block, dict):
                raise ConfigError(f"{path}: corpora.{block_corpus} must be a mapping")
            check_keys(block, f"{path}: corpora.{block_corpus}", extra_sections, top_level=False)
        cfg = deep_merge(cfg, {k: v for k, v in data.items() if k != "corpora"})
    for path, data in chain:
        per_corpus = (data.get("corpora") or {}).get(corpus)
        if per_corpus is not None:
            cfg = deep_merge(cfg, per_corpus)
    cfg = apply_overrides(cfg, overrides, extra_sections)
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

