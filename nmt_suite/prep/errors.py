"""The one exception type of corpus preparation."""


class PrepError(Exception):
    """Bad input or a failed step. The message names the file (and line) at fault;
    the command line prints it and exits non-zero without publishing anything."""
