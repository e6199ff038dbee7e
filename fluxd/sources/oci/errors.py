"""The one error the OCI client raises, carrying the Flux reason a reconciler reports.

Registry, credential and layer failures end in different Flux reasons
(``AuthenticationFailed`` for a Secret that is missing or malformed, ``OCIArtifactPullFailed``
for a registry that refuses or cannot be reached, ``OCIArtifactLayerOperationFailed`` for a
layer that cannot be used), so the client decides the reason where it knows what went
wrong, and the reconciler only adds the context of the step.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AUTHENTICATION_FAILED",
    "LAYER_OPERATION_FAILED",
    "PULL_FAILED",
    "READ_OPERATION_FAILED",
    "URL_INVALID",
    "RegistryError",
]

AUTHENTICATION_FAILED: Final = "AuthenticationFailed"
PULL_FAILED: Final = "OCIArtifactPullFailed"
LAYER_OPERATION_FAILED: Final = "OCIArtifactLayerOperationFailed"
READ_OPERATION_FAILED: Final = "ReadOperationFailed"
URL_INVALID: Final = "URLInvalid"


class RegistryError(Exception):
    """An OCI operation failed; ``reason`` is Flux's, ``status`` the HTTP status if any."""

    def __init__(
        self, message: str, *, reason: str = PULL_FAILED, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
