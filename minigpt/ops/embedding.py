"""Token embedding: look up one row of a table per token.

Forward (a gather):
    out[b, t, :] = wte[idx[b, t], :]

Backward (a scatter-add). Each output row is a copy of one table row, so the
gradient of that table row is the sum of the upstream gradients of every
position that looked it up:
    dwte[v, :] = sum over (b, t) with idx[b, t] == v of dout[b, t, :]
A token that appears twice contributes twice: plain fancy-index assignment
(`dwte[idx] += dout`) would silently keep only one of the repeats, which is why
we accumulate with an explicit scatter-add.
"""
import numpy as np


def embedding_forward(idx, wte):
    """idx: (B, T) int token ids; wte: (V, C) table -> out (B, T, C), cache."""
    out = wte[idx]                       # (B, T, C)
    cache = (idx, wte.shape)             # the ids are all backward needs
    return out, cache


def embedding_backward(dout, cache):
    """dout: (B, T, C) -> dwte: (V, C)."""
    idx, (V, C) = cache
    dwte = np.zeros((V, C), dtype=dout.dtype)
    # scatter-add: np.add.at accumulates repeated indices (unlike dwte[idx] += ...)
    np.add.at(dwte, idx.reshape(-1), dout.reshape(-1, C))
    return dwte
