"""``fluxd get`` against the real control plane while the daemon under test reconciles a
GitRepository from a loopback git server and two Kustomizations, one of them broken.

The command runs as a user runs it: a separate process (``python -m fluxd``) with the
session's kubeconfig, so its output is not mixed with the in-process daemon's log.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import pytest

from fluxd.api import IMAGE_POLICY, IMAGE_REPOSITORY, KUSTOMIZATION
from fluxd.sources import oci
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.cli import REPO, run_fluxd
from tests.integration.conftest import WAIT_TIMEOUT, Fluxd, ready_reason
from tests.integration.kustomizations import applied, configmap, kustomization, setup_source
from tests.ociregistry import OCIRegistry

pytestmark = pytest.mark.integration


async def fluxd_get(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    """``fluxd get ARGS`` against ``kubeconfig``: (status, stdout, stderr)."""
    return await run_fluxd(kubeconfig, "get", *args)


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.rstrip("\t").split("\t")]


async def test_get_prints_flux_columns_for_sources_and_kustomizations(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    kubeconfig: Path,
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit({"deploy/settings.yaml": configmap(ns, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("./deploy", targetNamespace=ns))
    await fluxd.create(KUSTOMIZATION, "broken", kustomization("./missing", targetNamespace=ns))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    await fluxd.wait_for(
        KUSTOMIZATION,
        "broken",
        lambda o: (ready_reason(o) or ("",))[0] == "False",
        "Ready=False for its missing path",
    )
    short = f"master@sha1:{sha[:8]}"

    # The source's artifact revision with the digest cut short, as flux shows it.
    code, out, err = await fluxd_get(kubeconfig, "sources", "git", "-n", ns)
    assert code == 0, err
    titles, row = out.splitlines()
    assert cells(titles) == ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
    assert cells(row)[:4] == ["source", short, "False", "True"]
    assert sha not in out

    # Across namespaces: NAMESPACE first; both Kustomizations, the broken one not ready.
    code, out, err = await fluxd_get(kubeconfig, "ks", "-A")
    assert code == 0, err
    lines = [cells(line) for line in out.splitlines()]
    assert lines[0][:2] == ["NAMESPACE", "NAME"]
    ours = {line[1]: line for line in lines[1:] if line[0] == ns}
    assert ours["apps"][2:5] == [short, "False", "True"]
    assert ours["apps"][5] == f"Applied revision: {short}"
    assert ours["broken"][4] == "False"
    assert "missing" in ours["broken"][5]

    # --status-selector keeps the failing one only; --no-header drops the titles.
    code, out, err = await fluxd_get(
        kubeconfig, "kustomizations", "-n", ns, "--status-selector", "ready=false"
    )
    assert code == 0, err
    assert [cells(line)[0] for line in out.splitlines()] == ["NAME", "broken"]
    code, out, err = await fluxd_get(kubeconfig, "ks", "apps", "-n", ns, "--no-header")
    assert code == 0, err
    assert [cells(line)[:2] for line in out.splitlines()] == [["apps", short]]
    code, out, err = await fluxd_get(kubeconfig, "ks", "apps", "-n", ns, "--show-source")
    assert code == 0, err
    assert [cells(line)[:3] for line in out.splitlines()] == [
        ["NAME", "SOURCE", "REVISION"],
        ["apps", f"GitRepository/{ns}/source", short],
    ]

    # -l: a label selector, sent to the API server; a malformed one is its error, exit 1.
    await fluxd.patch(KUSTOMIZATION, "broken", {"metadata": {"labels": {"team": "web"}}})
    code, out, err = await fluxd_get(kubeconfig, "ks", "-n", ns, "-l", "team=web", "--no-header")
    assert code == 0, err
    assert [cells(line)[0] for line in out.splitlines()] == ["broken"]
    code, out, err = await fluxd_get(kubeconfig, "ks", "-n", ns, "-l", "team in")
    assert (code, out) == (1, "")
    assert "HTTP 400 BadRequest" in err, err
    assert "unable to parse requirement" in err, err

    # get all: one block per kind that has objects, named kind/name; empty kinds say nothing.
    code, out, err = await fluxd_get(kubeconfig, "all", "-n", ns)
    assert code == 0, err
    blocks = [block.splitlines() for block in out.strip("\n").split("\n\n")]
    assert [[cells(line)[0] for line in block] for block in blocks] == [
        ["NAME", "gitrepository/source"],
        ["NAME", "kustomization/apps", "kustomization/broken"],
    ]
    assert "✗" not in err


async def test_nothing_to_show_is_said_on_stderr_as_flux_says_it(
    fluxd: Fluxd, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    code, out, err = await fluxd_get(kubeconfig, "hr", "-n", ns)
    assert (code, out) == (0, "")
    assert f'✗ no HelmRelease objects found in "{ns}" namespace' in err
    code, out, err = await fluxd_get(kubeconfig, "sources", "bucket", "nope", "-n", ns)
    assert (code, out) == (0, "")
    assert f"✗ Bucket object 'nope' not found in \"{ns}\" namespace" in err
    code, out, err = await fluxd_get(kubeconfig, "all", "-n", ns)
    assert (code, out) == (0, "")
    assert "✗" not in err


async def test_bad_selector_and_no_cluster_exit_1_naming_the_problem(
    kubeconfig: Path, tmp_path: Path
) -> None:
    code, out, err = await fluxd_get(kubeconfig, "ks", "--status-selector", "ready")
    assert (code, out) == (1, "")
    assert "expected status selector in type=status or type!=status format" in err

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = tmp_path / "kubeconfig"
    unreachable.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    code, out, err = await fluxd_get(unreachable, "all")
    assert (code, out) == (1, "")
    assert "cannot reach the Kubernetes API server" in err
    assert f"127.0.0.1:{port}" in err


async def test_get_images_and_all_show_the_image_kinds_columns(
    fluxd: Fluxd, oci_registry: OCIRegistry, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    name = f"cli-{ns}"
    for tag in ("1.0.0", "1.1.0"):
        reference = oci.parse_reference(f"oci://{oci_registry.host}/{name}:{tag}", insecure=True)
        await oci.push_files(reference, {"a.txt": tag.encode()}, source="s", revision="r")
    image = f"{oci_registry.host}/{name}"
    await fluxd.create(
        IMAGE_REPOSITORY, "app", {"image": image, "interval": "1h", "insecure": True}
    )
    await fluxd.create(
        IMAGE_POLICY,
        "app",
        {"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": "1.x"}}},
    )
    await fluxd.wait_ready(IMAGE_POLICY, "app")

    code, out, err = await fluxd_get(kubeconfig, "images", "policy", "-n", ns)
    assert code == 0, err
    assert [cells(line) for line in out.splitlines()] == [
        ["NAME", "IMAGE", "TAG", "READY", "MESSAGE"],
        ["app", image, "1.1.0", "True", f"Latest image tag for {image} resolved to 1.1.0"],
    ]
    code, out, err = await fluxd_get(kubeconfig, "image", "repository", "app", "-n", ns)
    assert code == 0, err
    titles, row = (cells(line) for line in out.splitlines())
    assert titles == ["NAME", "LAST SCAN", "SUSPENDED", "READY", "MESSAGE"]
    assert row[0] == "app"
    assert row[1].endswith("Z")
    assert row[2:4] == ["False", "True"]

    code, out, err = await fluxd_get(kubeconfig, "all", "-n", ns)
    assert code == 0, err
    blocks = [block.splitlines() for block in out.strip("\n").split("\n\n")]
    assert [cells(block[1])[0] for block in blocks] == [
        "imagerepository/app",
        "imagepolicy/app",
    ]


async def test_get_watch_prints_a_row_for_each_change(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit({"deploy/settings.yaml": configmap(ns, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "fluxd", "get", "ks", "-n", ns, "--watch", "--kubeconfig", str(kubeconfig)),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(WAIT_TIMEOUT):
            titles = cells((await process.stdout.readline()).decode())
            assert titles == ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
            # Created after the watch started: its rows follow it to Ready.
            await fluxd.create(KUSTOMIZATION, "apps", kustomization("./deploy"))
            while True:
                row = cells((await process.stdout.readline()).decode())
                assert row[0] == "apps"
                if row[3] == "True":
                    break
            assert row[1] == f"master@sha1:{sha[:8]}"
    finally:
        process.send_signal(signal.SIGINT)
        code = await process.wait()
    assert code == 0


async def test_get_watch_follows_one_kind_only(kubeconfig: Path) -> None:
    code, out, err = await fluxd_get(kubeconfig, "all", "--watch")
    assert (code, out) == (1, "")
    assert err == "✗ --watch follows one kind: name it instead of all\n"
