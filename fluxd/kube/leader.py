"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

Only the replica holding the Lease reconciles. :meth:`LeaderElector.run`:

- **acquires**: creates the Lease if absent, or takes it over when it is free
  (``holderIdentity`` empty, as a released lease is) or expired; retries every
  ``retry_period`` (jittered by up to 20 %) while another replica holds it. Every write
  is a PUT carrying the resourceVersion that was read, so two candidates racing for one
  Lease cannot both win: the loser gets 409 Conflict.
- **leads**: runs ``on_leading`` while renewing every ``retry_period``. If renewals keep
  failing for ``renew_deadline`` seconds, leadership is lost: ``on_leading`` is
  cancelled and :class:`LeaderElectionLost` raised, and the process should exit, as
  client-go's ``OnStoppedLeading`` does in every Flux controller.
- **releases** on the way out (``on_leading`` returned, raised or was cancelled): the
  Lease is written with an empty holder and a one-second duration, so a standby takes
  over on its next retry instead of waiting out the lease (``ReleaseOnCancel``).

A Lease counts as expired when ``renewTime + leaseDurationSeconds`` has passed, or, as
client-go judges it to be immune to clock skew, when its record has not changed for
``leaseDurationSeconds`` as measured by this process's monotonic clock.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import structlog
from kubernetes_asyncio.client import ApiClient

from fluxd.kube.client import ApiError, create, get, replace
from fluxd.kube.resources import LEASES

__all__ = ["LeaderElectionLost", "LeaderElector"]

log = structlog.stdlib.get_logger(__name__)

_RETRY_JITTER = 0.2


class LeaderElectionLost(RuntimeError):
    """The Lease could not be renewed within ``renew_deadline``; stop working at once."""


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class LeaderElector:
    """Competes for the Lease ``namespace/name`` as ``identity`` (unique per replica)."""

    def __init__(
        self,
        api: ApiClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
    ) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")
        if not identity:
            raise ValueError("the leader election identity must not be empty")
        self._api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._lease: dict[str, Any] | None = None
        self._observed_spec: dict[str, Any] | None = None
        self._observed_at = 0.0
        self._leading = False
        self._log = log.bind(lease=f"{namespace}/{name}", identity=identity)

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def holder(self) -> str:
        """The holder of the Lease when this elector last looked; ``""`` if none."""
        return str((self._observed_spec or {}).get("holderIdentity") or "")

    async def run(self, on_leading: Callable[[], Awaitable[None]]) -> None:
        """Wait for leadership, run ``on_leading`` while it lasts, then release the Lease.

        Returns when ``on_leading`` returns; re-raises what it raises; raises
        :class:`LeaderElectionLost` if renewing failed for ``renew_deadline``.
        """
        lost = False
        error: Exception | None = None
        try:
            await self._acquire()
            self._leading = True
            self._log.info("became leader")

            async def keep_renewing(scope: anyio.CancelScope) -> None:
                nonlocal lost
                while True:
                    await anyio.sleep(self.retry_period)
                    if not await self._renew():
                        lost = True
                        self._leading = False
                        scope.cancel()
                        return

            async with anyio.create_task_group() as tg:
                tg.start_soon(keep_renewing, tg.cancel_scope, name=f"lease-renew {self.name}")
                try:
                    await on_leading()
                except Exception as exc:
                    error = exc
                tg.cancel_scope.cancel()
        finally:
            self._leading = False
            if not lost:
                with anyio.move_on_after(self.renew_deadline, shield=True):
                    await self._release()
        if lost:
            self._log.error("leader election lost")
            raise LeaderElectionLost(
                f"could not renew Lease {self.namespace}/{self.name} as {self.identity!r} "
                f"within {self.renew_deadline}s"
            )
        if error is not None:
            raise error

    async def _acquire(self) -> None:
        while True:
            with anyio.move_on_after(self.renew_deadline):
                if await self._attempt():
                    return
            holder = self.holder
            self._log.debug("lease held by another replica", holder=holder)
            await anyio.sleep(self.retry_period * (1 + _RETRY_JITTER * random.random()))

    async def _renew(self) -> bool:
        """Renew, retrying every ``retry_period`` for at most ``renew_deadline``."""
        with anyio.move_on_after(self.renew_deadline):
            while True:
                if await self._attempt():
                    return True
                await anyio.sleep(self.retry_period)
        return False

    async def _attempt(self) -> bool:
        try:
            return await self._try_acquire_or_renew()
        except (ApiError, OSError, ValueError) as exc:
            self._log.warning("cannot acquire or renew the lease", error=str(exc))
        except Exception as exc:  # aiohttp errors and the like: retried, never fatal here
            self._log.warning(
                "cannot acquire or renew the lease", error=f"{type(exc).__name__}: {exc}"
            )
        return False

    async def _try_acquire_or_renew(self) -> bool:
        now = datetime.now(UTC)
        # Fast path, as client-go: renew from the cached Lease without reading it first.
        if self._lease is not None and self._holds(self._lease):
            try:
                self._store(await replace(self._api, LEASES, self._updated(self._lease, now)))
                return True
            except ApiError as exc:
                if not exc.conflict:
                    raise
        lease = await get(self._api, LEASES, self.namespace, self.name, missing_ok=True)
        if lease is None:
            return await self._create(now)
        self._observe(lease)
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") and not self._holds(lease) and not self._expired(spec, now):
            return False
        try:
            self._store(await replace(self._api, LEASES, self._updated(lease, now)))
        except ApiError as exc:
            if exc.conflict:
                return False
            raise
        return True

    async def _create(self, now: datetime) -> bool:
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": round(self.lease_duration),
                "acquireTime": _micro_time(now),
                "renewTime": _micro_time(now),
                "leaseTransitions": 0,
            },
        }
        try:
            self._store(await create(self._api, LEASES, lease))
        except ApiError as exc:
            if exc.conflict:  # AlreadyExists: another replica was faster
                return False
            raise
        return True

    def _updated(self, lease: dict[str, Any], now: datetime) -> dict[str, Any]:
        new = copy.deepcopy(lease)
        spec = new.setdefault("spec", {})
        if not self._holds(lease):
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec["acquireTime"] = _micro_time(now)
            spec["holderIdentity"] = self.identity
        spec["leaseDurationSeconds"] = round(self.lease_duration)
        spec["renewTime"] = _micro_time(now)
        return new

    def _holds(self, lease: dict[str, Any]) -> bool:
        return (lease.get("spec") or {}).get("holderIdentity") == self.identity

    def _expired(self, spec: dict[str, Any], now: datetime) -> bool:
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        if anyio.current_time() - self._observed_at > duration:
            return True
        renewed = _parse_time(spec.get("renewTime"))
        return renewed is None or renewed + timedelta(seconds=duration) < now

    def _observe(self, lease: dict[str, Any]) -> None:
        spec = lease.get("spec") or {}
        if spec != self._observed_spec:
            self._observed_spec = copy.deepcopy(spec)
            self._observed_at = anyio.current_time()

    def _store(self, lease: dict[str, Any]) -> None:
        self._lease = lease
        self._observe(lease)

    async def _release(self) -> None:
        # Two tries: a renewal cut short by the cancellation may have been written
        # without us seeing the answer, which makes the cached resourceVersion stale.
        for _ in range(2):
            if self._lease is None or not self._holds(self._lease):
                return
            lease = copy.deepcopy(self._lease)
            now = _micro_time(datetime.now(UTC))
            lease["spec"].update(
                holderIdentity="", leaseDurationSeconds=1, acquireTime=now, renewTime=now
            )
            try:
                self._store(await replace(self._api, LEASES, lease))
                self._log.info("released the lease")
                return
            except ApiError as exc:
                if not exc.conflict:
                    self._log.warning("cannot release the lease", error=str(exc))
                    return
            except Exception as exc:
                self._log.warning("cannot release the lease", error=f"{type(exc).__name__}: {exc}")
                return
            try:
                self._store(await get(self._api, LEASES, self.namespace, self.name))
            except Exception as exc:
                self._log.warning("cannot release the lease", error=f"{type(exc).__name__}: {exc}")
                return
