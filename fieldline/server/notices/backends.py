"""Notifiers: the backends a notice goes out through, chosen by FIELDLINE_NOTICE_BACKENDS.

Each backend sends one notice or raises DeliveryError, saying whether trying again later can
help (a timeout, a 5xx, 429) or not (any other 4xx: the request itself is wrong). Retries and
their back-off are the outbox's business (services.deliver_pending), so a slow endpoint holds
up one attempt, never the scheduler's loop.

The HTTP requests use the standard library: one POST of a small JSON body needs nothing more.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from fieldline.settings import Settings

log = logging.getLogger(__name__)

# Statuses worth another attempt: the request timed out, the other side is busy or failing.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class DeliveryError(Exception):
    def __init__(self, detail: str, *, retryable: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable


@dataclass(frozen=True)
class Outgoing:
    """What a backend needs of a notice row."""

    id: int
    kind: str
    task_id: str  # the task's public id
    recipient: str
    text: str
    created_at: datetime


class Notifier(Protocol):
    name: str

    def send(self, notice: Outgoing) -> None: ...


class RecordingNotifier:
    """Sends nothing: the notices table is the record (the demo, and utilities that read the
    texts through `GET /api/v1/notices`)."""

    name = "recording"

    def send(self, notice: Outgoing) -> None:
        log.info("notice %d (%s) to %s: %s", notice.id, notice.kind, notice.recipient, notice.text)


def post_json(
    url: str, body: Mapping[str, Any], headers: Mapping[str, str], timeout_s: float
) -> int:
    """POST `body` as JSON; the status, or DeliveryError."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(
            f"{url} answered {exc.code} {exc.reason}", retryable=exc.code in RETRYABLE_STATUSES
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DeliveryError(f"{url} unreachable: {reason}", retryable=True) from None


class WebhookNotifier:
    """POSTs each notice as JSON to FIELDLINE_NOTICE_WEBHOOK_URL (a call-centre system, a
    messaging platform). `Idempotency-Key` lets the receiver drop a repeat: a notice is sent
    again only when the answer to the first attempt was lost."""

    name = "webhook"

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def send(self, notice: Outgoing) -> None:
        body = {
            "id": notice.id,
            "kind": notice.kind,
            "task_id": notice.task_id,
            "recipient": notice.recipient,
            "text": notice.text,
            "created_at": notice.created_at.isoformat(),
        }
        post_json(self.url, body, {"Idempotency-Key": f"notice-{notice.id}"}, self.timeout_s)


class SmsGatewayNotifier:
    """An SMS gateway's HTTP API in its common form: a POST with a bearer token and a JSON body
    naming the sender, the number and the message; `reference` is our id, which gateways echo
    in delivery reports and use to drop duplicates."""

    name = "sms"

    def __init__(self, url: str, token: str, sender: str, timeout_s: float) -> None:
        self.url = url
        self.token = token
        self.sender = sender
        self.timeout_s = timeout_s

    def send(self, notice: Outgoing) -> None:
        body = {
            "from": self.sender,
            "to": notice.recipient,
            "message": notice.text,
            "reference": f"notice-{notice.id}",
        }
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        post_json(self.url, body, headers, self.timeout_s)


BACKENDS: dict[str, Callable[[Settings], Notifier]] = {
    "webhook": lambda s: WebhookNotifier(s.notice_webhook_url, s.notice_timeout_s),
    "sms": lambda s: SmsGatewayNotifier(
        s.sms_gateway_url, s.sms_gateway_token, s.sms_sender, s.notice_timeout_s
    ),
    "recording": lambda s: RecordingNotifier(),
}


def notifiers(settings: Settings) -> dict[str, Notifier]:
    """The backends FIELDLINE_NOTICE_BACKENDS names, by channel name."""
    return {name: BACKENDS[name](settings) for name in settings.notice_backend_names}


def _check_table() -> None:
    from fieldline.server.notices.models import CHANNELS

    assert set(BACKENDS) == set(CHANNELS), "every channel needs a backend, and every backend a row"


_check_table()
