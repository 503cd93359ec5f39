"""Querysets compiled once per query *shape*, then run again with new values (docs/PERFORMANCE.md).

For a list page, building a queryset and compiling it to SQL costs more CPU than the database
spends answering it, and it is the same work every time: only the values change. A shape is
everything that can change the SQL text: the static arguments (an ordering choice, say), and for
each declared *value* whether it is absent (None), its type and its truthiness. Each shape's
build function is compiled once per process; afterwards a call only substitutes its values into
the compiled parameters and runs the SQL on `router.db_for_read(model)` through
`connections[alias].cursor()`, as the ORM would (routing, failover and DB metrics unchanged).

Safe by construction: a shape is used only if compiling the build with two different sets of
sentinel values, and with the first caller's real values, gives the same SQL text, and every
value appears as a whole parameter at the same positions in all three - as itself, or as the
LIKE pattern Django makes of it (`contains`, `startswith`, `endswith`, escaping `%`, `_`, `\\`),
which is then rebuilt with the same escaping. Sentinels carry the characters those escapes touch,
mixed case and non-ASCII letters, so any other transformation shows up as a mismatch. LIMIT and
OFFSET are parameters too, after checking that Django's sliced SQL is the unsliced SQL plus
`LIMIT n OFFSET m`. Anything that doesn't verify (a value of another type, a transformed or
inlined value, select_related, a build that queries the database...) is `None`: the caller uses
the ORM exactly as before.

The contract for a build function: it makes no queries (checked), and it branches only on
whether a value is None or truthy, never on the value itself (sentinels can't check that).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, router
from django.db.models import Model, QuerySet
from django.db.models.expressions import ColPairs  # type: ignore[attr-defined]  # Django 5.2, not in the stubs
from django.db.models.query import ModelIterable

logger = logging.getLogger(__name__)

_M = TypeVar("_M", bound=Model)

DEFAULT_MAX_SHAPES = 128
# Sliced compile of the sentinel build: Django must print exactly this suffix for these marks.
_CHECK_OFFSET, _CHECK_LIMIT = 7919, 7907
LIMIT_OFFSET_SQL = " LIMIT %s OFFSET %s"
COUNT_SQL = 'SELECT COUNT(*) FROM ({}) AS "shape_rows"'

# Compiled shapes by ShapedQuery name, unverifiable ones included; readable in tests.
compilations: Counter[str] = Counter()

# Characters LIKE escaping touches, regex and quoting metacharacters, case pairs, non-ASCII and
# whitespace at both ends: whatever Django did to a value would change some of them.
_TEXT_SENTINEL = " \tSf{set}v{index}:%_\\'\"[]^$.*?|(){{}}+-#&~ Äßǅ€\n "


def _text_sentinel(index: int, set_id: int) -> str:
    return _TEXT_SENTINEL.format(set=set_id, index=index)


def _decimal_sentinel(index: int, set_id: int) -> Decimal:
    # Negative, with more places than any column keeps: rounding or clamping shows up.
    return Decimal(f"-{7 + index}.{set_id}3141592653589793")


# Types a value may have, and how to make sentinels of that type.
_SENTINELS: dict[type, Callable[[int, int], Any]] = {str: _text_sentinel, Decimal: _decimal_sentinel}


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


class _QueryDuringBuild(Exception):
    """A build function queried the database: its result would be baked into the shape."""


def _refuse_queries(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
    raise _QueryDuringBuild(sql[:120])


# --- how a value reaches its parameter ----------------------------------------------------


def _as_is(ops: Any) -> Callable[[Any], Any]:
    return lambda value: value


def _like(pattern: str) -> Callable[[Any], Callable[[Any], Any]]:
    """Django's PatternLookup: `pattern % connection.ops.prep_for_like_query(value)`."""

    def transform(ops: Any) -> Callable[[Any], Any]:
        escape = ops.prep_for_like_query
        return lambda value: pattern % escape(value)

    return transform


# name -> (applies to, transform factory taking the connection's ops)
_TRANSFORMS: dict[str, tuple[tuple[type, ...], Callable[[Any], Callable[[Any], Any]]]] = {
    "exact": ((str, Decimal), _as_is),
    "contains": ((str,), _like("%%%s%%")),
    "startswith": ((str,), _like("%s%%")),
    "endswith": ((str,), _like("%%%s")),
}


@dataclass(frozen=True)
class _Slot:
    """One SQL parameter: a constant, or a value (by name) through a transform."""

    constant: Any = None
    name: str | None = None
    transform: Callable[[Any], Any] | None = None


class Unverifiable(Exception):
    """The build's SQL for this shape can't be reused safely; the caller uses the ORM."""


# --- a compiled shape -----------------------------------------------------------------------


@dataclass(frozen=True)
class Shape(Generic[_M]):
    """One shape's SQL and how to turn its rows into model instances (immutable, shared by threads)."""

    model: type[_M]
    rows_sql: str  # unsliced, followed by LIMIT_OFFSET_SQL at run time
    count_sql: str
    slots: tuple[_Slot, ...]
    count_slots: tuple[_Slot, ...]
    init_list: tuple[str, ...]
    model_fields: slice
    annotation_columns: tuple[tuple[str, int], ...]
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]
    annotations: frozenset[str]  # names of annotation_columns

    @staticmethod
    def _params(slots: Sequence[_Slot], arguments: Mapping[str, Any]) -> list[Any]:
        return [
            slot.constant
            if slot.name is None
            else (slot.transform(arguments[slot.name]) if slot.transform else arguments[slot.name])
            for slot in slots
        ]

    def fetch(self, arguments: Mapping[str, Any], *, offset: int, limit: int) -> list[_M]:
        """`list(build(**arguments)[offset:offset + limit])`, from the compiled SQL."""
        if offset < 0 or limit < 0:
            raise ValueError("Negative indexing is not supported.")  # what QuerySet slicing says
        if limit == 0:
            return []  # an empty slice: the ORM runs no query either
        alias = router.db_for_read(self.model)  # one routing decision per query, as the ORM makes
        connection = connections[alias]
        params = [*self._params(self.slots, arguments), limit, offset]
        with connection.cursor() as cursor:
            cursor.execute(self.rows_sql + LIMIT_OFFSET_SQL, params)
            rows: list[Any] = cursor.fetchall()
        if self.converters:
            rows = [self._convert(list(row), connection) for row in rows]
        from_db, init_list, fields = self.model.from_db, self.init_list, self.model_fields
        instances = []
        for row in rows:
            instance = from_db(alias, init_list, row[fields])
            for name, column in self.annotation_columns:
                setattr(instance, name, row[column])
            instances.append(instance)
        return instances

    def count(self, arguments: Mapping[str, Any]) -> int:
        """`build(**arguments).count()`: the number of rows of the unsliced query."""
        alias = router.db_for_read(self.model)
        with connections[alias].cursor() as cursor:
            cursor.execute(self.count_sql, self._params(self.count_slots, arguments))
            (total,) = cursor.fetchone()
        return int(total)

    def _convert(self, row: list[Any], connection: Any) -> list[Any]:
        # What SQLCompiler.apply_converters does (e.g. a Subquery's int() of PostgreSQL's numeric SUM).
        for position, functions, expression in self.converters:
            value = row[position]
            for function in functions:
                value = function(value, expression, connection)
            row[position] = value
        return row


# --- compiling --------------------------------------------------------------------------------


def _check_supported(queryset: QuerySet[Any]) -> None:
    """Only what ModelIterable turns into plain instances of one model, with no extra queries."""
    query = queryset.query
    private: Any = queryset  # QuerySet state the stubs don't declare
    if private._iterable_class is not ModelIterable:
        raise Unverifiable("not a queryset of model instances (values(), values_list()...)")
    if private._prefetch_related_lookups or private._known_related_objects:
        raise Unverifiable("prefetch_related or known related objects")
    if private._db is not None or private._hints:
        raise Unverifiable("using() or routing hints: the alias would not be router.db_for_read(model)")
    if query.select_related or query.select_for_update or query.is_sliced:
        raise Unverifiable("select_related, select_for_update or an already sliced queryset")
    if query.combinator or query.distinct:
        raise Unverifiable("a combined or distinct query (its count would need Django's own wrapping)")


def _compile(queryset: QuerySet[Any], alias: str) -> tuple[str, tuple[Any, ...], Any]:
    compiler = queryset.query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    return sql, tuple(params), compiler


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


class ShapedQuery(Generic[_M]):
    """`build(**arguments) -> QuerySet`, compiled once per shape of its arguments.

    `values` names the arguments substituted as parameters (None means absent); every other
    argument is static and part of the shape (it must be hashable). `shape(arguments)` is the
    compiled Shape, or None when the ORM must answer this call. At most `max_shapes` shapes are
    kept (least recently used out); threads share them, and two threads meeting a new shape at
    the same moment may both compile it (harmless: the results are equal).
    """

    def __init__(
        self,
        build: Callable[..., QuerySet[_M]],
        *,
        values: Iterable[str],
        name: str | None = None,
        max_shapes: int = DEFAULT_MAX_SHAPES,
    ) -> None:
        self.build = build
        self.values = frozenset(values)
        self.name = name or f"{build.__module__}.{build.__qualname__}"
        self.max_shapes = max_shapes
        self._shapes: OrderedDict[Hashable, Shape[_M] | None] = OrderedDict()
        self._lock = threading.Lock()

    def key(self, arguments: Mapping[str, Any]) -> Hashable | None:
        """What the SQL text depends on; None if a value has a type sentinels can't stand for."""
        parts: list[Hashable] = []
        for name in sorted(arguments):
            value = arguments[name]
            if name not in self.values:
                parts.append((name, "static", type(value), value))
            elif value is None:
                parts.append((name, None))
            elif type(value) in _SENTINELS and not (type(value) is Decimal and not value.is_finite()):
                parts.append((name, type(value), bool(value)))
            else:  # other types, and NaN or Infinity (the ORM refuses them, the database would not)
                return None
        key = tuple(parts)
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def shape(self, arguments: Mapping[str, Any]) -> Shape[_M] | None:
        key = self.key(arguments)
        if key is None:
            return None
        with self._lock:
            found = self._shapes.get(key, _ABSENT)
            if found is not _ABSENT:
                self._shapes.move_to_end(key)
                return found  # type: ignore[return-value]
        try:
            compiled: Shape[_M] | None = self._compile_shape(arguments)
        except DatabaseError:
            return None  # not the shape's fault (a connection failed): try again next time
        except Unverifiable as exc:
            logger.info("query shape of %s not reused (the ORM answers it): %s", self.name, exc)
            compiled = None
        except Exception:  # Django could not compile it (EmptyResultSet, say): the ORM knows what to do
            logger.warning("query shape of %s not compiled (the ORM answers it)", self.name, exc_info=True)
            compiled = None
        with self._lock:
            compilations[self.name] += 1
            self._shapes[key] = compiled
            self._shapes.move_to_end(key)
            while len(self._shapes) > self.max_shapes:
                self._shapes.popitem(last=False)
        return compiled

    def clear(self) -> None:
        with self._lock:
            self._shapes.clear()

    def __len__(self) -> int:
        return len(self._shapes)

    def _built(self, arguments: Mapping[str, Any]) -> QuerySet[_M]:
        with ExitStack() as stack:
            for connection in connections.all():
                stack.enter_context(connection.execute_wrapper(_refuse_queries))
            try:
                queryset = self.build(**arguments)
            except _QueryDuringBuild as exc:
                raise Unverifiable(f"the build queried the database: {exc}") from None
            except Exception as exc:  # a build that can't take sentinels, say
                raise Unverifiable(f"the build raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(queryset, QuerySet):
            raise Unverifiable("the build did not return a QuerySet")
        _check_supported(queryset)
        return queryset

    def _compile_shape(self, arguments: Mapping[str, Any]) -> Shape[_M]:
        # Compiled on the primary's connection object (compiling makes no query, and asks no routing
        # decision); every alias must share its backend, so the SQL is the same on each.
        if len({connections[alias].settings_dict["ENGINE"] for alias in connections}) != 1:
            raise Unverifiable("aliases with different backends could need different SQL")
        alias = DEFAULT_DB_ALIAS
        ops = connections[alias].ops
        present = sorted(n for n in self.values if arguments.get(n) is not None)
        sentinel_sets = [
            {
                **arguments,
                **{n: _SENTINELS[type(arguments[n])](index, set_id) for index, n in enumerate(present)},
            }
            for set_id in (1, 2)
        ]
        querysets = [self._built(values) for values in (*sentinel_sets, arguments)]
        compiled = [_compile(qs, alias) for qs in querysets]
        counted = [_compile(qs.order_by(), alias) for qs in querysets]
        first = querysets[0]

        sliced_sql, sliced_params, _ = _compile(first[_CHECK_OFFSET : _CHECK_OFFSET + _CHECK_LIMIT], alias)
        if sliced_sql != f"{compiled[0][0]} LIMIT {_CHECK_LIMIT} OFFSET {_CHECK_OFFSET}" or not (
            len(sliced_params) == len(compiled[0][1]) and all(map(_same, sliced_params, compiled[0][1]))
        ):
            raise Unverifiable("Django's sliced SQL is not the unsliced SQL plus LIMIT/OFFSET")

        slots = self._slots([c[:2] for c in compiled], sentinel_sets, arguments, present, ops)
        count_slots = self._slots([c[:2] for c in counted], sentinel_sets, arguments, present, ops)

        compiler = compiled[0][2]
        if compiler.has_extra_select:
            raise Unverifiable("the ordering selects extra columns")
        expressions = [column[0] for column in compiler.select]
        if any(isinstance(e, ColPairs) for e in expressions):
            raise Unverifiable("a composite key in the select list")
        converters = []
        for position, (functions, expression) in compiler.get_converters(expressions).items():
            if ops.get_db_converters(expression):
                raise Unverifiable("backend converters (bound to one connection)")
            converters.append((position, tuple(functions), expression))
        klass_info = compiler.klass_info
        if klass_info.get("related_klass_infos"):
            raise Unverifiable("related models in the select list")
        select_fields = klass_info["select_fields"]
        start, end = select_fields[0], select_fields[-1] + 1
        return Shape(
            model=klass_info["model"],
            rows_sql=compiled[0][0],
            count_sql=COUNT_SQL.format(counted[0][0]),
            slots=slots,
            count_slots=count_slots,
            init_list=tuple(column[0].target.attname for column in compiler.select[start:end]),
            model_fields=slice(start, end),
            annotation_columns=tuple(compiler.annotation_col_map.items()),
            converters=tuple(converters),
            annotations=frozenset(compiler.annotation_col_map),
        )

    @staticmethod
    def _slots(
        compiled: Sequence[tuple[str, tuple[Any, ...]]],
        sentinel_sets: Sequence[Mapping[str, Any]],
        arguments: Mapping[str, Any],
        present: Sequence[str],
        ops: Any,
    ) -> tuple[_Slot, ...]:
        """Which parameter is which value (through which transform), checked on all three compiles."""
        (sql_a, params_a), (sql_b, params_b), (sql_real, params_real) = compiled
        if not sql_a == sql_b == sql_real:
            raise Unverifiable("the SQL text depends on the values (inlined, or the build branches on them)")
        if not len(params_a) == len(params_b) == len(params_real):
            raise Unverifiable("the number of parameters depends on the values")
        transforms = {
            (name, kind): make(ops)
            for name in present
            for kind, (types, make) in _TRANSFORMS.items()
            if type(arguments[name]) in types
        }
        slots = []
        for a, b, real in zip(params_a, params_b, params_real, strict=True):
            matches_a = {k for k, f in transforms.items() if _same(a, f(sentinel_sets[0][k[0]]))}
            matches_b = {k for k, f in transforms.items() if _same(b, f(sentinel_sets[1][k[0]]))}
            if not matches_a and not matches_b:
                if not (_same(a, b) and _same(a, real)):
                    raise Unverifiable(f"a parameter derived from a value in a way not known here: {a!r}")
                slots.append(_Slot(constant=a))
                continue
            if matches_a != matches_b or len(matches_a) != 1:
                raise Unverifiable(f"an ambiguous or inconsistent parameter: {a!r} / {b!r}")
            ((name, kind),) = matches_a
            transform = transforms[(name, kind)]
            if not _same(real, transform(arguments[name])):
                raise Unverifiable(f"the real value of {name} did not reach its parameter the same way")
            slots.append(_Slot(name=name, transform=None if kind == "exact" else transform))
        unused = set(present) - {slot.name for slot in slots}
        if unused:
            raise Unverifiable(f"values that reach no parameter whole: {sorted(unused)}")
        return tuple(slots)
