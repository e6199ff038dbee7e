"""The daemon: every part wired into one process, started and stopped in order.

Start-up: connect, start the HTTP listeners (``/healthz`` answers at once), start one
informer per reconciled kind, then — as leader, when leader election is on — wait for the
informers' first list and run the scheduler. Informers of a standby replica stay warm, so
a take-over starts from a full cache.

Informer events become scheduler wake-ups only when they matter, as Flux's predicates
decide: a new object, a new ``metadata.generation`` (spec change), a new
``reconcile.fluxcd.io/requestedAt`` annotation, deletion. Status-only updates — most of
them fluxd's own writes — wake nothing, so a failing object keeps its backoff. The
exception are objects fluxd only reads: any change to a watched ConfigMap or Secret, or
to an ExternalArtifact (whose producer publishes in ``status``), wakes their readers.

With ``--ui-addr`` the status UI (:mod:`fluxd.ui`) listens too, on its own port: it reads
the informer stores, and the informer handlers tell it every change of an object.

Shut-down (SIGTERM): stop taking work, let in-flight reconciles finish within the grace
period (their status patches are shielded), release the Lease, close the listeners and
the API clients opened for Kustomizations' service accounts and kubeconfigs.
"""

from __future__ import annotations

import os
import signal
import socket
import uuid
from pathlib import Path
from typing import Any, Literal

import anyio
import structlog
from aiohttp import web

from fluxd.api import EXTERNAL_ARTIFACT
from fluxd.apply.access import ClusterAccess, KubeconfigPolicy
from fluxd.daemon import http as webapp
from fluxd.daemon.options import Options
from fluxd.image.scans import ScanStore
from fluxd.kube.client import ApiClient, connect
from fluxd.kube.events import EventRecorder
from fluxd.kube.informer import Informer
from fluxd.kube.leader import LeaderElector
from fluxd.kube.objects import ObjectApi, resource_of
from fluxd.kube.resources import CONFIGMAPS, SECRETS
from fluxd.notify import Dispatcher, ReceiverServer
from fluxd.reconcilers.alert import AlertReconciler
from fluxd.reconcilers.bucket import BucketReconciler
from fluxd.reconcilers.driver import REQUESTED_AT_ANNOTATION, ReconcileDriver, Reconciler
from fluxd.reconcilers.gitrepository import GitRepositoryReconciler
from fluxd.reconcilers.helmchart import HelmChartReconciler
from fluxd.reconcilers.helmrelease import FIELD_MANAGER as HELM_FIELD_MANAGER
from fluxd.reconcilers.helmrelease import HelmReleaseReconciler
from fluxd.reconcilers.helmrepository import HelmRepositoryReconciler
from fluxd.reconcilers.imagepolicy import ImagePolicyReconciler
from fluxd.reconcilers.imagerepository import ImageRepositoryReconciler
from fluxd.reconcilers.imageupdateautomation import ImageUpdateAutomationReconciler
from fluxd.reconcilers.kustomization import KustomizationReconciler
from fluxd.reconcilers.ocirepository import OCIRepositoryReconciler
from fluxd.reconcilers.provider import ProviderReconciler
from fluxd.reconcilers.receiver import ReceiverReconciler
from fluxd.runtime.keys import ObjectKey
from fluxd.runtime.metrics import Metrics
from fluxd.runtime.scheduler import Outcome, Scheduler
from fluxd.runtime.tenancy import Tenancy
from fluxd.runtime.watchdog import reconcile_timeout
from fluxd.sources.artifact import Artifact
from fluxd.sources.cache import ArtifactCache
from fluxd.sources.external import ExternalArtifacts
from fluxd.sources.store import ContentStore
from fluxd.ui import RecentEvents, UiHub, ui_app

__all__ = ["Daemon", "serve"]

log = structlog.get_logger(__name__)


def _runtime_namespace() -> str:
    return os.environ.get("RUNTIME_NAMESPACE") or os.environ.get("POD_NAMESPACE") or "flux-system"


class Daemon:
    """One fluxd process: informers, scheduler, reconcilers, HTTP listeners."""

    def __init__(self, api: ApiClient, options: Options) -> None:
        self.api = api
        self.options = options
        self.metrics = Metrics()
        self.cache = ArtifactCache(_content_store(options))
        self.scheduler = Scheduler(self._handle, default_concurrency=options.concurrent)
        self.metrics.track_queue_depth(lambda: self.scheduler.depth)
        self.metrics.track_in_flight(self.scheduler.in_flight, self._reconcile_timeout)
        self.cache.subscribe(self._wake_dependents)
        self.events = EventRecorder(api, component="fluxd")
        self.informers: dict[str, Informer] = {}
        self.objects = ObjectApi(api, informers=self.informers, events=self.events)
        kubeconfig_policy = KubeconfigPolicy(
            insecure_tls=options.insecure_kubeconfig_tls,
            exec_provider=options.insecure_kubeconfig_exec,
        )
        self.cluster_access = ClusterAccess(
            self.objects,
            default_service_account=options.default_service_account,
            kubeconfig_policy=kubeconfig_policy,
        )
        # HelmReleases correct drift as Flux's helm-controller, under its field manager.
        self.helm_access = ClusterAccess(
            self.objects,
            field_manager=HELM_FIELD_MANAGER,
            default_service_account=options.default_service_account,
            kubeconfig_policy=kubeconfig_policy,
        )
        # What ImageRepositories scanned, read by the ImagePolicies.
        scans = ScanStore()
        tenancy = Tenancy(no_cross_namespace_refs=options.no_cross_namespace_refs)
        self.reconcilers: list[Reconciler[Any]] = [
            GitRepositoryReconciler(
                objects=self.objects,
                cache=self.cache,
                artifact_base_url=self._artifact_base_url(),
                track_sources=self.scheduler.track_sources,
                max_artifact_bytes=options.artifact_max_mib * 2**20
                if options.artifact_max_mib
                else None,
            ),
            BucketReconciler(
                objects=self.objects,
                cache=self.cache,
                artifact_base_url=self._artifact_base_url(),
                max_artifact_bytes=options.artifact_max_mib * 2**20
                if options.artifact_max_mib
                else None,
            ),
            HelmRepositoryReconciler(
                objects=self.objects,
                cache=self.cache,
                artifact_base_url=self._artifact_base_url(),
            ),
            HelmChartReconciler(
                objects=self.objects,
                cache=self.cache,
                artifact_base_url=self._artifact_base_url(),
                track_sources=self.scheduler.track_sources,
            ),
            OCIRepositoryReconciler(
                objects=self.objects,
                cache=self.cache,
                artifact_base_url=self._artifact_base_url(),
                max_artifact_bytes=options.artifact_max_mib * 2**20
                if options.artifact_max_mib
                else None,
            ),
            HelmReleaseReconciler(
                objects=self.objects,
                cache=self.cache,
                track_sources=self.scheduler.track_sources,
                access=self.helm_access,
                external=ExternalArtifacts(self.cache.store, packed=True),
                default_service_account=options.default_service_account,
                tenancy=tenancy,
                concurrent=options.concurrent,
            ),
            KustomizationReconciler(
                objects=self.objects,
                cache=self.cache,
                track_sources=self.scheduler.track_sources,
                access=self.cluster_access,
                external=ExternalArtifacts(self.cache.store),
                tenancy=tenancy,
            ),
            ImageRepositoryReconciler(
                objects=self.objects, scans=scans, wake=self.scheduler.wake_dependents
            ),
            ImagePolicyReconciler(
                objects=self.objects,
                scans=scans,
                track_sources=self.scheduler.track_sources,
                wake=self.scheduler.wake_dependents,
                tenancy=tenancy,
            ),
            ImageUpdateAutomationReconciler(
                objects=self.objects,
                track_sources=self.scheduler.track_sources,
                enqueue=self.scheduler.enqueue,
                tenancy=tenancy,
            ),
            ProviderReconciler(objects=self.objects),
            AlertReconciler(objects=self.objects),
            ReceiverReconciler(objects=self.objects),
        ]
        # Every recorded event is matched against the Alerts in the informers' stores.
        self.dispatcher = Dispatcher(
            objects=self.objects,
            informers=self.informers,
            no_cross_namespace_refs=options.no_cross_namespace_refs,
        )
        self.events.add_listener(self.dispatcher.listen)
        self.receivers = ReceiverServer(objects=self.objects, informers=self.informers)
        # The status UI hears the events fluxd records and every row change.
        self.recent_events = RecentEvents()
        self.ui: UiHub | None = None
        if options.ui_addr:
            self.events.add_listener(self.recent_events.listen)
            self.ui = UiHub(metrics=self.metrics, events=self.recent_events)
        self._drivers: dict[str, ReconcileDriver[Any]] = {}
        for reconciler in self.reconcilers:
            kind = reconciler.kind
            self._drivers[kind.kind] = ReconcileDriver(
                reconciler,
                objects=self.objects,
                metrics=self.metrics,
                wake_dependents=self.scheduler.wake_dependents,
            )
            self.informers[kind.kind] = Informer(
                api,
                resource_of(kind),
                namespace=options.watch_namespace,
                label_selector=options.watch_label_selector,
                on_event=self._event_handler(kind.kind),
            )
        watched_configs = (("ConfigMap", CONFIGMAPS), ("Secret", SECRETS))
        for config_kind, resource in (
            watched_configs if options.watch_configs_label_selector else ()
        ):
            self.informers[config_kind] = Informer(
                api,
                resource,
                namespace=options.watch_namespace,
                label_selector=options.watch_configs_label_selector,
                on_event=self._wake_readers(config_kind, "watched configuration changed"),
            )
        # No fluxd reconciler makes ExternalArtifacts: their producer's status writes are
        # what wakes the Kustomizations built from them.
        self.informers[EXTERNAL_ARTIFACT.kind] = Informer(
            api,
            resource_of(EXTERNAL_ARTIFACT),
            namespace=options.watch_namespace,
            label_selector=options.watch_label_selector,
            on_event=self._wake_readers(EXTERNAL_ARTIFACT.kind, "external artifact changed"),
        )
        self._seen: dict[ObjectKey, tuple[int, str | None, bool]] = {}
        self._stop = anyio.Event()
        self._leading = False
        self._lead_done = anyio.Event()
        self.addresses: dict[str, tuple[str, int]] = {}
        #: Unique per process start, as client-go's: two replicas on one host never clash.
        self.identity = f"{socket.gethostname()}_{uuid.uuid4()}"

    def _wake_dependents(self, source: ObjectKey, artifact: Artifact) -> None:
        woken = self.scheduler.wake_dependents(source)
        if woken:
            log.info(
                "new artifact: waking dependents",
                source=str(source),
                revision=artifact.revision,
                dependents=[str(key) for key in woken],
            )

    def _artifact_base_url(self) -> str:
        if self.options.artifact_base_url:
            return self.options.artifact_base_url.rstrip("/")
        # The fluxd Service maps port 80 to the artifact listener, as Flux's
        # source-controller Service does, so URLs carry no port.
        return f"http://fluxd.{_runtime_namespace()}.svc.cluster.local."

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        """Whether this instance currently runs the scheduler (always, without election)."""
        return self._leading

    def ready(self) -> bool:
        """All informers have delivered their first list."""
        return all(informer.synced.is_set() for informer in self.informers.values())

    def shutdown(self) -> None:
        """Begin a graceful stop (SIGTERM)."""
        self._stop.set()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until :meth:`shutdown`; ``task_status`` is started once listeners are up."""
        runners = [
            await self._listen(
                "probes",
                webapp.probes_app(self.metrics, ready=self.ready),
                self.options.metrics_addr,
            ),
            await self._listen(
                "artifacts",
                webapp.artifact_app(self.cache, hooks=self.receivers.app()),
                self.options.artifact_addr,
            ),
        ]
        if self.options.receiver_addr:
            hooks = web.Application()
            hooks.add_subapp("/hook", self.receivers.app())
            runners.append(await self._listen("receivers", hooks, self.options.receiver_addr))
        if self.options.ui_addr and self.ui is not None:
            app = ui_app(
                api=self.api,
                kinds=[reconciler.kind for reconciler in self.reconcilers],
                informers=self.informers,
                metrics=self.metrics,
                events=self.recent_events,
                hub=self.ui,
                auth=self.options.ui_auth,
                actions=self.options.ui_actions,
            )
            runners.append(await self._listen("ui", app, self.options.ui_addr))
        try:
            async with anyio.create_task_group() as tg:
                for kind, informer in self.informers.items():
                    tg.start_soon(informer.run, name=f"informer {kind}")
                tg.start_soon(self._leadership, name="leadership")
                tg.start_soon(self.dispatcher.run, name="notifications")
                task_status.started()
                await self._stop.wait()
                log.info("shutting down: no new reconciles, finishing the running ones")
                self.scheduler.stop()
                if self._leading:
                    with anyio.move_on_after(self.options.grace_period + 5):
                        await self._lead_done.wait()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                for runner in runners:
                    await runner.cleanup()
                await self.cluster_access.close()
                await self.helm_access.close()
                self.cache.store.close()
        log.info("stopped")

    async def _listen(self, name: str, app: web.Application, address: str) -> web.AppRunner:
        runner = await webapp.serve(app, address)
        host, port = runner.addresses[0][:2]
        self.addresses[name] = (str(host), int(port))
        log.info("listening", listener=name, address=f"{host}:{port}")
        return runner

    async def _leadership(self) -> None:
        try:
            if not self.options.leader_elect:
                await self._lead()
                return
            elector = LeaderElector(
                self.api,
                namespace=self.options.leader_election_namespace or _runtime_namespace(),
                name=self.options.leader_election_id,
                identity=self.identity,
                lease_duration=self.options.leader_election_lease_duration,
                renew_deadline=self.options.leader_election_renew_deadline,
                retry_period=self.options.leader_election_retry_period,
            )
            await elector.run(self._lead)
        finally:
            self._lead_done.set()
            if not self._stop.is_set():
                log.error("lost leadership: stopping so that a new leader takes over cleanly")
                self._stop.set()

    async def _lead(self) -> None:
        self._leading = True
        log.info("leading: waiting for informers to sync")
        for informer in self.informers.values():
            await informer.synced.wait()
        for kind in self._drivers:
            for obj in self.informers[kind].list():
                self._remember_and_enqueue(kind, obj, force=True)
        log.info("informers synced, reconciling", kinds=sorted(self.informers))
        await self.scheduler.run(grace_period=self.options.grace_period)

    # -- events -> wake-ups ----------------------------------------------------------------

    def _event_handler(self, kind: str) -> Any:
        async def on_event(
            event_type: Literal["ADDED", "MODIFIED", "DELETED"], obj: dict[str, Any]
        ) -> None:
            if event_type == "DELETED":
                metadata = obj["metadata"]
                key = ObjectKey(kind, metadata.get("namespace", ""), metadata["name"])
                self._seen.pop(key, None)
                self.scheduler.enqueue(key)
                if self.ui is not None:
                    self.ui.deleted(kind, obj)
                return
            self._remember_and_enqueue(kind, obj, force=event_type == "ADDED")
            if self.ui is not None:
                self.ui.changed(kind, obj)

        return on_event

    def _wake_readers(self, kind: str, what: str) -> Any:
        async def on_event(
            event_type: Literal["ADDED", "MODIFIED", "DELETED"], obj: dict[str, Any]
        ) -> None:
            metadata = obj["metadata"]
            key = ObjectKey(kind, metadata.get("namespace", ""), metadata["name"])
            woken = self.scheduler.wake_dependents(key)
            if woken:
                log.info(
                    f"{what}: waking its readers",
                    source=str(key),
                    change=event_type,
                    dependents=[str(dependent) for dependent in woken],
                )

        return on_event

    def _remember_and_enqueue(self, kind: str, obj: dict[str, Any], *, force: bool) -> None:
        metadata = obj["metadata"]
        key = ObjectKey(kind, metadata.get("namespace", ""), metadata["name"])
        triggers = (
            int(metadata.get("generation", 0)),
            (metadata.get("annotations") or {}).get(REQUESTED_AT_ANNOTATION),
            bool(metadata.get("deletionTimestamp")),
        )
        if force or self._seen.get(key) != triggers:
            self.scheduler.enqueue(key)
        self._seen[key] = triggers

    async def _handle(self, key: ObjectKey) -> Outcome:
        return await self._drivers[key.kind](key)

    def _reconcile_timeout(self, key: ObjectKey) -> float:
        informer = self.informers.get(key.kind)
        cached = informer.get(key.namespace, key.name) if informer is not None else None
        return reconcile_timeout(key.kind, cached)


def _content_store(options: Options) -> ContentStore:
    budget = options.artifact_memory_mib
    spill = options.artifact_spill_dir
    return ContentStore(
        memory_budget=budget * 2**20 if budget else None,
        spill_root=Path(spill) if spill else None,
    )


async def serve(kubeconfig: str | None, options: Options) -> None:
    """Run a daemon until SIGTERM or SIGINT, then stop it gracefully."""
    api = await connect(kubeconfig)
    try:
        daemon = Daemon(api, options)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signal, daemon)
            await daemon.run()
            tg.cancel_scope.cancel()
    finally:
        await api.close()


async def _stop_on_signal(daemon: Daemon) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for received in signals:
            log.info("signal received", signal=signal.Signals(received).name)
            daemon.shutdown()
            return
