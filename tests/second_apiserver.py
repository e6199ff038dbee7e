"""A second kube-apiserver on the session's etcd, which a test may kill and start again.

The session control plane (``fluxd-controlplane up``) exits as soon as one of its
components dies, so its own apiserver cannot be restarted under a test. A cluster with
two apiservers on one etcd is ordinary high availability, though, and the second one can
come and go: :class:`SecondApiServer` reads the arguments of the running apiserver from
``/proc/<pid>/cmdline``, starts another process of the same binary with those arguments
(same etcd, same PKI, same service-account keys) but its own ``--secure-port`` and
``--cert-dir``, waits for ``/readyz`` and writes :attr:`SecondApiServer.kubeconfig`, the
session's kubeconfig pointed at it. :meth:`SecondApiServer.stop` kills it (``SIGKILL``,
or ``SIGTERM`` for a graceful shutdown) and :meth:`SecondApiServer.start` brings it back
on the same port, so clients find it again at the URL they already have.

The process is started in a session of its own and with a parent-death signal, so that
it never outlives the test process, even one killed without teardown.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import ipaddress
import signal
import ssl
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import yaml
from cryptography import x509

from tests.gitservers import free_port

__all__ = ["SecondApiServer", "SecondApiServerError", "find_session_apiserver"]

READY_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0
_PR_SET_PDEATHSIG = 1
_BINARY_NAME = "fluxd-controlplane"
_REPLACED = ("--secure-port", "--cert-dir")


class SecondApiServerError(RuntimeError):
    """The session's apiserver could not be found or copied, or the copy did not start."""


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # the process ended while we looked
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The command name in parentheses may hold spaces; the fields after it do not.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _flag(argv: list[str], name: str) -> str | None:
    prefix = f"{name}="
    return next((arg.removeprefix(prefix) for arg in argv if arg.startswith(prefix)), None)


def _value_after(argv: list[str], name: str) -> str | None:
    """The value of ``name`` given as a separate argument, as ``up --data-dir DIR``."""
    for index, arg in enumerate(argv[:-1]):
        if arg == name:
            return argv[index + 1]
    return None


def _is_controlplane(argv: list[str], subcommand: str) -> bool:
    return len(argv) > 1 and Path(argv[0]).name == _BINARY_NAME and argv[1] == subcommand


def find_session_apiserver(kubeconfig: Path) -> list[str]:
    """The argv of the apiserver that the ``up`` process owning ``kubeconfig`` started.

    ``up`` writes its kubeconfig into its ``--data-dir``; the apiserver is its child
    whose first argument is ``kube-apiserver``.
    """
    data_dir = kubeconfig.resolve().parent
    ups = set()
    for pid in _pids():
        argv = _argv(pid)
        given = _value_after(argv, "--data-dir") if _is_controlplane(argv, "up") else None
        if given is not None and Path(given).resolve() == data_dir:
            ups.add(pid)
    if not ups:
        raise SecondApiServerError(
            f"no running '{_BINARY_NAME} up --data-dir {data_dir}': the session's cluster is "
            "not a local control plane (FLUXD_TEST_KUBECONFIG?)"
        )
    for pid in _pids():
        argv = _argv(pid)
        if _is_controlplane(argv, "kube-apiserver") and _parent(pid) in ups:
            return argv
    raise SecondApiServerError(f"the control plane in {data_dir} runs no kube-apiserver")


def _check_serving_certificate(argv: list[str]) -> None:
    """A second port is only as good as a certificate valid for 127.0.0.1 on any port.

    A TLS certificate names hosts, never ports; it must name the loopback address.
    """
    path = _flag(argv, "--tls-cert-file")
    if path is None:
        raise SecondApiServerError(f"the apiserver has no --tls-cert-file: {argv}")
    certificate = x509.load_pem_x509_certificate(Path(path).read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    if ipaddress.ip_address("127.0.0.1") not in names.get_values_for_type(x509.IPAddress):
        raise SecondApiServerError(f"{path} is not valid for 127.0.0.1")


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL the child when this (the starting) thread ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


class SecondApiServer:
    """Another kube-apiserver of the session's cluster, on a port of its own.

    Use as ``async with``: it is started and ready inside, and stopped on exit.
    ``extra_args`` are added to the session apiserver's arguments (flags it lacks).
    """

    def __init__(
        self, session_kubeconfig: Path, workdir: Path, *, extra_args: Sequence[str] = ()
    ) -> None:
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self._workdir = workdir
        session_argv = find_session_apiserver(session_kubeconfig)
        _check_serving_certificate(session_argv)
        cert_dir = workdir / "apiserver-certs"
        cert_dir.mkdir()
        replacements = {"--secure-port": str(self.port), "--cert-dir": str(cert_dir)}
        self._argv = [arg for arg in session_argv if arg.split("=", 1)[0] not in _REPLACED] + [
            f"{name}={value}" for name, value in replacements.items()
        ]
        self._argv.extend(extra_args)
        self.kubeconfig = workdir / "kubeconfig"
        self._ssl = self._write_kubeconfig(session_kubeconfig)
        self._proc: asyncio.subprocess.Process | None = None
        self._starts = 0

    def _write_kubeconfig(self, session_kubeconfig: Path) -> ssl.SSLContext:
        """Write the session's kubeconfig with this server's URL; return the TLS context
        of its admin credentials, for the readiness probe."""
        config: dict[str, Any] = yaml.safe_load(session_kubeconfig.read_text())
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = self.url
        self.kubeconfig.write_text(yaml.safe_dump(config))
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        credentials = self._workdir / "admin-credentials"
        credentials.mkdir()
        cert, key = credentials / "admin.crt", credentials / "admin.key"
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        context = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
        context.load_cert_chain(cert, key)
        return context

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        """Start the apiserver on :attr:`port` and wait until ``/readyz`` answers 200."""
        if self.running:
            raise SecondApiServerError("the second apiserver is already running")
        self._starts += 1
        log = self._workdir / f"kube-apiserver-{self._starts}.log"
        with log.open("wb") as output:
            self._proc = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        try:
            await self._wait_ready(log)
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self, log: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        async with aiohttp.ClientSession() as session:
            while True:
                if not self.running:
                    raise SecondApiServerError(
                        f"the second apiserver exited at start-up; see {log}:\n{_tail(log)}"
                    )
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with session.get(
                        f"{self.url}/readyz",
                        ssl=self._ssl,
                        timeout=aiohttp.ClientTimeout(total=5),
                    ) as response:
                        if response.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise SecondApiServerError(
                        f"the second apiserver was not ready in {READY_TIMEOUT:.0f}s; "
                        f"see {log}:\n{_tail(log)}"
                    )
                await asyncio.sleep(0.2)

    async def stop(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` and wait until the process has exited (and freed its port)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def __aenter__(self) -> SecondApiServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
