"""kstatus on plain dicts: object shapes as the API server returns them, and the wait loop.

The shapes are trimmed from real objects (``kubectl get -o yaml`` on a live cluster): only
the fields kstatus reads are kept, with the values the controllers write.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fluxd.api import CustomHealthCheck
from fluxd.apply.health import (
    HealthCheckError,
    HealthRef,
    ObjectStatus,
    Status,
    compute_status,
    custom_rules,
    expression_rule,
    wait_for_health,
)
from fluxd.cel import compile_predicate
from fluxd.kube.client import ApiError
from fluxd.kube.resources import Resource

DEPLOYMENTS = Resource("apps", "v1", "deployments")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)


def deployment(
    *,
    generation: int = 2,
    spec_replicas: int | None = 2,
    status: dict[str, Any] | None = None,
    progress_deadline: int | None = 600,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}}}
    if spec_replicas is not None:
        spec["replicas"] = spec_replicas
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "generation": generation},
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return obj


ROLLED_OUT = {
    "availableReplicas": 2,
    "conditions": [
        {
            "type": "Available",
            "status": "True",
            "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability.",
        },
        {
            "type": "Progressing",
            "status": "True",
            "reason": "NewReplicaSetAvailable",
            "message": 'ReplicaSet "web-7c5ddbdf54" has successfully progressed.',
        },
    ],
    "observedGeneration": 2,
    "readyReplicas": 2,
    "replicas": 2,
    "updatedReplicas": 2,
}


def with_changes(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def check(obj: dict[str, Any], status: str, message: str) -> None:
    found = compute_status(obj)
    assert (found.status, found.message) == (status, message)


# -- Deployment ---------------------------------------------------------------------------


def test_deployment_rolled_out_is_current() -> None:
    check(deployment(status=ROLLED_OUT), "Current", "Deployment is available. Replicas: 2")


def test_deployment_spec_not_observed_yet() -> None:
    check(
        deployment(generation=3, status=ROLLED_OUT),
        "InProgress",
        "Deployment generation is 3, but latest observed generation is 2",
    )


def test_deployment_without_status_waits_for_replicas() -> None:
    # Just created: the controller has not written anything; spec.replicas defaults to 1.
    check(deployment(generation=1, spec_replicas=None), "InProgress", "Replicas: 0/1")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"replicas": 1, "updatedReplicas": 1}, "Replicas: 1/2"),
        ({"updatedReplicas": 1}, "Updated: 1/2"),
        # A rolling update: the new ReplicaSet is up, one old pod is still terminating.
        ({"replicas": 3}, "Pending termination: 1"),
        ({"availableReplicas": 1, "readyReplicas": 1}, "Available: 1/2"),
        ({"readyReplicas": 1}, "Ready: 1/2"),
    ],
)
def test_deployment_rollout_counters(changes: dict[str, Any], message: str) -> None:
    check(deployment(status=with_changes(ROLLED_OUT, **changes)), "InProgress", message)


def test_deployment_progress_deadline_exceeded_is_failed() -> None:
    status = with_changes(
        ROLLED_OUT,
        availableReplicas=1,
        readyReplicas=1,
        conditions=[
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "web-5d8f" has timed out progressing.',
            },
        ],
    )
    check(deployment(status=status), "Failed", "Progress deadline exceeded")


def test_deployment_still_progressing_and_unavailable() -> None:
    status = with_changes(
        ROLLED_OUT,
        conditions=[
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
        ],
    )
    check(deployment(status=status), "InProgress", "ReplicaSet not Available")


def test_deployment_without_progress_deadline_needs_only_available() -> None:
    status = with_changes(
        ROLLED_OUT, conditions=[{"type": "Available", "status": "False", "reason": "x"}]
    )
    check(
        deployment(status=status, progress_deadline=None), "InProgress", "Deployment not Available"
    )


def test_deployment_scaled_to_zero_is_current() -> None:
    status = {"observedGeneration": 2, "conditions": ROLLED_OUT["conditions"]}
    check(
        deployment(spec_replicas=0, status=status),
        "Current",
        "Deployment is available. Replicas: 0",
    )


def test_deployment_being_deleted_is_terminating() -> None:
    obj = deployment(status=ROLLED_OUT)
    obj["metadata"]["deletionTimestamp"] = "2024-05-01T10:00:00Z"
    check(obj, "Terminating", "Resource scheduled for deletion")


# -- StatefulSet, DaemonSet, ReplicaSet ---------------------------------------------------


def statefulset(spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default", "generation": 1},
        "spec": {"replicas": 3, **spec},
        "status": {"observedGeneration": 1, **status},
    }


STS_READY = {
    "availableReplicas": 3,
    "collisionCount": 0,
    "currentReplicas": 3,
    "currentRevision": "db-6b8d9c7f5",
    "readyReplicas": 3,
    "replicas": 3,
    "updateRevision": "db-6b8d9c7f5",
    "updatedReplicas": 3,
}


def test_statefulset_ready() -> None:
    check(statefulset({}, STS_READY), "Current", "All replicas scheduled as expected. Replicas: 3")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"replicas": 2}, "Replicas: 2/3"),
        ({"readyReplicas": 2}, "Ready: 2/3"),
        ({"replicas": 4}, "Pending termination: 1"),
        ({"currentReplicas": 1}, "current: 1/3"),
        ({"updateRevision": "db-77c4f9d8b"}, "Waiting for updated revision to match current"),
    ],
)
def test_statefulset_in_progress(changes: dict[str, Any], message: str) -> None:
    check(statefulset({}, with_changes(STS_READY, **changes)), "InProgress", message)


def test_statefulset_partitioned_rollout() -> None:
    spec = {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}
    check(
        statefulset(spec, with_changes(STS_READY, updatedReplicas=0)), "InProgress", "updated: 0/1"
    )
    check(
        statefulset(spec, with_changes(STS_READY, updatedReplicas=1)),
        "Current",
        "Partition rollout complete. updated: 1",
    )


def test_statefulset_on_delete_is_user_managed() -> None:
    spec = {"updateStrategy": {"type": "OnDelete"}}
    check(
        statefulset(spec, {"replicas": 0}),
        "Current",
        "StatefulSet is using the ondelete update strategy",
    )


def daemonset(status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "kube-system", "generation": 1},
        "spec": {},
    }
    if status is not None:
        obj["status"] = status
    return obj


DS_READY = {
    "currentNumberScheduled": 1,
    "desiredNumberScheduled": 1,
    "numberAvailable": 1,
    "numberMisscheduled": 0,
    "numberReady": 1,
    "observedGeneration": 1,
    "updatedNumberScheduled": 1,
}


def test_daemonset() -> None:
    check(daemonset(DS_READY), "Current", "All replicas scheduled as expected. Replicas: 1")
    # Unlike the generic rule, a DaemonSet must have been observed at least once.
    check(daemonset(None), "InProgress", "DaemonSet status.observedGeneration not found")
    check(
        daemonset({"observedGeneration": 1}),
        "InProgress",
        "Missing .status.desiredNumberScheduled",
    )
    check(daemonset(with_changes(DS_READY, numberReady=0)), "InProgress", "Ready: 0/1")
    check(daemonset(with_changes(DS_READY, updatedNumberScheduled=0)), "InProgress", "Updated: 0/1")


def replicaset(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web-7c5ddbdf54", "namespace": "default", "generation": 1},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 1, **status},
    }


def test_replicaset() -> None:
    ready = {"availableReplicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2, "replicas": 2}
    check(replicaset(ready), "Current", "ReplicaSet is available. Replicas: 2")
    check(replicaset({**ready, "availableReplicas": 1}), "InProgress", "Available: 1/2")
    quota = {
        **ready,
        "conditions": [
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreate",
                "message": 'pods "web-7c5ddbdf54-x" is forbidden: exceeded quota',
            }
        ],
    }
    check(replicaset(quota), "InProgress", "Replica Failure condition. Check Pods")


# -- Pod ----------------------------------------------------------------------------------


def pod(status: dict[str, Any], *, age: timedelta = timedelta(minutes=5)) -> dict[str, Any]:
    created = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": created},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        "status": status,
    }


RUNNING_READY = {
    "phase": "Running",
    "conditions": [
        {"type": "Initialized", "status": "True"},
        {"type": "Ready", "status": "True"},
        {"type": "ContainersReady", "status": "True"},
        {"type": "PodScheduled", "status": "True"},
    ],
    "containerStatuses": [{"name": "web", "ready": True, "state": {"running": {}}}],
}

UNSCHEDULABLE = {
    "phase": "Pending",
    "conditions": [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient cpu.",
        }
    ],
    "qosClass": "Burstable",
}


def test_pod_phases() -> None:
    check(pod(RUNNING_READY), "Current", "Pod is Ready")
    check(pod({"phase": "Succeeded"}), "Current", "Pod has completed successfully")
    check(pod({"phase": "Failed"}), "Current", "Pod has completed, but not successfully")
    check(pod({"phase": "Pending"}), "InProgress", "Pod is in the Pending phase")
    check(pod({}), "InProgress", "Pod phase not available")
    assert compute_status(pod({"phase": "Exploded"})).status == "Unknown"


def test_pod_running_not_ready_and_crash_looping() -> None:
    not_ready: dict[str, Any] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [
            {"name": "init-db", "state": {"running": {}}},
            {"name": "web", "state": {"waiting": {"reason": "ContainerCreating"}}},
        ],
    }
    check(pod(not_ready), "InProgress", "Pod is running but is not Ready")
    not_ready["containerStatuses"][1]["state"] = {
        "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting"}
    }
    check(pod(not_ready), "Failed", "Containers in CrashLoop state: web")


def test_unschedulable_pod_gets_a_grace_window() -> None:
    check(pod(UNSCHEDULABLE, age=timedelta(seconds=2)), "InProgress", "Pod has not been scheduled")
    check(pod(UNSCHEDULABLE, age=timedelta(minutes=1)), "Failed", "Pod could not be scheduled")


# -- Job, CronJob -------------------------------------------------------------------------


def job(status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "default", "generation": 1},
        "spec": {"backoffLimit": 0, **spec},
        "status": status,
    }


def test_job_is_current_only_once_complete() -> None:
    running = {"active": 1, "ready": 1, "startTime": "2024-05-01T10:00:00Z"}
    check(job(running), "InProgress", "Job in progress")
    check(job({}), "InProgress", "Job in progress")
    complete = {
        "completionTime": "2024-05-01T10:00:02Z",
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached"},
        ],
        "succeeded": 3,
        "startTime": "2024-05-01T10:00:00Z",
    }
    check(job(complete, completions=3, parallelism=1), "Current", "Job Completed. succeeded: 3/3")


def test_job_failed() -> None:
    failed = {
        "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            },
        ],
        "failed": 1,
        "startTime": "2024-05-01T10:00:00Z",
    }
    check(job(failed), "Failed", "Job Failed. failed: 1/1")


def test_cronjob_configmap_secret_are_always_ready() -> None:
    for api_version, kind in (("batch/v1", "CronJob"), ("v1", "ConfigMap"), ("v1", "Secret")):
        obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
        check(obj, "Current", "Resource is always ready")


# -- Service, PVC, CRD, Namespace ---------------------------------------------------------


def test_service() -> None:
    lb: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {}},
    }
    check(lb, "InProgress", "ClusterIP not set. Service type: LoadBalancer")
    lb["spec"]["clusterIP"] = "10.96.12.7"
    check(lb, "Current", "Service is ready")
    plain = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {}}
    check(plain, "Current", "Service is ready")


def test_pvc() -> None:
    claim: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "default"},
        "status": {"phase": "Pending"},
    }
    check(claim, "InProgress", "PVC is not Bound. phase: Pending")
    claim["status"] = {"phase": "Bound", "accessModes": ["ReadWriteOnce"]}
    check(claim, "Current", "PVC is Bound")


def crd(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "generation": 1},
        "status": {"conditions": conditions},
    }


def test_crd() -> None:
    names = {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"}
    check(crd([]), "InProgress", "Install in progress")
    installing = {"type": "Established", "status": "False", "reason": "Installing"}
    check(crd([names, installing]), "InProgress", "Install in progress")
    established = {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}
    check(crd([names, established]), "Current", "CRD is established")
    conflict = {
        "type": "NamesAccepted",
        "status": "False",
        "reason": "KindConflict",
        "message": '"Widget" is already in use',
    }
    check(crd([conflict]), "Failed", '"Widget" is already in use')


def test_namespace() -> None:
    ns: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "apps"},
        "status": {"phase": "Active"},
    }
    check(ns, "Current", "Resource is current")
    ns["metadata"]["deletionTimestamp"] = "2024-05-01T10:00:00Z"
    ns["status"]["phase"] = "Terminating"
    check(ns, "Terminating", "Resource scheduled for deletion")


# -- generic rules, Flux kinds ------------------------------------------------------------


def custom(status: dict[str, Any] | None, *, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default", "generation": generation},
        "spec": {"size": 1},
    }
    if status is not None:
        obj["status"] = status
    return obj


def test_custom_resource_without_status_is_current() -> None:
    check(custom(None), "Current", "Resource is current")
    check(custom({"phase": "Whatever"}), "Current", "Resource is current")


def test_reconciling_and_stalled_conditions() -> None:
    reconciling = {
        "conditions": [
            {"type": "Ready", "status": "Unknown", "reason": "Progressing"},
            {"type": "Reconciling", "status": "True", "message": "building artifact"},
        ]
    }
    check(custom(reconciling), "InProgress", "building artifact")
    stalled = {
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "InvalidURL"},
            {"type": "Stalled", "status": "True", "message": "invalid URL scheme"},
        ]
    }
    check(custom(stalled), "Failed", "invalid URL scheme")
    # The first abnormal condition in the list decides, as kstatus reads them.
    both = {"conditions": [stalled["conditions"][1], reconciling["conditions"][1]]}
    check(custom(both), "Failed", "invalid URL scheme")
    gone = {"conditions": [{"type": "Stalled", "status": "False"}]}
    check(custom(gone), "Current", "Resource is current")


def test_ready_condition_on_custom_resources() -> None:
    waiting = {"conditions": [{"type": "Ready", "status": "False", "message": "DB not up"}]}
    check(custom(waiting), "InProgress", "DB not up")
    unknown = {"conditions": [{"type": "Ready", "status": "Unknown"}]}
    check(custom(unknown), "InProgress", "Ready condition is Unknown")
    ready = {"conditions": [{"type": "Ready", "status": "True", "message": "all good"}]}
    check(custom(ready), "Current", "all good")
    stale = custom({**ready, "observedGeneration": 1}, generation=2)
    check(stale, "InProgress", "Widget generation is 2, but latest observed generation is 1")


GIT_REPOSITORY: dict[str, Any] = {
    "apiVersion": "source.toolkit.fluxcd.io/v1",
    "kind": "GitRepository",
    "metadata": {"name": "podinfo", "namespace": "flux-system", "generation": 1},
    "spec": {"interval": "1m", "url": "https://github.com/stefanprodan/podinfo"},
    "status": {
        "artifact": {"revision": "master@sha1:8a1b2c3d4e5f60718293a4b5c6d7e8f901234567"},
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Succeeded",
                "message": "stored artifact for revision 'master@sha1:8a1b2c3d'",
                "observedGeneration": 1,
            },
            {"type": "ArtifactInStorage", "status": "True", "reason": "Succeeded"},
        ],
        "observedGeneration": 1,
    },
}


def test_flux_kinds() -> None:
    check(GIT_REPOSITORY, "Current", "stored artifact for revision 'master@sha1:8a1b2c3d'")
    fresh = {**GIT_REPOSITORY, "status": {}}
    check(fresh, "InProgress", "GitRepository status.observedGeneration not found")
    retrying = {
        **GIT_REPOSITORY,
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "GitOperationFailed",
                    "message": "failed to checkout and determine revision: unable to clone",
                }
            ],
        },
    }
    check(
        retrying,
        "InProgress",
        "failed to checkout and determine revision: unable to clone",
    )


def test_malformed_fields_fall_back_to_defaults() -> None:
    # kstatus reads mistyped fields as absent rather than failing.
    obj = deployment(status={"replicas": "two", "conditions": "none", "observedGeneration": 2})
    check(obj, "InProgress", "Replicas: 0/2")
    check({"kind": "Widget"}, "Current", "Resource is current")


def test_status_compares_as_string() -> None:
    current: str = Status.CURRENT
    assert current == "Current"
    assert f"{ObjectStatus(Status.FAILED, 'x').status}" == "Failed"


# -- healthCheckExprs -----------------------------------------------------------------------


def test_expression_rule_order_and_fallbacks() -> None:
    def has_phase(phase: str) -> Any:
        return lambda obj: obj.get("status", {}).get("phase") == phase

    rule = expression_rule(
        current=has_phase("Ready"), in_progress=has_phase("Syncing"), failed=has_phase("Error")
    )
    for phase, status, message in (
        ("Ready", "Current", "current expression is true"),
        ("Syncing", "InProgress", "inProgress expression is true"),
        ("Error", "Failed", "failed expression is true"),
        ("Other", "InProgress", "no health check expression is true yet"),
    ):
        found = rule(custom({"phase": phase}))
        assert (found.status, found.message) == (status, message)
    # The generation check comes first, as in Flux.
    stale = rule(custom({"phase": "Ready", "observedGeneration": 1}, generation=2))
    assert stale.status == "InProgress"

    def broken(obj: Any) -> bool:
        raise KeyError("status")

    unknown = expression_rule(current=broken)(custom(None))
    assert (unknown.status, unknown.message) == ("Unknown", "current expression: 'status'")


def test_custom_rules_replace_kstatus_for_their_kind_in_any_version() -> None:
    checks = [CustomHealthCheck(api_version="example.com/v1beta1", kind="Widget", current="c")]
    rules = custom_rules(checks, compile_expression=lambda _: lambda obj: "status" in obj)
    # The object is example.com/v1: the group matches, the version does not have to.
    waiting = {"conditions": [{"type": "Ready", "status": "False", "message": "DB not up"}]}
    assert compute_status(custom(waiting), rules).status == "Current"
    assert compute_status(custom(None), rules).status == "InProgress"
    # Other kinds keep kstatus' rules.
    assert compute_status(deployment(status=ROLLED_OUT), rules).status == "Current"


def test_a_check_without_kind_covers_its_group_and_a_kind_check_wins() -> None:
    checks = [
        CustomHealthCheck(api_version="example.com/v1", current="any kind"),
        CustomHealthCheck(api_version="example.com/v1", kind="Widget", current="widgets"),
    ]
    verdicts = {"any kind": "Current", "widgets": "Failed"}

    def compile_expression(text: str) -> Any:
        return lambda obj: verdicts[text] == "Current"

    rules = custom_rules(checks, compile_expression=compile_expression)
    gadget = {**custom({"phase": "x"}), "kind": "Gadget"}
    assert compute_status(gadget, rules).message == "current expression is true"
    assert compute_status(custom({"phase": "x"}), rules).status == "InProgress"
    # Another group keeps kstatus' rules.
    assert compute_status(deployment(status=ROLLED_OUT), rules).status == "Current"


def test_two_checks_for_one_kind_are_refused() -> None:
    twice = [CustomHealthCheck(api_version="example.com/v1", kind="Widget", current="c")] * 2
    with pytest.raises(ValueError, match="more than one check for kind Widget"):
        custom_rules(twice, compile_expression=lambda _: lambda obj: True)


SEALED_SECRET_CHECK = CustomHealthCheck(
    api_version="bitnami.com/v1alpha1",
    kind="SealedSecret",
    failed="status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'False')",
    current="status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'True')",
)


def sealed_secret(status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "db", "namespace": "default", "generation": 1},
        "spec": {"encryptedData": {"password": "AgB..."}},
    }
    if status is not None:
        obj["status"] = status
    return obj


def test_cel_expressions_from_the_flux_cheatsheet() -> None:
    rules = custom_rules([SEALED_SECRET_CHECK])
    synced = {"observedGeneration": 1, "conditions": [{"type": "Synced", "status": "True"}]}
    failed = {
        "observedGeneration": 1,
        "conditions": [{"type": "Synced", "status": "False", "message": "no key could decrypt"}],
    }
    assert compute_status(sealed_secret(synced), rules).status == "Current"
    assert compute_status(sealed_secret(failed), rules).status == "Failed"
    # No status yet: the expression names a missing field, so the object is not known yet.
    assert compute_status(sealed_secret(None), rules).status == "Unknown"
    numbers = compile_predicate("has(status.replicas) && status.replicas >= 1.0")
    assert numbers({"status": {"replicas": 2}})
    assert not numbers({"status": {}})


def test_invalid_cel_expression_names_itself() -> None:
    with pytest.raises(ValueError, match=r"invalid CEL expression 'status\.phase =='"):
        compile_predicate("status.phase ==")
    not_boolean = compile_predicate("metadata.name")
    with pytest.raises(TypeError, match="not a boolean"):
        not_boolean({"metadata": {"name": "x"}})


def test_cel_without_its_package_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr("fluxd.cel.importlib.import_module", missing)
    with pytest.raises(ValueError, match="'common-expression-language' package is not installed"):
        compile_predicate("true")


# -- wait_for_health, faked at fluxd's client seam ----------------------------------------


HANG = {"hang": True}
SERVER_ERROR = {"error": 500}


class FakeCluster:
    """Answers ``client.get`` from a script of objects per name; the last one repeats.

    ``None`` answers 404, ``SERVER_ERROR`` a 500, and ``HANG`` never answers.
    """

    def __init__(self) -> None:
        self.script: dict[str, list[dict[str, Any] | None]] = {}
        self.reads: dict[str, int] = {}

    def load(self, script: dict[str, list[dict[str, Any] | None]]) -> None:
        self.script = script
        self.reads = dict.fromkeys(script, 0)

    async def get(
        self,
        api: Any,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        answers = self.script[name]
        found = answers[min(self.reads[name], len(answers) - 1)]
        self.reads[name] += 1
        if found is None:
            if missing_ok:
                return None
            raise ApiError(404, "NotFound", f'"{name}" not found')
        if found is SERVER_ERROR:
            raise ApiError(500, "InternalError", "etcdserver: request timed out")
        if found is HANG:
            await asyncio.Event().wait()
        return found


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fake = FakeCluster()
    monkeypatch.setattr("fluxd.apply.health.client.get", fake.get)
    return fake


def ref(name: str, kind: str = "Deployment", namespace: str | None = "default") -> HealthRef:
    resource = DEPLOYMENTS if kind == "Deployment" else CRDS
    return HealthRef(resource, namespace, name, kind)


async def test_wait_returns_once_everything_is_current(cluster: FakeCluster) -> None:
    rolling = deployment(status=with_changes(ROLLED_OUT, availableReplicas=1, readyReplicas=1))
    cluster.load(
        {
            "web": [None, rolling, deployment(status=ROLLED_OUT)],
            "widgets.example.com": [crd([{"type": "Established", "status": "True"}])],
        }
    )
    targets = [ref("web"), ref("widgets.example.com", "CustomResourceDefinition", None)]
    await wait_for_health(None, targets, timeout=5, poll=0.01)  # type: ignore[arg-type]
    assert cluster.reads["web"] == 3


async def test_wait_times_out_naming_every_straggler(cluster: FakeCluster) -> None:
    rolling = deployment(status=with_changes(ROLLED_OUT, availableReplicas=1, readyReplicas=1))
    cluster.load({"my-app": [rolling], "db": [None], "ok": [deployment(status=ROLLED_OUT)]})
    targets = [ref("my-app"), ref("db", "StatefulSet"), ref("ok")]
    with pytest.raises(HealthCheckError) as caught:
        await wait_for_health(None, targets, timeout=0.1, poll=0.02)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "timeout waiting for: [Deployment/default/my-app status: 'InProgress': Available: 1/2, "
        "StatefulSet/default/db status: 'NotFound': Resource not found]"
    )
    assert not caught.value.failed
    assert [item.ref.name for item in caught.value.pending] == ["my-app", "db"]


async def test_wait_fails_early_on_a_failed_object(cluster: FakeCluster) -> None:
    conflict = {"type": "NamesAccepted", "status": "False", "message": "names conflict"}
    cluster.load({"widgets.example.com": [crd([conflict])]})
    target = ref("widgets.example.com", "CustomResourceDefinition", None)
    with pytest.raises(HealthCheckError) as caught:
        await wait_for_health(None, [target], timeout=60, poll=0.01)  # type: ignore[arg-type]
    assert caught.value.failed
    assert str(caught.value) == (
        "failed early due to stalled resources: "
        "[CustomResourceDefinition/widgets.example.com status: 'Failed': names conflict]"
    )
    assert cluster.reads["widgets.example.com"] == 1


async def test_wait_stops_when_cancelled(cluster: FakeCluster) -> None:
    cluster.load({"web": [None]})
    task = asyncio.create_task(
        wait_for_health(None, [ref("web")], timeout=60, poll=0.01)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    reads = cluster.reads["web"]
    await asyncio.sleep(0.05)
    assert cluster.reads["web"] == reads


async def test_a_failing_read_is_unknown_and_retried(cluster: FakeCluster) -> None:
    cluster.load({"web": [SERVER_ERROR, deployment(status=ROLLED_OUT)]})
    await wait_for_health(None, [ref("web")], timeout=5, poll=0.01)  # type: ignore[arg-type]
    assert cluster.reads["web"] == 2

    cluster.load({"web": [SERVER_ERROR]})
    with pytest.raises(HealthCheckError) as caught:
        await wait_for_health(None, [ref("web")], timeout=0.05, poll=0.01)  # type: ignore[arg-type]
    assert "Deployment/default/web status: 'Unknown': reading it failed: " in str(caught.value)
    assert "etcdserver: request timed out" in str(caught.value)


async def test_a_hung_api_server_does_not_stretch_the_deadline(cluster: FakeCluster) -> None:
    rolling = deployment(status=with_changes(ROLLED_OUT, readyReplicas=1))
    cluster.load({"web": [rolling, HANG]})
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(HealthCheckError) as caught:
        await wait_for_health(None, [ref("web")], timeout=0.2, poll=0.01)  # type: ignore[arg-type]
    assert loop.time() - started < 1.0
    # What the last complete round saw is what gets reported.
    assert str(caught.value) == (
        "timeout waiting for: [Deployment/default/web status: 'InProgress': Ready: 1/2]"
    )


async def test_nothing_to_wait_for() -> None:
    await wait_for_health(None, [], timeout=0)  # type: ignore[arg-type]
