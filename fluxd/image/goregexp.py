"""Go regular expressions (RE2 syntax) and ``Regexp.ExpandString`` templates in Python.

ImagePolicy's ``filterTags.pattern`` and ``extract`` are written for Go's
``regexp`` package. Python's ``re`` reads most of that syntax the same way;
this module translates the parts it reads differently and refuses the parts
RE2 would refuse, so that a pattern never silently matches other tags here
than it does under Flux:

* named groups may be written ``(?<name>...)`` as well as ``(?P<name>...)``;
* ``\\z`` (end of text) is Python's ``\\Z``;
* POSIX classes such as ``[[:digit:]]`` become explicit ASCII ranges;
* lookarounds, atomic groups, conditionals and backreferences are errors, as in RE2;
* ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII-only, as in RE2.
"""

from __future__ import annotations

import re

__all__ = ["compile_go_regexp", "expand_template"]

_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_POSIX_CLASS_RE = re.compile(r"\[:(\^?)([a-z]+):\]")
# Go reads \0 and a digit followed by octal digits as one octal escape of up
# to three digits (\12 is a newline); Python would read \12 as group 12.
_GO_OCTAL_ESCAPE_RE = re.compile(r"\\(0[0-7]{0,2}|[1-7][0-7]{1,2})")
_RE2_REFUSES = {
    "(?=": "lookahead",
    "(?!": "negative lookahead",
    "(?<=": "lookbehind",
    "(?<!": "negative lookbehind",
    "(?>": "atomic group",
    "(?P=": "backreference",
    "(?(": "conditional group",
    "(?#": "comment group",
}


def compile_go_regexp(pattern: str) -> re.Pattern[str]:
    """Compile a Go regexp; ValueError saying what is wrong with it."""
    try:
        return re.compile(_translate(pattern), re.ASCII)
    except re.error as exc:
        raise ValueError(str(exc)) from None


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    class_start: int | None = None  # index just past the '[' (and '^') of an open class
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            octal = _GO_OCTAL_ESCAPE_RE.match(pattern, i)
            escape = pattern[i : i + 2]
            if octal is not None:
                out.append(f"\\u{int(octal[1], 8):04x}")
                i = octal.end()
                continue
            if escape[1:].isdigit():
                raise ValueError(f"backreference {escape} is not supported by Go regexp")
            out.append("\\Z" if escape == "\\z" and class_start is None else escape)
            i += len(escape)
            continue
        if class_start is not None:
            posix = _POSIX_CLASS_RE.match(pattern, i)
            if posix is not None:
                out.append(_posix_class(posix[1], posix[2]))
                i = posix.end()
                continue
            if ch == "]" and i > class_start:
                class_start = None
        elif ch == "[":
            class_start = i + (2 if pattern.startswith("[^", i) else 1)
        elif ch == "(":
            for prefix, construct in _RE2_REFUSES.items():
                if pattern.startswith(prefix, i):
                    raise ValueError(f"{construct} {prefix!r} is not supported by Go regexp")
            if pattern.startswith("(?<", i):
                out.append("(?P<")
                i += 3
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _posix_class(negation: str, name: str) -> str:
    ranges = _POSIX_CLASSES.get(name)
    if ranges is None:
        raise ValueError(f"invalid character class range [:{name}:]")
    if negation:
        raise ValueError(
            f"negated POSIX class [:^{name}:] is not supported here; use [^[:{name}:]]"
        )
    return ranges


def expand_template(template: str, match: re.Match[str]) -> str:
    """Expand ``$1``, ``$name``, ``${name}`` and ``$$`` like Go's ``Regexp.ExpandString``.

    A ``$name`` reference takes the longest run of letters, digits and
    underscores; a group that does not exist or did not take part in the
    match expands to nothing; a ``$`` that starts no valid reference is kept.
    """
    out: list[str] = []
    rest = template
    while (dollar := rest.find("$")) >= 0:
        out.append(rest[:dollar])
        rest = rest[dollar + 1 :]
        if rest.startswith("$"):
            out.append("$")
            rest = rest[1:]
            continue
        reference = _reference(rest)
        if reference is None:
            out.append("$")
            continue
        name, rest = reference
        out.append(_group_text(match, name))
    out.append(rest)
    return "".join(out)


def _reference(text: str) -> tuple[str, str] | None:
    """The group name at the start of ``text`` and what follows it, if it is a reference."""
    braced = text.startswith("{")
    start = 1 if braced else 0
    end = start
    while end < len(text) and (text[end].isalpha() or text[end].isdecimal() or text[end] == "_"):
        end += 1
    if end == start:
        return None
    name = text[start:end]
    if braced:
        if not text.startswith("}", end):
            return None
        end += 1
    return name, text[end:]


def _group_text(match: re.Match[str], name: str) -> str:
    if re.fullmatch(r"0|[1-9][0-9]{0,8}", name):
        group: int | str = int(name)
        if int(name) > match.re.groups:
            return ""
    elif name in match.re.groupindex:
        group = name
    else:
        return ""
    return match.group(group) or ""
