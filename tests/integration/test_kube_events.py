"""Kubernetes Events as Flux records them, against the real API server."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.kube.client import create, list_page
from fluxd.kube.events import EventRecorder, RecordedEvent, meta_key
from fluxd.kube.resources import CONFIGMAPS, EVENTS

pytestmark = pytest.mark.integration


@pytest.fixture
async def subject(api_client: ApiClient, namespace: str) -> dict[str, Any]:
    """The object the events are about (a ConfigMap stands in for a Flux object)."""
    return await create(
        api_client, CONFIGMAPS, {"metadata": {"name": "subject", "namespace": namespace}}
    )


async def events_about(api_client: ApiClient, namespace: str, name: str) -> list[dict[str, Any]]:
    page = await list_page(
        api_client, EVENTS, namespace, field_selector=f"involvedObject.name={name}"
    )
    return sorted(page["items"], key=lambda e: e["metadata"]["name"])


async def test_event_is_created_then_aggregated(
    api_client: ApiClient, namespace: str, subject: dict[str, Any]
) -> None:
    recorder = EventRecorder(api_client, component="kustomize-controller", host="test-host")
    # Flux prefixes event metadata with the involved object's API group.
    flux_object = {**subject, "apiVersion": "kustomize.toolkit.fluxcd.io/v1"}
    annotations = {meta_key(flux_object, "revision"): "main@sha1:abc"}
    await recorder.emit(
        subject,
        type="Normal",
        reason="ReconciliationSucceeded",
        message="applied",
        annotations=annotations,
    )

    [event] = await events_about(api_client, namespace, "subject")
    assert event["type"] == "Normal"
    assert event["reason"] == "ReconciliationSucceeded"
    assert event["message"] == "applied"
    assert event["count"] == 1
    assert event["source"] == {"component": "kustomize-controller", "host": "test-host"}
    assert event["metadata"]["annotations"] == {
        "kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc"
    }
    assert event["metadata"]["name"].startswith("subject.")
    ref = event["involvedObject"]
    assert ref["kind"] == "ConfigMap"
    assert ref["apiVersion"] == "v1"
    assert ref["namespace"] == namespace
    assert ref["uid"] == subject["metadata"]["uid"]
    assert ref["resourceVersion"] == subject["metadata"]["resourceVersion"]
    assert event["firstTimestamp"] == event["lastTimestamp"]

    await anyio.sleep(1.1)  # timestamps have one-second resolution
    await recorder.emit(
        subject,
        type="Normal",
        reason="ReconciliationSucceeded",
        message="applied",
        annotations=annotations,
    )
    [again] = await events_about(api_client, namespace, "subject")
    assert again["metadata"]["name"] == event["metadata"]["name"]
    assert again["count"] == 2
    assert again["firstTimestamp"] == event["firstTimestamp"]
    assert again["lastTimestamp"] > event["lastTimestamp"]

    # A different message is a different event.
    await recorder.emit(subject, type="Warning", reason="ReconciliationFailed", message="broken")
    events = await events_about(api_client, namespace, "subject")
    assert sorted((e["reason"], e["count"]) for e in events) == [
        ("ReconciliationFailed", 1),
        ("ReconciliationSucceeded", 2),
    ]


async def test_repeat_after_the_window_starts_a_new_event(
    api_client: ApiClient, namespace: str, subject: dict[str, Any]
) -> None:
    recorder = EventRecorder(api_client, window=0.0)
    for _ in range(2):
        await recorder.emit(subject, type="Normal", reason="Progressing", message="same")
        await anyio.sleep(0.01)
    events = await events_about(api_client, namespace, "subject")
    assert [e["count"] for e in events] == [1, 1]


async def test_listeners_see_every_emit_and_errors_are_swallowed(
    api_client: ApiClient, namespace: str, subject: dict[str, Any]
) -> None:
    seen: list[RecordedEvent] = []

    async def listener(record: RecordedEvent) -> None:
        seen.append(record)

    async def broken_listener(record: RecordedEvent) -> None:
        raise RuntimeError("listener bug")

    recorder = EventRecorder(api_client, component="fluxd", host="h")
    recorder.add_listener(broken_listener)
    recorder.add_listener(listener)
    for _ in range(2):
        await recorder.emit(subject, type="Warning", reason="BuildFailed", message="bad yaml")
    assert [(r.count, r.severity, r.reason) for r in seen] == [
        (1, "error", "BuildFailed"),
        (2, "error", "BuildFailed"),
    ]
    assert seen[0].involved_object["name"] == "subject"
    assert seen[0].reporting_controller == "fluxd"

    # An object in a namespace that does not exist: the API refuses, emit does not raise.
    ghost = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ghost", "namespace": f"{namespace}-missing"},
    }
    await recorder.emit(ghost, type="Normal", reason="Test", message="nowhere")
    assert seen[-1].involved_object["name"] == "ghost"
