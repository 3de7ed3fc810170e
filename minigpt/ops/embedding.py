"""Token embedding: look up one row of a table per token.

Forward (a gather):
    out[b, t, :] = wte[idx[b, t], :]

Backward (a scatter-add). Each output row is a copy of one table row, so the
gradient of that table row is the sum of the upstream gradients of every
position that looked it up:
    dwte[v, :] = sum over (b, t) with idx[b, t] == v of dout[b, t, :]
A token that appears twice contributes twice: plain fancy-index assignment
(`dwte[idx] += dout`) would silently keep only one of the repeats, which is why
we need a real scatter-add.

We compute that scatter-add by grouping: sort the N = B*T positions by their id,
so the positions of each id sit next to each other, then add up each run of rows
with one np.add.reduceat and write the sums to their table rows:
    order   = argsort(ids)                       positions, grouped by id
    starts  = where the sorted id changes        first position of each group
    dwte[id of group g] = sum of dout[order][starts[g] : starts[g + 1]]
Ids that never occur keep a zero gradient. This touches each of the N x C numbers
of dout once. np.add.at is the obvious scatter-add (embedding_backward_plain) but
does one row at a time in a slow loop. The one-hot product, dwte = onehot^T @ dout
with onehot (N, V), sums the repeats inside BLAS but costs N x V x C multiply-adds,
mostly by zero: fine for 65 characters (there it is about as fast), several
times slower than grouping for the chat corpus's 1,340 tokens. Timings:
benchmarks/fast_forms.py.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class EmbeddingCache:
    """What embedding_backward needs from the forward: the ids, not the table."""
    idx: np.ndarray         # (B, T) int, the token ids looked up
    V: int                  # rows of the table (vocabulary size), for dwte's shape
    C: int                  # columns of the table (channels)


def embedding_forward(idx, wte):
    """idx: (B, T) int token ids; wte: (V, C) table -> out (B, T, C), cache."""
    out = wte[idx]                       # (B, T, C)
    return out, EmbeddingCache(idx, *wte.shape)   # the ids are all backward needs


def embedding_backward(dout, cache):
    """dout: (B, T, C) -> dwte: (V, C)."""
    idx, V, C = cache.idx, cache.V, cache.C
    ids, dout = idx.reshape(-1), dout.reshape(-1, C)              # (N,), (N, C)
    order = np.argsort(ids, kind="stable")                        # group equal ids
    ids_sorted = ids[order]                                       # (N,)
    starts = np.flatnonzero(np.diff(ids_sorted, prepend=-1))      # (G,) first of each group
    dwte = np.zeros((V, C), dtype=dout.dtype)
    if starts.size:                                               # (no ids: all zero)
        dwte[ids_sorted[starts]] = np.add.reduceat(dout[order], starts, axis=0)  # (G, C)
    return dwte


def embedding_backward_plain(dout, cache):
    """dout: (B, T, C) -> dwte: (V, C). The formula as written, one scatter-add;
    embedding_backward computes the same faster, see benchmarks/fast_forms.py."""
    idx, V, C = cache.idx, cache.V, cache.C
    dwte = np.zeros((V, C), dtype=dout.dtype)
    np.add.at(dwte, idx.reshape(-1), dout.reshape(-1, C))        # dwte[idx[n]] += dout[n]
    return dwte
