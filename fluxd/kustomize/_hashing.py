"""The content hash kustomize appends to generated ConfigMap and Secret names.

``<name>-<hash>`` makes every content change a new object, so Deployments that mount it
roll. The suffix must be exactly kustomize's or a fluxd build would rename objects that
``kubectl kustomize`` leaves alone. The recipe, as verified against kustomize v5.7:

1. Build a small JSON object: ``kind``, ``name``, ``data`` (ConfigMap and Secret),
   ``binaryData`` (ConfigMap, only when it is a map), ``type`` and ``stringData``
   (Secret, the latter only when it is a map). Absent scalar fields encode as ``""``.
   ``name`` is always ``""``: kustomize looks it up with the single key
   ``"metadata/name"``, which never exists, so neither the generator's name nor any
   prefix or suffix changes the hash.
2. Serialise it the way Go's ``encoding/json`` does: keys sorted, no spaces, non-ASCII
   text kept as UTF-8, ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\uXXXX``.
3. SHA-256, hex, first ten characters, with ``0 1 3 a e`` mapped to ``g h k m t`` (so
   the suffix never reads as a number or contains a vowel that spells words).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["content_hash"]

# kubectl's "encode" step: no digits a YAML parser could take for a number, fewer words.
_SAFE = str.maketrans("013ae", "ghkmt")
# Go's encoding/json escapes these even when it writes UTF-8 verbatim.
_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def content_hash(obj: Mapping[str, Any]) -> str:
    """The 10-character name suffix kustomize gives ``obj`` (a ConfigMap or Secret)."""
    kind = obj.get("kind")
    encoded: dict[str, Any] = {"kind": kind, "name": "", "data": _value(obj.get("data"))}
    if kind == "ConfigMap":
        if isinstance(obj.get("binaryData"), Mapping):
            encoded["binaryData"] = obj["binaryData"]
    elif kind == "Secret":
        encoded["type"] = _value(obj.get("type"))
        if isinstance(obj.get("stringData"), Mapping):
            encoded["stringData"] = obj["stringData"]
    else:
        raise ValueError(f"only ConfigMaps and Secrets get a content hash, not a {kind}")
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(text.translate(_GO_ESCAPES).encode("utf-8")).hexdigest()
    return digest[:10].translate(_SAFE)


def _value(value: Any) -> Any:
    """A missing or null field encodes as the empty string, as kustomize's lookup does."""
    return "" if value is None else value
