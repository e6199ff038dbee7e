"""ImagePolicy's tag selection: which of an ImageRepository's tags is the latest.

The rules are image-reflector-controller's, so a policy picks here the tag it
picks under Flux:

* ``filterTags.pattern`` (a Go regexp) drops the tags it does not match, and
  ``extract`` turns each kept tag into the value that is ordered; the tag, not
  the value, is reported. Without ``extract`` the whole tag is the value. When
  two tags extract the same value, the one listed later stands for it.
* ``semver`` skips tags that are not versions (fluxcd/pkg's parsing: three
  dotted parts, ``v`` prefix and zero padding allowed) and picks the highest
  version within the range; of tags naming the same version, the first listed wins.
* ``alphabetical`` compares by code point (Go's byte order of UTF-8): ``asc``
  picks the last, ``desc`` the first.
* ``numerical`` reads every value as a Go float and picks the largest
  (``asc``) or smallest (``desc``); one value that is not a number fails the
  whole policy, as in Flux, until the next scan brings other tags.

When ``spec.policy`` names more than one ordering, Flux's precedence applies:
semver, then alphabetical, then numerical.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping

from fluxd.api import ImagePolicyChoice, ImagePolicySpec, TagFilter
from fluxd.image.goregexp import compile_go_regexp, expand_template
from fluxd.semver import Constraint, Version, parse_tag_version

__all__ = ["NoMatchError", "PolicyError", "latest_tag", "validate"]

# Ordered value -> the tag it came from.
_Candidates = Mapping[str, str]
_Picker = Callable[[_Candidates], str]

_GO_DECIMAL_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|inf|infinity)|nan",
    re.IGNORECASE,
)
_GO_HEX_FLOAT_RE = re.compile(r"[+-]?0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)p[+-]?[0-9]+", re.I)


class PolicyError(ValueError):
    """Invalid policy (bad range, bad regexp): the object should stall."""


class NoMatchError(ValueError):
    """No tag qualifies: Ready=False, retried at the next scan."""


def validate(spec: ImagePolicySpec) -> None:
    """Raise PolicyError early for an invalid pattern/range, before any tags are known."""
    _picker(spec.policy)
    if spec.filter_tags is not None:
        _pattern(spec.filter_tags)


def latest_tag(spec: ImagePolicySpec, tags: Iterable[str]) -> str:
    """The latest of ``tags`` (in the order the registry listed them) under ``spec``."""
    pick = _picker(spec.policy)
    if spec.filter_tags is None:
        candidates = {tag: tag for tag in tags}
        if not candidates:
            raise NoMatchError("no tags to choose from: version list argument cannot be empty")
    else:
        candidates = _filtered(spec.filter_tags, tags)
        if not candidates:
            raise NoMatchError(
                f"no tag matches filterTags.pattern {spec.filter_tags.pattern or ''!r}: "
                "version list argument cannot be empty"
            )
    return pick(candidates)


def _picker(choice: ImagePolicyChoice) -> _Picker:
    if choice.semver is not None:
        try:
            constraint = Constraint.parse(choice.semver.range)
        except ValueError as exc:
            raise PolicyError(f"invalid semver range {choice.semver.range!r}: {exc}") from None
        return functools.partial(_highest_version, constraint)
    if choice.alphabetical is not None:
        return functools.partial(_alphabetical, descending=choice.alphabetical.order == "desc")
    if choice.numerical is not None:
        return functools.partial(_numerical, descending=choice.numerical.order == "desc")
    raise PolicyError("spec.policy sets no ordering: set one of semver, alphabetical, numerical")


def _pattern(tag_filter: TagFilter) -> re.Pattern[str]:
    pattern = tag_filter.pattern or ""
    try:
        return compile_go_regexp(pattern)
    except ValueError as exc:
        raise PolicyError(
            f"invalid regular expression pattern {pattern!r} in filterTags: {exc}"
        ) from None


def _filtered(tag_filter: TagFilter, tags: Iterable[str]) -> dict[str, str]:
    regexp = _pattern(tag_filter)
    candidates: dict[str, str] = {}
    for tag in tags:
        match = regexp.search(tag)
        if match is not None:
            value = expand_template(tag_filter.extract, match) if tag_filter.extract else tag
            candidates[value] = tag
    return candidates


def _highest_version(constraint: Constraint, candidates: _Candidates) -> str:
    best: tuple[Version, str] | None = None
    for value, tag in candidates.items():
        try:
            version = parse_tag_version(value)
        except ValueError:
            continue
        if constraint.allows(version) and (best is None or version > best[0]):
            best = (version, tag)
    if best is None:
        raise NoMatchError(
            "unable to determine latest version from provided list: "
            f"no tag is a version within semver range {constraint.text!r}"
        )
    return best[1]


def _alphabetical(candidates: _Candidates, *, descending: bool) -> str:
    value = min(candidates) if descending else max(candidates)
    return candidates[value]


def _numerical(candidates: _Candidates, *, descending: bool) -> str:
    best_number, best_tag = math.nan, ""
    for index, (value, tag) in enumerate(candidates.items()):
        number = _go_float(value)
        if number is None:
            named = repr(value) if value == tag else f"{value!r} (from tag {tag!r})"
            raise NoMatchError(f"failed to parse invalid numeric value {named}")
        # Written as Flux compares, so equal numbers and NaN resolve the same way.
        if index > 0 and (number > best_number if descending else number < best_number):
            continue
        best_number, best_tag = number, tag
    return best_tag


def _go_float(text: str) -> float | None:
    """``strconv.ParseFloat(text, 64)``, or None where Go reports an error."""
    if _GO_DECIMAL_FLOAT_RE.fullmatch(text):
        number = float(text)
    elif _GO_HEX_FLOAT_RE.fullmatch(text):
        try:
            number = float.fromhex(text)
        except OverflowError:
            return None  # out of range: Go's ErrRange
    else:
        return None
    if math.isinf(number) and "inf" not in text.lower():
        return None  # out of range: Go's ErrRange
    return number
