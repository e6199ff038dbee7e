"""``fluxd stats``: how many objects of each Flux kind run, fail and are suspended, and
the storage their artifacts take, as ``flux stats`` reports it.

One row per kind in Flux's order: RECONCILERS (the kind), RUNNING (objects not
suspended), FAILING (``Ready=False``), SUSPENDED and STORAGE (the sum of
``status.artifact.size``, in binary units, ``-`` when none). A kind whose CRD is not
installed counts as empty, as Flux counts it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from fluxd.cli.session import run_session
from fluxd.cli.table import render_table

if TYPE_CHECKING:
    from fluxd.kube.client import ApiClient

__all__ = ["STATS_KINDS", "add_stats_command", "format_size", "kind_row"]

#: The kinds ``flux stats`` reports, in its order.
STATS_KINDS = (
    "GitRepository",
    "OCIRepository",
    "HelmRepository",
    "HelmChart",
    "Bucket",
    "Kustomization",
    "HelmRelease",
    "Alert",
    "Provider",
    "Receiver",
    "ImageUpdateAutomation",
    "ImagePolicy",
    "ImageRepository",
)
HEADERS = ["RECONCILERS", "RUNNING", "FAILING", "SUSPENDED", "STORAGE"]
PAGE_SIZE = 500
_UNIT = 1024


def format_size(size: int) -> str:
    """Bytes as Flux prints them: ``-`` for none, ``512 B``, ``1.5 KiB``, ``3.0 MiB``..."""
    if size == 0:
        return "-"
    if size < _UNIT:
        return f"{size} B"
    divisor, exponent = _UNIT, 0
    rest = size // _UNIT
    while rest >= _UNIT:
        divisor *= _UNIT
        exponent += 1
        rest //= _UNIT
    return f"{size / divisor:.1f} {'KMGTPE'[exponent]}iB"


def _failing(obj: Mapping[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "False"
        for c in conditions
    )


def kind_row(kind: str, objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """The row of one kind from its objects."""
    total = suspended = failing = size = 0
    for obj in objects:
        total += 1
        if (obj.get("spec") or {}).get("suspend") is True:
            suspended += 1
        if _failing(obj):
            failing += 1
        artifact_size = ((obj.get("status") or {}).get("artifact") or {}).get("size")
        if isinstance(artifact_size, int):
            size += artifact_size
    return [kind, str(total - suspended), str(failing), str(suspended), format_size(size)]


def add_stats_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``stats`` to the command line."""
    summary = "Print how many Flux objects of each kind run, fail and are suspended."
    stats = commands.add_parser(
        "stats", help="print the reconcile statistics of Flux objects", description=summary
    )
    stats.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="count the objects across all namespaces",
    )
    stats.add_argument(
        "-n", "--namespace", default="flux-system", help="namespace (default flux-system)"
    )
    stats.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    stats.set_defaults(handler=_stats)


def _stats(args: argparse.Namespace) -> int:
    namespace = None if args.all_namespaces else args.namespace

    async def work(api: ApiClient) -> int:
        rows = [kind_row(kind, await _objects(api, kind, namespace)) for kind in STATS_KINDS]
        sys.stdout.write(render_table(HEADERS, rows))
        return 0

    return run_session(args.kubeconfig, work)


async def _objects(api: ApiClient, kind: str, namespace: str | None) -> list[dict[str, Any]]:
    """Every object of ``kind``; none when its CRD is not installed."""
    from fluxd.api import lookup
    from fluxd.kube.client import ApiError, list_page
    from fluxd.kube.objects import resource_of

    resource = resource_of(lookup(kind))
    found: list[dict[str, Any]] = []
    continue_token: str | None = None
    while True:
        try:
            page = await list_page(
                api, resource, namespace, limit=PAGE_SIZE, continue_token=continue_token
            )
        except ApiError as error:
            if error.not_found:
                return []
            raise
        found.extend(page.get("items") or [])
        continue_token = (page.get("metadata") or {}).get("continue") or None
        if continue_token is None:
            return found
