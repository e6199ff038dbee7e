"""A Provider address with a password in it (from the Provider's Secret) never shows
that password in a delivery failure, which goes to logs and Events."""

from __future__ import annotations

import pytest

from fluxd.notify.delivery import DeliveryError, Transport, send
from fluxd.notify.request import Request

ADDRESS = "http://hook-user:pa55-in-address@127.0.0.1:9/hook"


@pytest.mark.parametrize(
    ("transport", "words"),
    [
        (Transport(timeout=5, retry_wait_min=0.01), "failed to execute request"),
        (Transport(timeout=0.02, retry_wait_min=1), "no answer from"),
    ],
    ids=["refused", "timeout"],
)
async def test_failure_message_masks_the_address_password(transport: Transport, words: str) -> None:
    with pytest.raises(DeliveryError) as error:
        await send(Request(url=ADDRESS, body=b"{}", headers={}), transport)
    message = str(error.value)
    assert words in message
    assert "pa55-in-address" not in message
