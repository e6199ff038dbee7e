"""``fluxd create``: write a Flux object from flags, as ``flux create`` does.

``create source git|helm|oci|bucket NAME``, ``create kustomization NAME`` (``ks``) and
``create helmrelease NAME`` (``hr``) take Flux's main flags and build the object's
``apiVersion``, ``kind``, ``metadata`` and ``spec`` the way Flux builds them (its
defaults: a one-minute interval, path ``./``, ``prune: false``, a GitRepository
source, the ``ChartVersion`` reconcile strategy). ``--export`` prints that object as
YAML and touches nothing; otherwise it is server-side applied and the command waits,
as Flux waits, until the object is Ready for its current generation, printing
``✚ generating``, ``► applying``, ``✔ created``, ``◎ waiting`` and ``✔ ready`` on
stderr. Bad flags are one ``✗`` line and exit status 1 before anything is applied; a
reconciliation that fails (Stalled) or outlasts ``--timeout`` exits 1 with its message.
The builders are pure and tested without a cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fluxd.cli.session import CommandError, run_session

if TYPE_CHECKING:
    from fluxd.kube.client import ApiClient
    from fluxd.kube.resources import Resource

__all__ = [
    "add_create_command",
    "bucket_spec",
    "depends_on",
    "git_repository_spec",
    "helm_repository_spec",
    "helmrelease_spec",
    "kustomization_spec",
    "manifest",
    "oci_repository_spec",
    "source_reference",
]

FIELD_MANAGER = "fluxd"
POLL_SECONDS = 0.5
KUSTOMIZATION_SOURCES = ("GitRepository", "OCIRepository", "Bucket", "ExternalArtifact")
HELMRELEASE_SOURCES = ("HelmRepository", "GitRepository", "Bucket")


def _interval(text: str) -> str:
    """A duration in Go's form (``1m0s``), as Flux writes the intervals it generates."""
    from fluxd.api import format_duration, parse_duration

    return format_duration(parse_duration(text))


def _secret(name: str | None) -> dict[str, Any]:
    return {"secretRef": {"name": name}} if name else {}


def git_repository_spec(
    *,
    url: str,
    interval: str,
    branch: str | None = None,
    tag: str | None = None,
    semver: str | None = None,
    secret_ref: str | None = None,
) -> dict[str, Any]:
    """A GitRepository's spec; :class:`ValueError` for a URL Flux refuses or no ref."""
    if not url:
        raise ValueError("url is required (--url)")
    scheme = urlsplit(url).scheme
    if scheme not in ("ssh", "http", "https"):
        raise ValueError(f"git URL scheme '{scheme}' not supported, can be: ssh, http and https")
    if semver:
        ref = {"semver": semver}
    elif tag:
        ref = {"tag": tag}
    elif branch:
        ref = {"branch": branch}
    else:
        raise ValueError("a Git ref is required, use one of: --branch, --tag or --tag-semver")
    return {"interval": _interval(interval), "ref": ref, "url": url, **_secret(secret_ref)}


def helm_repository_spec(
    *, url: str, interval: str, secret_ref: str | None = None
) -> dict[str, Any]:
    """A HelmRepository's spec; an ``oci://`` URL makes it an OCI repository."""
    if not url:
        raise ValueError("url is required (--url)")
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https", "oci"):
        raise ValueError(
            f"Helm repository URL scheme '{scheme}' not supported, can be: http, https and oci"
        )
    oci = {"type": "oci"} if scheme == "oci" else {}
    return {"interval": _interval(interval), "url": url, **oci, **_secret(secret_ref)}


def oci_repository_spec(
    *,
    url: str,
    interval: str,
    tag: str | None = None,
    semver: str | None = None,
    digest: str | None = None,
    secret_ref: str | None = None,
) -> dict[str, Any]:
    """An OCIRepository's spec; :class:`ValueError` for a non-``oci://`` URL or no ref."""
    if not url:
        raise ValueError("url is required (--url)")
    if urlsplit(url).scheme != "oci":
        raise ValueError(f"OCI repository URL '{url}' must start with oci://")
    if digest:
        ref = {"digest": digest}
    elif semver:
        ref = {"semver": semver}
    elif tag:
        ref = {"tag": tag}
    else:
        raise ValueError("one of --tag, --tag-semver or --digest is required")
    return {"interval": _interval(interval), "ref": ref, "url": url, **_secret(secret_ref)}


def bucket_spec(
    *,
    bucket_name: str,
    endpoint: str,
    interval: str,
    provider: str = "generic",
    region: str | None = None,
    insecure: bool = False,
    secret_ref: str | None = None,
) -> dict[str, Any]:
    """A Bucket's spec; :class:`ValueError` without a bucket name or endpoint."""
    if not bucket_name:
        raise ValueError("bucket name is required (--bucket-name)")
    if not endpoint:
        raise ValueError("endpoint is required (--endpoint)")
    spec: dict[str, Any] = {
        "bucketName": bucket_name,
        "endpoint": endpoint,
        "interval": _interval(interval),
        "provider": provider,
    }
    if region:
        spec["region"] = region
    if insecure:
        spec["insecure"] = True
    return {**spec, **_secret(secret_ref)}


def source_reference(
    text: str, *, default_kind: str | None, kinds: Sequence[str]
) -> dict[str, str]:
    """``[<kind>/]<name>[.<namespace>]`` as a ``sourceRef``; :class:`ValueError` for a kind
    not in ``kinds`` or a missing kind without ``default_kind``."""
    kind, slash, rest = text.partition("/")
    if not slash:
        kind, rest = default_kind or "", text
    name, _, namespace = rest.partition(".")
    if kind not in kinds:
        raise ValueError(
            f"source kind '{kind}' is not supported, must be one of: {', '.join(kinds)}"
            f" (write --source <kind>/<name>[.<namespace>])"
        )
    if not name:
        raise ValueError(f"source '{text}' has no name: write <kind>/<name>[.<namespace>]")
    ref = {"kind": kind, "name": name}
    if namespace:
        ref["namespace"] = namespace
    return ref


def depends_on(items: Sequence[str]) -> list[dict[str, str]]:
    """``--depends-on`` entries (``<name>`` or ``<namespace>/<name>``, commas allowed)."""
    found: list[dict[str, str]] = []
    for item in (part.strip() for text in items for part in text.split(",")):
        if not item:
            continue
        namespace, slash, name = item.rpartition("/")
        if slash and not (namespace and name):
            raise ValueError(f"--depends-on '{item}': write <name> or <namespace>/<name>")
        found.append({"name": name, **({"namespace": namespace} if namespace else {})})
    return found


def kustomization_spec(
    *,
    source: str,
    interval: str,
    path: str = "./",
    prune: bool = False,
    wait: bool = False,
    target_namespace: str | None = None,
    depends: Sequence[str] = (),
) -> dict[str, Any]:
    """A Kustomization's spec."""
    if not source:
        raise ValueError("source is required (--source)")
    spec: dict[str, Any] = {
        "interval": _interval(interval),
        "path": path,
        "prune": prune,
        "sourceRef": source_reference(
            source, default_kind="GitRepository", kinds=KUSTOMIZATION_SOURCES
        ),
    }
    if wait:
        spec["wait"] = True
    if target_namespace:
        spec["targetNamespace"] = target_namespace
    if depends:
        spec["dependsOn"] = depends_on(depends)
    return spec


def helmrelease_spec(
    *,
    source: str,
    chart: str,
    interval: str,
    chart_version: str | None = None,
    values: Mapping[str, Any] | None = None,
    release_name: str | None = None,
    target_namespace: str | None = None,
    depends: Sequence[str] = (),
) -> dict[str, Any]:
    """A HelmRelease's spec with a chart template."""
    if not source:
        raise ValueError("source is required (--source)")
    if not chart:
        raise ValueError("chart name or path is required (--chart)")
    chart_spec: dict[str, Any] = {
        "chart": chart,
        "reconcileStrategy": "ChartVersion",
        "sourceRef": source_reference(source, default_kind=None, kinds=HELMRELEASE_SOURCES),
    }
    if chart_version:
        chart_spec["version"] = chart_version
    spec: dict[str, Any] = {"chart": {"spec": chart_spec}, "interval": _interval(interval)}
    if release_name:
        spec["releaseName"] = release_name
    if target_namespace:
        spec["targetNamespace"] = target_namespace
    if depends:
        spec["dependsOn"] = depends_on(depends)
    if values:
        spec["values"] = dict(values)
    return spec


def manifest(
    kind: str, name: str, namespace: str, spec: Mapping[str, Any], labels: Mapping[str, str]
) -> dict[str, Any]:
    """The whole object: apiVersion (the storage version fluxd serves), kind, metadata, spec."""
    from fluxd.api import lookup

    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": lookup(kind).api_version,
        "kind": kind,
        "metadata": metadata,
        "spec": dict(spec),
    }


def _labels(items: Sequence[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in (part for text in items for part in text.split(",") if part):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"invalid label format '{item}', must be key=value")
        labels[key] = value
    return labels


def _values(paths: Sequence[str]) -> dict[str, Any]:
    """The ``--values`` files merged in order, later keys winning at the top level."""
    from fluxd.yaml import YamlError, load_values

    merged: dict[str, Any] = {}
    for path in (part for text in paths for part in text.split(",") if part):
        try:
            documents = load_values(Path(path).read_bytes(), source=path)
        except (OSError, YamlError) as error:
            raise ValueError(f"reading values from {path} failed: {error}") from None
        for document in documents:
            if not isinstance(document, dict):
                raise ValueError(f"values file {path} is not a YAML mapping")
            merged.update(document)
    return merged


@dataclass(frozen=True, slots=True)
class _Kind:
    """How one kind is built from its flags and spoken of in messages."""

    kind: str
    human: str
    build: Callable[[argparse.Namespace], dict[str, Any]]
    ready: Callable[[str, Mapping[str, Any]], list[str]]


def _source_ready(human: str) -> Callable[[str, Mapping[str, Any]], list[str]]:
    def lines(_: str, obj: Mapping[str, Any]) -> list[str]:
        revision = ((obj.get("status") or {}).get("artifact") or {}).get("revision") or ""
        return [f"{human} reconciliation completed", f"fetched revision: {revision}"]

    return lines


def _kustomization_ready(name: str, obj: Mapping[str, Any]) -> list[str]:
    revision = (obj.get("status") or {}).get("lastAppliedRevision") or ""
    return [f"Kustomization {name} is ready", f"applied revision {revision}"]


def _helmrelease_ready(name: str, obj: Mapping[str, Any]) -> list[str]:
    status = obj.get("status") or {}
    history = status.get("history") or [{}]
    revision = history[0].get("chartVersion") or status.get("lastAttemptedRevision") or ""
    return [f"HelmRelease {name} is ready", f"applied revision {revision}"]


_KINDS = {
    "git": _Kind(
        "GitRepository",
        "GitRepository source",
        lambda a: git_repository_spec(
            url=a.url,
            interval=a.interval,
            branch=a.branch,
            tag=a.tag,
            semver=a.tag_semver,
            secret_ref=a.secret_ref,
        ),
        _source_ready("GitRepository source"),
    ),
    "helm": _Kind(
        "HelmRepository",
        "HelmRepository source",
        lambda a: helm_repository_spec(url=a.url, interval=a.interval, secret_ref=a.secret_ref),
        _source_ready("HelmRepository source"),
    ),
    "oci": _Kind(
        "OCIRepository",
        "OCIRepository",
        lambda a: oci_repository_spec(
            url=a.url,
            interval=a.interval,
            tag=a.tag,
            semver=a.tag_semver,
            digest=a.digest,
            secret_ref=a.secret_ref,
        ),
        _source_ready("OCIRepository"),
    ),
    "bucket": _Kind(
        "Bucket",
        "Bucket source",
        lambda a: bucket_spec(
            bucket_name=a.bucket_name,
            endpoint=a.endpoint,
            interval=a.interval,
            provider=a.provider,
            region=a.region,
            insecure=a.insecure,
            secret_ref=a.secret_ref,
        ),
        _source_ready("Bucket source"),
    ),
    "kustomization": _Kind(
        "Kustomization",
        "Kustomization",
        lambda a: kustomization_spec(
            source=a.source,
            interval=a.interval,
            path=a.path,
            prune=a.prune,
            wait=a.wait,
            target_namespace=a.target_namespace,
            depends=a.depends_on,
        ),
        _kustomization_ready,
    ),
    "helmrelease": _Kind(
        "HelmRelease",
        "HelmRelease",
        lambda a: helmrelease_spec(
            source=a.source,
            chart=a.chart,
            interval=a.interval,
            chart_version=a.chart_version,
            values=_values(a.values),
            release_name=a.release_name,
            target_namespace=a.target_namespace,
            depends=a.depends_on,
        ),
        _helmrelease_ready,
    ),
}


def add_create_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``create`` and its kinds to the command line."""
    create = commands.add_parser(
        "create",
        help="create or update Flux objects",
        description="Create or update Flux objects, as 'flux create' does.",
    )
    nouns = create.add_subparsers(dest="noun", required=True)
    sources = nouns.add_parser("source", help="sources: git, helm, oci, bucket")
    source_kinds = sources.add_subparsers(dest="source_kind", required=True)

    git = _leaf(source_kinds, "git", "create or update a GitRepository source")
    git.add_argument("--url", default="", help="git address, e.g. https://host/org/repository")
    git.add_argument("--branch", help="git branch")
    git.add_argument("--tag", help="git tag")
    git.add_argument("--tag-semver", help="git tag semver range")
    _secret_flag(git, "an existing secret with SSH or basic auth credentials")

    helm = _leaf(source_kinds, "helm", "create or update a HelmRepository source")
    helm.add_argument("--url", default="", help="Helm repository address (http, https, oci)")
    _secret_flag(helm, "an existing secret with TLS, basic auth or docker-config credentials")

    oci = _leaf(source_kinds, "oci", "create or update an OCIRepository source")
    oci.add_argument("--url", default="", help="the OCI repository URL, oci://...")
    oci.add_argument("--tag", help="the OCI artifact tag")
    oci.add_argument("--tag-semver", help="the OCI artifact tag semver range")
    oci.add_argument("--digest", help="the OCI artifact digest")
    _secret_flag(oci, "an existing image pull secret")

    bucket = _leaf(source_kinds, "bucket", "create or update a Bucket source")
    bucket.add_argument("--bucket-name", default="", help="the bucket name")
    bucket.add_argument("--endpoint", default="", help="the bucket endpoint address")
    bucket.add_argument("--provider", default="generic", choices=("generic", "aws", "gcp", "azure"))
    bucket.add_argument("--region", help="the bucket region")
    bucket.add_argument("--insecure", action="store_true", help="plain HTTP endpoint")
    _secret_flag(bucket, "an existing secret with the bucket credentials")

    ks = _leaf(nouns, "kustomization", "create or update a Kustomization", aliases=["ks"])
    ks.add_argument("--source", default="", help="[<kind>/]<name>[.<namespace>] of the source")
    ks.add_argument("--path", default="./", help="path to the directory to apply")
    ks.add_argument("--prune", action="store_true", help="enable garbage collection")
    ks.add_argument("--wait", action="store_true", help="health-check all applied objects")
    ks.add_argument("--target-namespace", help="namespace for all the objects it applies")
    _depends_flag(ks)

    hr = _leaf(nouns, "helmrelease", "create or update a HelmRelease", aliases=["hr"])
    hr.add_argument("--source", default="", help="<kind>/<name>[.<namespace>] of the chart source")
    hr.add_argument("--chart", default="", help="Helm chart name or path")
    hr.add_argument("--chart-version", help="Helm chart version, a semver range is accepted")
    hr.add_argument("--values", action="append", default=[], help="local values.yaml files")
    hr.add_argument("--release-name", help="the Helm release name")
    hr.add_argument("--target-namespace", help="namespace to install the release in")
    _depends_flag(hr)


def _leaf(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    word: str,
    summary: str,
    *,
    aliases: Sequence[str] = (),
) -> argparse.ArgumentParser:
    """One ``create`` leaf with the flags every kind takes."""
    command = commands.add_parser(word, aliases=list(aliases), help=summary, description=summary)
    command.add_argument("name", help="the object's name")
    command.add_argument("--interval", default="1m", help="reconciliation interval (default 1m)")
    command.add_argument(
        "--export", action="store_true", help="print the object as YAML and apply nothing"
    )
    command.add_argument(
        "--label", action="append", default=[], help="set a label, key=value (repeatable)"
    )
    command.add_argument(
        "-n", "--namespace", default="flux-system", help="namespace (default flux-system)"
    )
    command.add_argument("--timeout", default="5m", help="how long to wait for Ready (default 5m)")
    command.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    command.set_defaults(handler=_create, create_kind=_KINDS[word])
    return command


def _secret_flag(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument("--secret-ref", help=f"the name of {what}")


def _depends_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--depends-on",
        action="append",
        default=[],
        help="<name> or <namespace>/<name> that must be ready first (repeatable)",
    )


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _create(args: argparse.Namespace) -> int:
    from fluxd.api import parse_duration
    from fluxd.cli.export import render_exports

    kind: _Kind = args.create_kind
    try:
        timeout = parse_duration(args.timeout)
        obj = manifest(kind.kind, args.name, args.namespace, kind.build(args), _labels(args.label))
    except ValueError as error:
        _say(f"✗ {error}")
        return 1
    if args.export:
        sys.stdout.write(render_exports([obj]))
        return 0
    _say(f"✚ generating {kind.human}")

    async def work(api: ApiClient) -> int:
        from fluxd.api import lookup
        from fluxd.kube.client import get, patch
        from fluxd.kube.objects import resource_of

        resource = resource_of(lookup(kind.kind))
        _say(f"► applying {kind.human}")
        existing = await get(api, resource, args.namespace, args.name, missing_ok=True)
        await patch(
            api,
            resource,
            args.namespace,
            args.name,
            obj,
            patch_type="apply",
            field_manager=FIELD_MANAGER,
            force=True,
        )
        _say(f"✔ {kind.human} {'created' if existing is None else 'updated'}")
        _say(f"◎ waiting for {kind.human} reconciliation")
        ready = await _wait_ready(api, resource, args.namespace, args.name, kind.human, timeout)
        for line in kind.ready(args.name, ready):
            _say(f"✔ {line}")
        return 0

    return run_session(args.kubeconfig, work)


def _ready_state(obj: Mapping[str, Any]) -> tuple[bool, str | None]:
    """``(ready, failure)`` for the object's current generation: ready when Ready is
    True, a failure message when it is Stalled; neither while it is still reconciling."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False, None
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready") or {}
    if ready.get("status") == "True":
        return True, None
    stalled = conditions.get("Stalled") or {}
    if stalled.get("status") == "True":
        return False, str(stalled.get("message") or ready.get("message") or "")
    return False, None


async def _wait_ready(
    api: ApiClient, resource: Resource, namespace: str, name: str, human: str, wait_seconds: float
) -> dict[str, Any]:
    from fluxd.kube.client import get

    deadline = time.monotonic() + wait_seconds
    while True:
        obj = await get(api, resource, namespace, name)
        ready, failure = _ready_state(obj)
        if ready:
            return obj
        if failure is not None:
            raise CommandError(f"{human} reconciliation failed: {failure}")
        if time.monotonic() > deadline:
            conditions = (obj.get("status") or {}).get("conditions") or []
            last = next((c.get("message") for c in conditions if c.get("type") == "Ready"), None)
            raise CommandError(
                f"timeout waiting for {human} reconciliation"
                + (f": last status: {last}" if last else "")
            )
        await asyncio.sleep(POLL_SECONDS)
