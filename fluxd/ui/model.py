"""What the status UI shows, computed from the object dicts the informers hold.

Pure functions, no I/O: the server hands them the cached objects and serves what they
return as JSON, so a page view costs no API request and every rule here is unit-tested
on plain dicts.

- :func:`row`: one overview line per object: its state (one word the UI colours), the
  Ready reason and message, the revision a user compares with git, suspension and the
  last reconcile;
- :func:`references`: what an object is built from or reacts to (its source, chart,
  ``dependsOn``, image repository, provider...), the edges of :func:`graph`;
- :func:`detail`: the object page: conditions, inventory, history, source, the objects
  it depends on and the ones depending on it, and an allow-list of spec fields.

Secrets never reach the UI: the spec block is an allow-list of fields that cannot hold
credentials (no HelmRelease ``values``, no postBuild ``substitute``, no Provider
``address``) and URLs lose their userinfo.
"""

from __future__ import annotations

import urllib.parse
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fluxd.apply import parse as parse_inventory
from fluxd.runtime import conditions
from fluxd.runtime.metrics import LastReconcile

__all__ = [
    "EdgeType",
    "Reference",
    "State",
    "detail",
    "graph",
    "inventory",
    "kind_counts",
    "object_key",
    "references",
    "row",
    "source_of",
    "spec_summary",
    "state_of",
    "strip_userinfo",
]

State = Literal["ready", "failed", "stalled", "progressing", "suspended", "unknown"]
EdgeType = Literal["source", "dependsOn", "chart", "policy", "provider", "alert", "receiver"]
#: The objects the model reads: ``(kind, object dict)`` pairs, as the informers hold them.
Objects = Iterable[tuple[str, Mapping[str, Any]]]


def object_key(kind: str, namespace: str, name: str) -> str:
    """``Kind/namespace/name``: how the UI names an object in URLs, rows and graph nodes."""
    return f"{kind}/{namespace}/{name}"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _namespace(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("namespace") or "")


def _name(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name") or "")


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def state_of(obj: Mapping[str, Any]) -> State:
    """One word for the object's state.

    ``suspended`` wins (nothing happens to a suspended object, whatever it last
    reported); then ``Stalled=True`` (only a spec change helps); then ``Ready=False``
    (failing, retried with backoff, even while ``Reconciling`` says it retries); then
    ``Ready=Unknown`` or ``Reconciling=True`` (work under way); ``unknown`` when fluxd has
    not written a Ready condition yet.
    """
    if _spec(obj).get("suspend") is True:
        return "suspended"
    status = _status(obj)
    stalled = conditions.get(status, conditions.STALLED)
    if stalled is not None and stalled.get("status") == "True":
        return "stalled"
    ready = conditions.get(status, conditions.READY)
    reconciling = conditions.get(status, conditions.RECONCILING)
    if ready is not None and ready.get("status") == "False":
        return "failed"
    if (ready is not None and ready.get("status") == "Unknown") or (
        reconciling is not None and reconciling.get("status") == "True"
    ):
        return "progressing"
    if ready is not None and ready.get("status") == "True":
        return "ready"
    return "unknown"


def _revision(kind: str, obj: Mapping[str, Any]) -> str:
    """The revision ``flux get`` shows for the kind."""
    status = _status(obj)
    if kind == "Kustomization":
        return str(status.get("lastAppliedRevision") or status.get("lastAttemptedRevision") or "")
    if kind == "HelmRelease":
        history = status.get("history") or []
        if history and isinstance(history[0], Mapping) and history[0].get("chartVersion"):
            return str(history[0]["chartVersion"])
        return str(status.get("lastAttemptedRevision") or "")
    if kind == "ImagePolicy":
        latest = status.get("latestRef") or {}
        if isinstance(latest, Mapping) and latest.get("name"):
            tag = f":{latest['tag']}" if latest.get("tag") else ""
            return f"{latest['name']}{tag}"
        return ""
    if kind == "ImageRepository":
        scan = status.get("lastScanResult") or {}
        return f"{scan.get('tagCount', 0)} tags" if isinstance(scan, Mapping) and scan else ""
    if kind == "ImageUpdateAutomation":
        return str(status.get("lastPushCommit") or "")
    artifact = status.get("artifact") or {}
    return str(artifact.get("revision") or "") if isinstance(artifact, Mapping) else ""


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row(kind: str, obj: Mapping[str, Any], last: LastReconcile | None = None) -> dict[str, Any]:
    """The overview line of one object; ``last`` is its latest reconcile, if fluxd ran one."""
    namespace, name = _namespace(obj), _name(obj)
    ready = conditions.get(_status(obj), conditions.READY) or {}
    return {
        "key": object_key(kind, namespace, name),
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "state": state_of(obj),
        "reason": str(ready.get("reason") or ""),
        "message": str(ready.get("message") or ""),
        "revision": _revision(kind, obj),
        "suspended": _spec(obj).get("suspend") is True,
        "lastReconcile": _iso(last.finished) if last else None,
        "duration": round(last.seconds, 6) if last else None,
    }


def kind_counts(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Objects per kind, and per state within each kind, kinds in name order."""
    per_kind: dict[str, Counter[str]] = {}
    for line in rows:
        per_kind.setdefault(line["kind"], Counter())[line["state"]] += 1
    return [
        {"kind": kind, "count": sum(states.values()), "states": dict(sorted(states.items()))}
        for kind, states in sorted(per_kind.items())
    ]


# -------------------------------------------------------------------------- references


@dataclass(frozen=True, slots=True)
class Reference:
    """An edge: ``upstream`` feeds or triggers ``downstream``, keys as :func:`object_key`."""

    upstream: str
    downstream: str
    type: EdgeType


def _ref_key(ref: Any, default_kind: str, default_namespace: str) -> str | None:
    if not isinstance(ref, Mapping) or not ref.get("name"):
        return None
    kind = str(ref.get("kind") or default_kind)
    namespace = str(ref.get("namespace") or default_namespace)
    return object_key(kind, namespace, str(ref["name"]))


def _helm_chart_key(obj: Mapping[str, Any]) -> str | None:
    """The HelmChart a HelmRelease's ``spec.chart`` template becomes: the one its status
    names, else the one fluxd creates (``<namespace>-<name>`` in the source's namespace)."""
    recorded = str(_status(obj).get("helmChart") or "")
    if "/" in recorded:
        namespace, _, name = recorded.partition("/")
        return object_key("HelmChart", namespace, name)
    template = (_spec(obj).get("chart") or {}).get("spec") or {}
    source = template.get("sourceRef") if isinstance(template, Mapping) else None
    if not isinstance(source, Mapping):
        return None
    namespace = str(source.get("namespace") or _namespace(obj))
    return object_key("HelmChart", namespace, f"{_namespace(obj)}-{_name(obj)}")


def source_of(kind: str, obj: Mapping[str, Any]) -> str | None:
    """The key of the object this one is built from (reconciled by ``--with-source``)."""
    spec, namespace = _spec(obj), _namespace(obj)
    if kind in ("Kustomization", "HelmChart", "ImageUpdateAutomation"):
        return _ref_key(spec.get("sourceRef"), "GitRepository", namespace)
    if kind == "HelmRelease":
        if spec.get("chartRef"):
            return _ref_key(spec.get("chartRef"), "HelmChart", namespace)
        return _helm_chart_key(obj)
    if kind == "ImagePolicy":
        return _ref_key(spec.get("imageRepositoryRef"), "ImageRepository", namespace)
    return None


def _labels_match(obj: Mapping[str, Any], selector: Any) -> bool:
    if not isinstance(selector, Mapping):
        return True
    labels = _meta(obj).get("labels") or {}
    wanted = selector.get("matchLabels") or {}
    return all(labels.get(key) == value for key, value in wanted.items())


def _matching(
    ref: Mapping[str, Any], default_namespace: str, objects: Sequence[tuple[str, Mapping[str, Any]]]
) -> Iterator[str]:
    """Keys of the objects an Alert's event source or a Receiver's resource names: one by
    name, or every one of the kind (``*``) matching ``matchLabels``."""
    kind = str(ref.get("kind") or "")
    namespace = str(ref.get("namespace") or default_namespace)
    name = str(ref.get("name") or "")
    if name and name != "*":
        yield object_key(kind, namespace, name)
        return
    for other_kind, other in objects:
        if other_kind == kind and _namespace(other) == namespace and _labels_match(other, ref):
            yield object_key(kind, namespace, _name(other))


def references(
    kind: str, obj: Mapping[str, Any], objects: Sequence[tuple[str, Mapping[str, Any]]] = ()
) -> list[Reference]:
    """Every edge that ends or starts at ``obj``, from its own spec; ``objects`` resolve
    the references by selector (Alert sources, Receiver resources, automation policies)."""
    spec, namespace = _spec(obj), _namespace(obj)
    key = object_key(kind, namespace, _name(obj))
    found: list[Reference] = []

    def upstream(other: str | None, edge: EdgeType) -> None:
        if other is not None:
            found.append(Reference(other, key, edge))

    source = source_of(kind, obj)
    if kind == "HelmRelease":
        upstream(source, "chart")
    else:
        upstream(source, "source")
    if kind in ("Kustomization", "HelmRelease"):
        for dependency in spec.get("dependsOn") or []:
            upstream(_ref_key(dependency, kind, namespace), "dependsOn")
    if kind == "ImageUpdateAutomation":
        selector = spec.get("policySelector")
        for other_kind, other in objects:
            if (
                other_kind == "ImagePolicy"
                and _namespace(other) == namespace
                and _labels_match(other, selector)
            ):
                upstream(object_key("ImagePolicy", namespace, _name(other)), "policy")
    if kind == "Alert":
        upstream(_ref_key(spec.get("providerRef"), "Provider", namespace), "provider")
        for event_source in spec.get("eventSources") or []:
            if isinstance(event_source, Mapping):
                for watched in _matching(event_source, namespace, objects):
                    upstream(watched, "alert")
    if kind == "Receiver":
        for resource in spec.get("resources") or []:
            if isinstance(resource, Mapping):
                found.extend(
                    Reference(key, target, "receiver")
                    for target in _matching(resource, namespace, objects)
                )
    return found


def _split_key(key: str) -> tuple[str, str, str]:
    kind, namespace, name = key.split("/", 2)
    return kind, namespace, name


def _keyref(key: str, states: Mapping[str, State]) -> dict[str, Any]:
    kind, namespace, name = _split_key(key)
    return {
        "key": key,
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "state": states.get(key, "unknown"),
    }


def _all_edges(objects: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Reference]:
    edges: list[Reference] = []
    seen: set[Reference] = set()
    for kind, obj in objects:
        for edge in references(kind, obj, objects):
            if edge not in seen:
                seen.add(edge)
                edges.append(edge)
    return edges


def graph(objects: Objects) -> dict[str, Any]:
    """Nodes (every object, plus the missing objects something refers to, in state
    ``unknown``) and edges from upstream to downstream."""
    listed = list(objects)
    states = {object_key(kind, _namespace(obj), _name(obj)): state_of(obj) for kind, obj in listed}
    edges = _all_edges(listed)
    keys = dict.fromkeys(states)
    for edge in edges:
        keys.setdefault(edge.upstream)
        keys.setdefault(edge.downstream)
    return {
        "nodes": [_keyref(key, states) for key in sorted(keys)],
        "edges": [
            {"from": edge.upstream, "to": edge.downstream, "type": edge.type} for edge in edges
        ],
    }


# -------------------------------------------------------------------------- the object page


def strip_userinfo(url: str) -> str:
    """``url`` without ``user:password@``; anything that is not a URL is returned as is."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


#: Spec fields shown on the object page: none of them can carry a credential.
_SPEC_FIELDS = ("interval", "path", "sourceRef", "chartRef", "image", "suspend", "timeout")


def spec_summary(kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The allow-listed, non-secret part of the spec."""
    spec = _spec(obj)
    summary = {field: spec[field] for field in _SPEC_FIELDS if field in spec}
    for field in ("url", "endpoint"):
        if isinstance(spec.get(field), str):
            summary[field] = strip_userinfo(spec[field])
    template = (spec.get("chart") or {}).get("spec") if kind == "HelmRelease" else spec
    if isinstance(template, Mapping) and kind in ("HelmRelease", "HelmChart"):
        for field in ("chart", "version"):
            if isinstance(template.get(field), str):
                summary[field] = template[field]
        if kind == "HelmRelease" and isinstance(template.get("sourceRef"), Mapping):
            summary["sourceRef"] = dict(template["sourceRef"])
    return summary


def _conditions(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "type": str(condition.get("type") or ""),
            "status": str(condition.get("status") or ""),
            "reason": str(condition.get("reason") or ""),
            "message": str(condition.get("message") or ""),
            "lastTransitionTime": condition.get("lastTransitionTime"),
        }
        for condition in _status(obj).get("conditions") or []
        if isinstance(condition, Mapping)
    ]


def inventory(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The objects ``status.inventory`` records, each with Flux's id and its parts; an
    entry whose id does not parse is left out."""
    entries = (_status(obj).get("inventory") or {}).get("entries") or []
    found: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        try:
            (ref,) = parse_inventory([entry])
        except ValueError:
            continue
        found.append(
            {
                "id": ref.id,
                "kind": ref.kind,
                "namespace": ref.namespace,
                "name": ref.name,
                "group": ref.group,
                "version": ref.version,
            }
        )
    return found


def detail(
    kind: str,
    obj: Mapping[str, Any],
    objects: Objects,
    *,
    last: LastReconcile | None = None,
    events: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The object page of ``obj``; ``objects`` are all objects (for its neighbours)."""
    listed = list(objects)
    by_key = {object_key(k, _namespace(o), _name(o)): o for k, o in listed}
    states = {key: state_of(other) for key, other in by_key.items()}
    key = object_key(kind, _namespace(obj), _name(obj))
    edges = _all_edges(listed)
    source_key = source_of(kind, obj)
    source: dict[str, Any] | None = None
    if source_key is not None:
        source_kind, source_namespace, source_name = _split_key(source_key)
        upstream = by_key.get(source_key)
        source = {
            "key": source_key,
            "kind": source_kind,
            "namespace": source_namespace,
            "name": source_name,
            "revision": _revision(source_kind, upstream) if upstream is not None else "",
        }
    history = _status(obj).get("history")
    return {
        "object": row(kind, obj, last),
        "conditions": _conditions(obj),
        "events": [dict(event) for event in events],
        "inventory": inventory(obj),
        "history": list(history) if isinstance(history, list) else [],
        "source": source,
        "dependencies": [_keyref(e.upstream, states) for e in edges if e.downstream == key],
        "dependents": [_keyref(e.downstream, states) for e in edges if e.upstream == key],
        "spec": spec_summary(kind, obj),
    }
