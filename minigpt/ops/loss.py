"""Softmax cross-entropy, fused: the mean negative log-likelihood of the targets.

Forward, over N = B*T positions with logits z (N, V) and target ids y (N,):
    log p_{n,v} = z_{n,v} - logsumexp(z_n)
    loss = (1/N) sum_n (logsumexp(z_n) - z_{n, y_n})
         = (1/N) sum_n ((m_n - z_{n, y_n}) + log1p(r_n))      (m, r: see Numerics)

Backward. Fusing softmax with the log-likelihood makes the gradient simple:
    dloss/dz_{n,v} = (p_{n,v} - [v == y_n]) / N
(the softmax Jacobian and the 1/p of the log cancel). The 1/N starts here, as in
llm.c: every later gradient is already averaged over positions.

Numerics, which matter once the model is confident:
- logsumexp(z) = m + log(sum_v exp(z_v - m)) with m = max(z): no exp() overflows,
  so logits of +-1e4 give finite values.
- The max term of that sum is exactly exp(0) = 1, so the sum is 1 + r where r is
  the sum over the other entries. When p_max -> 1, r is tiny and "1 + r" rounds
  r away; we keep r separately and use log1p(r), accurate to a rounding.
- For the same reason the target's gradient p_y - 1 is computed as
  -(sum of the other probabilities) instead of subtracting 1 from ~1.
Cached (CrossEntropyCache): the probabilities p and the targets.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class CrossEntropyCache:
    """What cross_entropy_backward needs from the forward."""
    probs: np.ndarray       # (N, V) softmax(logits), rows flattened, N = B*T
    targets: np.ndarray     # (N,) int, the target ids flattened
    shape: tuple            # (B, T, V) the logits' shape, for dlogits


def cross_entropy_forward(logits, targets):
    """logits: (B, T, V), targets: (B, T) int -> loss (scalar float), cache."""
    V = logits.shape[-1]
    z = logits.reshape(-1, V)                                  # (N, V)
    y = targets.reshape(-1)                                    # (N,)
    rows = np.arange(len(y))
    top = z.argmax(axis=-1)                                    # (N,)
    m = z[rows, top]                                           # (N,) row max
    e = np.exp(z - m[:, None])                                 # (N, V), e[top] == 1
    e[rows, top] = 0.0
    r = e.sum(axis=-1)                                         # (N,) sum of the others
    e[rows, top] = 1.0
    # logsumexp - z_y = (m - z_y) + log1p(r): the bracket is exactly 0 when the
    # target is the max, so a tiny loss is not rounded against a large m
    loss = np.mean((m - z[rows, y]) + np.log1p(r))
    probs = e / (1.0 + r)[:, None]                             # (N, V)
    return float(loss), CrossEntropyCache(probs, y, logits.shape)


def cross_entropy_backward(dloss, cache):
    """dloss: scalar upstream gradient (1.0 for the loss itself) -> dlogits (B, T, V)."""
    probs, y, shape = cache.probs, cache.targets, cache.shape
    N = len(y)
    rows = np.arange(N)
    dz = probs.copy()                                          # p - onehot(y), with
    dz[rows, y] = 0.0                                          # p_y - 1 = -sum_{v!=y} p_v
    dz[rows, y] = -dz.sum(axis=-1)
    dz *= dloss / N
    return dz.reshape(shape)
