"""Bad input in a Kustomization's source, end to end: each case is pushed on top of a
revision that applied, and must leave that revision's objects as they were, say what is
wrong and where on ``Ready=False``, and leave the daemon reconciling.

Cases already covered elsewhere are not repeated: malformed YAML in one of several files
(``test_kustomization.py``), a source over ``--artifact-max-mib``
(``test_artifact_store.py``), a single object the API server refuses
(``test_kustomization.py``) and an unknown kind at the apply manager
(``test_apply_manager.py``).
"""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.api import KUSTOMIZATION
from fluxd.kube import client
from fluxd.runtime import conditions
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd
from tests.integration.kustomizations import (
    CONFIGMAPS,
    applied,
    configmap,
    kustomization,
    live,
    push_and_refresh,
    setup_source,
)

pytestmark = pytest.mark.integration


def ready_message(obj: dict[str, Any]) -> str:
    ready = conditions.get(obj["status"], conditions.READY)
    assert ready is not None
    return str(ready["message"])


async def applied_first(
    fluxd: Fluxd, remote: GitRemote, server: GitHTTPServer, **fields: object
) -> str:
    """Kustomization ``apps`` of ``deploy/`` with ConfigMap ``a`` (value 1), applied."""
    sha = remote.commit({"deploy/a.yaml": configmap(fluxd.namespace, "a")})
    await setup_source(fluxd, remote, server)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("deploy", **fields))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    return sha


async def assert_previous_revision_runs(fluxd: Fluxd, obj: dict[str, Any], sha: str) -> None:
    """The failed revision changed nothing: ``a`` keeps value 1, nothing new exists."""
    assert obj["status"]["lastAppliedRevision"].endswith(sha)
    previous = await live(fluxd, CONFIGMAPS, "a")
    assert previous is not None, "a failed revision deleted what was running"
    assert previous["data"] == {"value": "1"}, "a failed revision half-applied a change"
    assert await live(fluxd, CONFIGMAPS, "new") is None, "a failed revision created objects"


async def assert_still_reconciling(fluxd: Fluxd, remote: GitRemote, fix: dict[str, str]) -> None:
    """The daemon is up: the revision pushed with ``fix`` after the bad one applies."""
    fixed = await push_and_refresh(fluxd, remote, fix)
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, fixed), "the fix applied")


UNKNOWN_KIND = "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n"
SCHEMA_VIOLATION = (
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports:\n  - port: 99999\n"
)


@pytest.mark.parametrize(
    ("manifest", "named"),
    [
        pytest.param(
            UNKNOWN_KIND,
            'Gadget/{ns}/g dry-run failed: no matches for kind "Gadget"',
            id="unknown-kind",
        ),
        pytest.param(SCHEMA_VIOLATION, "Service/{ns}/bad", id="admission-refusal"),
    ],
)
async def test_one_refused_object_applies_nothing_of_its_set(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, manifest: str, named: str
) -> None:
    ns = fluxd.namespace
    sha = await applied_first(fluxd, git_remote, git_http, targetNamespace=ns)
    await push_and_refresh(
        fluxd,
        git_remote,
        {
            "deploy/a.yaml": configmap(ns, "a", "2"),
            "deploy/new.yaml": configmap(ns, "new"),
            "deploy/refused.yaml": manifest,
        },
    )
    obj = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "ReconciliationFailed")
    assert named.format(ns=ns) in ready_message(obj)
    await assert_previous_revision_runs(fluxd, obj, sha)


async def test_deeply_nested_document_fails_naming_the_file(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = await applied_first(fluxd, git_remote, git_http)
    depth = 10000
    deep = (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: new\n  namespace: {ns}\n"
        f"data:\n  x: {'[' * depth}{']' * depth}\n"
    )
    await push_and_refresh(
        fluxd,
        git_remote,
        {"deploy/a.yaml": configmap(ns, "a", "2"), "deploy/deep.yaml": deep},
    )
    obj = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "BuildFailed")
    assert "deploy/deep.yaml" in ready_message(obj)
    await assert_previous_revision_runs(fluxd, obj, sha)
    await assert_still_reconciling(fluxd, git_remote, {"deploy/deep.yaml": configmap(ns, "new")})


async def test_symlink_out_of_the_repository_reads_nothing_outside(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = await applied_first(fluxd, git_remote, git_http)
    git_remote.commit({"deploy/a.yaml": configmap(ns, "a", "2")}, push=False)
    git_remote.symlink("deploy/passwd.yaml", "/etc/passwd")
    await push_and_refresh(fluxd, git_remote, {"deploy/other.yaml": configmap(ns, "new")})
    obj = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "BuildFailed")
    message = ready_message(obj)
    assert "deploy/passwd.yaml" in message
    assert "root:" not in message, "the build read a file outside the repository"
    await assert_previous_revision_runs(fluxd, obj, sha)


async def test_parent_path_out_of_the_source_in_resources_is_refused(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    sha = await applied_first(fluxd, git_remote, git_http)
    await push_and_refresh(
        fluxd,
        git_remote,
        {
            "deploy/a.yaml": configmap(ns, "a", "2"),
            "deploy/kustomization.yaml": "resources:\n- a.yaml\n- ../../../../etc\n",
        },
    )
    obj = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "BuildFailed")
    message = ready_message(obj)
    assert "deploy/kustomization.yaml" in message
    assert "../../../../etc" in message
    await assert_previous_revision_runs(fluxd, obj, sha)


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        pytest.param("a\nkind: Secret", True, id="new-key"),
        pytest.param(
            "a\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: injected\n",
            True,
            id="new-document",
        ),
        pytest.param("---", False, id="document-marker"),
    ],
)
async def test_substituted_value_cannot_inject_keys_or_documents(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, value: str, refused: bool
) -> None:
    ns = fluxd.namespace
    await fluxd.secret("vars", {"VAR": value})
    post_build = {"substituteFrom": [{"kind": "Secret", "name": "vars"}]}
    sha = await applied_first(fluxd, git_remote, git_http, postBuild=post_build)
    injected = await push_and_refresh(
        fluxd,
        git_remote,
        {
            "deploy/a.yaml": (
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: {ns}\n"
                "data:\n  value: ${VAR}\n"
            )
        },
    )
    if refused:
        obj = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "BuildFailed")
        message = ready_message(obj)
        assert f"ConfigMap/{ns}/a: the object is not valid YAML after substitution" in message
        await assert_previous_revision_runs(fluxd, obj, sha)
    else:
        obj = await fluxd.wait_for(
            KUSTOMIZATION, "apps", lambda o: applied(o, injected), "the value applied"
        )
        created = await live(fluxd, CONFIGMAPS, "a")
        assert created is not None
        assert created["data"] == {"value": value}
    assert await fluxd_secrets(fluxd) == {"vars"}, "substitution created a Secret"
    assert [entry["id"] for entry in obj["status"]["inventory"]["entries"]] == [
        f"{ns}_a__ConfigMap"
    ]


async def fluxd_secrets(fluxd: Fluxd) -> set[str]:
    found = await client.request(fluxd.api, "GET", f"/api/v1/namespaces/{fluxd.namespace}/secrets")
    return {item["metadata"]["name"] for item in found.get("items", [])}
