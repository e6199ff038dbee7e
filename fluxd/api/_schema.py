"""A small schema layer: typed Python classes in, CRD schemas and parsers out.

Every Flux API type is written once, as a frozen keyword-only dataclass whose
attributes are snake_case and whose ``field(...)`` metadata carries what the wire
format needs: the camelCase JSON name, the description, the default, and the
validation rules Flux declares with kubebuilder markers (enum, pattern, lengths,
bounds). Two things are derived from that single definition:

* ``openapi_schema(cls)`` -- the OpenAPI v3 *structural* schema that goes into the
  CustomResourceDefinition, so the API server rejects what Flux would reject;
* ``from_dict(cls, data)`` -- a parser that applies the same defaults and the same
  validation and hands reconcilers a typed, immutable spec. Its errors are
  ``SpecError`` instances whose message starts with the field path
  (``spec.ref.semver: ...``), because a ``Ready=False`` message must say *where*.

The API server already validates what it stores, so why validate again? Objects can
reach fluxd without passing through this schema (older stored versions, a CRD
installed by real Flux, unit tests), and defaults must be applied before reconcile
logic reads them. Keeping both sides generated from one class means they can never
disagree.

Cross-field rules (Flux's CEL ``x-kubernetes-validations``) are declared per class
as ``Rule`` entries: the CEL text goes into the CRD verbatim, and a Python predicate
enforces the same rule in the parser.

Fields several kinds share (a source's ``interval`` and ``timeout``, a Helm action's
``disableHooks``) are declared once, on a base class the kinds derive from, so their
wire name, type, default and validation cannot differ between kinds. Flux words some
of them for each kind ("Timeout of Git operations", "Timeout of registry operations"):
a class names those in ``__descriptions__`` (attribute name -> description), which
replaces the inherited description and nothing else. Inherited fields come first in
the dataclass; nothing depends on that order but which of several invalid fields the
parser names: schemas sort properties by name, and classes are built by keyword.

Supported attribute types are deliberately few: ``str``, ``bool``, ``int``,
``float``, nested API classes, ``X | None``, ``tuple[X, ...]`` (JSON arrays),
``Mapping[str, str]`` (string maps) and ``Any`` (free-form JSON, stored with
``x-kubernetes-preserve-unknown-fields``).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "DURATION_PATTERN",
    "SHORT_DURATION_PATTERN",
    "FieldInfo",
    "Rule",
    "SpecError",
    "field",
    "from_dict",
    "openapi_schema",
    "parse_duration",
    "to_dict",
]

T = TypeVar("T")

#: Go ``time.Duration`` strings as Flux accepts them for intervals (``1m0s``, ``1.5h``).
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
#: The same without hours, used by Flux for timeouts of network operations.
SHORT_DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class SpecError(ValueError):
    """An object does not match its API schema; ``path`` names the offending field."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True, kw_only=True)
class FieldInfo:
    """What the wire format knows about one attribute (kept in dataclass metadata)."""

    json_name: str
    description: str
    required: bool = False
    schema_default: Any = dataclasses.MISSING
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    format: str | None = None
    list_type: str | None = None
    list_map_keys: tuple[str, ...] | None = None
    map_type: str | None = None


@dataclass(frozen=True, kw_only=True)
class Rule:
    """A cross-field rule: CEL for the API server, a predicate for the parser."""

    cel: str
    message: str
    check: Callable[[Any], bool]


_META_KEY = "fluxd.api"


def field(
    json_name: str,
    description: str,
    *,
    required: bool = False,
    default: Any = dataclasses.MISSING,
    schema_default: Any = dataclasses.MISSING,
    enum: tuple[str, ...] | None = None,
    pattern: str | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    format: str | None = None,
    list_type: str | None = None,
    list_map_keys: tuple[str, ...] | None = None,
    map_type: str | None = None,
) -> Any:
    """Declare an API attribute.

    ``schema_default`` is the default Flux publishes in its CRD (the API server fills
    it in); it is also the Python default unless ``default`` is given. ``default``
    alone is a Python-only default for an absent optional field (``False`` for flags,
    ``()`` for lists, ``None`` for objects) that is *not* written into the CRD,
    mirroring Go's zero values. A required field takes no ``default``; it may take a
    ``schema_default``, which the API server fills in before it checks required
    fields, so the parser fills it in too.

    ``enum`` on an array of strings constrains each item. ``list_type`` and
    ``map_type`` are the ``x-kubernetes-list-type``/``x-kubernetes-map-type`` markers
    (``atomic``: the field is replaced as a whole by server-side apply);
    ``list_map_keys`` are the item keys of a ``list_type="map"`` list.
    """
    info = FieldInfo(
        json_name=json_name,
        description=description,
        required=required,
        schema_default=schema_default,
        enum=enum,
        pattern=pattern,
        min_length=min_length,
        max_length=max_length,
        minimum=minimum,
        maximum=maximum,
        min_items=min_items,
        max_items=max_items,
        format=format,
        list_type=list_type,
        list_map_keys=list_map_keys,
        map_type=map_type,
    )
    metadata = {_META_KEY: info}
    if required and schema_default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    value = default if default is not dataclasses.MISSING else schema_default
    if value is dataclasses.MISSING:
        value = None
    if isinstance(value, dict | list):
        frozen = copy.deepcopy(value)
        return dataclasses.field(default_factory=lambda: copy.deepcopy(frozen), metadata=metadata)
    return dataclasses.field(default=value, metadata=metadata)


# --------------------------------------------------------------------------- introspection


@dataclass(frozen=True)
class _Attr:
    name: str
    info: FieldInfo
    hint: Any
    field: dataclasses.Field[Any]


_ATTR_CACHE: dict[type[Any], tuple[_Attr, ...]] = {}


def _attrs(cls: type[Any]) -> tuple[_Attr, ...]:
    cached = _ATTR_CACHE.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    descriptions: Mapping[str, str] = getattr(cls, "__descriptions__", {})
    out = []
    for f in dataclasses.fields(cls):
        info = f.metadata.get(_META_KEY)
        if not isinstance(info, FieldInfo):
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with fluxd.api field()")
        if f.name in descriptions:
            info = dataclasses.replace(info, description=descriptions[f.name])
        out.append(_Attr(f.name, info, hints[f.name], f))
    unknown = sorted(set(descriptions) - {a.name for a in out})
    if unknown:
        raise TypeError(f"{cls.__name__}.__descriptions__ names no field: {', '.join(unknown)}")
    result = tuple(out)
    _ATTR_CACHE[cls] = result
    return result


def _rules(cls: type[Any]) -> tuple[Rule, ...]:
    rules = getattr(cls, "__rules__", ())
    return tuple(rules)


def _unwrap_optional(hint: Any) -> Any:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union {hint!r}")
        return args[0]
    return hint


def _description(cls: type[Any]) -> str:
    doc = cls.__doc__ or ""
    return " ".join(doc.split("\n\n")[0].split())


# --------------------------------------------------------------------------- OpenAPI


def openapi_schema(cls: type[Any]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of an API class, properties sorted by name."""
    schema: dict[str, Any] = {"description": _description(cls), "type": "object"}
    props: dict[str, Any] = {}
    required: list[str] = []
    for attr in sorted(_attrs(cls), key=lambda a: a.info.json_name):
        props[attr.info.json_name] = _field_schema(attr.hint, attr.info)
        if attr.info.required:
            required.append(attr.info.json_name)
    schema["properties"] = props
    if required:
        schema["required"] = required
    rules = _rules(cls)
    if rules:
        schema["x-kubernetes-validations"] = [{"message": r.message, "rule": r.cel} for r in rules]
    return schema


def _field_schema(hint: Any, info: FieldInfo) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    if info.schema_default is not dataclasses.MISSING:
        schema["default"] = _jsonable_default(info.schema_default)
    schema["description"] = info.description
    schema.update(_type_schema(_unwrap_optional(hint)))
    # A nested class brings its own description; the field's wins.
    schema["description"] = info.description
    enum = list(info.enum) if info.enum else None
    if enum and schema.get("type") == "array":
        schema["items"] = {**schema["items"], "enum": enum}
        enum = None
    for key, value in (
        ("enum", enum),
        ("format", info.format),
        ("maxItems", info.max_items),
        ("maxLength", info.max_length),
        ("maximum", info.maximum),
        ("minItems", info.min_items),
        ("minLength", info.min_length),
        ("minimum", info.minimum),
        ("pattern", info.pattern),
        ("x-kubernetes-list-map-keys", list(info.list_map_keys) if info.list_map_keys else None),
        ("x-kubernetes-list-type", info.list_type),
        ("x-kubernetes-map-type", info.map_type),
    ):
        if value is not None:
            schema[key] = value
    return schema


def _jsonable_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return copy.deepcopy(value)


def _type_schema(hint: Any) -> dict[str, Any]:
    if hint is Any:
        return {"x-kubernetes-preserve-unknown-fields": True}
    if hint is str:
        return {"type": "string"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return {"items": _item_schema(item), "type": "array"}
    if origin in (Mapping, dict):
        value = typing.get_args(hint)[1]
        return {"additionalProperties": _item_schema(value), "type": "object"}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return openapi_schema(hint)
    raise TypeError(f"unsupported API attribute type {hint!r}")


def _item_schema(hint: Any) -> dict[str, Any]:
    schema = _type_schema(hint)
    if hint is Any:
        # Items of free-form arrays are still JSON objects in every Flux use.
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return schema


# --------------------------------------------------------------------------- parser


def from_dict(cls: type[T], data: Any, path: str = "spec") -> T:
    """Parse ``data`` (decoded JSON/YAML) into ``cls``, applying defaults and rules.

    Unknown keys are ignored, like the API server prunes them. Raises ``SpecError``
    naming the first offending field.
    """
    if not isinstance(data, Mapping):
        raise SpecError(path, f"must be an object, got {_json_type(data)}")
    values: dict[str, Any] = {}
    for attr in _attrs(cls):
        key = attr.info.json_name
        sub = f"{path}.{key}"
        if key not in data or data[key] is None:
            if attr.info.required and attr.info.schema_default is dataclasses.MISSING:
                raise SpecError(sub, "required value is missing")
            continue  # the dataclass default applies
        values[attr.name] = _parse_value(attr.hint, attr.info, data[key], sub)
    instance = cls(**values)
    for rule in _rules(cls):
        if not rule.check(instance):
            raise SpecError(path, rule.message)
    return instance


def _parse_value(hint: Any, info: FieldInfo | None, value: Any, path: str) -> Any:
    hint = _unwrap_optional(hint)
    parsed = _convert(hint, value, path)
    if info is not None:
        _check_constraints(info, parsed, path)
    return parsed


def _convert(hint: Any, value: Any, path: str) -> Any:
    if hint is Any:
        return copy.deepcopy(value)
    if hint is str:
        if not isinstance(value, str):
            raise SpecError(path, f"must be a string, got {_json_type(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise SpecError(path, f"must be a boolean, got {_json_type(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(path, f"must be an integer, got {_json_type(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(path, f"must be a number, got {_json_type(value)}")
        return float(value)
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise SpecError(path, f"must be an array, got {_json_type(value)}")
        item = typing.get_args(hint)[0]
        return tuple(_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise SpecError(path, f"must be an object, got {_json_type(value)}")
        item = typing.get_args(hint)[1]
        return {str(k): _convert(item, v, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return from_dict(hint, value, path)
    raise TypeError(f"unsupported API attribute type {hint!r}")


def _check_constraints(info: FieldInfo, value: Any, path: str) -> None:
    if isinstance(value, str):
        _check_enum(info.enum, value, path)
        if info.pattern is not None and re.search(info.pattern, value) is None:
            raise SpecError(path, f"invalid value {value!r}, must match {info.pattern!r}")
        if info.min_length is not None and len(value) < info.min_length:
            raise SpecError(path, f"must be at least {info.min_length} characters long")
        if info.max_length is not None and len(value) > info.max_length:
            raise SpecError(path, f"must be at most {info.max_length} characters long")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if info.minimum is not None and value < info.minimum:
            raise SpecError(path, f"must be greater than or equal to {info.minimum}")
        if info.maximum is not None and value > info.maximum:
            raise SpecError(path, f"must be less than or equal to {info.maximum}")
    if isinstance(value, tuple):
        for index, item in enumerate(value):
            _check_enum(info.enum, item, f"{path}[{index}]")
        if info.min_items is not None and len(value) < info.min_items:
            raise SpecError(path, f"must have at least {info.min_items} items")
        if info.max_items is not None and len(value) > info.max_items:
            raise SpecError(path, f"must have at most {info.max_items} items")


def _check_enum(enum: tuple[str, ...] | None, value: Any, path: str) -> None:
    if enum is not None and value not in enum:
        allowed = ", ".join(repr(e) for e in enum)
        raise SpecError(path, f"unsupported value {value!r}, must be one of {allowed}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


# --------------------------------------------------------------------------- serializer


def to_dict(instance: Any) -> dict[str, Any]:
    """Serialize an API object back to its JSON shape (camelCase keys).

    Absent values are left out, as Go's ``omitempty`` does: ``None``, and a value equal
    to a Python-only default (empty arrays and maps, ``False`` flags). A ``False`` in a
    ``bool | None`` field was given by the user and is kept.
    """
    out: dict[str, Any] = {}
    for attr in _attrs(type(instance)):
        value = getattr(instance, attr.name)
        if value is None or (not attr.info.required and _is_go_zero_default(attr, value)):
            continue
        out[attr.info.json_name] = _to_json(value)
    return out


def _is_go_zero_default(attr: _Attr, value: Any) -> bool:
    if attr.info.schema_default is not dataclasses.MISSING:
        return False
    f = attr.field
    if f.default is not dataclasses.MISSING:
        return bool(value == f.default)
    factory = f.default_factory
    if callable(factory):
        return bool(value == factory())
    return False


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _to_json(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- durations


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string as Flux writes them (``1m30s``, ``1.5h``, ``500ms``).

    Raises ``ValueError`` for anything ``DURATION_PATTERN`` rejects.
    """
    if re.fullmatch(DURATION_PATTERN, text) is None:
        raise ValueError(f"invalid duration {text!r}, expected e.g. '30s', '5m', '1h30m'")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """A duration as Go prints it (``time.Duration.String``), the form Flux's messages
    use: ``1h0m0s``, ``2m3.5s``, ``1.25s``, ``512.3ms``, ``0s``."""
    nanos = round(seconds * 1e9)
    sign, nanos = ("-", -nanos) if nanos < 0 else ("", nanos)
    if nanos == 0:
        return "0s"
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000)):
            if nanos >= size:
                return sign + _decimal(nanos, size) + unit
        return f"{sign}{nanos}ns"
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _decimal(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    if not fraction:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")
