"""Who is asking, and may they: the UI's bearer tokens checked by the API server.

fluxd keeps no users of its own. A token is whatever the cluster accepts (a
ServiceAccount token, an OIDC ID token the API server trusts...): a ``TokenReview``
(``authentication.k8s.io/v1``) says whose it is, and each action is allowed only when a
``SubjectAccessReview`` (``authorization.k8s.io/v1``) says that user may ``patch`` the
object, so the user's own RBAC decides, exactly as if they ran ``flux reconcile`` or
``flux suspend`` themselves.

Answers of TokenReview are remembered for ``ttl`` seconds (keyed by the token's hash,
never the token itself), so an overview that refreshes does not cost a review each time.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fluxd.kube import client
from fluxd.kube.client import ApiClient
from fluxd.kube.resources import Resource

__all__ = ["SUBJECT_ACCESS_REVIEWS", "TOKEN_REVIEWS", "AccessReviewer", "User"]

TOKEN_REVIEWS = Resource("authentication.k8s.io", "v1", "tokenreviews", namespaced=False)
SUBJECT_ACCESS_REVIEWS = Resource(
    "authorization.k8s.io", "v1", "subjectaccessreviews", namespaced=False
)


@dataclass(frozen=True)
class User:
    """An authenticated user, as TokenReview reports them."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, list[str]] = field(default_factory=dict)


class AccessReviewer:
    """TokenReview and SubjectAccessReview through fluxd's own API client."""

    def __init__(self, api: ApiClient, *, ttl: float = 30.0, cache_size: int = 1000) -> None:
        self._api = api
        self._ttl = ttl
        self._cache_size = cache_size
        self._known: OrderedDict[str, tuple[float, User | None]] = OrderedDict()

    async def authenticate(self, token: str) -> User | None:
        """The user ``token`` belongs to, or ``None`` when the cluster does not accept it."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        remembered = self._known.get(digest)
        if remembered is not None and remembered[0] > time.monotonic():
            return remembered[1]
        review = await client.create(
            self._api,
            TOKEN_REVIEWS,
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            },
        )
        status = review.get("status") or {}
        user: User | None = None
        if status.get("authenticated"):
            info = status.get("user") or {}
            user = User(
                username=str(info.get("username") or ""),
                uid=str(info.get("uid") or ""),
                groups=tuple(info.get("groups") or ()),
                extra={k: list(v) for k, v in (info.get("extra") or {}).items()},
            )
        self._known[digest] = (time.monotonic() + self._ttl, user)
        self._known.move_to_end(digest)
        while len(self._known) > self._cache_size:
            self._known.popitem(last=False)
        return user

    async def allowed(
        self, user: User, *, verb: str, resource: Resource, namespace: str, name: str
    ) -> bool:
        """Whether ``user`` may ``verb`` the object ``namespace/name`` of ``resource``."""
        spec: dict[str, Any] = {
            "user": user.username,
            "groups": list(user.groups),
            "resourceAttributes": {
                "verb": verb,
                "group": resource.group,
                "version": resource.version,
                "resource": resource.plural,
                "namespace": namespace,
                "name": name,
            },
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = dict(user.extra)
        review = await client.create(
            self._api,
            SUBJECT_ACCESS_REVIEWS,
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": spec,
            },
        )
        return bool((review.get("status") or {}).get("allowed"))
