"""Kustomization end to end: a git source, fluxd, and what lands in the real cluster.

The scenarios are the ones users write about (``../shared/seeds``): a Deployment in git
goes from 2 to 3 replicas after a push; a ``kubectl scale`` is reverted; removing a file
prunes its object; broken YAML leaves what runs untouched and says which file is broken.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxd.api import KUSTOMIZATION
from fluxd.dev.demo import seed_deployment
from fluxd.kube import client
from fluxd.kube.resources import Resource
from fluxd.runtime import conditions
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd
from tests.integration.kustomizations import (
    CONFIGMAPS,
    DEPLOYMENTS,
    applied,
    configmap,
    kustomization,
    live,
    push_and_refresh,
    reconcile_now,
    setup_source,
)

pytestmark = pytest.mark.integration


async def test_seed_deployment_follows_git_and_drift_is_reverted(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit({"apps/my-app/my-app.yaml": seed_deployment(ns, 2)})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION,
        "my-apps",
        kustomization(
            "./apps/my-app",
            wait=True,
        ),
    )
    obj = await fluxd.wait_for(KUSTOMIZATION, "my-apps", lambda o: applied(o, sha), "applied")
    ready = conditions.get(obj["status"], "Ready")
    assert ready is not None
    assert ready["reason"] == "ReconciliationSucceeded"
    assert ready["message"] == f"Applied revision: master@sha1:{sha}"
    assert obj["status"]["inventory"]["entries"] == [
        {"id": f"{ns}_my-app_apps_Deployment", "v": "v1"}
    ]
    running = await live(fluxd, DEPLOYMENTS, "my-app")
    assert running is not None
    assert running["spec"]["replicas"] == 2
    assert running["status"].get("readyReplicas") == 2, "wait: true returned before rollout"
    assert running["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "my-apps"
    finished = await fluxd.wait_event(
        "my-apps",
        lambda e: e["reason"] == "ReconciliationSucceeded",
        "Flux's closing event",
    )
    assert re.fullmatch(
        r"Reconciliation finished in [0-9.]+m?s, next run in 1h0m0s", finished["message"]
    )
    assert finished["source"]["component"] == "kustomize-controller"
    assert finished["metadata"]["annotations"] == {
        "kustomize.toolkit.fluxcd.io/revision": f"master@sha1:{sha}",
        "kustomize.toolkit.fluxcd.io/commit_status": "update",
    }

    new_sha = await push_and_refresh(
        fluxd, git_remote, {"apps/my-app/my-app.yaml": seed_deployment(ns, 3)}
    )
    await fluxd.wait_for(KUSTOMIZATION, "my-apps", lambda o: applied(o, new_sha), "push applied")
    scaled = await live(fluxd, DEPLOYMENTS, "my-app")
    assert scaled is not None
    assert scaled["spec"]["replicas"] == 3

    # kubectl scale deployment my-app --replicas=5, then the next reconcile reverts it.
    await client.patch(fluxd.api, DEPLOYMENTS, ns, "my-app", {"spec": {"replicas": 5}})
    await reconcile_now(fluxd, "my-apps", "drift")
    reverted = await live(fluxd, DEPLOYMENTS, "my-app")
    assert reverted is not None
    assert reverted["spec"]["replicas"] == 3


async def test_drift_ignore_rules_leave_fields_to_other_actors(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit(
        {
            "apps/my-app.yaml": seed_deployment(ns, 2),
            "apps/settings.yaml": configmap(ns, "settings"),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    ignore_replicas = {"paths": ["/spec/replicas"], "target": {"kind": "Deployment"}}
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("apps", ignore=[ignore_replicas]))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    created = await live(fluxd, DEPLOYMENTS, "my-app")
    assert created is not None
    assert created["spec"]["replicas"] == 2, "a new object is created as the source says"

    # An autoscaler scales the Deployment; someone edits the ConfigMap by hand.
    await client.patch(fluxd.api, DEPLOYMENTS, ns, "my-app", {"spec": {"replicas": 5}})
    await client.patch(fluxd.api, CONFIGMAPS, ns, "settings", {"data": {"value": "edited"}})
    await reconcile_now(fluxd, "apps", "drift")
    scaled = await live(fluxd, DEPLOYMENTS, "my-app")
    edited = await live(fluxd, CONFIGMAPS, "settings")
    assert scaled is not None
    assert edited is not None
    assert scaled["spec"]["replicas"] == 5, "an ignored field was corrected"
    assert edited["data"]["value"] == "1", "drift outside the ignored paths was left"

    new_sha = await push_and_refresh(
        fluxd,
        git_remote,
        {"apps/my-app.yaml": seed_deployment(ns, 3).replace("nginx:1.25.0", "nginx:1.26.0")},
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, new_sha), "push applied")
    updated = await live(fluxd, DEPLOYMENTS, "my-app")
    assert updated is not None
    assert updated["spec"]["replicas"] == 5, "an ignored field was applied from git"
    assert updated["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26.0"

    bad_rule = {"paths": ["spec/replicas"]}
    await fluxd.create(KUSTOMIZATION, "bad", kustomization("apps", ignore=[bad_rule]))
    failed = await fluxd.wait_not_ready(KUSTOMIZATION, "bad", "ReconciliationFailed")
    ready = conditions.get(failed["status"], "Ready")
    assert ready is not None
    assert "ignore[0]" in ready["message"]
    assert "'spec/replicas' must start with '/'" in ready["message"]


async def test_a_long_reconcile_shows_progress_until_it_ends(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit({"deploy/a.yaml": configmap(ns, "a")})
    await setup_source(fluxd, git_remote, git_http)
    late = {"apiVersion": "v1", "kind": "ConfigMap", "name": "late", "namespace": ns}
    await fluxd.create(
        KUSTOMIZATION, "apps", kustomization("deploy", healthChecks=[late], timeout="1m")
    )

    def in_progress(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        ready = conditions.get(status, "Ready")
        reconciling = conditions.get(status, "Reconciling")
        return (
            ready is not None
            and (ready["status"], ready["message"]) == ("Unknown", "reconciliation in progress")
            and reconciling is not None
            and reconciling["status"] == "True"
        )

    await fluxd.wait_for(KUSTOMIZATION, "apps", in_progress, "Reconciling while health waits")
    assert await live(fluxd, CONFIGMAPS, "a") is not None

    await client.create(
        fluxd.api, CONFIGMAPS, {"metadata": {"name": "late", "namespace": ns}, "data": {}}
    )
    done = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    assert conditions.get(done["status"], "Reconciling") is None


async def test_removed_file_is_pruned_and_prune_disabled_is_kept(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    keep = configmap(ns, "keep").replace(
        "metadata:\n",
        "metadata:\n  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled\n",
    )
    sha = git_remote.commit(
        {
            "deploy/a.yaml": configmap(ns, "a"),
            "deploy/b.yaml": configmap(ns, "b"),
            "deploy/keep.yaml": keep,
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization("deploy"),
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    assert await live(fluxd, CONFIGMAPS, "b") is not None

    git_remote.git("rm", "-q", "deploy/b.yaml", "deploy/keep.yaml")
    new_sha = await push_and_refresh(fluxd, git_remote, {"deploy/a.yaml": configmap(ns, "a", "2")})
    obj = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, new_sha), "applied")
    assert await live(fluxd, CONFIGMAPS, "b") is None, "a removed file's object was not pruned"
    assert await live(fluxd, CONFIGMAPS, "keep") is not None, "prune: disabled was deleted"
    ids = [entry["id"] for entry in obj["status"]["inventory"]["entries"]]
    assert ids == [f"{ns}_a__ConfigMap"]
    await fluxd.wait_event(
        "apps", lambda e: f"ConfigMap/{ns}/b deleted" in e["message"], "the prune listed"
    )


async def test_broken_yaml_keeps_what_runs_and_names_the_file(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit(
        {"deploy/a.yaml": configmap(ns, "a"), "deploy/b.yaml": configmap(ns, "b")}
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization("deploy"),
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

    broken = await push_and_refresh(
        fluxd, git_remote, {"deploy/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n"}
    )
    obj = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "BuildFailed")
    ready = conditions.get(obj["status"], "Ready")
    assert ready is not None
    assert "deploy/b.yaml" in ready["message"]
    assert obj["status"]["lastAttemptedRevision"].endswith(broken)
    assert obj["status"]["lastAppliedRevision"].endswith(sha)
    assert await live(fluxd, CONFIGMAPS, "a") is not None
    assert await live(fluxd, CONFIGMAPS, "b") is not None, "a failed build pruned objects"


async def test_depends_on_waits_for_the_dependency_and_wakes_at_once(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit(
        {"infra/a.yaml": configmap(ns, "infra"), "apps/b.yaml": configmap(ns, "app")}
    )
    await setup_source(fluxd, git_remote, git_http)
    source = {"kind": "GitRepository", "name": "source"}
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        {
            "interval": "1h",
            "retryInterval": "1h",
            "sourceRef": source,
            "path": "apps",
            "prune": True,
            "dependsOn": [{"name": "infra"}],
        },
    )
    waiting = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "DependencyNotReady")
    ready = conditions.get(waiting["status"], "Ready")
    assert ready is not None
    assert f"'{ns}/infra'" in ready["message"]
    assert await live(fluxd, CONFIGMAPS, "app") is None

    await fluxd.create(
        KUSTOMIZATION,
        "infra",
        {"interval": "1h", "sourceRef": source, "path": "infra", "prune": True},
    )
    # retryInterval is 1h: only the dependency's wake-up can make this happen in time.
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied after infra")
    assert await live(fluxd, CONFIGMAPS, "app") is not None


async def test_ready_expr_decides_when_a_dependency_is_ready(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit({"apps/b.yaml": configmap(ns, "app")})
    await setup_source(fluxd, git_remote, git_http)
    source = {"kind": "GitRepository", "name": "source"}
    # The dependency never gets Ready (its path is missing): only its labels count.
    await fluxd.create(
        KUSTOMIZATION,
        "infra",
        {"interval": "1h", "sourceRef": source, "path": "nope", "prune": True},
    )
    expression = (
        "has(dep.metadata.labels) && 'tier' in dep.metadata.labels"
        " && dep.metadata.labels.tier == 'base'"
    )

    def depending(name: str, ready_expr: str) -> dict[str, object]:
        dependency = {"name": "infra", "readyExpr": ready_expr}
        return {
            "interval": "1h",
            "sourceRef": source,
            "path": "apps",
            "prune": True,
            "dependsOn": [dependency],
        }

    await fluxd.create(KUSTOMIZATION, "apps", depending("apps", expression))
    waiting = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "DependencyNotReady")
    ready = conditions.get(waiting["status"], "Ready") or {}
    assert ready.get("message") == f"dependency '{ns}/infra' is not ready according to readyExpr"
    await fluxd.patch(KUSTOMIZATION, "infra", {"metadata": {"labels": {"tier": "base"}}})
    await fluxd.patch(
        KUSTOMIZATION,
        "apps",
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}},
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied by readyExpr")

    # An expression naming anything but self and dep does not compile: it stalls.
    await fluxd.create(KUSTOMIZATION, "broken", depending("broken", "other.ready"))
    stalled = await fluxd.wait_not_ready(KUSTOMIZATION, "broken", "InvalidCELExpression")
    assert conditions.get(stalled["status"], "Stalled") is not None


async def test_missing_source_and_invalid_object_fail_with_flux_reasons(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    git_remote.commit(
        {
            "bad/svc.yaml": (
                f"apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\n  namespace: {ns}\n"
                "spec:\n  ports:\n  - port: 99999\n"
            )
        }
    )
    await fluxd.create(
        KUSTOMIZATION,
        "orphan",
        {
            "interval": "1h",
            "sourceRef": {"kind": "GitRepository", "name": "nowhere"},
            "path": ".",
            "prune": True,
        },
    )
    orphan = await fluxd.wait_not_ready(KUSTOMIZATION, "orphan", "ArtifactFailed")
    orphan_ready = conditions.get(orphan["status"], "Ready")
    assert orphan_ready is not None
    assert "nowhere" in orphan_ready["message"]

    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION,
        "invalid",
        kustomization("bad"),
    )
    invalid = await fluxd.wait_not_ready(KUSTOMIZATION, "invalid", "ReconciliationFailed")
    invalid_ready = conditions.get(invalid["status"], "Ready")
    assert invalid_ready is not None
    assert f"Service/{ns}/bad" in invalid_ready["message"]
    assert await live(fluxd, Resource("", "v1", "services"), "bad") is None


SOPS_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sops"


def valid_encrypted_secret() -> str:
    """The sops fixture minus its non-string ``stringData`` entries (there to test type
    restoration; Kubernetes refuses them). Each value authenticates on its own and, as in
    Flux, the file MAC is not checked, so dropping entries keeps the rest decryptable."""
    document = yaml.safe_load((SOPS_FIXTURES / "secret.regex.enc.yaml").read_text())
    for key in ("port", "ratio", "tls", "debug"):
        del document["stringData"][key]
    return str(yaml.safe_dump(document))


async def test_sops_secret_substitution_and_target_namespace(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    settings = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
        "data:\n  greeting: ${GREETING}\n  size: ${SIZE:=small}\n  color: ${COLOR:=blue}\n"
    )
    sha = git_remote.commit(
        {
            "deploy/secret.yaml": valid_encrypted_secret(),
            "deploy/settings.yaml": settings,
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.secret("sops-age", {"identity.agekey": (SOPS_FIXTURES / "age.agekey").read_text()})
    await client.create(
        fluxd.api,
        CONFIGMAPS,
        {"metadata": {"name": "vars", "namespace": ns}, "data": {"SIZE": "large"}},
    )
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization(
            "deploy",
            targetNamespace=ns,
            decryption={"provider": "sops", "secretRef": {"name": "sops-age"}},
            postBuild={
                "substitute": {"GREETING": "hello"},
                "substituteFrom": [
                    {"kind": "ConfigMap", "name": "vars"},
                    {"kind": "Secret", "name": "absent", "optional": True},
                ],
            },
        ),
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    secret = await live(fluxd, Resource("", "v1", "secrets"), "db-credentials")
    assert secret is not None, "the decrypted Secret was not applied in targetNamespace"
    assert secret["data"]["username"] == "YWRtaW4="  # "admin", decrypted
    assert "sops" not in secret
    settings_cm = await live(fluxd, CONFIGMAPS, "settings")
    assert settings_cm is not None
    assert settings_cm["data"] == {"greeting": "hello", "size": "large", "color": "blue"}


async def test_a_new_revision_cancels_a_stale_health_wait(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    unschedulable = seed_deployment(ns, 1).replace(
        "        image: nginx:1.25.0\n",
        "        image: nginx:1.25.0\n        resources:\n          requests:\n"
        "            cpu: '1000'\n",
    )
    git_remote.commit({"deploy/app.yaml": unschedulable})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy", wait=True, timeout="5m"))

    def waiting(obj: dict[str, Any]) -> bool:
        reconciling = conditions.get(obj.get("status") or {}, "Reconciling")
        return reconciling is not None and reconciling["status"] == "True"

    await fluxd.wait_for(KUSTOMIZATION, "apps", waiting, "the health wait in progress")
    fixed = await push_and_refresh(fluxd, git_remote, {"deploy/app.yaml": seed_deployment(ns, 1)})
    # Without the cancel, the stale wait would hold the Kustomization for five minutes.
    obj = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, fixed), "fix applied")
    healthy = conditions.get(obj["status"], "Healthy")
    assert healthy is not None
    assert healthy["status"] == "True"
    await fluxd.wait_event(
        "apps",
        lambda e: e["reason"] == "HealthCheckCanceled" and "new source revision" in e["message"],
        "the stale wait canceled",
    )
