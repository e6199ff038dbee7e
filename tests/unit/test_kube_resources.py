"""Pure parts of ``fluxd.kube``: paths, errors, kubeconfig discovery, event metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluxd.kube.client import ApiError, kubeconfig_available
from fluxd.kube.events import involved_object, meta_key
from fluxd.kube.resources import CONFIGMAPS, LEASES, NAMESPACES, Resource, object_key

GITREPOS = Resource("source.toolkit.fluxcd.io", "v1", "gitrepositories")


def test_resource_paths() -> None:
    assert CONFIGMAPS.path() == "/api/v1/configmaps"
    assert CONFIGMAPS.path("ns") == "/api/v1/namespaces/ns/configmaps"
    assert LEASES.path("ns", "l") == "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l"
    assert GITREPOS.path("flux-system", "podinfo", "status") == (
        "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/podinfo/status"
    )
    assert NAMESPACES.path(None, "default") == "/api/v1/namespaces/default"
    assert GITREPOS.api_version == "source.toolkit.fluxcd.io/v1"
    assert CONFIGMAPS.api_version == "v1"


def test_resource_path_rejects_nameless_subresource_and_namespaceless_name() -> None:
    with pytest.raises(ValueError, match="subresource"):
        CONFIGMAPS.path("ns", None, "status")
    with pytest.raises(ValueError, match="namespaced"):
        CONFIGMAPS.path(None, "x")


def test_object_key() -> None:
    assert object_key({"metadata": {"name": "a", "namespace": "b"}}) == ("b", "a")
    assert object_key({"metadata": {"name": "cluster-wide"}}) == ("", "cluster-wide")


def test_api_error_reads_the_status_body() -> None:
    body = json.dumps(
        {"kind": "Status", "reason": "Conflict", "message": "the object has been modified"}
    ).encode()
    err = ApiError.from_status(409, body, method="PUT", path="/api/v1/x")
    assert err.conflict
    assert not err.already_exists
    assert not err.not_found
    assert err.message == "the object has been modified"
    assert str(err) == "PUT /api/v1/x: HTTP 409 Conflict: the object has been modified"


def test_api_error_without_json_body() -> None:
    err = ApiError.from_status(410, b"gone away\n")
    assert err.gone
    assert err.message == "gone away"


def test_kubeconfig_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert not kubeconfig_available()
    config = tmp_path / "cfg"
    assert not kubeconfig_available(str(config))
    config.write_text("apiVersion: v1\nkind: Config\n")
    assert kubeconfig_available(str(config))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{config}")
    assert kubeconfig_available()
    monkeypatch.delenv("KUBECONFIG")
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("apiVersion: v1\nkind: Config\n")
    assert kubeconfig_available()


def test_flux_event_metadata_keys_carry_the_api_group() -> None:
    ks = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization"}
    assert meta_key(ks, "revision") == "kustomize.toolkit.fluxcd.io/revision"
    assert meta_key({"apiVersion": "v1"}, "token") == "token"


def test_involved_object_keeps_only_present_fields() -> None:
    obj = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "podinfo", "namespace": "flux-system", "uid": "u-1"},
    }
    assert involved_object(obj) == {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "name": "podinfo",
        "namespace": "flux-system",
        "uid": "u-1",
    }
