"""``fluxd trace NAME --kind K --api-version V``: which Flux object applied an object,
from which source and revision, as ``flux trace`` reports it.

An applied object carries its applier in labels: ``kustomize.toolkit.fluxcd.io/name``
and ``/namespace`` for a Kustomization, ``helm.toolkit.fluxcd.io/name`` and
``/namespace`` for a HelmRelease. An object without them (a Pod, a ReplicaSet) is
traced through its ``ownerReferences`` to an owner that has them. The report then
follows the applier to its source: a Kustomization's ``sourceRef``; a HelmRelease's
HelmChart (``status.helmChart``) and that chart's source, or its ``chartRef``. Each
object is one block of ``Label: value`` lines, separated by ``---``, each with its
revision and its Ready condition's time and message. Rendering is pure and tested
without a cluster; an object no Flux object manages is an error, exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fluxd.cli.session import CommandError, run_session

if TYPE_CHECKING:
    from fluxd.apply import RESTMapper
    from fluxd.kube.client import ApiClient

__all__ = [
    "Block",
    "add_trace_command",
    "applier_block",
    "applier_of",
    "render_trace",
    "source_block",
]

KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
HELM_GROUP = "helm.toolkit.fluxcd.io"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
#: How many ``ownerReferences`` hops to follow before giving up (Pod → ReplicaSet →
#: Deployment needs two).
MAX_OWNER_HOPS = 5
KUSTOMIZE_WIDTH = 17
HELM_WIDTH = 16


@dataclass(slots=True)
class Block:
    """One object of the report: its ``Label: value`` lines in order."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def add(self, label: str, value: object) -> None:
        self.lines.append((label, str(value)))


def applier_of(obj: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """``(kind, namespace, name)`` of the Kustomization or HelmRelease whose labels
    ``obj`` carries, or ``None``."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for kind, group in (("Kustomization", KUSTOMIZE_GROUP), ("HelmRelease", HELM_GROUP)):
        name = labels.get(f"{group}/name")
        namespace = labels.get(f"{group}/namespace")
        if name and namespace:
            return kind, str(namespace), str(name)
    return None


def _ready_lines(block: Block, obj: Mapping[str, Any]) -> None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None:
        block.add("Status", "Unknown")
        return
    when = ready.get("lastTransitionTime") or ""
    failed = ready.get("status") == "False"
    block.add(
        "Status",
        f"Last reconciliation failed at {when}" if failed else f"Last reconciled at {when}",
    )
    block.add("Message", ready.get("message") or "")


def _named(kind: str, obj: Mapping[str, Any]) -> Block:
    meta = obj.get("metadata") or {}
    block = Block()
    block.add(kind, meta.get("name") or "")
    block.add("Namespace", meta.get("namespace") or "")
    return block


def applier_block(obj: Mapping[str, Any]) -> Block:
    """The block of a Kustomization or HelmRelease."""
    kind = str(obj.get("kind") or "")
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    block = _named(kind, obj)
    if spec.get("targetNamespace"):
        block.add("Target", spec["targetNamespace"])
    if kind == "Kustomization":
        block.add("Path", spec.get("path") or "")
        block.add("Revision", status.get("lastAppliedRevision") or "")
    else:
        block.add("Revision", status.get("lastAttemptedRevision") or "")
    _ready_lines(block, obj)
    return block


def source_block(obj: Mapping[str, Any]) -> Block:
    """The block of a source: its address, the reference it follows, its revision."""
    kind = str(obj.get("kind") or "")
    spec = obj.get("spec") or {}
    block = _named(kind, obj)
    if kind == "HelmChart":
        block.add("Chart", spec.get("chart") or "")
        block.add("Version", spec.get("version") or "")
    elif kind == "Bucket":
        block.add("Endpoint", spec.get("endpoint") or "")
        block.add("Bucket", spec.get("bucketName") or "")
    elif kind == "ExternalArtifact":
        ref = spec.get("sourceRef") or {}
        block.add("Source", f"{ref.get('kind')}/{ref.get('namespace')}/{ref.get('name')}")
    else:
        block.add("URL", spec.get("url") or "")
    ref = spec.get("ref") or {}
    for key, label in (
        ("tag", "Tag"),
        ("semver", "Tag"),
        ("digest", "Digest"),
        ("branch", "Branch"),
    ):
        if ref.get(key):
            block.add(label, ref[key])
            break
    artifact = (obj.get("status") or {}).get("artifact") or {}
    if artifact.get("revision"):
        block.add("Revision", artifact["revision"])
    _ready_lines(block, obj)
    return block


def render_trace(obj: Mapping[str, Any], blocks: list[Block]) -> str:
    """The whole report: the traced object, then one block per Flux object behind it."""
    meta = obj.get("metadata") or {}
    head = Block()
    head.add("Object", f"{obj.get('kind')}/{meta.get('name')}")
    if meta.get("namespace"):
        head.add("Namespace", meta["namespace"])
    head.add("Status", "Managed by Flux")
    every = [head, *blocks]
    # Flux's columns: 17 wide in a Kustomization's report, 16 in a HelmRelease's.
    helm = bool(blocks) and blocks[0].lines[0][0] == "HelmRelease"
    width = HELM_WIDTH if helm else KUSTOMIZE_WIDTH
    text = ["\n"]
    for index, block in enumerate(every):
        if index:
            text.append("---\n")
        text.extend(f"{(label + ':').ljust(width)}{value}\n" for label, value in block.lines)
    return "".join(text)


def add_trace_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``trace`` to the command line."""
    summary = "show which Flux object applied an object, from which source and revision"
    command = commands.add_parser("trace", help=summary, description=summary)
    command.add_argument("name", help="the object's name")
    command.add_argument("--kind", required=True, help="the object's kind, e.g. Deployment")
    command.add_argument(
        "--api-version", required=True, help="the object's API version, e.g. apps/v1"
    )
    command.add_argument("-n", "--namespace", default="flux-system", help="the object's namespace")
    command.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    command.set_defaults(handler=_trace)


def _trace(args: argparse.Namespace) -> int:
    async def work(api: ApiClient) -> int:
        from fluxd.apply import RESTMapper

        tracer = _Tracer(api, RESTMapper(api))
        obj = await tracer.read(args.api_version, args.kind, args.namespace, args.name)
        where = f"{args.kind}/{args.name} in namespace {args.namespace}"
        applier = await tracer.applier(obj)
        if applier is None:
            raise CommandError(f"failed to trace {where}: object not managed by Flux")
        kind, namespace, name = applier
        group = KUSTOMIZE_GROUP if kind == "Kustomization" else HELM_GROUP
        owner = await tracer.flux(kind, group, namespace, name)
        blocks = [applier_block(owner)]
        for source in await tracer.sources(owner):
            blocks.append(source_block(source))
        sys.stdout.write(render_trace(obj, blocks))
        return 0

    return run_session(args.kubeconfig, work)


@dataclass(slots=True)
class _Tracer:
    """Reads the objects of a trace from the API server."""

    api: ApiClient
    mapper: RESTMapper

    async def read(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        from fluxd.apply import ApplyError
        from fluxd.kube.client import get

        try:
            resource = await self.mapper.resource_for(api_version, kind)
        except ApplyError as error:
            raise CommandError(str(error)) from None
        found = await get(
            self.api, resource, namespace if resource.namespaced else None, name, missing_ok=True
        )
        if found is None:
            where = f" in namespace {namespace}" if resource.namespaced else ""
            raise CommandError(f"failed to find object: {kind} '{name}' not found{where}")
        found.setdefault("kind", kind)
        return found

    async def applier(self, obj: Mapping[str, Any]) -> tuple[str, str, str] | None:
        """The applier of ``obj``, or of the nearest owner that has one."""
        current: Mapping[str, Any] = obj
        for _ in range(MAX_OWNER_HOPS):
            found = applier_of(current)
            if found is not None:
                return found
            owners = (current.get("metadata") or {}).get("ownerReferences") or []
            if not owners:
                return None
            # The controlling owner is the one that created the object.
            owner = next((o for o in owners if o.get("controller")), owners[0])
            namespace = str((current.get("metadata") or {}).get("namespace") or "")
            try:
                current = await self.read(
                    str(owner.get("apiVersion")),
                    str(owner.get("kind")),
                    namespace,
                    str(owner.get("name")),
                )
            except CommandError:
                return None
        return None

    async def flux(self, kind: str, group: str, namespace: str, name: str) -> dict[str, Any]:
        from fluxd.api import lookup
        from fluxd.kube.client import get
        from fluxd.kube.objects import resource_of

        found = await get(
            self.api, resource_of(lookup(kind, group)), namespace, name, missing_ok=True
        )
        if found is None:
            raise CommandError(f"failed to find {kind}: '{namespace}/{name}' not found")
        found.setdefault("kind", kind)
        return found

    async def _reference(self, ref: Mapping[str, Any], namespace: str) -> dict[str, Any]:
        return await self.flux(
            str(ref.get("kind")),
            SOURCE_GROUP,
            str(ref.get("namespace") or namespace),
            str(ref.get("name")),
        )

    async def sources(self, owner: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The source objects behind the applier, nearest first."""
        namespace = str(owner["metadata"]["namespace"])
        spec = owner.get("spec") or {}
        if owner.get("kind") == "Kustomization":
            return [await self._reference(spec.get("sourceRef") or {}, namespace)]
        if spec.get("chartRef"):
            return [await self._reference(spec["chartRef"], namespace)]
        chart_name = str((owner.get("status") or {}).get("helmChart") or "")
        if not chart_name:
            return []
        chart_namespace, _, name = chart_name.rpartition("/")
        chart = await self.flux("HelmChart", SOURCE_GROUP, chart_namespace or namespace, name)
        source = await self._reference(
            (chart.get("spec") or {}).get("sourceRef") or {}, chart_namespace
        )
        return [chart, source]
