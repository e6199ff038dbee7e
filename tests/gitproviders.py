"""Stand-ins for GitHub's and GitLab's REST APIs on loopback, backed by the suite's git servers.

Register as a pytest plugin (``pytest_plugins = ["tests.gitproviders"]``). The
``github_provider`` and ``gitlab_provider`` fixtures each start a fresh HTTPS server on
127.0.0.1 (its own test CA, in ``ca_file``) per test, laid out like GitHub Enterprise or a
self-hosted GitLab: the API under ``/api/v3`` or ``/api/v4``, and the repositories cloned
over smart HTTPS from the same host at ``/<owner>/<name>.git`` with any user name and the
token as password, as both providers accept. Each repository is a real bare repository
under the session's ``git_root``, so the session's ``git_sshd`` serves it too.

What the API answers, with the providers' documented JSON shapes and status codes:

- a request without the token (GitHub ``Authorization: Bearer``, GitLab ``PRIVATE-TOKEN``)
  is a 401 with the provider's message;
- GitHub: ``GET /user``, ``GET /repos/{o}/{r}``, ``POST /user/repos`` and
  ``POST /orgs/{org}/repos`` (the one ``organization`` exists; a name outside
  ``[A-Za-z0-9._-]`` or one taken is a 422), ``GET|POST /repos/{o}/{r}/keys`` and
  ``DELETE /repos/{o}/{r}/keys/{id}`` (a key already on the repository is a 422);
- GitLab: ``GET /user``, ``GET /groups/{path}``, ``GET /projects/{path or id}``,
  ``POST /projects`` (in the user's namespace, or the group's by ``namespace_id``; a bad
  name is a 400 naming the field), ``GET|POST /projects/{p}/deploy_keys`` and
  ``DELETE /projects/{p}/deploy_keys/{id}``;
- lists are paged by ``per_page``/``page`` (at most ``max_per_page`` items, which tests may
  lower) with a ``Link: rel="next"`` header (and GitLab's ``X-Next-Page``).

An added deploy key is written to ``git_sshd``'s authorized_keys at once, so a clone over
SSH with that key works; a read-only one may only fetch (its login is forced to
``git-upload-pack``). Removed keys, and at teardown all of this stand-in's, are taken out.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

import pytest

from tests.gitservers import (
    GitRemote,
    RepoRoot,
    SSHServer,
    _GitHTTPHandler,
    _serve_http,
    make_ca,
)

GITHUB_TOKEN = "ghp_standInToken0123456789"
GITLAB_TOKEN = "glpat-standInToken0123456789"
USER = "fluxd-user"
GITHUB_ORGANIZATION = "fluxd-org"
GITLAB_GROUP = "fluxd-group"
GITLAB_GROUP_ID = 4100
#: The branch a repository created here starts with, as both providers now default to.
DEFAULT_BRANCH = "main"

_VALID_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
#: A read-only deploy key's forced command: fetches run, anything else is refused.
_FETCH_ONLY = (
    'command="case \\"$SSH_ORIGINAL_COMMAND\\" in git-upload-pack*)'
    ' exec sh -c \\"$SSH_ORIGINAL_COMMAND\\";;'
    ' *) echo read-only deploy key >&2; exit 1;; esac"'
)

Answer = tuple[int, Any, list[tuple[str, str]]]


@dataclass
class HostedDeployKey:
    id: int
    title: str
    key: str  # "<type> <base64>", the comment dropped as both providers do
    read_only: bool


@dataclass
class HostedRepository:
    """A repository the stand-in serves: its API record and the real bare repository."""

    id: int
    owner: str
    name: str
    private: bool
    remote: GitRemote  # commit to it directly, or clone it through the URLs below
    https_url: str
    ssh_url: str
    keys: list[HostedDeployKey] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class GitProviderStandIn:
    """One provider's stand-in, what it holds and what it saw."""

    provider: Literal["github", "gitlab"]
    hostname: str  # "127.0.0.1:<port>", for ``hostname=``
    ca_file: str  # the CA that signed the server's certificate, for ``ca_file=``
    ca_pem: bytes
    token: str
    user: str  # the token's user
    organization: str  # the one GitHub organization or GitLab group that exists
    ssh: SSHServer
    root: RepoRoot
    repositories: dict[str, HostedRepository] = field(default_factory=dict)  # by "owner/name"
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of API calls
    max_per_page: int = 100
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=lambda: count(1))

    @property
    def api_prefix(self) -> str:
        return "/api/v3" if self.provider == "github" else "/api/v4"

    def add_repository(self, owner: str, name: str, *, private: bool = True) -> HostedRepository:
        """A repository that exists before the test calls the API."""
        remote = self.root.new()
        remote.git("symbolic-ref", "HEAD", f"refs/heads/{DEFAULT_BRANCH}", cwd=remote.bare)
        repository = HostedRepository(
            id=next(self._ids),
            owner=owner,
            name=name,
            private=private,
            remote=remote,
            https_url=f"https://{self.hostname}/{owner}/{name}.git",
            ssh_url=self.ssh.url(remote, self.root),
        )
        self.repositories[repository.full_name] = repository
        return repository

    def add_key(
        self, repository: HostedRepository, title: str, key: str, read_only: bool
    ) -> HostedDeployKey:
        material = " ".join(key.split()[:2])
        added = HostedDeployKey(next(self._ids), title, material, read_only)
        repository.keys.append(added)
        with self.ssh.authorized_keys.open("a") as lines:
            lines.write(self._authorized_line(added) + "\n")
        return added

    def remove_key(self, repository: HostedRepository, key: HostedDeployKey) -> None:
        repository.keys.remove(key)
        self._unauthorize({self._authorized_line(key)})

    def remove_all_keys(self) -> None:
        self._unauthorize(
            {self._authorized_line(k) for r in self.repositories.values() for k in r.keys}
        )

    def _authorized_line(self, key: HostedDeployKey) -> str:
        options = f"{_FETCH_ONLY} " if key.read_only else ""
        return f"{options}{key.key} deploy-key-{self.hostname}-{key.id}"

    def _unauthorize(self, lines: set[str]) -> None:
        path = self.ssh.authorized_keys
        kept = [line for line in path.read_text().splitlines() if line not in lines]
        path.write_text("".join(f"{line}\n" for line in kept))


# --- the HTTP side -------------------------------------------------------------------------


def _handler_for(stand_in: GitProviderStandIn) -> type[_GitHTTPHandler]:
    class ProviderHandler(_GitHTTPHandler):
        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def do_DELETE(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            if self.path.startswith(stand_in.api_prefix + "/"):
                self._api()
            else:
                self._git()

        def _git(self) -> None:
            path, separator, query = self.path.partition("?")
            for repository in stand_in.repositories.values():
                prefix = f"/{repository.full_name}.git"
                if path.startswith(prefix + "/"):
                    rest = path[len(prefix) :]
                    self.path = f"/basic/{repository.remote.name}{rest}{separator}{query}"
                    self._serve()
                    return
            self._reply(404, [], b"repository not found\n")

        def _authorized(self, scheme: str) -> bool:
            kind, _, value = self.headers.get("Authorization", "").partition(" ")
            if kind != "Basic":
                return False
            try:
                credentials = base64.b64decode(value).decode()
            except ValueError:
                return False
            return credentials.partition(":")[2] == stand_in.token

        def _api(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            stand_in.requests.append((self.command, self.path))
            path, _, query = self.path[len(stand_in.api_prefix) :].partition("?")
            if not self._token_ok():
                message = "Bad credentials" if stand_in.provider == "github" else "401 Unauthorized"
                self._json(401, {"message": message}, [])
                return
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                self._json(400, {"message": "Problems parsing JSON"}, [])
                return
            parts = [unquote(part) for part in path.strip("/").split("/")]
            answer = _github_answer if stand_in.provider == "github" else _gitlab_answer
            with stand_in.lock:
                status, payload, headers = answer(stand_in, self.command, parts, query, body)
            self._json(status, payload, headers)

        def _token_ok(self) -> bool:
            if stand_in.provider == "gitlab":
                return self.headers.get("PRIVATE-TOKEN") == stand_in.token
            return self.headers.get("Authorization") in (
                f"Bearer {stand_in.token}",
                f"token {stand_in.token}",
            )

        def _json(self, status: int, payload: Any, headers: list[tuple[str, str]]) -> None:
            if payload is None:
                self._reply(status, headers, b"")
                return
            content = [("Content-Type", "application/json; charset=utf-8"), *headers]
            self._reply(status, content, json.dumps(payload).encode())

    return ProviderHandler


def _page(stand_in: GitProviderStandIn, items: list[Any], path: str, query: str) -> Answer:
    """One page of ``items`` as ``per_page``/``page`` ask, linking to the next one."""
    asked = parse_qs(query)
    per_page = min(int(asked.get("per_page", ["30"])[0]), stand_in.max_per_page)
    page = int(asked.get("page", ["1"])[0])
    chunk = items[(page - 1) * per_page : page * per_page]
    headers: list[tuple[str, str]] = []
    if page * per_page < len(items):
        next_url = (
            f"https://{stand_in.hostname}{stand_in.api_prefix}{path}"
            f"?per_page={per_page}&page={page + 1}"
        )
        headers.append(("Link", f'<{next_url}>; rel="next"'))
        if stand_in.provider == "gitlab":
            headers.append(("X-Next-Page", str(page + 1)))
    return 200, chunk, headers


# --- GitHub --------------------------------------------------------------------------------

_GITHUB_NOT_FOUND: Answer = (
    404,
    {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"},
    [],
)


def _github_repository(repository: HostedRepository, stand_in: GitProviderStandIn) -> Any:
    return {
        "id": repository.id,
        "name": repository.name,
        "full_name": repository.full_name,
        "owner": {
            "login": repository.owner,
            "type": "User" if repository.owner == stand_in.user else "Organization",
        },
        "private": repository.private,
        "visibility": "private" if repository.private else "public",
        "default_branch": DEFAULT_BRANCH,
        "clone_url": repository.https_url,
        "ssh_url": repository.ssh_url,
        "html_url": f"https://{stand_in.hostname}/{repository.full_name}",
    }


def _github_invalid(field_name: str, message: str, resource: str) -> Answer:
    failed = "Repository creation failed." if resource == "Repository" else "Validation Failed"
    error = {"resource": resource, "code": "custom", "field": field_name, "message": message}
    return 422, {"message": failed, "errors": [error]}, []


def _github_answer(
    stand_in: GitProviderStandIn, method: str, parts: list[str], query: str, body: Any
) -> Answer:
    if method == "GET" and parts == ["user"]:
        return 200, {"login": stand_in.user, "id": 1, "type": "User"}, []
    if method == "POST" and (
        parts == ["user", "repos"] or parts == ["orgs", stand_in.organization, "repos"]
    ):
        owner = stand_in.user if parts[0] == "user" else stand_in.organization
        name = str(body.get("name") or "")
        if not _VALID_NAME.match(name):
            return _github_invalid("name", "name is invalid", "Repository")
        if f"{owner}/{name}" in stand_in.repositories:
            return _github_invalid("name", "name already exists on this account", "Repository")
        created = stand_in.add_repository(owner, name, private=bool(body.get("private")))
        return 201, _github_repository(created, stand_in), []
    if len(parts) < 3 or parts[0] != "repos":
        return _GITHUB_NOT_FOUND
    repository = stand_in.repositories.get(f"{parts[1]}/{parts[2]}")
    if repository is None:
        return _GITHUB_NOT_FOUND
    rest = parts[3:]
    if method == "GET" and not rest:
        return 200, _github_repository(repository, stand_in), []
    if rest[:1] != ["keys"]:
        return _GITHUB_NOT_FOUND
    if method == "GET" and len(rest) == 1:
        keys = [_github_key(key) for key in repository.keys]
        return _page(stand_in, keys, f"/repos/{repository.full_name}/keys", query)
    if method == "POST" and len(rest) == 1:
        title, key = str(body.get("title") or ""), str(body.get("key") or "")
        if len(key.split()) < 2:
            return _github_invalid("key", "key is invalid", "PublicKey")
        if any(k.key == " ".join(key.split()[:2]) for k in repository.keys):
            return _github_invalid("key", "key is already in use", "PublicKey")
        added = stand_in.add_key(repository, title, key, bool(body.get("read_only", True)))
        return 201, _github_key(added), []
    if method == "DELETE" and len(rest) == 2:
        for hosted in repository.keys:
            if str(hosted.id) == rest[1]:
                stand_in.remove_key(repository, hosted)
                return 204, None, []
    return _GITHUB_NOT_FOUND


def _github_key(key: HostedDeployKey) -> Any:
    return {"id": key.id, "title": key.title, "key": key.key, "read_only": key.read_only}


# --- GitLab --------------------------------------------------------------------------------


def _gitlab_project(repository: HostedRepository, stand_in: GitProviderStandIn) -> Any:
    in_group = repository.owner == stand_in.organization
    return {
        "id": repository.id,
        "name": repository.name,
        "path": repository.name,
        "path_with_namespace": repository.full_name,
        "namespace": {
            "id": GITLAB_GROUP_ID if in_group else 1,
            "kind": "group" if in_group else "user",
            "full_path": repository.owner,
        },
        "visibility": "private" if repository.private else "public",
        "default_branch": _branch_if_any(repository.remote),
        "ssh_url_to_repo": repository.ssh_url,
        "http_url_to_repo": repository.https_url,
        "web_url": f"https://{stand_in.hostname}/{repository.full_name}",
    }


def _branch_if_any(remote: GitRemote) -> str | None:
    """GitLab names no default branch for a project without commits."""
    try:
        remote.git("rev-parse", "--verify", "-q", "HEAD", cwd=remote.bare)
    except subprocess.CalledProcessError:
        return None
    return DEFAULT_BRANCH


def _gitlab_answer(
    stand_in: GitProviderStandIn, method: str, parts: list[str], query: str, body: Any
) -> Answer:
    if method == "GET" and parts == ["user"]:
        return 200, {"id": 1, "username": stand_in.user}, []
    if method == "GET" and parts[:1] == ["groups"] and len(parts) == 2:
        if parts[1] != stand_in.organization:
            return 404, {"message": "404 Group Not Found"}, []
        group = stand_in.organization
        return 200, {"id": GITLAB_GROUP_ID, "name": group, "path": group, "full_path": group}, []
    if method == "POST" and parts == ["projects"]:
        return _gitlab_create(stand_in, body)
    if parts[:1] != ["projects"] or len(parts) < 2:
        return 404, {"message": "404 Not Found"}, []
    repository = next(
        (r for r in stand_in.repositories.values() if parts[1] in (r.full_name, str(r.id))),
        None,
    )
    if repository is None:
        return 404, {"message": "404 Project Not Found"}, []
    rest = parts[2:]
    if method == "GET" and not rest:
        return 200, _gitlab_project(repository, stand_in), []
    if rest[:1] != ["deploy_keys"]:
        return 404, {"message": "404 Not Found"}, []
    if method == "GET" and len(rest) == 1:
        keys = [_gitlab_key(key) for key in repository.keys]
        return _page(stand_in, keys, f"/projects/{repository.id}/deploy_keys", query)
    if method == "POST" and len(rest) == 1:
        title, key = str(body.get("title") or ""), str(body.get("key") or "")
        if not title:
            return 400, {"message": {"title": ["can't be blank"]}}, []
        if len(key.split()) < 2:
            return 400, {"message": {"key": ["is invalid"]}}, []
        if any(k.key == " ".join(key.split()[:2]) for k in repository.keys):
            taken = {"deploy_key.fingerprint_sha256": ["has already been taken"]}
            return 400, {"message": taken}, []
        added = stand_in.add_key(repository, title, key, not body.get("can_push", False))
        return 201, _gitlab_key(added), []
    if method == "DELETE" and len(rest) == 2:
        for hosted in repository.keys:
            if str(hosted.id) == rest[1]:
                stand_in.remove_key(repository, hosted)
                return 204, None, []
        return 404, {"message": "404 Deploy key Not Found"}, []
    return 404, {"message": "404 Not Found"}, []


def _gitlab_create(stand_in: GitProviderStandIn, body: Any) -> Answer:
    name = str(body.get("path") or body.get("name") or "")
    if not _VALID_NAME.match(name):
        problem = "can contain only letters, digits, '_', '-' and '.'"
        return 400, {"message": {"path": [problem], "name": [problem]}}, []
    if body.get("visibility") not in ("private", "internal", "public"):
        return 400, {"error": "visibility does not have a valid value"}, []
    namespace = body.get("namespace_id")
    if namespace is None:
        owner = stand_in.user
    elif namespace == GITLAB_GROUP_ID:
        owner = stand_in.organization
    else:
        return 404, {"message": "404 Namespace Not Found"}, []
    if f"{owner}/{name}" in stand_in.repositories:
        taken = ["has already been taken"]
        return 400, {"message": {"name": taken, "path": taken}}, []
    created = stand_in.add_repository(owner, name, private=body["visibility"] != "public")
    return 201, _gitlab_project(created, stand_in), []


def _gitlab_key(key: HostedDeployKey) -> Any:
    return {
        "id": key.id,
        "title": key.title,
        "key": key.key,
        "can_push": not key.read_only,
        "created_at": "2026-01-01T00:00:00.000Z",
    }


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def github_provider(
    git_root: RepoRoot, git_sshd: SSHServer, tmp_path: Path
) -> Iterator[GitProviderStandIn]:
    """A GitHub Enterprise stand-in: user ``USER``, organization ``GITHUB_ORGANIZATION``."""
    yield from _stand_in("github", GITHUB_TOKEN, GITHUB_ORGANIZATION, git_root, git_sshd, tmp_path)


@pytest.fixture
def gitlab_provider(
    git_root: RepoRoot, git_sshd: SSHServer, tmp_path: Path
) -> Iterator[GitProviderStandIn]:
    """A self-hosted GitLab stand-in: user ``USER``, group ``GITLAB_GROUP``."""
    yield from _stand_in("gitlab", GITLAB_TOKEN, GITLAB_GROUP, git_root, git_sshd, tmp_path)


def _stand_in(
    provider: Literal["github", "gitlab"],
    token: str,
    organization: str,
    root: RepoRoot,
    ssh: SSHServer,
    tmp_path: Path,
) -> Iterator[GitProviderStandIn]:
    import ssl

    ca = make_ca()
    tls_dir = tmp_path / f"{provider}-tls"
    tls_dir.mkdir()
    (tls_dir / "ca.crt").write_bytes(ca.cert_pem)
    (tls_dir / "server.crt").write_bytes(ca.server_cert_pem)
    (tls_dir / "server.key").write_bytes(ca.server_key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_dir / "server.crt", tls_dir / "server.key")
    with _serve_http(root.path, context) as server:
        stand_in = GitProviderStandIn(
            provider=provider,
            hostname=f"127.0.0.1:{server.server_address[1]}",
            ca_file=str(tls_dir / "ca.crt"),
            ca_pem=ca.cert_pem,
            token=token,
            user=USER,
            organization=organization,
            ssh=ssh,
            root=root,
        )
        server.RequestHandlerClass = _handler_for(stand_in)
        try:
            yield stand_in
        finally:
            stand_in.remove_all_keys()
