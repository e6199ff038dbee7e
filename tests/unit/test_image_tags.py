"""ImagePolicy tag selection (fluxd.image.tags) and its Go regexp dialect (fluxd.image.goregexp)."""

from __future__ import annotations

import pytest

from fluxd.api import (
    AlphabeticalPolicy,
    ImagePolicyChoice,
    ImagePolicySpec,
    NamespacedObjectReference,
    NumericalPolicy,
    SemVerPolicy,
    TagFilter,
)
from fluxd.image.goregexp import compile_go_regexp, expand_template
from fluxd.image.tags import NoMatchError, PolicyError, latest_tag, validate

REPO = NamespacedObjectReference(name="podinfo")


def semver(
    range_: str, *, pattern: str | None = None, extract: str | None = None
) -> ImagePolicySpec:
    return _spec(ImagePolicyChoice(semver=SemVerPolicy(range=range_)), pattern, extract)


def alphabetical(
    order: str = "asc", *, pattern: str | None = None, extract: str | None = None
) -> ImagePolicySpec:
    return _spec(ImagePolicyChoice(alphabetical=AlphabeticalPolicy(order=order)), pattern, extract)


def numerical(
    order: str = "asc", *, pattern: str | None = None, extract: str | None = None
) -> ImagePolicySpec:
    return _spec(ImagePolicyChoice(numerical=NumericalPolicy(order=order)), pattern, extract)


def _spec(choice: ImagePolicyChoice, pattern: str | None, extract: str | None) -> ImagePolicySpec:
    tag_filter = (
        None if pattern is None and extract is None else TagFilter(pattern=pattern, extract=extract)
    )
    return ImagePolicySpec(image_repository_ref=REPO, policy=choice, filter_tags=tag_filter)


TAGS = ["latest", "v1.0.0", "1.2.0", "v1.10.0", "v1.11.0-rc.1", "2.0.0-rc.1", "v1.2", "sha-abc"]


@pytest.mark.parametrize(
    ("range_", "expected"),
    [
        (">=1.0.0", "v1.10.0"),
        (">=1.0.0 <1.10.0", "1.2.0"),
        ("~1.2", "1.2.0"),
        (">=1.0.0-0", "2.0.0-rc.1"),
        (">=1.0.0-0 <2.0.0-0", "v1.11.0-rc.1"),
        ("*", "v1.10.0"),
    ],
)
def test_semver_picks_the_highest_tag_in_range(range_: str, expected: str) -> None:
    assert latest_tag(semver(range_), TAGS) == expected


def test_semver_needs_three_parts_but_allows_zero_padding() -> None:
    # fluxcd/pkg's ParseVersion: "v1.2" is not a version, date tags are.
    assert latest_tag(semver(">=1.0.0"), ["v1.99", "v1.3.0"]) == "v1.3.0"
    assert (
        latest_tag(semver(">=2025.1.0"), ["v2025.07.03", "v2025.12.01", "v2024.12.31"])
        == "v2025.12.01"
    )


def test_semver_ties_go_to_the_first_listed_tag() -> None:
    assert latest_tag(semver("1.x"), ["v1.0.0", "1.0.0", "1.0.0+build.2"]) == "v1.0.0"
    assert latest_tag(semver("1.x"), ["1.0.0", "v1.0.0"]) == "1.0.0"


def test_semver_with_no_version_in_range_is_no_match() -> None:
    with pytest.raises(
        NoMatchError, match=r"unable to determine latest version from provided list.*'>=3'"
    ):
        latest_tag(semver(">=3"), TAGS)


def test_invalid_semver_range_is_a_policy_error() -> None:
    spec = semver("not-a-range")
    with pytest.raises(PolicyError, match="invalid semver range 'not-a-range'"):
        validate(spec)
    with pytest.raises(PolicyError, match="invalid semver range"):
        latest_tag(spec, TAGS)


def test_alphabetical_orders() -> None:
    tags = ["RELEASE.2023-01-31", "RELEASE.2024-06-01", "RELEASE.2022-12-24"]
    assert latest_tag(alphabetical(), tags) == "RELEASE.2024-06-01"
    assert latest_tag(alphabetical("asc"), tags) == "RELEASE.2024-06-01"
    assert latest_tag(alphabetical("desc"), tags) == "RELEASE.2022-12-24"


def test_alphabetical_compares_bytes_not_case_or_numbers() -> None:
    assert latest_tag(alphabetical(), ["b", "B", "a"]) == "b"
    assert latest_tag(alphabetical(), ["9", "10"]) == "9"
    assert latest_tag(alphabetical("desc"), ["b", "B", "a"]) == "B"


def test_numerical_orders() -> None:
    tags = ["9", "10", "1.5", "-3", "1e1"]
    assert latest_tag(numerical(), tags) == "1e1"  # 10 == 1e1: the later one, as in Flux
    assert latest_tag(numerical("desc"), tags) == "-3"
    assert latest_tag(numerical(), ["0x1p4", "15"]) == "0x1p4"  # Go hex float: 16


def test_numerical_fails_on_a_tag_that_is_not_a_number() -> None:
    with pytest.raises(NoMatchError, match="failed to parse invalid numeric value 'latest'"):
        latest_tag(numerical(), ["1", "latest", "2"])
    # Go's ParseFloat, not Python's float(): no underscores, no overflow to infinity.
    with pytest.raises(NoMatchError, match="'1_000'"):
        latest_tag(numerical(), ["1_000"])
    with pytest.raises(NoMatchError, match="'1e400'"):
        latest_tag(numerical(), ["1e400"])


def test_filter_with_named_group_extract_orders_values_but_reports_tags() -> None:
    tags = [
        "main-a1b2c3-1700000100",
        "main-ffee00-1700000900",
        "main-0badf0-1700000200",
        "dev-aaaaaa-1800000000",
    ]
    pattern = r"^main-[a-f0-9]+-(?P<ts>[0-9]+)"
    assert latest_tag(numerical(pattern=pattern, extract="$ts"), tags) == "main-ffee00-1700000900"
    assert (
        latest_tag(numerical("desc", pattern=pattern, extract="$ts"), tags)
        == "main-a1b2c3-1700000100"
    )


def test_filter_accepts_go_named_group_syntax_and_braced_references() -> None:
    tags = ["1.2.0-build.7", "1.3.0-build.3", "2.0.0-build.1"]
    spec = numerical(pattern=r"-build\.(?<n>[0-9]+)$", extract="${n}")
    assert latest_tag(spec, tags) == "1.2.0-build.7"


def test_filter_then_semver_on_extracted_versions() -> None:
    tags = ["app-v1.2.3", "app-v1.10.0", "other-v9.0.0", "app-nightly"]
    assert latest_tag(semver("^1", pattern=r"^app-(?P<v>.*)$", extract="$v"), tags) == "app-v1.10.0"


def test_filter_without_extract_orders_whole_tags() -> None:
    assert latest_tag(alphabetical(pattern="^rc-"), ["rc-2", "rc-10", "v3"]) == "rc-2"


def test_filter_matching_nothing_is_no_match() -> None:
    with pytest.raises(NoMatchError, match=r"no tag matches filterTags.pattern '\^release-'"):
        latest_tag(alphabetical(pattern="^release-"), ["v1", "v2"])


def test_no_tags_at_all_is_no_match() -> None:
    with pytest.raises(NoMatchError, match="version list argument cannot be empty"):
        latest_tag(alphabetical(), [])


@pytest.mark.parametrize("pattern", ["^main-(", r"(?=main)", r"^(a)\1$", "[[:nonsense:]]"])
def test_invalid_pattern_is_a_policy_error_naming_it(pattern: str) -> None:
    spec = alphabetical(pattern=pattern)
    with pytest.raises(PolicyError, match="invalid regular expression pattern") as raised:
        validate(spec)
    assert repr(pattern) in str(raised.value)


def test_policy_with_no_ordering_is_a_policy_error() -> None:
    spec = _spec(ImagePolicyChoice(), None, None)
    with pytest.raises(PolicyError, match="set one of semver, alphabetical, numerical"):
        validate(spec)


def test_validate_accepts_a_good_policy() -> None:
    validate(semver(">=1.0.0 <2", pattern=r"^v(?<version>.*)", extract="$version"))


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$0", "rel-12-ab"),
        ("$1", "12"),
        ("$num", "12"),
        ("${num}x", "12x"),
        ("$numx", ""),  # the longest name: group "numx" does not exist
        ("$num_sha", "ab"),
        ("$$num", "$num"),
        ("${num", "${num"),  # not a reference: kept as text
        ("cost $", "cost $"),
        ("$9", ""),
    ],
)
def test_expand_template_follows_go(template: str, expected: str) -> None:
    match = compile_go_regexp(r"rel-(?P<num>[0-9]+)-(?<num_sha>[a-z]+)").search("rel-12-ab")
    assert match is not None
    assert expand_template(template, match) == expected


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"^[[:digit:]]+$", "123", True),
        (r"^[[:alpha:]_]+$", "a_b", True),
        (r"^[[:xdigit:]]+$", "xyz", False),
        (r"^\d+$", "١٢٣", False),  # Arabic-Indic digits: \d is ASCII in Go
        (r"^a\z", "a", True),
        (r"^\101$", "A", True),  # octal escape
        (r"^[]a]+$", "]a", True),
    ],
)
def test_go_regexp_dialect(pattern: str, text: str, matches: bool) -> None:
    assert (compile_go_regexp(pattern).search(text) is not None) is matches
