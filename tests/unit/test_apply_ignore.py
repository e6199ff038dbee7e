"""Drift ignore rules: which fields of which objects keep their live values."""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.api import KUSTOMIZATION
from fluxd.apply.ignore import DriftIgnore, parse_pointer


def rules(*items: dict[str, Any]) -> DriftIgnore:
    spec = KUSTOMIZATION.parse_spec(
        {
            "spec": {
                "interval": "1m",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": "s"},
                "ignore": list(items),
            }
        }
    )
    return DriftIgnore(spec.ignore)


def deployment(replicas: int, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps", "labels": labels},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"image": "a:1"}]}}},
    }


def test_pointer_escapes_and_errors() -> None:
    assert parse_pointer("/metadata/annotations/example.com~1hash") == (
        "metadata",
        "annotations",
        "example.com/hash",
    )
    assert parse_pointer("/a~0b") == ("a~b",)
    with pytest.raises(ValueError, match="must start with '/'"):
        parse_pointer("spec/replicas")
    with pytest.raises(ValueError, match="'~' not followed"):
        parse_pointer("/a~2")


def test_live_value_wins_at_ignored_paths_only() -> None:
    ignore = rules({"paths": ["/spec/replicas"], "target": {"kind": "Deployment"}})
    live = deployment(5)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "a:0"
    kept = ignore.keep_live(deployment(2), live)
    assert kept["spec"]["replicas"] == 5
    assert kept["spec"]["template"]["spec"]["containers"][0]["image"] == "a:1"


def test_field_missing_live_is_dropped_from_the_desired_object() -> None:
    ignore = rules({"paths": ["/spec/replicas", "/metadata/annotations/x"]})
    desired = deployment(2)
    desired["metadata"]["annotations"] = {"x": "1", "y": "2"}
    live = deployment(3)
    del live["spec"]["replicas"]
    kept = ignore.keep_live(desired, live)
    assert "replicas" not in kept["spec"]
    assert kept["metadata"]["annotations"] == {"y": "2"}
    assert desired["spec"]["replicas"] == 2, "the caller's object was changed"


def test_list_index_and_missing_parents() -> None:
    ignore = rules(
        {"paths": ["/spec/template/spec/containers/0/image", "/metadata/annotations/injected"]}
    )
    live = deployment(2)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "mirror/a:1"
    live["metadata"]["annotations"] = {"injected": "yes"}
    kept = ignore.keep_live(deployment(2), live)
    assert kept["spec"]["template"]["spec"]["containers"][0]["image"] == "mirror/a:1"
    assert kept["metadata"]["annotations"] == {"injected": "yes"}


def test_targets_select_by_regex_and_labels() -> None:
    ignore = rules(
        {"paths": ["/spec/replicas"], "target": {"name": "w.*", "labelSelector": "tier=web"}}
    )
    assert ignore.keep_live(deployment(2, tier="web"), deployment(5))["spec"]["replicas"] == 5
    assert ignore.keep_live(deployment(2, tier="db"), deployment(5))["spec"]["replicas"] == 2
    anchored = rules({"paths": ["/spec/replicas"], "target": {"name": "we"}})
    assert anchored.keep_live(deployment(2), deployment(5))["spec"]["replicas"] == 2


def test_bad_rules_name_their_index() -> None:
    with pytest.raises(ValueError, match=r"ignore\[1\]: .*must start with '/'"):
        rules({"paths": ["/ok"]}, {"paths": ["nope"]})
    with pytest.raises(ValueError, match=r"ignore\[0\]"):
        rules({"paths": ["/ok"], "target": {"kind": "("}})
    assert not rules()
