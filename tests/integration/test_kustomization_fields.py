"""The Kustomization fields that shape the build, end to end on the real API server.

Each test sets one field (or a few that belong together) the way the Flux documentation
shows it, and checks what a user sees: the objects in the cluster, the inventory, the
``Ready`` condition. Every assertion fails if fluxd ignored the field.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxd.api import KUSTOMIZATION
from fluxd.kube import client
from fluxd.kube.resources import SECRETS
from fluxd.kustomize import build
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
    reconcile_now,
    setup_source,
    until,
)

pytestmark = pytest.mark.integration

SOPS_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sops"


def deployment(
    namespace: str,
    name: str,
    *,
    images: tuple[str, ...] = ("nginx:1.25.0",),
    labels: dict[str, str] | None = None,
    replicas: str = "1",
    extra_container_fields: str = "",
    pod_fields: str = "",
) -> str:
    """A Deployment manifest; ``extra_container_fields`` and ``pod_fields`` are YAML lines
    (indented for the first container and for the pod spec)."""
    metadata_labels = "".join(f"    {key}: {value}\n" for key, value in (labels or {}).items())
    containers = "".join(
        f"      - name: c{index}\n        image: {image}\n"
        + (extra_container_fields if index == 0 else "")
        for index, image in enumerate(images)
    )
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n"
        f"  namespace: {namespace}\n"
        + (f"  labels:\n{metadata_labels}" if metadata_labels else "")
        + f"spec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: {name}\n"
        f"  template:\n    metadata:\n      labels:\n        app: {name}\n"
        f"    spec:\n      containers:\n{containers}{pod_fields}"
    )


def ready_message(obj: dict[str, Any]) -> str:
    ready = conditions.get(obj["status"], "Ready")
    assert ready is not None
    return str(ready["message"])


def inventory_ids(obj: dict[str, Any]) -> set[str]:
    return {entry["id"] for entry in obj["status"]["inventory"]["entries"]}


async def live_deployment(fluxd: Fluxd, name: str) -> dict[str, Any]:
    found = await live(fluxd, DEPLOYMENTS, name)
    assert found is not None, f"Deployment {name} was not applied"
    return found


async def live_configmap(fluxd: Fluxd, name: str) -> dict[str, Any]:
    found = await live(fluxd, CONFIGMAPS, name)
    assert found is not None, f"ConfigMap {name} was not applied"
    return found


async def test_name_prefix_and_suffix_rename_objects_and_their_references(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    web = deployment(
        ns,
        "web",
        extra_container_fields=(
            "        envFrom:\n        - configMapRef:\n            name: settings\n"
            "        volumeMounts:\n        - name: config\n          mountPath: /config\n"
        ),
        pod_fields=(
            "      volumes:\n      - name: config\n        configMap:\n          name: settings\n"
        ),
    )
    sha = git_remote.commit(
        {"deploy/web.yaml": web, "deploy/settings.yaml": configmap(ns, "settings")}
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION, "apps", kustomization("deploy", namePrefix="shop-", nameSuffix="-v1")
    )
    obj = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

    assert inventory_ids(obj) == {
        f"{ns}_shop-settings-v1__ConfigMap",
        f"{ns}_shop-web-v1_apps_Deployment",
    }
    assert await live(fluxd, DEPLOYMENTS, "web") is None
    assert await live(fluxd, CONFIGMAPS, "settings") is None
    await live_configmap(fluxd, "shop-settings-v1")
    pod = (await live_deployment(fluxd, "shop-web-v1"))["spec"]["template"]["spec"]
    assert pod["containers"][0]["envFrom"] == [{"configMapRef": {"name": "shop-settings-v1"}}]
    assert pod["volumes"][0]["configMap"]["name"] == "shop-settings-v1"


async def test_patches_strategic_merge_and_json6902_by_name_and_label_selector(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    shop = {"app.kubernetes.io/part-of": "shop"}
    sha = git_remote.commit(
        {
            "deploy/web.yaml": deployment(ns, "web", labels=shop),
            "deploy/api.yaml": deployment(ns, "api", labels=shop),
            "deploy/batch.yaml": deployment(
                ns, "batch", labels={"app.kubernetes.io/part-of": "jobs"}
            ),
            "deploy/settings.yaml": configmap(ns, "settings"),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    patches = [
        # Strategic merge, no target: finds its object by kind and name.
        {
            "patch": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
            f"  namespace: {ns}\nspec:\n  replicas: 3\n"
        },
        # JSON 6902 on one object by kind and name.
        {
            "patch": "- op: add\n  path: /data/patched\n  value: by-name\n",
            "target": {"kind": "ConfigMap", "name": "settings"},
        },
        # JSON 6902 on every Deployment matching a label selector.
        {
            "patch": "- op: add\n  path: /metadata/labels/tier\n  value: frontend\n",
            "target": {"kind": "Deployment", "labelSelector": "app.kubernetes.io/part-of=shop"},
        },
    ]
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy", patches=patches))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

    web = await live_deployment(fluxd, "web")
    api = await live_deployment(fluxd, "api")
    batch = await live_deployment(fluxd, "batch")
    assert web["spec"]["replicas"] == 3
    assert api["spec"]["replicas"] == 1, "a patch without target hit another object"
    assert web["metadata"]["labels"]["tier"] == "frontend"
    assert api["metadata"]["labels"]["tier"] == "frontend"
    assert "tier" not in batch["metadata"]["labels"], "the label selector was not honoured"
    assert (await live_configmap(fluxd, "settings"))["data"] == {"value": "1", "patched": "by-name"}


async def test_images_override_name_tag_and_digest(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    digest = "sha256:" + "0123456789abcdef" * 4
    app = deployment(ns, "app", images=("nginx:1.25.0", "busybox:1.36", "redis:7"))
    # The path's own kustomization pins nginx too: the Kustomization's entry replaces it.
    own = "resources:\n- app.yaml\nimages:\n- name: nginx\n  newTag: 1.0.0\n"
    sha = git_remote.commit({"deploy/app.yaml": app, "deploy/kustomization.yaml": own})
    await setup_source(fluxd, git_remote, git_http)
    images = [
        {"name": "nginx", "newName": "registry.example.com/web/nginx", "newTag": "1.27.1"},
        {"name": "busybox", "newTag": "1.37"},
        {"name": "redis", "digest": digest},
    ]
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy", images=images))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

    containers = (await live_deployment(fluxd, "app"))["spec"]["template"]["spec"]["containers"]
    assert [container["image"] for container in containers] == [
        "registry.example.com/web/nginx:1.27.1",
        "busybox:1.37",
        f"redis@{digest}",
    ]


async def test_components_relative_to_path_and_missing_components(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    component = (
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
        "resources:\n- extra.yaml\n"
        "patches:\n- patch: |\n    apiVersion: v1\n    kind: ConfigMap\n"
        f"    metadata:\n      name: settings\n      namespace: {ns}\n"
        "    data:\n      feature: 'on'\n"
    )
    sha = git_remote.commit(
        {
            "apps/prod/settings.yaml": configmap(ns, "settings"),
            "apps/components/feature/kustomization.yaml": component,
            "apps/components/feature/extra.yaml": configmap(ns, "extra"),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    components = ["../components/feature", "../components/missing"]
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("apps/prod", components=components))
    failed = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "BuildFailed")
    assert "../components/missing" in ready_message(failed)
    assert await live(fluxd, CONFIGMAPS, "settings") is None, "a failed build applied objects"

    await fluxd.patch(KUSTOMIZATION, "apps", {"spec": {"ignoreMissingComponents": True}})
    obj = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    assert inventory_ids(obj) == {f"{ns}_extra__ConfigMap", f"{ns}_settings__ConfigMap"}
    assert (await live_configmap(fluxd, "settings"))["data"] == {"value": "1", "feature": "on"}


async def test_common_metadata_on_every_object_overrides_the_manifests(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    settings = configmap(ns, "settings").replace(
        "metadata:\n",
        "metadata:\n  labels:\n    team: payments\n    keep: me\n"
        "  annotations:\n    owner: alice\n",
    )
    sha = git_remote.commit(
        {"deploy/settings.yaml": settings, "deploy/web.yaml": deployment(ns, "web")}
    )
    await setup_source(fluxd, git_remote, git_http)
    common = {
        "labels": {"team": "platform", "env": "prod"},
        "annotations": {"owner": "sre@example.com"},
    }
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy", commonMetadata=common))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

    for found in (await live_configmap(fluxd, "settings"), await live_deployment(fluxd, "web")):
        metadata = found["metadata"]
        assert metadata["labels"]["team"] == "platform"
        assert metadata["labels"]["env"] == "prod"
        assert metadata["annotations"]["owner"] == "sre@example.com"
        assert metadata["labels"]["kustomize.toolkit.fluxcd.io/name"] == "apps"
    assert (await live_configmap(fluxd, "settings"))["metadata"]["labels"]["keep"] == "me"


async def test_post_build_defaults_integers_escapes_and_opt_out(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    web = deployment(
        ns,
        "web",
        replicas="${REPLICAS}",
        labels={"tier": "${TIER:=backend}"},
        extra_container_fields="        args:\n        - echo $${HOME} ${GREETING}\n",
    )
    script = (
        configmap(ns, "script")
        .replace(
            "metadata:\n",
            "metadata:\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\n",
        )
        .replace("value: '1'", "run.sh: echo ${GREETING}")
    )
    sha = git_remote.commit({"deploy/web.yaml": web, "deploy/script.yaml": script})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization("deploy", postBuild={"substitute": {"REPLICAS": "3", "GREETING": "hi"}}),
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

    found = await live_deployment(fluxd, "web")
    assert found["spec"]["replicas"] == 3  # an integer, or the API server refuses it
    assert found["metadata"]["labels"]["tier"] == "backend"
    assert found["spec"]["template"]["spec"]["containers"][0]["args"] == ["echo ${HOME} hi"]
    opted_out = await live_configmap(fluxd, "script")
    assert opted_out["data"] == {"run.sh": "echo ${GREETING}"}


async def test_substitute_strategy_always_applies_defaults_without_variables(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    settings = configmap(ns, "settings").replace("value: '1'", "tier: ${TIER:=backend}")
    sha = git_remote.commit({"deploy/settings.yaml": settings})
    await setup_source(fluxd, git_remote, git_http)
    # WithVariables (the default) and no variable: the text is left as written.
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy", postBuild={}))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    assert (await live_configmap(fluxd, "settings"))["data"] == {"tier": "${TIER:=backend}"}

    await fluxd.patch(
        KUSTOMIZATION, "apps", {"spec": {"postBuild": {"substituteStrategy": "Always"}}}
    )

    async def defaulted() -> bool:
        data: dict[str, str] = (await live_configmap(fluxd, "settings"))["data"]
        return data == {"tier": "backend"}

    await until("the default substituted with no variable defined", defaulted)


async def test_missing_substitute_from_fails_until_it_exists_and_a_watched_one_wakes(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    settings = configmap(ns, "settings").replace("value: '1'", "region: ${REGION}")
    sha = git_remote.commit({"deploy/settings.yaml": settings})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization(
            "deploy",
            postBuild={"substituteFrom": [{"kind": "ConfigMap", "name": "cluster-vars"}]},
        ),
    )
    failed = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "BuildFailed")
    assert "ConfigMap/cluster-vars" in ready_message(failed)
    assert await live(fluxd, CONFIGMAPS, "settings") is None

    await client.create(
        fluxd.api,
        CONFIGMAPS,
        {"metadata": {"name": "cluster-vars", "namespace": ns}, "data": {"REGION": "eu-1"}},
    )
    done = await reconcile_now(fluxd, "apps", "vars-created")
    assert applied(done, sha), f"not applied after the ConfigMap appeared: {done['status']}"
    assert (await live_configmap(fluxd, "settings"))["data"] == {"region": "eu-1"}

    # Labelled as Flux documents it, a change wakes its readers: no reconcile is
    # requested from here on (interval 1h).
    await client.patch(
        fluxd.api,
        CONFIGMAPS,
        ns,
        "cluster-vars",
        {
            "metadata": {"labels": {"reconcile.fluxcd.io/watch": "Enabled"}},
            "data": {"REGION": "us-2"},
        },
    )

    async def substituted_again() -> bool:
        return bool((await live_configmap(fluxd, "settings"))["data"] == {"region": "us-2"})

    await until("the new value substituted without a reconcile request", substituted_again)


def pgp_secret_manifest() -> str:
    """The sops-made PGP fixture minus its non-string ``stringData`` entries (Kubernetes
    refuses them). Values authenticate one by one and Flux does not check the file MAC,
    so the rest still decrypts."""
    document = yaml.safe_load((SOPS_FIXTURES / "secret.pgp.enc.yaml").read_text())
    for key in ("port", "ratio", "tls", "debug"):
        del document["stringData"][key]
    return str(yaml.safe_dump(document))


def generate_pgp_key() -> tuple[str, str]:
    """A fresh passwordless PGP key made by gpg in a throwaway GNUPGHOME: its fingerprint
    and the armored private key, as users store it in the decryption Secret."""
    home = tempfile.mkdtemp(prefix="gpg-")  # short: gpg-agent's socket path is limited
    base = ["gpg", "--homedir", home, "--batch", "--quiet", "--no-tty"]
    try:
        subprocess.run(
            [*base, "--passphrase", "", "--quick-gen-key", "other <other@example.invalid>"],
            check=True,
            capture_output=True,
        )
        listing = subprocess.run(
            [*base, "--with-colons", "--list-secret-keys"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        fingerprint = next(
            line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
        )
        armored = subprocess.run(
            [*base, "--armor", "--export-secret-keys", fingerprint],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return fingerprint, armored
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


async def test_pgp_decryption_applies_the_secret_and_a_wrong_key_applies_nothing(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit(
        {
            "deploy/secret.yaml": pgp_secret_manifest(),
            "deploy/settings.yaml": configmap(ns, "settings"),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    wrong_fingerprint, wrong_key = await asyncio.to_thread(generate_pgp_key)
    await fluxd.secret("sops-gpg", {"identity.asc": wrong_key})
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization(
            "deploy",
            targetNamespace=ns,
            decryption={"provider": "sops", "secretRef": {"name": "sops-gpg"}},
        ),
    )
    failed = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "BuildFailed")
    message = ready_message(failed)
    assert f"Secret/{ns}/db-credentials" in message
    fixture_fingerprint = yaml.safe_load(pgp_secret_manifest())["sops"]["pgp"][0]["fp"]
    assert fixture_fingerprint in message, "the error should name the key the file needs"
    assert wrong_fingerprint not in message
    assert await live(fluxd, SECRETS, "db-credentials") is None
    assert await live(fluxd, CONFIGMAPS, "settings") is None, "a failed build applied objects"

    right_key = (SOPS_FIXTURES / "pgp.asc").read_text()
    await client.patch(
        fluxd.api, SECRETS, ns, "sops-gpg", {"stringData": {"identity.asc": right_key}}
    )
    done = await reconcile_now(fluxd, "apps", "right-key")
    assert applied(done, sha), f"not applied with the right key: {done['status']}"
    secret = await live(fluxd, SECRETS, "db-credentials")
    assert secret is not None
    assert "sops" not in secret
    assert secret["data"]["username"] == "YWRtaW4="  # "admin"
    assert secret["data"]["password"] == "czNjcjN0LXAkc3N3MHJk"
    assert secret["data"]["url"] == "cG9zdGdyZXM6Ly9hZG1pbkBkYi5hcHBzLnN2Yzo1NDMyL21haW4="
    await live_configmap(fluxd, "settings")


async def test_invalid_patch_fails_naming_it_and_the_daemon_keeps_working(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    own = (
        "resources:\n- settings.yaml\npatches:\n- patch: |\n    apiVersion: v1\n"
        f"    kind: ConfigMap\n    metadata:\n      name: settings\n      namespace: {ns}\n"
        "    data:\n      own: 'yes'\n"
    )
    sha = git_remote.commit(
        {
            "deploy/settings.yaml": configmap(ns, "settings"),
            "deploy/kustomization.yaml": own,
            "other/other.yaml": configmap(ns, "other"),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    good = {
        "patch": "- op: add\n  path: /data/spec\n  value: 'yes'\n",
        "target": {"kind": "ConfigMap"},
    }
    broken = {"patch": "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n"}
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy", patches=[good, broken]))
    failed = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "BuildFailed")
    message = ready_message(failed)
    # The path's kustomization has a patch of its own: the index is the spec's, not the file's.
    assert "spec.patches[1]" in message
    assert "patches[2]" not in message
    assert await live(fluxd, CONFIGMAPS, "settings") is None

    await fluxd.create(KUSTOMIZATION, "other", kustomization("other"))
    await fluxd.wait_for(KUSTOMIZATION, "other", lambda o: applied(o, sha), "other applied")

    await fluxd.patch(KUSTOMIZATION, "apps", {"spec": {"patches": [good]}})
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "fixed and applied")
    assert (await live_configmap(fluxd, "settings"))["data"] == {
        "value": "1",
        "own": "yes",
        "spec": "yes",
    }


async def test_sops_encrypted_env_file_of_a_secret_generator_is_decrypted_before_the_build(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    own = (
        "resources:\n- settings.yaml\n"
        "secretGenerator:\n- name: app-env\n  envs:\n  - secrets/app.enc.env\n"
    )
    sha = git_remote.commit(
        {
            "deploy/kustomization.yaml": own,
            "deploy/settings.yaml": configmap(ns, "settings"),
            "deploy/secrets/app.enc.env": (SOPS_FIXTURES / "app.enc.env").read_text(),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.secret("sops-age", {"identity.agekey": (SOPS_FIXTURES / "age.agekey").read_text()})
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization(
            "deploy",
            targetNamespace=ns,
            decryption={"provider": "sops", "secretRef": {"name": "sops-age"}},
        ),
    )
    done = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    # The generated name carries kustomize's hash of the *decrypted* content, as in Flux.
    plain = {
        "kustomization.yaml": own.encode(),
        "settings.yaml": configmap(ns, "settings").encode(),
        "secrets/app.enc.env": (SOPS_FIXTURES / "app.dec.env").read_bytes(),
    }
    [expected] = [obj for obj in build(plain) if obj["kind"] == "Secret"]
    name = expected["metadata"]["name"]
    assert name.startswith("app-env-")
    assert f"{ns}_{name}__Secret" in inventory_ids(done)
    secret = await live(fluxd, SECRETS, name)
    assert secret is not None, f"the generated Secret {name} was not applied"
    values = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert values == {
        "DB_USER": "admin",
        "DB_PASS": "s3cr3t=with=equals",
        "MULTI": "line one\\nline two",
        "EMPTY": "",
        "API_unencrypted": "clear",
    }
    await live_configmap(fluxd, "settings")
