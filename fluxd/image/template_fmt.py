"""Go ``fmt`` printing of template values: ``%v``, ``Sprint``, ``Sprintln``, ``Sprintf``.

Commit message templates print whatever the automation hands them, and a Go
template prints every value the way ``fmt`` does, so the same data must turn into
the same text here: ``true`` not ``True``, ``[a b]`` for a list, ``map[k:v]`` with
sorted keys for a mapping, ``{f1 f2}`` for a struct (a dataclass), and a value's
own ``String()`` (a dataclass that defines ``__str__``) wherever it appears.
Bad verbs and missing operands print ``%!d(string=x)`` / ``%!d(MISSING)`` as Go
does rather than failing: ``fmt`` never errors, and neither does this module.
"""

from __future__ import annotations

import dataclasses
import decimal
import re
from collections.abc import Mapping, Sequence

__all__ = [
    "format_value",
    "go_quote",
    "go_type_name",
    "is_stringer",
    "sorted_map_keys",
    "sprint",
    "sprintf",
    "sprintln",
]

_DIRECTIVE_RE = re.compile(
    r"%(?P<flags>[-+# 0]*)(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d*))?(?P<verb>.?)", re.S
)
_SIMPLE_ESCAPES = {
    "\a": r"\a",
    "\b": r"\b",
    "\f": r"\f",
    "\n": r"\n",
    "\r": r"\r",
    "\t": r"\t",
    "\v": r"\v",
}


def is_stringer(value: object) -> bool:
    """Whether a value has its own ``__str__``: Go's ``fmt.Stringer``."""
    return (
        not isinstance(value, (str, bool, int, float)) and type(value).__str__ is not object.__str__
    )


def go_type_name(value: object) -> str:
    """The Go type a value stands for, as printed in ``%!verb(type=value)``."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    return type(value).__name__


def _sort_key(key: object) -> object:
    if dataclasses.is_dataclass(key) and not isinstance(key, type):
        return tuple(_sort_key(part) for part in dataclasses.astuple(key))
    return key


def sorted_map_keys(mapping: Mapping[object, object]) -> list[object]:
    """A mapping's keys in Go's order (``fmt`` and ``range`` both sort map keys)."""
    try:
        return sorted(mapping, key=_sort_key)  # type: ignore[arg-type]
    except TypeError:
        return sorted(mapping, key=lambda key: (go_type_name(key), str(_sort_key(key))))


def _go_float(number: float) -> str:
    """``%v`` of a float64: shortest digits, exponent form outside 1e-4 <= |x| < 1e6."""
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "+Inf" if number > 0 else "-Inf"
    sign, digit_tuple, exponent = decimal.Decimal(repr(number)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    point = len(digit_tuple) + exponent
    if digits == "0":
        point = 1
    prefix = "-" if sign else ""
    power = point - 1
    if power < -4 or power >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'+' if power >= 0 else '-'}{abs(power):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def go_quote(text: str) -> str:
    """``strconv.Quote``: double quotes, Go escapes, printable runes kept as they are."""
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def format_value(value: object, *, plus: bool = False) -> str:
    """``%v`` (``%+v`` with ``plus``) of one value, nested values included."""
    if value is None:
        return "<nil>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if is_stringer(value) and not isinstance(value, (Mapping, list, tuple)):
        return str(value)
    if isinstance(value, Mapping):
        items = (
            f"{format_value(k, plus=plus)}:{format_value(value[k], plus=plus)}"
            for k in sorted_map_keys(value)
        )
        return "map[" + " ".join(items) + "]"
    if isinstance(value, Sequence):
        return "[" + " ".join(format_value(item, plus=plus) for item in value) + "]"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        parts = (
            (f"{f.name}:" if plus else "") + format_value(getattr(value, f.name), plus=plus)
            for f in fields
        )
        return "{" + " ".join(parts) + "}"
    return str(value)


def sprint(args: Sequence[object]) -> str:
    """``fmt.Sprint``: a space between operands when neither side is a string."""
    out: list[str] = []
    previous_is_string = False
    for position, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if position > 0 and not is_string and not previous_is_string:
            out.append(" ")
        out.append(format_value(arg))
        previous_is_string = is_string
    return "".join(out)


def sprintln(args: Sequence[object]) -> str:
    """``fmt.Sprintln``: operands always space-separated, then a newline."""
    return " ".join(format_value(arg) for arg in args) + "\n"


def _bad_verb(verb: str, value: object) -> str:
    if value is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type_name(value)}={format_value(value)})"


def _pad(text: str, width: int | None, flags: str, *, numeric: bool = False) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text + " " * (width - len(text))
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in ("-", "+") else ""
        return sign + "0" * (width - len(text)) + text[len(sign) :]
    return " " * (width - len(text)) + text


def _format_int(value: int, verb: str, flags: str, precision: int | None) -> str:
    bases = {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}
    digits = format(abs(value), bases[verb])
    if precision is not None:
        digits = digits.rjust(precision, "0")
    if "#" in flags and verb in "xX":
        digits = "0" + verb + digits
    sign = "-" if value < 0 else ("+" if "+" in flags else (" " if " " in flags else ""))
    return sign + digits


def _format_one(verb: str, value: object, flags: str, precision: int | None) -> str:
    """One operand under one verb; ``%v``/``%s``/``%d`` apply element-wise to lists and maps."""
    if verb == "v":
        if "#" not in flags and isinstance(value, float) and precision is None:
            return _go_float(value)
        if isinstance(value, float):
            return format(value, f".{precision}g" if precision is not None else "g")
        return format_value(value, plus="+" in flags)
    if isinstance(value, (list, tuple)) and verb in "sdqxXtfeg":
        return "[" + " ".join(_format_one(verb, item, flags, precision) for item in value) + "]"
    if isinstance(value, Mapping) and verb in "sdqtfeg":
        items = (
            _format_one(verb, k, flags, precision)
            + ":"
            + _format_one(verb, value[k], flags, precision)
            for k in sorted_map_keys(value)
        )
        return "map[" + " ".join(items) + "]"
    if verb in "sqxX" and (isinstance(value, str) or is_stringer(value)):
        text = value if isinstance(value, str) else str(value)
        if precision is not None:
            text = text[:precision]
        if verb == "s":
            return text
        if verb == "q":
            return go_quote(text)
        return text.encode().hex() if verb == "x" else text.encode().hex().upper()
    if verb == "t" and isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and not isinstance(value, bool):
        if verb in "dxXob":
            return _format_int(value, verb, flags, precision)
        if verb == "c":
            return chr(value)
        if verb == "q":
            char = chr(value)
            inner = go_quote(char)[1:-1] if char != '"' else char
            return "'" + ("\\'" if char == "'" else inner) + "'"
    if isinstance(value, float) and verb in "feEgG":
        text = format(
            value, f"{'+' if '+' in flags else ''}.{6 if precision is None else precision}{verb}"
        )
        return text if verb not in "gG" or precision is not None else _go_float(value)
    return _bad_verb(verb, value)


def sprintf(template: str, args: Sequence[object]) -> str:
    """``fmt.Sprintf`` for the verbs templates use: v s d q t x X o b c e f g and ``%%``."""
    out: list[str] = []
    next_arg = 0
    position = 0
    while True:
        start = template.find("%", position)
        if start < 0:
            out.append(template[position:])
            break
        out.append(template[position:start])
        match = _DIRECTIVE_RE.match(template, start)
        assert match is not None
        position = match.end()
        flags, verb = match["flags"], match["verb"]
        width: int | None = None
        precision: int | None = None
        if match["width"] == "*":
            if next_arg < len(args) and isinstance(args[next_arg], int):
                width = int(args[next_arg])  # type: ignore[call-overload]
            next_arg += 1
        elif match["width"]:
            width = int(match["width"])
        if match["prec"] == "*":
            if next_arg < len(args) and isinstance(args[next_arg], int):
                precision = int(args[next_arg])  # type: ignore[call-overload]
            next_arg += 1
        elif match["prec"] is not None:
            precision = int(match["prec"] or "0")
        if verb == "":
            out.append("%!(NOVERB)")
            continue
        if verb == "%":
            out.append("%")
            continue
        if next_arg >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        value = args[next_arg]
        next_arg += 1
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        out.append(_pad(_format_one(verb, value, flags, precision), width, flags, numeric=numeric))
    if next_arg < len(args):
        extra = ", ".join(
            "<nil>" if arg is None else f"{go_type_name(arg)}={format_value(arg)}"
            for arg in args[next_arg:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
