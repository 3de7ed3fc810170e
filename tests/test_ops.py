"""Tier 1: every op's hand-written backward against centered differences, in float64.

Hypothesis draws the shapes (B, T, C, heads, vocab), a seed for the values and their
scale; every check asserts a max relative error <= 1e-7 (a correct backward gives
~1e-9 or better). Parameters are random, not 0/1, because a zero bias or a unit gain
can hide a wrong term.
"""
import numpy as np
import pytest
from hypothesis import assume, example, given, strategies as st

from minigpt.gradcheck import gradcheck
from minigpt.ops.attention import (attention_backward, attention_forward, merge_heads,
                                   split_heads)
from minigpt.ops.dropout import dropout_backward, dropout_forward
from minigpt.ops.embedding import embedding_backward, embedding_forward
from minigpt.ops.gelu import gelu_backward, gelu_forward
from minigpt.ops.layernorm import layernorm_backward, layernorm_forward
from minigpt.ops.linear import linear_backward, linear_forward
from minigpt.ops.loss import cross_entropy_backward, cross_entropy_forward
from minigpt.ops.positional import learned_positional_backward, learned_positional_forward
from minigpt.ops.softmax import softmax_backward, softmax_forward
from minigpt.block import (block_backward, block_forward, mlp_backward, mlp_forward,
                           self_attention_backward, self_attention_forward)

TOL = 1e-7
dims = st.integers(1, 5)
seeds = st.integers(0, 2**32 - 1)
scales = st.floats(0.1, 3.0)


def assert_passes(report):
    assert report.ok, f"\n{report}"
    assert all(c.checked > 0 for c in report.checks)


def randn(rng, *shape, scale=1.0):
    return scale * rng.standard_normal(shape)


@given(B=dims, T=dims, C=dims, V=st.integers(1, 7), seed=seeds)
def test_embedding(B, T, C, V, seed):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, V, size=(B, T))          # repeats are likely: scatter-add matters
    report = gradcheck(lambda wte: embedding_forward(idx, wte),
                       lambda d, c: {"wte": embedding_backward(d, c)},
                       {"wte": randn(rng, V, C)})
    assert_passes(report)


def test_embedding_backward_accumulates_repeated_tokens():
    idx = np.array([[3, 3, 3]])
    dwte = embedding_backward(np.ones((1, 3, 2)), embedding_forward(idx, np.zeros((5, 2)))[1])
    np.testing.assert_array_equal(dwte[3], [3.0, 3.0])
    assert dwte.sum() == 6.0


@given(B=dims, T=dims, C=dims, start=st.integers(0, 3), seed=seeds)
def test_learned_positional(B, T, C, start, seed):
    rng = np.random.default_rng(seed)
    block_size = start + T + 2                  # rows outside the T must get zero gradient

    def forward(wpe):
        pe, cache = learned_positional_forward(T, wpe, start)
        return np.broadcast_to(pe, (B, T, C)), cache

    report = gradcheck(forward, lambda d, c: {"wpe": learned_positional_backward(d, c)},
                       {"wpe": randn(rng, block_size, C)})
    assert_passes(report)


@given(B=dims, T=dims, Cin=dims, Cout=dims, bias=st.booleans(), seed=seeds, scale=scales)
def test_linear(B, T, Cin, Cout, bias, seed, scale):
    rng = np.random.default_rng(seed)
    inputs = {"x": randn(rng, B, T, Cin, scale=scale), "w": randn(rng, Cin, Cout)}
    if bias:
        inputs["b"] = randn(rng, Cout)
    report = gradcheck(linear_forward, lambda d, c: linear_backward(d, c)[: len(inputs)],
                       inputs, wrt=list(inputs))
    assert_passes(report)


@given(B=dims, T=dims, C=st.integers(3, 8), bias=st.booleans(), seed=seeds, scale=scales)
def test_layernorm(B, T, C, bias, seed, scale):
    """C >= 3: with one or two channels xhat is 0 or +-1 whatever x is (up to eps), so
    the true dx is O(eps) and no finite difference can resolve it against O(1) outputs."""
    rng = np.random.default_rng(seed)
    inputs = {"x": randn(rng, B, T, C, scale=scale) + rng.normal(), "w": randn(rng, C)}
    if bias:
        inputs["b"] = randn(rng, C)
    report = gradcheck(layernorm_forward, lambda d, c: layernorm_backward(d, c)[: len(inputs)],
                       inputs, wrt=list(inputs))
    assert_passes(report)


@given(B=dims, T=dims, C=dims, seed=seeds, scale=scales)
def test_gelu(B, T, C, seed, scale):
    rng = np.random.default_rng(seed)
    report = gradcheck(gelu_forward, lambda d, c: {"x": gelu_backward(d, c)},
                       {"x": randn(rng, B, T, C, scale=scale)})
    assert_passes(report)


@given(B=dims, N=dims, seed=seeds, scale=scales)
@example(B=1, N=2, seed=475138, scale=2.0)        # z = (3.76, -5.00): see below
def test_softmax(B, N, seed, scale):
    """Checked with the step h = 1e-4 rather than gradcheck's 1e-6, and why.

    A centred difference errs by round-off, about 1e-16 * |L| / h, plus truncation,
    about h^2 * (third derivative of L) / 6. A saturated row makes the first count:
    for z = (3.76, -5.00) the outputs are p = (0.99984, 0.00016), stored to 1e-16,
    while the whole gradient p0 p1 (g1 - g0) is only 4e-5. At h = 1e-6 round-off
    alone is then 3e-7 of the gradient, over the 1e-7 threshold however right the
    backward is (hypothesis found this row). At h = 1e-4 it is 1e-9, and truncation
    stays below that: softmax's third derivatives are small (about 1 at most here,
    and as small as p1 on a saturated row). On 3,000 draws like hypothesis's the
    worst error was 5e-7 at h = 1e-6 and 4e-9 at h = 1e-4. The threshold is unchanged.
    """
    rng = np.random.default_rng(seed)
    report = gradcheck(softmax_forward, lambda d, c: {"z": softmax_backward(d, c)},
                       {"z": randn(rng, B, N, scale=scale)}, h=1e-4)
    assert_passes(report)


@given(B=dims, nh=st.integers(1, 3), Tq=dims, extra=st.integers(0, 3), hs=dims, seed=seeds,
       scale=scales)
def test_attention(B, nh, Tq, extra, hs, seed, scale):
    """Covers training (Tq == Tk) and KV-cache decoding (Tq < Tk)."""
    rng = np.random.default_rng(seed)
    Tk = Tq + extra
    inputs = {"q": randn(rng, B, nh, Tq, hs, scale=scale),
              "k": randn(rng, B, nh, Tk, hs, scale=scale),
              "v": randn(rng, B, nh, Tk, hs)}
    report = gradcheck(attention_forward, attention_backward, inputs, wrt=["q", "k", "v"])
    assert_passes(report)


@given(B=dims, T=dims, p=st.floats(0.05, 0.9), seed=seeds)
def test_attention_with_dropout(B, T, p, seed):
    rng = np.random.default_rng(seed)
    inputs = {"q": randn(rng, B, 2, T, 3), "k": randn(rng, B, 2, T, 3), "v": randn(rng, B, 2, T, 3)}
    fwd = lambda q, k, v: attention_forward(q, k, v, p, np.random.default_rng(seed))  # same mask
    assert_passes(gradcheck(fwd, attention_backward, inputs, wrt=["q", "k", "v"]))


def test_attention_cache_holds_the_weights_before_dropout():
    """cache.att is what a notebook plots: softmax rows over the visible keys, summing to
    1, zero on the future; cache.att_dropped is what multiplied v, att times the mask."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))
    y, cache = attention_forward(q, k, v, 0.5, np.random.default_rng(1))
    assert cache.att.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(cache.att.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(cache.att[..., np.triu_indices(5, k=1)[0], np.triu_indices(5, k=1)[1]] == 0)
    np.testing.assert_array_equal(cache.att_dropped, cache.att * cache.dropout_cache.mask)
    np.testing.assert_array_equal(y, cache.att_dropped @ v)
    _, plain = attention_forward(q, k, v)                    # no dropout: the same weights
    np.testing.assert_array_equal(plain.att, cache.att)
    assert plain.att_dropped is plain.att


@given(B=dims, T=dims, p=st.floats(0.05, 0.9), seed=seeds)
def test_dropout(B, T, p, seed):
    rng = np.random.default_rng(seed)
    fwd = lambda x: dropout_forward(x, p, np.random.default_rng(seed))
    report = gradcheck(fwd, lambda d, c: {"x": dropout_backward(d, c)}, {"x": randn(rng, B, T, 4)})
    assert_passes(report)


@given(B=dims, T=dims, V=st.integers(2, 9), seed=seeds, scale=st.floats(0.1, 10.0))
def test_cross_entropy(B, T, V, seed, scale):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, V, size=(B, T))
    report = gradcheck(lambda logits: cross_entropy_forward(logits, targets),
                       lambda d, c: {"logits": cross_entropy_backward(d, c)},
                       {"logits": randn(rng, B, T, V, scale=scale)})
    assert_passes(report)


@given(B=dims, T=dims, V=st.integers(2, 9), seed=seeds, scale=st.floats(0.1, 10.0),
       eps=st.floats(0.01, 0.9))
def test_cross_entropy_with_label_smoothing(B, T, V, seed, scale, eps):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, V, size=(B, T))
    logits = randn(rng, B, T, V, scale=scale)
    report = gradcheck(lambda logits: cross_entropy_forward(logits, targets, eps),
                       lambda d, c: {"logits": cross_entropy_backward(d, c)}, {"logits": logits})
    assert_passes(report)
    # the loss is the cross-entropy against q = (1 - eps) one-hot + eps / V, written out
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    q = np.full(logits.shape, eps / V)
    np.put_along_axis(q, targets[..., None], 1 - eps + eps / V, axis=-1)
    loss, _ = cross_entropy_forward(logits, targets, eps)
    assert loss == pytest.approx(-(q * log_p).sum(-1).mean(), rel=1e-12)


def test_label_smoothing_zero_is_the_plain_loss_and_out_of_range_is_refused():
    rng = np.random.default_rng(0)
    logits, targets = randn(rng, 2, 3, 5), rng.integers(0, 5, size=(2, 3))
    plain, c_plain = cross_entropy_forward(logits, targets)
    zero, c_zero = cross_entropy_forward(logits, targets, 0.0)
    assert plain == zero
    np.testing.assert_array_equal(cross_entropy_backward(1.0, c_plain),
                                  cross_entropy_backward(1.0, c_zero))
    assert cross_entropy_forward(logits, targets, 0.1)[0] != plain
    for eps in (-0.1, 1.0):
        with pytest.raises(ValueError, match="label smoothing"):
            cross_entropy_forward(logits, targets, eps)


def block_params(rng, C, bias, prefix=""):
    shapes = {"ln_1.w": (C,), "ln_1.b": (C,), "attn.c_attn.w": (C, 3 * C),
              "attn.c_attn.b": (3 * C,), "attn.c_proj.w": (C, C), "attn.c_proj.b": (C,),
              "ln_2.w": (C,), "ln_2.b": (C,), "mlp.c_fc.w": (C, 4 * C), "mlp.c_fc.b": (4 * C,),
              "mlp.c_proj.w": (4 * C, C), "mlp.c_proj.b": (C,)}
    return {prefix + k: 0.5 * rng.standard_normal(s) + (1.0 if "ln_" in k and k.endswith("w") else 0.0)
            for k, s in shapes.items() if bias or not k.endswith(".b")}


def keyed(fn):
    """Adapt a composite's backward (dx, grads) into one dict for gradcheck."""
    def backward(dout, cache):
        dx, grads = fn(dout, cache)
        return {"x": dx, **grads}
    return backward


@given(B=dims, T=dims, nh=st.integers(1, 3), hs=st.integers(1, 3), bias=st.booleans(), seed=seeds)
def test_self_attention(B, T, nh, hs, bias, seed):
    rng = np.random.default_rng(seed)
    C = nh * hs
    p = {k[len("attn."):]: v for k, v in block_params(rng, C, bias).items() if k.startswith("attn.")}
    fwd = lambda x, **p: self_attention_forward(x, p, nh)
    assert_passes(gradcheck(fwd, keyed(self_attention_backward), {"x": randn(rng, B, T, C), **p}))


@given(B=dims, T=dims, C=dims, bias=st.booleans(), seed=seeds)
def test_mlp(B, T, C, bias, seed):
    rng = np.random.default_rng(seed)
    p = {k[len("mlp."):]: v for k, v in block_params(rng, C, bias).items() if k.startswith("mlp.")}
    fwd = lambda x, **p: mlp_forward(x, p)
    assert_passes(gradcheck(fwd, keyed(mlp_backward), {"x": randn(rng, B, T, C), **p}))


# (n_head, head_size) with C = nh * hs >= 3: the block starts with a layer norm, which
# for C <= 2 is a sign function smoothed over a width sqrt(eps) (see test_layernorm)
heads = st.sampled_from([(nh, hs) for nh in (1, 2, 3) for hs in (1, 2, 3) if nh * hs >= 3])


@given(B=dims, T=dims, heads=heads, bias=st.booleans(), dropout=st.sampled_from([0.0, 0.3]),
       seed=seeds)
def test_block(B, T, heads, bias, dropout, seed):
    rng = np.random.default_rng(seed)
    nh, hs = heads
    C = nh * hs
    x = randn(rng, B, T, C)
    # A row of x with almost no spread sigma puts ln_1 where its curvature grows like
    # 1/sigma^3: the centred difference's own error, O(h^2) times the third derivative,
    # then passes 1e-7 while the backward is right (test_block_near_constant_row shows
    # it). Such rows need C = 3 or so: about one row in 70 has sigma < 0.1 there.
    assume(x.std(axis=-1).min() > 0.1)
    fwd = lambda x, **p: block_forward(x, p, nh, dropout, np.random.default_rng(seed))
    report = gradcheck(fwd, keyed(block_backward), {"x": x, **block_params(rng, C, bias)})
    assert_passes(report)


def test_block_near_constant_row():
    """The case hypothesis found (a row of x with spread 0.028, C = 3): the analytic and
    numeric gradients differ by 2.6e-7 at h = 1e-6, and the gap shrinks as h^2 (100x per
    10x smaller h), so it is the finite difference's truncation error, not the backward's:
    a wrong backward would leave a gap that does not shrink."""
    seed, nh, C = 683501, 3, 3
    rng = np.random.default_rng(seed)
    inputs = {"x": randn(rng, 4, 3, C), **block_params(rng, C, False)}
    assert inputs["x"].std(axis=-1).min() < 0.03
    fwd = lambda x, **p: block_forward(x, p, nh, 0.3, np.random.default_rng(seed))
    errors = [gradcheck(fwd, keyed(block_backward), inputs, wrt=["x"], h=h).checks[0].rel_error
              for h in (1e-5, 1e-6, 1e-7)]
    assert errors[0] > 1e-6                              # the case is a hard one...
    assert 50 < errors[0] / errors[1] < 200              # ...the gap falls as h^2...
    assert errors[2] < 1e-8                              # ...and closes


def test_split_merge_heads_are_inverse():
    x = np.arange(2 * 3 * 12).reshape(2, 3, 12)
    heads = split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 3)
    np.testing.assert_array_equal(heads[1, 2, 0], x[1, 0, 6:9])   # head 2 = channels 6..8
    np.testing.assert_array_equal(merge_heads(heads), x)


@pytest.mark.parametrize("op, fwd, bwd", [
    ("gelu", gelu_forward, gelu_backward),
    ("softmax", softmax_forward, softmax_backward),
])
def test_gradcheck_catches_a_wrong_backward(op, fwd, bwd):
    """The checker itself must be able to fail: a backward off by 1% is reported."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    report = gradcheck(lambda x: fwd(x), lambda d, c: {"x": 1.01 * bwd(d, c)}, {"x": x})
    assert not report.ok
    assert 1e-3 < report["x"].rel_error < 0.1


def test_report_names_a_missing_tensor():
    report = gradcheck(gelu_forward, lambda d, c: {"x": gelu_backward(d, c)},
                       {"x": np.ones((2, 2))})
    with pytest.raises(KeyError, match=r"no tensor 'w'.*checked: \['x'\]"):
        report["w"]


def test_report_plot_draws_each_error_against_the_threshold():
    """One bar per tensor at its rel_error (0 drawn at the floor), failures in red."""
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    from minigpt.gradcheck import ERROR_FLOOR, GradcheckReport, TensorCheck
    errors = {"exact": 0.0, "good": 3e-10, "wrong": 2e-2}
    report = GradcheckReport([TensorCheck(name, (2,), e, (0,), 1.0, 1.0, 2, 1.0)
                              for name, e in errors.items()], threshold=1e-7)
    ax = report.plot(ax=Figure().add_subplot())
    bars = ax.patches
    assert [b.get_height() for b in bars] == [ERROR_FLOOR, 3e-10, 2e-2]
    assert [b.get_facecolor() == to_rgba("tab:red") for b in bars] == [False, False, True]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(errors)
    assert [tuple(line.get_ydata()) for line in ax.get_lines()] == [(1e-7, 1e-7)]
    assert ax.get_yscale() == "log"
    assert "FAIL" in ax.get_title()


def test_report_plot_draws_its_chinese_labels(tmp_path):
    """In the Chinese edition (MINIGPT_LANG=zh) the plot's labels are Chinese; in a
    fresh process that never called use_cjk_font they must still be drawn, not boxes."""
    import os
    import subprocess
    import sys
    script = (
        "import io, warnings; warnings.simplefilter('error')\n"   # a missing glyph fails
        "from matplotlib.figure import Figure\n"
        "from minigpt.gradcheck import GradcheckReport, TensorCheck\n"
        "report = GradcheckReport([TensorCheck('x', (2,), 2e-2, (0,), 1.0, 1.0, 2, 1.0)],\n"
        "                         threshold=1e-7)\n"
        "ax = report.plot(ax=Figure().add_subplot())\n"
        "assert '相对误差' in ax.get_ylabel(), ax.get_ylabel()\n"
        "ax.figure.savefig(io.BytesIO(), format='png')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(os.environ, MINIGPT_LANG="zh", MPLBACKEND="Agg"),
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_check_prints_one_line_verdicts(capsys):
    """minigpt.gradcheck.check, the exercises' PASS/FAIL line."""
    from minigpt.gradcheck import check
    x = np.random.default_rng(1).standard_normal((2, 3))

    def blank(d, c):
        raise NotImplementedError

    assert check("gelu", gelu_forward, lambda d, c: {"x": gelu_backward(d, c)}, {"x": x})
    assert not check("wrong", gelu_forward, lambda d, c: {"x": 2 * gelu_backward(d, c)}, {"x": x})
    assert not check("blank", gelu_forward, blank, {"x": x})

    def forgot_keepdims(dp, cache):      # a student's bug: the row sums do not broadcast
        p = cache.p
        return {"z": p * (dp - np.sum(dp * p, axis=-1))}

    assert not check("broadcast", softmax_forward, forgot_keepdims, {"z": x})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["PASS", "FAIL", "FAIL", "FAIL"]
    assert "not written yet" in lines[2]
    assert "ValueError" in lines[3] and "in forgot_keepdims, line" in lines[3]
    assert "np.sum(dp * p, axis=-1)" in lines[3]


def test_check_says_when_gradcheck_itself_finds_the_shape_wrong(capsys):
    from minigpt.gradcheck import check
    x = np.random.default_rng(1).standard_normal((2, 3))
    assert not check("shape", gelu_forward, lambda d, c: {"x": gelu_backward(d, c)[:1]}, {"x": x})
    assert not check("key", gelu_forward, lambda d, c: {"y": gelu_backward(d, c)}, {"x": x})
    lines = capsys.readouterr().out.splitlines()
    assert "shape (1, 3)" in lines[0] and "which has shape (2, 3)" in lines[0]
    assert all(line.startswith("FAIL") and line.endswith(
        "(found by gradcheck, in what your function returned)") for line in lines), lines


def test_check_close_prints_one_line_verdicts(capsys):
    """minigpt.gradcheck.check_close, for exercises that are not gradients."""
    from minigpt.gradcheck import check_close

    def blank(x):
        raise NotImplementedError

    def in_place(x):                     # changes its argument: the reference must not see it
        x *= 3
        return x

    x = np.arange(4.0)
    assert check_close("same", lambda a: 2 * a, lambda a: a + a, x)
    assert not check_close("off", lambda a: 2.001 * a, lambda a: 2 * a, x)
    assert not check_close("blank", blank, lambda a: a, x)
    assert not check_close("shape", lambda a: a[:2], lambda a: a, x)
    assert check_close("copies", in_place, lambda a: 3 * a, x) and np.array_equal(x, np.arange(4.0))
    assert not check_close("dict", lambda a: {"p": a, "q": a}, lambda a: {"p": a, "q": a + 1}, x)
    assert not check_close("ints", lambda a: np.array([1, 2]), lambda a: np.array([1, 3]), x)
    lines = capsys.readouterr().out.splitlines()
    assert [l.split()[0] for l in lines] == ["PASS", "FAIL", "FAIL", "FAIL", "PASS", "FAIL", "FAIL"]
    assert "not written yet" in lines[2] and "shape (2,), expected (4,)" in lines[3]
    assert "result['q']" in lines[5] and "differs at 1 entries" in lines[6]
