"""Kustomization lifecycle end to end: what a Flux user relies on between two pushes.

Suspending holds a push back until resumed, and deleting a suspended Kustomization
leaves its objects running; an immutable field change fails until ``force`` recreates
the object (and never deletes one that is merely invalid); per-object annotations
(``ssa``, ``force``, ``reconcile``) change what is applied; every apply leaves one Event
listing what changed and a no-op writes nothing; drift is reverted on the interval alone;
a failure is retried every ``retryInterval`` until its cause is fixed; a field another
manager took comes back; and a spec pointing nowhere fails clearly while the daemon
keeps serving everything else.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION
from fluxd.kube import client
from fluxd.kube.resources import NAMESPACES, Resource
from fluxd.runtime import conditions
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import WAIT_TIMEOUT, Fluxd, ready_reason
from tests.integration.kustomizations import (
    CONFIGMAPS,
    DEPLOYMENTS,
    applied,
    configmap,
    kustomization,
    live,
    push_and_refresh,
    reconcile_now,
    setup_source,
)

pytestmark = pytest.mark.integration

JOBS = Resource("batch", "v1", "jobs")


def annotated(manifest: str, annotations: dict[str, str]) -> str:
    """``manifest`` (a single object) with ``annotations`` added to its metadata."""
    lines = "".join(f"    {key}: {value}\n" for key, value in annotations.items())
    return manifest.replace("metadata:\n", f"metadata:\n  annotations:\n{lines}", 1)


def job(namespace: str, name: str, command: str) -> str:
    return (
        f"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
        "spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n"
        f"      - name: main\n        image: busybox:1.36\n        command: [sh, -c, '{command}']\n"
    )


def deployment(namespace: str, name: str, app: str) -> str:
    """A Deployment whose selector (immutable) is ``app=<app>``."""
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n"
        f"  namespace: {namespace}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n"
        f"      app: {app}\n  template:\n    metadata:\n      labels:\n        app: {app}\n"
        "    spec:\n      containers:\n      - name: main\n        image: nginx:1.25.0\n"
    )


def ready_message(obj: dict[str, Any]) -> str:
    ready = conditions.get(obj.get("status") or {}, conditions.READY)
    assert ready is not None, f"no Ready condition in {obj.get('status')}"
    return str(ready["message"])


async def wait_live(
    fluxd: Fluxd,
    resource: Resource,
    name: str,
    predicate: Callable[[dict[str, Any] | None], bool],
    what: str,
    timeout: float = WAIT_TIMEOUT,
) -> dict[str, Any] | None:
    """Poll an applied object until ``predicate`` holds (``None`` while it is absent)."""
    last: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                last = await live(fluxd, resource, name)
                if predicate(last):
                    return last
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{resource.plural} {name}: {what} not seen; last: {last}") from None


async def wait_metric(fluxd: Fluxd, pattern: str, what: str) -> None:
    """Scrape ``/metrics`` until a line matches ``pattern``."""
    text = ""
    try:
        async with asyncio.timeout(WAIT_TIMEOUT):
            while not re.search(pattern, text := await fluxd.metrics(), re.MULTILINE):
                await asyncio.sleep(0.1)
    except TimeoutError:
        series = [line for line in text.splitlines() if fluxd.namespace in line]
        raise AssertionError(f"metrics: {what} not seen; {series}") from None


def info_series(fluxd: Fluxd, name: str, suspended: str) -> str:
    """The ``gotk_resource_info`` line of Kustomization ``name`` with ``suspended``."""
    ns = re.escape(fluxd.namespace)
    return (
        rf'^gotk_resource_info\{{kind="Kustomization",name="{name}",namespace="{ns}",'
        rf'[^}}]*suspended="{suspended}"[^}}]*\}} 1\.0$'
    )


async def reconcile_count(fluxd: Fluxd, name: str) -> int:
    """How many reconciles of Kustomization ``name`` have finished, whatever their result
    (the ``gotk_reconcile_duration_seconds`` histogram's count)."""
    series = (
        rf'^gotk_reconcile_duration_seconds_count\{{kind="Kustomization",name="{name}",'
        rf'namespace="{re.escape(fluxd.namespace)}"\}} (\d+)\.0$'
    )
    found = re.search(series, await fluxd.metrics(), re.MULTILINE)
    return int(found.group(1)) if found else 0


async def wait_reconciles(
    fluxd: Fluxd, name: str, at_least: int, what: str, timeout: float = WAIT_TIMEOUT
) -> None:
    seen = 0
    try:
        async with asyncio.timeout(timeout):
            while (seen := await reconcile_count(fluxd, name)) < at_least:
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(
            f"Kustomization {name}: {what}: {seen} of {at_least} reconciles in {timeout:.0f}s"
        ) from None


def value_owners(obj: dict[str, Any]) -> set[str]:
    """The field managers that own ``data.value`` of a ConfigMap."""
    return {
        entry["manager"]
        for entry in obj["metadata"].get("managedFields") or []
        if "f:value" in ((entry.get("fieldsV1") or {}).get("f:data") or {})
    }


async def test_suspend_holds_a_push_until_resumed(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    first = git_remote.commit(
        {"apps/a.yaml": configmap(ns, "a"), "witness/w.yaml": configmap(ns, "w")}
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("apps"))
    # Consumes the same source: once it has applied a push, the suspended one saw it too.
    await fluxd.create(KUSTOMIZATION, "witness", kustomization("witness"))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, first), "applied")
    await wait_metric(fluxd, info_series(fluxd, "apps", "false"), "apps not suspended")

    await fluxd.patch(KUSTOMIZATION, "apps", {"spec": {"suspend": True}})
    await wait_metric(fluxd, info_series(fluxd, "apps", "true"), "apps suspended")
    pushed = await push_and_refresh(
        fluxd,
        git_remote,
        {"apps/a.yaml": configmap(ns, "a", "2"), "witness/w.yaml": configmap(ns, "w", "2")},
    )
    await fluxd.wait_for(KUSTOMIZATION, "witness", lambda o: applied(o, pushed), "push applied")
    held = await fluxd.get(KUSTOMIZATION, "apps")
    assert held["status"]["lastAppliedRevision"].endswith(first), "a suspended push was applied"
    assert ready_message(held) == f"Applied revision: master@sha1:{first}"
    running = await live(fluxd, CONFIGMAPS, "a")
    assert running is not None
    assert running["data"] == {"value": "1"}, "a suspended Kustomization changed its object"

    await fluxd.patch(KUSTOMIZATION, "apps", {"spec": {"suspend": False}})
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, pushed), "applied on resume")
    resumed = await live(fluxd, CONFIGMAPS, "a")
    assert resumed is not None
    assert resumed["data"] == {"value": "2"}
    await wait_metric(fluxd, info_series(fluxd, "apps", "false"), "apps resumed")


async def test_deleting_a_suspended_kustomization_leaves_its_objects_running(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit(
        {"kept/a.yaml": configmap(ns, "kept"), "pruned/b.yaml": configmap(ns, "pruned")}
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "kept", kustomization("kept"))
    await fluxd.create(KUSTOMIZATION, "pruned", kustomization("pruned"))
    for name in ("kept", "pruned"):
        await fluxd.wait_for(KUSTOMIZATION, name, lambda o: applied(o, sha), "applied")

    # flux suspend ks kept && kubectl delete ks kept pruned
    await fluxd.patch(KUSTOMIZATION, "kept", {"spec": {"suspend": True}})
    await wait_metric(fluxd, info_series(fluxd, "kept", "true"), "kept suspended")
    for name in ("kept", "pruned"):
        await fluxd.delete(KUSTOMIZATION, name)
        await fluxd.wait_gone(KUSTOMIZATION, name)
    assert await live(fluxd, CONFIGMAPS, "pruned") is None, "prune: true did not delete"
    assert await live(fluxd, CONFIGMAPS, "kept") is not None, "a suspended deletion pruned"


async def test_immutable_change_fails_until_force_recreates(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    first = git_remote.commit({"jobs/migrate.yaml": job(ns, "migrate", "echo v1")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "jobs", kustomization("jobs"))
    await fluxd.wait_for(KUSTOMIZATION, "jobs", lambda o: applied(o, first), "applied")
    original = await live(fluxd, JOBS, "migrate")
    assert original is not None

    changed = await push_and_refresh(
        fluxd, git_remote, {"jobs/migrate.yaml": job(ns, "migrate", "echo v2")}
    )
    failed = await fluxd.wait_for(
        KUSTOMIZATION,
        "jobs",
        lambda o: (
            str((o.get("status") or {}).get("lastAttemptedRevision")).endswith(changed)
            and ready_reason(o) == ("False", "ReconciliationFailed")
        ),
        "the immutable change refused",
    )
    message = ready_message(failed)
    assert f"Job/{ns}/migrate" in message
    assert "immutable" in message
    assert "spec.force: true" in message
    assert failed["status"]["lastAppliedRevision"].endswith(first)
    untouched = await live(fluxd, JOBS, "migrate")
    assert untouched is not None
    assert untouched["metadata"]["uid"] == original["metadata"]["uid"]
    assert untouched["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "echo v1"

    await fluxd.patch(KUSTOMIZATION, "jobs", {"spec": {"force": True}})
    await fluxd.wait_for(KUSTOMIZATION, "jobs", lambda o: applied(o, changed), "forced apply")
    recreated = await live(fluxd, JOBS, "migrate")
    assert recreated is not None
    assert recreated["metadata"]["uid"] != original["metadata"]["uid"], "not recreated"
    assert recreated["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "echo v2"

    # force recreates only what a new object would fix: an invalid Job is not deleted.
    invalid = await push_and_refresh(
        fluxd,
        git_remote,
        {
            "jobs/migrate.yaml": job(ns, "migrate", "echo v3").replace(
                "- name: main", "- name: Main"
            )
        },
    )
    refused = await fluxd.wait_for(
        KUSTOMIZATION,
        "jobs",
        lambda o: (
            str((o.get("status") or {}).get("lastAttemptedRevision")).endswith(invalid)
            and ready_reason(o) == ("False", "ReconciliationFailed")
        ),
        "the invalid Job refused",
    )
    assert f"Job/{ns}/migrate" in ready_message(refused)
    kept = await live(fluxd, JOBS, "migrate")
    assert kept is not None, "force deleted an object the server refused as invalid"
    assert kept["metadata"]["uid"] == recreated["metadata"]["uid"]


async def test_force_annotation_recreates_one_object_without_spec_force(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    force = {"kustomize.toolkit.fluxcd.io/force": "enabled"}
    first = git_remote.commit({"apps/web.yaml": annotated(deployment(ns, "web", "web"), force)})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("apps"))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, first), "applied")
    original = await live(fluxd, DEPLOYMENTS, "web")
    assert original is not None

    changed = await push_and_refresh(
        fluxd, git_remote, {"apps/web.yaml": annotated(deployment(ns, "web", "web-v2"), force)}
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, changed), "recreated")
    recreated = await live(fluxd, DEPLOYMENTS, "web")
    assert recreated is not None
    assert recreated["metadata"]["uid"] != original["metadata"]["uid"]
    assert recreated["spec"]["selector"] == {"matchLabels": {"app": "web-v2"}}


async def test_ssa_and_reconcile_annotations_decide_what_is_corrected(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    ssa = "kustomize.toolkit.fluxcd.io/ssa"

    def files(value: str) -> dict[str, str]:
        return {
            "deploy/once.yaml": annotated(configmap(ns, "once", value), {ssa: "IfNotPresent"}),
            "deploy/ignored.yaml": annotated(configmap(ns, "ignored", value), {ssa: "Ignore"}),
            "deploy/override.yaml": annotated(configmap(ns, "override", value), {ssa: "Override"}),
            "deploy/plain.yaml": configmap(ns, "plain", value),
            "deploy/frozen.yaml": configmap(ns, "frozen", value),
        }

    first = git_remote.commit(files("1"))
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy"))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, first), "applied")
    for name in ("once", "override", "plain", "frozen"):
        assert await live(fluxd, CONFIGMAPS, name) is not None, f"{name} was not created"
    assert await live(fluxd, CONFIGMAPS, "ignored") is None, "ssa: Ignore was applied"

    # kubectl edit of each, and kubectl annotate reconcile=disabled on one.
    for name in ("once", "override", "plain"):
        await client.patch(fluxd.api, CONFIGMAPS, ns, name, {"data": {"value": "live"}})
    await client.patch(
        fluxd.api,
        CONFIGMAPS,
        ns,
        "frozen",
        {
            "metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}},
            "data": {"value": "live"},
        },
    )
    pushed = await push_and_refresh(fluxd, git_remote, files("2"))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, pushed), "push applied")

    values = {}
    for name in ("once", "override", "plain", "frozen"):
        obj = await live(fluxd, CONFIGMAPS, name)
        assert obj is not None, f"{name} was deleted"
        values[name] = obj["data"]["value"]
    assert values == {"once": "live", "override": "2", "plain": "2", "frozen": "live"}
    assert await live(fluxd, CONFIGMAPS, "ignored") is None, "ssa: Ignore was applied"

    # IfNotPresent: created again once deleted, with what git says now.
    await client.delete(fluxd.api, CONFIGMAPS, ns, "once")
    await reconcile_now(fluxd, "apps", "recreate once")
    recreated = await live(fluxd, CONFIGMAPS, "once")
    assert recreated is not None, "ssa: IfNotPresent was not created again"
    assert recreated["data"] == {"value": "2"}

    # reconcile: disabled also keeps the object from being pruned.
    git_remote.git("rm", "-q", "deploy/frozen.yaml")
    removed = await push_and_refresh(
        fluxd, git_remote, {"deploy/plain.yaml": configmap(ns, "plain")}
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, removed), "removal applied")
    assert await live(fluxd, CONFIGMAPS, "frozen") is not None, "reconcile: disabled was pruned"


async def test_each_apply_records_what_changed_and_a_no_op_writes_nothing(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    first = git_remote.commit(
        {"deploy/a.yaml": configmap(ns, "a"), "deploy/b.yaml": configmap(ns, "b")}
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy"))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, first), "applied")
    created = await fluxd.wait_event(
        "apps",
        lambda e: e["message"] == f"ConfigMap/{ns}/a created\nConfigMap/{ns}/b created",
        "the first apply listed",
    )
    assert (created["type"], created["reason"]) == ("Normal", "Progressing")
    revision = created["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/revision"]
    assert revision == f"master@sha1:{first}"

    git_remote.git("rm", "-q", "deploy/a.yaml")
    pushed = await push_and_refresh(
        fluxd,
        git_remote,
        {"deploy/b.yaml": configmap(ns, "b", "2"), "deploy/c.yaml": configmap(ns, "c")},
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, pushed), "push applied")
    await fluxd.wait_event(
        "apps",
        lambda e: e["message"] == f"ConfigMap/{ns}/b configured\nConfigMap/{ns}/c created",
        "the second apply listed, the unchanged object left out",
    )
    await fluxd.wait_event(
        "apps", lambda e: e["message"] == f"ConfigMap/{ns}/a deleted", "the prune listed"
    )

    async def normal_events() -> list[tuple[str, int, str]]:
        found = await client.request(
            fluxd.api,
            "GET",
            f"/api/v1/namespaces/{ns}/events",
            query={"fieldSelector": "involvedObject.name=apps,reason=Progressing"},
        )
        return sorted(
            (event["metadata"]["name"], event.get("count", 1), event["message"])
            for event in found["items"]
        )

    versions = {}
    for name in ("b", "c"):
        obj = await live(fluxd, CONFIGMAPS, name)
        assert obj is not None
        versions[name] = obj["metadata"]["resourceVersion"]
    before = await normal_events()
    kustomization_version = (await fluxd.get(KUSTOMIZATION, "apps"))["metadata"]["resourceVersion"]
    await reconcile_now(fluxd, "apps", "no-op")
    # The second request runs after the first finished, its events included.
    await reconcile_now(fluxd, "apps", "no-op again")
    for name, version in versions.items():
        obj = await live(fluxd, CONFIGMAPS, name)
        assert obj is not None
        assert obj["metadata"]["resourceVersion"] == version, f"a no-op reconcile wrote {name}"
    assert await normal_events() == before, "a no-op reconcile recorded an apply event"
    assert (
        kustomization_version
        != (await fluxd.get(KUSTOMIZATION, "apps"))["metadata"]["resourceVersion"]
    ), "the requests were not handled"


async def test_drift_is_reverted_on_the_interval_without_a_trigger(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit({"deploy/a.yaml": configmap(ns, "a")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy", interval="2s"))
    done = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

    # Periodic reconciles that find no drift write nothing, not even the status.
    before = await live(fluxd, CONFIGMAPS, "a")
    assert before is not None
    count = await reconcile_count(fluxd, "apps")
    await wait_reconciles(fluxd, "apps", count + 2, "two periodic reconciles", timeout=10)
    after = await live(fluxd, CONFIGMAPS, "a")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    again = await fluxd.get(KUSTOMIZATION, "apps")
    assert again["metadata"]["resourceVersion"] == done["metadata"]["resourceVersion"]

    # kubectl edit configmap a
    await client.patch(fluxd.api, CONFIGMAPS, ns, "a", {"data": {"value": "edited"}})
    assert (await live(fluxd, CONFIGMAPS, "a") or {})["data"] == {"value": "edited"}
    await wait_live(
        fluxd,
        CONFIGMAPS,
        "a",
        lambda o: o is not None and o["data"] == {"value": "1"},
        "the edit reverted by the periodic reconcile",
        timeout=10,
    )


async def test_a_failure_is_retried_every_retry_interval_until_fixed(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    missing_ns = f"{ns}-later"
    sha = git_remote.commit(
        {
            "deploy/a.yaml": configmap(missing_ns, "a"),
            "vars/b.yaml": configmap(ns, "b", "${VALUE}"),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy", retryInterval="1s"))
    await fluxd.create(
        KUSTOMIZATION,
        "vars",
        kustomization(
            "vars",
            retryInterval="1s",
            postBuild={"substituteFrom": [{"kind": "ConfigMap", "name": "settings"}]},
        ),
    )
    failed = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "ReconciliationFailed")
    assert f"ConfigMap/{missing_ns}/a" in ready_message(failed)
    assert f'namespaces "{missing_ns}" not found' in ready_message(failed)
    unbuilt = await fluxd.wait_not_ready(KUSTOMIZATION, "vars", "BuildFailed")
    assert "ConfigMap/settings" in ready_message(unbuilt)

    # Every second, not after a backoff that has grown to 12s by the sixth attempt.
    await wait_reconciles(fluxd, "apps", 6, "attempts every retryInterval", timeout=9)

    # Fix both causes; nothing touches the Kustomizations (interval: 1h).
    await client.create(fluxd.api, NAMESPACES, {"metadata": {"name": missing_ns}})
    try:
        await client.create(
            fluxd.api,
            CONFIGMAPS,
            {"metadata": {"name": "settings", "namespace": ns}, "data": {"VALUE": "set"}},
        )
        await fluxd.wait_for(
            KUSTOMIZATION, "apps", lambda o: applied(o, sha), "recovered", timeout=5
        )
        await fluxd.wait_for(
            KUSTOMIZATION, "vars", lambda o: applied(o, sha), "recovered", timeout=5
        )
        substituted = await live(fluxd, CONFIGMAPS, "b")
        assert substituted is not None
        assert substituted["data"] == {"value": "set"}
    finally:
        await fluxd.delete(KUSTOMIZATION, "apps")
        await fluxd.wait_gone(KUSTOMIZATION, "apps")
        await client.delete(fluxd.api, NAMESPACES, None, missing_ns)


async def test_a_field_taken_by_another_manager_is_taken_back(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit({"deploy/a.yaml": configmap(ns, "a")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy"))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

    await client.request(
        fluxd.api,
        "PATCH",
        CONFIGMAPS.path(ns, "a"),
        query={"fieldManager": "other", "force": "true"},
        body={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": ns},
            "data": {"value": "theirs"},
        },
        content_type="application/apply-patch+yaml",
    )
    taken = await live(fluxd, CONFIGMAPS, "a")
    assert taken is not None
    assert taken["data"] == {"value": "theirs"}
    assert value_owners(taken) == {"other"}

    await reconcile_now(fluxd, "apps", "take it back")
    back = await live(fluxd, CONFIGMAPS, "a")
    assert back is not None
    assert back["data"] == {"value": "1"}
    assert value_owners(back) == {"fluxd"}


async def test_a_source_in_a_missing_namespace_fails_and_others_still_apply(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit({"deploy/a.yaml": configmap(ns, "a")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION,
        "lost",
        kustomization(
            "deploy",
            sourceRef={"kind": "GitRepository", "name": "source", "namespace": "nowhere"},
        ),
    )
    lost = await fluxd.wait_not_ready(KUSTOMIZATION, "lost", "ArtifactFailed")
    assert "GitRepository/nowhere/source" in ready_message(lost)
    assert "lastAppliedRevision" not in lost["status"]

    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy"))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    assert await live(fluxd, CONFIGMAPS, "a") is not None
    source = await fluxd.get(GIT_REPOSITORY, "source")
    assert conditions.is_ready(source["status"])
