"""Notifications: events out to Providers through Alerts, webhooks in through Receivers.

- :mod:`~fluxd.notify.event`: a recorded Event as Flux's notification payload;
- :mod:`~fluxd.notify.matching`: which Alerts an event goes to;
- :mod:`~fluxd.notify.request`: the request a Provider type makes, and its settings;
- :mod:`~fluxd.notify.providers`: each Provider type's request (body, headers);
- :mod:`~fluxd.notify.chat`: the chat and incident tools' requests;
- :mod:`~fluxd.notify.pagerduty`: PagerDuty's incidents and change events;
- :mod:`~fluxd.notify.commit_status`: git services' commit statuses, GitHub dispatch;
- :mod:`~fluxd.notify.commit_status_expr`: the status id from ``spec.commitStatusExpr``;
- :mod:`~fluxd.notify.pr_comment`: comments on pull and merge requests;
- :mod:`~fluxd.notify.git_service`: git services' addresses, tokens and bodies;
- :mod:`~fluxd.notify.settings`: a Provider's address, credentials, TLS and proxy;
- :mod:`~fluxd.notify.delivery`: sending with Flux's retries and timeout;
- :mod:`~fluxd.notify.dispatcher`: the EventRecorder listener and the bounded senders;
- :mod:`~fluxd.notify.receivers`: ``POST /hook/<digest>`` to requested reconciles;
- :mod:`~fluxd.notify.payloads`: registry webhook bodies checked as Go decodes them;
- :mod:`~fluxd.notify.oidc`, :mod:`~fluxd.notify.jws`: ``generic-oidc`` tokens, checked
  against the issuer's discovery document and keys;
- :mod:`~fluxd.notify.google_idtoken`: ``gcr`` Receivers' Google-signed Pub/Sub push
  tokens, checked against Google's published keys (fetched through ``HTTPS_PROXY``).
"""

from fluxd.notify.dispatcher import Dispatcher
from fluxd.notify.event import Notification, go_json, notification_of
from fluxd.notify.matching import alert_matches, invalid_patterns
from fluxd.notify.providers import (
    SUPPORTED_TYPES,
    InvalidProvider,
    ProviderSettings,
    Request,
    build_request,
)
from fluxd.notify.receivers import SUPPORTED_RECEIVER_TYPES, ReceiverServer, webhook_path
from fluxd.notify.settings import ProviderError, refusal, resolve

__all__ = [
    "SUPPORTED_RECEIVER_TYPES",
    "SUPPORTED_TYPES",
    "Dispatcher",
    "InvalidProvider",
    "Notification",
    "ProviderError",
    "ProviderSettings",
    "ReceiverServer",
    "Request",
    "alert_matches",
    "build_request",
    "go_json",
    "invalid_patterns",
    "notification_of",
    "refusal",
    "resolve",
    "webhook_path",
]
