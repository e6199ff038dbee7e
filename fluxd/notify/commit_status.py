"""Commit statuses on git hosting services: GitHub, GitLab, Gitea, Bitbucket Cloud,
Bitbucket Server and Azure DevOps, plus GitHub's ``repository_dispatch``.

Each builder turns one event into the status Flux's notification-controller posts
(``internal/notifier``) for the commit in the event's ``revision`` metadata: the same
endpoint, JSON fields in the same order, state mapping, description (the reason split
into lower-case words) and status id. The id is what the Provider's
``spec.commitStatusExpr`` gave for the event (:attr:`ProviderSettings.commit_status`),
or else Flux's default, ``<kind>/<name>/<first part of the Provider's UID>``
lower-cased, so two clusters (two Provider UIDs) never overwrite each other's status.
The repository comes from
``spec.address`` parsed as Flux parses git URLs (``https://host/owner/repo(.git)``,
``ssh://git@host/owner/repo``, ``git@host:owner/repo``); its host is the service's
(GitHub Enterprise under ``/api/v3``, self-hosted GitLab, Gitea, Bitbucket Server and
Azure DevOps Server alike), except Bitbucket Cloud's, whose API is fixed.

Like Flux, each first reads the status already on the commit (a
:class:`~fluxd.notify.request.Lookup`) and posts nothing when the newest one with this
id already has this state and description. Progressing events are skipped
(:class:`~fluxd.notify.request.NothingToSend`), except on Gitea, which shows them as
``pending``; an event without a usable revision fails its delivery
(:class:`~fluxd.notify.request.UnsendableEvent`), as it fails in Flux. Which events
reach these types, and the pull request comment types, at all is Flux's event server
rule, :func:`takes_event`. Addresses, tokens and bodies are read and encoded by
:mod:`~fluxd.notify.git_service`, shared with :mod:`~fluxd.notify.pr_comment`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fluxd.notify.event import EVENT_GROUP, Notification, go_json
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
from fluxd.notify.pr_comment import CHANGE_REQUEST_TYPES, has_change_request
from fluxd.notify.request import (
    InvalidProvider,
    Lookup,
    NothingToSend,
    ProviderSettings,
    Request,
    UnsendableEvent,
    basic_auth,
)

__all__ = [
    "COMMIT_STATUS_TYPES",
    "GIT_SERVICE_BUILDERS",
    "commit_sha",
    "commit_status_id",
    "describe",
    "parse_git_address",
    "takes_event",
]

#: The Provider types that post commit statuses (Flux's ``isCommitStatusProvider``).
COMMIT_STATUS_TYPES = frozenset(
    {"github", "gitlab", "gitea", "bitbucket", "bitbucketserver", "azuredevops"}
)
#: Event types forwarded as they are, commit status updates included.
GENERIC_TYPES = frozenset({"generic", "generic-hmac"})
COMMIT_STATUS_KEY = "commit_status"
COMMIT_STATUS_UPDATE = "update"
COMMIT_KEY = f"{EVENT_GROUP}/commit"
PROGRESSING = "Progressing"
BITBUCKET_API = "https://api.bitbucket.org/2.0"
#: The link Flux attaches to a Bitbucket Cloud status.
BITBUCKET_LINK = "https://bitbucket.org"
AZURE_GENRE = "fluxcd"
_HEX = re.compile(r"^[0-9a-f]+$")
_DIGEST_LENGTHS = {"sha1": 40, "sha256": 64}
_WORD_CLASSES = (str.islower, str.isupper, str.isdigit)


def takes_event(provider_type: str, event: Notification) -> bool:
    """Whether a Provider of ``provider_type`` gets ``event`` at all (Flux's event
    server decides before any Alert's provider is built); ``event`` still carries its
    group-prefixed metadata.

    A commit status provider takes commit status updates (a Kustomization's closing
    ``ReconciliationSucceeded``), events naming a commit and every error; the other
    types but the generic ones never see commit status updates, and a pull request
    comment type only sees events naming their change request."""
    update = event.metadata.get(f"{event.group}/{COMMIT_STATUS_KEY}") == COMMIT_STATUS_UPDATE
    if provider_type in COMMIT_STATUS_TYPES:
        return update or bool(event.metadata.get(COMMIT_KEY)) or event.severity == "error"
    if provider_type in CHANGE_REQUEST_TYPES:
        return not update and has_change_request(event)
    return not update or provider_type in GENERIC_TYPES


def commit_sha(revision: str) -> str:
    """The commit hash of a Flux revision (``main@sha1:<hex>``, ``sha1:<hex>``, or the
    legacy ``main/<hex>``); :class:`UnsendableEvent` when there is none."""
    digest = revision.rpartition("@")[2]
    algorithm, colon, value = digest.partition(":")
    if not colon:
        algorithm, value = "", digest.rpartition("/")[2]
    lengths = [_DIGEST_LENGTHS[algorithm]] if algorithm in _DIGEST_LENGTHS else []
    if not algorithm:
        lengths = list(_DIGEST_LENGTHS.values())
    if len(value) in lengths and _HEX.match(value):
        return value
    raise UnsendableEvent(f"failed to extract commit hash from '{revision}' revision")


def _split_camel_case(text: str) -> list[str]:
    """Go's ``splitCamelcase`` as Flux uses it: runs of one character class, with an
    upper-case letter moved to the lower-case run after it (``PDFLoader``: PDF, Loader)."""
    runs: list[list[str]] = []
    last = -1
    for char in text:
        kind = next((i for i, test in enumerate(_WORD_CLASSES) if test(char)), 3)
        if kind == last:
            runs[-1].append(char)
        else:
            runs.append([char])
        last = kind
    for i in range(len(runs) - 1):
        if runs[i][0].isupper() and runs[i + 1][0].islower():
            runs[i + 1].insert(0, runs[i].pop())
    return ["".join(run) for run in runs if run]


def describe(event: Notification) -> tuple[str, str]:
    """Flux's ``(kind/name, description)`` of an event, both lower-case:
    ``ReconciliationSucceeded`` reads ``reconciliation succeeded``."""
    name = f"{event.kind}/{event.name}".lower()
    return name, " ".join(_split_camel_case(event.reason)).lower()


def commit_status_id(provider_uid: str, event: Notification) -> str:
    """Flux's default status id: one per object and per cluster's Provider."""
    return f"{event.kind}/{event.name}/{provider_uid.split('-')[0]}".lower()


def _status_id(settings: ProviderSettings, event: Notification) -> str:
    return settings.commit_status or commit_status_id(settings.uid, event)


def _revision(event: Notification) -> str:
    revision = event.metadata.get("revision")
    if revision is None:
        raise UnsendableEvent("missing revision metadata")
    return commit_sha(revision)


def _skip_progressing(event: Notification) -> None:
    if event.reason == PROGRESSING:
        raise NothingToSend(f"{PROGRESSING} events set no commit status")


@dataclass(frozen=True)
class _Status:
    """What every commit status names: the commit, Flux's name and description of the
    event, and the status's id (context, key) on that commit."""

    sha: str
    name: str
    description: str
    context: str


def _status(settings: ProviderSettings, event: Notification) -> _Status:
    """The status of a non-progressing event (those set none, except on Gitea)."""
    _skip_progressing(event)
    sha = _revision(event)
    name, description = describe(event)
    return _Status(sha, name, description, _status_id(settings, event))


def _success_or_failure(event: Notification, success: str, failure: str) -> str:
    return failure if event.severity == "error" else success


def _newest_matches(
    statuses: Sequence[Mapping[str, Any]], same_id: Callable[[Mapping[str, Any]], bool], **want: str
) -> bool:
    """Whether the newest listed status with this id already says ``want``."""
    for status in statuses:
        if not all(status.get(key) for key in want) or not same_id(status):
            continue
        return all(status.get(key) == value for key, value in want.items())
    return False


def _github(settings: ProviderSettings, event: Notification) -> Request:
    host, owner, repo = owner_and_repo(settings.address)
    token = service_token(settings, "github", GITHUB_APP_HINT)
    status = _status(settings, event)
    sha, description, context = status.sha, status.description, status.context
    state = _success_or_failure(event, "success", "failure")
    base = f"{github_api(host)}repos/{owner}/{repo}"
    headers = github_headers(token)
    lookup = Lookup(
        url=f"{base}/commits/{sha}/statuses?per_page=50",
        headers=headers,
        already_done=lambda _, body: _newest_matches(
            json_list(body),
            lambda s: s.get("context") == context,
            state=state,
            description=description,
        ),
        failure="could not list commit statuses",
    )
    payload = {"state": state, "description": description, "context": context}
    return Request(
        url=f"{base}/statuses/{sha}",
        body=encode_body(payload, escape_html=False),
        headers={**headers, "Content-Type": "application/json"},
        lookup=lookup,
        failure="could not create commit status",
    )


def _github_dispatch(settings: ProviderSettings, event: Notification) -> Request:
    host, owner, repo = owner_and_repo(settings.address)
    token = service_token(settings, "github", GITHUB_APP_HINT)
    # The event is marshalled first (HTML escaped), then embedded as raw JSON.
    payload = (
        b'{"event_type":'
        + encode_body(f"{event.kind}/{event.name}.{event.namespace}", escape_html=False)[:-1]
        + b',"client_payload":'
        + go_json(event.to_dict())
        + b"}\n"
    )
    return Request(
        url=f"{github_api(host)}repos/{owner}/{repo}/dispatches",
        body=payload,
        headers={**github_headers(token), "Content-Type": "application/json"},
        failure="could not send github repository dispatch webhook",
    )


def _gitlab(settings: ProviderSettings, event: Notification) -> Request:
    token = service_token(settings, "gitlab")
    host, project = parse_git_address(settings.address)
    status = _status(settings, event)
    sha, description, name = status.sha, status.description, status.context
    state = _success_or_failure(event, "success", "failed")
    base = f"{host}/api/v4/projects/{quote(project, safe='')}"
    headers = gitlab_headers(token)
    lookup = Lookup(
        url=f"{base}/repository/commits/{sha}/statuses?{urlencode({'name': name})}",
        headers=headers,
        already_done=lambda _, body: any(
            s.get("sha") == sha
            and s.get("status") == state
            and s.get("description") == description
            and s.get("name") == name
            for s in json_list(body)
        ),
        failure="unable to list commit status",
    )
    payload = {"state": state, "name": name, "description": description}
    return Request(
        url=f"{base}/statuses/{sha}",
        body=encode_body(payload, escape_html=True),
        headers={**headers, "Content-Type": "application/json"},
        lookup=lookup,
        failure="could not set commit status",
    )


def _gitea(settings: ProviderSettings, event: Notification) -> Request:
    token = service_token(settings, "gitea")
    host, owner, repo = owner_and_repo(settings.address)
    sha = _revision(event)
    if event.reason == PROGRESSING:
        state = "pending"
    else:
        state = _success_or_failure(event, "success", "failure")
    _, description = describe(event)
    context = _status_id(settings, event)
    base = f"{host}/api/v1/repos/{owner}/{repo}"
    headers = {"Authorization": f"token {token}"}
    lookup = Lookup(
        url=f"{base}/commits/{sha}/statuses?{urlencode({'limit': 50, 'page': 0})}",
        headers=headers,
        already_done=lambda _, body: _newest_matches(
            json_list(body),
            lambda s: s.get("context") == context,
            status=state,
            description=description,
        ),
        failure="could not list commit statuses",
    )
    payload = {"state": state, "target_url": "", "description": description, "context": context}
    return Request(
        url=f"{base}/statuses/{sha}",
        body=encode_body(payload, escape_html=False),
        headers={**headers, "Content-Type": "application/json"},
        lookup=lookup,
        failure="could not create commit status",
    )


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _same_state(body: bytes, **want: str) -> bool:
    try:
        found = json.loads(body)
    except ValueError:
        return False
    return isinstance(found, dict) and all(found.get(k, "") == v for k, v in want.items())


def _bitbucket(settings: ProviderSettings, event: Notification) -> Request:
    if not settings.token:
        raise InvalidProvider("bitbucket token cannot be empty: set 'token' in spec.secretRef")
    _, owner, repo = owner_and_repo(settings.address)
    credentials = settings.token.split(":")
    if len(credentials) != 2:
        raise InvalidProvider("invalid token format, expected to be <user>:<password>")
    status = _status(settings, event)
    sha, name, description = status.sha, status.name, status.description
    key = _sha1(status.context)
    state = _success_or_failure(event, "SUCCESSFUL", "FAILED")
    base = f"{BITBUCKET_API}/repositories/{owner}/{repo}/commit/{sha}/statuses/build"
    headers = {"Authorization": basic_auth(*credentials)}
    lookup = Lookup(
        url=f"{base}/{key}",
        headers=headers,
        already_done=lambda _, body: _same_state(body, state=state, description=description),
        failure="could not get commit status",
        absent=frozenset({404}),
    )
    payload = {
        "key": key,
        "url": BITBUCKET_LINK,
        "state": state,
        "name": name,
        "description": description,
    }
    return Request(
        url=base,
        body=go_json(payload),
        headers={**headers, "Content-Type": "application/json"},
        lookup=lookup,
        failure="could not create commit status",
    )


def _bitbucket_server_commits(address: str) -> str:
    """The REST URL of the repository's commits behind a ``.../scm/<project>/<repo>``
    clone URL (any context path before ``/scm/`` kept)."""
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https"):
        raise InvalidProvider(
            f"could not parse git address: unsupported scheme type in address: "
            f"{parts.scheme}. Must be http or https"
        )
    path = parts.path.removesuffix(".git")
    context, scm, repository = path.rpartition("/scm/")
    if not scm:
        raise InvalidProvider(
            "could not parse git address: supplied provider address is not http(s) git clone url"
        )
    project, _, slug = repository.partition("/")
    if not project or not slug or "/" in slug:
        raise InvalidProvider(f"could not parse git address: invalid repository id {repository!r}")
    return (
        f"{parts.scheme}://{parts.netloc}{context}/rest/api/latest/projects/{project}"
        f"/repos/{slug}/commits"
    )


def _bitbucket_server(settings: ProviderSettings, event: Notification) -> Request:
    commits = _bitbucket_server_commits(settings.address)
    if settings.token:
        authorization = f"Bearer {settings.token}"
    elif settings.username and settings.password:
        authorization = basic_auth(settings.username, settings.password)
    else:
        raise InvalidProvider(
            "invalid credentials, expected to be one of username/password or API Token"
        )
    status = _status(settings, event)
    sha, description = status.sha, status.description
    # Bitbucket Server shows only the name, so Flux puts the description in it too.
    name = f"{status.name} [{description}]"
    key = _sha1(status.context)
    state = _success_or_failure(event, "SUCCESSFUL", "FAILED")
    url = f"{commits}/{sha}/builds"
    headers = {
        "Authorization": authorization,
        "x-atlassian-token": "no-check",
        "x-requested-with": "XMLHttpRequest",
    }
    lookup = Lookup(
        url=f"{url}?{urlencode({'key': key})}",
        headers=headers,
        already_done=lambda status, body: (
            status == 200
            and _same_state(body, key=key, state=state, description=description, name=name)
        ),
        failure="could not get existing commit status",
        absent=frozenset({404}),
    )
    payload = {
        "description": description,
        "key": key,
        "name": name,
        "state": state,
        "url": settings.address,
    }
    return Request(
        url=url,
        body=encode_body(payload, escape_html=True),
        headers={**headers, "Content-Type": "application/json"},
        lookup=lookup,
        failure="could not post build status",
    )


def _azure_devops(settings: ProviderSettings, event: Notification) -> Request:
    if not settings.token:
        raise InvalidProvider(
            "azure devops token cannot be empty: set 'token' in spec.secretRef "
            "(managed identity is not supported)"
        )
    host, repository = parse_git_address(settings.address)
    parts = repository.split("/")
    if len(parts) != 4:
        raise InvalidProvider(
            f"invalid repository id {repository!r}: expected <org>/<project>/_git/<repo>"
        )
    organization, project, _, repo = parts
    status = _status(settings, event)
    sha, description, name = status.sha, status.description, status.context
    summary = event.metadata.get("summary")
    genre = f"{AZURE_GENRE}:{summary}" if summary is not None else AZURE_GENRE
    state = _success_or_failure(event, "succeeded", "error")
    url = (
        f"{host}/{organization}/{project}/_apis/git/repositories/{repo}"
        f"/commits/{sha}/statuses?api-version=6.0"
    )
    headers = {"Authorization": basic_auth("", settings.token), "Accept": "application/json"}

    def already_done(_: int, body: bytes) -> bool:
        try:
            answer = json.loads(body)
        except ValueError:
            return False
        listed = answer.get("value", []) if isinstance(answer, dict) else []
        statuses = [
            {**s, **(s.get("context") or {})}
            for s in listed
            if isinstance(s, dict) and isinstance(s.get("context"), dict)
        ]
        return _newest_matches(
            statuses,
            lambda s: s.get("name") == name and s.get("genre") == genre,
            state=state,
            description=description,
        )

    payload = {
        "context": {"genre": genre, "name": name},
        "description": description,
        "state": state,
    }
    return Request(
        url=url,
        body=go_json(payload),
        headers={**headers, "Content-Type": "application/json"},
        lookup=Lookup(
            url=url,
            headers=headers,
            already_done=already_done,
            failure="could not list commit statuses",
        ),
        failure="could not create commit status",
    )


GIT_SERVICE_BUILDERS: dict[str, Callable[[ProviderSettings, Notification], Request]] = {
    "github": _github,
    "githubdispatch": _github_dispatch,
    "gitlab": _gitlab,
    "gitea": _gitea,
    "bitbucket": _bitbucket,
    "bitbucketserver": _bitbucket_server,
    "azuredevops": _azure_devops,
}
