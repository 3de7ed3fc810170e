"""AdamW, clip_grad_norm and lr_at, each checked against its formula written
out again here, independently of minigpt.optim."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minigpt.optim import AdamW, clip_grad_norm, lr_at


def toy_params(rng, dtype=np.float64):
    """A matrix (decayed), an embedding-like table (decayed) and a bias (not decayed)."""
    return {"w": rng.standard_normal((3, 4)).astype(dtype),
            "wte": rng.standard_normal((5, 2)).astype(dtype),
            "b": rng.standard_normal(4).astype(dtype)}


def quadratic_grads(params, targets):
    """Gradient of L = sum over names of 0.5 * ||p - target||^2, i.e. p - target."""
    return {k: params[k] - targets[k] for k in params}


def reference_adamw(params, targets, steps, lr, betas, eps, wd):
    """AdamW written from the paper's equations, one line per equation."""
    b1, b2 = betas
    p = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    for t in range(1, steps + 1):
        g = quadratic_grads(p, targets)
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            m_hat = m[k] / (1 - b1 ** t)
            v_hat = v[k] / (1 - b2 ** t)
            decay = wd if p[k].ndim >= 2 else 0.0
            p[k] = p[k] - lr * (m_hat / (np.sqrt(v_hat) + eps) + decay * p[k])
    return p


def test_adamw_matches_its_equations_on_a_quadratic():
    rng = np.random.default_rng(0)
    params = toy_params(rng)
    targets = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    expected = reference_adamw(params, targets, steps=7, lr=0.05, betas=(0.9, 0.95),
                               eps=1e-8, wd=0.1)
    ids = {k: id(v) for k, v in params.items()}
    opt = AdamW(params, lr=0.05, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    for _ in range(7):
        opt.step(quadratic_grads(params, targets))
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], rtol=1e-12, atol=1e-14)
        assert id(params[k]) == ids[k], "params must be updated in place"
    assert opt.t == 7


def test_weight_decay_only_on_matrices_and_embeddings():
    # With zero gradient Adam's part of the update is 0, so any change is decay.
    rng = np.random.default_rng(1)
    params = toy_params(rng)
    before = {k: v.copy() for k, v in params.items()}
    opt = AdamW(params, lr=0.1, weight_decay=0.5)
    opt.step({k: np.zeros_like(v) for k, v in params.items()})
    np.testing.assert_allclose(params["w"], before["w"] * (1 - 0.1 * 0.5), rtol=1e-12)
    np.testing.assert_allclose(params["wte"], before["wte"] * (1 - 0.1 * 0.5), rtol=1e-12)
    np.testing.assert_array_equal(params["b"], before["b"])
    assert opt.decays("w") and opt.decays("wte") and not opt.decays("b")


def test_step_lr_overrides_the_constructor_lr():
    rng = np.random.default_rng(2)
    a, b = toy_params(rng), None
    b = {k: v.copy() for k, v in a.items()}
    g = {k: rng.standard_normal(v.shape) for k, v in a.items()}
    AdamW(a, lr=0.3).step(g)
    AdamW(b, lr=123.0).step(g, lr=0.3)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_moments_keep_the_param_dtype():
    params = toy_params(np.random.default_rng(3), dtype=np.float32)
    opt = AdamW(params)
    opt.step({k: np.ones(v.shape, dtype=np.float64) for k, v in params.items()})
    for k, p in params.items():
        assert p.dtype == np.float32
        assert opt.m[k].dtype == opt.v[k].dtype == np.float32


def test_state_dict_round_trip_gives_identical_continuation(tmp_path):
    rng = np.random.default_rng(4)
    params = toy_params(rng)
    targets = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    opt = AdamW(params, lr=0.05)
    for _ in range(3):
        opt.step(quadratic_grads(params, targets))
    # Save through a real .npz, as a checkpoint would.
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
        state = dict(f)
    twin_params = {k: v.copy() for k, v in params.items()}
    twin = AdamW(twin_params, lr=0.05)
    twin.load_state_dict(state)
    for _ in range(4):
        opt.step(quadratic_grads(params, targets))
        twin.step(quadratic_grads(twin_params, targets))
    for k in params:
        np.testing.assert_array_equal(params[k], twin_params[k])
    assert twin.t == opt.t == 7


def test_state_dict_is_a_copy():
    params = toy_params(np.random.default_rng(5))
    opt = AdamW(params)
    state = opt.state_dict()
    opt.step({k: np.ones_like(v) for k, v in params.items()})
    assert all(np.all(state[f"m.{k}"] == 0) for k in params)
    assert int(state["step"]) == 0


@pytest.mark.parametrize("corrupt, message", [
    (lambda s: {k: v for k, v in s.items() if k != "m.w"}, "m.w"),
    (lambda s: {**s, "m.extra": np.zeros(2)}, "m.extra"),
    (lambda s: {**s, "v.b": np.zeros(5)}, "v.b"),
    (lambda s: {**s, "step": np.array([1, 2])}, "step"),
    (lambda s: {**s, "step": np.array(-1)}, "step"),
    (lambda s: {**s, "m.w": np.full((3, 4), np.nan)}, "m.w"),
])
def test_load_state_dict_rejects_bad_state_and_changes_nothing(corrupt, message):
    params = toy_params(np.random.default_rng(6))
    opt = AdamW(params)
    opt.step({k: np.ones_like(v) for k, v in params.items()})
    good = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(corrupt({k: v * 2 for k, v in good.items()}))
    for k, v in opt.state_dict().items():
        np.testing.assert_array_equal(v, good[k])


def test_step_rejects_grads_that_do_not_match():
    params = toy_params(np.random.default_rng(7))
    opt = AdamW(params)
    with pytest.raises(ValueError, match="'b'"):
        opt.step({"w": np.zeros((3, 4)), "wte": np.zeros((5, 2))})
    with pytest.raises(ValueError, match="'w'"):
        opt.step({"w": np.zeros((4, 3)), "wte": np.zeros((5, 2)), "b": np.zeros(4)})


def test_adamw_minimises_a_quadratic():
    rng = np.random.default_rng(8)
    params = toy_params(rng)
    targets = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    opt = AdamW(params, lr=0.05, weight_decay=0.0)

    def loss():
        return sum(0.5 * np.sum((params[k] - targets[k]) ** 2) for k in params)

    start = loss()
    for _ in range(500):
        opt.step(quadratic_grads(params, targets))
    assert loss() < 1e-4 * start


@settings(deadline=None)
@given(scale=st.floats(1e-3, 1e3), max_norm=st.floats(0.1, 10.0), seed=st.integers(0, 10**6))
def test_clip_grad_norm(scale, max_norm, seed):
    rng = np.random.default_rng(seed)
    grads = {"a": rng.standard_normal((4, 3)) * scale, "b": rng.standard_normal(7) * scale}
    before = {k: v.copy() for k, v in grads.items()}
    expected_norm = math.sqrt(sum(float(np.sum(g * g)) for g in before.values()))
    ids = {k: id(v) for k, v in grads.items()}

    norm = clip_grad_norm(grads, max_norm)

    assert norm == pytest.approx(expected_norm, rel=1e-12)
    after = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    if expected_norm <= max_norm:
        for k in grads:
            np.testing.assert_array_equal(grads[k], before[k])   # untouched
    else:
        assert after == pytest.approx(max_norm, rel=1e-12)
        for k in grads:   # one common factor: the direction is kept
            np.testing.assert_allclose(grads[k], before[k] * (max_norm / expected_norm),
                                       rtol=1e-12)
    assert {k: id(v) for k, v in grads.items()} == ids


@pytest.mark.parametrize("grads", [
    {"a": np.array([np.inf, 1.0]), "b": np.array([2.0, 3.0])},
    {"a": np.array([np.nan, 1.0]), "b": np.array([2.0, 3.0])},
    {"a": np.full(3, 1e20, dtype=np.float32)},        # finite, but its square overflows
], ids=["inf", "nan", "float32-overflow"])
def test_clip_grad_norm_leaves_grads_alone_when_the_norm_is_not_finite(grads):
    """The caller skips such a step; scaling by max_norm / inf would zero the grads."""
    before = {k: v.copy() for k, v in grads.items()}
    norm = clip_grad_norm(grads, 1.0)
    assert not math.isfinite(norm)
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])


def test_clip_grad_norm_rejects_non_positive_max_norm():
    with pytest.raises(ValueError):
        clip_grad_norm({"a": np.ones(3)}, 0.0)


SCHEDULE = dict(lr=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=100)


def test_lr_schedule_endpoints():
    assert lr_at(0, **SCHEDULE) == 0.0
    assert lr_at(5, **SCHEDULE) == pytest.approx(0.5e-3)
    assert lr_at(10, **SCHEDULE) == pytest.approx(1e-3)
    assert lr_at(55, **SCHEDULE) == pytest.approx((1e-3 + 1e-4) / 2)  # cosine midpoint
    assert lr_at(100, **SCHEDULE) == pytest.approx(1e-4)
    assert lr_at(10_000, **SCHEDULE) == 1e-4


def test_lr_schedule_rises_then_falls():
    lrs = [lr_at(s, **SCHEDULE) for s in range(120)]
    warm, decay = lrs[:11], lrs[10:]
    assert all(a < b for a, b in zip(warm, warm[1:]))
    assert all(a >= b for a, b in zip(decay, decay[1:]))
    assert min(lrs[1:]) >= SCHEDULE["min_lr"] and max(lrs) <= SCHEDULE["lr"] * (1 + 1e-12)


def test_lr_schedule_without_warmup_starts_at_lr():
    assert lr_at(0, lr=1.0, min_lr=0.0, warmup_iters=0, max_iters=10) == 1.0


def test_lr_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError):
        lr_at(0, lr=1e-3, min_lr=1e-2, warmup_iters=0, max_iters=10)
    with pytest.raises(ValueError):
        lr_at(0, lr=1e-3, min_lr=0.0, warmup_iters=20, max_iters=10)


def test_clip_grad_norm_in_float32_agrees_with_a_float64_sum():
    """The norm is summed by np.vdot in the grads' dtype; in float32 it stays within
    float32's rounding of the plain float64 sum of squares."""
    rng = np.random.default_rng(0)
    grads = {f"g{i}": rng.standard_normal(shape).astype(np.float32)
             for i, shape in enumerate([(65, 128), (128, 384), (128, 512), (512, 128), (128,)])}
    plain = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
    assert clip_grad_norm(grads, 1e9) == pytest.approx(plain, rel=1e-6)
