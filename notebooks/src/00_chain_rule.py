# %% [markdown]
# # 0 · The chain rule, forward and backward, and gradcheck
#
# Step 5 of the training procedure in our text is *backpropagation* (反向传播): from the
# loss, compute the gradient (梯度) of every parameter. `minigpt` has no automatic
# differentiation. Every gradient in it is derived by hand and then checked by a
# computer. This notebook covers the three tools the other notebooks rely on:
#
# 1. the chain rule (链式法则) on a graph of three small computations, with numbers;
# 2. the same idea on arrays, and the one convention all of `minigpt` follows:
#    `op_forward(...) -> (out, cache)` and `op_backward(dout, cache) -> grads`;
# 3. `minigpt.gradcheck`, which tests a backward pass without any calculus;
#
# and then your first exercise: a backward pass that `gradcheck` marks.
# %% [markdown] lang="zh"
# # 0 · 链式法则、前向与反向传播、梯度检验
#
# 教材第 3.4 节“训练过程”的第 5 步是反向传播（backpropagation）：“根据损失值，反向传播
# 计算每个参数的梯度”，也就是从损失出发，求出每个参数的梯度（gradient）。`minigpt` 没有
# 自动微分（automatic differentiation），其中的每一个梯度都是先手工推导，再交给计算机检验。
# 后面的笔记本都要用到本笔记本介绍的三件工具：
#
# 1. 链式法则（chain rule）：在一个只有三步小运算的计算图（computational graph）上，
#    代入具体数字来演示；
# 2. 把同样的思路用到数组上，以及整个 `minigpt` 都遵守的一条约定：
#    `op_forward(...) -> (out, cache)` 和 `op_backward(dout, cache) -> grads`；
# 3. 梯度检验（gradient check）工具 `minigpt.gradcheck`：不用任何微积分，就能检验一个
#    反向传播写得对不对。
#
# 最后是你的第一道练习：写一个反向传播，由 `gradcheck` 来判定对错。

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
# %% [markdown] lang="zh"
# ## 1. 小计算图上的链式法则
#
# 取两个输入 $a = 3$、$b = -2$，分三步算出损失，每行只做一次运算：
#
# $$c = a\,b \qquad d = c + a \qquad L = d^2$$
#
# 每一步都有自己的局部导数（local derivative），求它只需要看这一步本身：
# $\partial c/\partial a = b$，$\partial c/\partial b = a$，$\partial d/\partial c = 1$，
# $\partial d/\partial a = 1$，$\partial L/\partial d = 2d$。
#
# 链式法则告诉我们怎样把它们组合起来：
# * 沿着从某个输入通往 $L$ 的一条路径，把各个局部导数**相乘**；
# * 从同一个输入出发的路径不止一条时，把各条路径的贡献**相加**。
#
# $b$ 通往 $L$ 只有一条路径：$b \to c \to d \to L$。$a$ 则有两条：
# $a \to c \to d \to L$ 和 $a \to d \to L$。于是
#
# $$\frac{\partial L}{\partial b} = \underbrace{2d}_{L \leftarrow d}\cdot
#   \underbrace{1}_{d \leftarrow c}\cdot\underbrace{a}_{c \leftarrow b}
# \qquad
# \frac{\partial L}{\partial a} = 2d \cdot 1 \cdot b \;+\; 2d \cdot 1 .$$
#
# 反向传播从末端往起点计算这些乘积，这样公共的部分（这里是 $2d$）只需算一次。
# 倒着往回算时，每个节点从用到它的那一步收到 $\partial L/\partial(\text{该节点})$，
# 乘上自己的局部导数，再把结果传给自己的输入；每个输入把收到的各份结果**累加**起来（`+=`）。

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
# %% [markdown] lang="zh"
# 用代数验算一下：$L = (ab + a)^2 = a^2(b+1)^2$，所以
# $\partial L/\partial a = 2a(b+1)^2 = 6$，$\partial L/\partial b = 2a^2(b+1) = -18$。
# 也可以完全不用代数：把某个输入往两边各轻推一个极小的 $h$，看 $L$ 变化了多少。

# %%
def loss(a, b):
    return (a * b + a) ** 2


assert da == 2 * a * (b + 1) ** 2 and db == 2 * a ** 2 * (b + 1)
h = 1e-6
da_numeric = (loss(a + h, b) - loss(a - h, b)) / (2 * h)
db_numeric = (loss(a, b + h) - loss(a, b - h)) / (2 * h)
assert abs(da_numeric - da) < 1e-6 and abs(db_numeric - db) < 1e-6
print(tr(f"nudging: dL/da ~ {da_numeric:.8f}, dL/db ~ {db_numeric:.8f}",
         f"轻推输入：dL/da ≈ {da_numeric:.8f}，dL/db ≈ {db_numeric:.8f}"))

# %% [markdown]
# The whole graph in one picture: each box shows its forward value and, below it, the
# gradient of $L$ with respect to it ("grad"); each arrow carries the local derivative of its head with
# respect to its tail. Multiply along the arrows, add where they leave the same box.
# %% [markdown] lang="zh"
# 下面把整个计算图画在一张图里。每个方框里先写该节点在前向传播（forward pass）中算出的值
# （教材第 3.4 节第 3 步称为“正向传播”），下面一行是 $L$ 对它的梯度（标作“梯度”）；
# 每个箭头上标的是箭头终点对箭头起点的局部导数。沿着箭头相乘，从同一个方框出发的几条箭头
# 则相加。

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
    ax.text(x, y, tr(f"{name}\n= {value:g}\ngrad {grad:g}", f"{name}\n= {value:g}\n梯度 {grad:g}"),
            ha="center", va="center",
            fontsize=10, bbox=dict(boxstyle="round", fc="lightyellow", ec="black"))
ax.set_xlim(-0.8, 7.4)
ax.set_ylim(-0.6, 2.2)
ax.axis("off")
ax.set_title(tr("Forward values and backward gradients: a gets 6 = (−6)(1)(−2) + (−6)(1)",
                "前向传播的值与反向传播的梯度：a 的梯度 6 = (−6)(1)(−2) + (−6)(1)"))
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
# %% [markdown] lang="zh"
# ## 2. 数组上的版本：`forward -> (out, cache)`，`backward(dout, cache) -> grads`
#
# 在 GPT 中，计算图的节点是数组而不是单个数，但除此之外一切照旧。
# `minigpt.ops` 中的每个运算都成对出现：
#
# * `op_forward(inputs) -> (out, cache)` 做前向传播：计算 `out`，同时把反向传播要用到的
#   量（通常就是它的输入）存进缓存（cache）`cache`；
# * `op_backward(dout, cache) -> grads` 接收 `dout` $= \partial L/\partial\,\text{out}$
#   （形状与 `out` 相同），对每个输入返回 $\partial L/\partial\,\text{输入}$
#   （形状与该输入相同）。
#
# 一个运算从来不需要知道 $L$ 是什么：它之后发生的一切都已经概括在 `dout` 里了。
# 逐个元素来看，链式法则仍是第 1 节那种对所有路径求和：
#
# $$\frac{\partial L}{\partial x_i} = \sum_j \frac{\partial L}{\partial\,\text{out}_j}\,
# \frac{\partial\,\text{out}_j}{\partial x_i}.$$
#
# 看一个真实的例子：线性层（linear layer）`minigpt.ops.linear`，即 $y = xW + b$，
# 其中 $x$ 的形状是 $(N, C_{in})$。它的反向传播是 `dx = dy @ W.T`、`dW = x.T @ dy`、
# `db = dy.sum(axis=0)`。后两个式子正是第 1 节说的“路径汇合处相加”：$N$ 行中的每一行
# 都用到同一个 $W$ 和 $b$，所以它们的梯度是各行贡献之和。

# %%
N, Cin, Cout = 4, 3, 2
x = rng.standard_normal((N, Cin))
w = rng.standard_normal((Cin, Cout))
bias = rng.standard_normal(Cout)

y, cache = linear_forward(x, w, bias)          # cache keeps x (for dW) and W (for dx)
dy = rng.standard_normal(y.shape)              # dL/dy, handed down from "the layers above"
dx, dw, dbias = linear_backward(dy, cache)
for name, value, grad in [("x", x, dx), ("w", w, dw), ("b", bias, dbias)]:
    print(tr(f"{name}: shape {value.shape}, gradient shape {grad.shape}",
             f"{name}：形状 {value.shape}，梯度的形状 {grad.shape}"))
assert dx.shape == x.shape and dw.shape == w.shape and dbias.shape == bias.shape
assert np.allclose(dbias, dy.sum(axis=0))      # b is shared by all N rows: their sum

# %% [markdown]
# A model is a chain of such pairs. The forward calls them in order and keeps every
# cache; the backward calls the backwards **in reverse order**, each one's input
# gradient becoming the next one's `dout`. Here is the MLP of a GPT block, linear → GELU
# → linear (notebook 4 builds the whole block):
# %% [markdown] lang="zh"
# 一个模型就是一串这样的运算对。前向传播按顺序调用它们，并保存每一个缓存；
# 反向传播则**按相反的顺序**调用各个反向函数，每个函数算出的输入梯度就是下一个函数的 `dout`。
# 下面是 GPT 块（block）中的多层感知机（MLP）：线性层 → GELU 激活函数 → 线性层
# （完整的块在笔记本 4 中搭建）：

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
# %% [markdown] lang="zh"
# ## 3. `gradcheck`：不用微积分也能检验反向传播
#
# 怎样知道一个反向传播写对了？第 1 节其实已经用过这个诀窍：轻推一下输入，看 $L$ 怎么变。
# 要单独检验一个运算，需要一个标量 $L$，那就由我们自己来选：随机取一个与 `out` 形状相同
# 的数组 $g$，令
#
# $$L(x) = \sum_j \text{out}_j(x)\, g_j, \qquad\text{从而}\qquad
# \frac{\partial L}{\partial\,\text{out}} = g .$$
#
# 给定 `dout = g`，反向传播必须返回 $\nabla_x L$。
# `gradcheck` 用**中心差分**（centred difference）估计梯度的每一个分量：
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{L(x + h e_i) - L(x - h e_i)}{2h},
# \qquad h = 10^{-6},$$
#
# 它的误差与 $h^2$ 同阶，而单侧差分（one-sided difference）$(L(x+h e_i) - L(x))/h$
# 的误差只与 $h$ 同阶（笔记本 3 会画出两者的误差随 $h$ 的变化）。`gradcheck` 全程用
# float64 计算，并对每个输入报告相对误差（relative error）：
#
# $$\text{相对误差} = \frac{\max_i |a_i - n_i|}{\max(\max_i |a_i|,\ \max_i |n_i|)}$$
#
# 其中 $a$ 是解析梯度（analytic gradient），$n$ 是数值梯度（numeric gradient），
# 分母中的最大值取遍一起检验的全部输入。相对误差不超过 $10^{-7}$ 就算通过。
# 反向传播写对了，剩下的只有舍入误差（round-off error），相对误差在 $10^{-10}$ 左右；
# 写错了，相对误差通常在 $10^{-2}$ 到 $1$ 之间。
#
# 先看一个只有两行的函数 $y = x \sin x$，由乘积法则（product rule），它的导数是
# $\sin x + x \cos x$：

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
# %% [markdown] lang="zh"
# 输出的第一行是总的结论（PASS 或 FAIL）、最大相对误差和阈值（threshold）；之后每个输入
# 占一行：形状、相对误差、梯度的量级（scale），以及解析梯度与数值梯度相差最大的那个元素
# （“最差处”）和该处的两个值（“解析”和“数值”）。下面这个反向传播犯了最常见的错误：
# 乘积法则只写了一半。

# %%
def xsin_backward_wrong(dy, cache):
    x, s = cache
    return {"x": dy * x * np.cos(x)}           # the "sin x" term is missing


bad = gradcheck(xsin_forward, xsin_backward_wrong, {"x": rng.standard_normal((3, 4))})
print(bad)
assert not bad.ok and bad["x"].rel_error > 0.1

# %% [markdown]
# The same tool checks a composite: the MLP above, five inputs at once.
# %% [markdown] lang="zh"
# 同一个工具也能检验复合运算：上面的多层感知机，5 个输入一起检验。

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
# %% [markdown] lang="zh"
# 练习中要用的是 `check`：它运行 `gradcheck`，但只打印一行 `PASS` 或 `FAIL`，
# 并指出相对误差最大的那个输入。
#
# ## 4. 练习：$y = w \tanh(x)$ 的反向传播
#
# 这是一个带缩放的 tanh：$x$ 的形状是 $(N, C)$，权重 $w$ 的形状是 $(C,)$，
# NumPy 会把 $w$ 广播（broadcast）到全部 $N$ 行上：
#
# $$t = \tanh(x), \qquad y_{nc} = w_c\, t_{nc}.$$
#
# 你只需要知道一个事实：$\frac{d}{dx}\tanh x = 1 - \tanh^2 x$，而其中的 $\tanh x$
# 前向传播已经替你算好了（它把 $t$ 存进了缓存）。剩下的就是用两次链式法则：
#
# * $x_{nc}$ 只通过 $y_{nc}$ 影响 $L$：沿这一条路径相乘；
# * $w_c$ 被**每一**行 $n$ 用到：把各行的贡献加起来。
#
# 下图画出了 $\tanh$ 及其导数：导数在 0 处等于 1，在 $|x|$ 较大时趋于 0，因为那里的
# tanh 几乎是平的——它*饱和*（saturate）了，就像笔记本 1 中的 softmax 那样。

# %%
xs = np.linspace(-4, 4, 401)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(xs, np.tanh(xs), label="tanh x")
ax.plot(xs, 1 - np.tanh(xs) ** 2, label="d tanh / dx = 1 − tanh² x")
ax.axhline(0, color="gray", lw=0.6)
ax.set_xlabel("x")
ax.legend()
ax.set_title(tr("tanh saturates; its derivative vanishes there", "tanh 在两端饱和，导数也随之趋于 0"))
plt.show()

# %% [markdown]
# **Exercise 1.** Write `my_scaled_tanh_backward`. It returns a dict with the same keys
# as the inputs, each gradient the shape of its input: `"x"` $(N, C)$ and `"w"` $(C,)$.
# %% [markdown] lang="zh"
# **练习 1**：编写 `my_scaled_tanh_backward`。它返回一个字典，键与输入的键相同，
# 每个梯度的形状与对应的输入一致：`"x"` 为 $(N, C)$，`"w"` 为 $(C,)$。

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
assert check(tr("scaled tanh backward", "缩放 tanh 的反向传播"),
             scaled_tanh_forward, my_scaled_tanh_backward, inputs)

# %% tags=["solution-only"]
report = gradcheck(scaled_tanh_forward, my_scaled_tanh_backward, inputs)
print(report)                                  # the table behind check's one line
x, w = inputs["x"], inputs["w"]
dy = rng.standard_normal(x.shape)
mine = my_scaled_tanh_backward(dy, scaled_tanh_forward(x, w)[1])
assert np.allclose(mine["w"], [np.dot(dy[:, c], np.tanh(x[:, c])) for c in range(3)])
print(tr("dL/dw_c = sum over rows of dy * tanh(x), column by column",
         "dL/dw_c = 对所有行求 dy * tanh(x) 之和，逐列计算"))

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
# %% [markdown] lang="zh"
# **小结**：反向传播就是倒着执行的链式法则：沿每条路径把局部导数相乘，路径汇合处相加，
# 结果逐份累加。在 `minigpt` 中，每个运算都是一对函数
# `forward -> (out, cache)` / `backward(dout, cache) -> grads`，按相反的顺序调用各个反向函数，
# 就把它们组合起来了；每个反向函数都用 `gradcheck` 的中心差分检验过。
# 下一步是笔记本 1：注意力机制（attention mechanism），在那里你要对 softmax 求导。
#
# ## 思考题
#
# 1. `gradcheck` 在求和之前，先把输出乘上一个*随机*数组 $g$。为什么不直接用
#    $L = \sum_j \text{out}_j$，也就是让 $g$ 全为 1？动手试一试：为 `xsin` 写一个忘了乘
#    `dy` 的反向函数，用 `gradcheck` 检验它。然后把它在 `dy = np.ones(...)` 时返回的结果，
#    与 `minigpt.gradcheck` 中的
#    `numerical_gradient(lambda: float(np.sum(xsin_forward(x)[0])), x)` 作比较——
#    后者正是 $g$ 全为 1 时的同一种检验。
# 2. 在第 1 节轻推输入的那个单元格里，先把 $h$ 设为 `1e-2`，再设为 `1e-12`，每次都打印
#    `da_numeric - 6`。再在 `h = 1e-2` 时试一试单侧估计
#    `(loss(a + h, b) - loss(a, b)) / h`。解释你看到的这三个误差。
#    （提示：只把 $a$ 看作自变量时，$L$ 是一条抛物线。）
# 3. GPT 的词元嵌入（token embedding）矩阵要用两次：在最底层，它把词元（token）编号变成
#    向量；在最顶层，它（转置后）把最后的向量变成词表（vocabulary）中每个词元的分数。
#    这叫权重共享（weight tying）。按照第 1 节的结论，这个矩阵的梯度应该是什么？如果反向传播在第二次
#    使用处写的是 `dwte = ...` 而不是 `dwte += ...`，会出什么问题？
