"""A Receiver's ``resourceFilter`` and ``resources[].filter``: which objects a webhook
reconciles.

Each is a boolean CEL expression, as Flux's receiver evaluates it, over:

- ``res``: the object as its metadata view (``apiVersion``, ``kind``, ``metadata``; no
  ``spec`` or ``status``, as Flux reads only the objects' metadata);
- ``req``: the request body decoded as a JSON object when its ``Content-Type`` is
  ``application/json`` (else an empty map);
- ``claims``: for ``generic-oidc`` Receivers only, the verified token's claims.

An object is reconciled when the top-level filter and its entry's filter both hold.
Expressions that do not compile stall the Receiver (:func:`invalid_filters`); a body
that is not a JSON object, when a filter needs it, is :class:`FilterError`, and so is an
expression that fails on one object (a missing key, a non-boolean result): that object
is not reconciled and the request answers 500, as Flux does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fluxd.api import ReceiverSpec
from fluxd.cel import Predicate, compile_predicate

__all__ = ["FilterError", "ResourceFilters", "invalid_filters", "request_document"]

_OIDC = "generic-oidc"


class FilterError(Exception):
    """A filter could not decide; the message says which and why."""


def _variables(spec: ReceiverSpec) -> tuple[str, ...]:
    return ("res", "req", "claims") if spec.type == _OIDC else ("res", "req")


def invalid_filters(spec: ReceiverSpec) -> list[str]:
    """The filters that do not compile, each named by its field and the error."""
    variables = _variables(spec)
    problems = []
    if spec.resource_filter:
        try:
            compile_predicate(spec.resource_filter, variables=variables)
        except ValueError as error:
            problems.append(f"invalid resourceFilter expression: {error}")
    for index, resource in enumerate(spec.resources):
        if not resource.filter:
            continue
        try:
            compile_predicate(resource.filter, variables=variables)
        except ValueError as error:
            problems.append(
                f"invalid filter expression for resources[{index}] (kind={resource.kind!r}, "
                f"name={resource.name!r}): {error}"
            )
    return problems


def _is_json(content_type: str) -> bool:
    for part in content_type.split(","):
        media_type = part.split(";", 1)[0].strip().lower()
        if not media_type:
            return False
        if media_type == "application/json":
            return True
    return False


def request_document(content_type: str, body: bytes) -> dict[str, Any]:
    """``req`` for the filters: the body as a JSON object when it is sent as JSON."""
    if not _is_json(content_type):
        return {}
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FilterError(f"failed to parse request body as JSON: {error}") from error
    if not isinstance(document, dict):
        raise FilterError("failed to parse request body as JSON: not an object")
    return document


def _metadata_view(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "metadata": obj.get("metadata") or {},
    }


class ResourceFilters:
    """The compiled filters of one Receiver, for one request."""

    def __init__(
        self,
        spec: ReceiverSpec,
        *,
        request: Mapping[str, Any],
        claims: Mapping[str, Any] | None = None,
    ) -> None:
        variables = _variables(spec)
        self._scope: dict[str, Any] = {"req": dict(request)}
        if spec.type == _OIDC:
            self._scope["claims"] = dict(claims or {})
        self._top = (
            (spec.resource_filter, compile_predicate(spec.resource_filter, variables=variables))
            if spec.resource_filter
            else None
        )
        self._per_resource: list[tuple[str, Predicate] | None] = [
            (r.filter, compile_predicate(r.filter, variables=variables)) if r.filter else None
            for r in spec.resources
        ]

    def applies_to(self, index: int) -> bool:
        """Whether ``resources[index]`` is filtered at all (then its objects are read)."""
        return self._top is not None or self._per_resource[index] is not None

    def accepts(self, index: int, obj: Mapping[str, Any]) -> bool:
        """Whether the object, found for ``resources[index]``, is to be reconciled."""
        scope = self._scope | {"res": _metadata_view(obj)}
        for named in (self._top, self._per_resource[index]):
            if named is None:
                continue
            expression, predicate = named
            try:
                if not predicate(scope):
                    return False
            except (KeyError, TypeError, ValueError, RuntimeError) as error:
                raise FilterError(
                    f"expression {expression!r} failed: {type(error).__name__} {error}"
                ) from error
        return True
