"""GELU, the tanh approximation used by GPT-2 (Hendrycks & Gimpel 2016).

Forward, as the papers write it:
    u = sqrt(2/pi) * (x + 0.044715 x^3)
    y = 0.5 x (1 + tanh(u))

We compute it through the identity 0.5 (1 + tanh u) = sigmoid(2u), so
    y = x * s        with s = sigmoid(2u) = 1 / (1 + exp(-2u))
Same value, better digits: for very negative x, tanh(u) is -1 + (something tiny) and
"1 + tanh(u)" cancels to a handful of correct digits, while sigmoid(2u) keeps them
all. The sigmoid itself is evaluated stably with e = exp(-|2u|) <= 1 (no overflow):
    p = 1 / (1 + e),  q = e / (1 + e) = e p,   s = p if u >= 0 else q,
and then s (1 - s) = p q whatever the sign of u, with no cancellation either.

Backward, by the product rule on y = x s(u(x)):
    dy/dx = s                                  term 1: x's direct factor
          + x * 2 s (1 - s) * du/dx            term 2: through the sigmoid
    du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    dx = dy_upstream * dy/dx
Cached: x, s and s (1 - s) (they cost an exp to recompute).
"""
import numpy as np

GELU_SCALE = float(np.sqrt(2.0 / np.pi))   # a Python float keeps float32 arrays float32
GELU_CUBIC = 0.044715


def gelu_forward(x):
    """x: any shape -> y same shape, cache."""
    two_u = 2.0 * GELU_SCALE * (x + GELU_CUBIC * x**3)
    e = np.exp(-np.abs(two_u))                  # in (0, 1]: never overflows
    p = 1.0 / (1.0 + e)
    q = e * p
    s = np.where(two_u >= 0, p, q)              # sigmoid(2u), stable both ways
    y = x * s
    return y, (x, s, p * q)


def gelu_backward(dy, cache):
    """dy: same shape as x -> dx."""
    x, s, s_one_minus_s = cache
    du_dx = GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * x**2)
    return dy * (s + x * 2.0 * s_one_minus_s * du_dx)   # term 1 + term 2
