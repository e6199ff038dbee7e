"""Post-build substitution: Flux's envsubst fork, variable precedence, object handling.

The expected outputs in ``EXPANSIONS``, ``FAILURES`` and the strict cases were checked
against ``github.com/fluxcd/pkg/envsubst`` v1.8.0 itself (a small Go program calling
``envsubst.Eval`` with the same inputs), the library kustomize-controller runs; the two
empty-pattern replacements follow v1.9.0's source, which needs a newer Go to build.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fluxd.build.postbuild import SubstitutionError, collect_variables, expand, substitute

VARS = {
    "name": "abcdEFGH28ij",
    "upper": "ABCDEFGH28IJ",
    "path": "/home/bozo/ideas/thoughts.for.today",
    "file": "bash.string.txt",
    "rel": "path/to/file",
    "z": "abcABC123ABCabc",
    "slashed": "foo/bar/baz",
    "dotted": "foo.bar",
    "fallback": "foo",
    "empty": "",
    "uni": "héllo",
}

EXPANSIONS = [
    ("plain text, no $ at all", "plain text, no $ at all"),
    ("${name}", "abcdEFGH28ij"),
    ("x-${name}-y", "x-abcdEFGH28ij-y"),
    ("$name stays", "$name stays"),
    ("${#name}", "12"),
    ("${#uni}", "6"),
    ("${name^}", "AbcdEFGH28ij"),
    ("${name^^}", "ABCDEFGH28IJ"),
    ("${upper,}", "aBCDEFGH28IJ"),
    ("${upper,,}", "abcdefgh28ij"),
    ("${path:11}", "ideas/thoughts.for.today"),
    ("${path:11:5}", "ideas"),
    # ":-" is the default operator, not a negative offset (bash needs "${path: -5}" too).
    ("${path:-5}", "/home/bozo/ideas/thoughts.for.today"),
    ("${path:1x2}", "/home/bozo/ideas/thoughts.for.today"),
    ("${path:1:-6}", "home/bozo/ideas/thoughts.for"),
    ("${path:x}", "/home/bozo/ideas/thoughts.for.today"),
    ("${path:100}", ""),
    ("${missing=xyz}", "xyz"),
    ("${missing:=xyz}", "xyz"),
    ("${missing:-xyz}", "xyz"),
    ("${empty:=xyz}", "xyz"),
    ("${name:=xyz}", "abcdEFGH28ij"),
    ("${missing:=}", ""),
    ("${missing:=${fallback}}", "foo"),
    ("${missing=prefix-${fallback}-suffix}", "prefix-foo-suffix"),
    ("${missing:=${name^^}}", "ABCDEFGH28IJ"),
    ("${missing:=a default: with colon}", "a default: with colon"),
    ("${z/abc/xyz}", "xyzABC123ABCabc"),
    ("${z//abc/xyz}", "xyzABC123ABCxyz"),
    ("${z/#abc/XYZ}", "XYZABC123ABCabc"),
    ("${z/%abc/XYZ}", "abcABC123ABCXYZ"),
    ("${z/#nope/XYZ}", "abcABC123ABCabc"),
    # An empty pattern prepends / appends (fluxcd/pkg/envsubst v1.9; v1.8 rejected it).
    ("${fallback/#/pre-}", "pre-foo"),
    ("${fallback/%/-post}", "foo-post"),
    ("${dotted/./}", "foobar"),
    ("${slashed/\\//-}", "foo-bar/baz"),
    ("${slashed//\\//-}", "foo-bar-baz"),
    ("${file#*.}", "string.txt"),
    ("${file##*.}", "txt"),
    ("${file%.*}", "bash.string"),
    ("${file%%.*}", "bash"),
    ("${rel#*/}", "to/file"),
    ("${rel##*/}", "file"),
    ("${rel%/*}", "path/to"),
    ("${rel%%/*}", "path"),
    ("${file#b?sh}", ".string.txt"),
    ("${file#[ab]*.}", "string.txt"),
    ("$${name}", "${name}"),
    ("a $$ b", "a $ b"),
    ("$$$${name}", "$${name}"),
    ("$$${name}", "$abcdEFGH28ij"),
    ("some ${name}$${x$${name}$name${name}", "some abcdEFGH28ij${x${name}$nameabcdEFGH28ij"),
    ("keep $${missing=${fallback}}", "keep ${missing=foo}"),
    ("\\\\not an escape ${fallback}", "\\\\not an escape foo"),
    ("${missing}", ""),
    ("${missing^^}", ""),
    ("${missing:+alt}", "alt"),
    ("${name:+alt}", "abcdEFGH28ij"),
    ("${1digit}", ""),
]


@pytest.mark.parametrize(("text", "expected"), EXPANSIONS)
def test_expand_matches_flux_envsubst(text: str, expected: str) -> None:
    assert expand(text, VARS) == expected


FAILURES = [
    ("${}", "unable to parse variable name"),
    ("${ name}", "unable to parse variable name"),
    ("${name", "missing closing brace"),
    ("${name-default}", "missing closing brace"),
    ("${name:=unterminated", "unable to parse substitution within function"),
    ("${name#}", "unable to parse substitution within function"),
    ("${name/abc}", "bad substitution"),
    ("${#}", "bad substitution"),
    ("${name:1${x}}", "bad substitution"),
]


@pytest.mark.parametrize(("text", "message"), FAILURES)
def test_malformed_expressions_fail_like_flux(text: str, message: str) -> None:
    with pytest.raises(SubstitutionError, match=message):
        expand(text, VARS)


@pytest.mark.parametrize(
    "text",
    [
        "${missing}",
        "${#missing}",
        "${missing^^}",
        "${missing:0:2}",
        "${missing/a/b}",
        "${missing%x}",
    ],
)
def test_strict_mode_rejects_unset_variables(text: str) -> None:
    with pytest.raises(SubstitutionError, match='variable not set \\(strict mode\\): "missing"'):
        expand(text, VARS, strict=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${missing:=d}", "d"),
        ("${missing=d}", "d"),
        ("${missing:-d}", "d"),
        ("${empty}", ""),
        ("${name}", "abcdEFGH28ij"),
    ],
)
def test_strict_mode_accepts_defaults_and_empty_values(text: str, expected: str) -> None:
    assert expand(text, VARS, strict=True) == expected


# -- objects ---------------------------------------------------------------------------------


def deployment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": spec,
    }


def test_substitution_reparses_types() -> None:
    obj = deployment(replicas="${REPLICAS}", paused="${PAUSED}", image="nginx:${TAG}")
    result = substitute(obj, {"REPLICAS": "3", "PAUSED": "false", "TAG": "1.27"})
    assert result["spec"] == {"replicas": 3, "paused": False, "image": "nginx:1.27"}


def test_string_that_looks_like_a_number_stays_a_string() -> None:
    # The printer quotes "1.0" (it would read back as a number), and nothing is substituted.
    obj = deployment(version="1.0", label="${ENV}")
    assert substitute(obj, {"ENV": "prod"})["spec"] == {"version": "1.0", "label": "prod"}


def test_object_is_not_modified_in_place() -> None:
    obj = deployment(replicas="${REPLICAS}")
    before = copy.deepcopy(obj)
    substitute(obj, {"REPLICAS": "2"})
    assert obj == before


def test_undefined_variables_become_empty() -> None:
    obj = deployment(image="nginx-${TAG}", note="${NOTE:=none}")
    assert substitute(obj, {"OTHER": "x"})["spec"] == {"image": "nginx-", "note": "none"}


def test_empty_value_can_break_the_yaml_like_in_flux() -> None:
    # "image: nginx:" is not valid YAML (a colon before the newline): Flux fails the same way.
    with pytest.raises(SubstitutionError, match="not valid YAML"):
        substitute(deployment(image="nginx:${TAG}"), {"OTHER": "x"})


def test_escape_and_bare_dollar_pass_through() -> None:
    obj = deployment(command="echo $${HOME} $PATH", keep="$HOME")
    assert substitute(obj, {"X": "1"})["spec"] == {"command": "echo ${HOME} $PATH", "keep": "$HOME"}


def test_without_variables_the_object_is_untouched() -> None:
    obj = deployment(command="echo $${HOME}", tag="${TAG}")
    assert substitute(obj, {}) is obj


def test_strict_without_variables_has_nothing_to_check() -> None:
    # Flux gates substitution on "any variables, or substituteStrategy: Always".
    obj = deployment(tag="${TAG}")
    assert substitute(obj, {}, strict=True) is obj


def test_always_applies_defaults_without_variables() -> None:
    obj = deployment(env="${cluster_env:=dev}", region="${cluster_region:=eu-central-1}")
    result = substitute(obj, {}, always=True)
    assert result["spec"] == {"env": "dev", "region": "eu-central-1"}


def test_always_with_strict_reports_missing_variables() -> None:
    obj = deployment(tag="${TAG}")
    with pytest.raises(SubstitutionError, match=r'Deployment/apps/web.*"TAG"'):
        substitute(obj, {}, strict=True, always=True)


def test_strict_names_object_and_variable() -> None:
    obj = deployment(image="nginx:${TAG}")
    with pytest.raises(SubstitutionError) as caught:
        substitute(obj, {"OTHER": "x"}, strict=True)
    assert "Deployment/apps/web" in str(caught.value)
    assert '"TAG"' in str(caught.value)


@pytest.mark.parametrize("where", ["labels", "annotations"])
def test_disabled_objects_are_skipped(where: str) -> None:
    obj = deployment(image="nginx:${TAG}")
    obj["metadata"][where] = {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}
    assert substitute(obj, {"TAG": "1"}, strict=True) is obj


def test_other_values_of_the_opt_out_key_do_not_disable() -> None:
    obj = deployment(image="nginx:${TAG}")
    obj["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/substitute": "enabled"}
    assert substitute(obj, {"TAG": "1"})["spec"]["image"] == "nginx:1"


@pytest.mark.parametrize("name", ["1st", "has-dash", "dotted.name", "spa ce", "é"])
def test_invalid_variable_names_are_rejected(name: str) -> None:
    with pytest.raises(SubstitutionError) as caught:
        substitute(deployment(), {name: "v"})
    assert f"'{name}' var name is invalid" in str(caught.value)
    assert "Deployment/apps/web" in str(caught.value)


def test_value_that_breaks_yaml_is_reported() -> None:
    obj = deployment(list="${ITEMS}")
    with pytest.raises(SubstitutionError, match=r"Deployment/apps/web.*not valid YAML"):
        substitute(obj, {"ITEMS": "[a, b"})


def test_value_with_yaml_syntax_changes_structure_like_flux() -> None:
    obj = deployment(list="${ITEMS}")
    assert substitute(obj, {"ITEMS": "[a, b]"})["spec"]["list"] == ["a", "b"]


def test_malformed_expression_names_the_object() -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns-${X"}}
    with pytest.raises(SubstitutionError, match="Namespace/ns-\\$\\{X: variable substitution"):
        substitute(obj, {"X": "1"})


def test_substitution_in_keys_and_nested_lists() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm-${ENV}", "namespace": "apps"},
        "data": {"${ENV}.conf": "region=${REGION:=eu}", "items": "a"},
    }
    result = substitute(obj, {"ENV": "prod"})
    assert result["metadata"]["name"] == "cm-prod"
    assert result["data"] == {"prod.conf": "region=eu", "items": "a"}


# -- variables -------------------------------------------------------------------------------


def test_precedence_later_sources_then_inline_substitute() -> None:
    variables = collect_variables(
        {"shared": "inline", "only_inline": "i"},
        [
            ("ConfigMap", "first", {"shared": "cm", "a": "1", "b": "1"}, False),
            ("Secret", "second", {"shared": "secret", "b": "2"}, False),
        ],
    )
    assert variables == {"shared": "inline", "a": "1", "b": "2", "only_inline": "i"}


def test_newlines_are_removed_from_values() -> None:
    variables = collect_variables({"x": "a\nb\n"}, [("Secret", "s", {"y": "line\n"}, False)])
    assert variables == {"x": "ab", "y": "line"}


def test_missing_optional_source_is_skipped() -> None:
    assert collect_variables(None, [("ConfigMap", "gone", None, True)]) == {}


def test_missing_required_source_is_an_error() -> None:
    with pytest.raises(SubstitutionError, match=r"'Secret/gone'.*optional"):
        collect_variables(None, [("Secret", "gone", None, False)])


def test_plain_yes_on_no_off_read_back_as_booleans_like_flux() -> None:
    # Flux re-reads the substituted text with go-yaml v2, where these words are booleans.
    obj = deployment(a="${ON}", b="${NO}", nested=[{"c": "${ON}"}, "${NO}"], quoted="yes")
    spec = substitute(obj, {"ON": "on", "NO": "No"})["spec"]
    assert spec == {"a": True, "b": False, "nested": [{"c": True}, False], "quoted": "yes"}


def test_yaml_1_1_booleans_reach_aliases_and_merge_keys_as_in_go_yaml_v2() -> None:
    obj = deployment(a="${A}", b="${B}", c="${C}")
    variables = {"A": "&flag on", "B": "*flag", "C": "{<<: {merged: off}, own: yes}"}
    spec = substitute(obj, variables)["spec"]
    assert spec == {"a": True, "b": True, "c": {"merged": False, "own": True}}


def test_literal_quote_characters_stay() -> None:
    obj = deployment(a='"${ON}"', b="'${N}'")
    assert substitute(obj, {"ON": "on", "N": "42"})["spec"] == {"a": '"on"', "b": "'42'"}
