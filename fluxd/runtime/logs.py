"""Structured JSON logs, one line per event, bound to the object being reconciled.

Flux's controllers log JSON with ``level``, ``ts``, ``msg`` and the object's identity;
fluxd does the same with structlog so ``flux logs``-style filtering by kind, namespace
and name works with any log pipeline (the kind is written as ``kind`` and again as
``controllerKind``, the key the ``flux`` CLI reads). Secrets are never logged: values
under keys that look like credentials are masked before rendering, whatever a caller
passes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["configure"]

_SECRET_WORDS = ("password", "token", "secret", "identity", "passphrase", "key", "credential")


def _mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for name in list(event):
        if any(word in name.lower() for word in _SECRET_WORDS) and name != "event":
            event[name] = "***"
    return event


def _controller_kind(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Repeat ``kind`` as ``controllerKind``, the key ``flux logs --kind`` filters on."""
    if "kind" in event:
        event.setdefault("controllerKind", event["kind"])
    return event


def configure(level: str = "info", *, json: bool = True) -> None:
    """Set up structlog (and the stdlib loggers of our dependencies) once per process."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use debug, info, warning or error")
    logging.basicConfig(
        stream=sys.stderr, level=max(numeric, logging.WARNING), format="%(message)s"
    )
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", key="ts"),
            _mask_secrets,
            _controller_kind,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("msg"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
