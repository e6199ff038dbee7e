"""Masterminds-compatible versions and constraints (fluxd.semver)."""

from __future__ import annotations

import pytest

from fluxd.semver import Constraint, Version, max_satisfying, parse_tag_version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3", "1.2.3"),
        ("v1.2.3", "1.2.3"),
        ("1.2", "1.2.0"),
        ("v2", "2.0.0"),
        ("1.2.3-rc.1+build.5", "1.2.3-rc.1+build.5"),
    ],
)
def test_lenient_parse_keeps_original(text: str, expected: str) -> None:
    version = Version.parse(text)
    assert str(version) == expected
    assert version.original == text


@pytest.mark.parametrize("text", ["", "latest", "1.2.3.4", "01.2.3", "1.2.3-", "v", "1..2"])
def test_not_a_version(text: str) -> None:
    with pytest.raises(ValueError, match="invalid semantic version"):
        Version.parse(text)


def test_precedence_follows_semver_2() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
        "2.0.0",
    ]
    versions = [Version.parse(v) for v in ordered]
    assert sorted(reversed(versions)) == versions
    assert Version.parse("1.0.0+a") == Version.parse("1.0.0+b")


@pytest.mark.parametrize(
    ("constraint", "allowed", "denied"),
    [
        (">=1.0.0 <2.0.0", ["1.0.0", "1.9.9"], ["0.9.9", "2.0.0", "1.5.0-rc.1"]),
        (">=1.0.0, <2.0.0", ["1.4.0"], ["2.0.0"]),
        ("^1.2", ["1.2.0", "1.9.0"], ["1.1.9", "2.0.0"]),
        ("^1.2.3", ["1.2.3", "1.99.0"], ["1.2.2", "2.0.0"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4", "0.0.2"]),
        ("^0", ["0.0.1", "0.9.0"], ["1.0.0"]),
        ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
        ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
        ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
        ("~>1.2", ["1.2.5"], ["1.3.0"]),
        ("1.x", ["1.0.0", "1.99.1"], ["2.0.0", "0.9.0"]),
        ("1.2.x", ["1.2.0", "1.2.7"], ["1.3.0"]),
        ("1.2.*", ["1.2.7"], ["1.3.0"]),
        ("*", ["0.0.1", "99.0.0"], ["1.0.0-beta"]),
        ("x", ["3.0.0"], []),
        ("1.2.3", ["1.2.3"], ["1.2.4"]),
        ("=1.2.3", ["1.2.3", "1.2.3+meta"], ["1.2.4"]),
        ("!=1.2.3", ["1.2.4"], ["1.2.3"]),
        ("!=1.2.x", ["1.3.0", "1.1.0"], ["1.2.5"]),
        (">1.2.3", ["1.2.4"], ["1.2.3"]),
        (">1.2.x", ["1.3.0"], ["1.2.9"]),
        ("<1.2.3", ["1.2.2"], ["1.2.3"]),
        ("<=1.2.3", ["1.2.3"], ["1.2.4"]),
        ("<=1.2.x", ["1.2.9"], ["1.3.0"]),
        ("=<1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),  # a missing patch is a wildcard
        ("1.2 - 1.4.5", ["1.2.0", "1.4.5"], ["1.1.9", "1.4.6"]),
        ("1.2.3 - 2", ["2.9.0"], ["3.0.0"]),
        ("<1.0.0 || >=3.0.0", ["0.5.0", "3.1.0"], ["1.0.0", "2.9.9"]),
        (">=1.0.0-0", ["1.1.0-rc.1", "1.0.0"], ["0.9.0"]),
        (">=1.2.3-beta.1 <1.3.0", ["1.2.3-beta.2", "1.2.5"], ["1.2.3-alpha"]),
        (">=1.0.0 <2.0.0 || >=3.0.0-0", ["3.0.0-rc.1"], ["1.5.0-rc.1"]),  # per AND group
        ("^1.0.0-rc.1", ["1.0.0-rc.2", "1.5.0"], ["1.0.0-rc.0"]),
        ("v1.x", ["1.3.0"], ["2.0.0"]),
    ],
)
def test_constraints(constraint: str, allowed: list[str], denied: list[str]) -> None:
    c = Constraint.parse(constraint)
    for v in allowed:
        assert c.allows(Version.parse(v)), f"{constraint!r} should allow {v}"
    for v in denied:
        assert not c.allows(Version.parse(v)), f"{constraint!r} should deny {v}"


@pytest.mark.parametrize("text", ["", "  ", ">=", "1.2.3 ||", "latest", ">=1.2.3 <", "~~1"])
def test_invalid_constraints_name_the_input(text: str) -> None:
    with pytest.raises(ValueError, match="invalid semver constraint"):
        Constraint.parse(text)


def test_max_satisfying_returns_the_original_tag_text() -> None:
    tags = ["v1.0.0", "v1.2.0", "1.10.0", "v2.0.0", "v1.11.0-rc.1", "nightly", "v1.2"]
    assert max_satisfying(tags, "^1") == "1.10.0"
    assert max_satisfying(tags, "~1.2") == "v1.2.0"  # ties: v1.2 == v1.2.0, stable choice
    assert max_satisfying(tags, ">=3") is None
    assert max_satisfying([], "*") is None
    assert max_satisfying(["nightly"], "*") is None


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("v1.2.3", "1.2.3"),
        ("v2025.07.03", "2025.7.3"),
        ("1.2.0-x.Y.0+metadata", "1.2.0-x.Y.0+metadata"),
        ("1-rc.1.2", "1.0.0-rc.1.2"),
    ],
)
def test_tag_versions_parse_like_image_policies(tag: str, expected: str) -> None:
    version = parse_tag_version(tag)
    assert str(version) == expected
    assert version.original == tag


@pytest.mark.parametrize(
    "tag", ["v1.0", "v1", "v1.2.beta", "v1.2-beta5", "v1.2.3.4", "\nv1.2.3", "latest"]
)
def test_tags_that_image_policies_do_not_read_as_versions(tag: str) -> None:
    with pytest.raises(ValueError, match="invalid semantic version"):
        parse_tag_version(tag)
