"""One cluster session for a read-only command: connect, run, close, report failures.

``fluxd events``, ``tree``, ``stats`` and ``export`` all read from the API server and fail
the same ways: no kubeconfig, no server, an API error, an object that is not there. Each
becomes one ``✗`` line on stderr and exit status 1, as ``fluxd get`` reports them, and the
Kubernetes client is imported here, when a command runs, so the rest of the command line
starts without it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fluxd.kube.client import ApiClient

__all__ = ["CommandError", "run_session"]


class CommandError(Exception):
    """An expected failure of a command, its text the line the user reads."""


def run_session(kubeconfig: str | None, work: Callable[[ApiClient], Awaitable[int]]) -> int:
    """Run ``work`` with a client for the cluster and return its exit status; an expected
    failure is printed as one line and exits 1, an interrupt ends quietly with 0."""
    import aiohttp

    from fluxd.kube.client import ApiError, KubeconfigError

    try:
        return asyncio.run(_with_client(kubeconfig, work))
    except (CommandError, KubeconfigError, ApiError) as error:
        print(f"✗ {error}", file=sys.stderr)
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        print(f"✗ cannot reach the Kubernetes API server: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        return 0
    return 1


async def _with_client(kubeconfig: str | None, work: Callable[[ApiClient], Awaitable[int]]) -> int:
    from fluxd.kube.client import connect

    api = await connect(kubeconfig)
    try:
        return await work(api)
    finally:
        await api.close()
