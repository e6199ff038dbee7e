"""The git services' commit statuses, GitHub dispatch and PagerDuty: each request's URL,
headers and body as Flux sends them, the duplicate lookups, and which events each
provider type takes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime

import pytest

from fluxd.notify import (
    InvalidProvider,
    Notification,
    ProviderSettings,
    Request,
    build_request,
    go_json,
)
from fluxd.notify.commit_status import (
    commit_sha,
    commit_status_id,
    describe,
    parse_git_address,
    takes_event,
)
from fluxd.notify.request import Lookup, NothingToSend, UnsendableEvent

SHA = "0123456789abcdef0123456789abcdef01234567"
UID = "5d7c1a2b-aaaa-bbbb-cccc-000000000000"
WHEN = datetime(2026, 12, 4, 7, 0, 0, tzinfo=UTC)
CONTEXT = "kustomization/apps/5d7c1a2b"


def applied(**changes: object) -> Notification:
    """A Kustomization's closing event as an Alert hands it to its provider."""
    event = Notification(
        involved_object={
            "kind": "Kustomization",
            "namespace": "flux-system",
            "name": "apps",
            "uid": "obj-uid-1",
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        },
        severity="info",
        timestamp=WHEN,
        message="Reconciliation finished in 2s, next run in 10m",
        reason="ReconciliationSucceeded",
        metadata={"revision": f"main@sha1:{SHA}", "commit_status": "update"},
        reporting_controller="kustomize-controller",
    )
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]


def failed() -> Notification:
    return applied(severity="error", reason="HealthCheckFailed", message="timeout")


def settings(
    kind: str, address: str, *, token: str = "", username: str = "", password: str = ""
) -> ProviderSettings:
    return ProviderSettings(
        type=kind, address=address, uid=UID, token=token, username=username, password=password
    )


def lookup_of(request: Request) -> Lookup:
    assert request.lookup is not None
    return request.lookup


def test_revisions_addresses_and_descriptions_parse_as_flux_parses_them() -> None:
    assert commit_sha(f"main@sha1:{SHA}") == SHA
    assert commit_sha(f"sha1:{SHA}") == SHA
    assert commit_sha(f"main/{SHA}") == SHA, "the legacy <branch>/<sha> form"
    assert commit_sha(f"v1@sha256:{'a' * 64}") == "a" * 64
    with pytest.raises(UnsendableEvent, match="failed to extract commit hash from 'latest'"):
        commit_sha("latest")
    assert parse_git_address("https://github.com/org/app.git") == ("https://github.com", "org/app")
    assert parse_git_address("ssh://git@ghe.local:2222/org/app") == (
        "https://ghe.local:2222",
        "org/app",
    )
    assert parse_git_address("git@gitlab.com:group/sub/app.git") == (
        "https://gitlab.com",
        "group/sub/app",
    )
    assert describe(applied()) == ("kustomization/apps", "reconciliation succeeded")
    assert describe(applied(reason="PDFLoaderFailed"))[1] == "pdf loader failed"
    assert commit_status_id(UID, applied()) == CONTEXT


def test_github_posts_a_status_after_checking_it_is_not_there_yet() -> None:
    request = build_request(
        settings("github", "https://github.com/org/app", token="ghp_x"), applied()
    )
    assert request.url == f"https://api.github.com/repos/org/app/statuses/{SHA}"
    assert request.body == (
        b'{"state":"success","description":"reconciliation succeeded",'
        b'"context":"kustomization/apps/5d7c1a2b"}\n'
    )
    assert request.headers["Authorization"] == "Bearer ghp_x"
    assert request.headers["Accept"] == "application/vnd.github.v3+json"
    lookup = lookup_of(request)
    assert lookup.url == f"https://api.github.com/repos/org/app/commits/{SHA}/statuses?per_page=50"
    same = {"context": CONTEXT, "state": "success", "description": "reconciliation succeeded"}
    older = {**same, "state": "failure"}
    assert lookup.already_done(200, json.dumps([same, older]).encode())
    assert not lookup.already_done(200, json.dumps([older, same]).encode()), "newest counts"
    other = {**same, "context": "kustomization/other/5d7c1a2b"}
    assert not lookup.already_done(200, json.dumps([other]).encode())


def test_github_enterprise_states_and_refusals() -> None:
    enterprise = settings("github", "https://ghe.local/org/app.git", password="app-token")
    request = build_request(enterprise, failed())
    assert request.url == f"https://ghe.local/api/v3/repos/org/app/statuses/{SHA}"
    assert json.loads(request.body)["state"] == "failure"
    assert json.loads(request.body)["description"] == "health check failed"
    assert request.headers["Authorization"] == "Bearer app-token", "password stands in"
    with pytest.raises(NothingToSend):
        build_request(enterprise, applied(reason="Progressing"))
    with pytest.raises(UnsendableEvent, match="missing revision metadata"):
        build_request(enterprise, applied(metadata={}))
    with pytest.raises(InvalidProvider, match="invalid repository id 'org'"):
        build_request(settings("github", "https://github.com/org", token="t"), applied())
    with pytest.raises(InvalidProvider, match="github token cannot be empty"):
        build_request(settings("github", "https://github.com/org/app"), applied())


def test_github_dispatch_sends_the_event_as_client_payload() -> None:
    event = applied(message="applied <all> & more")
    request = build_request(
        settings("githubdispatch", "https://github.com/org/app", token="t"), event
    )
    assert request.url == "https://api.github.com/repos/org/app/dispatches"
    assert request.lookup is None
    assert request.body == (
        b'{"event_type":"Kustomization/apps.flux-system","client_payload":'
        + go_json(event.to_dict())
        + b"}\n"
    )
    assert b"\\u003call\\u003e" in request.body, "the event keeps Go's HTML escaping"


def test_gitlab_sets_the_status_on_the_url_encoded_project() -> None:
    request = build_request(
        settings("gitlab", "https://gitlab.local/group/sub/app.git", token="glpat"), failed()
    )
    base = "https://gitlab.local/api/v4/projects/group%2Fsub%2Fapp"
    assert request.url == f"{base}/statuses/{SHA}"
    assert request.headers["PRIVATE-TOKEN"] == "glpat"
    assert request.body == (
        b'{"state":"failed","name":"kustomization/apps/5d7c1a2b",'
        b'"description":"health check failed"}\n'
    )
    lookup = lookup_of(request)
    assert lookup.url == (
        f"{base}/repository/commits/{SHA}/statuses?name=kustomization%2Fapps%2F5d7c1a2b"
    )
    listed = {
        "sha": SHA,
        "status": "failed",
        "name": CONTEXT,
        "description": "health check failed",
    }
    assert lookup.already_done(200, json.dumps([listed]).encode())
    assert not lookup.already_done(200, json.dumps([{**listed, "status": "success"}]).encode())
    with pytest.raises(InvalidProvider, match="gitlab token cannot be empty"):
        build_request(settings("gitlab", "https://gitlab.local/g/app"), failed())


def test_gitea_shows_progressing_as_pending() -> None:
    gitea = settings("gitea", "https://gitea.local/org/app", token="tea")
    request = build_request(gitea, applied(reason="Progressing"))
    assert request.url == f"https://gitea.local/api/v1/repos/org/app/statuses/{SHA}"
    assert request.headers["Authorization"] == "token tea"
    assert request.body == (
        b'{"state":"pending","target_url":"","description":"progressing",'
        b'"context":"kustomization/apps/5d7c1a2b"}\n'
    )
    lookup = lookup_of(request)
    assert lookup.url == (
        f"https://gitea.local/api/v1/repos/org/app/commits/{SHA}/statuses?limit=50&page=0"
    )
    same = {"context": CONTEXT, "status": "pending", "description": "progressing"}
    assert lookup.already_done(200, json.dumps([same]).encode())
    assert json.loads(build_request(gitea, applied()).body)["state"] == "success"


def test_bitbucket_cloud_keys_the_status_by_the_ids_sha1() -> None:
    request = build_request(
        settings("bitbucket", "https://bitbucket.org/team/app.git", token="me:app-pass"),
        applied(),
    )
    key = hashlib.sha1(CONTEXT.encode()).hexdigest()
    base = f"https://api.bitbucket.org/2.0/repositories/team/app/commit/{SHA}/statuses/build"
    assert request.url == base
    assert request.headers["Authorization"] == "Basic bWU6YXBwLXBhc3M="
    assert (
        request.body
        == (
            f'{{"key":"{key}","url":"https://bitbucket.org","state":"SUCCESSFUL",'
            f'"name":"kustomization/apps","description":"reconciliation succeeded"}}'
        ).encode()
    )
    lookup = lookup_of(request)
    assert lookup.url == f"{base}/{key}"
    assert 404 in lookup.absent, "no status yet is not an error"
    same = {"state": "SUCCESSFUL", "description": "reconciliation succeeded"}
    assert lookup.already_done(200, json.dumps(same).encode())
    with pytest.raises(InvalidProvider, match="<user>:<password>"):
        build_request(
            settings("bitbucket", "https://bitbucket.org/team/app", token="only"), applied()
        )


def test_bitbucket_server_posts_build_status_under_the_context_path() -> None:
    address = "https://bb.local/stash/scm/proj/app.git"
    request = build_request(settings("bitbucketserver", address, token="pat"), failed())
    key = hashlib.sha1(CONTEXT.encode()).hexdigest()
    url = f"https://bb.local/stash/rest/api/latest/projects/proj/repos/app/commits/{SHA}/builds"
    assert request.url == url
    assert request.headers["Authorization"] == "Bearer pat"
    assert request.headers["x-atlassian-token"] == "no-check"
    assert (
        request.body
        == (
            f'{{"description":"health check failed","key":"{key}",'
            f'"name":"kustomization/apps [health check failed]","state":"FAILED",'
            f'"url":"{address}"}}\n'
        ).encode()
    )
    assert lookup_of(request).url == f"{url}?key={key}"
    basic = build_request(
        settings("bitbucketserver", address, username="u", password="p"), failed()
    )
    assert basic.headers["Authorization"] == "Basic dTpw"
    with pytest.raises(InvalidProvider, match="not http\\(s\\) git clone url"):
        build_request(settings("bitbucketserver", "https://bb.local/proj/app", token="t"), failed())
    with pytest.raises(InvalidProvider, match="invalid credentials"):
        build_request(settings("bitbucketserver", address), failed())


def test_azure_devops_posts_to_the_repository_with_flux_genre() -> None:
    request = build_request(
        settings("azuredevops", "https://dev.azure.com/org/proj/_git/app", token="pat"),
        applied(metadata={"revision": f"main@sha1:{SHA}", "summary": "prod"}),
    )
    url = (
        f"https://dev.azure.com/org/proj/_apis/git/repositories/app/commits/{SHA}"
        "/statuses?api-version=6.0"
    )
    assert request.url == url
    assert request.headers["Authorization"] == "Basic OnBhdA=="
    assert request.body == (
        b'{"context":{"genre":"fluxcd:prod","name":"kustomization/apps/5d7c1a2b"},'
        b'"description":"reconciliation succeeded","state":"succeeded"}'
    )
    listed = {
        "context": {"genre": "fluxcd:prod", "name": CONTEXT},
        "state": "succeeded",
        "description": "reconciliation succeeded",
    }
    assert lookup_of(request).already_done(200, json.dumps({"value": [listed]}).encode())
    with pytest.raises(InvalidProvider, match="expected <org>/<project>/_git/<repo>"):
        build_request(settings("azuredevops", "https://dev.azure.com/org/app", token="t"), failed())


def test_pagerduty_triggers_on_errors_and_resolves_with_a_change_event() -> None:
    pagerduty = ProviderSettings(
        type="pagerduty", address="https://events.pagerduty.com/ignored", channel="route-key"
    )
    trigger = build_request(pagerduty, failed())
    assert trigger.url == "https://events.pagerduty.com/v2/enqueue"
    assert trigger.follow_up is None
    assert trigger.body == (
        b'{"routing_key":"route-key","event_action":"trigger","dedup_key":"obj-uid-1",'
        b'"payload":{"summary":"health check failed: kustomization/apps",'
        b'"source":"Flux kustomize-controller","severity":"error",'
        b'"timestamp":"2026-12-04T07:00:00Z","component":"apps","group":"Kustomization",'
        b'"custom_details":{"message":"timeout","metadata":{"commit_status":"update",'
        b'"revision":"main@sha1:' + SHA.encode() + b'"}}}}'
    )
    resolve = build_request(pagerduty, applied(metadata={}))
    assert resolve.body == (
        b'{"routing_key":"route-key","event_action":"resolve","dedup_key":"obj-uid-1"}'
    )
    change = resolve.follow_up
    assert change is not None
    assert change.url == "https://events.pagerduty.com/v2/change/enqueue"
    assert change.body == (
        b'{"routing_key":"route-key","payload":{"summary":"reconciliation succeeded: '
        b'kustomization/apps","source":"Flux kustomize-controller",'
        b'"timestamp":"2026-12-04T07:00:00Z","custom_details":{"message":'
        b'"Reconciliation finished in 2s, next run in 10m","metadata":null}}}'
    )
    with pytest.raises(NothingToSend):
        build_request(pagerduty, applied(reason="Progressing"))
    with pytest.raises(InvalidProvider, match="invalid PagerDuty endpoint URL"):
        build_request(dataclasses.replace(pagerduty, address="events"), failed())


def test_commit_status_providers_take_updates_commits_and_errors_only() -> None:
    update = applied(metadata={"kustomize.toolkit.fluxcd.io/commit_status": "update"})
    plain_info = applied(metadata={"kustomize.toolkit.fluxcd.io/revision": f"main@sha1:{SHA}"})
    naming_a_commit = applied(metadata={"event.toolkit.fluxcd.io/commit": SHA})
    assert takes_event("github", update)
    assert takes_event("gitlab", naming_a_commit)
    assert takes_event("gitea", failed())
    assert not takes_event("github", plain_info), "an info event without an update is dropped"
    assert not takes_event("slack", update), "chat providers never see commit status updates"
    assert takes_event("generic", update)
    assert takes_event("slack", plain_info)
