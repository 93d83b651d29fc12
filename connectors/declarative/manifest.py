"""A manifest as typed, frozen values, compiled from YAML that already passed the JSON Schema. What the schema
cannot say (a filter on an unknown column, a GraphQL document that does not declare the variable a filter fills,
a regex that does not compile) is checked here, each problem at its line.

The parts mirror Airbyte's low-code manifests (requester, paginator, record selector, error handler,
authenticator) plus a ``filters`` block that maps ``column + operator`` to a request option: the one thing that
lets the planner push conditions down honestly."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from connectors.declarative.validate import Document, ManifestError, Problem, read_document, schema_problems
from core.types import Op

__all__ = ["AuthDef", "ChangesDef", "ColumnDef", "ErrorDef", "FilterDef", "Manifest", "OrderDef", "PagingDef",
           "RateHeaders", "RequestDef", "TableDef", "load_manifest", "parse_manifest"]

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32(), "list<string>": pa.list_(pa.string()),
    "list<integer>": pa.list_(pa.int64()), "list<number>": pa.list_(pa.float64()), "json": pa.string(),
}
TARGETS = ("graphql", "each", "variable", "query_param", "body_field", "fragment")
_ORDERED: frozenset[Op] = frozenset({"<", "<=", ">", ">=", "BETWEEN"})


def _path(text: str | None) -> tuple[str, ...]:
    return tuple(text.split(".")) if text else ()


@dataclass(frozen=True)
class ColumnDef:
    name: str
    kind: str  # the manifest's type name
    path: tuple[str, ...]
    item: str | None = None  # list<...> of objects: the field of each object to keep (labels.nodes → name)
    nullable: bool = True
    description: str = ""
    format: str = "iso"  # timestamps: iso | epoch_s | epoch_ms
    distinct_estimate: int | None = None

    @property
    def type(self) -> pa.DataType:
        return ARROW_TYPES[self.kind]


@dataclass(frozen=True)
class FilterDef:
    """``column op value`` → one request option. ``target`` is one of ``TARGETS``; ``arg`` its name or path."""

    column: str
    ops: frozenset[Op]
    target: str
    arg: Any
    exact: bool = True
    required: bool = False
    max_in: int = 1
    example: str = ""
    comparators: Mapping[str, str] = field(default_factory=dict)
    match: re.Pattern[str] | None = None
    in_style: str = "repeat"
    value_format: str = "iso"


@dataclass(frozen=True)
class PagingDef:
    type: str = "none"
    page_size: int = 100
    page_size_param: str | None = None  # query parameter (or body field, with in_body) that carries the page size
    page_size_variable: str | None = None  # GraphQL variable that carries it
    page_info: tuple[str, ...] = ()
    cursor_variable: str = "after"
    rel: str = "next"
    token_path: tuple[str, ...] = ()
    token_param: str = ""
    last_path: tuple[str, ...] = ()
    param: str = ""
    in_body: bool = False
    total_path: tuple[str, ...] = ()
    start: int = 1


@dataclass(frozen=True)
class RequestDef:
    path: str
    method: str = "GET"
    query: Mapping[str, Any] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    document: str | None = None  # GraphQL
    variables: Mapping[str, Any] = field(default_factory=dict)
    filter_variable: str | None = None
    operation_name: str | None = None
    language: Mapping[str, str] = field(default_factory=dict)  # query_language: param/body_field, join, quote, ...
    declared: frozenset[str] = frozenset()  # the GraphQL document's variables


@dataclass(frozen=True)
class OrderDef:
    column: str
    target: str  # query_param | variable | body_field
    arg: str
    asc: Any = None
    desc: Any = None


@dataclass(frozen=True)
class ChangesDef:
    """The API can list what changed since a time: ``column >= since`` (a filter must map it), narrowed only by the
    ``keep`` columns' conditions (values a record never changes), ``slack_s`` earlier (the scan cache already asks
    from a minute before its copy was fetched)."""

    column: str
    keep: tuple[str, ...] = ()
    slack_s: float = 0.0


@dataclass(frozen=True)
class TableDef:
    name: str
    request: RequestDef
    columns: tuple[ColumnDef, ...]
    records: tuple[str, ...] = ()
    paging: PagingDef = PagingDef()
    filters: tuple[FilterDef, ...] = ()
    order_by: tuple[OrderDef, ...] = ()
    description: str = ""
    row_estimate: int = 1000
    primary_key: tuple[str, ...] = ()
    limit_pushdown: bool = True
    changes: ChangesDef | None = None


@dataclass(frozen=True)
class AuthDef:
    type: str
    settings: Mapping[str, str]  # secret names (bearer.token, api_key.key, ...) and plain settings (header, ...)

    SECRET_KEYS = {"bearer": ("token",), "api_key": ("key",), "basic": ("username", "password"),
                   "oauth2": ("client_id", "client_secret", "refresh_token")}

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self.settings[k] for k in self.SECRET_KEYS[self.type] if k in self.settings)


@dataclass(frozen=True)
class RateHeaders:
    """One budget the API reports in headers; ``cost`` names a header with what the last request cost (Linear's
    complexity), so ``remaining / cost`` is the requests left."""

    remaining: str
    limit: str | None = None
    reset: str | None = None
    cost: str | None = None


@dataclass(frozen=True)
class ErrorDef:
    graphql: bool = False
    rate_limited_status: tuple[int, ...] = (429,)
    rate_limited_codes: tuple[str, ...] = ("RATELIMITED", "ratelimited")
    message_paths: tuple[tuple[str, ...], ...] = ()
    max_attempts: int = 4
    backoff_s: float = 0.2
    max_wait_s: float = 10.0


@dataclass(frozen=True)
class Manifest:
    name: str
    base_url: str
    tables: tuple[TableDef, ...]
    description: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    variables: Mapping[str, str | None] = field(default_factory=dict)
    auth: tuple[AuthDef, ...] = ()
    rate_limits: tuple[RateHeaders, ...] = ()
    errors: ErrorDef = ErrorDef()
    max_pages: int = 1000
    source: str = ""

    def table(self, name: str) -> TableDef:
        return next(t for t in self.tables if t.name == name)


# -- compiling -------------------------------------------------------------------------------------------------------
def load_manifest(path: str | Path) -> Manifest:
    """Read, validate and compile one manifest file (``ManifestError`` lists every problem with its line)."""
    import yaml

    name = str(path)
    try:
        doc = read_document(Path(path).read_text())
    except OSError as exc:
        raise ManifestError([f"{name}: cannot read the manifest: {exc.strerror or exc}"]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
        raise ManifestError([f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"]) from exc
    return parse_manifest(doc, name)


def parse_manifest(doc: Document, source: str = "<manifest>") -> Manifest:
    problems = schema_problems(doc)
    if problems:
        raise ManifestError([p.render(source) for p in problems])
    found: list[Problem] = []
    raw = doc.data
    tables = tuple(_table(doc, ("tables", i), entry, found) for i, entry in enumerate(raw["tables"]))
    names = [t.name for t in tables]
    for i, name in enumerate(names):
        if names.index(name) != i:
            found.append(doc.problem(("tables", i, "name"), f": table {name!r} is defined twice"))
    auth = tuple(AuthDef(a["type"], {k: str(v) for k, v in a.items() if k != "type"}) for a in raw.get("auth") or ())
    errors_raw = raw.get("errors") or {}
    default_errors = ErrorDef()
    errors = ErrorDef(
        graphql=bool(errors_raw.get("graphql", False)),
        rate_limited_status=tuple(errors_raw.get("rate_limited_status", default_errors.rate_limited_status)),
        rate_limited_codes=tuple(errors_raw.get("rate_limited_codes", default_errors.rate_limited_codes)),
        message_paths=tuple(_path(p) for p in errors_raw.get("message_paths", ())),
        max_attempts=int(errors_raw.get("max_attempts", default_errors.max_attempts)),
        backoff_s=float(errors_raw.get("backoff_s", default_errors.backoff_s)),
        max_wait_s=float(errors_raw.get("max_wait_s", default_errors.max_wait_s)))
    if found:
        raise ManifestError([p.render(source) for p in sorted(found, key=lambda p: (p.line, p.column))])
    return Manifest(
        name=raw["name"], base_url=str(raw["base_url"]).rstrip("/"), tables=tables,
        description=str(raw.get("description", "")), headers=dict(raw.get("headers") or {}),
        variables=dict(raw.get("variables") or {}), auth=auth,
        rate_limits=tuple(RateHeaders(r["remaining"], r.get("limit"), r.get("reset"), r.get("cost"))
                          for r in raw.get("rate_limits") or ()),
        errors=errors, max_pages=int(raw.get("max_pages", 1000)), source=source)


def _table(doc: Document, where: tuple[str | int, ...], raw: dict[str, Any], found: list[Problem]) -> TableDef:
    columns = tuple(ColumnDef(name=c["name"], kind=c["type"], path=_path(c.get("path", c["name"]))
                              if c["type"] != "json" or c.get("path") else _path(c["name"]),
                              item=c.get("item"), nullable=bool(c.get("nullable", True)),
                              description=str(c.get("description", "")), format=c.get("format", "iso"),
                              distinct_estimate=c.get("distinct_estimate"))
                    for c in raw["columns"])
    by_name = {c.name: c for c in columns}
    for i, column in enumerate(raw["columns"]):
        if [c.name for c in columns].count(column["name"]) > 1:
            found.append(doc.problem(where + ("columns", i, "name"), f": column {column['name']!r} is defined twice"))
    for key in raw.get("primary_key") or ():
        if key not in by_name:
            found.append(doc.problem(where + ("primary_key",), f": names unknown column {key!r}"))
    request = _request(doc, where + ("request",), raw["request"], found)
    paging = _paging(doc, where + ("paginator",), raw.get("paginator") or {"type": "none"}, request, found)
    filters = tuple(_filter(doc, where + ("filters", i), f, by_name, request, found)
                    for i, f in enumerate(raw.get("filters") or ()))
    orders = []
    for i, o in enumerate(raw.get("order_by") or ()):
        targets = [k for k in ("query_param", "variable", "body_field") if k in o]
        if o["column"] not in by_name:
            found.append(doc.problem(where + ("order_by", i, "column"), f": names unknown column {o['column']!r}"))
        elif len(targets) != 1:
            found.append(doc.problem(where + ("order_by", i), ": needs exactly one of query_param, variable, "
                                                                "body_field"))
        else:
            orders.append(OrderDef(o["column"], targets[0], o[targets[0]], o.get("asc"), o.get("desc")))
    return TableDef(name=raw["name"], request=request, columns=columns, records=_path(raw.get("records")),
                    paging=paging, filters=filters, order_by=tuple(orders),
                    description=str(raw.get("description", "")), row_estimate=int(raw.get("row_estimate", 1000)),
                    primary_key=tuple(raw.get("primary_key") or ()),
                    limit_pushdown=bool(raw.get("limit_pushdown", True)),
                    changes=_changes(doc, where + ("changes",), raw, by_name, filters, found))


def _changes(doc: Document, where: tuple[str | int, ...], raw: dict[str, Any], columns: Mapping[str, ColumnDef],
             filters: tuple[FilterDef, ...], found: list[Problem]) -> ChangesDef | None:
    spec = raw.get("changes")
    if spec is None:
        return None
    column = columns.get(spec["column"])
    if column is None or column.kind != "timestamp":
        found.append(doc.problem(where + ("column",), ": must name a timestamp column"))
    elif not any(f.column == column.name and ">=" in f.ops for f in filters):
        found.append(doc.problem(where + ("column",), f": needs a filter that sends {column.name} >= (the changes)"))
    if len(raw.get("primary_key") or ()) != 1:
        found.append(doc.problem(where, ": needs a primary_key of one column (changes are merged by it)"))
    unknown = [k for k in spec.get("keep") or () if k not in columns]
    if unknown:
        found.append(doc.problem(where + ("keep",), f": names unknown columns {unknown}"))
    return ChangesDef(spec["column"], tuple(spec.get("keep") or ()), float(spec.get("slack_s", 0.0)))


def _request(doc: Document, where: tuple[str | int, ...], raw: dict[str, Any], found: list[Problem]) -> RequestDef:
    gql = raw.get("graphql") or {}
    document = gql.get("document")
    declared = _check_document(doc, where + ("graphql", "document"), document, found) if document else frozenset()
    return RequestDef(path=raw["path"], method=raw.get("method", "POST" if document else "GET"),
                      query=dict(raw.get("query") or {}), body=raw.get("body"), headers=dict(raw.get("headers") or {}),
                      document=document, variables=dict(gql.get("variables") or {}),
                      filter_variable=gql.get("filter_variable"), operation_name=gql.get("operation_name"),
                      language=dict(raw.get("query_language") or {}), declared=declared)


def _check_document(doc: Document, where: tuple[str | int, ...], document: str, found: list[Problem]
                    ) -> frozenset[str]:
    """The document must parse and be one operation (values only ever travel as its variables); returns the
    variables it declares."""
    from graphql import GraphQLSyntaxError, OperationDefinitionNode, parse

    try:
        parsed = parse(document)
    except GraphQLSyntaxError as exc:
        found.append(doc.problem(where, f": not valid GraphQL: {exc.message.removeprefix('Syntax Error: ')}"))
        return frozenset()
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        found.append(doc.problem(where, ": must hold exactly one operation"))
        return frozenset()
    return frozenset(v.variable.name.value for v in operations[0].variable_definitions or ())


def _paging(doc: Document, where: tuple[str | int, ...], raw: dict[str, Any], request: RequestDef,
            found: list[Problem]) -> PagingDef:
    kind = raw["type"]
    paging = PagingDef(type=kind, page_size=int(raw.get("page_size", 100)), page_size_param=raw.get("page_size_param"),
                       page_size_variable=raw.get("page_size_variable"), page_info=_path(raw.get("page_info")),
                       cursor_variable=raw.get("cursor_variable", "after"), rel=raw.get("rel", "next"),
                       token_path=_path(raw.get("token_path")), token_param=raw.get("token_param", ""),
                       last_path=_path(raw.get("last_path")), param=raw.get("param", ""),
                       in_body=bool(raw.get("in_body", False)), total_path=_path(raw.get("total_path")),
                       start=int(raw.get("start", 1)))
    needs = {"cursor": ("page_info",), "next_token": ("token_path", "token_param"), "offset": ("param",),
             "page_number": ("param",)}.get(kind, ())
    for key in needs:
        if key not in raw:
            found.append(doc.problem(where + (key,), f"is required for a {kind} paginator"))
    if request.declared:
        wanted = [v for v in (paging.page_size_variable, paging.cursor_variable if kind == "cursor" else None,
                              request.filter_variable) if v]
        for name in wanted:
            if name not in request.declared:
                found.append(doc.problem(where[:-1] + ("request", "graphql", "document"),
                                         f": does not declare ${name}, which the manifest fills"))
    return paging


def _filter(doc: Document, where: tuple[str | int, ...], raw: dict[str, Any], columns: Mapping[str, ColumnDef],
            request: RequestDef, found: list[Problem]) -> FilterDef:
    targets = [k for k in TARGETS if k in raw]
    ops: frozenset[Op] = frozenset(raw["ops"])
    column = columns.get(raw["column"])
    if column is None:
        found.append(doc.problem(where + ("column",), f": names unknown column {raw['column']!r}"))
    elif ops & _ORDERED and column.kind.startswith("list") or "LIKE_PREFIX" in ops and column.kind != "string":
        found.append(doc.problem(where + ("ops",), f": {sorted(ops)} do not apply to a {column.kind} column"))
    if len(targets) != 1:
        found.append(doc.problem(where, f": needs exactly one target ({', '.join(TARGETS)}), not "
                                        f"{', '.join(targets) or 'none'}"))
    target = targets[0] if targets else "graphql"
    pattern = None
    if "match" in raw:
        try:
            pattern = re.compile(raw["match"])
        except re.error as exc:
            found.append(doc.problem(where + ("match",), f": not a valid regular expression: {exc}"))
    if target == "each" and "match" not in raw:
        found.append(doc.problem(where + ("match",), "is required with each (the regex whose groups fill it)"))
    if target in ("graphql", "each") and request.document is not None and not request.filter_variable:
        found.append(doc.problem(where, ": a graphql filter needs request.graphql.filter_variable"))
    if target == "fragment" and not request.language:
        found.append(doc.problem(where, ": a fragment filter needs request.query_language"))
    return FilterDef(column=raw["column"], ops=ops, target=target, arg=raw.get(target), exact=bool(
        raw.get("exact", True)), required=bool(raw.get("required", False)), max_in=int(raw.get("max_in", 1 if (
            "IN" not in ops) else 50)), example=str(raw.get("example", "")), comparators=dict(raw.get("comparators")
                                                                                         or {}),
        match=pattern, in_style=raw.get("in_style", "repeat"), value_format=raw.get("value_format", "iso"))
