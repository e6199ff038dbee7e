"""The git provider side of ``fluxd bootstrap github|gitlab``: the repository and its deploy key.

As ``flux bootstrap github|gitlab`` does (through go-git-providers), bootstrap first makes
sure the repository exists on the provider, creating it when it does not, and later
registers the public half of the cluster's SSH key on it as a deploy key. Both talk to the
provider's documented REST API and nothing else:

- GitHub: ``https://api.github.com``, or ``https://<hostname>/api/v3`` for GitHub
  Enterprise; a ``Bearer`` token; ``/repos/{owner}/{repo}``, ``/user/repos`` or
  ``/orgs/{owner}/repos``, ``/repos/{owner}/{repo}/keys``;
- GitLab: ``https://gitlab.com/api/v4`` or ``https://<hostname>/api/v4``; a
  ``PRIVATE-TOKEN`` header; projects by their URL-encoded path, created in the token
  user's namespace or a group's (its id from ``/groups/{path}``),
  ``/projects/{path}/deploy_keys``.

Both are idempotent, so bootstrap can be re-run: an existing repository is found, not
re-created (nor changed), and a deploy key already present under its title with the same
key and access is left alone; under that title with another key or access it is replaced.
Lists are followed through their ``Link: rel="next"`` pages. Every failure is one
:class:`ProviderError` line naming the provider, what was being done, the HTTP status and
the provider's own message, with the token scrubbed from it. aiohttp is imported when a
call is made, so the command line starts without it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "Provider",
    "ProviderError",
    "ProviderRepository",
    "ensure_deploy_key",
    "ensure_repository",
    "ssh_clone_url",
]

Provider = Literal["github", "gitlab"]

_DISPLAY_NAMES: dict[Provider, str] = {"github": "GitHub", "gitlab": "GitLab"}
_PUBLIC_HOSTS: dict[Provider, str] = {"github": "github.com", "gitlab": "gitlab.com"}
_OWNER_KINDS: dict[Provider, str] = {"github": "organization", "gitlab": "group"}
#: The largest page both APIs serve, so that few keys ever take more than one request.
_PAGE_SIZE = 100
#: How much of a body that is not the provider's JSON error is quoted in a message.
_QUOTED_BODY = 200


@dataclass(frozen=True)
class ProviderRepository:
    """A repository as the provider reports it, with clone URLs dulwich can use."""

    ssh_url: str  # always ssh://, also when the provider reports git@host:owner/repo.git
    https_url: str  # GitHub's clone_url, GitLab's http_url_to_repo
    default_branch: str | None  # None when the provider names none (an empty GitLab project)
    created: bool  # True when this call created it


class ProviderError(Exception):
    """A provider call that failed, as one line: what failed, the HTTP status, the
    provider's message; never the token."""


async def ensure_repository(
    provider: Provider,
    *,
    owner: str,
    repository: str,
    token: str,
    personal: bool,
    private: bool,
    hostname: str | None = None,
    ca_file: str | None = None,
    timeout: float = 30,  # noqa: ASYNC109 - one bound for every request, as bootstrap's --timeout
) -> ProviderRepository:
    """The repository ``owner/repository``, created when it does not exist: for the token's
    own user when ``personal``, else in the organization (GitHub) or group (GitLab) ``owner``;
    private or public as ``private`` says. An existing one is returned as it is."""
    _require_names(provider, owner=owner, repository=repository)
    full_name = f"{owner}/{repository}"
    async with _connect(provider, token, hostname, ca_file, timeout) as api:
        found = await api.call(
            "GET",
            _repository_path(provider, owner, repository),
            doing=f"looking up repository {full_name}",
            absent_ok=True,
        )
        if found is not None:
            return _repository_from(provider, found, created=False)
        if personal:
            await _require_token_user(api, provider, owner)
        body: dict[str, Any]
        if provider == "github":
            path = "/user/repos" if personal else f"/orgs/{quote(owner, safe='')}/repos"
            body = {"name": repository, "private": private}
        else:
            path = "/projects"
            body = {
                "name": repository,
                "path": repository,
                "visibility": "private" if private else "public",
            }
            if not personal:
                body["namespace_id"] = await _gitlab_group_id(api, owner)
        created = await api.call(
            "POST",
            path,
            body=body,
            doing=f"creating repository {full_name}",
            hints=None if personal else {404: f"no {_OWNER_KINDS[provider]} named {owner!r}"},
        )
        return _repository_from(provider, created, created=True)


async def ensure_deploy_key(
    provider: Provider,
    *,
    owner: str,
    repository: str,
    token: str,
    title: str,
    public_key: str,
    read_only: bool,
    hostname: str | None = None,
    ca_file: str | None = None,
    timeout: float = 30,  # noqa: ASYNC109 - one bound for every request, as bootstrap's --timeout
) -> bool:
    """Register ``public_key`` (an OpenSSH public key line) as the deploy key ``title`` of
    ``owner/repository``; True when it was added, False when it was already there as asked.
    A key of that title with other key material or access is replaced."""
    _require_names(provider, owner=owner, repository=repository)
    wanted = _key_material(public_key)
    if wanted is None:
        raise ProviderError(
            f"{_DISPLAY_NAMES[provider]}: the deploy key {title!r} is not an OpenSSH public"
            " key line ('<type> <base64> [comment]')"
        )
    full_name = f"{owner}/{repository}"
    keys_path = _repository_path(provider, owner, repository) + (
        "/keys" if provider == "github" else "/deploy_keys"
    )
    async with _connect(provider, token, hostname, ca_file, timeout) as api:
        present = await api.pages(
            keys_path,
            doing=f"listing the deploy keys of {full_name}",
            hints={404: f"no repository {full_name}, or the token cannot see it"},
        )
        for key in present:
            if key.get("title") != title:
                continue
            if (
                _key_material(str(key.get("key", ""))) == wanted
                and _is_read_only(provider, key) == read_only
            ):
                return False
            await api.call(
                "DELETE",
                f"{keys_path}/{key.get('id')}",
                doing=f"removing the outdated deploy key {title!r} of {full_name}",
            )
        access = {"read_only": read_only} if provider == "github" else {"can_push": not read_only}
        await api.call(
            "POST",
            keys_path,
            body={"title": title, "key": public_key.strip(), **access},
            doing=f"adding the deploy key {title!r} to {full_name}",
        )
        return True


def ssh_clone_url(reported: str) -> str:
    """An ``ssh://`` URL for the SSH clone address a provider reports: GitHub and GitLab
    give the scp-like ``git@host:owner/repo.git``, which is not a URL; one that already
    is a URL is kept."""
    if "://" in reported:
        return reported
    user_host, separator, path = reported.partition(":")
    if not separator or not path:
        return reported
    return f"ssh://{user_host}/{path.lstrip('/')}"


# --- the HTTP conversation --------------------------------------------------------------------


class _Api:
    """One provider's API under its base URL, with the token on every request."""

    def __init__(
        self, provider: Provider, session: aiohttp.ClientSession, base_url: str, token: str
    ) -> None:
        self._provider = provider
        self._session = session
        self._base_url = base_url
        self._token = token

    async def call(
        self,
        method: str,
        path: str,
        *,
        doing: str,
        body: Mapping[str, Any] | None = None,
        absent_ok: bool = False,
        hints: Mapping[int, str] | None = None,
    ) -> Any:
        """The JSON answer of one request (None for an empty one, or a 404 when
        ``absent_ok``); ProviderError for any other failure, ``hints`` saying what a
        status likely means."""
        status, answer, _ = await self._request(method, self._base_url + path, doing, body)
        if status == 404 and absent_ok:
            return None
        if status >= 400:
            raise self._error(doing, status, answer, (hints or {}).get(status))
        return answer

    async def pages(
        self, path: str, *, doing: str, hints: Mapping[int, str] | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a paged list, following ``Link: rel="next"`` on the same server."""
        items: list[dict[str, Any]] = []
        url: str | None = f"{self._base_url}{path}?per_page={_PAGE_SIZE}"
        while url is not None:
            status, answer, next_url = await self._request("GET", url, doing, None)
            if status >= 400:
                raise self._error(doing, status, answer, (hints or {}).get(status))
            if not isinstance(answer, list):
                raise self._error(doing, status, "the answer is not a list", None)
            items.extend(item for item in answer if isinstance(item, dict))
            if next_url is not None and not _same_origin(next_url, self._base_url):
                raise self._error(doing, status, f"the next page is on {next_url}", None)
            url = next_url
        return items

    async def _request(
        self, method: str, url: str, doing: str, body: Mapping[str, Any] | None
    ) -> tuple[int, Any, str | None]:
        """``(status, JSON or text of the body, next page URL)``."""
        import aiohttp
        import yarl

        try:
            async with self._session.request(
                method, yarl.URL(url, encoded=True), json=body
            ) as response:
                text = await response.text()
                next_link = response.links.get("next")
                next_url = str(next_link["url"]) if next_link is not None else None
                return response.status, _parsed(text), next_url
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            reason = str(error) or type(error).__name__
            raise ProviderError(
                self._redacted(
                    f"{_DISPLAY_NAMES[self._provider]}: {doing} failed:"
                    f" cannot reach {self._base_url}: {reason}"
                )
            ) from None

    def _error(self, doing: str, status: int, answer: Any, hint: str | None) -> ProviderError:
        message = _provider_message(answer) or "no message"
        if status == 401:
            hint = "the token was refused"
        suffix = f" ({hint})" if hint else ""
        line = f"{_DISPLAY_NAMES[self._provider]}: {doing} failed: HTTP {status}: {message}"
        return ProviderError(self._redacted(line + suffix))

    def _redacted(self, line: str) -> str:
        return line.replace(self._token, "***") if self._token else line


@asynccontextmanager
async def _connect(
    provider: Provider, token: str, hostname: str | None, ca_file: str | None, seconds: float
) -> AsyncIterator[_Api]:
    import aiohttp

    base_url = _base_url(provider, hostname)
    tls = _tls_context(provider, ca_file)
    if provider == "github":
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
    else:
        headers = {"PRIVATE-TOKEN": token}
    async with aiohttp.ClientSession(
        headers={**headers, "User-Agent": "fluxd"},
        timeout=aiohttp.ClientTimeout(total=seconds),
        connector=aiohttp.TCPConnector(ssl=tls),
    ) as session:
        yield _Api(provider, session, base_url, token)


def _base_url(provider: Provider, hostname: str | None) -> str:
    host = (hostname or _PUBLIC_HOSTS[provider]).strip().rstrip("/")
    if not host or "://" in host or "/" in host:
        raise ProviderError(
            f"{_DISPLAY_NAMES[provider]}: the hostname {hostname!r} is not a host name"
            " (with an optional :port)"
        )
    if provider == "github":
        return "https://api.github.com" if host == "github.com" else f"https://{host}/api/v3"
    return f"https://{host}/api/v4"


def _tls_context(provider: Provider, ca_file: str | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise ProviderError(
            f"{_DISPLAY_NAMES[provider]}: cannot use the CA file {ca_file}: {error}"
        ) from None


def _same_origin(url: str, base_url: str) -> bool:
    one, other = urlsplit(url), urlsplit(base_url)
    return (one.scheme, one.netloc) == (other.scheme, other.netloc)


def _parsed(text: str) -> Any:
    import json

    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _provider_message(answer: Any) -> str:
    """The provider's words from an error body: GitHub's ``message`` and ``errors``,
    GitLab's ``message`` (text, or field -> problems) or ``error``."""
    if isinstance(answer, str):
        return " ".join(answer.split())[:_QUOTED_BODY]
    if not isinstance(answer, dict):
        return ""
    message = answer.get("message")
    if isinstance(message, dict):
        text = "; ".join(f"{field} {_joined(problems)}" for field, problems in message.items())
    else:
        text = str(message or answer.get("error") or "")
    details = [
        str(error.get("message") or f"{error.get('field')} {error.get('code')}")
        if isinstance(error, dict)
        else str(error)
        for error in answer.get("errors") or []
    ]
    if details:
        text = f"{text.rstrip('.')}: {'; '.join(details)}" if text else "; ".join(details)
    return text


def _joined(problems: Any) -> str:
    return " and ".join(map(str, problems)) if isinstance(problems, list) else str(problems)


# --- what the answers mean --------------------------------------------------------------------


def _require_names(provider: Provider, *, owner: str, repository: str) -> None:
    if not owner.strip() or not repository.strip() or "/" in repository:
        raise ProviderError(
            f"{_DISPLAY_NAMES[provider]}: owner {owner!r} and repository {repository!r}"
            " must both be given, the repository as a bare name"
        )


def _repository_path(provider: Provider, owner: str, repository: str) -> str:
    if provider == "github":
        return f"/repos/{quote(owner, safe='')}/{quote(repository, safe='')}"
    return f"/projects/{quote(f'{owner}/{repository}', safe='')}"


def _repository_from(provider: Provider, answer: Any, *, created: bool) -> ProviderRepository:
    ssh_key, https_key = (
        ("ssh_url", "clone_url")
        if provider == "github"
        else ("ssh_url_to_repo", "http_url_to_repo")
    )
    if not isinstance(answer, dict) or not all(
        isinstance(answer.get(key), str) for key in (ssh_key, https_key)
    ):
        raise ProviderError(
            f"{_DISPLAY_NAMES[provider]}: the repository answer has no {ssh_key} and {https_key}"
        )
    branch = answer.get("default_branch")
    return ProviderRepository(
        ssh_url=ssh_clone_url(answer[ssh_key]),
        https_url=answer[https_key],
        default_branch=branch if isinstance(branch, str) and branch else None,
        created=created,
    )


async def _require_token_user(api: _Api, provider: Provider, owner: str) -> None:
    """A personal repository can only be made for the token's own user: say so, rather
    than create it under another name."""
    user = await api.call("GET", "/user", doing="looking up the token's user")
    login = (
        user.get("login" if provider == "github" else "username")
        if isinstance(user, dict)
        else None
    )
    if not isinstance(login, str) or login.lower() != owner.lower():
        raise ProviderError(
            f"{_DISPLAY_NAMES[provider]}: the owner {owner!r} is not the token's user"
            f" ({login!r}); a personal repository is created for that user only"
        )


async def _gitlab_group_id(api: _Api, group: str) -> int:
    answer = await api.call(
        "GET",
        f"/groups/{quote(group, safe='')}",
        doing=f"looking up the group {group}",
        hints={404: f"no group named {group!r}, or the token cannot see it"},
    )
    group_id = answer.get("id") if isinstance(answer, dict) else None
    if not isinstance(group_id, int):
        raise ProviderError(f"GitLab: the group {group!r} has no numeric id in the answer")
    return group_id


def _key_material(line: str) -> tuple[str, str] | None:
    """``(type, base64)`` of an OpenSSH public key line: what a provider compares, as it
    drops the comment."""
    fields = line.split()
    if len(fields) < 2 or not fields[0].startswith(("ssh-", "ecdsa-", "sk-")):
        return None
    return fields[0], fields[1]


def _is_read_only(provider: Provider, key: Mapping[str, Any]) -> bool:
    if provider == "github":
        return bool(key.get("read_only", True))
    return not key.get("can_push", False)
