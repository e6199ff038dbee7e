"""``status.history`` snapshots: Flux's upsert rules on plain status data."""

from __future__ import annotations

from fluxd.runtime.history import MAX_SNAPSHOTS, manifests_digest, upsert


def record(
    history: list[dict[str, object]], digest: str, status: str = "ReconciliationSucceeded"
) -> list[dict[str, object]]:
    return upsert(
        history, digest=digest, duration_seconds=1.5, status=status, metadata={"revision": digest}
    )


def test_an_older_snapshot_seen_again_moves_to_the_front_and_counts() -> None:
    history = record(record(record([], "a"), "b"), "a")
    assert [s["digest"] for s in history] == ["a", "b"]
    assert history[0]["totalReconciliations"] == 2
    assert history[0]["lastReconciledDuration"] == "1.5s"


def test_same_digest_with_another_outcome_is_a_new_snapshot() -> None:
    history = record(record([], "a"), "a", "HealthCheckFailed")
    assert [(s["digest"], s["lastReconciledStatus"]) for s in history] == [
        ("a", "HealthCheckFailed"),
        ("a", "ReconciliationSucceeded"),
    ]


def test_at_most_five_snapshots_newest_first() -> None:
    history: list[dict[str, object]] = []
    for digest in "abcdefg":
        history = record(history, digest)
    assert [s["digest"] for s in history] == list("gfedc")[:MAX_SNAPSHOTS]


def test_digest_follows_the_manifests() -> None:
    one = [{"kind": "ConfigMap", "metadata": {"name": "a"}}]
    assert manifests_digest(one) == manifests_digest([dict(one[0])])
    assert manifests_digest(one) != manifests_digest(
        [{"kind": "ConfigMap", "metadata": {"name": "b"}}]
    )
