"""``fluxd logs``: fluxd's own log lines, filtered and printed as ``flux logs`` prints them.

The lines come from the fluxd pods' container logs, read through the API server
(``pods/{pod}/log``), the pods found by the label ``app.kubernetes.io/name=fluxd`` in
``--flux-namespace``, running ones first. Each JSON line (see
:mod:`fluxd.runtime.logs` for its keys) is kept when it matches ``--level``,
``--kind``, ``--name`` and the namespace (``-n``, default flux-system, or any with
``-A``), as Flux filters, and printed as ``<ts> <level> <Kind>/<name>.<namespace> -
<msg> <error>``; lines that are not JSON objects (a crash's traceback) are skipped,
as Flux skips them. ``--tail``, ``--since`` and ``-f`` are passed to the API server.
Filtering and formatting are pure, tested over sample lines without a cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fluxd.cli.session import CommandError, run_session

if TYPE_CHECKING:
    from fluxd.kube.client import ApiClient

__all__ = ["LogFilter", "add_logs_command", "log_query", "pick_pods", "render_line"]

POD_SELECTOR = "app.kubernetes.io/name=fluxd"
LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which log lines to print; ``None`` lets any value through."""

    level: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None

    def matches(self, entry: Mapping[str, Any]) -> bool:
        """Whether ``entry`` passes every filter (kind, name, namespace ignoring case)."""
        kinds = {str(entry.get(key) or "").casefold() for key in ("kind", "controllerKind")}
        return (
            (self.level is None or str(entry.get("level") or "") == self.level)
            and (self.kind is None or self.kind.casefold() in kinds)
            and (self.name is None or self.name.casefold() == _text(entry, "name").casefold())
            and (
                self.namespace is None
                or self.namespace.casefold() == _text(entry, "namespace").casefold()
            )
        )


def _text(entry: Mapping[str, Any], key: str) -> str:
    return str(entry.get(key) or "")


def render_line(line: str, wanted: LogFilter) -> str | None:
    """The line as ``flux logs`` prints it, or ``None`` when it is filtered out or is not
    a JSON log entry."""
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not wanted.matches(entry):
        return None
    kind = _text(entry, "kind") or _text(entry, "controllerKind")
    name = _text(entry, "name")
    subject = f"{kind}/{name}.{_text(entry, 'namespace')}" if name else kind
    text = f"{_text(entry, 'ts')} {_text(entry, 'level')} {subject} - {_text(entry, 'msg')}"
    error = _text(entry, "error")
    return f"{text} {error}" if error else text


def pick_pods(pods: Sequence[Mapping[str, Any]]) -> list[str]:
    """The names of the pods to read, running ones first and, among equals, the newest
    first (the one a rollout leaves serving)."""

    def order(pod: Mapping[str, Any]) -> tuple[bool, str]:
        running = (pod.get("status") or {}).get("phase") == "Running"
        created = str((pod.get("metadata") or {}).get("creationTimestamp") or "")
        return running, created

    return [str(pod["metadata"]["name"]) for pod in sorted(pods, key=order, reverse=True)]


def log_query(
    *, follow: bool, tail: int | None, since_seconds: float | None, containers: int
) -> dict[str, str]:
    """The query of the ``pods/{pod}/log`` request: the container by name when the pod
    has more than one (``manager``, as in Flux's controllers, so that ``flux logs``
    reads fluxd too), since-durations rounded up to whole seconds."""
    from fluxd.api.install import CONTAINER

    query: dict[str, str] = {}
    if follow:
        query["follow"] = "true"
    if tail is not None:
        query["tailLines"] = str(tail)
    if since_seconds is not None:
        query["sinceSeconds"] = str(max(1, math.ceil(since_seconds)))
    if containers > 1:
        query["container"] = CONTAINER
    return query


def add_logs_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``logs`` to the command line."""
    summary = "print fluxd's log lines, filtered as 'flux logs' filters them"
    command = commands.add_parser("logs", help=summary, description=summary)
    command.add_argument("--level", choices=LEVELS, help="only lines of this level")
    command.add_argument("--kind", help="only lines about this kind, e.g. GitRepository")
    command.add_argument("--name", help="only lines about objects of this name")
    command.add_argument(
        "-n",
        "--namespace",
        default="flux-system",
        help="only lines about objects in this namespace (default flux-system)",
    )
    command.add_argument(
        "-A", "--all-namespaces", action="store_true", help="lines about any namespace"
    )
    command.add_argument(
        "--flux-namespace",
        default="flux-system",
        help="namespace where fluxd runs (default flux-system)",
    )
    command.add_argument("--since", help="only lines newer than this, e.g. 30s, 5m, 3h")
    command.add_argument("--tail", type=int, help="only this many of the latest lines")
    command.add_argument("-f", "--follow", action="store_true", help="stream new lines")
    command.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    command.set_defaults(handler=_logs)


def _logs(args: argparse.Namespace) -> int:
    from fluxd.api import parse_duration

    since: float | None = None
    if args.since is not None:
        try:
            since = parse_duration(args.since)
        except ValueError as error:
            print(f"✗ --since: {error}", file=sys.stderr)
            return 1
    if args.tail is not None and args.tail < 0:
        print("✗ --tail must not be negative", file=sys.stderr)
        return 1
    wanted = LogFilter(
        level=args.level,
        kind=args.kind,
        name=args.name,
        namespace=None if args.all_namespaces else args.namespace,
    )

    async def work(api: ApiClient) -> int:
        pods = await _pods(api, args.flux_namespace)

        async def read(pod: str, containers: int) -> None:
            query = log_query(
                follow=args.follow, tail=args.tail, since_seconds=since, containers=containers
            )
            await _print_pod_log(api, args.flux_namespace, pod, wanted, query)

        if args.follow:
            await asyncio.gather(*(read(pod, count) for pod, count in pods))
        else:
            for pod, count in pods:
                await read(pod, count)
        return 0

    return run_session(args.kubeconfig, work)


async def _pods(api: ApiClient, namespace: str) -> list[tuple[str, int]]:
    """The fluxd pods to read and how many containers each has."""
    from fluxd.kube.client import list_page
    from fluxd.kube.resources import Resource

    page = await list_page(api, Resource("", "v1", "pods"), namespace, label_selector=POD_SELECTOR)
    pods = page.get("items") or []
    if not pods:
        raise CommandError(
            f"no fluxd pods found in namespace {namespace!r} with the label {POD_SELECTOR}: "
            "is fluxd installed there? (pass --flux-namespace)"
        )
    containers = {
        str(pod["metadata"]["name"]): len((pod.get("spec") or {}).get("containers") or [])
        for pod in pods
    }
    return [(name, containers[name]) for name in pick_pods(pods)]


async def _print_pod_log(
    api: ApiClient, namespace: str, pod: str, wanted: LogFilter, query: dict[str, str]
) -> None:
    import aiohttp

    from fluxd.kube.client import ApiError, open_response

    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
    streaming = aiohttp.ClientTimeout(total=None, connect=10, sock_read=None)
    try:
        response = await open_response(api, "GET", path, query=query, http_timeout=streaming)
    except ApiError as error:
        raise CommandError(
            f"cannot read the logs of fluxd pod {namespace}/{pod}: {error}"
        ) from None
    try:
        async for raw in response.content:
            shown = render_line(raw.decode(errors="replace").rstrip("\r\n"), wanted)
            if shown is not None:
                print(shown, flush=True)
    finally:
        response.release()
