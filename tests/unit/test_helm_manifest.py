"""A release's objects as Flux lists them: hooks out, namespaces complemented, CRDs last."""

from __future__ import annotations

import asyncio
from typing import Any

from fluxd.apply.errors import ApplyError
from fluxd.helm.manifest import inventory_entries, release_refs
from fluxd.kube.resources import Resource

MANIFEST = """\
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "reader:all"}
---
apiVersion: v1
kind: Pod
metadata:
  name: smoke-test
  annotations: {"helm.sh/hook": test}
---
apiVersion: example.com/v1
kind: Gadget
metadata: {name: unknown-kind}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
"""
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
"""


class Mapper:
    """The REST mapper's answer for the kinds of the manifest (fluxd's seam)."""

    async def resource_for(self, api_version: str, kind: str) -> Resource:
        if kind == "ConfigMap":
            return Resource("", "v1", "configmaps")
        if kind == "ClusterRole":
            return Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False)
        raise ApplyError(f'no matches for kind "{kind}"')


def test_release_objects_become_flux_inventory_entries() -> None:
    """Namespaced kinds get the release namespace, cluster-scoped and unknown kinds none;
    the test hook is left out; the duplicate counts once; the chart's CRDs come last."""
    mapper: Any = Mapper()
    refs = asyncio.run(release_refs(MANIFEST, namespace="apps", crds=[CRD], mapper=mapper))
    assert inventory_entries(refs) == [
        {"id": "apps_settings__ConfigMap", "v": "v1"},
        {"id": "_reader__all_rbac.authorization.k8s.io_ClusterRole", "v": "v1"},
        {"id": "_unknown-kind_example.com_Gadget", "v": "v1"},
        {"id": "_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition", "v": "v1"},
    ]
