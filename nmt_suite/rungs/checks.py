"""What a stage's tool would refuse, found before any stage runs.

Each option section is parsed by the real parser of the tool it is passed to (fairseq-train's
and fairseq-generate's with their arch-, task-, optimizer- and criterion-specific options,
prepare_data.py's), so a misspelt or invalid option fails in seconds, naming the config key,
instead of after preparation or hours into a run. A few values those parsers accept but that
cannot work (beam 0, no batch size) are refused by the table below.
"""
import argparse
import contextlib
import io
import logging
import math
import re

from nmt_suite.rungs.config import ConfigError, unknown_key_message


def _number(value):
    """``value`` as a float (YAML reads ``5e-4`` as a string), or None when it is not a number."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _integer_at_least(low, strict=False):
    def check(value):
        if strict:  # read by the pipeline itself, not parsed by a tool
            return isinstance(value, int) and not isinstance(value, bool) and value >= low
        number = _number(value)
        return number is not None and math.isfinite(number) and number == int(number) and number >= low
    return check, f"an integer >= {low}"


def _boolean():
    return (lambda value: isinstance(value, bool)), "true or false"


def _fraction_below_one():
    def check(value):
        number = _number(value)
        return number is not None and 0 <= number < 1
    return check, "a number in [0, 1)"


def _positive_numbers():
    def check(value):  # fairseq takes a list, e.g. --lr 0.25,0.1 (one per epoch)
        values = value if isinstance(value, (list, tuple)) else str(value).split(",")
        numbers = [_number(v) for v in values]
        return all(n is not None and math.isfinite(n) and n > 0 for n in numbers)
    return check, "a positive number"


def _non_negative_number():
    def check(value):
        number = _number(value)
        return number is not None and math.isfinite(number) and number >= 0
    return check, "a finite number >= 0"


# (section, key) -> (test, what the value must be); None always passes (it leaves the option out)
VALUE_RULES = {
    ("generate", "beam"): _integer_at_least(1),
    ("generate", "nbest"): _integer_at_least(1),
    ("generate", "max_tokens"): _integer_at_least(1),
    ("generate", "batch_size"): _integer_at_least(1),
    ("generate", "required_batch_size_multiple"): _integer_at_least(1),
    ("train", "max_tokens"): _integer_at_least(1),
    ("train", "batch_size"): _integer_at_least(1),
    ("train", "update_freq"): _integer_at_least(1),
    ("train", "max_update"): _integer_at_least(0),
    ("train", "max_epoch"): _integer_at_least(0),
    ("train", "warmup_updates"): _integer_at_least(0),
    ("train", "lr"): _positive_numbers(),
    ("train", "clip_norm"): _non_negative_number(),
    ("train", "dropout"): _fraction_below_one(),
    ("train", "attention_dropout"): _fraction_below_one(),
    ("train", "activation_dropout"): _fraction_below_one(),
    ("train", "label_smoothing"): _fraction_below_one(),
    ("average", "last"): _integer_at_least(1),
    ("threads", None): _integer_at_least(1, strict=True),
    ("verbose", None): _boolean(),
    ("plots", None): _boolean(),
}


def check_values(cfg: dict) -> None:
    for (section, key), (test, expected) in VALUE_RULES.items():
        value = cfg.get(section) if key is None else (cfg.get(section) or {}).get(key)
        if value is not None and not test(value):
            name = section if key is None else f"{section}.{key}"
            raise ConfigError(f"{name}={value!r}: must be {expected}")
    train = cfg.get("train") or {}
    if all(train.get(key) is None for key in ("max_tokens", "batch_size", "max_sentences")):
        raise ConfigError("train: neither train.max_tokens nor train.batch_size is set; fairseq-train needs a "
                          "batch size (e.g. train.max_tokens=4096)")


_OPTION = re.compile(r"argument (--[\w-]+)")


def _key_of(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def _parse(parse, argv, tool: str, section: str):
    """Run ``parse(argv)`` with argparse's exit turned into a ConfigError that names the config key."""
    err = io.StringIO()
    logging.disable(logging.INFO)  # fairseq logs its user-dir import; this is a check, not a run
    try:
        with contextlib.redirect_stderr(err):
            return parse(argv)
    except SystemExit:
        message = (err.getvalue().strip().splitlines() or ["invalid options"])[-1]
        message = message.split(": error: ", 1)[-1]
        found = _OPTION.search(message)
        where = f"{section}.{_key_of(found.group(1))}" if found else section
        raise ConfigError(f"{where}: {tool} refuses it: {message}") from None
    finally:
        logging.disable(logging.NOTSET)


def check_fairseq_options(tool: str, section: str, argv: list) -> None:
    """Parse ``argv`` as fairseq-train/-generate would; an option it does not know names ``section.key``,
    with the closest option the parser knows (its arch-, task-, optimizer-specific ones included)."""
    from nmt_suite.plugin import import_fairseq

    options = import_fairseq().options
    parser = options.get_training_parser() if tool == "fairseq-train" else options.get_generation_parser()
    args, extra = _parse(lambda a: options.parse_args_and_arch(parser, a, parse_known=True), argv, tool, section)
    unknown = [a for a in extra if a.startswith("--")]
    if unknown:
        key = _key_of(unknown[0])
        known = [k for k in vars(args) if not k.startswith("_")]
        arch = f" (arch {args.arch})" if getattr(args, "arch", None) else ""
        raise ConfigError(f"{section}.{key}: {unknown_key_message(key, known, f'{tool} option')}{arch}")
    if extra:
        raise ConfigError(f"{section}: {tool} does not take the value(s) {' '.join(extra)}")


def check_argparse_options(parser: argparse.ArgumentParser, argv: list, tool: str, section: str,
                           then=None) -> None:
    """Parse ``argv`` with ``parser`` (and ``then(args, parser)``), refusals naming ``section.key``."""
    known = [a.dest for a in parser._actions if a.option_strings]

    def parse(a):
        args, extra = parser.parse_known_args(a)
        unknown = [x for x in extra if x.startswith("--")]
        if unknown:
            key = _key_of(unknown[0].split("=", 1)[0])
            raise ConfigError(f"{section}.{key}: {unknown_key_message(key, known, f'{tool} option')}")
        if extra:
            raise ConfigError(f"{section}: {tool} does not take the value(s) {' '.join(extra)}")
        if then is not None:
            then(args, parser)
        return args

    _parse(parse, argv, tool, section)
