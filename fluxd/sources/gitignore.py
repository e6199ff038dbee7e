"""Gitignore pattern matching with the semantics Flux's source-controller uses.

Flux matches `.sourceignore` files and `spec.ignore` with a fork of go-git's
`plumbing/format/gitignore` (vendored in fluxcd/pkg `sourceignore/gitignore`). That
matcher differs from git itself in ways users can observe, and fluxd must produce the
same artifact from the same repository, so this module follows go-git:

- Patterns are checked from the highest priority (last given) down; the first one that
  matches decides, whether it excludes or re-includes (`!`). Unlike git, a file can be
  re-included even when its parent directory is excluded, because Flux checks every
  file on its own.
- A pattern without a slash (after dropping a trailing `/`) matches any single path
  component at any depth; so `vendor` also excludes everything below a `vendor`
  directory.
- A pattern with a slash is anchored to the directory of the file that defines it (its
  *domain*); a leading `/` only marks that anchoring. It matches a prefix of the path,
  so `deploy/base` also excludes `deploy/base/app.yaml`. `**` as a whole component
  matches zero or more components; `**` inside a component never matches.
- A trailing `/` means "directories only": the last component of a file path does not
  satisfy it, but a directory component above the file does.
- Trailing spaces are dropped unless escaped as `\\ `; `\\` escapes the next character,
  so `\\!x` and `\\#x` match literal names.

Inside a component, `*` and `?` never cross `/`; character classes follow git
(`[abc]`, `[a-z]`, `[!a]` and `[^a]`, `[]x]`, `[[:digit:]]`). A malformed component
(unclosed `[`, reversed range, dangling `\\`) never matches, as in Go's
`filepath.Match`.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Match", "Matcher", "Pattern", "parse_pattern", "parse_patterns"]


class Match(enum.Enum):
    EXCLUDE = "exclude"
    INCLUDE = "include"


@dataclass(frozen=True)
class Pattern:
    """One parsed pattern line, scoped to the directory (`domain`) that declared it."""

    source: str
    domain: tuple[str, ...]
    parts: tuple[str, ...]
    negated: bool
    dir_only: bool
    has_slash: bool

    def match(self, path: Sequence[str], *, is_dir: bool) -> Match | None:
        """Match a path given as components relative to the repository root."""
        depth = len(self.domain)
        if len(path) <= depth or tuple(path[:depth]) != self.domain:
            return None
        rest = path[depth:]
        matched = (
            self._glob_match(rest, is_dir) if self.has_slash else self._name_match(rest, is_dir)
        )
        if not matched:
            return None
        return Match.INCLUDE if self.negated else Match.EXCLUDE

    def _name_match(self, path: Sequence[str], is_dir: bool) -> bool:
        for index, name in enumerate(path):
            if not _match_component(self.parts[0], name):
                continue
            return not (self.dir_only and not is_dir and index == len(path) - 1)
        return False

    def _glob_match(self, path: Sequence[str], is_dir: bool) -> bool:
        # A line-by-line port of go-git's globMatch, quirks included (see module doc).
        remaining = list(path)
        matched = False
        can_traverse = False
        for index, part in enumerate(self.parts):
            if part == "":
                can_traverse = False
                continue
            if part == "**":
                if index == len(self.parts) - 1:
                    break
                can_traverse = True
                continue
            if "**" in part or not remaining:
                return False
            if can_traverse:
                can_traverse = False
                while remaining:
                    name = remaining.pop(0)
                    if _match_component(part, name):
                        matched = True
                        break
                    if not remaining:
                        matched = False
            else:
                if not _match_component(part, remaining[0]):
                    return False
                matched = True
                remaining.pop(0)
        if matched and self.dir_only and not is_dir and not remaining:
            return False
        return matched


def parse_pattern(line: str, domain: Sequence[str] = ()) -> Pattern:
    """Parse one pattern line; `domain` is the declaring directory's path components."""
    text = line
    negated = text.startswith("!")
    if negated:
        text = text[1:]
    if not text.endswith("\\ "):
        text = text.rstrip(" ")
    dir_only = text.endswith("/")
    if dir_only:
        text = text[:-1]
    return Pattern(
        source=line,
        domain=tuple(domain),
        parts=tuple(text.split("/")),
        negated=negated,
        dir_only=dir_only,
        has_slash="/" in text,
    )


def parse_patterns(text: str, domain: Sequence[str] = ()) -> list[Pattern]:
    """Parse an ignore file: one pattern a line, `#` comments and blank lines skipped."""
    patterns = []
    # Split on "\n" only, like Go's bufio.ScanLines (which also drops one "\r").
    for raw in text.split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        if line.startswith("#") or not line.strip():
            continue
        patterns.append(parse_pattern(line, domain))
    return patterns


class Matcher:
    """Patterns in increasing priority; the last one that matches a path decides."""

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        self._patterns = tuple(reversed(tuple(patterns)))

    def is_ignored(self, path: Sequence[str], *, is_dir: bool = False) -> bool:
        for pattern in self._patterns:
            result = pattern.match(path, is_dir=is_dir)
            if result is not None:
                return result is Match.EXCLUDE
        return False


_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "digit": "0-9",
    "lower": "a-z",
    "upper": "A-Z",
    "space": " \\t\\n\\r\\f\\v",
    "xdigit": "0-9a-fA-F",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
}


def _match_component(pattern: str, name: str) -> bool:
    regex = _compile_component(pattern)
    return regex is not None and regex.fullmatch(name) is not None


@functools.lru_cache(maxsize=4096)
def _compile_component(pattern: str) -> re.Pattern[str] | None:
    """Translate one glob component to a regex; None when the glob is malformed."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\":
            if i + 1 == len(pattern):
                return None
            i += 1
            out.append(re.escape(pattern[i]))
        elif char == "[":
            parsed = _parse_class(pattern, i + 1)
            if parsed is None:
                return None
            regex_class, i = parsed
            out.append(regex_class)
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _parse_class(pattern: str, start: int) -> tuple[str, int] | None:
    """Parse a `[...]` class whose body starts at `start`; return (regex, next index)."""
    i = start
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    items: list[str] = []
    first = True
    while True:
        if i >= len(pattern):
            return None
        char = pattern[i]
        if char == "]" and not first:
            i += 1
            break
        first = False
        if pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            if end < 0 or pattern[i + 2 : end] not in _POSIX_CLASSES:
                return None
            items.append(_POSIX_CLASSES[pattern[i + 2 : end]])
            i = end + 2
            continue
        low, i = _class_char(pattern, i)
        if low is None:
            return None
        if i + 1 < len(pattern) and pattern[i] == "-" and pattern[i + 1] != "]":
            high, i = _class_char(pattern, i + 1)
            if high is None or high < low:
                return None
            items.append(f"{_escape_class(low)}-{_escape_class(high)}")
        else:
            items.append(_escape_class(low))
    body = "".join(items)
    # A negated class must not match `/` either, like `*` and `?`.
    return (f"[^/{body}]" if negate else f"[{body}]"), i


def _class_char(pattern: str, i: int) -> tuple[str | None, int]:
    if pattern[i] == "\\":
        if i + 1 >= len(pattern):
            return None, i
        return pattern[i + 1], i + 2
    return pattern[i], i + 1


def _escape_class(char: str) -> str:
    return "\\" + char if char in "\\]^-[" else char
