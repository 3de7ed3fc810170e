"""Training: the loop that turns the dialogue corpus into a chat model.

One step (the whole of deep learning, in five lines):
    x, y   = a batch of (B, T) windows and their next characters      data.py
    loss   = model.forward(x, y, train=True)                          model.py
    grads  = model.backward()                                         (hand-derived)
    norm   = clip_grad_norm(grads, grad_clip)                         optim.py
    AdamW step with lr = lr_at(it)   (linear warmup, then cosine)     optim.py
Every eval_interval steps we estimate the train and validation loss, save a
checkpoint and redraw the loss curve (loss.png beside the checkpoint). The model
runs as DataParallel(model): the same forward and backward on two half-batches, one
per core, their gradients added (minigpt/data_parallel.py). A run that
reaches max_iters ends with the chat checks (word validity and greetings,
minigpt.evaluate).

The functions below, in the order a run calls them:
    train()      a new run, or the saved one to resume (_run_to_resume); then _run():
    _announce()  what will be trained, and where it is saved
    _loop()      _step() after _step(), with _evaluate() and _save() every eval_interval
    _finish()    the run is complete: last estimate and save, then the chat checks
    _pause()     or it stopped early (Ctrl-C, stop_at): save, and say how to go on

Reproducibility. Everything random in step `it` -- which windows are drawn and
which activations dropout zeroes -- comes from np.random.default_rng([seed, it]), a
generator derived from the seed and the step number alone. So a run is the same
bit for bit every time, and resuming needs no generator state at all: the
checkpoint stores the parameters, AdamW's moments and step count, and `it` (the
data position), and step `it` after a resume draws exactly what it would have
drawn in an unbroken run. (The alternative, saving Generator.bit_generator.state,
works too, but is one more thing to get right and to validate.)

Safety.
  - The output folder is checked before any work (minigpt.run_dir: it can be made,
    is writable, ckpt.npz in it is not a folder) and locked for the whole run, so a
    second run into the same folder is refused instead of overwriting this one.
  - Ctrl-C (or SIGTERM, what `kill` sends) finishes the current step, saves a
    checkpoint, and stops; a second one stops at once without saving.
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
from typing import Callable

import numpy as np

from .checkpoint import CheckpointNotFoundError
from .config import GPTConfig, TrainConfig
from .data import CharDataset, build_dataset
from .evaluate import estimate_loss, evaluate_chat
from .data_parallel import DataParallel
from .language import tr
from .model import GPT, param_count
from .optim import AdamW, adamw_from_config, clip_grad_norm, lr_at
from .plots import save_loss_plot
from .presets import PRESETS, split_overrides
from .run_dir import RunLock, check_out_dir, remove_stale_temps
from .run_state import CHECKPOINT_NAME, load_state, save_state
from .tokenizer import CharTokenizer

PLOT_NAME = "loss.png"


# ----------------------------------------------------------------------------- results
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


def saved_run(path) -> TrainResult:
    """The TrainResult of a run that finished earlier and was saved at `path` (a run
    directory or its ckpt.npz): its steps, last loss estimates and history, as
    train() returned them. Word validity and greetings are not measured again (nan).
    For a class whose teacher trained once and shared the checkpoint."""
    from .run_state import checkpoint_path, load_model, training_meta
    ckpt = checkpoint_path(path)
    _, _, meta = load_model(ckpt)
    cfg, it, history = training_meta(meta, ckpt)
    last = history["evals"][-1] if history["evals"] else {}
    status = "done" if it == cfg.max_iters else "paused"
    return TrainResult(it, status, ckpt, last.get("train", float("nan")),
                       last.get("val", float("nan")), 0.0, history=history)


class _StopFlag:
    """Ctrl-C (SIGINT) or a termination signal (SIGTERM, what `kill` sends) sets a flag
    the loop checks after each step; a second one raises KeyboardInterrupt as usual.
    Only installed in the main thread."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM")
                    if hasattr(signal, name))

    def __init__(self, say):
        self.requested = False
        self._say = say
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        what = "Ctrl-C" if signum == signal.SIGINT else "terminated"
        self._say(f"\n{what}: finishing this step, then saving (Ctrl-C again to quit "
                  f"without saving)")

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def step_rng(seed, it):
    """The generator for everything random in step `it`: batches and dropout masks."""
    return np.random.default_rng([seed, it])


# ----------------------------------------------------------------------------- set-up
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
    if stop_at is not None and (isinstance(stop_at, bool) or not isinstance(stop_at, int)
                                or stop_at < 1):
        raise ValueError(f"stop_at must be an int >= 1 (steps in total), got {stop_at!r}")
    model_kw, train_kw = split_overrides(overrides)
    base = PRESETS[preset]
    train_cfg = dataclasses.replace(base.train, **train_kw)
    ckpt = os.path.join(train_cfg.out_dir, CHECKPOINT_NAME)
    if resume and not os.path.isfile(ckpt):
        raise CheckpointNotFoundError(f"nothing to resume: no checkpoint at {ckpt}; start a "
                                      f"new run without --resume")
    if not resume:
        config = GPTConfig.from_dict({**base.model, **model_kw, "vocab_size": 2000})
        check_run_fits(config, train_cfg.batch_size)   # before the corpus is read (the
        # vocabulary is the corpus's own, ~1,340 characters: 2,000 is a bound)

    # Everything the run will write goes into out_dir: check it before any step is
    # spent, then hold it, so that no other run writes there while this one does.
    check_out_dir(train_cfg.out_dir, (CHECKPOINT_NAME, PLOT_NAME))
    with RunLock(train_cfg.out_dir) as lock:
        if lock.took_over:
            print(f"note: process {lock.took_over.get('pid', '?')} stopped without "
                  f"releasing {lock.path}; taking it over", file=out)
        remove_stale_temps(train_cfg.out_dir, (CHECKPOINT_NAME, PLOT_NAME))
        if resume:
            model, tokenizer, opt, train_cfg, start, history = _run_to_resume(ckpt, model_kw,
                                                                          train_kw)
            check_run_fits(model.config, train_cfg.batch_size)
            data = build_dataset(train_cfg, tokenizer)
        else:
            data = build_dataset(train_cfg)
            tokenizer = data.tokenizer
            config = GPTConfig.from_dict({**base.model, **model_kw,
                                          "vocab_size": tokenizer.vocab_size})
            model = GPT(config, seed=train_cfg.seed)
            opt = adamw_from_config(model.params, train_cfg)
            start, history = 0, {"loss": [], "evals": []}
        run = _Run(model, DataParallel(model), tokenizer, opt, data, train_cfg, history, ckpt,
                   _printer(out))
        return _run(run, start, stop_at=stop_at, progress=progress, resumed=resume)


MAX_RUN_BYTES = 8 * 2**30     # what one run may ask for: a laptop's memory, not a server's


def check_run_fits(config, batch_size):
    """Refuse, with the sizes, a model and batch that would need more than MAX_RUN_BYTES:
    the parameters, gradients and AdamW's two moments, plus the largest arrays one
    training step keeps for its backward (the attention weights, B x nh x T x T per
    layer, twice with dropout; the residual stream and MLP, ~20 x B x T x C per layer;
    the logits and their softmax, 2 x B x T x V). A rough bound, meant to catch a
    typo such as --block-size 100000 before it becomes a MemoryError."""
    item = np.dtype(config.dtype).itemsize
    B, T, C, L = batch_size, config.block_size, config.n_embd, config.n_layer
    state = 4 * param_count(config) * item
    step = (L * (2 * B * config.n_head * T * T + 20 * B * T * C)
            + 2 * B * T * config.vocab_size) * item
    if state + step > MAX_RUN_BYTES:
        raise ValueError(f"this run (n_layer {L}, n_embd {C}, block_size {T}, batch_size "
                         f"{B}) would need about {(state + step) / 2**30:,.1f} GiB: "
                         f"{state / 2**30:,.1f} for the parameters, gradients and AdamW "
                         f"state, {step / 2**30:,.1f} for one step's activations; minigpt's "
                         f"limit is {MAX_RUN_BYTES / 2**30:.0f} GiB")


def _run_to_resume(ckpt, model_kw, train_kw):
    """The run saved in ckpt, to resume: (model, tokenizer, opt, TrainConfig, it, history).

    Its TrainConfig gets train_kw; model_kw may only repeat the model's shape.
    """
    model, tokenizer, opt, saved_cfg, start, history = load_state(ckpt)  # (train() has
    # already said "nothing to resume" if there is no file)
    for key, value in model_kw.items():
        if getattr(model.config, key) != value:
            raise ValueError(f"cannot change {key} when resuming: the checkpoint has "
                             f"{key}={getattr(model.config, key)!r}, you asked for {value!r}")
    return model, tokenizer, opt, dataclasses.replace(saved_cfg, **train_kw), start, history


@dataclass
class _Run:
    """What every part of one train() call works on (the step number is passed along)."""
    model: GPT
    engine: DataParallel        # the model on two half-batches, one per core
    tokenizer: CharTokenizer
    opt: AdamW
    data: CharDataset
    cfg: TrainConfig
    history: dict               # {"loss": [one per step], "evals": [{"iter", "train", "val"}]}
    ckpt: str                   # the checkpoint file
    say: Callable[[str], None]  # prints a message (above the progress bar)

    @property
    def plot(self) -> str:
        return os.path.join(self.cfg.out_dir, PLOT_NAME)


def _printer(out):
    """say(msg): msg to the stream out, at once, without breaking the progress bar."""
    from tqdm import tqdm

    def say(msg):
        tqdm.write(msg, file=out)
        out.flush()
    return say


# ----------------------------------------------------------------------------- the run
def _run(run, start, *, stop_at, progress, resumed) -> TrainResult:
    """Steps start, start + 1, ... up to max_iters (or stop_at), then the end of the run."""
    cfg = run.cfg
    end = cfg.max_iters if stop_at is None else min(stop_at, cfg.max_iters)
    _announce(run, start, resumed)
    t0 = time.time()
    it, interrupted = _loop(run, start, end, progress)
    if interrupted or it < cfg.max_iters:
        return _pause(run, start, it, "interrupted" if interrupted else "paused", t0)
    return _finish(run, start, it, t0)


def _announce(run, start, resumed):
    """The set-up messages: the data, the model, where the run starts and is saved."""
    model, cfg, ckpt, say = run.model, run.cfg, run.ckpt, run.say
    mcfg = model.config
    say(run.data.describe())
    say(tr(f"model:  {model.num_params():,} parameters ({mcfg.n_layer} layers, n_embd "
           f"{mcfg.n_embd}, {mcfg.n_head} heads, block {mcfg.block_size}, {mcfg.dtype})",
           f"模型：  {model.num_params():,} 个参数（{mcfg.n_layer} 层，n_embd "
           f"{mcfg.n_embd}，{mcfg.n_head} 个头，block {mcfg.block_size}，{mcfg.dtype}）"))
    say(tr(f"{'resuming at' if resumed else 'training for'} iteration {start} of "
           f"{cfg.max_iters}; checkpoint: {ckpt}",
           f"{'从' if resumed else '训练：从'}第 {start} 步{'继续' if resumed else '开始'}，"
           f"共 {cfg.max_iters} 步；检查点：{ckpt}"))
    if not resumed and os.path.exists(ckpt):
        say(tr(f"note: {ckpt} exists and will be replaced by this new run (to continue it "
               f"instead, use --resume)",
               f"注意：{ckpt} 已经存在，这次新的训练会替换它（想接着它训练，请用 --resume）"))
    if start >= cfg.max_iters:
        say(f"nothing to do: this run already did {start} of its {cfg.max_iters} steps "
            f"(pass a larger --max-iters to go on)")


def _loop(run, start, end, progress):
    """Steps start, ..., end - 1, with a loss estimate and a save every eval_interval
    steps; Ctrl-C stops it after the current step.
    -> (steps done in total, whether Ctrl-C stopped it)."""
    from tqdm import tqdm

    cfg = run.cfg
    it = start
    bar = tqdm(total=cfg.max_iters, initial=start, disable=not progress, file=sys.stderr,
               dynamic_ncols=True, unit="it", desc="train")
    try:
        with _StopFlag(run.say) as stop:
            while it < end:
                if it % cfg.eval_interval == 0 and not _evaluated(run, it):
                    _evaluate(run, it)
                    if it > start:
                        _save(run, it)
                loss, lr = _step(run, it)
                it += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", refresh=False)
                if stop.requested:
                    return it, True
    finally:
        bar.close()
    return it, False


def _step(run, it):
    """Step `it`: a batch, forward, backward, clip, AdamW update. -> (loss, lr).

    A loss or gradient norm that is not finite raises TrainingDiverged BEFORE the update.
    """
    model, opt, data, cfg, ckpt = run.model, run.opt, run.data, run.cfg, run.ckpt
    T, B = model.config.block_size, cfg.batch_size
    rng = step_rng(cfg.seed, it)
    x, y = data.get_batch("train", B, T, rng,                   # (B, T) each
                          cfg.conversation_start_fraction)
    _, loss = run.engine.forward(x, y, train=True, rng=rng,    # model.forward, per half
                                 label_smoothing=cfg.label_smoothing)
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"the loss became {loss} at iteration {it}: training stopped. "
            f"Nothing was saved, so {ckpt} still holds the last good checkpoint "
            f"(if one was written). Try a lower --lr or --grad-clip.")
    grads = run.engine.backward()                               # the halves' grads added
    norm = clip_grad_norm(grads, cfg.grad_clip)
    if not math.isfinite(norm):
        raise TrainingDiverged(
            f"the gradient norm became {norm} at iteration {it}: training "
            f"stopped before the update. Nothing was saved, so {ckpt} still "
            f"holds the last good checkpoint. Try a lower --lr.")
    lr = lr_at(it, lr=cfg.lr, min_lr=cfg.min_lr, warmup_iters=cfg.warmup_iters,
               max_iters=cfg.max_iters)
    opt.step(grads, lr=lr)
    run.history["loss"].append(loss)
    return loss, lr


def _evaluated(run, it) -> bool:
    """Whether the loss after `it` steps was already estimated (a resume at an eval step)."""
    return any(e["iter"] == it for e in run.history["evals"])


def _evaluate(run, it):
    """Estimate the train and val loss after `it` steps; record and print it."""
    model, data, cfg = run.model, run.data, run.cfg
    T, B = model.config.block_size, cfg.batch_size
    losses = estimate_loss(run.engine, data, B, T, cfg.eval_iters, cfg.seed)
    run.history["evals"].append({"iter": it, **losses})
    run.say(tr(f"iter {it:5d}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}",
               f"第 {it:5d} 步：训练损失 {losses['train']:.4f}，验证损失 {losses['val']:.4f}"))


def _save(run, it):
    """The checkpoint after `it` steps, and the loss plot beside it."""
    mcfg, cfg = run.model.config, run.cfg
    save_state(run.ckpt, run.model, run.tokenizer, run.opt, cfg, it, run.history)
    title = (f"{mcfg.n_layer} layers, n_embd {mcfg.n_embd}, block {mcfg.block_size}, "
             f"dropout {mcfg.dropout}, batch {cfg.batch_size}, lr {cfg.lr}"
             + (f", label smoothing {cfg.label_smoothing}" if cfg.label_smoothing else ""))
    save_loss_plot(run.history, run.plot, title, cfg.label_smoothing)


# ----------------------------------------------------------------------------- the end
def _pause(run, start, it, status, t0) -> TrainResult:
    """Stopped before max_iters (status "interrupted" or "paused"): save, say how to go on."""
    cfg, history = run.cfg, run.history
    if it > start:
        _save(run, it)
    run.say(f"{status} at iteration {it} of {cfg.max_iters}; saved {run.ckpt}")
    run.say(f"continue with: python -m minigpt train --resume --out-dir {cfg.out_dir}")
    last = history["evals"][-1] if history["evals"] else {}
    return TrainResult(it, status, run.ckpt, last.get("train", float("nan")),
                       last.get("val", float("nan")), time.time() - t0, history=history)


def _finish(run, start, it, t0) -> TrainResult:
    """The run is complete: a final estimate, checkpoint and plot, then the chat checks."""
    cfg, ckpt, history, say = run.cfg, run.ckpt, run.history, run.say
    if not _evaluated(run, it):
        _evaluate(run, it)
    if it > start:
        _save(run, it)
    seconds = time.time() - t0
    last = history["evals"][-1]
    minutes, secs = int(seconds // 60), int(seconds % 60)
    say(tr(f"done: {it} iterations in {minutes} min {secs:02d} s this session; final train "
           f"loss {last['train']:.4f}, val loss {last['val']:.4f}",
           f"完成：本次用 {minutes} 分 {secs:02d} 秒训练到第 {it} 步；最终训练损失 "
           f"{last['train']:.4f}，验证损失 {last['val']:.4f}"))
    say(tr(f"saved {ckpt} and {run.plot}", f"已保存 {ckpt} 和 {run.plot}"))
    replies, greetings = evaluate_chat(run.model, run.tokenizer, run.data.conversations,
                                       n=cfg.eval_replies or None,
                                       max_new_tokens=cfg.eval_reply_tokens, say=say)
    say(tr("talk to it with: ", "和它对话：") + "python -m minigpt chat" +
        ("" if os.path.abspath(cfg.out_dir) == os.path.abspath("out/chat")
         else f" --checkpoint {ckpt}"))
    return TrainResult(it, "done", ckpt, last["train"], last["val"], seconds,
                       validity=replies["validity"], greetings=greetings["fraction"],
                       history=history)
