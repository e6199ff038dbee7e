"""Flux post-build variable substitution (``spec.postBuild.substitute`` / ``substituteFrom``).

kustomize-controller substitutes after the build, one object at a time: the object is
printed as YAML, ``${...}`` expressions in the text are expanded with Flux's fork of
drone/envsubst (``github.com/fluxcd/pkg/envsubst``), and the text is parsed back. Working
on text rather than on values is what lets ``replicas: ${REPLICAS}`` become the integer
``3``, and it is also why a value with YAML syntax in it can break an object; both are
Flux behaviours users rely on or work around, so this module keeps them.

The expression language is the fork's, not a shell's:

- only the braced form is an expression: ``$var`` is left alone, ``$${var}`` is the
  escape for a literal ``${var}`` (every ``$$`` outside an expression reads as ``$``);
- ``${var}``, ``${#var}`` (length), ``${var^}`` / ``${var^^}`` / ``${var,}`` / ``${var,,}``
  (case), ``${var:pos}`` / ``${var:pos:len}`` (substring, in bytes as Go counts),
  ``${var#glob}`` / ``##`` / ``%`` / ``%%`` (trim a prefix or suffix; ``*`` matches ``/``),
  ``${var/old/new}`` / ``//`` / ``/#`` / ``/%`` (literal replacement, ``\\/`` escapes
  a slash), and the default forms ``${var:=word}``, ``${var:-word}``, ``${var=word}``
  (plus ``:?`` and ``:+``, which the fork also treats as defaults): the word is used
  when the value is empty, whether unset or set to ``""``;
- ``${var-word}`` is not an expression (a name cannot hold ``-``): it fails as a
  missing closing brace, as it does in Flux;
- an unset variable expands to ``""``; with ``strict`` (Flux's
  ``StrictPostBuildSubstitutions`` feature gate) it is an error unless the expression
  brings its own default;
- an object with no variables at all is left as it is, unless ``always``
  (``spec.postBuild.substituteStrategy: Always``) asks for defaults to be applied anyway.

The substituted text is read back the way Flux's ``YAMLToJSON`` (go-yaml v2) reads it:
fluxd's loader with go-yaml v2's YAML 1.1 booleans (``yaml11_booleans``), so ``${FLAG}``
set to ``on`` or ``yes`` becomes ``true``, while fluxd's loader alone (go-yaml v3, like
kustomize) would keep the text; everything else the two go-yaml versions read alike.
Quoted words stay strings in both (the printer quotes them), so only what a variable
put in plain reads as a boolean.

Variables come from ``substituteFrom`` (in order, a later source overriding an earlier
one) and then ``substitute``, which overrides them all; newlines are removed from every
value, as Flux does. Names must match ``^[_[:alpha:]][_[:alpha:][:digit:]]*$`` (ASCII).
Objects labelled or annotated ``kustomize.toolkit.fluxcd.io/substitute: disabled`` are
returned untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fluxd.yaml import Timestamp, YamlError, dump_documents, load_values

__all__ = [
    "DISABLED_KEY",
    "SubstitutionError",
    "VariableSource",
    "collect_variables",
    "expand",
    "substitute",
]

#: The label or annotation that opts an object out of substitution (value ``disabled``).
DISABLED_KEY = "kustomize.toolkit.fluxcd.io/substitute"

_NAME_RULE = "^[_[:alpha:]][_[:alpha:][:digit:]]*$"
# Go's regexp classes are ASCII-only, so the rule above is exactly this.
_VALID_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")

#: Operators that supply their own fallback, so an unset variable is fine even in strict mode.
_DEFAULT_OPS = frozenset({"=", ":=", ":-", ":?", ":+"})

#: One ``substituteFrom`` entry as the reconciler resolved it: the kind (``ConfigMap`` or
#: ``Secret``, as the API schema allows), its name, its decoded data (``None`` when it does
#: not exist) and ``optional``.
VariableSource = tuple[str, str, Mapping[str, str] | None, bool]


class SubstitutionError(Exception):
    """Post-build substitution failed; the message names the object or source and the cause."""


class _ExpressionError(SubstitutionError):
    """A problem inside one text, before it is attributed to an object."""


# -- variables -------------------------------------------------------------------------------


def collect_variables(
    substitute: Mapping[str, str] | None,
    from_sources: Sequence[VariableSource] = (),
) -> dict[str, str]:
    """The variables of a Kustomization, with Flux's precedence.

    ``from_sources`` are applied in order (later keys override earlier ones), then the
    inline ``substitute`` map overrides everything. A source whose data is ``None`` (it
    was not found) is skipped when optional and an error otherwise.
    """
    variables: dict[str, str] = {}
    for kind, name, data, optional in from_sources:
        if data is None:
            if optional:
                continue
            raise SubstitutionError(
                f"substitute from '{kind}/{name}' error: {kind} not found; create it or "
                "mark the reference optional: true"
            )
        for key, value in data.items():
            variables[key] = value.replace("\n", "")
    for key, value in (substitute or {}).items():
        variables[key] = value.replace("\n", "")
    return variables


# -- the object-level entry point -------------------------------------------------------------


def _object_ref(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = metadata.get("name", "<unnamed>")
    kind = obj.get("kind", "<no kind>")
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def _disabled(obj: Mapping[str, Any]) -> bool:
    metadata = obj.get("metadata") or {}
    for where in ("labels", "annotations"):
        values = metadata.get(where) or {}
        if values.get(DISABLED_KEY) == "disabled":
            return True
    return False


def _plain(value: Any) -> Any:
    """The loaded document as JSON-shaped data (timestamps are strings, as in Go's JSON)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Timestamp):
        return str(value)
    return value


def substitute(
    obj: dict[str, Any],
    variables: Mapping[str, str],
    *,
    strict: bool = False,
    always: bool = False,
) -> dict[str, Any]:
    """``obj`` with its ``${...}`` expressions expanded, as kustomize-controller does it.

    Call it for every built object when the Kustomization has ``spec.postBuild``; the
    object itself is never modified. ``strict`` is the ``StrictPostBuildSubstitutions``
    feature gate; ``always`` is ``spec.postBuild.substituteStrategy: Always``. Without
    variables and without ``always`` Flux leaves the text alone (``${x:=default}`` and
    ``$${x}`` stay as written, and strict mode has nothing to check), and so does this.
    """
    if _disabled(obj):
        return obj
    ref = _object_ref(obj)
    for name in variables:
        if not _VALID_NAME.fullmatch(name):
            raise SubstitutionError(
                f"{ref}: '{name}' var name is invalid, must match '{_NAME_RULE}'; rename it "
                "in postBuild.substitute or in the substituteFrom ConfigMap/Secret"
            )
    if not variables and not always:
        return obj
    text = dump_documents([obj])
    try:
        expanded = expand(text, variables, strict=strict)
    except _ExpressionError as error:
        raise SubstitutionError(f"{ref}: variable substitution failed: {error}") from None
    try:
        documents = load_values(expanded.encode(), source=ref, yaml11_booleans=True)
    except YamlError as error:
        raise SubstitutionError(
            f"{ref}: the object is not valid YAML after substitution ({error}); quote the "
            "field or check the variable values"
        ) from None
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise SubstitutionError(
            f"{ref}: substitution did not produce one object; check the variable values"
        )
    result: dict[str, Any] = _plain(documents[0])
    return result


# -- the expression language -----------------------------------------------------------------


@dataclass
class _Func:
    param: str
    op: str = ""
    args: list[_Node] = field(default_factory=list)


_Node = str | _Func


def expand(text: str, variables: Mapping[str, str], *, strict: bool = False) -> str:
    """Expand the ``${...}`` expressions of ``text`` (Flux's envsubst ``Eval``).

    Raises :class:`SubstitutionError` for a malformed expression or, with ``strict``, a
    variable that is not set and has no default.
    """
    nodes = _Parser(text).parse_any()
    return "".join(_evaluate(node, variables, strict) for node in nodes)


def _evaluate(node: _Node, variables: Mapping[str, str], strict: bool) -> str:
    if isinstance(node, str):
        return node
    args = [_evaluate(arg, variables, strict) for arg in node.args]
    exists = node.param in variables
    if strict and not exists and node.op not in _DEFAULT_OPS:
        raise _ExpressionError(f'variable not set (strict mode): "{node.param}"')
    return _function(node.op, len(args))(variables.get(node.param, ""), args)


class _Parser:
    """A recursive-descent reading of the fork's scanner: same tokens, same failures."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def at_expression(self) -> bool:
        return self.text.startswith("${", self.pos)

    def fail(self, what: str) -> _ExpressionError:
        excerpt = self.text[max(0, self.pos - 30) : self.pos + 10].replace("\n", "\\n")
        return _ExpressionError(f"{what} near `{excerpt}`")

    def escaped(self, *, backslash: bool) -> str | None:
        """The character an escape at the cursor stands for (``$$`` → ``$``)."""
        char, following = self.peek(), self.peek(1)
        if char == "$" and following == "$":
            return "$"
        if backslash and char == "\\" and following in ("/", "\\") and following:
            return following
        return None

    def parse_any(self) -> list[_Node]:
        nodes: list[_Node] = []
        text: list[str] = []
        while self.pos < len(self.text):
            if self.at_expression():
                if text:
                    nodes.append("".join(text))
                    text = []
                self.pos += 2
                nodes.append(self.parse_func())
                continue
            literal = self.escaped(backslash=False)
            if literal is not None:
                text.append(literal)
                self.pos += 2
            else:
                text.append(self.text[self.pos])
                self.pos += 1
        if text:
            nodes.append("".join(text))
        return nodes

    def parse_name(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and _ident_char(self.text[self.pos]):
            self.pos += 1
        return self.text[start : self.pos]

    def close(self) -> None:
        if self.peek() != "}":
            raise self.fail("bad substitution")
        self.pos += 1

    def parse_func(self) -> _Func:
        if self.peek() == "#":
            self.pos += 1
            name = self.parse_name()
            if not name:
                raise self.fail("bad substitution")
            self.close()
            return _Func(name, "#")
        name = self.parse_name()
        if not name:
            raise self.fail("unable to parse variable name")
        char = self.peek()
        if char == ":":
            if self.peek(1) in ("=", "-", "?", "+") and self.peek(1):
                return self.parse_default(name)
            return self.parse_substring(name)
        if char == "=":
            return self.parse_default(name)
        if char in (",", "^") and char:
            return self.parse_casing(name)
        if char == "/":
            return self.parse_replace(name)
        if char in ("#", "%") and char:
            return self.parse_remove(name, char)
        if char != "}":
            raise self.fail("missing closing brace")
        self.pos += 1
        return _Func(name)

    def parse_param(self, accept: Callable[[str], bool], *, escapes: bool = False) -> _Node:
        if self.at_expression():
            self.pos += 2
            return self.parse_func()
        out: list[str] = []
        while self.pos < len(self.text) and not self.at_expression():
            literal = self.escaped(backslash=True) if escapes else None
            if literal is not None:
                out.append(literal)
                self.pos += 2
            elif accept(self.text[self.pos]):
                out.append(self.text[self.pos])
                self.pos += 1
            else:
                break
        if not out:
            raise self.fail("unable to parse substitution within function")
        return "".join(out)

    def parse_default(self, name: str) -> _Func:
        width = 1 if self.peek() == "=" else 2
        node = _Func(name, self.text[self.pos : self.pos + width])
        self.pos += width
        while self.peek() != "}":
            node.args.append(self.parse_param(lambda c: c != "}"))
        self.pos += 1
        return node

    def parse_substring(self, name: str) -> _Func:
        self.pos += 1
        node = _Func(name, ":", [self.parse_param(lambda c: c not in ":}")])
        if self.peek() == "}":
            self.pos += 1
            return node
        if self.peek() != ":":
            raise self.fail("bad substitution")
        while self.peek() == ":":
            self.pos += 1
        node.args.append(self.parse_param(lambda c: c != "}"))
        self.close()
        return node

    def parse_remove(self, name: str, char: str) -> _Func:
        width = 2 if self.peek(1) == char else 1
        self.pos += width
        node = _Func(name, char * width, [self.parse_param(lambda c: c != "}")])
        self.close()
        return node

    def parse_replace(self, name: str) -> _Func:
        op = "/"
        self.pos += 1
        if self.peek() in ("/", "#", "%") and self.peek():
            op += self.peek()
            self.pos += 1
        node = _Func(name, op)
        if self.peek() == "/":
            node.args.append("")
        else:
            node.args.append(self.parse_param(lambda c: c != "/", escapes=True))
        if self.peek() != "/":
            raise self.fail("bad substitution")
        while self.peek() == "/":
            self.pos += 1
        if self.peek() == "}":
            self.pos += 1
            return node
        node.args.append(self.parse_param(lambda c: c != "}", escapes=True))
        self.close()
        return node

    def parse_casing(self, name: str) -> _Func:
        start = self.pos
        while self.pos - start < 2 and self.peek() in (",", "^") and self.peek():
            self.pos += 1
        node = _Func(name, self.text[start : self.pos])
        self.close()
        return node


def _ident_char(char: str) -> bool:
    return char.isalpha() or char.isdigit() or char == "_"


# -- the functions (byte semantics where Go's differ from Python's) --------------------------

_Function = Callable[[str, list[str]], str]


def _function(op: str, nargs: int) -> _Function:
    if op == "#":
        return _length if nargs == 0 else _trim_shortest_prefix
    return _FUNCTIONS.get(op, _default)


def _length(value: str, args: list[str]) -> str:
    return str(len(value.encode()))


def _default(value: str, args: list[str]) -> str:
    return "".join(args) if not value and args else value


def _atoi(text: str) -> int | None:
    return int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else None


def _substring(value: str, args: list[str]) -> str:
    data = value.encode()
    pos = _atoi(args[0]) if args else None
    if pos is None:
        return value
    if pos < 0:
        pos = max(0, len(data) + pos)
    if len(args) == 1:
        return data[pos:].decode(errors="replace")
    length = _atoi(args[1])
    if length is None:
        return value
    if length < 0:
        end = len(data) + length
        return "" if end < pos else data[pos:end].decode(errors="replace")
    return data[pos : pos + length].decode(errors="replace")


def _replace_first(value: str, args: list[str]) -> str:
    return value.replace(args[0], args[1] if len(args) > 1 else "", 1)


def _replace_all(value: str, args: list[str]) -> str:
    return value.replace(args[0], args[1] if len(args) > 1 else "")


def _replace_prefix(value: str, args: list[str]) -> str:
    if len(args) == 2 and value.startswith(args[0]):
        return value.replace(args[0], args[1], 1)
    return value


def _replace_suffix(value: str, args: list[str]) -> str:
    if len(args) == 2 and value.endswith(args[0]):
        return value[: len(value) - len(args[0])] + args[1]
    return value


def _glob(pattern: str) -> re.Pattern[str] | None:
    """The fork's ``path.Match`` pattern as a regex (``*`` crosses ``/``); None if malformed."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "\\":
            if index >= len(pattern):
                return None
            out.append(re.escape(pattern[index]))
            index += 1
        elif char == "[":
            end = pattern.find("]", index + 1 if pattern[index : index + 1] == "^" else index)
            if end < 0:
                return None
            body = pattern[index:end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            if not body:
                return None
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            index = end + 1
        else:
            out.append(re.escape(char))
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error:
        return None


def _trim(value: str, pattern: str, *, longest: bool) -> str:
    matcher = _glob(pattern)
    if matcher is None:
        return value
    lengths = range(len(value), 0, -1) if longest else range(1, len(value) + 1)
    for length in lengths:
        if matcher.fullmatch(value[:length]):
            return value[length:]
    return value


def _trim_shortest_prefix(value: str, args: list[str]) -> str:
    return _trim(value, args[0], longest=False) if args else value


def _trim_longest_prefix(value: str, args: list[str]) -> str:
    return _trim(value, args[0], longest=True) if args else value


def _trim_shortest_suffix(value: str, args: list[str]) -> str:
    # The fork reverses both the value and the pattern and trims a prefix.
    return _trim(value[::-1], args[0][::-1], longest=False)[::-1] if args else value


def _trim_longest_suffix(value: str, args: list[str]) -> str:
    return _trim(value[::-1], args[0][::-1], longest=True)[::-1] if args else value


def _upper_first(value: str, args: list[str]) -> str:
    return value[:1].upper() + value[1:]


def _lower_first(value: str, args: list[str]) -> str:
    return value[:1].lower() + value[1:]


_FUNCTIONS: dict[str, _Function] = {
    ",": _lower_first,
    ",,": lambda value, args: value.lower(),
    "^": _upper_first,
    "^^": lambda value, args: value.upper(),
    "##": _trim_longest_prefix,
    "%": _trim_shortest_suffix,
    "%%": _trim_longest_suffix,
    ":": _substring,
    "/": _replace_first,
    "//": _replace_all,
    "/#": _replace_prefix,
    "/%": _replace_suffix,
}
