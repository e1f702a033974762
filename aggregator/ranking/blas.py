"""One BLAS thread for the ranking's small dense products.

A product of a few hundred rows (the vote model's solve, a 64-reader block in topic space)
gains nothing from BLAS threads: they only spin (measured 60 ms instead of 2 ms of CPU).
``threadpoolctl.threadpool_limits(1)`` finds the loaded BLAS libraries again on every call
(a scan of the process's shared objects, ≈ 1 ms); :func:`one_thread` finds them once per
process and only sets and restores the limit.
"""

from __future__ import annotations

import threading
from typing import Any

_CONTROLLER: Any = None
_LOCK = threading.Lock()


def one_thread() -> Any:
    """A context manager limiting BLAS (and OpenMP) to one thread inside it, restoring the
    previous limits on exit: ``threadpoolctl``'s ``ThreadpoolController.limit(limits=1)`` on a
    controller made at the first call (numpy's BLAS is loaded by then)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        with _LOCK:
            if _CONTROLLER is None:
                _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1)
