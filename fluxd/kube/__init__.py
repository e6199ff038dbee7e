"""fluxd's only contact with the Kubernetes API.

- :mod:`~fluxd.kube.client`: connect (kubeconfig or in-cluster) and get/create/patch/
  delete objects as plain dicts, status and metadata patches included;
- :mod:`~fluxd.kube.informer`: list+watch one resource type into a local store and
  report every change (the start of every reconcile);
- :mod:`~fluxd.kube.events`: Kubernetes Events about Flux objects, aggregated like
  client-go, with listeners for the notification dispatcher;
- :mod:`~fluxd.kube.leader`: leader election on a Lease, so only one replica works.
"""

from fluxd.kube.client import (
    ApiError,
    PatchType,
    connect,
    create,
    delete,
    get,
    kubeconfig_available,
    list_page,
    patch,
    patch_metadata,
    patch_status,
    replace,
    request,
)
from fluxd.kube.events import (
    META_DIGEST,
    META_ORIGIN_REVISION,
    META_REVISION,
    META_TOKEN,
    EventListener,
    EventRecorder,
    RecordedEvent,
    meta_key,
)
from fluxd.kube.informer import EventHandler, EventType, Informer
from fluxd.kube.leader import LeaderElectionLost, LeaderElector
from fluxd.kube.resources import (
    CONFIGMAPS,
    EVENTS,
    LEASES,
    NAMESPACES,
    SECRETS,
    Resource,
    object_key,
)

__all__ = [
    "CONFIGMAPS",
    "EVENTS",
    "LEASES",
    "META_DIGEST",
    "META_ORIGIN_REVISION",
    "META_REVISION",
    "META_TOKEN",
    "NAMESPACES",
    "SECRETS",
    "ApiError",
    "EventHandler",
    "EventListener",
    "EventRecorder",
    "EventType",
    "Informer",
    "LeaderElectionLost",
    "LeaderElector",
    "PatchType",
    "RecordedEvent",
    "Resource",
    "connect",
    "create",
    "delete",
    "get",
    "kubeconfig_available",
    "list_page",
    "meta_key",
    "object_key",
    "patch",
    "patch_metadata",
    "patch_status",
    "replace",
    "request",
]
