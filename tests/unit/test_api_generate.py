"""The committed CRDs and install manifests are exactly what the generator produces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fluxd.api import KINDS, openapi_schema
from fluxd.api._crd import crd_for
from fluxd.api.generate import CRD_DIRS, expected_paths, render
from fluxd.api.install import InstallOptions, install_objects, namespace_object, workload_objects

ROOT = Path(__file__).resolve().parents[2]
FIX = "run `python -m fluxd.api.generate` and commit the result"


def test_committed_manifests_match_the_generator() -> None:
    files = render()
    stale = [
        str(rel)
        for rel, text in files.items()
        if not (ROOT / rel).exists() or (ROOT / rel).read_text(encoding="utf-8") != text
    ]
    assert not stale, f"generated files are out of date: {', '.join(stale)}; {FIX}"


def test_no_stray_crd_files() -> None:
    expected = set(expected_paths())
    for folder in CRD_DIRS:
        extra = [
            str(p.relative_to(ROOT))
            for p in (ROOT / folder).glob("*.yaml")
            if p.relative_to(ROOT) not in expected
        ]
        assert not extra, f"CRD files no kind generates: {', '.join(extra)}; {FIX}"


def test_one_crd_per_kind_with_one_storage_version() -> None:
    for info in KINDS:
        crd = crd_for(info)
        versions = crd["spec"]["versions"]
        assert [v["name"] for v in versions if v["storage"]] == [info.storage_version]
        for version in versions:
            assert version["subresources"] == {"status": {}}
            names = [c["name"] for c in version["additionalPrinterColumns"]]
            # Flux's v1beta3 Alert and Provider are static objects: Age is all they show.
            expected = {"Age"} if info.kind in ("Alert", "Provider") else {"Age", "Ready", "Status"}
            assert expected <= set(names), info.kind


def test_git_repository_schema_carries_flux_validation() -> None:
    schema = openapi_schema(KINDS[0].spec)
    props = schema["properties"]
    assert schema["required"] == ["interval", "url"]
    assert props["url"]["pattern"] == "^(http|https|ssh)://.*$"
    assert props["timeout"]["default"] == "60s"
    assert props["interval"]["pattern"] == r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
    assert props["verify"]["properties"]["mode"]["enum"] == ["head", "HEAD", "Tag", "TagAndHEAD"]
    assert sorted(props["ref"]["properties"]) == ["branch", "commit", "name", "semver", "tag"]
    assert schema["x-kubernetes-validations"][0]["rule"].startswith("!has(self.serviceAccountName)")


def test_install_manifest_contents() -> None:
    # The drift test ties install.yaml to these objects; checking the data is faster
    # than parsing 8000 lines of YAML again.
    assert namespace_object()["metadata"]["name"] == "flux-system"
    docs: list[dict[str, Any]] = workload_objects()
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/fluxd/fluxd:0.1.0"
    assert container["args"] == [
        "run",
        "--metrics-addr=:8080",
        "--artifact-addr=:9090",
        "--receiver-addr=:9292",
        "--leader-elect",
        "--artifact-memory-mib=128",
        "--artifact-spill-dir=/data/artifacts",
    ]
    assert {"mountPath": "/data", "name": "data"} in container["volumeMounts"]
    assert container["securityContext"]["runAsNonRoot"] is True
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["metadata"] == {
        **service["metadata"],
        "name": "fluxd",
        "namespace": "flux-system",
    }
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports == {"http": 80, "http-metrics": 8080, "artifacts": 9090}
    webhooks = next(d for d in docs if d["metadata"]["name"] == "webhook-receiver")
    assert webhooks["spec"]["ports"] == [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http-webhook"}
    ]
    assert {"containerPort": 9292, "name": "http-webhook", "protocol": "TCP"} in container["ports"]
    bindings = [d["roleRef"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert bindings == ["fluxd-flux-system"]


def test_options_move_the_install_and_grant_cluster_admin_on_request() -> None:
    options = InstallOptions(
        namespace="tenant-a", image="registry.local/fluxd:dev", cluster_admin=True
    )
    docs = install_objects(options)
    assert docs[0]["metadata"]["name"] == "tenant-a"
    bindings = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRoleBinding"}
    admin = bindings["fluxd-cluster-admin-tenant-a"]
    assert admin["roleRef"]["name"] == "cluster-admin"
    assert admin["subjects"] == [
        {"kind": "ServiceAccount", "name": "fluxd", "namespace": "tenant-a"}
    ]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["metadata"]["namespace"] == "tenant-a"
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert (container["name"], container["image"]) == ("manager", "registry.local/fluxd:dev")
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert len(crds) == len(KINDS)
    assert all(c["metadata"]["labels"]["app.kubernetes.io/part-of"] == "flux" for c in crds)


def test_helm_chart_metadata_and_rbac_cover_every_group() -> None:
    chart = (ROOT / "helm-chart" / "Chart.yaml").read_text(encoding="utf-8")
    assert "name: fluxd\n" in chart
    assert "version: 0.1.0\n" in chart
    assert 'appVersion: "0.1.0"\n' in chart
    rbac = (ROOT / "helm-chart" / "templates" / "rbac.yaml").read_text(encoding="utf-8")
    for group in {info.group for info in KINDS}:
        assert f"- {group}\n" in rbac, f"helm-chart ClusterRole misses {group}"
