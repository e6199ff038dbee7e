"""Regenerate the kustomize engine's merge-key table from a real API server's OpenAPI.

``python -m fluxd.dev.patch_keys --live`` starts the local control plane and reads its
``/openapi/v2``; ``--openapi FILE`` reads a saved copy. The table is committed with the
engine (``fluxd/kustomize/patch_keys.json``), so builds never need a cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fluxd.dev.controlplane import LocalControlPlane
from fluxd.kube.client import connect, request
from fluxd.kustomize import PATCH_KEYS_PATH, build_patch_keys_table

__all__ = ["main"]


async def _fetch_live() -> dict[str, Any]:
    with LocalControlPlane() as plane:
        api = await connect(str(plane.kubeconfig))
        try:
            return await request(api, "GET", "/openapi/v2")
        finally:
            await api.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Write the table from ``--live`` or ``--openapi FILE`` to ``--output``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--openapi", type=Path, help="a saved /openapi/v2 JSON document")
    source.add_argument("--live", action="store_true", help="fetch from a LocalControlPlane")
    parser.add_argument("--output", type=Path, default=PATCH_KEYS_PATH)
    args = parser.parse_args(argv)
    openapi = asyncio.run(_fetch_live()) if args.live else json.loads(args.openapi.read_bytes())
    table = build_patch_keys_table(openapi)
    args.output.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n")
    print(f"wrote {args.output}: {len(table['kinds'])} kinds, {len(table['types'])} types")


if __name__ == "__main__":
    main()
