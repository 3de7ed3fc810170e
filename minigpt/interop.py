"""nanoGPT / GPT-2 names and PyTorch layouts, both ways.

minigpt names its arrays after nanoGPT's modules, minus "transformer." and with
".w"/".b" for ".weight"/".bias", and stores Linear weights as (in, out) so that the
forward reads x @ w. PyTorch's nn.Linear stores (out, in) and computes x @ W^T. So:

    minigpt                     nanoGPT state_dict                      layout
    wte               (V, C)    transformer.wte.weight  (and lm_head.weight, tied)
    wpe         (block, C)      transformer.wpe.weight                 same
    h.0.ln_1.w / .b             transformer.h.0.ln_1.weight / .bias    same
    h.0.attn.c_attn.w (C, 3C)   transformer.h.0.attn.c_attn.weight     transposed (3C, C)
    ...                         ...
    ln_f.w / .b                 transformer.ln_f.weight / .bias        same

The same mapping serves gradients: export `model.backward()`'s dict with
`gradients=True` and compare it with PyTorch's `.grad` of each parameter. With the
sinusoidal encoding minigpt has no wpe parameter; exporting *parameters* then
includes the fixed table as transformer.wpe.weight, so a nanoGPT model loads the
exact same function (freeze that weight in PyTorch to keep it fixed).

The paper's embedding scale (GPTConfig.scale_embeddings: x = s * wte[idx] + pe with
s = sqrt(C)) has no nanoGPT setting, so it is folded into the weights. nanoGPT
computes x = wte'[idx] + pe and logits = ln_f'(x) @ wte'^T. With
    wte' = s * wte,    ln_f.weight' = ln_f.w / s,    ln_f.bias' = ln_f.b / s
the embedding is s * wte[idx] and the head ln_f'(x) @ wte'^T = (ln_f(x) / s) @ (s wte)^T
= ln_f(x) @ wte^T: the same function, to rounding. Gradients fold the other way
(dL/dwte' = dL/dwte / s, dL/dln_f' = s * dL/dln_f), and from_nanogpt unfolds.
"""
import numpy as np

from .config import GPTConfig
from .model import param_shapes
from .ops.positional import sinusoidal_table

LINEAR_SUFFIXES = (".c_attn.w", ".c_proj.w", ".c_fc.w")   # stored (in, out) here


def _torch_name(name):
    """minigpt name -> nanoGPT name ("h.0.ln_1.w" -> "transformer.h.0.ln_1.weight")."""
    stem, kind = name.rsplit(".", 1) if name not in ("wte", "wpe") else (name, "w")
    return f"transformer.{stem}." + {"w": "weight", "b": "bias"}[kind]


def _is_linear(name):
    return name.endswith(LINEAR_SUFFIXES)


def to_nanogpt(arrays, config: GPTConfig, *, gradients=False, squared=False):
    """minigpt params (or grads, with gradients=True) -> nanoGPT state_dict of NumPy arrays.

    squared=True (with gradients=True) is for AdamW's second moments, running means
    of squared gradients: the embedding scale's fold then enters squared."""
    expected = param_shapes(config)
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        raise ValueError(f"to_nanogpt: arrays do not match the config: missing {missing}, "
                         f"unexpected {unexpected}")
    out = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        out[_torch_name(name)] = value.T.copy() if _is_linear(name) else value.copy()
    if config.scale_embeddings:         # fold s into wte and ln_f (module docstring)
        s = config.n_embd ** 0.5
        f = (1.0 / s if gradients else s) ** (2 if squared else 1)
        out["transformer.wte.weight"] *= f
        for key in ("transformer.ln_f.weight", "transformer.ln_f.bias"):
            if key in out:
                out[key] /= f
    if config.pos_encoding == "sinusoidal" and not gradients:
        dtype = np.asarray(arrays["wte"]).dtype
        out["transformer.wpe.weight"] = sinusoidal_table(config.block_size, config.n_embd, dtype)
    out["lm_head.weight"] = out["transformer.wte.weight"]      # tied, as in nanoGPT
    return out


def to_hf(params, config: GPTConfig):
    """minigpt params -> the state_dict of transformers' GPT2LMHeadModel (NumPy arrays).

    Hugging Face's GPT-2 keeps nanoGPT's names but stores its projections as Conv1D,
    (in, out), which is minigpt's own layout, so those are not transposed. It always
    has biases: a model without them (bias=False) gets zero biases, the same function.
    The head is tied to wte, so lm_head.weight is left out (transformers ties it when
    it loads, as in its own GPT-2 files).
    """
    out = to_nanogpt(params, config)
    out.pop("lm_head.weight")
    for name in param_shapes(config):
        if _is_linear(name):
            key = _torch_name(name)
            out[key] = np.ascontiguousarray(out[key].T)
    if not config.bias:
        C, dtype = config.n_embd, np.asarray(params["wte"]).dtype
        widths = {"ln_1": C, "attn.c_attn": 3 * C, "attn.c_proj": C, "ln_2": C,
                  "mlp.c_fc": 4 * C, "mlp.c_proj": C}
        for l in range(config.n_layer):
            for module, width in widths.items():
                out[f"transformer.h.{l}.{module}.bias"] = np.zeros(width, dtype)
        out["transformer.ln_f.bias"] = np.zeros(C, dtype)
    return out


def from_nanogpt(state_dict, config: GPTConfig):
    """nanoGPT state_dict (PyTorch tensors or NumPy arrays) -> minigpt params dict.

    The causal-mask buffers some nanoGPT versions keep ("....attn.bias" without
    "c_attn") are ignored. With the sinusoidal encoding, transformer.wpe.weight (if
    present) must equal the fixed table, since minigpt cannot represent another one.
    """
    def as_array(t):
        t = t.detach().cpu().numpy() if hasattr(t, "detach") else t
        return np.asarray(t, dtype=np.dtype(config.dtype))

    sd = {k: v for k, v in state_dict.items() if not k.endswith(".attn.bias")}
    params, shapes = {}, param_shapes(config)
    for name, shape in shapes.items():
        key = _torch_name(name)
        if key not in sd:
            raise ValueError(f"from_nanogpt: state_dict has no {key!r} (needed for {name!r})")
        value = as_array(sd[key])
        torch_shape = shape[::-1] if _is_linear(name) else shape
        if value.shape != torch_shape:
            raise ValueError(f"from_nanogpt: {key!r} has shape {value.shape}, expected "
                             f"{torch_shape} for this config")
        params[name] = np.ascontiguousarray(value.T if _is_linear(name) else value)
    if "lm_head.weight" in sd and not np.array_equal(as_array(sd["lm_head.weight"]), params["wte"]):
        raise ValueError("from_nanogpt: lm_head.weight differs from transformer.wte.weight; "
                         "minigpt ties them")
    if config.scale_embeddings:         # unfold s (module docstring)
        s = config.n_embd ** 0.5
        params["wte"] = params["wte"] / s
        params["ln_f.w"] = params["ln_f.w"] * s
        if "ln_f.b" in params:
            params["ln_f.b"] = params["ln_f.b"] * s
    if config.pos_encoding == "sinusoidal" and "transformer.wpe.weight" in sd:
        table = sinusoidal_table(config.block_size, config.n_embd, np.dtype(config.dtype))
        wpe = as_array(sd["transformer.wpe.weight"])
        if wpe.shape != table.shape or not np.allclose(wpe, table, atol=1e-6):
            raise ValueError("from_nanogpt: transformer.wpe.weight is not the sinusoidal table; "
                             "use GPTConfig(pos_encoding='learned') for a learned one")
    known = {_torch_name(n) for n in shapes} | {"lm_head.weight", "transformer.wpe.weight"}
    unexpected = sorted(set(sd) - known)
    if unexpected:
        raise ValueError(f"from_nanogpt: unexpected keys {unexpected} for this config")
    return params
