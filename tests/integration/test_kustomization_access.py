"""Kustomizations acting as someone: impersonated service accounts, remote clusters, and
what deleting a Kustomization does to the objects it applied.

The identities are real: ServiceAccounts, Roles and RoleBindings on the real API server,
whose RBAC decides. The "remote" cluster is the test cluster itself, reached through a
kubeconfig in a Secret whose credentials (a service account token) can do less than
fluxd, so it shows which identity was used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client import ApiClient

from fluxd.api import KUSTOMIZATION
from fluxd.kube import client
from fluxd.kube.resources import Resource
from fluxd.runtime import conditions
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd, namespaced_fluxd
from tests.integration.kustomizations import (
    CONFIGMAPS,
    applied,
    configmap,
    kustomization,
    live,
    push_and_refresh,
    setup_source,
)

pytestmark = pytest.mark.integration

SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts")
SECRETS = Resource("", "v1", "secrets")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")
ALL_VERBS = ["get", "list", "watch", "create", "patch", "update", "delete"]


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def admin_kubeconfig(kubeconfig: Path) -> str:
    """The test cluster's admin kubeconfig (self-contained: embedded certificates)."""
    return kubeconfig.read_text()


async def service_account(
    api: ApiClient,
    namespace: str,
    name: str,
    configmap_verbs: list[str] | None = None,
    *,
    bind_group: bool = False,
) -> None:
    """A ServiceAccount, and with ``configmap_verbs`` a Role granting just those verbs on
    ConfigMaps of ``namespace``, bound to it (``bind_group``: to the group of every
    service account of ``namespace`` instead)."""
    await client.create(api, SERVICE_ACCOUNTS, {"metadata": {"name": name, "namespace": namespace}})
    if configmap_verbs is None:
        return
    await client.create(
        api,
        ROLES,
        {
            "metadata": {"name": name, "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": configmap_verbs}],
        },
    )
    await client.create(
        api,
        ROLE_BINDINGS,
        {
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [
                {
                    "kind": "Group",
                    "apiGroup": "rbac.authorization.k8s.io",
                    "name": f"system:serviceaccounts:{namespace}",
                }
                if bind_group
                else {"kind": "ServiceAccount", "name": name, "namespace": namespace}
            ],
        },
    )


def secret_manifest(namespace: str, name: str) -> str:
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
        "stringData:\n  token: s3cr3t\n"
    )


def ready_message(obj: dict[str, Any]) -> str:
    ready = conditions.get(obj["status"], conditions.READY)
    assert ready is not None
    return str(ready["message"])


def forbidden_for(namespace: str, account: str) -> str:
    """The API server's words for a request an impersonated account may not make."""
    return f'is forbidden: User "system:serviceaccount:{namespace}:{account}" cannot'


async def kubeconfig_for_token(admin_config: str, api: ApiClient, namespace: str, sa: str) -> str:
    """A self-contained kubeconfig for the test cluster that authenticates as service
    account ``sa`` (a bound token from the TokenRequest API), not as the admin."""
    answer = await client.request(
        api,
        "POST",
        SERVICE_ACCOUNTS.path(namespace, sa, "token"),
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    admin = yaml.safe_load(admin_config)
    cluster = admin["clusters"][0]["cluster"]
    return str(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "remote",
                "contexts": [{"name": "remote", "context": {"cluster": "remote", "user": sa}}],
                "clusters": [
                    {
                        "name": "remote",
                        "cluster": {
                            "server": cluster["server"],
                            "certificate-authority-data": cluster["certificate-authority-data"],
                        },
                    }
                ],
                "users": [{"name": sa, "user": {"token": answer["status"]["token"]}}],
            }
        )
    )


# -- serviceAccountName ------------------------------------------------------------------------


async def test_service_account_applies_what_its_role_allows_and_nothing_beyond(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    # Bound to the namespace's service-account group: only fluxd's Impersonate-User is
    # sent, and the API server adds the account's groups itself.
    await service_account(fluxd.api, ns, "deployer", ALL_VERBS, bind_group=True)
    sha = git_remote.commit({"deploy/a.yaml": configmap(ns, "a")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION, "apps", kustomization("deploy", serviceAccountName="deployer")
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    landed = await live(fluxd, CONFIGMAPS, "a")
    assert landed is not None
    assert landed["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "apps"

    # The same push brings a change the account may make and a Secret it may not.
    await push_and_refresh(
        fluxd,
        git_remote,
        {"deploy/a.yaml": configmap(ns, "a", "2"), "deploy/token.yaml": secret_manifest(ns, "t")},
    )
    obj = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "ReconciliationFailed")
    message = ready_message(obj)
    assert f"Secret/{ns}/t" in message
    assert f'secrets "t" {forbidden_for(ns, "deployer")}' in message
    assert await live(fluxd, SECRETS, "t") is None
    unchanged = await live(fluxd, CONFIGMAPS, "a")
    assert unchanged is not None
    assert unchanged["data"] == {"value": "1"}, "a refused stage was partly applied"
    assert obj["status"]["lastAppliedRevision"].endswith(sha)


async def test_service_account_without_rbac_creates_nothing(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    await service_account(fluxd.api, ns, "nobody")
    git_remote.commit({"deploy/a.yaml": configmap(ns, "a"), "deploy/b.yaml": configmap(ns, "b")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy", serviceAccountName="nobody"))
    obj = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "ReconciliationFailed")
    message = ready_message(obj)
    assert f"ConfigMap/{ns}/" in message
    assert forbidden_for(ns, "nobody") in message
    assert await live(fluxd, CONFIGMAPS, "a") is None
    assert await live(fluxd, CONFIGMAPS, "b") is None
    await fluxd.wait_event(
        "apps",
        lambda e: (
            e["reason"] == "ReconciliationFailed" and forbidden_for(ns, "nobody") in e["message"]
        ),
        "a Warning quoting the forbidden apply",
    )


async def test_prune_the_account_may_not_do_fails_with_prune_failed(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    await service_account(
        fluxd.api, ns, "no-delete", ["get", "list", "watch", "create", "patch", "update"]
    )
    sha = git_remote.commit(
        {"deploy/a.yaml": configmap(ns, "a"), "deploy/b.yaml": configmap(ns, "b")}
    )
    await setup_source(fluxd, git_remote, git_http)
    # Orphan: the account could not delete what it applied when the test is over.
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization("deploy", serviceAccountName="no-delete", deletionPolicy="Orphan"),
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

    git_remote.git("rm", "-q", "deploy/b.yaml")
    await push_and_refresh(fluxd, git_remote, {"deploy/a.yaml": configmap(ns, "a", "2")})
    # As in Flux, the inventory already lists only what this revision applied, so the
    # retry that follows at once does not try again: the Warning Event is what stays.
    refused = f'configmaps "b" {forbidden_for(ns, "no-delete")} delete'
    event = await fluxd.wait_event(
        "apps",
        lambda e: e["reason"] == "PruneFailed" and refused in e["message"],
        "a PruneFailed Warning quoting the forbidden delete",
    )
    assert event["type"] == "Warning"
    assert f"ConfigMap/{ns}/b delete failed" in event["message"]
    assert await live(fluxd, CONFIGMAPS, "b") is not None
    kept = await live(fluxd, CONFIGMAPS, "a")
    assert kept is not None
    assert kept["data"] == {"value": "2"}, "the apply before the prune was not made"


async def test_default_service_account_locks_down_kustomizations_without_one(
    api_client: ApiClient, namespace: str, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = namespace
    await service_account(api_client, ns, "tenant")
    await service_account(api_client, ns, "deployer", ALL_VERBS)
    sha = git_remote.commit(
        {"locked/a.yaml": configmap(ns, "locked"), "allowed/a.yaml": configmap(ns, "allowed")}
    )
    async with namespaced_fluxd(api_client, ns, default_service_account="tenant") as fluxd:
        await setup_source(fluxd, git_remote, git_http)
        await fluxd.create(KUSTOMIZATION, "locked", kustomization("locked"))
        await fluxd.create(
            KUSTOMIZATION, "allowed", kustomization("allowed", serviceAccountName="deployer")
        )
        obj = await fluxd.wait_not_ready(KUSTOMIZATION, "locked", "ReconciliationFailed")
        assert forbidden_for(ns, "tenant") in ready_message(obj)
        assert await live(fluxd, CONFIGMAPS, "locked") is None
        await fluxd.wait_for(KUSTOMIZATION, "allowed", lambda o: applied(o, sha), "applied")
        assert await live(fluxd, CONFIGMAPS, "allowed") is not None


# -- kubeConfig --------------------------------------------------------------------------------


async def test_kubeconfig_secret_applies_with_its_credentials(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, admin_kubeconfig: str
) -> None:
    ns = fluxd.namespace
    await service_account(fluxd.api, ns, "remote-agent", ALL_VERBS)
    await service_account(fluxd.api, ns, "nobody")
    token_config = await kubeconfig_for_token(admin_kubeconfig, fluxd.api, ns, "remote-agent")
    await fluxd.secret("remote", {"value.yaml": token_config})
    await fluxd.secret("admin", {"config": admin_kubeconfig})
    sha = git_remote.commit(
        {
            "deploy/a.yaml": configmap(ns, "remote-a"),
            "denied/token.yaml": secret_manifest(ns, "t"),
            "as-sa/a.yaml": configmap(ns, "as-sa"),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION,
        "remote",
        kustomization("deploy", kubeConfig={"secretRef": {"name": "remote"}}),
    )
    await fluxd.create(
        KUSTOMIZATION,
        "denied",
        kustomization("denied", kubeConfig={"secretRef": {"name": "remote"}}),
    )
    # kubeConfig and serviceAccountName: the account is impersonated on that cluster.
    await fluxd.create(
        KUSTOMIZATION,
        "as-sa",
        kustomization(
            "as-sa",
            kubeConfig={"secretRef": {"name": "admin", "key": "config"}},
            serviceAccountName="nobody",
        ),
    )
    await fluxd.wait_for(KUSTOMIZATION, "remote", lambda o: applied(o, sha), "applied")
    assert await live(fluxd, CONFIGMAPS, "remote-a") is not None
    denied = await fluxd.wait_not_ready(KUSTOMIZATION, "denied", "ReconciliationFailed")
    assert forbidden_for(ns, "remote-agent") in ready_message(denied)
    assert await live(fluxd, SECRETS, "t") is None
    as_sa = await fluxd.wait_not_ready(KUSTOMIZATION, "as-sa", "ReconciliationFailed")
    assert forbidden_for(ns, "nobody") in ready_message(as_sa)
    assert await live(fluxd, CONFIGMAPS, "as-sa") is None


async def test_unusable_kubeconfig_secret_applies_nothing_and_names_the_secret(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    await fluxd.secret("wrong-key", {"kubeconfig": "apiVersion: v1\nkind: Config\n"})
    await fluxd.secret("garbage", {"value": "clusters: [oops\n"})
    git_remote.commit({"deploy/a.yaml": configmap(ns, "a")})
    await setup_source(fluxd, git_remote, git_http)
    expected = {
        "absent": f"kubeconfig secret '{ns}/absent' not found",
        "wrong-key": f"kubeconfig secret '{ns}/wrong-key' does not contain a 'value'",
        "garbage": f"kubeconfig in secret '{ns}/garbage' (key 'value') is not valid YAML",
    }
    for secret in expected:
        await fluxd.create(
            KUSTOMIZATION,
            secret,
            kustomization("deploy", kubeConfig={"secretRef": {"name": secret}}),
        )
    for secret, words in expected.items():
        obj = await fluxd.wait_not_ready(KUSTOMIZATION, secret, "ReconciliationFailed")
        assert words in ready_message(obj)
        assert "lastAppliedRevision" not in obj["status"]
    assert await live(fluxd, CONFIGMAPS, "a") is None


# -- deletionPolicy --------------------------------------------------------------------------


async def apply_and_wait(
    fluxd: Fluxd, remote: GitRemote, server: GitHTTPServer, specs: dict[str, dict[str, object]]
) -> None:
    """One ConfigMap per Kustomization (named after it, in ``<name>/``), all applied."""
    sha = remote.commit({f"{name}/cm.yaml": configmap(fluxd.namespace, name) for name in specs})
    await setup_source(fluxd, remote, server)
    for name, fields in specs.items():
        await fluxd.create(KUSTOMIZATION, name, kustomization(name, **fields))
    for name in specs:
        await fluxd.wait_for(KUSTOMIZATION, name, lambda o: applied(o, sha), f"{name} applied")


async def test_mirror_prune_deletes_as_the_service_account_only_with_prune(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    await service_account(
        fluxd.api, ns, "no-delete", ["get", "list", "watch", "create", "patch", "update"]
    )
    await apply_and_wait(
        fluxd,
        git_remote,
        git_http,
        {"pruned": {"serviceAccountName": "no-delete"}, "kept": {"prune": False}},
    )
    await fluxd.delete(KUSTOMIZATION, "kept")
    await fluxd.wait_gone(KUSTOMIZATION, "kept")
    assert await live(fluxd, CONFIGMAPS, "kept") is not None, "prune: false deleted its objects"

    await fluxd.delete(KUSTOMIZATION, "pruned")
    await fluxd.wait_event(
        "pruned",
        lambda e: e["reason"] == "PruneFailed" and forbidden_for(ns, "no-delete") in e["message"],
        "the deletion refused to the service account",
    )
    assert await live(fluxd, CONFIGMAPS, "pruned") is not None
    assert (await fluxd.get(KUSTOMIZATION, "pruned"))["metadata"]["deletionTimestamp"]

    await client.patch(
        fluxd.api,
        ROLES,
        ns,
        "no-delete",
        {"rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ALL_VERBS}]},
    )
    await fluxd.wait_gone(KUSTOMIZATION, "pruned")
    assert await live(fluxd, CONFIGMAPS, "pruned") is None


async def test_delete_policy_deletes_without_prune_unless_suspended(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    await apply_and_wait(
        fluxd,
        git_remote,
        git_http,
        {
            "deleted": {"prune": False, "deletionPolicy": "Delete"},
            "suspended": {"prune": True, "deletionPolicy": "Delete"},
        },
    )
    await fluxd.patch(KUSTOMIZATION, "suspended", {"spec": {"suspend": True}})
    await fluxd.delete(KUSTOMIZATION, "deleted")
    await fluxd.delete(KUSTOMIZATION, "suspended")
    await fluxd.wait_gone(KUSTOMIZATION, "deleted")
    await fluxd.wait_gone(KUSTOMIZATION, "suspended")
    assert await live(fluxd, CONFIGMAPS, "deleted") is None
    assert await live(fluxd, CONFIGMAPS, "suspended") is not None, "a suspended one deleted"


async def test_wait_for_termination_holds_the_kustomization_until_objects_are_gone(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    held = configmap(ns, "held").replace(
        "metadata:\n", "metadata:\n  finalizers:\n  - fluxd.test/hold\n"
    )
    sha = git_remote.commit({"deploy/held.yaml": held, "deploy/plain.yaml": configmap(ns, "plain")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization("deploy", prune=False, deletionPolicy="WaitForTermination"),
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    try:
        await fluxd.delete(KUSTOMIZATION, "apps")
        await fluxd.wait_event(
            "apps", lambda e: f"ConfigMap/{ns}/held deleted" in e["message"], "the deletion"
        )
        terminating = await live(fluxd, CONFIGMAPS, "held")
        assert terminating is not None
        assert terminating["metadata"]["deletionTimestamp"]
        assert await live(fluxd, CONFIGMAPS, "plain") is None
        try:
            await fluxd.get(KUSTOMIZATION, "apps")
        except client.ApiError as error:
            raise AssertionError("the Kustomization went before its objects did") from error
    finally:
        await client.patch(fluxd.api, CONFIGMAPS, ns, "held", {"metadata": {"finalizers": None}})
    await fluxd.wait_gone(KUSTOMIZATION, "apps")
    assert await live(fluxd, CONFIGMAPS, "held") is None


async def test_orphan_and_a_deleted_service_account_leave_objects_in_place(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    await service_account(fluxd.api, ns, "gone", ALL_VERBS)
    await apply_and_wait(
        fluxd,
        git_remote,
        git_http,
        {
            "orphan": {"prune": True, "deletionPolicy": "Orphan"},
            "tenant": {"prune": True, "serviceAccountName": "gone"},
        },
    )
    await fluxd.delete(KUSTOMIZATION, "orphan")
    await fluxd.wait_gone(KUSTOMIZATION, "orphan")
    assert await live(fluxd, CONFIGMAPS, "orphan") is not None

    # Like a tenant namespace being torn down: its account goes before its Kustomization.
    await client.delete(fluxd.api, SERVICE_ACCOUNTS, ns, "gone")
    await fluxd.delete(KUSTOMIZATION, "tenant")
    await fluxd.wait_gone(KUSTOMIZATION, "tenant")
    assert await live(fluxd, CONFIGMAPS, "tenant") is not None
    await fluxd.wait_event(
        "tenant",
        lambda e: (
            f"service account '{ns}/gone'" in e["message"]
            and f"ConfigMap/{ns}/tenant" in e["message"]
        ),
        "a Warning that the objects were left in place",
    )
