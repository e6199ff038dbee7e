"""The objects of ``manifests/install.yaml``, as Python data.

One namespace, one ServiceAccount, one Deployment, two Services -- the whole of
Flux's six controllers. :class:`InstallOptions` are what ``fluxd install`` and
``fluxd bootstrap`` vary; ``manifests/install.yaml`` is the defaults.

RBAC is least privilege by default: a ClusterRole spells out what fluxd needs for its
own objects, and users' objects are applied as ``spec.serviceAccountName`` (tokens
requested for it). ``cluster_admin`` adds Flux's default, a binding to ``cluster-admin``
so that Kustomizations and HelmReleases without a service account can apply anything.
Cluster-scoped names end in the namespace (as Flux's ``cluster-reconciler-flux-system``),
so two installs in two namespaces do not overwrite each other's RBAC.

The labels are the ones the ``flux`` CLI looks for: ``flux check`` and ``flux logs`` find
controllers and CRDs by ``app.kubernetes.io/part-of: flux`` and read the version label
from the GitRepository CRD, and ``flux logs`` reads the container named ``manager``.

The Service is named ``fluxd`` in ``flux-system`` and exposes the artifact server
on port 80 (as Flux's ``source-controller`` Service does, so artifact URLs need no
port): ``http://fluxd.flux-system.svc.cluster.local./<kind>/<ns>/<name>/<file>``.
The Service ``webhook-receiver`` is Flux's: port 80 to the receivers-only listener (9292),
so an Ingress made for Flux's webhooks keeps working and exposes no artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fluxd import __version__
from fluxd.api._crd import crd_for
from fluxd.api._kinds import KINDS

__all__ = [
    "ARTIFACT_PORT",
    "CONTAINER",
    "IMAGE",
    "LABELS",
    "METRICS_PORT",
    "NAME",
    "NAMESPACE",
    "RECEIVER_PORT",
    "VERSION",
    "InstallOptions",
    "install_objects",
    "namespace_object",
    "workload_objects",
]

NAME = "fluxd"
NAMESPACE = "flux-system"
VERSION = __version__
IMAGE = f"ghcr.io/fluxd/fluxd:{VERSION}"
METRICS_PORT = 8080
ARTIFACT_PORT = 9090
#: Flux's notification-controller receiver port, behind the ``webhook-receiver`` Service.
RECEIVER_PORT = 9292

#: The Go runtime's soft memory limit for the in-process Helm SDK (``GOMEMLIMIT``).
GO_MEMORY_LIMIT = "96MiB"
#: The container's name: ``flux logs`` reads the logs of the container called so.
CONTAINER = "manager"

#: Labels of every installed object (the instance label is the namespace's name).
LABELS = {
    "app.kubernetes.io/name": NAME,
    "app.kubernetes.io/part-of": "flux",
    "app.kubernetes.io/version": VERSION,
}
SELECTOR = {"app.kubernetes.io/name": NAME}


@dataclass(frozen=True)
class InstallOptions:
    """What one install varies: where it goes, what runs, and how much it may do."""

    namespace: str = NAMESPACE
    image: str = IMAGE
    #: Bind fluxd to ``cluster-admin`` (Flux's default) besides its own ClusterRole.
    cluster_admin: bool = False

    def labels(self) -> dict[str, str]:
        return {**LABELS, "app.kubernetes.io/instance": self.namespace}

    def meta(self, name: str, *, namespaced: bool = True) -> dict[str, Any]:
        meta: dict[str, Any] = {"labels": self.labels(), "name": name}
        if namespaced:
            meta["namespace"] = self.namespace
        return meta

    def cluster_name(self, name: str) -> str:
        """A cluster-scoped object's name, unique per install namespace."""
        return f"{name}-{self.namespace}"


def cluster_role_rules() -> list[dict[str, Any]]:
    """What fluxd needs for its own work, besides applying users' objects."""
    groups = sorted({k.group for k in KINDS})
    return [
        {"apiGroups": groups, "resources": ["*"], "verbs": ["*"]},
        {
            "apiGroups": [""],
            "resources": ["secrets", "configmaps", "serviceaccounts", "namespaces"],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        },
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["tokenreviews"],
            "verbs": ["create"],
        },
        # The status UI asks whether a user's token may patch an object before acting.
        {
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["subjectaccessreviews"],
            "verbs": ["create"],
        },
    ]


def _container(options: InstallOptions) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/healthz", "port": "http-metrics"}}
    return {
        "args": [
            "run",
            f"--metrics-addr=:{METRICS_PORT}",
            f"--artifact-addr=:{ARTIFACT_PORT}",
            f"--receiver-addr=:{RECEIVER_PORT}",
            "--leader-elect",
            "--artifact-memory-mib=128",
            "--artifact-spill-dir=/data/artifacts",
        ],
        "env": [
            {
                "name": "RUNTIME_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
            # The Helm SDK's Go runtime reads its soft memory limit at process start only:
            # it keeps the Go heap of concurrent Helm actions from growing past need.
            {"name": "GOMEMLIMIT", "value": GO_MEMORY_LIMIT},
        ],
        "image": options.image,
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": probe,
        "name": CONTAINER,
        "ports": [
            {"containerPort": METRICS_PORT, "name": "http-metrics", "protocol": "TCP"},
            {"containerPort": ARTIFACT_PORT, "name": "artifacts", "protocol": "TCP"},
            {"containerPort": RECEIVER_PORT, "name": "http-webhook", "protocol": "TCP"},
        ],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http-metrics"}},
        "resources": {
            "limits": {"cpu": "1000m", "memory": "1Gi"},
            "requests": {"cpu": "100m", "memory": "128Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"mountPath": "/tmp", "name": "tmp"},
            {"mountPath": "/data", "name": "data"},
        ],
    }


def install_objects(options: InstallOptions = InstallOptions()) -> list[dict[str, Any]]:
    """Everything one install applies, in apply order: namespace, CRDs, workload."""
    crds = [crd_for(info) for info in KINDS]
    return [namespace_object(options), *crds, *workload_objects(options)]


def namespace_object(options: InstallOptions = InstallOptions()) -> dict[str, Any]:
    """The namespace, applied first (before the CRDs)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            # Pruned, the namespace would take fluxd and every object in it along.
            "annotations": {"kustomize.toolkit.fluxcd.io/prune": "disabled"},
            "labels": {**options.labels(), "pod-security.kubernetes.io/warn": "restricted"},
            "name": options.namespace,
        },
    }


def workload_objects(options: InstallOptions = InstallOptions()) -> list[dict[str, Any]]:
    """RBAC, Deployment and Service, in apply order (after the CRDs)."""
    meta = options.meta
    role_name = options.cluster_name(NAME)
    service_account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(NAME)}
    subject = [{"kind": "ServiceAccount", "name": NAME, "namespace": options.namespace}]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": meta(role_name, namespaced=False),
        "rules": cluster_role_rules(),
    }
    role_binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta(role_name, namespaced=False),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role_name,
        },
        "subjects": subject,
    }
    admin_binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta(options.cluster_name(f"{NAME}-cluster-admin"), namespaced=False),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "cluster-admin",
        },
        "subjects": subject,
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(NAME),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(SELECTOR)},
            # One replica holds the lease; a rolling update must not run two.
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {
                    "annotations": {
                        "prometheus.io/port": str(METRICS_PORT),
                        "prometheus.io/scrape": "true",
                    },
                    "labels": {**SELECTOR, "app.kubernetes.io/part-of": "flux"},
                },
                "spec": {
                    "containers": [_container(options)],
                    "securityContext": {"fsGroup": 1337, "runAsGroup": 1337, "runAsUser": 1337},
                    "serviceAccountName": NAME,
                    "terminationGracePeriodSeconds": 30,
                    "volumes": [
                        {"emptyDir": {}, "name": "tmp"},
                        {"emptyDir": {}, "name": "data"},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(NAME),
        "spec": {
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "artifacts"},
                {
                    "name": "http-metrics",
                    "port": METRICS_PORT,
                    "protocol": "TCP",
                    "targetPort": "http-metrics",
                },
                {
                    "name": "artifacts",
                    "port": ARTIFACT_PORT,
                    "protocol": "TCP",
                    "targetPort": "artifacts",
                },
            ],
            "selector": dict(SELECTOR),
            "type": "ClusterIP",
        },
    }
    # Flux's name and ports for webhooks, so an existing Ingress keeps working.
    receiver_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("webhook-receiver"),
        "spec": {
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http-webhook"}
            ],
            "selector": dict(SELECTOR),
            "type": "ClusterIP",
        },
    }
    bindings = [role_binding, admin_binding] if options.cluster_admin else [role_binding]
    return [service_account, role, *bindings, deployment, service, receiver_service]
