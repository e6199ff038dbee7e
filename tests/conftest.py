"""Session-wide Kubernetes for the integration tests.

One real control plane per test session (see ``fluxd.devcluster``), or an existing
cluster when ``FLUXD_TEST_KUBECONFIG`` names its kubeconfig (kind, k3d, ...). Either way
fluxd's CRDs from ``manifests/crds/`` are installed and ``Established`` before the first
test gets the kubeconfig, so tests never race CRD registration.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException
from ruamel.yaml import YAML

from fluxd.devcluster import LocalControlPlane

pytest_plugins = ["tests.gitservers"]

CRD_DIR = Path(__file__).resolve().parents[1] / "manifests" / "crds"
CRD_ESTABLISH_TIMEOUT = 60.0


async def _api_client(kubeconfig: Path) -> client.ApiClient:
    # A Configuration of its own: load_kube_config without one would change the
    # process-wide default that other clients in the same test might rely on.
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def _crd_documents() -> list[dict[str, Any]]:
    yaml = YAML(typ="safe")
    return [
        doc
        for path in sorted(CRD_DIR.glob("*.yaml"))
        for doc in yaml.load_all(path)
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
    ]


async def _apply_crd(ext: Any, crd: dict[str, Any]) -> None:
    name = crd["metadata"]["name"]
    try:
        await ext.create_custom_resource_definition(body=crd)
    except ApiException as err:
        if err.status != 409:
            raise
        # Already there (a reused cluster): replace it, which needs the live resourceVersion.
        live = await ext.read_custom_resource_definition(name)
        crd = {
            **crd,
            "metadata": {**crd["metadata"], "resourceVersion": live.metadata.resource_version},
        }
        await ext.replace_custom_resource_definition(name, body=crd)


async def _wait_established(ext: Any, name: str, deadline: float) -> None:
    while True:
        crd = await ext.read_custom_resource_definition(name)
        conditions = (crd.status.conditions if crd.status else None) or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        if time.monotonic() > deadline:
            states = {c.type: f"{c.status} ({c.message})" for c in conditions}
            raise TimeoutError(
                f"CRD {name} from {CRD_DIR} not Established after "
                f"{CRD_ESTABLISH_TIMEOUT:.0f}s; conditions: {states}"
            )
        await asyncio.sleep(0.1)


async def install_crds(kubeconfig: Path) -> None:
    """Create or replace every CRD in ``manifests/crds/`` and wait until each is Established."""
    crds = _crd_documents()
    if not crds:
        return
    async with await _api_client(kubeconfig) as api:
        ext = client.ApiextensionsV1Api(api)
        for crd in crds:
            await _apply_crd(ext, crd)
        deadline = time.monotonic() + CRD_ESTABLISH_TIMEOUT
        for crd in crds:
            await _wait_established(ext, crd["metadata"]["name"], deadline)


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    """Kubeconfig of the session's cluster, with fluxd's CRDs installed."""
    existing = os.environ.get("FLUXD_TEST_KUBECONFIG")
    if existing:
        path = Path(existing).expanduser()
        asyncio.run(install_crds(path))
        yield path
        return
    with LocalControlPlane() as control_plane:
        asyncio.run(install_crds(control_plane.kubeconfig))
        yield control_plane.kubeconfig


@pytest.fixture
async def api_client(kubeconfig: Path) -> AsyncIterator[client.ApiClient]:
    """A kubernetes_asyncio ApiClient for the session's cluster, closed after the test."""
    async with await _api_client(kubeconfig) as api:
        yield api
