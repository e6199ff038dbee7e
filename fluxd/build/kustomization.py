"""From a source artifact's files and a Kustomization spec to the objects to apply.

One implementation, shared by the Kustomization reconciler and the ``fluxd build`` and
``fluxd diff`` commands, so what the commands print is what the daemon applies. The steps,
in Flux's order:

1. with ``decryption`` set, the SOPS-encrypted files the build reads whole are
   decrypted in a copy of the artifact, as Flux does before the build: the ``files`` and
   ``envs`` of every ``secretGenerator`` and the ``path`` of every patch, in every
   kustomization reachable from ``path`` (format from the file name, or from the key of
   a ``key=path`` source; ``envs`` default to dotenv; files without SOPS metadata are
   left alone), with the keys of ``decryption.secretRef`` and in a worker thread as below;
2. the native kustomize build of ``path``, with the Flux fields (``targetNamespace``,
   ``namePrefix``, ``patches``, ``images``, ``components``...) as an overlay on the top
   kustomization (:mod:`~fluxd.build.overlay`), and one generated when the directory
   has none;
3. SOPS decryption with the keys of ``decryption.secretRef``, in a worker thread (PGP
   keys are opened by a ``gpg`` subprocess) of the built objects: whole encrypted objects
   and, as in Flux, Secret ``data`` entries that are SOPS-encrypted files;
4. ``postBuild`` substitution, variables from ``substitute`` then ``substituteFrom``
   (ConfigMaps and Secrets read from the Kustomization's namespace). Decrypted values are
   substituted too, as in Flux; for ``fluxd build`` the values of encrypted Secrets are
   then masked, as ``flux build`` masks them;
5. the owner labels ``kustomize.toolkit.fluxcd.io/name|namespace``;
6. ``commonMetadata`` labels and annotations, last as in Flux (which sets them at apply
   time): they are not substituted, and they override any key the manifests set.

Every failure is a :class:`~fluxd.runtime.errors.ReconcileError` with reason
``BuildFailed`` and a message naming the path, file or variable source.
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import anyio.to_thread

from fluxd.api import Decryption, KustomizationSpec, PostBuild
from fluxd.build.labels import owner_labels
from fluxd.build.memo import BuildMemo
from fluxd.build.overlay import spec_overlay
from fluxd.build.postbuild import SubstitutionError, collect_variables, substitute
from fluxd.build.sops import (
    DecryptionError,
    Format,
    decrypt_file,
    decrypt_object,
    decrypt_secret_data,
    format_for_path,
    has_marker,
)
from fluxd.kube import client
from fluxd.kube.objects import ObjectApi, SecretNotFound
from fluxd.kube.resources import CONFIGMAPS
from fluxd.kustomize import KustomizeError, SourceFile, build, is_directory, source_files
from fluxd.runtime.errors import ReconcileError
from fluxd.sources.store import Tree

__all__ = ["SOPS_MASK", "SopsMode", "build_objects"]

#: What ``flux build`` prints in place of a SOPS-encrypted Secret value.
SOPS_MASK = "**SOPS**"

#: ``decrypt`` as the daemon does; ``mask`` as ``flux build`` does (no keys needed).
SopsMode = Literal["decrypt", "mask"]


async def build_objects(
    files: Mapping[str, bytes],
    spec: KustomizationSpec,
    *,
    path: str | None,
    namespace: str,
    name: str,
    objects: ObjectApi,
    sops: SopsMode = "decrypt",
    memo: BuildMemo | None = None,
) -> list[dict[str, Any]]:
    """The objects Kustomization ``namespace/name`` with ``spec`` applies from ``files``.

    ``path`` is the directory to build inside ``files`` (``spec.path``, or ``.`` for a
    local directory given on the command line); ``objects`` reads the ConfigMaps and
    Secrets that ``postBuild`` and ``decryption`` name. With ``memo``, the kustomize
    build of an artifact tree is reused while its inputs are unchanged (not when
    decrypting: see :mod:`~fluxd.build.memo`).
    """
    directory = posixpath.normpath(path or ".").lstrip("/") or "."
    overlay = spec_overlay(spec)
    keys: dict[str, bytes] | None = None
    if sops == "decrypt" and spec.decryption:
        keys = await _decryption_keys(spec.decryption, namespace, objects)
        with _build_failed(path):
            sources = source_files(files, directory, generate_missing=True, overlay=overlay)
        files = await _decrypt_sources(files, sources, keys)
    with _build_failed(path):
        if not is_directory(files, directory):
            raise KustomizeError(
                f"path {directory!r} is not a directory in the source artifact: check spec.path"
            )
        if memo is not None and keys is None and isinstance(files, Tree):
            tree = files
            built = memo.build(
                (namespace, name),
                (tree.digest, directory, repr(overlay)),
                lambda: build(tree, directory, generate_missing=True, overlay=overlay),
            )
        else:
            built = build(files, directory, generate_missing=True, overlay=overlay)
    if keys is not None:
        built = await _decrypt(built, keys)
    if spec.post_build:
        built = await _substitute(built, spec.post_build, namespace, objects)
    if sops == "mask":
        built = [_mask_sops(obj) for obj in built]
    owner = owner_labels(namespace, name)
    for obj in built:
        obj.setdefault("metadata", {}).setdefault("labels", {}).update(owner)
    if spec.common_metadata:
        for obj in built:
            metadata = obj.setdefault("metadata", {})
            if spec.common_metadata.labels:
                metadata.setdefault("labels", {}).update(spec.common_metadata.labels)
            if spec.common_metadata.annotations:
                metadata.setdefault("annotations", {}).update(spec.common_metadata.annotations)
    return built


@contextmanager
def _build_failed(path: str | None) -> Iterator[None]:
    """A kustomize error as the reconcile failure Flux reports for it."""
    try:
        yield
    except KustomizeError as error:
        raise ReconcileError(
            "BuildFailed", f"kustomize build failed for path '{path}': {error}"
        ) from error


async def _substitute(
    built: list[dict[str, Any]], post_build: PostBuild, namespace: str, objects: ObjectApi
) -> list[dict[str, Any]]:
    sources = [
        (
            ref.kind,
            ref.name,
            await _variables_from(objects, namespace, ref.kind, ref.name),
            ref.optional,
        )
        for ref in post_build.substitute_from
    ]
    try:
        variables = collect_variables(post_build.substitute, sources)
        always = post_build.substitute_strategy == "Always"
        return [substitute(obj, variables, always=always) for obj in built]
    except SubstitutionError as error:
        raise ReconcileError("BuildFailed", f"postBuild substitution: {error}") from error


async def _variables_from(
    objects: ObjectApi, namespace: str, kind: str, name: str
) -> dict[str, str] | None:
    """The variables of a ConfigMap or Secret; ``None`` when it does not exist."""
    if kind == "Secret":
        try:
            data = await objects.secret_data(namespace, name)
        except SecretNotFound:
            return None
        return {key: value.decode() for key, value in data.items()}
    configmap = await client.get(objects.api, CONFIGMAPS, namespace, name, missing_ok=True)
    if configmap is None:
        return None
    return {str(k): str(v) for k, v in (configmap.get("data") or {}).items()}


async def _decryption_keys(
    decryption: Decryption, namespace: str, objects: ObjectApi
) -> dict[str, bytes]:
    """The data of ``decryption.secretRef`` (no keys without one)."""
    if decryption.secret_ref is None:
        return {}
    try:
        return await objects.secret_data(namespace, decryption.secret_ref.name)
    except SecretNotFound as error:
        raise ReconcileError("BuildFailed", f"decryption keys unavailable: {error}") from error


def _source_format(source: SourceFile) -> Format:
    """The SOPS format Flux reads and writes a source file in."""
    found = format_for_path(source.name)
    if source.field == "envs" and found == "binary":
        return "dotenv"
    return found


async def _decrypt_sources(
    files: Mapping[str, bytes], sources: list[SourceFile], keys: Mapping[str, bytes]
) -> Mapping[str, bytes]:
    """``files`` with every encrypted source file in its plaintext form: the plaintexts
    over the artifact, which is not copied (its contents may be in the content store).

    A file is decrypted only when it carries the SOPS marker of its format; ``files``
    itself is returned when none does.
    """
    # Source paths are normalized; the map's own keys are what the build reads.
    keys_by_path = {posixpath.normpath(key.lstrip("/")): key for key in files if key}
    pending: list[tuple[SourceFile, str, Format]] = []
    for source in sources:
        key = keys_by_path.get(source.path)
        fmt = _source_format(source)
        if key is not None and has_marker(files[key], fmt):
            pending.append((source, key, fmt))
    if not pending:
        return files

    def decrypt_all() -> Mapping[str, bytes]:
        decrypted: dict[str, bytes] = {}
        for source, key, fmt in pending:
            try:
                decrypted[key] = decrypt_file(files[key], fmt, fmt, keys)
            except DecryptionError as error:
                raise ReconcileError(
                    "BuildFailed",
                    f"failed to decrypt {source.field} file '{source.path}' (referenced in"
                    f" {source.kustomization_file}) as {fmt}: {error}",
                ) from error
        return _Overlay(decrypted, files)

    return await anyio.to_thread.run_sync(decrypt_all)


class _Overlay(Mapping[str, bytes]):
    """Plaintexts of a few files over the artifact's files, which stay where they are."""

    def __init__(self, top: Mapping[str, bytes], below: Mapping[str, bytes]) -> None:
        self._top = top
        self._below = below

    def __getitem__(self, key: str) -> bytes:
        found = self._top.get(key)
        return self._below[key] if found is None else found

    def __iter__(self) -> Iterator[str]:
        return iter(self._below)

    def __len__(self) -> int:
        return len(self._below)


async def _decrypt(built: list[dict[str, Any]], keys: Mapping[str, bytes]) -> list[dict[str, Any]]:
    def decrypt_all() -> list[dict[str, Any]]:
        return [
            decrypt_object(obj, keys) if "sops" in obj else decrypt_secret_data(obj, keys)
            for obj in built
        ]

    try:
        return await anyio.to_thread.run_sync(decrypt_all)
    except DecryptionError as error:
        # The error already names the object (and the field) that failed to decrypt.
        raise ReconcileError("BuildFailed", str(error)) from error


def _mask_sops(obj: dict[str, Any]) -> dict[str, Any]:
    """An encrypted Secret with every value replaced by :data:`SOPS_MASK` and its
    ``sops`` metadata dropped; anything else unchanged."""
    if "sops" not in obj or obj.get("kind") != "Secret" or obj.get("apiVersion") != "v1":
        return obj
    masked = {key: value for key, value in obj.items() if key != "sops"}
    encoded = base64.b64encode(SOPS_MASK.encode()).decode()
    if isinstance(obj.get("data"), Mapping):
        masked["data"] = dict.fromkeys(obj["data"], encoded)
    if isinstance(obj.get("stringData"), Mapping):
        masked["stringData"] = dict.fromkeys(obj["stringData"], SOPS_MASK)
    return masked
