"""The leader elector's pure decisions: when a Lease is expired, how a write changes it.

Acquiring, renewing, releasing and losing run against the real API server in
``tests/integration/test_kube_leader.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import anyio
import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.kube.leader import LeaderElector

NO_API = cast(ApiClient, None)
NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def elector() -> LeaderElector:
    return LeaderElector(NO_API, namespace="flux-system", name="fluxd", identity="me")


def lease(holder: str, renewed: datetime, transitions: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"name": "fluxd", "namespace": "flux-system", "resourceVersion": "7"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-01-01T00:00:00.000000Z",
            "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "leaseTransitions": transitions,
        },
    }


def test_timings_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="lease_duration > renew_deadline"):
        LeaderElector(NO_API, namespace="n", name="l", identity="i", renew_deadline=20)
    with pytest.raises(ValueError, match="identity"):
        LeaderElector(NO_API, namespace="n", name="l", identity="")


def test_taking_over_counts_a_transition() -> None:
    new = elector()._updated(lease("other", NOW - timedelta(minutes=1)), NOW)
    spec = new["spec"]
    assert spec["holderIdentity"] == "me"
    assert spec["leaseTransitions"] == 3
    assert spec["acquireTime"] == spec["renewTime"] == "2026-01-02T03:04:05.678901Z"
    assert new["metadata"]["resourceVersion"] == "7", "writes are conditional"


def test_renewing_keeps_acquire_time_and_transitions() -> None:
    spec = elector()._updated(lease("me", NOW - timedelta(seconds=2)), NOW)["spec"]
    assert spec["leaseTransitions"] == 2
    assert spec["acquireTime"] == "2026-01-01T00:00:00.000000Z"
    assert spec["renewTime"] == "2026-01-02T03:04:05.678901Z"


async def test_expiry_by_renew_time_or_by_an_unchanged_record() -> None:
    now = datetime.now(UTC)
    e = elector()
    fresh = lease("other", now - timedelta(seconds=5))
    e._observe(fresh)
    assert not e._expired(fresh["spec"], now)

    stale = lease("other", now - timedelta(seconds=16))
    e._observe(stale)
    assert e._expired(stale["spec"], now)

    # A holder whose clock runs ahead looks fresh by renewTime for ever; once its record
    # has not changed for leaseDurationSeconds of our own clock, it is expired all the same.
    future = lease("other", now + timedelta(minutes=10))
    e._observe(future)
    assert not e._expired(future["spec"], now)
    e._observed_at = anyio.current_time() - 16
    assert e._expired(future["spec"], now)
