"""Stop fairseq's background batch loader before the interpreter shuts down.

fairseq's ``BufferedIterator`` collates batches in a daemon ``BackgroundConsumer`` thread.
When training stops mid-epoch (``--max-update``, ``--stop-time-hours``) that thread is usually
still collating. At shutdown CPython ends daemon threads with ``pthread_exit`` as soon as they
re-acquire the GIL; if that happens inside torch's C++ code (a ``noexcept`` frame) the process
dies with "terminate called without an active exception" and exit status 134, after the
checkpoint was written but failing every script that checks the status. Before that point
(``atexit`` runs while daemon threads still run normally) we ask each consumer to stop after
its current batch, drain its queue so it cannot block, and join it.
"""
import atexit
import queue
import threading
import time

from fairseq.data.iterators import BackgroundConsumer

JOIN_TIMEOUT_S = 30.0


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def stop_background_consumers(timeout_s: float = JOIN_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    for thread in threading.enumerate():
        if not isinstance(thread, BackgroundConsumer):
            continue
        # `count >= max_len` ends its loop after the batch it is collating now
        thread._max_len = 0
        while thread.is_alive() and time.monotonic() < deadline:
            _drain(thread._queue)
            thread.join(0.05)


atexit.register(stop_background_consumers)
