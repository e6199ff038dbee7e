"""CEL expressions over Kubernetes objects, as Flux evaluates them.

Flux's ``healthCheckExprs`` and ``dependsOn[].readyExpr`` are CEL predicates over one
object's top-level fields (``metadata``, ``spec``, ``status``...); a Receiver's filters
and ``oidcProviders`` expressions are evaluated over named variables (``res``, ``req``,
``claims``, ``vars``), and Flux's compiler refuses a name it was not told about; a
Provider's ``commitStatusExpr`` gives a string from ``event``, ``alert`` and
``provider``, with the string functions Flux's environment adds (:func:`compile_string`). The
``common-expression-language`` package is imported on first use, so a daemon whose
objects carry no expressions never pays for it. A leaf library: it imports nothing
else of fluxd.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

__all__ = [
    "Expression",
    "Predicate",
    "compile_expression",
    "compile_predicate",
    "compile_string",
]

#: A compiled expression: true, false, or an exception when it cannot be evaluated.
Predicate = Callable[[Mapping[str, Any]], bool]
#: A compiled expression giving any value, or an exception when it cannot be evaluated.
Expression = Callable[[Mapping[str, Any]], Any]

#: The macros that bind a name of their own (``list.all(x, x > 0)``).
_BINDING_MACRO = re.compile(
    r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)


def _program(expression: str, variables: Collection[str] | None) -> Any:
    try:
        # Imported by name: the package is needed only by objects with expressions.
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
    if variables is not None:
        bound = set(_BINDING_MACRO.findall(expression))
        undeclared = sorted(set(program.variables()) - set(variables) - bound)
        if undeclared:
            known = ", ".join(sorted(variables))
            raise ValueError(
                f"invalid CEL expression {expression!r}: undeclared reference to "
                f"{', '.join(repr(name) for name in undeclared)} (known variables: {known})"
            )
    return program


def _with_functions(program: Any) -> Expression:
    cel = importlib.import_module("cel")
    functions = _string_functions(cel)

    def evaluate(scope: Mapping[str, Any]) -> Any:
        return program.execute(cel.Context(variables=dict(scope), functions=functions))

    return evaluate


def compile_expression(expression: str, *, variables: Collection[str]) -> Expression:
    """Compile a CEL expression over the named ``variables``, giving any value, with the
    string functions below; raises :class:`ValueError` naming it when it does not parse
    or names another variable."""
    return _with_functions(_program(expression, variables))


def compile_predicate(expression: str, *, variables: Collection[str] | None = None) -> Predicate:
    """Compile a boolean CEL expression over an object's top-level fields (``metadata``,
    ``spec``, ``status``...), or over the named ``variables`` (with the string functions
    below) when given; raises :class:`ValueError` naming it when it does not parse (or
    names another variable)."""
    program = _program(expression, variables)
    run: Expression = program.execute if variables is None else _with_functions(program)

    def evaluate(obj: Mapping[str, Any]) -> bool:
        result = run(dict(obj))
        if not isinstance(result, bool):
            raise TypeError(f"{expression!r} gave {type(result).__name__}, not a boolean")
        return result

    return evaluate


def _split(text: str, separator: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    return text.split(separator, limit - 1 if limit > 0 else -1)


def _string_functions(cel: Any) -> dict[str, Callable[..., Any]]:
    """cel-go's ``ext.Strings`` functions string expressions use most, and the optional
    library's list ``first``/``last``: Flux's environment has them, the package not."""

    def pick(items: list[Any], index: int) -> Any:
        return cel.OptionalValue.of(items[index]) if items else cel.OptionalValue.none()

    return {
        "lowerAscii": lambda text: text.lower(),
        "upperAscii": lambda text: text.upper(),
        "trim": lambda text: text.strip(),
        "split": _split,
        "join": lambda items, separator="": separator.join(items),
        "replace": lambda text, old, new, limit=-1: text.replace(old, new, limit),
        "substring": lambda text, start, end=None: text[start:end],
        "indexOf": lambda text, part: text.find(part),
        "lastIndexOf": lambda text, part: text.rfind(part),
        "first": lambda items: pick(items, 0),
        "last": lambda items: pick(items, -1),
    }


def compile_string(
    expression: str, *, variables: Collection[str]
) -> Callable[[Mapping[str, Any]], str]:
    """Compile a CEL expression over the named ``variables`` that must give a string
    (Flux's ``commitStatusExpr``), with the string functions above; raises
    :class:`ValueError` naming it when it does not parse or names another variable.
    The compiled function raises :class:`ValueError` when evaluating fails (a missing
    key, a function given the wrong type) or gives something else than a string."""
    run = compile_expression(expression, variables=variables)

    def evaluate(scope: Mapping[str, Any]) -> str:
        try:
            result = run(scope)
        except (KeyError, RuntimeError, TypeError, ValueError) as error:
            detail = f"no such key: {error.args[0]}" if isinstance(error, KeyError) else error
            raise ValueError(f"{expression!r} cannot be evaluated: {detail}") from error
        if not isinstance(result, str):
            raise ValueError(f"{expression!r} gave {type(result).__name__}, not a string")
        return result

    return evaluate
