"""Corpus, rung and run names: each becomes one folder under data/ or runs/."""
import re

PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
PLAIN_NAME_RULE = "letters, digits and . _ + -; not starting with '.', no '..'"


def is_plain_name(text) -> bool:
    """A name that stays one folder, is not hidden, and can be written unquoted on a command line."""
    return isinstance(text, str) and PLAIN_NAME.fullmatch(text) is not None and ".." not in text
