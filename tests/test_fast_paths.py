"""The fast ways minigpt computes a few things equal the slow, obvious ways.

Each optimisation (see benchmarks/bench.py and the op's docstring) replaced a
direct formula with a faster one; here the two are compared on inputs chosen to
hit the cases the fast one could get wrong.
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minigpt.ops.embedding import embedding_backward, embedding_forward
from minigpt.ops.rows import row_mean, row_sum

seeds = st.integers(0, 2**32 - 1)


@given(B=st.integers(1, 4), T=st.integers(1, 9), C=st.integers(1, 6), V=st.integers(1, 40),
       seed=seeds, dtype=st.sampled_from([np.float32, np.float64]))
def test_embedding_backward_is_the_scatter_add(B, T, C, V, seed, dtype):
    """Grouped sums == np.add.at: repeated ids (small V), ids that never occur (V > N)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, V, size=(B, T))
    dout = rng.standard_normal((B, T, C)).astype(dtype)
    dwte = embedding_backward(dout, embedding_forward(idx, np.zeros((V, C), dtype))[1])
    expected = np.zeros((V, C), dtype)
    np.add.at(expected, idx.reshape(-1), dout.reshape(-1, C))
    assert dwte.dtype == dtype and dwte.shape == (V, C)
    np.testing.assert_allclose(dwte, expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=3), seed=seeds,
       dtype=st.sampled_from([np.float32, np.float64]))
def test_row_sum_and_row_mean_are_the_reductions(shape, seed, dtype):
    """The matrix-vector row sums == sum / mean(axis=-1, keepdims=True)."""
    x = (np.random.default_rng(seed).standard_normal(shape) * 10 + 3).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-12)
    for fast, slow in ((row_sum, x.sum), (row_mean, x.mean)):
        got = fast(x)
        assert got.dtype == dtype and got.shape == x.shape[:-1] + (1,)
        np.testing.assert_allclose(got, slow(axis=-1, keepdims=True), **tol)
