"""Hash suffixes and name references: expectations checked against kubectl kustomize v5.7.1."""

from __future__ import annotations

from typing import Any

import pytest
from ruamel.yaml import YAML

from fluxd.kustomize._fieldspec import FieldSpec
from fluxd.kustomize._model import KustomizeError, Resource
from fluxd.kustomize._nameref import NAME_REFERENCES, apply_hash_suffixes, fix_name_references
from tests.kustomize.oracle import kubectl_binary


def _res(
    kind: str,
    name: str,
    api_version: str = "v1",
    *,
    namespace: str = "",
    renames: tuple[str, ...] = (),
    moved_to: str = "",
    **fields: Any,
) -> Resource:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    resource = Resource(
        obj={"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields},
        origin="test",
    )
    if moved_to:
        resource.obj["metadata"]["namespace"] = moved_to
    for new_name in renames:
        resource.rename(new_name)
    return resource


def _pod_spec(**spec: Any) -> dict[str, Any]:
    return {"template": {"spec": spec}}


# --- hash suffixes --------------------------------------------------------------------------


def test_hash_suffix_renames_only_resources_that_want_it() -> None:
    generated = _res("ConfigMap", "p-cm", renames=(), data={"a": "1", "b": "2"})
    generated.needs_hash_suffix = True
    plain = _res("ConfigMap", "plain", data={"a": "1"})
    apply_hash_suffixes([generated, plain])
    assert generated.name == "p-cm-7gdc49gk6d"
    assert generated.previous_names == ["p-cm"]
    assert plain.name == "plain"
    assert plain.previous_names == []


# --- scalar references in workloads --------------------------------------------------------


def test_pod_template_references_follow_prefix_and_hash() -> None:
    config = _res("ConfigMap", "app-env", renames=("acme-app-env", "acme-app-env-7gdc49gk6d"))
    secret = _res("Secret", "app-secret", renames=("acme-app-secret", "acme-app-secret-25khgmg44c"))
    account = _res("ServiceAccount", "runner", renames=("acme-runner",))
    claim = _res("PersistentVolumeClaim", "data", renames=("acme-data",))
    deployment = _res(
        "Deployment",
        "api",
        "apps/v1",
        renames=("acme-api",),
        spec=_pod_spec(
            serviceAccountName="runner",
            imagePullSecrets=[{"name": "app-secret"}, {"name": "not-generated"}],
            initContainers=[{"name": "i", "envFrom": [{"configMapRef": {"name": "app-env"}}]}],
            containers=[
                {
                    "name": "c",
                    "envFrom": [
                        {"configMapRef": {"name": "app-env"}},
                        {"secretRef": {"name": "app-secret"}},
                        {"configMapRef": {"name": "unknown"}},
                    ],
                    "env": [
                        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "app-env"}}},
                        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "app-secret"}}},
                        {"name": "LITERAL", "value": "app-env"},
                    ],
                }
            ],
            volumes=[
                {"name": "v1", "configMap": {"name": "app-env"}},
                {"name": "v2", "secret": {"secretName": "app-secret"}},
                {"name": "v3", "persistentVolumeClaim": {"claimName": "data"}},
                {
                    "name": "v4",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "app-env"}},
                            {"secret": {"name": "app-secret"}},
                            {"serviceAccountToken": {"path": "t"}},
                        ]
                    },
                },
            ],
        ),
    )
    fix_name_references([config, secret, account, claim, deployment])
    spec = deployment.obj["spec"]["template"]["spec"]
    cm, sec = "acme-app-env-7gdc49gk6d", "acme-app-secret-25khgmg44c"
    assert spec["serviceAccountName"] == "acme-runner"
    assert spec["imagePullSecrets"] == [{"name": sec}, {"name": "not-generated"}]
    assert spec["initContainers"][0]["envFrom"] == [{"configMapRef": {"name": cm}}]
    container = spec["containers"][0]
    assert container["envFrom"] == [
        {"configMapRef": {"name": cm}},
        {"secretRef": {"name": sec}},
        {"configMapRef": {"name": "unknown"}},
    ]
    assert [entry.get("valueFrom") or entry["value"] for entry in container["env"]] == [
        {"configMapKeyRef": {"name": cm}},
        {"secretKeyRef": {"name": sec}},
        "app-env",
    ]
    assert spec["volumes"][0]["configMap"] == {"name": cm}
    assert spec["volumes"][1]["secret"] == {"secretName": sec}
    assert spec["volumes"][2]["persistentVolumeClaim"] == {"claimName": "acme-data"}
    assert spec["volumes"][3]["projected"]["sources"][:2] == [
        {"configMap": {"name": cm}},
        {"secret": {"name": sec}},
    ]


def test_other_referrers_in_the_table() -> None:
    service = _res("Service", "db", renames=("acme-db",))
    stateful = _res(
        "StatefulSet", "db", "apps/v1", renames=("acme-db",), spec={"serviceName": "db"}
    )
    deployment = _res("Deployment", "api", "apps/v1", renames=("acme-api",))
    hpa = _res(
        "HorizontalPodAutoscaler",
        "api",
        "autoscaling/v2",
        spec={"scaleTargetRef": {"kind": "Deployment", "name": "api"}},
    )
    cron = _res(
        "CronJob",
        "nightly",
        "batch/v1",
        spec={"jobTemplate": {"spec": _pod_spec(serviceAccountName="runner")}},
    )
    account = _res("ServiceAccount", "runner", renames=("acme-runner",))
    priority = _res("PriorityClass", "critical", "scheduling.k8s.io/v1", renames=("p-critical",))
    pod = _res("Pod", "debug", spec={"priorityClassName": "critical"})
    fix_name_references([service, stateful, deployment, hpa, cron, account, priority, pod])
    assert stateful.obj["spec"]["serviceName"] == "acme-db"
    assert hpa.obj["spec"]["scaleTargetRef"]["name"] == "acme-api"
    assert (
        cron.obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"]
        == "acme-runner"
    )
    assert pod.obj["spec"]["priorityClassName"] == "p-critical"


def test_only_earlier_names_are_matched() -> None:
    config = _res("ConfigMap", "cfg")  # never renamed: nothing to follow
    pod = _res("Pod", "p", spec={"volumes": [{"name": "v", "configMap": {"name": "cfg"}}]})
    fix_name_references([config, pod])
    assert pod.obj["spec"]["volumes"][0]["configMap"]["name"] == "cfg"


def test_kind_must_match_the_table_row() -> None:
    service = _res("Service", "app-env", renames=("p-app-env",))
    pod = _res(
        "Pod", "p", spec={"containers": [{"envFrom": [{"configMapRef": {"name": "app-env"}}]}]}
    )
    fix_name_references([service, pod])
    assert pod.obj["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] == "app-env"


def test_ingress_backends_tls_and_annotations_but_never_the_ingress_class() -> None:
    service = _res("Service", "frontend", renames=("shop-frontend",))
    tls = _res("Secret", "tls", renames=("shop-tls", "shop-tls-8gkh55dgdg"))
    auth = _res("Secret", "basic-auth", renames=("shop-basic-auth",))
    ingress_class = _res("IngressClass", "nginx", "networking.k8s.io/v1", renames=("shop-nginx",))
    ingress = _res(
        "Ingress",
        "frontend",
        "networking.k8s.io/v1",
        renames=("shop-frontend",),
        spec={
            "ingressClassName": "nginx",
            "defaultBackend": {"service": {"name": "frontend"}},
            "tls": [{"secretName": "tls"}],
            "rules": [
                {"http": {"paths": [{"backend": {"service": {"name": "frontend"}}}]}},
                {"http": {"paths": [{"backend": {"service": {"name": "external"}}}]}},
            ],
        },
    )
    ingress.obj["metadata"]["annotations"] = {
        "nginx.ingress.kubernetes.io/auth-secret": "basic-auth"
    }
    fix_name_references([service, tls, auth, ingress_class, ingress])
    spec = ingress.obj["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["defaultBackend"]["service"]["name"] == "shop-frontend"
    assert spec["tls"] == [{"secretName": "shop-tls-8gkh55dgdg"}]
    assert spec["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "shop-frontend"
    assert spec["rules"][1]["http"]["paths"][0]["backend"]["service"]["name"] == "external"
    annotations = ingress.obj["metadata"]["annotations"]
    assert annotations == {"nginx.ingress.kubernetes.io/auth-secret": "shop-basic-auth"}


# --- namespaces ----------------------------------------------------------------------------


def test_references_resolve_inside_the_referrers_namespace() -> None:
    team_a = _res("ConfigMap", "settings", namespace="a", renames=("settings-aaaaaaaaaa",))
    team_b = _res("ConfigMap", "settings", namespace="b", renames=("settings-bbbbbbbbbb",))
    pods = [
        _res("Pod", "p", namespace=ns, spec={"volumes": [{"configMap": {"name": "settings"}}]})
        for ns in ("a", "b", "c")
    ]
    fix_name_references([team_a, team_b, *pods])
    names = [pod.obj["spec"]["volumes"][0]["configMap"]["name"] for pod in pods]
    assert names == ["settings-aaaaaaaaaa", "settings-bbbbbbbbbb", "settings"]


def test_empty_namespace_is_default() -> None:
    config = _res("ConfigMap", "c", namespace="default", renames=("p-c",))
    pod = _res("Pod", "p", spec={"volumes": [{"configMap": {"name": "c"}}]})
    fix_name_references([config, pod])
    assert pod.obj["spec"]["volumes"][0]["configMap"]["name"] == "p-c"


def test_cluster_scoped_referrer_sees_every_namespace() -> None:
    secret = _res("Secret", "s", namespace="x", renames=("p-s",))
    role = _res(
        "ClusterRole",
        "r",
        "rbac.authorization.k8s.io/v1",
        rules=[{"resourceNames": ["s", "other"]}],
    )
    fix_name_references([secret, role])
    assert role.obj["rules"][0]["resourceNames"] == ["p-s", "other"]


# --- RBAC ----------------------------------------------------------------------------------


def test_role_ref_kind_decides_between_role_and_cluster_role() -> None:
    role = _res("Role", "edit", "rbac.authorization.k8s.io/v1", renames=("a-edit",))
    cluster_role = _res("ClusterRole", "edit", "rbac.authorization.k8s.io/v1", renames=("b-edit",))
    bindings = [
        _res(
            "RoleBinding",
            f"rb-{kind}",
            "rbac.authorization.k8s.io/v1",
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": "edit"},
        )
        for kind in ("Role", "ClusterRole")
    ]
    fix_name_references([role, cluster_role, *bindings])
    assert [b.obj["roleRef"]["name"] for b in bindings] == ["a-edit", "b-edit"]


def test_subjects_get_name_and_namespace_users_included() -> None:
    account = _res("ServiceAccount", "deployer", renames=("t-deployer",), moved_to="team")
    binding = _res(
        "RoleBinding",
        "rb",
        "rbac.authorization.k8s.io/v1",
        namespace="team",
        subjects=[
            {"kind": "ServiceAccount", "name": "deployer"},
            {"kind": "ServiceAccount", "name": "deployer", "namespace": "other-team"},
            # kustomize does not look at the subject's kind
            {"kind": "User", "name": "deployer"},
            {"kind": "Group", "name": "admins"},
        ],
    )
    fix_name_references([account, binding])
    assert binding.obj["subjects"] == [
        {"kind": "ServiceAccount", "name": "t-deployer", "namespace": "team"},
        {"kind": "ServiceAccount", "name": "deployer", "namespace": "other-team"},
        {"kind": "User", "name": "t-deployer", "namespace": "team"},
        {"kind": "Group", "name": "admins"},
    ]


def test_role_binding_reaches_service_accounts_of_its_subjects_namespaces() -> None:
    account = _res("ServiceAccount", "sa", namespace="other", renames=("p-sa",))
    binding = _res(
        "RoleBinding",
        "rb",
        "rbac.authorization.k8s.io/v1",
        namespace="team",
        subjects=[{"kind": "ServiceAccount", "name": "sa", "namespace": "other"}],
    )
    fix_name_references([account, binding])
    assert binding.obj["subjects"] == [
        {"kind": "ServiceAccount", "name": "p-sa", "namespace": "other"}
    ]


# --- map references ------------------------------------------------------------------------


def test_webhook_service_gets_the_namespace_even_without_a_rename() -> None:
    service = _res("Service", "hooks", moved_to="platform")
    webhook = _res(
        "ValidatingWebhookConfiguration",
        "hooks",
        "admissionregistration.k8s.io/v1",
        webhooks=[
            {"clientConfig": {"service": {"name": "hooks"}}},
            {"clientConfig": {"service": {"name": "hooks", "namespace": "default"}}},
            {"clientConfig": {"service": {"name": "hooks", "namespace": "other"}}},
        ],
    )
    fix_name_references([service, webhook])
    assert [w["clientConfig"]["service"] for w in webhook.obj["webhooks"]] == [
        {"name": "hooks", "namespace": "platform"},
        {"name": "hooks", "namespace": "platform"},
        {"name": "hooks", "namespace": "other"},
    ]


def test_map_reference_without_a_name_is_an_error() -> None:
    service = _res("Service", "hooks", renames=("p-hooks",))
    webhook = _res(
        "MutatingWebhookConfiguration",
        "m",
        "admissionregistration.k8s.io/v1",
        webhooks=[{"clientConfig": {"service": {"namespace": "x"}}}],
    )
    with pytest.raises(KustomizeError) as caught:
        fix_name_references([service, webhook])
    assert "has no `name` field" in str(caught.value)


# --- several candidates --------------------------------------------------------------------


def test_same_prefixes_and_suffixes_break_ties() -> None:
    """Two overlays (blue-, green-) of one base, combined under nameSuffix -x."""
    resources = []
    for color in ("blue", "green"):
        config = _res(
            "ConfigMap",
            "config",
            renames=(f"{color}-config", f"{color}-config-x", f"{color}-config-x-0123456789"),
        )
        config.needs_hash_suffix = True
        app = _res(
            "StatefulSet",
            "app",
            "apps/v1",
            renames=(f"{color}-app", f"{color}-app-x"),
            spec=_pod_spec(containers=[{"envFrom": [{"configMapRef": {"name": "config"}}]}]),
        )
        resources += [config, app]
    fix_name_references(resources)
    refs = [
        r.obj["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"]
        for r in resources
        if r.obj["kind"] == "StatefulSet"
    ]
    assert refs == ["blue-config-x-0123456789", "green-config-x-0123456789"]


def _cluster_role_naming(name: str) -> Resource:
    return _res(
        "ClusterRole",
        "r",
        "rbac.authorization.k8s.io/v1",
        renames=("z-r",),
        rules=[{"resourceNames": [name]}],
    )


def test_candidates_with_one_final_name_are_not_ambiguous() -> None:
    first = _res("ConfigMap", "c", namespace="a", renames=("p-c", "z-p-c"))
    second = _res("ConfigMap", "c", namespace="b", renames=("p-c", "z-p-c"))
    role = _cluster_role_naming("c")
    fix_name_references([first, second, role])
    assert role.obj["rules"][0]["resourceNames"] == ["z-p-c"]


def test_candidates_without_the_referrers_affixes_are_dropped() -> None:
    first = _res("ConfigMap", "c", namespace="a", renames=("p-c",))
    second = _res("ConfigMap", "c", namespace="b", renames=("q-c",))
    role = _cluster_role_naming("c")
    fix_name_references([first, second, role])
    assert role.obj["rules"][0]["resourceNames"] == ["c"]


def test_ambiguous_reference_is_an_error() -> None:
    first = _res("ConfigMap", "c", namespace="a", renames=("p-c", "z-p-c"))
    second = _res("ConfigMap", "c", namespace="b", renames=("q-c", "z-q-c"))
    role = _cluster_role_naming("c")
    with pytest.raises(KustomizeError) as caught:
        fix_name_references([first, second, role])
    message = str(caught.value)
    assert "refers to 'c' at rules/resourceNames" in message
    assert "ConfigMap a/z-p-c" in message
    assert "ConfigMap b/z-q-c" in message


def test_custom_table_rows_are_honoured() -> None:
    secret = _res("Secret", "s", renames=("p-s",))
    custom = _res("Widget", "w", "example.com/v1", spec={"secretName": "s"})
    fix_name_references([secret, custom])
    assert custom.obj["spec"]["secretName"] == "s"
    from fluxd.kustomize._nameref import NameReference

    row = NameReference(
        FieldSpec(path="metadata/name", kind="Secret"),
        (FieldSpec(path="spec/secretName", kind="Widget"),),
    )
    fix_name_references([secret, custom], (*NAME_REFERENCES, row))
    assert custom.obj["spec"]["secretName"] == "p-s"


# --- the table itself ----------------------------------------------------------------------


def _embedded_table() -> list[dict[str, Any]]:
    """The nameReference YAML compiled into the oracle's kubectl binary."""
    binary = kubectl_binary().read_bytes()
    start = binary.find(b"\nnameReference:\n")
    assert start >= 0
    end = binary.index(b"\x00", start)
    document = YAML(typ="safe").load(binary[start:end].decode("utf-8"))
    table: list[dict[str, Any]] = document["nameReference"]
    return table


def _key(spec: FieldSpec) -> tuple[str, str, str, str]:
    return (spec.path, spec.kind, spec.group, spec.version)


def test_table_is_kustomizes_own() -> None:
    expected = {
        (row["kind"], row.get("group", ""), row.get("version", "")): {
            (fs["path"], fs.get("kind", ""), fs.get("group", ""), fs.get("version", ""))
            for fs in row["fieldSpecs"]
        }
        for row in _embedded_table()
    }
    ours = {
        (ref.target.kind, ref.target.group, ref.target.version): {_key(s) for s in ref.referrers}
        for ref in NAME_REFERENCES
    }
    assert ours == expected
