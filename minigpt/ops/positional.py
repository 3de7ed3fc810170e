"""Positional encodings: tell the model where each token stands.

Attention by itself is blind to order: without a mask, permuting the tokens only
permutes its output, and the causal mask tells a token which tokens came before it
but not in what order. So GPT adds a position-dependent vector to each token
embedding:
    x[b, t, :] = wte[idx[b, t], :] + pe[t, :]

Two choices for the table pe (T, C):

1. Sinusoidal (Vaswani et al. 2017; the formulas of our text), fixed, no parameters:
       PE(pos, 2i)   = sin(pos / 10000^(2i / d_model))
       PE(pos, 2i+1) = cos(pos / 10000^(2i / d_model))
   Each pair of channels (2i, 2i+1) is a point on a circle turning at its own
   frequency, so PE(pos + k) is a fixed rotation of PE(pos): relative positions are
   linear maps of the encoding. (For an odd d_model the last channel is a sine
   without its cosine, so that one channel is not rotated.)

2. Learned: a (block_size, C) parameter wpe, trained like any other weight.
   Forward: pe = wpe[start : start + T] (start = 0 in training; generation with a
   KV cache runs positions after those already cached). Backward: the same pe row is
   added to every sequence in the batch, so dwpe[t] = sum over b of dout[b, t]; rows
   outside the T positions get no gradient.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class LearnedPositionCache:
    """What learned_positional_backward needs from the forward."""
    start: int              # the first position looked up
    T: int                  # how many positions, start .. start + T - 1
    shape: tuple            # (block_size, C) the table's shape, for dwpe


def sinusoidal_table(T, d_model, dtype=np.float64):
    """The fixed table PE of shape (T, d_model), exactly the formulas above."""
    pos = np.arange(T, dtype=np.float64)[:, None]              # (T, 1)
    two_i = np.arange(0, d_model, 2, dtype=np.float64)[None]   # (1, ceil(d_model/2)) = 2i
    angle = pos / np.power(10000.0, two_i / d_model)           # (T, ceil(d_model/2))
    pe = np.empty((T, d_model), dtype=np.float64)
    pe[:, 0::2] = np.sin(angle)                                # even channels 2i
    pe[:, 1::2] = np.cos(angle[:, : d_model // 2])             # odd channels 2i+1
    return pe.astype(dtype)


def learned_positional_forward(T, wpe, start=0):
    """wpe: (block_size, C) -> pe (T, C) for positions start .. start + T - 1, cache.
    Broadcast over the batch by the caller."""
    if start + T > wpe.shape[0]:
        raise ValueError(f"positions {start} .. {start + T - 1} exceed the {wpe.shape[0]} "
                         f"learned positions")
    return wpe[start:start + T], LearnedPositionCache(start, T, wpe.shape)


def learned_positional_backward(dout, cache):
    """dout: (B, T, C) -> dwpe: (block_size, C); rows outside the T positions stay zero."""
    start, T, shape = cache.start, cache.T, cache.shape
    dwpe = np.zeros(shape, dtype=dout.dtype)
    dwpe[start:start + T] = dout.sum(axis=0)                   # sum over the batch
    return dwpe
