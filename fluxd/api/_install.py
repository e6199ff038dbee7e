"""The objects of ``manifests/install.yaml``, as Python data.

One namespace, one ServiceAccount, one Deployment, two Services -- the whole of
Flux's six controllers. RBAC follows Flux: the kustomize and helm controllers are
bound to ``cluster-admin`` because they apply arbitrary objects on behalf of
users (tenancy is done by impersonating ``spec.serviceAccountName``), so fluxd is
too; a second ClusterRole spells out what fluxd needs for its own objects so that
it can stay bound if an operator swaps the admin binding for something narrower.

The Service is named ``fluxd`` in ``flux-system`` and exposes the artifact server
on port 80 (as Flux's ``source-controller`` Service does, so artifact URLs need no
port): ``http://fluxd.flux-system.svc.cluster.local./<kind>/<ns>/<name>/<file>``.
The Service ``webhook-receiver`` is Flux's: port 80 to the receivers-only listener (9292),
so an Ingress made for Flux's webhooks keeps working and exposes no artifact.
"""

from __future__ import annotations

from typing import Any

from fluxd.api._kinds import KINDS

__all__ = [
    "ARTIFACT_PORT",
    "IMAGE",
    "METRICS_PORT",
    "NAME",
    "NAMESPACE",
    "RECEIVER_PORT",
    "namespace_object",
    "workload_objects",
]

NAME = "fluxd"
NAMESPACE = "flux-system"
VERSION = "0.1.0"
IMAGE = f"ghcr.io/fluxd/fluxd:{VERSION}"
METRICS_PORT = 8080
ARTIFACT_PORT = 9090
#: Flux's notification-controller receiver port, behind the ``webhook-receiver`` Service.
RECEIVER_PORT = 9292

LABELS = {
    "app.kubernetes.io/instance": NAMESPACE,
    "app.kubernetes.io/name": NAME,
    "app.kubernetes.io/part-of": "fluxd",
    "app.kubernetes.io/version": VERSION,
}
SELECTOR = {"app.kubernetes.io/name": NAME}


def _meta(name: str, *, namespaced: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": dict(LABELS), "name": name}
    if namespaced:
        meta["namespace"] = NAMESPACE
    return meta


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


def _container() -> dict[str, Any]:
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
        ],
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": probe,
        "name": NAME,
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


def namespace_object() -> dict[str, Any]:
    """The namespace, applied first (before the CRDs)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "labels": {**LABELS, "pod-security.kubernetes.io/warn": "restricted"},
            "name": NAMESPACE,
        },
    }


def workload_objects() -> list[dict[str, Any]]:
    """RBAC, Deployment and Service, in apply order (after the CRDs)."""
    service_account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME)}
    subject = [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(NAME, namespaced=False),
        "rules": cluster_role_rules(),
    }
    role_binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(NAME, namespaced=False),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
        "subjects": subject,
    }
    admin_binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(f"{NAME}-cluster-admin", namespaced=False),
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
        "metadata": _meta(NAME),
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
                    "labels": {**SELECTOR, "app.kubernetes.io/part-of": "fluxd"},
                },
                "spec": {
                    "containers": [_container()],
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
        "metadata": _meta(NAME),
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
        "metadata": _meta("webhook-receiver"),
        "spec": {
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http-webhook"}
            ],
            "selector": dict(SELECTOR),
            "type": "ClusterIP",
        },
    }
    return [
        service_account,
        role,
        role_binding,
        admin_binding,
        deployment,
        service,
        receiver_service,
    ]
