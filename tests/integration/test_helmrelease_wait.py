"""HelmRelease waits done by fluxd instead of Helm's waiter, end to end.

What a user sees: a release whose Deployment never becomes available fails its install or
upgrade when the timeout passes, naming the Deployment; ``helm history`` shows that
revision ``failed`` with Helm's own description (and, after a failed upgrade, the
previous revision still ``deployed``), exactly as Helm's waiter leaves it, so remediation
rolls back to it; a release that becomes available is Ready; and a chart with a
``post-install`` hook still has Helm wait, so the hook runs only once the objects are
ready (here: never).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxd.api import HELM_RELEASE, HELM_REPOSITORY
from fluxd.kube import client
from fluxd.kube.resources import CONFIGMAPS
from tests.chartservers import ChartRepository, package_chart
from tests.integration.conftest import Fluxd, ready_reason
from tests.integration.test_helmrelease import condition, helm_cli, message, release_spec

pytestmark = pytest.mark.integration

#: A Deployment that becomes available, unless ``placed`` pins it to a node that does not
#: exist: its pod then stays Pending and the Deployment never becomes available.
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      {{- if .Values.placed }}
      nodeSelector: {kubernetes.io/hostname: no-such-node}
      {{- end }}
      containers:
        - name: web
          image: registry.example/web:1.0
"""
#: A post-install hook that leaves a ConfigMap behind when Helm runs it.
POST_INSTALL_HOOK = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-hooked
  annotations:
    "helm.sh/hook": post-install
data:
  ran: "yes"
"""


def publish(repo: ChartRepository, version: str, **extra: str) -> None:
    files = {"templates/web.yaml": DEPLOYMENT, "values.yaml": "placed: false\n", **extra}
    repo.publish(package_chart("demo", version, files), "demo", version)


async def test_an_install_that_never_becomes_available_is_stored_failed_as_helm_would(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path
) -> None:
    publish(chart_repo, "1.0.0")
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    await fluxd.create(HELM_RELEASE, "ready", release_spec())
    await fluxd.create(HELM_RELEASE, "stuck", release_spec(timeout="3s", values={"placed": True}))

    ready = await fluxd.wait_ready(HELM_RELEASE, "ready")
    assert ready_reason(ready) == ("True", "InstallSucceeded")
    stuck = await fluxd.wait_not_ready(HELM_RELEASE, "stuck", "RetriesExceeded")
    released = condition(stuck, "Released")
    assert released is not None
    assert released["reason"] == "InstallFailed"
    assert f"Deployment/{fluxd.namespace}/stuck-web" in released["message"], released
    assert "timeout waiting for" in released["message"]
    (record,) = helm_cli(kubeconfig, "history", "stuck", "-n", fluxd.namespace)
    assert record["status"] == "failed", record
    assert record["description"].startswith('Release "stuck" failed: timeout waiting for')
    releases = helm_cli(kubeconfig, "list", "-n", fluxd.namespace)
    listed = {r["name"]: r["status"] for r in releases}
    assert listed == {"ready": "deployed", "stuck": "failed"}


async def test_a_failed_upgrade_wait_keeps_the_previous_revision_and_is_rolled_back(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path
) -> None:
    publish(chart_repo, "1.0.0")
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    spec = release_spec(timeout="3s", upgrade={"remediation": {"retries": 1}})
    await fluxd.create(HELM_RELEASE, "app", spec)
    await fluxd.wait_ready(HELM_RELEASE, "app")

    await fluxd.patch(HELM_RELEASE, "app", {"spec": {"values": {"placed": True}}})
    stalled = await fluxd.wait_not_ready(HELM_RELEASE, "app", "RetriesExceeded")
    assert "Failed to upgrade after 2 attempt(s)" in message(stalled)
    remediated = condition(stalled, "Remediated")
    assert remediated is not None
    assert remediated["reason"] == "RollbackSucceeded", remediated
    history = helm_cli(kubeconfig, "history", "app", "-n", fluxd.namespace)
    upgrades = [entry for entry in history if entry["revision"] in (2, 4)]
    assert len(upgrades) == 2, history
    for upgrade in upgrades:
        assert upgrade["description"].startswith('Upgrade "app" failed: timeout waiting'), history
    assert history[-1]["status"] == "deployed", history
    assert history[-1]["description"].startswith("Rollback to"), history


async def test_a_chart_with_a_post_install_hook_is_waited_for_by_helm(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    publish(chart_repo, "1.0.0", **{"templates/hook.yaml": POST_INSTALL_HOOK})
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    await fluxd.create(HELM_RELEASE, "hooked", release_spec(timeout="3s", values={"placed": True}))

    failed = await fluxd.wait_not_ready(HELM_RELEASE, "hooked", "RetriesExceeded")
    released = condition(failed, "Released")
    assert released is not None
    assert released["reason"] == "InstallFailed", released
    hook = await client.get(
        fluxd.api, CONFIGMAPS, fluxd.namespace, "hooked-hooked", missing_ok=True
    )
    assert hook is None, "the post-install hook ran before the release was ready"
