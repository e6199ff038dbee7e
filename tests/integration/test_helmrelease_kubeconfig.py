"""HelmRelease ``spec.kubeConfig``: releasing into the cluster a kubeconfig Secret names.

The "remote" cluster is the test control plane reached through a kubeconfig that
authenticates as a service account's token, so what the release does is visibly done
with those credentials and no others. What a user sees: the release installed (and its
Helm storage written) as that identity, a kubeconfig whose identity may not do it
failing with the API server's refusal and nothing installed, an unusable Secret named in
``RESTClientError``, and deleting the HelmRelease uninstalling the remote release.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxd.api import HELM_RELEASE
from fluxd.kube import client
from fluxd.kube.resources import CONFIGMAPS, Resource
from tests.chartservers import ChartRepository
from tests.integration.conftest import Fluxd, ready_reason
from tests.integration.test_helmrelease import (
    helm_cli,
    message,
    publish_and_point,
    release_spec,
    settings,
)
from tests.integration.test_kustomization_access import (
    forbidden_for,
    kubeconfig_for_token,
    service_account,
)

pytestmark = pytest.mark.integration

ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")


async def grant_release_rights(fluxd: Fluxd, account: str) -> None:
    """What Helm needs in one namespace: its objects (ConfigMaps) and its storage (Secrets)."""
    ns = fluxd.namespace
    await client.create(
        fluxd.api,
        ROLES,
        {
            "metadata": {"name": account, "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["*"]}],
        },
    )
    await client.create(
        fluxd.api,
        ROLE_BINDINGS,
        {
            "metadata": {"name": account, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns}],
        },
    )


@pytest.fixture
def admin(kubeconfig: Path) -> str:
    """The test cluster's admin kubeconfig (self-contained: embedded certificates)."""
    return kubeconfig.read_text()


async def test_a_release_goes_out_with_the_kubeconfig_secrets_credentials(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path, admin: str
) -> None:
    ns = fluxd.namespace
    await service_account(fluxd.api, ns, "remote-agent")
    await grant_release_rights(fluxd, "remote-agent")
    await service_account(fluxd.api, ns, "nobody")
    await fluxd.secret(
        "remote", {"value": await kubeconfig_for_token(admin, fluxd.api, ns, "remote-agent")}
    )
    await fluxd.secret(
        "powerless", {"value": await kubeconfig_for_token(admin, fluxd.api, ns, "nobody")}
    )
    await publish_and_point(fluxd, chart_repo, "1.0.0")
    await fluxd.create(
        HELM_RELEASE, "remote", release_spec(kubeConfig={"secretRef": {"name": "remote"}})
    )
    await fluxd.create(
        HELM_RELEASE, "denied", release_spec(kubeConfig={"secretRef": {"name": "powerless"}})
    )
    await fluxd.create(
        HELM_RELEASE, "absent", release_spec(kubeConfig={"secretRef": {"name": "nowhere"}})
    )

    released = await fluxd.wait_ready(HELM_RELEASE, "remote")
    assert ready_reason(released) == ("True", "InstallSucceeded")
    made = await settings(fluxd, "remote-settings")
    assert made is not None
    assert made["data"]["greeting"] == "hello"
    listed = helm_cli(kubeconfig, "list", "-n", ns)
    assert [(r["name"], r["status"]) for r in listed] == [("remote", "deployed")]
    assert released["status"]["inventory"]["entries"] == [
        {"id": f"{ns}_remote-settings__ConfigMap", "v": "v1"}
    ]

    denied = await fluxd.wait_not_ready(HELM_RELEASE, "denied", "GetLastReleaseFailed")
    assert forbidden_for(ns, "nobody") in message(denied), "the kubeconfig's identity is used"
    assert await settings(fluxd, "denied-settings") is None

    absent = await fluxd.wait_not_ready(HELM_RELEASE, "absent", "RESTClientError")
    assert f"kubeconfig secret '{ns}/nowhere' not found" in message(absent)

    await fluxd.delete(HELM_RELEASE, "remote")
    await fluxd.wait_gone(HELM_RELEASE, "remote")
    assert await settings(fluxd, "remote-settings") is None, "uninstalled from the remote"
    assert helm_cli(kubeconfig, "list", "-n", ns) == []
    # Without its kubeconfig Secret the remote cannot be reached: deletion is not blocked.
    await fluxd.delete(HELM_RELEASE, "absent")
    await fluxd.wait_gone(HELM_RELEASE, "absent")
    assert await client.get(fluxd.api, CONFIGMAPS, ns, "absent-settings", missing_ok=True) is None
    # The powerless identity may not even read Helm's storage to uninstall: suspended, the
    # HelmRelease can go and leave the (never installed) release alone.
    await fluxd.patch(HELM_RELEASE, "denied", {"spec": {"suspend": True}})
