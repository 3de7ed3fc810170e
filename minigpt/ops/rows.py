"""Sums and means over the last axis, as matrix-vector products.

Layer norm and softmax reduce every row of an activation: rows of C = 128 channels,
or of T = 64 attention scores, and there are thousands of rows. The formula is
    row_sum(x)[..., 0]  = sum_j x[..., j]             x.sum(axis=-1, keepdims=True)
    row_mean(x)[..., 0] = (1/C) sum_j x[..., j]       x.mean(axis=-1, keepdims=True)
NumPy's x.sum(axis=-1) reduces each short row on its own, one small loop per row.
The same sums written as a matrix-vector product,
    row_sum(x)  = x @ (1, 1, ..., 1)
    row_mean(x) = x @ (1/C, 1/C, ..., 1/C),
go to BLAS, which streams through all rows at once with vector instructions, and is
faster at these shapes (benchmarks/fast_forms.py). They add the same numbers in
another order, so the two agree to rounding, not bit for bit (tests/test_fast_paths.py).
Both keep the reduced axis with size 1, (..., C) -> (..., 1), so the result
broadcasts back against x, like keepdims=True. row_sum_plain and row_mean_plain are
the formula as written.
"""
import functools

import numpy as np


@functools.lru_cache(maxsize=64)
def constant_vector(C, value, dtype):
    """(C,) filled with value, read-only, built once per (C, value, dtype): generation
    runs a layer norm on a single row 9 times per token, where building the vector
    would cost as much as the product."""
    v = np.full(C, value, dtype=dtype)
    v.flags.writeable = False
    return v


def row_sum(x):
    """sum over the last axis: (..., C) -> (..., 1)."""
    return (x @ constant_vector(x.shape[-1], 1.0, x.dtype))[..., None]


def row_sum_plain(x):
    """sum over the last axis: (..., C) -> (..., 1). The formula as written; row_sum
    computes the same faster, see benchmarks/fast_forms.py."""
    return x.sum(axis=-1, keepdims=True)


def row_mean(x):
    """mean over the last axis: (..., C) -> (..., 1)."""
    C = x.shape[-1]
    return (x @ constant_vector(C, 1.0 / C, x.dtype))[..., None]


def row_mean_plain(x):
    """mean over the last axis: (..., C) -> (..., 1). The formula as written; row_mean
    computes the same faster, see benchmarks/fast_forms.py."""
    return x.mean(axis=-1, keepdims=True)
