# %% [markdown]
# # 1 · Attention
#
# Our text puts one formula at the heart of the Transformer, the *attention mechanism*
# (Attention Mechanism, §3.2):
#
# $$\text{Attention}(Q, K, V) = \text{softmax}\left(\frac{QK^T}{\sqrt{d_k}}\right)V$$
#
# Every position asks a question (its **query** $q$, the text's 查询向量), every position
# offers a label (its **key** $k$, 关键字向量) and a content (its **value** $v$, 值向量).
# A query compares itself with every key; the softmax turns those scores into weights
# that add up to one; the output is the weighted average of the values.
#
# In this notebook we
# 1. compute the formula by hand on three tokens, then with `minigpt`;
# 2. see why the scores are divided by $\sqrt{d_k}$;
# 3. add the causal mask a GPT needs, and write the whole masked forward yourself;
# 4. derive the backward pass through the softmax, step by step;
# 5. derive the backward pass through the whole formula, and check it numerically.
#
# Each section goes: prose → formula → a `minigpt` call → a check that *asserts* →
# a plot. Sections 3, 4 and 5 each hold an exercise in the student edition
# (`notebooks/exercises/`). The backward passes use the two tools of notebook 0: the
# convention `op_forward(...) -> (out, cache)`, `op_backward(dout, cache) -> grads`
# (`dout` $= \partial L/\partial\,\text{out}$), and `minigpt.gradcheck`, which tests a
# backward against centred finite differences.

# %%
import os
QUICK = os.environ.get("MINIGPT_QUICK", "0") == "1"   # 1: the short run the tests use

import matplotlib.pyplot as plt
import numpy as np
%matplotlib inline

from minigpt.gradcheck import check, check_close, gradcheck   # check*: one-line PASS/FAIL
from minigpt.ops.attention import attention_backward, attention_forward, causal_mask
from minigpt.ops.softmax import SoftmaxCache, softmax_backward, softmax_forward
from minigpt.language import tr      # tr(english, chinese): what this edition prints and draws
from minigpt.plots import use_cjk_font

np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)
use_cjk_font()                          # plots can draw Chinese (the font minigpt ships)


# %% [markdown]
# ## 1. The formula by hand, on three tokens
#
# Take $T = 3$ tokens with $d_k = 2$ numbers each. Written out one step per line:
#
# $$S = \frac{QK^T}{\sqrt{d_k}} \qquad A_{ij} = \frac{e^{S_{ij}}}{\sum_{j'} e^{S_{ij'}}}
# \qquad Y = AV$$
#
# $S_{ij}$ says how well query $i$ matches key $j$; row $i$ of $A$ is how query $i$
# spreads its attention over the keys; row $i$ of $Y$ is the blend of values it gets.

# %%
Q = np.array([[1.0, 0.0],     # token 0 looks for "feature 0"
              [0.0, 1.0],     # token 1 looks for "feature 1"
              [1.0, 1.0]])    # token 2 looks for both
K = np.array([[2.0, 0.0],     # token 0 strongly has feature 0
              [0.0, 2.0],     # token 1 strongly has feature 1
              [0.5, 0.5]])    # token 2 a little of both
V = np.array([[1.0, 0.0],
              [0.0, 1.0],
              [0.5, 0.5]])
d_k = Q.shape[1]

S = Q @ K.T / np.sqrt(d_k)                        # (3, 3) scores
E = np.exp(S - S.max(axis=1, keepdims=True))      # subtracting the row max changes nothing
A = E / E.sum(axis=1, keepdims=True)              # (3, 3) weights, rows sum to 1
Y = A @ V                                         # (3, 2) outputs
print("scores S =\n", S, "\nweights A =\n", A, "\noutput Y =\n", Y)

# %% [markdown]
# Now the library's softmax on the same scores. It must agree with our hand computation,
# every row of weights must sum to one, and every output row, being an average of the
# value rows, must lie between their smallest and largest entries.

# %%
A_lib, _ = softmax_forward(S)
assert np.allclose(A_lib, A, atol=1e-15, rtol=0)
assert np.allclose(A.sum(axis=1), 1.0)
assert np.all(Y >= V.min(axis=0) - 1e-12) and np.all(Y <= V.max(axis=0) + 1e-12)
print("hand computation == minigpt's softmax; rows sum to 1; outputs are averages of values")

# %%
def show_weights(ax, weights, labels, title):
    """Heatmap of an attention matrix: row = query, column = key."""
    im = ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("key position j (attended to)")
    ax.set_ylabel("query position i (attending)")
    ax.set_title(title)
    for i in range(weights.shape[0]):
        for j in range(weights.shape[1]):
            ax.text(j, i, f"{weights[i, j]:.2f}", ha="center", va="center",
                    color="white" if weights[i, j] < 0.6 else "black", fontsize=9)
    return im


fig, ax = plt.subplots(figsize=(4.5, 4))
fig.colorbar(show_weights(ax, A, ["tok 0", "tok 1", "tok 2"],
                          "Attention weights A = softmax(QKᵀ/√d_k)"), ax=ax)
plt.show()

# %% [markdown]
# Token 0 looks mostly at token 0 (the key that has "feature 0"), token 1 at token 1,
# and token 2, which wants both, splits its attention between them.
#
# ## 2. Why divide by $\sqrt{d_k}$?
#
# Suppose the entries of $q$ and $k$ are independent, with mean 0 and variance 1. Then
#
# $$q \cdot k = \sum_{i=1}^{d_k} q_i k_i, \qquad
# \operatorname{Var}(q\cdot k) = \sum_{i=1}^{d_k} \operatorname{Var}(q_i k_i) = d_k .$$
#
# The scores grow like $\sqrt{d_k}$. Fed to a softmax, large scores make it
# *saturate*: almost all the weight lands on one key, and the softmax's gradient
# $p_j(\delta_{ij} - p_i)$ goes to zero, so learning stalls. Dividing by $\sqrt{d_k}$
# brings the variance back to 1 whatever the head size.

# %%
T = 16                                    # keys per query
n_trials = 500 if QUICK else 4000
dims = [1, 4, 16, 64, 256, 1024]
stats = {"max weight": {True: [], False: []}, "grad size": {True: [], False: []}}
for d in dims:
    q = rng.standard_normal((n_trials, 1, d))
    k = rng.standard_normal((n_trials, T, d))
    s = (q @ k.swapaxes(-1, -2))[:, 0]            # (n_trials, T) raw scores q.k
    if d >= 16:
        assert abs(s.var() / d - 1) < 0.15, "Var(q.k) should be close to d_k"
        assert abs((s / np.sqrt(d)).var() - 1) < 0.15, "scaled scores should have variance ~1"
    for scaled in (True, False):
        p, _ = softmax_forward(s / np.sqrt(d) if scaled else s)
        dz = softmax_backward(rng.standard_normal(p.shape), SoftmaxCache(p))  # random upstream grad
        stats["max weight"][scaled].append(p.max(axis=1).mean())
        stats["grad size"][scaled].append(np.abs(dz).mean())
for key, by in stats.items():
    print(f"{key:>10}  scaled:  ", np.round(by[True], 3), "\n            unscaled:",
          np.round(by[False], 3))

# %% [markdown]
# The check: without the scale the softmax becomes nearly one-hot at large $d_k$ and its
# gradient collapses; with the scale the largest weight stays near 0.25 (0.21 at
# $d_k = 1$) and the gradient's size does not move.

# %%
assert stats["max weight"][False][-1] > 0.9           # saturated: one key takes > 90%
assert max(stats["max weight"][True]) < 0.3           # scaled: spread over many keys
assert stats["grad size"][False][-1] < 0.2 * stats["grad size"][True][-1]

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].axhline(1 / T, color="gray", lw=0.8, ls=":", label="uniform weights, 1/T")
for ax, key, label in [(axes[0], "max weight", "mean of the largest weight"),
                       (axes[1], "grad size", "mean |∂L/∂score|")]:
    ax.semilogx(dims, stats[key][True], "o-", label="softmax(q·k / √d_k)")
    ax.semilogx(dims, stats[key][False], "s--", label="softmax(q·k), no scale")
    ax.set_xlabel("head size d_k")
    ax.set_ylabel(label)
    ax.legend()
axes[0].set_title(f"The softmax saturates without the scale (T = {T} keys)")
axes[1].set_title("…and its gradient vanishes")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The causal mask
#
# A GPT writes text left to right, and it is trained to predict token $i+1$ from tokens
# $0..i$. If position $i$ could attend to later positions it would simply read the
# answer. So the scores of "future" keys are set to $-\infty$ before the softmax, which
# gives them weight exactly $e^{-\infty} = 0$:
#
# $$\tilde S_{ij} = \begin{cases} S_{ij} & j \le i \\ -\infty & j > i \end{cases}
# \qquad A = \text{softmax}(\tilde S).$$
#
# `minigpt.ops.attention.attention_forward(q, k, v)` applies this mask itself; its
# arrays have shape `(B, nh, T, hs)`: batch, heads, time, head size. It returns the
# output and a cache (notebook 0's convention); the cache keeps the weights it computed,
# `cache.att` of shape `(B, nh, T, T)`, so we can test and plot the very numbers the
# forward used.

# %%
words = ["the", "cat", "sat", "on", "the", "mat", "."]
T, hs = len(words), 8
q, k, v = (rng.standard_normal((1, 1, T, hs)) for _ in range(3))   # (B, nh, T, hs)

print(causal_mask(T, T).astype(int))        # 1 = hidden from the query on that row

y, cache = attention_forward(q, k, v)
weights = cache.att                                       # (1, 1, T, T)
assert np.allclose(y, weights @ v)                        # the output is A V
assert np.allclose(weights.sum(axis=-1), 1.0)             # every row is a distribution
assert np.all(np.triu(weights[0, 0], k=1) == 0)           # exactly zero above the diagonal
assert np.allclose(weights[0, 0, 0], np.eye(T)[0])        # token 0 can only see itself

# causality: changing what comes after position i does not change output i
i = 3
k2, v2 = k.copy(), v.copy()
k2[..., i + 1:, :] += 10 * rng.standard_normal(k2[..., i + 1:, :].shape)
v2[..., i + 1:, :] += 10 * rng.standard_normal(v2[..., i + 1:, :].shape)
y2, _ = attention_forward(q, k2, v2)
assert np.array_equal(y2[..., : i + 1, :], y[..., : i + 1, :])
assert not np.allclose(y2[..., i + 1:, :], y[..., i + 1:, :])
print(f"outputs 0..{i} are unchanged when keys and values after position {i} change")

# %%
fig, ax = plt.subplots(figsize=(6, 5))
fig.colorbar(show_weights(ax, weights[0, 0], words, "Causal attention weights (random q, k)"),
             ax=ax)
plt.show()

# %% [markdown]
# Row $i$ spreads its weight over positions $0..i$ only; the upper triangle is exactly 0.
# (The queries and keys are random here; notebook 6 shows the weights of a trained model.)
#
# **Exercise 1: the attention forward by hand.** Write
# $\text{softmax}\left(QK^T/\sqrt{d_k}\right)V$ with the causal mask, for `q`, `k`,
# `v` of shape `(B, nh, T, hs)`, using NumPy only (no `minigpt` functions). One step per
# line, as in section 1:
#
# 1. the scores $S = QK^T/\sqrt{d_k}$, shape `(B, nh, T, T)`, with $d_k$ = `hs`.
#    `k.swapaxes(-1, -2)` transposes the last two axes of every matrix in the batch
#    (`k.T` would reverse *all four* axes);
# 2. the mask: `np.triu(np.ones((T, T), dtype=bool), k=1)` is `True` strictly above
#    the diagonal, where key $j > i$; put $-\infty$ there (`np.where` broadcasts a
#    `(T, T)` mask over `(B, nh, T, T)`);
# 3. the softmax over the **last** axis (the keys), subtracting each row's maximum
#    before `np.exp` as in section 1;
# 4. the weighted sum of the values.
#
# The check compares your output with `attention_forward(q, k, v)[0]`.

# %%
def my_attention_forward(q, k, v):
    """q, k, v: (B, nh, T, hs) -> y (B, nh, T, hs) = softmax(mask(q k^T / sqrt(hs))) v."""
    T, hs = q.shape[-2:]
    # BEGIN SOLUTION
    s = q @ k.swapaxes(-1, -2) / np.sqrt(hs)                  # (B, nh, T, T) scores
    future = np.triu(np.ones((T, T), dtype=bool), k=1)        # (T, T) True where j > i
    s = np.where(future, -np.inf, s)                          # hide the future
    e = np.exp(s - s.max(axis=-1, keepdims=True))             # exp(-inf) = 0
    att = e / e.sum(axis=-1, keepdims=True)                   # (B, nh, T, T), rows sum to 1
    y = att @ v                                               # (B, nh, T, hs)
    # END SOLUTION
    return y

# %% tags=["check"]
q, k, v = (rng.standard_normal((2, 3, 6, 4)) for _ in range(3))   # B=2, nh=3, T=6, hs=4
assert check_close("attention forward", my_attention_forward,
                   lambda q, k, v: attention_forward(q, k, v)[0], q, k, v)

# %% tags=["solution-only"]
q, k, v = (rng.standard_normal((1, 2, 9, 16)) for _ in range(3))
y, cache = attention_forward(q, k, v)
assert np.allclose(my_attention_forward(q, k, v), y)
print("my_attention_forward == minigpt.ops.attention.attention_forward (another shape)")

# %% [markdown]
# ## 4. The backward pass through the softmax
#
# In notebook 0's convention, the softmax's backward is handed `dout` $= \partial L/\partial p$,
# the gradient of the loss with respect to the softmax output, and must return
# $\partial L/\partial z$. Start from
# $p_j = e^{z_j} / \sum_k e^{z_k}$ and differentiate with the quotient rule:
#
# $$\frac{\partial p_j}{\partial z_i} = \frac{\delta_{ij} e^{z_j}}{\sum_k e^{z_k}}
#   - \frac{e^{z_j} e^{z_i}}{(\sum_k e^{z_k})^2} = p_j(\delta_{ij} - p_i).$$
#
# This Jacobian $J = \operatorname{diag}(p) - pp^T$ is symmetric. The chain rule sums
# over every output that $z_i$ touches:
#
# $$\frac{\partial L}{\partial z_i} = \sum_j \frac{\partial L}{\partial p_j} p_j(\delta_{ij} - p_i)
#   = p_i\left(\frac{\partial L}{\partial p_i} - \sum_j \frac{\partial L}{\partial p_j}p_j\right).$$
#
# The last form needs no $T \times T$ matrix per row: one product, one sum, one
# subtraction. First the long way, with the explicit Jacobian, for one row of six scores:

# %%
z = rng.standard_normal(6)
p, _ = softmax_forward(z)
J = np.diag(p) - np.outer(p, p)              # J[i, j] = dp_j / dz_i
dp = rng.standard_normal(6)                   # some upstream gradient dL/dp
dz_long = J @ dp                              # the chain rule, term by term
dz_short = p * (dp - np.sum(dp * p))          # the simplified formula
assert np.allclose(dz_long, dz_short)
assert np.allclose(J.sum(axis=1), 0)          # whatever z_i does, the p_j still sum to 1
print("explicit Jacobian == simplified formula; each row of J sums to 0")

fig, ax = plt.subplots(figsize=(4.8, 4))
lim = np.abs(J).max()
im = ax.imshow(J, cmap="RdBu_r", vmin=-lim, vmax=lim)
ax.set_xlabel("output p_j")
ax.set_ylabel("input z_i")
ax.set_title("Softmax Jacobian ∂p_j/∂z_i = p_j(δ_ij − p_i)")
fig.colorbar(im, ax=ax)
plt.show()

# %% [markdown]
# The diagonal is positive (raising $z_i$ raises $p_i$), everything else negative (it
# takes probability from the others), and each row sums to zero.
#
# **Exercise 2.** Write the softmax backward for a whole batch of rows: `p` and `dp`
# have shape `(..., N)` and the softmax ran over the last axis. Use the simplified
# formula, vectorised (no Python loop). The forward caches its output `p`. Mind the
# shapes: each row's sum must broadcast back over that row.

# %%
def softmax_with_cache(z):
    """z: (..., N) -> p (..., N), cache = p (the output is all the backward needs)."""
    p, _ = softmax_forward(z)
    return p, p


def my_softmax_backward(dp, p):
    """dp: (..., N) = dL/dp, p: (..., N) the cached output -> {"z": dL/dz (..., N)}."""
    # BEGIN SOLUTION
    dz = p * (dp - np.sum(dp * p, axis=-1, keepdims=True))
    # END SOLUTION
    return {"z": dz}

# %% tags=["check"]
inputs = {"z": rng.standard_normal((4, 7))}
assert check("softmax backward", softmax_with_cache, my_softmax_backward, inputs)

# %% tags=["solution-only"]
z = rng.standard_normal((3, 5, 7))
p, cache = softmax_forward(z)
dp = rng.standard_normal(p.shape)
assert np.allclose(my_softmax_backward(dp, p)["z"], softmax_backward(dp, cache))
print("my_softmax_backward == minigpt.ops.softmax.softmax_backward")

# %% [markdown]
# ## 5. The backward pass through attention
#
# Read the forward from the bottom up and undo one line at a time. With
# $s = 1/\sqrt{d_k}$ and $G = \partial L / \partial Y$ (our `dy`):
#
# | forward | backward |
# |---|---|
# | $Y = AV$ | $\partial L/\partial A = G V^T, \quad \partial L/\partial V = A^T G$ |
# | $A = \text{softmax}(\tilde S)$ | $\partial L/\partial \tilde S = A \odot \left(\partial L/\partial A - \text{rowsum}(A \odot \partial L/\partial A)\right)$ |
# | $\tilde S = $ mask$(S)$ | masked entries have $A = 0$, so their gradient is already 0 |
# | $S = s\,QK^T$ | $\partial L/\partial Q = s\,(\partial L/\partial S) K, \quad \partial L/\partial K = s\,(\partial L/\partial S)^T Q$ |
#
# The product rule for $Y = AV$: $Y_{id} = \sum_j A_{ij}V_{jd}$, so $V_{jd}$ receives
# $\sum_i A_{ij} G_{id}$, which is $(A^TG)_{jd}$; $A_{ij}$ receives $\sum_d G_{id}V_{jd}$,
# which is $(GV^T)_{ij}$. The same argument, twice, gives the last row.
#
# Below, `attention_by_parts` is the forward written out with `minigpt`'s mask and
# softmax; it caches what the backward needs (`q, k, v` and the weights `att`).
#
# **Exercise 3.** Write `my_attention_backward`. Shapes are `(B, nh, T, hs)` for
# q, k, v, y and `(B, nh, T, T)` for att. You may call
# `softmax_backward(datt, SoftmaxCache(att))` from `minigpt` (its cache names the one
# thing it keeps, `p`) (or your own: `my_softmax_backward(datt, att)["z"]`). Remember `.swapaxes(-1, -2)`
# transposes the last two axes of a batch of matrices.

# %%
def attention_by_parts(q, k, v):
    """q, k, v: (B, nh, T, hs) -> y (B, nh, T, hs), cache (q, k, v, att)."""
    T, hs = q.shape[-2:]
    s = q @ k.swapaxes(-1, -2) / np.sqrt(hs)          # (B, nh, T, T)
    s[..., causal_mask(T, T)] = -np.inf
    att, _ = softmax_forward(s)                        # (B, nh, T, T)
    return att @ v, (q, k, v, att)


def my_attention_backward(dy, cache):
    """dy: (B, nh, T, hs) -> {"q": dq, "k": dk, "v": dv}, each (B, nh, T, hs)."""
    q, k, v, att = cache
    scale = 1.0 / np.sqrt(q.shape[-1])
    # BEGIN SOLUTION
    dv = att.swapaxes(-1, -2) @ dy                     # Y = A V  ->  dV = A^T G
    datt = dy @ v.swapaxes(-1, -2)                     #          ->  dA = G V^T
    ds = softmax_backward(datt, SoftmaxCache(att))     # through the softmax
    dq = ds @ k * scale                                # S = s Q K^T
    dk = ds.swapaxes(-1, -2) @ q * scale
    # END SOLUTION
    return {"q": dq, "k": dk, "v": dv}


q, k, v = (rng.standard_normal((2, 2, 5, 4)) for _ in range(3))   # B=2, nh=2, T=5, hs=4
assert np.allclose(attention_by_parts(q, k, v)[0], attention_forward(q, k, v)[0])
print("attention_by_parts == minigpt's attention_forward")

# %% tags=["check"]
inputs = {"q": q, "k": k, "v": v}
assert check("attention backward", attention_by_parts, my_attention_backward, inputs)

# %% tags=["solution-only"]
dy = rng.standard_normal(q.shape)
_, cache = attention_forward(q, k, v)
lib = attention_backward(dy, cache)
mine = my_attention_backward(dy, attention_by_parts(q, k, v)[1])
for name, g in zip("qkv", lib):
    assert np.allclose(mine[name], g)
print("my_attention_backward == minigpt.ops.attention.attention_backward")

# %% [markdown]
# The library's own pair passes the same numerical test. As in notebook 0, `gradcheck`
# nudges every input number by $\pm h$, measures the change of $\sum_i y_i g_i$ for a random $g$, and
# compares with the backward's answer:
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{L(x + h e_i) - L(x - h e_i)}{2h}.$$

# %%
report = gradcheck(attention_forward, attention_backward, {"q": q, "k": k, "v": v})
print(report)
assert report.ok

# %% [markdown]
# Finally, the mask seen from the backward side: give an upstream gradient to the
# output of ONE query position $i$ and see which keys receive gradient. Only keys
# $j \le i$ do; no gradient flows to the future, exactly as no information flowed from it.

# %%
T = 8
q, k, v = (rng.standard_normal((1, 1, T, 4)) for _ in range(3))
_, cache = attention_forward(q, k, v)
reach = np.zeros((T, T))
for i in range(T):
    dy = np.zeros_like(q)
    dy[..., i, :] = rng.standard_normal(4)              # only output i matters
    dq, dk, dv = attention_backward(dy, cache)
    reach[i] = np.linalg.norm(dk[0, 0], axis=-1) + np.linalg.norm(dv[0, 0], axis=-1)
assert np.all(np.triu(reach, k=1) == 0)                 # exactly zero for j > i
assert np.all(reach[np.tril_indices(T)] > 0)              # and nonzero for j <= i

fig, ax = plt.subplots(figsize=(5, 4.2))
im = ax.imshow(reach, cmap="magma")
ax.set_xlabel("key/value position j")
ax.set_ylabel("query position i that has a gradient")
ax.set_title("|∂L/∂k_j| + |∂L/∂v_j|: no gradient to the future")
fig.colorbar(im, ax=ax)
plt.show()

# %% [markdown]
# **Summary.** $\text{softmax}(QK^T/\sqrt{d_k})V$ is three matrix products and a
# softmax. The $\sqrt{d_k}$ keeps the softmax out of saturation; the causal mask makes a
# position blind to its future; the backward is the same four lines read in reverse, and
# `minigpt.gradcheck` confirms them to a relative error of a few 1e-10, measured against
# the largest gradient entry. Next: notebook 2, where the positions come from.
#
# ## Questions to think about (思考题)
#
# 1. Remove the causal mask (call your `my_attention_forward` without it, or set
#    `future` to all `False`) and rerun the causality test of section 3. What changes?
#    A GPT trained without the mask reaches a very low training loss quickly; why is
#    it then useless for generating text?
# 2. Why divide by $\sqrt{d_k}$ and not by $d_k$? Rerun the experiment of section 2
#    with `s / d` in place of `s / np.sqrt(d)`: what do the weights look like at
#    $d_k = 1024$, and what does the model lose?
# 3. Adding the same number to every score of a row does not change the softmax. What
#    does that imply for each row of $\partial L/\partial S$? Check it on
#    `softmax_backward(dp, SoftmaxCache(p))` for a random `dp`, and say why
#    subtracting the row maximum before `np.exp` changes the weights not at all.
