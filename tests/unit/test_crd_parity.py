"""fluxd serves every field of Flux's CRDs with Flux's names, types and validation.

The reference is ``tests/fixtures/flux-crd-facts.json``: the facts (paths, types,
defaults, enums, patterns, CEL rules, printer columns) of Flux's own CRDs, see
``tests/crd_facts.py``. fluxd may add fields and versions; it may not lack or
restate anything Flux declares.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fluxd.api import GIT_REPOSITORY, KINDS
from fluxd.api._crd import crd_for
from tests.crd_facts import crd_facts, differences, load_crds

ROOT = Path(__file__).resolve().parents[2]
FACTS = ROOT / "tests" / "fixtures" / "flux-crd-facts.json"
FLUX_CRDS = ROOT.parent / "shared" / "flux-crds"


def _flux_facts() -> dict[str, dict[str, object]]:
    facts: dict[str, dict[str, object]] = json.loads(FACTS.read_text())
    return facts


def test_every_flux_field_is_served_as_flux_declares_it() -> None:
    problems = differences(_flux_facts(), crd_facts(crd_for(info) for info in KINDS))
    assert not problems, f"{len(problems)} differences from Flux's CRDs:\n" + "\n".join(problems)


def test_a_dropped_field_or_a_changed_enum_is_reported() -> None:
    crd = copy.deepcopy(crd_for(GIT_REPOSITORY))
    schema = crd["spec"]["versions"][-1]["schema"]["openAPIV3Schema"]["properties"]
    del schema["spec"]["properties"]["recurseSubmodules"]
    schema["spec"]["properties"]["provider"]["enum"] = ["generic"]
    flux = {k: v for k, v in _flux_facts().items() if k.startswith("gitrepositories.")}

    problems = differences(flux, crd_facts([crd]))

    assert problems == [
        "gitrepositories.source.toolkit.fluxcd.io/v1: .spec.provider enum: ['generic'] "
        "!= Flux's ['generic', 'aws', 'azure', 'github']",
        "gitrepositories.source.toolkit.fluxcd.io/v1: missing .spec.recurseSubmodules",
    ]


@pytest.mark.skipif(not FLUX_CRDS.is_dir(), reason="Flux's CRDs are not next to this checkout")
def test_the_facts_are_those_of_flux_crds() -> None:
    assert crd_facts(load_crds(FLUX_CRDS)) == _flux_facts(), (
        "tests/fixtures/flux-crd-facts.json is stale: regenerate it (see tests/crd_facts.py)"
    )
