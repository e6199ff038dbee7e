"""A Kustomization's kustomize build is reused while its inputs stay the same."""

from __future__ import annotations

from typing import Any

from fluxd.api import KUSTOMIZATION
from fluxd.build.kustomization import build_objects
from fluxd.build.memo import BuildMemo
from fluxd.sources.store import ContentStore
from tests.unit.test_build_overlay import NoSecrets

FILES = {
    "app/kustomization.yaml": b"resources: [cm.yaml]\n",
    "app/cm.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
}


async def build(memo: BuildMemo, files: Any, **fields: Any) -> list[dict[str, Any]]:
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
        files, spec, path="app", namespace="apps", name="web", objects=NoSecrets(), memo=memo
    )


async def test_the_same_inputs_reuse_the_build_and_each_reader_gets_its_own_objects() -> None:
    memo = BuildMemo()
    tree = ContentStore().tree(FILES)
    (first,) = await build(memo, tree)
    first["metadata"]["name"] = "changed by a reader"
    (second,) = await build(memo, tree)
    assert second["metadata"]["name"] == "settings", "a reader's edits never leak"
    assert len(memo) == 1


async def test_a_new_tree_or_new_fields_build_again() -> None:
    memo = BuildMemo()
    store = ContentStore()
    (built,) = await build(memo, store.tree(FILES))
    assert built["metadata"]["name"] == "settings"

    (prefixed,) = await build(memo, store.tree(FILES), namePrefix="p-")
    assert prefixed["metadata"]["name"] == "p-settings", "the spec's fields are inputs"

    renamed = {**FILES, "app/cm.yaml": FILES["app/cm.yaml"].replace(b"settings", b"other")}
    (moved,) = await build(memo, store.tree(renamed), namePrefix="p-")
    assert moved["metadata"]["name"] == "p-other", "a new revision's files are inputs"


async def test_files_that_are_no_stored_tree_are_not_kept() -> None:
    memo = BuildMemo()
    await build(memo, dict(FILES))
    assert len(memo) == 0, "only artifact trees have a digest to key a build by"


async def test_post_build_variables_apply_to_a_reused_build() -> None:
    memo = BuildMemo()
    files = {
        **FILES,
        "app/cm.yaml": FILES["app/cm.yaml"] + b"data:\n  color: ${color}\n",
    }
    tree = ContentStore().tree(files)
    (red,) = await build(memo, tree, postBuild={"substitute": {"color": "red"}})
    (blue,) = await build(memo, tree, postBuild={"substitute": {"color": "blue"}})
    assert (red["data"]["color"], blue["data"]["color"]) == ("red", "blue")
    assert len(memo) == 1
