"""The commit message of an image update: ``messageTemplate`` rendered with Flux's data.

Flux gives the template a ``TemplateData`` value; users' templates name its Go fields, so
the same shape is built here from the setters' result:

- ``.AutomationObject``: the automation's namespace and name (prints ``ns/name``);
- ``.Changed.FileChanges``: file -> object -> changes; ``.Changed.Objects``: object ->
  changes across files; ``.Changed.Changes``: every distinct change. An object has
  ``APIVersion``, ``Kind``, ``Name``, ``Namespace``; a change ``OldValue``, ``NewValue``,
  ``Setter``;
- ``.Values``: ``messageTemplateValues``.

Templates written for Flux before v1 name ``.Updated`` or ``.Changed.ImageResult``, which
Flux removed; those are refused with the field named (:class:`RemovedTemplateField`), as
Flux refuses them, instead of rendering an empty message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from fluxd.image.setters import SetterResult
from fluxd.image.template import TemplateError, render

__all__ = ["DEFAULT_MESSAGE", "RemovedTemplateField", "TemplateError", "commit_message"]

DEFAULT_MESSAGE: Final = "Update from image update automation"
_REMOVED_FIELDS: Final = (".Changed.ImageResult", ".Updated")


class RemovedTemplateField(ValueError):
    """The template uses a field Flux no longer provides."""


@dataclass(frozen=True)
class _NamespacedName:
    Namespace: str
    Name: str

    def __str__(self) -> str:
        return f"{self.Namespace}/{self.Name}"


@dataclass(frozen=True, order=True)
class _Object:
    APIVersion: str
    Kind: str
    Name: str
    Namespace: str


@dataclass(frozen=True)
class _Change:
    OldValue: str
    NewValue: str
    Setter: str


def commit_message(
    template: str | None,
    *,
    namespace: str,
    name: str,
    result: SetterResult,
    values: Mapping[str, str],
) -> str:
    """The rendered message (Flux's default when ``template`` is empty); TemplateError or
    RemovedTemplateField naming what is wrong with the template."""
    text = template or DEFAULT_MESSAGE
    for removed in _REMOVED_FIELDS:
        if removed in text:
            raise RemovedTemplateField(
                f"template uses removed field '{removed}'; see the ImageUpdateAutomation"
                " v1 docs for .Changed.FileChanges, .Changed.Objects and .Changed.Changes"
            )
    file_changes: dict[str, dict[_Object, list[_Change]]] = {}
    objects: dict[_Object, list[_Change]] = {}
    changes: list[_Change] = []
    for update in result.files:
        per_file = file_changes.setdefault(update.path, {})
        for object_id, change in update.changes:
            obj = _Object(
                object_id.api_version, object_id.kind, object_id.name, object_id.namespace
            )
            entry = _Change(change.old_value, change.new_value, change.setter)
            per_file.setdefault(obj, []).append(entry)
            objects.setdefault(obj, []).append(entry)
            if entry not in changes:
                changes.append(entry)
    data = {
        "AutomationObject": _NamespacedName(namespace, name),
        "Changed": {"FileChanges": file_changes, "Objects": objects, "Changes": changes},
        "Values": dict(values),
    }
    return render(text, data)
