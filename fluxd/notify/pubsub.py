"""The ``googlepubsub`` Provider type: Flux's JSON event published to a Pub/Sub topic.

As in Flux, ``spec.address`` is the Google Cloud project, ``spec.channel`` the topic,
the Secret's ``headers`` become the message's attributes and its ``token`` holds a
service account's JSON key. Flux publishes with Google's Go client (gRPC); fluxd uses
the documented REST method ``POST https://pubsub.googleapis.com/v1/projects/<project>/
topics/<topic>:publish`` with the same message data. Its access token comes from the
key as Google's clients get one: a JWT signed with the key (RS256) exchanged at the
key's ``token_uri`` under the JWT bearer grant, once per delivery. When
``PUBSUB_EMULATOR_HOST`` is set (``host:port``), the publish goes to that emulator over
plain HTTP without credentials, as Google's clients do. A Provider without a key would
use workload identity in Flux; fluxd does not serve that and refuses it by name.
``cryptography`` is imported only to sign.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from fluxd.notify.event import Notification, go_json
from fluxd.notify.request import InvalidProvider, ProviderSettings, Request, json_request

__all__ = ["EMULATOR_VARIABLE", "PUBSUB_API", "SCOPES", "pubsub_request"]

PUBSUB_API = "https://pubsub.googleapis.com"
EMULATOR_VARIABLE = "PUBSUB_EMULATOR_HOST"
#: The scopes Google's Go Pub/Sub client asks for.
SCOPES = "https://www.googleapis.com/auth/pubsub https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _service_account(token: str) -> Mapping[str, str]:
    try:
        key = json.loads(token)
    except ValueError as error:
        raise InvalidProvider(
            f"the 'token' in spec.secretRef is not a JSON service account key: {error}"
        ) from None
    if not isinstance(key, dict):
        raise InvalidProvider("the 'token' in spec.secretRef is not a JSON service account key")
    if key.get("type") != "service_account":
        raise InvalidProvider(
            f"credentials of type {key.get('type')!r} are not supported by fluxd: "
            "use a service account key ('type': 'service_account')"
        )
    missing = [f for f in ("client_email", "private_key", "token_uri") if not key.get(f)]
    if missing:
        raise InvalidProvider(f"the service account key has no {', '.join(missing)}")
    return {k: str(v) for k, v in key.items()}


def signed_assertion(key: Mapping[str, str], now: int) -> str:
    """The RS256 JWT a service account key asserts itself with at its ``token_uri``."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        private_key = serialization.load_pem_private_key(key["private_key"].encode(), None)
    except (ValueError, TypeError) as error:
        raise InvalidProvider(f"the service account's private_key is not valid: {error}") from None
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise InvalidProvider("the service account's private_key is not an RSA key")
    header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
    if key.get("private_key_id"):
        header["kid"] = key["private_key_id"]
    claims = {
        "iss": key["client_email"],
        "scope": SCOPES,
        "aud": key["token_uri"],
        "exp": now + ASSERTION_LIFETIME,
        "iat": now,
    }
    signing_input = f"{_b64url(go_json(header))}.{_b64url(go_json(claims))}"
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def _message(settings: ProviderSettings, event: Notification) -> dict[str, Any]:
    message: dict[str, Any] = {"data": base64.b64encode(go_json(event.to_dict())).decode()}
    if settings.headers:
        message["attributes"] = dict(settings.headers)
    return {"messages": [message]}


def _published(body: bytes) -> str | None:
    try:
        answer = json.loads(body)
    except ValueError as error:
        return f"unable to read the publish answer: {error}"
    if isinstance(answer, dict) and answer.get("messageIds"):
        return None
    return f"Pub/Sub returned no message ID: {body[:200].decode(errors='replace')}"


def _publish_after_token(
    url: str, payload: dict[str, Any], failure: str
) -> Callable[[bytes], Request]:
    def publish(answer: bytes) -> Request:
        try:
            token = json.loads(answer)["access_token"]
        except (ValueError, KeyError, TypeError):
            token = ""
        if not isinstance(token, str) or not token:
            raise InvalidProvider(
                f"the token endpoint gave no access_token: {answer[:200].decode(errors='replace')}"
            )
        request = json_request(url, payload, {"Authorization": f"Bearer {token}"})
        return Request(
            url=request.url,
            body=request.body,
            headers=request.headers,
            check=_published,
            failure=failure,
        )

    return publish


def pubsub_request(settings: ProviderSettings, event: Notification) -> Request:
    """The publish of ``event`` (through the emulator, or after the token exchange)."""
    project, topic = settings.address, settings.channel
    if not project:
        raise InvalidProvider("GCP project ID cannot be empty")
    if not topic:
        raise InvalidProvider("GCP Pub/Sub topic ID cannot be empty")
    path = f"/v1/projects/{quote(project, safe='')}/topics/{quote(topic, safe='')}:publish"
    failure = f"error publishing to GCP Pub/Sub topic projects/{project}/topics/{topic}"
    payload = _message(settings, event)
    emulator = os.environ.get(EMULATOR_VARIABLE, "")
    if emulator:
        request = json_request(f"http://{emulator}{path}", payload)
        return Request(
            url=request.url,
            body=request.body,
            headers=request.headers,
            check=_published,
            failure=failure,
        )
    if not settings.token:
        raise InvalidProvider(
            "no Google credentials: set 'token' (a service account JSON key) in "
            "spec.secretRef; workload identity is not supported by fluxd"
        )
    key = _service_account(settings.token)
    assertion = signed_assertion(key, int(time.time()))
    form = urlencode({"grant_type": JWT_BEARER_GRANT, "assertion": assertion}).encode()
    return Request(
        url=key["token_uri"],
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        then=_publish_after_token(f"{PUBSUB_API}{path}", payload, failure),
        failure=f"{failure}: the token exchange at {key['token_uri']} failed",
    )
