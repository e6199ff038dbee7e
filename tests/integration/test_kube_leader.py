"""Leader election on a real Lease: one leader, hand-over on release, takeover of stale
leases, and stepping down when the Lease is lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.kube.client import ApiError, create, get, replace
from fluxd.kube.leader import LeaderElectionLost, LeaderElector
from fluxd.kube.resources import LEASES

pytestmark = pytest.mark.integration

LEASE_NAME = "fluxd-test"
RETRY = 0.5
TIMING: dict[str, float] = {"lease_duration": 4.0, "renew_deadline": 2.0, "retry_period": RETRY}
SLACK = 1.0  # API round trips on a busy test machine


def elector(api_client: ApiClient, namespace: str, identity: str) -> LeaderElector:
    return LeaderElector(
        api_client, namespace=namespace, name=LEASE_NAME, identity=identity, **TIMING
    )


class Leaders:
    """Who is leading now, and whether two ever led at once."""

    def __init__(self) -> None:
        self.current: set[str] = set()
        self.most_at_once = 0
        self.changed = anyio.Event()

    def work(self, identity: str) -> Any:
        async def on_leading() -> None:
            self.current.add(identity)
            self.most_at_once = max(self.most_at_once, len(self.current))
            self.changed.set()
            try:
                await anyio.sleep_forever()
            finally:
                self.current.discard(identity)

        return on_leading

    async def wait_for_one(self) -> str:
        with anyio.fail_after(10):
            while not self.current:
                self.changed = anyio.Event()
                await self.changed.wait()
        [leader] = self.current
        return leader

    async def wait_for(self, identity: str) -> None:
        with anyio.fail_after(10):
            while identity not in self.current:
                self.changed = anyio.Event()
                await self.changed.wait()


async def lease_spec(api_client: ApiClient, namespace: str) -> dict[str, Any]:
    lease = await get(api_client, LEASES, namespace, LEASE_NAME)
    spec: dict[str, Any] = lease["spec"]
    return spec


def micro_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_one_leader_and_hand_over_on_release(api_client: ApiClient, namespace: str) -> None:
    leaders = Leaders()
    scopes = {name: anyio.CancelScope() for name in ("a", "b")}

    async def candidate(identity: str) -> None:
        with scopes[identity]:
            await elector(api_client, namespace, identity).run(leaders.work(identity))

    async with anyio.create_task_group() as tg:
        tg.start_soon(candidate, "a")
        tg.start_soon(candidate, "b")
        first = await leaders.wait_for_one()
        await anyio.sleep(4 * RETRY)  # several renewals: still one leader
        assert leaders.current == {first}
        spec = await lease_spec(api_client, namespace)
        assert spec["holderIdentity"] == first
        assert spec["leaseTransitions"] == 0

        second = "b" if first == "a" else "a"
        scopes[first].cancel()  # SIGTERM path: release the Lease on the way out
        started = anyio.current_time()
        await leaders.wait_for(second)
        took = anyio.current_time() - started
        assert leaders.current == {second}
        assert took < 2 * RETRY + SLACK, f"take-over after release took {took:.2f}s"
        spec = await lease_spec(api_client, namespace)
        assert spec["holderIdentity"] == second
        assert spec["leaseTransitions"] == 1
        tg.cancel_scope.cancel()

    assert leaders.most_at_once == 1
    # The last leader released the Lease on cancellation too.
    spec = await lease_spec(api_client, namespace)
    assert spec["holderIdentity"] in ("", None)


async def test_stale_lease_is_taken_over(api_client: ApiClient, namespace: str) -> None:
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    await create(
        api_client,
        LEASES,
        {
            "metadata": {"name": LEASE_NAME, "namespace": namespace},
            "spec": {
                "holderIdentity": "crashed-replica",
                "leaseDurationSeconds": 15,
                "acquireTime": micro_time(long_ago),
                "renewTime": micro_time(long_ago),
                "leaseTransitions": 3,
            },
        },
    )
    leaders = Leaders()
    async with anyio.create_task_group() as tg:
        started = anyio.current_time()
        tg.start_soon(elector(api_client, namespace, "new").run, leaders.work("new"))
        assert await leaders.wait_for_one() == "new"
        assert anyio.current_time() - started < RETRY + SLACK
        spec = await lease_spec(api_client, namespace)
        assert spec["holderIdentity"] == "new"
        assert spec["leaseTransitions"] == 4
        assert spec["leaseDurationSeconds"] == 4
        tg.cancel_scope.cancel()


async def test_valid_lease_of_a_silent_holder_is_taken_after_it_expires(
    api_client: ApiClient, namespace: str
) -> None:
    now = datetime.now(UTC)
    await create(
        api_client,
        LEASES,
        {
            "metadata": {"name": LEASE_NAME, "namespace": namespace},
            "spec": {
                "holderIdentity": "silent",
                "leaseDurationSeconds": 3,
                "acquireTime": micro_time(now),
                "renewTime": micro_time(now),
                "leaseTransitions": 0,
            },
        },
    )
    leaders = Leaders()
    started = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(elector(api_client, namespace, "waiting").run, leaders.work("waiting"))
        await leaders.wait_for_one()
        took = anyio.current_time() - started
        tg.cancel_scope.cancel()
    assert 2.0 < took < 3 + RETRY + SLACK + 1, f"took over after {took:.2f}s"


async def test_losing_the_lease_cancels_the_work_and_raises(
    api_client: ApiClient, namespace: str
) -> None:
    leaders = Leaders()
    cancelled = anyio.Event()

    async def on_leading() -> None:
        try:
            await leaders.work("victim")()
        finally:
            cancelled.set()

    async def thief() -> None:
        """Another party keeps writing itself into the Lease."""
        while True:
            try:
                lease = await get(api_client, LEASES, namespace, LEASE_NAME)
                lease["spec"]["holderIdentity"] = "thief"
                lease["spec"]["renewTime"] = micro_time(datetime.now(UTC))
                await replace(api_client, LEASES, lease)
            except ApiError as exc:
                if not exc.conflict:
                    raise
            await anyio.sleep(0.2)

    victim = elector(api_client, namespace, "victim")
    lost: list[LeaderElectionLost] = []
    finished = anyio.Event()

    async def lead() -> None:
        try:
            await victim.run(on_leading)
        except LeaderElectionLost as exc:
            lost.append(exc)
        finally:
            finished.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lead)
            await leaders.wait_for_one()
            tg.start_soon(thief)
            # The victim stops once renewals have failed for renew_deadline.
            await finished.wait()
            tg.cancel_scope.cancel()
    assert cancelled.is_set()
    assert len(lost) == 1
    assert "victim" in str(lost[0])
    assert not victim.is_leader


async def test_returning_from_on_leading_releases_the_lease(
    api_client: ApiClient, namespace: str
) -> None:
    done = []

    async def short_work() -> None:
        done.append(True)

    with anyio.fail_after(10):
        await elector(api_client, namespace, "brief").run(short_work)
    assert done == [True]
    spec = await lease_spec(api_client, namespace)
    assert spec["holderIdentity"] in ("", None)
    assert spec["leaseDurationSeconds"] == 1


async def test_errors_of_on_leading_propagate_after_release(
    api_client: ApiClient, namespace: str
) -> None:
    async def failing() -> None:
        raise RuntimeError("controller crashed")

    with anyio.fail_after(10), pytest.raises(RuntimeError, match="controller crashed"):
        await elector(api_client, namespace, "crashy").run(failing)
    spec = await lease_spec(api_client, namespace)
    assert spec["holderIdentity"] in ("", None)
