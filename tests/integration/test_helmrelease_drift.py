"""HelmRelease drift detection: someone edits or deletes what the release made.

With ``driftDetection.mode: enabled`` the edit is undone and the deleted object comes
back at the next reconcile (events ``DriftDetected`` then ``DriftCorrected``, the
``Drifted`` condition), fields named by ``ignore`` keep their live value; with ``warn``
the drift is only reported; an object annotated
``helm.toolkit.fluxcd.io/driftDetection: disabled`` is never looked at.
"""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.api import HELM_RELEASE, HELM_REPOSITORY
from fluxd.kube import client
from fluxd.kube.resources import CONFIGMAPS
from tests.chartservers import ChartRepository, package_chart
from tests.integration.conftest import Fluxd
from tests.integration.test_helmrelease import condition, reconcile_now, release_spec

pytestmark = pytest.mark.integration

TEMPLATES = {
    "templates/cm.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  greeting: hello
  replicas: "1"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-free
  annotations:
    helm.toolkit.fluxcd.io/driftDetection: disabled
data:
  greeting: hello
""",
}


async def edit(fluxd: Fluxd, name: str, data: dict[str, str]) -> None:
    await client.patch(
        fluxd.api,
        CONFIGMAPS,
        fluxd.namespace,
        name,
        {"data": data},
        field_manager="kubectl-edit",
    )


async def data_of(fluxd: Fluxd, name: str) -> dict[str, str] | None:
    found = await client.get(fluxd.api, CONFIGMAPS, fluxd.namespace, name, missing_ok=True)
    return None if found is None else dict(found.get("data") or {})


async def drift_seen(fluxd: Fluxd, name: str, reason: str, ending: str) -> dict[str, Any]:
    """The event of ``reason`` whose message ends with ``ending``."""
    return await fluxd.wait_event(
        name,
        lambda e: e["reason"] == reason and str(e["message"]).endswith(ending),
        f"a {reason} event ending {ending!r}",
    )


async def test_drift_is_corrected_ignored_or_reported(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    chart_repo.publish(package_chart("drifty", "1.0.0", TEMPLATES), "drifty", "1.0.0")
    await fluxd.create(HELM_REPOSITORY, "drift-charts", {"interval": "1h", "url": chart_repo.url})
    spec = release_spec(
        driftDetection={
            "mode": "enabled",
            "ignore": [
                {
                    "paths": ["/data/replicas"],
                    "target": {"kind": "ConfigMap", "name": "app-settings"},
                }
            ],
        }
    )
    spec["chart"]["spec"] |= {
        "chart": "drifty",
        "sourceRef": {"kind": "HelmRepository", "name": "drift-charts"},
    }
    await fluxd.create(HELM_RELEASE, "app", spec)
    await fluxd.wait_ready(HELM_RELEASE, "app")

    await reconcile_now(fluxd, "app")
    obj = await fluxd.wait_for(
        HELM_RELEASE,
        "app",
        lambda o: (condition(o, "Drifted") or {}).get("reason") == "NoDriftDetected",
        "NoDriftDetected on a release nobody touched",
    )
    assert obj["status"]["history"][0]["version"] == 1

    # An edit of a field the chart sets, one of an ignored field, one of an excluded object.
    await edit(fluxd, "app-settings", {"greeting": "edited", "replicas": "5"})
    await edit(fluxd, "app-free", {"greeting": "edited"})
    await reconcile_now(fluxd, "app")
    namespace = fluxd.namespace
    detected = await drift_seen(fluxd, "app", "DriftDetected", "0 removals)")
    assert detected["message"] == (
        f"Cluster state of release {namespace}/app.v1 has drifted from the desired state:\n"
        f"ConfigMap/{namespace}/app-settings changed (0 additions, 1 changes, 0 removals)"
    )
    corrected = await drift_seen(fluxd, "app", "DriftCorrected", "app-settings configured")
    assert corrected["message"] == (
        f"Cluster state of release {namespace}/app.v1 has been corrected:\n"
        f"ConfigMap/{namespace}/app-settings configured"
    )
    assert await data_of(fluxd, "app-settings") == {"greeting": "hello", "replicas": "5"}
    assert await data_of(fluxd, "app-free") == {"greeting": "edited"}

    # A deleted object comes back; no new Helm revision for any of it.
    await client.delete(fluxd.api, CONFIGMAPS, namespace, "app-settings")
    await reconcile_now(fluxd, "app")
    await drift_seen(fluxd, "app", "DriftDetected", "app-settings removed")
    await drift_seen(fluxd, "app", "DriftCorrected", "app-settings created")
    assert await data_of(fluxd, "app-settings") == {"greeting": "hello", "replicas": "1"}
    obj = await fluxd.get(HELM_RELEASE, "app")
    assert obj["status"]["history"][0]["version"] == 1

    # warn: reported, left as it is.
    await fluxd.patch(HELM_RELEASE, "app", {"spec": {"driftDetection": {"mode": "warn"}}})
    await fluxd.wait_for(
        HELM_RELEASE,
        "app",
        lambda o: o["status"].get("observedGeneration") == o["metadata"]["generation"],
        "the warn mode observed",
    )
    await edit(fluxd, "app-settings", {"greeting": "warned"})
    await reconcile_now(fluxd, "app")
    obj = await fluxd.wait_for(
        HELM_RELEASE,
        "app",
        lambda o: (
            (condition(o, "Drifted") or {}).get("reason") == "DriftDetected"
            and "app-settings changed" in (condition(o, "Drifted") or {}).get("message", "")
        ),
        "Drifted=True in warn mode",
    )
    assert condition(obj, "Ready")["status"] == "True"  # type: ignore[index]
    assert await data_of(fluxd, "app-settings") == {"greeting": "warned", "replicas": "1"}
