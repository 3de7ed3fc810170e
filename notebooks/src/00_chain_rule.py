# %% [markdown]
# # 0 · The chain rule, forward and backward, and gradcheck
#
# Step 5 of the training procedure in our text is *backpropagation* (反向传播): from the
# loss, compute the gradient (梯度) of every parameter. `minigpt` has no automatic
# differentiation. Every gradient in it is derived by hand and then checked by a
# computer. This notebook covers the three tools the other notebooks rely on:
#
# 1. the chain rule (链式法则) on a graph of four small computations, with numbers;
# 2. the same idea on arrays, and the one convention all of `minigpt` follows:
#    `op_forward(...) -> (out, cache)` and `op_backward(dout, cache) -> grads`;
# 3. `minigpt.gradcheck`, which tests a backward pass without any calculus;
#
# and then your first exercise: a backward pass that `gradcheck` marks.

# %%
import os
QUICK = os.environ.get("MINIGPT_QUICK", "0") == "1"   # 1: the short run the tests use (nothing here is slow)

import matplotlib.pyplot as plt
import numpy as np
%matplotlib inline

from minigpt.gradcheck import check, gradcheck   # check: a one-line PASS/FAIL
from minigpt.ops.gelu import gelu_backward, gelu_forward
from minigpt.ops.linear import linear_backward, linear_forward
from minigpt.language import tr      # tr(english, chinese): what this edition prints and draws
from minigpt.plots import use_cjk_font

np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)
use_cjk_font()                          # plots can draw Chinese (the font minigpt ships)


# %% [markdown]
# ## 1. The chain rule on a tiny graph
#
# Take two inputs, $a = 3$ and $b = -2$, and compute a loss in three steps, one
# operation per line:
#
# $$c = a\,b \qquad d = c + a \qquad L = d^2$$
#
# Each step has a *local derivative* (局部导数), which needs nothing but that step:
# $\partial c/\partial a = b$, $\partial c/\partial b = a$, $\partial d/\partial c = 1$,
# $\partial d/\partial a = 1$, $\partial L/\partial d = 2d$.
#
# The chain rule says how they combine:
# * along a path from an input to $L$, **multiply** the local derivatives;
# * where several paths leave the same input, **add** their contributions.
#
# $b$ reaches $L$ along one path, $b \to c \to d \to L$. $a$ reaches $L$ along two,
# $a \to c \to d \to L$ and $a \to d \to L$:
#
# $$\frac{\partial L}{\partial b} = \underbrace{2d}_{L \leftarrow d}\cdot
#   \underbrace{1}_{d \leftarrow c}\cdot\underbrace{a}_{c \leftarrow b}
# \qquad
# \frac{\partial L}{\partial a} = 2d \cdot 1 \cdot b \;+\; 2d \cdot 1 .$$
#
# Backpropagation computes these products from the end towards the start, so that
# the shared part ($2d$ here) is computed once. Going backwards, each node receives
# $\partial L/\partial(\text{node})$ from its consumer, multiplies by its local
# derivatives and hands the result to its own inputs, which **accumulate** (`+=`) what
# they receive.

# %%
a, b = 3.0, -2.0
# forward, one operation per line
c = a * b            # -6
d = c + a            # -3
L = d ** 2           #  9

# backward, the same lines in reverse; every gradient starts at 0 and accumulates
da = db = dc = 0.0
dd = 2 * d           # L = d^2      ->  dL/dd = 2d                  = -6
dc += dd * 1         # d = c + a    ->  dL/dc gets dL/dd * 1
da += dd * 1         #              ->  dL/da gets dL/dd * 1        (path a -> d)
da += dc * b         # c = a * b    ->  dL/da gets dL/dc * b        (path a -> c)
db += dc * a         #              ->  dL/db gets dL/dc * a
print(f"c = {c}, d = {d}, L = {L}")
print(f"dL/dd = {dd}, dL/dc = {dc}, dL/da = {da}, dL/db = {db}")

# %% [markdown]
# Check against algebra: $L = (ab + a)^2 = a^2(b+1)^2$, so $\partial L/\partial a =
# 2a(b+1)^2 = 6$ and $\partial L/\partial b = 2a^2(b+1) = -18$. And against no algebra
# at all: nudge an input by a tiny $h$ both ways and see how much $L$ moves.

# %%
def loss(a, b):
    return (a * b + a) ** 2


assert da == 2 * a * (b + 1) ** 2 and db == 2 * a ** 2 * (b + 1)
h = 1e-6
da_numeric = (loss(a + h, b) - loss(a - h, b)) / (2 * h)
db_numeric = (loss(a, b + h) - loss(a, b - h)) / (2 * h)
assert abs(da_numeric - da) < 1e-6 and abs(db_numeric - db) < 1e-6
print(f"nudging: dL/da ~ {da_numeric:.8f}, dL/db ~ {db_numeric:.8f}")

# %% [markdown]
# The whole graph in one picture: each box shows its forward value and, below it, the
# gradient of $L$ with respect to it ("grad"); each arrow carries the local derivative of its head with
# respect to its tail. Multiply along the arrows, add where they leave the same box.

# %%
nodes = {"a": (0.0, 1.6), "b": (0.0, 0.0), "c = a·b": (2.0, 0.4),
         "d = c + a": (4.0, 1.0), "L = d²": (6.6, 1.0)}
values = {"a": (a, da), "b": (b, db), "c = a·b": (c, dc), "d = c + a": (d, dd),
          "L = d²": (L, 1.0)}
edges = [("a", "c = a·b", f"∂c/∂a = b = {b:g}"), ("b", "c = a·b", f"∂c/∂b = a = {a:g}"),
         ("c = a·b", "d = c + a", "∂d/∂c = 1"), ("a", "d = c + a", "∂d/∂a = 1"),
         ("d = c + a", "L = d²", f"∂L/∂d = 2d = {2 * d:g}")]

fig, ax = plt.subplots(figsize=(10, 3.6))
for tail, head, label in edges:
    (x0, y0), (x1, y1) = nodes[tail], nodes[head]
    ax.annotate("", xy=(x1 - 0.55, y1), xytext=(x0 + 0.45, y0),
                arrowprops=dict(arrowstyle="->", color="gray", lw=1.5))
    ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.12, label, ha="center", va="center", fontsize=9,
            color="tab:blue", bbox=dict(fc="white", ec="none", pad=1))
for name, (x, y) in nodes.items():
    value, grad = values[name]
    ax.text(x, y, f"{name}\n= {value:g}\ngrad {grad:g}", ha="center", va="center",
            fontsize=10, bbox=dict(boxstyle="round", fc="lightyellow", ec="black"))
ax.set_xlim(-0.8, 7.4)
ax.set_ylim(-0.6, 2.2)
ax.axis("off")
ax.set_title("Forward values and backward gradients: a gets 6 = (−6)(1)(−2) + (−6)(1)")
plt.show()

# %% [markdown]
# ## 2. On arrays: `forward -> (out, cache)`, `backward(dout, cache) -> grads`
#
# In a GPT the nodes are arrays, not numbers, but nothing else changes. Every
# operation in `minigpt.ops` comes as a pair:
#
# * `op_forward(inputs) -> (out, cache)` computes `out` and keeps in `cache` what the
#   backward will need (often its inputs);
# * `op_backward(dout, cache) -> grads` is handed `dout` $= \partial L/\partial\,\text{out}$
#   (same shape as `out`) and returns $\partial L/\partial\,\text{input}$ for each input
#   (each the same shape as its input).
#
# An operation never needs to know what $L$ is: `dout` summarises everything after it.
# Element by element, the chain rule is the same sum over paths as in section 1:
#
# $$\frac{\partial L}{\partial x_i} = \sum_j \frac{\partial L}{\partial\,\text{out}_j}\,
# \frac{\partial\,\text{out}_j}{\partial x_i}.$$
#
# A real example is `minigpt.ops.linear`, $y = xW + b$ with $x$ of shape $(N, C_{in})$.
# Its backward is `dx = dy @ W.T`, `dW = x.T @ dy`, `db = dy.sum(axis=0)`. The last two
# are the "add where paths meet" of section 1: the same $W$ and $b$ are used by every
# one of the $N$ rows, so their gradients sum the rows' contributions.

# %%
N, Cin, Cout = 4, 3, 2
x = rng.standard_normal((N, Cin))
w = rng.standard_normal((Cin, Cout))
bias = rng.standard_normal(Cout)

y, cache = linear_forward(x, w, bias)          # cache keeps x (for dW) and W (for dx)
dy = rng.standard_normal(y.shape)              # dL/dy, handed down from "the layers above"
dx, dw, dbias = linear_backward(dy, cache)
for name, value, grad in [("x", x, dx), ("w", w, dw), ("b", bias, dbias)]:
    print(f"{name}: shape {value.shape}, gradient shape {grad.shape}")
assert dx.shape == x.shape and dw.shape == w.shape and dbias.shape == bias.shape
assert np.allclose(dbias, dy.sum(axis=0))      # b is shared by all N rows: their sum

# %% [markdown]
# A model is a chain of such pairs. The forward calls them in order and keeps every
# cache; the backward calls the backwards **in reverse order**, each one's input
# gradient becoming the next one's `dout`. Here is the MLP of a GPT block, linear → GELU
# → linear (notebook 4 builds the whole block):

# %%
w1, b1 = rng.standard_normal((Cin, 8)), rng.standard_normal(8)
w2, b2 = rng.standard_normal((8, Cout)), rng.standard_normal(Cout)


def mlp_forward(x, w1, b1, w2, b2):
    """x: (N, Cin) -> y (N, Cout), cache: the three caches, in forward order."""
    h, c1 = linear_forward(x, w1, b1)          # (N, 8)
    g, c2 = gelu_forward(h)                    # (N, 8)
    y, c3 = linear_forward(g, w2, b2)          # (N, Cout)
    return y, (c1, c2, c3)


def mlp_backward(dy, cache):
    """dy: (N, Cout) -> the gradients of x, w1, b1, w2, b2: unwind in reverse."""
    c1, c2, c3 = cache
    dg, dw2, db2 = linear_backward(dy, c3)
    dh = gelu_backward(dg, c2)
    dx, dw1, db1 = linear_backward(dh, c1)
    return {"x": dx, "w1": dw1, "b1": db1, "w2": dw2, "b2": db2}


y, cache = mlp_forward(x, w1, b1, w2, b2)
grads = mlp_backward(rng.standard_normal(y.shape), cache)
print({name: g.shape for name, g in grads.items()})

# %% [markdown]
# ## 3. `gradcheck`: testing a backward without calculus
#
# How do we know a backward is right? Section 1 already showed the trick: nudge an
# input and watch $L$. To test an operation on its own we need a scalar $L$, and we
# choose one: draw a random array $g$ shaped like `out` and set
#
# $$L(x) = \sum_j \text{out}_j(x)\, g_j, \qquad\text{so that}\qquad
# \frac{\partial L}{\partial\,\text{out}} = g .$$
#
# The backward, given `dout = g`, must return $\nabla_x L$. `gradcheck` estimates every
# component with a **centred difference** (中心差分),
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{L(x + h e_i) - L(x - h e_i)}{2h},
# \qquad h = 10^{-6},$$
#
# whose error shrinks like $h^2$ (the one-sided $(L(x+h e_i) - L(x))/h$ only like $h$;
# notebook 3 plots both against $h$). It computes in float64 and reports, per input,
#
# $$\text{rel error} = \frac{\max_i |a_i - n_i|}{\max(\max_i |a_i|,\ \max_i |n_i|)}$$
#
# ($a$ analytic, $n$ numeric, the maxima in the denominator taken over all the inputs
# checked together), and passes when it is at most $10^{-7}$. A correct backward gives
# round-off, around $10^{-10}$; a wrong one, typically $10^{-2}$ to $1$.
#
# A two-line function, $y = x \sin x$, whose derivative by the product rule is
# $\sin x + x \cos x$:

# %%
def xsin_forward(x):
    """x: any shape -> y = x * sin(x), cache (x, sin x)."""
    s = np.sin(x)
    return x * s, (x, s)


def xsin_backward(dy, cache):
    """dy: like x -> {"x": dL/dx}. Product rule: d(x sin x)/dx = sin x + x cos x."""
    x, s = cache
    return {"x": dy * (s + x * np.cos(x))}


report = gradcheck(xsin_forward, xsin_backward, {"x": rng.standard_normal((3, 4))})
print(report)
assert report.ok

# %% [markdown]
# One line per input: its shape, its relative error, its gradient's scale, and the
# element where analytic and numeric disagree most, with both values. Now a backward
# with the most common bug of all, half of the product rule forgotten:

# %%
def xsin_backward_wrong(dy, cache):
    x, s = cache
    return {"x": dy * x * np.cos(x)}           # the "sin x" term is missing


bad = gradcheck(xsin_forward, xsin_backward_wrong, {"x": rng.standard_normal((3, 4))})
print(bad)
assert not bad.ok and bad["x"].rel_error > 0.1

# %% [markdown]
# The same tool checks a composite: the MLP above, five inputs at once.

# %%
inputs = {"x": x, "w1": w1, "b1": b1, "w2": w2, "b2": b2}
report = gradcheck(mlp_forward, mlp_backward, inputs)
print(report)
assert report.ok

# %% [markdown]
# In the exercises you will use `check`, which runs `gradcheck` and prints a single
# line, `PASS` or `FAIL`, naming the worst input.
#
# ## 4. Exercise: the backward of $y = w \tanh(x)$
#
# A scaled tanh, with $x$ of shape $(N, C)$ and a weight $w$ of shape $(C,)$ that
# NumPy broadcasts over the $N$ rows:
#
# $$t = \tanh(x), \qquad y_{nc} = w_c\, t_{nc}.$$
#
# You need one fact, $\frac{d}{dx}\tanh x = 1 - \tanh^2 x$, which the forward has
# already computed for you (it caches $t$). Then the chain rule, twice:
#
# * $x_{nc}$ reaches $L$ only through $y_{nc}$: multiply along that path;
# * $w_c$ is used by **every** row $n$: add up the rows' contributions.
#
# The plot shows $\tanh$ and its derivative: the derivative is 1 at 0 and vanishes for
# large $|x|$, where tanh is flat (it *saturates*, like the softmax of notebook 1).

# %%
xs = np.linspace(-4, 4, 401)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(xs, np.tanh(xs), label="tanh x")
ax.plot(xs, 1 - np.tanh(xs) ** 2, label="d tanh / dx = 1 − tanh² x")
ax.axhline(0, color="gray", lw=0.6)
ax.set_xlabel("x")
ax.legend()
ax.set_title("tanh saturates; its derivative vanishes there")
plt.show()

# %% [markdown]
# **Exercise 1.** Write `my_scaled_tanh_backward`. It returns a dict with the same keys
# as the inputs, each gradient the shape of its input: `"x"` $(N, C)$ and `"w"` $(C,)$.

# %%
def scaled_tanh_forward(x, w):
    """x: (N, C), w: (C,) -> y = w * tanh(x) (N, C), cache (w, t) with t = tanh(x)."""
    t = np.tanh(x)                             # (N, C)
    y = w * t                                  # (N, C): w broadcasts over the N rows
    return y, (w, t)


def my_scaled_tanh_backward(dy, cache):
    """dy: (N, C) = dL/dy -> {"x": dL/dx (N, C), "w": dL/dw (C,)}."""
    w, t = cache
    # BEGIN SOLUTION
    dx = dy * w * (1 - t ** 2)                 # one path: y -> t -> x
    dw = (dy * t).sum(axis=0)                  # N paths, one per row: add them
    # END SOLUTION
    return {"x": dx, "w": dw}

# %% tags=["check"]
inputs = {"x": rng.standard_normal((5, 3)), "w": rng.standard_normal(3)}
assert check("scaled tanh backward", scaled_tanh_forward, my_scaled_tanh_backward, inputs)

# %% tags=["solution-only"]
report = gradcheck(scaled_tanh_forward, my_scaled_tanh_backward, inputs)
print(report)                                  # the table behind check's one line
x, w = inputs["x"], inputs["w"]
dy = rng.standard_normal(x.shape)
mine = my_scaled_tanh_backward(dy, scaled_tanh_forward(x, w)[1])
assert np.allclose(mine["w"], [np.dot(dy[:, c], np.tanh(x[:, c])) for c in range(3)])
print("dL/dw_c = sum over rows of dy * tanh(x), column by column")

# %% [markdown]
# **Summary.** Backpropagation is the chain rule run backwards: multiply local
# derivatives along each path, add where paths meet, accumulate. In `minigpt` every
# operation is a `forward -> (out, cache)` / `backward(dout, cache) -> grads` pair,
# composed by calling the backwards in reverse, and every backward is tested with
# `gradcheck`'s centred differences. Next: notebook 1, attention, where you will
# differentiate a softmax.
#
# ## Questions to think about (思考题)
#
# 1. `gradcheck` multiplies the output by a *random* array $g$ before summing. Why not
#    simply use $L = \sum_j \text{out}_j$, i.e. $g$ all ones? Try it: write a backward
#    for `xsin` that forgets to multiply by `dy`, and `gradcheck` it. Then compare what
#    it returns for `dy = np.ones(...)` with
#    `numerical_gradient(lambda: float(np.sum(xsin_forward(x)[0])), x)` (from
#    `minigpt.gradcheck`), which is the same check with $g$ all ones.
# 2. In section 1's nudging cell, set $h$ to `1e-2`, then to `1e-12`, and print
#    `da_numeric - 6` each time. Then try the one-sided estimate
#    `(loss(a + h, b) - loss(a, b)) / h` at `h = 1e-2`. Explain the three errors you
#    see. (Hint: as a function of $a$ alone, $L$ is a parabola.)
# 3. A GPT uses its token-embedding matrix twice: to turn token ids into vectors at the
#    bottom, and (transposed) to turn the last vectors into scores over the vocabulary
#    at the top ("weight tying"). What does section 1 say its gradient must be? What
#    would go wrong if the backward wrote `dwte = ...` for the second use instead of
#    `dwte += ...`?
