"""Helpers: which database server answered a fill, and Redis addresses that fail on purpose."""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.contrib.contenttypes.models import ContentType
from django.db.models.expressions import RawSQL

from tests.live import free_port


def record_fill_servers(into: list[tuple[int, bool]]) -> Callable[[str], None]:
    """A `before_query` hook: asks the server the fill's routing reaches for its port and role."""

    def hook(view: str) -> None:
        row = (
            ContentType.objects.annotate(
                port=RawSQL("inet_server_port()", ()), replica=RawSQL("pg_is_in_recovery()", ())
            )
            .values_list("port", "replica")
            .first()
        )
        assert row is not None
        into.append((int(row[0]), bool(row[1])))

    return hook


def closed_port_url(db: int = 7) -> str:
    """A Redis URL nothing listens on: every connection is refused at once."""
    return f"redis://127.0.0.1:{free_port()}/{db}"


@contextmanager
def black_hole() -> Iterator[str]:
    """A Redis URL whose server accepts connections and never answers (a hung Redis)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield f"redis://127.0.0.1:{sock.getsockname()[1]}/7"
    finally:
        sock.close()


def with_cache_location(settings, alias: str, location: str) -> None:
    """Point one cache alias elsewhere (Django's caches are rebuilt on the settings change)."""
    caches = copy.deepcopy(settings.CACHES)
    caches[alias]["LOCATION"] = location
    settings.CACHES = caches
