"""The ``images:`` transformer: new names, tags and digests for container images.

Kustomize runs two passes per ``images:`` entry, and so do we, because the difference
shows: a ``tagSuffix`` lands twice on container images (kustomize v5.7 does exactly that).

1. The legacy pass walks the whole object and rewrites the ``image`` of every element of
   any list held under a key named ``containers`` or ``initContainers`` -- wherever it is,
   which is how custom resources with pod templates get their images updated.
2. The field-spec pass rewrites the paths of kustomize's ``images`` table (containers, init
   containers and image volumes of pods and pod templates), plus any ``images:`` field
   specs a ``configurations:`` file adds.

CustomResourceDefinitions are skipped by both passes. An image matches an entry when it
is the entry's ``name`` followed by an optional ``:tag`` and an optional
``@sha256:digest``; ``name`` is used as a regular expression, unescaped, as kustomize does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fluxd.kustomize._fieldspec import FieldSpec, visit
from fluxd.kustomize._kpath import kind_name, scalar_text
from fluxd.kustomize._model import KustomizeError, Resource

__all__ = ["IMAGES_SPECS", "apply_images", "split_image"]

#: kustomize v5.7's ``images`` field specs (``create: true`` there has no effect).
IMAGES_SPECS: tuple[FieldSpec, ...] = tuple(
    FieldSpec(path)
    for path in (
        "spec/containers[]/image",
        "spec/initContainers[]/image",
        "spec/volumes[]/image/reference",
        "spec/template/spec/containers[]/image",
        "spec/template/spec/initContainers[]/image",
        "spec/template/spec/volumes[]/image/reference",
    )
)

_LEGACY_KEYS = ("containers", "initContainers")
_FIELDS = ("name", "newName", "newTag", "digest", "tagSuffix")


@dataclass(frozen=True)
class _Image:
    name: str
    new_name: str
    new_tag: str
    digest: str
    tag_suffix: str
    pattern: re.Pattern[str] | None

    def matches(self, value: str) -> bool:
        return self.pattern is not None and self.pattern.fullmatch(value) is not None

    def rewrite(self, value: str) -> str:
        name, tag, digest = split_image(value)
        if self.new_name:
            name = self.new_name
        if self.new_tag and self.digest:
            tag, digest = self.new_tag, self.digest
        elif self.new_tag:
            tag, digest = self.new_tag, ""
        elif self.digest:
            tag, digest = "", self.digest
        elif self.tag_suffix:
            tag, digest = tag + self.tag_suffix, ""
        return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def split_image(image: str) -> tuple[str, str, str]:
    """``[host[:port]/]path[:tag][@digest]`` into name, tag and digest.

    A colon before the first slash belongs to a registry host's port, not to a tag.
    """
    slash = image.find("/")
    offset = slash if slash > 0 else 0
    rest = image[offset:]
    at, colon = rest.find("@"), rest.find(":")
    if at < 0 and colon < 0:
        return image, "", ""
    if at >= 0 and (colon < 0 or at < colon):
        return image[: offset + at], "", image[offset + at + 1 :]
    if at >= 0:
        return (
            image[: offset + colon],
            image[offset + colon + 1 : offset + at],
            image[offset + at + 1 :],
        )
    return image[: offset + colon], image[offset + colon + 1 :], ""


def _parse(entry: Any, *, file: str) -> _Image:
    if not isinstance(entry, Mapping):
        raise KustomizeError(
            f"an images entry must be a mapping with name/newName/newTag/digest, got {entry!r}",
            file=file,
            field="images",
        )
    values: dict[str, str] = {}
    for key in _FIELDS:
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            raise KustomizeError(
                f"images entry {entry.get('name')!r}: {key} must be a string, got {value!r} "
                "(quote it in the kustomization)",
                file=file,
                field=f"images.{key}",
            )
        values[key] = value or ""
    tag_chars = r"[a-zA-Z0-9_.{}-]"
    try:
        pattern: re.Pattern[str] | None = re.compile(
            f"{values['name']}(?::{tag_chars}*)?(?:@sha256:{tag_chars}*)?"
        )
    except re.error:
        pattern = None
    return _Image(
        name=values["name"],
        new_name=values["newName"],
        new_tag=values["newTag"],
        digest=values["digest"],
        tag_suffix=values["tagSuffix"],
        pattern=pattern,
    )


def apply_images(
    resources: list[Resource],
    images: Sequence[Mapping[str, Any]],
    *,
    kustomization_file: str,
    field_specs: Sequence[FieldSpec] | None = None,
) -> None:
    """Apply a kustomization's ``images:`` entries, in order, to every resource.

    ``field_specs`` replaces kustomize's built-in ``images`` table (pass the built-ins
    merged with a ``configurations:`` file's entries).
    """
    specs = IMAGES_SPECS if field_specs is None else tuple(field_specs)
    for entry in images:
        image = _parse(entry, file=kustomization_file)
        for resource in resources:
            if resource.obj.get("kind") == "CustomResourceDefinition":
                continue
            _apply_one(resource, image, specs, kustomization_file)


def _apply_one(resource: Resource, image: _Image, specs: Iterable[FieldSpec], file: str) -> None:
    def rewrite(value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, dict | list):
            raise KustomizeError(
                f"{resource.id}: wrong node kind: expected ScalarNode but got "
                f"{kind_name(value)} for an image",
                file=file,
                field="images",
            )
        text = scalar_text(value)
        return image.rewrite(text) if image.matches(text) else value

    _legacy_walk(resource.obj, rewrite, resource, file)
    for spec in specs:
        visit(resource.obj, spec, rewrite)


def _legacy_walk(node: Any, rewrite: Any, resource: Resource, file: str) -> None:
    if isinstance(node, list):
        for item in node:
            _legacy_walk(item, rewrite, resource, file)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        _legacy_walk(value, rewrite, resource, file)
        if key in _LEGACY_KEYS and isinstance(value, list):
            for container in value:
                if container is None:
                    continue
                if not isinstance(container, dict):
                    raise KustomizeError(
                        f"{resource.id}: wrong node kind: expected MappingNode but got "
                        f"{kind_name(container)} in {key}",
                        file=file,
                        field="images",
                    )
                if "image" in container:
                    container["image"] = rewrite(container["image"])
