"""The ``azureeventhub`` Provider type: Flux's JSON event sent to an Azure Event Hub.

Flux's notification-controller sends through the Event Hubs SDK over AMQP. fluxd
sends the same message body through the service's documented REST send endpoint
(``POST https://<namespace>/<hub>/messages``), which needs no AMQP stack in the
daemon. The two ways to authenticate are Flux's:

- ``spec.address`` is a connection string (``Endpoint=sb://<namespace>/;
  SharedAccessKeyName=<name>;SharedAccessKey=<key>;EntityPath=<hub>``): each request
  carries a Shared Access Signature for the hub, valid for an hour, made from that
  key. A ``token`` next to it is refused, as Flux refuses it.
- otherwise ``spec.address`` is the hub's name, ``spec.channel`` its namespace (the
  public cloud's ``.servicebus.windows.net`` appended when not fully qualified, the
  sovereign clouds' when ``AZURE_AUTHORITY_HOST`` names one) and the Secret's
  ``token`` a JWT sent as the bearer token. Without one Flux falls back to workload
  identity, which fluxd does not serve: that Provider is refused by name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from urllib.parse import quote, urlsplit

from fluxd.notify.event import Notification, go_json
from fluxd.notify.request import InvalidProvider, ProviderSettings, Request

__all__ = ["SAS_VALIDITY", "eventhub_request", "sas_token"]

#: Seconds a signature made for one request stays valid.
SAS_VALIDITY = 3600
CONTENT_TYPE = "application/atom+xml;type=entry;charset=utf-8"


def _connection_string(address: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in address.split(";"):
        if part.strip():
            key, separator, value = part.partition("=")
            if not separator:
                raise InvalidProvider(
                    f"invalid Event Hubs connection string: {key.strip()!r} has no value"
                )
            fields[key.strip()] = value.strip()
    return fields


def sas_token(resource: str, key_name: str, key: str, expiry: int) -> str:
    """The ``SharedAccessSignature`` authorization for ``resource`` until ``expiry``."""
    encoded = quote(resource, safe="")
    digest = hmac.new(key.encode(), f"{encoded}\n{expiry}".encode(), hashlib.sha256).digest()
    signature = quote(base64.b64encode(digest).decode(), safe="")
    return f"SharedAccessSignature sr={encoded}&sig={signature}&se={expiry}&skn={key_name}"


def _sas_target(settings: ProviderSettings) -> tuple[str, str]:
    """The hub's URL and the authorization from a connection string."""
    if settings.token:
        raise InvalidProvider(
            "invalid authentication options: jwt token and SAS authentication cannot be set "
            "at the same time"
        )
    fields = _connection_string(settings.address)
    endpoint = urlsplit(fields.get("Endpoint", ""))
    hub = fields.get("EntityPath", "")
    if endpoint.scheme != "sb" or not endpoint.netloc:
        raise InvalidProvider(
            "invalid Event Hubs connection string: Endpoint must be sb://<namespace>/"
        )
    if not hub:
        raise InvalidProvider(
            "invalid Event Hubs connection string: EntityPath (the event hub's name) is missing"
        )
    resource = f"https://{endpoint.netloc}/{hub}"
    key_name, key = fields.get("SharedAccessKeyName", ""), fields.get("SharedAccessKey", "")
    if not key_name or not key:
        raise InvalidProvider(
            "invalid Event Hubs connection string: SharedAccessKeyName and SharedAccessKey "
            "are both needed"
        )
    expiry = int(time.time()) + SAS_VALIDITY
    return resource, sas_token(resource, key_name, key, expiry)


def _cloud_suffix() -> str:
    authority = os.environ.get("AZURE_AUTHORITY_HOST", "")
    if "chinacloudapi.cn" in authority:
        return ".servicebus.chinacloudapi.cn"
    if "microsoftonline.us" in authority:
        return ".servicebus.usgovcloudapi.net"
    return ".servicebus.windows.net"


def _jwt_target(settings: ProviderSettings) -> tuple[str, str]:
    """The hub's URL and the bearer authorization from a hub name, namespace and JWT."""
    if not settings.token:
        raise InvalidProvider(
            "no credentials for the event hub: set a connection string as the address, or "
            "'token' (a JWT) in spec.secretRef; workload identity is not supported by fluxd"
        )
    namespace = settings.channel
    if not namespace:
        raise InvalidProvider(
            "the event hub's namespace is empty: set spec.channel when authenticating by token"
        )
    if ".servicebus." not in namespace:
        namespace += _cloud_suffix()
    hub = settings.address.strip("/")
    if not hub or "/" in hub:
        raise InvalidProvider(f"invalid event hub name {settings.address!r} in spec.address")
    return f"https://{namespace}/{hub}", f"Bearer {settings.token}"


def eventhub_request(settings: ProviderSettings, event: Notification) -> Request:
    """The REST send of ``event``'s JSON to the hub."""
    if not settings.address:
        raise InvalidProvider("endpoint URL cannot be empty")
    if "SharedAccessKey" in settings.address:
        resource, authorization = _sas_target(settings)
    else:
        resource, authorization = _jwt_target(settings)
    return Request(
        url=f"{resource}/messages",
        body=go_json(event.to_dict()),
        headers={"Content-Type": CONTENT_TYPE, "Authorization": authorization},
        failure="failed to send msg",
    )
