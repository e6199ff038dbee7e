"""Secret values never leave their Secrets: not in the daemon's logs, not in Events, not
in any object's status.

One ``fluxd run`` process (the command an operator runs, at debug level, its output kept
whole) reconciles objects that each read a Secret holding a unique marker: a git
basic-auth password that is wrong (so the failure is logged, evented and written to
status), a registry password that is wrong, a generic-hmac Provider key and a Provider
address with a password in it (both failing to deliver), a ``postBuild.substituteFrom``
value (applied once, and once making the object invalid YAML, so an error quotes the
text around it) and a HelmRelease ``valuesFrom`` value. Then every log line, every
Event of the namespace and the status of every object in it are searched for the
markers.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.api import (
    ALERT,
    GIT_REPOSITORY,
    HELM_RELEASE,
    HELM_REPOSITORY,
    KUSTOMIZATION,
    OCI_REPOSITORY,
    PROVIDER,
)
from fluxd.daemon.manager import Daemon
from fluxd.daemon.options import Options
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import CONFIGMAPS
from tests.chartservers import ChartRepository, package_chart
from tests.gitservers import HTTP_USERNAME, GitHTTPServer, GitRemote
from tests.integration.conftest import WAIT_TIMEOUT, Fluxd, _delete_flux_objects, ready_reason
from tests.ociregistry import OCIRegistry, docker_config

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
MARKERS = {
    what: f"{what}-{uuid.uuid4().hex}"
    for what in ("git", "oci", "provider", "address", "substitute", "broken", "helm")
}
TEMPLATE = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n"
    "data:\n  greeting: {{ .Values.greeting | quote }}\n"
)


@asynccontextmanager
async def daemon_process(
    kubeconfig: Path, api: ApiClient, namespace: str, output: Path
) -> AsyncIterator[Fluxd]:
    """``fluxd run`` for ``namespace`` with its stdout and stderr in ``output``; the Flux
    objects are deleted while it still runs (its finalizers), then it gets SIGTERM."""
    with output.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fluxd",
            "run",
            f"--kubeconfig={kubeconfig}",
            f"--watch-namespace={namespace}",
            "--metrics-addr=127.0.0.1:0",
            "--artifact-addr=127.0.0.1:0",
            "--log-level=debug",
            stdout=sink,
            stderr=sink,
            cwd=REPO_ROOT,
        )
    # The helpers drive the cluster; this Daemon is never run, it only names the kinds.
    view = Fluxd(Daemon(api, Options(watch_namespace=namespace)), api, namespace)
    try:
        yield view
        await _delete_flux_objects(view)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(WAIT_TIMEOUT):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def everything_said(api: ApiClient, fluxd: Fluxd) -> dict[str, str]:
    """Every Event of the namespace, and the status of every object of each Flux kind."""
    said: dict[str, str] = {}
    events = await client.request(api, "GET", f"/api/v1/namespaces/{fluxd.namespace}/events")
    for event in events.get("items", []):
        said[f"Event {event['metadata']['name']}"] = json.dumps(event)
    for reconciler in fluxd.daemon.reconcilers:
        kind = reconciler.kind
        listed = await client.list_page(api, resource_of(kind), fluxd.namespace)
        for item in listed.get("items", []):
            said[f"{kind.kind} {item['metadata']['name']}"] = json.dumps(item.get("status"))
    return said


def failed(obj: dict[str, Any]) -> bool:
    reason = ready_reason(obj)
    return reason is not None and reason[0] == "False"


async def test_no_secret_value_reaches_logs_events_or_status(
    kubeconfig: Path,
    api_client: ApiClient,
    namespace: str,
    tmp_path: Path,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    oci_registry_tls: OCIRegistry,
    chart_repo: ChartRepository,
) -> None:
    ns = namespace
    output = tmp_path / "fluxd.log"
    registry = oci_registry_tls
    assert registry.ca_pem
    assert registry.username
    git_remote.commit(
        {
            "deploy/a.yaml": (
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: substituted\n"
                f"  namespace: {ns}\ndata:\n  value: ${{VALUE}}\n"
            ),
            "broken/a.yaml": (
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n"
                f"  namespace: {ns}\ndata:\n  value: ${{BROKEN}}\n"
            ),
        }
    )
    chart_repo.publish(
        package_chart("demo", "1.0.0", {"templates/cm.yaml": TEMPLATE, "values.yaml": ""}),
        "demo",
        "1.0.0",
    )
    async with daemon_process(kubeconfig, api_client, ns, output) as fluxd:
        await fluxd.secret("git-auth", {"username": HTTP_USERNAME, "password": MARKERS["git"]})
        await fluxd.secret(
            "registry",
            {".dockerconfigjson": docker_config(registry.host, registry.username, MARKERS["oci"])},
        )
        await fluxd.secret("registry-ca", {"ca.crt": registry.ca_pem})
        await fluxd.secret("hmac", {"token": MARKERS["provider"]})
        await fluxd.secret(
            "address", {"address": f"http://user:{MARKERS['address']}@127.0.0.1:9/hook"}
        )
        await fluxd.secret(
            "vars", {"VALUE": MARKERS["substitute"], "BROKEN": f"{MARKERS['broken']}: ["}
        )
        await fluxd.secret(
            "values", {"values.yaml": f"greeting: hello\npassword: {MARKERS['helm']}\n"}
        )

        await fluxd.create(
            PROVIDER,
            "hook",
            {
                "type": "generic-hmac",
                "address": "http://127.0.0.1:9/never-answers",
                "timeout": "1s",
                "secretRef": {"name": "hmac"},
            },
        )
        # An address with credentials in it, from the Secret, whose deliveries fail too.
        await fluxd.create(
            PROVIDER,
            "by-address",
            {"type": "generic", "timeout": "1s", "secretRef": {"name": "address"}},
        )
        for provider in ("hook", "by-address"):
            await fluxd.create(
                ALERT,
                provider,
                {
                    "providerRef": {"name": provider},
                    "eventSources": [
                        {"kind": kind, "name": "*"}
                        for kind in (
                            "GitRepository",
                            "OCIRepository",
                            "Kustomization",
                            "HelmRelease",
                        )
                    ],
                },
            )
        await fluxd.create(
            GIT_REPOSITORY,
            "private",
            {
                "interval": "1h",
                "url": git_http.url(git_remote, "basic"),
                "secretRef": {"name": "git-auth"},
            },
        )
        await fluxd.create(
            OCI_REPOSITORY,
            "private",
            {
                "interval": "1h",
                "url": f"oci://{registry.host}/secret-test/app",
                "ref": {"tag": "latest"},
                "secretRef": {"name": "registry"},
                "certSecretRef": {"name": "registry-ca"},
            },
        )
        await fluxd.create(
            GIT_REPOSITORY, "source", {"interval": "1h", "url": git_http.url(git_remote)}
        )
        for name in ("deploy", "broken"):
            await fluxd.create(
                KUSTOMIZATION,
                name,
                {
                    "interval": "1h",
                    "sourceRef": {"kind": "GitRepository", "name": "source"},
                    "path": name,
                    "prune": True,
                    "postBuild": {"substituteFrom": [{"kind": "Secret", "name": "vars"}]},
                },
            )
        await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
        await fluxd.create(
            HELM_RELEASE,
            "web",
            {
                "interval": "1h",
                "chart": {
                    "spec": {
                        "chart": "demo",
                        "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                    }
                },
                "valuesFrom": [{"kind": "Secret", "name": "values"}],
            },
        )

        await fluxd.wait_for(GIT_REPOSITORY, "private", failed, "the git auth failure")
        await fluxd.wait_for(OCI_REPOSITORY, "private", failed, "the registry auth failure")
        await fluxd.wait_not_ready(KUSTOMIZATION, "broken", "BuildFailed")
        await fluxd.wait_ready(KUSTOMIZATION, "deploy")
        await fluxd.wait_ready(HELM_RELEASE, "web")
        applied = await client.get(api_client, CONFIGMAPS, ns, "substituted")
        assert applied["data"]["value"] == MARKERS["substitute"], "the markers were read"
        for alert in ("hook", "by-address"):
            await fluxd.wait_event(
                alert, lambda e: e["reason"] == "NotificationDispatchFailed", "a failed delivery"
            )
        said = await everything_said(api_client, fluxd)

    logged = output.read_text()
    assert '"msg"' in logged, "the daemon's log lines were not captured"
    said["the daemon's output"] = logged
    leaks = [
        f"{marker} in {where}"
        for where, text in said.items()
        for marker in MARKERS.values()
        if marker in text
    ]
    assert not leaks, leaks
