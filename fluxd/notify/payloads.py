"""Registry webhook bodies checked the way Flux's receiver decodes them.

Flux reads the image registries' push notifications (``quay``, ``dockerhub``, ``acr``,
``nexus``) by decoding the body into a small Go struct with ``encoding/json``; a body that
does not decode is refused, one that does is accepted whatever else it carries. The
same rules are kept here so that fluxd refuses exactly the bodies Flux refuses:

- the body must be one JSON value (``null`` or an object for a struct); with a streaming
  decode (``quay``, ``dockerhub``, ``acr``) whatever follows that first value is not read,
  with a whole-body decode (``nexus``) it is an error;
- keys are matched to the struct's fields without regard to case, as Go does, and a
  matched key must hold the field's JSON type (or ``null``); unknown keys are ignored;
- ``NaN`` and ``Infinity``, which Python's parser would take, are not JSON.

:func:`decode` returns the decoded fields the receiver logs (the repository and tag).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["ACR", "DOCKERHUB", "NEXUS", "QUAY", "PayloadError", "Shape", "decode"]

#: A Go struct as its JSON decoder sees it: field name to ``str``, ``list`` (of strings)
#: or a nested shape.
Shape = Mapping[str, Any]

QUAY: Shape = {"docker_url": str, "updated_tags": list}
DOCKERHUB: Shape = {"push_data": {"tag": str}, "repository": {"repo_url": str}}
ACR: Shape = {"action": str, "target": {"repository": str, "tag": str}}
NEXUS: Shape = {"action": str, "repositoryName": str}

_JSON_NAMES = {dict: "object", list: "array", str: "string", bool: "bool", type(None): "null"}


class PayloadError(ValueError):
    """The body does not decode into the payload Flux expects; the message says why."""


class _Pairs(list[tuple[str, Any]]):
    """A JSON object with every key kept, duplicates too, as Go's decoder visits them."""


def _not_json(constant: str) -> None:
    raise PayloadError(f"invalid character {constant[0]!r} looking for beginning of value")


def _json_type(value: Any) -> str:
    if isinstance(value, _Pairs):
        return "object"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return _JSON_NAMES.get(type(value), "value")


def _check(value: Any, shape: Shape | type, where: str) -> None:
    if value is None:
        return
    if isinstance(shape, Mapping):
        if not isinstance(value, _Pairs):
            raise PayloadError(f"cannot unmarshal {_json_type(value)} into {where or 'payload'}")
        fields = {name.lower(): (name, inner) for name, inner in shape.items()}
        for key, item in value:
            matched = fields.get(key.lower())
            if matched is not None:
                name, inner = matched
                _check(item, inner, f"{where}.{name}" if where else name)
        return
    if shape is list:
        if not isinstance(value, list):
            raise PayloadError(f"cannot unmarshal {_json_type(value)} into {where} of []string")
        for index, item in enumerate(value):
            _check(item, str, f"{where}[{index}]")
        return
    if not isinstance(value, shape):
        raise PayloadError(f"cannot unmarshal {_json_type(value)} into {where} of type string")


def _fields(value: Any, shape: Shape, prefix: str = "") -> dict[str, str]:
    found: dict[str, str] = {}
    if not isinstance(value, _Pairs):
        return found
    names = {name.lower(): (name, inner) for name, inner in shape.items()}
    for key, item in value:
        matched = names.get(key.lower())
        if matched is None:
            continue
        name, inner = matched
        if isinstance(inner, Mapping):
            found.update(_fields(item, inner, f"{prefix}{name}."))
        elif isinstance(item, str):
            found[prefix + name] = item
    return found


def decode(body: bytes, shape: Shape, *, whole: bool) -> dict[str, str]:
    """Decode ``body`` into ``shape`` as Go does (``whole``: ``json.Unmarshal``, else one
    ``Decoder.Decode``); the string fields found, by dotted name. :class:`PayloadError`
    when Go's decoder would fail."""
    text = body.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise PayloadError("unexpected end of JSON input" if whole else "EOF")
    decoder = json.JSONDecoder(object_pairs_hook=_Pairs, parse_constant=_not_json)
    try:
        value, end = decoder.raw_decode(text, start)
    except json.JSONDecodeError as error:
        raise PayloadError(f"invalid JSON: {error.msg} at offset {error.pos}") from error
    except RecursionError as error:
        raise PayloadError("invalid JSON: nested too deeply") from error
    if whole and text[end:].strip(" \t\r\n"):
        raise PayloadError("invalid character after top-level value")
    _check(value, shape, "")
    return _fields(value, shape)
