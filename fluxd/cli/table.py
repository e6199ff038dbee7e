"""The rows and the table ``fluxd get`` prints, laid out as ``flux get`` lays them out.

Pure functions of object dicts, so the output a user (or a script written against
``flux get``) reads is tested without a cluster: the summary of one object in its kind's
columns (NAME, REVISION, SUSPENDED, READY, MESSAGE for sources and appliers; LAST SCAN,
IMAGE and TAG, LAST RUN for the image kinds; fewer for the notification kinds), the
``--status-selector`` filter, and the
tab-padded table of the Flux CLI, whose quirks (every row cell followed by a tab, the
last header cell one space wider) are kept so that output compares byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "StatusSelector",
    "header",
    "ready_and_message",
    "render_table",
    "summary_row",
    "truncate_hex",
]

#: A SHA-1 up to a SHA-512 in hex, as a whole word.
_LONG_HEX = re.compile(r"\b[a-f0-9]{40,128}\b")
_SHORT_HEX = 8
_NOT_RECONCILED = ("False", "waiting to be reconciled")


def truncate_hex(text: str) -> str:
    """``text`` with every long hex digest cut to its first eight characters."""
    return _LONG_HEX.sub(lambda found: found.group()[:_SHORT_HEX], text)


def _conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = obj.get("status") or {}
    return [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]


def ready_and_message(obj: Mapping[str, Any]) -> tuple[str, str]:
    """The Ready condition's status and message; an object without one has not been
    reconciled yet."""
    for condition in _conditions(obj):
        if condition.get("type") == "Ready":
            return str(condition.get("status") or ""), str(condition.get("message") or "")
    return _NOT_RECONCILED


@dataclass(frozen=True, slots=True)
class StatusSelector:
    """``--status-selector TYPE=STATUS`` (or ``TYPE!=STATUS``), compared ignoring case."""

    condition_type: str
    status: str
    negated: bool = False

    @classmethod
    def parse(cls, text: str) -> StatusSelector:
        """Parse a selector; :class:`ValueError` names the expected forms."""
        negated = "!=" in text
        condition_type, sep, status = text.partition("!=" if negated else "=")
        if not sep or not condition_type or not status:
            raise ValueError(
                f"expected status selector in type=status or type!=status format, but found: {text}"
            )
        return cls(condition_type, status, negated)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj`` is selected: its condition of this type has this status (an
        object lacking the condition matches only a negated selector)."""
        found: Mapping[str, Any] | None = None
        for condition in _conditions(obj):
            if str(condition.get("type") or "").casefold() == self.condition_type.casefold():
                found = condition
        equal = found is not None and (
            str(found.get("status") or "").casefold() == self.status.casefold()
        )
        return equal != self.negated


_DEFAULT_COLUMNS = ("NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE")
#: The kinds whose ``flux get`` table is not the sources' and appliers' one.
_COLUMNS = {
    "ImageRepository": ("NAME", "LAST SCAN", "SUSPENDED", "READY", "MESSAGE"),
    "ImagePolicy": ("NAME", "IMAGE", "TAG", "READY", "MESSAGE"),
    "ImageUpdateAutomation": ("NAME", "LAST RUN", "SUSPENDED", "READY", "MESSAGE"),
    "Receiver": ("NAME", "SUSPENDED", "READY", "MESSAGE"),
    "Provider": ("NAME", "READY", "MESSAGE"),
    "Alert": ("NAME", "SUSPENDED", "READY", "MESSAGE"),
}
#: What Flux shows for kinds whose v1beta3 objects carry no status.
_STATIC_READY = {"Provider": "Provider is Ready", "Alert": "Alert is Ready"}


def header(*, all_namespaces: bool, kind: str = "", show_source: bool = False) -> list[str]:
    """``kind``'s column titles, NAMESPACE first when listing every namespace, SOURCE
    after NAME with ``show_source``."""
    titles = list(_COLUMNS.get(kind, _DEFAULT_COLUMNS))
    if show_source:
        titles.insert(1, "SOURCE")
    return ["NAMESPACE", *titles] if all_namespaces else titles


def source_cell(obj: Mapping[str, Any]) -> str:
    """``Kind/namespace/name`` of a Kustomization's or HelmRelease's source: its
    ``sourceRef``, a HelmRelease's ``chartRef`` or its chart template's ``sourceRef``."""
    spec = obj.get("spec") or {}
    ref = (
        spec.get("sourceRef")
        or spec.get("chartRef")
        or (((spec.get("chart") or {}).get("spec") or {}).get("sourceRef"))
        or {}
    )
    namespace = ref.get("namespace") or (obj.get("metadata") or {}).get("namespace") or ""
    return f"{ref.get('kind', '')}/{namespace}/{ref.get('name', '')}"


def _revision(obj: Mapping[str, Any]) -> str:
    """What REVISION shows for ``obj``'s kind: a source's artifact, a Kustomization's
    last applied revision, a HelmRelease's deployed chart version."""
    status = obj.get("status") or {}
    kind = obj.get("kind")
    if kind == "Kustomization":
        return str(status.get("lastAppliedRevision") or "")
    if kind == "HelmRelease":
        history = status.get("history") or []
        if history and isinstance(history[0], Mapping) and history[0].get("chartVersion"):
            return str(history[0]["chartVersion"])
        return str(status.get("lastAttemptedRevision") or "")
    return str((status.get("artifact") or {}).get("revision") or "")


def summary_row(
    obj: Mapping[str, Any], *, all_namespaces: bool, with_kind: bool, show_source: bool = False
) -> list[str]:
    """One object's row as ``flux get`` shows its kind; ``with_kind`` names it
    ``kind/name``, as ``get all`` does; ``show_source`` adds the source after the name.

    Digests are cut to eight characters, except in a HelmChart's revision (a chart
    version) and a HelmRelease's columns; an OCI HelmRepository has no status to show
    and is always ready, as Flux shows it.
    """
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    kind = str(obj.get("kind") or "")
    name = str(meta.get("name") or "")
    if with_kind:
        name = f"{kind.lower()}/{name}"
    if kind == "HelmRepository" and spec.get("type") == "oci":
        status, message = "True", "Helm repository is Ready"
    elif kind in _STATIC_READY and not _conditions(obj):
        status, message = "True", _STATIC_READY[kind]
    else:
        status, message = ready_and_message(obj)
    if kind != "HelmRelease":
        message = truncate_hex(message)
    suspended = "True" if spec.get("suspend") is True else "False"
    row = [name, *_middle(kind, obj, suspended), status, message]
    if show_source:
        row.insert(1, source_cell(obj))
    return [str(meta.get("namespace") or ""), *row] if all_namespaces else row


def _middle(kind: str, obj: Mapping[str, Any], suspended: str) -> list[str]:
    """The cells between NAME and READY, as ``kind``'s table has them."""
    status = obj.get("status") or {}
    if kind == "ImageRepository":
        return [str((status.get("lastScanResult") or {}).get("scanTime") or ""), suspended]
    if kind == "ImagePolicy":
        latest = status.get("latestRef") or {}
        return [str(latest.get("name") or ""), str(latest.get("tag") or "")]
    if kind == "ImageUpdateAutomation":
        return [str(status.get("lastAutomationRunTime") or ""), suspended]
    if kind in ("Receiver", "Alert"):
        return [suspended]
    if kind == "Provider":
        return []
    revision = _revision(obj)
    if kind not in ("HelmRelease", "HelmChart"):
        revision = truncate_hex(revision)
    return [revision, suspended]


def render_table(titles: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The table as ``flux get`` prints it: columns padded to their widest cell and
    separated by tabs; no header line when ``titles`` is empty."""
    columns = max([len(titles), *(len(row) for row in rows)], default=0)
    widths = [0] * columns
    for line in [titles, *rows]:
        for index, cell in enumerate(line):
            widths[index] = max(widths[index], len(cell))
    lines: list[str] = []
    if titles:
        padded = [cell.ljust(width) for cell, width in zip(titles, widths, strict=False)]
        padded[-1] += " "
        lines.append("\t".join(padded))
    lines.extend(
        "".join(f"{cell.ljust(width)}\t" for cell, width in zip(row, widths, strict=False))
        for row in rows
    )
    return "".join(f"{line}\n" for line in lines)
