"""The ``fluxd`` command line: one parser, each command defined beside its work.

``run`` (:mod:`~fluxd.cli.run`) is the daemon; ``build`` and ``diff``
(:mod:`~fluxd.cli.kustomization`) follow the Flux CLI's commands of the same names, as
does ``get`` (:mod:`~fluxd.cli.get`), the status table of Flux objects, the inspection
commands ``events``, ``tree``, ``stats`` and ``export`` (one module each), ``reconcile``,
``suspend``, ``resume`` and ``delete`` (:mod:`~fluxd.cli.operate`), ``check``, ``logs``,
``trace`` and ``create`` (one module each), ``install`` and ``uninstall``
(:mod:`~fluxd.cli.install`), ``diff helmrelease`` (:mod:`~fluxd.cli.helmrelease_diff`),
``bootstrap git`` (:mod:`~fluxd.cli.bootstrap`) and ``bootstrap github|gitlab``
(:mod:`~fluxd.cli.bootstrap_provider`), and ``push``, ``pull``, ``tag``, ``list`` and
``diff`` of artifacts (:mod:`~fluxd.cli.artifact`, :mod:`~fluxd.cli.artifact_tags`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from fluxd import __version__
from fluxd.cli.artifact import add_pull_command, add_push_command
from fluxd.cli.artifact_tags import add_artifact_tag_commands
from fluxd.cli.bootstrap import add_bootstrap_command
from fluxd.cli.bootstrap_provider import add_bootstrap_provider_commands
from fluxd.cli.check import add_check_command
from fluxd.cli.create import add_create_command
from fluxd.cli.events import add_events_command
from fluxd.cli.export import add_export_command
from fluxd.cli.get import add_get_command
from fluxd.cli.helmrelease_diff import add_diff_helmrelease_command
from fluxd.cli.install import add_install_commands
from fluxd.cli.kustomization import add_build_command, add_diff_command
from fluxd.cli.logs import add_logs_command
from fluxd.cli.operate import add_operate_commands
from fluxd.cli.run import add_run_command
from fluxd.cli.stats import add_stats_command
from fluxd.cli.trace import add_trace_command
from fluxd.cli.tree import add_tree_command

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The whole command line."""
    root = argparse.ArgumentParser(
        prog="fluxd", description="The Flux CD controllers as one asyncio process."
    )
    root.add_argument("--version", action="version", version=f"fluxd {__version__}")
    commands = root.add_subparsers(dest="command", required=True)
    add_run_command(commands)
    add_build_command(commands)
    diff_kinds = add_diff_command(commands)
    add_diff_helmrelease_command(diff_kinds)
    add_push_command(commands)
    add_pull_command(commands)
    add_artifact_tag_commands(commands, diff_kinds)
    add_get_command(commands)
    add_operate_commands(commands)
    add_events_command(commands)
    add_tree_command(commands)
    add_stats_command(commands)
    add_export_command(commands)
    add_check_command(commands)
    add_logs_command(commands)
    add_trace_command(commands)
    add_create_command(commands)
    add_install_commands(commands)
    add_bootstrap_provider_commands(add_bootstrap_command(commands))
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fluxd`` console script and ``python -m fluxd``."""
    args = parser().parse_args(argv)
    code: int = args.handler(args)
    return code
