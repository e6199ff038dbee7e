"""HelmRelease ``dependsOn[].readyExpr``, end to end: CEL over ``dep`` and ``self``.

What a user sees: a release waits (``DependencyNotReady``) until its dependency exists
and the expression holds, is released as soon as it does (woken by the dependency), and
an expression that does not compile stalls the object (``InvalidCELExpression``) without
installing anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxd.api import HELM_RELEASE
from tests.chartservers import ChartRepository
from tests.integration.conftest import Fluxd, ready_reason
from tests.integration.test_helmrelease import (
    condition,
    helm_cli,
    message,
    publish_and_point,
    release_spec,
)

pytestmark = pytest.mark.integration


def depending(expression: str) -> dict[str, object]:
    return release_spec(dependsOn=[{"name": "base", "readyExpr": expression}])


async def test_ready_expr_decides_when_a_dependency_is_ready(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path
) -> None:
    await publish_and_point(fluxd, chart_repo, "1.0.0")
    await fluxd.create(
        HELM_RELEASE,
        "app",
        depending("dep.status.lastAttemptedRevision == '1.0.0' && self.metadata.name == 'app'"),
    )
    await fluxd.create(
        HELM_RELEASE, "waiting", depending("dep.status.lastAttemptedRevision == '2.0.0'")
    )
    missing = await fluxd.wait_not_ready(HELM_RELEASE, "app", "DependencyNotReady")
    assert f"dependency '{fluxd.namespace}/base' not found" in message(missing)

    await fluxd.create(HELM_RELEASE, "base", release_spec())
    await fluxd.wait_ready(HELM_RELEASE, "base")
    released = await fluxd.wait_ready(HELM_RELEASE, "app")
    assert ready_reason(released) == ("True", "InstallSucceeded")

    waiting = await fluxd.wait_for(
        HELM_RELEASE,
        "waiting",
        lambda o: "according to readyExpr" in message(o),
        "DependencyNotReady according to readyExpr",
    )
    assert ready_reason(waiting) == ("False", "DependencyNotReady")
    names = {r["name"] for r in helm_cli(kubeconfig, "list", "-n", fluxd.namespace)}
    assert names == {"base", "app"}, "nothing released for the one still waiting"


async def test_a_ready_expr_that_does_not_compile_stalls(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path
) -> None:
    await publish_and_point(fluxd, chart_repo, "1.0.0")
    await fluxd.create(HELM_RELEASE, "base", release_spec())
    await fluxd.create(HELM_RELEASE, "bad", depending("dep.status.(("))
    await fluxd.create(HELM_RELEASE, "unknown", depending("other.status.ready"))
    for name in ("bad", "unknown"):
        stalled = await fluxd.wait_for(
            HELM_RELEASE,
            name,
            lambda o: (condition(o, "Stalled") or {}).get("reason") == "InvalidCELExpression",
            "Stalled/InvalidCELExpression",
        )
        assert f"readyExpr of dependency '{fluxd.namespace}/base'" in message(stalled)
        assert "terminally" in message(stalled)
    await fluxd.wait_ready(HELM_RELEASE, "base")
    names = {r["name"] for r in helm_cli(kubeconfig, "list", "-n", fluxd.namespace)}
    assert names == {"base"}, "the stalled ones installed nothing"
