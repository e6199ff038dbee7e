"""The data every stage of a kustomize build passes along: resources and their identity.

A build is a pipeline over a list of :class:`Resource`. Each holds the object as a plain
dict (what YAML decodes to), where it came from (for error messages that name the file),
and the name it had before any transformer touched it: kustomize rewrites references
(``configMapRef``, ``volumes``, ``roleRef``...) from a resource's *original* name to its
final one, after prefixes, suffixes and content hashes were applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["KustomizeError", "ResId", "Resource"]


class KustomizeError(Exception):
    """A build failed; the message names the file (and field) at fault and what to do."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        where = ", ".join(
            part for part in (file and f"in {file}", field and f"field {field}") if part
        )
        super().__init__(f"{message} ({where})" if where else message)
        self.file = file
        self.field = field


class ResId(NamedTuple):
    """Group, version, kind, namespace and name: what makes two resources the same one."""

    group: str
    version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ResId:
        api_version = str(obj.get("apiVersion") or "")
        group, _, version = api_version.rpartition("/")
        metadata = obj.get("metadata") or {}
        return cls(
            group,
            version,
            str(obj.get("kind") or ""),
            str(metadata.get("namespace") or ""),
            str(metadata.get("name") or ""),
        )

    def __str__(self) -> str:
        gvk = "/".join(part for part in (self.group, self.version, self.kind) if part)
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{gvk} {where}{self.name}"


@dataclass
class Resource:
    """One object in a build, with what the transformers and name references need."""

    obj: dict[str, Any]
    origin: str
    original_name: str = ""
    original_namespace: str = ""
    #: Generated ConfigMaps/Secrets get a content-hash suffix unless disabled.
    needs_hash_suffix: bool = False
    #: Generator ``behavior`` (create/merge/replace) when this came from a generator.
    behavior: str | None = None
    #: Names this resource has had (prefix/suffix/hash applied in turn), oldest first.
    previous_names: list[str] = field(default_factory=list)
    #: A namespace transformer ran over it: kustomize then records its id as a previous
    #: one, moved or not, so references to it may gain its namespace.
    namespace_transformed: bool = False

    def __post_init__(self) -> None:
        metadata = self.obj.get("metadata") or {}
        self.original_name = self.original_name or str(metadata.get("name") or "")
        self.original_namespace = self.original_namespace or str(metadata.get("namespace") or "")

    @property
    def id(self) -> ResId:
        return ResId.of(self.obj)

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    def rename(self, new_name: str) -> None:
        """Set ``metadata.name``, remembering the old one for name-reference rewriting."""
        self.previous_names.append(self.name)
        self.obj.setdefault("metadata", {})["name"] = new_name
