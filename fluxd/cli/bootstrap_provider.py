"""``fluxd bootstrap github|gitlab``: ``bootstrap git`` on a repository the provider hosts.

As ``flux bootstrap github|gitlab``: the repository is found or created through the
provider's REST API (:mod:`~fluxd.cli.gitprovider`; ``--owner``, ``--repository``,
``--personal``, ``--private``, ``--hostname`` for self-hosted servers), the CLI pushes the
manifests over HTTPS with the token (``$GITHUB_TOKEN`` / ``$GITLAB_TOKEN``), and the
cluster reads the repository over SSH with a deploy key registered on it (read-only unless
``--read-write-key``; the key already in the source Secret, ``--private-key-file``, or a
new ed25519 key), or with the token over HTTPS when ``--token-auth``. Everything after
that is :func:`~fluxd.cli.bootstrap_repo.bootstrap_repository`, the same as ``bootstrap
git``; re-running changes nothing.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fluxd.cli.bootstrap import (
    add_repository_flags,
    decoded_secret,
    read_flag_file,
    say,
    sync_with_flags,
)
from fluxd.cli.session import CommandError, run_session

if TYPE_CHECKING:
    from fluxd.cli.gitprovider import Provider, ProviderRepository
    from fluxd.kube.client import ApiClient

__all__ = ["add_bootstrap_provider_commands", "deploy_key_title"]


@dataclass(frozen=True)
class _Host:
    """What differs between the providers."""

    provider: Provider
    title: str
    token_variable: str
    owner_help: str


_HOSTS = (
    _Host("github", "GitHub", "GITHUB_TOKEN", "GitHub user or organization"),
    _Host("gitlab", "GitLab", "GITLAB_TOKEN", "GitLab user or group (subgroups as a/b)"),
)


def deploy_key_title(namespace: str, branch: str, secret: str, path: str) -> str:
    """The deploy key's title on the provider, as Flux names it."""
    return f"{namespace}-{branch}-{secret}-{path}"


def _bootstrap(args: argparse.Namespace) -> int:
    from fluxd.api import parse_duration
    from fluxd.cli.bootstrap_repo import repository_path

    host: _Host = args.host
    token = os.environ.get(host.token_variable, "")
    try:
        if not token:
            raise ValueError(
                f"could not find {host.title} token, set the {host.token_variable} "
                "environment variable"
            )
        path = repository_path(args.path)
        parse_duration(args.interval)
        timeout = parse_duration(args.timeout)
    except ValueError as error:
        say(f"✗ {error}")
        return 1

    async def work(api: ApiClient) -> int:
        from fluxd.cli.gitprovider import ProviderError, ensure_repository
        from fluxd.sources.git.transport import GitAuth

        ca = read_flag_file(args.ca_file, "--ca-file") if args.ca_file else None
        say(f"► connecting to {args.hostname or host.provider + '.com'}")
        try:
            repository = await ensure_repository(
                host.provider,
                owner=args.owner,
                repository=args.repository,
                token=token,
                personal=args.personal,
                private=args.private,
                hostname=args.hostname,
                ca_file=args.ca_file,
            )
        except ProviderError as error:
            raise CommandError(str(error)) from None
        found = "created" if repository.created else "cloned"
        say(f'✔ repository "{repository.https_url}" {found}')
        secret = args.secret_name or args.namespace
        if args.token_auth:
            sync_url = repository.https_url
            data: dict[str, bytes] = {"username": b"git", "password": token.encode()}
            if ca is not None:
                data["ca.crt"] = ca
        else:
            sync_url = repository.ssh_url
            data = await _deploy_key(api, args, host, repository, token, secret, path)
        await sync_with_flags(
            api,
            args,
            url=repository.https_url,
            sync_url=sync_url,
            auth=GitAuth(username="git", password=token, ca_file=ca),
            path=path,
            timeout=timeout,
            secret_data=data,
        )
        say("✔ bootstrap finished")
        return 0

    return run_session(args.kubeconfig, work)


async def _deploy_key(
    api: ApiClient,
    args: argparse.Namespace,
    host: _Host,
    repository: ProviderRepository,
    token: str,
    secret: str,
    path: str,
) -> dict[str, bytes]:
    """The source Secret's SSH data, its public key registered on the repository."""
    import anyio.to_thread

    from fluxd.cli.deploy_key import (
        DeployKeyError,
        generate_deploy_key,
        load_deploy_key,
        scan_host_key,
    )
    from fluxd.cli.gitprovider import ProviderError, ensure_deploy_key
    from fluxd.kube.client import get
    from fluxd.kube.resources import SECRETS

    existing = await get(api, SECRETS, args.namespace, secret, missing_ok=True)
    kept: Mapping[str, bytes] = decoded_secret((existing or {}).get("data") or {})
    try:
        if args.private_key_file:
            source = f"--private-key-file {args.private_key_file}"
            private = read_flag_file(args.private_key_file, "--private-key-file")
            key = load_deploy_key(private, args.password or None, source=source)
        elif "identity" in kept and "identity.pub" in kept:
            key = load_deploy_key(
                kept["identity"], None, source=f"Secret {args.namespace}/{secret}"
            )
        else:
            key = generate_deploy_key()
        parts = urlsplit(repository.ssh_url)
        say(f"► scanning the host key of {parts.hostname}:{parts.port or 22}")
        known_hosts = await anyio.to_thread.run_sync(
            scan_host_key, parts.hostname or "", parts.port, 30.0, abandon_on_cancel=True
        )
    except DeployKeyError as error:
        raise CommandError(str(error)) from None
    title = deploy_key_title(args.namespace, args.branch, secret, path)
    try:
        added = await ensure_deploy_key(
            host.provider,
            owner=args.owner,
            repository=args.repository,
            token=token,
            title=title,
            public_key=key.public,
            read_only=not args.read_write_key,
            hostname=args.hostname,
            ca_file=args.ca_file,
        )
    except ProviderError as error:
        raise CommandError(str(error)) from None
    state = "configured" if added else "found"
    say(f'✔ {state} deploy key "{title}" for "{repository.ssh_url}"')
    return {
        "identity": key.private,
        "identity.pub": key.public.encode(),
        "known_hosts": known_hosts,
    }


def add_bootstrap_provider_commands(
    targets: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``bootstrap github`` and ``bootstrap gitlab`` among ``bootstrap``'s targets."""
    for host in _HOSTS:
        summary = (
            f"find or create a {host.title} repository, commit fluxd's manifests to it, "
            "install fluxd, and sync the cluster with it"
        )
        command = targets.add_parser(
            host.provider,
            help=summary,
            description=f"{summary}. The token comes from ${host.token_variable}; fluxd is "
            "always bound to cluster-admin (Flux's default).",
        )
        command.add_argument("--owner", required=True, help=host.owner_help)
        command.add_argument("--repository", required=True, help="repository name")
        command.add_argument(
            "--personal", action="store_true", help="the owner is the token's own user"
        )
        command.add_argument(
            "--private",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="create the repository private (default) or public",
        )
        command.add_argument(
            "--hostname", help=f"a self-hosted {host.title} server (default {host.provider}.com)"
        )
        command.add_argument("--ca-file", help="CA certificate (PEM) of the server")
        add_repository_flags(command)
        command.add_argument(
            "--token-auth",
            action="store_true",
            help="the cluster reads the repository over HTTPS with the token, not a deploy key",
        )
        command.add_argument(
            "--read-write-key", action="store_true", help="give the deploy key write access"
        )
        command.add_argument("-p", "--password", default="", help="the private key's passphrase")
        command.set_defaults(handler=_bootstrap, host=host)
