"""``fluxd get``: the status table of Flux objects, as ``flux get`` prints it.

``get sources git|oci|helm|chart|bucket|all``, ``get kustomizations`` (``ks``),
``get helmreleases`` (``hr``), ``get images repository|policy|update|all``,
``get receivers``, ``get alert-providers``, ``get alerts`` and ``get all`` list objects
from the API server and print each kind's columns (see :mod:`fluxd.cli.table`), with Flux's
flags ``-A``, ``-n``, ``-l``, ``--status-selector``, ``--no-header`` and ``-w/--watch``. Like
``flux``, a kind with nothing to show says so on stderr, and ``get all`` prints one block per
kind that has objects, naming each ``kind/name``; ``--show-source`` adds a Kustomization's or
HelmRelease's source after its name. ``--watch`` (one kind) prints the header,
then a row for each object as it is and each time it changes, until interrupted. The
Kubernetes client is imported by the command only, so the rest of the command line starts
without it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fluxd.cli.kinds import SOURCE_NOUNS
from fluxd.cli.table import StatusSelector, header, render_table, summary_row

if TYPE_CHECKING:
    from fluxd.kube.client import ApiClient

__all__ = ["add_get_command"]

#: ``get sources all`` in Flux's order; ``get all`` adds the appliers after them.
SOURCE_KINDS = ("OCIRepository", "Bucket", "GitRepository", "HelmRepository", "HelmChart")
IMAGE_KINDS = ("ImageRepository", "ImagePolicy", "ImageUpdateAutomation")
ALL_KINDS = (
    *SOURCE_KINDS,
    *IMAGE_KINDS,
    "HelmRelease",
    "Kustomization",
    "Receiver",
    "Provider",
    "Alert",
)
PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class _Query:
    """What one ``fluxd get`` invocation asks for."""

    kinds: tuple[str, ...]
    name: str | None
    namespace: str | None
    labels: str | None
    selector: StatusSelector | None
    no_header: bool
    watch: bool
    show_source: bool

    @property
    def with_kind(self) -> bool:
        return len(self.kinds) > 1

    @property
    def where(self) -> str:
        """The namespace in Flux's messages: quoted, or ``any`` across namespaces."""
        return "any" if self.namespace is None else f'"{self.namespace}"'


def add_get_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``get`` and its kinds to the command line."""
    get = commands.add_parser(
        "get",
        help="print the status of Flux objects",
        description="Print the status of Flux objects as 'flux get' does.",
    )
    kinds = get.add_subparsers(dest="kind", required=True)
    sources = kinds.add_parser(
        "sources", aliases=["source"], help="sources: git, oci, helm, chart, bucket, all"
    )
    source_kinds = sources.add_subparsers(dest="source", required=True)
    for noun in SOURCE_NOUNS:
        _kind_command(source_kinds, noun.word, (noun.kind,), summary=f"{noun.kind} statuses")
    _kind_command(source_kinds, "all", SOURCE_KINDS, summary="the statuses of every source kind")
    _kind_command(
        kinds,
        "kustomizations",
        ("Kustomization",),
        summary="Kustomization statuses",
        aliases=["ks", "kustomization"],
        with_source=True,
    )
    _kind_command(
        kinds,
        "helmreleases",
        ("HelmRelease",),
        summary="HelmRelease statuses",
        aliases=["hr", "helmrelease"],
        with_source=True,
    )
    images = kinds.add_parser(
        "images", aliases=["image"], help="image automation: repository, policy, update, all"
    )
    image_kinds = images.add_subparsers(dest="image", required=True)
    for word, kind in zip(("repository", "policy", "update"), IMAGE_KINDS, strict=True):
        _kind_command(image_kinds, word, (kind,), summary=f"{kind} statuses")
    _kind_command(image_kinds, "all", IMAGE_KINDS, summary="the statuses of every image kind")
    for word, kind in (
        ("receivers", "Receiver"),
        ("alert-providers", "Provider"),
        ("alerts", "Alert"),
    ):
        _kind_command(kinds, word, (kind,), summary=f"{kind} statuses", aliases=[word[:-1]])
    _kind_command(kinds, "all", ALL_KINDS, summary="the statuses of every kind")


def _kind_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    word: str,
    kinds: tuple[str, ...],
    *,
    summary: str,
    aliases: Sequence[str] = (),
    with_source: bool = False,
) -> None:
    """One ``get`` leaf listing ``kinds``, with the flags every such command takes
    (and ``--show-source`` for the kinds that have one)."""
    command = commands.add_parser(word, aliases=list(aliases), help=summary, description=summary)
    command.add_argument("name", nargs="?", help="only the object of this name")
    command.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="list the requested objects across all namespaces",
    )
    command.add_argument(
        "-n", "--namespace", default="flux-system", help="namespace to list (default flux-system)"
    )
    command.add_argument(
        "-l", "--label-selector", help="only objects with these labels, e.g. team=apps"
    )
    command.add_argument(
        "--status-selector",
        metavar="TYPE=STATUS",
        help="only objects whose condition TYPE has STATUS, e.g. ready=false or ready!=true",
    )
    command.add_argument(
        "--no-header", action="store_true", help="skip the header when printing the results"
    )
    command.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="after listing, print each change of the objects until interrupted",
    )
    command.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    if with_source:
        command.add_argument(
            "--show-source", action="store_true", help="show the source of each object"
        )
    command.set_defaults(handler=_get, kinds=kinds, show_source=False)


def _get(args: argparse.Namespace) -> int:
    try:
        selector = StatusSelector.parse(args.status_selector) if args.status_selector else None
    except ValueError as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1
    query = _Query(
        kinds=args.kinds,
        name=args.name,
        namespace=None if args.all_namespaces else args.namespace,
        labels=args.label_selector,
        selector=selector,
        no_header=args.no_header,
        watch=args.watch,
        show_source=args.show_source,
    )
    if query.watch and query.with_kind:
        print("✗ --watch follows one kind: name it instead of all", file=sys.stderr)
        return 1
    # The Kubernetes client loads for this command only.
    import aiohttp

    from fluxd.kube.client import ApiError, KubeconfigError

    try:
        return asyncio.run(_print_kinds(args.kubeconfig, query))
    except KeyboardInterrupt:
        return 0
    except (KubeconfigError, ApiError) as error:
        print(f"✗ {error}", file=sys.stderr)
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        print(f"✗ cannot reach the Kubernetes API server: {error}", file=sys.stderr)
    return 1


async def _print_kinds(kubeconfig: str | None, query: _Query) -> int:
    from fluxd.kube.client import connect

    api = await connect(kubeconfig)
    try:
        if query.watch:
            await _watch_kind(api, query.kinds[0], query)
        for kind in query.kinds:
            await _print_kind(api, kind, query)
    finally:
        await api.close()
    return 0


async def _print_kind(api: ApiClient, kind: str, query: _Query) -> None:
    """One kind's table; a kind whose CRD is missing is skipped by ``get all``."""
    from fluxd.kube.client import ApiError

    try:
        objects = await _list(api, kind, query)
    except ApiError as error:
        if query.with_kind and error.not_found:
            return
        raise
    if not objects:
        if query.name is not None:
            print(
                f"✗ {kind} object '{query.name}' not found in {query.where} namespace",
                file=sys.stderr,
            )
        elif not query.with_kind:
            print(f"✗ no {kind} objects found in {query.where} namespace", file=sys.stderr)
        return
    all_namespaces = query.namespace is None
    rows = [
        summary_row(
            obj,
            all_namespaces=all_namespaces,
            with_kind=query.with_kind,
            show_source=query.show_source,
        )
        for obj in objects
        if query.selector is None or query.selector.matches(obj)
    ]
    if query.with_kind and not rows:
        return
    titles = (
        []
        if query.no_header
        else header(all_namespaces=all_namespaces, kind=kind, show_source=query.show_source)
    )
    sys.stdout.write(render_table(titles, rows))
    if query.with_kind:
        sys.stdout.write("\n")


async def _watch_kind(api: ApiClient, kind: str, query: _Query) -> None:
    """The header, then one row per object and per change of it, as the watch delivers."""
    from fluxd.api import lookup
    from fluxd.kube.client import watch
    from fluxd.kube.objects import resource_of

    all_namespaces = query.namespace is None
    if not query.no_header:
        titles = header(all_namespaces=all_namespaces, kind=kind, show_source=query.show_source)
        sys.stdout.write(render_table(titles, []))
    changes = watch(
        api,
        resource_of(lookup(kind)),
        query.namespace,
        label_selector=query.labels,
        field_selector=f"metadata.name={query.name}" if query.name is not None else None,
    )
    async for change, obj in changes:
        if change not in ("ADDED", "MODIFIED"):
            continue
        if query.selector is None or query.selector.matches(obj):
            row = summary_row(
                obj, all_namespaces=all_namespaces, with_kind=False, show_source=query.show_source
            )
            sys.stdout.write(render_table([], [row]))
            sys.stdout.flush()


async def _list(api: ApiClient, kind: str, query: _Query) -> list[dict[str, Any]]:
    """Every object of ``kind`` the query names, across all pages."""
    from fluxd.api import lookup
    from fluxd.kube.client import list_page
    from fluxd.kube.objects import resource_of

    resource = resource_of(lookup(kind))
    field_selector = f"metadata.name={query.name}" if query.name is not None else None
    objects: list[dict[str, Any]] = []
    continue_token: str | None = None
    while True:
        page = await list_page(
            api,
            resource,
            query.namespace,
            label_selector=query.labels,
            field_selector=field_selector,
            limit=PAGE_SIZE,
            continue_token=continue_token,
        )
        for item in page.get("items") or []:
            item.setdefault("kind", kind)
            objects.append(item)
        continue_token = (page.get("metadata") or {}).get("continue") or None
        if continue_token is None:
            return objects
