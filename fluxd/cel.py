"""CEL expressions over Kubernetes objects, as Flux evaluates them.

Flux's ``healthCheckExprs`` and ``dependsOn[].readyExpr`` are CEL predicates over one
object's top-level fields (``metadata``, ``spec``, ``status``...). The
``common-expression-language`` package is imported on first use, so a daemon whose
objects carry no expressions never pays for it. A leaf library: it imports nothing
else of fluxd.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Predicate", "compile_predicate"]

#: A compiled expression: true, false, or an exception when it cannot be evaluated.
Predicate = Callable[[Mapping[str, Any]], bool]


def compile_predicate(expression: str) -> Predicate:
    """Compile a CEL expression over an object's top-level fields (``metadata``,
    ``spec``, ``status``...); raises :class:`ValueError` naming it when it does not parse."""
    try:
        # Imported by name: the package is needed only by Kustomizations with expressions.
        cel = importlib.import_module("cel")
    except ImportError as error:
        raise ValueError(
            f"CEL expression {expression!r} cannot be evaluated: the "
            "'common-expression-language' package is not installed"
        ) from error
    try:
        program = cel.compile(expression)
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"invalid CEL expression {expression!r}: {error}") from error

    def evaluate(obj: Mapping[str, Any]) -> bool:
        result = program.execute(dict(obj))
        if not isinstance(result, bool):
            raise TypeError(f"{expression!r} gave {type(result).__name__}, not a boolean")
        return result

    return evaluate
