"""Flux's lockdown flags for tenants' kubeconfigs and remote bases, end to end.

A tenant's Kustomization names a ``kubeConfig`` Secret for the test cluster that turns
off TLS verification (``insecure-skip-tls-verify``), or whose user runs an ``exec``
credential plugin. fluxd refuses both, naming the Secret and the flag that would allow
it, and applies nothing; a daemon run with ``--insecure-kubeconfig-tls`` and
``--insecure-kubeconfig-exec`` applies through them. A kustomization with a remote base
fails its build naming the base whether or not ``--no-remote-bases`` is given: fluxd
never fetches one.
"""

from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client import ApiClient

from fluxd.api import KUSTOMIZATION
from fluxd.runtime import conditions
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd, namespaced_fluxd
from tests.integration.kustomizations import (
    CONFIGMAPS,
    applied,
    configmap,
    kustomization,
    live,
    setup_source,
)

pytestmark = pytest.mark.integration

REMOTE_BASE = "https://github.com/example/fleet//base?ref=main"


@pytest.fixture
def admin(kubeconfig: Path) -> dict[str, Any]:
    """The test cluster's admin kubeconfig: embedded certificates."""
    document: dict[str, Any] = yaml.safe_load(kubeconfig.read_text())
    return document


def insecure_tls_kubeconfig(admin: dict[str, Any]) -> str:
    """The admin's credentials, the server's certificate left unverified."""
    cluster = {
        "server": admin["clusters"][0]["cluster"]["server"],
        "insecure-skip-tls-verify": True,
    }
    return _kubeconfig(cluster, admin["users"][0]["user"])


def exec_kubeconfig(admin: dict[str, Any]) -> str:
    """A user whose credentials an exec plugin prints (the admin's client certificate)."""
    user = admin["users"][0]["user"]
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": base64.b64decode(user["client-certificate-data"]).decode(),
            "clientKeyData": base64.b64decode(user["client-key-data"]).decode(),
        },
    }
    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "/bin/sh",
        "args": ["-c", f"printf '%s' {shlex.quote(json.dumps(credential))}"],
        "interactiveMode": "Never",
    }
    return _kubeconfig(admin["clusters"][0]["cluster"], {"exec": plugin})


def _kubeconfig(cluster: dict[str, Any], user: dict[str, Any]) -> str:
    return str(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "tenant",
                "contexts": [{"name": "tenant", "context": {"cluster": "c", "user": "u"}}],
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
            }
        )
    )


async def tenant_kustomizations(
    fluxd: Fluxd, remote: GitRemote, server: GitHTTPServer, admin: dict[str, Any]
) -> str:
    """Kustomizations ``insecure-tls``, ``exec`` (each applying ConfigMap of its name
    through a kubeconfig Secret of its name) and ``remote-base``; the commit's sha."""
    ns = fluxd.namespace
    await fluxd.secret("insecure-tls", {"value": insecure_tls_kubeconfig(admin)})
    await fluxd.secret("exec", {"value": exec_kubeconfig(admin)})
    sha = remote.commit(
        {
            "insecure-tls/cm.yaml": configmap(ns, "insecure-tls"),
            "exec/cm.yaml": configmap(ns, "exec"),
            "remote-base/kustomization.yaml": f"resources:\n- {REMOTE_BASE}\n",
        }
    )
    await setup_source(fluxd, remote, server)
    for name in ("insecure-tls", "exec"):
        await fluxd.create(
            KUSTOMIZATION, name, kustomization(name, kubeConfig={"secretRef": {"name": name}})
        )
    await fluxd.create(KUSTOMIZATION, "remote-base", kustomization("remote-base"))
    return sha


def ready_message(obj: dict[str, Any]) -> str:
    ready = conditions.get(obj["status"], conditions.READY)
    assert ready is not None
    return str(ready["message"])


async def assert_remote_base_refused(fluxd: Fluxd) -> None:
    obj = await fluxd.wait_not_ready(KUSTOMIZATION, "remote-base", "BuildFailed")
    message = ready_message(obj)
    assert f"remote resources entry '{REMOTE_BASE}' is not supported" in message
    assert "remote-base/kustomization.yaml" in message


async def test_tenant_kubeconfig_with_insecure_tls_or_exec_is_refused_by_default(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, admin: dict[str, Any]
) -> None:
    ns = fluxd.namespace
    await tenant_kustomizations(fluxd, git_remote, git_http, admin)
    refusals = {
        "insecure-tls": (
            "cluster 'c' turns off TLS verification (insecure-skip-tls-verify); "
            "fluxd allows it only when run with --insecure-kubeconfig-tls"
        ),
        "exec": (
            "user 'u' runs a command (exec); "
            "fluxd allows it only when run with --insecure-kubeconfig-exec"
        ),
    }
    for name, words in refusals.items():
        obj = await fluxd.wait_not_ready(KUSTOMIZATION, name, "ReconciliationFailed")
        message = ready_message(obj)
        assert f"kubeconfig in secret '{ns}/{name}' (key 'value')" in message
        assert words in message
        assert await live(fluxd, CONFIGMAPS, name) is None
    await assert_remote_base_refused(fluxd)


async def test_lockdown_flags_let_insecure_tls_and_exec_through(
    api_client: ApiClient,
    namespace: str,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    admin: dict[str, Any],
) -> None:
    async with namespaced_fluxd(
        api_client,
        namespace,
        insecure_kubeconfig_tls=True,
        insecure_kubeconfig_exec=True,
        no_remote_bases=True,
    ) as fluxd:
        sha = await tenant_kustomizations(fluxd, git_remote, git_http, admin)
        for name in ("insecure-tls", "exec"):
            await fluxd.wait_for(KUSTOMIZATION, name, lambda o: applied(o, sha), f"{name} applied")
            assert await live(fluxd, CONFIGMAPS, name) is not None
        await assert_remote_base_refused(fluxd)
