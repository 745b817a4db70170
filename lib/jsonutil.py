"""JSON from outside (request bodies, platform responses, webhook payloads) with bounded nesting.

CPython's decoder recurses once per level: `[` × 2000 raises RecursionError, which nothing expects (a 500 on
every JSON endpoint, a crashed sync). Real payloads nest a handful of levels; anything past `MAX_DEPTH` is
refused as malformed input, whatever the recursion limit happens to be.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class JSONTooDeep(ValueError):
    """Nested past MAX_DEPTH levels; a ValueError, so callers that handle bad JSON handle this too."""


def loads_bounded(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """json.loads, refusing documents nested deeper than max_depth (ValueError, never RecursionError)."""
    try:
        value = json.loads(data, **kwargs)
    except RecursionError as exc:  # deeper than the interpreter allows: certainly deeper than max_depth
        raise JSONTooDeep(f"JSON nested more than {max_depth} levels deep.") from exc
    if depth_exceeds(value, max_depth):
        raise JSONTooDeep(f"JSON nested more than {max_depth} levels deep.")
    return value


def depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether a decoded JSON value nests deeper than max_depth (iterative: no recursion of its own)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
