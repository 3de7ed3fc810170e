"""Training: the loop that turns the dialogue corpus into a chat model.

One step (the whole of deep learning, in five lines):
    x, y   = a batch of (B, T) windows and their next characters      data.py
    loss   = model.forward(x, y, train=True)                          model.py
    grads  = model.backward()                                         (hand-derived)
    norm   = clip_grad_norm(grads, grad_clip)                         optim.py
    AdamW step with lr = lr_at(it)   (linear warmup, then cosine)     optim.py
Every eval_interval steps we estimate the train and validation loss, save a
checkpoint and redraw the loss curve (loss.png beside the checkpoint).

Reproducibility. Everything random in step `it` -- which windows are drawn and
which activations dropout zeroes -- comes from np.random.default_rng([seed, it]), a
generator derived from the seed and the step number alone. So a run is the same
bit for bit every time, and resuming needs no generator state at all: the
checkpoint stores the parameters, AdamW's moments and step count, and `it` (the
data position), and step `it` after a resume draws exactly what it would have
drawn in an unbroken run. (The alternative, saving Generator.bit_generator.state,
works too, but is one more thing to get right and to validate.)

Safety.
  - Ctrl-C finishes the current step, saves a checkpoint, and stops; a second
    Ctrl-C stops at once without saving.
  - A NaN or Inf loss or gradient norm stops training with a message BEFORE the
    update, and nothing is saved: the last checkpoint on disk (the last good one)
    stays as it was.
  - Checkpoints are written atomically (minigpt.checkpoint) and validated on load;
    what they hold is minigpt.run_state's.

Presets (minigpt.presets) give a reason for every value; any field of GPTConfig or
TrainConfig can be overridden: train("chat", max_iters=200, n_layer=2), or on the
command line `python -m minigpt train --max-iters 200 --n-layer 2`.
"""
from __future__ import annotations

import dataclasses
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from .checkpoint import CheckpointNotFoundError
from .config import GPTConfig
from .data import build_dataset
from .evaluate import estimate_loss, evaluate_chat
from .model import GPT
from .optim import adamw_from_config, clip_grad_norm, lr_at
from .plots import save_loss_plot
from .presets import PRESETS, split_overrides
from .run_state import CHECKPOINT_NAME, load_state, save_state

PLOT_NAME = "loss.png"


# ----------------------------------------------------------------------------- training
class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm became NaN or Inf."""


@dataclass
class TrainResult:
    iters: int                 # steps done in total (including before a resume)
    status: str                # "done", "interrupted" or "paused" (stop_at reached)
    checkpoint: str            # where the state was saved
    train_loss: float          # last estimates (nan if none was made)
    val_loss: float
    seconds: float             # wall time of this call
    validity: float = float("nan")   # word validity, when the run finished
    greetings: float = float("nan")  # share of greetings answered as the corpus does
    history: dict = None


class _StopFlag:
    """Ctrl-C (SIGINT) sets a flag the loop checks after each step; a second one
    raises KeyboardInterrupt as usual. Only installed in the main thread."""

    def __init__(self, say):
        self.requested = False
        self._say = say
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._say("\nCtrl-C: finishing this step, then saving (Ctrl-C again to quit "
                  "without saving)")

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def step_rng(seed, it):
    """The generator for everything random in step `it`: batches and dropout masks."""
    return np.random.default_rng([seed, it])


def train(preset="chat", *, resume=False, stop_at=None, progress=True, out=None,
          **overrides) -> TrainResult:
    """Train a chat model; returns a TrainResult. The CLI's `train` command.

    preset: a PRESETS name. overrides: any GPTConfig / TrainConfig field.
    resume: continue from <out_dir>/ckpt.npz. The model's shape is the checkpoint's
        (asking for another shape is an error); its training config is the
        checkpoint's with `overrides` applied (e.g. a larger max_iters to go on).
    stop_at: pause after this many steps in total (saving a checkpoint), as if
        Ctrl-C had been pressed there; a later resume continues the same run.
    out: where messages go (default sys.stdout).
    Raises TrainingDiverged on NaN/Inf, CheckpointError for a bad checkpoint,
    ValueError for bad settings.
    """
    out = out or sys.stdout
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    model_kw, train_kw = split_overrides(overrides)
    base = PRESETS[preset]
    train_cfg = dataclasses.replace(base.train, **train_kw)
    ckpt = os.path.join(train_cfg.out_dir, CHECKPOINT_NAME)

    if resume:
        try:
            model, tokenizer, opt, saved_cfg, start, history = load_state(ckpt)
        except CheckpointNotFoundError:
            raise CheckpointNotFoundError(
                f"nothing to resume: no checkpoint at {ckpt}; start a new run without "
                f"--resume") from None
        for key, value in model_kw.items():
            if getattr(model.config, key) != value:
                raise ValueError(f"cannot change {key} when resuming: the checkpoint has "
                                 f"{key}={getattr(model.config, key)!r}, you asked for {value!r}")
        train_cfg = dataclasses.replace(saved_cfg, **train_kw)
        data = build_dataset(train_cfg, tokenizer)
    else:
        data = build_dataset(train_cfg)
        tokenizer = data.tokenizer
        config = GPTConfig.from_dict({**base.model, **model_kw,
                                      "vocab_size": tokenizer.vocab_size})
        model = GPT(config, seed=train_cfg.seed)
        opt = adamw_from_config(model.params, train_cfg)
        start, history = 0, {"loss": [], "evals": []}
    return _run(model, tokenizer, opt, data, train_cfg, start, history, ckpt,
                stop_at=stop_at, progress=progress, out=out, resumed=resume)


def _run(model, tokenizer, opt, data, cfg, start, history, ckpt, *, stop_at, progress,
         out, resumed):
    from tqdm import tqdm

    mcfg = model.config
    T, B = mcfg.block_size, cfg.batch_size
    end = cfg.max_iters if stop_at is None else min(stop_at, cfg.max_iters)
    plot = os.path.join(cfg.out_dir, PLOT_NAME)
    title = (f"{mcfg.n_layer} layers, n_embd {mcfg.n_embd}, block {T}, dropout "
             f"{mcfg.dropout}, batch {B}, lr {cfg.lr}")

    def say(msg):
        tqdm.write(msg, file=out)
        out.flush()

    say(data.describe())
    say(f"model:  {model.num_params():,} parameters ({mcfg.n_layer} layers, n_embd "
        f"{mcfg.n_embd}, {mcfg.n_head} heads, block {T}, {mcfg.dtype})")
    say(f"{'resuming at' if resumed else 'training for'} iteration {start} of "
        f"{cfg.max_iters}; checkpoint: {ckpt}")
    if not resumed and os.path.exists(ckpt):
        say(f"note: {ckpt} exists and will be replaced by this new run (to continue it "
            f"instead, use --resume)")
    if start >= cfg.max_iters:
        say(f"nothing to do: this run already did {start} of its {cfg.max_iters} steps "
            f"(pass a larger --max-iters to go on)")

    def evaluate(it):
        losses = estimate_loss(model, data, B, T, cfg.eval_iters, cfg.seed)
        history["evals"].append({"iter": it, **losses})
        say(f"iter {it:5d}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        return losses

    def save(it):
        save_state(ckpt, model, tokenizer, opt, cfg, it, history)
        save_loss_plot(history, plot, title)

    t0 = time.time()
    it = start
    status = "done"
    bar = tqdm(total=cfg.max_iters, initial=start, disable=not progress, file=sys.stderr,
               dynamic_ncols=True, unit="it", desc="train")
    try:
        with _StopFlag(say) as stop:
            while it < end:
                evaluated = any(e["iter"] == it for e in history["evals"])
                if it % cfg.eval_interval == 0 and not evaluated:
                    evaluate(it)
                    if it > start:
                        save(it)
                rng = step_rng(cfg.seed, it)
                x, y = data.get_batch("train", B, T, rng,                   # (B, T) each
                                      cfg.conversation_start_fraction)
                _, loss = model.forward(x, y, train=True, rng=rng)
                if not math.isfinite(loss):
                    raise TrainingDiverged(
                        f"the loss became {loss} at iteration {it}: training stopped. "
                        f"Nothing was saved, so {ckpt} still holds the last good checkpoint "
                        f"(if one was written). Try a lower --lr or --grad-clip.")
                grads = model.backward()
                norm = clip_grad_norm(grads, cfg.grad_clip)
                if not math.isfinite(norm):
                    raise TrainingDiverged(
                        f"the gradient norm became {norm} at iteration {it}: training "
                        f"stopped before the update. Nothing was saved, so {ckpt} still "
                        f"holds the last good checkpoint. Try a lower --lr.")
                lr = lr_at(it, lr=cfg.lr, min_lr=cfg.min_lr, warmup_iters=cfg.warmup_iters,
                           max_iters=cfg.max_iters)
                opt.step(grads, lr=lr)
                history["loss"].append(loss)
                it += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", refresh=False)
                if stop.requested:
                    status = "interrupted"
                    break
    finally:
        bar.close()

    if status == "interrupted" or it < cfg.max_iters:
        status = status if status == "interrupted" else "paused"
        if it > start:
            save(it)
        say(f"{status} at iteration {it} of {cfg.max_iters}; saved {ckpt}")
        say(f"continue with: python -m minigpt train --resume --out-dir {cfg.out_dir}")
        last = history["evals"][-1] if history["evals"] else {}
        return TrainResult(it, status, ckpt, last.get("train", float("nan")),
                           last.get("val", float("nan")), time.time() - t0, history=history)

    # The run is complete: a final estimate, checkpoint and plot, then the replies.
    if not any(e["iter"] == it for e in history["evals"]):
        evaluate(it)
    if it > start:
        save(it)
    seconds = time.time() - t0
    last = history["evals"][-1]
    say(f"done: {it} iterations in {int(seconds // 60)} min {int(seconds % 60):02d} s this "
        f"session; final train loss "
        f"{last['train']:.4f}, val loss {last['val']:.4f}")
    say(f"saved {ckpt} and {plot}")
    result, greetings = evaluate_chat(model, tokenizer, data.conversations,
                                      n=cfg.eval_replies or None,
                                      max_new_tokens=cfg.eval_reply_tokens, say=say)
    say("talk to it with: python -m minigpt chat" +
        ("" if os.path.abspath(cfg.out_dir) == os.path.abspath("out/chat")
         else f" --checkpoint {ckpt}"))
    return TrainResult(it, "done", ckpt, last["train"], last["val"], seconds,
                       validity=result["validity"], greetings=greetings["fraction"],
                       history=history)
