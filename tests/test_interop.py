"""minigpt.interop: nanoGPT names and PyTorch layouts, both ways."""
import numpy as np
import pytest

from minigpt.config import GPTConfig
from minigpt.interop import from_nanogpt, to_nanogpt
from minigpt.model import GPT
from minigpt.ops.positional import sinusoidal_table


@pytest.mark.parametrize("pos_encoding", ["sinusoidal", "learned"])
@pytest.mark.parametrize("bias", [True, False])
def test_round_trip_is_exact(pos_encoding, bias):
    config = GPTConfig(vocab_size=13, block_size=9, n_layer=2, n_head=3, n_embd=12,
                       pos_encoding=pos_encoding, bias=bias)
    model = GPT(config, seed=4)
    sd = to_nanogpt(model.params, config)
    back = from_nanogpt(sd, config)
    assert list(back) == list(model.params)
    for name in model.params:
        np.testing.assert_array_equal(back[name], model.params[name])


def test_layouts_and_names():
    config = GPTConfig(vocab_size=13, block_size=9, n_layer=1, n_head=2, n_embd=8)
    model = GPT(config)
    sd = to_nanogpt(model.params, config)
    C = 8
    assert sd["transformer.h.0.attn.c_attn.weight"].shape == (3 * C, C)   # (out, in)
    assert sd["transformer.h.0.mlp.c_fc.weight"].shape == (4 * C, C)
    assert sd["transformer.h.0.mlp.c_proj.weight"].shape == (C, 4 * C)
    np.testing.assert_array_equal(sd["transformer.h.0.mlp.c_fc.weight"],
                                  model.params["h.0.mlp.c_fc.w"].T)
    np.testing.assert_array_equal(sd["lm_head.weight"], sd["transformer.wte.weight"])
    np.testing.assert_array_equal(sd["transformer.wpe.weight"], sinusoidal_table(9, 8, np.float32))
    grads_sd = to_nanogpt({k: np.ones_like(v) for k, v in model.params.items()}, config,
                          gradients=True)
    assert "transformer.wpe.weight" not in grads_sd           # a fixed table has no gradient


def test_bad_state_dicts_are_named():
    config = GPTConfig(vocab_size=13, block_size=9, n_layer=1, n_head=2, n_embd=8)
    sd = to_nanogpt(GPT(config).params, config)
    missing = {k: v for k, v in sd.items() if k != "transformer.ln_f.weight"}
    with pytest.raises(ValueError, match="ln_f.weight"):
        from_nanogpt(missing, config)
    wrong = dict(sd, **{"transformer.h.0.attn.c_proj.weight": np.zeros((8, 9))})
    with pytest.raises(ValueError, match="c_proj.weight"):
        from_nanogpt(wrong, config)
    extra = dict(sd, **{"transformer.h.5.ln_1.weight": np.zeros(8)})
    with pytest.raises(ValueError, match="unexpected"):
        from_nanogpt(extra, config)
    learned_table = dict(sd, **{"transformer.wpe.weight": np.zeros((9, 8))})
    with pytest.raises(ValueError, match="sinusoidal"):
        from_nanogpt(learned_table, config)


@pytest.mark.parametrize("bias", [True, False])
def test_the_embedding_scale_is_folded_into_wte_and_ln_f(bias):
    """A nanoGPT model has no embedding scale: exported, the scale lives in wte and
    ln_f. Proof without PyTorch: the folded weights, run by minigpt with the scale
    off (which is nanoGPT's function), give the scaled model's logits."""
    config = GPTConfig(vocab_size=13, block_size=9, n_layer=2, n_head=3, n_embd=12, bias=bias,
                       scale_embeddings=True, dtype="float64")
    model = GPT(config, seed=4)
    rng = np.random.default_rng(0)
    for p in model.params.values():
        p += 0.1 * rng.standard_normal(p.shape)
    sd = to_nanogpt(model.params, config)
    np.testing.assert_allclose(sd["transformer.wte.weight"], model.params["wte"] * 12 ** 0.5)
    plain_config = config.replace(scale_embeddings=False)
    plain = GPT(plain_config)
    plain.params = from_nanogpt(sd, plain_config)
    idx = rng.integers(0, 13, size=(2, 9))
    np.testing.assert_allclose(plain.forward(idx)[0], model.forward(idx)[0], rtol=1e-12,
                               atol=1e-12)
    back = from_nanogpt(sd, config)                          # and unfolded again
    for name in model.params:
        np.testing.assert_allclose(back[name], model.params[name], rtol=1e-15, atol=0)
