"""Inverted dropout.

Forward, in training, with drop probability p:
    mask = (uniform(shape) >= p) / (1 - p)        # 0 or 1/(1-p)
    y = x * mask
Dividing by (1 - p) keeps E[y] = x, so nothing changes at inference time (p = 0
there: y = x). Backward: y is x times a constant mask, so dx = dy * mask.
Cached (DropoutCache): the mask. Drawing it from a generator the caller passes makes a
training step reproducible, and lets a gradient check run the same masks twice.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class DropoutCache:
    """What dropout_backward needs from the forward."""
    mask: np.ndarray | None  # (shape of x) 0 or 1/(1-p); None when nothing was dropped


NO_DROPOUT = DropoutCache(mask=None)    # the identity's cache, shared: it holds nothing


def dropout_forward(x, p, rng):
    """x: any shape, p in [0, 1), rng: np.random.Generator -> y, cache.

    p == 0 or rng None (evaluation): y = x, nothing dropped.
    """
    if p == 0.0 or rng is None:
        return x, NO_DROPOUT                         # identity: nothing to cache
    mask = (rng.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1.0 - p)
    return x * mask, DropoutCache(mask)


def dropout_backward(dy, cache):
    """dy: same shape as x -> dx."""
    mask = cache.mask
    return dy if mask is None else dy * mask
