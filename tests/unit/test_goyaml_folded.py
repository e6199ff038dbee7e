"""Block scalars read the way ``kubectl kustomize`` prints them.

kustomize re-encodes every resource with go-yaml v3 and decodes it again before printing
it. go-yaml's folded writer doubles the line break before a more-indented line (or, when
the value itself starts with a blank, none at all), so what kustomize prints is not what
go-yaml first parsed. The expected values here were read from ``kubectl kustomize`` v5.7
output; ``tests/kustomize/cases/io-folded-more-indented`` compares whole builds with it.
"""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.yaml import YamlError, dump_documents, load_documents, load_values


def _config_map(data_lines: list[str]) -> bytes:
    header = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: folded", "data:"]
    return ("\n".join([*header, *data_lines]) + "\n").encode()


def _value(block: list[str], **options: Any) -> Any:
    """The value of ``data.v`` written as ``v: <block[0]>`` with the other lines below."""
    lines = [f"  v: {block[0]}", *(f"    {line}" if line else "" for line in block[1:])]
    (obj,) = load_documents(_config_map(lines), source="cm.yaml", **options)
    return obj["data"]["v"]


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        pytest.param([">-", "first line", "  more indented", "back"],
                     "first line\n\n  more indented\nback", id="indented-then-back"),
        pytest.param([">-", "n", "", "  i1", "", "  i2", "n2"],
                     "n\n\n\n  i1\n\n  i2\nn2", id="blank-lines-between-indented"),
        pytest.param([">-", "n", "", "", "  i"], "n\n\n\n\n  i", id="two-blank-lines"),
        pytest.param([">-", "n", "\ttab", "n3"], "n\n\n\ttab\nn3", id="tab-is-more-indented"),
        pytest.param([">", "para one", "continues", "", "  block", "  two", "last"],
                     "para one continues\n\n\n  block\n  two\nlast\n", id="clip"),
        pytest.param([">+", "keep", "  indented", "", ""], "keep\n\n  indented\n\n\n",
                     id="keep"),
        pytest.param([">2-", "  lead", "n", "m", "", "o", "  i", "p"],
                     "  lead\nn m o\n  i\np", id="value-starting-with-a-blank"),
        pytest.param([">2-", "", "n", "  i"], "\nn\n\n  i", id="leading-blank-line"),
    ],
)  # fmt: skip
def test_folded_value_with_more_indented_lines_reads_as_kustomize_prints_it(
    block: list[str], expected: str
) -> None:
    assert _value(block) == expected


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        pytest.param([">-", "x", "y", "", "z"], "x y\nz", id="folded-without-indented-lines"),
        pytest.param(["|-", "lit", "  ind", "back"], "lit\n  ind\nback", id="literal"),
        # A space before a line break: go-yaml writes the value double-quoted instead.
        pytest.param([">-", "spaces   ", "  indented"], "spaces   \n  indented",
                     id="trailing-spaces"),
    ],
)  # fmt: skip
def test_block_value_kustomize_prints_as_parsed_is_unchanged(
    block: list[str], expected: str
) -> None:
    assert _value(block) == expected


def test_printed_like_kustomize() -> None:
    (obj,) = load_documents(
        _config_map(["  a: >-", "    n", "      i", "  b: >-", "    n", "    \ttab"]),
        source="cm.yaml",
    )
    assert dump_documents([obj]) == (
        'apiVersion: v1\ndata:\n  a: |-\n    n\n\n      i\n  b: "n\\n\\n\\ttab"\n'
        "kind: ConfigMap\nmetadata:\n  name: folded\n"
    )


def test_without_the_round_trip_the_value_is_what_go_yaml_parses() -> None:
    block = [">-", "n", "  i"]
    assert _value(block, kyaml_round_trip=False) == "n\n  i"
    (values,) = load_values(b"v: >-\n  n\n    i\n", source="patch.yaml")
    assert values == {"v": "n\n  i"}
    (values,) = load_values(b"v: >-\n  n\n    i\n", source="patch.yaml", kyaml_round_trip=True)
    assert values == {"v": "n\n\n  i"}


def test_resource_annotations_keep_the_parsed_value() -> None:
    # kustomize sets a resource's annotations anew from a Go map: their style is gone.
    text = b"""\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: listed
    annotations:
      note: >-
        n
          i
    labels:
      l: >-
        n
          i
  data:
    nested:
      annotations:
        note: >-
          n
            i
"""
    (obj,) = load_documents(text, source="list.yaml")
    assert obj["metadata"]["annotations"]["note"] == "n\n  i"
    assert obj["metadata"]["labels"]["l"] == "n\n\n  i"
    assert obj["data"]["nested"]["annotations"]["note"] == "n\n\n  i"


@pytest.mark.parametrize(
    "block", [["|2-", "\techo", "done"], [">2", "\tone line"]], ids=["literal", "folded"]
)
def test_block_value_starting_with_a_tab_is_an_error_naming_file_and_line(
    block: list[str],
) -> None:
    lines = ["  fine: >-", "    ok", f"  script: {block[0]}", *(f"    {b}" for b in block[1:])]
    with pytest.raises(YamlError) as failure:
        load_documents(_config_map(lines), source="deploy/cm.yaml")
    message = str(failure.value)
    assert message.startswith("deploy/cm.yaml line 8: kustomize cannot print a value")
    assert "starts with a tab as a block scalar" in message
    assert "double-quoted" in message
    quoted = _config_map(['  script: "\\techo\\ndone"'])
    (obj,) = load_documents(quoted, source="deploy/cm.yaml")
    assert obj["data"]["script"] == "\techo\ndone"


def _annotated(value: str) -> bytes:
    header = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations:\n"
    return f"{header}    a: {value}\n".encode()


def test_multi_line_annotation_starting_with_a_tab_is_an_error_whatever_its_quoting() -> None:
    with pytest.raises(YamlError) as failure:
        load_documents(_annotated('"\\tx\\ny"'), source="cm.yaml")
    assert str(failure.value).startswith("cm.yaml line 6: kustomize cannot print")
    assert "start the annotation with another character" in str(failure.value)
    labelled = _annotated('"\\tx\\ny"').replace(b"annotations", b"labels")
    (obj,) = load_documents(labelled, source="cm.yaml")
    assert obj["metadata"]["labels"]["a"] == "\tx\ny"


def test_one_line_annotation_starting_with_a_tab_prints_quoted() -> None:
    (obj,) = load_documents(_annotated("|2-\n      \tx"), source="cm.yaml")
    assert '    a: "\\tx"\n' in dump_documents([obj])
