"""The ``fluxd`` command line run as a user runs it, for the CLI tests: a separate process
(``python -m fluxd``) against the session's cluster, so its output is not mixed with the
in-process daemon's log."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["REPO", "run_fluxd"]

REPO = Path(__file__).resolve().parents[2]


async def run_fluxd(
    kubeconfig: Path,
    *args: str,
    answer: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[int, str, str]:
    """``python -m fluxd ARGS --kubeconfig KUBECONFIG``, ``answer`` typed on its stdin and
    ``env`` added to its environment: (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxd",
        *args,
        "--kubeconfig",
        str(kubeconfig),
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(None if answer is None else answer.encode())
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
