"""Response cache that is never stale (docs/CACHING.md).

Hot public reads are cached as rendered response bytes in Redis under versioned keys::

    {prefix}:{namespace}:g{generation}[.{namespace}:g{generation}...]:{view}:{digest}

`digest` is a BLAKE2b hash of the format version, scheme, host, path, the negotiated media type
(from `Accept`) and the view's allow-listed, normalised parameters (page and per_page included).
Unknown parameters never reach the key, so they can't bust the cache; pages render their
`next`/`previous` links from the same normalised parameters, so one client's stray parameters
never show up in another client's page.

Each namespace has a meta hash `{prefix}:gen:{namespace}` = {gen, lsn}: its generation and the
primary's WAL position (16 hex digits) recorded with its last bump. The rules:

* A write bumps the generation AFTER COMMIT (`transaction.on_commit`), together with a primary
  WAL position read after that commit that covers it (`bump_on_commit`, `write_position`); a
  rollback bumps nothing. Signals cover save/delete, `InvalidatingQuerySet` covers update,
  bulk_create, bulk_update and delete; raw SQL calls `bump_on_commit` itself.
* A lookup reads the generation(s), their positions and the entry in ONE round trip (a Lua
  script), before any query: a fill that overlaps a write is stored under the old generation,
  where nobody looks any more.
* A miss is filled from a replica that has replayed the namespaces' recorded position (waiting
  up to RESPONSE_CACHE_REPLICA_WAIT_SECONDS for one), else from the primary. Never from a replica
  that is behind: that fill would be served until the next write or the TTL.
* One filler per key (a `SET NX` lock, what `cache.add` does); the others poll briefly for its
  entry and then compute themselves. XFetch refreshes an entry early, within its generation.
* Redis is used through the raw client (`get_redis_connection`), which RAISES: an error means
  "unknown", never "no entry" or "generation 0". Then the cache is skipped and the read goes to
  the primary. A per-process breaker stops calling a failing Redis; failed bumps are kept in a
  process-local list, retried on the next request (and the next bump), and until then this
  process reads those namespaces from the primary. Entries live RESPONSE_CACHE_TTL_SECONDS at
  most: the hard bound on staleness when a bump is lost for good.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import logging
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlencode

from celery.signals import task_prerun
from django.conf import settings
from django.core.exceptions import DisallowedHost, FieldDoesNotExist
from django.db import DatabaseError, connections, models, transaction
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.utils.module_loading import import_string
from django_prometheus.utils import Time
from django_redis import get_redis_connection
from redis.exceptions import NoScriptError, RedisError
from rest_framework.request import Request

from softfactory import metrics
from softfactory.api import Pagination
from softfactory.db_router import PRIMARY, current_state, use_primary
from softfactory.http_caching import etag_for, mark_public
from softfactory.http_metrics import record_answered_early
from softfactory.redis_direct import direct
from softfactory.replicas import monitor, parse_lsn

logger = logging.getLogger(__name__)

T = TypeVar("T")
_M = TypeVar("_M", bound=models.Model)

# Part of every key with RESPONSE_CACHE_VERSION: change it when the entry format changes.
FORMAT_VERSION = "2"
ENVELOPE_MAGIC = b"SF2"
GZIP_MAGIC = b"\x1f\x8b"
GZIP_LEVEL = 6
# Accept-Encoding that allows gzip (as django.middleware.gzip reads it).
ACCEPTS_GZIP = re.compile(r"\bgzip\b")
XFETCH_BETA = 1.0
SOFT_TTL_FRACTION = 0.8  # XFetch aims to refresh before 80 % of the entry's life is over
LOCK_POLL_SECONDS = 0.02
REPLAY_POLL_SECONDS = 0.005


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def enabled() -> bool:
    return bool(_setting("RESPONSE_CACHE_ENABLED", True))


def entry_ttl() -> float:
    """The hard lifetime of an entry in seconds (documented as the staleness bound after an outage)."""
    return float(_setting("RESPONSE_CACHE_TTL_SECONDS", 60))


# Test seams: called with the view name at these points of a fill; empty in production.
hooks: dict[str, list[Callable[[str], None]]] = {"after_lookup": [], "before_query": [], "before_store": []}
# Fills by (namespace, alias that answered); readable in tests like db_router.decisions.
fills: Counter[tuple[str, str]] = Counter()
# Test seams for XFetch: the wall clock and the random draw.
clock: Callable[[], float] = time.time
draw: Callable[[], float] = random.random


def _run_hooks(point: str, view: str) -> None:
    for hook in hooks[point]:
        hook(view)


# --- Redis: one raising client behind a per-process breaker -----------------------------


class CacheUnavailable(Exception):
    """Redis could not be asked (error, timeout, or the breaker is open): treat as unknown."""


class Breaker:
    """Per-process circuit breaker: after N consecutive failures Redis is skipped for a cool-down.

    A black-holed Redis then costs requests nothing; after the cool-down one call is let through
    as a trial (half-open): success closes the breaker, failure opens it again for twice as long.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.failures = 0
        self.openings = 0
        self.open_until = 0.0
        self.trial_since: float | None = None

    @property
    def is_open(self) -> bool:
        return self.open_until > 0.0

    def cooling_down(self) -> bool:
        """Open and not yet due for a trial (asks nothing, changes nothing)."""
        return self.is_open and self.clock() < self.open_until

    def allow(self) -> bool:
        if not self.is_open:
            return True
        with self.lock:
            now = self.clock()
            if now < self.open_until:
                return False
            # Half-open: one trial at a time (a trial that never reported is replaced after 1 s).
            if self.trial_since is not None and now - self.trial_since < 1.0:
                return False
            self.trial_since = now
            return True

    def success(self) -> None:
        if self.failures or self.is_open:
            with self.lock:
                self.reset()

    def failure(self) -> None:
        with self.lock:
            self.failures += 1
            self.trial_since = None
            threshold = int(_setting("RESPONSE_CACHE_BREAKER_FAILURES", 3))
            if self.is_open or self.failures >= threshold:
                self.openings += 1
                base = float(_setting("RESPONSE_CACHE_BREAKER_COOLDOWN_SECONDS", 5.0))
                cooldown = min(base * 2 ** (self.openings - 1), 30.0) * random.uniform(1.0, 1.5)
                self.open_until = self.clock() + cooldown


breaker = Breaker()


def _redis(call: Callable[[Any], T]) -> T:
    """Run one Redis call on the raising client, through the breaker."""
    if not breaker.allow():
        raise CacheUnavailable("the cache breaker is open")
    try:
        result = call(get_redis_connection("default"))
    except RedisError as exc:
        breaker.failure()
        raise CacheUnavailable(f"{type(exc).__name__}: {exc}") from exc
    breaker.success()
    return result


class _Scripts:
    """Lua scripts, called by SHA on this thread's direct connection (softfactory/redis_direct.py)
    and loaded again after NOSCRIPT (a Redis restart or SCRIPT FLUSH)."""

    # KEYS: the namespaces' meta hashes. ARGV[1]: initial generation for a namespace without
    # one, ARGV[2]: key prefix, ARGV[3]: "{view}:{digest}", ARGV[4..]: the namespace names.
    # Reply: {entry key, entry or nil, gen1, lsn1 or nil, gen2, lsn2 or nil, ...}.
    LOOKUP = """
local parts, reply = {}, {}
for i, meta in ipairs(KEYS) do
  local found = redis.call('HMGET', meta, 'gen', 'lsn')
  local gen, lsn = found[1], found[2]
  if not gen then
    redis.call('HSETNX', meta, 'gen', ARGV[1])
    gen = redis.call('HGET', meta, 'gen')
  end
  parts[#parts + 1] = ARGV[3 + i] .. ':g' .. gen
  reply[#reply + 1] = gen
  reply[#reply + 1] = lsn
end
local key = ARGV[2] .. ':' .. table.concat(parts, '.') .. ':' .. ARGV[3]
table.insert(reply, 1, key)
table.insert(reply, 2, redis.call('GET', key))
return reply
"""
    # KEYS: meta hashes. ARGV[1]: entry key, ARGV[2]: value, ARGV[3]: TTL in ms,
    # ARGV[4]: position to record where none is ('' for none), ARGV[5..]: generations the fill read.
    # Stores only if every generation is still the one the fill read (else nobody would read it).
    STORE = """
for i, meta in ipairs(KEYS) do
  if redis.call('HGET', meta, 'gen') ~= ARGV[4 + i] then return 0 end
end
if ARGV[4] ~= '' then
  for _, meta in ipairs(KEYS) do redis.call('HSETNX', meta, 'lsn', ARGV[4]) end
end
redis.call('SET', ARGV[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
    # KEYS[1]: meta hash. ARGV[1]: the write's position (16 hex digits), ARGV[2]: initial
    # generation when the counter is missing (a lost counter restarts above every old one).
    BUMP = """
if redis.call('HEXISTS', KEYS[1], 'gen') == 1 then
  redis.call('HINCRBY', KEYS[1], 'gen', 1)
else
  redis.call('HSET', KEYS[1], 'gen', ARGV[2])
end
local lsn = redis.call('HGET', KEYS[1], 'lsn')
if (not lsn) or lsn < ARGV[1] then redis.call('HSET', KEYS[1], 'lsn', ARGV[1]) end
return redis.call('HGET', KEYS[1], 'gen')
"""
    # Delete a lock only if it is still ours.
    RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

    def __init__(self) -> None:
        # SHA-1 is what Redis names scripts by (EVALSHA), not a security measure.
        self._shas = {
            name: hashlib.sha1(getattr(self, name).encode(), usedforsecurity=False).hexdigest()
            for name in ("LOOKUP", "STORE", "BUMP", "RELEASE")
        }

    def run(self, client: Any, name: str, keys: list[str], args: list[Any]) -> Any:
        command = ("EVALSHA", self._shas[name], len(keys), *keys, *args)
        try:
            return direct.execute(client, *command)
        except NoScriptError:
            direct.execute(client, "SCRIPT", "LOAD", getattr(self, name))
            return direct.execute(client, *command)


scripts = _Scripts()


def key_prefix() -> str:
    return str(settings.CACHES["default"].get("KEY_PREFIX") or "sf")


def meta_key(namespace: str) -> str:
    return f"{key_prefix()}:gen:{namespace}"


def _initial_generation() -> int:
    # Microseconds: a counter lost with Redis restarts above any generation it ever handed out.
    return int(clock() * 1_000_000)


def _lsn_hex(lsn: int) -> str:
    return f"{lsn:016X}"


# Inside a transaction that changes cached data: commit it synchronously (locally) if the session
# would not, so that right after COMMIT the primary's flush position covers it (and replicas,
# which get flushed WAL only, can be used at once). Stronger settings (remote_apply...) stay.
SYNC_COMMIT_SQL = (
    "SELECT set_config('synchronous_commit', 'on', true) WHERE current_setting('synchronous_commit') = 'off'"
)


def write_position(*, flushed: bool = False) -> int | None:
    """A WAL position at or after every commit so far; None if the primary can't be asked.

    `flushed=True` (the commit being bumped was synchronous, see SYNC_COMMIT_SQL): the flush
    position, which a replica can reach at once. Otherwise the insert position: also after every
    asynchronous commit, but it may take the WAL writer (up to wal_writer_delay) to get there.
    """
    function = "pg_current_wal_flush_lsn" if flushed else "pg_current_wal_insert_lsn"
    try:
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute(f"SELECT {function}()::text")
            (lsn,) = cursor.fetchone()
    except DatabaseError:
        return None
    return parse_lsn(lsn)


# --- invalidation: bump after commit ----------------------------------------------------

_pending: dict[str, int | None] = {}  # namespace -> position of the failed bump (None: unknown)
_pending_lock = threading.Lock()
_namespaces: set[str] = set()


def known_namespaces() -> list[str]:
    return sorted(_namespaces)


def pending_bumps() -> dict[str, int | None]:
    """Namespaces whose bump failed in this process and waits for a retry."""
    with _pending_lock:
        return dict(_pending)


def _remember_failed(namespace: str, lsn: int | None) -> None:
    with _pending_lock:
        if lsn is None or (namespace in _pending and _pending[namespace] is None):
            _pending[namespace] = None  # unknown: the retry reads the primary's position then
        else:
            _pending[namespace] = max(lsn, _pending.get(namespace) or 0)


def _bump(namespace: str, lsn: int) -> int:
    reply = _redis(lambda r: scripts.run(r, "BUMP", [meta_key(namespace)], [_lsn_hex(lsn), _initial_generation()]))
    return int(reply)


def bump_now(namespace: str, *, flushed: bool = False) -> bool:
    """Bump a namespace now (outside any transaction) with the primary's position; False if it failed.

    A failure is counted, logged and remembered for a retry; it never raises.
    """
    drain_pending()
    lsn = write_position(flushed=flushed)
    if lsn is None:
        outcome = "failed"
        _remember_failed(namespace, None)
    else:
        try:
            _bump(namespace, lsn)
        except CacheUnavailable as exc:
            logger.warning("cache bump of %s failed, will retry: %s", namespace, exc)
            outcome = "failed"
            _remember_failed(namespace, lsn)
        else:
            outcome = "ok"
    metrics.CACHE_INVALIDATIONS.labels(namespace, outcome).inc()
    return outcome == "ok"


def drain_pending() -> None:
    """Retry the bumps that failed in this process (cheap when there are none)."""
    if not _pending or breaker.cooling_down():
        return
    for namespace, lsn in pending_bumps().items():
        position = lsn if lsn is not None else write_position()
        if position is None:
            return
        try:
            _bump(namespace, position)
        except CacheUnavailable:
            return  # still down: the next request tries again
        with _pending_lock:
            if namespace in _pending and _pending[namespace] == lsn:
                del _pending[namespace]
        metrics.CACHE_INVALIDATIONS.labels(namespace, "retried").inc()


class _BumpHook:
    """An on_commit callback bumping one namespace; recognisable, so a transaction registers one."""

    def __init__(self, namespace: str, *, flushed: bool) -> None:
        self.namespace = namespace
        self.flushed = flushed
        self.__qualname__ = f"softfactory.cache.bump({namespace})"  # named in Django's robust log

    def __call__(self) -> None:
        bump_now(self.namespace, flushed=self.flushed)


def bump_on_commit(*namespaces: str, using: str = PRIMARY) -> None:
    """Bump these namespaces once the current transaction commits (at once in autocommit).

    A rollback discards the bump. One pending bump per namespace and transaction is enough: a
    bump registered earlier survives every savepoint rollback that would discard a later one.
    """
    connection = connections[using]
    for namespace in namespaces:
        _namespaces.add(namespace)
        if not connection.in_atomic_block:
            # Autocommit: the write is committed already, maybe asynchronously.
            transaction.on_commit(_BumpHook(namespace, flushed=False), using=using, robust=True)
            continue
        # Django keeps (savepoint ids, callback, robust) triples here until the commit.
        pending: list[tuple[Any, ...]] = connection.run_on_commit
        if any(isinstance(hook[1], _BumpHook) and hook[1].namespace == namespace for hook in pending):
            continue
        # Set in the same savepoint as the hook: if the hook survives to the commit, so does this.
        with connection.cursor() as cursor:
            cursor.execute(SYNC_COMMIT_SQL)
        transaction.on_commit(_BumpHook(namespace, flushed=True), using=using, robust=True)


@task_prerun.connect(weak=False, dispatch_uid="softfactory.cache.drain_pending")
def _drain_before_task(**_: Any) -> None:
    """Celery workers write too (periodic jobs): they retry their failed bumps before each task."""
    drain_pending()


class PendingBumpsMiddleware:
    """Retries, at the start of each request, the bumps this process failed to make."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _pending:
            drain_pending()
        return self.get_response(request)


# --- which writes bump which namespaces --------------------------------------------------


@dataclass(frozen=True)
class Watch:
    namespaces: tuple[str, ...]
    ignored_fields: frozenset[str]  # writes touching only these show in no cached response


_watched: dict[type[models.Model], Watch] = {}


def _only_ignored(model: type[models.Model], fields: Iterable[str], watch: Watch) -> bool:
    names = set()
    for name in fields:
        try:
            names.add(model._meta.get_field(name).name)  # "owner_id" -> "owner"
        except FieldDoesNotExist:  # an unknown name: assume it matters
            return False
    return bool(names) and names <= watch.ignored_fields


def _bump_for(model: type[models.Model], fields: Iterable[str] | None, using: str) -> None:
    watch = _watched.get(model)
    if watch is None or (fields is not None and _only_ignored(model, fields, watch)):
        return
    bump_on_commit(*watch.namespaces, using=using)


def _saved(
    sender: type[models.Model], created: bool, update_fields: Collection[str] | None, using: str, **_: Any
) -> None:
    _bump_for(sender, None if created else update_fields, using)


def _deleted(sender: type[models.Model], using: str, **_: Any) -> None:
    _bump_for(sender, None, using)


def watch_model(model: type[models.Model], *, namespaces: tuple[str, ...], ignored_fields: Iterable[str] = ()) -> None:
    """Writes to `model` bump `namespaces` after commit: save and delete by signal, bulk ops and
    `update()` through `InvalidatingQuerySet` (the model's manager must use it)."""
    _watched[model] = Watch(namespaces, frozenset(ignored_fields))
    _namespaces.update(namespaces)
    label = model._meta.label
    post_save.connect(_saved, sender=model, weak=False, dispatch_uid=f"softfactory.cache.saved.{label}")
    post_delete.connect(_deleted, sender=model, weak=False, dispatch_uid=f"softfactory.cache.deleted.{label}")


class InvalidatingQuerySet(models.QuerySet[_M]):
    """A QuerySet whose bulk writes (which send no signals) bump the model's cache namespaces."""

    def _written(self, fields: Iterable[str] | None) -> None:
        _bump_for(self.model, fields, getattr(self, "_db", None) or PRIMARY)

    def update(self, **kwargs: Any) -> int:
        rows = super().update(**kwargs)
        if rows:
            self._written(kwargs)
        return rows

    def bulk_create(
        self,
        objs: Iterable[_M],
        batch_size: int | None = None,
        ignore_conflicts: bool = False,
        update_conflicts: bool = False,
        update_fields: Collection[str] | None = None,
        unique_fields: Collection[str] | None = None,
    ) -> list[_M]:
        created = super().bulk_create(
            objs,
            batch_size=batch_size,
            ignore_conflicts=ignore_conflicts,
            update_conflicts=update_conflicts,
            update_fields=update_fields,
            unique_fields=unique_fields,
        )
        if created:
            self._written(None)
        return created

    def bulk_update(self, objs: Iterable[_M], fields: Iterable[str], batch_size: int | None = None) -> int:
        fields = list(fields)
        rows = super().bulk_update(objs, fields, batch_size=batch_size)
        if rows:
            self._written(fields)
        return rows

    def delete(self) -> tuple[int, dict[str, int]]:
        deleted, per_model = super().delete()
        if deleted:
            self._written(None)
        return deleted, per_model


# --- lookups and fills ------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """A rendered response. Stored entries hold their body gzip-compressed once, at fill time,
    so a hit costs no compression (public bytes carry no secret: nothing for BREACH to find)."""

    body: bytes
    soft_exp: float
    delta: float
    etag: str
    content_type: str
    gzipped: bool = False

    def compressed(self) -> Entry:
        if self.gzipped:
            return self
        body = gzip.compress(self.body, compresslevel=GZIP_LEVEL, mtime=0)
        return dataclasses.replace(self, body=body, gzipped=True)


def pack(entry: Entry) -> bytes:
    entry = entry.compressed()
    header = f"{entry.soft_exp:.3f} {entry.delta:.4f} {entry.etag} {entry.content_type}"
    return ENVELOPE_MAGIC + b" " + header.encode() + b"\n" + entry.body


def unpack(raw: bytes) -> Entry | None:
    """An entry, or None if the bytes are not one (read as a miss)."""
    head, sep, body = raw.partition(b"\n")
    parts = head.decode("utf-8", "replace").split(" ", 4)
    if not sep or len(parts) != 5 or parts[0] != ENVELOPE_MAGIC.decode() or body[:2] != GZIP_MAGIC:
        return None
    try:
        return Entry(body, float(parts[1]), float(parts[2]), parts[3], parts[4], gzipped=True)
    except ValueError:
        return None


@dataclass(frozen=True)
class Lookup:
    key: str
    raw: bytes | None
    generations: tuple[bytes, ...]
    positions: tuple[int | None, ...]


@dataclass(frozen=True)
class LookedUp:
    """A lookup with its outcome: what `CachedRead.respond` acts on (made early, or by itself)."""

    suffix: str
    found: Lookup | None  # None: Redis could not be asked
    entry: Entry | None
    refresh: bool  # XFetch decided to refresh this entry now


def _lookup(namespaces: tuple[str, ...], suffix: str) -> Lookup:
    reply = _redis(
        lambda r: scripts.run(
            r,
            "LOOKUP",
            [meta_key(ns) for ns in namespaces],
            [_initial_generation(), key_prefix(), suffix, *namespaces],
        )
    )
    key, raw, rest = reply[0], reply[1], reply[2:]
    generations = tuple(rest[0::2])
    positions = tuple(int(p, 16) if p else None for p in rest[1::2])
    return Lookup(key.decode(), raw, generations, positions)


def _lock_key(entry_key: str) -> str:
    return f"{key_prefix()}:lock:{entry_key.removeprefix(key_prefix() + ':')}"


def _try_lock(entry_key: str, namespace: str) -> str | None:
    """The lock's token if this caller became the filler, None if someone else fills."""
    token = f"{random.getrandbits(64):016x}"
    ttl_ms = int(float(_setting("RESPONSE_CACHE_LOCK_TTL_SECONDS", 5.0)) * 1000)
    if _redis(lambda r: r.set(_lock_key(entry_key), token, nx=True, px=ttl_ms)):
        metrics.CACHE_LOCK.labels(namespace, "acquired").inc()
        return token
    return None


def _release(entry_key: str, token: str) -> None:
    with contextlib.suppress(CacheUnavailable):
        _redis(lambda r: scripts.run(r, "RELEASE", [_lock_key(entry_key)], [token]))


def _wait_for_entry(entry_key: str) -> tuple[Entry | None, bool]:
    """Poll for another filler's entry: (entry, False), or (None, lock_gone) on giving up."""
    deadline = time.monotonic() + float(_setting("RESPONSE_CACHE_LOCK_WAIT_SECONDS", 1.0))
    lock = _lock_key(entry_key)
    while time.monotonic() < deadline:
        time.sleep(LOCK_POLL_SECONDS)
        raw, holder = _redis(lambda r: r.mget([entry_key, lock]))
        if raw is not None:
            entry = unpack(raw)
            if entry is not None:
                return entry, False
        if holder is None:
            return None, True  # the filler is gone without storing (an uncacheable answer)
    return None, False


def _replay_lsn(alias: str) -> int | None:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
            (lsn,) = cursor.fetchone()
    except DatabaseError:
        monitor.report_failure(alias)
        return None
    return parse_lsn(lsn) if lsn else None


def fill_alias(required: int | None) -> str:
    """Where a fill must read: a replica that has replayed `required`, else the primary.

    None (position unknown) means the primary. A replica just behind is waited for up to
    RESPONSE_CACHE_REPLICA_WAIT_SECONDS: right after a write it usually replays within
    milliseconds, and that keeps fills off the primary.
    """
    if required is None or not settings.REPLICA_ALIASES or not settings.REPLICA_ROUTING_ENABLED:
        return PRIMARY
    candidates = monitor.usable() or monitor.usable(max_lag_factor=2.0)
    if not candidates:
        return PRIMARY
    ready = monitor.caught_up(candidates, required)
    if ready:
        chosen = current_state().replica
        return chosen if chosen in ready else random.choice(ready)
    deadline = time.monotonic() + float(_setting("RESPONSE_CACHE_REPLICA_WAIT_SECONDS", 0.05))
    waiting = random.sample(candidates, len(candidates))
    while waiting:
        for alias in list(waiting):
            lsn = _replay_lsn(alias)
            if lsn is None:
                waiting.remove(alias)
            elif lsn >= required:
                return alias
        if time.monotonic() >= deadline:
            break
        time.sleep(REPLAY_POLL_SECONDS)
    return PRIMARY


@contextlib.contextmanager
def reading_from(alias: str) -> Iterator[None]:
    """Route this block's reads to `alias`: the primary, or one replica (the router's "chosen" one)."""
    if alias == PRIMARY:
        with use_primary():
            yield
        return
    state = current_state()
    previous = state.replica
    state.replica = alias
    try:
        yield
    finally:
        state.replica = previous


class CanonicalPagination(Pagination):
    """API pagination whose links are built from the normalised parameters only."""

    def __init__(self, request: Request, params: Mapping[str, str]) -> None:
        super().__init__(request)
        self.params = dict(sorted(params.items()))

    def _link(self, page: int) -> str:
        query = urlencode({**self.params, "page": page, "per_page": self.per_page})
        return self.request.build_absolute_uri(f"{self.request.path}?{query}")


@dataclass(frozen=True)
class Fill:
    """What a cached read computed: the payload, and whether it is the same for every caller."""

    data: Any
    public: bool = True


def canonical(params: Mapping[str, Any]) -> dict[str, str]:
    """Allow-listed parameters as strings: None dropped, decimals normalised (4.50 -> 4.5)."""
    out = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, Decimal):
            value = format(value.normalize(), "f")
        out[name] = str(value)
    return out


@dataclass(frozen=True)
class CachedRead:
    """A public read served from the response cache.

    `view` names it in keys; `namespaces` are the data it shows (their generations are in its
    key; the first one labels its metrics). `respond()` takes the view's validated, allow-listed
    parameters and a `compute(page)` that returns a `Fill`, and answers with the rendered bytes.
    """

    view: str
    namespaces: tuple[str, ...]
    paginated: bool = False

    def __post_init__(self) -> None:
        _namespaces.update(self.namespaces)

    @property
    def label(self) -> str:
        return self.namespaces[0]

    def respond(
        self,
        request: Request,
        *,
        params: Mapping[str, Any],
        compute: Callable[[CanonicalPagination | None], Fill],
        cacheable: bool = True,
    ) -> HttpResponse:
        wire = canonical(params)
        page = CanonicalPagination(request, wire) if self.paginated else None  # bad paging: 400, no I/O
        if not (cacheable and enabled()) or connections[PRIMARY].in_atomic_block:
            # Uncacheable (e.g. staff-only data), or inside a transaction whose own writes
            # aren't bumped yet: ordinary routing, nothing stored.
            return self._uncached(request, compute, page, alias=None, result="bypass")
        if _pending and any(ns in _pending for ns in self.namespaces):
            # This process failed to bump: entries may be stale, and only the primary is sure.
            return self._uncached(request, compute, page, alias=PRIMARY, result="bypass")
        suffix = f"{self.view}:{self._digest(request, wire, page)}"
        setattr(request._request, SERVED_READ_ATTRIBUTE, (self, suffix))
        looked: LookedUp | None = getattr(request._request, EARLY_LOOKUP_ATTRIBUTE, None)
        if looked is None or looked.suffix != suffix:
            looked = self.look_up(suffix)
        # else: looked up by EarlyHitsMiddleware and not answered there; same key, and still before
        # any query, so not asked again.
        found, entry, refresh = looked.found, looked.entry, looked.refresh
        if found is None:
            return self._uncached(request, compute, page, alias=PRIMARY, result="error")
        if entry is not None:
            if refresh:
                token = self._lock_or_none(found.key)
                if token is not None:
                    metrics.CACHE_REQUESTS.labels(self.label, "early_refresh").inc()
                    return self._fill(request, compute, page, found, token, outcome="refresh")
            metrics.CACHE_REQUESTS.labels(self.label, "hit").inc()
            return _respond(request, entry, public=True, outcome="hit")
        metrics.CACHE_REQUESTS.labels(self.label, "miss").inc()
        try:
            token = _try_lock(found.key, self.label)
            if token is None:
                waited, lock_gone = _wait_for_entry(found.key)
                if waited is not None:
                    metrics.CACHE_LOCK.labels(self.label, "waited").inc()
                    return _respond(request, waited, public=True, outcome="hit")
                metrics.CACHE_LOCK.labels(self.label, "released" if lock_gone else "timeout").inc()
        except CacheUnavailable:
            metrics.CACHE_LOCK.labels(self.label, "error").inc()
            token = None
        return self._fill(request, compute, page, found, token, outcome="miss")

    def look_up(self, suffix: str) -> LookedUp:
        """The lookup of one key (found None: Redis could not be asked), and XFetch's decision."""
        try:
            found: Lookup | None = _lookup(self.namespaces, suffix)
        except CacheUnavailable:
            found = None
        else:
            _run_hooks("after_lookup", self.view)
        entry = unpack(found.raw) if found is not None and found.raw is not None else None
        return LookedUp(suffix, found, entry, entry is not None and self._refresh_early(entry))

    def _lock_or_none(self, key: str) -> str | None:
        try:
            return _try_lock(key, self.label)
        except CacheUnavailable:
            return None

    @staticmethod
    def _refresh_early(entry: Entry) -> bool:
        """XFetch: refresh with a probability that rises as the soft expiry comes near."""
        return clock() - entry.delta * XFETCH_BETA * math.log(1.0 - draw()) >= entry.soft_exp

    def _digest(self, request: Request, wire: Mapping[str, str], page: CanonicalPagination | None) -> str:
        # The repr of a tuple of strings and numbers is unambiguous, and cheaper than JSON.
        bits = (
            FORMAT_VERSION,
            str(_setting("RESPONSE_CACHE_VERSION", "1")),
            request.scheme,
            request.get_host(),
            request.path,
            request.accepted_media_type,
            tuple(sorted(wire.items())),
            (page.page, page.per_page) if page is not None else None,
        )
        return hashlib.blake2b(repr(bits).encode(), digest_size=16).hexdigest()

    def _required_position(self, found: Lookup) -> tuple[int | None, int | None]:
        """(position the fill must see, position to record where none is known)."""
        if all(p is not None for p in found.positions):
            return max(p for p in found.positions if p is not None), None
        # A namespace without a recorded position (a fresh or lost Redis): everything committed
        # so far is at or before the primary's current position.
        current = write_position()
        if current is None:
            return None, None
        return max([current, *(p for p in found.positions if p is not None)]), current

    def _compute(
        self, request: Request, compute: Callable[[CanonicalPagination | None], Fill], page: Any, alias: str | None
    ) -> tuple[Fill, bytes, str, str]:
        """Run the read on `alias` (None: ordinary routing) and render it; (fill, body, ctype, source)."""
        with contextlib.ExitStack() as stack:
            if alias is not None:
                stack.enter_context(reading_from(alias))
            _run_hooks("before_query", self.view)
            fill = compute(page)
            renderer = request.accepted_renderer
            rendered = renderer.render(fill.data, request.accepted_media_type, {"request": request})
        body = rendered if isinstance(rendered, bytes) else str(rendered).encode()
        content_type = renderer.media_type + (f"; charset={renderer.charset}" if renderer.charset else "")
        return fill, body, content_type, alias or PRIMARY

    def _compute_gated(
        self, request: Request, compute: Callable[[CanonicalPagination | None], Fill], page: Any, required: int | None
    ) -> tuple[Fill, bytes, str, str]:
        alias = fill_alias(required)
        if alias == PRIMARY:
            return self._compute(request, compute, page, PRIMARY)
        try:
            result = self._compute(request, compute, page, alias)
        except DatabaseError:
            monitor.report_failure(alias)
            connections[alias].close()
            return self._compute(request, compute, page, PRIMARY)
        stand_in = getattr(connections[alias], "stand_in_for", None)
        if stand_in not in (None, PRIMARY):
            # The backend failed over to another replica, whose position nobody checked.
            return self._compute(request, compute, page, PRIMARY)
        return result

    def _fill(
        self,
        request: Request,
        compute: Callable[[CanonicalPagination | None], Fill],
        page: CanonicalPagination | None,
        found: Lookup,
        token: str | None,
        *,
        outcome: str,
    ) -> HttpResponse:
        try:
            required, record = self._required_position(found)
            started = time.perf_counter()
            fill, body, content_type, source = self._compute_gated(request, compute, page, required)
            delta = time.perf_counter() - started
            self._count_fill(source, delta)
            entry = Entry(body, 0.0, delta, etag_for(body), content_type)
            if fill.public:
                entry = entry.compressed()
                _run_hooks("before_store", self.view)
                self._store(found, entry, record)
        finally:
            if token is not None:
                _release(found.key, token)
        return _respond(request, entry, public=fill.public, outcome=outcome)

    def _count_fill(self, source: str, seconds: float) -> None:
        kind = "primary" if source == PRIMARY else "replica"
        metrics.CACHE_FILL_SOURCE.labels(self.label, kind).inc()
        metrics.CACHE_FILL_SECONDS.labels(self.label).observe(seconds)
        fills[(self.label, source)] += 1

    def _store(self, found: Lookup, entry: Entry, record: int | None) -> None:
        ttl = entry_ttl() * random.uniform(0.9, 1.0)  # jitter only downwards: the TTL stays a bound
        stored = dataclasses.replace(entry, soft_exp=clock() + ttl * SOFT_TTL_FRACTION)
        args = [found.key, pack(stored), int(ttl * 1000), _lsn_hex(record) if record is not None else ""]
        try:
            _redis(
                lambda r: scripts.run(r, "STORE", [meta_key(ns) for ns in self.namespaces], [*args, *found.generations])
            )
        except CacheUnavailable:
            metrics.CACHE_REQUESTS.labels(self.label, "error").inc()

    def _uncached(
        self,
        request: Request,
        compute: Callable[[CanonicalPagination | None], Fill],
        page: CanonicalPagination | None,
        *,
        alias: str | None,
        result: str,
    ) -> HttpResponse:
        metrics.CACHE_REQUESTS.labels(self.label, result).inc()
        fill, body, content_type, _source = self._compute(request, compute, page, alias)
        return _respond(
            request, Entry(body, 0.0, 0.0, etag_for(body), content_type), public=fill.public, outcome=result
        )


def _respond(request: HttpRequest | Request, entry: Entry, *, public: bool, outcome: str) -> HttpResponse:
    body = entry.body
    if entry.gzipped and not ACCEPTS_GZIP.search(request.META.get("HTTP_ACCEPT_ENCODING", "")):
        body = gzip.decompress(body)
    response = HttpResponse(body, content_type=entry.content_type)
    if body is entry.body and entry.gzipped:
        # CompressionMiddleware leaves an encoded response alone; Vary is what it would have added.
        response["Content-Encoding"] = "gzip"
        patch_vary_headers(response, ("Accept-Encoding",))
    response["ETag"] = entry.etag
    response["X-Cache"] = outcome
    if public:
        mark_public(response)
    return response


# --- hits answered before DRF ---------------------------------------------------------------

# What a cached read records on the request: (read, suffix), and an early lookup to reuse.
SERVED_READ_ATTRIBUTE = "_softfactory_cached_read"
EARLY_LOOKUP_ATTRIBUTE = "_softfactory_early_lookup"
EARLY_ROUTES_MAX = 10_000  # learnt request signatures kept per process
# Longer query strings are not learnt: junk parameters can't make the signatures take much memory.
EARLY_QUERY_MAX = 512


# Headers of a recorded answer that belong to its entry or body, not to the route.
_ENTRY_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "etag", "x-cache", "vary"})


@dataclass(frozen=True)
class _Learnt:
    read: CachedRead
    suffix: str
    view: str  # the URL name, for the request metrics
    headers: tuple[tuple[str, str], ...]  # what the layers under EarlyHitsMiddleware added (DRF's Allow...)


_learnt: dict[tuple[str, ...], _Learnt] = {}
_learnt_lock = threading.Lock()


def _signature(request: HttpRequest) -> tuple[str, ...] | None:
    """Everything of a request that its cache key is made of (docs/CACHING.md), unparsed.

    Validated parameters, the negotiated type and the normalised host are functions of these,
    so one signature always leads to one key; many signatures may share a key.
    """
    try:
        host = request.get_host()
    except DisallowedHost:
        return None
    meta = request.META
    query = meta.get("QUERY_STRING", "")
    if len(query) > EARLY_QUERY_MAX:
        return None
    return (str(request.scheme), host, request.path, query, meta.get("HTTP_ACCEPT", ""))


def _learn(signature: tuple[str, ...], learnt: _Learnt) -> None:
    with _learnt_lock:
        if signature not in _learnt and len(_learnt) >= EARLY_ROUTES_MAX:
            del _learnt[next(iter(_learnt))]  # the oldest: a bound, not an LRU
        _learnt[signature] = learnt


def _caller_passes(request: HttpRequest) -> bool:
    """Would DRF's authentication accept this caller? (settings.RESPONSE_CACHE_EARLY_CALLER_CHECK)"""
    path = _setting("RESPONSE_CACHE_EARLY_CALLER_CHECK", None)
    if not path:
        return False
    check: Callable[[HttpRequest], bool] = import_string(path)
    return check(request)


def _early_hit(request: HttpRequest, learnt: _Learnt) -> HttpResponse | None:
    read = learnt.read
    if connections[PRIMARY].in_atomic_block or (_pending and any(ns in _pending for ns in read.namespaces)):
        return None
    if not _caller_passes(request):
        return None
    looked = read.look_up(learnt.suffix)
    if looked.entry is None or looked.refresh:
        setattr(request, EARLY_LOOKUP_ATTRIBUTE, looked)  # for the view: one lookup per request
        return None
    metrics.CACHE_REQUESTS.labels(read.label, "hit").inc()
    response = _respond(request, looked.entry, public=True, outcome="hit")
    for name, value in learnt.headers:
        response[name] = value
    response["Content-Length"] = str(len(response.content))  # as CommonMiddleware would
    return response


class EarlyHitsMiddleware:
    """Answers known hits of cached reads before URL resolution, DRF and the layers under it.

    A plain hit needs none of them: the entry is public and was stored only after the view
    validated the request. So the first GET with a given signature goes through everything,
    and the view's cached read records the key it used; this middleware then remembers the
    signature with that key and the headers the layers under it added (DRF's `Allow`,
    `X-Frame-Options`...). A later GET with that signature, from a caller DRF would accept
    without asking anything else (RESPONSE_CACHE_EARLY_CALLER_CHECK), is answered here from the
    entry, with the same headers and request metrics. Misses, early refreshes, Redis errors and
    every other request go through the stack as before; the view reuses the lookup made here.
    Place it right after positions.RoutingMiddleware (docs/CACHING.md).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method != "GET" or not enabled() or not _setting("RESPONSE_CACHE_EARLY_HITS", True):
            return self.get_response(request)
        started = Time()
        signature = _signature(request)
        learnt = _learnt.get(signature) if signature is not None else None
        if learnt is not None:
            early = _early_hit(request, learnt)
            if early is not None:
                record_answered_early(request, early, view=learnt.view, started=started)
                return early
        response = self.get_response(request)
        served: tuple[CachedRead, str] | None = getattr(request, SERVED_READ_ATTRIBUTE, None)
        match = getattr(request, "resolver_match", None)
        if signature is not None and served is not None and match is not None and response.status_code == 200:
            headers = tuple((k, v) for k, v in response.items() if k.lower() not in _ENTRY_HEADERS)
            _learn(signature, _Learnt(served[0], served[1], match.view_name or "<unnamed view>", headers))
        return response


def reset_for_tests() -> None:
    """Forget process-local state: the breaker, failed bumps, fill counts, learnt signatures."""
    breaker.reset()
    with _pending_lock:
        _pending.clear()
    fills.clear()
    with _learnt_lock:
        _learnt.clear()
