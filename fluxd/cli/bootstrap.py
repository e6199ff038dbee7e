"""``fluxd bootstrap git``: put fluxd into a cluster that then keeps itself in sync with git.

As ``flux bootstrap git``: the install and sync manifests are committed to ``--path`` of
``--branch`` (:mod:`~fluxd.cli.bootstrap_repo` does that and everything after), fluxd is
installed, and the GitRepository and Kustomization it applies from then on are created
with a Secret holding the credentials the cluster reads the repository with.

The transport follows the URL. ``ssh://`` uses ``--private-key-file``; without one, the
deploy key already in the Secret, or else a new ed25519 key whose public half is printed
for the user to give write access to the repository. A new key is saved in the Secret
before the repository is touched, so the key the user registers is the one a second run
uses (bootstrap asks no question and waits for nothing; it fails at the clone until the
key is accepted). The host key is scanned from the server, as Flux scans it. ``http(s)://``
uses ``--username``/``--password`` (``$GIT_PASSWORD``), or the password as a bearer token
with ``--with-bearer-token``, and ``--ca-file``; plain ``http://`` needs
``--allow-insecure-http``, as Flux requires.

The Kustomization applies fluxd's own CRDs and ClusterRoles from git, which fluxd's
least-privilege ClusterRole may not do, so bootstrap always binds fluxd to
``cluster-admin`` (Flux's default; there is no flag to turn it off).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from fluxd.cli.session import CommandError, run_session

if TYPE_CHECKING:
    from fluxd.kube.client import ApiClient
    from fluxd.sources.git.transport import GitAuth

__all__ = [
    "add_bootstrap_command",
    "add_repository_flags",
    "decoded_secret",
    "read_flag_file",
    "say",
    "sync_url",
    "sync_with_flags",
]

PASSWORD_VARIABLE = "GIT_PASSWORD"


def say(line: str) -> None:
    """One progress line, on stderr as Flux prints them."""
    print(line, file=sys.stderr, flush=True)


def sync_url(url: str, username: str) -> str:
    """The URL the cluster fetches: an ``ssh://`` URL names its user (``username`` when
    it names none, as Flux writes it); ``http(s)://`` carries no credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("ssh", "http", "https"):
        raise ValueError(
            f"git URL scheme '{parts.scheme}' not supported, can be: ssh, http and https"
        )
    if not parts.hostname:
        from fluxd.sources.git.transport import redact_url

        raise ValueError(f"git URL '{redact_url(url)}' has no host")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{parts.port}" if parts.port else host
    if parts.scheme == "ssh":
        netloc = f"{parts.username or username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class _Credentials:
    """How the CLI reaches the repository, and what the Secret keeps (``None``: keep
    the Secret as it is)."""

    auth: GitAuth
    secret_data: Mapping[str, bytes] | None
    generated: bool = False


def _https_credentials(args: argparse.Namespace, password: str) -> _Credentials:
    from fluxd.sources.git.transport import GitAuth

    ca = read_flag_file(args.ca_file, "--ca-file") if args.ca_file else None
    data: dict[str, bytes] = {}
    if args.with_bearer_token:
        auth = GitAuth(bearer_token=password, ca_file=ca)
        data["bearerToken"] = password.encode()
    else:
        auth = GitAuth(username=args.username, password=password, ca_file=ca)
        data["username"] = args.username.encode()
        data["password"] = password.encode()
    if ca is not None:
        data["ca.crt"] = ca
    return _Credentials(auth, data)


async def _ssh_credentials(
    api: ApiClient, args: argparse.Namespace, url: str, password: str | None, scan_timeout: float
) -> _Credentials:
    import anyio.to_thread

    from fluxd.cli.deploy_key import (
        DeployKeyError,
        generate_deploy_key,
        load_deploy_key,
        scan_host_key,
    )
    from fluxd.kube.client import get
    from fluxd.kube.resources import SECRETS
    from fluxd.sources.git.transport import GitAuth

    secret_name = args.secret_name or args.namespace
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    try:
        if args.private_key_file:
            source = f"--private-key-file {args.private_key_file}"
            key = load_deploy_key(
                read_flag_file(args.private_key_file, "--private-key-file"), password, source=source
            )
            generated = False
        else:
            existing = await get(api, SECRETS, args.namespace, secret_name, missing_ok=True)
            data = decoded_secret((existing or {}).get("data") or {})
            if "identity" in data and "known_hosts" in data:
                say(f"✔ using the deploy key in Secret {args.namespace}/{secret_name}")
                passphrase = data.get("password")
                auth = GitAuth(
                    identity=data["identity"],
                    passphrase=passphrase.decode() if passphrase else None,
                    known_hosts=data["known_hosts"],
                )
                return _Credentials(auth, None)
            key = generate_deploy_key()
            generated = True
        say(f"► scanning the host key of {host}:{port or 22}")
        known_hosts = await anyio.to_thread.run_sync(
            scan_host_key, host, port, scan_timeout, abandon_on_cancel=True
        )
    except DeployKeyError as error:
        raise CommandError(str(error)) from None
    data = {
        "identity": key.private,
        "identity.pub": key.public.encode(),
        "known_hosts": known_hosts,
    }
    if password:
        data["password"] = password.encode()
    auth = GitAuth(identity=key.private, passphrase=password, known_hosts=known_hosts)
    if not generated:
        return _Credentials(auth, data)
    say(f"✚ deploy key: {key.public}")
    say("► please give the deploy key write access to the repository")
    await _save_deploy_key(api, args.namespace, secret_name, data)
    return _Credentials(auth, None, generated=True)


async def _save_deploy_key(
    api: ApiClient, namespace: str, name: str, data: Mapping[str, bytes]
) -> None:
    """Keep a new deploy key in the cluster at once (its namespace created for it), so
    that a second run uses the key the user has registered."""
    from fluxd.api.install import InstallOptions, namespace_object
    from fluxd.cli.bootstrap_repo import apply_secret
    from fluxd.cli.install import FIELD_MANAGER
    from fluxd.kube.client import patch
    from fluxd.kube.resources import NAMESPACES

    await patch(
        api,
        NAMESPACES,
        None,
        namespace,
        namespace_object(InstallOptions(namespace=namespace)),
        patch_type="apply",
        field_manager=FIELD_MANAGER,
        force=True,
    )
    await apply_secret(api, namespace, name, data)
    say(f"✔ saved the deploy key in Secret {namespace}/{name}")


def decoded_secret(data: Mapping[str, str]) -> dict[str, bytes]:
    """A Secret's ``data`` as bytes."""
    import base64

    return {key: base64.b64decode(value) for key, value in data.items()}


def read_flag_file(path: str, flag: str) -> bytes:
    """The file a flag names; :class:`CommandError` naming the flag when unreadable."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {flag} {path}: {error.strerror or error}") from None


def _password(args: argparse.Namespace) -> str | None:
    return args.password or os.environ.get(PASSWORD_VARIABLE) or None


def _validate(args: argparse.Namespace) -> tuple[str, str, float]:
    """``(sync URL, repository path, timeout seconds)``; ValueError for bad flags."""
    from fluxd.api import parse_duration
    from fluxd.cli.bootstrap_repo import repository_path

    if not args.url:
        raise ValueError("--url is required, e.g. --url=ssh://git@example.com/org/repository")
    url = sync_url(args.url, args.username)
    scheme = urlsplit(url).scheme
    if scheme == "http" and not args.allow_insecure_http:
        raise ValueError(
            "an http:// URL sends credentials in the clear: use https://, or pass"
            " --allow-insecure-http"
        )
    if scheme != "ssh" and args.private_key_file:
        raise ValueError(f"--private-key-file needs an ssh:// URL, not {scheme}://")
    if scheme != "ssh" and not _password(args):
        raise ValueError(f"an {scheme}:// URL needs --password (or ${PASSWORD_VARIABLE})")
    if scheme == "ssh" and args.with_bearer_token:
        raise ValueError("--with-bearer-token needs an http(s):// URL")
    parse_duration(args.interval)
    return url, repository_path(args.path), parse_duration(args.timeout)


async def sync_with_flags(
    api: ApiClient,
    args: argparse.Namespace,
    *,
    url: str,
    auth: GitAuth,
    path: str,
    timeout: float,  # noqa: ASYNC109 - the command's --timeout, spread over every step
    secret_data: Mapping[str, bytes] | None,
    sync_url: str | None = None,
) -> None:
    """:func:`~fluxd.cli.bootstrap_repo.bootstrap_repository` with what the flags every
    ``bootstrap`` target shares say (:func:`add_repository_flags`); fluxd is bound to
    cluster-admin, as the module text explains."""
    from fluxd.api.install import IMAGE, InstallOptions
    from fluxd.cli.bootstrap_repo import bootstrap_repository
    from fluxd.sources.git.push import Author

    options = InstallOptions(
        namespace=args.namespace, image=args.components_image or IMAGE, cluster_admin=True
    )
    await bootstrap_repository(
        api,
        url=url,
        sync_url=sync_url,
        auth=auth,
        branch=args.branch,
        path=path,
        options=options,
        interval=args.interval,
        author=Author(args.author_name, args.author_email),
        say=say,
        timeout=timeout,
        secret_data=secret_data,
        secret_name=args.secret_name or args.namespace,
        commit_message_appendix=args.commit_message_appendix,
    )


def _bootstrap_git(args: argparse.Namespace) -> int:
    from fluxd.sources.git.transport import redact_url

    try:
        url, path, timeout = _validate(args)
    except ValueError as error:
        say(f"✗ {error}")
        return 1
    password = _password(args)

    async def work(api: ApiClient) -> int:
        if urlsplit(url).scheme == "ssh":
            credentials = await _ssh_credentials(api, args, url, password, timeout)
        else:
            assert password is not None
            credentials = _https_credentials(args, password)
        try:
            await sync_with_flags(
                api,
                args,
                url=url,
                auth=credentials.auth,
                path=path,
                timeout=timeout,
                secret_data=credentials.secret_data,
            )
        except CommandError as error:
            if credentials.generated:
                raise CommandError(
                    f"{error}; give the deploy key printed above write access to"
                    f" {redact_url(url)} and run bootstrap again (it keeps the key)"
                ) from None
            raise
        say("✔ bootstrap finished")
        return 0

    return run_session(args.kubeconfig, work)


def add_repository_flags(command: argparse.ArgumentParser) -> None:
    """The flags every ``bootstrap`` target takes: what to sync, how to commit, where
    fluxd goes."""
    command.add_argument("--branch", default="main", help="Git branch (default main)")
    command.add_argument(
        "--path", default="", help="path in the repository to sync, e.g. ./clusters/my-cluster"
    )
    command.add_argument(
        "--interval", default="1m", help="GitRepository sync interval (default 1m)"
    )
    command.add_argument(
        "--private-key-file",
        help="SSH private key (default: the deploy key in the Secret, or a new ed25519 key)",
    )
    command.add_argument(
        "--secret-name", help="the source Secret's name (default: the namespace's name)"
    )
    command.add_argument("--author-name", default="Flux", help="commit author name (default Flux)")
    command.add_argument("--author-email", default="", help="commit author email")
    command.add_argument(
        "--commit-message-appendix", default="", help="text appended to the commit message"
    )
    command.add_argument(
        "--components-image", "--image", help="the fluxd image (default: this release's)"
    )
    command.add_argument(
        "-n", "--namespace", default="flux-system", help="fluxd's namespace (default flux-system)"
    )
    command.add_argument(
        "--timeout", default="5m", help="how long the whole bootstrap may take (default 5m)"
    )
    command.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )


def add_bootstrap_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add ``bootstrap git`` to the command line; returns the targets of ``bootstrap``,
    to which :mod:`~fluxd.cli.bootstrap_provider` adds ``github`` and ``gitlab``."""
    bootstrap = commands.add_parser(
        "bootstrap",
        help="deploy fluxd on a cluster synced from a Git repository",
        description="Deploy fluxd on a cluster synced from a Git repository, as 'flux "
        "bootstrap' does.",
    )
    targets = bootstrap.add_subparsers(dest="target", required=True)
    summary = (
        "commit fluxd's manifests to a branch of a Git repository, install fluxd, and "
        "sync the cluster with that repository"
    )
    git = targets.add_parser(
        "git",
        help=summary,
        description=f"{summary}. fluxd is always bound to cluster-admin (Flux's default): "
        "the sync Kustomization applies fluxd's own CRDs and RBAC from git.",
    )
    git.add_argument("--url", default="", help="repository URL: ssh://, https:// or http://")
    add_repository_flags(git)
    git.add_argument(
        "-u", "--username", default="git", help="basic auth or SSH user name (default git)"
    )
    git.add_argument(
        "-p",
        "--password",
        default="",
        help=f"basic auth password or token (or ${PASSWORD_VARIABLE}); with ssh, the private "
        "key's passphrase",
    )
    git.add_argument(
        "--with-bearer-token",
        action="store_true",
        help="send the password as a bearer token (http(s) only)",
    )
    git.add_argument(
        "--allow-insecure-http", action="store_true", help="allow credentials over http://"
    )
    git.add_argument("--ca-file", help="CA certificate (PEM) of an https:// server")
    git.add_argument(
        "-s",
        "--silent",
        action="store_true",
        help="accepted for Flux's scripts: fluxd bootstrap never asks for confirmation",
    )
    git.set_defaults(handler=_bootstrap_git)
    return targets
