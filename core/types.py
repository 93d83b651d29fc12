"""The table contract between connectors and the planner: pure data plus one narrow protocol.

A connector declares each table as a ``TableSpec`` (columns, Arrow types, what the API can filter on and how
exactly, which API calls each column costs). The planner reads only these declarations to decide pushdown;
the connector receives a ``ScanRequest`` and yields Arrow record batches.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol, get_args, runtime_checkable

import pyarrow as pa
import pyarrow.compute as pc

from core.errors import ResourceExhausted

__all__ = [
    "Changes",
    "ChangeListing",
    "ColumnSpec",
    "Connector",
    "CallBudget",
    "Counting",
    "Describing",
    "FetchGroup",
    "FilterCap",
    "OPERATORS",
    "Op",
    "ops",
    "Predicate",
    "RequestGate",
    "ScanRequest",
    "ScanStats",
    "SearchPath",
    "TableSpec",
]

# Operators a connector may declare; LIKE_PREFIX is ``col LIKE 'abc%'`` with no other wildcard; CONTAINS is
# ``list_contains(col, value)`` on a list column (GitHub's ``label:``).
Op = Literal["=", "<>", "IN", "<", "<=", ">", ">=", "BETWEEN", "LIKE_PREFIX", "IS_NULL", "CONTAINS"]
OPERATORS: frozenset[Op] = frozenset(get_args(Op))


def ops(*names: Op) -> frozenset[Op]:
    """A typed operator set for ``FilterCap`` (``ops("=", "IN")``)."""
    return frozenset(names)


# What a column costs beyond the listing: nothing, one request per row, or one per distinct user.
FetchGroup = Literal["list", "detail", "user"]


@dataclass(frozen=True)
class FilterCap:
    """What an API can do with conditions on one column.

    ``exact`` means the API enforces the condition precisely (same semantics as SQL, including case);
    otherwise it only narrows and the engine re-checks. ``max_in`` caps IN-list size per API request.
    """

    ops: frozenset[Op]
    exact: bool = True
    required: bool = False
    max_in: int = 1
    example: str = ""

    def __post_init__(self) -> None:
        unknown = self.ops - OPERATORS
        if unknown:
            raise ValueError(f"unknown filter operators {sorted(unknown)}; allowed: {sorted(OPERATORS)}")
        if self.max_in < 1:
            raise ValueError("max_in must be >= 1")


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its Arrow type and the API calls it costs (``fetch`` names a fetch group)."""

    name: str
    type: pa.DataType
    description: str = ""
    nullable: bool = True
    filter: FilterCap | None = None
    fetch: FetchGroup = "list"
    distinct_estimate: int | None = None  # distinct values, when known (join keys: rows per value ≈ rows / this)


@dataclass(frozen=True)
class SearchPath:
    """A second way to list a table that costs one call per ``page_size`` matches, with no per-partition listing
    and at most ``cap`` matches reachable (GitHub's ``/search/issues``). Declared so the estimator prices a scan
    the way the connector will run it: the connector takes the path when ``applies`` (it may still refuse a
    value it cannot quote safely, or fall back to listing past ``cap``). Each value of an IN list on a
    ``narrowing`` column is one search of its own (no OR in the search syntax)."""

    columns: frozenset[str]  # what a search result carries
    filters: frozenset[str]  # conditions the search can take or the rows are filtered by
    narrowing: frozenset[str]  # at least one pushed condition on these makes the path worth taking
    page_size: int = 100
    cap: int = 1000
    max_fanout: int = 1  # IN values on a narrowing column searched one by one, up to this many

    def applies(self, request: ScanRequest) -> bool:
        """Whether a request can go this way: searchable columns and conditions, at least one narrowing
        condition, and nothing (limit, order, prefilter, residual) that only the listing honours."""
        if request.limit is not None or request.order_by or request.prefilters or request.residual is not None:
            return False
        if not set(request.columns) <= self.columns:
            return False
        if any(p.column not in self.filters for p in request.predicates):
            return False
        return any(p.column in self.narrowing for p in request.predicates) and self.fanout(request) <= self.max_fanout

    def fanout(self, request: ScanRequest) -> int:
        """Searches one request needs: one per IN value on a narrowing column."""
        return max((len(p.values) for p in request.predicates if p.column in self.narrowing and p.op == "IN"),
                   default=1)


@dataclass(frozen=True)
class TableSpec:
    """A table as data. ``row_estimate``, ``page_size``, ``request_overhead`` and ``partitions`` feed the
    planner's API-call estimates: one request costs ``request_overhead + max(pages, partitions)`` calls (GitHub
    lists the org's repositories once, then pages through each repository), so splitting a scan into many
    requests is priced honestly."""

    schema_name: str
    name: str
    columns: tuple[ColumnSpec, ...]
    description: str = ""
    primary_key: tuple[str, ...] = ()
    row_estimate: int = 1000
    page_size: int = 100
    limit_pushdown: bool = True
    order_pushdown: tuple[str, ...] = ()  # non-null columns the API can sort by (either direction), for top-N
    request_overhead: int = 0
    partitions: int = 1
    partition_column: str | None = None  # an =/IN filter on it lists only those partitions (GitHub: repo)
    fetch_costs: dict[FetchGroup, str] = field(default_factory=dict)
    cacheable: bool = True  # False: never answered from the scan cache (system tables)
    # The connector can list what changed since a time (``ChangeListing``): a cached scan is then refreshed by
    # fetching only the changes and merging them by the (single-column) primary key.
    delta_refresh: bool = False
    # Columns whose pushed conditions may send the scan down another access path that cannot return the primary
    # key (GitHub's search, for author / merged_at): the planner then adds no delta key, so the cache refetches
    # such a scan in full, which that path makes cheap.
    keyless_filters: frozenset[str] = frozenset()
    search: SearchPath | None = None  # a second, cheaper listing for narrow requests (priced by the estimator)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.qualified_name}: duplicate column names")
        missing = set(self.primary_key) - set(names)
        if missing:
            raise ValueError(f"{self.qualified_name}: primary key names unknown columns {sorted(missing)}")

    @property
    def qualified_name(self) -> str:
        return f"{self.schema_name}.{self.name}"

    @functools.cached_property  # a spec never changes once built; its schema is read on every scan
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    def column(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def schema_for(self, columns: Iterable[str]) -> pa.Schema:
        """The Arrow schema of a projection, in table order (so ``SELECT *`` keeps its column order)."""
        wanted = set(columns)
        return pa.schema([f for f in self.arrow_schema if f.name in wanted])


@dataclass(frozen=True)
class Predicate:
    """A normalized condition ``column op values``; ``values`` holds Python scalars (1 for most ops)."""

    column: str
    op: Op
    values: tuple[Any, ...] = ()

    def __str__(self) -> str:
        if self.op == "IN":
            return f"{self.column} IN ({', '.join(map(_shown, self.values))})"
        if self.op == "BETWEEN":
            return f"{self.column} BETWEEN {_shown(self.values[0])} AND {_shown(self.values[1])}"
        if self.op == "IS_NULL":
            return f"{self.column} IS NULL"
        if self.op == "LIKE_PREFIX":
            return f"{self.column} LIKE {self.values[0] + '%'!r}"
        if self.op == "CONTAINS":
            return f"list_contains({self.column}, {_shown(self.values[0])})"
        return f"{self.column} {self.op} {_shown(self.values[0])}"


def _shown(value: Any) -> str:
    """A value as EXPLAIN prints it (and cache keys compare it): times as SQL literals, the rest as repr."""
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return repr(value)


@dataclass(frozen=True)
class ScanRequest:
    """What the planner asks of one table scan. ``limit`` is set only when every predicate is exact.

    ``predicates`` may be sent to the API; ``prefilters`` never are: the connector applies them to listed rows
    before any per-row lookup (a semi-join from another source's keys), so lookups run only for survivors."""

    table: str
    columns: tuple[str, ...]
    predicates: tuple[Predicate, ...] = ()
    limit: int | None = None
    prefilters: tuple[Predicate, ...] = ()
    order_by: tuple[tuple[str, bool], ...] = ()  # (column, descending); only with a limit: return the top
    # ``limit`` rows in this order plus every row tied with the last of them
    residual: pc.Expression | None = None  # local-only conditions as Arrow, applied before per-row lookups
    scope: str = ""  # the security scope of the asking principal (caches and budgets key on it)
    principal: str = ""  # the asking user (only system tables read it: each user sees its own query log)
    credential: str = ""  # which configured credential pays for the request (rate limits are per credential)

    @property
    def row_filters(self) -> tuple[Predicate, ...]:
        """Everything the connector must enforce on the rows it returns."""
        return self.predicates + self.prefilters


class RequestGate(Protocol):
    """Admission of one request under its credential's rate limit (``connectors/ratelimit.py``): ``acquire`` waits
    for a token (bounded; RateLimitExhausted when it cannot come in time, nothing taken); ``observe`` tells the
    bucket what the API said (requests it has left, or how long it refuses requests)."""

    async def acquire(self) -> None: ...

    async def observe(self, remaining: int | None, blocked_for_s: float | None) -> None: ...


@dataclass
class ScanStats:
    """Counters a scan fills in as it runs (EXPLAIN ANALYZE and the request budget read them). ``budget`` is the
    query's API-call allowance, shared by all of its scans: ``spend()`` before each request. ``gate`` is the
    credential's rate limit (the HTTP machinery acquires a token before each request)."""

    api_calls: int = 0
    pages: int = 0
    rows: int = 0  # rows handed back (after the connector's own filtering)
    listed: int = 0  # rows the API listed, before any filtering: what planner statistics record
    not_modified: int = 0  # of api_calls, those answered 304 from a stored body: no rate-limit token spent
    access: str = ""  # the access path the connector took when it chooses at run time (EXPLAIN ANALYZE's upstream)
    rate_limit_remaining: int | None = None
    rate_limit_limit: int | None = None
    budget: CallBudget | None = None
    gate: RequestGate | None = None

    def spend(self) -> None:
        """Take one API call from the query's budget (ResourceExhausted once it is spent); connectors' HTTP
        machinery calls this before sending, and counts the call."""
        if self.budget is not None:
            self.budget.take()
        self.api_calls += 1


@dataclass
class CallBudget:
    """API calls one query may still make (``max_api_calls_per_query``), shared by its scans. Scans run on one
    event loop thread, so a plain counter is safe."""

    limit: int
    used: int = 0

    def take(self) -> None:
        if self.used >= self.limit:
            raise ResourceExhausted(f"the query reached max_api_calls_per_query = {self.limit} API calls and was "
                                    "stopped; narrow it (EXPLAIN shows where the calls go) or ask the operator to "
                                    "raise the limit")
        self.used += 1


class Connector(Protocol):
    """One SaaS app. ``open`` runs once at start (discovery: Salesforce ``describe``, MCP ``tools/list``) before
    ``tables`` is read; ``scan`` pages through the API and yields batches in ``table.schema_for(columns)``;
    ``aclose`` runs once at shutdown."""

    name: str

    async def open(self) -> None: ...

    def tables(self) -> Sequence[TableSpec]: ...

    def scan(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Changes:
    """What changed upstream since a time, for one request: the primary keys of every changed record (whether it
    still matches the request or not: a record that stopped matching must leave the cached copy) and, in the
    request's columns, the changed records that match it."""

    keys: pa.Array
    batches: tuple[pa.RecordBatch, ...]


@runtime_checkable
class ChangeListing(Protocol):
    """Optional: a connector whose API lists records changed since a time (GitHub ``sort=updated``, JQL
    ``updated >=``). ``since`` is ``time.time()``; None when this request cannot be answered that way."""

    async def scan_changes(self, request: ScanRequest, since: float, stats: ScanStats) -> Changes | None: ...


@runtime_checkable
class Describing(Protocol):
    """Optional: a connector that can say what a request sends upstream (a JQL string, a GraphQL filter object),
    for EXPLAIN's ``upstream`` column. Only the asking principal's own query and filters appear in it."""

    def describe_request(self, request: ScanRequest) -> str: ...


@runtime_checkable
class Counting(Protocol):
    """Optional: a connector whose API can count what a request would list, cheaper than listing it."""

    async def count(self, request: ScanRequest, stats: ScanStats) -> int | None: ...
