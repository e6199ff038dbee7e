"""Staged server-side apply with drift detection, and safe deletion: Flux's ssa manager.

Applying a set of objects (:meth:`ApplyManager.apply_all`) runs in stages, as Flux's
staged apply does: first the cluster definitions (CRDs, Namespaces, ClusterRoles), then,
once the CRDs are established and the Namespaces active, the class definitions
(``StorageClass``, ``IngressClass``...), then everything else. Each stage goes:

1. **plan** every object of the stage, concurrently and without writing anything:
   ask the server for a dry-run server-side apply. An answer without a
   ``resourceVersion`` is a new object: ``created``, with no read of the live object
   (two requests per new object, dry-run and apply). Otherwise the dry-run result
   compared to the live object (labels, annotations, and everything outside
   ``metadata`` and ``status``) says ``configured`` or ``unchanged``. The
   ``kustomize.toolkit.fluxcd.io/ssa`` annotation (``Ignore`` skips, ``IfNotPresent``
   only creates) and ``.../reconcile: disabled`` are honoured on both the manifest and
   the live object;
2. **stop** at the first refusal, before anything of the stage is written: a bad object
   never half-applies a stage. The error names the object and quotes the server;
3. **apply** only the objects that changed, with field manager ownership forced (fields
   another manager took, such as ``kubectl scale`` replicas, come back; fields kubectl
   added are taken over first, :mod:`fluxd.apply.ownership`, so they go). So a
   reconcile that finds no drift writes nothing and no ``resourceVersion`` moves.

A change the server refuses on update but would accept on a new object (an immutable
field: a Deployment selector, a Job template, a Service clusterIP) is told apart from a
plain validation error by a second dry-run that creates the object under a generated
name. With ``force`` (or the object annotated ``kustomize.toolkit.fluxcd.io/force:
Enabled``) such an object is deleted and created again; without it the error says that
``spec.force: true`` would recreate it. Unlike Flux, which recreates on any ``Invalid``
answer, an object that is simply invalid is never deleted.

Deletion (:meth:`ApplyManager.delete_all`, the prune and the finalizer) runs in reverse
apply order, leaves alone objects annotated ``kustomize.toolkit.fluxcd.io/prune:
disabled`` (or ``ssa: Ignore``, ``reconcile: disabled``) and objects whose owner labels
no longer name the caller, and counts objects already gone as deleted.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fluxd.apply.changeset import Action, ChangeSet
from fluxd.apply.errors import ApplyError
from fluxd.apply.ignore import DriftIgnore
from fluxd.apply.inventory import ObjectRef, apply_order, apply_stage
from fluxd.apply.mapper import NoKindMatchError, RESTMapper
from fluxd.apply.ownership import takeover
from fluxd.kube import client
from fluxd.kube.client import ApiClient
from fluxd.kube.resources import Resource

__all__ = [
    "FIELD_MANAGER",
    "FORCE_ANNOTATION",
    "PRUNE_ANNOTATION",
    "RECONCILE_ANNOTATION",
    "SSA_ANNOTATION",
    "ApplyError",
    "ApplyManager",
    "Plan",
]

SSA_ANNOTATION = "kustomize.toolkit.fluxcd.io/ssa"
PRUNE_ANNOTATION = "kustomize.toolkit.fluxcd.io/prune"
RECONCILE_ANNOTATION = "kustomize.toolkit.fluxcd.io/reconcile"
FORCE_ANNOTATION = "kustomize.toolkit.fluxcd.io/force"

# Label-or-annotation selectors, matched case-insensitively as Flux does.
EXCLUDED = {SSA_ANNOTATION: "Ignore", RECONCILE_ANNOTATION: "Disabled"}
IF_NOT_PRESENT = {SSA_ANNOTATION: "IfNotPresent"}
_MERGE = {SSA_ANNOTATION: "Merge"}
_FORCED = {FORCE_ANNOTATION: "Enabled"}
PRUNE_EXCLUDED = {
    PRUNE_ANNOTATION: "Disabled",
    RECONCILE_ANNOTATION: "Disabled",
    SSA_ANNOTATION: "Ignore",
}
#: The field manager fluxd applies with (Flux's kustomize-controller applies as its own
#: name; its fields are taken over, see :mod:`fluxd.apply.ownership`).
FIELD_MANAGER = "fluxd"
_APPLY_PATCH = "application/apply-patch+yaml"
_POLL = 0.25
_READ_ATTEMPTS = 3


@dataclasses.dataclass
class Plan:
    """What the apply step will do with one object, decided before anything is written.

    For an existing object, ``live`` is it as read and ``merged`` the dry-run's answer
    (what applying would make of it); both are ``None`` for a new one."""

    ref: ObjectRef
    resource: Resource
    body: dict[str, Any]
    action: Action
    recreate: bool = False
    take_over: bool = False
    live: dict[str, Any] | None = None
    merged: dict[str, Any] | None = None


class ApplyManager:
    """Applies and deletes objects as one field manager."""

    def __init__(
        self,
        api: ApiClient,
        mapper: RESTMapper,
        *,
        field_manager: str = FIELD_MANAGER,
        concurrency: int = 8,
    ) -> None:
        self.api = api
        self.mapper = mapper
        self.field_manager = field_manager
        self._concurrency = concurrency

    # -- apply ------------------------------------------------------------------------------

    async def apply_all(
        self,
        objects: Iterable[Mapping[str, Any]],
        *,
        force: bool = False,
        ignore: DriftIgnore | None = None,
        wait_timeout: float = 60,
    ) -> ChangeSet:
        """Apply ``objects`` in Flux's three stages; see the module docstring.

        ``ignore`` names fields of existing objects to leave as they are live
        (:mod:`fluxd.apply.ignore`).

        ``wait_timeout`` bounds the wait for the first stage's CRDs to be established
        (and Namespaces active), and for objects being recreated to be gone. Raises
        :class:`ApplyError`; its ``changes`` are those of the stages already applied.
        """
        ordered = apply_order(list(objects))
        stages = [[obj for obj in ordered if apply_stage(obj) == stage] for stage in (0, 1, 2)]
        changes = ChangeSet()
        for number, stage in enumerate(stages):
            if not stage:
                continue
            try:
                plans = await self._plan_stage(stage, force=force, ignore=ignore)
            except ApplyError as error:
                error.changes = changes
                raise
            await self._execute(plans, changes, wait_timeout)
            if number == 0:
                await self._wait_established(plans, changes, wait_timeout)
        return changes

    async def _plan_stage(
        self, stage: list[Mapping[str, Any]], *, force: bool, ignore: DriftIgnore | None
    ) -> list[Plan]:
        limit = asyncio.Semaphore(self._concurrency)

        async def plan(obj: Mapping[str, Any]) -> Plan:
            async with limit:
                return await self.plan(obj, force=force, ignore=ignore)

        results = await asyncio.gather(*(plan(obj) for obj in stage), return_exceptions=True)
        plans: list[Plan] = []
        for result in results:  # report the first failure in apply order
            if isinstance(result, BaseException):
                raise result
            plans.append(result)
        return plans

    async def plan(
        self,
        obj: Mapping[str, Any],
        *,
        force: bool = False,
        ignore: DriftIgnore | None = None,
        namespace_pending: bool = False,
    ) -> Plan:
        """Decide what applying ``obj`` would do, writing nothing (step 1 above).

        Raises :class:`ApplyError` naming the object, a :class:`NoKindMatchError` when
        its kind is not served. ``namespace_pending`` (for ``fluxd diff``, which applies
        nothing) plans an object whose namespace does not exist yet as ``created``: a
        Namespace of the same build would make it.
        """
        ref = ObjectRef.of(obj)
        if not (ref.kind and ref.version and ref.name):
            raise ApplyError(
                f"{ref}: not a Kubernetes object: apiVersion, kind and metadata.name are required"
            )
        try:
            resource = await self.mapper.resource_for(ref.api_version, ref.kind)
        except ApplyError as error:
            raise type(error)(f"{ref} dry-run failed: {error}") from error
        body = copy.deepcopy(dict(obj))
        metadata = body.setdefault("metadata", {})
        if not resource.namespaced:
            metadata.pop("namespace", None)
            ref = dataclasses.replace(ref, namespace="")
        elif not ref.namespace:
            raise ApplyError(
                f"{ref} namespace not specified: a {ref.kind} lives in a namespace; set "
                "metadata.namespace or the Kustomization's spec.targetNamespace"
            )

        if any_in_metadata(body, EXCLUDED):
            return Plan(ref, resource, body, "skipped")
        # The dry-run itself tells a new object (its answer has no resourceVersion), so the
        # live object is read first only when the decision needs it before the dry-run.
        live = await self._read(resource, ref) if ignore or _if_not_present(body) else None
        for attempt in range(1, _READ_ATTEMPTS + 1):
            if live is not None:
                if any_in_metadata(live, EXCLUDED) or _if_not_present(body):
                    return Plan(ref, resource, body, "skipped")
                if ignore:
                    body = ignore.keep_live(body, live)
            try:
                merged = await self._apply(resource, ref, body, dry_run=True)
            except client.ApiError as error:
                live = live or await self._read(resource, ref)
                if live is not None and any_in_metadata(live, EXCLUDED):
                    return Plan(ref, resource, body, "skipped")
                if live is None and error.not_found and namespace_pending:
                    return Plan(ref, resource, body, "created")
                if live is None or not await self._refused_as_update(resource, ref, body, error):
                    raise ApplyError(dry_run_failure(ref, error)) from error
                if not (force or any_in_metadata(body, _FORCED) or any_in_metadata(live, _FORCED)):
                    raise ApplyError(
                        f"{dry_run_failure(ref, error)}; this change needs {ref} to be "
                        "recreated: set spec.force: true to delete and re-create it"
                    ) from error
                return Plan(ref, resource, body, "created", recreate=True)
            if not _version(merged):
                return Plan(ref, resource, body, "created")
            if live is None or _version(live) != _version(merged):
                live = await self._read(resource, ref)
            # The dry-run merged into the version we read unless a controller wrote the
            # object in between (a new Deployment gets its revision annotation): compare
            # like with like, or a fresh object would look drifted. Read again and retry.
            if live is not None and (
                _version(merged) == _version(live) or attempt == _READ_ATTEMPTS
            ):
                if any_in_metadata(live, EXCLUDED):
                    return Plan(ref, resource, body, "skipped")
                # Fields kubectl added are taken over so that the apply removes them:
                # a change even when the dry-run (which keeps them) shows none.
                take_over = not (
                    any_in_metadata(body, _MERGE) or any_in_metadata(live, _MERGE)
                ) and (takeover(live, self.field_manager) is not None)
                drift = take_over or drifted(live, merged)
                action: Action = "configured" if drift else "unchanged"
                return Plan(
                    ref, resource, body, action, take_over=take_over, live=live, merged=merged
                )
        raise ApplyError(f"{ref} kept changing while being planned; it will be tried again")

    async def _refused_as_update(
        self, resource: Resource, ref: ObjectRef, body: dict[str, Any], error: client.ApiError
    ) -> bool:
        """Whether the server refused the change only because the object exists: it
        would accept the same manifest as a new object (a dry-run create under a
        generated name), so deleting and re-creating it would succeed."""
        if error.status != 422 and "immutable" not in error.message.lower():
            return False
        probe = copy.deepcopy(body)
        metadata = probe["metadata"]
        metadata["generateName"] = f"{metadata.pop('name')}-"
        for key in ("resourceVersion", "uid"):
            metadata.pop(key, None)
        try:
            await client.request(
                self.api,
                "POST",
                resource.path(ref.namespace or None),
                query={"dryRun": "All", "fieldManager": self.field_manager},
                body=probe,
            )
        except client.ApiError:
            return False
        return True

    async def _execute(self, plans: list[Plan], changes: ChangeSet, wait_timeout: float) -> None:
        for plan in plans:
            try:
                if plan.recreate:
                    await self._delete_and_wait(plan, wait_timeout)
                if plan.take_over:
                    await self._take_over(plan)
                if plan.action in ("created", "configured"):
                    await self._apply(plan.resource, plan.ref, plan.body, dry_run=False)
            except client.ApiError as error:
                raise ApplyError(
                    f"{plan.ref} apply failed: {server_words(error)}", changes=changes
                ) from error
            except ApplyError as error:
                error.changes = changes
                raise
            changes.add(plan.ref, plan.action)

    async def _take_over(self, plan: Plan) -> None:
        """Hand kubectl's fields to this manager (:mod:`fluxd.apply.ownership`), on the
        object as it is now. The patch holds only for the version read: a controller
        writing in between (a Deployment's status) makes the server refuse it, and it
        is computed again from a fresh read."""
        for attempt in range(1, _READ_ATTEMPTS + 1):
            live = await self._get(plan.resource, plan.ref)
            managed = takeover(live, self.field_manager) if live is not None else None
            if live is None or managed is None:
                return
            try:
                await client.patch(
                    self.api,
                    plan.resource,
                    plan.ref.namespace or None,
                    plan.ref.name,
                    [
                        {
                            "op": "test",
                            "path": "/metadata/resourceVersion",
                            "value": _version(live),
                        },
                        {"op": "replace", "path": "/metadata/managedFields", "value": managed},
                    ],
                    patch_type="json",
                )
                return
            except client.ApiError as error:
                if error.status != 422 or attempt == _READ_ATTEMPTS:
                    raise

    async def _delete_and_wait(self, plan: Plan, patience: float) -> None:
        await client.delete(
            self.api,
            plan.resource,
            plan.ref.namespace or None,
            plan.ref.name,
            propagation_policy="Background",
        )
        try:
            async with asyncio.timeout(patience):
                while True:
                    if await self._get(plan.resource, plan.ref) is None:
                        return
                    await asyncio.sleep(_POLL)
        except TimeoutError:
            raise ApplyError(
                f"{plan.ref} immutable field detected: deleted it to recreate it, but it "
                f"was still there after {patience:g}s (a finalizer holds it?)"
            ) from None

    async def _wait_established(
        self, plans: list[Plan], changes: ChangeSet, patience: float
    ) -> None:
        """Wait until the first stage's CRDs are served and its Namespaces active (its
        ClusterRoles need no waiting)."""
        pending = [
            plan
            for plan in plans
            if plan.action != "skipped"
            and plan.ref.kind in ("CustomResourceDefinition", "Namespace")
        ]
        last: dict[ObjectRef, dict[str, Any] | None] = {}
        try:
            async with asyncio.timeout(patience):
                while pending:
                    for plan in pending:
                        try:
                            last[plan.ref] = await self._get(plan.resource, plan.ref)
                        except client.ApiError as error:
                            raise ApplyError(
                                f"{plan.ref} query failed: {server_words(error)}",
                                changes=changes,
                            ) from error
                    pending = [plan for plan in pending if not _established(last[plan.ref])]
                    if pending:
                        await asyncio.sleep(_POLL)
        except TimeoutError:
            waiting = ", ".join(_not_established(plan.ref, last.get(plan.ref)) for plan in pending)
            raise ApplyError(
                f"timeout after {patience:g}s waiting for {waiting}", changes=changes
            ) from None

    # -- delete -----------------------------------------------------------------------------

    async def delete_all(
        self,
        refs: Iterable[ObjectRef],
        *,
        owner_labels: Mapping[str, str] | None = None,
        skip: Callable[[dict[str, Any]], bool] | None = None,
    ) -> ChangeSet:
        """Delete objects (background propagation), in reverse apply order.

        Left alone (``skipped``): objects annotated or labelled ``prune: disabled``,
        ``ssa: Ignore`` or ``reconcile: disabled``; objects whose labels do not carry
        every ``owner_labels`` pair (another owner took them over); objects for which
        ``skip(live_object)`` is true. Objects already gone, or whose kind is no longer
        served, count as ``deleted``. A failure does not stop the others: all failures
        are raised together afterwards as one :class:`ApplyError`.
        """
        changes = ChangeSet()
        failures: list[str] = []
        for ref in reversed(apply_order(list(refs))):
            try:
                action = await self._delete(ref, owner_labels or {}, skip)
            except ApplyError as error:
                failures.append(str(error))
                continue
            changes.add(ref, action)
        if failures:
            raise ApplyError(f"delete failed: {'; '.join(failures)}", changes=changes)
        return changes

    async def would_delete(self, ref: ObjectRef, owner_labels: Mapping[str, str]) -> bool:
        """Whether :meth:`delete_all` would delete ``ref`` now: it exists, still carries
        ``owner_labels`` and is not excluded from pruning."""
        _, live = await self._deletable(ref, owner_labels, None)
        return live is not None

    async def _delete(
        self,
        ref: ObjectRef,
        owner_labels: Mapping[str, str],
        skip: Callable[[dict[str, Any]], bool] | None,
    ) -> Action:
        resource, live = await self._deletable(ref, owner_labels, skip)
        if resource is None:
            return "deleted"
        if live is None:
            return "skipped"
        try:
            await client.delete(
                self.api, resource, ref.namespace or None, ref.name, propagation_policy="Background"
            )
        except client.ApiError as error:
            raise ApplyError(f"{ref} delete failed: {server_words(error)}") from error
        return "deleted"

    async def _deletable(
        self,
        ref: ObjectRef,
        owner_labels: Mapping[str, str],
        skip: Callable[[dict[str, Any]], bool] | None,
    ) -> tuple[Resource | None, dict[str, Any] | None]:
        """``ref``'s collection and live object when it may be deleted; the collection
        and ``None`` when it is to be left alone; ``(None, None)`` when it is gone (or
        its kind is: its CRD was deleted, and every object of the kind with it)."""
        try:
            resource = await self.mapper.resource_for(ref.api_version, ref.kind)
        except NoKindMatchError:
            return None, None
        except ApplyError as error:
            raise ApplyError(f"{ref} query failed: {error}") from error
        live = await self._read(resource, ref)
        if live is None:
            return None, None
        labels = (live.get("metadata") or {}).get("labels") or {}
        if any(labels.get(key) != value for key, value in owner_labels.items()):
            return resource, None
        if any_in_metadata(live, PRUNE_EXCLUDED) or (skip is not None and skip(live)):
            return resource, None
        return resource, live

    # -- requests ---------------------------------------------------------------------------

    async def _read(self, resource: Resource, ref: ObjectRef) -> dict[str, Any] | None:
        """:meth:`_get`, where a failure is an :class:`ApplyError` naming ``ref``."""
        try:
            return await self._get(resource, ref)
        except client.ApiError as error:
            raise ApplyError(f"{ref} query failed: {server_words(error)}") from error

    async def _get(self, resource: Resource, ref: ObjectRef) -> dict[str, Any] | None:
        return await client.get(
            self.api, resource, ref.namespace or None, ref.name, missing_ok=True
        )

    async def _apply(
        self, resource: Resource, ref: ObjectRef, body: dict[str, Any], *, dry_run: bool
    ) -> dict[str, Any]:
        query = {"fieldManager": self.field_manager, "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        return await client.request(
            self.api,
            "PATCH",
            resource.path(ref.namespace or None, ref.name),
            query=query,
            body=body,
            content_type=_APPLY_PATCH,
        )


def any_in_metadata(obj: Mapping[str, Any], selector: Mapping[str, str]) -> bool:
    """Whether a label or annotation has one of the selector's values (any case)."""
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    for key, value in selector.items():
        for found in (labels.get(key), annotations.get(key)):
            if isinstance(found, str) and found and found.lower() == value.lower():
                return True
    return False


def _if_not_present(obj: Mapping[str, Any]) -> bool:
    return any_in_metadata(obj, IF_NOT_PRESENT)


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def drifted(live: Mapping[str, Any], merged: Mapping[str, Any]) -> bool:
    """Whether applying would change the object: its labels, annotations, or anything
    outside ``metadata`` and ``status`` differ (managedFields, resourceVersion,
    generation, timestamps and uid do not count)."""
    live_meta = live.get("metadata") or {}
    merged_meta = merged.get("metadata") or {}
    for key in ("labels", "annotations"):
        if (live_meta.get(key) or {}) != (merged_meta.get(key) or {}):
            return True

    def content(obj: Mapping[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in obj.items() if key not in ("metadata", "status")}

    return content(live) != content(merged)


def _established(live: Mapping[str, Any] | None) -> bool:
    if live is None:
        return False
    status = live.get("status") or {}
    if live.get("kind") == "Namespace":
        return status.get("phase") == "Active"
    return any(
        condition.get("type") == "Established" and condition.get("status") == "True"
        for condition in status.get("conditions") or []
    )


def _not_established(ref: ObjectRef, live: Mapping[str, Any] | None) -> str:
    if live is None:
        return f"{ref} (not found)"
    status = live.get("status") or {}
    if ref.kind == "Namespace":
        return f"{ref} to be Active (phase {status.get('phase') or 'unknown'})"
    reasons = [
        f"{condition.get('type')}={condition.get('status')}: {condition.get('message', '')}"
        for condition in status.get("conditions") or []
        if condition.get("status") != "True"
    ]
    return f"{ref} to be Established" + (f" ({'; '.join(reasons)})" if reasons else "")


def server_words(error: client.ApiError) -> str:
    return error.message or str(error)


def dry_run_failure(ref: ObjectRef, error: client.ApiError) -> str:
    """Flux's wording: ``Kind/ns/name dry-run failed (Reason): <server message>``."""
    if error.not_found:
        return f"{ref} not found: {server_words(error)}"
    reason = f" ({error.reason})" if error.reason else ""
    return f"{ref} dry-run failed{reason}: {server_words(error)}"
