"""What decides which objects a webhook reconciles, and which requests get through:

- ``resourceFilter`` and ``resources[].filter`` are CEL over ``res`` (the object's
  metadata), ``req`` (a JSON body) and, for ``generic-oidc``, ``claims``; a bad one is
  named by its field, one that fails on an object says so;
- a ``cdevents`` body must be a CDEvent (v0.4) and ``spec.events`` filters ``Ce-Type``;
- ``oidcProviders[].variables`` are evaluated in order and seen by the validations;
- each webhook path has a token bucket.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from fluxd.api import RECEIVER, ReceiverSpec
from fluxd.notify.cdevents import InvalidCDEvent, event_type
from fluxd.notify.oidc import TokenRefused, invalid_expressions, verify_bearer
from fluxd.notify.ratelimit import PathRateLimiter
from fluxd.notify.receivers import Rejected, authenticate
from fluxd.notify.resource_filter import (
    FilterError,
    ResourceFilters,
    invalid_filters,
    request_document,
)
from tests.oidc_issuer import oidc_issuer

JSON = "application/json"


def spec(
    *,
    resource_filter: str | None = None,
    filters: tuple[str | None, ...] = (None,),
    type_: str = "generic",
    events: tuple[str, ...] = (),
) -> ReceiverSpec:
    resources = []
    for index, expression in enumerate(filters):
        resource: dict[str, Any] = {"kind": "GitRepository", "name": f"repo-{index}"}
        if expression:
            resource["filter"] = expression
        resources.append(resource)
    body: dict[str, Any] = {"type": type_, "resources": resources, "events": list(events)}
    if type_ == "generic-oidc":
        validation = {"expression": "true", "message": "m"}
        body["oidcProviders"] = [
            {"issuerURL": "https://issuer.example", "validations": [validation]}
        ]
    else:
        body["secretRef"] = {"name": "token"}
    if resource_filter:
        body["resourceFilter"] = resource_filter
    return RECEIVER.parse_spec({"spec": body})


def repository(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": "apps", "labels": labels},
        "spec": {"url": "https://example.com/secret.git"},
    }


def test_filters_that_do_not_compile_are_named_by_their_field() -> None:
    problems = invalid_filters(
        spec(resource_filter="res.metadata.name ==", filters=(None, "req.ref == 'x'", "nope(1"))
    )
    assert len(problems) == 2
    assert problems[0].startswith("invalid resourceFilter expression")
    assert (
        "invalid filter expression for resources[2] (kind='GitRepository', name='repo-2')"
        in (problems[1])
    )
    assert invalid_filters(spec(resource_filter="res.kind == 'GitRepository'")) == []


def test_claims_exist_only_for_generic_oidc_and_other_names_are_refused() -> None:
    with_claims = "claims.sub == 'x'"
    (problem,) = invalid_filters(spec(resource_filter=with_claims))
    assert "undeclared reference to 'claims'" in problem
    assert invalid_filters(spec(resource_filter=with_claims, type_="generic-oidc")) == []
    (problem,) = invalid_filters(spec(filters=("body.ref == 'main'",)))
    assert "undeclared reference to 'body'" in problem
    macro = "res.metadata.labels.all(k, k != 'skip')"
    assert invalid_filters(spec(resource_filter=macro)) == [], "a macro's own name is bound"


def test_both_filters_must_accept_an_object() -> None:
    filters = ResourceFilters(
        spec(
            resource_filter="req.repository == res.metadata.labels.repo",
            filters=("res.metadata.name.startsWith('app')", None),
        ),
        request={"repository": "team/app"},
    )
    matching = repository("app-1", repo="team/app")
    assert filters.accepts(0, matching)
    assert not filters.accepts(0, repository("other", repo="team/app")), "per-resource filter"
    assert not filters.accepts(0, repository("app-2", repo="team/web")), "top-level filter"
    assert filters.accepts(1, repository("any", repo="team/app"))
    assert filters.applies_to(1)


def test_the_example_of_fluxs_documentation_picks_the_image_named_in_the_tag() -> None:
    documented = (
        "has(res.metadata.annotations) && req.tag.split('/').last().value().split(':')"
        ".first().value() == res.metadata.annotations['update-image']"
    )
    filters = ResourceFilters(
        spec(resource_filter=documented), request={"tag": "ghcr.io/team/web:v1.2.3"}
    )
    web = repository("web") | {"metadata": {"name": "web", "annotations": {"update-image": "web"}}}
    api = repository("api") | {"metadata": {"name": "api", "annotations": {"update-image": "api"}}}
    assert filters.accepts(0, web)
    assert not filters.accepts(0, api)
    assert not filters.accepts(0, repository("plain"))


def test_res_is_the_objects_metadata_only() -> None:
    filters = ResourceFilters(spec(resource_filter="has(res.spec)"), request={})
    assert not filters.accepts(0, repository("app")), "Flux reads only the metadata"
    per_resource_only = ResourceFilters(spec(filters=(None, "true")), request={})
    assert not per_resource_only.applies_to(0)
    assert per_resource_only.applies_to(1)


def test_an_expression_failing_on_an_object_says_which_and_why() -> None:
    filters = ResourceFilters(spec(resource_filter="res.metadata.labels.team == 'a'"), request={})
    with pytest.raises(FilterError) as failed:
        filters.accepts(0, repository("app"))
    assert "res.metadata.labels.team" in str(failed.value)
    assert "KeyError" in str(failed.value)
    not_boolean = ResourceFilters(spec(resource_filter="res.metadata.name"), request={})
    with pytest.raises(FilterError, match="not a boolean"):
        not_boolean.accepts(0, repository("app"))


def test_req_is_the_body_only_when_it_is_sent_as_json() -> None:
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    assert request_document(JSON, body) == {"ref": "refs/heads/main"}
    assert request_document("application/json; charset=utf-8", body)["ref"]
    assert request_document("text/plain", body) == {}
    assert request_document("", b"not json") == {}
    with pytest.raises(FilterError, match="failed to parse request body as JSON"):
        request_document(JSON, b"{not json")
    with pytest.raises(FilterError, match="not an object"):
        request_document(JSON, b"[1, 2]")


def test_claims_are_seen_by_generic_oidc_filters() -> None:
    filters = ResourceFilters(
        spec(resource_filter="claims.ref == 'main'", type_="generic-oidc"),
        request={},
        claims={"ref": "main"},
    )
    assert filters.accepts(0, repository("app"))


def cdevent(**context: Any) -> bytes:
    event = {
        "context": {
            "version": "0.4.1",
            "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
            "source": "/event/source/123",
            "type": "dev.cdevents.pipelinerun.queued.0.2.0",
            "timestamp": "2023-03-20T14:27:05.315384Z",
        }
        | context,
        "subject": {
            "id": "mySubject123",
            "type": "pipelineRun",
            "content": {"pipelineName": "myPipeline", "url": "https://www.example.com"},
        },
    }
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


def test_a_cdevent_is_checked_as_the_spec_describes_it() -> None:
    assert event_type(cdevent()) == "dev.cdevents.pipelinerun.queued.0.2.0"
    custom = cdevent(type="dev.cdeventsx.mytool-resource.created.0.1.0")
    assert event_type(custom) == "dev.cdeventsx.mytool-resource.created.0.1.0"
    refused = {
        b"not json": "not JSON",
        b"[]": "not a JSON object",
        b"{}": "context is required",
        cdevent(id=""): "context.id is required",
        cdevent(type="dev.cdevents.pipelinerun.exploded.0.2.0"): "unknown event type",
        cdevent(type="pipelinerun.queued"): "not of the form",
        cdevent(type="dev.cdevents.pipelinerun.queued.two"): "not of the form",
        cdevent(timestamp="yesterday"): "not an RFC 3339 time",
        cdevent(
            type="dev.cdevents.build.queued.0.2.0"
        ): "subject.type 'pipelineRun' is not 'build'",
    }
    for body, message in refused.items():
        with pytest.raises(InvalidCDEvent, match=message):
            event_type(body)
    no_subject = json.loads(cdevent())
    no_subject["subject"].pop("content")
    with pytest.raises(InvalidCDEvent, match=r"subject\.content"):
        event_type(json.dumps(no_subject).encode())


def test_a_cdevents_receiver_filters_the_cloudevents_type() -> None:
    queued = "dev.cdevents.pipelinerun.queued.0.2.0"
    receiver = spec(type_="cdevents", events=(queued,))
    headers = {"Ce-Type": queued.upper()}
    assert authenticate(receiver, headers, cdevent(), "t") == queued.upper()
    with pytest.raises(Rejected) as other:
        authenticate(receiver, {"Ce-Type": "dev.cdevents.build.queued.0.2.0"}, cdevent(), "t")
    assert other.value.status == 400
    assert "not authorised" in str(other.value)
    with pytest.raises(Rejected) as invalid:
        authenticate(receiver, headers, b"{}", "t")
    assert invalid.value.status == 400
    assert "unable to validate CDEvent event" in str(invalid.value)


def oidc_spec(issuer: str, variables: list[dict[str, str]], expression: str) -> ReceiverSpec:
    return RECEIVER.parse_spec(
        {
            "spec": {
                "type": "generic-oidc",
                "resources": [{"kind": "GitRepository", "name": "app"}],
                "oidcProviders": [
                    {
                        "issuerURL": issuer,
                        "variables": variables,
                        "validations": [{"expression": expression, "message": "team only"}],
                    }
                ],
            }
        }
    )


async def test_oidc_variables_are_evaluated_in_order_for_the_validations() -> None:
    variables = [
        {"name": "owner", "expression": "claims.sub.split(':')[1].split('/')[0]"},
        {"name": "is_team", "expression": "vars.owner.lowerAscii() == 'team'"},
    ]
    async with oidc_issuer() as issuer:
        receiver = oidc_spec(issuer.url, variables, "vars.is_team")
        assert invalid_expressions(receiver) == []
        token = issuer.token(issuer.claims())
        assert await verify_bearer(receiver.oidc_providers, f"Bearer {token}")
        other = issuer.token(issuer.claims(sub="repo:other/app:ref:refs/heads/main"))
        with pytest.raises(TokenRefused, match="token validation failed: team only"):
            await verify_bearer(receiver.oidc_providers, f"Bearer {other}")
        missing = oidc_spec(issuer.url, [{"name": "x", "expression": "claims.nope"}], "true")
        with pytest.raises(TokenRefused, match="failed to evaluate variable 'x'"):
            await verify_bearer(missing.oidc_providers, f"Bearer {token}")


def test_oidc_variables_that_do_not_compile_are_named() -> None:
    broken = oidc_spec("https://issuer.example", [{"name": "owner", "expression": "("}], "true")
    (problem,) = invalid_expressions(broken)
    assert "invalid expression for variable 'owner'" in problem
    undeclared = oidc_spec("https://issuer.example", [], "req.x == 1")
    (problem,) = invalid_expressions(undeclared)
    assert "undeclared reference to 'req'" in problem


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_path_has_a_bucket_that_refills() -> None:
    clock = Clock()
    limiter = PathRateLimiter(burst=3, refill_per_second=0.5, clock=clock)
    assert [limiter.allow("/hook/a") for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after("/hook/a") == 2
    assert limiter.allow("/hook/b"), "another path has its own bucket"
    clock.now += 1.0
    assert not limiter.allow("/hook/a"), "half a token after a second"
    clock.now += 1.0
    assert limiter.allow("/hook/a")
    assert not limiter.allow("/hook/a")
    clock.now += 3600
    assert [limiter.allow("/hook/a") for _ in range(4)] == [True, True, True, False], (
        "the bucket never holds more than its burst"
    )


def test_buckets_of_quiet_paths_are_forgotten() -> None:
    clock = Clock()
    limiter = PathRateLimiter(burst=1, refill_per_second=1.0, clock=clock)
    for index in range(1000):
        assert limiter.allow(f"/hook/{index}")
        clock.now += 0.01
    assert len(limiter._buckets) < 300
