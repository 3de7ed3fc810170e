"""How much each fast form in minigpt/ops buys over the plain formula beside it.

Every op that computes a formula in a faster way keeps the formula as written next to
it (`*_plain`), and tests/test_fast_paths.py proves the two equal. This script times
each pair at the reference model's shapes: nanoGPT's CPU run, float32, batch B 12,
block T 64, n_embd C 128, 4 heads, vocabulary V 65 (and V 1340, the chat corpus's
tokens, for the embedding's backward). BLAS runs on one thread (threadpoolctl), so the
comparison is of the work, not of how well each form spreads over cores.

Each form is called in a loop for at least --min-time seconds; that is one repeat.
Plain and fast take turns, --repeats times each, so that other jobs on the machine
slow both alike, and the table shows the median time per call. Before timing, each
pair is checked to agree (np.allclose); the tests check it to the rounding bound.

Two rows are not a plain form but the alternative a docstring names: "x**3" is the
cube alone (NumPy's general pow() against x * x * x), "one-hot" the embedding's
scatter-add as a matrix product, onehot^T @ dout (the one-hot matrix built in the
timed call, as a backward would build it).

Run: `.venv/bin/python benchmarks/fast_forms.py` (about 20 s).
"""
import argparse
import platform
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from minigpt.ops.attention import mask_future, mask_future_plain
from minigpt.ops.embedding import (embedding_backward, embedding_backward_plain,
                                   embedding_forward)
from minigpt.ops.gelu import gelu_forward, gelu_forward_plain
from minigpt.ops.linear import (linear_backward, linear_backward_plain, linear_forward,
                                linear_forward_plain)
from minigpt.ops.rows import row_mean, row_mean_plain, row_sum, row_sum_plain

B, T, C, NH, V = 12, 64, 128, 4, 65        # the reference model (nanoGPT's CPU run)
V_CHAT = 1340                              # the chat corpus's vocabulary
DTYPE = np.float32


def cases(rng):
    """[(form, plain, fast)]: zero-argument callables on fixed inputs of the model's
    shapes. Where a fast form works in place (mask_future) it gets its own array."""
    x = rng.standard_normal((B, T, C)).astype(DTYPE)               # activations
    h = rng.standard_normal((B, T, 4 * C)).astype(DTYPE)           # MLP hidden
    s = rng.standard_normal((B, NH, T, T)).astype(DTYPE)           # attention scores
    s_fast = s.copy()       # mask_future adds 0 or -inf in place: repeats change nothing
    w_fc = (rng.standard_normal((C, 4 * C)) * 0.02).astype(DTYPE)
    b_fc = np.zeros(4 * C, DTYPE)
    dh = rng.standard_normal((B, T, 4 * C)).astype(DTYPE)
    _, c_lin = linear_forward(x, w_fc, b_fc)
    _, c_lin_plain = linear_forward_plain(x, w_fc, b_fc)
    out = []
    out += [("row_sum (B, nh, T, T) scores", lambda: row_sum_plain(s), lambda: row_sum(s)),
            ("row_mean (B, T, C)", lambda: row_mean_plain(x), lambda: row_mean(x))]
    for vocab in (V, V_CHAT):
        idx = rng.integers(0, vocab, size=(B, T))
        _, c_emb = embedding_forward(idx, np.zeros((vocab, C), DTYPE))
        out += [(f"embedding_backward V={vocab}",
                 lambda c=c_emb: embedding_backward_plain(x, c),
                 lambda c=c_emb: embedding_backward(x, c)),
                (f"  one-hot matmul V={vocab}",
                 lambda i=idx, v=vocab: one_hot(i, v).T @ x.reshape(-1, C),
                 lambda c=c_emb: embedding_backward(x, c))]
    out += [("mask_future (B, nh, T, T)", lambda: mask_future_plain(s),
             lambda: mask_future(s_fast)),
            ("gelu_forward (B, T, 4C)", lambda: gelu_forward_plain(h),
             lambda: gelu_forward(h)),
            ("  x**3 (B, T, 4C)", lambda: h**3, lambda: h * h * h),
            ("linear_forward (B, T, C) @ (C, 4C)",
             lambda: linear_forward_plain(x, w_fc, b_fc), lambda: linear_forward(x, w_fc, b_fc)),
            ("linear_backward (B, T, 4C)",
             lambda: linear_backward_plain(dh, c_lin_plain), lambda: linear_backward(dh, c_lin))]
    return out


def one_hot(idx, vocab):
    """(B, T) ids -> (B*T, V) float32, 1 where the position holds that id: built on
    every call, as a backward would have to."""
    return (idx.reshape(-1, 1) == np.arange(vocab)).astype(DTYPE)


def first(result):
    """The array a form returns: (out, cache) pairs and (dx, dw, db) tuples alike."""
    while isinstance(result, tuple):
        result = result[0]
    return result


def time_per_call(fn, min_time):
    """Seconds per call of fn, over a loop of at least min_time seconds."""
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7,
                        help="timed loops per form, plain and fast in turn (default 7)")
    parser.add_argument("--min-time", type=float, default=0.1,
                        help="seconds each timed loop runs at least (default 0.1)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}, {platform.machine()}, float32, one BLAS thread; "
          f"B {B}, T {T}, C {C}, nh {NH}; median of {args.repeats}")
    print(f"{'form':<36} | {'plain ms':>9} | {'fast ms':>8} | {'speed-up':>8}")
    print(f"{'-' * 36}-|-{'-' * 9}-|-{'-' * 8}-|-{'-' * 8}")
    with threadpool_limits(1):
        for name, plain, fast in cases(rng):
            want, got = first(plain()), first(fast())
            assert np.allclose(got, want, rtol=1e-4, atol=1e-5), name   # tests: tighter
            times = {"plain": [], "fast": []}
            for _ in range(args.repeats):
                times["plain"].append(time_per_call(plain, args.min_time))
                times["fast"].append(time_per_call(fast, args.min_time))
            p, f = (statistics.median(times[k]) * 1e3 for k in ("plain", "fast"))
            print(f"{name:<36} | {p:9.3f} | {f:8.3f} | {p / f:7.1f}x")


if __name__ == "__main__":
    main()
