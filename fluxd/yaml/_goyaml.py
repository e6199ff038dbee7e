"""YAML in and out, the way ``kubectl kustomize`` reads and prints it.

Reading follows go-yaml v3 (what kustomize's kyaml is built on): plain scalars resolve by
YAML 1.2 core rules plus go-yaml's extras (``0755`` is octal, ``1_000`` an int, ``yes``
and ``on`` stay strings, unless go-yaml v2's YAML 1.1 booleans are asked for, as for
text Flux reads back with v2), anchors and aliases expand into copies, ``<<`` merge keys
merge, and a ``...List`` object with ``items`` expands into its items. The event stream
comes from libyaml (through PyYAML), the C library go-yaml was ported from, so what
parses and what fails agree with kustomize (error lines are the real ones: go-yaml's are
one short for parser errors).

Resources are read as kustomize holds them when it prints them: it encodes each
resource's node with go-yaml v3 and decodes the text again before printing, and that
round trip is not faithful for block scalars. go-yaml's folded (``>``) writer doubles
the wrong line breaks, so a folded value gains a line break before each more-indented
line (or loses some, when the value starts with a blank), and a block value that
starts with a tab cannot be read back at all (kustomize fails; so does this module).

Printing reproduces kustomize's last step byte for byte: each resource is encoded to
JSON and the JSON is re-encoded by go-yaml v2 (``sigs.k8s.io/yaml.JSONToYAML``). That
round trip is why the output looks the way it does, and this module models it rather
than a general YAML style:

- map keys are sorted with go-yaml v2's "natural" order (digit runs compare as numbers,
  non-letters before letters);
- sequences are not indented under their key (``- `` at the key's column);
- numbers go through JSON: ``1.0`` prints as ``1``, ``1e3`` as ``1000``, ``0.1`` stays,
  large or tiny floats print in Go's ``%g`` form (``1e+21``, ``1e-07``);
- a string that would read back as something else (``"true"``, ``"1"``, ``"y"``,
  ``"2024-01-01"``, ``""``) is double-quoted; one that cannot be plain (``'- a'``,
  ``'a: b'``, ``'*x'``) is single-quoted; one with a newline is a literal block
  (``|``, ``|-``, ``|+``, with an indentation hint when it starts with a space) unless
  it has characters a block cannot hold (tabs, trailing spaces before a newline, ...),
  then double-quoted with escapes;
- characters outside the Basic Multilingual Plane and control characters are escaped
  (``"\\U0001F600"``), other non-ASCII text is written as is;
- plain and quoted scalars wrap at the first space past column 80;
- plain timestamps (``2024-01-01``) come out as RFC 3339 strings, as Go's ``time.Time``
  marshals them.
"""

from __future__ import annotations

import base64
import binascii
import copy
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cmp_to_key, lru_cache
from typing import Any, cast

import yaml

__all__ = [
    "Timestamp",
    "YamlError",
    "dump_documents",
    "load_documents",
    "load_values",
    "resolve_plain",
]


class YamlError(ValueError):
    """A YAML stream that does not parse, or a value that cannot be printed; the message
    names the source and line."""


try:
    _Parser: Any = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml: same events, slower
    _Parser = yaml.SafeLoader

_TAG = "tag:yaml.org,2002:"
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1

# -- scalar resolution (go-yaml's resolve tables) -------------------------------------------

_V3_SPECIAL: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
#: Plain words go-yaml v2 reads as YAML 1.1 booleans where v3 keeps them as text.
_V2_BOOLEANS: dict[str, bool] = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), False),
}
#: go-yaml v2 (the printer) also reads YAML 1.1 booleans, so these must be quoted.
_V2_NON_STRINGS = frozenset(_V3_SPECIAL).union(_V2_BOOLEANS)
_HINT_NUMBER = frozenset("+-0123456789")

_GO_INT = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+(?:_[0-9]+)*)?")
_BASE60_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2}):(?P<s>[0-9]{1,2})"
    r"(?:[.,](?P<frac>[0-9]+))?(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class Timestamp(str):
    """A plain YAML timestamp, kept as written; printed as Go marshals ``time.Time``."""

    __slots__ = ()

    def rfc3339(self) -> str:
        parsed = _parse_timestamp(str(self))
        return parsed if parsed is not None else str(self)


def _parse_timestamp(text: str) -> str | None:
    """RFC 3339 (nano) rendering of a go-yaml timestamp, or None if ``text`` is not one."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day = int(match["y"]), int(match["mo"]), int(match["d"])
    if not 1 <= month <= 12:
        return None
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _DAYS_IN_MONTH[month - 1] + (1 if month == 2 and leap else 0):
        return None
    date = f"{year:04d}-{month:02d}-{day:02d}"
    if match["sep"] is None:
        return f"{date}T00:00:00Z"
    tz = match["tz"]
    # go-yaml's layouts: "T"/"t" need a zone, a space separator allows none.
    if (match["sep"] == " ") == (tz is not None):
        return None
    hour, minute, second = int(match["h"]), int(match["mi"]), int(match["s"])
    if hour > 23 or minute > 59 or second > 59:
        return None
    frac = (match["frac"] or "")[:9].rstrip("0")
    zone = "Z"
    if tz is not None and tz != "Z":
        tz_hour, tz_minute = int(tz[1:3]), int(tz[4:6])
        if tz_hour > 24 or tz_minute > 60:
            return None
        if tz_hour or tz_minute:
            zone = tz
    fraction = f".{frac}" if frac else ""
    return f"{date}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{zone}"


def _go_parse_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 0, 64)``, falling back to ``ParseUint``; None on failure."""
    if _GO_INT.fullmatch(text) is None:
        return None
    sign = -1 if text[0] == "-" else 1
    digits = text.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and digits[1] not in "xXoObB":
        return _in_range(sign * int(digits, 8), signed=text[0] in "+-")
    return _in_range(sign * int(digits, 0), signed=text[0] in "+-")


def _go_parse_base(text: str, base: int) -> int | None:
    """``strconv.ParseInt(text, base, 64)``, falling back to ``ParseUint``."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or any(char not in "01234567"[:base] for char in digits):
        return None
    return _in_range(int(text, base), signed=text[:1] in ("+", "-"))


def _in_range(value: int, *, signed: bool) -> int | None:
    if _INT64_MIN <= value <= _INT64_MAX or (not signed and 0 <= value <= _UINT64_MAX):
        return value
    return None


def _go_float(text: str) -> float | None:
    value = float(text.replace("_", ""))
    return None if math.isinf(value) else value


def _number(text: str, *, yaml_1_2_octal: bool) -> int | float | None:
    """go-yaml's reading of a plain scalar that starts with a digit or a sign.

    v3 (the reader) also knows ``0o17``; v2 (the printer) only through Go's base prefixes.
    Both pass the text after the prefix to Go's parser, which takes a sign there too.
    """
    plain = text.replace("_", "")
    number = _go_parse_int(plain)
    if number is not None:
        return number
    if _YAML_FLOAT.fullmatch(plain):
        value = _go_float(plain)
        if value is not None:
            return value
    prefixes = ((2, "0b"), (8, "0o")) if yaml_1_2_octal else ((2, "0b"),)
    for base, prefix in prefixes:
        if plain.startswith(prefix):
            return _go_parse_base(plain[2:], base)
        if plain.startswith("-" + prefix) and plain[3:4] not in ("+", "-"):
            return _go_parse_base("-" + plain[3:], base)
    return None


def _resolve_plain(text: str) -> Any:
    """A plain, untagged scalar as go-yaml v3 decodes it."""
    if text in _V3_SPECIAL:
        return _V3_SPECIAL[text]
    first = text[0]
    if first == ".":
        if _DOT_FLOAT.fullmatch(text):
            value = _go_float(text)
            if value is not None:
                return value
        return text
    if first not in _HINT_NUMBER:
        return text
    if _parse_timestamp(text) is not None:
        return Timestamp(text)
    number = _number(text, yaml_1_2_octal=True)
    return text if number is None else number


def _resolves_to_string_v2(text: str) -> bool:
    """Whether go-yaml v2 reads ``text`` back as a string when it is written plain."""
    if text in _V2_NON_STRINGS:
        return False
    first = text[0]
    if first == ".":
        return _DOT_FLOAT.fullmatch(text) is None or _go_float(text) is None
    if first not in _HINT_NUMBER:
        return True
    if _parse_timestamp(text) is not None or _number(text, yaml_1_2_octal=False) is not None:
        return False
    return _BASE60_FLOAT.fullmatch(text) is None


# -- loading ---------------------------------------------------------------------------------


#: What an explicitly tagged scalar must resolve to (``!!float`` accepts an int).
_TAGGED_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "null": (type(None),),
    "timestamp": (Timestamp,),
}


class _Special:
    """A key that is not stored as such: ``<<`` merges, a quoted ``"<<"`` vanishes."""


#: kyaml treats a plain ``<<`` as a merge key and drops a quoted one with its value.
_MERGE, _DROP = _Special(), _Special()


@dataclass
class _MapFrame:
    value: dict[str, Any]
    top_level: bool
    anchor: str | None
    key: Any = None
    key_line: int = 0
    key_pending: bool = False
    lines: dict[str, int] = field(default_factory=dict)
    merges: list[Any] = field(default_factory=list)
    merged: bool = False


@dataclass
class _SeqFrame:
    value: list[Any]
    anchor: str | None


class _Builder:
    """Turns libyaml events into plain Python values with go-yaml v3's semantics."""

    def __init__(
        self,
        source: str,
        line_offset: int = 0,
        *,
        yaml11_booleans: bool,
        kyaml_round_trip: bool,
    ) -> None:
        self.source = source
        #: Lines of the file before the text being parsed (kustomize parses each
        #: ``---``-separated chunk on its own).
        self.line_offset = line_offset
        #: Plain ``yes``/``on``/``n``... values are booleans, as go-yaml v2 reads them.
        self.yaml11_booleans = yaml11_booleans
        #: Block scalars read as kustomize prints them (see :func:`_kyaml_block_scalar`).
        self.kyaml_round_trip = kyaml_round_trip
        self.anchors: dict[str, Any] = {}
        self.stack: list[_MapFrame | _SeqFrame] = []

    def fail(self, message: str, line: int) -> YamlError:
        return YamlError(
            f"invalid YAML in {self.source} line {line + self.line_offset + 1}: {message}"
        )

    def documents(self, events: Iterator[Any]) -> Iterator[tuple[Any, int]]:
        start_line = 0
        root: list[Any] = []
        for event in events:
            kind = type(event).__name__
            if kind == "DocumentStartEvent":
                self.anchors = {}
                root = []
                start_line = event.start_mark.line
            elif kind == "DocumentEndEvent":
                yield (root[0] if root else None), start_line + self.line_offset
            elif kind in ("StreamStartEvent", "StreamEndEvent"):
                continue
            else:
                self.event(event, kind, root)

    def event(self, event: Any, kind: str, root: list[Any]) -> None:
        line = event.start_mark.line
        if kind == "ScalarEvent":
            plain = event.style is None or event.style == ""
            if self.expecting_key() and event.value == "<<":
                merge = (plain and event.tag is None) or event.tag == _TAG + "merge"
                self.add(_MERGE if merge else _DROP, line, root)
                return
            text = event.value
            if self.kyaml_round_trip and not self.expecting_key():
                text = self.round_trip(text, event.style, line)
            value = self.scalar(text, event.tag, plain, line)
            # Keys keep their text: kustomize's printer quotes every key v2 would misread.
            if self.yaml11_booleans and plain and event.tag is None and not self.expecting_key():
                value = _V2_BOOLEANS.get(text, value)
            self.register(event.anchor, value)
            self.add(value, line, root, text=text)
        elif kind == "AliasEvent":
            if event.anchor not in self.anchors:
                raise self.fail(f"unknown anchor {event.anchor!r} referenced", line)
            value = self.anchors[event.anchor]
            self.add(copy.deepcopy(value), line, root)
        elif kind == "MappingStartEvent":
            if self.expecting_key():
                raise self.fail("a mapping cannot be a key (kustomize needs string keys)", line)
            self.stack.append(_MapFrame({}, top_level=not self.stack, anchor=event.anchor))
        elif kind == "SequenceStartEvent":
            if self.expecting_key():
                raise self.fail("a sequence cannot be a key (kustomize needs string keys)", line)
            self.stack.append(_SeqFrame([], anchor=event.anchor))
        elif kind == "MappingEndEvent":
            frame = self.stack.pop()
            assert isinstance(frame, _MapFrame)
            value = frame.value
            for source in frame.merges:
                for key, item in source.items():
                    value.setdefault(key, item)
            self.register(frame.anchor, value)
            self.add(value, line, root)
        elif kind == "SequenceEndEvent":
            frame = self.stack.pop()
            self.register(frame.anchor, frame.value)
            self.add(frame.value, line, root)

    def round_trip(self, text: str, style: str | None, line: int) -> str:
        """A scalar value as kustomize holds it once it has re-encoded it.

        kustomize sets a resource's annotations anew from a Go map on every build, so
        their values lose the style they were written in: one with a line break is
        written as a literal block, whatever its style here.
        """
        written_as_block = style in ("|", ">")
        if not written_as_block and "\n" not in text:
            return text  # most scalars: a one-line plain or quoted value reads back as is
        annotation = self.in_resource_annotations()
        if not ("\n" in text if annotation else written_as_block):
            return text
        try:
            return _kyaml_block_scalar(text, folded=style == ">" and not annotation)
        except _UnreadableBlock as error:
            advice = (
                "start the annotation with another character"
                if annotation
                else 'write the value as a double-quoted string ("\\t...")'
            )
            where = f"{self.source} line {line + self.line_offset + 1}"
            raise YamlError(f"{where}: {error}; {advice}") from None

    def in_resource_annotations(self) -> bool:
        """Whether the value being read is one of a resource's ``metadata.annotations``."""
        if len(self.stack) < 3:
            return False
        resource, metadata, annotations = self.stack[-3:]
        return (
            isinstance(annotations, _MapFrame)
            and isinstance(metadata, _MapFrame)
            and metadata.key == "annotations"
            and isinstance(resource, _MapFrame)
            and resource.key == "metadata"
            and self.is_resource(len(self.stack) - 3)
        )

    def is_resource(self, index: int) -> bool:
        """Whether ``stack[index]`` is an object kustomize reads as a resource: the
        document itself, or an entry of the ``items`` of one (a ``...List``)."""
        if index == 0:
            return True
        if index < 2:
            return False
        items, owner = self.stack[index - 1], self.stack[index - 2]
        return (
            isinstance(items, _SeqFrame)
            and isinstance(owner, _MapFrame)
            and owner.key == "items"
            and self.is_resource(index - 2)
        )

    def expecting_key(self) -> bool:
        return (
            bool(self.stack)
            and isinstance(self.stack[-1], _MapFrame)
            and (not self.stack[-1].key_pending)
        )

    def register(self, anchor: str | None, value: Any) -> None:
        if anchor:
            self.anchors[anchor] = value

    def add(self, value: Any, line: int, root: list[Any], *, text: str | None = None) -> None:
        if not self.stack:
            root.append(value)
            return
        frame = self.stack[-1]
        if isinstance(frame, _SeqFrame):
            frame.value.append(value)
            return
        if not frame.key_pending:
            frame.key = self.key(value, text, frame.top_level, line)
            frame.key_line = line
            frame.key_pending = True
            return
        frame.key_pending = False
        key = frame.key
        if key is _DROP:
            return
        if key is _MERGE:
            if frame.merged:
                raise self.fail("duplicate merge key", frame.key_line)
            frame.merged = True
            frame.merges.extend(self.merge_sources(value, line))
            return
        if key in frame.lines:
            raise self.fail(
                f'mapping key "{key}" already defined at line {frame.lines[key] + 1}',
                frame.key_line,
            )
        frame.lines[key] = frame.key_line
        frame.value[key] = value

    def key(self, value: Any, text: str | None, top_level: bool, line: int) -> Any:
        if value is _MERGE or value is _DROP or type(value) is str:
            return value
        if top_level and text is not None:
            return text  # go-yaml decodes the top level into map[string]any: keeps the text
        raise self.fail(
            f"mapping key {text if text is not None else value!r} is not a string; "
            "kustomize can only print string keys (quote it)",
            line,
        )

    def merge_sources(self, value: Any, line: int) -> list[dict[str, Any]]:
        sources = value if isinstance(value, list) else [value]
        if not all(isinstance(source, dict) for source in sources):
            raise self.fail("map merge requires map or sequence of maps as the value", line)
        return sources

    def scalar(self, text: str, tag: str | None, plain: bool, line: int) -> Any:
        if tag is None:
            return _resolve_plain(text) if plain else text
        if not tag.startswith(_TAG):
            return text  # "!" and application tags: go-yaml keeps the text
        name = tag[len(_TAG) :]
        if name == "str":
            return text
        if name == "binary":
            try:
                return base64.b64decode(text, validate=False).decode("utf-8", "replace")
            except (binascii.Error, ValueError) as exc:
                raise self.fail(f"!!binary value is not base64: {exc}", line) from exc
        expected = _TAGGED_TYPES.get(name)
        if expected is None:  # !!map, !!seq, unknown yaml.org tags: keep the text
            return text
        resolved: Any = _resolve_plain(text)
        if (isinstance(resolved, bool) and name != "bool") or not isinstance(resolved, expected):
            raise self.fail(f"cannot decode `{text}` as a !!{name}", line)
        if name == "float":
            return float(cast("int | float", resolved))
        return resolved


def load_documents(
    data: bytes, *, source: str, kyaml_round_trip: bool = True
) -> list[dict[str, Any]]:
    """The objects in a multi-document YAML file, ``...List`` kinds expanded.

    Empty documents (nothing, comments, ``null``) are skipped. A document that is not a
    mapping, a malformed file, a duplicate key or a non-string key is a
    :class:`YamlError` naming ``source`` and the line.

    ``kyaml_round_trip`` reads block scalars as kustomize prints the resources that hold
    them, after go-yaml v3 has written and read them once more: a folded (``>``) value
    with more-indented lines gains line breaks, and a block value that starts with a tab
    is an error, because kustomize cannot print it. Pass False for YAML that kustomize
    decodes into Go structs instead, such as the kustomization file itself.
    """
    objects: list[dict[str, Any]] = []
    documents = _documents(data, source, kyaml_round_trip=kyaml_round_trip)
    for index, (document, line) in enumerate(documents, start=1):
        if document is None:
            continue
        if not isinstance(document, dict):
            what = "a list" if isinstance(document, list) else "a scalar"
            raise YamlError(
                f"document {index} (line {line + 1}) of {source} is {what}, not a "
                "Kubernetes object (a mapping with apiVersion, kind and metadata)"
            )
        objects.extend(_expand_lists(document, source))
    return objects


def load_values(
    data: bytes, *, source: str, yaml11_booleans: bool = False, kyaml_round_trip: bool = False
) -> list[Any]:
    """The non-empty documents of a YAML file, whatever their shape (a JSON patch is a list).

    Scalars resolve, anchors expand and errors read as in :func:`load_documents`; nothing
    is expanded or checked for being an object. ``yaml11_booleans`` reads values as
    go-yaml v2 does (what Flux's ``YAMLToJSON`` is built on): a plain ``yes``, ``on``,
    ``n``, ``Off``... is a boolean, not text. Keys keep their text either way.
    ``kyaml_round_trip`` is :func:`load_documents`' option, off here: pass True for
    documents kustomize holds as kyaml nodes (a strategic merge patch), not for the ones
    it converts to JSON (a JSON 6902 patch).
    """
    documents = _documents(
        data, source, yaml11_booleans=yaml11_booleans, kyaml_round_trip=kyaml_round_trip
    )
    return [document for document, _ in documents if document is not None]


def resolve_plain(text: str) -> Any:
    """What an unquoted, untagged scalar ``text`` decodes to (``"yes"`` stays a string)."""
    return _resolve_plain(text)


#: kyaml's document separator: a line starting with ``---``, not counting the first line.
_SEPARATOR = re.compile(rb"\n---[^\n]*\n")


def _chunks(data: bytes, source: str) -> Iterator[tuple[bytes, int]]:
    """The file split the way kustomize's reader splits it, with each chunk's first line.

    kyaml does not leave document boundaries to the YAML parser: it turns CRLF into LF,
    cuts the text at every line that starts with ``---`` (after the first line), refuses
    such a line if anything but a comment follows the dashes (a PEM block that is not
    indented, ``--- {inline: doc}``), and decodes one document from each chunk.
    """
    text = data.replace(b"\r\n", b"\n")
    start = line = 0
    for match in _SEPARATOR.finditer(text):
        rest = match.group()[4:].strip()
        separator_line = line + text.count(b"\n", start, match.start()) + 1
        if rest and not rest.startswith(b"#"):
            shown = match.group().strip().decode("utf-8", "replace")
            raise YamlError(
                f"invalid document separator in {source} line {separator_line + 1}: "
                f"{shown!r} (a line starting with --- ends a YAML document; indent it if it "
                "belongs to a value)"
            )
        yield text[start : match.start()] + b"\n", line
        start, line = match.end(), separator_line + 1
    yield text[start:], line


def _documents(
    data: bytes, source: str, *, yaml11_booleans: bool = False, kyaml_round_trip: bool = False
) -> Iterator[tuple[Any, int]]:
    """Each document's value and first line (0-based); YAML errors as YamlError.

    Like kustomize, only the first document of a chunk counts: text after a ``...``
    end marker that no ``---`` line follows is ignored.
    """
    for chunk, line_offset in _chunks(data, source):
        builder = _Builder(
            source,
            line_offset,
            yaml11_booleans=yaml11_booleans,
            kyaml_round_trip=kyaml_round_trip,
        )
        try:
            for document in builder.documents(yaml.parse(chunk, Loader=_Parser)):
                yield document
                break
        except yaml.MarkedYAMLError as exc:
            # A scanner error's context is where the broken token began (an unclosed
            # quote): the line to look at. A parser's context is the enclosing collection.
            scanning = isinstance(exc, yaml.scanner.ScannerError) and exc.context_mark is not None
            mark = exc.context_mark if scanning else exc.problem_mark
            where = f" line {mark.line + line_offset + 1}" if mark is not None else ""
            problem = exc.problem or str(exc)
            if exc.context:
                problem = f"{problem} ({exc.context})"
            raise YamlError(f"invalid YAML in {source}{where}: {problem}") from exc
        except yaml.reader.ReaderError as exc:
            raise YamlError(
                f"invalid YAML in {source}: {exc.reason} at byte {exc.position} "
                "(is the file UTF-8 text?)"
            ) from exc
        except yaml.YAMLError as exc:
            raise YamlError(f"invalid YAML in {source}: {exc}") from exc


def _expand_lists(document: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """``kind: ...List`` with ``items`` becomes its items, nested lists in place."""
    kind = document.get("kind")
    if not (isinstance(kind, str) and kind.endswith("List")) or "items" not in document:
        return [document]
    items = document["items"]
    if items is None:
        return []
    if not isinstance(items, list):
        raise YamlError(f"{kind} in {source} has items that are not a list")
    expanded: list[dict[str, Any]] = []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise YamlError(
                f"item {position} of {kind} in {source} is not a Kubernetes object (a mapping)"
            )
        expanded.extend(_expand_lists(item, source))
    return expanded


# -- block scalars after kyaml's round trip -------------------------------------------------

#: The line breaks a parsed block scalar can hold (the scanner turns CR and NEL into LF).
_BLOCK_BREAKS = frozenset("\n\u2028\u2029")
_BLOCK_LINES = re.compile("([\n\u2028\u2029])")
_SPACE_BEFORE_BREAK = re.compile(" [\n\u2028\u2029]")
#: What go-yaml v3 will not write in a block: characters ``is_printable`` refuses, but tabs.
_BLOCK_SPECIAL = re.compile("[^\t\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]")
_STRIP, _CLIP, _KEEP = "-", "", "+"


class _UnreadableBlock(ValueError):
    """A block scalar go-yaml v3 writes in a form it cannot read back."""


def _kyaml_block_scalar(value: str, *, folded: bool) -> str:
    """A ``|`` or ``>`` scalar's value as kustomize prints it.

    kustomize prints a resource by encoding its kyaml node with go-yaml v3, decoding
    that text again (``RNode.MarshalJSON``) and only then printing the result. The node
    keeps its block style through the encoding, so the value is written as a block once
    more (go-yaml v3 never wraps long lines). A literal block reads back unchanged; a
    folded one does not (see :func:`_folded_emission`). A value go-yaml cannot write as a
    block at all (a space before a line break or at the end, control characters) is
    written double-quoted and reads back unchanged.

    A value that starts with a tab gets no indentation indicator, so go-yaml's reader
    takes the tab for indentation and fails: :class:`_UnreadableBlock`, as kustomize fails.
    """
    if not value or value[-1] == " " or _SPACE_BEFORE_BREAK.search(value):
        return value
    if _BLOCK_SPECIAL.search(value):
        return value
    if value[0] == "\t":
        raise _UnreadableBlock(
            "kustomize cannot print a value that starts with a tab as a block scalar: "
            "go-yaml writes it without an indentation indicator and fails to read it back "
            "(found a tab character where an indentation space is expected)"
        )
    if not folded:
        return value
    if value[-1] not in _BLOCK_BREAKS:
        chomping = _STRIP
    elif len(value) == 1 or value[-2] in _BLOCK_BREAKS:
        chomping = _KEEP
    else:
        chomping = _CLIP
    return _read_folded(_folded_emission(value), chomping)


def _folded_emission(value: str) -> str:
    """The lines go-yaml v3's folded writer makes of ``value``, without their indentation.

    A folded block folds a single line break between two lines that start with a
    non-blank character into a space, so the writer doubles such breaks. It decides
    whether a line starts with a blank by looking at the first character of the whole
    value instead of the line after the break (``k := 0`` in
    ``yaml_emitter_write_folded_scalar``): when the value starts with a non-blank, a
    line that is followed by a more-indented one gets its break doubled too, and reads
    back with one more line break; when the value starts with a blank, no break is
    doubled and the breaks between normal lines read back as spaces. A line that
    starts with a blank keeps its single break either way.
    """
    pieces: list[str] = []
    double_breaks = value.lstrip("".join(_BLOCK_BREAKS))[:1] not in (" ", "\t")
    breaks = leading_blank = True
    for char in value:
        if char in _BLOCK_BREAKS:
            if char == "\n" and double_breaks and not breaks and not leading_blank:
                pieces.append("\n")
            breaks = True
        else:
            if breaks:
                leading_blank = char in " \t"
            breaks = False
        pieces.append(char)
    return "".join(pieces)


def _read_folded(body: str, chomping: str) -> str:
    """The value go-yaml's scanner reads from a folded block's lines (without indentation).

    ``yaml_parser_scan_block_scalar``: the break between two lines folds into a space
    when neither line starts with a blank and no empty line lies between them; empty
    lines between them stand for themselves; next to a line starting with a blank
    ("more indented") every break is kept.
    """
    pieces = _BLOCK_LINES.split(body)
    contents, terminators = pieces[0::2], [*pieces[1::2], ""]
    text: list[str] = []
    leading_break = trailing_breaks = ""
    leading_blank = False
    for content, terminator in zip(contents, terminators, strict=True):
        if not content:
            trailing_breaks += terminator
            continue
        trailing_blank = content[0] in " \t"
        if leading_blank or trailing_blank or leading_break != "\n":
            text.append(leading_break)
        elif not trailing_breaks:
            text.append(" ")
        text.append(trailing_breaks)
        text.append(content)
        leading_blank, leading_break, trailing_breaks = trailing_blank, terminator, ""
    if chomping != _STRIP:
        text.append(leading_break)
    if chomping == _KEEP:
        text.append(trailing_breaks)
    return "".join(text)


# -- printing --------------------------------------------------------------------------------

_BEST_WIDTH = 80
_BEST_INDENT = 2
_BREAKS = frozenset("\r\n\x85\u2028\u2029")
_BLANKZ = frozenset(" \t\r\n\x85\u2028\u2029\x00")
#: A scalar starting with one of these cannot be plain in block context.
_INDICATORS_FIRST = frozenset("#,[]{}&*!|>'\"%@`")
_NEL_RUN = re.compile(" *(?:\x85 *)+")
_ESCAPES = {
    "\x00": "0",
    "\x07": "a",
    "\x08": "b",
    "\t": "t",
    "\n": "n",
    "\x0b": "v",
    "\x0c": "f",
    "\r": "r",
    "\x1b": "e",
    '"': '"',
    "\\": "\\",
    "\x85": "N",
    "\xa0": "_",
    "\u2028": "L",
    "\u2029": "P",
}
_SIMPLE_TEXT = re.compile(r"[0-9A-Za-z_./-]+")

_PLAIN, _SINGLE, _DOUBLE, _LITERAL = "plain", "single", "double", "literal"


def _printable(char: str) -> bool:
    code = ord(char)
    return (
        code == 0x0A
        or 0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
    )


@dataclass(frozen=True)
class _Analysis:
    """Which block-context styles can hold a scalar (go-yaml v2 never emits flow scalars:
    its only flow collections are the empty ``{}`` and ``[]``)."""

    multiline: bool
    plain: bool
    single_quoted: bool
    block: bool


@lru_cache(maxsize=16384)
def _analyze(value: str) -> _Analysis:
    """libyaml's ``yaml_emitter_analyze_scalar``, block context only."""
    if not value:
        return _Analysis(multiline=False, plain=True, single_quoted=True, block=False)
    if _SIMPLE_TEXT.fullmatch(value) and value[0] != "-" and not value.startswith("..."):
        return _Analysis(multiline=False, plain=True, single_quoted=True, block=True)
    indicators = value.startswith(("---", "..."))
    line_breaks = special = False
    leading_space = leading_break = trailing_space = trailing_break = False
    break_space = space_break = previous_space = previous_break = False
    preceded_by_whitespace = True
    last = len(value) - 1
    for i, char in enumerate(value):
        followed_by_whitespace = i == last or value[i + 1] in " \t"
        if i == 0:
            if char in _INDICATORS_FIRST or (char in "?:-" and followed_by_whitespace):
                indicators = True
        elif (char == ":" and followed_by_whitespace) or (char == "#" and preceded_by_whitespace):
            indicators = True
        if not _printable(char):
            special = True
        if char == " ":
            if i == 0:
                leading_space = True
            if i == last:
                trailing_space = True
            if previous_break:
                break_space = True
            previous_space, previous_break = True, False
        elif char in _BREAKS:
            line_breaks = True
            if i == 0:
                leading_break = True
            if i == last:
                trailing_break = True
            if previous_space:
                space_break = True
            previous_space, previous_break = False, True
        else:
            previous_space = previous_break = False
        preceded_by_whitespace = char in _BLANKZ
    edges = leading_space or leading_break or trailing_space or trailing_break
    return _Analysis(
        multiline=line_breaks,
        plain=not (edges or break_space or space_break or special or line_breaks or indicators),
        single_quoted=not (break_space or space_break or special),
        block=not (trailing_space or space_break or special),
    )


def _go_float_text(value: float) -> str:
    """What ``json.Marshal`` then go-yaml v2 make of a float64."""
    if math.isnan(value) or math.isinf(value):
        raise YamlError(f"json: unsupported value: {value} (kustomize cannot print it)")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    significant = all_digits.lstrip("0")
    # value == 0.<digits> * 10**point
    point = len(whole) + (int(exponent) if exponent else 0) - (len(all_digits) - len(significant))
    digits = significant.rstrip("0")
    if 1e-6 <= abs(value) < 1e21 and point >= len(digits):
        # JSON writes an integer literal, which go-yaml reads back as an int if it fits.
        integer = int(sign + digits + "0" * (point - len(digits)))
        if _INT64_MIN <= integer <= _UINT64_MAX:
            return str(integer)
    # Otherwise go-yaml holds a float64 and prints it with strconv's shortest %g.
    exp = point - 1
    if exp < -4 or exp >= 6:
        head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{head}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _key_cmp(a: str, b: str) -> int:
    """go-yaml v2's map key order (``keyList.Less``) as a comparison."""
    return -1 if _key_less(a, b) else (1 if _key_less(b, a) else 0)


def _key_less(a: str, b: str) -> bool:
    for i in range(min(len(a), len(b))):
        ca, cb = a[i], b[i]
        if ca == cb:
            continue
        la, lb = ca.isalpha(), cb.isalpha()
        if la and lb:
            return ca < cb
        if la or lb:
            return lb
        an = bn = 0
        if ca == "0" or cb == "0":
            j = i - 1
            while j >= 0 and a[j].isdecimal():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and a[ai].isdecimal():
            an = an * 10 + ord(a[ai]) - 48
            ai += 1
        bi = i
        while bi < len(b) and b[bi].isdecimal():
            bn = bn * 10 + ord(b[bi]) - 48
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return ca < cb
    return len(a) < len(b)


_LETTERS_ONLY = re.compile(r"[A-Za-z]*")


def _sorted_keys(keys: list[str]) -> list[str]:
    if all(_LETTERS_ONLY.fullmatch(key) for key in keys):
        return sorted(keys)  # letters compare by code point: the common, fast case
    return sorted(keys, key=cmp_to_key(_key_cmp))


class _Emitter:
    """The subset of libyaml's emitter go-yaml v2 drives for a JSON-shaped value."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.column = 0
        self.whitespace = True
        self.indention = True
        self.indent = -1
        self.indents: list[int] = []

    # low-level writes

    def put(self, text: str) -> None:
        self.parts.append(text)
        self.column += len(text)

    def put_break(self) -> None:
        self.parts.append("\n")
        self.column = 0

    def write_break(self, char: str) -> None:
        """A line break of a scalar's text: ``\\n`` as the emitter's, any other kept as is."""
        if char == "\n":
            self.put_break()
        else:
            self.parts.append(char)
            self.column = 0
        self.indention = True

    def write_indent(self) -> None:
        indent = max(self.indent, 0)
        if (
            not self.indention
            or self.column > indent
            or (self.column == indent and not self.whitespace)
        ):
            self.put_break()
        if self.column < indent:
            self.put(" " * (indent - self.column))
        self.whitespace = True
        self.indention = True

    def write_indicator(
        self, indicator: str, need_whitespace: bool, is_whitespace: bool, is_indention: bool
    ) -> None:
        if need_whitespace and not self.whitespace:
            self.put(" ")
        self.put(indicator)
        self.whitespace = is_whitespace
        self.indention = self.indention and is_indention

    def increase_indent(self, flow: bool, indentless: bool) -> None:
        self.indents.append(self.indent)
        if self.indent < 0:
            self.indent = _BEST_INDENT if flow else 0
        elif not indentless:
            self.indent += _BEST_INDENT

    def pop_indent(self) -> None:
        self.indent = self.indents.pop()

    # nodes

    def node(self, value: Any, *, mapping: bool = False, simple_key: bool = False) -> None:
        if isinstance(value, Mapping):
            if not value:
                self.empty("{", "}")
            else:
                self.block_mapping(value)
        elif isinstance(value, list | tuple):
            if not value:
                self.empty("[", "]")
            else:
                self.block_sequence(value, mapping)
        else:
            text, style = _scalar_text(value)
            self.scalar(text, style, simple_key)

    def empty(self, open_: str, close: str) -> None:
        self.write_indicator(open_, True, True, False)
        self.increase_indent(True, False)
        self.pop_indent()
        self.write_indicator(close, False, False, False)

    def block_mapping(self, value: Mapping[str, Any]) -> None:
        self.increase_indent(False, False)
        keys = list(value)
        for key in keys:
            if not isinstance(key, str):
                raise YamlError(
                    f"json: unsupported type: map key {key!r} is not a string "
                    "(kustomize cannot print it)"
                )
        for key in _sorted_keys(keys):
            self.write_indent()
            if "\x85" in key:
                # kustomize's JSON-to-YAML step cannot read a raw NEL back in a key.
                raise YamlError(
                    f"map key {key!r} holds a NEL (U+0085) line break, which kustomize cannot print"
                )
            text = key
            analysis = _analyze(text)
            if not analysis.multiline and len(text.encode()) <= 128:
                self.scalar(text, _string_style(text), True, analysis)
                self.write_indicator(":", False, False, False)
            else:
                self.write_indicator("?", True, False, True)
                self.scalar(text, _string_style(text), False, analysis)
                self.write_indent()
                self.write_indicator(":", True, False, True)
            self.node(value[key], mapping=True)
        self.pop_indent()

    def block_sequence(self, value: Sequence[Any], mapping: bool) -> None:
        self.increase_indent(False, mapping and not self.indention)
        for item in value:
            self.write_indent()
            self.write_indicator("-", True, False, True)
            self.node(item)
        self.pop_indent()

    def scalar(
        self, text: str, style: str, simple_key: bool, analysis: _Analysis | None = None
    ) -> None:
        facts = analysis or _analyze(text)
        if simple_key and facts.multiline:
            style = _DOUBLE
        if style == _PLAIN and (not facts.plain or (not text and simple_key)):
            style = _SINGLE
        if style == _SINGLE and not facts.single_quoted:
            style = _DOUBLE
        if style == _LITERAL and (not facts.block or simple_key):
            style = _DOUBLE
        self.increase_indent(True, False)
        allow_breaks = not simple_key
        if style == _PLAIN:
            self.write_plain(text, allow_breaks)
        elif style == _SINGLE:
            self.write_single(text, allow_breaks)
        elif style == _DOUBLE:
            self.write_double(text, allow_breaks)
        else:
            self.write_literal(text)
        self.pop_indent()

    # scalar writers (libyaml's, character by character where folding can happen)

    def write_plain(self, value: str, allow_breaks: bool) -> None:
        if not self.whitespace:
            self.put(" ")
        if (" " not in value or self.column + len(value) <= _BEST_WIDTH) and not (
            _BREAKS.intersection(value)
        ):
            self.put(value)
        else:
            self._write_folding(value, allow_breaks, quote=None)
        self.whitespace = False
        self.indention = False

    def write_single(self, value: str, allow_breaks: bool) -> None:
        self.write_indicator("'", True, False, False)
        quoted = value.replace("'", "''")
        if (" " not in value or self.column + len(quoted) <= _BEST_WIDTH) and not (
            _BREAKS.intersection(value)
        ):
            self.put(quoted)
        else:
            self._write_folding(value, allow_breaks, quote="'")
        self.write_indicator("'", False, False, False)
        self.whitespace = False
        self.indention = False

    def _write_folding(self, value: str, allow_breaks: bool, quote: str | None) -> None:
        spaces = breaks = False
        last = len(value) - 1
        i = 0
        while i <= last:
            char = value[i]
            if char == " ":
                next_is_space = i < last and value[i + 1] == " "
                inner = quote is None or (0 < i < last)
                if (
                    allow_breaks
                    and not spaces
                    and self.column > _BEST_WIDTH
                    and inner
                    and not next_is_space
                ):
                    self.write_indent()
                else:
                    self.put(char)
                spaces = True
            elif char in _BREAKS:
                if not breaks and char == "\n":
                    self.put_break()
                self.write_break(char)
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put("''" if char == "'" and quote == "'" else char)
                self.indention = False
                spaces = breaks = False
            i += 1

    def write_double(self, value: str, allow_breaks: bool) -> None:
        self.write_indicator('"', True, False, False)
        spaces = False
        last = len(value) - 1
        # go-yaml's is_bom looks at the start of the value, not at the current character:
        # a value that starts with a BOM has every character escaped.
        escape_all = value.startswith("\ufeff")
        for i, char in enumerate(value):
            if escape_all or not _printable(char) or char in _BREAKS or char in '"\\':
                escape = _ESCAPES.get(char)
                if escape is None:
                    code = ord(char)
                    if code <= 0xFF:
                        escape = f"x{code:02X}"
                    elif code <= 0xFFFF:
                        escape = f"u{code:04X}"
                    else:
                        escape = f"U{code:08X}"
                self.put("\\" + escape)
                spaces = False
            elif char == " ":
                if allow_breaks and not spaces and self.column > _BEST_WIDTH and 0 < i < last:
                    self.write_indent()
                    if value[i + 1] == " ":
                        self.put("\\")
                else:
                    self.put(char)
                spaces = True
            else:
                self.put(char)
                spaces = False
        self.write_indicator('"', False, False, False)
        self.whitespace = False
        self.indention = False

    def write_literal(self, value: str) -> None:
        self.write_indicator("|", True, False, False)
        if value[:1] == " " or value[:1] in _BREAKS:
            self.write_indicator(str(_BEST_INDENT), False, False, False)
        chomp = ""
        if not value or value[-1] not in _BREAKS:
            chomp = "-"
        elif len(value) == 1 or value[-2] in _BREAKS:
            chomp = "+"
        if chomp:
            self.write_indicator(chomp, False, False, False)
        self.put_break()
        self.indention = True
        self.whitespace = True
        breaks = True
        for char in value:
            if char in _BREAKS:
                self.write_break(char)
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put(char)
                self.indention = False
                breaks = False


def _json_string(value: str) -> str:
    """A string after JSON and go-yaml v2's reading of it: raw NELs fold like breaks."""
    if "\x85" not in value:
        return value

    def fold(match: re.Match[str]) -> str:
        count = match.group().count("\x85")
        return " " if count == 1 else "\n" * (count - 1)

    return _NEL_RUN.sub(fold, value)


@lru_cache(maxsize=16384)
def _string_style(text: str) -> str:
    if "\n" in text:
        return _LITERAL
    if text and _resolves_to_string_v2(text):
        return _PLAIN
    return _DOUBLE


def _scalar_text(value: Any) -> tuple[str, str]:
    if value is None:
        return "null", _PLAIN
    if value is True:
        return "true", _PLAIN
    if value is False:
        return "false", _PLAIN
    if isinstance(value, Timestamp):
        text = _json_string(value.rfc3339())
        return text, _string_style(text)
    if isinstance(value, str):
        text = _json_string(value)
        return text, _string_style(text)
    if isinstance(value, int):
        return str(value), _PLAIN
    if isinstance(value, float):
        return _go_float_text(value), _PLAIN
    raise YamlError(f"cannot print a {type(value).__name__} value: {value!r}")


def dump_documents(objects: Sequence[Mapping[str, Any]]) -> str:
    """The objects as ``kubectl kustomize`` prints them: sorted keys, ``---`` between."""
    documents: list[str] = []
    for obj in objects:
        emitter = _Emitter()
        emitter.node(obj)
        emitter.write_indent()
        documents.append("".join(emitter.parts))
    return "---\n".join(documents)
