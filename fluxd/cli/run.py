"""``fluxd run``: the daemon, its flags derived from :class:`~fluxd.daemon.manager.Options`.

The flags follow the Flux controllers' where they overlap (``--watch-label-selector``,
``--concurrent``, ``--leader-elect``, ``--metrics-addr``), so a Deployment's args carry
over. Each flag's default is the Options field's, so the two cannot disagree. With no
kubeconfig and no in-cluster service account, it starts the local control plane of
:mod:`fluxd.dev.controlplane` and a demo GitRepository served from a local git
repository, so a newcomer sees fluxd reconcile with nothing set up.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from fluxd.daemon.options import Options

__all__ = ["add_run_command", "options_from"]

_DEFAULTS = Options()


def add_run_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run`` to the command line."""
    run = commands.add_parser(
        "run",
        help="reconcile Flux objects in the cluster of the current kubeconfig",
        description="Run the daemon. Without any kubeconfig (and outside a pod) it starts "
        "a local control plane and a demo GitRepository.",
    )
    run.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    run.add_argument(
        "--metrics-addr", default=_DEFAULTS.metrics_addr, help="metrics and probes listener"
    )
    run.add_argument(
        "--artifact-addr", default=_DEFAULTS.artifact_addr, help="artifact HTTP listener"
    )
    run.add_argument(
        "--artifact-base-url",
        default=_DEFAULTS.artifact_base_url,
        help="URL prefix of status.artifact.url (default: the fluxd Service in the "
        "runtime namespace)",
    )
    run.add_argument(
        "--leader-elect",
        action="store_true",
        default=_DEFAULTS.leader_elect,
        help="hold a Lease to run",
    )
    run.add_argument(
        "--leader-election-namespace",
        default=_DEFAULTS.leader_election_namespace,
        help="namespace of the Lease",
    )
    run.add_argument(
        "--leader-election-lease-duration",
        type=_duration,
        default=_DEFAULTS.leader_election_lease_duration,
        help="how long a standby waits before taking over a Lease that is no longer "
        "renewed (seconds or a Go duration such as 15s)",
    )
    run.add_argument(
        "--leader-election-renew-deadline",
        type=_duration,
        default=_DEFAULTS.leader_election_renew_deadline,
        help="how long the leader retries renewing the Lease before it steps down",
    )
    run.add_argument(
        "--leader-election-retry-period",
        type=_duration,
        default=_DEFAULTS.leader_election_retry_period,
        help="pause between attempts to acquire or renew the Lease",
    )
    run.add_argument(
        "--watch-namespace",
        default=_DEFAULTS.watch_namespace,
        help="only reconcile objects in this namespace",
    )
    run.add_argument(
        "--watch-label-selector",
        default=_DEFAULTS.watch_label_selector,
        help="only reconcile objects matching this label selector",
    )
    run.add_argument(
        "--concurrent",
        type=int,
        default=_DEFAULTS.concurrent,
        help="reconciles at once, per kind",
    )
    run.add_argument(
        "--default-service-account",
        default=_DEFAULTS.default_service_account,
        help="service account that Kustomizations without spec.serviceAccountName "
        "impersonate, in their own namespace (multi-tenancy lockdown)",
    )
    run.add_argument(
        "--no-cross-namespace-refs",
        action="store_true",
        default=_DEFAULTS.no_cross_namespace_refs,
        help="refuse references to objects of another namespace (multi-tenancy lockdown)",
    )
    run.add_argument(
        "--no-remote-bases",
        action="store_true",
        default=_DEFAULTS.no_remote_bases,
        help="accepted as Flux has it: fluxd never fetches remote kustomize bases",
    )
    run.add_argument(
        "--insecure-kubeconfig-tls",
        action="store_true",
        default=_DEFAULTS.insecure_kubeconfig_tls,
        help="allow kubeConfig Secrets to disable TLS verification (insecure-skip-tls-verify)",
    )
    run.add_argument(
        "--insecure-kubeconfig-exec",
        action="store_true",
        default=_DEFAULTS.insecure_kubeconfig_exec,
        help="allow kubeConfig Secrets to run exec credential plugins in the daemon's pod",
    )
    run.add_argument(
        "--watch-configs-label-selector",
        default=_DEFAULTS.watch_configs_label_selector,
        help="ConfigMaps and Secrets with these labels wake the Kustomizations that read "
        "them when they change; empty watches none",
    )
    run.add_argument(
        "--artifact-memory-mib",
        type=int,
        default=_DEFAULTS.artifact_memory_mib,
        help="MiB of artifact contents kept in memory; the least recently read beyond it "
        "go to --artifact-spill-dir (default: no bound)",
    )
    run.add_argument(
        "--artifact-spill-dir",
        default=_DEFAULTS.artifact_spill_dir,
        help="directory for artifact contents beyond the memory budget (default: a "
        "temporary directory)",
    )
    run.add_argument(
        "--artifact-max-mib",
        type=int,
        default=_DEFAULTS.artifact_max_mib,
        help="MiB an artifact's files may total; a larger source is Ready=False "
        "(default: no limit)",
    )
    run.add_argument(
        "--receiver-addr",
        default=_DEFAULTS.receiver_addr,
        help="listener of the webhook receivers only, e.g. :9292 (they are also on the"
        " artifact listener)",
    )
    run.add_argument(
        "--ui-addr",
        default=_DEFAULTS.ui_addr,
        help="listener of the status UI, e.g. :9080 (default: no UI)",
    )
    run.add_argument(
        "--ui-auth",
        action="store_true",
        default=_DEFAULTS.ui_auth,
        help="UI API requests need a bearer token the cluster accepts; actions are "
        "allowed by the user's own RBAC (patch on the object)",
    )
    run.add_argument(
        "--ui-actions",
        action="store_true",
        default=_DEFAULTS.ui_actions,
        help="offer reconcile, suspend and resume in the UI (without --ui-auth they run "
        "with fluxd's own rights)",
    )
    run.add_argument(
        "--grace-period",
        type=float,
        default=_DEFAULTS.grace_period,
        help="seconds to finish work on SIGTERM",
    )
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-console", action="store_true", help="human-readable logs")
    run.set_defaults(handler=_run)


def _duration(text: str) -> float:
    """Seconds from a flag given as a number (``15``) or a Go duration (``15s``, ``1m``)."""
    try:
        return float(text)
    except ValueError:
        pass
    from fluxd.api import parse_duration  # only when a flag is given as a duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def options_from(args: argparse.Namespace) -> Options:
    """The daemon's Options from parsed ``run`` flags: every field that has a flag."""
    given = vars(args)
    return Options(
        **{
            field.name: given[field.name]
            for field in dataclasses.fields(Options)
            if field.name in given
        }
    )


def _leader_timing_error(options: Options) -> str | None:
    """Why the Lease timings cannot work, as client-go refuses them; None if they can."""
    lease = options.leader_election_lease_duration
    renew = options.leader_election_renew_deadline
    retry = options.leader_election_retry_period
    if lease > renew > retry > 0:
        return None
    return (
        "fluxd run: error: need --leader-election-lease-duration > "
        f"--leader-election-renew-deadline > --leader-election-retry-period > 0, got "
        f"{lease:g}s, {renew:g}s, {retry:g}s"
    )


def _run(args: argparse.Namespace) -> int:
    # The daemon, its Kubernetes client and the demo are imported by this command only.
    timing_error = _leader_timing_error(options_from(args))
    if timing_error is not None:
        print(timing_error, file=sys.stderr)
        return 2
    import anyio

    from fluxd.daemon.manager import serve
    from fluxd.dev.demo import run_local
    from fluxd.kube.client import kubeconfig_available
    from fluxd.runtime import logs

    logs.configure(args.log_level, json=not args.log_console)
    options = options_from(args)
    if kubeconfig_available(args.kubeconfig):
        anyio.run(serve, args.kubeconfig, options)
        return 0
    return run_local(options)
