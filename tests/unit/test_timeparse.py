"""Go duration strings, as Flux intervals are written."""

from __future__ import annotations

import pytest

from fluxd.timeparse import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m", 60), ("1m0s", 60), ("1h30m", 5400), ("500ms", 0.5), ("1.5h", 5400), ("0", 0)],
)
def test_valid_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "1x", "m", "1m 2s", "1mm"])
def test_invalid_durations_name_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
