"""Exact byte slices of the records in a platform's JSON answer.

Connectors publish each record exactly as the platform sent it: re-serialising a parsed
object would change key order, spacing and number formatting. Shared by every client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


def _skip(text: str, i: int) -> int:
    m = _WS.match(text, i)
    return m.end() if m else i


def _member(text: str, i: int, name: str) -> int | None:
    """Index of the value of ``name`` in the object starting at ``text[i]``; None if absent."""
    if text[i] != "{":
        return None
    i = _skip(text, i + 1)
    if text[i] == "}":
        return None
    while True:
        key, i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if text[i] != ":":
            raise ValueError(f"expected ':' at {i}")
        i = _skip(text, i + 1)
        if key == name:
            return i
        _, i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if text[i] == ",":
            i = _skip(text, i + 1)
        elif text[i] == "}":
            return None
        else:
            raise ValueError(f"expected ',' or '}}' at {i}")


def array_items(text: str, path: Sequence[str]) -> list[tuple[str, Any]]:
    """``(exact text, parsed value)`` of each element of the array at ``path``; [] if absent."""
    i = _skip(text, 0)
    for name in path:
        found = _member(text, i, name)
        if found is None:
            return []
        i = found
    if text[i] != "[":
        raise ValueError(f"{'.'.join(path)} is not an array")
    items: list[tuple[str, Any]] = []
    i = _skip(text, i + 1)
    if text[i] == "]":
        return items
    while True:
        value, end = _DECODER.raw_decode(text, i)
        items.append((text[i:end], value))
        i = _skip(text, end)
        if text[i] == ",":
            i = _skip(text, i + 1)
        elif text[i] == "]":
            return items
        else:
            raise ValueError(f"expected ',' or ']' at {i}")


# --- the client ----------------------------------------------------------------------------
