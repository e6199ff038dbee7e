"""``fluxd events``: the Kubernetes Events of Flux objects, as ``flux events`` prints them.

Events whose ``involvedObject`` is of a kind fluxd serves, oldest first, in the columns
LAST SEEN, TYPE, REASON, OBJECT, MESSAGE (NAMESPACE first across namespaces). ``--for
Kind[/name]`` narrows them to one kind or one object; for an object that refers to a
source (a Kustomization's ``sourceRef``, a HelmRelease's chart source and HelmChart, an
Alert's Provider, an ImagePolicy's ImageRepository) the Events of what it refers to are
shown too, as Flux shows them, since that is where its failures usually start.
``--watch`` streams Events as they are written until interrupted. The row formatting is
pure and tested without a cluster; the command reads through :mod:`fluxd.cli.session`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fluxd.cli.session import CommandError, run_session
from fluxd.cli.table import render_table

if TYPE_CHECKING:
    from fluxd.api import KindInfo
    from fluxd.kube.client import ApiClient

__all__ = [
    "EventQuery",
    "add_events_command",
    "event_row",
    "event_time",
    "headers",
    "human_duration",
    "last_seen",
    "referenced",
]

EVENT_TYPES = ("Normal", "Warning")
PAGE_SIZE = 500
_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Reference:
    """Where an object of one kind names another: the path of the reference in the object,
    the kind it refers to when the reference does not say, whether it may name a
    namespace."""

    path: tuple[str, ...]
    kind: str | None = None
    cross_namespace: bool = True


_REFERENCES: dict[str, tuple[_Reference, ...]] = {
    "Kustomization": (_Reference(("spec", "sourceRef")),),
    "HelmChart": (_Reference(("spec", "sourceRef")),),
    "HelmRelease": (
        _Reference(("spec", "chart", "spec", "sourceRef")),
        _Reference(("spec", "chartRef")),
    ),
    "Alert": (_Reference(("spec", "providerRef"), kind="Provider", cross_namespace=False),),
    "ImagePolicy": (_Reference(("spec", "imageRepositoryRef"), kind="ImageRepository"),),
}


@dataclass(frozen=True, slots=True)
class EventQuery:
    """One LIST or WATCH of Events: a namespace (``None``: all) and a field selector."""

    namespace: str | None
    field_selector: str | None


def _field_selector(kind: str, name: str | None) -> str:
    selector = f"involvedObject.kind={kind}"
    return selector if name is None else f"{selector},involvedObject.name={name}"


def _nested(obj: Mapping[str, Any], path: Sequence[str]) -> Any:
    found: Any = obj
    for key in path:
        if not isinstance(found, Mapping):
            return None
        found = found.get(key)
    return found


def referenced(obj: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(kind, namespace, name)`` of each object ``obj`` refers to whose Events belong
    with its own; a HelmRelease's HelmChart (``<namespace>-<name>``, in the namespace
    of the chart's source) is one of them."""
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    kind = str(obj.get("kind") or "")
    found: list[tuple[str, str, str]] = []
    for reference in _REFERENCES.get(kind, ()):
        ref = _nested(obj, reference.path)
        if not isinstance(ref, Mapping) or not ref.get("name"):
            continue
        ref_kind = reference.kind or str(ref.get("kind") or "")
        ref_namespace = namespace
        if reference.cross_namespace and ref.get("namespace"):
            ref_namespace = str(ref["namespace"])
        found.append((ref_kind, ref_namespace, str(ref["name"])))
        if kind == "HelmRelease" and reference.path[1] == "chart":
            found.append(("HelmChart", ref_namespace, f"{namespace}-{meta.get('name')}"))
    return found


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def event_time(event: Mapping[str, Any]) -> datetime:
    """When ``event`` was last seen, the time Events are sorted by: its series' last
    observation, else ``lastTimestamp``, else ``eventTime``."""
    series = event.get("series") or {}
    for value in (
        series.get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
    ):
        moment = _parse_time(value)
        if moment is not None:
            return moment
    return _EPOCH


def human_duration(seconds: float) -> str:
    """An elapsed time as Kubernetes prints ages: ``45s``, ``3m12s``, ``5h``, ``2d3h``..."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _since(value: Any, now: datetime) -> str:
    moment = _parse_time(value)
    return "<unknown>" if moment is None else human_duration((now - moment).total_seconds())


def last_seen(event: Mapping[str, Any], now: datetime) -> str:
    """The LAST SEEN cell: the age of the event, and for a repeated one
    ``<last> (x<count> over <first>)``."""
    first = event.get("eventTime") or event.get("firstTimestamp")
    series = event.get("series")
    if isinstance(series, Mapping):
        last = _since(series.get("lastObservedTime"), now)
        return f"{last} (x{series.get('count')} over {_since(first, now)})"
    count = event.get("count") or 0
    if isinstance(count, int) and count > 1:
        last = _since(event.get("lastTimestamp"), now)
        return f"{last} (x{count} over {_since(first, now)})"
    return _since(first, now)


def headers(*, show_namespace: bool) -> list[str]:
    titles = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    return ["NAMESPACE", *titles] if show_namespace else titles


def event_row(event: Mapping[str, Any], now: datetime, *, show_namespace: bool) -> list[str]:
    """One Event as a row of the table."""
    involved = event.get("involvedObject") or {}
    row = [
        last_seen(event, now),
        str(event.get("type") or ""),
        str(event.get("reason") or ""),
        f"{involved.get('kind')}/{involved.get('name')}",
        str(event.get("message") or ""),
    ]
    namespace = str((event.get("metadata") or {}).get("namespace") or "")
    return [namespace, *row] if show_namespace else row


@functools.cache
def _flux_kinds() -> frozenset[str]:
    # The API types load only when a command runs: ``fluxd --help`` stays quick.
    from fluxd.api import KINDS

    return frozenset(info.kind for info in KINDS)


def _shown(event: Mapping[str, Any], types: Sequence[str]) -> bool:
    """Whether an Event is about a Flux object and of a requested type."""
    if (event.get("involvedObject") or {}).get("kind") not in _flux_kinds():
        return False
    wanted = {kind.casefold() for kind in types}
    return not wanted or str(event.get("type") or "").casefold() in wanted


def add_events_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``events`` to the command line."""
    summary = "Display the Kubernetes Events of Flux objects as 'flux events' does."
    events = commands.add_parser(
        "events", help="display the Kubernetes Events of Flux objects", description=summary
    )
    events.add_argument(
        "--for",
        dest="for_object",
        metavar="KIND[/NAME]",
        help="only the Events of this kind, or of this object and what it refers to",
    )
    events.add_argument(
        "--types",
        default="",
        help="only Events of these comma-separated types (Normal, Warning)",
    )
    events.add_argument(
        "-w", "--watch", action="store_true", help="stream new Events until interrupted"
    )
    events.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="Events of Flux objects across all namespaces",
    )
    events.add_argument(
        "-n", "--namespace", default="flux-system", help="namespace (default flux-system)"
    )
    events.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    events.set_defaults(handler=_events)


def _parse_for(text: str) -> tuple[KindInfo[Any], str | None]:
    from fluxd.api import KINDS

    kind, _, name = text.partition("/")
    matches = [info for info in KINDS if info.kind.casefold() == kind.casefold()]
    if not kind or (not name and "/" in text):
        raise CommandError("--for selector must be of format <kind>[/<name>]")
    if not matches:
        raise CommandError(f"'{kind}' is not a recognized Flux kind")
    return matches[0], name or None


def _types(text: str) -> list[str]:
    types = [part.strip() for part in text.split(",") if part.strip()]
    for kind in types:
        if kind.casefold() not in {known.casefold() for known in EVENT_TYPES}:
            raise CommandError(f"type '{kind}' not supported. Supported types are Normal, Warning")
    return types


def _events(args: argparse.Namespace) -> int:
    try:
        types = _types(args.types)
        target = _parse_for(args.for_object) if args.for_object else None
    except CommandError as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1
    namespace = None if args.all_namespaces else args.namespace

    async def work(api: ApiClient) -> int:
        queries, show_namespace = await _queries(api, namespace, args.namespace, target)
        if args.watch:
            await _watch(api, queries, types, show_namespace=show_namespace)
            return 0
        return await _print_events(api, queries, types, namespace, show_namespace=show_namespace)

    return run_session(args.kubeconfig, work)


async def _queries(
    api: ApiClient,
    namespace: str | None,
    object_namespace: str,
    target: tuple[KindInfo[Any], str | None] | None,
) -> tuple[list[EventQuery], bool]:
    """The Event queries to run, and whether rows need a NAMESPACE column (all namespaces,
    or a referenced object in another namespace)."""
    if target is None:
        return [EventQuery(namespace, None)], namespace is None
    info, name = target
    queries = [EventQuery(namespace, _field_selector(info.kind, name))]
    show_namespace = namespace is None
    if name is not None:
        from fluxd.kube.client import get
        from fluxd.kube.objects import resource_of

        obj = await get(api, resource_of(info), object_namespace, name, missing_ok=True)
        if obj is None:
            raise CommandError(f"{info.kind} '{object_namespace}/{name}' not found")
        for ref_kind, ref_namespace, ref_name in referenced(obj):
            queries.append(EventQuery(ref_namespace, _field_selector(ref_kind, ref_name)))
            show_namespace = show_namespace or ref_namespace != namespace
    return queries, show_namespace


async def _list_events(api: ApiClient, query: EventQuery) -> list[dict[str, Any]]:
    from fluxd.kube.client import list_page
    from fluxd.kube.resources import EVENTS

    found: list[dict[str, Any]] = []
    continue_token: str | None = None
    while True:
        page = await list_page(
            api,
            EVENTS,
            query.namespace,
            field_selector=query.field_selector,
            limit=PAGE_SIZE,
            continue_token=continue_token,
        )
        found.extend(page.get("items") or [])
        continue_token = (page.get("metadata") or {}).get("continue") or None
        if continue_token is None:
            return found


async def _print_events(
    api: ApiClient,
    queries: Sequence[EventQuery],
    types: Sequence[str],
    namespace: str | None,
    *,
    show_namespace: bool,
) -> int:
    events: list[dict[str, Any]] = []
    for query in queries:
        events.extend(await _list_events(api, query))
    events.sort(key=event_time)
    now = datetime.now(UTC)
    rows = [event_row(e, now, show_namespace=show_namespace) for e in events if _shown(e, types)]
    if not rows:
        where = "" if namespace is None else f" in {namespace} namespace"
        print(f"✗ No events found{where}.", file=sys.stderr)
        return 0
    sys.stdout.write(render_table(headers(show_namespace=show_namespace), rows))
    return 0


async def _watch(
    api: ApiClient, queries: Sequence[EventQuery], types: Sequence[str], *, show_namespace: bool
) -> None:
    """Print each Event the queries' watches deliver (those that exist first, then new
    ones), the header above the first, until interrupted."""
    rows_printed = 0

    def show(event: Mapping[str, Any]) -> None:
        nonlocal rows_printed
        if not _shown(event, types):
            return
        row = event_row(event, datetime.now(UTC), show_namespace=show_namespace)
        titles = [] if rows_printed else headers(show_namespace=show_namespace)
        rows_printed += 1
        sys.stdout.write(render_table(titles, [row]))
        sys.stdout.flush()

    async with asyncio.TaskGroup() as streams:
        for query in queries:
            streams.create_task(_stream(api, query, show), name=f"watch events {query}")


async def _stream(
    api: ApiClient, query: EventQuery, show: Callable[[Mapping[str, Any]], None]
) -> None:
    from fluxd.kube.client import watch
    from fluxd.kube.resources import EVENTS

    changes = watch(api, EVENTS, query.namespace, field_selector=query.field_selector or None)
    async for change, event in changes:
        if change in ("ADDED", "MODIFIED"):
            show(event)
