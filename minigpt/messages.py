"""Error messages that list names (of parameters, arrays, state keys) or quote values.

One wrong dict can hold a whole model's worth of names; a message shows a few of
them and counts the rest, so the problem still fits on the screen.
"""
from __future__ import annotations


def few_names(names: list, k: int = 8) -> str:
    """'a', 'b', ... at most k names, then how many more; "none" for an empty list.

    >>> few_names(["wte", "wpe"])
    "'wte', 'wpe'"
    >>> few_names([f"p{i}" for i in range(10)], k=3)
    "'p0', 'p1', 'p2' and 7 more"
    >>> few_names([])
    'none'
    """
    if not names:
        return "none"
    shown = ", ".join(shorten(repr(n)) for n in names[:k])
    return shown + (f" and {len(names) - k} more" if len(names) > k else "")


def shorten(text: str, limit: int = 80) -> str:
    """text, or its first limit characters and '...' (a hostile file's names and values
    can be megabytes long; a message stays one line)."""
    return text if len(text) <= limit else text[:limit] + "..."
