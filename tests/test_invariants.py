"""Properties that must hold whatever the numbers: causality, normalisation,
the exact positional formula, finite values at the extremes."""
import math

import numpy as np
from hypothesis import given, strategies as st

from minigpt.config import GPTConfig
from minigpt.model import GPT
from minigpt.ops.layernorm import layernorm_forward
from minigpt.ops.loss import cross_entropy_backward, cross_entropy_forward
from minigpt.ops.positional import sinusoidal_table
from minigpt.ops.softmax import softmax_forward

seeds = st.integers(0, 2**32 - 1)


@given(N=st.integers(1, 40), seed=seeds, scale=st.floats(0.01, 100.0))
def test_softmax_rows_sum_to_one(N, seed, scale):
    z = scale * np.random.default_rng(seed).standard_normal((3, N))
    p, _ = softmax_forward(z)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=0, atol=1e-12)


@given(t=st.integers(0, 7), pos_encoding=st.sampled_from(["sinusoidal", "learned"]), seed=seeds)
def test_future_tokens_never_change_past_logits(t, pos_encoding, seed):
    config = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8,
                       pos_encoding=pos_encoding, dtype="float64")
    model = GPT(config, seed=seed % 1000)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 11, size=(2, 8))
    changed = idx.copy()
    changed[:, t + 1:] = rng.integers(0, 11, size=(2, 7 - t))   # rewrite the future
    a, _ = model.forward(idx)
    b, _ = model.forward(changed)
    np.testing.assert_array_equal(a[:, : t + 1], b[:, : t + 1])  # exactly equal
    if t < 7 and not np.array_equal(idx, changed):
        assert not np.allclose(a[:, t + 1:], b[:, t + 1:])       # the future did change


@given(T=st.integers(1, 30), d_model=st.integers(1, 24))
def test_sinusoidal_table_is_the_formula(T, d_model):
    pe = sinusoidal_table(T, d_model)
    for pos in range(T):
        for j in range(d_model):
            i = j // 2                                  # j = 2i or j = 2i + 1
            angle = pos / 10000 ** (2 * i / d_model)
            expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert abs(pe[pos, j] - expected) < 1e-12


@given(C=st.integers(2, 64), seed=seeds, scale=st.floats(0.01, 100.0), shift=st.floats(-100, 100))
def test_layernorm_output_has_mean_zero_and_variance_one(C, seed, scale, shift):
    x = shift + scale * np.random.default_rng(seed).standard_normal((4, C))
    y, _ = layernorm_forward(x, np.ones(C), np.zeros(C))
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-9)
    var = x.var(axis=-1)
    # variance 1, up to the eps in the denominator: var(y) = var(x) / (var(x) + eps)
    np.testing.assert_allclose(y.var(axis=-1), var / (var + 1e-5), rtol=1e-9)


def test_layernorm_of_a_constant_row_is_finite():
    for dtype in (np.float32, np.float64):
        x = np.full((2, 8), 3.0, dtype=dtype)
        y, _ = layernorm_forward(x, np.ones(8, dtype), np.zeros(8, dtype))
        assert np.all(np.isfinite(y)) and np.all(y == 0)


def test_cross_entropy_is_finite_for_huge_logits():
    for dtype in (np.float32, np.float64):
        logits = np.array([[[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]]], dtype=dtype)
        targets = np.array([[1, 0]])
        loss, cache = cross_entropy_forward(logits, targets)
        dlogits = cross_entropy_backward(1.0, cache)
        assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
        assert abs(loss - 2e4 / 2 - 2e4 / 2) / 2e4 < 1e-3     # -log p = 2e4 for both rows
        np.testing.assert_allclose(dlogits.sum(axis=-1), 0.0, atol=1e-6)


def test_the_shipped_font_draws_every_character_of_the_corpus():
    """minigpt.plots.use_cjk_font: any plot can show any corpus character (Chinese
    included) on a machine without a CJK font; a missing glyph is a warning to catch."""
    import io
    import warnings

    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from minigpt.data import load_conversations
    from minigpt.plots import use_cjk_font
    chars = sorted({c for conv in load_conversations() for line in conv for c in line})
    assert sum(ord(c) > 0x2E80 for c in chars) > 900         # the corpus is part Chinese
    family = use_cjk_font()
    assert family == "minigpt CJK"
    fig = Figure(figsize=(8, 8))
    ax = fig.subplots()
    for i in range(0, len(chars), 50):
        ax.text(0, i / len(chars), "".join(chars[i:i + 50]))
    ax.set_title("你好，我是人类，请问你是谁？")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png", dpi=40)     # drawing is when glyphs are looked up
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing, missing[:5]
