"""minigpt's chat preset against nanoGPT's recipe, on the same split, scored the same way.

    .venv/bin/python benchmarks/nanogpt_compare.py [--minigpt out/chat] [--steps 3600]

nanoGPT side: a PyTorch GPT with nanoGPT's architecture (pre-LN, tied head, tanh
GELU, learned positions) and its training loop -- windows drawn at random offsets of
the training stream, torch.optim.AdamW with weight decay on the matrices only,
gradient clipping at 1.0, the warmup + cosine schedule -- with the preset's
settings (layers, width, block, batch, dropout, learning rates, steps, betas),
trained on minigpt's own train/validation split with minigpt's tokenizer. Its
weights are then loaded into minigpt (minigpt.interop.from_nanogpt) and scored by
minigpt's own code, as the minigpt checkpoint is:
  - the loss over the whole validation stream (evaluate.stream_loss),
  - word validity of greedy replies to every validation opening, and how many of
    those replies end their turn (evaluate.evaluate_replies),
  - greetings answered with one of the corpus's answers (evaluate.evaluate_greetings).

The minigpt column reads a checkpoint that `make train` (or --minigpt DIR) wrote.
PyTorch is optional for minigpt; without it this script says so and exits 1.
Training the nanoGPT side takes about as long as `make train` (8-10 minutes on 2 cores).
"""
import argparse
import math
import os
import sys
import time

import numpy as np

from minigpt.config import GPTConfig
from minigpt.data import build_dataset
from minigpt.evaluate import evaluate_greetings, evaluate_replies, stream_loss
from minigpt.interop import from_nanogpt
from minigpt.model import GPT
from minigpt.optim import lr_at
from minigpt.presets import PRESETS
from minigpt.run_state import load_model, training_meta, checkpoint_path


def torch_gpt(torch, cfg):
    """nanoGPT's GPT (model.py), reduced to what this comparison needs."""
    nn, F = torch.nn, torch.nn.functional
    C, nh = cfg.n_embd, cfg.n_head

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(C, bias=cfg.bias)
            self.attn = nn.Module()
            self.attn.c_attn = nn.Linear(C, 3 * C, bias=cfg.bias)
            self.attn.c_proj = nn.Linear(C, C, bias=cfg.bias)
            self.ln_2 = nn.LayerNorm(C, bias=cfg.bias)
            self.mlp = nn.Module()
            self.mlp.c_fc = nn.Linear(C, 4 * C, bias=cfg.bias)
            self.mlp.c_proj = nn.Linear(4 * C, C, bias=cfg.bias)
            self.drop = nn.Dropout(cfg.dropout)

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = self.attn.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=cfg.dropout if self.training else 0.0)
            x = x + self.drop(self.attn.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))
            m = self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))
            return x + self.drop(m)

    class GPTModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.Module()
            self.transformer.wte = nn.Embedding(cfg.vocab_size, C)
            self.transformer.wpe = nn.Embedding(cfg.block_size, C)
            self.transformer.drop = nn.Dropout(cfg.dropout)
            self.transformer.h = nn.ModuleList(Block() for _ in range(cfg.n_layer))
            self.transformer.ln_f = nn.LayerNorm(C, bias=cfg.bias)
            self.lm_head = nn.Linear(C, cfg.vocab_size, bias=False)
            self.lm_head.weight = self.transformer.wte.weight          # tied
            self.apply(self._init)
            for name, p in self.named_parameters():                    # nanoGPT's init
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

        @staticmethod
        def _init(module):
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

        def forward(self, idx, targets):
            t = self.transformer
            x = t.drop(t.wte(idx) + t.wpe(torch.arange(idx.shape[1])))
            for block in t.h:
                x = block(x)
            logits = self.lm_head(t.ln_f(x))
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    return GPTModel()


def train_nanogpt(torch, cfg, train_cfg, data, steps, seed):
    """nanoGPT's loop on minigpt's training stream -> minigpt params (float32)."""
    torch.manual_seed(seed)
    model = torch_gpt(torch, cfg)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": train_cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=train_cfg.lr, betas=(train_cfg.beta1, train_cfg.beta2))
    rng = np.random.default_rng(seed)
    t0 = time.time()
    for it in range(steps):
        lr = lr_at(it, lr=train_cfg.lr, min_lr=train_cfg.min_lr,
                   warmup_iters=min(train_cfg.warmup_iters, steps), max_iters=steps)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = data.get_batch("train", train_cfg.batch_size, cfg.block_size, rng)  # random
        loss = model(torch.from_numpy(x), torch.from_numpy(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
        opt.step()
        if it % 600 == 0 or it == steps - 1:
            print(f"  nanoGPT step {it:5d}: loss {loss.item():.4f} ({time.time() - t0:.0f} s)",
                  flush=True)
    seconds = time.time() - t0
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    minigpt_model = GPT(cfg)
    minigpt_model.params = from_nanogpt(state, cfg)
    return minigpt_model, seconds


def score(model, tokenizer, data):
    """The four figures of the comparison, measured by minigpt's own evaluation."""
    val, _ = stream_loss(model, data.tokens["val"])
    replies = evaluate_replies(model, tokenizer, data.conversations["train"],
                               data.conversations["val"])
    greetings = evaluate_greetings(model, tokenizer,
                                   data.conversations["train"] + data.conversations["val"])
    return {"loss over the whole validation stream": f"{val:.2f}",
            f"word validity ({replies['n_replies']} validation openings)":
                f"{100 * replies['validity']:.1f}%" if replies["n_words"] else "no words",
            "greetings answered with a corpus answer":
                f"{round(greetings['fraction'] * greetings['n'])} / {greetings['n']}",
            "replies that end their turn": f"{replies['n_finished']} / {replies['n_replies']}"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minigpt", default="out/chat",
                        help="run folder or checkpoint of the minigpt side (default out/chat)")
    parser.add_argument("--steps", type=lambda t: max(1, int(t)), default=None,
                        help="nanoGPT training steps (default: the checkpoint's max_iters)")
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("error: this comparison trains the nanoGPT side with PyTorch, which is not "
              "installed (pip install torch==2.13.0 installs a CPU build)", file=sys.stderr)
        return 1
    torch.set_num_threads(os.cpu_count() or 1)

    path = checkpoint_path(args.minigpt)
    ours, tokenizer, meta = load_model(path)
    train_cfg, it, _ = training_meta(meta, path)
    data = build_dataset(train_cfg, tokenizer)
    cfg = GPTConfig.from_dict({**ours.config.to_dict(), "pos_encoding": "learned",
                               "scale_embeddings": False})
    steps = args.steps or train_cfg.max_iters
    print(f"minigpt: {path}, {it} steps; nanoGPT: the same settings, {steps} steps of random "
          f"windows on the same split ({len(data.tokens['train']):,} training characters)")
    theirs, seconds = train_nanogpt(torch, cfg, train_cfg, data, steps, args.seed)
    rows = {"minigpt checkpoint": score(ours, tokenizer, data),
            "nanoGPT, same settings": score(theirs, tokenizer, data)}
    names = list(rows)
    width = max(len(k) for k in rows[names[0]]) + 2
    print(f"\n{'':{width}}" + "".join(f"{n:>26}" for n in names))
    print(f"{'training time':{width}}{'(see make train)':>26}{f'{seconds:.0f} s':>26}")
    for key in rows[names[0]]:
        print(f"{key:{width}}" + "".join(f"{rows[n][key]:>26}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
