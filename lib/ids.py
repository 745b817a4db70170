"""Database ids and other whole numbers from outside (URLs, query strings, form fields, headers).

`str.isdigit()` is no guard: it accepts '²' and '٣', which `int()` refuses, and `int()` refuses more than
4,300 digits; a value past 2^63 - 1 reaches the database as an error ("Python int too large to convert to
SQLite INTEGER"). Everything here answers None (or no URL match: a 404) instead.
"""

from __future__ import annotations

from django.urls import register_converter

MAX_ID = 2**63 - 1  # the largest value an id column holds (SQLite INTEGER, PostgreSQL bigint)


def parse_whole(text: str, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """ASCII digits within minimum..maximum as an int; anything else None."""
    text = text.strip()
    if not text or len(text) > 19 or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


def parse_id(text: str) -> int | None:
    """A positive database id, or None."""
    return parse_whole(text, minimum=1)


class IdConverter:
    """`<id:pk>` in URL patterns: an id past the column's range does not match, so the URL is a 404."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")
