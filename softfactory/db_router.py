"""Read/write routing between the primary (`default`) and the replicas (`replica_1..n`).

Decision order for a read (the first that applies wins):

1. no replicas configured, or routing switched off (REPLICA_ROUTING_ENABLED) -> primary
2. a primary hint: `use_primary()` (nestable; context manager and decorator)  -> primary
3. inside `atomic()` on the primary                                           -> primary
4. the request's method is unsafe (POST/PUT/PATCH/DELETE)                     -> primary
5. this request or task already wrote                                         -> primary
6. otherwise one replica, chosen once and kept for the whole request or task.

Writes, `select_for_update()` and migrations always go to the primary. State lives in a
ContextVar scoped by `routing_scope()` (the middleware opens one per request), so nothing
leaks from one request into the next one served by the same thread. docs/ROUTING.md has more.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

PRIMARY = "default"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class RoutingState:
    """What the router knows about the current request or task."""

    unsafe_method: bool = False
    wrote: bool = False
    primary_depth: int = 0
    replica: str | None = None


_state: ContextVar[RoutingState | None] = ContextVar("softfactory_routing_state", default=None)

# Decisions by (alias, reason); readable in tests, exported as metrics by the operations work.
decisions: Counter[tuple[str, str]] = Counter()


def current_state() -> RoutingState:
    state = _state.get()
    if state is None:
        state = RoutingState()
        _state.set(state)
    return state


@contextlib.contextmanager
def routing_scope(*, unsafe_method: bool = False) -> Iterator[RoutingState]:
    """A fresh routing state for one request or task, always discarded at the end."""
    token = _state.set(RoutingState(unsafe_method=unsafe_method))
    try:
        yield _state.get()  # type: ignore[misc]
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
    """Decorator for a view whose reads must all come from the primary."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with use_primary():
            return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def replica_aliases() -> list[str]:
    return list(settings.REPLICA_ALIASES)


def _decide(alias: str, reason: str) -> str:
    decisions[(alias, reason)] += 1
    return alias


class PrimaryReplicaRouter:
    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        replicas = replica_aliases()
        if not replicas or not settings.REPLICA_ROUTING_ENABLED:
            return _decide(PRIMARY, "no_replicas")
        state = current_state()
        if state.primary_depth > 0:
            return _decide(PRIMARY, "forced")
        if connections[PRIMARY].in_atomic_block:
            return _decide(PRIMARY, "atomic")
        if state.unsafe_method:
            return _decide(PRIMARY, "unsafe_method")
        if state.wrote:
            return _decide(PRIMARY, "wrote")
        if state.replica is None:
            state.replica = random.choice(replicas)
        return _decide(state.replica, "replica")

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        current_state().wrote = True
        return PRIMARY

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        return True  # every alias holds the same data

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == PRIMARY


class RoutingMiddleware:
    """Opens one routing scope per request; unsafe methods read from the primary throughout."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with routing_scope(unsafe_method=request.method not in SAFE_METHODS):
            return self.get_response(request)
