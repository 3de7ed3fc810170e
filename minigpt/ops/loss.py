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

Label smoothing (Szegedy et al. 2016; Vaswani et al. 2017, section 5.4, with 0.1),
for training only. The target is no longer the one-hot e_y but a mixture with the
uniform distribution over the V ids:
    q_n = (1 - eps) e_{y_n} + eps / V
    loss = (1/N) sum_n sum_v q_{n,v} (-log p_{n,v})
         = (1/N) sum_n [(1 - eps)(logsumexp(z_n) - z_{n, y_n})
                        + eps (logsumexp(z_n) - mean_v z_{n,v})]
and the gradient is the same shape of formula, p minus the target distribution:
    dloss/dz_{n,v} = (p_{n,v} - q_{n,v}) / N = ((p_{n,v} - [v == y_n]) + eps([v == y_n] - 1/V)) / N
(each -log p_v contributes p - e_v, and their mean over v is p - 1/V). Every id now
has a target of at least eps / V, so the model no longer gains by pushing the
probability of an id it never sees towards 0: the loss is lowest with it near
eps / V (about 7.5e-5, or 9.5 nats, for eps = 0.1 and V = 1,340). That matters for a small
corpus with a large vocabulary, where the validation text holds characters that
training saw once or never. eps = 0 is the plain loss, bit for bit. The loss it
returns is the smoothed one, the quantity the gradient descends; losses reported for
comparison (minigpt.evaluate) use eps = 0.
Cached (CrossEntropyCache): the probabilities p, the targets and eps.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class CrossEntropyCache:
    """What cross_entropy_backward needs from the forward."""
    probs: np.ndarray       # (N, V) softmax(logits), rows flattened, N = B*T
    targets: np.ndarray     # (N,) int, the target ids flattened
    shape: tuple            # (B, T, V) the logits' shape, for dlogits
    smoothing: float        # eps, 0.0 for the plain loss


def cross_entropy_forward(logits, targets, smoothing=0.0):
    """logits: (B, T, V), targets: (B, T) int -> loss (scalar float), cache.
    smoothing: eps of label smoothing, in [0, 1); 0.0 is the plain loss."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"label smoothing must be in [0, 1), got {smoothing!r}")
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
    nll = (m - z[rows, y]) + np.log1p(r)                       # (N,) -log p_y
    if smoothing:                    # (1 - eps)(-log p_y) + eps * mean_v(-log p_v)
        nll = (1.0 - smoothing) * nll + smoothing * ((m - z.mean(axis=-1)) + np.log1p(r))
    loss = np.mean(nll)
    probs = e / (1.0 + r)[:, None]                             # (N, V)
    return float(loss), CrossEntropyCache(probs, y, logits.shape, smoothing)


def cross_entropy_backward(dloss, cache):
    """dloss: scalar upstream gradient (1.0 for the loss itself) -> dlogits (B, T, V)."""
    probs, y, shape = cache.probs, cache.targets, cache.shape
    N = len(y)
    rows = np.arange(N)
    dz = probs.copy()                                          # p - onehot(y), with
    dz[rows, y] = 0.0                                          # p_y - 1 = -sum_{v!=y} p_v
    dz[rows, y] = -dz.sum(axis=-1)
    eps = cache.smoothing
    if eps:                                                    # + eps (e_y - 1/V)
        dz -= eps / shape[-1]
        dz[rows, y] += eps
    dz *= dloss / N
    return dz.reshape(shape)
