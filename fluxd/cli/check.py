"""``fluxd check``: is the cluster fit for fluxd, and is fluxd installed and healthy?

As ``flux check`` does, ``--pre`` asks the API server for its version and compares it
with the oldest Kubernetes Flux supports; the full check then looks at what fluxd
itself needs: every CRD generated from :mod:`fluxd.api` installed, Established and
serving each API version fluxd serves, and the ``fluxd`` Deployment in ``--namespace``
rolled out with all its replicas ready. Each finding is one ``✔`` or ``✗`` line on
stderr, where Flux prints them; any ``✗`` makes the exit status 1. The judgements are
pure functions of the objects read, tested without a cluster.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fluxd.cli.session import run_session

if TYPE_CHECKING:
    from fluxd.api import KindInfo
    from fluxd.kube.client import ApiClient

__all__ = [
    "KUBERNETES_MINIMUM",
    "add_check_command",
    "crd_problem",
    "deployment_problem",
    "kubernetes_version",
]

#: The oldest Kubernetes release Flux supports, as ``flux check`` words the constraint.
KUBERNETES_MINIMUM = (1, 33, 0)
_CONSTRAINT = ">=1.33.0-0"
DEPLOYMENT_NAME = "fluxd"
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


def kubernetes_version(version_info: Mapping[str, Any]) -> tuple[int, int, int]:
    """The ``major.minor.patch`` of the server's ``/version`` answer; :class:`ValueError`
    when its ``gitVersion`` is not a release version."""
    git_version = str(version_info.get("gitVersion") or "")
    found = _VERSION.match(git_version)
    if found is None:
        raise ValueError(f"Kubernetes version can't be determined from {git_version!r}")
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


def crd_problem(kind: KindInfo[Any], crd: Mapping[str, Any] | None) -> str | None:
    """What is wrong with the CRD of ``kind`` as the API server has it, or ``None``."""
    if crd is None:
        return "not installed: apply manifests/crds (or the Helm chart's CRDs)"
    conditions = (crd.get("status") or {}).get("conditions") or []
    established = any(
        c.get("type") == "Established" and c.get("status") == "True" for c in conditions
    )
    if not established:
        return "not Established yet: the API server does not serve it"
    served = {
        str(version.get("name"))
        for version in (crd.get("spec") or {}).get("versions") or []
        if version.get("served")
    }
    missing = [version for version in kind.served_versions if version not in served]
    if missing:
        return f"does not serve {', '.join(missing)}: apply the CRDs of this fluxd release"
    return None


def deployment_problem(deployment: Mapping[str, Any]) -> str | None:
    """Why the Deployment is not rolled out and ready, or ``None`` when it is."""
    meta = deployment.get("metadata") or {}
    status = deployment.get("status") or {}
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return "its latest spec is not rolled out yet"
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    if ready < wanted or updated < wanted:
        return f"{ready}/{wanted} replicas ready, {updated}/{wanted} updated"
    return None


def add_check_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``check`` to the command line."""
    summary = "check the cluster's prerequisites and fluxd's installation"
    command = commands.add_parser("check", help=summary, description=summary)
    command.add_argument("--pre", action="store_true", help="only run the pre-installation checks")
    command.add_argument(
        "-n",
        "--namespace",
        default="flux-system",
        help="namespace of the fluxd Deployment (default flux-system)",
    )
    command.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    command.set_defaults(handler=_check)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _check(args: argparse.Namespace) -> int:
    async def work(api: ApiClient) -> int:
        _say("► checking prerequisites")
        healthy = await _kubernetes_check(api)
        if args.pre:
            if not healthy:
                return 1
            _say("✔ prerequisites checks passed")
            return 0
        _say("► checking controllers")
        healthy = await _deployment_check(api, args.namespace) and healthy
        _say("► checking crds")
        healthy = await _crds_check(api) and healthy
        if not healthy:
            _say("✗ check failed")
            return 1
        _say("✔ all checks passed")
        return 0

    return run_session(args.kubeconfig, work)


async def _kubernetes_check(api: ApiClient) -> bool:
    from fluxd.kube.client import request

    try:
        version = kubernetes_version(await request(api, "GET", "/version"))
    except ValueError as error:
        _say(f"✗ {error}")
        return False
    shown = ".".join(str(part) for part in version)
    if version < KUBERNETES_MINIMUM:
        _say(f"✗ Kubernetes version {shown} does not match {_CONSTRAINT}")
        return False
    _say(f"✔ Kubernetes {shown} {_CONSTRAINT}")
    return True


async def _deployment_check(api: ApiClient, namespace: str) -> bool:
    from fluxd.kube.client import get
    from fluxd.kube.resources import Resource

    deployments = Resource("apps", "v1", "deployments")
    deployment = await get(api, deployments, namespace, DEPLOYMENT_NAME, missing_ok=True)
    if deployment is None:
        _say(
            f"✗ {DEPLOYMENT_NAME}: no Deployment named '{DEPLOYMENT_NAME}' found in the "
            f"'{namespace}' namespace: install fluxd (manifests/install.yaml) or pass -n"
        )
        return False
    problem = deployment_problem(deployment)
    if problem is None:
        _say(f"✔ {DEPLOYMENT_NAME}: deployment ready")
    else:
        _say(f"✗ {DEPLOYMENT_NAME}: deployment not ready: {problem}")
    template = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in template.get("containers") or []:
        _say(f"► {container.get('image')}")
    return problem is None


async def _crds_check(api: ApiClient) -> bool:
    from fluxd.api import KINDS
    from fluxd.kube.client import get
    from fluxd.kube.resources import Resource

    crds = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
    healthy = True
    for kind in KINDS:
        crd = await get(api, crds, None, kind.crd_name, missing_ok=True)
        problem = crd_problem(kind, crd)
        if problem is None:
            _say(f"✔ {kind.crd_name}/{kind.storage_version}")
        else:
            _say(f"✗ {kind.crd_name}: {problem}")
            healthy = False
    return healthy
