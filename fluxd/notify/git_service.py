"""What every request to a git hosting service shares: the repository behind a
Provider's address, its token, GitHub's API root and headers, and request bodies
encoded as the Go clients Flux uses encode them.

The commit statuses (:mod:`~fluxd.notify.commit_status`) and the pull/merge request
comments (:mod:`~fluxd.notify.pr_comment`) reach the same services with the same
settings, so they read addresses and tokens here, once, the way Flux reads them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from fluxd.notify.event import go_json
from fluxd.notify.request import InvalidProvider, ProviderSettings

__all__ = [
    "GITHUB_APP_HINT",
    "encode_body",
    "github_api",
    "github_headers",
    "gitlab_headers",
    "json_list",
    "owner_and_repo",
    "parse_git_address",
    "service_token",
]

GITHUB_API = "https://api.github.com/"
GITHUB_APP_HINT = " (GitHub App credentials are not supported by fluxd yet)"
_SCP_ADDRESS = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


def parse_git_address(address: str) -> tuple[str, str]:
    """``(scheme://host, owner/repo)`` of a git URL; SSH addresses map to https."""
    parts = urlsplit(address)
    if parts.scheme and parts.netloc:
        scheme = "https" if parts.scheme == "ssh" else parts.scheme
        host = parts.netloc.rpartition("@")[2]
        path = parts.path
    elif (scp := _SCP_ADDRESS.match(address)) is not None:
        scheme, host, path = "https", scp["host"], scp["path"]
    else:
        raise InvalidProvider(f"failed parsing URL {address!r}: not a git repository URL")
    return f"{scheme}://{host}", path.lstrip("/").removesuffix(".git")


def owner_and_repo(address: str) -> tuple[str, str, str]:
    """``(scheme://host, owner, repo)`` of an address naming exactly ``owner/repo``."""
    host, repository = parse_git_address(address)
    owner, _, repo = repository.partition("/")
    if not owner or not repo or "/" in repo:
        raise InvalidProvider(f"invalid repository id {repository!r}: expected <owner>/<repo>")
    return host, owner, repo


def service_token(settings: ProviderSettings, service: str, hint: str = "") -> str:
    """The Secret's ``token`` (or ``password``, as Flux falls back to it)."""
    token = settings.token or settings.password
    if not token:
        raise InvalidProvider(
            f"{service} token cannot be empty: set 'token' in spec.secretRef{hint}"
        )
    return token


def encode_body(payload: Any, *, escape_html: bool) -> bytes:
    """JSON as Go's ``json.Encoder`` writes a request body: a trailing newline, HTML
    characters escaped unless the client turned that off (go-github, Gitea's SDK)."""
    if escape_html:
        return go_json(payload) + b"\n"
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode() + b"\n"


def json_list(body: bytes) -> list[Mapping[str, Any]]:
    """The objects of a JSON array answer; nothing when the answer is not one."""
    try:
        answer = json.loads(body)
    except ValueError:
        return []
    return [item for item in answer if isinstance(item, dict)] if isinstance(answer, list) else []


def github_api(host: str) -> str:
    """The REST root: api.github.com for github.com, ``/api/v3/`` on GitHub Enterprise."""
    return GITHUB_API if urlsplit(host).netloc == "github.com" else f"{host}/api/v3/"


def gitlab_headers(token: str) -> dict[str, str]:
    """What every GitLab REST call of a git service Provider carries."""
    return {"PRIVATE-TOKEN": token, "Accept": "application/json"}


def github_headers(token: str) -> dict[str, str]:
    return {
        "Accept": "application/vnd.github.v3+json",
        "Authorization": f"Bearer {token}",
        "X-GitHub-Api-Version": "2022-11-28",
    }
