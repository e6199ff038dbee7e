"""HelmRelease post-rendering: what Helm applies is the chart after Flux's post-renderers.

A user sees the cluster objects carry the kustomize patches and image overrides of
``spec.postRenderers``, the labels and annotations of ``spec.commonMetadata``, and Flux's
origin labels (``helm.toolkit.fluxcd.io/name|namespace``) on every object; editing the
post-renderers alone upgrades the release; a patch that cannot apply fails the upgrade
with the kustomize error and leaves the running release as it was.
"""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.api import HELM_RELEASE, HELM_REPOSITORY
from fluxd.kube import client
from fluxd.kube.resources import CONFIGMAPS, Resource
from tests.chartservers import ChartRepository, package_chart
from tests.integration.conftest import Fluxd, ready_reason
from tests.integration.test_helmrelease import message, release_spec

pytestmark = pytest.mark.integration

DEPLOYMENTS = Resource("apps", "v1", "deployments")

TEMPLATES = {
    "templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n"
        "data:\n  greeting: hello\n"
    ),
    "templates/deploy.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: ghcr.io/example/web:1.0.0
""",
}

PATCH = {
    "patch": "- op: add\n  path: /data/patched\n  value: 'yes'\n",
    "target": {"kind": "ConfigMap"},
}


def post_rendered(patches: list[dict[str, Any]], new_tag: str) -> dict[str, Any]:
    return {
        "postRenderers": [
            {
                "kustomize": {
                    "patches": patches,
                    "images": [{"name": "ghcr.io/example/web", "newTag": new_tag}],
                }
            }
        ],
        "commonMetadata": {"labels": {"team": "blue"}, "annotations": {"owner": "ops"}},
        "install": {"disableWait": True},
        "upgrade": {"disableWait": True},
    }


async def test_post_renderers_common_metadata_and_origin_labels(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    chart_repo.publish(package_chart("site", "1.0.0", TEMPLATES), "site", "1.0.0")
    await fluxd.create(HELM_REPOSITORY, "site-charts", {"interval": "1h", "url": chart_repo.url})
    spec = release_spec(**post_rendered([PATCH], "2.0.0"))
    spec["chart"]["spec"] |= {
        "chart": "site",
        "sourceRef": {"kind": "HelmRepository", "name": "site-charts"},
    }
    await fluxd.create(HELM_RELEASE, "site", spec)
    obj = await fluxd.wait_ready(HELM_RELEASE, "site")
    assert ready_reason(obj) == ("True", "InstallSucceeded")
    assert obj["status"]["observedPostRenderersDigest"].startswith("sha256:")
    assert obj["status"]["observedCommonMetadataDigest"].startswith("sha256:")

    namespace = fluxd.namespace
    settings = await client.get(fluxd.api, CONFIGMAPS, namespace, "site-settings")
    assert settings["data"] == {"greeting": "hello", "patched": "yes"}
    deployment = await client.get(fluxd.api, DEPLOYMENTS, namespace, "site")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/example/web:2.0.0"
    for made in (settings, deployment):
        assert made["metadata"]["labels"] == {
            "app.kubernetes.io/managed-by": "Helm",
            "team": "blue",
            "helm.toolkit.fluxcd.io/name": "site",
            "helm.toolkit.fluxcd.io/namespace": namespace,
        }
        assert made["metadata"]["annotations"]["owner"] == "ops"
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}, (
        "common labels go on metadata only, as Flux sets them"
    )

    # The post-renderers alone change: a new revision with the new image.
    await fluxd.patch(HELM_RELEASE, "site", {"spec": post_rendered([PATCH], "3.0.0")})
    obj = await fluxd.wait_for(
        HELM_RELEASE,
        "site",
        lambda o: ready_reason(o) == ("True", "UpgradeSucceeded"),
        "upgraded for the new post-renderers",
    )
    assert obj["status"]["history"][0]["version"] == 2
    deployment = await client.get(fluxd.api, DEPLOYMENTS, namespace, "site")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/example/web:3.0.0"

    # A patch naming a field path that does not exist: the upgrade fails with kustomize's
    # error, revision 2 keeps running.
    broken = {
        "patch": "- op: replace\n  path: /spec/missing/field\n  value: 1\n",
        "target": {"kind": "Deployment"},
    }
    await fluxd.patch(HELM_RELEASE, "site", {"spec": post_rendered([broken], "4.0.0")})
    obj = await fluxd.wait_for(
        HELM_RELEASE,
        "site",
        lambda o: (ready_reason(o) or ("", ""))[0] == "False",
        "the upgrade to fail in the post-renderer",
    )
    assert "spec.postRenderers[0].kustomize" in message(obj), message(obj)
    deployment = await client.get(fluxd.api, DEPLOYMENTS, namespace, "site")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/example/web:3.0.0"
