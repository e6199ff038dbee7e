"""``fluxd tree kustomization NAME``: what a Kustomization reconciles, as ``flux tree``
prints it.

The Kustomization's ``status.inventory`` is the tree's first level, each object as
``Kind/namespace/name``. A Kustomization in it is expanded into its own inventory, and
a HelmRelease into the objects of its current Helm release, read as Flux reads them
from the release's storage Secret (``sh.helm.release.v1.<name>.v<version>`` in
``status.storageNamespace``; a base64, usually gzipped, JSON release whose manifest
names the objects), plus the CRDs it installed. Objects that live in a remote cluster
(``spec.kubeConfig``) are listed but not expanded. ``--compact`` keeps Flux objects only;
``-o json|yaml`` prints the tree as ``flux tree`` does (each object's ``Namespace``,
``Name`` and ``GroupKind`` under ``resource``, what it reconciles under ``resources``).
Building the tree and drawing it are pure and tested without a cluster.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import gzip
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fluxd.cli.session import CommandError, run_session

if TYPE_CHECKING:
    from fluxd.apply import ObjectRef, RESTMapper
    from fluxd.kube.client import ApiClient

__all__ = ["Node", "add_tree_command", "release_manifest", "render_tree", "tree_document"]

FLUX_GROUP_SUFFIX = "toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
HELM_GROUP = "helm.toolkit.fluxcd.io"
_GZIP_MAGIC = b"\x1f\x8b\x08"
_CRDS = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")


@dataclass(slots=True)
class Node:
    """One object of the tree and what it reconciles."""

    ref: ObjectRef
    children: list[Node] = field(default_factory=list)


def render_tree(root: Node) -> str:
    """The tree drawn as Flux draws it: the root, then ``├──``/``└──`` branches."""
    lines = [str(root.ref)]
    _branches(root.children, "", lines)
    return "".join(f"{line}\n" for line in lines)


def _branches(children: list[Node], indent: str, lines: list[str]) -> None:
    for index, child in enumerate(children):
        last = index == len(children) - 1
        lines.append(f"{indent}{'└── ' if last else '├── '}{child.ref}")
        _branches(child.children, indent + ("    " if last else "│   "), lines)


def tree_document(node: Node) -> dict[str, Any]:
    """The tree as ``flux tree -o json|yaml`` prints it; ``resources`` is left out of a
    node that reconciles nothing."""
    ref = node.ref
    resource = {
        "Namespace": ref.namespace,
        "Name": ref.name,
        "GroupKind": {"Group": ref.group, "Kind": ref.kind},
    }
    document: dict[str, Any] = {"resource": resource}
    if node.children:
        document["resources"] = [tree_document(child) for child in node.children]
    return document


def _print_tree(root: Node, output: str | None) -> str:
    if output == "json":
        return json.dumps(tree_document(root), indent=2) + "\n"
    if output == "yaml":
        from fluxd.yaml import dump_documents

        return dump_documents([tree_document(root)]) + "\n"
    return render_tree(root)


def release_manifest(secret: Mapping[str, Any]) -> str:
    """The manifest of the Helm release stored in ``secret`` (a Secret as the API server
    returns it); :class:`ValueError` when it does not hold a Helm release."""
    data = (secret.get("data") or {}).get("release")
    if not isinstance(data, str):
        raise ValueError("it has no 'release' data")
    try:
        encoded = base64.b64decode(data, validate=True)
        payload = base64.b64decode(encoded, validate=True)
        if payload[:3] == _GZIP_MAGIC:
            payload = gzip.decompress(payload)
        release = json.loads(payload)
    except (binascii.Error, OSError, EOFError, ValueError) as error:
        raise ValueError(f"its release data does not decode: {error}") from error
    if not isinstance(release, dict):
        raise ValueError("its release data is not a JSON object")
    return str(release.get("manifest") or "")


def add_tree_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tree kustomization`` to the command line."""
    tree = commands.add_parser(
        "tree",
        help="print the objects reconciled by a Flux object",
        description="Print the objects reconciled by a Flux object, as 'flux tree' does.",
    )
    kinds = tree.add_subparsers(dest="kind", required=True)
    summary = "print the inventory of a Kustomization as a tree"
    command = kinds.add_parser("kustomization", aliases=["ks"], help=summary, description=summary)
    command.add_argument("name", help="the Kustomization")
    command.add_argument("--compact", action="store_true", help="list Flux objects only")
    command.add_argument(
        "-o", "--output", choices=("json", "yaml"), help="print the tree as JSON or YAML"
    )
    command.add_argument(
        "-n", "--namespace", default="flux-system", help="namespace (default flux-system)"
    )
    command.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    command.set_defaults(handler=_tree)


def _tree(args: argparse.Namespace) -> int:
    async def work(api: ApiClient) -> int:
        from fluxd.apply import ObjectRef, RESTMapper

        builder = _TreeBuilder(api, RESTMapper(api), compact=args.compact)
        kustomization = await builder.read(
            "Kustomization", KUSTOMIZE_GROUP, args.namespace, args.name
        )
        root = ObjectRef(KUSTOMIZE_GROUP, "Kustomization", args.namespace, args.name)
        node = Node(root)
        await builder.expand_kustomization(node, kustomization)
        sys.stdout.write(_print_tree(node, args.output))
        return 0

    return run_session(args.kubeconfig, work)


@dataclass(slots=True)
class _TreeBuilder:
    """Reads what each node of the tree reconciles from the API server."""

    api: ApiClient
    mapper: RESTMapper
    compact: bool

    def _shown(self, ref: ObjectRef) -> bool:
        return not self.compact or FLUX_GROUP_SUFFIX in ref.group

    async def read(self, kind: str, group: str, namespace: str, name: str) -> dict[str, Any]:
        from fluxd.api import lookup
        from fluxd.kube.client import get
        from fluxd.kube.objects import resource_of

        resource = resource_of(lookup(kind, group))
        obj = await get(self.api, resource, namespace, name, missing_ok=True)
        if obj is None:
            raise CommandError(f"{kind} '{namespace}/{name}' not found")
        return obj

    async def expand_kustomization(self, node: Node, kustomization: Mapping[str, Any]) -> None:
        """Add the objects of ``kustomization``'s inventory under ``node``, recursively."""
        from fluxd.apply import ObjectRef, parse

        meta = kustomization.get("metadata") or {}
        myself = ObjectRef(
            KUSTOMIZE_GROUP, "Kustomization", str(meta.get("namespace")), str(meta.get("name"))
        )
        status = kustomization.get("status") or {}
        try:
            refs = parse((status.get("inventory") or {}).get("entries") or [])
        except ValueError as error:
            raise CommandError(
                f"Kustomization '{myself.namespace}/{myself.name}': {error}"
            ) from None
        remote = bool((kustomization.get("spec") or {}).get("kubeConfig"))
        for ref in refs:
            if not self._shown(ref) or ref.identity == myself.identity:
                continue
            child = Node(ref)
            node.children.append(child)
            if ref.group == HELM_GROUP and ref.kind == "HelmRelease":
                await self._expand_helmrelease(child, ref)
            elif ref.group == KUSTOMIZE_GROUP and ref.kind == "Kustomization" and not remote:
                nested = await self.read(ref.kind, ref.group, ref.namespace, ref.name)
                await self.expand_kustomization(child, nested)

    async def _expand_helmrelease(self, node: Node, ref: ObjectRef) -> None:
        """Add the objects of the HelmRelease's current release under ``node``; nothing
        when it targets a remote cluster or has no stored release yet."""
        from fluxd.kube.client import get
        from fluxd.kube.resources import SECRETS

        release = await self.read(ref.kind, ref.group, ref.namespace, ref.name)
        spec = release.get("spec") or {}
        status = release.get("status") or {}
        history = status.get("history") or []
        storage_namespace = status.get("storageNamespace")
        if spec.get("kubeConfig") or not storage_namespace or not history:
            return
        latest = history[0]
        secret_name = f"sh.helm.release.v1.{latest.get('name')}.v{latest.get('version')}"
        secret = await get(self.api, SECRETS, storage_namespace, secret_name, missing_ok=True)
        if secret is None:
            return
        where = f"HelmRelease '{ref.namespace}/{ref.name}'"
        try:
            manifest = release_manifest(secret)
        except ValueError as error:
            raise CommandError(f"the Helm storage object of {where}: {error}") from None
        objects = await self._release_objects(manifest, str(latest.get("namespace") or ""), where)
        listed = {obj.identity for obj in objects}
        objects.extend(
            crd for crd in await self._release_crds(ref, spec) if crd.identity not in listed
        )
        node.children.extend(Node(obj) for obj in objects if self._shown(obj))

    async def _release_objects(self, manifest: str, namespace: str, where: str) -> list[ObjectRef]:
        """The objects of a release manifest, namespaced ones without a namespace placed
        in the release's namespace."""
        from fluxd.apply import ApplyError, ObjectRef
        from fluxd.yaml import YamlError, load_documents

        try:
            documents = load_documents(manifest.encode(), source=where, kyaml_round_trip=False)
        except YamlError as error:
            raise CommandError(f"the Helm storage object of {where}: {error}") from None
        refs: list[ObjectRef] = []
        for document in documents:
            ref = ObjectRef.of(document)
            if not ref.namespace:
                try:
                    resource = await self.mapper.resource_for(ref.api_version, ref.kind)
                except ApplyError:
                    resource = None
                if resource is not None and resource.namespaced:
                    ref = ObjectRef(ref.group, ref.kind, namespace, ref.name, ref.version)
            refs.append(ref)
        return refs

    async def _release_crds(self, ref: ObjectRef, spec: Mapping[str, Any]) -> list[ObjectRef]:
        """CRDs the HelmRelease installed (labelled with its name and namespace) when its
        install or upgrade manages CRDs."""
        from fluxd.apply import ObjectRef
        from fluxd.kube.client import list_page
        from fluxd.kube.resources import Resource

        policies = [
            ((spec.get(action) or {}).get("crds") or "") for action in ("install", "upgrade")
        ]
        if not any(policy and policy != "Skip" for policy in policies):
            return []
        selector = f"{HELM_GROUP}/name={ref.name},{HELM_GROUP}/namespace={ref.namespace}"
        group, version, plural = _CRDS
        page = await list_page(
            self.api, Resource(group, version, plural, namespaced=False), label_selector=selector
        )
        return [
            ObjectRef(
                group, "CustomResourceDefinition", "", str((crd.get("metadata") or {}).get("name"))
            )
            for crd in page.get("items") or []
        ]
