"""``fluxd run`` flags become the daemon's :class:`~fluxd.manager.Options`."""

from __future__ import annotations

from fluxd.cli import _options, _parser


def test_default_service_account_flag_reaches_the_options() -> None:
    args = _parser().parse_args(["run", "--default-service-account", "tenant"])
    assert _options(args).default_service_account == "tenant"
    assert _options(_parser().parse_args(["run"])).default_service_account is None


def test_watch_configs_label_selector_defaults_to_flux_label() -> None:
    default = _options(_parser().parse_args(["run"]))
    assert default.watch_configs_label_selector == "reconcile.fluxcd.io/watch=Enabled"
    args = _parser().parse_args(["run", "--watch-configs-label-selector", ""])
    assert _options(args).watch_configs_label_selector == ""
