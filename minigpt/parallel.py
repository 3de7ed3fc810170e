"""Two half-batches at once: data parallelism on the cores of one machine.

NumPy runs its elementwise work (GELU, layer norm, softmax, the residual adds) on
one core; only the matrix products, in BLAS, use more. On a 2-core laptop that
leaves a core idle for a third of every training step. So GPT.forward and
GPT.backward split a batch of B >= 2 sequences into two halves and run the halves
in two threads, each with BLAS limited to its share of the cores. NumPy releases
Python's lock (the GIL) inside its loops and BLAS calls, so the two threads really
do run at the same time.

This is data parallelism, as across GPUs: each half computes its share of the
loss and of the gradients, and the two gradients are added (the "all-reduce").
The halves' losses are weighted by their share of the batch, B_h / B, so the sum
is exactly the mean over the whole batch, and so are the gradients.

Determinism. A batch is always split into the same two halves, whatever the
machine, and the halves' gradients are always added in the same order. BLAS's own
sums depend on how many threads share a product (each adds its partial sums, in
float32 up to ~6e-7 apart), so each half gets the same BLAS share, cores // 2
threads, whether the halves run in parallel or one after the other (ENABLED =
False). Either way the numbers are the same to the last bit (tests/test_parallel.py),
and a seed reproduces a training run exactly on one machine. (A single whole-batch
pass would differ in the last bits: its batch sums add the numbers in another order.
So would another core count, which gives BLAS another share.)

On one core, two halves cost the same CPU time as the whole batch (79-80 ms per
step for the reference model, with BLAS on one thread): splitting is free.

Measured on the reference model (benchmarks/bench.py, 2 cores, while other jobs
kept the machine busy): 1260 ms per step with the batch in one piece, whose 2-thread
BLAS calls stall whenever one of its threads loses its core, against 153 ms as two
threaded halves. On idle cores the difference is smaller: there the halves win the
second core for NumPy's elementwise work, about a third of a step's CPU time.
"""
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

try:
    from threadpoolctl import ThreadpoolController
except ImportError:            # optional: without it the halves run one after the other
    ThreadpoolController = None

ENABLED = True                 # False: the halves one after the other (same numbers)

_pool = None                   # one worker thread, created on first use
_blas = None                   # threadpoolctl's handle on the BLAS library
_held = 0                      # how many one_blas_thread() contexts are open
_held_lock = threading.Lock()


def _blas_limit(threads):
    """threadpoolctl's context limiting BLAS to `threads` (its handle made once)."""
    global _blas
    if _blas is None:
        _blas = ThreadpoolController()
    return _blas.limit(limits=threads, user_api="blas")


@contextlib.contextmanager
def one_blas_thread():
    """A context in which BLAS uses one thread (without threadpoolctl: no change).

    For work too small to share between cores, such as generating one sequence a
    token at a time: there BLAS's threads only wait for each other, and when other
    jobs hold the cores they wait far longer (generating 200 characters with
    slide=1 while a training run used both cores: 7.6 s with BLAS's two threads,
    1.6 s with one).

    Contexts nest, and only the outermost one talks to BLAS. Setting the limit and
    giving it back costs 12-25 us on an idle machine and more on a busy one, a few
    percent of a generated token; so generate() holds one context around the whole
    loop, and the one that stream() opens around each step then costs ~4 us.
    Like the BLAS setting it guards, the count is one for the whole process.
    """
    global _held
    with _held_lock:
        outermost = _held == 0
        _held += 1
    try:
        if outermost and ThreadpoolController is not None:
            with _blas_limit(1):
                yield
        else:
            yield
    finally:
        with _held_lock:
            _held -= 1


def split_batch(B):
    """Row slices of the halves, [0, B//2) and [B//2, B); the whole batch if B == 1."""
    if B < 2:
        return [slice(0, B)]
    return [slice(0, B // 2), slice(B // 2, B)]


def run_halves(fn, jobs):
    """[fn(*args) for args in jobs] for one or two jobs; two run in two threads.

    This thread runs the first job while a worker thread runs the second, each
    with BLAS limited to half of the cores, so the two do not fight over them.
    """
    global _pool
    cores = os.cpu_count() or 1
    in_worker = threading.current_thread().name.startswith("minigpt-half")  # no nesting
    if len(jobs) == 1 or cores < 2 or ThreadpoolController is None or in_worker:
        return [fn(*args) for args in jobs]      # one job, or no cores/BLAS limit to share
    with _blas_limit(cores // 2):
        if not ENABLED:          # one after the other, with the BLAS share a threaded half
            return [fn(*args) for args in jobs]  # gets: its sums depend on its thread count
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minigpt-half")
        first, second = jobs
        future = _pool.submit(fn, *second)
        try:
            result = fn(*first)
        finally:
            other = future.result()      # wait for the worker, even if we failed
    return [result, other]
