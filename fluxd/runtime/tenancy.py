"""Flux's ``--no-cross-namespace-refs``: a tenant's objects reach only their own namespace.

With the flag, every reference a reconciler follows to an object in another namespace is
refused before it is read: a Kustomization's ``sourceRef``, a HelmRelease's chart source
or ``chartRef``, an ImagePolicy's ``imageRepositoryRef``, an ImageUpdateAutomation's
``sourceRef``. The object stalls with ``AccessDenied`` and the text of the Flux
controller that owns its kind (passed in by the reconciler), since nothing but a spec
change or a restart without the flag can fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fluxd.runtime.errors import ReconcileError

__all__ = ["ACCESS_DENIED", "UNRESTRICTED", "Tenancy"]

ACCESS_DENIED = "AccessDenied"


@dataclass(frozen=True)
class Tenancy:
    """What the daemon lets one namespace's objects reach."""

    no_cross_namespace_refs: bool = False

    def check(self, own_namespace: str, target_namespace: str, refusal: str) -> None:
        """Raise the stalling ``AccessDenied`` error ``refusal`` when the reference leaves
        ``own_namespace`` and cross-namespace references are blocked."""
        if self.no_cross_namespace_refs and target_namespace != own_namespace:
            raise ReconcileError(ACCESS_DENIED, refusal, stalled=True)


#: Flux's default: references may cross namespaces.
UNRESTRICTED = Tenancy()
