"""The thin JSON layer over ``kubernetes_asyncio``'s ``ApiClient``.

``kubernetes_asyncio`` contributes configuration loading (kubeconfig, exec plugins,
in-cluster service accounts), TLS and authentication; every request goes through
``ApiClient.call_api`` with ``_preload_content=False`` so fluxd reads the raw aiohttp
response itself and gets plain dicts, never generated model objects. Errors are raised as
:class:`ApiError`, a subclass of ``kubernetes_asyncio``'s ``ApiException`` that also carries
the decoded ``Status`` (reason, message) the API server sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import (
    ConfigException,
    load_incluster_config,
    load_kube_config,
    load_kube_config_from_dict,
)

import fluxd
from fluxd.kube.resources import Resource

__all__ = [
    "ApiClient",
    "ApiError",
    "KubeconfigError",
    "PatchType",
    "connect",
    "connect_with",
    "create",
    "delete",
    "environment_proxy",
    "get",
    "impersonating",
    "kubeconfig_available",
    "list_page",
    "open_response",
    "patch",
    "patch_metadata",
    "patch_status",
    "replace",
    "request",
    "request_timeout_of",
    "watch",
]

PatchType = Literal["merge", "json", "strategic", "apply"]

_CONTENT_TYPES: dict[PatchType, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
IMPERSONATE_USER = "Impersonate-User"
_SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
# A bounded default so that a hung API server cannot wedge a reconciler forever.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10)
# Where a client's own request timeout (connect's ``request_timeout``) is kept: on the
# configuration, which the clients made by :func:`impersonating` share.
_REQUEST_TIMEOUT_SETTING = "fluxd_request_timeout"
# As client-go: a 429, or a 5xx carrying Retry-After, means "not processed, come back
# then"; the request is sent again after that many seconds, at most this many times.
MAX_RETRY_AFTER_ATTEMPTS = 10


class KubeconfigError(Exception):
    """No usable kubeconfig: missing, unreadable, or naming credentials that cannot load."""


class ApiError(ApiException):
    """A non-2xx answer from the API server, or none in time.

    ``status`` is the HTTP status, ``reason`` the ``Status.reason`` (``NotFound``,
    ``Conflict``, ``Expired``...) when the server sent one, ``message`` its human text.
    A request the server did not answer within the client's timeout has ``status`` 0
    and reason ``Timeout``: every caller that reports an API error then reports it too,
    with what it was doing, instead of a bare ``TimeoutError`` that says nothing.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        method: str = "",
        path: str = "",
        body: bytes | None = None,
    ) -> None:
        super().__init__(status=status, reason=reason)
        self.message = message
        self.method = method
        self.path = path
        self.body = body

    @classmethod
    def from_status(
        cls, status: int, payload: bytes, *, method: str = "", path: str = ""
    ) -> ApiError:
        """Build from an HTTP status and a body that is usually a ``metav1.Status``."""
        reason, message = "", payload.decode("utf-8", "replace").strip()
        try:
            doc = json.loads(payload)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            reason = str(doc.get("reason") or "")
            message = str(doc.get("message") or message)
        return cls(status, reason, message, method=method, path=path, body=payload)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def gone(self) -> bool:
        """The resourceVersion asked for is too old: relist."""
        return self.status == 410 or self.reason in ("Expired", "Gone")

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.path else ""
        if self.status == 0:  # no answer at all: no HTTP status to show
            return f"{where}{self.message}"
        reason = f" {self.reason}" if self.reason else ""
        return f"{where}HTTP {self.status}{reason}: {self.message}"


def _kubeconfig_paths(kubeconfig: str | None) -> list[Path]:
    if kubeconfig:
        return [Path(kubeconfig).expanduser()]
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and _SERVICE_ACCOUNT_TOKEN.is_file()


def kubeconfig_available(kubeconfig: str | None = None) -> bool:
    """Whether :func:`connect` has anything to connect with, without connecting.

    True when the given file, a file named by ``$KUBECONFIG`` or ``~/.kube/config``
    exists, or when running in a pod with a service account token.
    """
    return any(p.is_file() for p in _kubeconfig_paths(kubeconfig)) or _in_cluster()


async def connect(
    kubeconfig: str | None = None,
    *,
    context: str | None = None,
    request_timeout: float | None = None,
) -> ApiClient:
    """An ``ApiClient`` for the cluster; the caller closes it (``async with`` or ``close()``).

    Uses ``kubeconfig`` when given, else ``$KUBECONFIG`` (``:``-separated files are
    merged) or ``~/.kube/config``, else the in-cluster service account.
    ``request_timeout`` (seconds) bounds each request but watches, instead of
    :data:`DEFAULT_TIMEOUT`'s minute, as kubectl's ``--request-timeout`` does.
    """
    config = Configuration()
    paths = [p for p in _kubeconfig_paths(kubeconfig) if p.is_file()]
    if kubeconfig and not paths:
        raise KubeconfigError(f"kubeconfig {kubeconfig!r} does not exist")
    try:
        if paths:
            await load_kube_config(
                config_file=os.pathsep.join(str(p) for p in paths),
                context=context,
                client_configuration=config,
                persist_config=False,
            )
        elif _in_cluster():
            load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
    except ConfigException as error:
        raise KubeconfigError(str(error)) from error
    if not paths and not _in_cluster():
        raise KubeconfigError(
            "no kubeconfig found (looked at $KUBECONFIG and ~/.kube/config) and not "
            "running in a pod: pass --kubeconfig or set KUBECONFIG"
        )
    if request_timeout is not None:
        setattr(
            config,
            _REQUEST_TIMEOUT_SETTING,
            aiohttp.ClientTimeout(total=request_timeout, connect=min(request_timeout, 10)),
        )
    return api_client(config)


async def connect_with(
    kubeconfig: Mapping[str, Any], *, impersonate: str | None = None
) -> ApiClient:
    """An ``ApiClient`` for a kubeconfig document held in memory (a Secret's, say), acting
    as ``impersonate`` when given (see :func:`impersonating`).

    Raises :class:`KubeconfigError` when it does not load or its certificate data is bad.
    """
    config = Configuration()
    try:
        loader = await load_kube_config_from_dict(dict(kubeconfig), client_configuration=config)
        # Building the client builds its TLS context: a bad certificate shows here.
        api = api_client(config)
    except (ConfigException, ValueError, OSError) as error:
        raise KubeconfigError(str(error)) from error
    if getattr(loader, "exec_plugin_expiry", None) is not None:
        config.refresh_api_key_hook = _exec_token_refresher(loader)
    if impersonate is not None:
        api.set_default_header(IMPERSONATE_USER, impersonate)
    return api


def _exec_token_refresher(loader: Any) -> Callable[[Configuration], Awaitable[None]]:
    """A hook run before each request that runs the exec plugin again once the token it
    printed has expired, as client-go does: a client is cached far longer than tokens
    such as ``aws eks get-token``'s live (one without an expiry gets no hook)."""

    async def refresh(config: Configuration) -> None:
        await loader.load_from_exec_plugin()
        config.api_key["BearerToken"] = loader.token

    return refresh


def impersonating(api: ApiClient, user: str | None) -> ApiClient:
    """A new client on ``api``'s configuration that acts as ``user`` (``Impersonate-User``),
    or as the credentials themselves for ``None``. The configuration object is shared, so
    a refreshed token serves both clients."""
    clone = api_client(api.configuration)
    if user is not None:
        clone.set_default_header(IMPERSONATE_USER, user)
    return clone


def kubeconfig_of(api: ApiClient) -> str:
    """A kubeconfig document (JSON) reaching the cluster as ``api`` does: for a library
    that takes a kubeconfig (the Helm SDK). Certificates are the files the loaded
    configuration reads; a bearer token is copied as it is now."""
    config = api.configuration
    user: dict[str, Any] = {}
    if config.cert_file:
        user["client-certificate"] = config.cert_file
    if config.key_file:
        user["client-key"] = config.key_file
    token = (config.api_key or {}).get("authorization") or (config.api_key or {}).get("BearerToken")
    if token:
        user["token"] = str(token).removeprefix("Bearer ")
    cluster: dict[str, Any] = {"server": config.host}
    if config.ssl_ca_cert:
        cluster["certificate-authority"] = config.ssl_ca_cert
    if not config.verify_ssl:
        cluster["insecure-skip-tls-verify"] = True
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fluxd", "cluster": cluster}],
        "users": [{"name": "fluxd", "user": user}],
        "contexts": [{"name": "fluxd", "context": {"cluster": "fluxd", "user": "fluxd"}}],
        "current-context": "fluxd",
    }
    return json.dumps(document)


def api_client(config: Configuration) -> ApiClient:
    """An ``ApiClient`` for a loaded configuration, as fluxd uses every client.

    kubernetes_asyncio's HTTP session looks up proxy variables and reads ``~/.netrc``
    on every request (aiohttp's ``trust_env``): a tenth of the daemon's CPU time under
    load. The proxy for the API server is looked up once here instead (a kubeconfig's
    ``proxy-url`` still wins), and the per-request lookup is switched off. Raises what
    building the TLS context raises for bad certificate data.
    """
    if config.proxy is None and config.host:
        config.proxy = environment_proxy(config.host)
    api = ApiClient(configuration=config)
    api.user_agent = f"fluxd/{fluxd.__version__}"
    session = api.rest_client.pool_manager
    if hasattr(session, "_trust_env"):
        session._trust_env = False
    return api


def environment_proxy(url: str) -> str | None:
    """``HTTPS_PROXY``/``HTTP_PROXY`` for ``url`` unless ``NO_PROXY`` exempts its host."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


async def open_response(
    api: ApiClient,
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    body: Any = None,
    content_type: str = "application/json",
    http_timeout: aiohttp.ClientTimeout | None = None,
) -> aiohttp.ClientResponse:
    """Send a request and return the open 2xx response; the caller must close it.

    ``http_timeout`` defaults to the client's (see :func:`connect`). A 429, or a 5xx
    with ``Retry-After``, is sent again after the seconds it asks for, as client-go
    does. Raises :class:`ApiError` for any other status (the error body is read and the
    response closed here) and for no answer within the timeout.
    """
    timeout = http_timeout or request_timeout_of(api)
    for attempt in range(1, MAX_RETRY_AFTER_ATTEMPTS + 1):
        with _timeout_as_api_error(timeout, method, path):
            resp: aiohttp.ClientResponse = await api.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout,
            )
        if 200 <= resp.status < 300:
            return resp
        try:
            with _timeout_as_api_error(timeout, method, path):
                payload = await resp.read()
        finally:
            resp.close()
        wait = _retry_after(resp)
        if wait is None or attempt == MAX_RETRY_AFTER_ATTEMPTS:
            break
        await asyncio.sleep(wait)
    raise ApiError.from_status(resp.status, payload, method=method, path=path)


def request_timeout_of(api: ApiClient) -> aiohttp.ClientTimeout:
    """The timeout of ``api``'s requests: its own (see :func:`connect`) or the default."""
    timeout = getattr(api.configuration, _REQUEST_TIMEOUT_SETTING, None)
    return timeout if isinstance(timeout, aiohttp.ClientTimeout) else DEFAULT_TIMEOUT


def _retry_after(resp: aiohttp.ClientResponse) -> int | None:
    """The seconds a 429 or 5xx answer asks the client to wait before sending it again."""
    if resp.status != 429 and not 500 <= resp.status < 600:
        return None
    header = resp.headers.get("Retry-After", "").strip()
    return int(header) if header.isdigit() else None


@contextlib.contextmanager
def _timeout_as_api_error(timeout: aiohttp.ClientTimeout, method: str, path: str) -> Iterator[None]:
    """Turn aiohttp's bare ``TimeoutError`` into an :class:`ApiError` naming the limit, so
    that callers report it as a failed API call."""
    try:
        yield
    except TimeoutError as error:
        limit = f" within {timeout.total:g}s" if timeout.total else ""
        raise ApiError(
            0, "Timeout", f"no answer from the API server{limit}", method=method, path=path
        ) from error


async def watch(
    api: ApiClient,
    resource: Resource,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``(type, object)`` of each change a watch delivers, until the server ends it:
    ``ADDED`` for every object that exists first, then the changes as they happen."""
    query = {"watch": "true"}
    if label_selector:
        query["labelSelector"] = label_selector
    if field_selector:
        query["fieldSelector"] = field_selector
    response = await open_response(
        api,
        "GET",
        resource.path(namespace),
        query=query,
        http_timeout=aiohttp.ClientTimeout(total=None, connect=10),
    )
    try:
        async for line in response.content:
            if line.strip():
                change = json.loads(line)
                yield str(change.get("type")), change.get("object") or {}
    finally:
        response.close()


async def request(
    api: ApiClient,
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    body: Any = None,
    content_type: str = "application/json",
    http_timeout: aiohttp.ClientTimeout | None = None,
) -> dict[str, Any]:
    """One request, its JSON answer decoded (``{}`` for an empty body)."""
    resp = await open_response(
        api,
        method,
        path,
        query=query,
        body=body,
        content_type=content_type,
        http_timeout=http_timeout,
    )
    try:
        with _timeout_as_api_error(http_timeout or request_timeout_of(api), method, path):
            payload = await resp.read()
    finally:
        resp.release()
    if not payload:
        return {}
    doc = json.loads(payload)
    if not isinstance(doc, dict):
        raise ValueError(f"{method} {path}: expected a JSON object, got {type(doc).__name__}")
    return doc


@overload
async def get(
    api: ApiClient,
    resource: Resource,
    namespace: str | None,
    name: str,
    *,
    missing_ok: Literal[False] = False,
) -> dict[str, Any]: ...


@overload
async def get(
    api: ApiClient, resource: Resource, namespace: str | None, name: str, *, missing_ok: bool
) -> dict[str, Any] | None: ...


async def get(
    api: ApiClient,
    resource: Resource,
    namespace: str | None,
    name: str,
    *,
    missing_ok: bool = False,
) -> dict[str, Any] | None:
    """GET one object. When it does not exist: ``None`` with ``missing_ok``, else
    :class:`ApiError` with ``not_found``."""
    try:
        return await request(api, "GET", resource.path(namespace, name))
    except ApiError as error:
        if missing_ok and error.not_found:
            return None
        raise


async def list_page(
    api: ApiClient,
    resource: Resource,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    limit: int = 500,
    continue_token: str | None = None,
) -> dict[str, Any]:
    """One page of a LIST: the ``*List`` object with ``items`` and ``metadata.continue``."""
    query: dict[str, str] = {"limit": str(limit)}
    if label_selector:
        query["labelSelector"] = label_selector
    if field_selector:
        query["fieldSelector"] = field_selector
    if continue_token:
        query["continue"] = continue_token
    return await request(api, "GET", resource.path(namespace), query=query)


async def create(
    api: ApiClient,
    resource: Resource,
    obj: Mapping[str, Any],
    *,
    namespace: str | None = None,
    field_manager: str | None = None,
) -> dict[str, Any]:
    """POST a new object; the namespace defaults to ``obj.metadata.namespace``."""
    ns = namespace or (obj.get("metadata") or {}).get("namespace")
    query = {"fieldManager": field_manager} if field_manager else None
    return await request(api, "POST", resource.path(ns), query=query, body=dict(obj))


async def replace(
    api: ApiClient,
    resource: Resource,
    obj: Mapping[str, Any],
    *,
    subresource: str | None = None,
) -> dict[str, Any]:
    """PUT a whole object; ``metadata.resourceVersion`` in it makes the write conditional
    (409 Conflict when the object changed since it was read)."""
    meta = obj.get("metadata") or {}
    path = resource.path(meta.get("namespace"), meta["name"], subresource)
    return await request(api, "PUT", path, body=dict(obj))


async def patch(
    api: ApiClient,
    resource: Resource,
    namespace: str | None,
    name: str,
    body: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    patch_type: PatchType = "merge",
    subresource: str | None = None,
    field_manager: str | None = None,
    force: bool = False,
    strict: bool = False,
) -> dict[str, Any]:
    """PATCH an object (or a subresource such as ``status``).

    ``patch_type="apply"`` is server-side apply and needs ``field_manager``; ``force``
    takes over fields owned by other managers; ``strict`` makes the API server reject
    fields the schema does not declare rather than prune them.
    """
    query: dict[str, str] = {"fieldValidation": "Strict"} if strict else {}
    if field_manager:
        query["fieldManager"] = field_manager
    if force:
        query["force"] = "true"
    payload = list(body) if isinstance(body, Sequence) else dict(body)
    return await request(
        api,
        "PATCH",
        resource.path(namespace, name, subresource),
        query=query,
        body=payload,
        content_type=_CONTENT_TYPES[patch_type],
    )


async def patch_status(
    api: ApiClient,
    resource: Resource,
    namespace: str | None,
    name: str,
    status: Mapping[str, Any],
    *,
    resource_version: str | None = None,
) -> dict[str, Any]:
    """JSON merge patch of the ``status`` subresource: ``{"status": status}``.

    Merge patch semantics apply: ``None`` values delete fields, lists (``conditions``)
    are replaced whole. With ``resource_version`` the patch fails with 409 Conflict if
    the object changed since it was read. Field validation is strict: a status field
    the CRD does not declare fails the write, naming the field, instead of being
    pruned without a word.
    """
    body: dict[str, Any] = {"status": dict(status)}
    if resource_version is not None:
        body["metadata"] = {"resourceVersion": resource_version}
    return await patch(
        api,
        resource,
        namespace,
        name,
        body,
        subresource="status",
        strict=True,
    )


async def patch_metadata(
    api: ApiClient,
    resource: Resource,
    namespace: str | None,
    name: str,
    *,
    finalizers: Sequence[str] | None = None,
    annotations: Mapping[str, str | None] | None = None,
    labels: Mapping[str, str | None] | None = None,
    resource_version: str | None = None,
) -> dict[str, Any]:
    """Merge patch of ``metadata``: finalizers (the whole list), annotations and labels
    (``None`` removes a key).

    Finalizer lists are replaced whole, so pass the ``resource_version`` they were
    computed from: a concurrent change then fails with 409 Conflict instead of being
    overwritten.
    """
    meta: dict[str, Any] = {}
    if finalizers is not None:
        meta["finalizers"] = list(finalizers)
    if annotations is not None:
        meta["annotations"] = dict(annotations)
    if labels is not None:
        meta["labels"] = dict(labels)
    if resource_version is not None:
        meta["resourceVersion"] = resource_version
    return await patch(api, resource, namespace, name, {"metadata": meta})


async def delete(
    api: ApiClient,
    resource: Resource,
    namespace: str | None,
    name: str,
    *,
    propagation_policy: Literal["Foreground", "Background", "Orphan"] | None = None,
    resource_version: str | None = None,
    missing_ok: bool = True,
) -> dict[str, Any] | None:
    """DELETE an object; ``None`` when it was already gone (and ``missing_ok``).

    ``resource_version`` is a precondition: 409 Conflict if the object changed.
    """
    body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if propagation_policy:
        body["propagationPolicy"] = propagation_policy
    if resource_version is not None:
        body["preconditions"] = {"resourceVersion": resource_version}
    try:
        return await request(api, "DELETE", resource.path(namespace, name), body=body)
    except ApiError as exc:
        if exc.not_found and missing_ok:
            return None
        raise
