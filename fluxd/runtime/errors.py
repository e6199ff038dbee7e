"""The one error a reconcile step raises: a Flux reason, a message, and how to retry.

Every step of every kind fails the same way, so the driver can turn any failure into
Flux's conditions (``Ready=False`` with the reason, ``Stalled`` when retrying cannot
help, a negative-polarity condition such as ``FetchFailed`` while it lasts) and an Event.
"""

from __future__ import annotations

__all__ = ["ReconcileError"]


class ReconcileError(Exception):
    """A step failed; ``reason`` is Flux's (``GitOperationFailed``, ``BuildFailed``...).

    ``condition`` names a negative-polarity condition (``FetchFailed``...) to set True
    while the failure lasts. ``stalled`` means retrying cannot help until the spec changes.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        condition: str | None = None,
        stalled: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.condition = condition
        self.stalled = stalled
        self.retry_after = retry_after
