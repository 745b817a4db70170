from __future__ import annotations

import pytest

from lib.jsonutil import MAX_DEPTH, JSONTooDeep, depth_exceeds, loads_bounded


def test_ordinary_documents_load_unchanged():
    assert loads_bounded('{"a": [1, {"b": null}], "c": "x"}') == {"a": [1, {"b": None}], "c": "x"}
    assert loads_bounded(b"[]") == []


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900, 2000, 100_000])
def test_documents_nested_past_the_limit_are_a_value_error_never_a_recursion_error(depth):
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        with pytest.raises(JSONTooDeep):
            loads_bounded(text)
    with pytest.raises(ValueError):  # unclosed as well: malformed or too deep, never a RecursionError
        loads_bounded("[" * depth)


def test_exactly_the_limit_is_accepted():
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert depth_exceeds(loads_bounded(text), MAX_DEPTH) is False
    assert depth_exceeds(loads_bounded(text), MAX_DEPTH - 1) is True


def test_a_truncated_document_is_still_a_plain_value_error():
    with pytest.raises(ValueError):
        loads_bounded('{"a": [1, 2')
