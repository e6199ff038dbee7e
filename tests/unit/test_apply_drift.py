"""What counts as drift, and how the ssa/prune annotations are matched."""

from __future__ import annotations

from typing import Any

from fluxd.apply.manager import any_in_metadata, drifted


def live(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "c",
            "namespace": "n",
            "uid": "1",
            "resourceVersion": "7",
            "generation": 1,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "managedFields": [{"manager": "fluxd"}],
            "labels": {"a": "1"},
        },
        "data": {"k": "v"},
    }
    obj.update(changes)
    return obj


def test_bookkeeping_and_status_are_not_drift() -> None:
    merged = live(status={"phase": "whatever"})
    merged["metadata"] = {**merged["metadata"], "resourceVersion": "8", "managedFields": []}
    assert not drifted(live(), merged)


def test_content_labels_and_annotations_are_drift() -> None:
    assert drifted(live(), live(data={"k": "w"}))
    relabelled = live()
    relabelled["metadata"] = {**relabelled["metadata"], "labels": {"a": "2"}}
    assert drifted(live(), relabelled)
    annotated = live()
    annotated["metadata"] = {**annotated["metadata"], "annotations": {"x": "y"}}
    assert drifted(live(), annotated)
    # an empty map and no map are the same
    bare = live()
    bare["metadata"] = {**bare["metadata"], "annotations": {}}
    assert not drifted(live(), bare)


def test_selectors_match_labels_or_annotations_in_any_case() -> None:
    selector = {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}
    annotated = {"metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/ssa": "ifnotpresent"}}}
    labelled = {"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/ssa": "IFNOTPRESENT"}}}
    other = {"metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/ssa": "Override"}}}
    assert any_in_metadata(annotated, selector)
    assert any_in_metadata(labelled, selector)
    assert not any_in_metadata(other, selector)
    assert not any_in_metadata({}, selector)
