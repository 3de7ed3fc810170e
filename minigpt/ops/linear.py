"""Linear (fully connected) layer.

Forward, for x of shape (..., Cin), w (Cin, Cout), b (Cout,) or None:
    y = x @ w + b                                   # (..., Cout)

Backward. Write the forward for one row: y_j = sum_i x_i w_ij + b_j. Then
    dL/dx_i  = sum_j dy_j w_ij      ->  dx = dy @ w.T         (..., Cin)
    dL/dw_ij = sum_rows x_i dy_j    ->  dw = X.T @ dY         (Cin, Cout), rows flattened
    dL/db_j  = sum_rows dy_j        ->  db = dY.sum(0)        (Cout,)
Cached (LinearCache): the input x (needed for dw) and w (needed for dx).

We store w as (in, out) so the forward reads like the math (x @ w). PyTorch's
nn.Linear stores the transpose, (out, in); minigpt.interop converts.

Speed: both passes flatten the leading axes first, so BLAS multiplies one tall
(N, Cin) matrix, N = B*T. For a 3-D x, x @ w would instead loop over the B slices
of (T, Cin), one BLAS call each, which is slower. linear_forward_plain and
linear_backward_plain are the formulas as written, without the flattening; the two
pairs agree to rounding (tests/test_fast_paths.py; timings in benchmarks/fast_forms.py).
"""
from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class LinearCache:
    """What linear_backward needs from the forward."""
    x: np.ndarray           # (..., Cin) the input, for dw
    w: np.ndarray           # (Cin, Cout) the weight, for dx
    has_bias: bool          # whether the forward added b, so whether to return db


def linear_forward(x, w, b=None):
    """x: (..., Cin), w: (Cin, Cout), b: (Cout,) or None -> y (..., Cout), cache."""
    X = x.reshape(-1, x.shape[-1])                          # (N, Cin): one tall matrix
    y = (X @ w).reshape(*x.shape[:-1], w.shape[1])          # (..., Cout)
    if b is not None:
        y += b
    return y, LinearCache(x, w, b is not None)


def linear_backward(dy, cache):
    """dy: (..., Cout) -> (dx (..., Cin), dw (Cin, Cout), db (Cout,) or None)."""
    x, w, has_bias = cache.x, cache.w, cache.has_bias
    Cin, Cout = w.shape
    X, dY = x.reshape(-1, Cin), dy.reshape(-1, Cout)               # (N, Cin), (N, Cout)
    dx = (dY @ w.T).reshape(x.shape)                               # (..., Cin)
    dw = X.T @ dY                                                  # (Cin, Cout)
    db = dY.sum(axis=0) if has_bias else None                      # (Cout,)
    return dx, dw, db


def linear_forward_plain(x, w, b=None):
    """x: (..., Cin), w: (Cin, Cout), b: (Cout,) or None -> y (..., Cout), cache.
    The formula as written, y = x @ w + b; linear_forward computes the same faster,
    see benchmarks/fast_forms.py."""
    y = x @ w                                                # (..., Cout)
    if b is not None:
        y = y + b
    return y, LinearCache(x, w, b is not None)


def linear_backward_plain(dy, cache):
    """dy: (..., Cout) -> (dx (..., Cin), dw (Cin, Cout), db (Cout,) or None).
    The formulas as written: dx = dy @ w^T on the leading axes as they are (dw and db
    sum over rows, so they need the rows in one axis anyway); linear_backward
    computes the same faster, see benchmarks/fast_forms.py."""
    x, w, has_bias = cache.x, cache.w, cache.has_bias
    Cin, Cout = w.shape
    X, dY = x.reshape(-1, Cin), dy.reshape(-1, Cout)        # (N, Cin), (N, Cout)
    dx = dy @ w.T                                            # (..., Cin)
    dw = X.T @ dY                                            # (Cin, Cout)
    db = dY.sum(axis=0) if has_bias else None                # (Cout,)
    return dx, dw, db
