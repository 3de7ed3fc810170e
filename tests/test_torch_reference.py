"""Optional: minigpt against an independent PyTorch implementation, in float64.

A second GPT written here in PyTorch (functional, from nanoGPT's architecture,
sharing no code with minigpt) loads minigpt's weights through `to_nanogpt`; logits,
loss and every gradient (PyTorch autograd vs our hand-written backward) must agree
to a relative error of 1e-9. Skipped when torch is not installed
(`pip install torch==2.13.0` to run it).
"""
import numpy as np
import pytest

from minigpt.config import GPTConfig
from minigpt.interop import to_nanogpt
from minigpt.model import GPT

torch = pytest.importorskip("torch")
F = torch.nn.functional


def torch_gpt_loss(sd, config, idx, targets, label_smoothing=0.0):
    """nanoGPT's forward, written against a state_dict of float64 tensors."""
    B, T = idx.shape
    C, nh = config.n_embd, config.n_head
    hs = C // nh
    get = lambda name: sd.get(name)
    x = sd["transformer.wte.weight"][idx] + sd["transformer.wpe.weight"][:T]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(config.n_layer):
        h = f"transformer.h.{l}."
        a = F.layer_norm(x, (C,), get(h + "ln_1.weight"), get(h + "ln_1.bias"), eps=1e-5)
        q, k, v = F.linear(a, get(h + "attn.c_attn.weight"), get(h + "attn.c_attn.bias")).split(C, dim=2)
        q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / hs**0.5
        att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + F.linear(y, get(h + "attn.c_proj.weight"), get(h + "attn.c_proj.bias"))
        m = F.layer_norm(x, (C,), get(h + "ln_2.weight"), get(h + "ln_2.bias"), eps=1e-5)
        m = F.gelu(F.linear(m, get(h + "mlp.c_fc.weight"), get(h + "mlp.c_fc.bias")), approximate="tanh")
        x = x + F.linear(m, get(h + "mlp.c_proj.weight"), get(h + "mlp.c_proj.bias"))
    x = F.layer_norm(x, (C,), sd["transformer.ln_f.weight"], sd.get("transformer.ln_f.bias"), eps=1e-5)
    logits = x @ sd["lm_head.weight"].T
    return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                   label_smoothing=label_smoothing)


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-300))


# configurations that appear in no other test
CONFIGS = [
    dict(vocab_size=23, block_size=11, n_layer=3, n_head=3, n_embd=18, bias=True, pos_encoding="sinusoidal"),
    dict(vocab_size=5, block_size=16, n_layer=1, n_head=4, n_embd=16, bias=False, pos_encoding="learned"),
    dict(vocab_size=41, block_size=7, n_layer=2, n_head=1, n_embd=10, bias=True, pos_encoding="learned"),
    # the paper's embedding scale, folded into wte and ln_f on export (minigpt.interop)
    dict(vocab_size=17, block_size=8, n_layer=2, n_head=2, n_embd=12, bias=True,
         pos_encoding="sinusoidal", scale_embeddings=True),
    dict(vocab_size=9, block_size=6, n_layer=1, n_head=2, n_embd=8, bias=False,
         pos_encoding="learned", scale_embeddings=True),
]


# (config, label smoothing): every config plain, two with PyTorch's label_smoothing too
CASES = [(kw, 0.0) for kw in CONFIGS] + [(CONFIGS[0], 0.1), (CONFIGS[3], 0.3)]


@pytest.mark.parametrize("kw, eps", CASES)
def test_logits_loss_and_every_gradient_match_pytorch(kw, eps):
    config = GPTConfig(dtype="float64", **kw)
    model = GPT(config, seed=11)
    rng = np.random.default_rng(5)
    for p in model.params.values():                     # non-trivial weights
        p += 0.2 * rng.standard_normal(p.shape)
    T = config.block_size
    idx = rng.integers(0, config.vocab_size, size=(3, T))
    targets = rng.integers(0, config.vocab_size, size=(3, T))
    logits, loss = model.forward(idx, targets, label_smoothing=eps)
    grads = to_nanogpt(model.backward(), config, gradients=True)

    sd = {k: torch.tensor(v, dtype=torch.float64) for k, v in to_nanogpt(model.params, config).items()}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]           # one tensor: tied
    trainable = {k: v.requires_grad_() for k, v in sd.items()
                 if not (k == "transformer.wpe.weight" and config.pos_encoding == "sinusoidal")}
    t_logits, t_loss = torch_gpt_loss(sd, config, torch.tensor(idx), torch.tensor(targets), eps)
    t_loss.backward()

    assert rel(logits, t_logits.detach().numpy()) < 1e-9
    assert abs(loss - t_loss.item()) / abs(t_loss.item()) < 1e-9
    assert set(grads) == set(trainable)
    for name, g in grads.items():
        t_grad = trainable[name].grad.numpy()
        assert rel(g, t_grad) < 1e-9, (name, rel(g, t_grad))
