"""A Provider's ``spec.commitStatusExpr``: the commit status id, computed per event.

Flux evaluates it in its event server for the commit status types, with three
variables: ``event`` (the event as the provider receives it, Alert metadata merged),
``alert`` and ``provider`` (the whole objects), and takes the string it gives as the
status id (GitHub's context, GitLab's name, Bitbucket's key source...) in place of the
default ``<kind>/<name>/<UID prefix>``. An expression that does not compile makes the
Provider unusable (:class:`~fluxd.notify.request.InvalidProvider`, which stalls it);
one that fails for a given event (a metadata key it lacks) fails that delivery only
(:class:`~fluxd.notify.request.UnsendableEvent`), as in Flux.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from fluxd.cel import compile_string
from fluxd.notify.event import Notification
from fluxd.notify.request import InvalidProvider, ProviderSettings, UnsendableEvent

__all__ = ["VARIABLES", "with_commit_status"]

VARIABLES = ("event", "alert", "provider")


@functools.lru_cache(maxsize=64)
def _compiled(expression: str) -> Callable[[Mapping[str, Any]], str]:
    try:
        return compile_string(expression, variables=VARIABLES)
    except ValueError as error:
        raise InvalidProvider(f"invalid spec.commitStatusExpr: {error}") from error


def with_commit_status(
    settings: ProviderSettings,
    event: Notification,
    alert: Mapping[str, Any] | None,
    provider: Mapping[str, Any] | None,
) -> ProviderSettings:
    """``settings`` with the status id its expression gives for ``event`` sent through
    ``alert``; without the objects (the Provider's own check) it is compiled only."""
    if not settings.commit_status_expr:
        return settings
    evaluate = _compiled(settings.commit_status_expr)
    if alert is None or provider is None:
        return settings
    try:
        status = evaluate({"event": event.to_dict(), "alert": alert, "provider": provider})
    except ValueError as error:
        raise UnsendableEvent(
            f"failed to evaluate the spec.commitStatusExpr CEL expression for the event: {error}"
        ) from error
    if not status:
        raise UnsendableEvent("commit status cannot be empty: spec.commitStatusExpr gave ''")
    return replace(settings, commit_status=status)
