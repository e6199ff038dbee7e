"""``dependsOn`` readiness shared by the kinds that have it (Kustomization, HelmRelease).

Flux gives every dependency the same two answers: "not ready yet", looked at again at
the ``--requeue-dependency`` pace (30 s; a dependency turning Ready wakes its dependents
sooner), and, for a ``readyExpr`` that does not compile, a terminal configuration error
that stalls the object until its spec changes. A ``readyExpr`` is a CEL predicate over
two variables: ``self``, the object that depends, and ``dep``, the dependency as read
from the API server; another name does not compile, as Flux's compiler refuses it. An
expression that fails while evaluating (a field the dependency
has no value for yet) means "not yet", not an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fluxd import cel
from fluxd.runtime import conditions
from fluxd.runtime.errors import ReconcileError

__all__ = [
    "DEPENDENCY_RETRY",
    "TERMINAL",
    "check_dependency",
    "check_ready_expr",
    "not_ready",
]

#: Flux's words for an error that retrying cannot fix (a bad expression in the spec).
TERMINAL = "Reconciliation failed terminally due to configuration error"
#: Flux's ``--requeue-dependency``: how soon to look again at an unready dependency.
DEPENDENCY_RETRY = 30.0


def not_ready(message: str) -> ReconcileError:
    """A dependency is not ready: ``DependencyNotReady``, looked at again in 30 s."""
    return ReconcileError("DependencyNotReady", message, retry_after=DEPENDENCY_RETRY)


def check_ready_expr(
    expression: str, *, obj: Mapping[str, Any], dep: Mapping[str, Any], where: str
) -> None:
    """Raise unless ``expression`` holds for ``self`` = ``obj`` and ``dep`` = ``dep``.

    ``where`` names the dependency in messages (``'namespace/name'``). Raises a stalling
    ``InvalidCELExpression`` error when the expression does not compile, and
    :func:`not_ready` when it is false or cannot be evaluated yet.
    """
    try:
        ready = cel.compile_predicate(expression, variables=("self", "dep"))
    except ValueError as error:
        raise ReconcileError(
            "InvalidCELExpression",
            f"{TERMINAL}: readyExpr of dependency {where}: {error}",
            stalled=True,
        ) from error
    try:
        met = ready({"self": obj, "dep": dep})
    except Exception as error:  # a user's expression: any failure is "not yet"
        raise not_ready(f"dependency {where}: readyExpr failed: {error}") from error
    if not met:
        raise not_ready(f"dependency {where} is not ready according to readyExpr")


def check_dependency(
    obj: Mapping[str, Any], dep: Mapping[str, Any] | None, ready_expr: str | None, where: str
) -> bool:
    """Raise unless dependency ``dep`` (``None``: not found) is ready for ``obj``: its
    ``readyExpr`` decides when it has one, else it must be Ready at its latest generation.
    Returns whether a ``readyExpr`` decided, so the caller skips checks of its own kind."""
    if dep is None:
        raise not_ready(f"dependency {where} not found")
    if ready_expr:
        check_ready_expr(ready_expr, obj=obj, dep=dep, where=where)
        return True
    status = dep.get("status") or {}
    generation = (dep.get("metadata") or {}).get("generation")
    if not conditions.is_ready(status) or status.get("observedGeneration") != generation:
        raise not_ready(f"dependency {where} is not ready")
    return False
