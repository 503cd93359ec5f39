"""Read/write routing between the primary (`default`) and the replicas (`replica_1..n`).

Decision order for a read (the first rule that applies wins; docs/ROUTING.md):

1. no replicas, or routing switched off (REPLICA_ROUTING_ENABLED=False)   -> primary
2. `use_primary()` (nestable; context manager and decorator), session rows  -> primary
3. inside `atomic()` on the primary                                         -> primary
4. the request's method is unsafe (POST/PUT/PATCH/DELETE)                   -> primary
5. this request or task already wrote                                       -> primary
6. a replica was already chosen for this request or task                    -> that one
7. the client's read-your-writes position can't be read (Redis down)        -> primary
8. no replica is usable (down, paused, promoted, lagging; breaker open);
   when every replica merely lags, the lag limits are relaxed once (x2)    -> primary
9. the client's position isn't replayed on any usable replica               -> primary
10. otherwise one usable (caught-up) replica, kept for the whole request or task.

Read-your-writes: when a request or task that wrote ends, the primary's
`pg_current_wal_insert_lsn()` is recorded for its client (Redis per user, a signed cookie for
anonymous clients and logins; see `softfactory.positions`). Writes, `select_for_update()` and
migrations always go to the primary. State lives in a ContextVar scoped by `routing_scope()`.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models import Model

from softfactory import metrics
from softfactory.replicas import monitor

PRIMARY = "default"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Rows that must be fresh whoever reads them; they are read rarely (cache misses).
PRIMARY_APPS = frozenset({"sessions"})

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class PositionUnavailable(Exception):
    """The client's read-your-writes position could not be read."""


@dataclass
class RoutingState:
    """What the router knows about the current request or task."""

    unsafe_method: bool = False
    wrote: bool = False
    primary_depth: int = 0
    replica: str | None = None
    # The WAL position (as an integer) the client must see, resolved lazily on the first read.
    required_lsn: int | None = None
    position_loader: Callable[[], int | None] | None = None
    position_resolved: bool = False
    on_all_caught_up: Callable[[], None] | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def required_position(self) -> int | None:
        if not self.position_resolved:
            self.position_resolved = True
            if self.position_loader is not None:
                loaded = self.position_loader()  # may raise PositionUnavailable
                if loaded is not None:
                    self.required_lsn = max(self.required_lsn or 0, loaded)
        return self.required_lsn


_state: ContextVar[RoutingState | None] = ContextVar("softfactory_routing_state", default=None)

# Decisions by (alias, reason); readable in tests, exported as softfactory_db_route_total.
decisions: Counter[tuple[str, str]] = Counter()


def current_state() -> RoutingState:
    state = _state.get()
    if state is None:
        state = RoutingState()
        _state.set(state)
    return state


@contextlib.contextmanager
def routing_scope(
    *,
    unsafe_method: bool = False,
    required_lsn: int | None = None,
    position_loader: Callable[[], int | None] | None = None,
) -> Iterator[RoutingState]:
    """A fresh routing state for one request or task, always discarded at the end."""
    state = RoutingState(unsafe_method=unsafe_method, required_lsn=required_lsn, position_loader=position_loader)
    token = _state.set(state)
    try:
        yield state
    finally:
        _state.reset(token)


class use_primary(contextlib.ContextDecorator):  # noqa: N801 - reads like a statement
    """Send every read in the block (or decorated function) to the primary. Nestable."""

    def __enter__(self) -> use_primary:
        current_state().primary_depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        current_state().primary_depth -= 1


def primary_view(view: F) -> F:
    """Decorator for a view (function or method) whose reads must all come from the primary."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with use_primary():
            return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _decide(alias: str, reason: str) -> str:
    decisions[(alias, reason)] += 1
    metrics.DB_ROUTE.labels(alias, reason).inc()
    return alias


def choose_read_alias(model: type[Model] | None = None) -> str:
    if not settings.REPLICA_ALIASES or not settings.REPLICA_ROUTING_ENABLED:
        return _decide(PRIMARY, "no_replicas")
    state = current_state()
    if state.primary_depth > 0 or (model is not None and model._meta.app_label in PRIMARY_APPS):
        return _decide(PRIMARY, "forced")
    if connections[PRIMARY].in_atomic_block:
        return _decide(PRIMARY, "atomic")
    if state.unsafe_method:
        return _decide(PRIMARY, "unsafe_method")
    if state.wrote:
        return _decide(PRIMARY, "wrote")
    if state.replica is not None:
        return _decide(state.replica, "chosen" if state.replica != PRIMARY else "pinned")
    state.replica = PRIMARY  # whatever happens below, this request keeps its answer
    try:
        required = state.required_position()
    except PositionUnavailable:
        metrics.ROUTING_POSITION_ERRORS.labels("read").inc()
        return _decide(PRIMARY, "position_unknown")
    candidates = monitor.usable()
    reason = "replica"
    if not candidates:
        candidates = monitor.usable(max_lag_factor=2.0)
        reason = "replica_relaxed"
    if not candidates:
        return _decide(PRIMARY, "no_usable_replica")
    if required:
        caught_up = monitor.caught_up(candidates, required)
        if not caught_up:
            return _decide(PRIMARY, "not_caught_up")
        if len(caught_up) == len(settings.REPLICA_ALIASES) and state.on_all_caught_up is not None:
            state.on_all_caught_up()
        candidates = caught_up
    state.replica = random.choice(candidates)
    return _decide(state.replica, reason)


class PrimaryReplicaRouter:
    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        if hints.get("primary"):
            return _decide(PRIMARY, "forced")
        return choose_read_alias(model)

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        current_state().wrote = True
        return PRIMARY

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        return True  # every alias holds the same data

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == PRIMARY


def retry_read(fn: Callable[[], T]) -> T:
    """Run a read-only callable; if its replica fails mid-query, retry it once elsewhere.

    Only for code paths that are read-only and outside a transaction: the router can't re-run
    a query by itself, but the caller can.
    """
    state = current_state()
    try:
        return fn()
    except DatabaseError:
        alias = state.replica
        if alias in (None, PRIMARY) or connections[PRIMARY].in_atomic_block or alias not in settings.REPLICA_ALIASES:
            raise
        monitor.report_failure(alias)
        connections[alias].close()
        state.replica = None
        return fn()


def capture_position() -> dict[str, Any]:
    """Routing state to carry into a Celery task: the position its reads must see."""
    from softfactory import positions

    state = current_state()
    lsn = positions.primary_position() if state.wrote else state.required_lsn
    return {"required_lsn": lsn}


@contextlib.contextmanager
def restored_scope(carried: dict[str, Any] | None) -> Iterator[RoutingState]:
    """A task's routing scope, starting from the position its sender carried."""
    required = (carried or {}).get("required_lsn")
    with routing_scope(required_lsn=int(required) if required else None) as state:
        state.position_resolved = True
        yield state
