"""Flux's condition rules on status dicts."""

from __future__ import annotations

from typing import Any

from fluxd.runtime import conditions
from fluxd.runtime.status import status_patch


def test_transition_time_moves_only_when_status_flips() -> None:
    status: dict[str, Any] = {}
    conditions.set_condition(status, "Ready", "False", "A", "first", now="2026-01-01T00:00:00Z")
    conditions.set_condition(status, "Ready", "False", "B", "second", now="2026-01-02T00:00:00Z")
    ready = conditions.get(status, "Ready")
    assert ready is not None
    assert ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert (ready["reason"], ready["message"]) == ("B", "second")
    conditions.set_condition(status, "Ready", "True", "C", "ok", now="2026-01-03T00:00:00Z")
    flipped = conditions.get(status, "Ready")
    assert flipped is not None
    assert flipped["lastTransitionTime"] == "2026-01-03T00:00:00Z"


def test_reconciling_and_stalled_exclude_each_other_and_ready_leads() -> None:
    status: dict[str, Any] = {}
    conditions.mark_true(status, "ArtifactInStorage", "Succeeded", "stored")
    conditions.mark_reconciling(status, "Progressing", "working", generation=2)
    conditions.mark_false(status, "Ready", "GitOperationFailed", "boom", generation=2)
    conditions.mark_stalled(status, "InvalidSpec", "bad", generation=2)
    types = [c["type"] for c in status["conditions"]]
    assert types == ["Ready", "Stalled", "ArtifactInStorage"]
    assert not conditions.is_ready(status)


def test_status_patch_is_empty_for_a_no_op_and_removes_vanished_keys() -> None:
    original = {"observedGeneration": 1, "artifact": {"revision": "a"}, "conditions": []}
    assert status_patch(original, dict(original)) == {}
    desired = {"observedGeneration": 2, "conditions": []}
    assert status_patch(original, desired) == {"observedGeneration": 2, "artifact": None}
