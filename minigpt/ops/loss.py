"""Softmax cross-entropy, fused: the mean negative log-likelihood of the targets.

Forward, over N = B*T positions with logits z (N, V) and target ids y (N,):
    log p_{n,v} = z_{n,v} - logsumexp(z_n)
    loss = -(1/N) sum_n log p_{n, y_n}
logsumexp is computed as m + log(sum exp(z - m)) with m the row max, so logits of
+-1e4 give finite values (a naive exp(1e4) would overflow to inf).

Backward. Fusing softmax with the log-likelihood makes the gradient simple:
    dloss/dz_{n,v} = (p_{n,v} - [v == y_n]) / N
(the softmax Jacobian and the 1/p of the log cancel). The 1/N starts here, as in
llm.c: every later gradient is already averaged over positions.
Cached: the probabilities p and the targets.
"""
import numpy as np


def cross_entropy_forward(logits, targets):
    """logits: (B, T, V), targets: (B, T) int -> loss (scalar float), cache."""
    V = logits.shape[-1]
    z = logits.reshape(-1, V)                                  # (N, V)
    y = targets.reshape(-1)                                    # (N,)
    m = z.max(axis=-1, keepdims=True)                          # (N, 1)
    e = np.exp(z - m)                                          # (N, V), <= 1
    s = e.sum(axis=-1, keepdims=True)                          # (N, 1)
    logp_y = z[np.arange(len(y)), y] - m[:, 0] - np.log(s[:, 0])   # (N,)
    loss = -logp_y.mean()
    probs = e / s                                              # (N, V)
    return float(loss), (probs, y, logits.shape)


def cross_entropy_backward(dloss, cache):
    """dloss: scalar upstream gradient (1.0 for the loss itself) -> dlogits (B, T, V)."""
    probs, y, shape = cache
    N = len(y)
    dz = probs.copy()
    dz[np.arange(N), y] -= 1.0                                 # p - onehot(y)
    dz *= dloss / N
    return dz.reshape(shape)
