"""Generation: the KV cache changes nothing but the speed (float64, 1e-10, also past
block_size where the window slides, for every slide), sampling does what its name says, and bad
arguments are refused with a message naming them."""
import numpy as np
import pytest

import minigpt.generate as gen
from minigpt.config import GPTConfig
from minigpt.generate import generate, sample_next, stream
from minigpt.model import GPT


def make_model(pos_encoding="sinusoidal", bias=True, seed=0, block_size=8):
    cfg = GPTConfig(vocab_size=11, block_size=block_size, n_layer=2, n_head=2, n_embd=16,
                    bias=bias, pos_encoding=pos_encoding, dtype="float64")
    model = GPT(cfg, seed=seed)
    # GPT-2's N(0, 0.02) init gives near-uniform logits; larger weights and non-zero
    # biases give distinct, confident predictions, so a wrong cache cannot hide.
    rng = np.random.default_rng(seed + 1)
    for name, p in model.params.items():
        if name.endswith(".b"):
            p[...] = rng.normal(0.0, 0.1, p.shape)
        elif "ln_" not in name:
            p[...] = rng.normal(0.0, 0.3, p.shape)
    return model


def run(model, prompt, n, use_cache, **kw):
    steps = list(stream(model, prompt, n, use_cache=use_cache, with_logits=True, **kw))
    ids = np.stack([s[0] for s in steps], axis=1)             # (B, n)
    logits = np.stack([s[1] for s in steps], axis=1)          # (B, n, V)
    return ids, logits


@pytest.mark.parametrize("pos_encoding", ["sinusoidal", "learned"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("prompt_len", [1, 5, 8, 13])      # 13 > block_size = 8
@pytest.mark.parametrize("greedy", [True, False])
@pytest.mark.parametrize("slide", [1, 3, None, 8])           # None: the default, 8 // 4
def test_cache_gives_the_same_tokens_and_logits(pos_encoding, bias, prompt_len, greedy, slide):
    model = make_model(pos_encoding, bias)
    prompt = np.random.default_rng(2).integers(0, 11, (2, prompt_len))
    n = 20                                                    # runs well past block_size
    kw = dict(greedy=greedy, slide=slide) if greedy else dict(temperature=1.0, slide=slide)
    ids_c, logits_c = run(model, prompt, n, use_cache=True, rng=np.random.default_rng(5), **kw)
    ids_r, logits_r = run(model, prompt, n, use_cache=False, rng=np.random.default_rng(5), **kw)
    np.testing.assert_array_equal(ids_c, ids_r)
    np.testing.assert_allclose(logits_c, logits_r, rtol=0, atol=1e-10)
    if not greedy:   # a random model's greedy text may repeat one token; samples vary
        assert len(set(ids_c[0].tolist())) > 3, "degenerate test: too few distinct tokens"


@pytest.mark.parametrize("slide", [1, 2, 5])
def test_uncached_reference_is_model_forward_on_the_window(slide):
    """The window, written out: it grows to block_size = 8, then drops `slide`."""
    model = make_model()
    prompt = np.array([[1, 2, 3, 4, 5, 6]])
    ids, logits = run(model, prompt, 16, use_cache=False, greedy=True, slide=slide)
    seq = np.concatenate([prompt, ids], axis=1)
    width = 6                                                 # tokens in the window
    for step in range(16):
        window = seq[:, 6 + step - width:6 + step]            # what the model may see
        expected, _ = model.forward(window)
        np.testing.assert_array_equal(logits[:, step], expected[:, -1])
        width += 1                                            # the new token joins
        if width > 8:
            width -= slide                                    # outgrown: drop the oldest


@pytest.mark.parametrize("slide, prefills", [(1, 1 + 16), (4, 1 + 4), (8, 1 + 2)])
def test_the_cache_is_rebuilt_once_per_slide(monkeypatch, slide, prefills):
    """Past block_size the cache is rebuilt when the window moves, and only then:
    17 tokens from a full window of 8 outgrow it 16 times with slide 1, 4 times
    with slide 4 (16 / 4), twice with slide 8."""
    model = make_model()
    built = []
    real_init = gen.KVCache.__init__
    monkeypatch.setattr(gen.KVCache, "__init__",
                        lambda self, *a: (built.append(1), real_init(self, *a))[1])
    generate(model, np.ones((1, 8), dtype=np.int64), 17, greedy=True, slide=slide)
    assert len(built) == prefills


def test_cache_gives_the_same_samples_under_the_same_seed():
    model = make_model(seed=3)
    prompt = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    kw = dict(temperature=1.5, top_k=6, top_p=0.95)
    a = generate(model, prompt, 20, rng=np.random.default_rng(7), **kw)
    b = generate(model, prompt, 20, rng=np.random.default_rng(7), use_cache=False, **kw)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:, :3], prompt)            # the prompt comes back first
    assert a.shape == (3, 23)


def test_model_generate_delegates():
    model = make_model()
    prompt = np.array([[1, 2]])
    out = model.generate(prompt, 5, greedy=True)
    np.testing.assert_array_equal(out, generate(model, prompt, 5, greedy=True))
    assert out.shape == (1, 7) and out.dtype == np.int64


def test_stop_token_ends_generation_and_pads_finished_rows():
    model = make_model()
    prompt = np.array([[1, 2, 3]])
    free = generate(model, prompt, 12, greedy=True)[0, 3:]
    stop = int(free[4])
    first = int(np.argmax(free == stop))                      # first time it appears
    out = generate(model, prompt, 12, greedy=True, stop_token=stop)
    np.testing.assert_array_equal(out[0, 3:], free[:first + 1])
    # two rows: the one that stops early is padded with the stop token
    two = generate(model, np.array([[1, 2, 3], [3, 2, 1]]), 12, greedy=True, stop_token=stop)
    row0 = two[0, 3:]
    assert (row0[first:] == stop).all()


# ----------------------------------------------------------------------------- sampling
LOGITS = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))


def draws(n=4000, **kw):
    rng = np.random.default_rng(0)
    return sample_next(np.repeat(LOGITS, n, axis=0), rng=rng, **kw)


def test_greedy_and_top_k_1_pick_the_argmax():
    logits = np.array([[0.1, 3.0, -1.0], [2.0, 0.0, 1.9]])
    np.testing.assert_array_equal(sample_next(logits, greedy=True), [1, 0])
    np.testing.assert_array_equal(sample_next(logits, top_k=1, rng=0), [1, 0])


def test_temperature_1_samples_the_softmax():
    freq = np.bincount(draws(), minlength=4) / 4000
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.03)


def test_low_temperature_sharpens_high_temperature_flattens():
    cold = np.bincount(draws(temperature=0.25), minlength=4) / 4000
    hot = np.bincount(draws(temperature=4.0), minlength=4) / 4000
    assert cold[0] > 0.8                                      # 0.5^4 / sum p^4 ~ 0.86
    assert hot[3] > 0.15                                      # flatter than 0.05


def test_top_k_keeps_only_the_k_best():
    assert set(draws(top_k=2).tolist()) == {0, 1}


@pytest.mark.parametrize("top_p, support", [(0.5, {0}), (0.79, {0, 1}), (0.81, {0, 1, 2}),
                                            (1.0, {0, 1, 2, 3})])
def test_top_p_keeps_the_smallest_set_reaching_p(top_p, support):
    assert set(draws(top_p=top_p).tolist()) == support


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw, word", [
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(max_new_tokens=2.5), "max_new_tokens"),
    (dict(temperature=0.0), "temperature"),
    (dict(temperature=-1.0), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(top_k=0), "top_k"),
    (dict(top_k=1.5), "top_k"),
    (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.5), "top_p"),
    (dict(stop_token=99), "stop_token"),
    (dict(rng="seed"), "rng"),
    (dict(slide=0), "slide"),
    (dict(slide=9), "slide"),              # more than block_size = 8
    (dict(slide=2.0), "slide"),
])
def test_bad_arguments_are_refused_by_name(kw, word):
    model = make_model()
    args = dict(max_new_tokens=3)
    args.update(kw)
    with pytest.raises(ValueError, match=word):
        generate(model, np.array([[1, 2]]), **args)


def test_temperature_zero_is_fine_when_greedy_is_explicit():
    model = make_model()
    out = generate(model, np.array([[1]]), 3, temperature=0.0, greedy=True)
    assert out.shape == (1, 4)


@pytest.mark.parametrize("idx, word", [
    (np.array([1, 2, 3]), "shape"),
    (np.array([[1.0, 2.0]]), "integer"),
    (np.array([[1, 11]]), "outside"),
    (np.zeros((1, 0), dtype=int), "empty"),
])
def test_bad_prompts_are_refused(idx, word):
    with pytest.raises(ValueError, match=word):
        generate(make_model(), idx, 3)


def test_batch_1_generation_runs_blas_on_one_thread_and_restores_it(monkeypatch,
                                                                   blas_threads):
    """One sequence is too small to share between cores (minigpt/blas.py)."""
    before = blas_threads()
    seen = []
    real = gen.next_logits
    monkeypatch.setattr(gen, "next_logits",
                        lambda *a: (seen.append(blas_threads()), real(*a))[1])
    generate(make_model(), np.array([[1, 2, 3]]), 12, greedy=True)    # past block_size 8
    assert len(seen) > 4 and all(threads == [1] * len(before) for threads in seen)
    assert blas_threads() == before                                    # given back


def test_generate_sets_blas_once_not_per_token(blas_threads, blas_limit_calls):
    """Setting BLAS's threads costs 12-25 us or more: once per call, not once per token."""
    generate(make_model(), np.array([[1, 2, 3]]), 12, greedy=True)
    assert blas_limit_calls == [1]
