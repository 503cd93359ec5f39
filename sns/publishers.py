"""Publishers: the clients that put a post on a platform, chosen per platform in settings.

`SNS_PUBLISHERS = {"twitter": "sns.publishers.WebhookPublisher", ...}`; platforms not listed use
`SNS_DEFAULT_PUBLISHER` (the log publisher, for local runs). A publisher either returns a
`Publication` or raises one of the three errors below; the publish task turns them into the
post's next state (docs/SCHEDULING.md):

* `TransientPublishError` - known *not* accepted (5xx, 429, connection refused): retry later;
* `PermanentPublishError` - refused for good (other 4xx): the post fails;
* `OutcomeUnknown` - the request may have been accepted (read timeout, connection lost after
  sending): retried with the same idempotency key only by publishers that honour keys.

A real network's client is one more subclass of `Publisher`.
"""

from __future__ import annotations

import abc
import functools
import http.client
import json
import logging
import os
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from sns.models import SNSPost

logger = logging.getLogger(__name__)

# Statuses that mean "not processed, try again" although they are 4xx: a timeout on the
# platform's side, a request with this idempotency key still running, too early, throttled.
RETRYABLE_4XX = frozenset({408, 409, 425, 429})
MAX_RESPONSE_BYTES = 64 * 1024


class PublishError(Exception):
    """The platform did not confirm the publication."""


class TransientPublishError(PublishError):
    """Not accepted this time (5xx, 429, unreachable); a later attempt may succeed."""


class PermanentPublishError(PublishError):
    """Refused for good (validation, revoked credentials); retrying can't help."""


class OutcomeUnknown(PublishError):
    """The request may or may not have been accepted (no answer in time, connection lost)."""


@dataclass(frozen=True)
class Publication:
    """What the platform answered to an accepted post."""

    external_id: str = ""


class Publisher(abc.ABC):
    """Puts one post on its platform."""

    # True when a repeated call with the same idempotency key can't publish twice: then a call
    # whose outcome is unknown may be retried safely.
    honours_idempotency_keys: ClassVar[bool] = False

    @abc.abstractmethod
    def publish(self, post: SNSPost, *, idempotency_key: str, timeout: float) -> Publication:
        """Publish `post`, or raise a PublishError subclass."""


class LogPublisher(Publisher):
    """Writes the post to the log instead of a platform (local runs); repeats are harmless."""

    honours_idempotency_keys = True

    def publish(self, post: SNSPost, *, idempotency_key: str, timeout: float) -> Publication:
        logger.info(
            "sns post %s published to %s (log publisher, key %s): %.80r",
            post.pk,
            post.platform,
            idempotency_key,
            post.content,
        )
        return Publication(external_id=f"log-{idempotency_key}")


def _external_id(raw: bytes) -> str:
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        return ""
    if isinstance(data, dict):
        for name in ("external_id", "id"):
            value = data.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return str(value)[:255]
    return ""


class WebhookPublisher(Publisher):
    """HTTP POST of the post as JSON to SNS_WEBHOOK_URL, with an `Idempotency-Key` header.

    2xx = published (external id from the body's `external_id` or `id`); 5xx, 408, 409, 425,
    429 and a refused or timed-out connect = transient; other answers = permanent; no answer
    in time or a connection lost after sending = outcome unknown.

    One keep-alive connection per process and thread, kept only after a success (any error
    closes it, so a late answer can never be read as the next call's). A reused connection the
    server has closed while idle is replaced before sending; if sending the request on it fails
    (the server reset it meanwhile: the request never got through whole), it is sent once more
    on a new connection. Nothing is resent once the request was sent: that stays outcome unknown.
    """

    honours_idempotency_keys = True

    def __init__(self, url: str | None = None) -> None:
        self.url = url or settings.SNS_WEBHOOK_URL
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImproperlyConfigured(f"SNS_WEBHOOK_URL must be an http(s) URL, got {self.url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._idle = threading.local()  # (pid, connection) kept after a success

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    @staticmethod
    def _dropped(sock: socket.socket) -> bool:
        # An idle keep-alive socket is never readable: readable means the server closed it (EOF
        # or reset) or sent something unasked. Either way it can't carry the next request.
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _reusable(self, timeout: float) -> http.client.HTTPConnection | None:
        held = getattr(self._idle, "connection", None)
        self._idle.connection = None
        if held is None:
            return None
        pid, connection = held
        if pid != os.getpid():
            return None  # inherited across a fork: the parent's socket, not ours to use
        if connection.sock is None or self._dropped(connection.sock):
            connection.close()
            return None
        connection.timeout = timeout
        connection.sock.settimeout(timeout)
        return connection

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        connection = self._connection(timeout)
        try:
            connection.connect()
        except OSError as exc:  # refused, unreachable, DNS, connect timeout: nothing was sent
            connection.close()
            raise TransientPublishError(f"cannot connect to the webhook: {exc}") from exc
        return connection

    @staticmethod
    def body(post: SNSPost, idempotency_key: str) -> bytes:
        payload: dict[str, Any] = {
            "id": post.pk,
            "platform": post.platform,
            "content": post.content,
            "scheduled_at": post.scheduled_at.isoformat(),
            "idempotency_key": idempotency_key,
        }
        return json.dumps(payload).encode()

    def publish(self, post: SNSPost, *, idempotency_key: str, timeout: float) -> Publication:
        body = self.body(post, idempotency_key)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
            "User-Agent": "SoftFactory-Publisher/1",
        }
        connection = self._reusable(timeout)
        reused = connection is not None
        if connection is None:
            connection = self._connect(timeout)
        kept = False
        try:
            try:
                try:
                    connection.request("POST", self.path, body=body, headers=headers)
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                    if not reused:
                        raise
                    # The server reset the idle connection before this request got through whole
                    # (request() only returns once all of it is handed to the kernel), so it was
                    # not processed: send it once on a new connection.
                    connection.close()
                    connection = self._connect(timeout)
                    connection.request("POST", self.path, body=body, headers=headers)
                response = connection.getresponse()
                raw = response.read(MAX_RESPONSE_BYTES)
            except TimeoutError as exc:
                raise OutcomeUnknown(f"no answer from the webhook within {timeout:g} s") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise OutcomeUnknown(f"connection to the webhook lost: {exc!r}") from exc
            status = response.status
            if 200 <= status < 300:
                publication = Publication(external_id=_external_id(raw))
                # Keep it only if the answer was read whole and the server keeps it open.
                kept = response.isclosed() and not response.will_close and connection.sock is not None
                if kept:
                    self._idle.connection = (os.getpid(), connection)
                return publication
            snippet = raw[:200].decode("utf-8", "replace")
            if status >= 500 or status in RETRYABLE_4XX:
                raise TransientPublishError(f"HTTP {status} from the webhook: {snippet}")
            raise PermanentPublishError(f"HTTP {status} from the webhook: {snippet}")
        finally:
            if not kept:
                connection.close()


@functools.cache
def _publisher(path: str) -> Publisher:
    publisher_class = import_string(path)
    if not (isinstance(publisher_class, type) and issubclass(publisher_class, Publisher)):
        raise ImproperlyConfigured(f"{path} is not a sns.publishers.Publisher")
    return publisher_class()


@receiver(setting_changed)
def _forget_publishers(*, setting: str, **kwargs: Any) -> None:
    # Publishers read their settings once; a test that overrides them gets fresh instances.
    if setting.startswith("SNS_"):
        _publisher.cache_clear()


def publisher_for(platform: str) -> Publisher:
    """The configured publisher of a platform (one instance per class and process)."""
    return _publisher(settings.SNS_PUBLISHERS.get(platform, settings.SNS_DEFAULT_PUBLISHER))


def platforms_honouring_keys() -> list[str]:
    """Platforms whose publisher makes a repeated call with the same key harmless."""
    return [platform for platform in SNSPost.Platform.values if publisher_for(platform).honours_idempotency_keys]
