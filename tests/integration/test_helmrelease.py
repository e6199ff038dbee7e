"""HelmRelease end to end: a chart from a real chart repository, released with the Helm
SDK into the real API server, seen by the real ``helm`` binary.

What a user sees: the release installed with the values given (``valuesFrom`` then
``values``), an upgrade when values change and none when nothing does, Flux's status and
events, the objects owned by field manager ``helm-controller``, failures remediated as
configured, and everything removed when the HelmRelease is deleted.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fluxd.api import HELM_CHART, HELM_RELEASE, HELM_REPOSITORY
from fluxd.kube import client
from fluxd.kube.resources import CONFIGMAPS
from fluxd.runtime import conditions
from tests.chartservers import ChartRepository, package_chart
from tests.integration.cli import run_fluxd
from tests.integration.conftest import Fluxd, ready_reason
from tests.kustomize.oracle import helm_binary

pytestmark = pytest.mark.integration

TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  greeting: {{ .Values.greeting | quote }}
  color: {{ .Values.color | default "none" | quote }}
"""
#: Renders, and the API server refuses it: Helm stores a failed release to remediate.
REFUSED = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Valid_Name\n"


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return conditions.get(obj.get("status") or {}, type_)


def message(obj: dict[str, Any]) -> str:
    return str((condition(obj, "Ready") or {}).get("message"))


async def publish_and_point(fluxd: Fluxd, repo: ChartRepository, *versions: str) -> None:
    for version in versions:
        files = {"templates/cm.yaml": TEMPLATE, "values.yaml": "greeting: hello\n"}
        repo.publish(package_chart("demo", version, files), "demo", version)
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": repo.url})


def release_spec(version: str = "*", **extra: Any) -> dict[str, Any]:
    return {
        "interval": "1h",
        "chart": {
            "spec": {
                "chart": "demo",
                "version": version,
                "sourceRef": {"kind": "HelmRepository", "name": "charts"},
            }
        },
        **extra,
    }


async def settings(fluxd: Fluxd, name: str) -> dict[str, Any] | None:
    return await client.get(fluxd.api, CONFIGMAPS, fluxd.namespace, name, missing_ok=True)


def helm_cli(kubeconfig: Path, *args: str) -> Any:
    done = subprocess.run(
        [str(helm_binary()), "--kubeconfig", str(kubeconfig), *args, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


async def reconcile_now(fluxd: Fluxd, name: str) -> str:
    stamp = datetime.now(UTC).isoformat()
    await fluxd.patch(
        HELM_RELEASE,
        name,
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}},
    )
    return stamp


async def test_install_upgrade_no_op_and_uninstall(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path
) -> None:
    await publish_and_point(fluxd, chart_repo, "1.0.0", "1.1.0")
    await fluxd.create(HELM_RELEASE, "web", release_spec("1.x", values={"color": "blue"}))
    obj = await fluxd.wait_ready(HELM_RELEASE, "web")

    namespace = fluxd.namespace
    assert ready_reason(obj) == ("True", "InstallSucceeded")
    assert message(obj) == (
        f"Helm install succeeded for release {namespace}/web.v1 with chart demo@1.1.0"
    )
    released = condition(obj, "Released")
    assert released is not None
    assert released["status"] == "True"
    status = obj["status"]
    assert status["helmChart"] == f"{namespace}/{namespace}-web"
    assert status["storageNamespace"] == namespace
    assert status["lastAttemptedRevision"] == "1.1.0"
    (snapshot,) = status["history"]
    assert (snapshot["chartName"], snapshot["chartVersion"], snapshot["version"]) == (
        "demo",
        "1.1.0",
        1,
    )
    assert snapshot["status"] == "deployed"
    assert snapshot["configDigest"] == status["lastAttemptedConfigDigest"]
    made = await settings(fluxd, "web-settings")
    assert made is not None
    assert made["data"] == {"greeting": "hello", "color": "blue"}
    managers = {entry["manager"] for entry in made["metadata"]["managedFields"]}
    assert managers == {"helm-controller"}, "ownership carries over a swap with Flux"
    chart = await fluxd.get(HELM_CHART, f"{namespace}-web")
    assert chart["metadata"]["labels"]["helm.toolkit.fluxcd.io/name"] == "web"
    await fluxd.wait_event(
        "web", lambda e: e["reason"] == "InstallSucceeded", "an InstallSucceeded event"
    )

    listed = helm_cli(kubeconfig, "list", "-n", namespace)
    assert [(r["name"], r["chart"], r["status"]) for r in listed] == [
        ("web", "demo-1.1.0", "deployed")
    ]

    stamp = await reconcile_now(fluxd, "web")
    await fluxd.wait_for(
        HELM_RELEASE,
        "web",
        lambda o: o["status"].get("lastHandledReconcileAt") == stamp,
        "the requested reconcile handled",
    )
    assert len(helm_cli(kubeconfig, "history", "web", "-n", namespace)) == 1, (
        "nothing changed: no new Helm revision"
    )

    await fluxd.patch(HELM_RELEASE, "web", {"spec": {"values": {"color": "green"}}})
    upgraded = await fluxd.wait_for(
        HELM_RELEASE,
        "web",
        lambda o: ready_reason(o) == ("True", "UpgradeSucceeded"),
        "UpgradeSucceeded",
    )
    assert upgraded["status"]["history"][0]["version"] == 2
    assert [s["version"] for s in upgraded["status"]["history"]] == [2, 1]
    after = await settings(fluxd, "web-settings")
    assert after is not None
    assert after["data"]["color"] == "green"
    assert len(helm_cli(kubeconfig, "history", "web", "-n", namespace)) == 2

    await fluxd.delete(HELM_RELEASE, "web")
    await fluxd.wait_gone(HELM_RELEASE, "web")
    assert await settings(fluxd, "web-settings") is None, "uninstalled on delete"
    assert helm_cli(kubeconfig, "list", "-n", namespace) == []
    with pytest.raises(client.ApiError):
        await fluxd.get(HELM_CHART, f"{namespace}-web")


async def test_values_from_config_maps_and_secrets(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    await publish_and_point(fluxd, chart_repo, "1.0.0")
    await client.create(
        fluxd.api,
        CONFIGMAPS,
        {
            "metadata": {"name": "base", "namespace": fluxd.namespace},
            "data": {"values.yaml": "greeting: from-configmap\ncolor: red\n"},
        },
    )
    await fluxd.secret("override", {"color": "purple"})
    await fluxd.create(
        HELM_RELEASE,
        "valued",
        release_spec(
            valuesFrom=[
                {"kind": "ConfigMap", "name": "base"},
                {"kind": "Secret", "name": "override", "valuesKey": "color", "targetPath": "color"},
                {"kind": "ConfigMap", "name": "absent", "optional": True},
            ]
        ),
    )
    await fluxd.wait_ready(HELM_RELEASE, "valued")
    made = await settings(fluxd, "valued-settings")
    assert made is not None
    assert made["data"] == {"greeting": "from-configmap", "color": "purple"}

    await fluxd.create(
        HELM_RELEASE, "missing", release_spec(valuesFrom=[{"kind": "Secret", "name": "nowhere"}])
    )
    missing = await fluxd.wait_not_ready(HELM_RELEASE, "missing", "ValuesError")
    assert "nowhere" in message(missing)


async def test_a_failing_install_is_remediated_then_stalls(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path
) -> None:
    chart_repo.publish(
        package_chart("demo", "1.0.0", {"templates/cm.yaml": REFUSED}), "demo", "1.0.0"
    )
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    await fluxd.create(
        HELM_RELEASE,
        "broken",
        release_spec(install={"remediation": {"retries": 1}}),
    )
    stalled = await fluxd.wait_for(
        HELM_RELEASE,
        "broken",
        lambda o: (condition(o, "Stalled") or {}).get("reason") == "RetriesExceeded",
        "Stalled/RetriesExceeded after the retry",
        timeout=90,
    )
    assert "Failed to install after 2 attempt(s)" in message(stalled)
    assert "Not_A_Valid_Name" in message(stalled), "Helm's error, naming the object"
    assert stalled["status"]["installFailures"] == 2
    remediated = condition(stalled, "Remediated")
    assert remediated is not None
    assert remediated["reason"] == "UninstallSucceeded"
    assert helm_cli(kubeconfig, "list", "-n", fluxd.namespace) == [], (
        "the failed release was uninstalled: nothing half-applied"
    )

    # `reconcile --reset` clears the counts: the retries start over, so the next failure
    # is a plain InstallFailed (not "after 3 attempts"), and it stalls again after two.
    code, _, err = await run_fluxd(
        kubeconfig, "reconcile", "hr", "broken", "-n", fluxd.namespace, "--reset"
    )
    assert code == 1
    assert "✗ HelmRelease reconciliation failed: Helm install failed" in err, err
    reset = await fluxd.get(HELM_RELEASE, "broken")
    annotations = reset["metadata"]["annotations"]
    assert reset["status"]["lastHandledResetAt"] == annotations["reconcile.fluxcd.io/resetAt"]
    again = await fluxd.wait_for(
        HELM_RELEASE,
        "broken",
        lambda o: (condition(o, "Stalled") or {}).get("reason") == "RetriesExceeded",
        "Stalled/RetriesExceeded after the reset's two attempts",
        timeout=90,
    )
    assert "Failed to install after 2 attempt(s)" in message(again)


async def test_reconcile_force_upgrades_once_without_a_change(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path
) -> None:
    await publish_and_point(fluxd, chart_repo, "1.0.0")
    await fluxd.create(HELM_RELEASE, "app", release_spec())
    await fluxd.wait_ready(HELM_RELEASE, "app")
    ns = fluxd.namespace

    code, _, err = await run_fluxd(kubeconfig, "reconcile", "hr", "app", "-n", ns, "--force")
    assert code == 0, err
    history = helm_cli(kubeconfig, "history", "app", "-n", ns)
    assert [entry["revision"] for entry in history] == [1, 2], "a one-off upgrade"
    forced = await fluxd.get(HELM_RELEASE, "app")
    handled = forced["status"]["lastHandledForceAt"]
    assert handled == forced["metadata"]["annotations"]["reconcile.fluxcd.io/forceAt"]

    # A plain request afterwards leaves the old forceAt behind: no new revision.
    code, _, err = await run_fluxd(kubeconfig, "reconcile", "hr", "app", "-n", ns)
    assert code == 0, err
    assert len(helm_cli(kubeconfig, "history", "app", "-n", ns)) == 2


async def test_a_failing_upgrade_is_rolled_back_and_what_ran_keeps_running(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path
) -> None:
    await publish_and_point(fluxd, chart_repo, "1.0.0")
    await fluxd.create(
        HELM_RELEASE, "app", release_spec("1.x", upgrade={"remediation": {"retries": 1}})
    )
    await fluxd.wait_ready(HELM_RELEASE, "app")

    broken = package_chart("demo", "1.1.0", {"templates/cm.yaml": REFUSED})
    chart_repo.publish(broken, "demo", "1.1.0")
    stamp = datetime.now(UTC).isoformat()
    await fluxd.patch(
        HELM_REPOSITORY,
        "charts",
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}},
    )
    stalled = await fluxd.wait_for(
        HELM_RELEASE,
        "app",
        lambda o: (condition(o, "Stalled") or {}).get("reason") == "RetriesExceeded",
        "Stalled/RetriesExceeded after a rollback and a retry",
        timeout=90,
    )
    assert "Failed to upgrade after 2 attempt(s)" in message(stalled)
    remediated = condition(stalled, "Remediated")
    assert remediated is not None
    assert remediated["reason"] == "RollbackSucceeded"
    history = helm_cli(kubeconfig, "history", "app", "-n", fluxd.namespace)
    assert history[-1]["status"] == "deployed"
    assert history[-1]["chart"] == "demo-1.0.0", "rolled back to what ran before"
    still = await settings(fluxd, "app-settings")
    assert still is not None
    assert still["data"]["greeting"] == "hello"


async def test_a_template_error_fails_with_helms_message_and_stores_nothing(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path
) -> None:
    template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.no.such }}\n"
    chart_repo.publish(
        package_chart("demo", "1.0.0", {"templates/cm.yaml": template}), "demo", "1.0.0"
    )
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    await fluxd.create(HELM_RELEASE, "typo", release_spec())
    failed = await fluxd.wait_for(
        HELM_RELEASE,
        "typo",
        lambda o: (condition(o, "Released") or {}).get("reason") == "InstallFailed",
        "Released=False/InstallFailed",
    )
    assert "templates/cm.yaml" in message(failed), "the template that failed is named"
    assert helm_cli(kubeconfig, "list", "-n", fluxd.namespace) == []


async def test_the_helm_chart_follows_the_template_and_is_restored_after_a_hand_edit(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    await publish_and_point(fluxd, chart_repo, "1.0.0", "2.0.0")
    await fluxd.create(HELM_RELEASE, "web", release_spec("1.x"))
    await fluxd.wait_ready(HELM_RELEASE, "web")
    name = f"{fluxd.namespace}-web"

    def asks_for(version: str) -> Callable[[dict[str, Any]], bool]:
        return lambda chart: bool(chart["spec"]["version"] == version)

    await fluxd.patch(HELM_CHART, name, {"spec": {"version": "2.x"}})
    await reconcile_now(fluxd, "web")
    await fluxd.wait_for(HELM_CHART, name, asks_for("1.x"), "the template restored")

    await fluxd.patch(HELM_RELEASE, "web", {"spec": {"chart": {"spec": {"version": "2.x"}}}})
    await fluxd.wait_for(HELM_CHART, name, asks_for("2.x"), "the new template applied")
