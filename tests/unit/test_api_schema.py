"""The schema layer itself: one class in, a matching OpenAPI schema and parser out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from fluxd.api import SpecError, from_dict, openapi_schema, to_dict
from fluxd.api._schema import Rule, field


@dataclass(frozen=True, kw_only=True)
class Inner:
    """An inner object."""

    name: str = field("name", "A name.", required=True, min_length=2, max_length=4)


@dataclass(frozen=True, kw_only=True)
class Sample:
    """A sample spec.

    More prose that is not part of the schema description.
    """

    __rules__ = (
        Rule(
            cel="self.count > 0 || !has(self.inner)",
            message="inner needs a count",
            check=lambda s: s.count > 0 or s.inner is None,
        ),
    )

    count: int = field("count", "How many.", schema_default=0, minimum=0, maximum=10)
    ratio: float | None = field("ratio", "A ratio.")
    inner: Inner | None = field("inner", "Nested.")
    items: tuple[Inner, ...] = field("items", "Some.", default=(), max_items=2)
    labels: Mapping[str, str] = field("labels", "Labels.", default={})
    blob: Any = field("blob", "Free-form.")


def test_schema_shape() -> None:
    schema = openapi_schema(Sample)
    assert schema["description"] == "A sample spec."
    assert list(schema["properties"]) == ["blob", "count", "inner", "items", "labels", "ratio"]
    assert "required" not in schema
    props = schema["properties"]
    assert props["count"] == {
        "default": 0,
        "description": "How many.",
        "type": "integer",
        "maximum": 10,
        "minimum": 0,
    }
    assert props["ratio"]["type"] == "number"
    assert props["inner"]["description"] == "Nested."
    assert props["inner"]["required"] == ["name"]
    assert props["items"]["maxItems"] == 2
    assert props["labels"]["additionalProperties"] == {"type": "string"}
    assert props["blob"] == {
        "description": "Free-form.",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert schema["x-kubernetes-validations"] == [
        {"message": "inner needs a count", "rule": "self.count > 0 || !has(self.inner)"}
    ]


def test_defaults_and_free_form_values_are_copied() -> None:
    blob = {"a": [1, 2]}
    sample = from_dict(Sample, {"blob": blob, "ratio": 1})
    assert sample.count == 0
    assert sample.ratio == 1.0
    assert sample.labels == {}
    blob["a"].append(3)
    assert sample.blob == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"count": True}, "spec.count: must be an integer, got boolean"),
        ({"count": 11}, "spec.count: must be less than or equal to 10"),
        ({"count": -1}, "spec.count: must be greater than or equal to 0"),
        ({"ratio": "1"}, "spec.ratio: must be a number, got string"),
        (
            {"count": 1, "inner": {"name": "x"}},
            "spec.inner.name: must be at least 2 characters long",
        ),
        ({"count": 1, "inner": {}}, "spec.inner.name: required value is missing"),
        ({"items": [{"name": "ab"}] * 3}, "spec.items: must have at most 2 items"),
        ({"labels": {"a": 1}}, "spec.labels.a: must be a string, got number"),
        ({"inner": {"name": "abc"}}, "spec: inner needs a count"),
        ([], "spec: must be an object, got array"),
    ],
)
def test_errors_name_the_path(data: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        from_dict(Sample, data)
    assert str(info.value) == message


def test_to_dict_omits_empty_optionals_but_keeps_published_defaults() -> None:
    sample = from_dict(Sample, {"items": [{"name": "ab"}]})
    assert to_dict(sample) == {"count": 0, "items": [{"name": "ab"}]}


@dataclass(frozen=True, kw_only=True)
class Flags:
    """Flags: one with a Go zero default, one whose absence means "not said"."""

    force: bool = field("force", "A flag that defaults to false.", default=False)
    server_side: bool | None = field("serverSide", "A flag that may be left unsaid.")


def test_to_dict_keeps_a_false_the_user_gave() -> None:
    assert to_dict(from_dict(Flags, {"force": False, "serverSide": False})) == {"serverSide": False}
    assert to_dict(from_dict(Flags, {"force": True})) == {"force": True}


@dataclass(frozen=True, kw_only=True)
class Worded(Sample):
    """A kind that inherits Sample's fields and words one of them its own way."""

    __descriptions__: ClassVar[Mapping[str, str]] = {"count": "How many widgets."}

    extra: bool = field("extra", "Its own field.", default=False)


@dataclass(frozen=True, kw_only=True)
class Misworded(Sample):
    """A kind whose wording names a field it does not have."""

    __descriptions__: ClassVar[Mapping[str, str]] = {"cuont": "Typo."}


def test_inherited_fields_keep_everything_but_the_reworded_description() -> None:
    base, worded = openapi_schema(Sample)["properties"], openapi_schema(Worded)["properties"]
    assert list(worded) == ["blob", "count", "extra", "inner", "items", "labels", "ratio"]
    assert worded["count"] == {**base["count"], "description": "How many widgets."}
    assert {k: v for k, v in worded.items() if k not in ("count", "extra")} == {
        k: v for k, v in base.items() if k != "count"
    }
    assert from_dict(Worded, {"count": 3, "extra": True}) == Worded(count=3, extra=True)
    with pytest.raises(SpecError, match=r"^spec\.count: must be less than or equal to 10$"):
        from_dict(Worded, {"count": 11})


def test_rewording_a_field_the_class_lacks_is_an_error() -> None:
    with pytest.raises(TypeError, match=r"Misworded\.__descriptions__ names no field: cuont"):
        openapi_schema(Misworded)


@dataclass(frozen=True, kw_only=True)
class Options:
    """A list of named options and an atomic list."""

    flags: tuple[str, ...] = field("flags", "Flags.", default=(), enum=("a", "b"))
    values: tuple[str, ...] = field("values", "Values.", default=(), list_type="atomic")


def test_an_enum_on_a_list_constrains_each_item() -> None:
    props = openapi_schema(Options)["properties"]
    assert props["flags"]["items"] == {"enum": ["a", "b"], "type": "string"}
    assert "enum" not in props["flags"]
    assert props["values"]["x-kubernetes-list-type"] == "atomic"
    assert from_dict(Options, {"flags": ["b", "a"]}).flags == ("b", "a")
    with pytest.raises(SpecError, match=r"^spec\.flags\[1\]: unsupported value 'c'"):
        from_dict(Options, {"flags": ["a", "c"]})
