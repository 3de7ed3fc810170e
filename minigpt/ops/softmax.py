"""Softmax over the last axis, and its backward.

Forward, numerically stable (subtracting the row max changes nothing
mathematically but keeps exp() from overflowing):
    p_j = exp(z_j - max(z)) / sum_k exp(z_k - max(z))

Backward. The Jacobian is dp_j/dz_i = p_j (delta_ij - p_i), so for an upstream
gradient dp,
    dz_i = sum_j dp_j p_j (delta_ij - p_i) = p_i (dp_i - sum_j dp_j p_j)
i.e. dz = p * (dp - sum(dp * p, axis=-1)). Cached: p (the output) only.
Entries with z = -inf (masked) get p = 0 and therefore dz = 0.
"""
import numpy as np


def softmax_forward(z):
    """z: (..., N) -> p (..., N) with rows summing to 1, cache."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return p, p


def softmax_backward(dp, cache):
    """dp: (..., N) -> dz (..., N)."""
    p = cache
    return p * (dp - (dp * p).sum(axis=-1, keepdims=True))
