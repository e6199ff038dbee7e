"""Flux's image policy markers: rewrite marked YAML fields, every other byte untouched.

An ImageUpdateAutomation with the ``Setters`` strategy looks for scalar values carrying a
line comment such as ``# {"$imagepolicy": "flux-system:app"}`` and replaces the value with
what the named ImagePolicy selected. Flux does this by re-serialising each document through
kyaml, which reflows files it touches; users review these commits, so fluxd edits only the
characters of the marked values and keeps comments, key order, quoting, indentation, line
endings and document separators exactly as they were.

The marker's value is ``NAMESPACE:NAME`` (the full image reference, ``name:tag`` or
``name:tag@digest``) optionally followed by ``:tag``, ``:name`` or ``:digest``. Like Flux, a
file is only parsed when its bytes contain the token ``"$imagepolicy"``, and a marker naming
a policy that is not given is skipped -- but reported, so the reconciler can say so.

The spans come from ruamel.yaml's composed nodes (their start and end marks), so the YAML
grammar decides where a value begins and ends; ruamel is imported only when a file needs
parsing, which keeps importing this module cheap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ruamel.yaml.nodes import MappingNode, Node, ScalarNode

__all__ = [
    "Change",
    "FileUpdate",
    "ImageRef",
    "ObjectId",
    "SetterError",
    "SetterResult",
    "UnknownMarker",
    "apply_setters",
    "candidate",
]

MARKER_TOKEN = b'"$imagepolicy"'
MARKER_KEY = "$imagepolicy"

# The comment that may follow a value on its line; group 1 is the comment's text.
_TRAILING_COMMENT = re.compile(r"[ \t]+#([^\r\n]*)")
# After an empty mapping value: the key's colon, then the comment.
_EMPTY_VALUE_COMMENT = re.compile(r"[ \t]*:[ \t]+#([^\r\n]*)")
# A block scalar's indicator with its chomping and indentation hints.
_BLOCK_HEADER = re.compile(r"[|>][-+0-9]*")
# Characters that make a plain scalar start something else (an anchor, alias, tag, ...).
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")


@dataclass(frozen=True)
class ImageRef:
    """The image an ImagePolicy selected: its status ``latestRef``."""

    name: str
    tag: str
    digest: str = ""

    def ref(self) -> str:
        """The reference a ``NAMESPACE:NAME`` marker sets: ``name:tag[@digest]``."""
        reference = f"{self.name}:{self.tag}"
        return f"{reference}@{self.digest}" if self.digest else reference


@dataclass(frozen=True, order=True)
class ObjectId:
    """The YAML document a changed field belongs to (empty strings where absent)."""

    api_version: str
    kind: str
    name: str
    namespace: str


@dataclass(frozen=True)
class Change:
    """One field rewritten: its value before and after, and the marker's setter name."""

    old_value: str
    new_value: str
    setter: str


@dataclass(frozen=True)
class FileUpdate:
    """A file with at least one change: its new bytes and what changed, in file order."""

    path: str
    content: bytes
    changes: tuple[tuple[ObjectId, Change], ...]


@dataclass(frozen=True)
class UnknownMarker:
    """A marker whose setter names no given policy (1-based line)."""

    path: str
    line: int
    setter: str


@dataclass(frozen=True)
class SetterResult:
    """The files that changed and the markers that named no known policy."""

    files: tuple[FileUpdate, ...]
    unknown: tuple[UnknownMarker, ...]


class SetterError(ValueError):
    """A marked file cannot be updated; the message names the file and line."""


def candidate(path: str) -> bool:
    """True for .yaml/.yml/Kustomization names."""
    name = path.rsplit("/", 1)[-1]
    return name.endswith((".yaml", ".yml")) or name == "Kustomization"


def apply_setters(
    files: Iterable[tuple[str, bytes]], policies: Mapping[str, ImageRef]
) -> SetterResult:
    """files: (path relative to the repo root, bytes); policies keyed "namespace:name".

    Files whose names are not candidates, or whose bytes lack the marker token, are not
    read. Raises SetterError for a marked file that is not valid YAML or UTF-8, or for a
    known marker on a value that cannot be rewritten in place.
    """
    setters = _setter_values(policies)
    updates: list[FileUpdate] = []
    unknown: list[UnknownMarker] = []
    for path, content in files:
        if not candidate(path) or MARKER_TOKEN not in content:
            continue
        update = _update_file(path, content, setters, unknown)
        if update is not None:
            updates.append(update)
    return SetterResult(files=tuple(updates), unknown=tuple(unknown))


def _setter_values(policies: Mapping[str, ImageRef]) -> dict[str, str]:
    """Every setter name a policy defines, with the value it writes."""
    values: dict[str, str] = {}
    for key, image in policies.items():
        values[key] = image.ref()
        values[f"{key}:tag"] = image.tag
        values[f"{key}:name"] = image.name
        values[f"{key}:digest"] = image.digest
    return values


@dataclass(frozen=True)
class _Span:
    """Where a settable scalar's text sits, what it reads as, and its quoting style."""

    start: int
    end: int
    value: str
    style: str | None


@dataclass(frozen=True)
class _Edit:
    """A span's replacement text and the change it records."""

    span: _Span
    text: str
    object_id: ObjectId
    change: Change


def _update_file(
    path: str, content: bytes, setters: Mapping[str, str], unknown: list[UnknownMarker]
) -> FileUpdate | None:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SetterError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    edits: list[_Edit] = []
    unknown_here: list[UnknownMarker] = []
    for root in _compose(path, text):
        object_id = _object_id(root)
        for key, node in _value_nodes(root):
            setter, line = _marker_of(text, key, node)
            if setter is None:
                continue
            if setter not in setters:
                unknown_here.append(UnknownMarker(path=path, line=line, setter=setter))
                continue
            span = _value_span(path, text, node, setter, line)
            new_value = setters[setter]
            if span.value == new_value:
                continue
            change = Change(span.value, new_value, setter)
            edits.append(_Edit(span, _render(new_value, span.style), object_id, change))
    unknown.extend(sorted(unknown_here, key=lambda marker: marker.line))
    if not edits:
        return None
    edits.sort(key=lambda edit: edit.span.start)
    for edit in reversed(edits):
        text = text[: edit.span.start] + edit.text + text[edit.span.end :]
    changes = tuple((edit.object_id, edit.change) for edit in edits)
    return FileUpdate(path=path, content=text.encode("utf-8"), changes=changes)


def _compose(path: str, text: str) -> list[Node]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return [root for root in YAML(typ="safe", pure=True).compose_all(text) if root is not None]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "cannot be parsed"
        raise SetterError(f"{path}: invalid YAML{where}: {problem}") from exc
    except YAMLError as exc:
        raise SetterError(f"{path}: invalid YAML: {exc}") from exc


def _object_id(root: Node) -> ObjectId:
    from ruamel.yaml.nodes import MappingNode

    if not isinstance(root, MappingNode):
        return ObjectId("", "", "", "")
    metadata = _child(root, "metadata")
    if not isinstance(metadata, MappingNode):
        metadata = None
    return ObjectId(
        api_version=_scalar_text(_child(root, "apiVersion")),
        kind=_scalar_text(_child(root, "kind")),
        name=_scalar_text(_child(metadata, "name")) if metadata is not None else "",
        namespace=_scalar_text(_child(metadata, "namespace")) if metadata is not None else "",
    )


def _child(mapping: MappingNode, key: str) -> Node | None:
    from ruamel.yaml.nodes import ScalarNode

    for key_node, value_node in mapping.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node  # type: ignore[no-any-return]
    return None


def _scalar_text(node: Node | None) -> str:
    from ruamel.yaml.nodes import ScalarNode

    return str(node.value) if isinstance(node, ScalarNode) else ""


def _value_nodes(root: Node) -> Iterator[tuple[Node | None, Node]]:
    """Every value in a document (mapping values and sequence items) with its key, once.

    An alias composes to its anchor's node, so the seen set visits each node once. The
    order is not the file's: callers sort what they find by position.
    """
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    seen: set[int] = set()
    pending: list[tuple[Node | None, Node]] = [(None, root)]
    while pending:
        key, node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield key, node
        if isinstance(node, MappingNode):
            pending.extend((key_node, value_node) for key_node, value_node in node.value)
        elif isinstance(node, SequenceNode):
            pending.extend((None, item) for item in node.value)


def _marker_of(text: str, key: Node | None, node: Node) -> tuple[str | None, int]:
    """The setter named by the marker comment on a value's line, and that line (1-based)."""
    from ruamel.yaml.nodes import CollectionNode, ScalarNode

    if isinstance(node, ScalarNode):
        if node.style in ("|", ">"):
            # A block scalar's comment sits on its header line, after the indicator.
            header = _BLOCK_HEADER.match(text, _value_start(text, node))
            comment = _TRAILING_COMMENT.match(text, header.end()) if header else None
        elif node.start_mark.index == node.end_mark.index:
            # An empty value has no characters; its comment follows the key's colon.
            if key is None:
                return None, 0
            comment = _EMPTY_VALUE_COMMENT.match(text, key.end_mark.index)
            return _setter_in(comment), key.start_mark.line + 1
        else:
            comment = _TRAILING_COMMENT.match(text, node.end_mark.index)
    elif isinstance(node, CollectionNode) and node.flow_style:
        comment = _TRAILING_COMMENT.match(text, node.end_mark.index)
    else:
        # A block collection ends where the next line begins: it has no line comment.
        return None, 0
    return _setter_in(comment), node.start_mark.line + 1


def _setter_in(comment: re.Match[str] | None) -> str | None:
    """The ``$imagepolicy`` value of a comment that is a marker's JSON object."""
    if comment is None or MARKER_KEY not in comment.group(1):
        return None
    try:
        marker = json.loads(comment.group(1).strip())
    except ValueError:
        return None
    setter = marker.get(MARKER_KEY) if isinstance(marker, dict) else None
    return setter if isinstance(setter, str) else None


def _value_start(text: str, node: ScalarNode) -> int:
    """Where a scalar's own text begins, after any anchor or tag before it."""
    start: int = node.start_mark.index
    if node.style in ('"', "'", "|", ">"):
        return text.index(node.style, start, node.end_mark.index)
    return int(node.end_mark.index) - len(node.value)


def _value_span(path: str, text: str, node: Node, setter: str, line: int) -> _Span:
    """The characters a marked value occupies; SetterError when it cannot be set in place."""
    from ruamel.yaml.nodes import ScalarNode

    where = f"{path}:{line}: the image policy marker {setter!r} is on"
    supported = "only plain, single-quoted and double-quoted single-line values can be set"
    if not isinstance(node, ScalarNode):
        raise SetterError(f"{where} a flow collection; {supported}")
    if node.style in ("|", ">"):
        raise SetterError(f"{where} a block scalar; {supported}")
    if node.start_mark.index == node.end_mark.index:
        raise SetterError(f"{where} an empty value; {supported}")
    if node.start_mark.line != node.end_mark.line:
        raise SetterError(f"{where} a multi-line value; {supported}")
    start = _value_start(text, node)
    return _Span(start=start, end=node.end_mark.index, value=node.value, style=node.style)


def _render(value: str, style: str | None) -> str:
    """The value written in the original style, double-quoted when that would misread."""
    if style == "'" and value.isprintable():
        return "'" + value.replace("'", "''") + "'"
    if style is None and _reads_back_plain(value):
        return value
    return json.dumps(value, ensure_ascii=False)


def _reads_back_plain(value: str) -> bool:
    """True when ``value`` written unquoted reads back as that same string.

    Checked against YAML 1.1 (PyYAML: ``yes``, ``1:20``) and 1.2 (ruamel: ``0o17``), as
    the Go YAML library resolves tags from both; kyaml tags such values ``!!str``.
    """
    if not value or value != value.strip() or not value.isprintable():
        return False
    if value[0] in _INDICATORS and (value[0] not in "-?:" or len(value) == 1 or value[1] == " "):
        return False
    if ": " in value or " #" in value or value.endswith(":"):
        return False
    import yaml
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        yaml_1_1 = yaml.safe_load(value)
        yaml_1_2 = YAML(typ="safe", pure=True).load(value)
    except (yaml.YAMLError, YAMLError):
        return False
    return bool(yaml_1_1 == value and yaml_1_2 == value)
