"""The facts of a set of CRDs that API parity is judged on, and the comparison.

A *fact* is what changes the meaning of a user's YAML: which field paths exist and,
per path, its type, default, enum, pattern, bounds, required children, CEL rules and
list/map markers; per version, the printer columns. Descriptions are left out.

``tests/fixtures/flux-crd-facts.json`` holds the facts of Flux's own CRDs (the v2.9
line, see ``../shared/flux-crds/README.md``); regenerate it with::

    python -m tests.crd_facts ../shared/flux-crds > tests/fixtures/flux-crd-facts.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

FACT_KEYS = (
    "default",
    "enum",
    "exclusiveMinimum",
    "format",
    "maxItems",
    "maxLength",
    "maximum",
    "minItems",
    "minLength",
    "minimum",
    "nullable",
    "pattern",
    "required",
    "type",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
)

Facts = dict[str, dict[str, Any]]


def _walk(schema: Mapping[str, Any], path: str, out: dict[str, dict[str, Any]]) -> None:
    facts = {key: schema[key] for key in FACT_KEYS if key in schema}
    if "required" in facts:
        facts["required"] = sorted(facts["required"])
    out[path] = facts
    for name, child in (schema.get("properties") or {}).items():
        _walk(child, f"{path}.{name}", out)
    if isinstance(schema.get("items"), Mapping):
        _walk(schema["items"], f"{path}[]", out)
    if isinstance(schema.get("additionalProperties"), Mapping):
        _walk(schema["additionalProperties"], f"{path}{{}}", out)


def crd_facts(crds: Iterable[Mapping[str, Any]]) -> Facts:
    """``{"<crd name>/<version>": {"columns": [...], "paths": {path: facts}}}``."""
    out: Facts = {}
    for crd in crds:
        for version in crd["spec"]["versions"]:
            paths: dict[str, dict[str, Any]] = {}
            _walk(version["schema"]["openAPIV3Schema"], "", paths)
            columns = [
                [column["name"], column["jsonPath"]]
                for column in version.get("additionalPrinterColumns", [])
            ]
            out[f"{crd['metadata']['name']}/{version['name']}"] = {
                "columns": columns,
                "paths": paths,
            }
    return out


def differences(expected: Facts, actual: Facts) -> list[str]:
    """Every way ``actual`` falls short of ``expected``: a version, path or printer
    column it lacks, or a fact it states differently. Extra paths are allowed."""
    problems: list[str] = []
    for version, want in sorted(expected.items()):
        have = actual.get(version)
        if have is None:
            problems.append(f"{version}: version not served")
            continue
        if want["columns"] != have["columns"]:
            problems.append(f"{version}: printer columns {have['columns']} != {want['columns']}")
        for path, facts in want["paths"].items():
            ours = have["paths"].get(path)
            if ours is None:
                problems.append(f"{version}: missing {path or '<root>'}")
                continue
            for key in FACT_KEYS:
                if facts.get(key) != ours.get(key):
                    problems.append(
                        f"{version}: {path or '<root>'} {key}: "
                        f"{ours.get(key)!r} != Flux's {facts.get(key)!r}"
                    )
    return problems


def load_crds(directory: Path) -> list[dict[str, Any]]:
    crds: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        crds.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return crds


if __name__ == "__main__":
    print(json.dumps(crd_facts(load_crds(Path(sys.argv[1]))), indent=1, sort_keys=True))
