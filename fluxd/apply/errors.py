"""The one error type of the apply package.

Every failure of mapping, applying, waiting or deleting is raised as :class:`ApplyError`
with a message that names the object (``Kind/namespace/name``) and carries the API
server's own words, because that message ends up verbatim in a Kustomization's ``Ready``
condition. ``changes`` holds what was already done before the failure (a partial apply or
prune), so callers can still report and record it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fluxd.apply.changeset import ChangeSet

__all__ = ["ApplyError"]


class ApplyError(Exception):
    """Applying or deleting objects failed; ``str()`` says which object and why."""

    def __init__(self, message: str, *, changes: ChangeSet | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.changes = changes

    def __str__(self) -> str:
        return self.message
