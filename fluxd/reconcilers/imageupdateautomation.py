"""ImageUpdateAutomation (``image.toolkit.fluxcd.io/v1``): policy results written to git.

Steps, in order:

1. **check** the spec: a missing ``spec.git``, a push branch that cannot be inferred or
   a bad refspec is ``InvalidSourceConfig``, an invalid ``policySelector``
   ``InvalidPolicySelector`` (stalled, as Flux);
2. **policies**: the ImagePolicies of the namespace that ``policySelector`` selects and
   that have a ``latestRef``; any change to a policy of the namespace wakes the object;
3. **source**: the GitRepository ``sourceRef`` names gives URL, credentials and timeout;
   ``git.checkout.ref`` (else the GitRepository's ref) is checked out, or the push
   branch's tip when the remote has it; ``git.commit.signingKey``'s Secret gives the key
   commits are signed with (gpg or ssh). When neither the policies nor the branch moved
   since the last run, one ls-remote ends the run (``SourceManagerFailed`` /
   ``GitOperationFailed``);
4. **update**: the Setters markers of the YAML files under ``update.path`` are rewritten
   in place, every other byte kept (``UpdateFailed`` naming the file for YAML that does
   not parse, or a marker naming an ImagePolicy that does not exist);
5. **commit and push**: with ``messageTemplate`` rendered on Flux's template data, to the
   push branch and ``push.refspec``. A push that finds the branch moved starts again from
   a fresh checkout (three attempts); a rejected push is ``GitOperationFailed``. Nothing is
   committed when nothing changed. The GitRepository is woken at once, so the new commit
   flows on to what deploys it.

Status: ``lastAutomationRunTime``, ``lastPushCommit``, ``lastPushTime``,
``observedPolicies``, ``observedSourceRevision``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from fluxd.api import (
    GIT_REPOSITORY,
    IMAGE_POLICY,
    IMAGE_UPDATE_AUTOMATION,
    GitRepositoryRef,
    GitRepositorySpec,
    GitSpec,
    ImageUpdateAutomationSpec,
    LabelSelector,
    SpecError,
    parse_duration,
)
from fluxd.image.message import RemovedTemplateField, TemplateError, commit_message
from fluxd.image.setters import ImageRef, SetterError, SetterResult, apply_setters
from fluxd.kube.objects import ObjectApi, SecretNotFound
from fluxd.labels import LabelMatcher, parse_label_selector
from fluxd.reconcilers.driver import Context, Reconciler
from fluxd.runtime.errors import ReconcileError
from fluxd.runtime.keys import ObjectKey
from fluxd.runtime.tenancy import UNRESTRICTED, Tenancy
from fluxd.sources import git

__all__ = ["ImageUpdateAutomationReconciler"]

GIT_OPERATION_FAILED: Final = "GitOperationFailed"
INVALID_SOURCE_CONFIG: Final = "InvalidSourceConfig"
SOURCE_MANAGER_FAILED: Final = "SourceManagerFailed"
UPDATE_FAILED: Final = "UpdateFailed"
READY_MESSAGE: Final = "repository up-to-date"
DEFAULT_GIT_TIMEOUT: Final = 60.0
PUSH_ATTEMPTS: Final = 3


@dataclass(frozen=True)
class _Source:
    """Where and how the automation reads and writes git."""

    url: str
    auth: git.GitAuth
    timeout: float
    checkout_ref: GitRepositoryRef
    branch: str
    refspecs: tuple[git.Refspec, ...]
    switches_branch: bool
    sign: Callable[[bytes], bytes] | None


class ImageUpdateAutomationReconciler(Reconciler[ImageUpdateAutomationSpec]):
    """``image.toolkit.fluxcd.io/v1`` ImageUpdateAutomation."""

    kind = IMAGE_UPDATE_AUTOMATION

    def __init__(
        self,
        *,
        objects: ObjectApi,
        track_sources: Callable[[ObjectKey, Iterable[ObjectKey]], None],
        enqueue: Callable[[ObjectKey], None],
        tenancy: Tenancy = UNRESTRICTED,
    ) -> None:
        self.objects = objects
        self.tenancy = tenancy
        self.track_sources = track_sources
        self.enqueue = enqueue

    def forget(self, key: ObjectKey) -> None:
        self.track_sources(key, ())

    async def reconcile(self, ctx: Context[ImageUpdateAutomationSpec]) -> None:
        spec = ctx.spec
        ctx.status["lastAutomationRunTime"] = _now()
        git_spec = _git_spec(spec)
        namespace = ctx.key.namespace
        self.track_sources(ctx.key, [ObjectKey.every(IMAGE_POLICY.kind, namespace)])
        policies = self._policies(namespace, spec.policy_selector)
        observed = {name: dict(ref) for name, ref in sorted(policies.items())}
        source = await self._source(namespace, spec, git_spec)
        if await self._up_to_date(ctx, source, observed):
            ctx.ready_message = READY_MESSAGE
            return
        refs = {
            f"{namespace}:{name}": ImageRef(ref["name"], ref["tag"], ref.get("digest", ""))
            for name, ref in policies.items()
        }
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            checkout = await _checkout(source)
            result = self._update(checkout, spec.update.path, refs, namespace)
            if not result.files:
                ctx.status["observedSourceRevision"] = checkout.commit.revision
                ctx.status["observedPolicies"] = observed
                ctx.ready_message = READY_MESSAGE
                return
            message = _message(git_spec, ctx.key, result)
            author = git_spec.commit.author
            try:
                sha = await git.commit_and_push(
                    checkout,
                    source.url,
                    source.auth,
                    source.timeout,
                    files={update.path: update.content for update in result.files},
                    author=git.Author(author.name or "", author.email),
                    message=message,
                    refspecs=source.refspecs,
                    options=git_spec.push.options if git_spec.push else None,
                    sign=source.sign,
                )
            except git.PushConflict as error:
                if attempt == PUSH_ATTEMPTS:
                    raise ReconcileError(
                        GIT_OPERATION_FAILED,
                        f"failed to update source: {error.message}, {attempt} times",
                    ) from error
                ctx.log.info("push conflict: retrying on a fresh checkout", error=error.message)
                continue
            except git.GitError as error:
                raise ReconcileError(
                    GIT_OPERATION_FAILED, f"failed to update source: {error.message}"
                ) from error
            break
        self._pushed(ctx, source, checkout, sha, message, observed)
        self.enqueue(ObjectKey(GIT_REPOSITORY.kind, *_source_key(spec, namespace)))

    def _pushed(
        self,
        ctx: Context[ImageUpdateAutomationSpec],
        source: _Source,
        checkout: git.Checkout,
        sha: str,
        message: str,
        observed: Mapping[str, Any],
    ) -> None:
        revision = git.format_revision(source.branch, sha)
        ctx.status["observedSourceRevision"] = (
            checkout.commit.revision if source.switches_branch else revision
        )
        ctx.status["observedPolicies"] = dict(observed)
        ctx.status["lastPushCommit"] = sha
        ctx.status["lastPushTime"] = _now()
        summary = f"pushed commit '{sha[:7]}' to branch '{source.branch}'"
        if source.refspecs:
            summary += " and refspecs '" + "', '".join(r.destination for r in source.refspecs)
            summary += "'"
        ctx.event("Normal", "Succeeded", f"{summary}\n{message}", {"revision": revision})
        ctx.ready_message = READY_MESSAGE

    def _policies(
        self, namespace: str, selector: LabelSelector | None
    ) -> dict[str, Mapping[str, str]]:
        """``latestRef`` of every selected ImagePolicy of ``namespace`` that has one."""
        matches = _selector(selector)
        found: dict[str, Mapping[str, str]] = {}
        for obj in self.objects.cached_list(IMAGE_POLICY, namespace):
            metadata = obj["metadata"]
            latest = (obj.get("status") or {}).get("latestRef")
            if latest and latest.get("name") and matches(metadata.get("labels") or {}):
                found[metadata["name"]] = latest
        return found

    async def _source(
        self, namespace: str, spec: ImageUpdateAutomationSpec, git_spec: GitSpec
    ) -> _Source:
        source_namespace, name = _source_key(spec, namespace)
        self.tenancy.check(
            namespace,
            source_namespace,
            f"can't access 'GitRepository/{source_namespace}/{name}', cross-namespace "
            "references have been blocked",
        )
        where = f"GitRepository '{source_namespace}/{name}'"
        obj = await self.objects.read(GIT_REPOSITORY, source_namespace, name)
        if obj is None:
            raise ReconcileError(
                SOURCE_MANAGER_FAILED,
                f"failed configuring source manager: referenced git repository does not"
                f" exist: {where} not found",
            )
        try:
            repository: GitRepositorySpec = GIT_REPOSITORY.parse_spec(obj)
        except SpecError as error:
            raise ReconcileError(
                SOURCE_MANAGER_FAILED, f"failed configuring source manager: {where}: {error}"
            ) from error
        try:
            auth = await git.repository_auth(self.objects, source_namespace, repository)
        except git.CredentialsError as error:
            raise ReconcileError(
                SOURCE_MANAGER_FAILED, f"failed configuring source manager: {error}"
            ) from error
        checkout_ref = (
            git_spec.checkout.ref if git_spec.checkout else repository.ref
        ) or GitRepositoryRef()
        branch = (git_spec.push.branch if git_spec.push else None) or checkout_ref.branch
        if not branch and git_spec.checkout is None and repository.ref is None:
            branch = "master"
        if not branch:
            raise ReconcileError(
                INVALID_SOURCE_CONFIG,
                "push spec not provided, and cannot be inferred from .spec.git.checkout.ref"
                " or GitRepository .spec.ref",
                stalled=True,
            )
        refspecs: tuple[git.Refspec, ...] = ()
        if git_spec.push and git_spec.push.refspec:
            try:
                refspecs = (git.parse_refspec(git_spec.push.refspec, branch),)
            except ValueError as error:
                raise ReconcileError(
                    INVALID_SOURCE_CONFIG, f"spec.git.push.refspec: {error}", stalled=True
                ) from error
        return _Source(
            sign=await self._signer(namespace, git_spec),
            url=repository.url,
            auth=auth,
            timeout=parse_duration(repository.timeout)
            if repository.timeout
            else DEFAULT_GIT_TIMEOUT,
            checkout_ref=checkout_ref,
            branch=branch,
            refspecs=refspecs,
            switches_branch=branch != (checkout_ref.branch or "master"),
        )

    async def _signer(self, namespace: str, git_spec: GitSpec) -> Callable[[bytes], bytes] | None:
        """What signs the commits, from ``git.commit.signingKey``'s Secret."""
        key = git_spec.commit.signing_key
        if key is None:
            return None
        name = key.secret_ref.name
        try:
            data = await self.objects.secret_data(namespace, name)
            return git.commit_signer(data, key.type, secret=f"{namespace}/{name}")
        except SecretNotFound as error:
            raise ReconcileError(
                SOURCE_MANAGER_FAILED,
                f"failed configuring source manager: could not find signing key secret"
                f" '{name}': {error}",
            ) from error
        except git.SigningError as error:
            raise ReconcileError(
                SOURCE_MANAGER_FAILED, f"failed configuring source manager: {error}"
            ) from error

    async def _up_to_date(
        self, ctx: Context[ImageUpdateAutomationSpec], source: _Source, observed: Mapping[str, Any]
    ) -> bool:
        """Whether the last run saw these policies and the branch where it still is."""
        last = ctx.status.get("observedSourceRevision")
        if (
            not last
            or source.switches_branch
            or source.refspecs
            or ctx.status.get("observedPolicies") != observed
            or ctx.status.get("observedGeneration") != ctx.generation
        ):
            return False
        try:
            name, sha = await git.resolve(
                source.url, GitRepositoryRef(branch=source.branch), source.auth, source.timeout
            )
        except git.GitError as error:
            raise ReconcileError(
                GIT_OPERATION_FAILED, f"failed to checkout source: {error.message}"
            ) from error
        return bool(git.format_revision(name, sha) == last)

    def _update(
        self,
        checkout: git.Checkout,
        update_path: str | None,
        refs: Mapping[str, ImageRef],
        namespace: str,
    ) -> SetterResult:
        """The setters applied to the files under ``update.path``."""
        root = _update_root(update_path)
        files = [
            (path, data)
            for path, data in checkout.files.items()
            if not root or path.startswith(root + "/")
        ]
        if root and not files:
            raise ReconcileError(
                UPDATE_FAILED,
                f"failed to apply policies: spec.update.path '{update_path}' does not"
                f" exist in {checkout.commit.revision}",
            )
        try:
            result = apply_setters(files, refs)
        except SetterError as error:
            raise ReconcileError(UPDATE_FAILED, f"failed to apply policies: {error}") from error
        missing = [
            marker
            for marker in result.unknown
            if self.objects.cached(IMAGE_POLICY, *_policy_key(marker.setter, namespace)) is None
        ]
        if missing:
            marker = missing[0]
            ns, name = _policy_key(marker.setter, namespace)
            raise ReconcileError(
                UPDATE_FAILED,
                f"failed to apply policies: {marker.path}:{marker.line}: the marker names"
                f" ImagePolicy '{ns}/{name}', which does not exist; nothing was pushed",
            )
        return result


async def _checkout(source: _Source) -> git.Checkout:
    try:
        return await git.checkout(
            source.url, source.checkout_ref, source.auth, source.timeout, branch=source.branch
        )
    except git.GitError as error:
        raise ReconcileError(
            GIT_OPERATION_FAILED, f"failed to checkout source: {error.message}"
        ) from error


def _git_spec(spec: ImageUpdateAutomationSpec) -> GitSpec:
    if spec.git is None:
        raise ReconcileError(
            INVALID_SOURCE_CONFIG, "spec.git is required: nothing to commit with", stalled=True
        )
    return spec.git


def _message(git_spec: GitSpec, key: ObjectKey, result: SetterResult) -> str:
    commit = git_spec.commit
    try:
        return commit_message(
            commit.message_template,
            namespace=key.namespace,
            name=key.name,
            result=result,
            values=commit.message_template_values,
        )
    except RemovedTemplateField as error:
        raise ReconcileError("RemovedTemplateField", str(error), stalled=True) from error
    except TemplateError as error:
        raise ReconcileError(
            GIT_OPERATION_FAILED,
            f"spec.git.commit.messageTemplate: unable to render: {error}",
            stalled=True,
        ) from error


def _selector(selector: LabelSelector | None) -> LabelMatcher:
    """``policySelector`` as a predicate; ``InvalidPolicySelector`` (stalled) when bad."""
    if selector is None:
        return lambda labels: True
    parts = [f"{key}={value}" for key, value in sorted(selector.match_labels.items())]
    operators = {"In": "in", "NotIn": "notin"}
    for requirement in selector.match_expressions:
        if requirement.operator in operators:
            values = ",".join(requirement.values)
            parts.append(f"{requirement.key} {operators[requirement.operator]} ({values})")
        elif requirement.operator == "Exists":
            parts.append(requirement.key)
        elif requirement.operator == "DoesNotExist":
            parts.append(f"!{requirement.key}")
        else:
            raise ReconcileError(
                "InvalidPolicySelector",
                f"spec.policySelector: '{requirement.operator}' is not a valid label selector"
                " operator (In, NotIn, Exists, DoesNotExist)",
                stalled=True,
            )
    try:
        return parse_label_selector(",".join(parts))
    except ValueError as error:
        raise ReconcileError(
            "InvalidPolicySelector", f"spec.policySelector: {error}", stalled=True
        ) from error


def _source_key(spec: ImageUpdateAutomationSpec, namespace: str) -> tuple[str, str]:
    return spec.source_ref.namespace or namespace, spec.source_ref.name


def _policy_key(setter: str, namespace: str) -> tuple[str, str]:
    """The ImagePolicy a marker's setter (``ns:name[:field]``) names."""
    parts = setter.split(":")
    if len(parts) == 1:
        return namespace, parts[0]
    return parts[0], parts[1]


def _update_root(path: str | None) -> str:
    """``update.path`` relative to the repository root, without ``./`` or slashes."""
    if not path:
        return ""
    normal = posixpath.normpath(path.strip().lstrip("/"))
    if normal.startswith(".."):
        raise ReconcileError(
            UPDATE_FAILED, f"spec.update.path '{path}' points outside the repository", stalled=True
        )
    return "" if normal == "." else normal


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
