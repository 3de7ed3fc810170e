"""Scaled dot-product attention with a causal mask, and multi-head plumbing.

Forward (the formula of our text):
    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V
for every head at once, with q (B, nh, Tq, hs), k and v (B, nh, Tk, hs):
    s   = q @ k^T * scale          scale = 1/sqrt(hs)        (B, nh, Tq, Tk)
    s   = s + bias: -inf where query i would look at a later key, else 0  (mask_future)
    att = softmax(s)                                          (B, nh, Tq, Tk)
    y   = dropout(att) @ v                                    (B, nh, Tq, hs)
Why sqrt(d_k), d_k = hs: for random q, k with independent, zero-mean, unit-variance
entries, q.k has variance d_k; dividing by sqrt(d_k) keeps the scores O(1) so the
softmax does not saturate.

Causal mask. In training Tq == Tk and query i sees keys 0..i. With a KV cache the
Tq new queries are the *last* Tq positions of the Tk keys, so query i sits at
absolute position Tk - Tq + i and sees keys 0..Tk - Tq + i. One rule covers both.

Backward, reading the forward bottom-up:
    y = a @ v          ->  da = dy @ v^T                     dv = a^T @ dy
    a = dropout(att)   ->  datt = da * mask
    att = softmax(s)   ->  ds = att * (datt - sum(datt * att, -1, keepdims))   (softmax.py)
    s = q @ k^T*scale  ->  dq = ds @ k * scale               dk = ds^T @ q * scale
The code multiplies ds by scale once, so its `ds` is ds * scale and dq = ds @ k.
Masked scores have att = 0, so their ds is 0: no gradient leaks to the future.
Cached (AttentionCache): q, k, v; att, the softmax weights (for the softmax's backward,
and for plotting attention maps); att_dropped = a (for dv); scale; the dropout mask.
"""
import functools
import math
from dataclasses import dataclass

import numpy as np

from .dropout import DropoutCache, dropout_backward, dropout_forward
from .softmax import SoftmaxCache, softmax_backward, softmax_forward
from ..tape import keep, keep_grad


@dataclass(slots=True)
class AttentionCache:
    """What attention_backward needs from the forward; att is also there to be looked at."""
    q: np.ndarray                   # (B, nh, Tq, hs) queries, for dk
    k: np.ndarray                   # (B, nh, Tk, hs) keys, for dq
    v: np.ndarray                   # (B, nh, Tk, hs) values, for da
    att: np.ndarray                 # (B, nh, Tq, Tk) softmax weights, before dropout
    att_dropped: np.ndarray         # (B, nh, Tq, Tk) dropout(att), what multiplies v
    scale: float                    # 1/sqrt(hs)
    softmax_cache: SoftmaxCache     # the softmax's own cache (its p is att)
    dropout_cache: DropoutCache     # the dropout mask on att


def causal_mask(Tq, Tk):
    """(Tq, Tk) bool, True where query i must NOT see key j (j > Tk - Tq + i)."""
    return np.triu(np.ones((Tq, Tk), dtype=bool), k=Tk - Tq + 1)


@functools.lru_cache(maxsize=256)
def causal_bias(Tq, Tk, dtype):
    """(Tq, Tk): -inf where causal_mask is True, 0 elsewhere. Read-only.

    It depends on the shapes only, so it is built once per shape and remembered
    (lru_cache): every layer of every training step asks for the same one.
    """
    bias = np.where(causal_mask(Tq, Tk), -np.inf, 0.0).astype(dtype)
    bias.flags.writeable = False            # shared between calls: nobody may change it
    return bias


def mask_future(s):
    """s: (..., Tq, Tk) scores -> the same array, -inf where causal_mask is True (in place).

    Adding the bias masks the scores (s + -inf = -inf, s + 0 = s exactly) in one
    pass that broadcasts over (B, nh), which is faster than choosing per entry
    between s and -inf (np.where, mask_future_plain) or assigning through the
    boolean mask (s[..., mask] = -inf).
    """
    s += causal_bias(*s.shape[-2:], s.dtype)
    return s


def mask_future_plain(s):
    """s: (..., Tq, Tk) -> a new array, -inf where causal_mask is True, else s.
    The formula as written; mask_future computes the same faster, see
    benchmarks/fast_forms.py."""
    return np.where(causal_mask(*s.shape[-2:]), -np.inf, s)


def attention_forward(q, k, v, dropout=0.0, rng=None, tape=None):
    """q: (B, nh, Tq, hs), k, v: (B, nh, Tk, hs) -> y (B, nh, Tq, hs), cache.
    tape (minigpt.tape, for a trace): keeps "scores" (masked, -inf above the
    diagonal) and "att"."""
    Tq, hs = q.shape[-2:]
    scale = 1.0 / math.sqrt(hs)             # Python float: keeps the dtype of q
    s = (q @ k.swapaxes(-1, -2)) * scale                        # (B, nh, Tq, Tk)
    if Tq > 1:         # one query (a cached generation step) is the newest position:
        s = mask_future(s)                      # it may see every key; else no peeking
    s = keep(tape, "scores", s)
    att, softmax_cache = softmax_forward(s)                     # (B, nh, Tq, Tk)
    att = keep(tape, "att", att)
    a, dropout_cache = dropout_forward(att, dropout, rng)
    y = a @ v                                                   # (B, nh, Tq, hs)
    return y, AttentionCache(q, k, v, att, a, scale, softmax_cache, dropout_cache)


def attention_backward(dy, cache, tape=None):
    """dy: (B, nh, Tq, hs) -> (dq, dk, dv) shaped like q, k, v.
    tape: keeps the gradients of "att" and "scores" (dloss/ds, before the scale)."""
    q, k, v, a, scale = cache.q, cache.k, cache.v, cache.att_dropped, cache.scale
    dv = a.swapaxes(-1, -2) @ dy                                # (B, nh, Tk, hs)
    da = dy @ v.swapaxes(-1, -2)                                # (B, nh, Tq, Tk)
    datt = dropout_backward(da, cache.dropout_cache)
    keep_grad(tape, "att", datt)
    ds = softmax_backward(datt, cache.softmax_cache)            # (B, nh, Tq, Tk)
    keep_grad(tape, "scores", ds)
    ds = ds * scale
    dq = ds @ k                                                 # (B, nh, Tq, hs)
    dk = ds.swapaxes(-1, -2) @ q                                # (B, nh, Tk, hs)
    return dq, dk, dv


def split_qkv(qkv):
    """(..., 3C) -> q, k, v, each (..., C): the fused projection's three thirds.

    Slices are views, so nothing is copied (np.split gives the same views with more
    bookkeeping per call, which adds up when generation calls it per layer per token).
    """
    C = qkv.shape[-1] // 3
    return qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]


def split_heads(x, n_head):
    """(B, T, C) -> (B, nh, T, hs): each head gets its own hs = C/nh channels."""
    B, T, C = x.shape
    return x.reshape(B, T, n_head, C // n_head).transpose(0, 2, 1, 3)


def merge_heads(x):
    """(B, nh, T, hs) -> (B, T, C): the inverse of split_heads (heads side by side)."""
    B, nh, T, hs = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, nh * hs)
