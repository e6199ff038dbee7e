"""``replicas:``: expectations checked against kubectl kustomize v5.7.1."""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.kustomize._model import KustomizeError, Resource
from fluxd.kustomize._replicas import apply_replicas


def _res(kind: str, name: str, api_version: str = "apps/v1", **extra: Any) -> Resource:
    return Resource(
        obj={"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **extra},
        origin="test",
    )


def test_sets_and_creates_replicas_on_workload_kinds_only() -> None:
    deployment = _res("Deployment", "d", spec={"template": {}})
    config_map = _res("ConfigMap", "d", api_version="v1")
    custom_rs = _res("ReplicaSet", "d", api_version="example.com/v1", spec=None)
    rc = _res("ReplicationController", "rc", api_version="v1")
    apply_replicas(
        [deployment, config_map, custom_rs, rc],
        [{"name": "d", "count": 3}, {"name": "rc", "count": 5}],
        kustomization_file="k",
    )
    assert deployment.obj["spec"] == {"template": {}, "replicas": 3}
    assert "spec" not in config_map.obj
    # any group: only the kind is in kustomize's table; a null spec becomes a map
    assert custom_rs.obj["spec"] == {"replicas": 3}
    assert rc.obj["spec"] == {"replicas": 5}


def test_matches_current_and_earlier_names() -> None:
    deployment = _res("Deployment", "d")
    deployment.rename("p-d")
    stateful = _res("StatefulSet", "s", spec={"replicas": 1})
    stateful.rename("p-s")
    apply_replicas(
        [deployment, stateful],
        [{"name": "d", "count": 3}, {"name": "p-s", "count": 0}],
        kustomization_file="k",
    )
    assert deployment.obj["spec"]["replicas"] == 3
    assert stateful.obj["spec"]["replicas"] == 0


def test_missing_count_means_zero() -> None:
    deployment = _res("Deployment", "d", spec={"replicas": 4})
    apply_replicas([deployment], [{"name": "d"}], kustomization_file="k")
    assert deployment.obj["spec"]["replicas"] == 0


def test_no_match_is_an_error_naming_the_kinds() -> None:
    with pytest.raises(KustomizeError) as caught:
        apply_replicas(
            [_res("Deployment", "d")], [{"name": "nope", "count": 2}], kustomization_file="k"
        )
    assert (
        "resource with name nope does not match a config with the following GVK "
        "[Deployment.[noVer].[noGrp] StatefulSet.[noVer].[noGrp] ReplicaSet.[noVer].[noGrp] "
        "ReplicationController.[noVer].[noGrp]]"
    ) in str(caught.value)


def test_string_count_is_rejected() -> None:
    with pytest.raises(KustomizeError, match="count must be an integer"):
        apply_replicas(
            [_res("Deployment", "d")], [{"name": "d", "count": "2"}], kustomization_file="k"
        )
