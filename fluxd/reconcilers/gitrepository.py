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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from fluxd.api import (
    GIT_REPOSITORY,
    GitRepositoryRef,
    GitRepositorySpec,
    GitRepositoryVerification,
    parse_duration,
)
from fluxd.kube.objects import ObjectApi, SecretNotFound
from fluxd.reconcilers.driver import Context, Reconciler
from fluxd.runtime import conditions
from fluxd.runtime.errors import ReconcileError
from fluxd.runtime.keys import ObjectKey
from fluxd.sources import git
from fluxd.sources.artifact import Artifact, make_artifact
from fluxd.sources.cache import ArtifactCache

__all__ = ["GitRepositoryReconciler"]

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


class GitRepositoryReconciler(Reconciler[GitRepositorySpec]):
    """``source.toolkit.fluxcd.io/v1`` GitRepository."""

    kind = GIT_REPOSITORY
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

    async def reconcile(self, ctx: Context[GitRepositorySpec]) -> None:
        spec = ctx.spec
        namespace = ctx.key.namespace
        auth = await self._auth(namespace, spec)
        includes = self._includes(ctx)
        timeout = parse_duration(spec.timeout)
        ref = spec.reference
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
        packaged = git.artifact_files(
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
        self, url: str, ref: GitRepositoryRef, auth: git.GitAuth, time_limit: float
    ) -> str:
        try:
            _, sha = await git.resolve(url, ref, auth, time_limit)
        except git.GitError as error:
            raise self._fetch_error(error) from error
        return sha

    def _report(
        self, ctx: Context[GitRepositorySpec], artifact: Artifact, spec: GitRepositorySpec
    ) -> None:
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

    async def _auth(self, namespace: str, spec: GitRepositorySpec) -> git.GitAuth:
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
        return git.auth_from_secret(data)

    def _includes(
        self, ctx: Context[GitRepositorySpec]
    ) -> list[tuple[ObjectKey, Artifact, str, str]]:
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
            found.append((key, artifact, *git.include_paths(include)))
        conditions.delete(ctx.status, INCLUDE_UNAVAILABLE)
        return found

    async def _verify(
        self, ctx: Context[GitRepositorySpec], commit: git.Commit, verify: GitRepositoryVerification
    ) -> None:
        try:
            keys = await self.objects.secret_data(ctx.key.namespace, verify.secret_ref.name)
        except SecretNotFound as error:
            raise self._verification_failed(
                ctx, "VerificationError", f"cannot verify signatures: {error}"
            ) from error
        verified: list[str] = []
        if verify.verify_tag:
            identity = self._signed_by(
                ctx,
                keys,
                commit.tag_payload,
                commit.tag_signature,
                reason="InvalidTagSignature",
                what=f"tag for '{commit.revision}'",
                unsigned=f"cannot verify tag for '{commit.revision}': it is not an annotated, "
                "signed tag",
            )
            verified.append(f"tag with key '{identity}'")
        if verify.verify_head:
            identity = self._signed_by(
                ctx,
                keys,
                commit.signed_payload,
                commit.signature,
                reason="InvalidCommitSignature",
                what=f"commit '{commit.sha}'",
                unsigned=f"signature verification of commit '{commit.sha}' failed: "
                "the commit is not signed",
            )
            verified.append(f"commit '{commit.sha}' with key '{identity}'")
        conditions.mark_true(
            ctx.status,
            SOURCE_VERIFIED,
            "Succeeded",
            "verified signature of " + " and ".join(verified),
            generation=ctx.generation,
        )
        ctx.status["sourceVerificationMode"] = verify.effective_mode

    def _signed_by(
        self,
        ctx: Context[GitRepositorySpec],
        keys: Mapping[str, bytes],
        payload: bytes | None,
        signature: bytes | None,
        *,
        reason: str,
        what: str,
        unsigned: str,
    ) -> str:
        """The identity of the trusted key that signed ``payload``; a ReconcileError with
        ``reason`` when it is unsigned or no trusted key made the signature."""
        if payload is None or signature is None:
            raise self._verification_failed(ctx, reason, unsigned)
        try:
            return git.verify_signature(payload=payload, signature=signature, keys=keys)
        except git.VerificationError as error:
            raise self._verification_failed(
                ctx, reason, f"signature verification of {what} failed: {error}"
            ) from error

    @staticmethod
    def _verification_failed(
        ctx: Context[GitRepositorySpec], reason: str, message: str
    ) -> ReconcileError:
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
