"""The request model every Provider type's builder shares: a Provider's resolved
settings in, one HTTP request out, and the small checks and encodings they all use.

Kept apart from the builders so the builder modules (:mod:`~fluxd.notify.providers`,
:mod:`~fluxd.notify.chat`) depend on it and never on each other's internals.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fluxd.notify.event import go_json

__all__ = [
    "InvalidProvider",
    "Lookup",
    "NothingToSend",
    "ProviderSettings",
    "PublishFailed",
    "Request",
    "UnsendableEvent",
    "basic_auth",
    "json_request",
    "require_url",
]


class InvalidProvider(ValueError):
    """The provider's settings cannot make a request (bad address, empty HMAC key)."""


class UnsendableEvent(ValueError):
    """This event cannot go to the provider (a commit status without a revision)."""


class NothingToSend(Exception):
    """The provider type skips this event by design (Flux's Progressing events)."""


class PublishFailed(Exception):
    """A delivery made over another protocol than HTTP (NATS) failed; the message says
    why."""


@dataclass(frozen=True, kw_only=True)
class ProviderSettings:
    """A Provider's spec and Secret, resolved: what a request is built from.

    ``uid`` is the Provider object's UID; Opsgenie derives its alert alias from it.
    ``commit_status_expr`` is ``spec.commitStatusExpr``; ``commit_status`` the id it
    gave for the event being sent (empty: the default id)."""

    type: str
    address: str
    channel: str = ""
    username: str = ""
    password: str = ""
    token: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    uid: str = ""
    commit_status_expr: str = ""
    commit_status: str = ""


@dataclass(frozen=True, kw_only=True)
class Lookup:
    """A GET made before a request to see whether its effect is already there (the
    same commit status posted before). ``already_done`` reads the answer's status code
    and body; True means the request is not sent. ``failure`` prefixes its errors."""

    url: str
    headers: Mapping[str, str]
    already_done: Callable[[int, bytes], bool]
    failure: str
    #: Answers other than 2xx that still mean "not there yet" (Bitbucket's 404).
    absent: frozenset[int] = frozenset()


@dataclass(frozen=True, kw_only=True)
class Request:
    """One request (a POST unless ``method`` says otherwise); ``check`` reads a 2xx
    answer's body and returns an error, or None. ``lookup`` goes first and may make
    it unnecessary; ``follow_up`` is sent once this one succeeded (PagerDuty's change
    event). ``then``, when set, reads the 2xx answer's body and returns the request to
    send next in place of ``follow_up``, for deliveries whose next call depends on the
    answer (a pull request comment to update or create). ``failure`` prefixes the
    error a refused request is reported with. ``publish``, when set, is the whole
    delivery over a protocol other than HTTP (NATS): it is awaited in place of the
    HTTP exchange, under the same timeout, and raises :class:`PublishFailed`."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    check: Callable[[bytes], str | None] | None = None
    method: str = "POST"
    lookup: Lookup | None = None
    follow_up: Request | None = None
    then: Callable[[bytes], Request] | None = None
    failure: str = "postMessage failed"
    publish: Callable[[], Awaitable[None]] | None = None


def require_url(address: str, what: str) -> None:
    """Refuse ``address`` unless it is an absolute http(s) URL."""
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidProvider(f"invalid {what} URL {address!r}: an absolute http(s) URL is needed")


def json_request(url: str, payload: Any, headers: Mapping[str, str] | None = None) -> Request:
    """A POST of ``payload`` encoded as Go encodes it."""
    return Request(
        url=url,
        body=go_json(payload),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def basic_auth(username: str, password: str) -> str:
    """The ``Authorization`` value for HTTP basic authentication."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
