"""``fluxd diff helmrelease NAME``: the command line of the diff of a HelmRelease's next
upgrade; the work is :mod:`fluxd.cli.helmrelease_render`'s, loaded only when it runs.
"""

from __future__ import annotations

import argparse

__all__ = ["add_diff_helmrelease_command"]


def add_diff_helmrelease_command(
    diff_kinds: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``diff helmrelease`` (alias ``hr``) among ``diff_kinds``, the nouns of ``diff``."""
    command = diff_kinds.add_parser(
        "helmrelease",
        aliases=["hr"],
        help="server-side dry-run of a HelmRelease's next upgrade, as a diff",
        description="Render HelmRelease NAME from its chart artifact and values as the next "
        "reconcile would, dry-run every object against the cluster and print what would "
        "change: drifted objects as a unified diff, created ones, and release objects the "
        "upgrade would delete. Secret values are masked. Exit status: 0 no differences, "
        "1 differences found, 2 error.",
    )
    command.add_argument("name", help="the HelmRelease")
    command.add_argument(
        "-n", "--namespace", default="flux-system", help="namespace of the HelmRelease"
    )
    command.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    command.set_defaults(handler=_diff_helmrelease)


def _diff_helmrelease(args: argparse.Namespace) -> int:
    # The Kubernetes client, the apply machinery and the Helm SDK load for this command only.
    from fluxd.cli import helmrelease_render

    return helmrelease_render.run(args)
