"""``fluxd reconcile | suspend | resume | delete``: act on Flux objects as ``flux`` does.

Each verb takes ``flux``'s nouns (:mod:`fluxd.cli.kinds`), its flags (``-n``,
``--timeout``, ``--with-source``, ``--force``, ``--reset``, ``--all``, ``--wait``, ``--silent``)
and prints its
progress lines on stderr (``► annotating ...``, ``✔ ... annotated``, ``◎ waiting for ...``,
``✗ ...``). A reconcile is a request: the ``reconcile.fluxcd.io/requestedAt``
annotation set to a fresh timestamp, which the daemon echoes in
``status.lastHandledReconcileAt`` once it has handled it; :mod:`fluxd.cli.outcome`
judges the status. Every wait shares one deadline, ``--timeout``, and runs out with a
message naming what was awaited. The Kubernetes client is imported when a command runs,
so the rest of the command line starts without it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fluxd.cli.kinds import NOUNS, Noun
from fluxd.cli.outcome import (
    REQUESTED_AT,
    Outcome,
    handled_outcome,
    is_static,
    requested_at,
    source_of,
)
from fluxd.cli.session import CommandError, run_session

if TYPE_CHECKING:
    from fluxd.kube.client import ApiClient
    from fluxd.kube.resources import Resource

__all__ = ["add_operate_commands"]

T = TypeVar("T")

#: How often a wait reads the object again (``flux`` polls every 2s; a local API
#: server answers fast enough to look more often).
POLL_SECONDS = 0.5
DEFAULT_TIMEOUT = "5m"
#: Set with a HelmRelease's request: a one-off install or upgrade, and a reset of its
#: failure counts; each counts only while it equals ``requestedAt`` (Flux's rule).
FORCE_AT = "reconcile.fluxcd.io/forceAt"
RESET_AT = "reconcile.fluxcd.io/resetAt"
#: The kinds whose source ``--with-source`` reconciles first.
WITH_SOURCE_KINDS = ("Kustomization", "HelmRelease", "HelmChart")


def add_operate_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``reconcile``, ``suspend``, ``resume`` and ``delete`` to the command line."""
    _verb(
        commands,
        "reconcile",
        "trigger a reconciliation of a Flux object and wait for its outcome",
        [noun for noun in NOUNS if noun.reconcilable],
        _reconcile_flags,
    )
    _verb(commands, "suspend", "suspend the reconciliation of Flux objects", NOUNS, _suspend_flags)
    _verb(
        commands,
        "resume",
        "resume suspended Flux objects and wait for their reconciliation",
        NOUNS,
        _resume_flags,
    )
    _verb(
        commands, "delete", "delete a Flux object and wait until it is gone", NOUNS, _delete_flags
    )


def _verb(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    verb: str,
    summary: str,
    nouns: Sequence[Noun],
    flags: Callable[[argparse.ArgumentParser, Noun], None],
) -> None:
    """One verb with a subcommand per noun, nouns of a group (``source git``) under it."""
    command = commands.add_parser(verb, help=summary, description=summary[0].upper() + summary[1:])
    top = command.add_subparsers(dest="noun_word", required=True, metavar="NOUN")
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for noun in nouns:
        parent = top
        if noun.group is not None:
            if noun.group not in groups:
                words = ", ".join(n.word for n in nouns if n.group == noun.group)
                group = top.add_parser(noun.group, help=f"{noun.group} kinds: {words}")
                groups[noun.group] = group.add_subparsers(
                    dest="group_word", required=True, metavar="KIND"
                )
            parent = groups[noun.group]
        leaf_summary = f"{verb} {noun.kind} objects"
        leaf = parent.add_parser(
            noun.word, aliases=list(noun.aliases), help=leaf_summary, description=leaf_summary
        )
        flags(leaf, noun)
        leaf.add_argument("-n", "--namespace", default="flux-system", help="the object's namespace")
        leaf.add_argument(
            "--timeout",
            default=DEFAULT_TIMEOUT,
            help=f"give up after this long, e.g. 30s, 2m (default {DEFAULT_TIMEOUT})",
        )
        leaf.add_argument(
            "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
        )
        leaf.set_defaults(target=noun)


def _reconcile_flags(command: argparse.ArgumentParser, noun: Noun) -> None:
    command.add_argument("name", help=f"the {noun.kind} to reconcile")
    if noun.kind in WITH_SOURCE_KINDS:
        command.add_argument(
            "--with-source",
            action="store_true",
            help=f"reconcile the {noun.kind}'s source first and wait for it",
        )
    if noun.kind == "HelmRelease":
        command.add_argument(
            "--force",
            action="store_true",
            help="force a one-off install or upgrade of the HelmRelease",
        )
        command.add_argument(
            "--reset",
            action="store_true",
            help="reset the HelmRelease's failure counts, so exhausted retries start over",
        )
    command.set_defaults(handler=_reconcile_command, with_source=False, force=False, reset=False)


def _suspend_flags(command: argparse.ArgumentParser, noun: Noun) -> None:
    command.add_argument("names", nargs="*", metavar="NAME", help=f"{noun.kind}s to suspend")
    command.add_argument(
        "--all", action="store_true", help=f"suspend every {noun.kind} of the namespace"
    )
    command.set_defaults(handler=_suspend_command)


def _resume_flags(command: argparse.ArgumentParser, noun: Noun) -> None:
    command.add_argument("names", nargs="*", metavar="NAME", help=f"{noun.kind}s to resume")
    command.add_argument(
        "--all", action="store_true", help=f"resume every {noun.kind} of the namespace"
    )
    command.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="wait for each reconciliation (default: only when one NAME is given)",
    )
    command.set_defaults(handler=_resume_command)


def _delete_flags(command: argparse.ArgumentParser, noun: Noun) -> None:
    command.add_argument("name", help=f"the {noun.kind} to delete")
    command.add_argument(
        "-s", "--silent", action="store_true", help="delete without asking for confirmation"
    )
    command.set_defaults(handler=_delete_command)


# --------------------------------------------------------------------------- the session


def say(symbol: str, text: str) -> None:
    """One progress line, on stderr as ``flux`` writes them."""
    print(f"{symbol} {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class _Session:
    """One command's client, namespace and deadline."""

    api: ApiClient
    namespace: str
    deadline: float
    timeout: str

    def noun_of(self, kind: str) -> Noun:
        return next(noun for noun in NOUNS if noun.kind == kind)

    async def fetch(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """The object, or a :class:`CommandError` naming what is missing."""
        from fluxd.kube.client import get

        obj = await get(self.api, _resource(kind), namespace, name, missing_ok=True)
        if obj is None:
            raise CommandError(_not_found(kind, namespace, name))
        obj.setdefault("kind", kind)
        return obj

    async def poll(
        self,
        kind: str,
        namespace: str,
        name: str,
        judge: Callable[[dict[str, Any] | None], T | None],
        awaited: str,
    ) -> T:
        """Read the object until ``judge`` (given ``None`` once it is gone) returns a
        result; past the deadline, a :class:`CommandError` naming ``awaited``."""
        from fluxd.kube.client import get

        try:
            async with asyncio.timeout_at(self.deadline):
                while True:
                    obj = await get(self.api, _resource(kind), namespace, name, missing_ok=True)
                    if obj is not None:
                        obj.setdefault("kind", kind)
                    result = judge(obj)
                    if result is not None:
                        return result
                    await asyncio.sleep(POLL_SECONDS)
        except TimeoutError:
            raise CommandError(f"timed out after {self.timeout} waiting for {awaited}") from None

    async def targets(self, noun: Noun, names: Sequence[str]) -> tuple[list[str], int]:
        """The names ``suspend``/``resume`` act on (every object of the namespace when
        none is given: ``--all``), and how many given names are missing (each said as it
        is found missing)."""
        from fluxd.kube.client import list_page

        if not names:
            found: list[str] = []
            continue_token: str | None = None
            while True:
                page = await list_page(
                    self.api, _resource(noun.kind), self.namespace, continue_token=continue_token
                )
                found.extend(item["metadata"]["name"] for item in page.get("items") or [])
                continue_token = (page.get("metadata") or {}).get("continue") or None
                if continue_token is None:
                    break
            if not found:
                raise CommandError(f'no {noun.kind} objects found in "{self.namespace}" namespace')
            return sorted(found), 0
        present: list[str] = []
        missing = 0
        for name in dict.fromkeys(names):
            try:
                await self.fetch(noun.kind, self.namespace, name)
            except CommandError as error:
                say("✗", str(error))
                missing += 1
                continue
            present.append(name)
        return present, missing


def _resource(kind: str) -> Resource:
    from fluxd.api import lookup
    from fluxd.kube.objects import resource_of

    return resource_of(lookup(kind))


def _not_found(kind: str, namespace: str, name: str) -> str:
    return f"{kind} object '{name}' not found in \"{namespace}\" namespace"


def _run(args: argparse.Namespace, work: Callable[[_Session], Awaitable[int]]) -> int:
    """Parse ``--timeout``, then run ``work`` in a session bound by it."""
    from fluxd.api import parse_duration

    try:
        seconds = parse_duration(args.timeout)
    except ValueError as error:
        say("✗", f"--timeout: {error}")
        return 1

    async def session(api: ApiClient) -> int:
        deadline = asyncio.get_running_loop().time() + seconds
        return await work(_Session(api, args.namespace, deadline, args.timeout))

    return run_session(args.kubeconfig, session)


async def _request(
    session: _Session,
    kind: str,
    namespace: str,
    name: str,
    also: Sequence[str] = (),
    **spec: Any,
) -> tuple[str, dict[str, Any]]:
    """Annotate the object with a fresh reconcile request, the annotations named in
    ``also`` set to the same timestamp (and patch ``spec`` fields in the same merge patch);
    the request's timestamp and the object as patched."""
    from fluxd.kube.client import patch

    value = requested_at(time.time_ns())
    annotations = dict.fromkeys((REQUESTED_AT, *also), value)
    body: dict[str, Any] = {"metadata": {"annotations": annotations}}
    if spec:
        body["spec"] = spec
    patched = await patch(session.api, _resource(kind), namespace, name, body)
    return value, patched


def _handled(name: str, value: str) -> Callable[[dict[str, Any] | None], Outcome | None]:
    def judge(obj: dict[str, Any] | None) -> Outcome | None:
        if obj is None:
            return Outcome(False, f"{name} was deleted while waiting for its reconciliation")
        return handled_outcome(obj, value)

    return judge


# --------------------------------------------------------------------------- reconcile


def _reconcile_command(args: argparse.Namespace) -> int:
    noun: Noun = args.target

    async def work(session: _Session) -> int:
        also = [FORCE_AT] * args.force + [RESET_AT] * args.reset
        await _reconcile(
            session, noun.kind, session.namespace, args.name, args.with_source, also=also
        )
        return 0

    return _run(args, work)


async def _reconcile(
    session: _Session,
    kind: str,
    namespace: str,
    name: str,
    with_source: bool,
    also: Sequence[str] = (),
) -> None:
    """Reconcile one object (its source first with ``with_source``) and print how it
    ended; a failure is a :class:`CommandError` with ``flux``'s message. ``also`` names
    the request's companion annotations (a HelmRelease's ``forceAt``, ``resetAt``)."""
    obj = await session.fetch(kind, namespace, name)
    if is_static(obj):
        say("✔", "reconciliation not supported by the object")
        return
    if (obj.get("spec") or {}).get("suspend"):
        raise CommandError(
            f"resource is suspended: resume it first with "
            f"'fluxd resume {session.noun_of(kind).human} {name} -n {namespace}'"
        )
    if with_source:
        try:
            source = source_of(obj)
        except ValueError as error:
            raise CommandError(str(error)) from None
        await _reconcile(session, source.kind, source.namespace, source.name, source.with_source)
    say("►", f"annotating {kind} {name} in {namespace} namespace")
    value, _ = await _request(session, kind, namespace, name, also)
    say("✔", f"{kind} annotated")
    say("◎", f"waiting for {kind} reconciliation")
    outcome = await session.poll(
        kind,
        namespace,
        name,
        _handled(f"{kind} {namespace}/{name}", value),
        f"{kind} {namespace}/{name} reconciliation",
    )
    if not outcome.ok:
        raise CommandError(f"{kind} reconciliation failed: {outcome.message}")
    say("✔", outcome.message)


# --------------------------------------------------------------------------- suspend


def _suspend_command(args: argparse.Namespace) -> int:
    noun: Noun = args.target
    if not args.names and not args.all:
        say("✗", f"{noun.human} name is required (or --all)")
        return 1

    async def work(session: _Session) -> int:
        from fluxd.kube.client import patch

        names, missing = await session.targets(noun, args.names)
        for name in names:
            say("►", f"suspending {noun.human} {name} in {session.namespace} namespace")
            body = {"spec": {"suspend": True}}
            await patch(session.api, _resource(noun.kind), session.namespace, name, body)
            say("✔", f"{noun.human} suspended")
        return 1 if missing else 0

    return _run(args, work)


# --------------------------------------------------------------------------- resume


def _resume_command(args: argparse.Namespace) -> int:
    noun: Noun = args.target
    if not args.names and not args.all:
        say("✗", f"{noun.human} name is required (or --all)")
        return 1
    # flux waits when exactly one object is named, unless --wait says otherwise.
    wait: bool = args.wait if args.wait is not None else len(args.names) == 1

    async def work(session: _Session) -> int:
        names, missing = await session.targets(noun, args.names)
        requests: dict[str, str] = {}
        static: set[str] = set()
        for name in names:
            say("►", f"resuming {noun.human} {name} in {session.namespace} namespace")
            requests[name], patched = await _request(
                session, noun.kind, session.namespace, name, suspend=False
            )
            if is_static(patched):
                static.add(name)
            say("✔", f"{noun.human} resumed")
        if not wait:
            return 1 if missing else 0
        outcomes = await asyncio.gather(
            *(
                _wait_resumed(session, noun.kind, name, requests[name], name in static)
                for name in names
            )
        )
        failed = 0
        for name, outcome in sorted(zip(names, outcomes, strict=True), key=lambda pair: pair[0]):
            if outcome.ok:
                say("✔", f"{noun.kind} {name} reconciliation completed")
                say("✔", outcome.message)
            else:
                say("✗", f"{noun.kind} {name} reconciliation failed: {outcome.message}")
                failed += 1
        if failed:
            raise CommandError(f"reconciliation failed for {failed} {noun.kind}(s)")
        return 1 if missing else 0

    return _run(args, work)


async def _wait_resumed(
    session: _Session, kind: str, name: str, value: str, static: bool
) -> Outcome:
    """How the reconcile of a resumed object ended; a timeout is a failed outcome so the
    other objects' outcomes are still reported."""
    say("◎", f"waiting for {kind} reconciliation")
    if static:
        return Outcome(True, f"{kind} holds data only and is not reconciled")
    try:
        return await session.poll(
            kind,
            session.namespace,
            name,
            _handled(f"{kind} {session.namespace}/{name}", value),
            "its reconciliation",
        )
    except CommandError as error:
        return Outcome(False, str(error))


# --------------------------------------------------------------------------- delete


def _delete_command(args: argparse.Namespace) -> int:
    noun: Noun = args.target

    async def work(session: _Session) -> int:
        from fluxd.kube.client import delete

        namespace, name = session.namespace, args.name
        await session.fetch(noun.kind, namespace, name)
        if not args.silent and not confirmed(f"Are you sure you want to delete this {noun.human}"):
            raise CommandError("aborting")
        say("►", f"deleting {noun.human} {name} in {namespace} namespace")
        await delete(session.api, _resource(noun.kind), namespace, name)
        # The daemon runs the finalizer (prune, uninstall) before the object is gone.
        say("◎", f"waiting for {noun.kind} {name} to be deleted")
        await session.poll(
            noun.kind,
            namespace,
            name,
            lambda obj: True if obj is None else None,
            f"{noun.kind} {namespace}/{name} to be deleted",
        )
        say("✔", f"{noun.human} deleted")
        return 0

    return _run(args, work)


def confirmed(question: str) -> bool:
    """Ask a yes/no question on stderr; only ``y`` or ``yes`` on stdin is a yes."""
    print(f"{question}? [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    if not sys.stdin.isatty():
        # No terminal echoed the answer and its newline: end the question's line here.
        print(file=sys.stderr)
    return answer.strip().lower() in ("y", "yes")
