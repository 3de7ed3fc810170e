"""The two half-batches of GPT.forward / GPT.backward (minigpt/parallel.py).

- Threads change the speed, never the numbers: the halves run in parallel or one
  after the other give bit-identical logits, loss and gradients, dropout included.
- Two halves compute the whole batch: their weighted loss and summed gradients
  equal the mean over the batch's sequences run one at a time (B = 1, no split).
"""
import numpy as np
import pytest

import minigpt.parallel as parallel
from minigpt.config import GPTConfig
from minigpt.model import GPT


def config(**kw):
    base = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=12, bias=True,
                pos_encoding="learned")
    return GPTConfig(**{**base, **kw})


def run(model, idx, targets, train, seed):
    logits, loss = model.forward(idx, targets, train=train, rng=np.random.default_rng(seed))
    return logits, loss, model.backward()


BLAS_SIZED = dict(vocab_size=65, block_size=32, n_layer=1, n_head=4, n_embd=64)


@pytest.mark.parametrize("B", [2, 5])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("size", [{}, BLAS_SIZED], ids=["tiny", "blas-sized"])
def test_threads_do_not_change_the_numbers(monkeypatch, B, dropout, size):
    """blas-sized: products big enough for BLAS to share them between its threads,
    whose partial sums then depend on the thread count (the halves' share of it)."""
    model = GPT(config(dropout=dropout, dtype="float32", **size), seed=3)
    V, T = model.config.vocab_size, model.config.block_size
    rng = np.random.default_rng(B)
    idx, targets = rng.integers(0, V, size=(2, B, T))
    monkeypatch.setattr(parallel, "ENABLED", True)
    threaded = run(model, idx, targets, train=dropout > 0, seed=7)
    monkeypatch.setattr(parallel, "ENABLED", False)
    one_by_one = run(model, idx, targets, train=dropout > 0, seed=7)
    np.testing.assert_array_equal(threaded[0], one_by_one[0])
    assert threaded[1] == one_by_one[1]
    for name in model.params:
        np.testing.assert_array_equal(threaded[2][name], one_by_one[2][name], err_msg=name)


@pytest.mark.parametrize("B", [2, 3, 6])
def test_two_halves_compute_the_whole_batch(B):
    model = GPT(config(dtype="float64"), seed=4)
    rng = np.random.default_rng(B)
    for p in model.params.values():                  # non-trivial weights
        p += 0.3 * rng.standard_normal(p.shape)
    idx, targets = rng.integers(0, 11, size=(2, B, 8))
    logits, loss, grads = run(model, idx, targets, train=False, seed=0)
    singles = [run(model, idx[b:b + 1], targets[b:b + 1], train=False, seed=0)
               for b in range(B)]                    # B = 1: no split
    np.testing.assert_allclose(logits, np.concatenate([s[0] for s in singles]), rtol=1e-12)
    assert loss == pytest.approx(np.mean([s[1] for s in singles]), rel=1e-12)
    for name in model.params:
        expected = np.mean([s[2][name] for s in singles], axis=0)
        np.testing.assert_allclose(grads[name], expected, rtol=1e-10, atol=1e-14, err_msg=name)


def test_backward_with_dlogits_splits_them_too():
    model = GPT(config(dtype="float64"), seed=5)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 11, size=(4, 8))
    logits, _ = model.forward(idx)
    dlogits = rng.standard_normal(logits.shape)
    grads = model.backward(dlogits)
    total = {name: 0.0 for name in model.params}
    for b in range(4):
        model.forward(idx[b:b + 1])
        for name, g in model.backward(dlogits[b:b + 1]).items():
            total[name] = total[name] + g
    for name in model.params:
        np.testing.assert_allclose(grads[name], total[name], rtol=1e-10, atol=1e-14, err_msg=name)


def test_split_batch():
    assert parallel.split_batch(1) == [slice(0, 1)]
    assert parallel.split_batch(12) == [slice(0, 6), slice(6, 12)]
    assert parallel.split_batch(5) == [slice(0, 2), slice(2, 5)]


def test_one_blas_thread_nests_and_only_the_outermost_sets_blas(blas_threads,
                                                                blas_limit_calls):
    before, calls = blas_threads(), blas_limit_calls
    with parallel.one_blas_thread():
        with parallel.one_blas_thread():
            assert blas_threads() == [1] * len(before)
        assert blas_threads() == [1] * len(before)          # the inner exit gave nothing back
        with pytest.raises(RuntimeError):
            with parallel.one_blas_thread():
                raise RuntimeError("a failing step")
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before                         # the outermost exit did
    assert calls == [1]                                     # and only it talked to BLAS
    with parallel.one_blas_thread():                        # the count went back to zero
        pass
    assert calls == [1, 1]
