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
# %% [markdown] lang="zh"
# # 3 · 层归一化与反向传播
#
# 教材第 3.4 节列出了训练的七个步骤，其中第 5 步是“反向传播”（backpropagation）：
# “根据损失值，反向传播计算每个参数的梯度。”
# `minigpt` 没有自动微分（autograd）引擎：每个梯度（gradient）都是一个运算一个运算地手工推导出来的，
# 再用有限差分（finite differences）核对。
# 本笔记本以层归一化（layer normalisation）为例演示这一过程，
# 因为在所有运算中，它的反向传播最值得一步步推导。
#
# 1. 回顾笔记本 0 的约定：每个运算都有一个前向函数和一个反向函数，
#    链式法则（chain rule）把它们串起来。热身练习：线性层（linear layer）。
# 2. 梯度检验（gradient check）函数 `gradcheck` 怎样判断一个梯度是对的，
#    以及它为什么用中心差分（centred difference）。
# 3. 层归一化的前向传播（forward pass）。
# 4. 层归一化的反向传播，逐项推导（学生版中是一道练习）。
# 5. `eps` 是用来防什么的。

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
# %% [markdown] lang="zh"
# ## 1. 前向、反向与链式法则
#
# 先回顾一下笔记本 0。一个网络就是一串运算，最后得到一个标量损失 $L$。
# `minigpt` 里的每个运算都成对出现：
#
# * `op_forward(x, ...) -> (out, cache)`：完成前向传播的计算，
#   同时把反向传播要用到的量存进缓存（cache）；
# * `op_backward(dout, cache) -> dx, ...`：已知 $\partial L/\partial\,\text{out}$，
#   返回 $\partial L/\partial x$（以及参数的梯度）。
#
# 教材第 3.4 节第 3 步所说的“正向传播”，就是这里的前向传播。
#
# 这些成对的函数之所以能一个接一个地组合起来，靠的是链式法则：如果 $x$ 只通过 $\text{out}$ 影响 $L$，那么
# $\frac{\partial L}{\partial x_i} = \sum_j \frac{\partial L}{\partial\,\text{out}_j}
# \frac{\partial\,\text{out}_j}{\partial x_i}$。
# 整个模型的反向传播，就是按与前向相反的顺序依次调用各个运算的反向函数，
# 每个反向函数都把自己的结果交给下一个。
#
# 最简单的例子是线性层 $y = xW + b$，其中 $x$ 的形状是 $(N, C_{in})$，
# $W$ 的形状是 $(C_{in}, C_{out})$。写出其中一个元素 $y_{nj} = \sum_i x_{ni}W_{ij} + b_j$，
# 看清每个输入出现在哪些元素里，就能直接读出梯度：
#
# $$\frac{\partial L}{\partial x_{ni}} = \sum_j \frac{\partial L}{\partial y_{nj}}W_{ij}
# \;\Rightarrow\; dx = dy\,W^T \qquad
# \frac{\partial L}{\partial W_{ij}} = \sum_n x_{ni}\frac{\partial L}{\partial y_{nj}}
# \;\Rightarrow\; dW = x^T dy \qquad
# \frac{\partial L}{\partial b_j} = \sum_n \frac{\partial L}{\partial y_{nj}}.$$
#
# 一条很好用的自查规则：每个梯度的形状，都与它对应的那个量相同。
#
# **练习 1**：写出线性层的反向传播，其中 $x$ 的形状为 $(N, C_{in})$。

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
assert check(tr("linear backward", "线性层反向传播"), linear, my_linear_backward, inputs)

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
# %% [markdown] lang="zh"
# ## 2. `gradcheck` 怎样判断梯度对不对
#
# 检验手写的梯度，要拿一个完全不用微积分算出的梯度来对照。
# 随机取一个上游梯度（upstream gradient）$g$，定义标量 $L(x) = \sum_j \text{out}_j(x)\,g_j$；
# 给反向函数传入 `dout = g`，它返回的必须正是 $\nabla L$。
# $\nabla L$ 的每个分量，都可以把一个输入向两边各轻推一小步来估计，即用中心差分，
# 而不用只向一边推的单侧差分（one-sided difference）：
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{L(x + h e_i) - L(x - h e_i)}{2h}
# \quad (\text{误差} \sim h^2) \qquad\text{而不是}\qquad
# \frac{L(x + h e_i) - L(x)}{h} \quad (\text{误差} \sim h).$$
#
# $h$ 太大，泰勒展开的截断误差（truncation error）占主导；
# $h$ 太小，float64 的舍入误差（round-off error，约 $10^{-16}$，再除以 $h$）占主导。
# 下面让 $h$ 从 $10^{-1}$ 取到 $10^{-12}$，以库中线性层反向传播给出的解析梯度（analytic gradient）为准，
# 分别计算两种估计的误差。

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
print(tr(f"best centred error {min(centred):.1e} at h = {best:.0e}; "
         f"best one-sided error {min(forward_diff):.1e}",
         f"中心差分的最小误差 {min(centred):.1e}（h = {best:.0e}）；"
         f"单侧差分的最小误差 {min(forward_diff):.1e}"))

fig, ax = plt.subplots(figsize=(7, 4))
ax.loglog(hs, centred, "o-", label=tr("centred (L(x+h) − L(x−h)) / 2h",
                                      "中心差分 (L(x+h) − L(x−h)) / 2h"))
ax.loglog(hs, forward_diff, "s--", label=tr("one-sided (L(x+h) − L(x)) / h",
                                            "单侧差分 (L(x+h) − L(x)) / h"))
ax.axvline(1e-6, color="gray", ls=":", label=tr("gradcheck's default h = 1e-6",
                                                "gradcheck 的默认值 h = 1e-6"))
ax.set_xlabel(tr("step h", "步长 h"))
ax.set_ylabel(tr("max |numeric − analytic|", "max |数值梯度 − 解析梯度|"))
ax.set_title(tr("Finite differences: Taylor error (large h) vs round-off (small h)",
                "有限差分：截断误差（h 大时）与舍入误差（h 小时）"))
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
# %% [markdown] lang="zh"
# ## 3. 层归一化的前向传播
#
# 每个词元（token）对应一个由 $C$ 个通道（channel）组成的向量。
# 层归一化先把这个向量变换成均值为 0、方差为 1，
# 再让模型自己学出缩放系数 $\gamma$ 和平移量 $\beta$（代码中是 `w` 和 `b`）。
# 对其中的一行 $x \in \mathbb{R}^C$：
#
# $$\mu = \frac{1}{C}\sum_i x_i \qquad \sigma^2 = \frac{1}{C}\sum_i (x_i - \mu)^2 \qquad
# \hat x_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} \qquad y_i = \gamma_i \hat x_i + \beta_i$$
#
# GPT 在每个注意力（attention）子层和每个多层感知机（MLP）之前都做一次层归一化，
# 最后再做一次。这样，无论各个块（block）往残差流（residual stream）里加了什么，
# 下一层看到的数值大小都是稳定的。

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
print(tr("rows normalised to mean 0 and variance 1; y = gamma * xhat + beta",
         "每一行都已归一化为均值 0、方差 1；y = gamma * xhat + beta"))

fig, ax = plt.subplots(figsize=(6, 4))
ax.scatter(x.mean(axis=-1), x.std(axis=-1), s=12, label=tr("input rows x", "输入的各行 x"))
ax.scatter(xhat.mean(axis=-1), xhat.std(axis=-1), s=30, marker="x",
           label=tr("normalised rows x̂ (all at one point)", "归一化后的各行 x̂（全部落在同一点）"))
ax.set_xlabel(tr("row mean", "行均值"))
ax.set_ylabel(tr("row standard deviation", "行标准差"))
ax.set_title(tr("Layer norm sends every row to mean 0, std 1",
                "层归一化把每一行都变成均值 0、标准差 1"))
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
# %% [markdown] lang="zh"
# ## 4. 层归一化的反向传播，逐项推导
#
# 参数的梯度很简单：每一行都有 $y_i = \gamma_i\hat x_i + \beta_i$，
# 所以只要对所有行（即所有序列的所有位置）求和：
#
# $$\frac{\partial L}{\partial \gamma_i} = \sum_{\text{所有行}} \frac{\partial L}{\partial y_i}\hat x_i
# \qquad \frac{\partial L}{\partial \beta_i} = \sum_{\text{所有行}} \frac{\partial L}{\partial y_i}.$$
#
# 真正有意思的是输入的梯度，因为每个 $\hat x_j$ 都通过 $\mu$ 和 $\sigma^2$ 依赖于每一个 $x_i$。
# 记 $r = (\sigma^2 + \epsilon)^{-1/2}$，
# $g_j = \frac{\partial L}{\partial y_j}\gamma_j$（即传到 $\hat x_j$ 的梯度）。
# 先求三个简单的导数：
#
# $$\frac{\partial \mu}{\partial x_i} = \frac{1}{C} \qquad
# \frac{\partial \sigma^2}{\partial x_i} = \frac{2(x_i - \mu)}{C} \qquad
# \frac{\partial r}{\partial x_i} = -\tfrac12(\sigma^2+\epsilon)^{-3/2}\,\frac{2(x_i-\mu)}{C}
#   = -\frac{r^2\,\hat x_i}{C}.$$
#
# 再对 $\hat x_j = (x_j - \mu)\,r$ 用乘积法则（product rule），就得到雅可比矩阵（Jacobian）
#
# $$\frac{\partial \hat x_j}{\partial x_i} = r\left(\delta_{ij} - \frac1C - \frac{\hat x_i \hat x_j}{C}\right),$$
#
# 其中 $\delta_{ij}$ 在 $i = j$ 时为 1，否则为 0。把它乘以 $g_j$ 再对 $j$ 求和：
#
# $$\frac{\partial L}{\partial x_i} = r\Big(\underbrace{g_i}_{\text{第 1 项：直接}}
#   \;-\; \underbrace{\tfrac1C\textstyle\sum_j g_j}_{\text{第 2 项：经过 }\mu}
#   \;-\; \underbrace{\hat x_i\,\tfrac1C\textstyle\sum_j g_j\hat x_j}_{\text{第 3 项：经过 }\sigma^2}\Big).$$
#
# 我们先在一行数据上，用库中前向函数的有限差分来核对雅可比矩阵的公式，
# 再看看这三项各自是什么样子。

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
print(tr("Jacobian formula matches finite differences; the three terms add up to J @ g",
         "雅可比矩阵的公式与有限差分一致；三项之和等于 J @ g"))

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
lim = np.abs(J_formula).max()
im = axes[0].imshow(J_formula, cmap="RdBu_r", vmin=-lim, vmax=lim)
axes[0].set_xlabel(tr("output x̂_j", "输出 x̂_j"))
axes[0].set_ylabel(tr("input x_i", "输入 x_i"))
axes[0].set_title("∂x̂_j/∂x_i = r(δ_ij − 1/C − x̂_i x̂_j / C)")
fig.colorbar(im, ax=axes[0])
channels = np.arange(C)
for off, term, label in [(-0.3, term1, tr("term 1: r g", "第 1 项：r g")),
                         (-0.1, term2, tr("term 2: −r mean(g)", "第 2 项：−r mean(g)")),
                         (0.1, term3, tr("term 3: −r x̂ mean(g x̂)", "第 3 项：−r x̂ mean(g x̂)"))]:
    axes[1].bar(channels + off, term, width=0.2, label=label)
axes[1].plot(channels + 0.3, term1 + term2 + term3, "k_", ms=14, mew=3,
             label=tr("sum = dL/dx", "三项之和 = dL/dx"))
axes[1].axhline(0, color="gray", lw=0.5)
axes[1].set_xlabel(tr("channel i", "通道 i"))
axes[1].set_ylabel(tr("contribution to dL/dx_i", "对 dL/dx_i 的贡献"))
axes[1].set_title(tr("The three terms of the layer-norm backward", "层归一化反向传播的三项"))
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
# %% [markdown] lang="zh"
# 由这个公式可以推出两条性质，正好拿来做测试。
# 给一行的每个元素都加上同一个常数，$\hat x$ 不变，所以梯度在 $(1, \dots, 1)$ 方向上没有分量：
# $\sum_i \partial L/\partial x_i = 0$。
# 把一行整体放大或缩小（只要方差远大于 $\epsilon$），$\hat x$ 也不变，
# 所以 $\sum_i \hat x_i\, \partial L/\partial x_i \approx 0$。
#
# **练习 2**：写出层归一化的反向传播，其中 $x$ 的形状为 $(B, T, C)$，
# $\gamma$ 和 $\beta$ 的形状为 $(C,)$。
# 这里的前向函数只缓存它的输入，所以反向函数要先重新算出 $\hat x$ 和 $r$（这部分代码已经给出）。
# `minigpt` 自己的层归一化则把 $\hat x$ 和 $r$ 存进缓存：多占一点内存，还是多做一点重复计算，两种做法都可以。

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
assert check(tr("layer norm backward", "层归一化反向传播"), layer_norm, my_layernorm_backward,
             inputs)

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
# %% [markdown] lang="zh"
# 再让库中的这一对函数（`layernorm_forward` 和 `layernorm_backward`）接受同样的检验，
# 并打印完整的报告：每个张量占一行，列出误差最大的元素（“最差处”），
# 以及该处的解析梯度和数值梯度（numeric gradient），即报告中的“解析”和“数值”。
#
# 接着验证上面的两条性质，最后把解析梯度的每个元素与它的数值估计画在一张图上对照。

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
ax.set_xlabel(tr("numeric ∂L/∂x (centred differences)", "数值梯度 ∂L/∂x（中心差分）"))
ax.set_ylabel(tr("analytic ∂L/∂x (layernorm_backward)", "解析梯度 ∂L/∂x（layernorm_backward）"))
ax.set_title(tr("Every entry on the diagonal", "每个元素都落在对角线上"))
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
# %% [markdown] lang="zh"
# ## 5. $\epsilon$ 是用来防什么的
#
# 如果一行是常数，那么 $\sigma^2 = 0$，$\hat x = 0/0$：没有 $\epsilon$ 时输出是 NaN，
# 而一个 NaN 只需一步就会扩散到整个网络。
# 取 $\epsilon = 10^{-5}$（`minigpt.ops.layernorm.LN_EPS`，与 PyTorch 相同）时，
# 这一行被映射为 $\hat x = 0$，$y = \beta$。
#
# 几乎是常数的行则是更隐蔽的危险。反向传播要乘以 $r = 1/\sqrt{\sigma^2+\epsilon}$，
# 所以标准差极小的一行会得到巨大的梯度；
# $\epsilon$ 给它设了上限：$r \le 1/\sqrt{\epsilon} \approx 316$。

# %%
const = np.full((1, 8), 3.0)
with np.errstate(invalid="ignore", divide="ignore"):
    y_no_eps, _ = layernorm_forward(const, w, b, eps=0.0)
y_eps, _ = layernorm_forward(const, w, b)
assert np.all(np.isnan(y_no_eps))
assert np.allclose(y_eps, b)
print(tr("constant row: eps = 0 gives", "常数行：eps = 0 时得到"), y_no_eps[0, :3],
      tr("...; eps = 1e-5 gives y = beta", "...；eps = 1e-5 时得到 y = beta"))

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
print(tr(f"max |dx| over all spreads: {grad_size[LN_EPS].max():.0f} with eps, "
         f"{grad_size[0.0].max():.1e} without",
         f"取遍所有标准差，max |dx| 最大为：有 eps 时 {grad_size[LN_EPS].max():.0f}，"
         f"没有 eps 时 {grad_size[0.0].max():.1e}"))

fig, ax = plt.subplots(figsize=(7, 4))
ax.loglog(stds, grad_size[0.0], "--", label="eps = 0")
ax.loglog(stds, grad_size[LN_EPS], "-", label=f"eps = {LN_EPS:g}")
ax.axhline(1 / np.sqrt(LN_EPS), color="gray", ls=":", label="1/√eps")
ax.set_xlabel(tr("standard deviation of the input row", "输入行的标准差"))
ax.set_ylabel("max |∂L/∂x|")
ax.set_title(tr("eps caps the gradient of nearly constant rows", "eps 给近乎常数的行的梯度设了上限"))
ax.legend()
plt.show()

# %% [markdown]
# **Summary.** Backpropagation is the chain rule applied op by op, and each op's
# backward can be derived on paper and checked in a second with centred differences.
# The layer-norm backward has three terms, one per path from $x$ to $\hat x$ (direct,
# through the mean, through the variance), and $\epsilon$ keeps both its forward and
# its backward finite. Next: notebook 4 assembles all the ops into a GPT.
# %% [markdown] lang="zh"
# **小结**：教材第 3.4 节第 5 步的“反向传播”，就是把链式法则逐个运算地用下去；
# 每个运算的反向传播都可以在纸上推导出来，再用中心差分在一秒钟内核对。
# 层归一化的反向传播有三项，分别对应从 $x$ 到 $\hat x$ 的三条路径（直接路径、经过均值、经过方差）；
# $\epsilon$ 则保证它的前向传播和反向传播都不会出现无穷大或 NaN。
# 下一步：笔记本 4 把所有运算组装成一个 GPT。

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
# %% [markdown] lang="zh"
# ## 思考题
#
# 先用文字回答；题目中要求验证的，再在一个新单元格里写几行代码来确认。这些题都不会自动检查。
#
# 1. **$\epsilon$ 的代价。** 第 5 节说明了 $\epsilon$ 防的是什么，但它并非没有代价：
#    每一行得到的是 $\mathrm{var}(\hat x) = \sigma^2/(\sigma^2+\epsilon)$，而不是 1。
#    标准差 $\sigma$ 小于多少时，这个值比 1 小 1% 以上？
#    标准差小到什么程度时，层归一化就完全起不到归一化的作用了？
#    （对 $\sigma$ = 0.1、0.01、0.003、0.001 计算这个公式。）
#    为什么 $\epsilon$ 加在根号里面的 $\sigma^2$ 上，而不是加在根号外面的 $\sigma = \sqrt{\sigma^2}$ 上？
#    提示：对常数行，求 $\sqrt{\sigma^2}$ 对 $\sigma^2$ 的导数。
# 2. **为什么是三项，哪个测试能发现哪一项。**
#    各用一句话说明：反向传播的三项分别沿着从 $x_i$ 到输出的哪条路径？
#    第 4 节还给出了正确梯度应满足的两条性质：
#    $\sum_i \partial L/\partial x_i = 0$ 和 $\sum_i \hat x_i\,\partial L/\partial x_i \approx 0$。
#    先预测：如果你的反向传播漏掉了第 2 项，哪一条性质会被破坏？漏掉第 3 项呢？
#    然后复制一份 `my_layernorm_backward`，依次删去这两项，计算两个和。
#    这对只用这类性质来测试反向传播有什么启示？
# 3. **常数行。** $x$ 的某一行是 $(3, 3, \dots, 3)$，$\epsilon = 10^{-5}$。
#    不运行任何代码，写出这一行的 $y$，它对 $\partial L/\partial\gamma$ 和 $\partial L/\partial\beta$ 的贡献，
#    以及用 $g = \frac{\partial L}{\partial y}\gamma$ 表示的 $\partial L/\partial x$。
#    如果这一行换成 $(7, 7, \dots, 7)$，其中哪些会变？
#    用 `layernorm_forward` 和 `layernorm_backward` 验证。
#    与普通的行相比，这样一行的输入梯度是小还是大？
#    优化器（optimiser）的下一步更新会对这一行产生什么影响？
