"""Go ``time.Duration`` strings, as every Flux ``interval``/``timeout`` field holds them.

``1m``, ``1m0s``, ``1h30m``, ``500ms``, ``1.5h``: a sequence of decimal numbers each with a
unit (ns, us, µs, ms, s, m, h). The CRD schema already rejects malformed values, so a
parse error here means a spec that bypassed validation; it is reported, not guessed at.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["parse_duration"]

_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string; ``ValueError`` naming the text when malformed."""
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")
    if body == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise ValueError(f"invalid duration {text!r}: expected e.g. 30s, 1m, 1h30m")
    return sign * total
