"""A kubeconfig's ``exec`` plugin runs again once the token it printed expires: fluxd
keeps a tenant's client for as long as its kubeconfig Secret is unchanged, far longer
than tokens such as ``aws eks get-token``'s live."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fluxd.kube import client


def exec_kubeconfig(counter: Path, expiry: str | None) -> dict[str, Any]:
    """A kubeconfig whose plugin prints ``token-<n>``, n counting its runs."""
    script = (
        "import json, pathlib, sys\n"
        f"path = pathlib.Path({str(counter)!r})\n"
        "runs = int(path.read_text()) + 1 if path.exists() else 1\n"
        "path.write_text(str(runs))\n"
        "status = {'token': f'token-{runs}'}\n"
        f"expiry = {expiry!r}\n"
        "if expiry: status['expirationTimestamp'] = expiry\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
        " 'kind': 'ExecCredential', 'status': status}))\n"
    )
    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": sys.executable,
        "args": ["-c", script],
        "interactiveMode": "Never",
    }
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"exec": plugin}}],
    }


async def bearer(api: Any) -> str:
    settings = await api.configuration.auth_settings()
    return str(settings["BearerToken"]["value"])


async def test_an_expired_exec_token_is_fetched_again_before_a_request(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    api = await client.connect_with(exec_kubeconfig(counter, "2000-01-01T00:00:00Z"))
    try:
        assert await bearer(api) == "Bearer token-2"
        assert await bearer(api) == "Bearer token-3"
    finally:
        await api.close()


async def test_a_valid_or_unbounded_exec_token_is_kept(tmp_path: Path) -> None:
    for expiry in ("2999-01-01T00:00:00Z", None):
        counter = tmp_path / f"runs-{expiry}"
        api = await client.connect_with(exec_kubeconfig(counter, expiry))
        try:
            assert await bearer(api) == "Bearer token-1"
            assert await bearer(api) == "Bearer token-1"
            assert json.loads(counter.read_text()) == 1
        finally:
            await api.close()
