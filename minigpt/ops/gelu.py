"""GELU, the tanh approximation used by GPT-2 (Hendrycks & Gimpel 2016).

Forward:
    u = sqrt(2/pi) * (x + 0.044715 x^3)
    y = 0.5 x (1 + tanh(u))

Backward, by the product rule on y = 0.5 x (1 + tanh u):
    dy/dx = 0.5 (1 + tanh u)                      term 1: d(0.5 x)/dx times (1 + tanh u)
          + 0.5 x (1 - tanh^2 u) du/dx            term 2: 0.5 x times d(tanh u)/dx
    du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    dx = dy_upstream * dy/dx
Cached: x and tanh(u) (recomputing tanh would cost as much as the forward).
"""
import numpy as np

GELU_SCALE = np.sqrt(2.0 / np.pi)
GELU_CUBIC = 0.044715


def gelu_forward(x):
    """x: any shape -> y same shape, cache."""
    tanh_u = np.tanh(GELU_SCALE * (x + GELU_CUBIC * x**3))
    y = 0.5 * x * (1.0 + tanh_u)
    return y, (x, tanh_u)


def gelu_backward(dy, cache):
    """dy: same shape as x -> dx."""
    x, tanh_u = cache
    du_dx = GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * x**2)
    term1 = 0.5 * (1.0 + tanh_u)
    term2 = 0.5 * x * (1.0 - tanh_u**2) * du_dx
    return dy * (term1 + term2)
