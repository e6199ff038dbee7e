"""A fault-injecting proxy in front of the test kube-apiserver, for the fault tests.

A TLS proxy on 127.0.0.1 with a certificate of its own test CA: it sees every request
fluxd sends, forwards it to the real API server with the admin client certificate of the
session's kubeconfig, and streams the answer back (watches included). A test points a
client at :attr:`ApiFaultProxy.kubeconfig` and then makes the API server misbehave the
ways a real one does:

- :meth:`~ApiFaultProxy.cut_watches` drops every open watch stream mid-body, as a
  restarting apiserver or a load balancer does;
- :meth:`~ApiFaultProxy.fail_next` answers the next N matching requests with an error
  status (429 with ``Retry-After``, 500, 503) and a ``metav1.Status`` body;
- :meth:`~ApiFaultProxy.expire_next_watch` answers the next watch that resumes from a
  resourceVersion with ``410 Gone`` (compacted etcd);
- :meth:`~ApiFaultProxy.delay` holds matching requests back (slow etcd);
- :meth:`~ApiFaultProxy.go_down` / :meth:`~ApiFaultProxy.come_up` close the listening
  socket and drop open connections, so that connecting is refused (apiserver down).

The proxy runs its own event loop in a thread: the test's loop (where the daemon runs)
holds none of its tasks, and a delay or a stream it keeps open costs the daemon nothing.
Every injected fault is recorded in :attr:`~ApiFaultProxy.injected`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from tests.gitservers import make_ca

# Headers of one hop that must not be passed on; aiohttp sets its own framing.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "host",
    "accept-encoding",
    "upgrade",
}
_REASONS = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}


@dataclass
class _Rule:
    """What to do to the next ``remaining`` requests that match ``method`` and ``prefix``."""

    method: str | None
    prefix: str
    remaining: int
    status: int = 0
    retry_after: int | None = None
    delay: float = 0.0
    watch_only: bool = False
    as_event: bool = False

    def matches(self, request: web.BaseRequest) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and request.method != self.method:
            return False
        if self.watch_only and not _resumes_watch(request):
            return False
        return request.path.startswith(self.prefix)


@dataclass(frozen=True)
class Injected:
    """One fault the proxy injected: which request, and what it answered or did."""

    method: str
    path: str
    fault: str


def _is_watch(request: web.BaseRequest) -> bool:
    return request.query.get("watch") in ("true", "1")


def _resumes_watch(request: web.BaseRequest) -> bool:
    return _is_watch(request) and bool(request.query.get("resourceVersion"))


def _status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class _Upstream:
    """Where and how the proxy reaches the real API server (from its kubeconfig)."""

    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        document = yaml.safe_load(kubeconfig.read_text())
        context_name = document["current-context"]
        context = next(c for c in document["contexts"] if c["name"] == context_name)["context"]
        cluster = next(c for c in document["clusters"] if c["name"] == context["cluster"])
        user = next(u for u in document["users"] if u["name"] == context["user"])["user"]
        self.server = str(cluster["cluster"]["server"]).rstrip("/")
        base = kubeconfig.parent
        self.context = ssl.create_default_context(
            cafile=str(self._file(cluster["cluster"], "certificate-authority", base, workdir))
        )
        self.context.load_cert_chain(
            self._file(user, "client-certificate", base, workdir),
            self._file(user, "client-key", base, workdir),
        )

    @staticmethod
    def _file(section: dict[str, Any], field: str, base: Path, workdir: Path) -> Path:
        inline = section.get(f"{field}-data")
        if inline:
            path = workdir / f"upstream-{field}.pem"
            path.write_bytes(base64.b64decode(inline))
            return path
        return base / str(section[field])


class ApiFaultProxy:
    """The proxy; use as a context manager (it starts and stops its thread)."""

    def __init__(self, upstream_kubeconfig: Path, workdir: Path) -> None:
        self._workdir = workdir
        self._upstream = _Upstream(upstream_kubeconfig, workdir)
        authority = make_ca()
        (workdir / "proxy-ca.crt").write_bytes(authority.cert_pem)
        (workdir / "proxy.crt").write_bytes(authority.server_cert_pem)
        (workdir / "proxy.key").write_bytes(authority.server_key_pem)
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(workdir / "proxy.crt", workdir / "proxy.key")
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self.injected: list[Injected] = []
        self._lists: list[str] = []
        self.port = 0
        self.kubeconfig = workdir / "proxy-kubeconfig.yaml"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="api fault proxy")
        self._server: asyncio.AbstractServer | None = None
        self._runner: web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        # Open watch streams: the connection to drop and the handler to stop with it.
        self._watches: dict[asyncio.Transport, asyncio.Task[Any]] = {}

    def __enter__(self) -> ApiFaultProxy:
        self._thread.start()
        self._call(self._start())
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "proxy",
                            "cluster": {
                                "server": f"https://127.0.0.1:{self.port}",
                                "certificate-authority": str(self._workdir / "proxy-ca.crt"),
                            },
                        }
                    ],
                    "users": [{"name": "proxied", "user": {}}],
                    "contexts": [
                        {"name": "proxy", "context": {"cluster": "proxy", "user": "proxied"}}
                    ],
                    "current-context": "proxy",
                }
            )
        )
        return self

    def __exit__(self, *_: object) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=30)

    # --- what a test does ---------------------------------------------------------------

    def cut_watches(self) -> int:
        """Drop every open watch connection now, mid-stream; how many were dropped."""
        return int(self._call(self._cut_watches()))

    def fail_next(
        self,
        count: int,
        status: int,
        *,
        method: str | None = None,
        path_prefix: str = "/",
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (and ``Retry-After``)."""
        self._add(
            _Rule(method, path_prefix, count, status=status, retry_after=retry_after),
        )

    def expire_next_watch(
        self, *, path_prefix: str = "/", count: int = 1, as_event: bool = False
    ) -> None:
        """Answer the next ``count`` watches resuming from a resourceVersion with 410 Gone:
        as the HTTP status, or (``as_event``) as a 200 stream whose one event is an
        ``ERROR`` carrying the 410 ``Status``, as the watch cache answers."""
        self._add(_Rule("GET", path_prefix, count, status=410, watch_only=True, as_event=as_event))

    def delay(
        self, seconds: float, *, count: int, method: str | None = None, path_prefix: str = "/"
    ) -> None:
        """Hold the next ``count`` matching requests back ``seconds`` before forwarding."""
        self._add(_Rule(method, path_prefix, count, delay=seconds))

    def go_down(self) -> None:
        """Refuse new connections and drop the open ones, as a stopped apiserver does."""
        self._call(self._go_down())

    def come_up(self) -> None:
        """Listen again on the same port."""
        self._call(self._listen())

    def pending(self) -> int:
        """How many injected faults are still waiting for a request to match."""
        with self._lock:
            return sum(rule.remaining for rule in self._rules)

    def lists(self, path_prefix: str = "/") -> int:
        """How many LISTs (paged GETs of a collection, not watches) reached the proxy."""
        with self._lock:
            return sum(1 for path in self._lists if path.startswith(path_prefix))

    def faults(self, fault: str) -> list[Injected]:
        with self._lock:
            return [entry for entry in self.injected if entry.fault == fault]

    def _add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def _take(self, request: web.BaseRequest) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(request):
                    rule.remaining -= 1
                    return rule
        return None

    def _record(self, request: web.BaseRequest, fault: str) -> None:
        with self._lock:
            self.injected.append(Injected(request.method, request.path, fault))

    # --- the proxy's own loop -----------------------------------------------------------

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._upstream.context, limit=0),
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=False,
        )
        self._runner = web.ServerRunner(web.Server(self._handle), handle_signals=False)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        assert self._runner.server is not None
        self._server = await self._loop.create_server(
            self._runner.server, "127.0.0.1", self.port, ssl=self._tls, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _go_down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        assert self._runner is not None
        assert self._runner.server is not None
        await self._cut_watches()
        for connection in list(self._runner.server.connections):
            if connection.transport is not None:
                connection.transport.abort()

    async def _cut_watches(self) -> int:
        cut, self._watches = self._watches, {}
        for transport, handler in cut.items():
            transport.abort()
            handler.cancel()
        return len(cut)

    async def _stop(self) -> None:
        await self._go_down()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "GET" and "limit" in request.query and not _is_watch(request):
            with self._lock:
                self._lists.append(request.path)
        rule = self._take(request)
        if rule is not None and rule.delay:
            self._record(request, f"delayed {rule.delay:g}s")
            await asyncio.sleep(rule.delay)
        elif rule is not None and rule.status:
            self._record(request, str(rule.status))
            return self._fault_answer(rule)
        return await self._forward(request)

    @staticmethod
    def _fault_answer(rule: _Rule) -> web.Response:
        if rule.status == 410:
            reason, message = "Expired", "too old resource version (injected)"
        else:
            reason = _REASONS.get(rule.status, "InternalError")
            message = f"injected {rule.status} by the test proxy"
        if rule.as_event:
            event = {"type": "ERROR", "object": _status_body(rule.status, reason, message)}
            return web.Response(
                status=200, content_type="application/json", text=json.dumps(event) + "\n"
            )
        headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
        return web.Response(
            status=rule.status,
            headers=headers,
            content_type="application/json",
            text=json.dumps(_status_body(rule.status, reason, message)),
        )

    async def _forward(self, request: web.BaseRequest) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = await request.read()
        async with self._session.request(
            request.method,
            self._upstream.server + request.path_qs,
            headers=headers,
            data=body or None,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    response.headers[name] = value
            await response.prepare(request)
            transport, handler = request.transport, asyncio.current_task()
            if _is_watch(request) and transport is not None and handler is not None:
                self._watches[transport] = handler
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            finally:
                if transport is not None:
                    self._watches.pop(transport, None)
        return response
