"""Layer normalisation (Ba et al. 2016) over the channel axis.

Forward, for each row x of C numbers:
    mu    = mean(x)                          # one number per row: (..., 1) in the code
    var   = mean((x - mu)^2)                 # biased, as in PyTorch
    rstd  = 1 / sqrt(var + eps)              # eps keeps a constant row finite
    xhat  = (x - mu) * rstd                  # mean 0, variance ~1
    y     = xhat * w + b

Backward. The parameter gradients sum over rows:
    dw = sum_rows dy * xhat          db = sum_rows dy
For dx, let g = dy * w (the gradient reaching xhat). xhat_j depends on every x_i
through mu and rstd, so
    dxhat_j/dx_i = rstd * (delta_ij - 1/C - xhat_i xhat_j / C)
and summing over j gives, per row,
    dx = rstd * ( g                      term 1: the direct path x_i -> xhat_i
                - mean(g)                term 2: through the mean mu
                - xhat * mean(g * xhat)) term 3: through the variance (rstd)
Cached (LayerNormCache): xhat and rstd (cheap to keep; recomputing them would need
x, mu, var), and w (for g = dy * w).

The means over a row are taken by row_mean, a matrix-vector product (see rows.py:
faster than x.mean(axis=-1) on short rows).
"""
from dataclasses import dataclass

import numpy as np

from .rows import row_mean

LN_EPS = 1e-5


@dataclass(slots=True)
class LayerNormCache:
    """What layernorm_backward needs from the forward."""
    xhat: np.ndarray        # (..., C) the normalised input (x - mu) * rstd
    rstd: np.ndarray        # (..., 1) 1 / sqrt(var + eps), one per row
    w: np.ndarray           # (C,) the gain, for g = dy * w
    has_bias: bool          # whether the forward added b, so whether to return db


def layernorm_forward(x, w, b=None, eps=LN_EPS):
    """x: (..., C), w: (C,), b: (C,) or None -> y (..., C), cache."""
    mu = row_mean(x)                                          # (..., 1)
    xc = x - mu                                               # (..., C)
    var = row_mean(xc * xc)                                   # (..., 1)
    rstd = 1.0 / np.sqrt(var + eps)                           # (..., 1)
    xhat = xc * rstd                                          # (..., C)
    y = xhat * w
    if b is not None:
        y += b
    return y, LayerNormCache(xhat, rstd, w, b is not None)


def layernorm_backward(dy, cache):
    """dy: (..., C) -> (dx (..., C), dw (C,), db (C,) or None)."""
    xhat, rstd, w, has_bias = cache.xhat, cache.rstd, cache.w, cache.has_bias
    C = w.shape[0]
    dw = (dy * xhat).reshape(-1, C).sum(axis=0)               # (C,)
    db = dy.reshape(-1, C).sum(axis=0) if has_bias else None  # (C,)
    g = dy * w                                                # dL/dxhat, (..., C)
    term2 = row_mean(g)                                       # through mu
    term3 = xhat * row_mean(g * xhat)                         # through rstd
    dx = rstd * (g - term2 - term3)
    return dx, dw, db
