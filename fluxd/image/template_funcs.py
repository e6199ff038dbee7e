"""The functions a commit message template may call: Go's builtins and sprig's hermetic text set.

Flux executes ``messageTemplate`` with ``text/template`` plus
``sprig.HermeticTxtFuncMap()``, so users' templates call ``lower``, ``trunc``,
``join`` ... with sprig's argument orders (``replace old new src``,
``trimPrefix prefix s``, ``default fallback value``). Each function here takes
Python values that stand for Go ones and reproduces what the Go function returns,
including its quirks (``abbrev`` leaves widths below 4 alone, ``first`` of an
empty list is nil, integer division truncates toward zero). The builtins ``and``
and ``or`` evaluate lazily, so they live in the evaluator, which knows them by name.

A function rejects a value of the wrong Go type with :class:`FunctionError`, as
Go's reflection-based call does; the evaluator adds where in the template it was.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import quote_plus

from fluxd.image.template_fmt import (
    format_value,
    go_quote,
    is_stringer,
    sorted_map_keys,
    sprint,
    sprintf,
    sprintln,
)

__all__ = ["FUNCTIONS", "LAZY_FUNCTIONS", "FunctionError", "check_arity", "is_true"]

LAZY_FUNCTIONS = frozenset({"and", "or"})

_DECIMAL_RE = re.compile(r"[+-]?[0-9]+")
_LEGACY_OCTAL_RE = re.compile(r"[+-]?0[0-7]+")
_ZERO_DECIMAL_RE = re.compile(r"^([+-]?[0-9]+)\.0+$")


class FunctionError(Exception):
    """A template function was called with arguments Go would reject."""


def is_true(value: object) -> bool:
    """Go template truth: false, 0, nil, and empty strings, lists and maps are false."""
    if value is None:
        return False
    if isinstance(value, (bool, int, float)):
        return bool(value)
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value) > 0
    return True


def _text(function: str, value: object) -> str:
    if not isinstance(value, str):
        raise FunctionError(
            f"{function}: wrong type for value; expected string; got {_type(value)}"
        )
    return value


def _integer(function: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise FunctionError(f"{function}: wrong type for value; expected int; got {_type(value)}")
    return value


def _sequence(function: str, value: object) -> list[object]:
    if not isinstance(value, (list, tuple)):
        raise FunctionError(f"{function}: cannot use a value of type {_type(value)} as a list")
    return list(value)


def _mapping(function: str, value: object) -> Mapping[object, object]:
    if not isinstance(value, Mapping):
        raise FunctionError(f"{function}: cannot use a value of type {_type(value)} as a dict")
    return value


def _type(value: object) -> str:
    return "nil" if value is None else type(value).__name__


def _strval(value: object) -> str:
    """sprig's ``strval``: strings as they are, Stringers through String(), else ``%v``."""
    if isinstance(value, str):
        return value
    if is_stringer(value) and not isinstance(value, (Mapping, list, tuple)):
        return str(value)
    return format_value(value)


def _strslice(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [_strval(item) for item in value if item is not None]
    return [_strval(value)]


def _to_int(value: object) -> int:
    """spf13/cast ``ToInt64`` as sprig's arithmetic uses it: unparsable is 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return 0 if math.isnan(value) or math.isinf(value) else int(value)
    if isinstance(value, str):
        text = _ZERO_DECIMAL_RE.sub(r"\1", value)
        if _LEGACY_OCTAL_RE.fullmatch(text):
            return int(text, 8)
        try:
            return int(text, 0) if text == text.strip() else 0
        except ValueError:
            return 0
    return 0


def _go_division(dividend: int, divisor: int, function: str) -> tuple[int, int]:
    if divisor == 0:
        raise FunctionError(f"{function}: integer divide by zero")
    quotient = abs(dividend) // abs(divisor)
    if (dividend < 0) != (divisor < 0):
        quotient = -quotient
    return quotient, dividend - quotient * divisor


def _go_equal(left: object, right: object) -> bool:
    kinds = (_comparison_kind(left), _comparison_kind(right))
    if left is None or right is None:
        return left is None and right is None
    if kinds[0] != kinds[1]:
        raise FunctionError("incompatible types for comparison")
    if kinds[0] == "other" and isinstance(left, (list, tuple, Mapping)):
        raise FunctionError(f"non-comparable type {_type(left)}")
    return left == right


def _comparison_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def _ordered(
    function: str, left: object, right: object
) -> tuple[int | float | str, int | float | str]:
    kind = _comparison_kind(left)
    if kind in ("bool", "other") or _comparison_kind(right) in ("bool", "other"):
        raise FunctionError(f"{function}: invalid type for comparison")
    if kind != _comparison_kind(right):
        raise FunctionError(f"{function}: incompatible types for comparison")
    return left, right  # type: ignore[return-value]


def _eq(left: object, *others: object) -> bool:
    if not others:
        raise FunctionError("eq: missing argument for comparison")
    return any(_go_equal(left, other) for other in others)


def _ne(left: object, right: object) -> bool:
    return not _go_equal(left, right)


def _lt(left: object, right: object) -> bool:
    a, b = _ordered("lt", left, right)
    return a < b  # type: ignore[operator]


def _le(left: object, right: object) -> bool:
    a, b = _ordered("le", left, right)
    return a <= b  # type: ignore[operator]


def _gt(left: object, right: object) -> bool:
    a, b = _ordered("gt", left, right)
    return a > b  # type: ignore[operator]


def _ge(left: object, right: object) -> bool:
    a, b = _ordered("ge", left, right)
    return a >= b  # type: ignore[operator]


def _not(value: object) -> bool:
    return not is_true(value)


def _len(value: object) -> int:
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value.encode() if isinstance(value, str) else value)
    raise FunctionError(f"len of type {_type(value)}")


def _index(collection: object, *keys: object) -> object:
    item = collection
    for key in keys:
        if isinstance(item, Mapping):
            item = item.get(key)
        elif isinstance(item, (list, tuple, str)):
            position = _integer("index", key)
            if not 0 <= position < len(item):
                raise FunctionError(f"index out of range: {position}")
            item = item.encode()[position] if isinstance(item, str) else item[position]
        else:
            raise FunctionError(f"can't index item of type {_type(item)}")
    return item


def _slice(collection: object, *bounds: object) -> object:
    if not isinstance(collection, (str, list, tuple)):
        raise FunctionError(f"can't slice item of type {_type(collection)}")
    if len(bounds) > (2 if isinstance(collection, str) else 3):
        raise FunctionError(f"too many slice indexes: {len(bounds)}")
    numbers = [_integer("slice", bound) for bound in bounds]
    if any(not 0 <= n <= len(collection) for n in numbers) or numbers != sorted(numbers):
        raise FunctionError(f"slice indexes out of range or out of order: {numbers}")
    start = numbers[0] if numbers else 0
    end = numbers[1] if len(numbers) > 1 else len(collection)
    return collection[start:end]


def _escaped_text(args: Sequence[object]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(args)


def _html(*args: object) -> str:
    text = _escaped_text(args)
    replacements = {
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        '"': "&#34;",
        "'": "&#39;",
        "\0": "\ufffd",
    }
    return "".join(replacements.get(char, char) for char in text)


def _js(*args: object) -> str:
    out = []
    for char in _escaped_text(args):
        if char in "\\'\"":
            out.append("\\" + char)
        elif char in "<>&=" or ord(char) < 0x20 or not char.isprintable():
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return "".join(out)


def _urlquery(*args: object) -> str:
    return quote_plus(_escaped_text(args), safe="-_.~")


def _print(*args: object) -> str:
    return sprint(args)


def _println(*args: object) -> str:
    return sprintln(args)


def _printf(template: object, *args: object) -> str:
    return sprintf(_text("printf", template), args)


def _go_title(text: str) -> str:
    """``strings.Title``: upper-case a letter after a separator (not a letter, digit or ``_``)."""
    out = []
    previous = " "
    for char in text:
        separator = not (previous.isalnum() or previous == "_") and (
            previous.isascii() or previous.isspace()
        )
        upper = char.upper()
        out.append(upper if separator and len(upper) == 1 else char)
        previous = char
    return "".join(out)


def _lower(text: object) -> str:
    return _text("lower", text).lower()


def _upper(text: object) -> str:
    return _text("upper", text).upper()


def _title(text: object) -> str:
    return _go_title(_text("title", text))


def _trim(text: object) -> str:
    return _text("trim", text).strip()


def _trim_all(cutset: object, text: object) -> str:
    return _text("trimAll", text).strip(_text("trimAll", cutset))


def _trim_prefix(prefix: object, text: object) -> str:
    return _text("trimPrefix", text).removeprefix(_text("trimPrefix", prefix))


def _trim_suffix(suffix: object, text: object) -> str:
    return _text("trimSuffix", text).removesuffix(_text("trimSuffix", suffix))


def _trunc(count: object, text: object) -> str:
    n, value = _integer("trunc", count), _text("trunc", text)
    if n < 0 and len(value) + n > 0:
        return value[len(value) + n :]
    if n >= 0 and len(value) > n:
        return value[:n]
    return value


def _abbrev(width: object, text: object) -> str:
    n, value = _integer("abbrev", width), _text("abbrev", text)
    if n < 4 or len(value) <= n:
        return value
    return value[: n - 3] + "..."


def _repeat(count: object, text: object) -> str:
    n = _integer("repeat", count)
    if n < 0:
        raise FunctionError("repeat: negative Repeat count")
    return _text("repeat", text) * n


def _replace(old: object, new: object, text: object) -> str:
    return _text("replace", text).replace(_text("replace", old), _text("replace", new))


def _contains(needle: object, text: object) -> bool:
    return _text("contains", needle) in _text("contains", text)


def _has_prefix(prefix: object, text: object) -> bool:
    return _text("hasPrefix", text).startswith(_text("hasPrefix", prefix))


def _has_suffix(suffix: object, text: object) -> bool:
    return _text("hasSuffix", text).endswith(_text("hasSuffix", suffix))


def _quote(*values: object) -> str:
    return " ".join(go_quote(_strval(value)) for value in values if value is not None)


def _squote(*values: object) -> str:
    return " ".join(f"'{_strval(value)}'" for value in values if value is not None)


def _cat(*values: object) -> str:
    return " ".join(format_value(value) for value in values if value is not None)


def _indent(spaces: object, text: object) -> str:
    pad = " " * _integer("indent", spaces)
    return pad + _text("indent", text).replace("\n", "\n" + pad)


def _nindent(spaces: object, text: object) -> str:
    return "\n" + _indent(spaces, text)


def _nospace(text: object) -> str:
    return "".join(char for char in _text("nospace", text) if not char.isspace())


def _join(separator: object, values: object) -> str:
    return _text("join", separator).join(_strslice(values))


def _split_list(separator: object, text: object) -> list[object]:
    sep, value = _text("splitList", separator), _text("splitList", text)
    return list(value) if sep == "" else list(value.split(sep))


def _first(values: object) -> object:
    items = _sequence("first", values)
    return items[0] if items else None


def _last(values: object) -> object:
    items = _sequence("last", values)
    return items[-1] if items else None


def _rest(values: object) -> object:
    items = _sequence("rest", values)
    return items[1:] if items else None


def _initial(values: object) -> object:
    items = _sequence("initial", values)
    return items[:-1] if items else None


def _uniq(values: object) -> list[object]:
    unique: list[object] = []
    for item in _sequence("uniq", values):
        if item not in unique:
            unique.append(item)
    return unique


def _sort_alpha(values: object) -> list[object]:
    if not isinstance(values, (list, tuple)):
        return [_strval(values)]
    return list(sorted(_strslice(values)))


def _compact(values: object) -> list[object]:
    return [item for item in _sequence("compact", values) if is_true(item)]


def _list(*values: object) -> list[object]:
    return list(values)


def _dict(*pairs: object) -> dict[object, object]:
    result: dict[object, object] = {}
    for position in range(0, len(pairs), 2):
        key = _strval(pairs[position])
        result[key] = pairs[position + 1] if position + 1 < len(pairs) else ""
    return result


def _get(mapping: object, key: object) -> object:
    values = _mapping("get", mapping)
    return values.get(key, "")


def _keys(*mappings: object) -> list[object]:
    keys: list[object] = []
    for mapping in mappings:
        keys.extend(sorted_map_keys(_mapping("keys", mapping)))
    return keys


def _has_key(mapping: object, key: object) -> bool:
    return key in _mapping("hasKey", mapping)


def _default(fallback: object, *given: object) -> object:
    if not given or not is_true(given[0]):
        return fallback
    return given[0]


def _empty(value: object) -> bool:
    return not is_true(value)


def _coalesce(*values: object) -> object:
    return next((value for value in values if is_true(value)), None)


def _ternary(if_true: object, if_false: object, condition: object) -> object:
    if not isinstance(condition, bool):
        raise FunctionError(f"ternary: wrong type for value; expected bool; got {_type(condition)}")
    return if_true if condition else if_false


def _to_string(value: object) -> str:
    return _strval(value)


def _json_ready(value: object) -> object:
    """Plain JSON values; Go sorts map keys but keeps a struct's fields in declaration order."""
    if isinstance(value, Mapping):
        encoded = {_json_key(key): _json_ready(item) for key, item in value.items()}
        return dict(sorted(encoded.items()))
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json_ready(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _json_key(key: object) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    raise TypeError(f"json: unsupported map key type {_type(key)}")


def _go_json(value: object, indent: int | None) -> str:
    """``json.Marshal`` (or ``MarshalIndent``) as sprig calls it: errors become ``""``."""
    try:
        separators = (",", ": ") if indent else (",", ":")
        text = json.dumps(
            _json_ready(value),
            indent=indent,
            separators=separators,
            ensure_ascii=False,
        )
    except (TypeError, ValueError):
        return ""
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
    ):
        text = text.replace(char, escape)
    return text.replace("\u2029", "\\u2029")


def _to_json(value: object) -> str:
    return _go_json(value, None)


def _to_pretty_json(value: object) -> str:
    return _go_json(value, 2)


def _b64enc(text: object) -> str:
    return base64.b64encode(_text("b64enc", text).encode()).decode()


def _b64dec(text: object) -> str:
    encoded = _text("b64dec", text)
    try:
        return base64.b64decode(encoded.encode(), validate=True).decode(errors="replace")
    except (binascii.Error, ValueError):
        alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        bad = next(
            (i for i, char in enumerate(encoded) if char not in alphabet),
            len(encoded) - len(encoded) % 4,
        )
        return f"illegal base64 data at input byte {bad}"


def _sha256sum(text: object) -> str:
    return hashlib.sha256(_text("sha256sum", text).encode()).hexdigest()


def _add(*values: object) -> int:
    return sum(_to_int(value) for value in values)


def _sub(left: object, right: object) -> int:
    return _to_int(left) - _to_int(right)


def _mul(first: object, *rest: object) -> int:
    product = _to_int(first)
    for value in rest:
        product *= _to_int(value)
    return product


def _div(left: object, right: object) -> int:
    return _go_division(_to_int(left), _to_int(right), "div")[0]


def _mod(left: object, right: object) -> int:
    return _go_division(_to_int(left), _to_int(right), "mod")[1]


def _max(first: object, *rest: object) -> int:
    return max([_to_int(first), *(_to_int(value) for value in rest)])


def _min(first: object, *rest: object) -> int:
    return min([_to_int(first), *(_to_int(value) for value in rest)])


def _int(value: object) -> int:
    return _to_int(value)


def _atoi(text: object) -> int:
    """``strconv.Atoi`` with its error dropped: only plain decimal digits count."""
    digits = _text("atoi", text)
    return int(digits) if _DECIMAL_RE.fullmatch(digits) else 0


def _substr(start: object, end: object, text: object) -> str:
    begin, stop, value = _integer("substr", start), _integer("substr", end), _text("substr", text)
    if begin < 0:
        return value[:stop]
    if stop < 0 or stop > len(value):
        return value[begin:]
    return value[begin:stop]


def _plural(one: object, many: object, count: object) -> str:
    return _text("plural", one) if _integer("plural", count) == 1 else _text("plural", many)


def _wrap(width: object, text: object) -> str:
    """goutils ``Wrap``: break at the last space within the width; long words stay whole."""
    limit, value = max(_integer("wrap", width), 1), _text("wrap", text)
    out: list[str] = []
    offset = 0
    while len(value) - offset > limit:
        if value[offset] == " ":
            offset += 1
            continue
        space = value.rfind(" ", offset, offset + limit + 1)
        if space >= offset:
            out.append(value[offset:space] + "\n")
            offset = space + 1
            continue
        next_space = value.find(" ", offset + limit)
        if next_space < 0:
            break
        out.append(value[offset:next_space] + "\n")
        offset = next_space + 1
    out.append(value[offset:])
    return "".join(out)


FUNCTIONS: dict[str, Callable[..., object]] = {
    "not": _not,
    "len": _len,
    "index": _index,
    "slice": _slice,
    "print": _print,
    "printf": _printf,
    "println": _println,
    "eq": _eq,
    "ne": _ne,
    "lt": _lt,
    "le": _le,
    "gt": _gt,
    "ge": _ge,
    "html": _html,
    "js": _js,
    "urlquery": _urlquery,
    "lower": _lower,
    "upper": _upper,
    "title": _title,
    "trim": _trim,
    "trimAll": _trim_all,
    "trimPrefix": _trim_prefix,
    "trimSuffix": _trim_suffix,
    "trunc": _trunc,
    "abbrev": _abbrev,
    "repeat": _repeat,
    "replace": _replace,
    "contains": _contains,
    "hasPrefix": _has_prefix,
    "hasSuffix": _has_suffix,
    "quote": _quote,
    "squote": _squote,
    "cat": _cat,
    "indent": _indent,
    "nindent": _nindent,
    "nospace": _nospace,
    "join": _join,
    "splitList": _split_list,
    "first": _first,
    "last": _last,
    "rest": _rest,
    "initial": _initial,
    "uniq": _uniq,
    "sortAlpha": _sort_alpha,
    "compact": _compact,
    "list": _list,
    "dict": _dict,
    "get": _get,
    "keys": _keys,
    "hasKey": _has_key,
    "default": _default,
    "empty": _empty,
    "coalesce": _coalesce,
    "ternary": _ternary,
    "toString": _to_string,
    "toJson": _to_json,
    "toPrettyJson": _to_pretty_json,
    "b64enc": _b64enc,
    "b64dec": _b64dec,
    "sha256sum": _sha256sum,
    "add": _add,
    "sub": _sub,
    "mul": _mul,
    "div": _div,
    "mod": _mod,
    "max": _max,
    "min": _min,
    "int": _int,
    "atoi": _atoi,
    "substr": _substr,
    "plural": _plural,
    "wrap": _wrap,
}

_VARARGS_FLAG = 0x04  # CPython's CO_VARARGS: the function takes *args


def check_arity(name: str, count: int) -> None:
    """Reject a call with a number of arguments the function cannot take, as Go does."""
    code = FUNCTIONS[name].__code__
    required, variadic = code.co_argcount, bool(code.co_flags & _VARARGS_FLAG)
    if count < required or (count > required and not variadic):
        wanted = f"at least {required}" if variadic else str(required)
        raise FunctionError(f"wrong number of args for {name}: want {wanted} got {count}")
