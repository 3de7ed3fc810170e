"""Export (minigpt.export; python -m minigpt export): Hugging Face and nanoGPT.

Always: the written files themselves (the safetensors header read by hand, names,
shapes, config fields), the tokenizer giving exactly our ids on the whole corpus,
and bad input (missing or corrupt checkpoint, a non-empty target, an unwritable
path) refused with one line and nothing left behind. With transformers and torch
(optional; skipped without): the exported model's logits equal ours to 1e-5 in
float32 on several configs, greedy generate gives minigpt's replies, the nanoGPT
checkpoint loads into an independent nanoGPT-semantics model with our logits and
its AdamW state into torch.optim.AdamW.
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from minigpt.config import GPTConfig
from minigpt.data import load_conversations
from minigpt.export import ExportError, export_hf, export_nanogpt, hf_tokenizer
from minigpt.interop import to_hf
from minigpt.model import GPT
from minigpt.run_state import load_model, load_state
from minigpt.tokenizer import BOT, END, USER, CharTokenizer
from minigpt.train import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = dict(progress=False, out=open(os.devnull, "w"))

# configurations GPT-2 expresses directly, and ones that need a fold
CONFIGS = [
    dict(vocab_size=23, block_size=11, n_layer=2, n_head=2, n_embd=16, pos_encoding="learned"),
    dict(vocab_size=17, block_size=8, n_layer=1, n_head=4, n_embd=16, bias=False),
    dict(vocab_size=29, block_size=9, n_layer=3, n_head=1, n_embd=12, scale_embeddings=True),
]


def cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "minigpt", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(r, status, *words):
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def noisy_model(kw, seed=0):
    """A model with weights far from their initial values (a fresh GPT's logits are
    nearly flat, which would hide a wrong sign or transpose)."""
    model = GPT(GPTConfig(**kw), seed=seed)
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p += rng.normal(0.0, 0.3, p.shape).astype(p.dtype)
    return model


def small_tokenizer(V):
    return CharTokenizer([chr(ord("a") + i) for i in range(V - 3)])


def read_safetensors_header(path):
    """The JSON header of a .safetensors file, read by hand (the format: 8 bytes of
    little-endian length, then that much JSON, then the raw data)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained tiny run (the tiny preset: seconds) and its HF export."""
    out = tmp_path_factory.mktemp("run") / "tiny"
    train("tiny", out_dir=str(out), **QUIET)
    hf = out.parent / "hf"
    model, tok, _ = load_model(str(out))
    export_hf(model, tok, hf)
    return out, hf, model, tok


# ----------------------------------------------------------------------------- the files
@pytest.mark.parametrize("kw", CONFIGS)
def test_hf_files_hold_the_weights_and_the_config(kw, tmp_path):
    model = noisy_model(kw)
    tok = small_tokenizer(kw["vocab_size"])
    export_hf(model, tok, tmp_path / "hf")
    files = sorted(os.listdir(tmp_path / "hf"))
    assert files == sorted(["config.json", "model.safetensors", "generation_config.json",
                            "tokenizer.json", "tokenizer_config.json"])
    header = read_safetensors_header(tmp_path / "hf" / "model.safetensors")
    assert header.pop("__metadata__") == {"format": "pt"}
    expected = to_hf(model.params, model.config)
    assert set(header) == set(expected)
    for name, info in header.items():
        assert info["dtype"] == "F32" and tuple(info["shape"]) == expected[name].shape, name
    from safetensors.numpy import load_file
    for name, value in load_file(str(tmp_path / "hf" / "model.safetensors")).items():
        assert value.dtype == np.float32 and np.array_equal(value, expected[name]), name
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert cfg["model_type"] == "gpt2" and cfg["architectures"] == ["GPT2LMHeadModel"]
    assert (cfg["vocab_size"], cfg["n_positions"], cfg["n_embd"], cfg["n_layer"],
            cfg["n_head"]) == (kw["vocab_size"], kw["block_size"], kw["n_embd"],
                               kw["n_layer"], kw["n_head"])
    assert cfg["activation_function"] == "gelu_new" and cfg["layer_norm_epsilon"] == 1e-5
    assert cfg["tie_word_embeddings"] is True
    gen = json.loads((tmp_path / "hf" / "generation_config.json").read_text())
    assert gen["do_sample"] is False and tok.end_id in gen["eos_token_id"]
    assert "wte" not in header and "lm_head.weight" not in header      # tied, as GPT-2's


def test_a_float64_model_is_exported_in_float64(tmp_path):
    model = noisy_model(dict(CONFIGS[0], dtype="float64"))
    export_hf(model, small_tokenizer(23), tmp_path / "hf")
    header = read_safetensors_header(tmp_path / "hf" / "model.safetensors")
    assert {info["dtype"] for k, info in header.items() if k != "__metadata__"} == {"F64"}
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["dtype"] == "float64"


def test_tokenizer_gives_our_ids_on_the_whole_corpus(run):
    _, hf, _, tok = run
    from tokenizers import Tokenizer
    t = Tokenizer.from_file(str(hf / "tokenizer.json"))
    texts = ["".join(f"{USER if i % 2 == 0 else BOT}{line}{END}" for i, line in enumerate(conv))
             for conv in load_conversations()]
    for text in texts:
        ours = tok.encode(text).tolist()
        theirs = t.encode(text, add_special_tokens=False).ids
        assert theirs == ours, text[:60]
        assert t.decode(theirs, skip_special_tokens=False) == text
    assert t.encode("你好", add_special_tokens=False).ids == tok.encode("你好").tolist()
    assert len(t.encode("你好", add_special_tokens=False).ids) == 2    # one token each
    # encode() wraps a line as a user turn, the prompt minigpt's chat builds
    assert t.encode("Hi").ids == [tok.user_id, *tok.encode("Hi"), tok.end_id, tok.bot_id]
    # an unknown character is dropped, as CharTokenizer drops it
    assert t.encode("H\U0001F600i", add_special_tokens=False).ids == tok.encode("Hi").tolist()


# ----------------------------------------------------------------------------- bad input
def test_export_bad_input_is_one_line_and_leaves_nothing(run, tmp_path):
    out, _, _, _ = run
    one_error_line(cli("export", str(tmp_path / "nope"), "--to", "hf", str(tmp_path / "x")),
                   1, "not found")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    one_error_line(cli("export", str(bad), "--to", "hf", str(tmp_path / "x")), 1, "bad.npz")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    one_error_line(cli("export", str(out), "--to", "hf", str(full)), 1, "not empty", "--force")
    assert os.listdir(full) == ["keep.txt"]
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    one_error_line(cli("export", str(out), "--to", "hf", str(a_file / "hf")), 1,
                   "cannot write")
    one_error_line(cli("export", str(out), "--to", "hf", str(a_file)), 1, "not a directory")
    r = cli("export", str(out), "--to", "onnx", str(tmp_path / "y"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert sorted(os.listdir(tmp_path)) == ["a_file", "bad.npz", "full"]   # no temp left


def test_force_replaces_a_non_empty_directory(run, tmp_path):
    out, _, _, _ = run
    target = tmp_path / "hf"
    target.mkdir()
    (target / "old.txt").write_text("old")
    r = cli("export", str(out), "--to", "hf", str(target), "--force")
    assert r.returncode == 0, r.stderr
    assert "old.txt" not in os.listdir(target) and "model.safetensors" in os.listdir(target)
    assert sorted(os.listdir(tmp_path)) == ["hf"]


def test_a_failed_write_keeps_the_old_directory(run, tmp_path, monkeypatch):
    _, _, model, tok = run
    target = tmp_path / "hf"
    target.mkdir()
    (target / "old.txt").write_text("old")
    import minigpt.export as export

    def broken(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(export, "_write_json", broken)
    with pytest.raises(ExportError, match="No space left"):
        export_hf(model, tok, target, force=True)
    assert os.listdir(target) == ["old.txt"]
    assert sorted(os.listdir(tmp_path)) == ["hf"]


def test_nanogpt_export_without_torch_says_so(run, tmp_path, monkeypatch):
    _, _, model, tok = run
    monkeypatch.setitem(sys.modules, "torch", None)          # import torch fails
    with pytest.raises(ExportError, match="needs PyTorch"):
        export_nanogpt(model, tok, tmp_path / "ckpt.pt")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- transformers
@pytest.mark.parametrize("kw", CONFIGS)
def test_hf_logits_equal_ours(kw, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = noisy_model(kw, seed=1)
    tok = small_tokenizer(kw["vocab_size"])
    export_hf(model, tok, tmp_path / "hf")
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(tmp_path / "hf")).eval()
    idx = np.random.default_rng(2).integers(0, kw["vocab_size"], (3, kw["block_size"]))
    ours, _ = model.forward(idx)
    with torch.no_grad():
        theirs = hf(torch.from_numpy(idx)).logits.numpy()
    err = np.abs(ours - theirs).max() / np.abs(ours).max()
    assert err < 1e-5, err


def test_the_texts_code_gives_minigpts_greedy_replies(run):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    _, hf_dir, model, tok = run
    model_hf = transformers.GPT2LMHeadModel.from_pretrained(str(hf_dir))
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(hf_dir))
    block = model.config.block_size
    from minigpt.chat import Chatbot
    for text in ["Hi", "Hello", "你好", "谢谢", "Bye", "好"]:
        # the text's §4 lines, with max_length the model's whole context
        input_ids = tokenizer.encode(text, return_tensors="pt")
        output = model_hf.generate(input_ids, max_length=block, num_return_sequences=1)
        output_text = tokenizer.decode(output[0], skip_special_tokens=True)
        # minigpt's reply to the same line, as many characters as fit in the context
        bot = Chatbot(model, tok, max_new_tokens=block - input_ids.shape[1])
        reply = bot.reply(text)
        assert output_text == text + reply, (text, output_text, reply)


# ----------------------------------------------------------------------------- nanoGPT
def nanogpt_forward(torch, sd, args, idx, exact_gelu=False):
    """nanoGPT's forward (model.py) on its own state_dict, written here from its
    semantics: pre-LN blocks, causal attention, GELU, tied head."""
    F = torch.nn.functional
    C, nh = args["n_embd"], args["n_head"]
    B, T = idx.shape
    g = lambda k: sd.get(k)
    x = sd["transformer.wte.weight"][idx] + sd["transformer.wpe.weight"][:T]
    for l in range(args["n_layer"]):
        h = f"transformer.h.{l}."
        a = F.layer_norm(x, (C,), g(h + "ln_1.weight"), g(h + "ln_1.bias"), eps=1e-5)
        q, k, v = F.linear(a, g(h + "attn.c_attn.weight"), g(h + "attn.c_attn.bias")).split(C, 2)
        q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + F.linear(y.transpose(1, 2).reshape(B, T, C), g(h + "attn.c_proj.weight"),
                         g(h + "attn.c_proj.bias"))
        m = F.layer_norm(x, (C,), g(h + "ln_2.weight"), g(h + "ln_2.bias"), eps=1e-5)
        m = F.gelu(F.linear(m, g(h + "mlp.c_fc.weight"), g(h + "mlp.c_fc.bias")),
                   approximate="none" if exact_gelu else "tanh")
        x = x + F.linear(m, g(h + "mlp.c_proj.weight"), g(h + "mlp.c_proj.bias"))
    x = F.layer_norm(x, (C,), sd["transformer.ln_f.weight"], sd.get("transformer.ln_f.bias"),
                     eps=1e-5)
    return F.linear(x, sd["lm_head.weight"])


def test_nanogpt_checkpoint_loads_with_our_logits_and_optimizer(run, tmp_path):
    torch = pytest.importorskip("torch")
    out, _, _, _ = run
    r = cli("export", str(out), "--to", "nanogpt", str(tmp_path / "ckpt.pt"))
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt", "meta.pkl"]
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)   # as torch >= 2.6 loads
    model, tok, opt, train_cfg, it, _ = load_state(str(out / "ckpt.npz"))
    args = ckpt["model_args"]
    assert args == dict(n_layer=model.config.n_layer, n_head=model.config.n_head,
                        n_embd=model.config.n_embd, block_size=model.config.block_size,
                        bias=model.config.bias, vocab_size=model.config.vocab_size,
                        dropout=model.config.dropout)
    assert ckpt["iter_num"] == it and ckpt["config"]["dataset"] == "minigpt_chat"
    idx = np.random.default_rng(0).integers(0, tok.vocab_size, (2, model.config.block_size))
    ours, _ = model.forward(idx)
    with torch.no_grad():
        theirs = nanogpt_forward(torch, ckpt["model"], args, torch.from_numpy(idx)).numpy()
        exact = nanogpt_forward(torch, ckpt["model"], args, torch.from_numpy(idx),
                                exact_gelu=True).numpy()
    assert np.abs(ours - theirs).max() / np.abs(ours).max() < 1e-5
    # nanoGPT's own model.py has the exact GELU: close, not equal (the export says so)
    gap = np.abs(ours - exact).max() / np.abs(ours).max()
    assert 1e-7 < gap < 1e-2, gap

    # the optimizer: nanoGPT's two groups over its named_parameters(), our moments in them
    assert list(ckpt["model"])[:3] == ["transformer.wte.weight", "transformer.wpe.weight",
                                       "transformer.h.0.ln_1.weight"]   # model.py's order
    net = torch.nn.Module()
    params = {k: torch.nn.Parameter(v.clone()) for k, v in ckpt["model"].items()
              if k != "lm_head.weight"}
    for k, p in params.items():
        net.register_parameter(k.replace(".", "_"), p)
    decay = [p for p in params.values() if p.dim() >= 2]
    nodecay = [p for p in params.values() if p.dim() < 2]
    adamw = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                               {"params": nodecay, "weight_decay": 0.0}], lr=1e-3)
    adamw.load_state_dict(ckpt["optimizer"])
    m = adamw.state[params["transformer.h.0.attn.c_attn.weight"]]["exp_avg"].numpy()
    assert np.array_equal(m, opt.m["h.0.attn.c_attn.w"].T)
    for p in params.values():
        p.grad = torch.zeros_like(p)
    adamw.step()                                               # and it can go on
    assert float(adamw.state[decay[0]]["step"]) == it + 1


def test_nanogpt_export_refuses_to_overwrite(run, tmp_path):
    out, _, _, _ = run
    pytest.importorskip("torch")
    target = tmp_path / "ckpt.pt"
    target.write_bytes(b"precious")
    one_error_line(cli("export", str(out), "--to", "nanogpt", str(target)), 1, "exists",
                   "--force")
    assert target.read_bytes() == b"precious"
