"""Helm release actions, run by the SDK in worker threads: install, upgrade, rollback,
uninstall, test, and reading a release's latest record.

Releases are stored exactly where and how the ``helm`` CLI stores them (Secrets in the
storage namespace), so ``helm list``/``history``/``rollback`` work on what fluxd made, and
fluxd upgrades in place what Flux or a person made. Nothing watches or caches the storage
Secrets: a release's latest record is read when its HelmRelease reconciles.

One SDK configuration serves each (cluster, impersonated user, storage namespace), reused
across reconciles. Actions on one release are serialised (concurrent writes would corrupt
its history); different releases run in parallel. A reconcile cancelled mid-action
cancels the action in Go rather than leaving it running. Every other call into the SDK,
even making or freeing a cancellation token, runs in a worker thread: a call can wait for
the Go runtime (its garbage collector, a free OS thread), and the event loop must not.
Those threads are the SDK's own, not anyio's shared pool (40 threads): an action holds its
thread for as long as Helm waits for the release's objects to be ready (when Helm waits:
the HelmRelease reconciler mostly waits itself), and a few dozen waiting releases would
otherwise leave no thread to the rest of the daemon (chart archives, git, builds). Their
number is bounded by the releases acting at once (one action per release, and the
scheduler's concurrency per kind).

The SDK's Kubernetes client is rate limited on the client side as Flux's controllers are:
Flux's helm-controller gives every reconcile a client of its own, limited to 50 requests
per second with bursts of 300 (``--kube-api-qps``, ``--kube-api-burst``), so its
``--concurrent`` reconciles may together send that many times more. One configuration, so
one rate limiter, serves every release of a storage namespace here, limited to the same
sum: 50 per second times the releases acting at once (``concurrent``). With 50 per
second for all of them, five hundred installs (about a dozen requests each) took two
minutes waiting on the limiter alone; with client-go's own default (5 per second) a
hundred took twice as long as with 50.

Helm's client-side OpenAPI validation is always off: every object Helm writes is
validated by the API server (Helm sends ``fieldValidation=Strict``), and the client-side
check, on any server from Kubernetes 1.27 on, only confirms that the server does so, at
the price of fetching and parsing its OpenAPI document for each action (half of the CPU
a hundred installs took). ``disableOpenAPIValidation`` therefore changes nothing a user
can see, as with Helm itself against such a server.

The public SDK methods lack options Flux's HelmRelease exposes (skip CRDs, disable
hooks, max history, wait for jobs...): the actions pass them in the options document the
C ABI reads, next to the ones the SDK names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from fluxd.helm import plugins
from fluxd.helm.charts import LoadedChart
from fluxd.helm.errors import HelmActionError
from fluxd.helm.sdk import sdk

__all__ = ["ActionOptions", "HelmActionError", "Release", "Releases", "TestHook"]

T = TypeVar("T")

#: Client-side rate limits of one reconcile's Kubernetes client: Flux's defaults
#: (``--kube-api-qps``, ``--kube-api-burst``).
KUBE_API_QPS = 50.0
KUBE_API_BURST = 300


@dataclass(frozen=True)
class TestHook:
    """A test hook of a release and its last run."""

    name: str
    phase: str
    started: str
    completed: str


@dataclass(frozen=True)
class Release:
    """A release's stored record, as Helm keeps it."""

    name: str
    namespace: str
    revision: int
    status: str
    chart_name: str
    chart_version: str
    app_version: str
    config: Mapping[str, Any]
    first_deployed: str
    last_deployed: str
    deleted: str
    test_hooks: tuple[TestHook, ...] = field(default=())
    #: The objects Helm applied (after post-rendering), as one YAML stream.
    manifest: str = field(default="", repr=False)

    @property
    def pending(self) -> bool:
        return self.status.startswith("pending")

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Release:
        summary = record.get("summary") or {}
        info = record.get("info") or {}
        hooks = []
        for hook in record.get("hooks") or ():
            events = [str(e).lower() for e in hook.get("events") or ()]
            if "test" not in events and "test-success" not in events:
                continue
            last = hook.get("last_run") or {}
            hooks.append(
                TestHook(
                    name=str(hook.get("name", "")),
                    phase=str(last.get("phase", "")),
                    started=str(last.get("started_at", "")),
                    completed=str(last.get("completed_at", "")),
                )
            )
        return cls(
            name=str(summary.get("name", "")),
            namespace=str(summary.get("namespace", "")),
            revision=int(summary.get("revision", 0)),
            status=str(summary.get("status") or info.get("status", "")),
            chart_name=str(summary.get("chart_name", "")),
            chart_version=str(summary.get("chart_version", "")),
            app_version=str(summary.get("app_version", "")),
            config=record.get("config") or {},
            first_deployed=str(info.get("first_deployed", "")),
            last_deployed=str(info.get("last_deployed", "")),
            deleted=str(info.get("deleted", "") or ""),
            test_hooks=tuple(hooks),
            manifest=str(summary.get("manifest") or ""),
        )


@dataclass(frozen=True, kw_only=True)
class ActionOptions:
    """How an install or upgrade runs (Flux's per-action fields)."""

    timeout: float = 300.0
    wait: bool = True
    #: Helm's waiter: ``watcher`` (kstatus, Flux's ``poller``) or ``legacy`` (Helm 3's).
    wait_strategy: str = "watcher"
    wait_for_jobs: bool = True
    disable_hooks: bool = False
    disable_schema_validation: bool = False
    skip_crds: bool = False
    force: bool = False
    cleanup_on_fail: bool = False
    create_namespace: bool = False
    replace: bool = False
    max_history: int = 5
    description: str | None = None
    server_side_apply: bool = True
    reuse_values: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    #: An encoded :class:`~fluxd.build.postrender.PostRendering`, handed to fluxd's
    #: post-renderer plugin; None renders without one.
    post_rendering: str | None = None
    #: What the post-renderer sees of the hooks: Helm's combined, separate or nohooks.
    post_render_strategy: str | None = None

    def document(self, namespace: str, *, upgrade: bool) -> str:
        options: dict[str, Any] = {
            "namespace": namespace,
            "timeout_seconds": max(1, int(self.timeout)),
            "wait": self.wait_strategy if self.wait else None,
            "wait_for_jobs": self.wait_for_jobs and self.wait,
            "disable_hooks": self.disable_hooks,
            # The API server validates every write Helm makes (fieldValidation=Strict);
            # Helm's client-side check only asks the server whether it does, through
            # its OpenAPI document, fetched and parsed again for every action.
            "disable_openapi_validation": True,
            "skip_schema_validation": self.disable_schema_validation,
            "skip_crds": self.skip_crds,
            "force_replace": self.force,
            "cleanup_on_fail": self.cleanup_on_fail if upgrade else None,
            "create_namespace": self.create_namespace if not upgrade else None,
            "replace": self.replace if not upgrade else None,
            "max_history": self.max_history if upgrade else None,
            "description": self.description,
            "reuse_values": self.reuse_values if upgrade else None,
            "labels": dict(self.labels),
            "post_renderer": plugins.POST_RENDERER if self.post_rendering else None,
            "post_renderer_args": [self.post_rendering] if self.post_rendering else None,
            "post_render_strategy": self.post_render_strategy,
        }
        document = {key: value for key, value in options.items() if value}
        # Helm's upgrade reads "true"/"false"/"auto" where install reads a boolean.
        ssa = self.server_side_apply
        document["server_side_apply"] = str(ssa).lower() if upgrade else ssa
        return json.dumps(document)


class Releases:
    """Release actions against one cluster, reached with ``kubeconfig`` (a document), by
    at most ``concurrent`` reconciles at once."""

    def __init__(self, kubeconfig: str, *, concurrent: int = 1) -> None:
        self._kubeconfig = kubeconfig
        self._concurrent = max(1, concurrent)
        self._configs: dict[tuple[str | None, str], Any] = {}
        self._locks: dict[tuple[str, str], anyio.Lock] = {}
        self._threads = anyio.CapacityLimiter(math.inf)

    def close(self) -> None:
        for config in self._configs.values():
            config.close()
        self._configs.clear()

    async def latest(self, name: str, *, storage: str, user: str | None) -> Release | None:
        """The release's latest record, or None when storage has none."""

        def read() -> Release | None:
            helm = sdk()
            try:
                record = self._config(storage, user).get_all(name)
            except helm.HelmNotFoundError:
                return None
            except helm.HelmError as error:
                if "not found" in str(error):
                    return None
                raise HelmActionError("read", str(error)) from error
            return Release.from_record(record)

        return await self._run(name, storage, read)

    async def install(
        self,
        chart: LoadedChart,
        name: str,
        values: Mapping[str, Any],
        *,
        namespace: str,
        storage: str,
        user: str | None,
        options: ActionOptions,
    ) -> Release:
        return await self._deploy("install", chart, name, values, namespace, storage, user, options)

    async def upgrade(
        self,
        chart: LoadedChart,
        name: str,
        values: Mapping[str, Any],
        *,
        namespace: str,
        storage: str,
        user: str | None,
        options: ActionOptions,
    ) -> Release:
        return await self._deploy("upgrade", chart, name, values, namespace, storage, user, options)

    async def rollback(
        self, name: str, *, storage: str, user: str | None, time_limit: float, wait: bool = True
    ) -> Release:
        """Roll back to the previous revision (a new revision)."""

        def act() -> Release:
            config = self._config(storage, user)
            self._call(
                "rollback",
                lambda: config.rollback(
                    name, timeout=max(1, int(time_limit)), wait="watcher" if wait else None
                ),
            )
            return Release.from_record(config.get_all(name))

        return await self._run(name, storage, act)

    async def uninstall(
        self,
        name: str,
        *,
        storage: str,
        user: str | None,
        time_limit: float,
        keep_history: bool = False,
        wait: bool = True,
        disable_hooks: bool = False,
        deletion_propagation: str = "background",
    ) -> None:
        def act() -> None:
            config = self._config(storage, user)
            options = {
                "keep_history": keep_history or None,
                "timeout_seconds": max(1, int(time_limit)),
                "ignore_not_found": True,
                "wait": "watcher" if wait else None,
                "disable_hooks": disable_hooks or None,
                "deletion_propagation": deletion_propagation,
            }
            document = json.dumps({k: v for k, v in options.items() if v is not None})
            self._call(
                "uninstall",
                lambda: sdk()._native.call_string("helm_uninstall", config._raw(), name, document),
            )

        await self._run(name, storage, act)

    async def history(self, name: str, *, storage: str, user: str | None) -> list[Release]:
        """The release's stored revisions, oldest first (summaries: no config or hooks);
        empty when storage has none."""

        def read() -> list[Release]:
            helm = sdk()
            try:
                items = self._config(storage, user).history(name)
            except helm.HelmError as error:
                if "not found" in str(error):
                    return []
                raise HelmActionError("history", str(error)) from error
            return [Release.from_record({"summary": item}) for item in items]

        return await self._run(name, storage, read)

    async def test(
        self, name: str, *, storage: str, user: str | None, time_limit: float
    ) -> Release:
        """Run the release's test hooks; the release record with their results."""

        def act() -> Release:
            config = self._config(storage, user)
            try:
                self._call("test", lambda: config.test(name, timeout=max(1, int(time_limit))))
            finally:
                record = config.get_all(name)
            return Release.from_record(record)

        return await self._run(name, storage, act)

    # -- helpers ----------------------------------------------------------------------------

    async def _deploy(
        self,
        action: str,
        chart: LoadedChart,
        name: str,
        values: Mapping[str, Any],
        namespace: str,
        storage: str,
        user: str | None,
        options: ActionOptions,
    ) -> Release:
        helm = sdk()
        context = await anyio.to_thread.run_sync(helm.HelmContext, limiter=self._threads)

        def act() -> Release:
            config = self._config(storage, user)
            self._call(
                action,
                lambda: helm._native.call_string(
                    f"helm_{action}",
                    config._raw(),
                    context._raw(),
                    chart.handle._raw(),
                    None,
                    name,
                    json.dumps(dict(values)),
                    options.document(namespace, upgrade=action == "upgrade"),
                ),
            )
            return Release.from_record(config.get_all(name))

        try:
            return await self._run(name, storage, act, cancel=context.cancel)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(context.close, limiter=self._threads)

    def _config(self, storage: str, user: str | None) -> Any:
        key = (user, storage)
        config = self._configs.get(key)
        if config is None:
            config = sdk().Config(
                kubeconfig_content=self._kubeconfig,
                namespace=storage,
                kube_as_user=user,
                qps=KUBE_API_QPS * self._concurrent,
                burst_limit=KUBE_API_BURST * self._concurrent,
            )
            self._configs[key] = config
        return config

    @staticmethod
    def _call(action: str, call: Callable[[], object]) -> None:
        helm = sdk()
        try:
            call()
        except helm.HelmError as error:
            raise HelmActionError(action, str(error)) from error

    async def _run(
        self,
        name: str,
        storage: str,
        work: Callable[[], T],
        *,
        cancel: Callable[[], None] | None = None,
    ) -> T:
        lock = self._locks.setdefault((storage, name), anyio.Lock())
        async with lock:
            try:
                return await anyio.to_thread.run_sync(
                    work, abandon_on_cancel=cancel is not None, limiter=self._threads
                )
            except anyio.get_cancelled_exc_class():
                if cancel is not None:
                    cancel()
                raise
