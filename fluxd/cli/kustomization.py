"""``fluxd build kustomization`` and ``fluxd diff kustomization``, as the Flux CLI has them.

``build`` prints what a Kustomization would apply (see :mod:`fluxd.cli.preview`), or,
without a name, the kustomize build of a local directory; ``diff`` prints what applying
would change in the cluster (see :mod:`fluxd.apply.diff`) and exits 0 when nothing would
change, 1 when something would, 2 on error. The work on a cluster is in
:mod:`fluxd.cli.cluster`, imported only by the commands that name a Kustomization: a
local build needs no Kubernetes client.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fluxd.kustomize import KUSTOMIZATION_FILE_NAMES, KustomizeError, build_directory, render

__all__ = ["add_build_command", "add_diff_command"]


def add_build_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``build kustomization`` to the command line."""
    build = commands.add_parser("build", help="build objects as fluxd would apply them")
    kustomization = _kustomization_command(
        build.add_subparsers(dest="kind", required=True),
        summary="print the objects a Kustomization applies (or the build of a local directory)",
        description="With NAME: read Kustomization NAME from the cluster, fetch its "
        "GitRepository at the revision it serves, and print the objects exactly as fluxd "
        "would apply them (Flux fields, postBuild, owner labels; values of SOPS-encrypted "
        "Secrets masked as **SOPS**). With NAME and --path: build the local directory with "
        "the in-cluster Kustomization's fields instead of the source. Without NAME: print "
        "the kustomize build of --path exactly as 'kubectl kustomize' would (no cluster).",
    )
    kustomization.add_argument("name", nargs="?", help="the Kustomization (needs a cluster)")
    kustomization.add_argument("--path", type=Path, help="local directory to build")
    kustomization.set_defaults(handler=_build_kustomization)


def add_diff_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add ``diff kustomization`` to the command line; returns the nouns of ``diff``, to
    which ``diff artifact`` is added."""
    diff = commands.add_parser("diff", help="show what applying would change in the cluster")
    kinds = diff.add_subparsers(dest="kind", required=True)
    kustomization = _kustomization_command(
        kinds,
        summary="server-side dry-run of a Kustomization's objects, as a diff",
        description="Build Kustomization NAME as 'fluxd build kustomization NAME' does (from "
        "its source, or from --path), dry-run every object against the cluster and print "
        "what would change: drifted objects as a unified diff, created ones, and inventory "
        "objects a prune would delete. Secret values are masked. Exit status: 0 no "
        "differences, 1 differences found, 2 error.",
    )
    kustomization.add_argument("name", help="the Kustomization")
    kustomization.add_argument(
        "--path", type=Path, help="local directory to build instead of the source"
    )
    kustomization.set_defaults(handler=_diff_kustomization)
    return kinds


def _kustomization_command(
    kinds: argparse._SubParsersAction[argparse.ArgumentParser], *, summary: str, description: str
) -> argparse.ArgumentParser:
    """``<verb> kustomization`` (alias ``ks``) with the flags every such command takes."""
    kustomization = kinds.add_parser(
        "kustomization", aliases=["ks"], help=summary, description=description
    )
    kustomization.add_argument(
        "-n", "--namespace", default="flux-system", help="namespace of the Kustomization"
    )
    kustomization.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    kustomization.add_argument(
        "--root",
        type=Path,
        help="the tree the build may read: name the repository root when an overlay "
        "refers to bases outside --path (default with NAME: --path; without NAME: the git "
        "work tree holding --path, else the whole filesystem, as for 'kubectl kustomize')",
    )
    return kustomization


def _build_kustomization(args: argparse.Namespace) -> int:
    if args.name is not None:
        # The Kubernetes client and the apply machinery load for in-cluster commands only.
        from fluxd.cli import cluster

        return cluster.run("build", 1, cluster.build_in_cluster, args)
    if args.path is None:
        print("fluxd build: give a Kustomization NAME, --path DIR, or both", file=sys.stderr)
        return 1
    path: Path = args.path.resolve()
    root: Path = args.root.resolve() if args.root else _enclosing_tree(path)
    if not path.is_dir() or (path != root and root not in path.parents):
        print(f"fluxd build: {args.path} is not a directory inside {root}", file=sys.stderr)
        return 1
    # Like `kubectl kustomize` whenever DIR has a kustomization; like Flux when it has none.
    generate = not any((path / name).is_file() for name in KUSTOMIZATION_FILE_NAMES)
    try:
        objects = build_directory(path, root=root, generate_missing=generate)
    except KustomizeError as error:
        print(f"fluxd build: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(render(objects))
    return 0


def _enclosing_tree(path: Path) -> Path:
    """What a local build may read without ``--root``: the git work tree holding
    ``path``, else the whole filesystem, as ``kubectl kustomize`` reaches ``../`` bases."""
    for directory in (path, *path.parents):
        if (directory / ".git").exists():
            return directory
    return Path(path.anchor)


def _diff_kustomization(args: argparse.Namespace) -> int:
    from fluxd.cli import cluster

    return cluster.run("diff", 2, cluster.diff_in_cluster, args)
