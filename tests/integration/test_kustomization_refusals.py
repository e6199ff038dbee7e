"""Kustomization fields fluxd cannot serve, end to end on the real API server.

Cloud workload identity (a remote cluster named by ``spec.kubeConfig.configMapRef``, KMS
reached as ``spec.decryption.serviceAccountName``) needs a cloud fluxd does not talk to.
A user must see that at once: Ready=False and Stalled=True with a message naming the field,
and nothing of the path applied. A source of a kind with no artifact says it is waiting.
"""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.api import KUSTOMIZATION
from fluxd.runtime import conditions
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd
from tests.integration.kustomizations import (
    CONFIGMAPS,
    configmap,
    kustomization,
    live,
    setup_source,
)

pytestmark = pytest.mark.integration


def stalled_naming(field: str) -> Any:
    def check(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        ready = conditions.get(status, "Ready")
        stalled = conditions.get(status, "Stalled")
        return (
            ready is not None
            and ready["status"] == "False"
            and field in ready["message"]
            and stalled is not None
            and stalled["status"] == "True"
        )

    return check


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"kubeConfig": {"configMapRef": {"name": "cluster"}}}, "spec.kubeConfig.configMapRef"),
        (
            {"decryption": {"provider": "sops", "serviceAccountName": "kms"}},
            "spec.decryption.serviceAccountName",
        ),
    ],
)
async def test_workload_identity_fields_stall_and_apply_nothing(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    fields: dict[str, Any],
    named: str,
) -> None:
    git_remote.commit({"deploy/a.yaml": configmap(fluxd.namespace, "a")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy", **fields))
    await fluxd.wait_for(KUSTOMIZATION, "apps", stalled_naming(named), f"stalled on {named}")
    assert await live(fluxd, CONFIGMAPS, "a") is None


async def test_source_kind_without_artifact_says_it_waits_for_the_source(fluxd: Fluxd) -> None:
    spec = {**kustomization("deploy"), "sourceRef": {"kind": "OCIRepository", "name": "oci"}}
    await fluxd.create(KUSTOMIZATION, "apps", spec)

    def waiting(obj: dict[str, Any]) -> bool:
        ready = conditions.get(obj.get("status") or {}, "Ready")
        return (
            ready is not None
            and ready["status"] == "False"
            and ready["reason"] == "ArtifactFailed"
            and "OCIRepository" in ready["message"]
            and "waiting for the source" in ready["message"]
        )

    await fluxd.wait_for(KUSTOMIZATION, "apps", waiting, "waiting for the OCIRepository")
