"""The informer's pure parts: relist diff, backoff, and how watch events change the store.

The list/watch loop itself runs against the real API server in
``tests/integration/test_kube_informer.py``.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.kube.informer import EventType, Informer, _Expired, relist_diff
from fluxd.kube.resources import CONFIGMAPS
from fluxd.runtime.backoff import Backoff

# The API client is never used by the parts under test.
NO_API = cast(ApiClient, None)


def cm(name: str, rv: str, namespace: str = "default", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv},
        "data": data,
    }


def test_relist_diff_reports_each_change_against_the_store() -> None:
    store = {
        ("default", "same"): cm("same", "10"),
        ("default", "changed"): cm("changed", "11"),
        ("default", "gone"): cm("gone", "12"),
    }
    items = [cm("same", "10"), cm("changed", "20"), cm("new", "21")]

    new_store, events = relist_diff(store, items)

    assert set(new_store) == {("default", "same"), ("default", "changed"), ("default", "new")}
    assert [(kind, obj["metadata"]["name"]) for kind, obj in events] == [
        ("MODIFIED", "changed"),
        ("ADDED", "new"),
        ("DELETED", "gone"),
    ]
    # A deleted object is reported with its last known state.
    assert events[-1][1]["metadata"]["resourceVersion"] == "12"


def test_relist_diff_from_empty_store_adds_everything() -> None:
    _, events = relist_diff({}, [cm("a", "1"), cm("a", "2", namespace="other")])
    assert [kind for kind, _ in events] == ["ADDED", "ADDED"]


def test_relist_diff_of_unchanged_list_is_silent() -> None:
    store = {("default", "a"): cm("a", "1")}
    new_store, events = relist_diff(store, [cm("a", "1")])
    assert events == []
    assert new_store == store


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0, jitter=0.25, rand=lambda: 0.0)
    assert [backoff.delay(n) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_backoff_jitter_only_shortens_delays() -> None:
    backoff = Backoff(initial=4.0, maximum=30.0, jitter=0.25, rand=lambda: 1.0)
    assert backoff.delay(1) == 3.0
    assert backoff.delay(2) == 6.0


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[EventType, str, str]] = []

    async def __call__(self, kind: EventType, obj: dict[str, Any]) -> None:
        self.events.append((kind, obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))


@pytest.fixture
def informer() -> tuple[Informer, Recorder]:
    recorder = Recorder()
    return Informer(NO_API, CONFIGMAPS, on_event=recorder), recorder


async def test_watch_events_update_store_and_resource_version(
    informer: tuple[Informer, Recorder],
) -> None:
    inf, rec = informer
    obj = cm("a", "5")
    obj["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    await inf._handle({"type": "ADDED", "object": obj})
    await inf._handle({"type": "MODIFIED", "object": cm("a", "6")})
    await inf._handle({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})
    assert inf.resource_version == "9"
    stored = inf.get("default", "a")
    assert stored is not None
    assert stored["metadata"]["resourceVersion"] == "6"
    await inf._handle({"type": "DELETED", "object": cm("a", "10")})

    assert rec.events == [("ADDED", "a", "5"), ("MODIFIED", "a", "6"), ("DELETED", "a", "10")]
    assert inf.get("default", "a") is None
    assert inf.resource_version == "10"
    assert "managedFields" not in obj["metadata"]


async def test_event_types_are_normalised_against_the_store(
    informer: tuple[Informer, Recorder],
) -> None:
    inf, rec = informer
    await inf._handle({"type": "MODIFIED", "object": cm("a", "1")})
    await inf._handle({"type": "ADDED", "object": cm("a", "2")})
    assert [kind for kind, *_ in rec.events] == ["ADDED", "MODIFIED"]


async def test_expired_error_event_asks_for_relist(informer: tuple[Informer, Recorder]) -> None:
    inf, _ = informer
    status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    with pytest.raises(_Expired):
        await inf._handle({"type": "ERROR", "object": status})


async def test_observe_refreshes_only_with_newer_known_objects(
    informer: tuple[Informer, Recorder],
) -> None:
    inf, rec = informer
    await inf._handle({"type": "ADDED", "object": cm("a", "5")})
    inf.observe(cm("a", "7", x="ours"))
    inf.observe(cm("a", "6"))
    inf.observe(cm("b", "8"))
    assert [o["metadata"]["resourceVersion"] for o in inf.list()] == ["7"]
    # The watch event of a write older than the observed one does not regress the store...
    await inf._handle({"type": "MODIFIED", "object": cm("a", "6")})
    stored = inf.get("default", "a")
    assert stored is not None
    assert stored["data"] == {"x": "ours"}
    # ...and is still delivered.
    assert rec.events[-1] == ("MODIFIED", "a", "6")


async def test_handler_errors_do_not_stop_the_informer() -> None:
    async def broken(kind: EventType, obj: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    inf = Informer(NO_API, CONFIGMAPS, on_event=broken)
    await inf._handle({"type": "ADDED", "object": cm("a", "1")})
    assert len(inf) == 1
