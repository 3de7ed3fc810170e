"""The checkpoint of a training run: what train() saves, and what --resume, chat,
sample and eval load.

One file, <out_dir>/ckpt.npz, written atomically by minigpt.checkpoint:
    arrays: "param.<name>"                     the model's parameters (model.params)
            "optim.m.<name>", "optim.v.<name>",
            "optim.step"                       AdamW's state (AdamW.state_dict)
    meta:   format "minigpt-train", version 1, model_config, train_config, tokenizer,
            iter (steps done, which is also the data position) and the loss history.
Everything is validated on load (CheckpointError names what is wrong): the format,
both configs, the tokenizer against vocab_size, every parameter's shape and dtype,
and for a resume AdamW's state against the step count.

    load_model(path)  -> (model, tokenizer, meta)                       to generate
    load_state(path)  -> (model, tokenizer, opt, TrainConfig, it, history)  to go on
"""
from __future__ import annotations

import os

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint, validate_arrays
from .config import GPTConfig, TrainConfig
from .model import GPT, param_shapes
from .optim import adamw_from_config
from .tokenizer import CharTokenizer

CHECKPOINT_NAME = "ckpt.npz"
FORMAT = "minigpt-train"     # meta["format"]: what wrote this file
FORMAT_VERSION = 1


def checkpoint_path(path) -> str:
    """A run directory or a file -> the checkpoint file (dir/ckpt.npz)."""
    path = os.fspath(path)
    return os.path.join(path, CHECKPOINT_NAME) if os.path.isdir(path) or not path.endswith(
        ".npz") else path


def save_state(path, model, tokenizer, opt, train_cfg, it, history):
    """Write everything a run needs to continue, atomically, in the format above.

    it: steps done (also the data position); history: {"loss": [...], "evals": [...]}.
    """
    arrays = {f"param.{name}": p for name, p in model.params.items()}
    arrays.update({f"optim.{key}": value for key, value in opt.state_dict().items()})
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "iter": int(it),
            "model_config": model.config.to_dict(), "train_config": train_cfg.to_dict(),
            "tokenizer": tokenizer.to_dict(), "history": history}
    save_checkpoint(path, arrays, meta)


def _read(path):
    """Load and validate the parts every user of a checkpoint needs.

    -> (arrays, meta, GPT holding the saved parameters, CharTokenizer).
    CheckpointError otherwise.
    """
    arrays, meta = load_checkpoint(path)
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not a minigpt training checkpoint "
                              f"(format {meta.get('format')!r} version {meta.get('version')!r}, "
                              f"expected {FORMAT!r} version {FORMAT_VERSION})")
    try:
        config = GPTConfig.from_dict(meta["model_config"])
        tokenizer = CharTokenizer.from_dict(meta["tokenizer"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: bad model config or tokenizer: {e}") from e
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"checkpoint {path}: the tokenizer has {tokenizer.vocab_size} "
                              f"tokens but the model config says vocab_size={config.vocab_size}")
    params = {k[len("param."):]: v for k, v in arrays.items() if k.startswith("param.")}
    validate_arrays(params, {name: (shape, config.dtype)
                             for name, shape in param_shapes(config).items()}, path=path)
    model = GPT(config)
    for name, value in params.items():
        model.params[name][...] = value
    return arrays, meta, model, tokenizer


def load_model(path):
    """A checkpoint -> (model, tokenizer, meta), ready for generation.

    path: the file, or the run directory holding ckpt.npz. Raises
    CheckpointNotFoundError if there is none, CheckpointError if it is unusable.
    """
    path = checkpoint_path(path)
    _, meta, model, tokenizer = _read(path)
    return model, tokenizer, meta


def load_state(path):
    """A checkpoint -> everything train() needs to continue: (model, tokenizer, opt,
    TrainConfig, it, history). Validated; CheckpointError otherwise."""
    arrays, meta, model, tokenizer = _read(path)
    try:
        train_cfg = TrainConfig.from_dict(meta["train_config"])
        it = meta["iter"]
        history = meta["history"]
        if isinstance(it, bool) or not isinstance(it, int) or not 0 <= it:
            raise ValueError(f"iter must be an int >= 0, got {it!r}")
        if not isinstance(history, dict) or not isinstance(history.get("loss"), list) \
                or len(history["loss"]) != it or not isinstance(history.get("evals"), list):
            raise ValueError("history must hold one loss per step done, and a list of evals")
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: bad training state: {e}") from e
    opt = adamw_from_config(model.params, train_cfg)
    state = {k[len("optim."):]: v for k, v in arrays.items() if k.startswith("optim.")}
    try:
        opt.load_state_dict(state)
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path}: bad optimizer state: {e}") from e
    if opt.t != it:
        raise CheckpointError(f"checkpoint {path}: optimizer took {opt.t} steps but iter is {it}")
    return model, tokenizer, opt, train_cfg, it, history
