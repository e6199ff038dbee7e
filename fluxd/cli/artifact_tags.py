"""``fluxd tag artifact``, ``list artifacts`` and ``diff artifact``, as the Flux CLI has them.

``tag`` points more tags at an artifact's manifest (the manifest's bytes pushed again
under each tag, so its digest stays the same); ``list`` prints each tag of a repository
with its manifest digest and the ``source``/``revision`` annotations ``push artifact``
wrote, filtered by ``--filter-regex`` or ``--filter-semver`` (highest version first);
``diff`` compares an artifact's files with a local directory as ``push artifact`` would
package it and exits 1 naming the files that differ. The registry flags are those of
:mod:`fluxd.cli.artifact`; the OCI client is imported by the commands only.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fluxd.cli.artifact import PULL_LIMIT, artifact_command, run_registry_command
from fluxd.cli.table import render_table

if TYPE_CHECKING:
    from fluxd.sources import oci

__all__ = ["add_artifact_tag_commands", "changed_paths", "filter_tags"]


def add_artifact_tag_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    diff_kinds: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``tag artifact``, ``list artifacts`` and (among ``diff_kinds``, the nouns of
    ``diff``) ``diff artifact`` to the command line."""
    tag_verb = commands.add_parser("tag", help="tag an artifact in an OCI registry")
    tag = artifact_command(
        tag_verb.add_subparsers(dest="kind", required=True),
        summary="add tags to an OCI artifact",
        description="Point each --tag at the manifest URL names, as 'flux tag artifact' does.",
    )
    tag.add_argument(
        "--tag", action="append", required=True, dest="tags", help="a tag to add (repeatable)"
    )
    tag.set_defaults(handler=_tag)
    list_verb = commands.add_parser("list", help="list what an OCI registry holds")
    listing = artifact_command(
        list_verb.add_subparsers(dest="kind", required=True),
        summary="list the artifacts of an OCI repository",
        description="Print each tag of URL (oci://<registry>/<repository>) with its digest, "
        "source and revision, as 'flux list artifacts' does.",
        noun="artifacts",
    )
    listing.add_argument("--filter-regex", help="only tags this regular expression matches")
    listing.add_argument(
        "--filter-semver", help="only tags in this semver range, highest version first"
    )
    listing.set_defaults(handler=_list)
    diff = artifact_command(
        diff_kinds,
        summary="compare an OCI artifact with a local directory",
        description="Exit 1 naming each file that differs between URL's artifact and --path "
        "(packaged as 'push artifact' would package it), as 'flux diff artifact' does.",
    )
    diff.add_argument("--path", type=Path, required=True, help="directory or file to compare")
    diff.set_defaults(handler=_diff)


def filter_tags(tags: list[str], *, regex: str | None, semver: str | None) -> list[str]:
    """The tags ``list artifacts`` shows: those ``regex`` matches, and with ``semver``
    only versions in that range, highest first; :class:`ValueError` on a bad filter."""
    from fluxd.semver import Constraint, Version

    if regex:
        try:
            pattern = re.compile(regex)
        except re.error as error:
            raise ValueError(f"--filter-regex '{regex}' is not valid: {error}") from error
        tags = [tag for tag in tags if pattern.search(tag)]
    if not semver:
        return tags
    constraint = Constraint.parse(semver)
    versions = []
    for tag in tags:
        try:
            version = Version.parse(tag)
        except ValueError:
            continue
        if constraint.allows(version):
            versions.append((version, tag))
    return [tag for _, tag in sorted(versions, reverse=True)]


def changed_paths(remote: dict[str, bytes], local: dict[str, bytes]) -> list[str]:
    """``+ path`` (only local), ``- path`` (only in the artifact), ``~ path`` (different)."""
    lines = [f"+ {path}" for path in local if path not in remote]
    lines += [f"- {path}" for path in remote if path not in local]
    lines += [f"~ {path}" for path in local if path in remote and remote[path] != local[path]]
    return sorted(lines, key=lambda line: line[2:])


def _tag(args: argparse.Namespace) -> int:
    from fluxd.sources import oci

    async def work(reference: oci.Reference, auth: oci.RegistryAuth) -> None:
        async with oci.RegistryClient(
            reference.repository, auth, timeout=args.timeout, push=True
        ) as client:
            name = reference.digest or reference.tag or "latest"
            manifest = await client.manifest(name, keep_index=True)
            for tag in args.tags:
                await client.push_manifest(tag, manifest.data, manifest.media_type)
                print(f"✔ artifact tagged as {reference.repository}:{tag}", file=sys.stderr)

    def start(reference: oci.Reference) -> None:
        print("► tagging artifact", file=sys.stderr)

    return run_registry_command(args, work, start)


def _list(args: argparse.Namespace) -> int:
    from fluxd.sources import oci

    async def work(reference: oci.Reference, auth: oci.RegistryAuth) -> None:
        async with oci.RegistryClient(reference.repository, auth, timeout=args.timeout) as client:
            tags = filter_tags(
                await client.tags(), regex=args.filter_regex, semver=args.filter_semver
            )
            manifests = await asyncio.gather(*(client.manifest(tag) for tag in tags))
        rows = []
        for tag, manifest in zip(tags, manifests, strict=True):
            annotations = manifest.json().get("annotations") or {}
            rows.append(
                [
                    f"{reference.repository}:{tag}",
                    manifest.digest,
                    str(annotations.get(oci.SOURCE_ANNOTATION, "")),
                    str(annotations.get(oci.REVISION_ANNOTATION, "")),
                ]
            )
        sys.stdout.write(render_table(["ARTIFACT", "DIGEST", "SOURCE", "REVISION"], rows))

    return run_registry_command(args, work)


def _diff(args: argparse.Namespace) -> int:
    from fluxd.cli.artifact import local_files
    from fluxd.sources import oci

    async def work(reference: oci.Reference, auth: oci.RegistryAuth) -> None:
        local, _ = local_files(args.path)
        async with oci.RegistryClient(reference.repository, auth, timeout=args.timeout) as client:
            resolved = await oci.resolve(client, digest=reference.digest, tag=reference.tag)
            pulled = await oci.pull(client, resolved.digest, media_type=None, limit=PULL_LIMIT)
        remote = oci.extract_tarball(pulled.content, limit=PULL_LIMIT).files
        changes = changed_paths(remote, local)
        if changes:
            sys.stdout.write("".join(f"{line}\n" for line in changes))
            raise ValueError(
                f"the artifact {resolved.revision} differs from {args.path} "
                f"({len(changes)} file(s))"
            )
        print("✔ no changes detected", file=sys.stderr)

    return run_registry_command(args, work)
