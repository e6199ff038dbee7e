"""``spec.buildMetadata`` reaches the kustomize build, as Flux writes it into the file."""

from __future__ import annotations

from typing import Any

from fluxd.api import KUSTOMIZATION
from fluxd.build.kustomization import build_objects
from fluxd.kube.objects import ObjectApi

ORIGIN = "config.kubernetes.io/origin"
FILES = {
    "app/kustomization.yaml": b"resources: [cm.yaml]\n",
    "app/cm.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
}


class NoSecrets(ObjectApi):
    """The build's seam to the API server: these builds read nothing from it."""

    def __init__(self) -> None:
        pass


async def build(files: dict[str, bytes], **fields: Any) -> list[dict[str, Any]]:
    spec = KUSTOMIZATION.parse_spec(
        {
            "spec": {
                "interval": "1h",
                "sourceRef": {"kind": "GitRepository", "name": "source"},
                "path": "app",
                "prune": True,
                **fields,
            }
        }
    )
    return await build_objects(
        files, spec, path="app", namespace="apps", name="web", objects=NoSecrets()
    )


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj["metadata"].get("annotations") or {})


async def test_origin_annotations_from_the_spec_mark_each_object_with_its_file() -> None:
    (built,) = await build(FILES, buildMetadata=["originAnnotations"])
    assert annotations_of(built)[ORIGIN] == "path: cm.yaml\n"


async def test_without_build_metadata_objects_carry_no_origin() -> None:
    (built,) = await build(FILES)
    assert ORIGIN not in annotations_of(built)


async def test_the_spec_list_replaces_the_files_own() -> None:
    files = {
        **FILES,
        "app/kustomization.yaml": b"resources: [cm.yaml]\nbuildMetadata: [originAnnotations]\n",
    }
    (built,) = await build(files, buildMetadata=["transformerAnnotations"])
    assert ORIGIN not in annotations_of(built)
    (kept,) = await build(files)
    assert annotations_of(kept)[ORIGIN] == "path: cm.yaml\n"
