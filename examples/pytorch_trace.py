"""Check a PyTorch GPT against minigpt's reference, tensor by tensor.

    python -m minigpt reference --out ref.npz                 # minigpt's trace (float64)
    python examples/pytorch_trace.py ref.npz --out mine.npz   # this GPT's own tensors
    python -m minigpt compare ref.npz mine.npz                # every tensor agrees: exit 0

    python examples/pytorch_trace.py ref.npz --out bug.npz --bug
    python -m minigpt compare ref.npz bug.npz                 # first divergence: h.0.attn.scores

This file is the part to copy into your own project. It is a GPT written the way
nanoGPT writes one (PyTorch modules named transformer.wte, transformer.h.0.attn.c_attn,
...; no minigpt code), and a Recorder that collects its tensors under the
reference's names:
  - forward hooks on the modules catch each module's output (ln_1, c_attn, c_proj,
    c_fc, the GELU, ln_f, the head): the module's path is the name, minus
    "transformer." (lm_head's output is "logits");
  - record() calls inside the forward catch what no module returns (q, k, v, the
    attention scores and weights, the residual stream);
  - each recorded tensor gets a gradient hook, so loss.backward() also fills in
    "grad." + its name; parameters' gradients are read from .grad afterwards
    under nanoGPT's names, which the reference holds too.
The weights come from the reference itself (its nanoGPT-named arrays), so both
sides compute the same function and every difference is a bug on one side.

--bug plants one: attention scores divided by d_k instead of sqrt(d_k). compare
names h.0.attn.scores as the first tensor that differs, says its inputs q and k
agree (so the bug is in the step that makes the scores), and counts the tensors
downstream that differ because of it.

Needs PyTorch (pip install torch); minigpt itself never imports it.
"""
import argparse
import json
import math
import sys

import numpy as np

try:
    import torch
except ImportError:            # main() says so; importing this file still works
    torch = None


class Recorder:
    """name -> tensor, and "grad." + name -> its gradient once backward has run."""

    def __init__(self):
        self.tensors = {}

    def record(self, name, t, grad=True):
        self.tensors[name] = t.detach().clone()
        if grad and t.requires_grad:
            t.register_hook(lambda g: self.tensors.__setitem__("grad." + name, g.clone()))
        return t

    def hook_modules(self, model):
        """A forward hook on every named module with an output worth recording."""
        for path, module in model.named_modules():
            name = {"lm_head": "logits", "transformer.wte": None,
                    "transformer.wpe": None}.get(path, path.removeprefix("transformer."))
            leaf = not list(module.children())
            if name and leaf and not isinstance(module, torch.nn.Dropout):
                module.register_forward_hook(
                    lambda mod, inputs, out, name=name: self.record(name, out))

    def save(self, path, model):
        arrays = {k: v.cpu().numpy() for k, v in self.tensors.items()}
        for name, p in model.named_parameters(remove_duplicate=False):   # + lm_head (tied)
            arrays[name] = p.detach().cpu().numpy()
            if p.grad is not None:
                arrays["grad." + name] = p.grad.cpu().numpy()
        np.savez(path, **arrays)
        return arrays


def build_gpt(cfg, rec, bug=False):
    """nanoGPT's GPT: pre-LN blocks, causal attention written out, tanh GELU, tied head."""
    nn, F = torch.nn, torch.nn.functional
    C, nh, bias = cfg["n_embd"], cfg["n_head"], cfg["bias"]
    hs = C // nh

    class Attention(nn.Module):
        def __init__(self, prefix):
            super().__init__()
            self.prefix = prefix
            self.c_attn = nn.Linear(C, 3 * C, bias=bias)
            self.c_proj = nn.Linear(C, C, bias=bias)

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = self.c_attn(x).split(C, dim=2)
            q, k, v = (rec.record(self.prefix + n, t.view(B, T, nh, hs).transpose(1, 2))
                       for n, t in (("q", q), ("k", k), ("v", v)))
            scale = 1.0 / hs if bug else 1.0 / math.sqrt(hs)      # the planted bug
            att = (q @ k.transpose(-2, -1)) * scale
            causal = torch.ones(T, T, dtype=torch.bool).tril()
            att = rec.record(self.prefix + "scores", att.masked_fill(~causal, float("-inf")))
            att = rec.record(self.prefix + "att", F.softmax(att, dim=-1))
            y = rec.record(self.prefix + "y", (att @ v).transpose(1, 2).reshape(B, T, C))
            return self.c_proj(y)

    class Block(nn.Module):
        def __init__(self, l):
            super().__init__()
            self.prefix = f"h.{l}."
            self.ln_1 = nn.LayerNorm(C, bias=bias)
            self.attn = Attention(self.prefix + "attn.")
            self.ln_2 = nn.LayerNorm(C, bias=bias)
            self.mlp = nn.Sequential()
            self.mlp.c_fc = nn.Linear(C, 4 * C, bias=bias)
            self.mlp.gelu = nn.GELU(approximate="tanh")
            self.mlp.c_proj = nn.Linear(4 * C, C, bias=bias)

        def forward(self, x):
            x = rec.record(self.prefix + "resid_attn", x + self.attn(self.ln_1(x)))
            return rec.record(self.prefix + "resid_mlp", x + self.mlp(self.ln_2(x)))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.Module()
            self.transformer.wte = nn.Embedding(cfg["vocab_size"], C)
            self.transformer.wpe = nn.Embedding(cfg["block_size"], C)
            self.transformer.h = nn.ModuleList(Block(l) for l in range(cfg["n_layer"]))
            self.transformer.ln_f = nn.LayerNorm(C, bias=bias)
            self.lm_head = nn.Linear(C, cfg["vocab_size"], bias=False)
            self.lm_head.weight = self.transformer.wte.weight              # tied

        def forward(self, idx, targets):
            t = self.transformer
            tok = rec.record("tok_emb", t.wte(idx))
            pos = rec.record("pos_emb", t.wpe(torch.arange(idx.shape[1])))
            x = rec.record("emb", tok + pos)
            for block in t.h:
                x = block(x)
            logits = self.lm_head(t.ln_f(x))
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
            return rec.record("loss", loss, grad=False)

    return GPT()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", help="a file written by python -m minigpt reference")
    parser.add_argument("--out", required=True, help="where to save this GPT's tensors (.npz)")
    parser.add_argument("--bug", action="store_true",
                        help="plant a bug: scores divided by d_k instead of sqrt(d_k)")
    args = parser.parse_args(argv)
    if torch is None:
        print("this example needs PyTorch: pip install torch", file=sys.stderr)
        return 1

    ref = np.load(args.reference, allow_pickle=False)          # a plain .npz, no pickles
    cfg = json.loads(ref["meta.json"].tobytes())["config"]     # the manifest's config
    if cfg["scale_embeddings"]:
        print("this example has GPT-2's embedding; make the reference without "
              "--scale-embeddings true", file=sys.stderr)
        return 1
    dtype = torch.float64 if cfg["dtype"] == "float64" else torch.float32

    rec = Recorder()
    model = build_gpt(cfg, rec, bug=args.bug).to(dtype)     # the reference's precision
    state = {name: torch.from_numpy(ref[name]) for name in model.state_dict()}
    model.load_state_dict(state)                # nanoGPT's names and layout, from the file
    if cfg["pos_encoding"] == "sinusoidal":
        model.transformer.wpe.weight.requires_grad_(False)     # the fixed table: no gradient
    rec.hook_modules(model)

    loss = model(torch.from_numpy(ref["idx"]), torch.from_numpy(ref["targets"]))
    loss.backward()
    rec.tensors.update(idx=torch.from_numpy(ref["idx"]), targets=torch.from_numpy(ref["targets"]))
    arrays = rec.save(args.out, model)
    print(f"wrote {args.out}: {len(arrays)} tensors (loss {loss.item():.6f})"
          + (" with the planted bug" if args.bug else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
