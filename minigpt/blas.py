"""How many threads BLAS (NumPy's matrix-product library) may use.

BLAS decides how many cores a matrix product uses; NumPy's other work runs on one.
Two parts of minigpt change that, both for speed, neither for the numbers:
  - generating one sequence runs BLAS on one thread (one_blas_thread): its products
    are too small to share between cores, and when other jobs hold the cores, BLAS's
    threads wait for each other far longer than the product takes;
  - training runs two half-batches in two threads, each with half of BLAS's threads
    (minigpt/data_parallel.py).
threadpoolctl sets the limit; it is one setting for the whole process.
"""
import contextlib
import threading

from threadpoolctl import ThreadpoolController

_controller = None             # threadpoolctl's handle on the BLAS library, made once
_held = 0                      # how many one_blas_thread() contexts are open
_held_lock = threading.Lock()


def blas_limit(threads):
    """A context in which BLAS uses at most `threads` threads."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=threads, user_api="blas")


@contextlib.contextmanager
def one_blas_thread():
    """A context in which BLAS uses one thread. Contexts nest, and only the outermost
    one talks to BLAS: setting the limit costs more than a generated token's small
    products, so generate() holds one context around its whole loop and the ones
    inside it cost next to nothing (benchmarks/bench.py, README "Performance")."""
    global _held
    with _held_lock:
        outermost = _held == 0
        _held += 1
    try:
        if outermost:
            with blas_limit(1):
                yield
        else:
            yield
    finally:
        with _held_lock:
            _held -= 1
