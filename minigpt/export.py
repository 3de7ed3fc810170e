"""Export a trained model to the PyTorch world: a Hugging Face directory, or a nanoGPT
checkpoint.

    python -m minigpt export out/chat --to hf out/chat-hf
    python -m minigpt export out/chat --to nanogpt out/nanogpt/ckpt.pt

Hugging Face (no torch needed to write it): a directory that
transformers.GPT2LMHeadModel.from_pretrained and AutoTokenizer.from_pretrained load
with nothing else:
    config.json              GPT2Config: the shape, gelu_new (GPT-2's tanh GELU, ours),
                             layer-norm eps 1e-5, the head tied to wte
    model.safetensors        the weights (minigpt.interop.to_hf), in the model's dtype
                             (float32, or float64 for a float64 model), written with
                             the safetensors package's NumPy API
    generation_config.json   greedy, and a reply ends at <|end|> (or any marker, as in
                             minigpt's chat)
    tokenizer.json           a character-level tokenizer in the tokenizers package's
                             format: exactly our ids, one token per character (Chinese
                             included), the markers as special tokens, unknown
                             characters dropped as minigpt drops them, and encode()
                             wrapping its text as a user turn, <|user|>text<|end|><|bot|>,
                             the prompt minigpt's chat builds
    tokenizer_config.json    which class reads tokenizer.json (PreTrainedTokenizerFast)

nanoGPT (torch needed): one file in nanoGPT's checkpoint layout, which its sample.py
and train.py --init_from=resume read: "model" (its state_dict names,
minigpt.interop.to_nanogpt), "model_args", "iter_num", "best_val_loss", "config"
and "optimizer" (our AdamW moments as torch.optim.AdamW's state, in the two
parameter groups nanoGPT makes). Beside it, meta.pkl: our vocabulary as nanoGPT's
character-level datasets keep theirs (sample.py reads data/<dataset>/meta.pkl).

What GPT-2 cannot express is folded where a fold is exact: the fixed sinusoidal
table becomes wpe, the paper's embedding scale goes into wte and ln_f, a model
without biases gets zero biases (interop's docstring has the algebra). One
difference cannot be folded: nanoGPT's MLP uses the exact GELU (nn.GELU()), minigpt
and GPT-2 the tanh form, so in nanoGPT's own model.py the exported weights compute a
slightly different function (the export says so; nn.GELU(approximate="tanh") there
makes it exact).

Nothing is half written: the directory or file is made under a temporary name
beside the target and renamed into place. An existing target is refused unless
force=True (--force).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import numpy as np

from .config import GPTConfig
from .interop import to_hf, to_nanogpt
from .model import param_shapes
from .tokenizer import BOT, END, SPECIAL_TOKENS, USER

HF_FILES = ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json")
NANOGPT_DATASET = "minigpt_chat"     # the name under nanoGPT's data/ that meta.pkl is for


class ExportError(ValueError):
    """The export cannot be written (the message says why); nothing was left behind."""


# ----------------------------------------------------------------------------- Hugging Face
def hf_config(config: GPTConfig, tokenizer) -> dict:
    """config.json for transformers' GPT2LMHeadModel."""
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": config.vocab_size, "n_positions": config.block_size,
        "n_embd": config.n_embd, "n_layer": config.n_layer, "n_head": config.n_head,
        "n_inner": 4 * config.n_embd,
        "activation_function": "gelu_new",          # the tanh GELU, ops/gelu.py
        "layer_norm_epsilon": 1e-5,                 # ops/layernorm.py's LN_EPS
        "resid_pdrop": config.dropout, "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout, "initializer_range": 0.02,
        "scale_attn_weights": True,                 # scores / sqrt(hs)
        "tie_word_embeddings": True,                # the head is wte
        "bos_token_id": tokenizer.user_id, "eos_token_id": tokenizer.end_id,
        "pad_token_id": tokenizer.end_id, "dtype": config.dtype,
    }


def generation_config(tokenizer, config: GPTConfig) -> dict:
    """generation_config.json: greedy, ending at any marker (as Chatbot's replies do)."""
    return {"do_sample": False, "bos_token_id": tokenizer.user_id,
            "eos_token_id": [tokenizer.end_id, tokenizer.user_id, tokenizer.bot_id],
            "pad_token_id": tokenizer.end_id, "max_length": config.block_size}


def hf_tokenizer(tokenizer):
    """Our CharTokenizer as a `tokenizers.Tokenizer` that gives exactly our ids."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, \
        processors
    vocab = {s: i for i, s in enumerate(tokenizer.itos)}
    t = Tokenizer(models.WordLevel(vocab, unk_token=END))   # (never used: see below)
    # unknown characters are removed before the lookup, as CharTokenizer drops them
    known = "".join(f"\\x{{{ord(c):x}}}" for c in tokenizer.itos[len(SPECIAL_TOKENS):])
    t.normalizer = normalizers.Replace(Regex(f"[^{known}]"), "")
    t.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    t.add_special_tokens(list(SPECIAL_TOKENS))              # whole markers, one id each
    t.decoder = decoders.Fuse()                             # characters joined, no spaces
    t.post_processor = processors.TemplateProcessing(       # encode("Hi") is a user turn
        single=f"{USER} $A {END} {BOT}", pair=f"{USER} $A {END} {BOT} $B",
        special_tokens=[(s, tokenizer.stoi[s]) for s in SPECIAL_TOKENS])
    return t


def tokenizer_config(config: GPTConfig) -> dict:
    return {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": USER,
            "eos_token": END, "pad_token": END, "model_max_length": config.block_size,
            "clean_up_tokenization_spaces": False}


def _write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def export_hf(model, tokenizer, out_dir, *, force=False) -> str:
    """Write the Hugging Face directory (module docstring); returns its path."""
    try:
        from safetensors.numpy import save_file
    except ImportError:
        raise ExportError("exporting to Hugging Face needs the safetensors and tokenizers "
                          "packages: pip install safetensors tokenizers") from None
    cfg = model.config
    weights = {k: np.ascontiguousarray(v, dtype=cfg.dtype)      # float32 or float64, as trained
               for k, v in to_hf(model.params, cfg).items()}
    hf_tok = hf_tokenizer(tokenizer)

    def write(tmp):
        _write_json(os.path.join(tmp, "config.json"), hf_config(cfg, tokenizer))
        save_file(weights, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        _write_json(os.path.join(tmp, "generation_config.json"),
                    generation_config(tokenizer, cfg))
        hf_tok.save(os.path.join(tmp, "tokenizer.json"))
        _write_json(os.path.join(tmp, "tokenizer_config.json"), tokenizer_config(cfg))

    _publish_dir(out_dir, write, force)
    return os.fspath(out_dir)


def _publish_dir(out_dir, write, force):
    """write(tmp) fills a fresh directory beside out_dir, which is then renamed to out_dir."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out_dir):
        if not os.path.isdir(out_dir):
            raise ExportError(f"{out_dir} exists and is not a directory")
        if os.listdir(out_dir) and not force:
            raise ExportError(f"{out_dir} exists and is not empty: choose another directory, "
                              f"or pass --force to replace it")
    parent = os.path.dirname(out_dir)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix="." + os.path.basename(out_dir) + ".")
    except OSError as e:
        raise ExportError(f"cannot write {out_dir}: {e.strerror or e}") from None
    old = None
    try:
        write(tmp)
        if os.path.exists(out_dir):             # empty, or --force: move it out of the way
            old = tempfile.mkdtemp(dir=parent, prefix="." + os.path.basename(out_dir) + ".old.")
            os.rmdir(old)
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
    except BaseException as e:
        if old is not None and os.path.exists(old) and not os.path.exists(out_dir):
            os.replace(old, out_dir)           # put the old one back
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise ExportError(f"cannot write {out_dir}: {e.strerror or e}") from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------- nanoGPT
def nanogpt_checkpoint(model, tokenizer, train_cfg=None, it=0, history=None, opt_state=None):
    """nanoGPT's checkpoint dict, with NumPy arrays where it keeps tensors."""
    cfg = model.config
    state = {k: np.ascontiguousarray(v, dtype=np.float32)
             for k, v in to_nanogpt(model.params, cfg).items()}
    first = ("transformer.wte.weight", "transformer.wpe.weight")   # nanoGPT's module order
    state = {**{k: state[k] for k in first}, **{k: v for k, v in state.items() if k not in first}}
    model_args = dict(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
                      block_size=cfg.block_size, bias=cfg.bias, vocab_size=cfg.vocab_size,
                      dropout=cfg.dropout)
    evals = (history or {}).get("evals") or []
    best = min((e["val"] for e in evals), default=1e9)
    config = dict(model_args, dataset=NANOGPT_DATASET, init_from="resume",
                  out_dir="out-" + NANOGPT_DATASET)
    if train_cfg is not None:
        config.update(batch_size=train_cfg.batch_size, learning_rate=train_cfg.lr,
                      min_lr=train_cfg.min_lr, warmup_iters=train_cfg.warmup_iters,
                      max_iters=train_cfg.max_iters, lr_decay_iters=train_cfg.max_iters,
                      weight_decay=train_cfg.weight_decay, beta1=train_cfg.beta1,
                      beta2=train_cfg.beta2, grad_clip=train_cfg.grad_clip,
                      eval_interval=train_cfg.eval_interval, eval_iters=train_cfg.eval_iters,
                      decay_lr=True, gradient_accumulation_steps=1)
    ckpt = {"model": state, "model_args": model_args, "iter_num": int(it),
            "best_val_loss": float(best), "config": config}
    if opt_state is not None and train_cfg is not None:
        ckpt["optimizer"] = _torch_adamw_state(opt_state, cfg, train_cfg)
    return ckpt


def _torch_adamw_state(opt_state, cfg, train_cfg):
    """Our AdamW state (optim.AdamW.state_dict) as torch.optim.AdamW's, in the order and
    the two groups of nanoGPT's configure_optimizers: its parameters in named_parameters()
    order (the tied head once, as transformer.wte.weight), matrices with weight decay,
    the rest without."""
    m = to_nanogpt({n: opt_state[f"m.{n}"] for n in param_shapes(cfg)}, cfg, gradients=True)
    v = to_nanogpt({n: opt_state[f"v.{n}"] for n in param_shapes(cfg)}, cfg, gradients=True,
                   squared=True)
    names = [k for k in m if k != "lm_head.weight"]           # named_parameters() order
    if cfg.pos_encoding == "sinusoidal":    # nanoGPT trains wpe; ours was fixed: no moments
        names.insert(1, "transformer.wpe.weight")
        C = cfg.n_embd
        m["transformer.wpe.weight"] = np.zeros((cfg.block_size, C), np.float32)
        v["transformer.wpe.weight"] = np.zeros((cfg.block_size, C), np.float32)
    step = float(np.asarray(opt_state["step"]))
    state, groups = {}, {True: [], False: []}
    order = sorted(range(len(names)), key=lambda i: m[names[i]].ndim < 2)  # decay first
    for slot, i in enumerate(order):
        state[slot] = {"step": step, "exp_avg": np.asarray(m[names[i]], np.float32),
                       "exp_avg_sq": np.asarray(v[names[i]], np.float32)}
        groups[m[names[i]].ndim >= 2].append(slot)
    common = dict(lr=train_cfg.lr, betas=(train_cfg.beta1, train_cfg.beta2), eps=1e-8,
                  amsgrad=False, maximize=False, foreach=None, capturable=False,
                  differentiable=False, fused=None)
    return {"state": state,
            "param_groups": [dict(common, weight_decay=train_cfg.weight_decay,
                                  params=groups[True]),
                             dict(common, weight_decay=0.0, params=groups[False])]}


def _to_torch(obj, torch):
    """NumPy arrays (and step counts) in a nested dict -> torch tensors, as torch.save keeps."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, dict):
        return {k: (torch.tensor(v) if k == "step" else _to_torch(v, torch))
                for k, v in obj.items()}
    return obj


def export_nanogpt(model, tokenizer, path, *, train_cfg=None, it=0, history=None,
                   opt_state=None, force=False) -> str:
    """Write nanoGPT's checkpoint file, and meta.pkl beside it; returns the file's path."""
    try:
        import torch
    except ImportError:
        raise ExportError("exporting to nanoGPT needs PyTorch (its checkpoints are torch.save "
                          "files): pip install torch, or export --to hf, which does not") \
            from None
    import pickle
    path = os.path.abspath(os.fspath(path))
    meta_path = os.path.join(os.path.dirname(path), "meta.pkl")
    for target in (path, meta_path):
        if os.path.isdir(target):
            raise ExportError(f"{target} is a directory, not a file")
        if os.path.exists(target) and not force:
            raise ExportError(f"{target} exists: choose another path, or pass --force to "
                              f"replace it")
    ckpt = _to_torch(nanogpt_checkpoint(model, tokenizer, train_cfg, it, history, opt_state),
                     torch)
    meta = {"vocab_size": tokenizer.vocab_size, "itos": dict(enumerate(tokenizer.itos)),
            "stoi": dict(tokenizer.stoi)}
    from .checkpoint import write_atomically
    try:
        write_atomically(path, lambda f: torch.save(ckpt, f))
        write_atomically(meta_path, lambda f: pickle.dump(meta, f))
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from None
    return path
