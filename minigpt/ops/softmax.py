"""Softmax over the last axis, and its backward.

Forward, numerically stable (subtracting the row max changes nothing
mathematically but keeps exp() from overflowing):
    p_j = exp(z_j - max(z)) / sum_k exp(z_k - max(z))

Backward. The Jacobian is dp_j/dz_i = p_j (delta_ij - p_i), so for an upstream
gradient dp,
    dz_i = sum_j dp_j p_j (delta_ij - p_i) = p_i (dp_i - sum_j dp_j p_j)
i.e. dz = p * (dp - sum(dp * p, axis=-1, keepdims=True)).
Cached (SoftmaxCache): p (the output) only.
Entries with z = -inf (masked) get p = 0 and therefore dz = 0.

The row sums are matrix-vector products (row_sum, see rows.py: faster than
.sum(axis=-1) on the attention's short rows). The row max has no such form.
"""
from dataclasses import dataclass

import numpy as np

from .rows import row_sum


@dataclass(slots=True)
class SoftmaxCache:
    """What softmax_backward needs from the forward: the output alone."""
    p: np.ndarray           # (..., N) the probabilities, rows summing to 1


def softmax_forward(z):
    """z: (..., N) -> p (..., N) with rows summing to 1, cache."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    p = e / row_sum(e)
    return p, SoftmaxCache(p)


def softmax_backward(dp, cache):
    """dp: (..., N) -> dz (..., N)."""
    p = cache.p
    return p * (dp - row_sum(dp * p))
