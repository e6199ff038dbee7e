"""GitRepository fields fluxd does not serve yet stall the object with a message naming them."""

from __future__ import annotations

import pytest

from fluxd.api import GIT_REPOSITORY
from fluxd.runtime import conditions
from tests.integration.conftest import Fluxd

pytestmark = pytest.mark.integration

URL = "http://127.0.0.1:9/never-contacted.git"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"provider": "azure"}, "spec.provider 'azure'"),
        ({"provider": "aws"}, "spec.provider 'aws'"),
    ],
)
async def test_unsupported_field_stalls_naming_it(
    fluxd: Fluxd, extra: dict[str, object], named: str
) -> None:
    await fluxd.create(GIT_REPOSITORY, "refused", {"interval": "1h", "url": URL, **extra})
    obj = await fluxd.wait_not_ready(GIT_REPOSITORY, "refused", "UnsupportedField")
    status = obj["status"]
    ready = conditions.get(status, "Ready")
    stalled = conditions.get(status, "Stalled")
    assert ready is not None
    assert named in ready["message"]
    assert stalled is not None
    assert stalled["status"] == "True"
    assert "artifact" not in status
