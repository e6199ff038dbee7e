"""Release names and the next Helm action, decided as Flux's helm-controller decides."""

from __future__ import annotations

from fluxd.api import HELM_RELEASE, HelmReleaseSpec
from fluxd.reconcilers.helmrelease import release_name


def spec(**fields: object) -> HelmReleaseSpec:
    chart = {"spec": {"chart": "c", "sourceRef": {"kind": "HelmRepository", "name": "r"}}}
    return HELM_RELEASE.parse_spec({"spec": {"interval": "1m", "chart": chart, **fields}})


def test_release_names_follow_flux() -> None:
    assert release_name("apps", "web", spec()) == "web"
    assert release_name("apps", "web", spec(targetNamespace="prod")) == "prod-web"
    assert release_name("apps", "web", spec(releaseName="custom")) == "custom"
    long = release_name("apps", "w" * 60, spec())
    assert len(long) == 53, "Helm's limit"
    assert long.startswith("w" * 40 + "-")
    assert long != release_name("apps", "w" * 61, spec()), "a hash keeps shortened names apart"
