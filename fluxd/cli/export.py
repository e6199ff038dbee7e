"""``fluxd export``: Flux objects as clean YAML to keep in git, as ``flux export`` writes them.

Each object becomes ``apiVersion``, ``kind``, ``metadata`` (name, namespace, labels and
annotations, minus kubectl's ``last-applied-configuration`` bookkeeping) and ``spec``:
no status, no server-set metadata (uid, resourceVersion, generation, managedFields,
timestamps, finalizers), so applying the output to another cluster creates the same
objects. Each document starts with ``---``. The nouns are Flux's: ``source git|oci|
helm|chart|bucket|external``, ``kustomization`` (``ks``), ``helmrelease`` (``hr``),
``alert``, ``alert-provider``, ``receiver``, ``image repository|policy|update``. A source
exported ``--with-credentials`` is followed by the Secret of its ``spec.secretRef`` (name,
namespace, ``type`` and ``data``), so the pair applies as is elsewhere.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fluxd.cli.kinds import NOUNS, Noun
from fluxd.cli.session import CommandError, run_session

if TYPE_CHECKING:
    from fluxd.kube.client import ApiClient

__all__ = ["add_export_command", "clean_object", "render_exports"]

#: Annotations a client writes for its own bookkeeping, not part of what the user declared.
BOOKKEEPING_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
PAGE_SIZE = 500

#: Flux exports ExternalArtifacts too, which nothing else of the command line names.
EXPORT_NOUNS = (*NOUNS, Noun(("source", "external"), "ExternalArtifact", "source external"))
_GROUP_HELP = {
    "source": "sources: git, oci, helm, chart, bucket, external",
    "image": "image automation: repository, policy, update",
}


def clean_object(obj: Mapping[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """What ``flux export`` keeps of a live object."""
    meta = obj.get("metadata") or {}
    kept: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    labels = meta.get("labels") or {}
    if labels:
        kept["labels"] = dict(labels)
    annotations = {
        key: value
        for key, value in (meta.get("annotations") or {}).items()
        if key not in BOOKKEEPING_ANNOTATIONS
    }
    if annotations:
        kept["annotations"] = annotations
    cleaned: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": kept}
    if obj.get("spec") is not None:
        cleaned["spec"] = obj["spec"]
    return cleaned


def render_exports(objects: Sequence[Mapping[str, Any]]) -> str:
    """The YAML stream: each document after a ``---`` line."""
    from fluxd.yaml import dump_documents

    return "".join(f"---\n{dump_documents([obj])}" for obj in objects)


def add_export_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export`` and its nouns to the command line."""
    export = commands.add_parser(
        "export",
        help="export Flux objects as YAML",
        description="Export Flux objects as YAML, as 'flux export' does.",
    )
    nouns = export.add_subparsers(dest="noun", required=True)
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for noun in EXPORT_NOUNS:
        parent = nouns
        if noun.group is not None:
            if noun.group not in groups:
                group = nouns.add_parser(noun.group, help=_GROUP_HELP[noun.group])
                groups[noun.group] = group.add_subparsers(dest=noun.group, required=True)
            parent = groups[noun.group]
        _noun_command(parent, noun)


def _noun_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], noun: Noun
) -> None:
    summary = f"export {noun.kind} objects as YAML"
    command = commands.add_parser(
        noun.word, aliases=list(noun.aliases), help=summary, description=summary
    )
    command.add_argument("name", nargs="?", help="the object to export")
    command.add_argument("--all", action="store_true", help="every object of the namespace")
    if noun.group == "source":
        command.add_argument(
            "--with-credentials",
            action="store_true",
            help="follow each source with the Secret its spec.secretRef names",
        )
    command.add_argument(
        "-n", "--namespace", default="flux-system", help="namespace (default flux-system)"
    )
    command.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    command.set_defaults(handler=_export, kind=noun.kind, with_credentials=False)


def _export(args: argparse.Namespace) -> int:
    if not args.all and args.name is None:
        print("✗ name is required (or --all)", file=sys.stderr)
        return 1

    async def work(api: ApiClient) -> int:
        objects = await _read(api, args.kind, args.namespace, None if args.all else args.name)
        if args.with_credentials:
            objects = [
                exported for obj in objects for exported in [obj, *await _credentials(api, obj)]
            ]
        sys.stdout.write(render_exports(objects))
        return 0

    return run_session(args.kubeconfig, work)


async def _read(
    api: ApiClient, kind: str, namespace: str, name: str | None
) -> list[dict[str, Any]]:
    """The cleaned object named ``name``, or every object of ``kind`` in ``namespace``."""
    from fluxd.api import lookup
    from fluxd.kube.client import get, list_page
    from fluxd.kube.objects import resource_of

    info = lookup(kind)
    resource = resource_of(info)
    if name is not None:
        obj = await get(api, resource, namespace, name, missing_ok=True)
        if obj is None:
            raise CommandError(f"{kind} '{namespace}/{name}' not found")
        return [clean_object(obj, info.api_version, kind)]
    found: list[dict[str, Any]] = []
    continue_token: str | None = None
    while True:
        page = await list_page(
            api, resource, namespace, limit=PAGE_SIZE, continue_token=continue_token
        )
        found.extend(clean_object(obj, info.api_version, kind) for obj in page.get("items") or [])
        continue_token = (page.get("metadata") or {}).get("continue") or None
        if continue_token is None:
            break
    if not found:
        raise CommandError(f"no {kind} objects found in {namespace} namespace")
    return found


async def _credentials(api: ApiClient, source: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Secret ``source``'s ``spec.secretRef`` names, cleaned; none without one."""
    from fluxd.kube.client import get
    from fluxd.kube.resources import SECRETS

    name = ((source.get("spec") or {}).get("secretRef") or {}).get("name")
    if not name:
        return []
    namespace = source["metadata"]["namespace"]
    secret = await get(api, SECRETS, namespace, name, missing_ok=True)
    if secret is None:
        raise CommandError(f"failed to retrieve secret {name}: not found in {namespace}")
    exported: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
    }
    if secret.get("data"):
        exported["data"] = secret["data"]
    exported["type"] = secret.get("type") or "Opaque"
    return [exported]
