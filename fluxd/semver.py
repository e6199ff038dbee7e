"""Semantic versions and Masterminds-style range constraints.

Flux resolves ``spec.ref.semver`` on git repositories, chart versions on
HelmReleases and image tags on ImagePolicies with github.com/Masterminds/semver
v3, so users write its dialect: ``>=1.0.0 <2.0.0``, ``^1.2``, ``~1.2.3``,
``1.x``, ``*``, ``1.2 - 1.4.5`` and ``||`` between alternatives.

Two rules of that library are easy to get wrong and are kept on purpose:

* versions are parsed leniently (``v1.2`` is 1.2.0), but the original text is
  kept, because the tag name, not the normalised version, is what gets checked out;
* a prerelease version is only considered by an AND group in which some
  constraint names a prerelease (``>=1.0.0-0 <2`` admits ``1.1.0-rc.1``,
  ``>=1.0.0 <2`` does not);
* a missing minor or patch is a wildcard: ``<=1.2`` admits ``1.2.9``, ``~1`` is ``1.x``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Constraint", "Version", "max_satisfying", "parse_tag_version"]

_NUM = r"0|[1-9]\d*"
_IDENT = r"[0-9A-Za-z-]+"
_VERSION_RE = re.compile(
    rf"^v?(?P<major>{_NUM})(?:\.(?P<minor>{_NUM}))?(?:\.(?P<patch>{_NUM}))?"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    rf"(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?$"
)
_WILD = r"x|X|\*"
_PART = rf"(?:{_NUM}|{_WILD})"
_CONSTRAINT_VERSION_RE = re.compile(
    rf"^v?(?P<major>{_PART})(?:\.(?P<minor>{_PART}))?(?:\.(?P<patch>{_PART}))?"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    rf"(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?$"
)


@functools.total_ordering
@dataclass(frozen=True)
class Version:
    """A semantic version; equality and order follow semver 2.0 precedence."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()
    build: str = field(default="", compare=False)
    original: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse leniently like Masterminds ``NewVersion``; ValueError if not a version."""
        m = _VERSION_RE.match(text.strip())
        if m is None:
            raise ValueError(f"invalid semantic version {text!r}")
        pre = m["pre"]
        return cls(
            int(m["major"]),
            int(m["minor"] or 0),
            int(m["patch"] or 0),
            _prerelease_key(pre) if pre else (),
            m["build"] or "",
            text,
        )

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # A release sorts after all of its prereleases; numeric identifiers sort
        # before alphanumeric ones.
        pre = tuple((0, p) if isinstance(p, int) else (1, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(p) for p in self.prerelease)
        if self.build:
            text += "+" + self.build
        return text


def _prerelease_key(pre: str) -> tuple[int | str, ...]:
    return tuple(int(p) if p.isdigit() else p for p in pre.split("."))


_TAG_VERSION_RE = re.compile(
    rf"v?(?P<major>[0-9]+)(?:\.(?P<minor>[0-9]+))?(?:\.(?P<patch>[0-9]+))?"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    rf"(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?"
)


def parse_tag_version(tag: str) -> Version:
    """Parse an image tag as a version the way ImagePolicies do; ValueError if it is not one.

    Flux's image policies use fluxcd/pkg's ``ParseVersion``: the text needs at
    least two dots, and Masterminds' coercing parser then allows zero-padded
    numbers, so date tags such as ``v2025.07.03`` are versions while ``v1.2`` is not.
    """
    m = _TAG_VERSION_RE.fullmatch(tag)
    if tag.count(".") < 2 or m is None:
        raise ValueError(f"invalid semantic version {tag!r}")
    pre = m["pre"]
    return Version(
        int(m["major"]),
        int(m["minor"] or 0),
        int(m["patch"] or 0),
        _prerelease_key(pre) if pre else (),
        m["build"] or "",
        tag,
    )


@dataclass(frozen=True)
class _Bound:
    """One primitive comparison: ``version <op> bound``."""

    op: str  # one of <, <=, >, >=, =, !=
    version: Version

    def holds(self, v: Version) -> bool:
        match self.op:
            case ">":
                return v > self.version
            case ">=":
                return v >= self.version
            case "<":
                return v < self.version
            case "<=":
                return v <= self.version
            case "=":
                return v == self.version
            case _:
                return v != self.version


@dataclass(frozen=True)
class _Term:
    """One constraint as written (``^1.2``), expanded into bounds that must all hold."""

    bounds: tuple[_Bound, ...]
    prerelease: bool  # the constraint's own version names a prerelease
    negated: bool = False  # ``!=1.2.x``: outside the range instead of inside

    def holds(self, v: Version) -> bool:
        inside = all(b.holds(v) for b in self.bounds)
        return not inside if self.negated else inside


@dataclass(frozen=True)
class _Partial:
    """A version as written in a constraint; None marks a wildcard or missing part."""

    major: int | None
    minor: int | None
    patch: int | None
    pre: str

    def floor(self) -> Version:
        return Version(
            self.major or 0,
            self.minor or 0,
            self.patch or 0,
            _prerelease_key(self.pre) if self.pre else (),
        )

    @property
    def exact(self) -> bool:
        return self.patch is not None

    def next_ceiling(self) -> Version:
        """The first version above everything the wildcard part covers."""
        if self.major is None:
            raise AssertionError("a full wildcard has no ceiling")
        if self.minor is None:
            return Version(self.major + 1, 0, 0, (0,))
        return Version(self.major, self.minor + 1, 0, (0,))


def _parse_partial(text: str, source: str) -> _Partial:
    m = _CONSTRAINT_VERSION_RE.match(text)
    if m is None:
        raise ValueError(f"invalid semver constraint {source!r}: {text!r} is not a version")
    parts: list[int | None] = []
    wild = False
    for name in ("major", "minor", "patch"):
        value = m[name]
        if wild or value is None or value in ("x", "X", "*"):
            wild = True
            parts.append(None)
        else:
            parts.append(int(value))
    return _Partial(parts[0], parts[1], parts[2], m["pre"] or "")


def _term(op: str, p: _Partial) -> _Term:
    pre = bool(p.pre)
    lo = p.floor()
    everything = _Term((_Bound(">=", Version(0, 0, 0, (0,))),), pre)
    nothing = _Term((_Bound("<", Version(0, 0, 0, (0,))),), pre)
    # Ceilings are the lowest prerelease of the next version ("2.0.0-0"), so a
    # range never reaches into the next version's prereleases; whether
    # prereleases count at all is decided by the term's own prerelease flag.
    if op in ("", "="):
        if p.major is None:
            return everything
        if p.exact:
            return _Term((_Bound("=", lo),), pre)
        return _Term((_Bound(">=", lo), _Bound("<", p.next_ceiling())), pre)
    if op == "!=":
        if p.exact:
            return _Term((_Bound("!=", lo),), pre)
        if p.major is None:
            return nothing
        return _Term((_Bound(">=", lo), _Bound("<", p.next_ceiling())), pre, negated=True)
    if op == ">":
        if p.exact:
            return _Term((_Bound(">", lo),), pre)
        if p.major is None:
            return nothing
        return _Term((_Bound(">=", p.next_ceiling()),), pre)
    if op in (">=", "=>"):
        return _Term((_Bound(">=", lo),), pre)
    if op == "<":
        return _Term((_Bound("<", lo),), pre)
    if op in ("<=", "=<"):
        if p.exact:
            return _Term((_Bound("<=", lo),), pre)
        if p.major is None:
            return everything
        return _Term((_Bound("<", p.next_ceiling()),), pre)
    if p.major is None:  # "~*", "^*"
        return everything
    if op in ("~", "~>"):
        if p.minor is None:
            ceiling = Version(p.major + 1, 0, 0, (0,))
        else:
            ceiling = Version(p.major, p.minor + 1, 0, (0,))
        return _Term((_Bound(">=", lo), _Bound("<", ceiling)), pre)
    if op == "^":
        if p.major > 0 or p.minor is None:
            ceiling = Version(p.major + 1, 0, 0, (0,))
        elif p.minor > 0 or p.patch is None:
            ceiling = Version(0, p.minor + 1, 0, (0,))
        else:
            ceiling = Version(0, 0, p.patch + 1, (0,))
        return _Term((_Bound(">=", lo), _Bound("<", ceiling)), pre)
    raise AssertionError(op)


_HYPHEN_RE = re.compile(r"^\s*(\S+)\s+-\s+(\S+)\s*$")
_TOKEN_RE = re.compile(r"(!=|>=|<=|=<|=>|~>|>|<|=|~|\^)?\s*([^\s,]+)")


def _parse_group(text: str, source: str) -> tuple[_Term, ...]:
    hyphen = _HYPHEN_RE.match(text)
    if hyphen is not None:
        lo = _parse_partial(hyphen[1], source)
        hi = _parse_partial(hyphen[2], source)
        return (_term(">=", lo), _term("<=", hi))
    terms: list[_Term] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        if text[pos] in " ,\t":
            pos += 1
            continue
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise ValueError(f"invalid semver constraint {source!r}")
        terms.append(_term(m[1] or "", _parse_partial(m[2], source)))
        pos = m.end()
    if not terms:
        raise ValueError(f"invalid semver constraint {source!r}: empty alternative")
    return tuple(terms)


@dataclass(frozen=True)
class Constraint:
    """A parsed constraint: alternatives (``||``) of terms that must all hold."""

    text: str
    _groups: tuple[tuple[_Term, ...], ...]

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse Masterminds constraint syntax; ValueError naming the bad part."""
        if not text.strip():
            raise ValueError("invalid semver constraint '': it is empty")
        groups = tuple(_parse_group(alt, text) for alt in text.split("||"))
        return cls(text, groups)

    def allows(self, version: Version) -> bool:
        return any(_group_allows(group, version) for group in self._groups)


def _group_allows(group: tuple[_Term, ...], v: Version) -> bool:
    # A prerelease is only considered when some term of the same AND group
    # names a prerelease itself (Masterminds v3 decides this per group).
    if v.prerelease and not any(t.prerelease for t in group):
        return False
    return all(t.holds(v) for t in group)


def max_satisfying(candidates: Iterable[str], constraint: str | Constraint) -> str | None:
    """The candidate text (e.g. a tag name) with the highest version in range.

    Candidates that are not versions are skipped, as Flux does with tags.
    Ties (``v1.0.0`` and ``1.0.0``, or differing build metadata) go to the
    lexically greatest text so that the choice is stable.
    """
    c = constraint if isinstance(constraint, Constraint) else Constraint.parse(constraint)
    best: tuple[Version, str] | None = None
    for text in candidates:
        try:
            v = Version.parse(text)
        except ValueError:
            continue
        if c.allows(v) and (best is None or (v, text) > best):
            best = (v, text)
    return None if best is None else best[1]
