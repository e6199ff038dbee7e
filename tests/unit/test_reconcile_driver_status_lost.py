"""The reconcile driver when the API server goes away before the status is written (it is
restarting): no crash, no event about a status nobody can see, and a retry soon rather
than at the next interval, so that the status the lost write carried is written then."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest

from fluxd.api import KUSTOMIZATION, KindInfo
from fluxd.reconcilers.driver import ReconcileDriver, Reconciler
from fluxd.runtime.errors import ReconcileError
from fluxd.runtime.keys import ObjectKey
from fluxd.runtime.metrics import Metrics
from fluxd.runtime.scheduler import Outcome
from tests.unit.test_reconcile_driver import KS_SPEC, OneObject, Working, failing


class Unreachable(OneObject):
    """:class:`OneObject` whose status writes meet a refused connection."""

    def __init__(self, obj: dict[str, Any]) -> None:
        super().__init__(obj)
        self.attempts = 0

    async def patch_status(
        self, kind: KindInfo[Any], obj: Mapping[str, Any], patch: Mapping[str, Any]
    ) -> None:
        self.attempts += 1
        raise aiohttp.ClientConnectionError("Cannot connect to host 127.0.0.1:6443")


@pytest.mark.parametrize(
    "reconciler",
    [Working(0), failing(KUSTOMIZATION, ReconcileError("BuildFailed", "bad kustomization"))],
    ids=["after-success", "after-failure"],
)
async def test_a_status_write_that_loses_the_connection_is_retried_soon(
    reconciler: Reconciler[Any],
) -> None:
    objects = Unreachable(
        {"metadata": {"name": "apps", "namespace": "flux-system", "generation": 1}, "spec": KS_SPEC}
    )
    driver = ReconcileDriver(reconciler, objects=objects, metrics=Metrics())
    outcome = await driver(ObjectKey("Kustomization", "flux-system", "apps"))
    assert objects.attempts == 1
    assert outcome == Outcome.failure(), "retried with backoff, not at the 1h interval"
    assert objects.events == [], "no event about a status that was not written"
