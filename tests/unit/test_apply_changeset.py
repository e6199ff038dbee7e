"""Change sets: Flux's event text and what counts as a change."""

from __future__ import annotations

from fluxd.apply.changeset import ChangeSet
from fluxd.apply.inventory import ObjectRef

DEPLOYMENT = ObjectRef("apps", "Deployment", "default", "my-app", "v1")
NAMESPACE = ObjectRef("", "Namespace", "", "team", "v1")
CONFIGMAP = ObjectRef("", "ConfigMap", "default", "settings", "v1")


def test_summary_lists_changes_one_per_line() -> None:
    changes = ChangeSet()
    changes.add(NAMESPACE, "created")
    changes.add(CONFIGMAP, "unchanged")
    changes.add(DEPLOYMENT, "configured")
    assert changes.summary() == "Namespace/team created\nDeployment/default/my-app configured"
    assert changes.has_changes
    assert changes.refs == [NAMESPACE, CONFIGMAP, DEPLOYMENT]
    assert [str(change) for change in changes] == [
        "Namespace/team created",
        "ConfigMap/default/settings unchanged",
        "Deployment/default/my-app configured",
    ]


def test_unchanged_and_skipped_are_no_changes() -> None:
    changes = ChangeSet()
    changes.add(CONFIGMAP, "unchanged")
    changes.add(DEPLOYMENT, "skipped")
    assert not changes.has_changes
    assert changes.summary() == ""
    assert changes.with_action("skipped") == [DEPLOYMENT]


def test_deletions_are_changes_and_sets_extend() -> None:
    applied = ChangeSet()
    applied.add(CONFIGMAP, "unchanged")
    pruned = ChangeSet()
    pruned.add(DEPLOYMENT, "deleted")
    applied.extend(pruned)
    assert len(applied) == 2
    assert applied.has_changes
    assert applied.summary() == "Deployment/default/my-app deleted"
