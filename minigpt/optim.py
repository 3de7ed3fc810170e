"""Optimisation: AdamW, global gradient-norm clipping and the learning-rate schedule.

All three work on the model's named dicts: `params` and `grads` map the same names
("wte", "h.0.attn.c_attn.w", ...) to arrays of the same shapes. A training step is

    opt = adamw_from_config(model.params, train_cfg)     # once, from the TrainConfig
    norm = clip_grad_norm(grads, max_norm=1.0)
    opt.step(grads, lr=lr_at(it, lr=..., min_lr=..., warmup_iters=..., max_iters=...))
"""
from __future__ import annotations

import math

import numpy as np

from .messages import few_names


class AdamW:
    """Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay
    Regularization", 2019).

    For every parameter p with gradient g, at step t = 1, 2, ...:

        m     = beta1 * m + (1 - beta1) * g          # running mean of g
        v     = beta2 * v + (1 - beta2) * g**2       # running mean of g**2
        m_hat = m / (1 - beta1**t)                   # undo the bias towards the zero start
        v_hat = v / (1 - beta2**t)
        p    -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p)

    "Decoupled": the decay term wd * p is added to the update, not to the gradient.
    Added to g (classic L2), it would pass through m / sqrt(v) and be rescaled per
    coordinate, so weights with large gradients would be decayed less. lr multiplies
    the decay too, as in torch.optim.AdamW; the paper multiplies it by the schedule's
    factor alone (lr_t / peak lr), so the paper's lambda is our peak lr * wd.

    Weight decay applies only to params with ndim >= 2 (the weight matrices and the
    embeddings). Biases and LayerNorm gains/shifts are 1-D: they are few, they do not
    make the model's functions sharper, and pulling a LayerNorm gain towards 0 would
    shrink that layer's output instead of regularising it. Those get wd = 0.

    The params dict is updated IN PLACE: its arrays are the model's own arrays. The
    moments m and v are kept in each param's dtype.

    One plain loop over the arrays. One flat buffer for all parameters would take a
    dozen NumPy calls instead of a dozen per array, but each call would then stream
    every parameter through memory, while one array's m, v, g and p stay in the
    core's cache; measured, it was slower, and so was splitting the loop over two
    threads (README, "Performance").
    """

    def __init__(self, params: dict, lr: float = 1e-3, betas=(0.9, 0.95), eps: float = 1e-8,
                 weight_decay: float = 0.1):
        """params: name -> np.ndarray (floating). lr may be overridden per step."""
        for name, p in params.items():
            if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
                raise ValueError(f"param {name!r} must be a floating np.ndarray, got "
                                 f"{type(p).__name__} {getattr(p, 'dtype', '')}")
        beta1, beta2 = betas
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if lr < 0 or eps <= 0 or weight_decay < 0:
            raise ValueError(f"need lr >= 0, eps > 0, weight_decay >= 0; got lr={lr}, "
                             f"eps={eps}, weight_decay={weight_decay}")
        self.params = params
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.eps, self.weight_decay = eps, weight_decay
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}
        self.t = 0  # number of steps taken so far

    def decays(self, name: str) -> bool:
        """Whether weight decay applies to params[name] (matrices and embeddings only)."""
        return self.params[name].ndim >= 2

    def step(self, grads: dict, lr: float | None = None) -> None:
        """Apply one AdamW update to every param. grads: same keys and shapes as params."""
        _check_same_layout(grads, self.params, "grads")
        lr = self.lr if lr is None else lr
        self.t += 1
        # The bias corrections are the same for every param: compute them once.
        correction1 = 1.0 - self.beta1 ** self.t
        correction2 = 1.0 - self.beta2 ** self.t
        for name, p in self.params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            # Update the moments in place (no new arrays for m and v).
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * np.square(g)
            m_hat = m / correction1
            v_hat = v / correction2
            update = m_hat / (np.sqrt(v_hat) + self.eps)
            if self.decays(name):
                update += self.weight_decay * p
            p -= lr * update   # in place: the model's array itself moves

    def state_dict(self) -> dict:
        """A flat dict of arrays for an .npz: "m.<name>", "v.<name>" and "step" (int64, shape ())."""
        state = {"step": np.array(self.t, dtype=np.int64)}
        for name in self.params:
            state[f"m.{name}"] = self.m[name].copy()
            state[f"v.{name}"] = self.v[name].copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore m, v and the step count from state_dict()'s output.

        Everything is checked before anything changes, so a bad state leaves the
        optimiser as it was. Raises ValueError naming the first problem.
        """
        expected = {"step"} | {f"{k}.{name}" for name in self.params for k in ("m", "v")}
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(f"optimizer state does not match the params: missing keys "
                             f"{few_names(missing)}, unexpected keys {few_names(unexpected)}")
        step = np.asarray(state["step"])
        if step.shape != () or not np.issubdtype(step.dtype, np.integer) or step < 0:
            raise ValueError(f"optimizer state 'step' must be a non-negative integer scalar, "
                             f"got {step!r}")
        for key in sorted(expected - {"step"}):
            name = key[2:]   # strip "m." / "v."
            arr = np.asarray(state[key])
            if arr.shape != self.params[name].shape:
                raise ValueError(f"optimizer state {key!r} has shape {arr.shape}, the param "
                                 f"has shape {self.params[name].shape}")
            if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
                raise ValueError(f"optimizer state {key!r} must be finite floats "
                                 f"(dtype {arr.dtype})")
        for name in self.params:
            # Copy into our own buffers: casts to the param dtype, shares nothing.
            self.m[name][...] = state[f"m.{name}"]
            self.v[name][...] = state[f"v.{name}"]
        self.t = int(step)


def adamw_from_config(params: dict, cfg) -> AdamW:
    """The AdamW of a training run. cfg: a TrainConfig (its lr, beta1, beta2, weight_decay).

    A new run and a resumed one both build their optimiser here, so they cannot
    disagree about its settings.
    """
    return AdamW(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)


def clip_grad_norm(grads: dict, max_norm: float) -> float:
    """Scale all grads in place so their global L2 norm is at most max_norm.

        norm = sqrt(sum over every grad array g of sum(g**2))
        if norm > max_norm:  g *= max_norm / norm   (for every g)

    One factor for all grads keeps the gradient's direction; only its length changes.
    Gradients already within max_norm are left untouched.

    Returns the norm BEFORE clipping (worth logging: spikes show instability). If it
    is NaN or inf nothing is scaled (max_norm / inf would zero every finite grad and
    turn the inf ones into NaN); the caller should skip that step. In float32 the norm
    is also inf once one grad array's own norm passes ~1.8e19 (the square root of
    float32's largest number), where that array's sum of squares overflows.
    """
    if max_norm <= 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    # norm = sqrt(sum over every grad array of sum(g * g)). np.vdot(g, g) is that sum,
    # in BLAS, in the grads' own dtype with several partial sums: in float32 it agrees
    # with a float64 sum to about 1e-7 (relative), plenty to decide a clip factor, and
    # needs no float64 temporary (tests/test_optim.py checks it against the plain sum).
    total = sum(float(np.vdot(g, g)) for g in grads.values())
    norm = math.sqrt(total)
    if math.isfinite(norm) and norm > max_norm:
        scale = max_norm / norm
        for g in grads.values():
            g *= scale
    return norm


def lr_at(step: int, *, lr: float, min_lr: float, warmup_iters: int, max_iters: int) -> float:
    """Learning rate at `step`: linear warmup from 0, then cosine decay to min_lr.

        step < warmup_iters:              lr * step / warmup_iters
        warmup_iters <= step < max_iters: min_lr + 0.5 * (1 + cos(pi * r)) * (lr - min_lr),
                                          r = (step - warmup_iters) / (max_iters - warmup_iters)
        step >= max_iters:                min_lr

    For 0 < warmup_iters < max_iters: lr_at(0) = 0, lr_at(warmup_iters) = lr,
    lr_at(max_iters) = min_lr. Warmup keeps the first steps small while Adam's v is
    still a poor estimate of the gradient scale.
    """
    if step < 0 or warmup_iters < 0 or max_iters < warmup_iters:
        raise ValueError(f"need step >= 0 and 0 <= warmup_iters <= max_iters; got step={step}, "
                         f"warmup_iters={warmup_iters}, max_iters={max_iters}")
    if not 0 <= min_lr <= lr:
        raise ValueError(f"need 0 <= min_lr <= lr, got min_lr={min_lr}, lr={lr}")
    if step < warmup_iters:
        return lr * step / warmup_iters
    if step >= max_iters:
        return min_lr
    r = (step - warmup_iters) / (max_iters - warmup_iters)   # 0 -> 1 over the decay
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * r)) * (lr - min_lr)


def _check_same_layout(grads: dict, params: dict, what: str) -> None:
    """grads must have exactly the params' keys and shapes (ValueError naming the first miss)."""
    if grads.keys() != params.keys():
        missing = sorted(params.keys() - grads.keys())
        unexpected = sorted(grads.keys() - params.keys())
        raise ValueError(f"{what} do not match params: missing {few_names(missing)}, "
                         f"unexpected {few_names(unexpected)}")
    for name, p in params.items():
        if grads[name].shape != p.shape:
            raise ValueError(f"{what}[{name!r}] has shape {grads[name].shape}, "
                             f"param has shape {p.shape}")
