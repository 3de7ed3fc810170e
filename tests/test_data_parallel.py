"""The training engine: the plain model on two half-batches (minigpt/data_parallel.py).

- Threads change the speed, never the numbers: the halves run in two threads or one
  after the other give bit-identical logits, loss and gradients, dropout included.
- Two halves compute the whole batch: their weighted loss and summed gradients
  equal the plain model's on the whole batch, and the mean over its sequences.
- The engine leaves the model as it was: plain forward and backward still work.
"""
import numpy as np
import pytest

from minigpt.config import GPTConfig
from minigpt.data_parallel import DataParallel, split_batch
from minigpt.model import GPT


def config(**kw):
    base = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=12, bias=True,
                pos_encoding="learned")
    return GPTConfig(**{**base, **kw})


def run(net, idx, targets, train, seed, label_smoothing=0.0):
    logits, loss = net.forward(idx, targets, train=train, rng=np.random.default_rng(seed),
                               label_smoothing=label_smoothing)
    return logits, loss, net.backward()


BLAS_SIZED = dict(vocab_size=65, block_size=32, n_layer=1, n_head=4, n_embd=64)


@pytest.mark.parametrize("B", [2, 5])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("size", [{}, BLAS_SIZED], ids=["tiny", "blas-sized"])
def test_threads_do_not_change_the_numbers(B, dropout, size):
    """blas-sized: products big enough for BLAS to share them between its threads,
    whose partial sums then depend on the thread count (the halves' share of it)."""
    model = GPT(config(dropout=dropout, dtype="float32", **size), seed=3)
    V, T = model.config.vocab_size, model.config.block_size
    rng = np.random.default_rng(B)
    idx, targets = rng.integers(0, V, size=(2, B, T))
    threaded = run(DataParallel(model, threads=True), idx, targets, dropout > 0, seed=7)
    one_by_one = run(DataParallel(model, threads=False), idx, targets, dropout > 0, seed=7)
    np.testing.assert_array_equal(threaded[0], one_by_one[0])
    assert threaded[1] == one_by_one[1]
    assert list(threaded[2]) == list(model.params)                  # params' names, in order
    for name in model.params:
        np.testing.assert_array_equal(threaded[2][name], one_by_one[2][name], err_msg=name)


@pytest.mark.parametrize("B, eps", [(1, 0.0), (2, 0.0), (3, 0.0), (6, 0.0), (3, 0.1)])
def test_two_halves_compute_the_whole_batch(B, eps):
    model = GPT(config(dtype="float64"), seed=4)
    rng = np.random.default_rng(B)
    for p in model.params.values():                  # non-trivial weights
        p += 0.3 * rng.standard_normal(p.shape)
    idx, targets = rng.integers(0, 11, size=(2, B, 8))
    logits, loss, grads = run(DataParallel(model), idx, targets, train=False, seed=0,
                              label_smoothing=eps)
    whole = run(model, idx, targets, train=False, seed=0, label_smoothing=eps)  # plain model
    np.testing.assert_allclose(logits, whole[0], rtol=1e-12)
    assert loss == pytest.approx(whole[1], rel=1e-12)
    singles = [run(model, idx[b:b + 1], targets[b:b + 1], train=False, seed=0,
                   label_smoothing=eps) for b in range(B)]
    assert loss == pytest.approx(np.mean([s[1] for s in singles]), rel=1e-12)
    for name in model.params:
        np.testing.assert_allclose(grads[name], whole[2][name], rtol=1e-10, atol=1e-14,
                                   err_msg=name)
        expected = np.mean([s[2][name] for s in singles], axis=0)
        np.testing.assert_allclose(grads[name], expected, rtol=1e-10, atol=1e-14, err_msg=name)


def test_dropout_is_reproducible_by_seed_and_differs_between_seeds():
    model = GPT(config(dropout=0.3, dtype="float64"), seed=2)
    idx, targets = np.random.default_rng(0).integers(0, 11, size=(2, 4, 8))
    engine = DataParallel(model)
    a, b, c = (engine.forward(idx, targets, train=True, rng=np.random.default_rng(s))[1]
               for s in (5, 5, 6))
    assert a == b and a != c


def test_the_model_is_left_as_it_was():
    """The replicas share the parameters but not the cache: after the engine ran, the
    model's own forward and backward are its own, and an update moves both."""
    model = GPT(config(dtype="float64"), seed=6)
    idx, targets = np.random.default_rng(1).integers(0, 11, size=(2, 4, 8))
    model.forward(idx[:1], targets[:1])
    engine = DataParallel(model)
    engine.forward(idx, targets)
    engine.backward()
    assert model.cache.logits_shape == (1, 8, 11)                  # not the engine's batch
    model.params["wte"] += 1.0                                     # in place, as AdamW does
    np.testing.assert_allclose(engine.forward(idx, targets)[0], model.forward(idx)[0],
                               rtol=1e-12)


def test_errors_name_the_whole_batch():
    engine = DataParallel(GPT(config()))
    with pytest.raises(ValueError, match=r"targets shape \(4, 3\) does not match idx shape "
                                         r"\(4, 2\)"):
        engine.forward(np.ones((4, 2), dtype=int), np.ones((4, 3), dtype=int))
    with pytest.raises(ValueError, match="before forward"):
        DataParallel(GPT(config())).backward()


def test_split_batch():
    assert split_batch(1) == [slice(0, 1)]
    assert split_batch(12) == [slice(0, 6), slice(6, 12)]
    assert split_batch(5) == [slice(0, 2), slice(2, 5)]
