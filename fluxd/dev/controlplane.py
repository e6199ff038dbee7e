"""A real, throw-away Kubernetes control plane on loopback, for tests and local runs.

fluxd is tested against the real thing, not a fake of the Kubernetes API: server-side
apply, field managers, admission, watch semantics and the controllers that turn a
Deployment into Ready pods are exactly where a hand-written fake would be wrong. This
module starts that real thing without Docker, kind or a kubelet:

- ``controlplane/`` (a small Go module next to this package) builds one multicall
  binary, ``fluxd-controlplane``, out of the upstream Kubernetes sources: embedded etcd,
  kube-apiserver, kube-controller-manager, kube-scheduler, and a node simulator that
  plays the kubelet's part (a Ready node; bound pods become Running and Ready; deleted
  pods go away). Its ``up`` subcommand starts everything on 127.0.0.1 with free ports
  and a fresh PKI, and prints ``ready <kubeconfig>`` when pods can be run.
- :func:`ensure_binary` builds that binary once per source version into a cache outside
  the repository (the first build downloads and compiles Kubernetes: minutes; every
  later start finds it by the hash of the Go sources).
- :class:`LocalControlPlane` runs ``up`` in its own process group and tears the whole
  group down on exit, so no etcd or apiserver outlives the test session.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
from ruamel.yaml import YAML

from fluxd.kube import client
from fluxd.kube.resources import Resource

__all__ = [
    "CRD_DIR",
    "ControlPlaneError",
    "LocalControlPlane",
    "cache_root",
    "ensure_binary",
    "install_crds",
]

_REPOSITORY = Path(__file__).resolve().parents[2]
_SOURCE_DIR = _REPOSITORY / "controlplane"
#: The generated CRDs (``python -m fluxd.api.generate``) that a fresh cluster needs.
CRD_DIR = _REPOSITORY / "manifests" / "crds"
_CRD_ESTABLISH_TIMEOUT = 60.0
_CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
_BINARY_NAME = "fluxd-controlplane"
_COMPONENT_LOGS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


class ControlPlaneError(RuntimeError):
    """The local control plane could not be built or did not come up."""


def cache_root() -> Path:
    """Where built artifacts are cached: ``$FLUXD_CACHE_DIR``, else the XDG cache."""
    explicit = os.environ.get("FLUXD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fluxd"


def _source_digest(source: Path, ldflags: str) -> str:
    """Hash everything that decides the binary's content: go.mod, go.sum, Go files, ldflags."""
    digest = hashlib.sha256(ldflags.encode() + b"\0")
    files = [source / "go.mod", source / "go.sum", *sorted(source.rglob("*.go"))]
    for path in files:
        digest.update(path.relative_to(source).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _go() -> str:
    found = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(found).is_file():
        raise ControlPlaneError(
            "cannot build the local control plane: no Go toolchain on PATH or at "
            "/usr/local/go/bin/go; install Go >= 1.25, or point FLUXD_TEST_KUBECONFIG "
            "at an existing cluster"
        )
    return found


def _version_ldflags(source: Path) -> str:
    """``-X`` flags that stamp the Kubernetes version, as Kubernetes' own build does.

    Without them ``/version`` reports ``v0.0.0-master``, which breaks every client that
    compares server versions (Helm's ``kubeVersion`` constraints, ``.Capabilities``).
    """
    match = re.search(
        r"^\s*k8s\.io/kubernetes (v(\d+)\.(\d+)\.\d+)\s*$", (source / "go.mod").read_text(), re.M
    )
    if match is None:
        raise ControlPlaneError(f"no k8s.io/kubernetes requirement in {source / 'go.mod'}")
    version, major, minor = match.groups()
    values = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    return " ".join(
        f"-X {package}.{name}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for name, value in values.items()
    )


def ensure_binary() -> Path:
    """Return the path of the cached ``fluxd-controlplane`` binary, building it if needed."""
    if not (_SOURCE_DIR / "go.mod").is_file():
        raise ControlPlaneError(f"control-plane sources not found at {_SOURCE_DIR}")
    ldflags = f"-s -w {_version_ldflags(_SOURCE_DIR)}"
    target_dir = cache_root() / "controlplane" / _source_digest(_SOURCE_DIR, ldflags)
    binary = target_dir / _BINARY_NAME
    if binary.is_file():
        return binary
    target_dir.mkdir(parents=True, exist_ok=True)
    # Parallel test sessions would each spend minutes on the same build: the first
    # one builds, the others wait on the lock and then find the binary.
    with (target_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.is_file():
            _build(binary, ldflags)
    return binary


def _build(binary: Path, ldflags: str) -> None:
    print(
        f"fluxd: building {binary} "
        "(the first build downloads and compiles Kubernetes; this takes minutes)",
        file=sys.stderr,
        flush=True,
    )
    # Build next to the target and rename: a build killed half-way leaves only a
    # temp directory behind, never a truncated binary at the cached path.
    with tempfile.TemporaryDirectory(dir=binary.parent, prefix=".build-") as tmp:
        partial = Path(tmp) / binary.name
        command = [_go(), "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(partial), "."]
        result = subprocess.run(
            command, cwd=_SOURCE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
        )
        if result.returncode != 0:
            output = result.stdout.decode(errors="replace")[-4000:]
            raise ControlPlaneError(f"go build in {_SOURCE_DIR} failed:\n{output}")
        partial.replace(binary)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class LocalControlPlane:
    """etcd + kube-apiserver + controller-manager + scheduler + a simulated node.

    Use as a context manager; inside it, :attr:`kubeconfig` points at an admin
    kubeconfig (client certificate in ``system:masters``). Without ``data_dir`` all
    state lives in a temporary directory removed on exit; with one, the directory and
    its etcd data are kept.
    """

    def __init__(self, data_dir: Path | None = None, *, start_timeout: float = 120.0) -> None:
        self._requested_dir = data_dir
        self._start_timeout = start_timeout
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._kubeconfig: Path | None = None

    @property
    def kubeconfig(self) -> Path:
        if self._kubeconfig is None:
            raise ControlPlaneError("the control plane is not running; use it as a context manager")
        return self._kubeconfig

    def __enter__(self) -> LocalControlPlane:
        binary = ensure_binary()
        if self._requested_dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="fluxd-controlplane-"))
        else:
            self._dir = self._requested_dir.resolve()
            self._dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start(binary, self._dir)
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _start(self, binary: Path, data_dir: Path) -> None:
        with (data_dir / "up.log").open("wb") as log:
            # A new session makes "up" and the components it re-executes one process
            # group, so _stop can signal all of them at once. stdin is a pipe this
            # process never writes to: if it dies without _stop (SIGKILL), the pipe
            # closes and "up" shuts the cluster down by itself.
            self._proc = subprocess.Popen(
                [str(binary), "up", "--exit-on-stdin-close", "--data-dir", str(data_dir)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + self._start_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._failure(f"not ready within {self._start_timeout:.0f}s")
            readable, _, _ = select.select([self._proc.stdout], [], [], remaining)
            if not readable:
                continue
            line = self._proc.stdout.readline().decode(errors="replace").strip()
            if not line:  # EOF: "up" exited
                self._proc.wait()
                raise self._failure(f"exited with status {self._proc.returncode}")
            if line.startswith("ready "):
                self._kubeconfig = Path(line.removeprefix("ready "))
                return

    def _failure(self, what: str) -> ControlPlaneError:
        assert self._dir is not None
        parts = [f"local control plane in {self._dir} {what}"]
        for name in ("up", *_COMPONENT_LOGS):
            path = self._dir / ("up.log" if name == "up" else f"logs/{name}.log")
            tail = _tail(path)
            if tail:
                parts.append(f"--- last lines of {name} log ---\n{tail}")
        return ControlPlaneError("\n".join(parts))

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _terminate_group(proc)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        self._kubeconfig = None
        if self._requested_dir is None and self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None


def _terminate_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    # "up" may be gone while a component it started still runs: kill the group regardless.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def install_crds(kubeconfig: Path) -> None:
    """Create or replace every CRD in :data:`CRD_DIR`; return once each is Established."""
    yaml = YAML(typ="safe")
    crds = [
        doc
        for path in sorted(CRD_DIR.glob("*.yaml"))
        for doc in yaml.load_all(path)
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
    ]
    anyio.run(_install_crds, kubeconfig, crds)


async def _install_crds(kubeconfig: Path, crds: list[dict[str, Any]]) -> None:
    api = await client.connect(str(kubeconfig))
    try:
        for crd in crds:
            try:
                await client.create(api, _CRDS, crd)
            except client.ApiError as error:
                if not error.already_exists:
                    raise
                live = await client.get(api, _CRDS, None, crd["metadata"]["name"])
                version = live["metadata"]["resourceVersion"]
                metadata = {**crd["metadata"], "resourceVersion": version}
                await client.replace(api, _CRDS, {**crd, "metadata": metadata})
        with anyio.fail_after(_CRD_ESTABLISH_TIMEOUT):
            for crd in crds:
                name = crd["metadata"]["name"]
                # A one-off wait at start-up: polling is simpler than a watch here.
                while not _established(await client.get(api, _CRDS, None, name)):  # noqa: ASYNC110
                    await anyio.sleep(0.1)
    finally:
        await api.close()


def _established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
