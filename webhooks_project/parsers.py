"""The API's JSON parser."""

import codecs
from typing import Any

from rest_framework import exceptions, parsers
from rest_framework.utils import json


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """object_pairs_hook: an object naming a key twice is refused. Parsers
    disagree on which copy wins (first, last, error), so a proxy or an audit
    log could read another value than the one this service acts on."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (its charset check and strict constants kept), except
    that:

    - absurdly nested JSON (`[[[[…`) is a 400 like any other malformed body:
      json raises RecursionError for it, which DRF does not catch and would
      become a 500;
    - an object with a duplicate key is a 400 (see _reject_duplicate_keys).
    """

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: dict[str, Any] | None = None,
    ) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        try:
            return json.load(
                codecs.getreader(encoding)(stream),
                parse_constant=json.strict_constant if self.strict else None,
                object_pairs_hook=_reject_duplicate_keys,
            )
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply")
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}")
