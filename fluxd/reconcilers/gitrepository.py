"""GitRepository: turn a remote git revision into an artifact in the shared cache.

Steps, in order (each failure carries Flux's reason and condition):

1. **credentials**: ``spec.secretRef`` becomes :class:`~fluxd.sources.git.GitAuth`
   (``AuthenticationFailed`` + ``FetchFailed`` when the Secret is missing);
2. **includes**: the artifacts of included GitRepositories, read from the cache; the
   scheduler is told that this object depends on them, so their new revisions wake it
   (``IncludeUnavailable`` while one has no artifact yet);
3. **resolve**: one ``ls-remote`` to learn the remote revision; when it and everything the
   artifact is made of (includes, ignore rules, verification) are unchanged, stop here —
   the periodic reconcile of an unchanged repository costs one round trip;
4. **fetch**: a shallow fetch into memory (``GitOperationFailed``/``AuthenticationFailed``);
5. **verify**: commit and/or tag signatures against ``spec.verify.secretRef``
   (``SourceVerified`` condition, ``InvalidCommitSignature``/``InvalidTagSignature``);
6. **package**: includes copied in, ignore rules applied, the tarball and its digest made
   and stored in the cache; dependents wake; ``status.artifact`` written as Flux writes it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from fluxd import conditions
from fluxd.api import GIT_REPOSITORY, KindInfo, parse_duration
from fluxd.objectkey import ObjectKey
from fluxd.reconcilers.base import Context, ReconcileError, Reconciler
from fluxd.reconcilers.objects import ObjectApi, SecretNotFound
from fluxd.sources import git
from fluxd.sources.artifact import Artifact, make_artifact
from fluxd.sources.cache import ArtifactCache
from fluxd.sources.ignore import select_files
from fluxd.sources.verify import VerificationError, verify_signature

__all__ = [
    "GitRepositoryReconciler",
    "artifact_files",
    "git_auth_from_secret",
    "git_ref",
    "include_paths",
]

FETCH_FAILED = "FetchFailed"
INCLUDE_UNAVAILABLE = "IncludeUnavailable"
SOURCE_VERIFIED = "SourceVerified"
ARTIFACT_IN_STORAGE = "ArtifactInStorage"


@dataclass(frozen=True)
class _Recipe:
    """Everything an artifact is made of besides the files of the commit itself."""

    sha: str
    ignore: str | None
    includes: tuple[tuple[str, str, str, str], ...]
    verify_mode: str | None


class GitRepositoryReconciler(Reconciler):
    """``source.toolkit.fluxcd.io/v1`` GitRepository."""

    kind: ClassVar[KindInfo[Any]] = GIT_REPOSITORY
    negative_conditions: ClassVar[tuple[str, ...]] = (FETCH_FAILED, INCLUDE_UNAVAILABLE)

    def __init__(
        self,
        *,
        objects: ObjectApi,
        cache: ArtifactCache,
        artifact_base_url: str,
        track_sources: Callable[[ObjectKey, Iterable[ObjectKey]], None],
    ) -> None:
        self.objects = objects
        self.cache = cache
        self.artifact_base_url = artifact_base_url
        self.track_sources = track_sources
        self._recipes: dict[ObjectKey, _Recipe] = {}

    def forget(self, key: ObjectKey) -> None:
        self.cache.remove(key)
        self._recipes.pop(key, None)
        self.track_sources(key, ())

    async def reconcile(self, ctx: Context) -> None:
        spec = ctx.spec
        namespace = ctx.key.namespace
        auth = await self._auth(namespace, spec)
        includes = self._includes(ctx)
        timeout = parse_duration(spec.timeout)
        ref = git_ref(spec)
        verify_mode = spec.verify.mode if spec.verify else None
        include_ids = tuple(
            (inc_key.name, artifact.digest, from_path, to_path)
            for inc_key, artifact, from_path, to_path in includes
        )
        current = self.cache.get(ctx.key)
        if current is not None:
            sha = ref.commit or await self._remote_sha(spec.url, ref, auth, timeout)
            if self._recipes.get(ctx.key) == _Recipe(sha, spec.ignore, include_ids, verify_mode):
                self._report(ctx, current, spec)
                return
        try:
            commit, files = await git.fetch(spec.url, ref, auth, timeout)
        except git.GitError as error:
            raise self._fetch_error(error) from error
        conditions.delete(ctx.status, FETCH_FAILED)
        if spec.verify:
            await self._verify(ctx, commit, spec.verify)
        else:
            conditions.delete(ctx.status, SOURCE_VERIFIED)
        packaged = artifact_files(
            files,
            [(artifact.files, from_path, to_path) for _, artifact, from_path, to_path in includes],
            ignore=spec.ignore,
        )
        artifact = make_artifact(
            kind=self.kind.kind,
            namespace=namespace,
            name=ctx.key.name,
            revision=commit.revision,
            files=packaged,
            base_url=self.artifact_base_url,
        )
        if self.cache.put(ctx.key, artifact):
            subject = commit.message.splitlines()[0] if commit.message else commit.sha
            ctx.event(
                "Normal",
                "NewArtifact",
                f"stored artifact for commit '{subject}'",
                {"source.toolkit.fluxcd.io/revision": commit.revision},
            )
        self._recipes[ctx.key] = _Recipe(commit.sha, spec.ignore, include_ids, verify_mode)
        self._report(ctx, artifact, spec)

    async def _remote_sha(
        self, url: str, ref: git.GitRef, auth: git.GitAuth, time_limit: float
    ) -> str:
        try:
            _, sha = await git.resolve(url, ref, auth, time_limit)
        except git.GitError as error:
            raise self._fetch_error(error) from error
        return sha

    def _report(self, ctx: Context, artifact: Artifact, spec: Any) -> None:
        status = ctx.status
        status["artifact"] = artifact.to_status()
        if spec.ignore is not None:
            status["observedIgnore"] = spec.ignore
        else:
            status.pop("observedIgnore", None)
        raw_includes = (ctx.obj.get("spec") or {}).get("include")
        if raw_includes:
            status["observedInclude"] = raw_includes
        else:
            status.pop("observedInclude", None)
        message = f"stored artifact for revision '{artifact.revision}'"
        conditions.mark_true(
            status, ARTIFACT_IN_STORAGE, "Succeeded", message, generation=ctx.generation
        )
        conditions.delete(status, "ArtifactOutdated")
        ctx.ready_reason = "Succeeded"
        ctx.ready_message = message

    async def _auth(self, namespace: str, spec: Any) -> git.GitAuth:
        if spec.secret_ref is None:
            return git.GitAuth()
        try:
            data = await self.objects.secret_data(namespace, spec.secret_ref.name)
        except SecretNotFound as error:
            raise ReconcileError(
                "AuthenticationFailed",
                f"failed to get credentials: {error}: create it or fix spec.secretRef",
                condition=FETCH_FAILED,
            ) from error
        return git_auth_from_secret(data)

    def _includes(self, ctx: Context) -> list[tuple[ObjectKey, Artifact, str, str]]:
        found: list[tuple[ObjectKey, Artifact, str, str]] = []
        keys = [
            ObjectKey(self.kind.kind, ctx.key.namespace, include.repository.name)
            for include in ctx.spec.include or ()
        ]
        self.track_sources(ctx.key, keys)
        for include, key in zip(ctx.spec.include or (), keys, strict=True):
            artifact = self.cache.get(key)
            if artifact is None:
                raise ReconcileError(
                    "NotFound",
                    f"include '{key.namespace}/{key.name}' has no artifact yet: "
                    "it is missing or not ready",
                    condition=INCLUDE_UNAVAILABLE,
                )
            found.append((key, artifact, *include_paths(include)))
        conditions.delete(ctx.status, INCLUDE_UNAVAILABLE)
        return found

    async def _verify(self, ctx: Context, commit: git.Commit, verify: Any) -> None:
        try:
            keys = await self.objects.secret_data(ctx.key.namespace, verify.secret_ref.name)
        except SecretNotFound as error:
            raise self._verification_failed(
                ctx, "VerificationError", f"cannot verify signatures: {error}"
            ) from error
        mode = verify.mode or "HEAD"
        verified: list[str] = []
        if mode in ("Tag", "TagAndHEAD"):
            if commit.tag_payload is None or commit.tag_signature is None:
                raise self._verification_failed(
                    ctx,
                    "InvalidTagSignature",
                    f"cannot verify tag for '{commit.revision}': it is not an annotated, "
                    "signed tag",
                )
            try:
                identity = verify_signature(
                    payload=commit.tag_payload, signature=commit.tag_signature, keys=keys
                )
            except VerificationError as error:
                raise self._verification_failed(
                    ctx,
                    "InvalidTagSignature",
                    f"signature verification of tag for '{commit.revision}' failed: {error}",
                ) from error
            verified.append(f"tag with key '{identity}'")
        if mode in ("HEAD", "TagAndHEAD"):
            if commit.signed_payload is None or commit.signature is None:
                raise self._verification_failed(
                    ctx,
                    "InvalidCommitSignature",
                    f"signature verification of commit '{commit.sha}' failed: "
                    "the commit is not signed",
                )
            try:
                identity = verify_signature(
                    payload=commit.signed_payload, signature=commit.signature, keys=keys
                )
            except VerificationError as error:
                raise self._verification_failed(
                    ctx,
                    "InvalidCommitSignature",
                    f"signature verification of commit '{commit.sha}' failed: {error}",
                ) from error
            verified.append(f"commit '{commit.sha}' with key '{identity}'")
        conditions.mark_true(
            ctx.status,
            SOURCE_VERIFIED,
            "Succeeded",
            "verified signature of " + " and ".join(verified),
            generation=ctx.generation,
        )
        ctx.status["sourceVerificationMode"] = mode

    @staticmethod
    def _verification_failed(ctx: Context, reason: str, message: str) -> ReconcileError:
        conditions.mark_false(
            ctx.status, SOURCE_VERIFIED, reason, message, generation=ctx.generation
        )
        return ReconcileError(reason, message)

    @staticmethod
    def _fetch_error(error: git.GitError) -> ReconcileError:
        return ReconcileError(
            error.reason,
            f"failed to checkout and determine revision: {error}",
            condition=FETCH_FAILED,
        )


def git_auth_from_secret(data: Mapping[str, bytes]) -> git.GitAuth:
    """Flux's Secret keys for git: https (basic, bearer, CA) and ssh (key, host keys)."""

    def text(key: str) -> str | None:
        value = data.get(key)
        return value.decode() if value is not None else None

    return git.GitAuth(
        username=text("username"),
        password=text("password"),
        bearer_token=text("bearerToken"),
        ca_file=data.get("ca.crt") or data.get("caFile"),
        identity=data.get("identity"),
        passphrase=text("password") if "identity" in data else None,
        known_hosts=data.get("known_hosts"),
    )


def git_ref(spec: Any) -> git.GitRef:
    """``spec.ref`` of a GitRepository spec as the fetcher's reference."""
    ref = spec.ref
    return git.GitRef(
        branch=ref.branch if ref else None,
        tag=ref.tag if ref else None,
        semver=ref.semver if ref else None,
        name=ref.name if ref else None,
        commit=ref.commit if ref else None,
    )


def include_paths(include: Any) -> tuple[str, str]:
    """``(fromPath, toPath)`` of a ``spec.include`` entry, with Flux's defaults."""
    return include.from_path or ".", include.to_path or include.repository.name


def artifact_files(
    files: Mapping[str, bytes],
    includes: Iterable[tuple[Mapping[str, bytes], str, str]],
    *,
    ignore: str | None,
) -> dict[str, bytes]:
    """What the artifact holds: the commit's files, each include's files (``(files,
    fromPath, toPath)``) copied in over them, then the ignore rules applied."""
    merged = dict(files)
    for included, from_path, to_path in includes:
        merged.update(_relocate(included, from_path, to_path))
    return select_files(merged, spec_ignore=ignore)


def _relocate(files: Mapping[str, bytes], from_path: str, to_path: str) -> dict[str, bytes]:
    """Files under ``from_path`` of an included artifact, moved under ``to_path``."""
    source = posixpath.normpath(from_path).strip("/")
    target = posixpath.normpath(to_path).strip("/")
    moved: dict[str, bytes] = {}
    for path, content in files.items():
        if source in ("", "."):
            relative = path
        elif path.startswith(source + "/"):
            relative = path[len(source) + 1 :]
        else:
            continue
        moved[posixpath.join(target, relative) if target not in ("", ".") else relative] = content
    return moved
