"""Data parallelism on the cores of one machine: the plain model, on two half-batches.

NumPy runs its elementwise work (GELU, layer norm, softmax, the residual adds) on
one core; only the matrix products, in BLAS, use more. On a 2-core laptop that
leaves a core idle for a good part of every training step. So training wraps the
model in DataParallel, as PyTorch's DDP wraps a model for several GPUs: it splits a
batch of B >= 2 sequences into two halves, runs the model's own forward and
backward on each half in its own thread (each with BLAS limited to its share of the
cores), and adds the two halves' gradients (the "all-reduce"). NumPy releases
Python's lock (the GIL) inside its loops and BLAS calls, so the two threads really
do run at the same time. The model itself knows nothing of this (minigpt/model.py).

The mean over the batch. Each half's loss is the mean over its own B_h sequences;
weighted by B_h / B the two add up to the mean over the whole batch, and running
each half's backward from dloss = B_h / B makes its gradients exactly its share:
    loss  = (B_0 / B) loss_0 + (B_1 / B) loss_1
    grads = grads_0 + grads_1                    each from backward(dloss=B_h / B)

Replicas. Each half runs on a replica: a shallow copy of the model that shares its
parameter arrays (nothing is copied, and an optimizer step moves both) but keeps
its own cache, so the two forward passes do not overwrite each other's.

Determinism. A batch is always split into the same two halves, whatever the
machine, and their gradients are always added in the same order. Dropout: each half
gets its own generator, seeded from the step's one, so the masks cannot depend on
which thread happens to draw first. BLAS's own sums depend on how many threads share
a product, so each half gets the same BLAS share, cores // 2 threads, whether the
halves run in threads or one after the other (threads=False). Either way the
numbers are the same to the last bit (tests/test_data_parallel.py), and a seed
reproduces a training run exactly on one machine. (The plain model on the whole
batch gives the same numbers up to rounding: its sums add in another order.)
"""
import copy
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .blas import blas_limit
from .model import check_ids


def split_batch(B):
    """Row slices of the halves, [0, B//2) and [B//2, B); the whole batch if B == 1."""
    if B < 2:
        return [slice(0, B)]
    return [slice(0, B // 2), slice(B // 2, B)]


class DataParallel:
    """Run `model` on the two halves of each batch, in two threads; same interface as
    the model's forward and backward (for training and loss estimates).

    >>> from minigpt import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8))
    >>> engine = DataParallel(model)
    >>> idx = np.zeros((4, 8), dtype=int)
    >>> logits, loss = engine.forward(idx, idx)      # the mean over all 4 sequences
    >>> grads = engine.backward()                    # the sum of the halves' gradients
    """

    def __init__(self, model, threads=True):
        self.model = model
        self.threads = threads          # False: the halves one after the other, same numbers
        self._pool = None               # one worker thread, made on first use
        self._replicas = None           # the last forward's, for backward
        self._halves = None

    def forward(self, idx, targets=None, *, train=False, rng=None, label_smoothing=0.0):
        """As GPT.forward: idx, targets (B, T) -> logits (B, T, V), the batch's mean loss."""
        model, cfg = self.model, self.model.config
        idx = check_ids(idx, cfg.vocab_size, "idx", cfg.block_size)     # the whole batch,
        if targets is not None:                                          # so errors name it
            targets = check_ids(targets, cfg.vocab_size, "targets")
            if targets.shape != idx.shape:
                raise ValueError(f"targets shape {targets.shape} does not match idx shape "
                                 f"{idx.shape}")
        B = idx.shape[0]
        halves = split_batch(B)
        rngs = [rng] * len(halves)
        if train and cfg.dropout > 0.0 and len(halves) == 2:
            # one generator per half, seeded from the step's (or the model's) generator
            parent = model.rng if rng is None else rng
            rngs = [np.random.default_rng(seed) for seed in parent.integers(2**63, size=2)]
        replicas = [copy.copy(model) for _ in halves]       # shared params, own cache
        jobs = [(lambda r=r, h=h, g=g: r.forward(idx[h], None if targets is None
                                                 else targets[h], train=train, rng=g,
                                                 label_smoothing=label_smoothing))
                for r, h, g in zip(replicas, halves, rngs)]
        parts = self.run(jobs)
        self._replicas, self._halves = replicas, halves
        logits = np.concatenate([logits for logits, _ in parts])                # (B, T, V)
        loss = None
        if targets is not None:
            loss = sum((h.stop - h.start) / B * part_loss
                       for h, (_, part_loss) in zip(halves, parts))
        return logits, loss

    def backward(self):
        """As GPT.backward() from the loss: the gradients of the batch's mean loss."""
        if self._replicas is None:
            raise ValueError("backward() called before forward()")
        halves, B = self._halves, self._halves[-1].stop
        jobs = [(lambda r=r, h=h: r.backward(dloss=(h.stop - h.start) / B))
                for r, h in zip(self._replicas, halves)]
        parts = self.run(jobs)
        grads = parts[0]
        if len(parts) == 2:               # the all-reduce: add the halves' gradients
            grads = {name: g + parts[1][name] for name, g in grads.items()}
        return grads

    __call__ = forward

    def run(self, jobs):
        """[job() for job in jobs]; two jobs run in two threads (this one and a worker),
        each with BLAS limited to half of the cores, so they do not fight over them."""
        cores = os.cpu_count() or 1
        if len(jobs) == 1 or cores < 2:
            return [job() for job in jobs]           # nothing to share
        with blas_limit(cores // 2):
            if not self.threads:     # one after the other, with the BLAS share a threaded
                return [job() for job in jobs]     # half gets: its sums depend on it
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1,
                                                thread_name_prefix="minigpt-half")
            first, second = jobs
            future = self._pool.submit(second)
            try:
                result = first()
            finally:
                other = future.result()      # wait for the worker, even if we failed
        return [result, other]
