"""``status.history`` of a Kustomization, end to end on the real API server.

What a user reads with ``kubectl get kustomization -o yaml``: one snapshot per outcome of
one set of manifests, newest first, counted when the same manifests are applied again,
never more than five, and failures recorded with their reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.api import KUSTOMIZATION
from fluxd.runtime import conditions
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd
from tests.integration.kustomizations import (
    applied,
    configmap,
    kustomization,
    push_and_refresh,
    reconcile_now,
    setup_source,
)

pytestmark = pytest.mark.integration


async def apply_revision(fluxd: Fluxd, remote: GitRemote, files: dict[str, str]) -> dict[str, Any]:
    sha = await push_and_refresh(fluxd, remote, files)
    return await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")


def history(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["status"].get("history") or [])


async def test_history_counts_reapplies_adds_revisions_and_keeps_five(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    first = git_remote.commit({"deploy/a.yaml": configmap(ns, "a", "1")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy"))
    obj = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, first), "applied")
    [snapshot] = history(obj)
    assert snapshot["digest"].startswith("sha256:")
    assert snapshot["lastReconciledStatus"] == "ReconciliationSucceeded"
    assert snapshot["totalReconciliations"] == 1
    assert snapshot["metadata"]["revision"].endswith(first)
    assert snapshot["lastReconciledDuration"].endswith("s")

    again = await reconcile_now(fluxd, "apps", "again")
    [counted] = history(again)
    assert counted["digest"] == snapshot["digest"]
    assert counted["totalReconciliations"] == 2
    assert counted["firstReconciled"] == snapshot["firstReconciled"]

    second = await push_and_refresh(fluxd, git_remote, {"deploy/a.yaml": configmap(ns, "a", "2")})
    obj = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, second), "applied")
    newest, oldest = history(obj)
    assert newest["metadata"]["revision"].endswith(second)
    assert newest["digest"] != oldest["digest"]
    assert oldest == counted

    # A failed apply is a snapshot of its own, with the failure's reason.
    broken = await push_and_refresh(
        fluxd, git_remote, {"deploy/a.yaml": configmap(ns, "a", "3").replace("'3'", "[3]")}
    )

    def failed(o: dict[str, Any]) -> bool:
        ready = conditions.get(o.get("status") or {}, "Ready")
        return (
            ready is not None
            and ready["status"] == "False"
            and str(o["status"].get("lastAttemptedRevision", "")).endswith(broken)
        )

    obj = await fluxd.wait_for(KUSTOMIZATION, "apps", failed, "the broken revision failing")
    assert history(obj)[0]["lastReconciledStatus"] == "ReconciliationFailed"
    assert history(obj)[0]["metadata"]["revision"].endswith(broken)

    for value in ("4", "5", "6", "7"):
        obj = await apply_revision(fluxd, git_remote, {"deploy/a.yaml": configmap(ns, "a", value)})
    snapshots = history(obj)
    assert len(snapshots) == 5
    assert snapshots[0]["metadata"]["revision"] == obj["status"]["lastAppliedRevision"]
    assert [s["lastReconciledStatus"] for s in snapshots].count("ReconciliationFailed") == 1
