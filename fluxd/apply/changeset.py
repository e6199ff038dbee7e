"""What an apply or a prune did, object by object.

A :class:`ChangeSet` lists ``(ObjectRef, action)`` pairs in the order the objects were
handled. Its :meth:`~ChangeSet.summary` is the message Flux puts in its ``Progressing``
events: one ``Kind/namespace/name action`` line per object that changed, unchanged and
skipped objects left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from fluxd.apply.inventory import ObjectRef

__all__ = ["Action", "Change", "ChangeSet"]

Action = Literal["created", "configured", "unchanged", "deleted", "skipped"]

#: Actions that touched the cluster (Flux's ``HasChanged``).
_CHANGING: frozenset[Action] = frozenset({"created", "configured", "deleted"})


@dataclass(frozen=True, slots=True)
class Change:
    """One object and what was done to it."""

    ref: ObjectRef
    action: Action

    def __str__(self) -> str:
        return f"{self.ref} {self.action}"


@dataclass
class ChangeSet:
    """The changes of one apply or prune, in the order they were made."""

    changes: list[Change] = field(default_factory=list)

    def add(self, ref: ObjectRef, action: Action) -> None:
        self.changes.append(Change(ref, action))

    def extend(self, other: ChangeSet) -> None:
        self.changes.extend(other.changes)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    @property
    def refs(self) -> list[ObjectRef]:
        """Every object handled, skipped ones included (what Flux's inventory records)."""
        return [change.ref for change in self.changes]

    def with_action(self, action: Action) -> list[ObjectRef]:
        return [change.ref for change in self.changes if change.action == action]

    @property
    def has_changes(self) -> bool:
        """Whether anything was created, configured or deleted."""
        return any(change.action in _CHANGING for change in self.changes)

    def summary(self) -> str:
        """One line per change, e.g. ``Deployment/default/my-app configured``."""
        return "\n".join(str(change) for change in self.changes if change.action in _CHANGING)
