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
    training_meta(meta, path) -> (TrainConfig, it, history)             to evaluate
    load_state(path)  -> (model, tokenizer, opt, TrainConfig, it, history)  to go on
"""
from __future__ import annotations

import math
import os

import numpy as np

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint, validate_arrays
from .config import GPTConfig, TrainConfig
from .messages import shorten
from .model import GPT, param_count, param_shapes
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
    CheckpointError otherwise. The config is checked against the sizes the file's
    arrays declare before anything is built from it (see _expected_arrays).
    """
    found = {}
    arrays, meta = load_checkpoint(path, expect=lambda meta, sizes: _expected_arrays(
        meta, sizes, path, found))
    config, tokenizer = found["config"], found["tokenizer"]
    params = {k[len("param."):]: v for k, v in arrays.items() if k.startswith("param.")}
    validate_arrays(params, {name: (shape, config.dtype)
                             for name, shape in param_shapes(config).items()}, path=path)
    model = GPT(config)
    for name, value in params.items():
        model.params[name][...] = value
    return arrays, meta, model, tokenizer


def _expected_arrays(meta, sizes, path, found):
    """meta and the arrays' declared sizes -> the arrays the file must hold, name ->
    (shape, dtype). Puts the GPTConfig and CharTokenizer into `found`.

    A config is only believed as far as the file backs it: the parameters it asks
    for must be the ones stored, so a meta saying n_layer = 10**8 is refused by
    arithmetic, before a single name or array is made for it.
    """
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not a minigpt training checkpoint "
                              f"(format {shorten(repr(meta.get('format')))} version "
                              f"{shorten(repr(meta.get('version')))}, expected {FORMAT!r} version "
                              f"{FORMAT_VERSION})")
    try:
        config = GPTConfig.from_dict(meta["model_config"])
        tokenizer = CharTokenizer.from_dict(meta["tokenizer"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: bad model config or tokenizer: "
                              f"{shorten(str(e), 300)}") from e
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"checkpoint {path}: the tokenizer has {tokenizer.vocab_size} "
                              f"tokens but the model config says vocab_size={config.vocab_size}")
    stored = sum(size for name, size in sizes.items() if name.startswith("param."))
    count = param_count(config)
    needed = count * np.dtype(config.dtype).itemsize
    if needed > stored:
        raise CheckpointError(
            f"checkpoint {path}: its model config (n_layer {config.n_layer}, n_embd "
            f"{config.n_embd}, vocab_size {config.vocab_size}, block_size "
            f"{config.block_size}) needs {needed:,} bytes of parameters, but the file "
            f"stores {stored:,}: the parameters' shapes cannot match it")
    if config.block_size * config.n_embd > count:
        raise CheckpointError(        # the sinusoidal table, (block_size, n_embd), is built
            f"checkpoint {path}: block_size {config.block_size} is out of proportion to the "
            f"model (a {config.block_size} x {config.n_embd} position table would be larger "
            f"than all its parameters)")
    found.update(config=config, tokenizer=tokenizer)
    expected = {f"param.{name}": (shape, config.dtype)
                for name, shape in param_shapes(config).items()}
    for name in sizes:                        # AdamW's state: checked on load_state
        if name.startswith("optim."):
            expected[name] = _optim_entry(name, expected, path)
    return expected


def _optim_entry(name, expected, path):
    """The (shape, dtype) an optimizer entry may have: a moment is its parameter's
    shape (in float64 or the parameter's dtype); the step count one int."""
    if name == "optim.step":
        return (), np.int64
    for moment in ("optim.m.", "optim.v."):
        if name.startswith(moment) and f"param.{name[len(moment):]}" in expected:
            return expected[f"param.{name[len(moment):]}"][0], np.float64
    raise CheckpointError(f"checkpoint {path}: unexpected entry {shorten(repr(name))}")



def load_model(path):
    """A checkpoint -> (model, tokenizer, meta), ready for generation.

    path: the file, or the run directory holding ckpt.npz. Raises
    CheckpointNotFoundError if there is none, CheckpointError if it is unusable.
    """
    path = checkpoint_path(path)
    _, meta, model, tokenizer = _read(path)
    return model, tokenizer, meta


def training_meta(meta, path):
    """The training part of a checkpoint's meta -> (TrainConfig, it, history), checked:
    iter is a step count within max_iters, history one finite loss per step and a list
    of {"iter", "train", "val"} estimates. CheckpointError naming the problem otherwise."""
    try:
        for key in ("train_config", "iter", "history"):
            if key not in meta:
                raise ValueError(f"no {key!r} entry (it is not a training run's checkpoint)")
        train_cfg = TrainConfig.from_dict(meta["train_config"])
        it, history = meta["iter"], meta["history"]
        if isinstance(it, bool) or not isinstance(it, int) or not 0 <= it <= train_cfg.max_iters:
            raise ValueError(f"iter must be an int from 0 to max_iters "
                             f"({train_cfg.max_iters}), got {shorten(repr(it))}")
        if not isinstance(history, dict) or not isinstance(history.get("loss"), list) \
                or len(history["loss"]) != it or not isinstance(history.get("evals"), list):
            raise ValueError("history must hold one loss per step done, and a list of evals")
        if not all(_is_number(x) for x in history["loss"]):
            raise ValueError("history's losses must be finite numbers")
        if not all(isinstance(e, dict) and isinstance(e.get("iter"), int)
                   and _is_number(e.get("train")) and _is_number(e.get("val"))
                   for e in history["evals"]):
            raise ValueError('history\'s evals must each be {"iter": int, "train": number, '
                             '"val": number}')
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: bad training state: {shorten(str(e), 300)}") from e
    return train_cfg, it, history


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def load_state(path):
    """A checkpoint -> everything train() needs to continue: (model, tokenizer, opt,
    TrainConfig, it, history). Validated; CheckpointError otherwise."""
    arrays, meta, model, tokenizer = _read(path)
    train_cfg, it, history = training_meta(meta, path)
    opt = adamw_from_config(model.params, train_cfg)
    state = {k[len("optim."):]: v for k, v in arrays.items() if k.startswith("optim.")}
    try:
        opt.load_state_dict(state)
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path}: bad optimizer state: {e}") from e
    if opt.t != it:
        raise CheckpointError(f"checkpoint {path}: optimizer took {opt.t} steps but iter is {it}")
    return model, tokenizer, opt, train_cfg, it, history
