"""Chat: talk to a trained model, from a terminal, a script or Python.

A conversation is the text the model was trained on, written as it happens:

    <|user|>Hello<|end|><|bot|>Hi<|end|><|user|>How are you?<|end|><|bot|>

To reply, the bot appends the user's line between markers, ends with <|bot|>, and
lets the model continue until it writes <|end|>: the model has learned from the
corpus that a reply stops there. The reply then joins the conversation, so the
next reply sees it. The model can only see block_size tokens, so the conversation
is cropped from the left (the oldest characters fall out of view first).

Three ways in:
    python -m minigpt chat             a REPL (see run_chat for what each key does)
    minigpt.generate_response("Hi")    one reply from Python or a notebook
    Chatbot.load(path).reply("Hi")     a conversation you hold on to

Characters the tokenizer does not know (an emoji, a rare Chinese character) are
dropped, with a one-line note; a line longer than the model's context is cropped
to its last characters, with a note. Notes go to stderr, replies to stdout.
"""
from __future__ import annotations

import locale
import os
import sys

import numpy as np

from . import language
from .generate import check_sampling_args, check_slide, make_rng, stream
from .blas import one_blas_thread
from .tokenizer import BOT, END, SPECIAL_TOKENS, USER

DEFAULT_CHECKPOINT = os.path.join("out", "chat", "ckpt.npz")
TRAIN_HINT = "train one first with: make train   (or: python -m minigpt train)"


def default_checkpoint() -> str:
    """out/chat/ckpt.npz in the current directory, else in the minigpt checkout
    (so a notebook in notebooks/ finds the model `make train` wrote)."""
    here = os.path.abspath(DEFAULT_CHECKPOINT)
    repo = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        DEFAULT_CHECKPOINT)
    return here if os.path.exists(here) or not os.path.exists(repo) else repo


class Chatbot:
    """A model, its tokenizer and the conversation so far (token ids).

    Decoding is greedy by default: the most likely character every time, so the
    same line always gets the same reply (and the replies are the ones the word
    validity figure measured). Pass greedy=False with temperature / top_k / top_p
    to sample instead; slide is how the context moves in a long reply (generate.py).
    """

    def __init__(self, model, tokenizer, *, max_new_tokens=256, greedy=True,
                 temperature=1.0, top_k=None, top_p=None, seed=None, slide=None, lang="en"):
        check_sampling_args(max_new_tokens, temperature, top_k, top_p, greedy)
        check_slide(slide, model.config.block_size)
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens = max_new_tokens
        self.sampling = dict(greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p,
                             slide=slide)
        self.rng = None if greedy else make_rng(seed)
        self.history = np.zeros(0, dtype=np.int64)   # the conversation, <= block_size ids
        self.notes = []                              # notes about the last line read
        self.lang = chat_language(lang)              # "en" or "zh": of notes and the REPL
        self.text = MESSAGES[self.lang]

    @classmethod
    def load(cls, path=None, **kwargs) -> "Chatbot":
        """Load a checkpoint (default: default_checkpoint()); kwargs go to Chatbot()."""
        from .checkpoint import CheckpointNotFoundError
        from .run_state import load_model   # the format of what train() saves
        path = path or default_checkpoint()
        try:
            model, tokenizer, _ = load_model(path)
        except CheckpointNotFoundError as e:
            raise CheckpointNotFoundError(f"{e}\n{TRAIN_HINT}") from None
        return cls(model, tokenizer, **kwargs)

    def reset(self):
        """Forget the conversation."""
        self.history = np.zeros(0, dtype=np.int64)

    def prompt(self, text: str) -> np.ndarray:
        """The conversation plus the user's turn, ready for the model: (n,) ids.

        Sets self.notes: unknown characters dropped, an over-long line cropped.
        """
        tok, block = self.tokenizer, self.model.config.block_size
        self.notes = []
        # allow_special=False: typing "<|end|>" is text, not a marker.
        said = tok.encode(text, allow_special=False)
        if tok.last_dropped:
            n, shown = tok.dropped_summary()
            self.notes.append(self.text["dropped"].format(n=n, s="s" if n != 1 else "",
                                                          shown=shown))
        room = block - 3                        # <|user|> ... <|end|><|bot|>
        if len(said) > room:
            said = said[-room:]
            self.notes.append(self.text["cropped"].format(room=room))
        turn = np.concatenate([[tok.stoi[USER]], said, [tok.stoi[END], tok.stoi[BOT]]])
        return np.concatenate([self.history, turn]).astype(np.int64)[-block:]

    def stream_reply(self, text: str):
        """An iterator over the reply to `text`, piece by piece (one character each).

        The prompt is built right away (so self.notes is ready when this returns);
        the reply is generated as you iterate. The turn joins the conversation only
        once the reply is complete, so a reply interrupted part-way (Ctrl-C, or the
        caller stopping early) leaves the conversation as it was.
        """
        return self._reply_pieces(self.prompt(text))

    def _reply_pieces(self, ids):
        reply = []
        special = {self.tokenizer.stoi[s] for s in SPECIAL_TOKENS}
        for next_ids in stream(self.model, ids[None, :], self.max_new_tokens, rng=self.rng,
                               **self.sampling):
            t = int(next_ids[0])
            if t in special:             # <|end|> ends the reply (any marker would)
                break
            reply.append(t)
            yield self.tokenizer.decode([t])
        end = self.tokenizer.stoi[END]
        block = self.model.config.block_size
        self.history = np.concatenate([ids, reply, [end]]).astype(np.int64)[-block:]

    def reply(self, text: str) -> str:
        """The whole reply to `text`, as one string."""
        with one_blas_thread():          # once for the reply, not per character
            return "".join(self.stream_reply(text))


# ----------------------------------------------------------------------------- Python API
_default_bot = None


def generate_response(text: str, checkpoint=None) -> str:
    """Reply to one line with the trained chat model (greedy; no memory between calls).

    >>> import minigpt
    >>> minigpt.generate_response("Hello")        # after `make train`  # doctest: +SKIP
    'Hi'

    The model is loaded on the first call (from `checkpoint`, default
    out/chat/ckpt.npz) and kept for the next ones. For a conversation that
    remembers earlier lines, use Chatbot.load().reply(...).
    """
    global _default_bot
    path = os.path.abspath(checkpoint or default_checkpoint())
    if _default_bot is None or _default_bot[0] != path:
        _default_bot = (path, Chatbot.load(path))
    bot = _default_bot[1]
    bot.reset()
    return bot.reply(text)


# ----------------------------------------------------------------------------- REPL
EOF_KEY = {"en": "Ctrl-Z then Enter" if os.name == "nt" else "Ctrl-D",
           "zh": "Ctrl-Z 后回车" if os.name == "nt" else "Ctrl-D"}
MESSAGES = {     # what the chat says, in English and in Chinese (python -m minigpt chat --lang)
    "en": {
        "banner": "minigpt chat: type a line and press Enter. /help lists the commands; "
                  f"Ctrl-C stops a reply; {EOF_KEY['en']} (or /quit) leaves.",
        "commands": {"/help": "list these commands",
                     "/reset": "forget the conversation (the model sees only what follows)",
                     "/quit": f"leave (also /exit, or {EOF_KEY['en']})"},
        "help_head": "commands:", "help_tail": "anything else is sent to the model as your line",
        "forgotten": "(conversation forgotten)",
        "unknown": "unknown command {command}; /help lists the commands",
        "interrupted": "(reply interrupted)",
        "dropped": "note: dropped {n} character{s} not in the vocabulary: {shown}",
        "cropped": "note: the line is longer than the model's context; only its last {room} "
                   "characters are used",
        "not_found": "checkpoint not found: {path}\n" + TRAIN_HINT,
    },
    "zh": {
        "banner": "minigpt 对话：输入一行文字后按回车。/help 列出命令；Ctrl-C 停止当前回复；"
                  f"{EOF_KEY['zh']}（或 /quit）退出。",
        "commands": {"/help": "列出这些命令",
                     "/reset": "忘掉前面的对话（模型只看到此后的内容）",
                     "/quit": f"退出（也可以用 /exit 或 {EOF_KEY['zh']}）"},
        "help_head": "命令：", "help_tail": "其他输入都会作为你说的话发给模型",
        "forgotten": "（已忘掉前面的对话）",
        "unknown": "没有 {command} 这个命令；/help 列出所有命令",
        "interrupted": "（回复已中断）",
        "dropped": "提示：词表里没有的 {n} 个字符被略去了：{shown}",
        "cropped": "提示：这一行比模型的上下文长，只用了最后 {room} 个字符",
        "not_found": "找不到检查点文件：{path}\n请先训练一个：make train（或 python -m minigpt "
                     "train）",
    },
}


def chat_language(lang=None, environ=None) -> str:
    """"en" or "zh", in this order: `lang` if given (--lang); MINIGPT_LANG if set (as
    minigpt.language reads it, the variable the notebooks and `train` follow); else
    Chinese when the locale is (LC_ALL, LC_MESSAGES or LANG starting with "zh", or a
    Windows locale named Chinese)."""
    if lang is not None:
        if lang not in MESSAGES:
            raise ValueError(f"--lang must be one of {sorted(MESSAGES)}, got {lang!r}")
        return lang
    environ = os.environ if environ is None else environ
    chosen = language.chosen_language(environ)
    if chosen:
        return chosen
    names = [environ.get(k, "") for k in ("LC_ALL", "LC_MESSAGES", "LANG")]
    if os.name == "nt" and not any(names):
        names = [locale.getlocale()[0] or ""]
    name = next((n for n in names if n), "")
    return "zh" if name.lower().startswith(("zh", "chinese")) else "en"


def help_text(lang="en") -> str:
    text = MESSAGES[lang]
    return text["help_head"] + "\n" + "\n".join(
        f"  {name:<7} {what}" for name, what in text["commands"].items()) + "\n" + text["help_tail"]


def run_chat(bot: Chatbot, stdin=None, stdout=None, stderr=None, interactive=None) -> int:
    """The chat loop; returns the exit status (0).

    interactive (default: stdin and stdout are terminals): a banner, a "you> " prompt
    and the reply shown as it is written.
    Otherwise (piped): each input line gets exactly one output line, its reply
    (newlines inside a reply are printed as spaces), so it can be scripted.
    Either way: an empty line is skipped, EOF ends with status 0, Ctrl-C during a
    reply abandons it and reads the next line, Ctrl-C while waiting for a line quits.
    Interactive only (piped lines all go to the model): the commands of MESSAGES,
    /help listing them, and any other one-word line starting with "/" is an unknown
    command. The banner, notes and messages are in the bot's language (bot.lang).
    """
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    if interactive is None:
        interactive = stdin.isatty() and stdout.isatty()
    lang = getattr(bot, "lang", "en")                    # the bot's language
    text_of = MESSAGES[lang]
    if interactive:
        print(text_of["banner"], file=stdout, flush=True)
    while True:
        try:
            if interactive:
                line = input("you> ")
            else:
                line = stdin.readline()
                if line == "":                  # EOF
                    return 0
        except EOFError:                        # Ctrl-D at the prompt
            print(file=stdout)
            return 0
        except KeyboardInterrupt:               # Ctrl-C at the prompt
            print(file=stdout)
            return 0
        text = line.strip()
        if not text:
            continue
        if interactive and text in ("/quit", "/exit"):
            return 0
        if interactive and text == "/reset":
            bot.reset()
            print(text_of["forgotten"], file=stdout, flush=True)
            continue
        if interactive and text == "/help":
            print(help_text(lang), file=stdout, flush=True)
            continue
        if interactive and text.startswith("/") and " " not in text:
            print(text_of["unknown"].format(command=text), file=stdout, flush=True)
            continue
        pieces = bot.stream_reply(text)
        for note in bot.notes:
            print(note, file=stderr, flush=True)
        try:
            if interactive:
                stdout.write("bot> ")
            for piece in pieces:
                stdout.write(piece if interactive else " " if piece in ("\r", "\n") else piece)
                stdout.flush()
            stdout.write("\n")
            stdout.flush()
        except KeyboardInterrupt:
            pieces.close()
            stdout.write("\n")
            print(text_of["interrupted"], file=stderr, flush=True)


def run_sample(model, tokenizer, prompt=USER, max_new_tokens=500, stdout=None, **sampling):
    """Free-running text: print the prompt, then the model's continuation as it comes.

    Markers are printed as they are (<|user|>, <|bot|>, <|end|>): this shows the raw
    stream the model learned, conversations and all.
    """
    stdout = stdout or sys.stdout
    ids = tokenizer.encode(prompt)
    if tokenizer.last_dropped:
        print(tokenizer.unknown_note(), file=sys.stderr)
    if ids.size == 0:
        raise ValueError("the prompt is empty (after dropping unknown characters)")
    stdout.write(tokenizer.decode(ids))
    for next_ids in stream(model, ids[None, :], max_new_tokens, **sampling):
        stdout.write(tokenizer.decode(next_ids))
        stdout.flush()
    stdout.write("\n")
    stdout.flush()
    return 0
