"""Comments on pull and merge requests: GitHub, GitLab and Gitea, as Flux writes them.

An object annotated ``event.toolkit.fluxcd.io/change_request: "<number>"`` names the
pull (merge) request its events are about; Flux's event server hands such events, and
only those, to the ``githubpullrequestcomment``, ``gitlabmergerequestcomment`` and
``giteapullrequestcomment`` types (:func:`has_change_request`), never commit status
updates. Each keeps one comment per object and Provider on that request, updated on
every event: Flux's Markdown status (:func:`comment_text`) under a hidden marker
``<!-- flux-pr-comment-key:<provider UID>/<kind>/<namespace>/<name> -->``
(``flux-mr-comment-key`` on GitLab) that finds it again.

A delivery is the calls Flux's notifier makes, in its order, each one's request built
from the previous answer (:attr:`~fluxd.notify.request.Request.then`): who the token
belongs to, the first 100 comments of the request (oldest first), then an update of
the first one that user wrote with this marker, or a new comment. The request number
is read after the first call, as Flux reads it after building its client; a value
that is not a number fails the delivery. Addresses and tokens are read as for the
commit statuses (:mod:`~fluxd.notify.git_service`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fluxd.notify.event import EVENT_GROUP, Notification
from fluxd.notify.git_service import (
    GITHUB_APP_HINT,
    encode_body,
    github_api,
    github_headers,
    gitlab_headers,
    json_list,
    owner_and_repo,
    parse_git_address,
    service_token,
)
from fluxd.notify.request import InvalidProvider, ProviderSettings, Request, UnsendableEvent

__all__ = [
    "CHANGE_REQUEST_BUILDERS",
    "CHANGE_REQUEST_KEY",
    "CHANGE_REQUEST_TYPES",
    "comment_marker",
    "comment_text",
    "has_change_request",
]

#: The event metadata key (``event.toolkit.fluxcd.io/`` prefixed on the object) that
#: holds the pull or merge request's number.
CHANGE_REQUEST_KEY = "change_request"
PR_MARKER_PREFIX = "flux-pr-comment-key"
MR_MARKER_PREFIX = "flux-mr-comment-key"
#: As many comments as Flux reads: one page, the largest the services allow.
PAGE_SIZE = 100
ERROR_EMOJI = "\u26a0\ufe0f"
INFO_EMOJI = "\u2139\ufe0f"
_GO_INTEGER = re.compile(r"^[+-]?[0-9]+$")


def has_change_request(event: Notification) -> bool:
    """Whether ``event`` (metadata still prefixed) names a change request."""
    return bool(event.metadata.get(f"{EVENT_GROUP}/{CHANGE_REQUEST_KEY}"))


def comment_marker(prefix: str, provider_uid: str, event: Notification) -> str:
    """The hidden line that identifies this Provider's comment about this object."""
    return f"<!-- {prefix}:{provider_uid}/{event.kind}/{event.namespace}/{event.name} -->"


def comment_text(prefix: str, provider_uid: str, event: Notification) -> str:
    """Flux's comment: the marker, then the event in Markdown with its metadata sorted
    (the change request's number left out)."""
    emoji = ERROR_EMOJI if event.severity == "error" else INFO_EMOJI
    lines = "".join(
        f"* `{key}`: {value}\n"
        for key, value in sorted(event.metadata.items())
        if key != CHANGE_REQUEST_KEY
    )
    return (
        f"{comment_marker(prefix, provider_uid, event)}\n\n## Flux Status\n\n"
        f"{emoji} {event.kind}/{event.namespace}/{event.name}\n\n{event.message}\n\n"
        f"Metadata:\n{lines}"
    )


def _number(event: Notification) -> str:
    """The change request's number, as Go's ``strconv.Atoi`` reads it."""
    value = event.metadata.get(CHANGE_REQUEST_KEY)
    if value is None:
        raise UnsendableEvent(f'missing "{CHANGE_REQUEST_KEY}" metadata key')
    if not _GO_INTEGER.match(value):
        raise UnsendableEvent(
            f'invalid "{CHANGE_REQUEST_KEY}" metadata value "{value}": not a decimal number'
        )
    return str(int(value))


def _field(item: Any, *path: str) -> Any:
    """``item[path[0]][path[1]]...``, None where a level is missing."""
    for key in path:
        item = item.get(key) if isinstance(item, Mapping) else None
    return item


@dataclass(frozen=True, kw_only=True)
class _Thread:
    """Where one service keeps a change request's comments, and how it names them."""

    user_url: str
    #: Where the user's name is in the ``user_url`` answer and in a listed comment.
    user_name: tuple[str, ...]
    author: tuple[str, ...]
    headers: Mapping[str, str]
    list_url: Callable[[str], str]
    create_url: Callable[[str], str]
    update_url: Callable[[str, Any], str]
    update_method: str
    #: How the service calls one (``pull request comment``, ``merge request note``).
    noun: str
    marker_prefix: str
    escape_html: bool


def _comment(settings: ProviderSettings, event: Notification, thread: _Thread) -> Request:
    if not settings.uid:
        raise InvalidProvider("provider UID cannot be empty")
    marker = comment_marker(thread.marker_prefix, settings.uid, event)
    payload = {"body": comment_text(thread.marker_prefix, settings.uid, event)}
    body = encode_body(payload, escape_html=thread.escape_html)
    write_headers = {**thread.headers, "Content-Type": "application/json"}

    def listing(user: str) -> Request:
        number = _number(event)

        def write(answer: bytes) -> Request:
            own = next(
                (
                    comment
                    for comment in json_list(answer)
                    if _field(comment, *thread.author) == user
                    and marker in str(comment.get("body") or "")
                ),
                None,
            )
            if own is None:
                return Request(
                    url=thread.create_url(number),
                    body=body,
                    headers=write_headers,
                    failure=f"failed to create {thread.noun}",
                )
            return Request(
                url=thread.update_url(number, own.get("id", 0)),
                method=thread.update_method,
                body=body,
                headers=write_headers,
                failure=f"failed to update {thread.noun}",
            )

        return Request(
            url=thread.list_url(number),
            method="GET",
            body=b"",
            headers=thread.headers,
            then=write,
            failure=f"failed to list {thread.noun}s",
        )

    def who(answer: bytes) -> str:
        try:
            name = _field(json.loads(answer), *thread.user_name)
        except ValueError:
            name = None
        return name if isinstance(name, str) else ""

    return Request(
        url=thread.user_url,
        method="GET",
        body=b"",
        headers=thread.headers,
        then=lambda answer: listing(who(answer)),
        failure="failed to get authenticated user info",
    )


def _github(settings: ProviderSettings, event: Notification) -> Request:
    host, owner, repo = owner_and_repo(settings.address)
    token = service_token(settings, "github", GITHUB_APP_HINT)
    api = github_api(host)
    issues = f"{api}repos/{owner}/{repo}/issues"
    listing = urlencode({"direction": "asc", "per_page": PAGE_SIZE, "sort": "created"})
    thread = _Thread(
        user_url=f"{api}user",
        user_name=("login",),
        author=("user", "login"),
        headers=github_headers(token),
        list_url=lambda number: f"{issues}/{number}/comments?{listing}",
        create_url=lambda number: f"{issues}/{number}/comments",
        update_url=lambda _, comment: f"{issues}/comments/{comment}",
        update_method="PATCH",
        noun="pull request comment",
        marker_prefix=PR_MARKER_PREFIX,
        escape_html=False,
    )
    return _comment(settings, event, thread)


def _gitlab(settings: ProviderSettings, event: Notification) -> Request:
    token = service_token(settings, "gitlab")
    host, project = parse_git_address(settings.address)
    api = f"{host}/api/v4"
    requests = f"{api}/projects/{quote(project, safe='')}/merge_requests"
    listing = urlencode({"order_by": "created_at", "per_page": PAGE_SIZE, "sort": "asc"})
    thread = _Thread(
        user_url=f"{api}/user",
        user_name=("username",),
        author=("author", "username"),
        headers=gitlab_headers(token),
        list_url=lambda number: f"{requests}/{number}/notes?{listing}",
        create_url=lambda number: f"{requests}/{number}/notes",
        update_url=lambda number, note: f"{requests}/{number}/notes/{note}",
        update_method="PUT",
        noun="merge request note",
        marker_prefix=MR_MARKER_PREFIX,
        escape_html=True,
    )
    return _comment(settings, event, thread)


def _gitea(settings: ProviderSettings, event: Notification) -> Request:
    token = service_token(settings, "gitea")
    host, owner, repo = owner_and_repo(settings.address)
    api = f"{host}/api/v1"
    issues = f"{api}/repos/{owner}/{repo}/issues"
    listing = urlencode({"limit": PAGE_SIZE, "page": 1})
    thread = _Thread(
        user_url=f"{api}/user",
        user_name=("login",),
        author=("user", "login"),
        headers={"Authorization": f"token {token}"},
        list_url=lambda number: f"{issues}/{number}/comments?{listing}",
        create_url=lambda number: f"{issues}/{number}/comments",
        update_url=lambda _, comment: f"{issues}/comments/{comment}",
        update_method="PATCH",
        noun="pull request comment",
        marker_prefix=PR_MARKER_PREFIX,
        escape_html=False,
    )
    return _comment(settings, event, thread)


CHANGE_REQUEST_BUILDERS: dict[str, Callable[[ProviderSettings, Notification], Request]] = {
    "githubpullrequestcomment": _github,
    "gitlabmergerequestcomment": _gitlab,
    "giteapullrequestcomment": _gitea,
}
#: The Provider types that comment on change requests (Flux's ``isChangeRequestProvider``).
CHANGE_REQUEST_TYPES = frozenset(CHANGE_REQUEST_BUILDERS)
