"""Tier 2: the whole GPT. Every parameter's gradient against centered differences
(float64, <= 1e-7), on tiny configs drawn by hypothesis: both position encodings,
with and without bias, dropout on under a fixed seed. Plus the public contract:
shapes, dtypes, initialisation, and clear errors for bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minigpt.config import GPTConfig
from minigpt.gradcheck import gradcheck_model
from minigpt.model import GPT


def tiny_config(**kw):
    base = dict(vocab_size=7, block_size=6, n_layer=2, n_head=2, n_embd=6, dtype="float64")
    return GPTConfig(**{**base, **kw})


def randomize(model, seed=1):
    """Non-trivial parameters: GPT-2 init has zero biases and unit gains, which can
    hide a wrong bias or gain term; tiny 0.02 weights make every layer near-linear."""
    rng = np.random.default_rng(seed)
    for name, p in model.params.items():
        p[...] = (0.3 * rng.standard_normal(p.shape) + (1.0 if "ln_" in name and name.endswith(".w")
                                                        else 0.0)).astype(p.dtype)
    return model


def batch(config, B, T, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, config.vocab_size, size=(B, T)),
            rng.integers(0, config.vocab_size, size=(B, T)))


@pytest.mark.parametrize("pos_encoding", ["sinusoidal", "learned"])
@pytest.mark.parametrize("bias", [True, False])
def test_whole_model_gradcheck_every_element(pos_encoding, bias):
    config = tiny_config(pos_encoding=pos_encoding, bias=bias)
    model = randomize(GPT(config))
    idx, targets = batch(config, B=2, T=5)
    report = gradcheck_model(model, idx, targets)
    assert report.ok, f"\n{report}"
    assert set(c.name for c in report.checks) == set(model.params)
    assert sum(c.checked for c in report.checks) == model.num_params()


@pytest.mark.parametrize("pos_encoding", ["sinusoidal", "learned"])
def test_whole_model_gradcheck_with_the_papers_embedding_scale(pos_encoding):
    config = tiny_config(pos_encoding=pos_encoding, scale_embeddings=True)
    model = randomize(GPT(config))
    idx, targets = batch(config, B=2, T=5)
    report = gradcheck_model(model, idx, targets)
    assert report.ok, f"\n{report}"
    assert sum(c.checked for c in report.checks) == model.num_params()


def test_the_embedding_scale_multiplies_the_tokens_only():
    """x = sqrt(C) * wte[idx] + pe: the same model with wte scaled by sqrt(C) by hand and
    the scale off gives the same block input, and the head still reads wte itself."""
    config = tiny_config(scale_embeddings=True, n_layer=1)
    model = randomize(GPT(config))
    plain = GPT(config.replace(scale_embeddings=False))
    plain.params = {k: v.copy() for k, v in model.params.items()}
    plain.params["wte"] *= np.sqrt(config.n_embd)
    idx, _ = batch(config, 2, 5)
    model.forward(idx)
    plain.forward(idx)
    np.testing.assert_allclose(model.cache.blocks[0].ln1.xhat, plain.cache.blocks[0].ln1.xhat,
                               rtol=1e-12)
    assert model.embed_scale == np.sqrt(config.n_embd) and plain.embed_scale == 1.0


def test_whole_model_gradcheck_with_dropout():
    config = tiny_config(dropout=0.2, pos_encoding="learned")
    model = randomize(GPT(config))
    idx, targets = batch(config, B=2, T=6)
    report = gradcheck_model(model, idx, targets, train=True, seed=3)
    assert report.ok, f"\n{report}"
    # and dropout really was on: the training loss differs from the eval loss
    assert model.forward(idx, targets, train=True, rng=np.random.default_rng(3))[1] != \
        model.forward(idx, targets)[1]


@given(V=st.integers(2, 9), n_layer=st.integers(1, 2), heads=st.sampled_from([(1, 4), (2, 2), (2, 3), (3, 2)]),
       T=st.integers(1, 5), B=st.integers(1, 3), bias=st.booleans(),
       pos_encoding=st.sampled_from(["sinusoidal", "learned"]), dropout=st.sampled_from([0.0, 0.25]),
       scale=st.booleans(), seed=st.integers(0, 2**31))
def test_whole_model_gradcheck_hypothesis(V, n_layer, heads, T, B, bias, pos_encoding, dropout,
                                          scale, seed):
    nh, hs = heads
    config = GPTConfig(vocab_size=V, block_size=5, n_layer=n_layer, n_head=nh, n_embd=nh * hs,
                       bias=bias, pos_encoding=pos_encoding, dropout=dropout, dtype="float64",
                       scale_embeddings=scale)
    model = randomize(GPT(config, seed=seed), seed=seed)
    idx, targets = batch(config, B, T, seed)
    report = gradcheck_model(model, idx, targets, max_elements=12, train=dropout > 0, seed=seed)
    assert report.ok, f"\n{report}"


def test_grads_have_exactly_the_params_keys_shapes_and_dtypes():
    for dtype in ("float32", "float64"):
        config = tiny_config(dtype=dtype, pos_encoding="learned", bias=False)
        model = GPT(config)
        idx, targets = batch(config, 3, 6)
        logits, loss = model.forward(idx, targets)
        assert logits.shape == (3, 6, config.vocab_size) and logits.dtype == np.dtype(dtype)
        grads = model.backward()
        assert list(grads) == list(model.params)
        for name, g in grads.items():
            assert g.shape == model.params[name].shape, name
            assert g.dtype == np.dtype(dtype), name


def test_gpt2_initialisation():
    config = GPTConfig(vocab_size=500, block_size=64, n_layer=4, n_head=4, n_embd=128)
    p = GPT(config, seed=0).params
    assert abs(p["wte"].std() - 0.02) < 1e-3
    assert abs(p["h.0.attn.c_attn.w"].std() - 0.02) < 1e-3
    resid = 0.02 / np.sqrt(2 * config.n_layer)
    assert abs(p["h.3.mlp.c_proj.w"].std() - resid) < 1e-3 * resid / 0.02 * 3
    assert abs(p["h.1.attn.c_proj.w"].std() - resid) < 1e-3 * resid / 0.02 * 3
    assert np.all(p["h.2.ln_1.w"] == 1) and np.all(p["h.2.mlp.c_fc.b"] == 0)
    assert "wpe" not in p                                   # sinusoidal: no parameter
    # same seed, same numbers; another seed, other numbers
    assert all(np.array_equal(p[k], GPT(config, seed=0).params[k]) for k in p)
    assert not np.array_equal(p["wte"], GPT(config, seed=1).params["wte"])


def test_the_papers_initialisation_of_wte():
    config = GPTConfig(vocab_size=500, block_size=64, n_layer=4, n_head=4, n_embd=128,
                       scale_embeddings=True)
    p = GPT(config, seed=0).params
    assert abs(p["wte"].std() - 128 ** -0.5) < 2e-3         # std C^-0.5
    assert abs(p["h.0.attn.c_attn.w"].std() - 0.02) < 1e-3   # the rest as GPT-2
    assert abs((np.sqrt(128) * p["wte"]).std() - 1.0) < 0.02  # scaled: size ~1, as the table


def test_loss_at_init_is_near_log_vocab():
    config = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32)
    idx, targets = batch(config, 4, 16)
    _, loss = GPT(config).forward(idx, targets)
    assert abs(loss - np.log(50)) < 0.1


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("idx, message", [
    (np.array([[1, 2, 7]]), "outside"),                  # id == vocab_size
    (np.array([[-1, 2]]), "outside"),
    (np.zeros((1, 7), dtype=int), "block_size"),         # T > block_size
    (np.array([[1.0, 2.0]]), "integer"),
    (np.array([1, 2, 3]), "shape"),
    (np.zeros((1, 0), dtype=int), "empty"),
])
def test_bad_idx_is_a_clear_value_error(idx, message):
    model = GPT(tiny_config())
    with pytest.raises(ValueError, match=message):
        model.forward(idx)


def test_bad_targets_are_refused():
    model = GPT(tiny_config())
    with pytest.raises(ValueError, match="does not match"):
        model.forward(np.array([[1, 2]]), np.array([[1, 2, 3]]))
    with pytest.raises(ValueError, match="outside"):
        model.forward(np.array([[1, 2]]), np.array([[1, 9]]))


def test_backward_before_forward_and_without_loss():
    model = GPT(tiny_config())
    with pytest.raises(ValueError, match="before forward"):
        model.backward()
    model.forward(np.array([[1, 2]]))
    with pytest.raises(ValueError, match="needs the loss"):
        model.backward()


@pytest.mark.parametrize("kw, message", [
    (dict(n_embd=10, n_head=3), "divisible"),
    (dict(dtype="float16"), "unsupported dtype"),
    (dict(pos_encoding="rotary"), "pos_encoding"),
    (dict(n_layer=0), "positive"),
    (dict(dropout=1.0), "dropout"),
])
def test_bad_config_is_a_clear_value_error(kw, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**kw)


def test_unknown_config_key_is_named():
    with pytest.raises(ValueError, match="n_layers"):
        GPTConfig.from_dict({"n_layers": 3})
    with pytest.raises(ValueError, match="n_embed"):
        tiny_config().replace(n_embed=3)


# ----------------------------------------------------------------------------- one plain pass
def test_the_forward_is_the_ops_composed_in_order():
    """A learner who composes the ops by hand, with the same seeded rng, gets exactly
    what model.forward gives, dropout masks included: the model is nothing more."""
    from minigpt.block import block_forward, subdict
    from minigpt.ops.dropout import dropout_forward
    from minigpt.ops.embedding import embedding_forward
    from minigpt.ops.layernorm import layernorm_forward
    from minigpt.ops.linear import linear_forward
    from minigpt.ops.loss import cross_entropy_forward

    config = tiny_config(dropout=0.3, pos_encoding="learned")
    model = randomize(GPT(config))
    idx, targets = batch(config, B=3, T=5)
    logits, loss = model.forward(idx, targets, train=True, rng=np.random.default_rng(9))

    rng, p = np.random.default_rng(9), model.params
    x, _ = dropout_forward(embedding_forward(idx, p["wte"])[0] + p["wpe"][:5], 0.3, rng)
    for l in range(config.n_layer):
        x, _ = block_forward(x, subdict(p, f"h.{l}."), config.n_head, 0.3, rng)
    x, _ = layernorm_forward(x, p["ln_f.w"], p["ln_f.b"])
    expected, _ = linear_forward(x, p["wte"].T)
    np.testing.assert_array_equal(logits, expected)
    assert loss == cross_entropy_forward(expected, targets)[0]


def test_the_cache_names_what_each_layer_kept():
    config = tiny_config(n_layer=2, n_head=3)
    model = GPT(config)
    idx, targets = batch(config, B=2, T=4)
    model.forward(idx, targets)
    att = model.cache.attention(1)                               # (B, nh, T, T)
    assert att.shape == (2, 3, 4, 4)
    assert att is model.cache.blocks[1].attn.heads.att
    np.testing.assert_allclose(att.sum(axis=-1), 1.0, rtol=1e-12)   # rows are distributions
    assert np.all(np.triu(att, k=1) == 0.0)                      # and see no later position


def test_a_cached_pass_is_for_generation_only():
    from minigpt.generate import KVCache
    config = tiny_config()
    model = GPT(config)
    cache = KVCache(config, 1)
    logits, _ = model.forward(np.array([[1, 2, 3, 4]]), kv_cache=cache)
    assert logits.shape == (1, 1, config.vocab_size) and cache.length == 4
    with pytest.raises(ValueError, match="kv_cache"):
        model.backward(np.ones_like(logits))
    with pytest.raises(ValueError, match="KV cache holds 4 positions; 3 more exceed"):
        model.forward(np.array([[1, 2, 3]]), kv_cache=cache)
