"""The command line: python -m minigpt train | sample | chat | eval.

    python -m minigpt train                      the default "chat" preset (make train)
    python -m minigpt train --preset tiny        seconds, for trying things out
    python -m minigpt train --max-iters 200 --n-layer 2      any config field, checked
    python -m minigpt train --resume             continue the run in --out-dir
    python -m minigpt chat                       talk to out/chat/ckpt.npz
    python -m minigpt sample --prompt "<|user|>Hi<|end|><|bot|>"
    python -m minigpt eval                       validation loss and word validity
    python -m minigpt reference --out ref.npz    a traced forward and backward to check against
    python -m minigpt compare ref.npz mine.npz   the first tensor where mine disagrees
    python -m minigpt export out/chat --to hf out/chat-hf     for transformers' GPT2LMHeadModel
    python -m minigpt export out/chat --to nanogpt out/nanogpt/ckpt.pt   for nanoGPT

Every field of GPTConfig and TrainConfig is an option (n_layer -> --n-layer) whose
value is checked against the field's type; an unknown or mistyped option is an
error that names it (and suggests the closest known one). Errors are a short
message, with what to do next where there is something to do, not a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import inspect
import math
import os
import re
import signal
import sys
import threading

from .checkpoint import CheckpointError, CheckpointNotFoundError
from .config import GPTConfig, TrainConfig
from .presets import MODEL_FIELDS, PRESETS, TRAIN_FIELDS
from .train import TrainingDiverged

PROG = "python -m minigpt"


# ----------------------------------------------------------------------------- value types
def _int(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _int_from(lowest):
    """An argparse type: an integer >= lowest (argparse names the option in its error)."""
    def parse(text):
        value = _int(text)
        if value < lowest:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lowest}, got {text!r}")
        return value
    parse.__name__ = f"int >= {lowest}"
    return parse


def _float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _bool(text):
    lowered = text.lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


_PARSERS = {bool: _bool, int: _int, float: _float, str: str}


def _field_comments(cls) -> dict:
    """field name -> the comment after it in the class source (used as --help text)."""
    comments = {}
    for line in inspect.getsource(cls).splitlines():
        m = re.match(r"\s+(\w+): .*?#\s*(.*)$", line)
        if m:
            comments[m.group(1)] = m.group(2)
    return comments


def _preset_value(preset, cls, name):
    if cls is GPTConfig:
        return preset.model.get(name, getattr(GPTConfig, name))   # the field's default
    return getattr(preset.train, name)


def _add_config_options(parser, cls, fields):
    """One --option per dataclass field, typed by the field's default value; the help
    is the field's comment and the presets' values."""
    comments = _field_comments(cls)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for name in fields:
        kind = type(defaults[name])
        values = ", ".join(f"{preset_name}: {_preset_value(preset, cls, name)}"
                           for preset_name, preset in PRESETS.items())
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=_PARSERS[kind],
                            default=argparse.SUPPRESS, metavar=kind.__name__.upper(),
                            help=f"{comments.get(name, '')} ({values})")


def _sampling_options(parser, greedy_default):
    g = parser.add_argument_group("decoding")
    g.add_argument("--max-new-tokens", type=_int, default=None,
                   help="longest reply / continuation, in characters")
    g.add_argument("--greedy", action="store_true",
                   help="always take the most likely character" +
                        (" (the default)" if greedy_default else ""))
    g.add_argument("--temperature", type=_float, default=None,
                   help="> 0; below 1 is more conservative, above 1 more adventurous" +
                        (" (implies sampling)" if greedy_default else " (default 0.8)"))
    g.add_argument("--top-k", type=_int, default=None, help="sample among the k most likely")
    g.add_argument("--top-p", type=_float, default=None,
                   help="sample among the most likely characters whose probability adds "
                        "up to p, in (0, 1]")
    g.add_argument("--seed", type=_int_from(0), default=None, help="seed for sampling (>= 0)")
    g.add_argument("--slide", type=_int, default=None,
                   help="past the context, drop this many of the oldest characters at once "
                        "(1 to block_size; default block_size // 4; 1 = always the full "
                        "context, but every character is then a full pass)")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint file or run directory (default out/chat/ckpt.npz)")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """argparse's error, plus a suggestion for a mistyped option."""
        m = re.search(r"unrecognized arguments: (.*)", message)
        if m:
            known = [s for a in self._actions for s in a.option_strings]
            for word in m.group(1).split():
                if word.split("=")[0] == "--vocab-size":
                    message += " (vocab_size is not an option: it is the tokenizer's size)"
                    break
                if word.startswith("-"):
                    close = difflib.get_close_matches(word.split("=")[0], known, n=1)
                    if close:
                        message += f" (did you mean {close[0]}?)"
                        break
        super().error(message)


def build_parser():
    parser = _Parser(prog=PROG, description="minigpt: a GPT in pure NumPy, trained to chat.",
                     allow_abbrev=False, epilog=EXIT_STATUS,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=functools.partial(
                                    _Parser, epilog=EXIT_STATUS,
                                    formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.commands = sub.choices          # name -> its parser, for error messages

    p = sub.add_parser("train", help="train a chat model (default preset: chat)",
                       allow_abbrev=False,
                       description="Train a model on the chatterbot corpus. Any option below "
                                   "overrides the preset's value.")
    p.add_argument("--preset", choices=sorted(PRESETS), default="chat",
                   help="starting configuration (default: chat)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in --out-dir (options given override its "
                        "training settings; the model's shape is the checkpoint's)")
    p.add_argument("--stop-at", type=_int_from(1), default=None, metavar="INT",
                   help="pause after this many steps in total (resume later with --resume)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_options(p.add_argument_group("model (GPTConfig)"), GPTConfig, MODEL_FIELDS)
    _add_config_options(p.add_argument_group("training (TrainConfig)"), TrainConfig,
                        TRAIN_FIELDS)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("chat", help="talk to a trained model", allow_abbrev=False,
                       description="A chat REPL. Piped input: one reply line per input line.")
    _sampling_options(p, greedy_default=True)
    p.add_argument("--lang", choices=("en", "zh"), default=None,
                   help="language of the chat's own messages (default: MINIGPT_LANG if set, "
                        "else zh if the locale is Chinese, else en)")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("sample", help="free-running text from a trained model",
                       allow_abbrev=False)
    p.add_argument("--prompt", default="<|user|>",
                   help="text to continue (markers allowed; default: <|user|>)")
    _sampling_options(p, greedy_default=False)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="validation loss and word validity of a checkpoint",
                       allow_abbrev=False)
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file or run directory (default out/chat/ckpt.npz)")
    p.add_argument("--replies", type=_int_from(0), default=0,
                   help="how many validation openings to reply to (default 0: all)")
    p.add_argument("--show", type=_int_from(0), default=8,
                   help="print this many of the replies")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("reference", allow_abbrev=False,
                       help="write a reference trace: every tensor of one forward and backward",
                       description="A model initialised with --seed, a random batch, and every "
                                   "named tensor of its forward and backward (inputs, parameters "
                                   "under minigpt's and nanoGPT's names, activations, gradients) "
                                   "written to one .npz, with a manifest (each tensor's shape and "
                                   "formula) inside it and beside it as .json. The names are "
                                   "listed in minigpt/reference.py.")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="where to write the trace")
    p.add_argument("--seed", type=_int_from(0), default=0,
                   help="seeds the parameters and the batch (default 0)")
    p.add_argument("--batch", type=_int_from(1), default=2, help="B, sequences (default 2)")
    p.add_argument("--time", type=_int_from(1), default=None,
                   help="T, positions per sequence (default block_size)")
    _add_reference_config_options(p.add_argument_group("model (GPTConfig)"))
    p.set_defaults(func=cmd_reference)

    p = sub.add_parser("compare", allow_abbrev=False,
                       help="compare your tensors with a reference, and name the first that differs",
                       epilog=COMPARE_EXIT_STATUS,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="For every tensor in both files, in data-flow order: the "
                                   "max absolute error and the error relative to the "
                                   "reference's largest entry; then the first tensor past "
                                   "tolerance, what it is computed from, and how far the error "
                                   "spreads. A tensor agrees when max|theirs - ref| <= atol + "
                                   "rtol * max|ref|.")
    p.add_argument("reference", help="a file written by python -m minigpt reference")
    p.add_argument("theirs", help="your tensors under the reference's names (.npz or "
                                  ".safetensors)")
    p.add_argument("--rtol", type=_float, default=None,
                   help="relative tolerance (default 1e-4 where either side is float32, "
                        "1e-9 for float64)")
    p.add_argument("--atol", type=_float, default=None,
                   help="absolute tolerance (default 1e-6 for float32, 1e-12 for float64)")
    p.add_argument("--brief", action="store_true", help="the summary only, not every tensor")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("export", allow_abbrev=False,
                       help="export a model for Hugging Face transformers or nanoGPT",
                       description="--to hf DIR: a directory GPT2LMHeadModel.from_pretrained "
                                   "and AutoTokenizer.from_pretrained load (no torch needed to "
                                   "write it). --to nanogpt FILE.pt: a checkpoint nanoGPT's "
                                   "sample.py and train.py --init_from=resume read, with "
                                   "meta.pkl (the vocabulary) beside it (needs torch).")
    p.add_argument("source", nargs="?", default=None, metavar="RUN_OR_CKPT",
                   help="run directory or checkpoint (default out/chat/ckpt.npz)")
    p.add_argument("--to", required=True, nargs=2, metavar=("FORMAT", "TARGET"),
                   help="hf DIR, or nanogpt FILE.pt")
    p.add_argument("--force", action="store_true",
                   help="replace an existing, non-empty target")
    p.set_defaults(func=cmd_export)
    return parser


REFERENCE_MODEL = dict(vocab_size=32, block_size=8, n_layer=2, n_head=2, n_embd=16,
                       dtype="float64")   # small enough to read, every kind of tensor in it

COMPARE_EXIT_STATUS = """exit status:
  0    every tensor in both files agrees
  1    something diverges (a value past tolerance, or a shape mismatch)
  2    unusable input: an unreadable file, not a reference, no tensors in common,
       or a bad command line"""


def _add_reference_config_options(group):
    """Every GPTConfig field as an option, defaulting to REFERENCE_MODEL's small model."""
    comments = _field_comments(GPTConfig)
    for f in dataclasses.fields(GPTConfig):
        default = REFERENCE_MODEL.get(f.name, f.default)
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name,
                           type=_PARSERS[type(f.default)], default=default,
                           metavar=type(f.default).__name__.upper(),
                           help=f"{comments.get(f.name, '')} (default {default})")


# ----------------------------------------------------------------------------- commands
def cmd_train(args):
    from .train import train
    overrides = {name: getattr(args, name) for name in MODEL_FIELDS + TRAIN_FIELDS
                 if hasattr(args, name)}
    result = train(args.preset, resume=args.resume, stop_at=args.stop_at,
                   progress=not args.no_progress, **overrides)
    return 130 if result.status == "interrupted" else 0


def _decoding(args, greedy_default):
    """The sampling settings the options ask for, checked."""
    from .generate import check_sampling_args
    sampled = any(v is not None for v in (args.temperature, args.top_k, args.top_p))
    greedy = args.greedy or (greedy_default and not sampled)
    temperature = args.temperature if args.temperature is not None else (
        1.0 if greedy_default else 0.8)
    max_new_tokens = 1 if args.max_new_tokens is None else args.max_new_tokens
    check_sampling_args(max_new_tokens, temperature, args.top_k, args.top_p, greedy)
    return dict(greedy=greedy, temperature=temperature, top_k=args.top_k, top_p=args.top_p,
                slide=args.slide)


def _reconfigure_streams():
    """Never crash on a character the terminal cannot show or bytes that are not UTF-8."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def cmd_chat(args):
    from .chat import MESSAGES, Chatbot, chat_language, default_checkpoint, run_chat
    decoding = _decoding(args, greedy_default=True)
    lang = chat_language(args.lang)
    try:
        bot = Chatbot.load(args.checkpoint, max_new_tokens=args.max_new_tokens or 256,
                           seed=args.seed, lang=lang, **decoding)
    except CheckpointNotFoundError:
        path = args.checkpoint or default_checkpoint()
        raise CheckpointNotFoundError(MESSAGES[lang]["not_found"].format(path=path)) from None
    _reconfigure_streams()
    return run_chat(bot)


def cmd_sample(args):
    from .chat import default_checkpoint, run_sample
    from .generate import check_slide, make_rng
    from .run_state import load_model
    decoding = _decoding(args, greedy_default=False)
    model, tokenizer, _ = _load(args.checkpoint, load_model, default_checkpoint)
    check_slide(decoding["slide"], model.config.block_size)     # before printing anything
    _reconfigure_streams()
    rng = None if decoding["greedy"] else make_rng(args.seed)
    return run_sample(model, tokenizer, args.prompt, args.max_new_tokens or 500, rng=rng,
                      **decoding)


def _load(path, load_model, default_checkpoint):
    from .chat import TRAIN_HINT
    try:
        return load_model(path or default_checkpoint())
    except CheckpointNotFoundError as e:
        raise CheckpointNotFoundError(f"{e}\n{TRAIN_HINT}") from None


def cmd_eval(args):
    from .chat import default_checkpoint
    from .data_parallel import DataParallel
    from .evaluate import estimate_loss, evaluate_chat, stream_loss
    from .data import build_dataset
    from .run_state import checkpoint_path, load_model, training_meta
    from .train import check_run_fits
    model, tokenizer, meta = _load(args.checkpoint, load_model, default_checkpoint)
    cfg, it, _ = training_meta(meta, checkpoint_path(args.checkpoint or default_checkpoint()))
    check_run_fits(model.config, cfg.batch_size)           # eval batches are training's size
    data = build_dataset(cfg, tokenizer)
    print(f"checkpoint: iteration {it}, {model.num_params():,} parameters")
    losses = estimate_loss(DataParallel(model), data, cfg.batch_size,   # as training does
                           model.config.block_size, cfg.eval_iters, cfg.seed)
    print(f"train loss {losses['train']:.4f}, val loss {losses['val']:.4f} (the mean over "
          f"{cfg.eval_iters} random batches, as training prints it)")
    val, n = stream_loss(model, data.tokens["val"])
    print(f"val loss over the whole validation stream: {val:.4f} ({n:,} characters, each "
          f"scored once with at least half a block of context)")
    _reconfigure_streams()       # the replies may hold characters the terminal lacks
    evaluate_chat(model, tokenizer, data.conversations, n=args.replies or None,
                  max_new_tokens=cfg.eval_reply_tokens, show_replies=args.show,
                  show_greetings=args.show)
    return 0


def cmd_reference(args):
    from .reference import write_reference
    config = GPTConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(GPTConfig)})
    try:
        meta = write_reference(args.out, config, seed=args.seed, batch=args.batch,
                               time=args.time)
    except OSError as e:
        raise ValueError(f"cannot write {args.out}: {e.strerror or e}") from None
    json_path = os.path.splitext(args.out)[0] + ".json"
    print(f"wrote {args.out}: {len(meta['tensors'])} tensors of one forward and backward "
          f"({config.dtype}; B {meta['batch']}, T {meta['time']}, {config.n_layer} layers, "
          f"C {config.n_embd}, V {config.vocab_size}); the manifest is also in {json_path}")
    return 0


def cmd_compare(args):
    from .reference import UnusableInput, compare, load_reference, load_tensors, report
    try:
        ref_arrays, meta = load_reference(args.reference)
        theirs = load_tensors(args.theirs)
        common = [e["name"] for e in meta["tensors"] if e["name"] in theirs]
        if not common:
            raise UnusableInput(
                f"{args.theirs} has no tensor under the reference's names (its names: "
                f"{', '.join(list(map(str, theirs))[:5]) or 'none'}); the names are listed in "
                f"{os.path.splitext(args.reference)[0]}.json and minigpt/reference.py")
    except UnusableInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, value in (("--rtol", args.rtol), ("--atol", args.atol)):
        if value is not None and value < 0:
            print(f"error: {name} must be >= 0, got {value}", file=sys.stderr)
            return 2
    result = compare(ref_arrays, meta, theirs, rtol=args.rtol, atol=args.atol)
    _reconfigure_streams()
    print(report(result, all_rows=not args.brief))
    return 0 if result["first"] is None else 1


def cmd_export(args):
    from .chat import default_checkpoint
    from .export import export_hf, export_nanogpt
    from .run_state import checkpoint_path, load_state
    kind, target = args.to
    if kind not in ("hf", "nanogpt"):
        print(f"error: --to takes hf DIR or nanogpt FILE.pt, got {kind!r}", file=sys.stderr)
        return 2
    source = checkpoint_path(args.source or default_checkpoint())
    model, tokenizer, opt, train_cfg, it, history = _load(source, load_state,
                                                          default_checkpoint)
    if kind == "hf":
        path = export_hf(model, tokenizer, target, force=args.force)
        print(f"wrote {path}: config.json, model.safetensors, generation_config.json, "
              f"tokenizer.json, tokenizer_config.json")
        print("load it with transformers:  GPT2LMHeadModel.from_pretrained(DIR), "
              "AutoTokenizer.from_pretrained(DIR)")
        return 0
    path = export_nanogpt(model, tokenizer, target, train_cfg=train_cfg, it=it,
                          history=history, opt_state=opt.state_dict(), force=args.force)
    print(f"wrote {path} (nanoGPT's checkpoint: model, model_args, optimizer, iter_num "
          f"{it}) and {os.path.join(os.path.dirname(path), 'meta.pkl')} (the vocabulary)")
    print("in nanoGPT: put ckpt.pt in --out_dir and meta.pkl in data/minigpt_chat/; note "
          "that nanoGPT's MLP uses the exact GELU and minigpt the tanh form, so its model.py "
          "gives slightly different logits unless its nn.GELU() is made "
          "nn.GELU(approximate='tanh')")
    return 0


# ----------------------------------------------------------------------------- main
EXIT_STATUS = """exit status:
  0    done
  1    a problem with a value, a checkpoint or the run (the message says which)
  2    a bad command line: an unknown option, a malformed value, an unusable --out-dir
  130  stopped by Ctrl-C (train saves first) or by a termination signal
  141  the reader of the output went away (e.g. piped into head), as Unix tools do"""


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:       # let the command's own parser complain, so it can suggest a fix
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    from .run_dir import OutDirError, RunLockedError
    try:
        with _terminate_as_interrupt():
            return args.func(args)
    except OutDirError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (CheckpointError, TrainingDiverged, RunLockedError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory: the machine cannot hold what this command asked for "
              "(try a smaller model, batch or block)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_gone()


class _terminate_as_interrupt:
    """SIGTERM (kill, a closing terminal, a job scheduler) becomes KeyboardInterrupt, so
    a run stops the way Ctrl-C stops it: temp files removed, the lock released."""

    def __enter__(self):
        self._old = None
        if hasattr(signal, "SIGTERM") and threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._handle)
        return self

    @staticmethod
    def _handle(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def _reader_gone() -> int:
    """stdout's reader closed the pipe: stop quietly. Point stdout at the null device
    so Python's final flush does not fail again, and exit 141 (128 + SIGPIPE), the
    status a Unix tool killed by SIGPIPE has (1 on Windows)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141 if os.name == "posix" else 1


if __name__ == "__main__":
    sys.exit(main())
