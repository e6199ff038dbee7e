"""Post-rendering a chart's manifests as Flux's helm-controller does, and the plugin protocol
Helm runs it through."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fluxd.build.postrender import PostRenderError, PostRendering, post_render

MANIFESTS = """\
# Source: demo/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {team: red, keep: "yes"}
data: {a: "1"}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.0"}]
"""

ORIGIN = {"helm.toolkit.fluxcd.io/name": "web", "helm.toolkit.fluxcd.io/namespace": "apps"}


def objects(text: str) -> dict[str, dict[str, object]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text) if doc}


def test_common_metadata_then_origin_labels_on_every_object_metadata_only() -> None:
    plan = PostRendering(
        labels={"team": "blue", "helm.toolkit.fluxcd.io/name": "spoofed"},
        annotations={"owner": "ops"},
        origin_labels=ORIGIN,
    )
    out = objects(post_render(MANIFESTS, plan))
    config = out["ConfigMap"]["metadata"]
    assert config["labels"] == {"team": "blue", "keep": "yes", **ORIGIN}, (  # type: ignore[index]
        "common labels override the chart's; origin labels win over common ones"
    )
    assert config["annotations"] == {"owner": "ops"}  # type: ignore[index]
    deployment = out["Deployment"]
    assert deployment["metadata"]["labels"] == {"team": "blue", **ORIGIN}  # type: ignore[index]
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}  # type: ignore[index]


def test_kustomize_patches_and_images_run_before_the_metadata() -> None:
    plan = PostRendering(
        kustomize=[
            {
                "patches": [
                    {
                        "patch": '[{"op": "add", "path": "/data/b", "value": "2"}]',
                        "target": {"kind": "ConfigMap"},
                    }
                ],
                "images": [{"name": "nginx", "newTag": "2.0"}],
            }
        ],
        origin_labels=ORIGIN,
    )
    out = objects(post_render(MANIFESTS, plan))
    assert out["ConfigMap"]["data"] == {"a": "1", "b": "2"}
    containers = out["Deployment"]["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    assert containers == [{"name": "web", "image": "nginx:2.0"}]


def test_a_patch_that_does_not_apply_names_the_post_renderer() -> None:
    plan = PostRendering(
        kustomize=[
            {
                "patches": [
                    {
                        "patch": '[{"op": "replace", "path": "/spec/nothing", "value": 1}]',
                        "target": {"kind": "ConfigMap"},
                    }
                ]
            }
        ]
    )
    with pytest.raises(PostRenderError, match=r"spec\.postRenderers\[0\]\.kustomize"):
        post_render(MANIFESTS, plan)


def test_the_plugin_protocol_stdin_to_stdout_and_the_reason_to_the_error_file(
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "fluxd.build.postrender"]
    good = PostRendering(origin_labels=ORIGIN).encode()
    done = subprocess.run(
        [*command, good], input=MANIFESTS, capture_output=True, text=True, check=True
    )
    assert objects(done.stdout)["ConfigMap"]["metadata"]["labels"]["keep"] == "yes"  # type: ignore[index]

    error_file = tmp_path / "error"
    bad = PostRendering(error_path=str(error_file)).encode()
    failed = subprocess.run([*command, bad], input="a: [", capture_output=True, text=True)
    assert failed.returncode == 1
    assert "post-renderer input is not YAML" in error_file.read_text()
    assert "post-renderer input is not YAML" in failed.stderr
