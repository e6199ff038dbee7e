"""HelmChart ``spec.verify`` with cosign public keys, for charts in the suite's registry.

Charts are pushed as Helm pushes them and signed as cosign signs them (the helpers of the
OCIRepository verification tests). What a user sees: a signed chart is ``SourceVerified``
and Ready; an unsigned chart or one signed by another key is ``ChartVerificationError``
naming the chart, nothing is pulled and the last verified artifact stays; keyless and
notation verification stall by name.
"""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.api import HELM_CHART, HELM_REPOSITORY
from fluxd.sources import oci
from tests.chartservers import ChartRepository, package_chart
from tests.integration.conftest import Fluxd
from tests.integration.test_helmchart_oci import chart_spec, push_chart, repository_spec
from tests.integration.test_ocirepository_verify import (
    condition,
    new_p256_key,
    public_pem,
    push_signature,
)
from tests.ociregistry import OCIRegistry

pytestmark = pytest.mark.integration


async def chart_digest(registry: OCIRegistry, url: str, name: str, version: str) -> str:
    image = oci.parse_url(f"{url}/{name}", insecure=registry.insecure)
    async with oci.RegistryClient(image, registry.auth) as client:
        return await client.resolve(version)


def verified_chart(chart: str, version: str, verify: dict[str, Any]) -> dict[str, Any]:
    return {**chart_spec(chart, version), "verify": verify}


COSIGN = {"provider": "cosign", "secretRef": {"name": "cosign-keys"}}


async def test_signed_chart_is_verified_and_an_unsigned_one_refused(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("signed-charts")
    key = new_p256_key()
    await push_chart(oci_registry, url, "demo", "1.0.0")
    await push_chart(oci_registry, url, "demo", "2.0.0")
    digest = await chart_digest(oci_registry, url, "demo", "1.0.0")
    await push_signature(oci_registry, f"{url}/demo", digest, key)
    await fluxd.secret("cosign-keys", {"cosign.pub": public_pem(key)})
    await fluxd.create(HELM_REPOSITORY, "oci", repository_spec(oci_registry, url))

    await fluxd.create(HELM_CHART, "signed", verified_chart("demo", "1.0.0", COSIGN))
    obj = await fluxd.wait_ready(HELM_CHART, "signed")
    verified = condition(obj, "SourceVerified")
    assert (verified["status"], verified["reason"]) == ("True", "Succeeded")
    assert verified["message"] == "verified signature of version 1.0.0"
    assert obj["status"]["artifact"]["revision"] == "1.0.0"

    await fluxd.create(HELM_CHART, "unsigned", verified_chart("demo", "2.0.0", COSIGN))
    refused = await fluxd.wait_not_ready(HELM_CHART, "unsigned", "ChartVerificationError")
    message = condition(refused, "Ready")["message"]
    assert message.startswith("chart verification error: failed to verify oci://")
    assert "no signatures found" in message
    assert condition(refused, "BuildFailed")["status"] == "True"
    failed = condition(refused, "SourceVerified")
    assert (failed["status"], failed["reason"]) == ("False", "VerificationError")
    assert "artifact" not in refused["status"], "nothing pulled"


async def test_a_wrong_key_is_refused_and_the_last_artifact_kept(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("rekeyed")
    key = new_p256_key()
    await push_chart(oci_registry, url, "demo", "1.0.0")
    digest = await chart_digest(oci_registry, url, "demo", "1.0.0")
    await push_signature(oci_registry, f"{url}/demo", digest, key)
    await fluxd.secret("cosign-keys", {"cosign.pub": public_pem(key)})
    await fluxd.create(HELM_REPOSITORY, "oci", repository_spec(oci_registry, url))
    await fluxd.create(HELM_CHART, "demo", verified_chart("demo", "1.x", COSIGN))
    obj = await fluxd.wait_ready(HELM_CHART, "demo")
    assert obj["status"]["artifact"]["revision"] == "1.0.0"

    await push_chart(oci_registry, url, "demo", "1.1.0")
    newer = await chart_digest(oci_registry, url, "demo", "1.1.0")
    await push_signature(oci_registry, f"{url}/demo", newer, new_p256_key())
    await fluxd.patch(HELM_CHART, "demo", {"spec": {"version": "1.1.x"}})
    refused = await fluxd.wait_not_ready(HELM_CHART, "demo", "ChartVerificationError")
    message = condition(refused, "Ready")["message"]
    assert "no matching signatures were found" in message
    assert "key 'cosign.pub': invalid signature" in message
    assert refused["status"]["artifact"]["revision"] == "1.0.0", "the verified chart kept"


async def test_verify_on_an_http_repository_chart_is_refused(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    chart_repo.publish(package_chart("web", "1.0.0"), "web", "1.0.0")
    await fluxd.create(HELM_REPOSITORY, "oci", {"interval": "1h", "url": chart_repo.url})
    await fluxd.wait_ready(HELM_REPOSITORY, "oci")
    await fluxd.create(HELM_CHART, "web", verified_chart("web", "1.0.0", COSIGN))
    refused = await fluxd.wait_not_ready(HELM_CHART, "web", "ChartVerificationError")
    assert "type 'oci' only" in condition(refused, "Ready")["message"]
    assert "artifact" not in refused["status"]
    assert chart_repo.fetched("charts/web-1.0.0.tgz") == 0, "nothing downloaded"


async def test_keyless_and_notation_verification_stall_by_name(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("unserved-charts")
    await fluxd.create(HELM_REPOSITORY, "oci", repository_spec(oci_registry, url))
    refused: dict[str, tuple[dict[str, Any], str]] = {
        "keyless": ({"provider": "cosign"}, "keyless cosign verification"),
        "identity": (
            {**COSIGN, "matchOIDCIdentity": [{"issuer": ".*", "subject": ".*"}]},
            "spec.verify.matchOIDCIdentity",
        ),
        "notation": ({"provider": "notation", "secretRef": {"name": "trust"}}, "notation"),
    }
    for name, (verify, _) in refused.items():
        await fluxd.create(HELM_CHART, name, verified_chart("demo", "1.0.0", verify))
    for name, (_, text) in refused.items():
        obj = await fluxd.wait_not_ready(HELM_CHART, name, "UnsupportedField")
        assert text in condition(obj, "Stalled")["message"]
