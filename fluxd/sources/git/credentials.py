"""Git credentials from the data of a GitRepository's ``spec.secretRef`` Secret.

Flux documents which keys of that Secret mean what: ``username``/``password`` or
``bearerToken`` for HTTPS, ``ca.crt`` (formerly ``caFile``) for a private CA,
``identity`` and ``known_hosts`` for SSH, with ``password`` as the identity's
passphrase. The reconciler and the CLI both read such Secrets; mapping the keys here,
once, means the two cannot authenticate the same repository differently.
"""

from __future__ import annotations

from collections.abc import Mapping

from fluxd.sources.git.transport import GitAuth

__all__ = ["auth_from_secret"]


def auth_from_secret(data: Mapping[str, bytes]) -> GitAuth:
    """Flux's Secret keys for git: https (basic, bearer, CA) and ssh (key, host keys)."""

    def text(key: str) -> str | None:
        value = data.get(key)
        return value.decode() if value is not None else None

    return GitAuth(
        username=text("username"),
        password=text("password"),
        bearer_token=text("bearerToken"),
        ca_file=data.get("ca.crt") or data.get("caFile"),
        identity=data.get("identity"),
        passphrase=text("password") if "identity" in data else None,
        known_hosts=data.get("known_hosts"),
    )
