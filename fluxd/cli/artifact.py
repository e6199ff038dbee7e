"""``fluxd push artifact`` and ``fluxd pull artifact``, as the Flux CLI has them.

``push`` publishes a directory (or one file) in Flux's OCI artifact format, annotated
with ``--source`` and ``--revision``, so an OCIRepository (fluxd's or Flux's) pulls it;
``pull`` downloads an artifact's first layer and unpacks it into ``--output``, with the
same safe extraction the daemon uses. Both print what they did on stderr, as ``flux``
does, and exit 1 with a message naming the problem when anything fails. The OCI client
is imported by the commands only, so the rest of the command line does not load it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fluxd.sources import oci

__all__ = [
    "PULL_LIMIT",
    "add_pull_command",
    "add_push_command",
    "artifact_command",
    "local_files",
    "registry_auth",
    "run_registry_command",
]

#: Bytes a pulled layer, and the files it unpacks to, may each reach.
PULL_LIMIT = 1024 * 2**20


def add_push_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``push artifact`` to the command line."""
    push = commands.add_parser("push", help="publish to an OCI registry")
    artifact = artifact_command(
        push.add_subparsers(dest="kind", required=True),
        summary="push a directory as a Flux OCI artifact",
        description="Package --path (a directory, or one file) as a Flux artifact and push "
        "it to URL (oci://<registry>/<repository>:<tag>), annotated with --source and "
        "--revision as 'flux push artifact' annotates it.",
    )
    artifact.add_argument("--path", type=Path, required=True, help="directory or file to push")
    artifact.add_argument(
        "--source", required=True, help="where the files come from, e.g. a git URL"
    )
    artifact.add_argument(
        "--revision", required=True, help="the source revision, e.g. main@sha1:<hex>"
    )
    artifact.add_argument(
        "-a",
        "--annotations",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra manifest annotation (repeatable)",
    )
    artifact.set_defaults(handler=_push)


def add_pull_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pull artifact`` to the command line."""
    pull = commands.add_parser("pull", help="download from an OCI registry")
    artifact = artifact_command(
        pull.add_subparsers(dest="kind", required=True),
        summary="pull a Flux OCI artifact and unpack it",
        description="Pull URL (oci://<registry>/<repository>:<tag> or @sha256:<digest>) and "
        "unpack its first layer into --output, refusing entries outside it.",
    )
    artifact.add_argument("-o", "--output", type=Path, required=True, help="directory to fill")
    artifact.set_defaults(handler=_pull)


def artifact_command(
    kinds: argparse._SubParsersAction[argparse.ArgumentParser],
    *,
    summary: str,
    description: str,
    noun: str = "artifact",
) -> argparse.ArgumentParser:
    """``<verb> artifact URL`` among a verb's ``kinds``, with the registry flags every such
    command takes."""
    artifact = kinds.add_parser(noun, help=summary, description=description)
    artifact.add_argument("url", help="oci://<registry>/<repository>[:<tag>|@<digest>]")
    artifact.add_argument("--creds", help="registry credentials as <username>:<password>")
    artifact.add_argument(
        "--insecure-registry", action="store_true", help="talk plain HTTP to the registry"
    )
    artifact.add_argument("--ca-file", type=Path, help="PEM CA bundle to trust for the registry")
    artifact.add_argument(
        "--timeout", type=float, default=60.0, help="seconds the operation may take"
    )
    return artifact


def run_registry_command(
    args: argparse.Namespace,
    work: Callable[[oci.Reference, oci.RegistryAuth], Coroutine[Any, Any, None]],
    start: Callable[[oci.Reference], None] | None = None,
) -> int:
    """Parse ``args.url``, tell ``start`` (the first progress line), run ``work``: exit 0,
    or 1 with one ``✗`` line naming what failed."""
    from fluxd.sources import oci

    try:
        reference = oci.parse_reference(args.url, insecure=args.insecure_registry)
        auth = registry_auth(args)
        if start is not None:
            start(reference)
        asyncio.run(work(reference, auth))
    except (oci.RegistryError, OSError, ValueError) as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1
    return 0


def _push(args: argparse.Namespace) -> int:
    from fluxd.sources import oci

    async def work(reference: oci.Reference, auth: oci.RegistryAuth) -> None:
        annotations = dict(_key_value(item) for item in args.annotations)
        files, executables = local_files(args.path)
        pushed = await oci.push_files(
            reference,
            files,
            source=args.source,
            revision=args.revision,
            auth=auth,
            executables=executables,
            annotations=annotations,
            time_limit=args.timeout,
        )
        print(
            f"✔ artifact successfully pushed to {reference.repository}@{pushed.digest}",
            file=sys.stderr,
        )

    def start(reference: oci.Reference) -> None:
        print(f"► pushing artifact to {reference}", file=sys.stderr)

    return run_registry_command(args, work, start)


def _pull(args: argparse.Namespace) -> int:
    from fluxd.sources import oci

    async def work(reference: oci.Reference, auth: oci.RegistryAuth) -> None:
        async with oci.RegistryClient(reference.repository, auth, timeout=args.timeout) as client:
            resolved = await oci.resolve(client, digest=reference.digest, tag=reference.tag)
            pulled = await oci.pull(client, resolved.digest, media_type=None, limit=PULL_LIMIT)
        extracted = oci.extract_tarball(pulled.content, limit=PULL_LIMIT)
        _write(args.output, extracted)
        source = pulled.annotations.get(oci.SOURCE_ANNOTATION)
        revision = pulled.annotations.get(oci.REVISION_ANNOTATION)
        if source and revision:
            print(f"✔ source {source}, revision {revision}", file=sys.stderr)
        print(f"✔ artifact {resolved.revision} content extracted to {args.output}", file=sys.stderr)

    def start(reference: oci.Reference) -> None:
        print(f"► pulling artifact from {reference}", file=sys.stderr)

    return run_registry_command(args, work, start)


def registry_auth(args: argparse.Namespace) -> oci.RegistryAuth:
    """The ``--creds`` and ``--ca-file`` of a registry command."""
    from fluxd.sources import oci

    username = password = None
    if args.creds:
        username, sep, password = args.creds.partition(":")
        if not sep or not username:
            raise ValueError("--creds must be <username>:<password>")
    ca = args.ca_file.read_bytes() if args.ca_file else None
    return oci.RegistryAuth(username=username, password=password, ca=ca)


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"annotation '{item}' must be KEY=VALUE")
    return key, value


def local_files(path: Path) -> tuple[dict[str, bytes], frozenset[str]]:
    """The files to push: those under a directory, or one file under its own name."""
    from fluxd.sources import oci

    if path.is_dir():
        return oci.directory_files(path)
    if path.is_file():
        return {path.name: path.read_bytes()}, frozenset()
    raise ValueError(f"--path {path} is neither a directory nor a file")


def _write(output: Path, extracted: oci.Extracted) -> None:
    """Write the unpacked files under ``output`` (their paths are already inside it)."""
    for relative, content in extracted.files.items():
        target = output / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        if relative in extracted.executables:
            target.chmod(0o755)
