"""``fluxd run``'s Lease timing flags: Flux's names, seconds or Go durations, and
timings that cannot work refused before the daemon starts."""

from __future__ import annotations

import pytest

from fluxd.cli.main import main, parser
from fluxd.cli.run import options_from


def test_lease_timings_accept_go_durations_and_seconds() -> None:
    args = parser().parse_args(
        [
            "run",
            "--leader-election-lease-duration=1m",
            "--leader-election-renew-deadline=45",
            "--leader-election-retry-period=500ms",
        ]
    )
    options = options_from(args)
    assert options.leader_election_lease_duration == 60.0
    assert options.leader_election_renew_deadline == 45.0
    assert options.leader_election_retry_period == 0.5


def test_a_malformed_duration_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["run", "--leader-election-lease-duration=soon"])
    error = capsys.readouterr().err
    assert "--leader-election-lease-duration" in error
    assert "invalid duration 'soon'" in error


def test_timings_that_cannot_work_stop_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "run",
            "--leader-election-lease-duration=5s",
            "--leader-election-renew-deadline=10s",
        ]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "--leader-election-lease-duration > --leader-election-renew-deadline" in error
    assert "5s, 10s, 2s" in error
