"""GELU, the tanh approximation used by GPT-2 (Hendrycks & Gimpel 2016).

Forward, as the papers write it:
    u = sqrt(2/pi) * (x + 0.044715 x^3)
    y = 0.5 x (1 + tanh(u))

We compute it through the identity 0.5 (1 + tanh u) = sigmoid(2u), so
    y = x * s        with s = sigmoid(2u) = 1 / (1 + exp(-2u))
Same value, better digits: for very negative x, tanh(u) is -1 + (something tiny) and
"1 + tanh(u)" cancels to a handful of correct digits, while 1 / (1 + exp(-2u)) keeps
them all (a large exp, plus 1, inverted: each step exact to a rounding). For x below
about -10.1 (float32) or -21.2 (float64), exp(-2u) overflows to inf and
s = 1 / inf = 0, which is the right limit (the true s is below the smallest normal
number); we silence NumPy's overflow warning for that case only.

Backward, by the product rule on y = x s(u(x)):
    dy/dx = s                                  term 1: x's direct factor
          + x * 2 s (1 - s) * du/dx            term 2: through the sigmoid
    du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    dx = dy_upstream * dy/dx
1 - s loses digits where s ~ 1 (large x), but there term 2 is vanishingly small next
to term 1 = s, so dx keeps its precision. Cached (GeluCache): x and s (s costs an exp).

gelu_forward_plain is the paper's formula as written, tanh and x**3; the test
(tests/test_fast_paths.py) shows the two agree to their rounding wherever the tanh form
still has digits to compare. Speed notes: we write x * x * x, not x**3, because NumPy's
power ufunc with exponent 3 calls the general pow() per element (** 2 is
special-cased, ** 3 is not), many times slower (benchmarks/fast_forms.py). An earlier
version picked between two stable sigmoid branches with np.where, a branch per element
on random signs; the single formula above needs no branch.
"""
from dataclasses import dataclass

import numpy as np

GELU_SCALE = float(np.sqrt(2.0 / np.pi))   # a Python float keeps float32 arrays float32
GELU_CUBIC = 0.044715


@dataclass(slots=True)
class GeluCache:
    """What gelu_backward needs from the forward."""
    x: np.ndarray           # (any shape) the input
    s: np.ndarray           # (same shape) sigmoid(2u) = 0.5 (1 + tanh u), so y = x * s


def gelu_forward(x):
    """x: any shape -> y same shape, cache."""
    two_u = 2.0 * GELU_SCALE * (x + GELU_CUBIC * (x * x * x))   # x * x * x: see notes
    with np.errstate(over="ignore"):             # exp -> inf gives s = 0, the limit
        s = 1.0 / (1.0 + np.exp(-two_u))         # sigmoid(2u)
    y = x * s
    return y, GeluCache(x, s)


def gelu_forward_plain(x):
    """x: any shape -> y same shape, cache. The formula as written, y = 0.5 x (1 + tanh u);
    gelu_forward computes the same faster (and keeps more digits for very negative x),
    see benchmarks/fast_forms.py. Its cache works with gelu_backward."""
    u = GELU_SCALE * (x + GELU_CUBIC * x**3)
    t = np.tanh(u)
    y = 0.5 * x * (1.0 + t)
    return y, GeluCache(x, 0.5 * (1.0 + t))       # s = 0.5 (1 + tanh u) = sigmoid(2u)


def gelu_backward(dy, cache):
    """dy: same shape as x -> dx."""
    x, s = cache.x, cache.s
    du_dx = GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * (x * x))
    return dy * (s + x * 2.0 * (s * (1.0 - s)) * du_dx)   # term 1 + term 2
