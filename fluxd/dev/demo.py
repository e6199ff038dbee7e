"""``fluxd run`` with no cluster: a local control plane and GitOps objects to watch.

A newcomer without a cluster (or without network) still sees fluxd do its job: this
module starts the real kube-apiserver of :mod:`fluxd.dev.controlplane`, installs the CRDs,
serves a small git repository from memory over smart HTTP on loopback (dulwich's server,
so no git binary is needed), creates ``GitRepository flux-system/demo`` pointing at it and
a ``Kustomization`` that applies the Deployment in it (the example of the Flux docs), and
runs the daemon. When each turns Ready it prints its revision, then the ``fluxd get all``
table and the commands to try next; the daemon keeps running until Ctrl-C.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import anyio
from dulwich.objects import Blob, Commit, Tree
from dulwich.refs import Ref
from dulwich.repo import MemoryRepo
from dulwich.server import BackendRepo, DictBackend
from dulwich.web import make_wsgi_chain

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION, KindInfo
from fluxd.daemon.manager import serve
from fluxd.daemon.options import Options
from fluxd.dev.controlplane import LocalControlPlane, install_crds
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import NAMESPACES
from fluxd.runtime import conditions

__all__ = ["demo_repository", "run_local", "seed_deployment", "serve_repository"]

NAMESPACE = "flux-system"
NAME = "demo"
#: Printed under the status table once the demo is Ready.
TRY_NEXT = (
    f"fluxd get kustomizations -n {NAMESPACE} --watch",
    f"fluxd tree kustomization {NAME} -n {NAMESPACE}",
    f"fluxd reconcile kustomization {NAME} -n {NAMESPACE} --with-source",
    f"fluxd events -n {NAMESPACE}",
    "fluxd trace deployment my-app -n default",
    "kubectl get deploy my-app",
)


def seed_deployment(namespace: str = "default", replicas: int = 2) -> str:
    """The Deployment of the Flux docs' example (``../shared/seeds``), as a manifest."""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-app
  namespace: {namespace}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: my-app
  template:
    metadata:
      labels:
        app: my-app
    spec:
      containers:
      - name: my-app
        image: nginx:1.25.0
"""


def demo_repository() -> MemoryRepo:
    """A repository with one commit on ``main``: the Deployment example of the Flux docs."""
    repo = MemoryRepo()
    blob = Blob.from_string(seed_deployment().encode())
    app_tree = Tree()
    app_tree.add(b"my-app.yaml", 0o100644, blob.id)
    apps_tree = Tree()
    apps_tree.add(b"my-app", 0o040000, app_tree.id)
    root = Tree()
    root.add(b"apps", 0o040000, apps_tree.id)
    commit = Commit()
    commit.tree = root.id
    commit.author = commit.committer = b"fluxd demo <demo@fluxd.invalid>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"Add my-app\n"
    for obj in (blob, app_tree, apps_tree, root, commit):
        repo.object_store.add_object(obj)
    repo.refs[Ref(b"refs/heads/main")] = commit.id
    repo.refs.set_symbolic_ref(Ref(b"HEAD"), Ref(b"refs/heads/main"))
    return repo


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not worth a log line in the demo."""


@contextmanager
def serve_repository(repo: MemoryRepo) -> Iterator[str]:
    """Serve ``repo`` over git smart HTTP on 127.0.0.1; yields its clone URL."""
    # MemoryRepo serves fine; dulwich's annotations just do not declare the protocol.
    repos = {"/demo.git": cast("BackendRepo", repo)}
    app = make_wsgi_chain(DictBackend(repos))
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="demo git server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/demo.git"
    finally:
        server.shutdown()
        server.server_close()


def run_local(options: Options) -> int:
    """Start the local control plane, the demo repository and the daemon (until Ctrl-C)."""
    local = Options(
        **{
            **options.__dict__,
            "metrics_addr": _loopback(options.metrics_addr),
            "artifact_addr": _loopback(options.artifact_addr),
        }
    )
    print("no kubeconfig found: starting a local control plane (first run builds it)")
    with LocalControlPlane() as plane, serve_repository(demo_repository()) as url:
        install_crds(plane.kubeconfig)
        print(f"local control plane ready; kubeconfig: {plane.kubeconfig}")
        anyio.run(_demo, plane.kubeconfig, url, local)
    return 0


def _loopback(address: str) -> str:
    """Bind the demo to loopback, on a concrete port so artifact URLs can name it."""
    host, _, port = address.rpartition(":")
    if port == "0":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = str(probe.getsockname()[1])
    return f"{host or '127.0.0.1'}:{port}"


async def _demo(kubeconfig: Path, url: str, options: Options) -> None:
    api = await client.connect(str(kubeconfig))
    try:
        await _create_demo_objects(api, url)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_report_when_ready, api, kubeconfig)
            host, _, port = options.artifact_addr.rpartition(":")
            base = options.artifact_base_url or f"http://{host}:{port}"
            await serve(str(kubeconfig), Options(**{**options.__dict__, "artifact_base_url": base}))
            tg.cancel_scope.cancel()
    finally:
        await api.close()


async def _create_demo_objects(api: Any, url: str) -> None:
    try:
        await client.create(api, NAMESPACES, {"metadata": {"name": NAMESPACE}})
    except client.ApiError as error:
        if not error.already_exists:
            raise
    specs: list[tuple[KindInfo[Any], dict[str, Any]]] = [
        (GIT_REPOSITORY, {"interval": "1m", "url": url, "ref": {"branch": "main"}}),
        # The seed's "my-apps" Kustomization: apply the Deployment and wait for its rollout.
        (
            KUSTOMIZATION,
            {
                "interval": "10m",
                "sourceRef": {"kind": "GitRepository", "name": NAME},
                "path": "./apps/my-app",
                "prune": True,
                "wait": True,
            },
        ),
    ]
    for kind, spec in specs:
        await client.create(
            api,
            resource_of(kind),
            {
                "apiVersion": kind.api_version,
                "kind": kind.kind,
                "metadata": {"name": NAME, "namespace": NAMESPACE},
                "spec": spec,
            },
        )


async def _report_when_ready(api: Any, kubeconfig: Path) -> None:
    for kind in (GIT_REPOSITORY, KUSTOMIZATION):
        resource = resource_of(kind)
        while True:
            obj = await client.get(api, resource, NAMESPACE, NAME)
            status = obj.get("status") or {}
            if conditions.is_ready(status):
                ready = conditions.get(status, conditions.READY) or {}
                print(f"{kind.kind} {NAMESPACE}/{NAME} is Ready: {ready.get('message')}")
                break
            await anyio.sleep(0.5)
    print(await _status_table(kubeconfig), end="")
    print(f"try next:  export KUBECONFIG={kubeconfig}")
    for command in TRY_NEXT:
        print(f"           {command}")
    print("stop with Ctrl-C")


async def _status_table(kubeconfig: Path) -> str:
    """What ``fluxd get all -A`` prints now: the command line runs as a user runs it."""
    process = await anyio.run_process(
        [sys.executable, "-m", "fluxd", "get", "all", "-A", "--kubeconfig", str(kubeconfig)],
        check=False,
    )
    return process.stdout.decode() + process.stderr.decode()
