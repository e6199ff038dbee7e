"""``fluxd diff helmrelease``: the next upgrade of a HelmRelease as a diff, run as a user
runs it (a separate process) against the daemon's chart artifact and the cluster.

What a user sees: nothing and exit 0 for a release in sync; after a values change the
daemon has not released yet (suspended), the drifted objects as a unified diff with
Secret values masked, a template the new values drop reported as deleted, exit 1; an
unknown HelmRelease is one line on stderr and exit 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxd.api import HELM_RELEASE, HELM_REPOSITORY
from tests.chartservers import ChartRepository, package_chart
from tests.integration.cli import run_fluxd
from tests.integration.conftest import Fluxd
from tests.integration.test_helmrelease import TEMPLATE, release_spec

pytestmark = pytest.mark.integration

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-token
stringData:
  token: {{ .Values.token | quote }}
"""
EXTRA = """\
{{- if .Values.extra }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-extra
data: {}
{{- end }}
"""
HOOK = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-hook
  annotations: {"helm.sh/hook": post-install}
data: {}
"""


async def test_diff_shows_what_the_next_upgrade_changes(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path
) -> None:
    files = {
        "templates/cm.yaml": TEMPLATE,
        "templates/secret.yaml": SECRET,
        "templates/extra.yaml": EXTRA,
        "templates/hook.yaml": HOOK,
        "values.yaml": "greeting: hello\ntoken: first-s3cret\nextra: true\n",
    }
    chart_repo.publish(package_chart("demo", "1.0.0", files), "demo", "1.0.0")
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    await fluxd.create(HELM_RELEASE, "web", release_spec(values={"color": "blue"}))
    await fluxd.wait_ready(HELM_RELEASE, "web")
    ns = fluxd.namespace

    code, out, err = await run_fluxd(kubeconfig, "diff", "helmrelease", "web", "-n", ns)
    assert (code, out) == (0, ""), err

    await fluxd.patch(HELM_RELEASE, "web", {"spec": {"suspend": True}})
    await fluxd.patch(
        HELM_RELEASE,
        "web",
        {"spec": {"values": {"color": "red", "token": "second-s3cret", "extra": False}}},
    )
    code, out, err = await run_fluxd(kubeconfig, "diff", "hr", "web", "-n", ns)
    assert code == 1, err
    assert f"► ConfigMap/{ns}/web-settings drifted\n" in out
    assert "-  color: blue\n" in out
    assert "+  color: red\n" in out
    assert f"► Secret/{ns}/web-token drifted\n" in out
    assert "'*** (before)'" in out
    assert "'*** (after)'" in out
    assert "s3cret" not in out, "Secret values never printed"
    assert f"► ConfigMap/{ns}/web-extra deleted\n" in out
    assert "web-hook" not in out, "hooks are not part of the release"

    code, out, err = await run_fluxd(kubeconfig, "diff", "hr", "nowhere", "-n", ns)
    assert (code, out) == (2, "")
    assert f"HelmRelease '{ns}/nowhere' not found" in err
