"""A tape: where one traced pass writes down every intermediate it computes, by name.

The model's forward and backward, and the block's and attention's, take `tape=None`.
Training and generation pass nothing and nothing is recorded. minigpt.reference.trace
passes a Tape, and each step of the pass then keeps a copy of what it computed under
one name of the trace scheme (the list, with a formula for each, is
minigpt.reference.manifest):

    forward             tape.keep("ln_1", h)          -> "h.0.ln_1"       (B, T, C)
    backward            tape.keep_grad("ln_1", dh)    -> "grad.h.0.ln_1"  dloss/dh, (B, T, C)

A block is handed tape.under("h.0."), so inside it the names are local ("ln_1",
"attn.q") and the tape adds the block's prefix. Gradients are named "grad." + the
full name of what they are the gradient of.

Copies are kept, not the arrays themselves: the pass goes on to reuse some of its
buffers in place (the attention scores are masked in place, for one).

keep returns what the pass goes on with: x itself, or x + nudge[name] when the tape
was made with nudge={name: array}. Nudging one entry of an intermediate both ways
and watching the loss is how tests/test_reference.py checks every intermediate's
gradient by finite differences, not only the parameters'.
"""
import numpy as np


class Tape:
    """name -> array, in the order the pass computed them (a dict keeps that order)."""

    def __init__(self, prefix="", arrays=None, nudge=None):
        self.prefix = prefix
        self.arrays = {} if arrays is None else arrays   # shared by every under() view
        self.nudge = {} if nudge is None else nudge      # full name -> array added to it

    def keep(self, name, x):
        """Keep a copy of x under prefix + name; return x (+ the nudge for that name)."""
        name = self.prefix + name
        if name in self.nudge:
            x = x + self.nudge[name]
        self.arrays[name] = np.array(x, order="C", copy=True)    # (q is a transposed view)
        return x

    def keep_grad(self, name, dx):
        self.arrays["grad." + self.prefix + name] = np.array(dx, order="C", copy=True)

    def under(self, prefix):
        """The same tape, with `prefix` added to every name kept through it."""
        return Tape(self.prefix + prefix, self.arrays, self.nudge)


def keep(tape, name, x):
    """tape.keep(name, x), or x untouched when tape is None (training, generation)."""
    return x if tape is None else tape.keep(name, x)


def keep_grad(tape, name, dx):
    """tape.keep_grad(name, dx), or nothing when tape is None."""
    if tape is not None:
        tape.keep_grad(name, dx)


def under(tape, prefix):
    """tape.under(prefix), or None when tape is None."""
    return None if tape is None else tape.under(prefix)
