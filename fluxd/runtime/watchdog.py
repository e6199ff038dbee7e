"""How long a reconcile may run before the watchdog calls it stuck.

A reconcile that never returns (a hung connection, a health wait that does not honour its
deadline) holds its object's only slot: the object silently stops converging. The
scheduler knows how long each reconcile has been running; this module says how long it
*should* take, from the object itself, so that ``fluxd_reconcile_stuck`` counts the ones
past that bound.

The bound is the object's ``spec.timeout`` where it has one, else Flux's default for the
kind: a Kustomization's timeout defaults to its interval, a HelmRelease's to five
minutes, every other kind's (and any object whose fields cannot be read) to 60 seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fluxd.api import parse_duration

__all__ = ["DEFAULT_TIMEOUT", "reconcile_timeout"]

#: Seconds, for kinds without a timeout of their own (Flux's source fetch default).
DEFAULT_TIMEOUT = 60.0

_KIND_DEFAULTS = {"HelmRelease": 5 * 60.0}


def reconcile_timeout(kind: str, obj: Mapping[str, Any] | None) -> float:
    """Seconds a reconcile of ``obj`` (of ``kind``) may take before it counts as stuck."""
    spec = (obj or {}).get("spec")
    if not isinstance(spec, Mapping):
        spec = {}
    fields = ["timeout", "interval"] if kind == "Kustomization" else ["timeout"]
    for field in fields:
        text = spec.get(field)
        if isinstance(text, str) and text:
            try:
                return parse_duration(text)
            except ValueError:
                continue
    return _KIND_DEFAULTS.get(kind, DEFAULT_TIMEOUT)
