"""The reconcile driver: Flux's ``retryInterval`` where the kind has one, deletion of a
suspended object leaving what it owns alone, progress written only for long reconciles,
and who is woken when an object turns Ready."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import anyio
import pytest

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION, KindInfo, KustomizationSpec
from fluxd.kube.objects import EventType, ObjectApi
from fluxd.reconcilers import driver as base
from fluxd.reconcilers.driver import FINALIZER, Context, ReconcileDriver, Reconciler
from fluxd.reconcilers.kustomization import KustomizationReconciler
from fluxd.runtime.errors import ReconcileError
from fluxd.runtime.keys import ObjectKey
from fluxd.runtime.metrics import Metrics
from fluxd.runtime.scheduler import Outcome


class OneObject(ObjectApi):
    """The driver's seam to the API server, holding one object in memory."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.events: list[tuple[EventType, str, str]] = []

    def cached(self, kind: KindInfo[Any], namespace: str, name: str) -> dict[str, Any] | None:
        return self.obj

    async def patch_status(
        self, kind: KindInfo[Any], obj: Mapping[str, Any], patch: Mapping[str, Any]
    ) -> None:
        self.obj["status"] = {**(self.obj.get("status") or {}), **patch}

    async def add_finalizer(
        self, kind: KindInfo[Any], obj: Mapping[str, Any], finalizer: str
    ) -> None:
        self.obj["metadata"]["finalizers"] = [finalizer]

    async def remove_finalizer(
        self, kind: KindInfo[Any], obj: Mapping[str, Any], finalizer: str
    ) -> None:
        self.obj["metadata"]["finalizers"] = []

    async def record_event(
        self,
        obj: Mapping[str, Any],
        type_: EventType,
        reason: str,
        message: str,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        self.events.append((type_, reason, message))


class FailingKustomization(KustomizationReconciler):
    """The real Kustomization reconciler's retry rule, around a step that fails."""

    def __init__(self, error: ReconcileError) -> None:  # no cluster, cache or sources
        self.error = error

    async def reconcile(self, ctx: Context[KustomizationSpec]) -> None:
        raise self.error


def failing(kind_info: KindInfo[Any], error: ReconcileError) -> Reconciler[Any]:
    if kind_info is KUSTOMIZATION:
        return FailingKustomization(error)

    class Failing(Reconciler[Any]):
        kind = kind_info

        async def reconcile(self, ctx: Context[Any]) -> None:
            raise error

    return Failing()


async def run_once(
    kind: KindInfo[Any], spec: dict[str, Any], error: ReconcileError
) -> tuple[Outcome, OneObject]:
    objects = OneObject(
        {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {"name": "apps", "namespace": "flux-system", "generation": 1},
            "spec": spec,
        }
    )
    driver = ReconcileDriver(failing(kind, error), objects=objects, metrics=Metrics())
    outcome = await driver(ObjectKey(kind.kind, "flux-system", "apps"))
    assert objects.obj["metadata"]["finalizers"] == [FINALIZER]
    return outcome, objects


KS_SPEC = {
    "interval": "1h",
    "sourceRef": {"kind": "GitRepository", "name": "source"},
    "path": "./deploy",
    "prune": True,
}


@pytest.mark.parametrize(
    ("spec", "error", "retry_after"),
    [
        pytest.param(
            {**KS_SPEC, "retryInterval": "2s"},
            ReconcileError("ReconciliationFailed", "boom"),
            2.0,
            id="retryInterval",
        ),
        pytest.param(
            KS_SPEC, ReconcileError("ReconciliationFailed", "boom"), None, id="backoff-when-unset"
        ),
        pytest.param(
            {**KS_SPEC, "retryInterval": "2s"},
            ReconcileError("DependencyNotReady", "wait", retry_after=30.0),
            30.0,
            id="step-delay-wins",
        ),
    ],
)
async def test_a_kustomization_failure_is_retried_after_retry_interval(
    spec: dict[str, Any], error: ReconcileError, retry_after: float | None
) -> None:
    outcome, objects = await run_once(KUSTOMIZATION, spec, error)
    assert outcome == Outcome.failure(retry_after)
    assert objects.events == [("Warning", error.reason, error.message)]
    assert objects.obj["status"]["conditions"][0]["reason"] == error.reason


async def test_a_kind_without_retry_interval_backs_off() -> None:
    spec = {"interval": "1h", "url": "https://example.com/repo.git"}
    outcome, _ = await run_once(
        GIT_REPOSITORY, spec, ReconcileError("GitOperationFailed", "unreachable")
    )
    assert outcome == Outcome.failure(None)


class Finalizing(Reconciler[Any]):
    kind = KUSTOMIZATION

    def __init__(self) -> None:
        self.finalized: list[str] = []

    async def reconcile(self, ctx: Context[Any]) -> None:
        raise AssertionError("an object being deleted is not reconciled")

    async def finalize(self, obj: dict[str, Any]) -> None:
        self.finalized.append(obj["metadata"]["name"])


@pytest.mark.parametrize(("suspend", "finalized"), [(False, ["apps"]), (True, [])])
async def test_a_suspended_object_is_deleted_without_finalizing(
    suspend: bool, finalized: list[str]
) -> None:
    objects = OneObject(
        {
            "metadata": {
                "name": "apps",
                "namespace": "flux-system",
                "deletionTimestamp": "2026-01-01T00:00:00Z",
                "finalizers": [FINALIZER],
            },
            "spec": {**KS_SPEC, "suspend": suspend},
        }
    )
    reconciler = Finalizing()
    driver = ReconcileDriver(reconciler, objects=objects, metrics=Metrics())
    outcome = await driver(ObjectKey("Kustomization", "flux-system", "apps"))
    assert outcome == Outcome.idle()
    assert reconciler.finalized == finalized
    assert objects.obj["metadata"]["finalizers"] == [], "the finalizer was kept"


class Recording(OneObject):
    """:class:`OneObject` that also keeps every status patch, in order."""

    def __init__(self, obj: dict[str, Any]) -> None:
        super().__init__(obj)
        self.patches: list[dict[str, Any]] = []

    async def patch_status(
        self, kind: KindInfo[Any], obj: Mapping[str, Any], patch: Mapping[str, Any]
    ) -> None:
        self.patches.append(dict(patch))
        await super().patch_status(kind, obj, patch)


class Working(Reconciler[Any]):
    """Succeeds after ``seconds`` of work."""

    kind = KUSTOMIZATION

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def reconcile(self, ctx: Context[Any]) -> None:
        await anyio.sleep(self.seconds)
        ctx.ready_message = "done"


class WorkingDependency(Working):
    depended_on: ClassVar[bool] = True


def new_generation() -> Recording:
    return Recording(
        {
            "metadata": {"name": "apps", "namespace": "flux-system", "generation": 2},
            "spec": KS_SPEC,
            "status": {"observedGeneration": 1},
        }
    )


def condition_states(status: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["message"]) for c in status.get("conditions") or []}


async def test_a_quick_reconcile_writes_its_status_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "PROGRESS_DELAY", 0.2)
    objects = new_generation()
    driver = ReconcileDriver(Working(0), objects=objects, metrics=Metrics())
    await driver(ObjectKey("Kustomization", "flux-system", "apps"))
    assert len(objects.patches) == 1
    assert condition_states(objects.patches[0]) == {"Ready": ("True", "done")}


async def test_a_long_reconcile_shows_progress_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "PROGRESS_DELAY", 0.05)
    objects = new_generation()
    driver = ReconcileDriver(Working(0.3), objects=objects, metrics=Metrics())
    await driver(ObjectKey("Kustomization", "flux-system", "apps"))
    progress, final = objects.patches
    assert condition_states(progress) == {
        "Reconciling": ("True", "processing object: new generation 1 -> 2"),
        "Ready": ("Unknown", "reconciliation in progress"),
    }
    assert condition_states(final) == {"Ready": ("True", "done")}
    assert final["observedGeneration"] == 2


@pytest.mark.parametrize(
    ("reconciler", "woken"),
    [(WorkingDependency(0), ["apps"]), (Working(0), [])],
    ids=["depended-on kind", "source-like kind"],
)
async def test_turning_ready_wakes_dependents_of_kinds_others_depend_on(
    reconciler: Reconciler[Any], woken: list[str]
) -> None:
    objects = new_generation()
    seen: list[ObjectKey] = []
    driver = ReconcileDriver(
        reconciler, objects=objects, metrics=Metrics(), wake_dependents=seen.append
    )
    await driver(ObjectKey("Kustomization", "flux-system", "apps"))
    assert [key.name for key in seen] == woken
