"""minigpt: a from-scratch GPT in NumPy, with every gradient derived by hand.

The public names:
    GPTConfig, GPT           the model (minigpt.config, minigpt.model)
    gradcheck                check any forward/backward pair (minigpt.gradcheck)
    CharTokenizer            characters <-> token ids (minigpt.tokenizer)
    generate_response(text)  talk to the trained chat model (minigpt.chat)
"""
from .config import GPTConfig
from .gradcheck import gradcheck, gradcheck_model
from .model import GPT
from .tokenizer import CharTokenizer


def generate_response(text, **kwargs):
    """Reply to `text` with the trained chat model (see minigpt.chat.generate_response)."""
    from .chat import generate_response as _generate_response   # loads a checkpoint lazily
    return _generate_response(text, **kwargs)


__all__ = ["GPT", "GPTConfig", "gradcheck", "gradcheck_model", "CharTokenizer",
           "generate_response"]
