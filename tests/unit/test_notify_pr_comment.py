"""Pull and merge request comments and ``spec.commitStatusExpr``: each call's URL,
method, headers and body as Flux's notifier makes it, the comment found again by its
marker and author, which events the comment types take, and the status id an
expression gives (or why it cannot)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from fluxd.notify import InvalidProvider, Notification, ProviderSettings, Request, build_request
from fluxd.notify.commit_status import takes_event
from fluxd.notify.request import UnsendableEvent

UID = "5d7c1a2b-aaaa-bbbb-cccc-000000000000"
WHEN = datetime(2026, 12, 4, 7, 0, 0, tzinfo=UTC)
MARKER = f"<!-- flux-pr-comment-key:{UID}/Kustomization/flux-system/apps -->"
TEXT = (
    f"{MARKER}\n\n## Flux Status\n\n\u2139\ufe0f Kustomization/flux-system/apps\n\n"
    "Reconciliation finished in 2s\n\nMetadata:\n"
    "* `revision`: main@sha1:0123\n* `summary`: prod\n"
)
GITHUB_HEADERS = {
    "Accept": "application/vnd.github.v3+json",
    "Authorization": "Bearer ghp_x",
    "X-GitHub-Api-Version": "2022-11-28",
}


def event(**changes: Any) -> Notification:
    """A Kustomization's event as an Alert hands it over: metadata unprefixed."""
    base = Notification(
        involved_object={
            "kind": "Kustomization",
            "namespace": "flux-system",
            "name": "apps",
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        },
        severity="info",
        timestamp=WHEN,
        message="Reconciliation finished in 2s",
        reason="ReconciliationSucceeded",
        metadata={"revision": "main@sha1:0123", "summary": "prod", "change_request": "42"},
        reporting_controller="kustomize-controller",
    )
    return dataclasses.replace(base, **changes)


def settings(type: str, address: str, token: str = "ghp_x", **more: Any) -> ProviderSettings:
    return ProviderSettings(type=type, address=address, token=token, uid=UID, **more)


def follow(request: Request, *answers: Any) -> Request:
    """The request a delivery sends after ``request`` got each JSON answer in turn."""
    for answer in answers:
        assert request.then is not None, f"{request.url} leads nowhere"
        request = request.then(json.dumps(answer).encode())
    return request


def test_github_comment_is_created_when_flux_has_none_on_the_pull_request() -> None:
    user = build_request(
        settings("githubpullrequestcomment", "https://github.com/org/app"), event()
    )
    assert (user.method, user.url) == ("GET", "https://api.github.com/user")
    assert user.headers == GITHUB_HEADERS
    assert user.failure == "failed to get authenticated user info"

    listing = follow(user, {"login": "flux-bot"})
    assert (listing.method, listing.url) == (
        "GET",
        "https://api.github.com/repos/org/app/issues/42/comments"
        "?direction=asc&per_page=100&sort=created",
    )
    assert listing.failure == "failed to list pull request comments"
    someone_elses = {"id": 7, "user": {"login": "alice"}, "body": MARKER}
    create = follow(listing, [someone_elses, {"id": 8, "user": {"login": "flux-bot"}}])
    assert (create.method, create.url) == (
        "POST",
        "https://api.github.com/repos/org/app/issues/42/comments",
    )
    assert create.headers == {**GITHUB_HEADERS, "Content-Type": "application/json"}
    # go-github leaves HTML unescaped: the marker travels as written.
    assert create.body == b'{"body":' + json.dumps(TEXT, ensure_ascii=False).encode() + b"}\n"
    assert json.loads(create.body) == {"body": TEXT}
    assert create.failure == "failed to create pull request comment"
    assert create.then is None
    assert create.follow_up is None


def test_github_comment_of_the_same_user_and_marker_is_updated() -> None:
    listing = follow(
        build_request(
            settings("githubpullrequestcomment", "https://ghe.example.com/org/app.git"), event()
        ),
        {"login": "flux-bot"},
    )
    assert listing.url.startswith("https://ghe.example.com/api/v3/repos/org/app/issues/42/")
    mine = {"id": 99, "user": {"login": "flux-bot"}, "body": f"{MARKER}\n\nold text"}
    later = {"id": 100, "user": {"login": "flux-bot"}, "body": f"{MARKER}\n\nnewer"}
    update = follow(listing, [mine, later])
    assert (update.method, update.url) == (
        "PATCH",
        "https://ghe.example.com/api/v3/repos/org/app/issues/comments/99",
    )
    assert json.loads(update.body) == {"body": TEXT}
    assert update.failure == "failed to update pull request comment"


def test_gitlab_note_endpoints_headers_and_update() -> None:
    user = build_request(
        settings("gitlabmergerequestcomment", "https://gitlab.example.com/group/sub/app", "glpat"),
        event(severity="error", message="health check failed"),
    )
    headers = {"PRIVATE-TOKEN": "glpat", "Accept": "application/json"}
    assert (user.method, user.url, user.headers) == (
        "GET",
        "https://gitlab.example.com/api/v4/user",
        headers,
    )
    notes = "https://gitlab.example.com/api/v4/projects/group%2Fsub%2Fapp/merge_requests/42/notes"
    listing = follow(user, {"username": "flux"})
    assert listing.url == f"{notes}?order_by=created_at&per_page=100&sort=asc"
    assert listing.failure == "failed to list merge request notes"
    marker = f"<!-- flux-mr-comment-key:{UID}/Kustomization/flux-system/apps -->"
    update = follow(listing, [{"id": 5, "author": {"username": "flux"}, "body": marker}])
    assert (update.method, update.url) == ("PUT", f"{notes}/5")
    assert update.headers == {**headers, "Content-Type": "application/json"}
    body = json.loads(update.body)["body"]
    assert body.startswith(f"{marker}\n\n## Flux Status\n\n\u26a0\ufe0f Kustomization/")
    assert "health check failed" in body
    assert b"\\u003c!--" in update.body, "GitLab's client escapes HTML as json.Marshal does"
    create = follow(listing, [])
    assert (create.method, create.url) == ("POST", notes)
    assert create.failure == "failed to create merge request note"


def test_gitea_comment_endpoints_and_author_field() -> None:
    user = build_request(
        settings(
            "giteapullrequestcomment", "https://gitea.example.com/org/app", password="pw", token=""
        ),
        event(),
    )
    assert (user.url, user.headers) == (
        "https://gitea.example.com/api/v1/user",
        {"Authorization": "token pw"},
    )
    listing = follow(user, {"login": "flux"})
    assert listing.url == (
        "https://gitea.example.com/api/v1/repos/org/app/issues/42/comments?limit=100&page=1"
    )
    update = follow(listing, [{"id": 3, "user": {"login": "flux"}, "body": MARKER}])
    assert (update.method, update.url) == (
        "PATCH",
        "https://gitea.example.com/api/v1/repos/org/app/issues/comments/3",
    )
    create = follow(listing, [{"id": 3, "user": None, "body": MARKER}])
    assert (create.method, create.url) == (
        "POST",
        "https://gitea.example.com/api/v1/repos/org/app/issues/42/comments",
    )


def test_change_request_number_is_read_as_go_reads_it() -> None:
    provider = settings("githubpullrequestcomment", "https://github.com/org/app")
    padded = follow(build_request(provider, event(metadata={"change_request": "007"})), {})
    assert "/issues/7/comments?" in padded.url
    bad = build_request(provider, event(metadata={"change_request": "PR-7"}))
    with pytest.raises(UnsendableEvent, match='invalid "change_request" metadata value "PR-7"'):
        follow(bad, {"login": "flux"})


@pytest.mark.parametrize(
    ("type", "address", "token", "problem"),
    [
        ("githubpullrequestcomment", "https://github.com/org", "t", "invalid repository id 'org'"),
        (
            "githubpullrequestcomment",
            "https://github.com/org/app",
            "",
            "github token cannot be empty",
        ),
        (
            "gitlabmergerequestcomment",
            "https://gitlab.com/org/app",
            "",
            "gitlab token cannot be empty",
        ),
        ("giteapullrequestcomment", "not a url", "t", "failed parsing URL"),
    ],
)
def test_settings_no_comment_can_be_made_with_are_refused(
    type: str, address: str, token: str, problem: str
) -> None:
    with pytest.raises(InvalidProvider, match=problem):
        build_request(settings(type, address, token), event())


def test_comment_types_take_only_events_naming_a_change_request() -> None:
    prefixed = event(metadata={"event.toolkit.fluxcd.io/change_request": "42"})
    assert takes_event("githubpullrequestcomment", prefixed)
    assert not takes_event("gitlabmergerequestcomment", event(metadata={}))
    update = event(
        metadata={
            "event.toolkit.fluxcd.io/change_request": "42",
            "kustomize.toolkit.fluxcd.io/commit_status": "update",
        }
    )
    assert not takes_event("giteapullrequestcomment", update), "commit status updates are not"
    assert takes_event("github", update)


ALERT = {"metadata": {"name": "on-call", "namespace": "flux-system"}, "spec": {}}
PROVIDER = {"metadata": {"name": "github", "uid": UID}, "spec": {"type": "github"}}


def github_status(expression: str, **objects: Any) -> Request:
    return build_request(
        settings("github", "https://github.com/org/app", commit_status_expr=expression),
        event(metadata={"revision": f"main@sha1:{'a' * 40}", "env": "Prod"}),
        **objects,
    )


def test_commit_status_expression_gives_the_status_context() -> None:
    expression = (
        "(event.involvedObject.kind + '/' + event.involvedObject.name + '/' + "
        "event.metadata.env + '/' + alert.metadata.name + '/' + "
        "provider.metadata.uid.split('-').first().value()).lowerAscii()"
    )
    request = github_status(expression, alert=ALERT, provider=PROVIDER)
    assert json.loads(request.body)["context"] == "kustomization/apps/prod/on-call/5d7c1a2b"
    assert request.lookup is not None
    assert request.lookup.already_done(
        200,
        json.dumps(
            [
                {
                    "context": "kustomization/apps/prod/on-call/5d7c1a2b",
                    "state": "success",
                    "description": "reconciliation succeeded",
                }
            ]
        ).encode(),
    ), "the duplicate check looks for the expression's id"


def test_commit_status_expression_is_only_compiled_by_the_providers_own_check() -> None:
    request = github_status("event.metadata.missing")
    assert json.loads(request.body)["context"] == "kustomization/apps/5d7c1a2b"


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("event.metadata.missing", "no such key: missing"),
        ("size(event.message)", "gave int, not a string"),
        ("''", "commit status cannot be empty"),
    ],
)
def test_commit_status_expression_failing_for_an_event_fails_that_delivery(
    expression: str, problem: str
) -> None:
    with pytest.raises(UnsendableEvent, match=problem) as raised:
        github_status(expression, alert=ALERT, provider=PROVIDER)
    assert "spec.commitStatusExpr" in str(raised.value)


@pytest.mark.parametrize(
    ("expression", "problem"),
    [("event.reason +", "Syntax error"), ("reason + '/x'", "undeclared reference to 'reason'")],
)
def test_commit_status_expression_that_does_not_compile_is_refused(
    expression: str, problem: str
) -> None:
    with pytest.raises(InvalidProvider, match=r"invalid spec\.commitStatusExpr") as raised:
        github_status(expression)
    assert problem in str(raised.value)
