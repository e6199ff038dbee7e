"""HelmRepository end to end: a real chart repository on loopback, fluxd, the API server.

What a user sees: the index becomes an artifact (revision = sha256 of the index, the
cleaned index served as JSON at ``status.artifact.url`` and ``status.url``), a new chart
moves the revision, credentials and TLS work, and every bad repository ends in a clear
``Ready=False`` that keeps the last good artifact.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from fluxd.api import HELM_REPOSITORY
from fluxd.runtime import conditions
from tests.chartservers import REPO_PASSWORD, REPO_USERNAME, ChartRepository
from tests.gitservers import free_port
from tests.integration.conftest import Fluxd, ready_reason

pytestmark = pytest.mark.integration


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return conditions.get(obj.get("status") or {}, type_)


async def reconcile_now(fluxd: Fluxd, name: str) -> None:
    stamp = datetime.now(UTC).isoformat()
    await fluxd.patch(
        HELM_REPOSITORY,
        name,
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}},
    )


async def test_index_becomes_an_artifact_and_a_new_chart_moves_its_revision(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    chart_repo.publish(b"first archive", "podinfo", "6.0.0")
    chart_repo.publish(b"second archive", "podinfo", "6.1.0")
    await fluxd.create(HELM_REPOSITORY, "podinfo", {"interval": "1h", "url": chart_repo.url})
    obj = await fluxd.wait_ready(HELM_REPOSITORY, "podinfo")

    index = chart_repo.files["index.yaml"]
    revision = f"sha256:{hashlib.sha256(index).hexdigest()}"
    artifact = obj["status"]["artifact"]
    assert artifact["revision"] == revision
    assert artifact["path"] == (
        f"helmrepository/{fluxd.namespace}/podinfo/index-{revision.partition(':')[2]}.yaml"
    )
    ready = condition(obj, "Ready")
    assert ready is not None
    assert ready["message"] == f"stored artifact: revision '{revision}'"
    served = await fluxd.fetch_artifact(artifact["url"])
    assert artifact["digest"] == f"sha256:{hashlib.sha256(served).hexdigest()}"
    assert artifact["size"] == len(served)
    versions = [v["version"] for v in json.loads(served)["entries"]["podinfo"]]
    assert versions == ["6.1.0", "6.0.0"], "newest first, as Flux stores the index"
    assert obj["status"]["url"].endswith(f"/helmrepository/{fluxd.namespace}/podinfo/index.yaml")
    assert await fluxd.fetch_artifact(obj["status"]["url"]) == served
    await fluxd.wait_event(
        "podinfo",
        lambda e: (
            e["reason"] == "NewArtifact"
            and e["message"].startswith("stored fetched index of size")
            and chart_repo.url in e["message"]
        ),
        "NewArtifact with the index size and the repository URL",
    )

    chart_repo.publish(b"third archive", "podinfo", "6.2.0")
    await reconcile_now(fluxd, "podinfo")
    moved = await fluxd.wait_for(
        HELM_REPOSITORY,
        "podinfo",
        lambda o: o["status"]["artifact"]["revision"] != revision,
        "a new revision after a chart was published",
    )
    served = await fluxd.fetch_artifact(moved["status"]["url"])
    assert json.loads(served)["entries"]["podinfo"][0]["version"] == "6.2.0"


async def test_unchanged_index_keeps_the_artifact(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    chart_repo.publish(b"archive", "podinfo", "6.0.0")
    await fluxd.create(HELM_REPOSITORY, "podinfo", {"interval": "1h", "url": chart_repo.url})
    first = (await fluxd.wait_ready(HELM_REPOSITORY, "podinfo"))["status"]["artifact"]
    fetched = chart_repo.fetched("index.yaml")

    await reconcile_now(fluxd, "podinfo")
    await fluxd.wait_for(
        HELM_REPOSITORY,
        "podinfo",
        lambda o: o["status"].get("lastHandledReconcileAt") is not None,
        "the requested reconcile handled",
    )
    again = await fluxd.get(HELM_REPOSITORY, "podinfo")
    assert chart_repo.fetched("index.yaml") == fetched + 1, "the index is checked again"
    assert again["status"]["artifact"] == first, "same index, same artifact"


async def test_https_basic_auth_and_ca_from_secrets(
    fluxd: Fluxd, chart_repo_https: ChartRepository
) -> None:
    chart_repo_https.publish(b"archive", "podinfo", "6.0.0")
    assert chart_repo_https.ca_pem is not None
    await fluxd.secret("auth", {"username": REPO_USERNAME, "password": REPO_PASSWORD})
    await fluxd.secret("tls", {"ca.crt": chart_repo_https.ca_pem})
    await fluxd.create(
        HELM_REPOSITORY,
        "private",
        {
            "interval": "1h",
            "url": chart_repo_https.url,
            "secretRef": {"name": "auth"},
            "certSecretRef": {"name": "tls"},
        },
    )
    await fluxd.wait_ready(HELM_REPOSITORY, "private")

    await fluxd.create(
        HELM_REPOSITORY,
        "no-credentials",
        {"interval": "1h", "url": chart_repo_https.url, "certSecretRef": {"name": "tls"}},
    )
    refused = await fluxd.wait_not_ready(HELM_REPOSITORY, "no-credentials", "Failed")
    message = (condition(refused, "Ready") or {})["message"]
    assert "401" in message
    assert chart_repo_https.url in message

    await fluxd.create(HELM_REPOSITORY, "no-ca", {"interval": "1h", "url": chart_repo_https.url})
    untrusted = await fluxd.wait_not_ready(HELM_REPOSITORY, "no-ca", "Failed")
    assert "certificate" in (condition(untrusted, "Ready") or {})["message"].lower()


async def test_bad_repositories_fail_clearly_and_keep_the_last_artifact(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    chart_repo.publish(b"archive", "podinfo", "6.0.0")
    await fluxd.create(HELM_REPOSITORY, "podinfo", {"interval": "1h", "url": chart_repo.url})
    good = (await fluxd.wait_ready(HELM_REPOSITORY, "podinfo"))["status"]["artifact"]

    chart_repo.serve("index.yaml", b"entries: [this is: not an index")
    await reconcile_now(fluxd, "podinfo")
    broken = await fluxd.wait_not_ready(HELM_REPOSITORY, "podinfo", "IndexationFailed")
    assert (
        "failed to load Helm repository from index YAML"
        in (condition(broken, "Ready") or {})["message"]
    )
    fetch_failed = condition(broken, "FetchFailed")
    assert fetch_failed is not None
    assert fetch_failed["status"] == "True"
    assert broken["status"]["artifact"] == good, "the last good index stays in use"
    assert await fluxd.fetch_artifact(good["url"])

    chart_repo.fail("index.yaml", 500)
    await reconcile_now(fluxd, "podinfo")
    failing = await fluxd.wait_for(
        HELM_REPOSITORY,
        "podinfo",
        lambda o: "500" in ((condition(o, "Ready") or {}).get("message") or ""),
        "the HTTP 500 in the Ready message",
    )
    assert ready_reason(failing) == ("False", "Failed")
    await fluxd.wait_event(
        "podinfo", lambda e: e["type"] == "Warning" and "500" in e["message"], "a Warning event"
    )

    await fluxd.create(
        HELM_REPOSITORY,
        "unreachable",
        {"interval": "1h", "url": f"http://127.0.0.1:{free_port()}/charts", "timeout": "5s"},
    )
    await fluxd.wait_not_ready(HELM_REPOSITORY, "unreachable", "Failed")

    await fluxd.create(
        HELM_REPOSITORY,
        "missing-secret",
        {"interval": "1h", "url": chart_repo.url, "secretRef": {"name": "nowhere"}},
    )
    missing = await fluxd.wait_not_ready(HELM_REPOSITORY, "missing-secret", "AuthenticationFailed")
    assert "nowhere" in (condition(missing, "Ready") or {})["message"]

    await fluxd.create(
        HELM_REPOSITORY, "oci-url", {"interval": "1h", "url": "oci://127.0.0.1:5000/charts"}
    )
    stalled = await fluxd.wait_for(
        HELM_REPOSITORY,
        "oci-url",
        lambda o: (condition(o, "Stalled") or {}).get("reason") == "URLInvalid",
        "Stalled/URLInvalid",
    )
    assert "spec.type" in (condition(stalled, "Ready") or {})["message"]


async def test_oci_repository_becomes_a_static_object(fluxd: Fluxd) -> None:
    url = "oci://127.0.0.1:5000/charts"
    await fluxd.create(HELM_REPOSITORY, "registry", {"interval": "5m", "url": url})
    await fluxd.wait_for(
        HELM_REPOSITORY,
        "registry",
        lambda o: (
            condition(o, "Stalled") is not None
            and "finalizers.fluxcd.io" in (o["metadata"].get("finalizers") or [])
        ),
        "stalled without spec.type: oci",
    )

    await fluxd.patch(HELM_REPOSITORY, "registry", {"spec": {"type": "oci"}})
    await fluxd.wait_for(
        HELM_REPOSITORY,
        "registry",
        lambda o: (
            not o.get("status")
            and "finalizers.fluxcd.io" not in (o["metadata"].get("finalizers") or [])
        ),
        "no status and no finalizer, as Flux leaves an OCI HelmRepository",
    )
