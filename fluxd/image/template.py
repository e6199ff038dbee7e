"""Go ``text/template`` for ImageUpdateAutomation commit messages.

``spec.git.commit.messageTemplate`` is a Go template that Flux executes with
sprig's hermetic text functions, and users' existing templates must produce the
same commit message here, byte for byte. This module is a small interpreter for
the part of the language such templates use, in three steps:

* the lexer cuts the source into text and actions, applying ``{{-`` / ``-}}``
  trim markers and dropping ``{{/* comments */}}``, and tokenizes each action;
* the parser builds a node tree and rejects, before anything renders, what it
  does not know: an unknown function, ``template``/``define``/``block``, an
  undefined variable, an unclosed action or a missing ``{{ end }}``;
* the evaluator walks the tree against the data with Go's rules: ``.Name`` is a
  mapping key first and an attribute second, a missing key of a string-keyed
  mapping is ``<no value>``, mappings range in sorted key order, and values print
  as ``fmt`` prints them (:mod:`fluxd.image.template_fmt`).

Functions live in :mod:`fluxd.image.template_funcs`. Every failure is a
:class:`TemplateError` whose message says what went wrong and where.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from fluxd.image.template_fmt import format_value, sorted_map_keys
from fluxd.image.template_funcs import (
    FUNCTIONS,
    LAZY_FUNCTIONS,
    check_arity,
    is_true,
)

__all__ = ["TemplateError", "render"]


class TemplateError(ValueError):
    """Parse or execution error; message says what and where (line/col or the action text)."""


_SPACE = " \t\r\n"
_UNSUPPORTED_KEYWORDS = frozenset({"template", "define", "block"})
_KEYWORDS = (
    frozenset({"if", "else", "end", "range", "with", "break", "continue"}) | _UNSUPPORTED_KEYWORDS
)
_NUMBER_RE = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)"
)
_IDENT_CHARS = re.compile(r"[A-Za-z0-9_]*")
_CHAR_RE = re.compile(r"'(\\.[^']*|[^'\\])'")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


class _Missing:
    """A missing map value: prints ``<no value>`` and yields itself for further fields."""


_MISSING = _Missing()
_NO_FINAL = object()


# --- lexer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # punctuation itself, or string number bool nil dot field variable ident
    text: str
    value: object
    spaced: bool  # whitespace before it: ".A.B" chains, ".A .B" is two arguments


@dataclass(frozen=True)
class _Action:
    tokens: tuple[_Token, ...]
    where: str


def _is_space(char: str) -> bool:
    return char != "" and char in _SPACE


def _location(source: str, offset: int) -> str:
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, col {column}"


def _lex(source: str) -> list[str | _Action]:
    """Text pieces and actions in order, trim markers applied, comments removed."""
    items: list[str | _Action] = []
    position = 0
    while True:
        start = source.find("{{", position)
        if start < 0:
            if position < len(source):
                items.append(source[position:])
            return items
        text = source[position:start]
        inside = start + 2
        if source.startswith("-", inside) and _is_space(source[inside + 1 : inside + 2]):
            text = text.rstrip(_SPACE)
            inside += 2
        if text:
            items.append(text)
        if source.startswith("/*", inside):
            end, trim_right = _lex_comment(source, start, inside)
        else:
            action, end, trim_right = _lex_action(source, start, inside)
            items.append(action)
        position = end
        if trim_right:
            while position < len(source) and source[position] in _SPACE:
                position += 1


def _lex_comment(source: str, start: int, inside: int) -> tuple[int, bool]:
    close = source.find("*/", inside + 2)
    if close < 0:
        raise TemplateError(f"{_location(source, start)}: unclosed comment")
    after = close + 2
    if _is_space(source[after : after + 1]) and source.startswith("-}}", after + 1):
        return after + 4, True
    if source.startswith("}}", after):
        return after + 2, False
    raise TemplateError(f"{_location(source, start)}: comment ends before closing delimiter")


def _lex_action(source: str, start: int, inside: int) -> tuple[_Action, int, bool]:
    """One action's tokens up to its ``}}``, the offset after it, and whether it trims right."""
    where = _location(source, start)
    tokens: list[_Token] = []
    position = inside
    spaced = True
    while True:
        if position >= len(source):
            raise TemplateError(f"{where}: unclosed action {source[start : start + 40]!r}")
        char = source[position]
        if char in _SPACE:
            while position < len(source) and source[position] in _SPACE:
                position += 1
            if source.startswith("-}}", position):
                end, trim_right = position + 3, True
                break
            spaced = True
            continue
        if source.startswith("}}", position):
            end, trim_right = position + 2, False
            break
        token, position = _lex_token(source, position, spaced, where)
        tokens.append(token)
        spaced = False
    text = " ".join(source[start:end].split())
    return _Action(tuple(tokens), f"{where}: {text}"), end, trim_right


def _lex_token(source: str, position: int, spaced: bool, where: str) -> tuple[_Token, int]:
    char = source[position]
    if source.startswith(":=", position):
        return _Token(":=", ":=", None, spaced), position + 2
    if char in "()|,=":
        return _Token(char, char, None, spaced), position + 1
    if char == '"':
        end = position + 1
        while end < len(source) and source[end] != '"':
            if source[end] == "\n":
                break
            end += 2 if source[end] == "\\" else 1
        if end >= len(source) or source[end] != '"':
            raise TemplateError(f"{where}: unterminated quoted string")
        text = source[position : end + 1]
        return _Token("string", text, _unquote(text[1:-1], where), spaced), end + 1
    if char == "`":
        end = source.find("`", position + 1)
        if end < 0:
            raise TemplateError(f"{where}: unterminated raw quoted string")
        text = source[position : end + 1]
        return _Token("string", text, text[1:-1], spaced), end + 1
    if char == "'":
        constant = _CHAR_RE.match(source, position)
        literal = _unquote(constant.group(1), where) if constant else ""
        if constant is None or len(literal) != 1:
            raise TemplateError(f"{where}: malformed character constant")
        return _Token("number", constant.group(), ord(literal), spaced), constant.end()
    if char in "$.":
        name = _IDENT_CHARS.match(source, position + 1)
        assert name is not None
        if char == "." and source[position + 1 : position + 2].isdigit():
            return _lex_number(source, position, spaced, where)
        text = source[position : name.end()]
        if char == "$":
            return _Token("variable", text, None, spaced), name.end()
        return _Token("field" if name.group() else "dot", text, name.group(), spaced), name.end()
    if char.isdigit() or (char in "+-" and source[position + 1 : position + 2].isdigit()):
        return _lex_number(source, position, spaced, where)
    if char.isalpha() or char == "_":
        name = _IDENT_CHARS.match(source, position)
        assert name is not None
        word = name.group()
        if word in ("true", "false"):
            return _Token("bool", word, word == "true", spaced), name.end()
        if word == "nil":
            return _Token("nil", word, None, spaced), name.end()
        return _Token("ident", word, None, spaced), name.end()
    raise TemplateError(f"{where}: unrecognized character in action: {char!r}")


def _lex_number(source: str, position: int, spaced: bool, where: str) -> tuple[_Token, int]:
    match = _NUMBER_RE.match(source, position)
    assert match is not None
    text = match.group()
    if source[match.end() : match.end() + 1].isalnum():
        raise TemplateError(f"{where}: bad number syntax: {source[position : match.end() + 1]!r}")
    digits = text.replace("_", "")
    value: int | float
    is_hex = digits.lstrip("+-")[:2] in ("0x", "0X")
    if not is_hex and any(mark in digits for mark in ".eE"):
        value = float(digits)
    elif re.fullmatch(r"[+-]?0[0-7]+", digits):
        value = int(digits, 8)
    else:
        try:
            value = int(digits, 0)
        except ValueError:
            raise TemplateError(f"{where}: bad number syntax: {text!r}") from None
    return _Token("number", text, value, spaced), match.end()


def _unquote(body: str, where: str) -> str:
    """Go's escapes in an interpreted string literal."""
    out: list[str] = []
    position = 0
    while position < len(body):
        char = body[position]
        if char != "\\":
            out.append(char)
            position += 1
            continue
        escape = body[position + 1 : position + 2]
        width = {"x": 2, "u": 4, "U": 8}.get(escape)
        digits = body[position + 2 : position + 2 + (width or 0)]
        if escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            position += 2
        elif escape in ('"', "'"):
            out.append(escape)
            position += 2
        elif width is not None and len(digits) == width and re.fullmatch(r"[0-9a-fA-F]+", digits):
            out.append(chr(int(digits, 16)))
            position += 2 + width
        elif re.fullmatch(r"[0-7]{3}", body[position + 1 : position + 4]):
            out.append(chr(int(body[position + 1 : position + 4], 8)))
            position += 4
        else:
            raise TemplateError(f"{where}: invalid escape in string: \\{escape}")
    return "".join(out)


# --- node tree -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dot:
    pass


@dataclass(frozen=True)
class _Literal:
    value: object


@dataclass(frozen=True)
class _Function:
    name: str


@dataclass(frozen=True)
class _Chain:
    """``.A.B`` (on dot when ``base`` is None), ``$x.A``, ``(pipeline).A``."""

    base: _Variable | _Pipeline | None
    fields: tuple[str, ...]


@dataclass(frozen=True)
class _Variable:
    name: str


@dataclass(frozen=True)
class _Command:
    operands: tuple[_Operand, ...]


@dataclass(frozen=True)
class _Pipeline:
    declarations: tuple[str, ...]
    assigns: bool  # "=" to existing variables rather than ":=" declaring new ones
    commands: tuple[_Command, ...]
    where: str


_Operand = _Dot | _Literal | _Function | _Chain | _Variable | _Pipeline


@dataclass(frozen=True)
class _Print:
    pipeline: _Pipeline


@dataclass(frozen=True)
class _Branch:
    keyword: str  # "if" or "with"
    pipeline: _Pipeline
    body: tuple[_Node, ...]
    otherwise: tuple[_Node, ...]


@dataclass(frozen=True)
class _Range:
    pipeline: _Pipeline
    body: tuple[_Node, ...]
    otherwise: tuple[_Node, ...]


@dataclass(frozen=True)
class _LoopControl:
    keyword: str  # "break" or "continue"


_Node = str | _Print | _Branch | _Range | _LoopControl


# --- parser ----------------------------------------------------------------------------


class _Parser:
    """Items to a node tree; checks names (functions, variables, keywords) as it goes."""

    def __init__(self, items: list[str | _Action]) -> None:
        self._items = items
        self._next = 0
        self._variables: list[str] = ["$"]
        self._range_depth = 0

    def parse(self) -> tuple[_Node, ...]:
        nodes, stop = self._list()
        if stop is not None:
            raise TemplateError(f"{stop.where}: unexpected {{{{{stop.tokens[0].text}}}}}")
        return nodes

    def _list(self) -> tuple[tuple[_Node, ...], _Action | None]:
        """Nodes up to an ``end``/``else`` action (returned) or the end of input (None)."""
        nodes: list[_Node] = []
        while self._next < len(self._items):
            item = self._items[self._next]
            self._next += 1
            if isinstance(item, str):
                nodes.append(item)
                continue
            keyword = item.tokens[0].text if item.tokens and item.tokens[0].kind == "ident" else ""
            if keyword in ("end", "else"):
                return tuple(nodes), item
            if keyword in ("if", "with", "range"):
                nodes.append(self._control(item, item.tokens))
            elif keyword in ("break", "continue"):
                if self._range_depth == 0:
                    raise TemplateError(f"{item.where}: {{{{{keyword}}}}} outside {{{{range}}}}")
                self._expect_alone(item, item.tokens)
                nodes.append(_LoopControl(keyword))
            elif keyword in _UNSUPPORTED_KEYWORDS:
                raise TemplateError(
                    f"{item.where}: the {keyword!r} action is not supported in commit messages"
                )
            else:
                nodes.append(
                    _Print(self._pipeline(item.tokens, item.where, declarations_allowed=1))
                )
        return tuple(nodes), None

    @staticmethod
    def _expect_alone(item: _Action, tokens: Sequence[_Token]) -> None:
        if len(tokens) > 1:
            raise TemplateError(
                f"{item.where}: unexpected {tokens[1].text!r} after {tokens[0].text}"
            )

    def _control(self, opening: _Action, tokens: Sequence[_Token]) -> _Node:
        keyword = tokens[0].text
        mark = len(self._variables)
        pipeline = self._pipeline(
            tokens[1:], opening.where, declarations_allowed=2 if keyword == "range" else 1
        )
        if keyword == "range":
            self._range_depth += 1
        body, stop = self._list()
        if keyword == "range":
            self._range_depth -= 1
        otherwise: tuple[_Node, ...] = ()
        if stop is not None and stop.tokens[0].text == "else":
            rest = stop.tokens[1:]
            if (
                rest
                and rest[0].kind == "ident"
                and rest[0].text == keyword
                and keyword in ("if", "with")
            ):
                otherwise = (self._control(stop, rest),)
                stop = None
            else:
                self._expect_alone(stop, stop.tokens)
                otherwise, stop = self._list()
                if stop is not None and stop.tokens[0].text != "end":
                    raise TemplateError(
                        f"{stop.where}: expected {{{{end}}}}, found a second {{{{else}}}}"
                    )
                if stop is None:
                    raise TemplateError(
                        f"{opening.where}: missing {{{{end}}}} for this {{{{{keyword}}}}}"
                    )
        elif stop is None:
            raise TemplateError(f"{opening.where}: missing {{{{end}}}} for this {{{{{keyword}}}}}")
        if stop is not None:
            self._expect_alone(stop, stop.tokens)
        del self._variables[mark:]
        if keyword == "range":
            return _Range(pipeline, body, otherwise)
        return _Branch(keyword, pipeline, body, otherwise)

    def _pipeline(
        self, tokens: Sequence[_Token], where: str, *, declarations_allowed: int
    ) -> _Pipeline:
        declarations, assigns, rest = self._declarations(tokens, where, declarations_allowed)
        commands: list[_Command] = []
        position = 0
        while True:
            operands, position = self._command(rest, position, where)
            if not operands:
                raise TemplateError(f"{where}: missing value for command")
            if operands[0] == _Literal(None):
                raise TemplateError(f"{where}: nil is not a command")
            if commands and isinstance(operands[0], (_Literal, _Dot)):
                raise TemplateError(
                    f"{where}: non executable command in pipeline stage {len(commands) + 1}"
                )
            commands.append(_Command(tuple(operands)))
            if position >= len(rest):
                break
            if rest[position].kind != "|":
                raise TemplateError(f"{where}: unexpected {rest[position].text!r} in command")
            position += 1
        for name in declarations:
            if not assigns:
                self._variables.append(name)
        return _Pipeline(declarations, assigns, tuple(commands), where)

    def _declarations(
        self, tokens: Sequence[_Token], where: str, allowed: int
    ) -> tuple[tuple[str, ...], bool, Sequence[_Token]]:
        kinds = [token.kind for token in tokens[:4]]
        names: tuple[str, ...]
        if kinds[:2] in (["variable", ":="], ["variable", "="]):
            names, operator, rest = (tokens[0].text,), tokens[1].kind, tokens[2:]
        elif kinds == ["variable", ",", "variable", ":="] or kinds == [
            "variable",
            ",",
            "variable",
            "=",
        ]:
            if allowed < 2:
                raise TemplateError(
                    f"{where}: too many declarations; only range declares two variables"
                )
            names, operator, rest = (tokens[0].text, tokens[2].text), tokens[3].kind, tokens[4:]
        else:
            return (), False, tokens
        if operator == "=":
            for name in names:
                self._check_variable(name, where)
        return names, operator == "=", rest

    def _check_variable(self, name: str, where: str) -> None:
        if name not in self._variables:
            raise TemplateError(f"{where}: undefined variable {name!r}")

    def _command(
        self, tokens: Sequence[_Token], position: int, where: str
    ) -> tuple[list[_Operand], int]:
        operands: list[_Operand] = []
        while position < len(tokens) and tokens[position].kind not in ("|", ")"):
            operand, position = self._operand(tokens, position, where)
            operands.append(operand)
        return operands, position

    def _operand(self, tokens: Sequence[_Token], position: int, where: str) -> tuple[_Operand, int]:
        token = tokens[position]
        position += 1
        term: _Operand
        if token.kind in ("string", "number", "bool"):
            term = _Literal(token.value)
        elif token.kind == "nil":
            term = _Literal(None)
        elif token.kind == "dot":
            term = _Dot()
        elif token.kind == "field":
            term = _Chain(None, (str(token.value),))
        elif token.kind == "variable":
            self._check_variable(token.text, where)
            term = _Variable(token.text)
        elif token.kind == "ident":
            if token.text in _KEYWORDS:
                raise TemplateError(f"{where}: unexpected keyword {token.text!r} in command")
            if token.text not in FUNCTIONS and token.text not in LAZY_FUNCTIONS:
                raise TemplateError(f"{where}: function {token.text!r} not defined")
            term = _Function(token.text)
        elif token.kind == "(":
            end = self._closing_paren(tokens, position, where)
            term = self._pipeline(tokens[position:end], where, declarations_allowed=1)
            position = end + 1
        else:
            raise TemplateError(f"{where}: unexpected {token.text!r} in operand")
        fields: list[str] = []
        while (
            position < len(tokens)
            and tokens[position].kind == "field"
            and not tokens[position].spaced
        ):
            fields.append(str(tokens[position].value))
            position += 1
        if fields:
            if isinstance(term, _Chain):
                return _Chain(None, term.fields + tuple(fields)), position
            if not isinstance(term, (_Variable, _Pipeline)):
                raise TemplateError(f"{where}: unexpected . after term {token.text!r}")
            return _Chain(term, tuple(fields)), position
        return term, position

    @staticmethod
    def _closing_paren(tokens: Sequence[_Token], start: int, where: str) -> int:
        depth = 1
        for index in range(start, len(tokens)):
            depth += {"(": 1, ")": -1}.get(tokens[index].kind, 0)
            if depth == 0:
                return index
        raise TemplateError(f"{where}: unclosed left paren")


# --- evaluator -------------------------------------------------------------------------


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Executor:
    """Walks the node tree over the data, writing output; variables form one stack."""

    def __init__(self, data: object) -> None:
        self._variables: list[list[object]] = [["$", data]]
        self.output: list[str] = []

    def walk(self, nodes: Sequence[_Node], dot: object) -> None:
        for node in nodes:
            if isinstance(node, str):
                self.output.append(node)
            elif isinstance(node, _Print):
                value = self._pipeline(node.pipeline, dot)
                if not node.pipeline.declarations:
                    self.output.append(_printed(value))
            elif isinstance(node, _Branch):
                self._branch(node, dot)
            elif isinstance(node, _Range):
                self._range(node, dot)
            else:
                raise _Break() if node.keyword == "break" else _Continue()

    def _branch(self, node: _Branch, dot: object) -> None:
        mark = len(self._variables)
        value = self._pipeline(node.pipeline, dot)
        if is_true(None if value is _MISSING else value):
            self.walk(node.body, value if node.keyword == "with" else dot)
        else:
            self.walk(node.otherwise, dot)
        del self._variables[mark:]

    def _range(self, node: _Range, dot: object) -> None:
        mark = len(self._variables)
        iterated = False
        for key, element in self._range_pairs(self._pipeline(node.pipeline, dot), node.pipeline):
            iterated = True
            self._bind_range_variables(node.pipeline, mark, key, element)
            iteration = len(self._variables)
            try:
                self.walk(node.body, element)
            except _Break:
                break
            except _Continue:
                continue
            finally:
                del self._variables[iteration:]
        if not iterated:
            self.walk(node.otherwise, dot)
        del self._variables[mark:]

    def _bind_range_variables(
        self, pipeline: _Pipeline, mark: int, key: object, element: object
    ) -> None:
        """One variable gets the element; two get the index (or key) and the element."""
        names = pipeline.declarations
        values = (key, element) if len(names) == 2 else (element,)
        for offset, (name, value) in enumerate(zip(names, values, strict=False)):
            if pipeline.assigns:
                self._set(name, value, assigns=True)
            else:
                self._variables[mark + offset][1] = value

    @staticmethod
    def _range_pairs(value: object, pipeline: _Pipeline) -> Iterable[tuple[object, object]]:
        """(index or key, element) pairs; an integer counts up lazily, however large."""
        if value is _MISSING or value is None:
            return ()
        if isinstance(value, Mapping):
            return [(key, value[key]) for key in sorted_map_keys(value)]
        if isinstance(value, (list, tuple)):
            return enumerate(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if len(pipeline.declarations) == 2:
                raise TemplateError(
                    f"{pipeline.where}: can't use two variables to range over an integer"
                )
            if value < 0:
                raise TemplateError(f"{pipeline.where}: range can't iterate over a negative number")
            return ((number, number) for number in range(value))
        raise TemplateError(f"{pipeline.where}: range can't iterate over {format_value(value)}")

    def _set(self, name: str, value: object, *, assigns: bool) -> None:
        if assigns:
            for variable in reversed(self._variables):
                if variable[0] == name:
                    variable[1] = value
                    return
        self._variables.append([name, value])

    def _lookup(self, name: str, where: str) -> object:
        for variable_name, value in reversed(self._variables):
            if variable_name == name:
                return value
        raise TemplateError(f"{where}: undefined variable: {name}")

    def _pipeline(self, pipeline: _Pipeline, dot: object) -> object:
        value: object = _NO_FINAL
        for command in pipeline.commands:
            value = self._command(command, dot, value, pipeline.where)
            if value is None:
                value = _MISSING
        for name in pipeline.declarations:
            self._set(name, value, assigns=pipeline.assigns)
        return value

    def _command(self, command: _Command, dot: object, final: object, where: str) -> object:
        first, *arguments = command.operands
        if isinstance(first, _Function):
            return self._call(first.name, arguments, dot, final, where)
        if arguments or final is not _NO_FINAL:
            raise TemplateError(f"{where}: can't give argument to non-function {_describe(first)}")
        return self._operand(first, dot, where)

    def _operand(self, operand: _Operand, dot: object, where: str) -> object:
        if isinstance(operand, _Dot):
            return dot
        if isinstance(operand, _Literal):
            return operand.value
        if isinstance(operand, _Variable):
            return self._lookup(operand.name, where)
        if isinstance(operand, _Pipeline):
            return self._pipeline(operand, dot)
        if isinstance(operand, _Function):
            return self._call(operand.name, [], dot, _NO_FINAL, where)
        receiver = dot if operand.base is None else self._operand(operand.base, dot, where)
        for name in operand.fields:
            receiver = _field(receiver, name, where)
        return receiver

    def _argument(self, operand: _Operand, dot: object, where: str) -> object:
        return _as_argument(self._operand(operand, dot, where))

    def _call(
        self, name: str, operands: Sequence[_Operand], dot: object, final: object, where: str
    ) -> object:
        thunks: list[Callable[[], object]] = [
            functools.partial(self._argument, operand, dot, where) for operand in operands
        ]
        if final is not _NO_FINAL:
            thunks.append(functools.partial(_as_argument, final))
        if name in LAZY_FUNCTIONS:
            return _short_circuit(name, thunks, where)
        arguments = [thunk() for thunk in thunks]
        try:
            check_arity(name, len(arguments))
            return FUNCTIONS[name](*arguments)
        except Exception as error:  # Go turns a panicking function into an error too
            raise TemplateError(f"{where}: error calling {name}: {error}") from None


def _as_argument(value: object) -> object:
    """What a function receives for a value: a missing map value is nil."""
    return None if value is _MISSING else value


def _short_circuit(name: str, thunks: Sequence[Callable[[], object]], where: str) -> object:
    """``and`` stops at the first false argument, ``or`` at the first true one, and returns it."""
    if not thunks:
        raise TemplateError(f"{where}: wrong number of args for {name}: want at least 1 got 0")
    value: object = None
    for thunk in thunks:
        value = thunk()
        if is_true(value) == (name == "or"):
            break
    return value


def _describe(operand: _Operand) -> str:
    if isinstance(operand, _Chain):
        return "." + ".".join(operand.fields)
    if isinstance(operand, _Variable):
        return operand.name
    if isinstance(operand, _Literal):
        return format_value(operand.value)
    return type(operand).__name__.strip("_").lower()


def _field(receiver: object, name: str, where: str) -> object:
    """Go's field evaluation: map key, else attribute; a missing string key is ``<no value>``."""
    if receiver is _MISSING:
        return _MISSING
    if receiver is None:
        raise TemplateError(f"{where}: nil pointer evaluating interface {{}}.{name}")
    if isinstance(receiver, Mapping):
        if name in receiver:
            return receiver[name]
        if all(isinstance(key, str) for key in receiver):
            return _MISSING
        raise TemplateError(
            f"{where}: can't evaluate field {name} in a map whose keys are not strings"
        )
    if isinstance(receiver, (str, int, float, list, tuple)) or name.startswith("_"):
        raise TemplateError(
            f"{where}: can't evaluate field {name} in type {type(receiver).__name__}"
        )
    try:
        value = getattr(receiver, name)
    except AttributeError:
        raise TemplateError(
            f"{where}: can't evaluate field {name} in type {type(receiver).__name__}"
        ) from None
    if callable(value) and not isinstance(value, type):
        return value()
    return value


def _printed(value: object) -> str:
    if value is _MISSING or value is None:
        return "<no value>"
    return format_value(value)


def render(template: str, data: object) -> str:
    """Execute a Go text/template against ``data``, as Flux renders a commit message."""
    nodes = _Parser(_lex(template)).parse()
    executor = _Executor(data)
    executor.walk(nodes, data)
    return "".join(executor.output)
