"""GitRepository: turn a remote git revision into an artifact in the shared cache.

Steps, in order (each failure carries Flux's reason and condition):

1. **credentials**: ``spec.secretRef``, ``spec.proxySecretRef`` and, with ``provider:
   github``, a GitHub App installation token become :class:`~fluxd.sources.git.GitAuth`
   (``AuthenticationFailed`` + ``FetchFailed`` when a Secret or the token is missing,
   ``InvalidProviderConfiguration`` when the spec and the Secret disagree);
2. **includes**: the artifacts of included GitRepositories, read from the cache; the
   scheduler is told that this object depends on them, so their new revisions wake it
   (``IncludeUnavailable`` while one has no artifact yet);
3. **resolve**: one ``ls-remote`` to learn the remote revision; when it and everything the
   artifact is made of (includes, ignore rules, verification, submodules, sparse paths)
   are unchanged, stop here — the periodic reconcile of an unchanged repository costs one
   round trip (the parent commit pins its submodules' commits, so its sha is enough);
4. **fetch**: a shallow fetch into memory (``GitOperationFailed``/``AuthenticationFailed``),
   shared with every GitRepository that wants the same commit with the same credentials
   (:class:`~fluxd.sources.git.SharedFetches`: a monorepo behind many objects is fetched
   once),
   with ``spec.recurseSubmodules`` every submodule too (same credentials; a failure names
   the submodule), and only the ``spec.sparseCheckout`` paths kept (a listed path the
   commit lacks fails the fetch; a path outside the repository stalls before any I/O);
5. **verify**: commit and/or tag signatures against ``spec.verify.secretRef``
   (``SourceVerified`` condition, ``InvalidCommitSignature``/``InvalidTagSignature``);
6. **package**: includes copied in, ignore rules applied (once per distinct fetch and
   settings), the tarball's digest computed (once per distinct tree), the artifact stored
   in the cache; dependents wake; ``status.artifact`` and the observations Flux records
   with it (``includedArtifacts``, ``observedIgnore``, ``observedInclude``,
   ``observedRecurseSubmodules``, ``observedSparseCheckout``) written as Flux writes them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from fluxd.sources.store import Tree

__all__ = ["GitRepositoryReconciler"]

FETCH_FAILED = "FetchFailed"
INCLUDE_UNAVAILABLE = "IncludeUnavailable"
SOURCE_VERIFIED = "SourceVerified"
ARTIFACT_IN_STORAGE = "ArtifactInStorage"


_Included = tuple[ObjectKey, Artifact, str, str]
"""An include: the included GitRepository, its artifact, fromPath and toPath."""


@dataclass(frozen=True)
class _Recipe:
    """Everything an artifact is made of besides the files of the commit itself."""

    sha: str
    ignore: str | None
    includes: tuple[tuple[str, str, str, str], ...]
    verify_mode: str | None
    recurse_submodules: bool
    sparse_checkout: tuple[str, ...]

    @classmethod
    def of(
        cls,
        sha: str,
        spec: GitRepositorySpec,
        includes: Sequence[_Included],
        sparse: git.SparseCheckout,
    ) -> _Recipe:
        return cls(
            sha=sha,
            ignore=spec.ignore,
            includes=tuple(
                (key.name, artifact.digest, from_path, to_path)
                for key, artifact, from_path, to_path in includes
            ),
            verify_mode=spec.verify.mode if spec.verify else None,
            recurse_submodules=spec.recurse_submodules,
            sparse_checkout=sparse.paths,
        )


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
        max_artifact_bytes: int | None = None,
    ) -> None:
        self.objects = objects
        self.max_artifact_bytes = max_artifact_bytes
        self.cache = cache
        self.artifact_base_url = artifact_base_url
        self.track_sources = track_sources
        self.fetches = git.SharedFetches(cache.store)
        # Packaged trees while an artifact serves them: the next GitRepository on the same
        # commit and settings reuses the tree instead of packaging it again.
        self._packaged: weakref.WeakValueDictionary[
            tuple[str, str | None, tuple[str, ...]], Tree
        ] = weakref.WeakValueDictionary()
        self._recipes: dict[ObjectKey, _Recipe] = {}

    def forget(self, key: ObjectKey) -> None:
        self.cache.remove(key)
        self._recipes.pop(key, None)
        self.track_sources(key, ())

    async def reconcile(self, ctx: Context[GitRepositorySpec]) -> None:
        spec = ctx.spec
        _refuse_unsupported(spec)
        sparse = _sparse_checkout(spec)
        namespace = ctx.key.namespace
        auth = await self._auth(namespace, spec)
        includes = self._includes(ctx)
        timeout = parse_duration(spec.timeout)
        ref = spec.reference
        current = self.cache.get(ctx.key)
        sha = ref.commit or await self._remote_sha(spec.url, ref, auth, timeout)
        if current is not None and self._recipes.get(ctx.key) == _Recipe.of(
            sha, spec, includes, sparse
        ):
            self._report(ctx, current, includes)
            return
        try:
            commit, files = await self.fetches.fetch(
                spec.url,
                ref,
                auth,
                timeout,
                sha=sha,
                recurse_submodules=spec.recurse_submodules,
                sparse=sparse,
            )
        except git.GitError as error:
            raise self._fetch_error(error) from error
        conditions.delete(ctx.status, FETCH_FAILED)
        if spec.verify:
            await self._verify(ctx, commit, spec.verify)
        else:
            conditions.delete(ctx.status, SOURCE_VERIFIED)
            ctx.status.pop("sourceVerificationMode", None)
        packaged = self._package(files, includes, spec.ignore)
        if self.max_artifact_bytes is not None and packaged.size > self.max_artifact_bytes:
            raise ReconcileError(
                "ArtifactTooLarge",
                f"the files of '{commit.revision}' total {packaged.size / 2**20:.1f} MiB, over "
                f"the {self.max_artifact_bytes / 2**20:.0f} MiB fluxd allows an artifact "
                "(--artifact-max-mib): leave out what the cluster does not need with "
                "spec.ignore or spec.sparseCheckout",
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
        self._recipes[ctx.key] = _Recipe.of(commit.sha, spec, includes, sparse)
        self._report(ctx, artifact, includes)

    def _package(self, files: Tree, includes: Sequence[_Included], ignore: str | None) -> Tree:
        """The artifact's tree: the fetched files, includes copied in, ignore rules applied.
        GitRepositories on one commit with the same settings get it made once."""
        key = (files.digest, ignore, tuple(included.digest for _, included, _, _ in includes))
        made = self._packaged.get(key)
        if made is None:
            merged = git.artifact_files(
                files,
                [(included.files, source, target) for _, included, source, target in includes],
                ignore=ignore,
            )
            made = self._packaged[key] = self.cache.store.tree(merged)
        return made

    async def _remote_sha(
        self, url: str, ref: GitRepositoryRef, auth: git.GitAuth, time_limit: float
    ) -> str:
        try:
            _, sha = await git.resolve(url, ref, auth, time_limit)
        except git.GitError as error:
            raise self._fetch_error(error) from error
        return sha

    def _report(
        self, ctx: Context[GitRepositorySpec], artifact: Artifact, includes: Sequence[_Included]
    ) -> None:
        """Status of a stored artifact, with what it was made from as Flux records it
        (each observation absent when its field is unset, as Flux's omitempty leaves it)."""
        status = ctx.status
        spec = ctx.spec
        raw_spec = ctx.obj.get("spec") or {}
        status["artifact"] = artifact.to_status()
        observed: dict[str, object] = {
            "includedArtifacts": [included.to_status() for _, included, _, _ in includes],
            "observedIgnore": spec.ignore,
            "observedRecurseSubmodules": spec.recurse_submodules,
            "observedInclude": raw_spec.get("include"),
            "observedSparseCheckout": list(spec.sparse_checkout),
        }
        for field, value in observed.items():
            if value is None or value is False or value == []:
                status.pop(field, None)
            else:
                status[field] = value
        message = f"stored artifact for revision '{artifact.revision}'"
        conditions.mark_true(
            status, ARTIFACT_IN_STORAGE, "Succeeded", message, generation=ctx.generation
        )
        conditions.delete(status, "ArtifactOutdated")
        ctx.ready_reason = "Succeeded"
        ctx.ready_message = message

    async def _auth(self, namespace: str, spec: GitRepositorySpec) -> git.GitAuth:
        try:
            return await git.repository_auth(self.objects, namespace, spec)
        except git.CredentialsError as error:
            raise ReconcileError(
                error.reason, error.message, condition=FETCH_FAILED, stalled=error.stalled
            ) from error

    def _includes(self, ctx: Context[GitRepositorySpec]) -> list[_Included]:
        found: list[_Included] = []
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


def _refuse_unsupported(spec: GitRepositorySpec) -> None:
    """Stall on fields fluxd does not serve yet, rather than ignoring them silently."""
    unsupported = []
    if spec.provider in ("aws", "azure"):
        unsupported.append(f"spec.provider '{spec.provider}' (cloud workload identity)")
    if unsupported:
        raise ReconcileError(
            "UnsupportedField",
            f"{', '.join(unsupported)} not supported by fluxd yet; remove the field(s)",
            stalled=True,
        )


def _sparse_checkout(spec: GitRepositorySpec) -> git.SparseCheckout:
    """``spec.sparseCheckout``, normalised; Stalled when an entry leaves the repository."""
    try:
        return git.SparseCheckout.from_spec(spec.sparse_checkout)
    except git.InvalidSparsePath as error:
        raise ReconcileError("InvalidSparseCheckout", str(error), stalled=True) from error
