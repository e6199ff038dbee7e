"""How an HTTP client error reads in a source's message, a body cut short above all.

The readers of registries, chart repositories and buckets fetch over aiohttp. When a
server or a proxy hangs up in the middle of a body, aiohttp's text is "Response payload is
not completed: <ContentLengthError: 400, ...>", whose ``400`` is its parser's code, not
an HTTP status the server sent, and reads as one. Every reader says it the same way
instead: the connection broke mid-transfer and the response was truncated, with how much
arrived, so a user looks at the network or the server and not at the request.
"""

from __future__ import annotations

import aiohttp

__all__ = ["describe_client_error"]


def describe_client_error(error: aiohttp.ClientError) -> str:
    """``error`` in a user's words; a truncated response body says so."""
    if not isinstance(error, aiohttp.ClientPayloadError):
        return str(error)
    detail = getattr(error.__cause__, "message", None) or str(error)
    return (
        f"the connection broke mid-transfer, the response was truncated ({str(detail).rstrip('.')})"
    )
