"""The daemon's settings, apart from the daemon.

The ``fluxd`` command line derives its ``run`` flags from these defaults on every start,
whatever the command: kept here, they cost the CLI no import of the daemon and its
Kubernetes client.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Options"]


@dataclass(frozen=True, kw_only=True)
class Options:
    """The daemon's settings; the CLI flags map onto these one to one."""

    metrics_addr: str = ":8080"
    artifact_addr: str = ":9090"
    artifact_base_url: str | None = None
    leader_elect: bool = False
    leader_election_namespace: str | None = None
    leader_election_id: str = "fluxd-leader-election"
    #: Flux's ``--leader-election-lease-duration``: how long a standby waits before it
    #: takes over a Lease its holder stopped renewing (a leader killed without release).
    leader_election_lease_duration: float = 15.0
    #: Flux's ``--leader-election-renew-deadline``: how long the leader keeps retrying a
    #: failing renewal before it steps down (and exits).
    leader_election_renew_deadline: float = 10.0
    #: Flux's ``--leader-election-retry-period``: the pause between attempts to acquire
    #: or renew the Lease.
    leader_election_retry_period: float = 2.0
    watch_namespace: str | None = None
    watch_label_selector: str | None = None
    concurrent: int = 4
    grace_period: float = 30.0
    #: Flux's ``--default-service-account``: Kustomizations without
    #: ``spec.serviceAccountName`` impersonate this account of their own namespace.
    default_service_account: str | None = None
    #: Flux's ``--no-cross-namespace-refs``: references to another namespace's objects
    #: (sources, charts, image repositories, events for Alerts) are refused.
    no_cross_namespace_refs: bool = False
    #: Flux's ``--no-remote-bases``: accepted for Flux's Deployment args; fluxd never
    #: fetches a remote kustomize base whatever it says (such a base fails the build).
    no_remote_bases: bool = False
    #: Flux's ``--insecure-kubeconfig-tls``: a ``kubeConfig`` Secret may turn off TLS
    #: verification (``insecure-skip-tls-verify``); refused otherwise.
    insecure_kubeconfig_tls: bool = False
    #: Flux's ``--insecure-kubeconfig-exec``: a ``kubeConfig`` Secret's user may run an
    #: ``exec`` credential plugin in the daemon's pod; refused otherwise.
    insecure_kubeconfig_exec: bool = False
    #: Flux's ``--watch-configs-label-selector``: ConfigMaps and Secrets with these labels
    #: wake the objects that read them (``postBuild.substituteFrom``) when they change;
    #: empty watches none.
    watch_configs_label_selector: str = "reconcile.fluxcd.io/watch=Enabled"
    #: MiB of artifact file contents kept in memory; beyond it the least recently read
    #: contents go to ``artifact_spill_dir`` and come back when read. None: no bound.
    artifact_memory_mib: int | None = None
    #: Where contents beyond the memory budget go (default: a temporary directory).
    artifact_spill_dir: str | None = None
    #: MiB an artifact's files may total; a larger source is refused by name. None: no limit.
    artifact_max_mib: int | None = None
    #: Where webhook Receivers are also served, alone (``/hook/<digest>``): Flux's
    #: notification-controller port 9292, behind the ``webhook-receiver`` Service, so an
    #: Ingress for webhooks exposes no artifact. They are on the artifact listener too.
    receiver_addr: str | None = None
    #: Where the status UI listens (``:9080``); None: no UI.
    ui_addr: str | None = None
    #: Every UI API request needs a bearer token the cluster accepts (TokenReview), and
    #: each action a SubjectAccessReview allowing the user to patch the object.
    ui_auth: bool = False
    #: The UI offers reconcile, suspend and resume; without ``ui_auth`` they run with
    #: fluxd's own rights.
    ui_actions: bool = False
