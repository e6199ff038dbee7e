"""Alert matching (sources, severity, lists) and Receiver request authentication."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from fluxd.api import ALERT, RECEIVER, ReceiverSpec
from fluxd.notify import alert_matches, invalid_patterns, webhook_path
from fluxd.notify.receivers import Rejected, authenticate, signature_valid

INVOLVED = {"kind": "GitRepository", "name": "app", "namespace": "prod"}


def alert(**spec: object) -> dict[str, object]:
    return {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Alert",
        "metadata": {"name": "a", "namespace": "prod"},
        "spec": {"providerRef": {"name": "p"}, "eventSeverity": "info", **spec},
    }


def matches(obj: dict[str, object], severity: str = "info", message: str = "msg") -> bool:
    labels = {"team": "a"}
    return alert_matches(obj, ALERT.parse_spec(obj), INVOLVED, severity, message, lambda *_: labels)


def test_sources_by_name_wildcard_namespace_and_labels() -> None:
    assert matches(alert(eventSources=[{"kind": "GitRepository", "name": "app"}]))
    assert matches(alert(eventSources=[{"kind": "GitRepository", "name": "*"}]))
    assert not matches(alert(eventSources=[{"kind": "Kustomization", "name": "*"}]))
    assert not matches(
        alert(eventSources=[{"kind": "GitRepository", "name": "*", "namespace": "dev"}])
    )
    labelled = [{"kind": "GitRepository", "name": "*", "matchLabels": {"team": "a"}}]
    assert matches(alert(eventSources=labelled))
    other = [{"kind": "GitRepository", "name": "*", "matchLabels": {"team": "b"}}]
    assert not matches(alert(eventSources=other))


def test_severity_lists_and_suspend() -> None:
    sources = [{"kind": "GitRepository", "name": "*"}]
    errors = alert(eventSources=sources, eventSeverity="error")
    assert not matches(errors, "info")
    assert matches(errors, "error")
    included = alert(eventSources=sources, inclusionList=["^deploy"])
    assert matches(included, message="deployed")
    assert not matches(included, message="failed")
    excluded = alert(eventSources=sources, exclusionList=["timeout"])
    assert not matches(excluded, message="a timeout occurred")
    assert not matches(alert(eventSources=sources, suspend=True))


def test_invalid_patterns_are_named() -> None:
    obj = alert(eventSources=[{"kind": "GitRepository", "name": "*"}], exclusionList=["("])
    (problem,) = invalid_patterns(ALERT.parse_spec(obj))
    assert problem.startswith("spec.exclusionList[0] '('")


def receiver(type_: str, events: list[str] | None = None) -> ReceiverSpec:
    return RECEIVER.parse_spec(
        {
            "spec": {
                "type": type_,
                "events": events or [],
                "secretRef": {"name": "s"},
                "resources": [{"kind": "GitRepository", "name": "app"}],
            }
        }
    )


def test_webhook_path_is_flux_digest() -> None:
    digest = hashlib.sha256(b"tokenrecvns").hexdigest()
    assert webhook_path("token", "recv", "ns") == f"/hook/{digest}"


def test_hmac_and_github_signatures() -> None:
    body = b"{}"
    good = "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature_valid(good, body, b"k")
    assert not signature_valid(good, b"{ }", b"k")
    assert not signature_valid("md5=00", body, b"k")
    assert authenticate(receiver("generic-hmac"), {"X-Signature": good}, body, "k") == ""
    github = receiver("github", ["push"])
    headers = {"X-Hub-Signature-256": good, "X-GitHub-Event": "push"}
    assert authenticate(github, headers, body, "k") == "push"
    with pytest.raises(Rejected) as bad:
        authenticate(github, {**headers, "X-Hub-Signature-256": "sha256=00"}, body, "k")
    assert bad.value.status == 401
    with pytest.raises(Rejected) as ping:
        authenticate(github, {**headers, "X-GitHub-Event": "ping"}, body, "k")
    assert ping.value.status == 400


def test_gitlab_token() -> None:
    gitlab = receiver("gitlab")
    assert authenticate(gitlab, {"X-Gitlab-Token": "k", "X-Gitlab-Event": "Push Hook"}, b"", "k")
    with pytest.raises(Rejected) as wrong:
        authenticate(gitlab, {"X-Gitlab-Token": "x"}, b"", "k")
    assert wrong.value.status == 401
