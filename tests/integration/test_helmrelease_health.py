"""HelmRelease ``healthCheckExprs`` and ``status.inventory``, end to end.

What a user sees: a release whose chart ships a custom resource with a status of its own
is Ready only once the CEL expressions call that resource healthy; one the expressions
call failed fails the install as a failed wait would (remediated as configured); an
expression that does not compile stalls the object before anything is installed; and
``status.inventory`` lists the release's objects, the chart's CRDs included, as Flux does.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from fluxd.api import HELM_RELEASE, HELM_REPOSITORY
from fluxd.kube import client
from fluxd.kube.resources import Resource
from tests.chartservers import ChartRepository, package_chart
from tests.integration.conftest import Fluxd, ready_reason
from tests.integration.test_helmrelease import (
    TEMPLATE,
    condition,
    helm_cli,
    message,
    release_spec,
)

pytestmark = pytest.mark.integration

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  names: {{kind: Widget, plural: widgets, singular: widget}}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {{status: {{}}}}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"""
WIDGET = """\
apiVersion: {group}/v1
kind: Widget
metadata:
  name: {{{{ .Release.Name }}}}-widget
spec:
  size: 1
"""


#: A Widget that says it is still reconciling, in a status the API server keeps as
#: written (the CRD has no status subresource).
RECONCILING = """\
status:
  conditions:
    - type: Reconciling
      status: "True"
      reason: Progressing
      message: busy
"""
RECONCILING_WIDGET = WIDGET + RECONCILING


def widget_chart(repo: ChartRepository, group: str, widget: str = WIDGET) -> None:
    """A chart with the Widget CRD in ``crds/``, a Widget and a ConfigMap; a ``widget``
    that writes its own status comes with a CRD that keeps it (no status subresource)."""
    crd = CRD.format(group=group)
    if "status:" in widget:
        crd = crd.replace("      subresources: {status: {}}\n", "")
    files = {
        "crds/widget.yaml": crd,
        "templates/widget.yaml": widget.format(group=group),
        "templates/cm.yaml": TEMPLATE,
        "values.yaml": "greeting: hello\n",
    }
    repo.publish(package_chart("demo", "1.0.0", files), "demo", "1.0.0")


def health_spec(group: str, **extra: Any) -> dict[str, Any]:
    checks = [
        {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "current": "status.phase == 'Ready'",
            "failed": "status.phase == 'Failed'",
        }
    ]
    return release_spec(healthCheckExprs=checks, timeout="60s", **extra)


async def set_phase(fluxd: Fluxd, group: str, name: str, phase: str) -> None:
    """Play the Widget's controller: once the release created it, report ``phase``."""
    widgets = Resource(group, "v1", "widgets")
    async with asyncio.timeout(60):
        while await client.get(fluxd.api, widgets, fluxd.namespace, name, missing_ok=True) is None:
            await asyncio.sleep(0.1)
    await client.patch_status(fluxd.api, widgets, fluxd.namespace, name, {"phase": phase})


async def test_a_release_is_ready_once_its_custom_resource_is_healthy_with_its_inventory(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    group = f"hr{uuid.uuid4().hex[:8]}.fluxd.test"
    widget_chart(chart_repo, group)
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    await fluxd.create(HELM_RELEASE, "app", health_spec(group))

    await set_phase(fluxd, group, "app-widget", "Pending")
    await asyncio.sleep(2)
    waiting = await fluxd.get(HELM_RELEASE, "app")
    assert ready_reason(waiting) != ("True", "InstallSucceeded"), (
        "not Ready while the expressions call the Widget in progress"
    )
    await set_phase(fluxd, group, "app-widget", "Ready")
    ready = await fluxd.wait_ready(HELM_RELEASE, "app")
    assert ready_reason(ready) == ("True", "InstallSucceeded")

    ns = fluxd.namespace
    entries = ready["status"]["inventory"]["entries"]
    assert entries == [
        {"id": f"{ns}_app-settings__ConfigMap", "v": "v1"},
        {"id": f"{ns}_app-widget_{group}_Widget", "v": "v1"},
        {"id": f"_widgets.{group}_apiextensions.k8s.io_CustomResourceDefinition", "v": "v1"},
    ], "the release's objects with their namespaces, then the chart's CRDs"


async def test_a_failed_custom_resource_fails_the_install_and_is_remediated(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path
) -> None:
    group = f"hr{uuid.uuid4().hex[:8]}.fluxd.test"
    widget_chart(chart_repo, group)
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    await fluxd.create(
        HELM_RELEASE, "failing", health_spec(group, install={"remediation": {"retries": 1}})
    )
    bad = health_spec(group)
    bad["healthCheckExprs"][0]["current"] = "status.phase =="
    await fluxd.create(HELM_RELEASE, "bad", bad)

    await set_phase(fluxd, group, "failing-widget", "Failed")
    remediated = await fluxd.wait_for(
        HELM_RELEASE,
        "failing",
        lambda o: (condition(o, "Remediated") or {}).get("reason") == "UninstallSucceeded",
        "Remediated/UninstallSucceeded after the Widget failed",
    )
    released = condition(remediated, "Released")
    assert released is not None
    assert released["reason"] == "InstallFailed"
    assert "failed early due to stalled resources" in released["message"]
    assert f"Widget/{fluxd.namespace}/failing-widget" in released["message"]
    assert "inventory" not in remediated["status"], "no inventory for a failed release"

    stalled = await fluxd.wait_for(
        HELM_RELEASE,
        "bad",
        lambda o: (condition(o, "Stalled") or {}).get("reason") == "InvalidCELExpression",
        "Stalled/InvalidCELExpression",
    )
    assert "invalid CEL expression 'status.phase =='" in message(stalled)
    assert "terminally" in message(stalled)
    names = {r["name"] for r in helm_cli(kubeconfig, "list", "-n", fluxd.namespace)}
    assert "bad" not in names, "nothing installed for a spec that cannot be checked"


async def test_wait_strategy_legacy_waits_as_helm_3_did(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    # kstatus (Helm's watcher, Flux's poller) waits for a custom resource that reports
    # Reconciling=True; Helm 3's waiter knows only built-in kinds and does not.
    group = f"hr{uuid.uuid4().hex[:8]}.fluxd.test"
    widget_chart(chart_repo, group, RECONCILING_WIDGET)
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    await fluxd.create(
        HELM_RELEASE, "legacy", release_spec(timeout="2s", waitStrategy={"name": "legacy"})
    )
    await fluxd.create(
        HELM_RELEASE, "poller", release_spec(timeout="2s", waitStrategy={"name": "poller"})
    )
    legacy = await fluxd.wait_ready(HELM_RELEASE, "legacy")
    assert ready_reason(legacy) == ("True", "InstallSucceeded")
    poller = await fluxd.wait_not_ready(HELM_RELEASE, "poller", "RetriesExceeded")
    assert "poller-widget" in message(poller), "the watcher names what it waited for"
