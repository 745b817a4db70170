"""The API's request-body parser (its own module: DRF's settings import it while `lib.api` still loads)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, parsers

from lib.jsonutil import loads_bounded


class JSONObjectParser(parsers.JSONParser):
    """JSON request bodies: nesting bounded (`[` x 2000 is a 400 `malformed_request`, not a
    RecursionError) and the top level an object, else a 400 `invalid`: every endpoint takes an object, and
    `[]`, `null`, `0` or `false` must not read as "no fields given" (`[]` used to cancel)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            data = loads_bounded(stream.read().decode(encoding))
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError and JSONTooDeep are ValueErrors
            raise exceptions.ParseError(f"Malformed JSON: {exc}") from exc
        if not isinstance(data, dict):
            kind = "null" if data is None else type(data).__name__
            # 400 `invalid`, as the API answered for `[1, 2]` before: well-formed JSON of the wrong shape
            raise exceptions.ValidationError(
                {"non_field_errors": [f"The request body must be a JSON object, not {kind}."]}
            )
        return data
