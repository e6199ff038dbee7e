"""The one exception every Helm SDK failure becomes, naming the action that failed."""

from __future__ import annotations

__all__ = ["HelmActionError"]


class HelmActionError(Exception):
    """A Helm action failed; ``action`` names it, the message is Helm's."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(message)
        self.action = action
        self.message = message
