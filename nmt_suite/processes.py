"""Child processes that cannot outlive the process that started them."""
import ctypes
import functools
import os
import signal
import sys

# looked up here, not in the forked child, where only async-signal-safe work belongs
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int):
    """In the child before exec: the kernel kills it when the parent dies, even by SIGKILL."""
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def die_with_this_process():
    """A ``preexec_fn`` for subprocess: the child is killed when this process dies (Linux; None elsewhere)."""
    return functools.partial(_die_with_parent, os.getpid()) if _PRCTL else None
