"""Authenticating a ``generic-oidc`` Receiver's request by its OIDC bearer token.

Such a Receiver has no Secret: a request is accepted only when its
``Authorization: Bearer <JWT>`` verifies against one of ``spec.oidcProviders``, as
Flux's receiver does it with an OpenID Connect verifier:

1. the token's (unverified) ``iss`` claim picks the provider whose ``issuerURL`` is
   exactly that string; no provider, no entry;
2. the issuer's discovery document (``<issuer>/.well-known/openid-configuration``) is
   read for every request, and must name the same ``issuer``; its ``jwks_uri`` gives the
   keys and ``id_token_signing_alg_values_supported`` the algorithms (``RS256`` when
   it lists none fluxd verifies);
3. the claims must hold ``iss`` = the issuer, the provider's ``audience`` (default
   ``notification-controller``) among ``aud``, an ``exp`` not passed and an ``nbf`` (if
   any) at most five minutes ahead; then the signature must verify with one of the keys
   (:mod:`~fluxd.notify.jws`);
4. the ``variables`` are evaluated in order (CEL over ``claims`` and the ``vars`` named
   before), each becoming ``vars.<name>``; then every ``validations[].expression``
   (over ``claims`` and ``vars``) must be true; the messages of those that are not are
   the answer.

The verified claims are returned: a Receiver's resource filters see them as ``claims``.

A refused token raises :class:`TokenRefused`, whose message says which step failed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from fluxd.api import OIDCProvider, ReceiverSpec
from fluxd.cel import compile_expression, compile_predicate
from fluxd.notify import jws

__all__ = ["DEFAULT_AUDIENCE", "TokenRefused", "invalid_expressions", "verify_bearer"]

DEFAULT_AUDIENCE = "notification-controller"
#: Clock skew allowed on ``nbf``, as OIDC verifiers commonly allow.
NOT_BEFORE_LEEWAY_SECONDS = 5 * 60
_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10)
_BEARER = "Bearer "
_SCOPE = ("claims", "vars")
#: What evaluating a CEL expression raises on claims it does not fit.
_EVALUATION_ERRORS = (ValueError, TypeError, RuntimeError, KeyError)


class TokenRefused(Exception):
    """The bearer token does not authenticate the request; the message says why."""


def invalid_expressions(spec: ReceiverSpec) -> list[str]:
    """The ``oidcProviders[]`` variables and validations that do not compile, each named
    with its provider and the compiler's error."""
    problems = []
    for index, provider in enumerate(spec.oidc_providers):
        for variable in provider.variables:
            try:
                compile_expression(variable.expression, variables=_SCOPE)
            except ValueError as error:
                problems.append(
                    f"oidcProviders[{index}] (issuerURL={provider.issuer_url!r}): invalid "
                    f"expression for variable {variable.name!r}: {error}"
                )
        for validation in provider.validations:
            try:
                compile_predicate(validation.expression, variables=_SCOPE)
            except ValueError as error:
                problems.append(
                    f"oidcProviders[{index}] (issuerURL={provider.issuer_url!r}): invalid "
                    f"expression for validation {validation.message!r}: {error}"
                )
    return problems


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TokenRefused(f"failed to parse {what}: {error}") from error
    if not isinstance(value, dict):
        raise TokenRefused(f"failed to parse {what}: not a JSON object")
    return value


def _unverified_issuer(token: str) -> str:
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRefused("failed to parse bearer token: token is not a JWT")
    try:
        payload = jws.b64url_decode(parts[1])
    except jws.InvalidSignature as error:
        raise TokenRefused(f"failed to parse bearer token: {error}") from error
    issuer = _json_object(payload, "token payload").get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise TokenRefused("failed to parse bearer token: token is missing the 'iss' claim")
    return issuer


async def _get_json(session: aiohttp.ClientSession, url: str, what: str) -> dict[str, Any]:
    try:
        async with session.get(url) as response:
            body = await response.read()
            if response.status != 200:
                raise TokenRefused(f"{what} {url} answered {response.status}")
    except (aiohttp.ClientError, TimeoutError) as error:
        raise TokenRefused(f"unable to read {what} {url}: {error}") from error
    return _json_object(body, f"{what} {url}")


def _check_claims(claims: dict[str, Any], issuer: str, audience: str) -> None:
    if claims.get("iss") != issuer:
        raise TokenRefused(
            f"id token issued by a different provider, expected {issuer!r} got "
            f"{claims.get('iss')!r}"
        )
    audiences = claims.get("aud")
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or audience not in audiences:
        raise TokenRefused(f"expected audience {audience!r} got {claims.get('aud')!r}")
    now = time.time()
    expiry = claims.get("exp")
    if not isinstance(expiry, int | float) or isinstance(expiry, bool) or int(expiry) < now:
        raise TokenRefused(f"token is expired (exp: {expiry!r})")
    not_before = claims.get("nbf")
    if not_before is not None:
        if not isinstance(not_before, int | float) or isinstance(not_before, bool):
            raise TokenRefused(f"the nbf claim {not_before!r} is not a number")
        if now + NOT_BEFORE_LEEWAY_SECONDS < int(not_before):
            raise TokenRefused(f"current time is before the nbf (not before) time {not_before}")


async def _verified_claims(provider: OIDCProvider, token: str) -> dict[str, Any]:
    issuer = provider.issuer_url
    async with aiohttp.ClientSession(timeout=_FETCH_TIMEOUT) as session:
        discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        discovery = await _get_json(session, discovery_url, "OIDC discovery")
        if discovery.get("issuer") != issuer:
            raise TokenRefused(
                f"issuer did not match the issuer returned by provider, expected {issuer!r} "
                f"got {discovery.get('issuer')!r}"
            )
        listed = discovery.get("id_token_signing_alg_values_supported")
        algorithms = (
            {a for a in listed if isinstance(a, str)} if isinstance(listed, list) else set()
        )
        algorithms &= jws.SIGNING_ALGORITHMS
        claims = _json_object(jws.b64url_decode(token.split(".")[1]), "token claims")
        _check_claims(claims, issuer, provider.audience or DEFAULT_AUDIENCE)
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise TokenRefused(f"OIDC discovery of {issuer!r} names no jwks_uri")
        keys = (await _get_json(session, jwks_uri, "JSON Web Key Set")).get("keys")
    usable = [key for key in keys if isinstance(key, dict)] if isinstance(keys, list) else []
    try:
        jws.verify(token, usable, algorithms or {"RS256"})
    except jws.InvalidSignature as error:
        raise TokenRefused(f"failed to verify OIDC token: {error}") from error
    return claims


def _evaluate(provider: OIDCProvider, claims: dict[str, Any]) -> None:
    variables: dict[str, Any] = {}
    scope = {"claims": claims, "vars": variables}
    for variable in provider.variables:
        try:
            variables[variable.name] = compile_expression(variable.expression, variables=_SCOPE)(
                scope
            )
        except _EVALUATION_ERRORS as error:
            raise TokenRefused(
                f"failed to evaluate variable {variable.name!r}: {type(error).__name__} {error}"
            ) from error
    failures = []
    for validation in provider.validations:
        try:
            holds = compile_predicate(validation.expression, variables=_SCOPE)(scope)
        except _EVALUATION_ERRORS as error:
            raise TokenRefused(
                f"failed to evaluate validation {validation.message!r}: "
                f"{type(error).__name__} {error}"
            ) from error
        if not holds:
            failures.append(validation.message)
    if failures:
        raise TokenRefused("token validation failed: " + "; ".join(failures))


async def verify_bearer(providers: Sequence[OIDCProvider], authorization: str) -> dict[str, Any]:
    """The verified claims of the ``Authorization`` header's bearer token;
    :class:`TokenRefused` when any step fails."""
    if not authorization.startswith(_BEARER):
        raise TokenRefused("the Authorization header is missing or malformed")
    token = authorization[len(_BEARER) :].strip()
    if not token:
        raise TokenRefused("the Authorization header is missing a bearer token")
    issuer = _unverified_issuer(token)
    provider = next((p for p in providers if p.issuer_url == issuer), None)
    if provider is None:
        raise TokenRefused(f"no oidcProvider configured for issuer {issuer!r}")
    claims = await _verified_claims(provider, token)
    _evaluate(provider, claims)
    return claims
