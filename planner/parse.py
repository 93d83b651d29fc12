"""Parse SQL (DuckDB dialect), tag the catalog's tables, and qualify every column against the catalog."""

from __future__ import annotations

import logging
import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.qualify import qualify

from core.errors import InvalidQuery
from planner.catalog import CATALOG_NAME, Catalog
from planner.information_schema import rewrite_discovery
from planner.parameters import number_placeholders

__all__ = ["SCAN_TAG", "base_tables", "expand_column_aliases", "parse_query", "qualify_query"]

SCAN_TAG = "omnisql_scan"
# sqlglot warns about statements it parses as a bare Command quoting them: user SQL (and its values) never goes
# to our logs, and every statement it cannot parse gets an error of ours instead.
logging.getLogger("sqlglot").setLevel(logging.ERROR)
_QUERY_TYPES = (exp.Select, exp.SetOperation, exp.Subquery)
# Statements that parse but are not queries: named in the error. Anything else that is not a query (a bare word,
# an expression) is not SQL we understand, so it is reported as a syntax error.
_STATEMENTS = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command,
               exp.Set, exp.Pragma, exp.Use, exp.Copy, exp.Transaction, exp.Commit, exp.Rollback, exp.Describe,
               exp.Show, exp.Attach, exp.Detach, exp.Install, exp.TruncateTable, exp.Grant, exp.Cache)


def parse_query(sql: str) -> exp.Expr:
    """Parse exactly one read-only query, or raise ``InvalidQuery`` saying what and where. Positional ``?``
    parameters come back numbered (``$1``, ``$2``, ... in text order; see ``planner.parameters``)."""
    sql = number_placeholders(sql)
    try:
        statements = [s for s in sqlglot.parse(sql, dialect="duckdb") if s is not None]
    except RecursionError as exc:
        raise InvalidQuery("the query nests too deeply to parse; flatten its expressions or subqueries") from exc
    except ParseError as exc:
        raise InvalidQuery(_syntax_error(exc)) from exc
    except TokenError as exc:  # an unterminated string, quoted name or comment (was INTERNAL; found by schemathesis)
        raise InvalidQuery(f"SQL syntax error: {str(exc)[:200]}; check that every quote and comment is closed") \
            from exc
    if len(statements) != 1:
        raise InvalidQuery(f"expected exactly one SQL statement, got {len(statements)}; send one query per request")
    statement = statements[0]
    if isinstance(statement, exp.With):
        statement = statement.this
    discovery = rewrite_discovery(statement)
    if discovery is not None:
        return discovery
    if not isinstance(statement, _QUERY_TYPES):
        if not isinstance(statement, _STATEMENTS):
            raise InvalidQuery(f"SQL syntax error: {sql.strip()[:60]!r} is not a SQL statement; send a query such "
                               "as SELECT ... FROM jira.issues")
        kind = statement.key.upper()
        raise InvalidQuery(f"only read-only queries (SELECT ...) are supported, got {kind}; OmniSQL never writes "
                           "to the source apps")
    _reject_table_functions(statements[0])
    _reject_server_functions(statements[0])
    _fetch_as_limit(statements[0])
    return statements[0]


def _fetch_as_limit(tree: exp.Expr) -> None:
    """``FETCH FIRST n ...`` with an option sqlglot's DuckDB output would drop: ``PERCENT`` becomes DuckDB's
    ``LIMIT n PERCENT`` (it was written as ``LIMIT n``: n rows), ``WITH TIES`` is refused (it was written as
    ``LIMIT n``, leaving out the tied rows, and DuckDB has no WITH TIES)."""
    for fetch in list(tree.find_all(exp.Fetch)):
        options = fetch.args.get("limit_options")
        if options is None:
            continue
        if options.args.get("with_ties"):
            raise InvalidQuery("FETCH ... WITH TIES is not supported (DuckDB has none); keep the ties with a window "
                               "instead, e.g. SELECT ... QUALIFY rank() OVER (ORDER BY <the ORDER BY>) <= n")
        if options.args.get("percent"):
            count = fetch.args.get("count")
            if count is None:
                raise InvalidQuery("FETCH FIRST PERCENT needs a number, e.g. FETCH FIRST 10 PERCENT ROWS ONLY")
            fetch.replace(exp.Limit(expression=count.copy(),
                                    limit_options=exp.LimitOptions(percent=True)))


def _syntax_error(exc: ParseError) -> str:
    """Where the offending token starts (sqlglot reports where it ends) and what is wrong, in words: the
    parser's internals (class names, terminal colour codes) stay out of the message."""
    err = exc.errors[0] if exc.errors else {}
    highlight = str(err.get("highlight") or "")
    line, col = err.get("line"), err.get("col")
    where = ""
    if isinstance(line, int) and isinstance(col, int):
        where = f" at line {line}, column {max(col - len(highlight) + 1, 1)}"
    detail = re.sub(r"\x1b\[[0-9;]*m", "", str(err.get("description") or str(exc).splitlines()[0]))
    detail = re.sub(r"<Token token_type: [^,]*, text: (.*?), line: .*?>", r"'\1'", detail)
    if "<class" in detail or "Required keyword" in detail:
        detail = f"something is missing after {highlight}" if highlight else "the statement is incomplete"
    near = f" near '{highlight}'" if highlight else ""
    return f"SQL syntax error{where}{near}: {detail}"


def _reject_table_functions(tree: exp.Expr) -> None:
    """No table function runs, in any position (FROM, JOIN, LATERAL, subqueries, CTEs, set operations), except
    the row generators ``range`` and ``generate_series``: the others could read the server's files or settings
    (read_csv, query, duckdb_settings). A generator reads nothing and streams its rows, so what it can cost is
    bounded like any query: by ``max_result_bytes``, ``duckdb_memory_limit`` and the deadline (its arguments'
    subqueries are checked like any other). Rows also come from the catalog's tables, VALUES lists and UNNEST."""
    for node in tree.find_all(exp.Table, exp.Lateral):
        function = node.this
        if isinstance(node, exp.Lateral) and isinstance(function, exp.Subquery):
            continue  # LATERAL (SELECT ...): its own tables are checked like any other
        if isinstance(function, exp.GenerateSeries):
            continue  # range(...) / generate_series(...): a row generator
        if isinstance(function, exp.Func | exp.Anonymous) or isinstance(node, exp.Lateral):
            shown = function.sql("duckdb") if isinstance(function, exp.Expr) else node.sql("duckdb")
            raise InvalidQuery(f"table functions are not allowed ({shown[:80]}); query the catalog's tables "
                               "(GetTables), VALUES lists, UNNEST of a list, or range() / generate_series()")


# Scalar functions that read the server rather than the data: DuckDB's settings (memory, directories, paths).
SERVER_FUNCTIONS = frozenset({"current_setting"})


def _reject_server_functions(tree: exp.Expr) -> None:
    """No scalar function that reports the server's own configuration (``current_setting('secret_directory')``
    names a path of the server's file system, ``memory_limit`` its machine); the table functions that would do
    the same (``duckdb_settings``) are refused with the others."""
    for node in tree.find_all(exp.Anonymous):
        if str(node.name).lower() in SERVER_FUNCTIONS:
            raise InvalidQuery(f"{node.name}() reads the server's settings and is not available; the limits "
                               "that apply to queries are the tenant config's (README: Tenant config)")


def base_tables(tree: exp.Expr, catalog: Catalog, default_schema: str | None = None,
                shown: Catalog | None = None) -> list[exp.Table]:
    """Tag every reference to a catalog table with ``meta[SCAN_TAG] = i`` (CTE references are skipped).
    ``shown``: the tables an unknown name's error may list (the asking principal's visible catalog; default
    ``catalog``), so a message never names a table its reader may not see."""
    tables: list[exp.Table] = []
    for node in tree.find_all(exp.Table):
        if not node.name or isinstance(node.this, exp.Func):
            continue
        schema = node.db
        if node.catalog and node.catalog.lower() != CATALOG_NAME:
            raise InvalidQuery(f"unknown catalog {node.catalog}; the only catalog is {CATALOG_NAME}")
        if not schema:
            if node.name.lower() in _ctes_in_scope(node):
                continue
            spec = catalog.resolve_unqualified(node.name, default_schema)
            if spec is None:
                raise (shown or catalog).unknown(None, node.name)
            node.set("db", exp.to_identifier(spec.schema_name))
        if (node.db.lower(), node.name.lower()) not in catalog.tables:
            raise (shown or catalog).unknown(node.db, node.name)
        node.set("catalog", None)
        node.meta[SCAN_TAG] = len(tables)
        tables.append(node)
    _strip_schema_from_columns(tree, catalog)
    return tables


def expand_column_aliases(tables: list[exp.Table], catalog: Catalog) -> None:
    """``FROM jira.issues AS x(a, b)`` renames the table's first columns by position, as DuckDB does; but a scan's
    view holds only the columns the query fetches, in another order, so the list must not reach DuckDB as
    written (``x(a, b)`` named whatever the view had first). Each becomes ``(SELECT issue_key AS a, summary AS b,
    <the other columns the query may name> FROM jira.issues AS x) AS x``: the view is then read by name. Columns
    past the list are kept when the query has a star or ``COLUMNS(...)``, or names them anywhere."""
    positions = [i for i, t in enumerate(tables) if t.args.get("alias") is not None and t.args["alias"].columns]
    if not positions:
        return
    root = tables[positions[0]].root()
    star = root.find(exp.Star, exp.Columns) is not None
    named = {c.name.lower() for c in root.find_all(exp.Column)}
    for i in positions:
        table = tables[i]
        alias = table.args["alias"]
        columns = [c.name for c in catalog.lookup(table.db, table.name).columns]
        if len(alias.columns) > len(columns):
            raise InvalidQuery(f"{table.db}.{table.name} has {len(columns)} columns but {alias.name}"
                               f"({', '.join(c.name for c in alias.columns)}) names {len(alias.columns)}")
        projections: list[exp.Expr] = [exp.alias_(exp.column(c, table=alias.name), r.copy())
                                       for c, r in zip(columns, alias.columns, strict=False)]
        projections += [exp.column(c, table=alias.name) for c in columns[len(alias.columns):]
                        if star or c.lower() in named]
        inner = table.copy()
        inner.meta.update(table.meta)
        inner.set("alias", exp.TableAlias(this=alias.this.copy()))
        table.replace(exp.Subquery(this=exp.select(*projections).from_(inner),
                                   alias=exp.TableAlias(this=alias.this.copy())))
        tables[i] = inner


def _ctes_in_scope(node: exp.Expr) -> set[str]:
    """The CTE names a table reference at ``node`` can mean, as DuckDB binds them: the CTEs of every enclosing
    WITH — inside a WITH's own definitions only the earlier ones (and the definition itself when RECURSIVE). A
    name that only matches a CTE elsewhere in the query (another subquery's, a later sibling's) is not a CTE
    reference: DuckDB would look it up in its own catalog (``pg_settings``, ``duckdb_databases``, ...), so it
    must resolve against ours like any other table name."""
    names: set[str] = set()
    inner, child, parent = node, node, node.parent  # parent ← child ← inner on the path up from ``node``
    while parent is not None:
        with_ = parent.args.get("with_") or parent.args.get("with")
        if isinstance(with_, exp.With):
            ctes = [c for c in with_.expressions if isinstance(c, exp.CTE)]
            if child is with_:  # inside one of this WITH's definitions: ``inner`` is that one
                position = next((i for i, c in enumerate(ctes) if c is inner), len(ctes))
                visible = ctes[:position + 1] if with_.args.get("recursive") else ctes[:position]
            else:
                visible = ctes
            names.update(c.alias_or_name.lower() for c in visible)
        inner, child, parent = child, parent, parent.parent
    return names


def _strip_schema_from_columns(tree: exp.Expr, catalog: Catalog) -> None:
    """``jira.issues.team`` and ``omnisql.jira.issues.team`` → ``issues.team`` (what SQLAlchemy writes for a
    schema-qualified table without alias). The table keeps its name as alias in the final SQL, so the shortened
    reference binds exactly where DuckDB would bind the long one. Struct field paths (``t.col.field``) are left
    alone: only a prefix that names a catalog table is stripped."""
    for column in list(tree.find_all(exp.Column)):
        db, table, catalog_part = column.args.get("db"), column.args.get("table"), column.args.get("catalog")
        if db is None or table is None:
            continue
        if catalog_part is not None and catalog_part.name.lower() != CATALOG_NAME:
            continue
        if (db.name.lower(), table.name.lower()) in catalog.tables:
            column.set("db", None)
            column.set("catalog", None)


def qualify_query(tree: exp.Expr, catalog: Catalog) -> exp.Expr:
    """A qualified copy: every column carries its table alias; unknown columns raise ``InvalidQuery``."""
    copy = tree.copy()
    _name_generated_columns(copy)
    try:
        return qualify(copy, schema=catalog.qualifier_schema, dialect="duckdb",
                       validate_qualify_columns=True, quote_identifiers=False, identify=False)
    except OptimizeError as exc:
        if copy.find(exp.Columns) is not None:
            raise InvalidQuery(f"{exc}: the columns COLUMNS(...) chooses have no names until the query runs, so "
                               "a query around it cannot refer to them by name; list them in the subquery "
                               "instead") from exc
        raise InvalidQuery(f"{exc}; check the column names against the catalog (GetTables / "
                           "adbc_get_table_schema)") from exc
    except AssertionError as exc:  # sqlglot could not see a source's columns (e.g. ORDER BY 1 over SELECT *)
        raise InvalidQuery("cannot tell which columns a position or * refers to over a source whose columns "
                           "are unnamed (a table function or UNNEST with an alias but no column names); name "
                           "them, e.g. range(3) AS t(x), or refer to columns by name") from exc


def _name_generated_columns(tree: exp.Expr) -> None:
    """Name the column of an unaliased ``range()``, ``generate_series()`` or ``UNNEST`` in FROM as DuckDB does
    (``range``, ``generate_series``, ``unnest``), so the qualifier knows it (``SELECT * FROM range(3) ORDER BY
    1``). An aliased one is left as written: DuckDB resolves both ``r`` and ``r.range`` for ``range(3) r``."""
    named: dict[tuple[int, str], list[exp.Expr]] = {}
    for node in tree.find_all(exp.Table, exp.Unnest):
        if isinstance(node, exp.Table) and isinstance(node.this, exp.GenerateSeries):
            column = "range" if node.this.args.get("is_end_exclusive") else "generate_series"
        elif isinstance(node, exp.Unnest) and isinstance(node.parent, exp.From | exp.Join) \
                and len(node.expressions) == 1:
            column = "unnest"
        else:
            continue
        if node.args.get("alias") is None:
            named.setdefault((id(node.find_ancestor(exp.Select)), column), []).append(node)
    for (_, column), nodes in named.items():
        if len(nodes) == 1:  # two in one FROM would be the same name twice: left to DuckDB as written
            nodes[0].set("alias", exp.TableAlias(this=exp.to_identifier(column), columns=[exp.to_identifier(column)]))
