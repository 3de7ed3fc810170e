# %% [markdown]
# # 3 · Layer norm and backpropagation
#
# Step 5 of the training procedure in our text is *backpropagation* (反向传播): from the
# loss, compute the gradient of every parameter. `minigpt` has no autograd engine;
# every gradient is derived by hand, one operation at a time, and checked against
# finite differences. This notebook shows how, on the operation whose backward is the
# most instructive: layer normalisation.
#
# 1. The convention of notebook 0, recalled: each operation has a forward and a
#    backward; the chain rule joins them. A warm-up exercise: the linear layer.
# 2. How `gradcheck` knows a gradient is right, and why it uses centred differences.
# 3. Layer norm, forward.
# 4. Its backward, derived term by term (an exercise in the student edition).
# 5. What `eps` protects against.

# %%
import os
QUICK = os.environ.get("MINIGPT_QUICK", "0") == "1"   # 1: the short run the tests use

import matplotlib.pyplot as plt
import numpy as np
%matplotlib inline

from minigpt.gradcheck import check, gradcheck, numerical_gradient   # check: PASS/FAIL
from minigpt.ops.layernorm import LN_EPS, layernorm_backward, layernorm_forward
from minigpt.ops.linear import linear_backward, linear_forward
from minigpt.language import tr      # tr(english, chinese): what this edition prints and draws
from minigpt.plots import use_cjk_font

np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)
use_cjk_font()                          # plots can draw Chinese (the font minigpt ships)


# %% [markdown]
# ## 1. Forward, backward, and the chain rule
#
# A recap of notebook 0. A network is a chain of operations ending in a scalar loss
# $L$. Every operation in `minigpt` comes as a pair:
#
# * `op_forward(x, ...) -> (out, cache)`: compute, and keep what the backward will need;
# * `op_backward(dout, cache) -> dx, ...`: given $\partial L/\partial\,\text{out}$, return
#   $\partial L/\partial x$ (and the parameters' gradients).
#
# The chain rule is what makes the pairs compose: if $x$ influences $L$ only through
# $\text{out}$, then $\frac{\partial L}{\partial x_i} = \sum_j \frac{\partial L}{\partial\,\text{out}_j}
# \frac{\partial\,\text{out}_j}{\partial x_i}$. The model's backward calls the ops'
# backwards in reverse order, each handing its result to the next.
#
# The simplest example is the linear layer $y = xW + b$, with $x$ of shape $(N, C_{in})$,
# $W$ $(C_{in}, C_{out})$. Write one entry, $y_{nj} = \sum_i x_{ni}W_{ij} + b_j$, and read
# off which entries each input touches:
#
# $$\frac{\partial L}{\partial x_{ni}} = \sum_j \frac{\partial L}{\partial y_{nj}}W_{ij}
# \;\Rightarrow\; dx = dy\,W^T \qquad
# \frac{\partial L}{\partial W_{ij}} = \sum_n x_{ni}\frac{\partial L}{\partial y_{nj}}
# \;\Rightarrow\; dW = x^T dy \qquad
# \frac{\partial L}{\partial b_j} = \sum_n \frac{\partial L}{\partial y_{nj}}.$$
#
# A good sanity rule: every gradient has the shape of the thing it is the gradient of.
#
# **Exercise 1.** Write the linear backward for $x$ of shape $(N, C_{in})$.

# %%
def linear(x, w, b):
    """y = x @ w + b. x: (N, Cin), w: (Cin, Cout), b: (Cout,) -> y (N, Cout), cache (x, w)."""
    y, _ = linear_forward(x, w, b)
    return y, (x, w)


def my_linear_backward(dy, cache):
    """dy: (N, Cout) -> {"x": (N, Cin), "w": (Cin, Cout), "b": (Cout,)}."""
    x, w = cache
    # BEGIN SOLUTION
    dx = dy @ w.T
    dw = x.T @ dy
    db = dy.sum(axis=0)
    # END SOLUTION
    return {"x": dx, "w": dw, "b": db}

# %% tags=["check"]
inputs = {"x": rng.standard_normal((5, 3)), "w": rng.standard_normal((3, 4)),
          "b": rng.standard_normal(4)}
assert check("linear backward", linear, my_linear_backward, inputs)

# %% tags=["solution-only"]
x, w, b, dy = (rng.standard_normal(s) for s in [(5, 3), (3, 4), (4,), (5, 4)])
_, cache = linear_forward(x, w, b)
for mine, lib in zip(my_linear_backward(dy, (x, w)).values(), linear_backward(dy, cache)):
    assert np.allclose(mine, lib)
print("my_linear_backward == minigpt.ops.linear.linear_backward")

# %% [markdown]
# ## 2. How `gradcheck` knows
#
# A hand-written gradient is checked against one computed without any calculus. Pick a
# random upstream gradient $g$ and define the scalar $L(x) = \sum_j \text{out}_j(x)\,g_j$;
# the backward given `dout = g` must return $\nabla L$. Each component can be estimated by
# nudging one input both ways:
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{L(x + h e_i) - L(x - h e_i)}{2h}
# \quad (\text{error} \sim h^2) \qquad\text{rather than}\qquad
# \frac{L(x + h e_i) - L(x)}{h} \quad (\text{error} \sim h).$$
#
# Too large an $h$ and the Taylor error dominates; too small and the round-off of
# float64 ($\approx 10^{-16}$, divided by $h$) does. Below, the error of both estimates
# against the library's analytic linear backward, for $h$ from $10^{-1}$ to $10^{-12}$.

# %%
x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5)
g = rng.standard_normal((4, 5))
y, cache = linear_forward(x ** 3, w, b)        # a cubed input, so the function is curved
dx_cubed, dw, db = linear_backward(g, cache)
analytic = dx_cubed * 3 * x ** 2               # chain rule through x**3


def L():
    return float(np.sum(linear_forward(x ** 3, w, b)[0] * g))


hs = 10.0 ** -np.arange(1, 13)
centred, forward_diff = [], []
for h in hs:
    centred.append(np.abs(numerical_gradient(L, x, h) - analytic).max())
    L0, one_sided = L(), np.empty_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        one_sided[i] = (L() - L0) / h
        x[i] = old
    forward_diff.append(np.abs(one_sided - analytic).max())
best = hs[int(np.argmin(centred))]
assert min(centred) < 1e-8 and min(centred) < 0.01 * min(forward_diff)
assert 1e-8 <= best <= 1e-3                   # the sweet spot sits in the middle
print(f"best centred error {min(centred):.1e} at h = {best:.0e}; "
      f"best one-sided error {min(forward_diff):.1e}")

fig, ax = plt.subplots(figsize=(7, 4))
ax.loglog(hs, centred, "o-", label="centred (L(x+h) − L(x−h)) / 2h")
ax.loglog(hs, forward_diff, "s--", label="one-sided (L(x+h) − L(x)) / h")
ax.axvline(1e-6, color="gray", ls=":", label="gradcheck's default h = 1e-6")
ax.set_xlabel("step h")
ax.set_ylabel("max |numeric − analytic|")
ax.set_title("Finite differences: Taylor error (large h) vs round-off (small h)")
ax.invert_xaxis()
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 3. Layer norm, forward
#
# Layer normalisation rescales each token's vector of $C$ channels to mean 0 and
# variance 1, then lets the model pick its own scale $\gamma$ and shift $\beta$ (`w` and
# `b` in the code). For one row $x \in \mathbb{R}^C$:
#
# $$\mu = \frac{1}{C}\sum_i x_i \qquad \sigma^2 = \frac{1}{C}\sum_i (x_i - \mu)^2 \qquad
# \hat x_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} \qquad y_i = \gamma_i \hat x_i + \beta_i$$
#
# A GPT applies it before every attention and MLP, and once at the end: whatever the
# blocks add to the residual stream, the next layer sees numbers of a steady size.

# %%
C = 16
x = rng.normal(loc=rng.uniform(-5, 5, (200, 1)), scale=rng.uniform(0.1, 4, (200, 1)),
               size=(200, C))                                   # rows of very different scale
xhat, _ = layernorm_forward(x, np.ones(C), np.zeros(C))         # gamma = 1, beta = 0
assert np.allclose(xhat.mean(axis=-1), 0, atol=1e-12)
var = x.var(axis=-1)
assert np.allclose(xhat.var(axis=-1), var / (var + LN_EPS))     # 1, up to the eps in the root
assert np.allclose(xhat.var(axis=-1), 1, atol=1e-2)
gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
y, _ = layernorm_forward(x, gamma, beta)
assert np.allclose(y, xhat * gamma + beta)
print("rows normalised to mean 0 and variance 1; y = gamma * xhat + beta")

fig, ax = plt.subplots(figsize=(6, 4))
ax.scatter(x.mean(axis=-1), x.std(axis=-1), s=12, label="input rows x")
ax.scatter(xhat.mean(axis=-1), xhat.std(axis=-1), s=30, marker="x", label="normalised rows x̂ (all at one point)")
ax.set_xlabel("row mean")
ax.set_ylabel("row standard deviation")
ax.set_title("Layer norm sends every row to mean 0, std 1")
ax.legend()
plt.show()

# %% [markdown]
# ## 4. Layer norm, backward, term by term
#
# The parameters are easy: $y_i = \gamma_i\hat x_i + \beta_i$ for every row, so summing
# over rows (all positions of all sequences),
#
# $$\frac{\partial L}{\partial \gamma_i} = \sum_{\text{rows}} \frac{\partial L}{\partial y_i}\hat x_i
# \qquad \frac{\partial L}{\partial \beta_i} = \sum_{\text{rows}} \frac{\partial L}{\partial y_i}.$$
#
# The input is the interesting part, because every $\hat x_j$ depends on every $x_i$
# through $\mu$ and $\sigma^2$. Write $r = (\sigma^2 + \epsilon)^{-1/2}$ and
# $g_j = \frac{\partial L}{\partial y_j}\gamma_j$ (the gradient reaching $\hat x_j$). Three
# small derivatives:
#
# $$\frac{\partial \mu}{\partial x_i} = \frac{1}{C} \qquad
# \frac{\partial \sigma^2}{\partial x_i} = \frac{2(x_i - \mu)}{C} \qquad
# \frac{\partial r}{\partial x_i} = -\tfrac12(\sigma^2+\epsilon)^{-3/2}\,\frac{2(x_i-\mu)}{C}
#   = -\frac{r^2\,\hat x_i}{C}.$$
#
# The product rule on $\hat x_j = (x_j - \mu)\,r$ then gives the Jacobian
#
# $$\frac{\partial \hat x_j}{\partial x_i} = r\left(\delta_{ij} - \frac1C - \frac{\hat x_i \hat x_j}{C}\right),$$
#
# and summing $g_j$ times it over $j$:
#
# $$\frac{\partial L}{\partial x_i} = r\Big(\underbrace{g_i}_{\text{term 1: direct}}
#   \;-\; \underbrace{\tfrac1C\textstyle\sum_j g_j}_{\text{term 2: through }\mu}
#   \;-\; \underbrace{\hat x_i\,\tfrac1C\textstyle\sum_j g_j\hat x_j}_{\text{term 3: through }\sigma^2}\Big).$$
#
# First we check the Jacobian formula on one row against finite differences of the
# library's forward, then look at the three terms.

# %%
C = 8
row = rng.standard_normal(C) * 2 + 1
xh, _ = layernorm_forward(row, np.ones(C))                  # the normalised row
r = 1 / np.sqrt(row.var() + LN_EPS)
J_formula = r * (np.eye(C) - 1 / C - np.outer(xh, xh) / C)  # J[i, j] = d xhat_j / d x_i
J_numeric = np.empty((C, C))
for i in range(C):
    e = np.zeros(C)
    e[i] = 1e-6
    J_numeric[i] = (layernorm_forward(row + e, np.ones(C))[0]
                    - layernorm_forward(row - e, np.ones(C))[0]) / 2e-6
assert np.allclose(J_formula, J_numeric, atol=1e-8)

g = rng.standard_normal(C)                                  # dL/dxhat for this row
term1 = r * g
term2 = -r * np.full(C, g.mean())
term3 = -r * xh * np.mean(g * xh)
assert np.allclose(term1 + term2 + term3, J_formula @ g)
print("Jacobian formula matches finite differences; the three terms add up to J @ g")

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
lim = np.abs(J_formula).max()
im = axes[0].imshow(J_formula, cmap="RdBu_r", vmin=-lim, vmax=lim)
axes[0].set_xlabel("output x̂_j")
axes[0].set_ylabel("input x_i")
axes[0].set_title("∂x̂_j/∂x_i = r(δ_ij − 1/C − x̂_i x̂_j / C)")
fig.colorbar(im, ax=axes[0])
channels = np.arange(C)
for off, term, label in [(-0.3, term1, "term 1: r g"), (-0.1, term2, "term 2: −r mean(g)"),
                         (0.1, term3, "term 3: −r x̂ mean(g x̂)")]:
    axes[1].bar(channels + off, term, width=0.2, label=label)
axes[1].plot(channels + 0.3, term1 + term2 + term3, "k_", ms=14, mew=3, label="sum = dL/dx")
axes[1].axhline(0, color="gray", lw=0.5)
axes[1].set_xlabel("channel i")
axes[1].set_ylabel("contribution to dL/dx_i")
axes[1].set_title("The three terms of the layer-norm backward")
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Two properties follow from the formula, and make good tests. Adding a constant to a
# row does not change $\hat x$, so the gradient has no component along $(1, \dots, 1)$:
# $\sum_i \partial L/\partial x_i = 0$. Scaling a row (away from $\epsilon$) does not
# change $\hat x$ either, so $\sum_i \hat x_i\, \partial L/\partial x_i \approx 0$.
#
# **Exercise 2.** Write the layer-norm backward for $x$ of shape $(B, T, C)$, with
# $\gamma$ and $\beta$ of shape $(C,)$. This forward caches only its inputs, so the
# backward first recomputes $\hat x$ and $r$ (given). `minigpt`'s own layer norm caches
# $\hat x$ and $r$ instead: memory against a little recomputation, either is fine.

# %%
def layer_norm(x, w, b):
    """x: (B, T, C), w, b: (C,) -> y (B, T, C), cache (x, w)."""
    y, _ = layernorm_forward(x, w, b)
    return y, (x, w)


def my_layernorm_backward(dy, cache):
    """dy: (B, T, C) -> {"x": (B, T, C), "w": (C,), "b": (C,)}."""
    x, w = cache
    C = x.shape[-1]
    mu = x.mean(axis=-1, keepdims=True)                          # recomputed, (B, T, 1)
    r = 1 / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + LN_EPS)
    xhat = (x - mu) * r                                          # (B, T, C)
    # BEGIN SOLUTION
    dw = (dy * xhat).reshape(-1, C).sum(axis=0)                  # sum over every row
    db = dy.reshape(-1, C).sum(axis=0)
    g = dy * w                                                   # dL/dxhat
    term1 = g
    term2 = g.mean(axis=-1, keepdims=True)
    term3 = xhat * (g * xhat).mean(axis=-1, keepdims=True)
    dx = r * (term1 - term2 - term3)
    # END SOLUTION
    return {"x": dx, "w": dw, "b": db}

# %% tags=["check"]
inputs = {"x": rng.standard_normal((2, 3, 8)) * 3 + 1, "w": rng.standard_normal(8),
          "b": rng.standard_normal(8)}
assert check("layer norm backward", layer_norm, my_layernorm_backward, inputs)

# %% tags=["solution-only"]
x, w, b = rng.standard_normal((2, 3, 8)), rng.standard_normal(8), rng.standard_normal(8)
dy = rng.standard_normal(x.shape)
_, cache = layernorm_forward(x, w, b)
for mine, lib in zip(my_layernorm_backward(dy, (x, w)).values(), layernorm_backward(dy, cache)):
    assert np.allclose(mine, lib)
print("my_layernorm_backward == minigpt.ops.layernorm.layernorm_backward")

# %% [markdown]
# The library's pair through the same check, with its full report: one line per
# tensor, the worst element, the analytic and numeric values there. Then the two
# properties above, and a picture of every analytic gradient entry against its
# numeric estimate.

# %%
x = rng.standard_normal((2, 3, 8)) * 3 + 1
w, b = rng.standard_normal(8), rng.standard_normal(8)
report = gradcheck(layernorm_forward, layernorm_backward, {"x": x, "w": w, "b": b})
print(report)
assert report.ok

dy = rng.standard_normal(x.shape)
y, cache = layernorm_forward(x, w, b)
dx, dw, db = layernorm_backward(dy, cache)
xhat, _ = layernorm_forward(x, np.ones(8))                   # gamma = 1: y is xhat
assert np.allclose(dx.sum(axis=-1), 0, atol=1e-12)                # shift invariance
assert np.abs((dx * xhat).sum(axis=-1)).max() < 1e-4 * np.abs(dx).max()   # scale invariance

numeric = numerical_gradient(
    lambda: float(np.sum(layernorm_forward(x, w, b)[0] * dy)), x)
assert np.allclose(dx, numeric, atol=1e-7)
fig, ax = plt.subplots(figsize=(4.5, 4.2))
ax.scatter(numeric.ravel(), dx.ravel(), s=14)
lim = np.abs(dx).max() * 1.1
ax.plot([-lim, lim], [-lim, lim], color="gray", lw=0.8)
ax.set_xlabel("numeric ∂L/∂x (centred differences)")
ax.set_ylabel("analytic ∂L/∂x (layernorm_backward)")
ax.set_title("Every entry on the diagonal")
plt.show()

# %% [markdown]
# ## 5. What $\epsilon$ protects against
#
# If a row is constant, $\sigma^2 = 0$ and $\hat x = 0/0$: without $\epsilon$ the output
# is NaN, and one NaN spreads through the whole network within a step. With
# $\epsilon = 10^{-5}$ (`minigpt.ops.layernorm.LN_EPS`, as in PyTorch) the row maps to
# $\hat x = 0$, $y = \beta$.
#
# Nearly constant rows are the subtler danger. The backward multiplies by
# $r = 1/\sqrt{\sigma^2+\epsilon}$, so a row with a tiny spread would get a huge
# gradient; $\epsilon$ caps it at $r \le 1/\sqrt{\epsilon} \approx 316$.

# %%
const = np.full((1, 8), 3.0)
with np.errstate(invalid="ignore", divide="ignore"):
    y_no_eps, _ = layernorm_forward(const, w, b, eps=0.0)
y_eps, _ = layernorm_forward(const, w, b)
assert np.all(np.isnan(y_no_eps))
assert np.allclose(y_eps, b)
print("constant row: eps = 0 gives", y_no_eps[0, :3], "...; eps = 1e-5 gives y = beta")

stds = np.logspace(-6, 1, 40)
base = rng.standard_normal(8)
base = (base - base.mean()) / base.std()                     # a row with mean 0, std 1
grad_size = {}
for eps in (0.0, LN_EPS):
    sizes = []
    for s in stds:
        _, cache = layernorm_forward(5.0 + s * base, np.ones(8), np.zeros(8), eps=eps)
        dxs, _, _ = layernorm_backward(np.eye(8)[:1] - 1 / 8, cache)   # a fixed upstream dy
        sizes.append(np.abs(dxs).max())
    grad_size[eps] = np.array(sizes)
assert grad_size[LN_EPS].max() < 1.1 / np.sqrt(LN_EPS)         # capped by eps
assert grad_size[0.0][0] > 1e5                                  # without eps: ~1/std
print(f"max |dx| over all spreads: {grad_size[LN_EPS].max():.0f} with eps, "
      f"{grad_size[0.0].max():.1e} without")

fig, ax = plt.subplots(figsize=(7, 4))
ax.loglog(stds, grad_size[0.0], "--", label="eps = 0")
ax.loglog(stds, grad_size[LN_EPS], "-", label=f"eps = {LN_EPS:g}")
ax.axhline(1 / np.sqrt(LN_EPS), color="gray", ls=":", label="1/√eps")
ax.set_xlabel("standard deviation of the input row")
ax.set_ylabel("max |∂L/∂x|")
ax.set_title("eps caps the gradient of nearly constant rows")
ax.legend()
plt.show()

# %% [markdown]
# **Summary.** Backpropagation is the chain rule applied op by op, and each op's
# backward can be derived on paper and checked in a second with centred differences.
# The layer-norm backward has three terms, one per path from $x$ to $\hat x$ (direct,
# through the mean, through the variance), and $\epsilon$ keeps both its forward and
# its backward finite. Next: notebook 4 assembles all the ops into a GPT.

# %% [markdown]
# ## Questions to think about (思考题)
#
# Answer in words first, then, where it says so, settle it with a few lines of code in a
# new cell. None of them is checked automatically.
#
# 1. **What $\epsilon$ costs.** Section 5 showed what $\epsilon$ protects against. It is
#    not free: every row gets $\mathrm{var}(\hat x) = \sigma^2/(\sigma^2+\epsilon)$
#    instead of 1. Below which standard deviation $\sigma$ does that fall more than 1%
#    short of 1, and at what spread does layer norm stop normalising at all? (Evaluate
#    the formula for $\sigma$ = 0.1, 0.01, 0.003, 0.001.) Why is $\epsilon$ added to
#    $\sigma^2$ inside the root rather than to $\sigma = \sqrt{\sigma^2}$ outside it?
#    Hint: differentiate $\sqrt{\sigma^2}$ with respect to $\sigma^2$ at a constant row.
# 2. **Why three terms, and which test sees which.** Say in one sentence each which path
#    from $x_i$ to the output the three terms of the backward follow. Section 4 also
#    gave two properties of a correct gradient: $\sum_i \partial L/\partial x_i = 0$ and
#    $\sum_i \hat x_i\,\partial L/\partial x_i \approx 0$. Predict which one breaks if
#    your backward leaves out term 2, and which if it leaves out term 3; then delete
#    each term in turn from a copy of `my_layernorm_backward` and measure both sums.
#    What does this tell you about testing a backward with such properties alone?
# 3. **A constant row.** One row of $x$ is $(3, 3, \dots, 3)$ and $\epsilon = 10^{-5}$.
#    Without running anything, write down $y$ for that row, its contributions to
#    $\partial L/\partial\gamma$ and $\partial L/\partial\beta$, and $\partial L/\partial x$
#    in terms of $g = \frac{\partial L}{\partial y}\gamma$. Which of them change if the
#    row is $(7, 7, \dots, 7)$ instead? Check with `layernorm_forward` and
#    `layernorm_backward`. Is the input gradient of such a row small or large compared
#    with an ordinary row's, and what will the next optimiser step do to the row?
