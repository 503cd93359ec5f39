"""softfactory.redis_direct: the direct-connection read answers exactly what django-redis would."""

from __future__ import annotations

import copy
import os
import threading

import pytest
from django.core.cache import cache
from django_redis import get_redis_connection

from softfactory.redis_direct import cache_get, direct
from tests.cache.servers import black_hole, closed_port_url, with_cache_location


@pytest.mark.parametrize("value", [{"id": 3, "email": "a@example.com", "is_active": True}, 7, -1, "text", [1, 2], 0])
def test_a_value_set_through_the_cache_reads_back_the_same(value):
    cache.set("direct:probe", value, timeout=30)
    assert cache_get("default", "direct:probe") == value == cache.get("direct:probe")


def test_a_missing_key_is_none():
    cache.delete("direct:missing")
    assert cache_get("default", "direct:missing") is None


def test_an_unreachable_or_hung_redis_reads_as_none_like_the_ignoring_cache(settings):
    with_cache_location(settings, "default", closed_port_url())
    assert cache_get("default", "anything") is None
    with black_hole() as url:
        hung = copy.deepcopy(settings.CACHES)
        hung["default"]["LOCATION"] = url
        hung["default"]["OPTIONS"]["SOCKET_TIMEOUT"] = 0.2
        settings.CACHES = hung
        assert cache_get("default", "anything") is None


def test_a_dropped_connection_is_replaced_and_the_read_answers():
    cache.set("direct:probe", "x", timeout=30)
    assert cache_get("default", "direct:probe") == "x"
    get_redis_connection("default").client_kill_filter(_type="normal", skipme=False)
    assert cache_get("default", "direct:probe") == "x"


def test_threads_and_processes_never_share_a_connection():
    cache.set("direct:probe", "x", timeout=30)
    assert cache_get("default", "direct:probe") == "x"
    mine = direct._local.connection
    seen = []

    def read() -> None:
        seen.append((cache_get("default", "direct:probe"), direct._local.connection))

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert seen[0][0] == "x" and seen[0][1] is not mine
    pid = os.fork()
    if pid == 0:  # the child: a new connection, and the parent's is left alone
        ok = cache_get("default", "direct:probe") == "x" and direct._local.connection is not mine
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache_get("default", "direct:probe") == "x"  # the parent's connection still works
    assert direct._local.connection is mine
