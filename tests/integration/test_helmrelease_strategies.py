"""HelmRelease ``install.strategy`` / ``upgrade.strategy`` ``RetryOnFailure``, end to end.

What a user sees: a failed install or upgrade is left as Helm stored it (no uninstall,
no rollback, no ``Remediated`` condition), retried after ``retryInterval`` (as an
upgrade of the failed release), never stalled however often it fails, and released once
a good chart arrives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fluxd.api import HELM_RELEASE, HELM_REPOSITORY
from fluxd.kube import client
from fluxd.kube.resources import CONFIGMAPS
from tests.chartservers import ChartRepository, package_chart
from tests.integration.conftest import Fluxd, ready_reason
from tests.integration.test_helmrelease import (
    REFUSED,
    TEMPLATE,
    condition,
    helm_cli,
    message,
    release_spec,
)

pytestmark = pytest.mark.integration


def publish(repo: ChartRepository, version: str, template: str) -> None:
    files = {"templates/cm.yaml": template, "values.yaml": "greeting: hello\n"}
    repo.publish(package_chart("demo", version, files), "demo", version)


async def refresh_repository(fluxd: Fluxd) -> None:
    stamp = datetime.now(UTC).isoformat()
    await fluxd.patch(
        HELM_REPOSITORY,
        "charts",
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}},
    )


async def test_a_failed_install_is_kept_and_retried_at_the_interval_until_it_succeeds(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path
) -> None:
    publish(chart_repo, "1.0.0", REFUSED)
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    strategy = {"name": "RetryOnFailure", "retryInterval": "2s"}
    await fluxd.create(
        HELM_RELEASE,
        "retried",
        release_spec(install={"strategy": strategy}, upgrade={"strategy": strategy}),
    )
    failed = await fluxd.wait_not_ready(HELM_RELEASE, "retried", "InstallFailed")
    assert "Not_A_Valid_Name" in message(failed), "Helm's error, naming the object"
    assert "retrying after 2s" in message(failed)
    assert condition(failed, "Remediated") is None, "no remediation with RetryOnFailure"
    listed = helm_cli(kubeconfig, "list", "-n", fluxd.namespace)
    assert [(r["name"], r["status"]) for r in listed] == [("retried", "failed")], (
        "the failed release is kept as Helm stored it, not uninstalled"
    )

    # The retry comes by itself after the interval: an upgrade of the failed release.
    retried = await fluxd.wait_not_ready(HELM_RELEASE, "retried", "UpgradeFailed")
    assert retried["status"]["failures"] >= 2
    assert condition(retried, "Stalled") is None, "RetryOnFailure never stalls"
    assert retried["status"]["lastAttemptedReleaseAction"] == "upgrade"

    publish(chart_repo, "1.0.1", TEMPLATE)
    await refresh_repository(fluxd)
    released = await fluxd.wait_for(
        HELM_RELEASE,
        "retried",
        lambda o: ready_reason(o) == ("True", "UpgradeSucceeded"),
        "Ready=True/UpgradeSucceeded once a good chart arrived",
        timeout=90,
    )
    assert released["status"]["history"][0]["chartVersion"] == "1.0.1"
    assert "failures" not in released["status"]


async def test_a_failed_upgrade_is_not_rolled_back_with_retry_on_failure(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path
) -> None:
    publish(chart_repo, "1.0.0", TEMPLATE)
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    await fluxd.create(
        HELM_RELEASE,
        "app",
        release_spec(
            upgrade={
                "strategy": {"name": "RetryOnFailure", "retryInterval": "1h"},
                "remediation": {"retries": 3},
            }
        ),
    )
    await fluxd.wait_ready(HELM_RELEASE, "app")

    publish(chart_repo, "1.1.0", REFUSED)
    await refresh_repository(fluxd)
    failed = await fluxd.wait_not_ready(HELM_RELEASE, "app", "UpgradeFailed")
    assert "retrying after 1h0m0s" in message(failed)
    assert condition(failed, "Remediated") is None, "remediation is not used"
    history = helm_cli(kubeconfig, "history", "app", "-n", fluxd.namespace)
    assert [(entry["chart"], entry["status"]) for entry in history] == [
        ("demo-1.0.0", "deployed"),
        ("demo-1.1.0", "failed"),
    ], "no rollback revision: the failed upgrade is left for the next retry"
    kept = await client.get(fluxd.api, CONFIGMAPS, fluxd.namespace, "app-settings")
    assert kept["data"]["greeting"] == "hello", "what ran before keeps running"
