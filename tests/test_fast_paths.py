"""The fast forms minigpt runs equal the plain formulas written beside them.

Each op that computes a formula in a faster way keeps the formula as written next to
it (`*_plain`; the timings are in benchmarks/fast_forms.py). Here the two are compared
on float32 and float64 inputs drawn to hit what the fast form could get wrong:
repeated ids and ids that never occur, fewer queries than keys, very negative GELU
inputs, leading axes of any number.

Tolerances. Where the two forms do the same arithmetic they must agree exactly (the
causal mask). Where they add the same numbers in another order they agree to
rounding, and the tolerance is the rounding bound, not a loosened constant: n terms
whose absolute values add up to M, summed in any order with unit round-off
u = eps/2, err by at most about n u M (Higham, Accuracy and Stability of Numerical
Algorithms, 2nd ed., section 3.1: gamma_n M, one rounding per product and per
addition), so two such sums differ by at most n eps M. M is the scale of the terms,
not of the result, because a sum can cancel. For float64 and these sizes that is
below 1e-13 of M.
"""
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minigpt.ops.attention import causal_mask, mask_future, mask_future_plain
from minigpt.ops.embedding import (embedding_backward, embedding_backward_plain,
                                   embedding_forward)
from minigpt.ops.gelu import GELU_CUBIC, GELU_SCALE, gelu_forward, gelu_forward_plain
from minigpt.ops.linear import (linear_backward, linear_backward_plain, linear_forward,
                                linear_forward_plain)
from minigpt.ops.rows import row_mean, row_mean_plain, row_sum, row_sum_plain

seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from([np.float32, np.float64])


def assert_within_rounding(fast, plain, n, magnitude):
    """|fast - plain| <= n eps M elementwise: both sum n terms of total size M (above)."""
    assert fast.dtype == plain.dtype and fast.shape == plain.shape
    bound = n * np.finfo(fast.dtype).eps * magnitude
    diff = np.abs(fast.astype(np.float64) - plain.astype(np.float64))
    worst = np.unravel_index(np.argmax(diff - bound), diff.shape) if diff.size else ()
    assert np.all(diff <= bound), (f"|fast - plain| = {diff[worst]:.3g} > bound "
                                   f"{bound[worst]:.3g} at {worst}")


# ----------------------------------------------------------------------------- rows.py
@given(shape=st.lists(st.integers(1, 7), min_size=0, max_size=2),
       C=st.integers(1, 130), seed=seeds, dtype=dtypes)
def test_row_sum_and_row_mean_equal_the_plain_reductions(shape, C, seed, dtype):
    """x @ ones == x.sum(-1, keepdims), x @ (1/C) == x.mean(-1, keepdims). C up to 130
    crosses the sizes where BLAS splits a row into blocks; the offset 3 makes the mean
    matter. The mean's scaling by 1/C (fast: each term; plain: the sum) is one more
    rounding: n = C + 1 terms."""
    x = (np.random.default_rng(seed).standard_normal((*shape, C)) * 10 + 3).astype(dtype)
    size = np.abs(x.astype(np.float64)).sum(axis=-1, keepdims=True)      # M of each row
    for fast, plain, scale in ((row_sum, row_sum_plain, 1.0),
                               (row_mean, row_mean_plain, 1.0 / C)):
        got, want = fast(x), plain(x)
        assert got.shape == (*shape, 1)
        assert_within_rounding(got, want, C + 1, size * scale)


# ------------------------------------------------------------------------ embedding.py
@given(B=st.integers(1, 4), T=st.integers(1, 9), C=st.integers(1, 6), V=st.integers(1, 40),
       seed=seeds, dtype=dtypes)
@example(B=1, T=5, C=2, V=1, seed=0, dtype=np.float64)    # one id, repeated five times
@example(B=1, T=1, C=3, V=40, seed=0, dtype=np.float32)   # 39 ids that never occur
def test_embedding_backward_equals_the_scatter_add(B, T, C, V, seed, dtype):
    """Grouped sums == np.add.at: repeated ids (small V), ids that never occur (V > N),
    which must keep an exactly zero gradient."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, V, size=(B, T))
    dout = rng.standard_normal((B, T, C)).astype(dtype)
    cache = embedding_forward(idx, np.zeros((V, C), dtype))[1]
    got, want = embedding_backward(dout, cache), embedding_backward_plain(dout, cache)
    assert got.shape == (V, C)
    absent = np.setdiff1d(np.arange(V), idx)
    assert np.all(got[absent] == 0) and np.all(want[absent] == 0)
    size = embedding_backward_plain(np.abs(dout.astype(np.float64)), cache)    # M per row
    assert_within_rounding(got, want, B * T, size)


# ------------------------------------------------------------------------ attention.py
@given(B=st.integers(1, 3), nh=st.integers(1, 3), Tq=st.integers(1, 9),
       extra=st.integers(0, 9), seed=seeds, dtype=dtypes)
@example(B=1, nh=1, Tq=1, extra=0, seed=0, dtype=np.float32)    # nothing to mask
@example(B=1, nh=1, Tq=2, extra=7, seed=0, dtype=np.float64)    # a KV-cache step, Tq < Tk
def test_mask_future_equals_np_where(B, nh, Tq, extra, seed, dtype):
    """s + causal_bias == np.where(causal_mask, -inf, s), exactly: adding 0 or -inf
    rounds nothing. Tq < Tk is a generation step with a KV cache: the queries are the
    last Tq positions. mask_future works in place, so it gets a copy."""
    Tk = Tq + extra
    s = (np.random.default_rng(seed).standard_normal((B, nh, Tq, Tk)) * 5).astype(dtype)
    want = mask_future_plain(s)
    got = mask_future(s.copy())
    assert got.dtype == want.dtype == dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.isneginf(got), np.broadcast_to(causal_mask(Tq, Tk),
                                                                     got.shape))
    assert np.all(np.isfinite(got[..., -1, :]))     # the newest query sees every key


# ----------------------------------------------------------------------------- gelu.py
def gelu_bound(x):
    """The rounding bound of |fast - plain| / |y|, in units of eps, from the terms:
    1/(2s): 1 + tanh(u) = 2s cancels for negative x, and tanh's rounding (up to an
      ulp of ~1) becomes eps/(2s) of the result;
    6 |u| (1 - s): u is rounded a few times and each form rounds it differently
      (x**3 against x * x * x), about 3 eps relative; in both forms s moves by
      d(log s)/du = 2 (1 - s) per unit of u, so s inherits 6 |u| (1 - s) eps;
    3: the last few roundings (1 + ..., 1 / ..., x * s, 0.5 x ...).
    On 3 million points of [-3, 12] the worst difference was 0.56 of this bound, in
    float32 and float64 alike."""
    u = GELU_SCALE * (x + GELU_CUBIC * x**3)
    s = 0.5 * (1.0 + np.tanh(u))                   # in float64, for the bound only
    return 3.0 + 6.0 * np.abs(u) * (1.0 - s) + 1.0 / (2.0 * s)


@given(data=st.data(), dtype=dtypes)
@example(data=None, dtype=np.float64)
def test_gelu_forward_equals_the_tanh_formula_where_both_are_accurate(data, dtype):
    """sigmoid(2u) with x*x*x == 0.5 (1 + tanh u) with x**3, for x >= -3.

    Below -3 the tanh form stops being a reference: 1 + tanh(u) cancels to fewer and
    fewer digits (the 1/(2s) of gelu_bound: at x = -3 it costs ~400 eps; in float32
    at -5 it is 30% off, below -5.4 it returns 0). There the fast form is checked
    against an extended-precision reference instead (next test). Above 0 nothing
    cancels. Below the normal range rounding is absolute, hence the atol of a
    subnormal step and a half."""
    if data is None:                                # the edges, and zeros of either sign
        x = np.array([-3.0, -1.0, -0.0, 0.0, 1e-300, 0.5, 4.05, 12.0], dtype)
    else:
        x = data.draw(arrays(dtype, st.integers(1, 64),
                             elements=st.floats(-3, 12, width=np.finfo(dtype).bits)))
    got, c_fast = gelu_forward(x)
    want, c_plain = gelu_forward_plain(x)
    assert got.dtype == want.dtype == dtype
    finfo = np.finfo(dtype)
    x64 = x.astype(np.float64)
    tol = finfo.eps * gelu_bound(x64)
    np.testing.assert_array_less(np.abs(got.astype(np.float64) - want),
                                 tol * np.abs(got.astype(np.float64))
                                 + finfo.smallest_subnormal * 1.5)
    np.testing.assert_array_less(np.abs(c_fast.s.astype(np.float64) - c_plain.s),
                                 tol * c_fast.s + finfo.smallest_subnormal * 1.5)


EXTENDED = np.finfo(np.longdouble).eps < 1e-18     # x86's 80-bit or a quad long double


@pytest.mark.skipif(not EXTENDED, reason="long double is no wider than float64 here")
@given(x=arrays(np.float32, st.integers(1, 64), elements=st.floats(-6, -3, width=32)))
def test_gelu_forward_keeps_its_digits_where_the_tanh_formula_loses_them(x):
    """float32, x in [-6, -3]: the tanh form in float32 loses its digits here (below
    about -5.4 it returns 0), the sigmoid form stays within its rounding of the true y.

    Reference: the tanh formula in long double (eps 1e-19), whose own error is
    eps_ld/(2s) <= 4e-9 of y on this range, 3% of a float32 eps. Bound: exp magnifies
    the relative error of its argument by |2u|, and 2u is rounded a few times (the
    constants to float32, x * x * x, the products and the sum), up to about 2 eps, so
    s errs by up to 4 |u| eps; plus 3 eps for the last few roundings (worst on 10^6
    points: 0.6 of it)."""
    ld = np.longdouble
    xl = x.astype(ld)
    ul = np.sqrt(ld(2) / ld(np.pi)) * (xl + ld(GELU_CUBIC) * xl * xl * xl)
    true = 0.5 * xl * (1 + np.tanh(ul))
    got = gelu_forward(x)[0].astype(ld)
    eps = float(np.finfo(np.float32).eps)
    rel = np.abs((got - true) / true).astype(np.float64)
    np.testing.assert_array_less(rel, eps * (3.0 + 4.0 * np.abs(ul.astype(np.float64))))


def test_the_tanh_formula_loses_everything_at_x_minus_6_in_float32():
    """Why the library does not run the plain form: at x = -6, y = -8.44e-11
    (s = 1.4e-11), so 1 + tanh(u) = 2s is far below float32's eps next to 1: it rounds
    to 0, and so does y. The sigmoid form keeps y."""
    x = np.array([-6.0], np.float32)
    assert gelu_forward_plain(x)[0][0] == 0.0
    y = gelu_forward(x)[0][0]
    assert -8.45e-11 < y < -8.43e-11


# --------------------------------------------------------------------------- linear.py
@given(lead=st.lists(st.integers(1, 5), min_size=0, max_size=3), Cin=st.integers(1, 40),
       Cout=st.integers(1, 40), bias=st.booleans(), seed=seeds, dtype=dtypes)
def test_linear_equals_the_plain_products(lead, Cin, Cout, bias, seed, dtype):
    """Flattened (N, Cin) @ (Cin, Cout) == x @ w over any leading axes (none, (B,),
    (B, T), ...), forward and backward. Each output is a sum of products: n is the
    number of products, plus one term for the bias."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, Cin)).astype(dtype)
    w = rng.standard_normal((Cin, Cout)).astype(dtype)
    b = rng.standard_normal(Cout).astype(dtype) if bias else None
    y, cache = linear_forward(x, w, b)
    y_plain, cache_plain = linear_forward_plain(x, w, b)
    ax, aw = np.abs(x.astype(np.float64)), np.abs(w.astype(np.float64))
    size = ax @ aw + (np.abs(b.astype(np.float64)) if bias else 0.0)
    assert y.shape == (*lead, Cout)
    assert_within_rounding(y, y_plain, Cin + 1, size)

    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = linear_backward(dy, cache)
    dx_p, dw_p, db_p = linear_backward_plain(dy, cache_plain)
    N = int(np.prod(lead))                          # rows summed over for dw and db
    ady = np.abs(dy.astype(np.float64)).reshape(N, Cout)
    assert_within_rounding(dx, dx_p, Cout, (ady @ aw.T).reshape(x.shape))
    assert_within_rounding(dw, dw_p, N, ax.reshape(N, Cin).T @ ady)
    if bias:
        assert_within_rounding(db, db_p, N, ady.sum(axis=0))
    else:
        assert db is None and db_p is None
