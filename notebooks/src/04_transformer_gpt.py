# %% [markdown]
# # 4 · The Transformer block and the whole GPT
#
# Our text describes the Transformer (§3.1) as built from two key components, attention
# and positional encoding, and credits it with three strengths: it can process every
# position of a sequence in parallel (并行处理序列中的每个位置), it captures long-distance
# dependencies (长距离依赖关系), and it has good expressive power (较好的表达能力); the first two we
# can show numerically. A working GPT needs a few more parts: token embeddings, an MLP,
# residual connections, layer norms and an output head. This notebook assembles them,
# with `minigpt` doing every computation:
#
# 1. the block: attention and MLP, each wrapped in a layer norm and a residual (five
#    exercises: the backwards of GELU, dropout, the split into heads, the MLP, the block);
# 2. the whole model, with the shape of every intermediate array;
# 3. how many parameters, and where they sit;
# 4. the text's two claims, shown numerically;
# 5. a gradient check of the whole model;
# 6. checking another implementation against this one, tensor by tensor.
# %% [markdown] lang="zh"
# # 4 · Transformer 块与完整的 GPT
#
# 教材第 3.1 节说，Transformer 架构由注意力机制（attention mechanism）和位置编码（positional encoding）
# 两个关键组件构成，并且有三项优势：“可以并行处理序列中的每个位置，有效地捕捉长距离依赖关系，
# 并具有较好的表达能力”。其中前两项可以用数值展示出来。
#
# 不过，一个能工作的 GPT 还需要另外几个部件：词元嵌入（token embedding）、多层感知机（MLP）、
# 残差连接（residual connection）、层归一化（layer normalisation）和输出头（output head）。
# 本笔记本把这些部件组装起来，所有计算都由 `minigpt` 完成：
#
# 1. Transformer 块（block）：注意力和 MLP，各自前面有一个层归一化，外面绕一条残差连接；
#    共五个练习，依次写出 GELU、随机失活（dropout）、拆分多头、MLP 和整个块的
#    反向传播（backpropagation）；
# 2. 完整的模型，以及每个中间数组的形状；
# 3. 参数有多少个，分布在哪里；
# 4. 用数值验证教材的两个说法；
# 5. 对整个模型做梯度检验（gradient check）；
# 6. 以本实现为准，逐个检查另一个实现的张量（tensor）。

# %%
import os
QUICK = os.environ.get("MINIGPT_QUICK", "0") == "1"   # 1: the short run the tests use

import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
%matplotlib inline

from minigpt.block import (block_backward, block_forward, mlp_backward, mlp_forward,
                           self_attention_backward, self_attention_forward, subdict)
from minigpt.config import GPTConfig
from minigpt.gradcheck import check, gradcheck, gradcheck_model   # check: a one-line PASS/FAIL
from minigpt.model import GPT, param_shapes
from minigpt.ops.attention import causal_mask, merge_heads, split_heads
from minigpt.ops.dropout import dropout_backward, dropout_forward
from minigpt.ops.embedding import embedding_forward
from minigpt.ops.gelu import gelu_backward, gelu_forward
from minigpt.ops.layernorm import layernorm_backward, layernorm_forward
from minigpt.ops.linear import linear_backward, linear_forward
from minigpt.ops.loss import cross_entropy_forward
from minigpt.ops.positional import sinusoidal_table
from minigpt.ops.softmax import softmax_forward
from minigpt.language import tr      # tr(english, chinese): what this edition prints and draws
from minigpt.plots import use_cjk_font

np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)
use_cjk_font()                          # plots can draw Chinese (the font minigpt ships)

# %% [markdown]
# ## 1. The block
#
# A GPT block (the "pre-norm" layout of GPT-2) updates a residual stream $x$ of shape
# $(B, T, C)$ twice:
#
# $$x \leftarrow x + \text{Attn}(\text{LN}_1(x)) \qquad
#   x \leftarrow x + \text{MLP}(\text{LN}_2(x))$$
#
# Attention is where positions exchange information; the MLP then works on each position
# alone: $\text{MLP}(h) = \text{GELU}(hW_{fc} + b_{fc})W_{proj} + b_{proj}$ with a hidden
# width of $4C$, and GPT-2's smooth non-linearity
#
# $$\text{GELU}(x) = \tfrac12 x\left(1 + \tanh\left(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\right)\right).$$
#
# The residual "$x + \dots$" matters for learning: $\partial(x + f(x))/\partial x = I +
# \partial f/\partial x$ ($I$ the identity), so the gradient always has a direct path
# through a block. We check GELU against its formula, its backward numerically, and that
# a block whose two output projections are zero is exactly the identity.
# %% [markdown] lang="zh"
# ## 1. Transformer 块
#
# GPT 的块采用 GPT-2 的预归一化（pre-norm）布局，
# 对形状为 $(B, T, C)$ 的残差流（residual stream）$x$ 做两次更新：
#
# $$x \leftarrow x + \text{Attn}(\text{LN}_1(x)) \qquad
#   x \leftarrow x + \text{MLP}(\text{LN}_2(x))$$
#
# 各个位置在注意力这一步相互交换信息；之后 MLP 对每个位置单独计算：
# $\text{MLP}(h) = \text{GELU}(hW_{fc} + b_{fc})W_{proj} + b_{proj}$，隐藏层宽度为 $4C$。
# 其中的 GELU 激活函数是 GPT-2 所用的平滑非线性函数：
#
# $$\text{GELU}(x) = \tfrac12 x\left(1 + \tanh\left(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\right)\right).$$
#
# 残差连接中的“$x + \dots$”对学习至关重要：$\partial(x + f(x))/\partial x = I +
# \partial f/\partial x$（$I$ 为单位矩阵），所以梯度穿过一个块时，总有一条直达的通路。
# 下面验证三件事：GELU 与它的公式一致；它的反向传播经得起数值检验；
# 两个输出投影都为零的块恰好是恒等映射（identity）。

# %%
z = np.linspace(-4, 4, 401)
gelu, cache = gelu_forward(z)
formula = 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))
assert np.allclose(gelu, formula, atol=1e-15)
report = gradcheck(gelu_forward, gelu_backward, {"x": rng.standard_normal((4, 5)) * 2})
assert report.ok
dgelu = gelu_backward(np.ones_like(z), cache)
print(tr(f"GELU matches its formula; its backward passes gradcheck "
         f"(rel error {report.max_rel_error:.0e})",
         f"GELU 与其公式一致；它的反向传播通过了梯度检验"
         f"（相对误差 {report.max_rel_error:.0e}）"))

config = GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=32,
                   dtype="float64")
block_params = subdict(GPT(config).params, "h.0.")       # "ln_1.w", "attn.c_attn.w", ...
x = rng.standard_normal((2, 10, config.n_embd))
silent = dict(block_params)
for name in ("attn.c_proj.w", "attn.c_proj.b", "mlp.c_proj.w", "mlp.c_proj.b"):
    silent[name] = np.zeros_like(silent[name])
assert np.array_equal(block_forward(x, silent, config.n_head)[0], x)
print(tr("a block with zero output projections is the identity: the residual path",
         "两个输出投影全为零的块就是恒等映射：这就是残差通路"))

fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot(z, gelu, label="GELU(x)")
ax.plot(z, dgelu, "--", label=tr("GELU'(x)  (from gelu_backward)", "GELU'(x)（由 gelu_backward 算出）"))
ax.plot(z, np.maximum(z, 0), ":", color="gray",
        label=tr("ReLU(x), for comparison", "ReLU(x)，用于对比"))
ax.set_xlabel("x")
ax.set_ylabel(tr("value", "函数值"))
ax.set_title(tr("GELU: a smooth ReLU, with a small negative dip",
                "GELU：平滑的 ReLU，在负半轴略低于零"))
ax.legend()
plt.show()

# %% [markdown]
# Now write the block's backward yourself, one piece at a time, in five exercises,
# smallest first: GELU, dropout, the split into heads, the MLP, and then the block
# itself with its two residuals. Each one
# runs on its own small random inputs (its own generator, so the rest of the notebook
# sees the same random numbers with or without them) and is checked by
# `check`, which compares your backward with finite differences and prints one line.
#
# **GELU's derivative.** Write $u = \sqrt{2/\pi}\,(x + 0.044715\,x^3)$ and
# $y = \tfrac12 x\,(1 + \tanh u)$. The product rule gives two terms, and the chain rule
# through $\tanh$ (whose derivative is $1 - \tanh^2$) gives the second its factors:
#
# $$\frac{dy}{dx} = \underbrace{\tfrac12\left(1 + \tanh u\right)}_{\text{term 1: } x\text{'s own factor}}
#   + \underbrace{\tfrac12\,x\left(1 - \tanh^2 u\right)\frac{du}{dx}}_{\text{term 2: through }\tanh},
#   \qquad \frac{du}{dx} = \sqrt{2/\pi}\,\left(1 + 3 \cdot 0.044715\,x^2\right).$$
#
# Term 1 alone is a smoothed step (the "gate"); term 2 is what makes the derivative
# dip below zero for negative $x$ and overshoot 1 just right of zero, the shape of the
# dashed curve above. (`minigpt` computes the same thing through $\tfrac12(1 + \tanh u) =
# \sigma(2u)$, which keeps more digits; the value is the same.)
#
# **Exercise 1.** Write `my_gelu_backward` from the formula above. The forward caches
# only its input `x`, so the backward recomputes $u$ and $\tanh u$ from it. Do not
# forget the upstream gradient `dy`.
# %% [markdown] lang="zh"
# 下面请你亲手写出块的反向传播。它分成五个练习，从小到大依次是：GELU、随机失活、拆分多头、MLP，最后是带两条残差连接的整个块。
# 每个练习都在自己的小规模随机输入上运行（用的是它自己的随机数生成器，
# 所以不论做不做这些练习，笔记本其余部分得到的随机数都一样），
# 并由 `check` 判定：它把你写的反向传播与有限差分（finite differences）的结果相比较，输出一行结论。
#
# **GELU 的导数。** 记 $u = \sqrt{2/\pi}\,(x + 0.044715\,x^3)$，$y = \tfrac12 x\,(1 + \tanh u)$。
# 由乘积法则（product rule）得到两项；第二项中还要对 $\tanh$ 用链式法则（chain rule），
# $\tanh$ 的导数是 $1 - \tanh^2$，由此得到它的各个因子：
#
# $$\frac{dy}{dx} = \underbrace{\tfrac12\left(1 + \tanh u\right)}_{\text{第 1 项：}x\text{ 自身的因子}}
#   + \underbrace{\tfrac12\,x\left(1 - \tanh^2 u\right)\frac{du}{dx}}_{\text{第 2 项：经过 }\tanh},
#   \qquad \frac{du}{dx} = \sqrt{2/\pi}\,\left(1 + 3 \cdot 0.044715\,x^2\right).$$
#
# 单看第 1 项，它是一个平滑的阶跃函数（起“门”的作用）；
# 正是第 2 项使导数在 $x$ 为负时降到零以下、在零右侧不远处超过 1，这就是上图中虚线的形状。
# （`minigpt` 借助 $\tfrac12(1 + \tanh u) = \sigma(2u)$ 来计算同一个量，这样能保留更多位有效数字；
# 结果是一样的。）
#
# **练习 1**：按照上面的公式写出 `my_gelu_backward`。前向传播（forward pass）只缓存了输入 `x`，
# 所以反向传播要由它重新算出 $u$ 和 $\tanh u$。别忘了乘上上游梯度（upstream gradient）`dy`。

# %%
def gelu_with_cache(x):
    """x: any shape -> y (same shape), cache = x (the backward recomputes tanh from it)."""
    y, _ = gelu_forward(x)
    return y, x


def my_gelu_backward(dy, x):
    """dy: dL/dy, x: the cached input, both the same shape -> {"x": dL/dx}."""
    # BEGIN SOLUTION
    u = np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)
    t = np.tanh(u)
    du_dx = np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x ** 2)
    dx = dy * (0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * du_dx)   # term 1 + term 2
    # END SOLUTION
    return {"x": dx}

# %% tags=["check"]
inputs = {"x": np.random.default_rng(41).standard_normal((4, 6)) * 2}
assert check(tr("GELU backward", "GELU 的反向传播"), gelu_with_cache, my_gelu_backward, inputs)

# %% tags=["solution-only"]
x_ex = np.random.default_rng(1).standard_normal((3, 5, 8)) * 3
dy_ex = np.random.default_rng(2).standard_normal(x_ex.shape)
assert np.allclose(my_gelu_backward(dy_ex, x_ex)["x"],
                   gelu_backward(dy_ex, gelu_forward(x_ex)[1]), atol=1e-14)
print("my_gelu_backward == minigpt.ops.gelu.gelu_backward")

# %% [markdown]
# **Dropout (随机失活).** In training, each branch's output passes through dropout
# before it joins the residual stream: every entry is zeroed with probability $p$ and
# the survivors are divided by $1 - p$ ("inverted" dropout), so that the expected value
# is unchanged and evaluation can simply skip the step:
#
# $$y = x \odot m, \qquad m_i = \begin{cases} 1/(1-p) & \text{kept (probability } 1-p) \\
#   0 & \text{dropped} \end{cases}$$
#
# Once the mask is drawn, $y$ is $x$ times a constant, so $\partial L/\partial x =
# \partial L/\partial y \odot m$: dropped entries pass no gradient, kept ones pass it
# scaled by the same $1/(1-p)$. A gradient check needs the *same* mask in every
# forward (otherwise nudging $x$ also changes which entries survive, and the finite
# differences measure noise). `dropout_forward` draws its mask from a generator the
# caller passes, so a fresh generator with a fixed seed in each call gives the same
# mask every time; that is how `tests/test_ops.py` checks it, and how the forward below
# works.
#
# **Exercise 2.** Write `my_dropout_backward`. The forward caches which entries were
# kept (a boolean array `keep`, the same shape as `x`) and the drop probability `p`.
# %% [markdown] lang="zh"
# **随机失活。** 训练时，每个分支的输出在汇入残差流之前都要经过随机失活：
# 每个元素以概率 $p$ 被置零，保留下来的元素除以 $1 - p$，这种做法叫倒置随机失活（inverted dropout）。
# 这样期望值保持不变，评估时直接跳过这一步即可：
#
# $$y = x \odot m, \qquad m_i = \begin{cases} 1/(1-p) & \text{保留（概率为 } 1-p\text{）} \\
#   0 & \text{丢弃} \end{cases}$$
#
# 掩码（mask）一旦抽定，$y$ 就只是 $x$ 乘以常数，所以 $\partial L/\partial x =
# \partial L/\partial y \odot m$：被丢弃的元素不传递梯度，保留的元素把梯度同样乘以 $1/(1-p)$ 再传下去。
#
# 做梯度检验时，每次前向传播必须使用*同一个*掩码：否则轻推 $x$ 的同时，
# 哪些元素被保留也会跟着变，有限差分测到的就只是噪声。`dropout_forward` 用调用者传入的随机数生成器抽取掩码，
# 所以每次调用时都新建一个固定种子的生成器，得到的就总是同一个掩码。
# `tests/test_ops.py` 就是这样检验它的，下面的前向函数也是这样做的。
#
# **练习 2**：写出 `my_dropout_backward`。前向传播缓存了哪些元素被保留
# （布尔数组 `keep`，形状与 `x` 相同），以及丢弃概率 `p`。

# %%
P_DROP = 0.3


def dropout_fixed_mask(x):
    """x: any shape -> y, cache (keep, p). A new generator with seed 7 on every call:
    the same mask every time, so y is a smooth (linear) function of x."""
    y, cache = dropout_forward(x, P_DROP, np.random.default_rng(7))
    return y, (cache.mask != 0, P_DROP)


def my_dropout_backward(dy, cache):
    """dy: dL/dy (shape of x), cache: (keep: bool array, p) -> {"x": dL/dx}."""
    keep, p = cache
    # BEGIN SOLUTION
    dx = dy * keep / (1 - p)          # the forward's mask: 1/(1-p) where kept, 0 elsewhere
    # END SOLUTION
    return {"x": dx}

# %% tags=["check"]
inputs = {"x": np.random.default_rng(42).standard_normal((4, 6))}
assert check(tr("dropout backward", "随机失活的反向传播"), dropout_fixed_mask, my_dropout_backward, inputs)

# %% tags=["solution-only"]
x_ex = np.random.default_rng(3).standard_normal((2, 5, 8))
dy_ex = np.random.default_rng(4).standard_normal(x_ex.shape)
y_ex, cache_ex = dropout_fixed_mask(x_ex)
assert np.allclose(my_dropout_backward(dy_ex, cache_ex)["x"],
                   dropout_backward(dy_ex, dropout_forward(x_ex, P_DROP,
                                                           np.random.default_rng(7))[1]))
print(tr(f"my_dropout_backward == minigpt.ops.dropout.dropout_backward "
         f"({(~cache_ex[0]).mean():.0%} of the entries dropped here, p = {P_DROP})",
         f"my_dropout_backward == minigpt.ops.dropout.dropout_backward"
         f"（这里有 {(~cache_ex[0]).mean():.0%} 的元素被置零，p = {P_DROP}）"))

# %% [markdown]
# **Splitting into heads (多头).** Attention runs $n_h$ heads side by side, each on its own
# $h_s = C / n_h$ channels. `split_heads` does it with no arithmetic at all: a reshape
# $(B, T, C) \to (B, T, n_h, h_s)$ cuts each position's channels into $n_h$ groups, and
# a transpose $\to (B, n_h, T, h_s)$ puts the head axis in front, so that one batched
# matmul computes every head's $QK^T$. `merge_heads` undoes both steps in reverse order.
#
# What is the backward of a reshape and a transpose? Neither changes a single value;
# they only move entries to new places. So each entry of $x$ ends up in exactly one
# place of the output, and its gradient is the upstream gradient found at that place:
# move `dq` back where the entries came from, which is the inverse transpose followed by
# the inverse reshape. In other words, the backward of `split_heads` is `merge_heads`
# (and vice versa); `self_attention_backward` uses exactly that.
#
# **Exercise 3.** Write `my_split_heads_backward` with `transpose` and `reshape`
# (not by calling `merge_heads`: the point is to see why it is the answer).
# Careful: a reshape of `dq` straight to $(B, T, C)$ has the right shape and the wrong
# order of entries.
# %% [markdown] lang="zh"
# **拆分成多个头。** 多头注意力（multi-head attention）让 $n_h$ 个头（head）并排运行，
# 每个头使用自己的 $h_s = C / n_h$ 个通道（channel）。`split_heads` 完成拆分时不做任何算术：
# 先变形（reshape）$(B, T, C) \to (B, T, n_h, h_s)$，把每个位置的通道切成 $n_h$ 组；
# 再转置（transpose）$\to (B, n_h, T, h_s)$，把头所在的轴放到前面，
# 这样一次批量矩阵乘法就能算出所有头的 $QK^T$。`merge_heads` 按相反的顺序撤销这两步。
#
# 变形和转置的反向传播是什么？它们不改变任何一个数值，只是把元素搬到新的位置。
# 因此 $x$ 的每个元素都恰好落在输出的某一个位置上，它的梯度就是上游梯度在那个位置上的值。
# 所以只要把 `dq` 的元素搬回原来的位置就行，也就是先做逆转置，再做逆变形。
# 换句话说，`split_heads` 的反向传播就是 `merge_heads`（反之亦然）；`self_attention_backward` 正是这样用的。
#
# **练习 3**：用 `transpose` 和 `reshape` 写出 `my_split_heads_backward`（不要直接调用 `merge_heads`：重点是弄明白它为什么就是答案）。
# 注意：把 `dq` 直接变形为 $(B, T, C)$，形状是对的，元素的顺序却是错的。

# %%
N_HEAD = 3


def split_with_cache(x):
    """x: (B, T, C) -> (B, nh, T, hs), no cache (the shapes are all the backward needs)."""
    return split_heads(x, N_HEAD), None


def my_split_heads_backward(dq, cache):
    """dq: (B, nh, T, hs) = dL/d(split) -> {"x": dL/dx (B, T, C)}."""
    B, nh, T, hs = dq.shape
    # BEGIN SOLUTION
    dx = dq.transpose(0, 2, 1, 3).reshape(B, T, nh * hs)   # (B, T, nh, hs) -> (B, T, C)
    # END SOLUTION
    return {"x": dx}

# %% tags=["check"]
inputs = {"x": np.random.default_rng(43).standard_normal((2, 5, 12))}   # C = 12, hs = 4
assert check(tr("split_heads backward", "split_heads 的反向传播"), split_with_cache, my_split_heads_backward, inputs)

# %% tags=["solution-only"]
x_ex = np.random.default_rng(5).standard_normal((2, 7, 12))
dq_ex = np.random.default_rng(6).standard_normal((2, N_HEAD, 7, 4))
assert np.array_equal(my_split_heads_backward(dq_ex, None)["x"], merge_heads(dq_ex))
assert np.array_equal(merge_heads(split_heads(x_ex, N_HEAD)), x_ex)       # the inverse
print(tr("my_split_heads_backward == minigpt.ops.attention.merge_heads, "
         "and merge_heads(split_heads(x)) == x",
         "my_split_heads_backward == minigpt.ops.attention.merge_heads，"
         "并且 merge_heads(split_heads(x)) == x"))

# %% [markdown]
# **The MLP's backward.** The MLP is three ops in a row, and its backward is their
# backwards in the reverse order, each handing its input gradient to the one before:
#
# | forward | backward |
# |---|---|
# | $h = xW_{fc} + b_{fc}$ | `dx, dW_fc, db_fc = linear_backward(dh, cache.up)` |
# | $a = \text{GELU}(h)$ | `dh = gelu_backward(da, cache.gelu)` |
# | $\text{out} = aW_{proj} + b_{proj}$ | `da, dW_proj, db_proj = linear_backward(dout, cache.down)` |
#
# (read the backward column from the bottom up). `mlp_forward` returns an `MLPCache`
# with one cache per op: `up`, `gelu`, `down`.
#
# **Exercise 4.** Write `my_mlp_backward` by composing `minigpt`'s
# `linear_backward` and `gelu_backward` (or your own GELU backward:
# `my_gelu_backward(da, cache.gelu.x)["x"]`). Return every gradient under the
# parameter's name.
# %% [markdown] lang="zh"
# **MLP 的反向传播。** MLP 是依次执行的三个运算，它的反向传播就是按相反的顺序执行这三个运算的反向传播，
# 每一步都把算出的输入梯度交给前一步：
#
# | 前向传播 | 反向传播 |
# |---|---|
# | $h = xW_{fc} + b_{fc}$ | `dx, dW_fc, db_fc = linear_backward(dh, cache.up)` |
# | $a = \text{GELU}(h)$ | `dh = gelu_backward(da, cache.gelu)` |
# | $\text{out} = aW_{proj} + b_{proj}$ | `da, dW_proj, db_proj = linear_backward(dout, cache.down)` |
#
# （反向传播这一列要从下往上读。）`mlp_forward` 返回一个 `MLPCache`，
# 其中每个运算各有一个缓存（cache）：`up`、`gelu`、`down`。
#
# **练习 4**：组合 `minigpt` 的 `linear_backward` 和 `gelu_backward`（也可以用你自己写的 GELU 反向传播：`my_gelu_backward(da, cache.gelu.x)["x"]`），
# 写出 `my_mlp_backward`。每个梯度都以对应参数的名字为键返回。

# %%
def mlp(x, **p):
    """x: (B, T, C), p: "c_fc.w" (C, 4C), "c_fc.b" (4C,), "c_proj.w" (4C, C), "c_proj.b" (C,)."""
    return mlp_forward(x, p)


def my_mlp_backward(dout, cache):
    """dout: (B, T, C), cache: MLPCache -> {"x", "c_fc.w", "c_fc.b", "c_proj.w", "c_proj.b"}."""
    # BEGIN SOLUTION
    da, dw_proj, db_proj = linear_backward(dout, cache.down)   # out = a W_proj + b_proj
    dh = gelu_backward(da, cache.gelu)                          # a = GELU(h)
    dx, dw_fc, db_fc = linear_backward(dh, cache.up)            # h = x W_fc + b_fc
    # END SOLUTION
    return {"x": dx, "c_fc.w": dw_fc, "c_fc.b": db_fc, "c_proj.w": dw_proj, "c_proj.b": db_proj}

# %% tags=["check"]
ex_rng = np.random.default_rng(44)
inputs = {"x": ex_rng.standard_normal((2, 3, 4)), "c_fc.w": ex_rng.standard_normal((4, 16)),
          "c_fc.b": ex_rng.standard_normal(16), "c_proj.w": ex_rng.standard_normal((16, 4)),
          "c_proj.b": ex_rng.standard_normal(4)}
assert check(tr("MLP backward", "MLP 的反向传播"), mlp, my_mlp_backward, inputs)

# %% tags=["solution-only"]
out_ex, cache_ex = mlp_forward(inputs["x"], inputs)
dout_ex = np.random.default_rng(7).standard_normal(out_ex.shape)
mine = my_mlp_backward(dout_ex, cache_ex)
dx_ex, theirs = mlp_backward(dout_ex, cache_ex)
assert np.allclose(mine.pop("x"), dx_ex)
assert mine.keys() == theirs.keys() and all(np.allclose(mine[k], theirs[k]) for k in mine)
print("my_mlp_backward == minigpt.block.mlp_backward")

# %% [markdown]
# **The block's backward: residuals add gradients.** Read `block_forward` as two lines:
#
# $$x_{mid} = x + \text{drop}(\text{Attn}(\text{LN}_1(x))) \qquad
#   x_{out} = x_{mid} + \text{drop}(\text{MLP}(\text{LN}_2(x_{mid})))$$
#
# and undo them from the last. The gradient $G$ arriving at $x_{out}$ reaches $x_{mid}$
# along two roads: straight through the "+" (the identity, so $G$ itself) and through
# dropout, the MLP and $\text{LN}_2$. Two roads into one variable: the gradients **add**,
# $\partial L/\partial x_{mid} = G + (\text{the MLP branch's gradient})$. The same
# happens again at $x$ with the attention branch. The cache is a `BlockCache` whose
# fields are the sub-layers' caches, in the forward's order: `ln1`, `attn`, `drop1`,
# `ln2`, `mlp`, `drop2`. The sub-backwards you may call:
#
# - `dropout_backward(d, cache.drop2)` returns the gradient of the dropout's input;
# - `mlp_backward(d, cache.mlp)` and `self_attention_backward(d, cache.attn)` return
#   `(dx, grads)`, with grads under local names ("c_fc.w", ...) that the block stores
#   as "mlp.c_fc.w", "attn.c_attn.w", ...;
# - `layernorm_backward(d, cache.ln2)` returns `(dx, dw, db)`, stored as "ln_2.w",
#   "ln_2.b".
#
# **Exercise 5.** Write `my_block_backward`. The check runs the block with dropout on
# (probability 0.1, fixed masks), so a forgotten dropout backward shows, and with
# random parameters, so that no zero bias or unit gain hides a mistake.
# %% [markdown] lang="zh"
# **块的反向传播：残差连接让梯度相加。** 把 `block_forward` 看成下面两个式子：
#
# $$x_{mid} = x + \text{drop}(\text{Attn}(\text{LN}_1(x))) \qquad
#   x_{out} = x_{mid} + \text{drop}(\text{MLP}(\text{LN}_2(x_{mid})))$$
#
# 然后从最后一步开始逐步撤销。到达 $x_{out}$ 的梯度 $G$ 沿两条路到达 $x_{mid}$：
# 一条直接穿过“+”（恒等映射，所以就是 $G$ 本身），另一条依次穿过随机失活、MLP 和 $\text{LN}_2$。
# 两条路汇入同一个变量，梯度就**相加**：$\partial L/\partial x_{mid} = G + (\text{MLP 分支的梯度})$。
# 到了 $x$ 处，注意力分支也是同样的情形。
# 缓存是一个 `BlockCache`，它的各个字段是各子层的缓存，按前向传播的顺序排列：`ln1`、`attn`、`drop1`、`ln2`、`mlp`、`drop2`。
# 可以调用的子层反向传播有：
#
# - `dropout_backward(d, cache.drop2)` 返回对随机失活层输入的梯度；
# - `mlp_backward(d, cache.mlp)` 和 `self_attention_backward(d, cache.attn)` 返回 `(dx, grads)`，
#   其中 grads 以局部名字（"c_fc.w" 等）为键，块把它们存为 "mlp.c_fc.w"、"attn.c_attn.w" 等；
# - `layernorm_backward(d, cache.ln2)` 返回 `(dx, dw, db)`，存为 "ln_2.w"、"ln_2.b"。
#
# **练习 5**：写出 `my_block_backward`。检查时块开启了随机失活（概率 0.1，掩码固定），
# 所以漏掉随机失活的反向传播就会暴露出来；参数也取随机值，
# 这样就不会有恰好为零的偏置或恰好为 1 的增益把错误掩盖掉。

# %%
small = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.1,
                  dtype="float64")


def block_with_dropout(x, **p):
    """x: (B, T, C) -> (B, T, C), BlockCache; the same dropout masks on every call."""
    return block_forward(x, p, small.n_head, small.dropout, np.random.default_rng(5))


def my_block_backward(dout, cache):
    """dout: (B, T, C) = dL/dx_out, cache: BlockCache -> {"x": dL/dx, and one gradient
    per parameter: "ln_1.w", "ln_1.b", "attn.c_attn.w", ..., "mlp.c_proj.b"}."""
    grads = {}
    # BEGIN SOLUTION
    # x_out = x_mid + drop2(MLP(LN_2(x_mid)))
    dm = dropout_backward(dout, cache.drop2)
    dh, g = mlp_backward(dm, cache.mlp)
    grads.update({"mlp." + name: value for name, value in g.items()})
    dh, grads["ln_2.w"], grads["ln_2.b"] = layernorm_backward(dh, cache.ln2)
    dx_mid = dout + dh                             # residual 2: the two roads add
    # x_mid = x + drop1(Attn(LN_1(x)))
    da = dropout_backward(dx_mid, cache.drop1)
    dh, g = self_attention_backward(da, cache.attn)
    grads.update({"attn." + name: value for name, value in g.items()})
    dh, grads["ln_1.w"], grads["ln_1.b"] = layernorm_backward(dh, cache.ln1)
    dx = dx_mid + dh                               # residual 1
    # END SOLUTION
    return {"x": dx, **grads}

# %% tags=["check"]
ex_rng = np.random.default_rng(45)
inputs = {"x": ex_rng.standard_normal((2, 4, small.n_embd)),
          **{name: value + 0.2 * ex_rng.standard_normal(value.shape)     # off the init
             for name, value in subdict(GPT(small, seed=1).params, "h.0.").items()}}
assert check(tr("block backward", "块的反向传播"), block_with_dropout, my_block_backward, inputs)

# %% tags=["solution-only"]
out_ex, cache_ex = block_with_dropout(**inputs)
dout_ex = np.random.default_rng(8).standard_normal(out_ex.shape)
mine = my_block_backward(dout_ex, cache_ex)
dx_ex, theirs = block_backward(dout_ex, cache_ex)
assert np.allclose(mine.pop("x"), dx_ex)
assert mine.keys() == theirs.keys() and all(np.allclose(mine[k], theirs[k]) for k in mine)
print(tr(f"my_block_backward == minigpt.block.block_backward ({len(theirs)} parameter gradients)",
         f"my_block_backward == minigpt.block.block_backward（共 {len(theirs)} 个参数梯度）"))

# %% [markdown]
# `minigpt`'s own `block_backward` is the same composition (with a `tape` for the
# traces of section 6). Here it is on this notebook's wider block ($C = 32$, no
# dropout), with `gradcheck`'s full table: one line per tensor. It returns the
# gradient of its input and a dict of parameter gradients with the same names as the
# parameters, so a tiny wrapper lets `gradcheck` treat them all as inputs.
# %% [markdown] lang="zh"
# `minigpt` 自己的 `block_backward` 也是同样的组合（另外多一个 `tape` 参数，用于第 6 节的轨迹）。
# 下面在本笔记本较宽的块上（$C = 32$，不用随机失活）运行它，并打印 `gradcheck` 的完整表格：
# 每个张量一行。它返回输入的梯度，以及一个与参数同名的参数梯度字典，
# 所以只要一个小小的包装函数，`gradcheck` 就能把它们都当作输入来检验。

# %%
def block(x, **p):
    return block_forward(x, p, config.n_head)


def block_grads(dout, cache):
    dx, grads = block_backward(dout, cache)
    return {"x": dx, **grads}


report = gradcheck(block, block_grads, {"x": rng.standard_normal((2, 5, config.n_embd)),
                                        **block_params},
                   max_elements=20 if QUICK else None)
print(report)
assert report.ok

report.plot(title=tr("One block: analytic vs numeric gradient, per tensor",
                     "一个块：逐个张量比较解析梯度与数值梯度"))
plt.show()

# %% [markdown]
# ## 2. The whole model, shape by shape
#
# A GPT maps token ids to a score for every possible next token at every position:
#
# $$x^{(0)} = W_{te}[\text{idx}] + PE \qquad x^{(l+1)} = \text{Block}_l(x^{(l)}) \qquad
#   \text{logits} = \text{LN}_f(x^{(L)})\,W_{te}^T$$
#
# The output head reuses the embedding table $W_{te}$ (*weight tying*): the same vector
# that represents a token at the input scores it at the output. Letters: $B$ batch,
# $T$ time, $C$ channels, $n_h$ heads of size $h_s = C/n_h$, $V$ vocabulary.
#
# Below we run a model step by step with `minigpt`'s functions, recording every shape,
# and check that the result equals `model.forward`, whose cache keeps what each layer
# computed under its name (`model.cache.attention(0)` is block 0's attention weights).
# %% [markdown] lang="zh"
# ## 2. 完整的模型，逐个查看形状
#
# GPT 把词元编号映射为分数：每个位置上、每个可能的下一个词元各有一个分数，称为对数几率（logits）：
#
# $$x^{(0)} = W_{te}[\text{idx}] + PE \qquad x^{(l+1)} = \text{Block}_l(x^{(l)}) \qquad
#   \text{logits} = \text{LN}_f(x^{(L)})\,W_{te}^T$$
#
# 输出头重复使用嵌入表 $W_{te}$，这叫*权重共享*（weight tying）：在输入端表示某个词元的那个向量，在输出端也用来给这个词元打分。
# 记号：$B$ 为批大小（batch size），$T$ 为时间步（位置）数，$C$ 为通道数
# （即模型维度，教材第 3.3 节记作 $d_{model}$，称为“模型的输入维度”），$n_h$ 为头数，
# 每个头的大小为 $h_s = C/n_h$（即教材第 3.2 节的 $d_k$），$V$ 为词表（vocabulary）大小。
#
# 下面用 `minigpt` 的函数一步一步地运行模型，记录每一步的形状，并检查结果与 `model.forward` 相同。
# 这就是教材第 3.4 节第 3 步“正向传播”（即前向传播）所说的“将输入数据通过模型中的各个层次进行计算，
# 得到预测结果”；表的最后一行是交叉熵（cross-entropy）损失，即第 4 步“损失计算”。
# `model.forward` 的缓存按名字保存了每一层的计算结果：`model.cache.attention(0)`
# 就是第 0 个块的注意力权重（attention weights），教材称之为“关注度”。

# %%
model = GPT(config, seed=0)
p = model.params
B, T = 2, 16
C, nh, V = config.n_embd, config.n_head, config.vocab_size
idx = rng.integers(0, V, (B, T))
targets = rng.integers(0, V, (B, T))
rows = []


def note(step, formula, array):
    rows.append((step, formula, array.shape))
    return array


tok = note(tr("token embeddings", "词元嵌入"), "W_te[idx]",
           embedding_forward(idx, p["wte"])[0])
pe = note(tr("positional encoding", "位置编码"), "PE[:T]", sinusoidal_table(T, C))
x = note(tr("block 0 input", "块 0 的输入"),
         tr("tok + PE (broadcast over B)", "tok + PE（沿 B 广播）"), tok + pe)
first = subdict(p, "h.0.")                                  # look inside block 0
h = note("&nbsp;&nbsp;LN₁(x)", tr("layer norm of each position", "对每个位置做层归一化"),
         layernorm_forward(x, first["ln_1.w"], first["ln_1.b"])[0])
qkv = note(tr("&nbsp;&nbsp;q, k, v side by side", "&nbsp;&nbsp;q、k、v 并排"), "h W_attn + b_attn",
           linear_forward(h, first["attn.c_attn.w"], first["attn.c_attn.b"])[0])
q, k, v = (split_heads(t, nh) for t in np.split(qkv, 3, axis=-1))
note(tr("&nbsp;&nbsp;q (and k, v) per head", "&nbsp;&nbsp;每个头的 q（k、v 同样）"), "split_heads", q)
scores = note(tr("&nbsp;&nbsp;scores, per head", "&nbsp;&nbsp;每个头的注意力分数"), "q kᵀ / √h_s",
              q @ k.swapaxes(-1, -2) / np.sqrt(C // nh))
attn = note(tr("&nbsp;&nbsp;attention output", "&nbsp;&nbsp;注意力的输出"), "Attn(LN₁(x))",
            self_attention_forward(h, subdict(first, "attn."), nh)[0])
x_mid = note(tr("&nbsp;&nbsp;first residual", "&nbsp;&nbsp;第一个残差连接"), "x + Attn(LN₁(x))", x + attn)
h2 = layernorm_forward(x_mid, first["ln_2.w"], first["ln_2.b"])[0]
note(tr("&nbsp;&nbsp;MLP hidden", "&nbsp;&nbsp;MLP 隐藏层"), "GELU(LN₂(x) W_fc + b_fc)",
     gelu_forward(linear_forward(h2, first["mlp.c_fc.w"], first["mlp.c_fc.b"])[0])[0])
mlp = note(tr("&nbsp;&nbsp;MLP output", "&nbsp;&nbsp;MLP 的输出"), "MLP(LN₂(x))", mlp_forward(h2, subdict(first, "mlp."))[0])
assert np.allclose(x_mid + mlp, block_forward(x, first, nh)[0])   # the block's two lines
for l in range(config.n_layer):
    x = note(tr(f"block {l} output", f"块 {l} 的输出"), "x + Attn(...) + MLP(...)",
             block_forward(x, subdict(p, f"h.{l}."), nh)[0])
x = note(tr("final layer norm", "最后的层归一化"), "LN_f(x)", layernorm_forward(x, p["ln_f.w"], p["ln_f.b"])[0])
logits = note(tr("logits", "对数几率（logits）"), tr("x W_teᵀ (tied head)", "x W_teᵀ（与词元嵌入共享权重）"),
              x @ p["wte"].T)
loss, _ = cross_entropy_forward(logits, targets)
note(tr("loss", "损失"), tr("mean −log p(target)", "−log p(目标) 的平均"), np.array(loss))

model_logits, model_loss = model.forward(idx, targets)
assert np.allclose(logits, model_logits, atol=1e-12) and np.isclose(loss, model_loss)
# the forward keeps what each layer computed, by name: block 0's attention weights are
# the softmax of our masked scores
scores[..., causal_mask(T, T)] = -np.inf
assert np.allclose(model.cache.attention(0), softmax_forward(scores)[0], atol=1e-12)
assert rows[-2][2] == (B, T, V) and rows[2][2] == (B, T, C)
display(Markdown(
    f"B = {B}, T = {T}, C = {C}, n_h = {nh}, h_s = {C // nh}, V = {V}\n\n"
    + tr("| step | formula | shape |\n|---|---|---|\n", "| 步骤 | 公式 | 形状 |\n|---|---|---|\n")
    + "\n".join(f"| {s} | {f} | `{shape}` |" for s, f, shape in rows)))
print(tr("the step-by-step run gives exactly model.forward's logits, loss and attention weights "
         "(model.cache.attention(0))",
         "逐步运行得到的对数几率、损失和注意力权重（model.cache.attention(0)）"
         "与 model.forward 的完全相同"))

# %% [markdown]
# Why this stacks well: at initialisation `minigpt` (like GPT-2) draws the two output
# projections of each block with a standard deviation scaled by $1/\sqrt{2L}$. Each
# block adds two terms to the residual stream, and shrinking them keeps the stream's
# size from growing with depth: every block starts as a small correction, close to the
# identity, and a deep stack starts close to a shallow one. We measure it in an 8-block
# model with learned positions, whose table starts as small as the token embeddings
# (std 0.02; the sinusoidal table, of size ~0.7, would hide the blocks' updates), once
# as initialised and once with the output projections at the unscaled std 0.02.
# %% [markdown] lang="zh"
# 为什么这样的块能一层层叠起来？参数初始化（parameter initialisation）时，`minigpt`（与 GPT-2 一样）
# 随机抽取每个块的两个输出投影，所用的标准差乘上了 $1/\sqrt{2L}$。每个块向残差流加上两项，
# 把这两项缩小，残差流的大小就不会随深度增长：每个块一开始都只是一个小修正，接近恒等映射；
# 很深的网络一开始也就与浅的网络相差无几。
#
# 我们在一个有 8 个块的模型上测量这一点。它使用可学习位置编码（learned positional embedding），
# 位置表一开始和词元嵌入一样小，标准差为 0.02；如果用正弦位置编码（sinusoidal positional encoding），
# 表中数值的大小约为 0.7，会把各块的更新淹没。
# 测量做两次：一次用初始化得到的原样参数，一次把输出投影恢复为未缩放的标准差 0.02。

# %%
def residual_sizes(model):
    """rms of the residual stream before and after each block, and of each block's update."""
    rms = lambda a: float(np.sqrt(np.mean(a ** 2)))
    x = embedding_forward(idx, model.params["wte"])[0] + model.params["wpe"][:T]
    stream, update = [rms(x)], []
    for l in range(model.config.n_layer):
        x_next, _ = block_forward(x, subdict(model.params, f"h.{l}."), nh)
        update.append(rms(x_next - x))
        stream.append(rms(x_next))
        x = x_next
    return np.array(stream), np.array(update)


deep_config = config.replace(n_layer=8, pos_encoding="learned")
scaled = GPT(deep_config, seed=0)
unscaled = GPT(deep_config, seed=0)
for name in unscaled.params:
    if name.endswith("c_proj.w"):
        unscaled.params[name] *= np.sqrt(2 * deep_config.n_layer)   # back to std 0.02
sizes = {"scaled by 1/√(2L)": residual_sizes(scaled), "unscaled": residual_sizes(unscaled)}
shown = {"scaled by 1/√(2L)": tr("scaled by 1/√(2L)", "按 1/√(2L) 缩放"),   # what the labels say
         "unscaled": tr("unscaled", "不缩放")}
for label, (stream, update) in sizes.items():
    print(tr(f"{label:>18}: stream", f"{shown[label]}：\n  残差流  "), np.round(stream, 3),
          "\n" + tr(" " * 20 + "update", "  每块更新"), np.round(update, 3))
stream, update = sizes["scaled by 1/√(2L)"]
assert update.max() < 0.2 * stream.min()        # every block is a small correction
assert stream.max() / stream.min() < 1.1        # the stream keeps its size
stream, update = sizes["unscaled"]
assert stream[-1] > 1.4 * stream[0]             # without the scale it grows with depth

fig, ax = plt.subplots(figsize=(7, 3.5))
for (label, (stream, update)), color in zip(sizes.items(), ("C0", "C1")):
    ax.plot(range(9), stream, "o-", color=color,
            label=tr(f"stream x after block l, {label}", f"块 l 之后的残差流 x，{shown[label]}"))
    ax.plot(np.arange(1, 9), update, "s--", color=color,
            label=tr(f"block l's update, {label}", f"块 l 的更新，{shown[label]}"))
ax.set_xlabel(tr("block l (0 = embeddings)", "块 l（0 = 嵌入）"))
ax.set_ylabel(tr("root mean square", "均方根"))
ax.set_ylim(0, None)
ax.set_title(tr("At initialisation: the scaled blocks leave the stream's size alone",
                "初始化时：缩放后的块不改变残差流的大小"))
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 3. How many parameters?
#
# Count them from the shapes. Per block: two layer norms ($2C$ each), the fused
# $q,k,v$ projection ($3C^2 + 3C$), the attention output ($C^2 + C$), and the MLP
# ($4C^2 + 4C$ and $4C^2 + C$):
#
# $$N = \underbrace{VC}_{W_{te}} + L\,(12C^2 + 13C) + \underbrace{2C}_{\text{LN}_f}
#   \quad \big(+\ \text{block\_size}\cdot C \text{ for learned positions}\big).$$
#
# The head adds nothing: it is $W_{te}$ again. The check compares the formula with
# `model.num_params()` on several shapes.
# %% [markdown] lang="zh"
# ## 3. 参数有多少个？
#
# 从形状来数。每个块有：两个层归一化（各 $2C$ 个）、合并在一起的 $q,k,v$ 投影（$3C^2 + 3C$）、
# 注意力的输出投影（$C^2 + C$），以及 MLP（$4C^2 + 4C$ 和 $4C^2 + C$）：
#
# $$N = \underbrace{VC}_{W_{te}} + L\,(12C^2 + 13C) + \underbrace{2C}_{\text{LN}_f}
#   \quad \big(+\ \text{block\_size}\cdot C\text{，使用可学习位置编码时}\big).$$
#
# 输出头不增加参数：它还是 $W_{te}$。下面的检查在几种不同的形状上，把公式与 `model.num_params()` 相比较。

# %%
def count(cfg):
    V, C, L = cfg.vocab_size, cfg.n_embd, cfg.n_layer
    n = V * C + L * (12 * C * C + 13 * C) + 2 * C
    return n + (cfg.block_size * C if cfg.pos_encoding == "learned" else 0)


for cfg in [config, GPTConfig(), GPTConfig(vocab_size=1340, n_layer=6, n_embd=192, n_head=6),
            GPTConfig(pos_encoding="learned", n_layer=1)]:
    assert GPT(cfg).num_params() == count(cfg)
    assert sum(np.prod(s) for s in param_shapes(cfg).values()) == count(cfg)
print(tr(f"the formula matches num_params(); this notebook's model has {model.num_params():,}",
         f"公式与 num_params() 一致；本笔记本的模型有 {model.num_params():,} 个参数"))

cfg = GPTConfig(vocab_size=1340, block_size=128, n_layer=4, n_head=4, n_embd=128)
groups = {"embedding W_te": 0, "attention": 0, "MLP": 0, "layer norms": 0}
for name, shape in param_shapes(cfg).items():
    key = ("embedding W_te" if name == "wte" else "attention" if ".attn." in name
           else "MLP" if ".mlp." in name else "layer norms")
    groups[key] += int(np.prod(shape))
assert sum(groups.values()) == count(cfg)

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
bar_labels = {"embedding W_te": tr("embedding W_te", "词元嵌入 W_te"), "attention": tr("attention", "注意力"),
              "MLP": "MLP", "layer norms": tr("layer norms", "层归一化")}    # what the bars say
axes[0].bar([bar_labels[g] for g in groups], list(groups.values()))
for i, n in enumerate(groups.values()):
    axes[0].text(i, n, f"{n:,}", ha="center", va="bottom")
axes[0].set_ylabel(tr("parameters", "参数个数"))
axes[0].set_title(tr(f"Where the {count(cfg):,} parameters sit (V={cfg.vocab_size}, C=128, L=4)",
                     f"{count(cfg):,} 个参数分布在哪里（V={cfg.vocab_size}，C=128，L=4）"))
widths = np.array([32, 64, 128, 256, 512, 768])
axes[1].loglog(widths, [count(cfg.replace(n_embd=int(c), n_head=4)) for c in widths], "o-",
               label=tr("total N", "总数 N"))
axes[1].loglog(widths, 4 * 12 * widths ** 2, "--", label="12 L C²")
axes[1].set_xticks(widths, [str(c) for c in widths])
axes[1].minorticks_off()
axes[1].set_xlabel(tr("width C", "宽度 C"))
axes[1].set_ylabel(tr("parameters", "参数个数"))
axes[1].set_title(tr("The blocks grow like C², the embedding like V·C",
                     "各块的参数按 C² 增长，嵌入按 V·C 增长"))
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# For a character-level chat model the vocabulary ($V \approx 1340$ characters, Chinese
# included) makes the embedding table a noticeable share of a small model: about a fifth
# of the chat model above, and nearly half of notebook 5's two-block, $C = 64$ model.
#
# ## 4. Two of the text's claims, measured
#
# **Every position in parallel.** One call to `model.forward` on a $(B, T)$ batch
# returns the next-token scores for all $T$ positions at once: six matrix products per
# layer (the $q, k, v$ projection, $QK^T$, the weighted sum of $V$, the output
# projection and the MLP's two), no loop over time. The causal mask is what makes this legitimate: position
# $t$'s scores are exactly those we would get by feeding the model only the first
# $t+1$ tokens. We check that equality, and time both ways.
# %% [markdown] lang="zh"
# 对字符级（character-level）的聊天模型来说，词表（$V \approx 1340$ 个字符，包括汉字）
# 让嵌入表在小模型里占了不小的比例：在上面的聊天模型中约占五分之一，
# 在笔记本 5 那个两个块、$C = 64$ 的模型中占将近一半。
#
# ## 4. 实测教材的两个说法
#
# **并行处理每个位置。** 对形状为 $(B, T)$ 的一批输入调用一次 `model.forward`，
# 就同时得到全部 $T$ 个位置的下一个词元分数：每层六次矩阵乘法
# （$q, k, v$ 投影、$QK^T$、对 $V$ 的加权求和、输出投影，以及 MLP 的两次），没有逐个时间步的循环。
# 这就是教材所说的“并行处理序列中的每个位置”。
# 这样做之所以正确，靠的是因果掩码（causal mask）：位置 $t$ 的分数，
# 与只把前 $t+1$ 个词元输入模型时得到的分数完全相同。我们检查这个等式，并比较两种做法的耗时。

# %% tags=["timing"]
T_long = 64 if not QUICK else 32
seq = rng.integers(0, V, (1, T_long))
start = time.perf_counter()
all_at_once, _ = model.forward(seq)                                # (1, T, V)
t_parallel = time.perf_counter() - start
start = time.perf_counter()
one_by_one = np.stack([model.forward(seq[:, : t + 1])[0][0, -1] for t in range(T_long)])
t_sequential = time.perf_counter() - start
assert np.allclose(all_at_once[0], one_by_one, atol=1e-12)
print(tr(f"one forward over T = {T_long}: {1e3 * t_parallel:.1f} ms; "
         f"{T_long} forwards over prefixes: {1e3 * t_sequential:.1f} ms; identical scores",
         f"对 T = {T_long} 做一次前向传播：{1e3 * t_parallel:.1f} ms；"
         f"对各前缀做 {T_long} 次前向传播：{1e3 * t_sequential:.1f} ms；分数完全相同"))

fig, ax = plt.subplots(figsize=(6, 3))
ax.barh([tr("T prefix forwards\n(one position each)", "对 T 个前缀各做一次前向传播\n（每次一个位置）"),
         tr("one forward\n(all positions)", "一次前向传播\n（所有位置）")],
        [1e3 * t_sequential, 1e3 * t_parallel])
ax.set_xlabel(tr("milliseconds (this machine, this run)", "毫秒（本机、本次运行）"))
ax.set_title(tr(f"Same {T_long} predictions, computed in parallel or one by one",
                f"同样的 {T_long} 个预测：并行计算，或逐个计算"))
plt.show()

# %% [markdown]
# **Long-distance dependencies.** How much can the prediction at the last position
# depend on the token $k$ places back? Look at the gradient of that prediction with
# respect to the input vector $x^{(0)}_{T-1-k}$. In a Transformer any position reaches
# any earlier one in a single attention step, so nothing in the architecture makes this
# gradient shrink with $k$. A recurrent network, $h_t = \tanh(Wh_{t-1} + Ux_t)$, must
# pass the signal through $k$ Jacobians $\text{diag}(1 - h_t^2)\,W$, and their product
# typically shrinks geometrically.
#
# We run the model forward with `minigpt`'s ops, put a random gradient on the last
# position's logits only, and run the ops' backwards in reverse to get
# $\partial L / \partial x^{(0)}$. The recurrent network is a toy written here only for
# contrast (random $W$ with spectral radius 0.9).
# %% [markdown] lang="zh"
# **长距离依赖关系。** 教材说 Transformer 能“有效地捕捉长距离依赖关系”。
# 最后一个位置的预测，能在多大程度上依赖往前 $k$ 个位置的词元？
# 看这个预测对输入向量 $x^{(0)}_{T-1-k}$ 的梯度。
# 在 Transformer 中，任何位置都能通过一步注意力到达任何更早的位置，所以架构本身不会让这个梯度随 $k$ 变小。
# 循环神经网络（recurrent neural network）$h_t = \tanh(Wh_{t-1} + Ux_t)$ 则必须让信号穿过
# $k$ 个雅可比矩阵（Jacobian）$\text{diag}(1 - h_t^2)\,W$，它们的乘积通常按几何级数缩小。
#
# 我们用 `minigpt` 的运算做前向传播，只在最后一个位置的对数几率上放一个随机梯度，
# 再按相反的顺序运行各运算的反向传播，得到 $\partial L / \partial x^{(0)}$。
# 循环网络是这里为了对比而写的一个玩具模型：$W$ 是随机矩阵，谱半径（spectral radius）为 0.9。

# %%
T_long = 64
seq = rng.integers(0, V, (1, T_long))
x0 = embedding_forward(seq, p["wte"])[0] + sinusoidal_table(T_long, C)   # (1, T, C)
x, caches = x0, []
for l in range(config.n_layer):
    x, c = block_forward(x, subdict(p, f"h.{l}."), nh)
    caches.append(c)
xf, c_lnf = layernorm_forward(x, p["ln_f.w"], p["ln_f.b"])
logits, c_head = linear_forward(xf, p["wte"].T)
assert np.allclose(logits, model.forward(seq)[0])


def input_gradient(position):
    """dL/dx0 (1, T, C) for a loss that reads only the logits at `position`."""
    dlogits = np.zeros_like(logits)
    dlogits[0, position] = np.random.default_rng(1).standard_normal(V)
    dx, _, _ = linear_backward(dlogits, c_head)
    dx, _, _ = layernorm_backward(dx, c_lnf)
    for l in reversed(range(config.n_layer)):
        dx, _ = block_backward(dx, caches[l])
    return dx


reach_gpt = np.linalg.norm(input_gradient(T_long - 1)[0], axis=-1)[::-1]   # by distance k
mid = 20
assert np.all(input_gradient(mid)[0, mid + 1:] == 0)    # nothing flows from the future

H = 32                                                   # the toy recurrent network
W = rng.standard_normal((H, H))
W *= 0.9 / np.abs(np.linalg.eigvals(W)).max()
U = rng.standard_normal((H, C)) / np.sqrt(C)
xs, h, hs = rng.standard_normal((T_long, C)), np.zeros(H), []
for t in range(T_long):
    h = np.tanh(W @ h + U @ xs[t])
    hs.append(h)
g, reach_rnn = rng.standard_normal(H), np.zeros(T_long)
for t in reversed(range(T_long)):                        # backprop through time
    g_pre = g * (1 - hs[t] ** 2)
    reach_rnn[t] = np.linalg.norm(U.T @ g_pre)
    g = W.T @ g_pre
reach_rnn = reach_rnn[::-1]

gpt_far = reach_gpt[1:] / reach_gpt[1]                   # distances 1 .. T-1, relative
rnn_far = reach_rnn[1:] / reach_rnn[1]
assert gpt_far.min() > 0.3                               # no decay with distance
assert rnn_far[-1] < 1e-6                                # geometric decay
print(tr(f"gradient at distance {T_long - 1} relative to distance 1: GPT {gpt_far[-1]:.2f}, "
         f"recurrent toy {rnn_far[-1]:.1e}",
         f"距离 {T_long - 1} 处的梯度与距离 1 处之比：GPT 为 {gpt_far[-1]:.2f}，"
         f"玩具循环网络为 {rnn_far[-1]:.1e}"))

fig, ax = plt.subplots(figsize=(7.5, 4))
ks = np.arange(1, T_long)
ax.semilogy(ks, gpt_far, label=tr("GPT (this model, at initialisation)", "GPT（本模型，初始化时）"))
ax.semilogy(ks, rnn_far, "--", label=tr("toy recurrent network", "玩具循环网络"))
ax.set_xlabel(tr("distance k between the predicting position and the input",
                 "做预测的位置与输入位置之间的距离 k"))
ax.set_ylabel(tr(r"$|\partial L/\partial x_{T-1-k}|$, relative to k = 1",
                 "位置 T−1−k 处的 |∂L/∂x|（相对于 k = 1）"))   # (mathtext draws no Chinese)
ax.set_title(tr("Attention reaches far back in one step; recurrence fades",
                "注意力一步就能回看很远；循环网络的信号逐渐衰减"))
ax.legend()
plt.show()

# %% [markdown]
# Two honest caveats. At initialisation the weights to distant positions are small in
# absolute terms (attention is nearly uniform and the projections small); what the
# architecture guarantees is that distance itself costs nothing: training decides what
# to look at. And the parallelism is over positions *within* one forward pass; when a
# trained GPT writes text it still produces one token after another (notebook 6).
#
# ## 5. A gradient check of the whole model
#
# The final test of every hand-written backward together: `gradcheck_model` nudges each
# parameter of a tiny float64 GPT and compares the change of the loss with
# `model.backward()`. We turn on everything at once: dropout (with fixed masks), learned
# positions, two blocks, biases.
# %% [markdown] lang="zh"
# 有两点需要说明，以免误解。第一，初始化时，分给远处位置的权重在绝对值上很小
# （注意力几乎是均匀的，投影也很小）；架构保证的是距离本身不带来任何代价，至于该关注哪里，由训练来决定。
# 第二，这里的并行是*同一次*前向传播之内各个位置之间的并行；
# 训练好的 GPT 在写文本时，仍然是一个词元接一个词元地生成（笔记本 6）。
#
# ## 5. 对整个模型做梯度检验
#
# 这是对所有手写反向传播的总检验：`gradcheck_model` 逐个轻推一个小型 float64 GPT 的每个参数，
# 把损失的变化与 `model.backward()` 的结果相比较。`model.backward()` 做的就是教材第 3.4 节第 5 步“反向传播”：
# “根据损失值，反向传播计算每个参数的梯度”；
# 每次轻推之后重新算出损失，用的则是第 3 步“正向传播”和第 4 步“损失计算”。
# 我们把所有功能同时打开：随机失活（掩码固定）、可学习位置编码、两个块、偏置。

# %%
tiny = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8,
                     dropout=0.1, pos_encoding="learned", dtype="float64"), seed=3)
idx = rng.integers(0, 11, (2, 8))
targets = rng.integers(0, 11, (2, 8))
report = gradcheck_model(tiny, idx, targets, train=True, max_elements=10 if QUICK else None)
print(tr(f"{sum(c.checked for c in report.checks):,} of {tiny.num_params():,} parameters perturbed",
         f"在 {tiny.num_params():,} 个参数中扰动了 {sum(c.checked for c in report.checks):,} 个"))
print(report)
assert report.ok

report.plot(title=tr("Whole GPT: every parameter's hand-derived gradient vs finite differences",
                     "整个 GPT：每个参数的手推梯度与有限差分的比较"))
plt.show()

# %% [markdown]
# ## 6. Checking another implementation, tensor by tensor
#
# Sooner or later you will write a transformer somewhere else: in PyTorch, in C, on a
# GPU. The usual check compares the final loss, and a wrong loss says *that* something
# is wrong, not *where*. Worse, a bug can hide in the loss entirely. So minigpt offers
# a reference: every named tensor of one forward and backward of a small float64 model
# (`python -m minigpt reference --out ref.npz`, or `write_reference` below), and a
# comparer that walks the tensors in the order the data flows and names the first
# one that disagrees (`python -m minigpt compare ref.npz yours.npz`). Each tensor
# comes with its formula and its inputs, recorded while `GPT.forward` and
# `GPT.backward` run (the `tape` argument, `minigpt/tape.py`): the reference is the
# gradient-checked model itself, not a second copy of it.
#
# Here are the names of block 0's attention, as the manifest lists them:
# %% [markdown] lang="zh"
# ## 6. 逐个张量地检查另一个实现
#
# 迟早你会在别的地方再写一个 Transformer：用 PyTorch，用 C，或者在 GPU 上。
# 通常的检查是比较最终的损失，可是损失不对只能说明*有*地方错了，说不出错在*哪里*。
# 更糟的是，有的错误在损失上根本看不出来。
# 所以 minigpt 提供了一份参考：一个小型 float64 模型在一次前向和反向传播中的每个命名张量
# （`python -m minigpt reference --out ref.npz`，或下面的 `write_reference`），
# 以及一个比较器：它按数据流动的顺序逐个比较张量，并指出第一个不一致的张量
# （`python -m minigpt compare ref.npz yours.npz`）。
# 每个张量都附有它的公式和输入，这些是在 `GPT.forward` 和 `GPT.backward` 运行时记录下来的
# （`tape` 参数，见 `minigpt/tape.py`）：这份参考轨迹（reference trace）就是经过梯度检验的模型本身，
# 而不是它的另一份副本。
#
# 下面是清单（manifest）中列出的第 0 个块的注意力部分的张量名：

# %%
import contextlib
import sys
import tempfile

from minigpt.reference import compare, load_reference, load_tensors, report, write_reference

work = tempfile.mkdtemp()
ref_path = os.path.join(work, "ref.npz")
write_reference(ref_path, GPTConfig(vocab_size=32, block_size=8, n_layer=2, n_head=2,
                                    n_embd=16, dtype="float64"), seed=0, batch=2)
ref_arrays, ref_meta = load_reference(ref_path)
print(tr(f"{len(ref_meta['tensors'])} tensors: inputs, parameters (minigpt's and nanoGPT's "
         f"names), activations, gradients",
         f"{len(ref_meta['tensors'])} 个张量：输入、参数（minigpt 和 nanoGPT 的名字）、"
         f"激活值、梯度"))
for e in ref_meta["tensors"]:
    if e["name"].startswith("h.0.attn.") and not e["name"].endswith((".w", ".b")):
        print(f"  {e['name']:<18} {str(tuple(e['shape'])):<14} {e['formula'][:62]}")

# %% [markdown]
# The other implementation is `examples/pytorch_trace.py`: a GPT written the way
# nanoGPT writes one, in PyTorch, that loads the reference's weights (under their
# nanoGPT names) and records its own tensors under the reference's names, with module
# hooks and a few `record()` calls. Its `--bug` option plants a classic mistake:
# attention scores divided by $d_k$ instead of $\sqrt{d_k}$. (Without PyTorch the
# cell below plants the same mistake in a copy of the reference instead, in block 0's
# scores only.)
# %% [markdown] lang="zh"
# 另一个实现是 `examples/pytorch_trace.py`：一个按 nanoGPT 的写法、用 PyTorch 写成的 GPT。
# 它加载参考中的权重（用 nanoGPT 的名字），并通过模块钩子（module hooks）和几处 `record()` 调用，
# 以参考中的名字记录自己的张量。它的 `--bug` 选项会埋下一个经典错误：
# 注意力分数除以 $d_k$，而不是 $\sqrt{d_k}$。这里的 $d_k$ 是键向量（key）的维度，教材称为“关键字向量的维度”。
# （如果没有安装 PyTorch，下面的单元格会改为在参考的一份副本中埋下同样的错误，只改第 0 个块的分数。）

# %%
try:
    import torch
except ImportError:
    torch = None
if torch is not None:
    import minigpt                 # examples/ sits beside the package (from any cwd)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(minigpt.__file__)),
                                    "examples"))
    import pytorch_trace
    with contextlib.chdir(work):                  # (so that it prints short file names)
        pytorch_trace.main(["ref.npz", "--out", "mine.npz"])
        pytorch_trace.main(["ref.npz", "--out", "bug.npz", "--bug"])
        theirs, theirs_bug = load_tensors("mine.npz"), load_tensors("bug.npz")
else:
    print(tr("PyTorch is not installed (pip install torch==2.13.0 runs the real example); "
             "planting the mistake in a copy of the reference",
             "没有安装 PyTorch（pip install torch==2.13.0 之后即可运行真正的示例）；"
             "改为在参考的副本中埋下这个错误"))
    theirs = dict(ref_arrays)
    theirs_bug = dict(ref_arrays)
    q, k = ref_arrays["h.0.attn.q"], ref_arrays["h.0.attn.k"]
    hs = q.shape[-1]
    scores = q @ k.swapaxes(-1, -2) / hs                       # the bug: d_k, not sqrt(d_k)
    theirs_bug["h.0.attn.scores"] = np.where(causal_mask(8, 8), -np.inf, scores)

print(tr("the correct implementation:", "正确的实现："))
print(report(compare(ref_arrays, ref_meta, theirs), all_rows=False))
print()
print(tr("the planted bug:", "埋下的错误："))
result = compare(ref_arrays, ref_meta, theirs_bug)
print(report(result, all_rows=False))

# %% [markdown]
# The loss is the last forward tensor, and with the bug it differs from the reference's
# in the seventh digit only (a freshly initialised model's scores are tiny, so the
# scale barely matters yet): a check of the loss alone would have passed it. The walk
# through the tensors does not. Every tensor before the scores agrees, the scores are
# off by 65% of their size, and the comparer says that their inputs q and k agree, so
# the mistake is in the one line that turns q and k into scores. Everything
# downstream then differs because of it, which the picture shows: the error, tensor by
# tensor, in data-flow order.
# %% [markdown] lang="zh"
# 损失是前向传播的最后一个张量。有了这个错误，它与参考值只在第七位有效数字上有差别
# （刚初始化的模型分数很小，所以缩放暂时几乎没有影响）：只检查损失的话，这个错误就蒙混过关了。
# 逐个张量地比较却不会放过它：分数之前的每个张量都一致，分数的误差达到它自身大小的 65%，
# 而比较器还指出分数的输入 q 和 k 是一致的，所以错误就出在把 q 和 k 变成分数的那一行。
# 其后的所有张量也都因此不同，下图显示了这一点：按数据流的顺序，逐个张量的误差。

# %%
rows = result["rows"]
errors = np.array([max(r[3], 1e-17) for r in rows])
first = next(i for i, r in enumerate(rows) if r[1] != "ok")
fig, ax = plt.subplots(figsize=(10, 3.2))
ax.bar(range(len(rows)), errors, color=["tab:red" if r[1] != "ok" else "tab:green"
                                       for r in rows], width=1.0)
ax.set_yscale("log")
ax.axhline(1e-9, color="black", lw=0.8, ls="--")
ax.text(0, 2e-9, tr("tolerance (float64)", "容差（float64）"), fontsize=8)
backward = next(i for i, r in enumerate(rows) if r[0].startswith("grad."))
ax.axvline(backward - 0.5, color="gray", lw=0.8)
ax.text(backward + 1, 1e-16, tr("backward ->", "反向传播 ->"), fontsize=8, color="gray")
ax.annotate(rows[first][0], (first, errors[first]), xytext=(first + 8, 3e-2),
            arrowprops=dict(arrowstyle="->"), fontsize=9)
ax.set_xlabel(tr("tensors in data-flow order (forward, then backward)",
                 "按数据流顺序排列的张量（先前向传播，后反向传播）"))
ax.set_ylabel(tr("error / largest entry", "误差 / 最大元素"))
ax.set_title(tr("Where the planted bug enters, and how far it spreads",
                "埋下的错误从哪里进入，又扩散到多远"))
plt.show()

# %% [markdown]
# **Summary.** A GPT is embeddings plus positions, a stack of blocks (attention, then
# MLP, each behind a layer norm and around a residual), a final layer norm and a tied
# output head. Its size is $VC + L(12C^2 + 13C) + 2C$. It computes all positions in one
# pass, and any position reaches any earlier one in one attention step. Every gradient
# of it, written by hand, agrees with finite differences, and a trace of all of them is a
# reference that points any other implementation at its first wrong tensor. Next:
# notebook 5 trains it.
# %% [markdown] lang="zh"
# **小结**：GPT 由这几部分组成：词元嵌入加上位置编码；多个堆叠的块（先注意力、后 MLP，
# 每个子层前面有层归一化，外面绕一条残差连接）；最后的层归一化；以及与词元嵌入共享权重的输出头。
# 它的参数量是 $VC + L(12C^2 + 13C) + 2C$。它一次前向传播就算出所有位置，
# 任何位置都能通过一步注意力到达任何更早的位置。它的每个梯度都是手写的，并且都与有限差分一致；
# 记录下所有这些梯度的轨迹就是一份参考，能把任何其他实现引向它第一个出错的张量。
# 下一步：笔记本 5 训练这个模型。

# %% [markdown]
# ## Questions to think about (思考题)
#
# Answer in words, or with a few lines of code in a new cell: every function you need
# has been used above.
#
# 1. **The first loss.** Before any training, `model.forward(idx, targets)` on random
#    tokens gives a loss close to $\log V$ ($\log 65 \approx 4.17$ for this notebook's
#    model). Why that number? What is it about the initial weights that makes it so,
#    and what would you expect if the token embeddings started with standard deviation
#    1 instead of 0.02?
# 2. **The $1/\sqrt{2L}$.** Section 2 scales the output projections of every block by
#    $1/\sqrt{2L}$ at initialisation. Where does the 2 come from, and why a square root
#    rather than $1/(2L)$? (Think of the residual stream as a sum of updates and ask how
#    the variance of a sum of independent terms grows.)
# 3. **Without the residual.** Suppose a block computed
#    $x \leftarrow \text{Attn}(\text{LN}_1(x))$ and then $x \leftarrow \text{MLP}(\text{LN}_2(x))$,
#    with no "$x + \dots$". Which line of your `my_block_backward` changes? Predict what
#    happens to $\partial L/\partial x^{(0)}$, the gradient that reaches the embeddings,
#    as the number of blocks grows, then measure it: chain `layernorm_forward`,
#    `self_attention_forward` and `mlp_forward` for each block, and their backwards in
#    reverse, as `input_gradient` does in section 4.
# %% [markdown] lang="zh"
# ## 思考题
#
# 可以用文字回答，也可以在新的单元格里写几行代码：需要的函数上面都已用过。
#
# 1. **初始损失。** 训练之前，在随机词元上调用 `model.forward(idx, targets)` 得到的损失接近 $\log V$（对本笔记本的模型，$\log 65 \approx 4.17$）。为什么是这个数？初始权重的什么性质导致了这一点？
#    如果词元嵌入一开始的标准差是 1 而不是 0.02，你预计会怎样？
# 2. **$1/\sqrt{2L}$。** 第 2 节在初始化时把每个块的输出投影乘以 $1/\sqrt{2L}$。
#    其中的 2 从哪里来？为什么用平方根，而不是 $1/(2L)$？
#    （把残差流看成一系列更新之和，想一想独立项之和的方差如何随项数增长。）
# 3. **去掉残差连接。** 假设一个块先计算 $x \leftarrow \text{Attn}(\text{LN}_1(x))$，
#    再计算 $x \leftarrow \text{MLP}(\text{LN}_2(x))$，没有“$x + \dots$”。
#    你的 `my_block_backward` 中哪一行要改？先预测：随着块数增加，
#    到达嵌入的梯度 $\partial L/\partial x^{(0)}$ 会怎样变化；然后动手测量：
#    像第 4 节的 `input_gradient` 那样，
#    对每个块依次调用 `layernorm_forward`、`self_attention_forward` 和 `mlp_forward`，再按相反的顺序调用它们的反向传播。
