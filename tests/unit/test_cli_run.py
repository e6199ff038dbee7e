"""``fluxd run`` flags become the daemon's :class:`~fluxd.daemon.manager.Options`."""

from __future__ import annotations

from fluxd.cli.main import parser
from fluxd.cli.run import options_from
from fluxd.daemon.options import Options


def test_default_service_account_flag_reaches_the_options() -> None:
    args = parser().parse_args(["run", "--default-service-account", "tenant"])
    assert options_from(args).default_service_account == "tenant"
    assert options_from(parser().parse_args(["run"])).default_service_account is None


def test_watch_configs_label_selector_defaults_to_flux_label() -> None:
    default = options_from(parser().parse_args(["run"]))
    assert default.watch_configs_label_selector == "reconcile.fluxcd.io/watch=Enabled"
    args = parser().parse_args(["run", "--watch-configs-label-selector", ""])
    assert options_from(args).watch_configs_label_selector == ""


def test_run_without_flags_is_the_daemon_default() -> None:
    assert options_from(parser().parse_args(["run"])) == Options()


def test_every_flag_reaches_its_option() -> None:
    args = parser().parse_args(
        [
            "run",
            "--metrics-addr=:18080",
            "--artifact-addr=:19090",
            "--artifact-base-url=http://fluxd.test.",
            "--leader-elect",
            "--leader-election-namespace=leases",
            "--watch-namespace=apps",
            "--watch-label-selector=shard=a",
            "--concurrent=9",
            "--grace-period=5",
        ]
    )
    assert options_from(args) == Options(
        metrics_addr=":18080",
        artifact_addr=":19090",
        artifact_base_url="http://fluxd.test.",
        leader_elect=True,
        leader_election_namespace="leases",
        watch_namespace="apps",
        watch_label_selector="shard=a",
        concurrent=9,
        grace_period=5.0,
    )


def test_ui_flags_reach_the_options_and_the_ui_is_off_by_default() -> None:
    default = options_from(parser().parse_args(["run"]))
    assert (default.ui_addr, default.ui_auth, default.ui_actions) == (None, False, False)
    args = parser().parse_args(["run", "--ui-addr=:9080", "--ui-auth", "--ui-actions"])
    chosen = options_from(args)
    assert (chosen.ui_addr, chosen.ui_auth, chosen.ui_actions) == (":9080", True, True)
